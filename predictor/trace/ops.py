"""The op vocabulary and the op-formula registry: what a traced call is, what it costs, and
which formula (handle) prices it in each counting mode.

The tracer (:mod:`predictor.trace.tracer`) sees every torch-function-level call (``F.linear``,
``torch.matmul``, ``Tensor.add``, ...), normalises its name with :func:`op_name` and asks its
:class:`OpRegistry` for the handle of that name in the tree's counting mode. A handle returns
:class:`OpCount` parts in raw units (FLOPs, bytes); the tracer converts to the tree's units
(MFLOPs, MiB) once at the end.

Registries are objects, as fvcore's ``FlopCountAnalysis`` handles are: each trace works on its
own copy of :func:`predictor.trace.features.default_ops` (or of the registry it is given), so a
caller overrides one entry for one call without touching anyone else's::

    ops = default_ops().set_op_handle("cumprod", my_handle)
    build_tree(model, inputs, ops=ops)          # or: ops={"cumprod": my_handle}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "COUNTING_MODES",
    "MFLOP",
    "MIB",
    "OpCall",
    "OpCount",
    "OpHandle",
    "OpRegistry",
    "no_cost",
    "op_name",
]

COUNTING_MODES: tuple[str, ...] = ("irene", "native")
MFLOP = 1e6
MIB = float(2**20)


@dataclass(frozen=True)
class OpCount:
    """One costed part of an op call, in raw units: ``flops`` FLOPs, ``bytes`` bytes.

    ``primitive`` names the ML-primitive type ("MatMul", "Linear", "Softmax") when this part
    is a functional op the tree makes an ML node of (called inside a module that is not itself
    a primitive); ``None`` for ops only summed into modules (their own ops). ``kernel`` is the
    part's kernel class (:mod:`predictor.trace.kernels`; ``""``: unknown), ``dtype`` its
    compute dtype (None: the call's output dtype) and ``shapes`` its operand shapes (None: the
    call's tensor arguments). ``count`` > 1: the part stands for that many identical calls
    (its FLOPs and bytes are their total), as an eager loop over experts runs them.
    """

    flops: float
    bytes: float
    primitive: str | None = None
    kernel: str = ""
    dtype: str | None = None
    shapes: tuple[tuple[int, ...], ...] | None = None
    count: int = 1
    #: The primitive type this node stands for when it is not ``primitive`` itself (a routed
    #: expert GEMM is a ``Linear``); None: ``primitive``.
    base: str | None = None


@dataclass(frozen=True)
class OpCall:
    """A traced call: normalised op name, its arguments and its result (fake or meta tensors)."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    out: Any = None

    def arg(self, index: int, key: str, default: Any = None) -> Any:
        """Positional argument ``index`` or keyword ``key``."""
        if len(self.args) > index:
            return self.args[index]
        return self.kwargs.get(key, default)

    def tensors(self) -> list[torch.Tensor]:
        """Tensor arguments (positional, keyword, and inside lists such as ``torch.cat``'s)."""
        found: list[torch.Tensor] = []
        for value in (*self.args, *self.kwargs.values()):
            if isinstance(value, torch.Tensor):
                found.append(value)
            elif isinstance(value, (list, tuple)):
                found.extend(v for v in value if isinstance(v, torch.Tensor))
        return found


OpHandle = Callable[[OpCall], list[OpCount]]


def no_cost(call: OpCall) -> list[OpCount]:
    """The handle of an op that costs nothing (views, metadata, property reads)."""
    return []


class OpRegistry:
    """Normalised op name -> handle, one table per counting mode.

    An op with no handle is never counted as 0 silently: the tracer lists it on the tree
    (``EnergyTree.unsupported_ops``). Property reads (``"attr:shape"``) always cost nothing.
    """

    def __init__(self) -> None:
        self._handles: dict[str, dict[str, OpHandle]] = {mode: {} for mode in COUNTING_MODES}

    def set_op_handle(self, op: str, handle: OpHandle, mode: str | None = None) -> OpRegistry:
        """Price the normalised op name ``op`` with ``handle`` in one counting mode (or every
        mode when ``mode`` is None). Returns the registry, so calls chain."""
        modes = COUNTING_MODES if mode is None else (mode,)
        for m in modes:
            if m not in self._handles:
                raise ValueError(
                    f"counting mode must be one of {', '.join(COUNTING_MODES)} (got {m!r})"
                )
            self._handles[m][op] = handle
        return self

    def get(self, op: str, mode: str) -> OpHandle | None:
        """The handle for ``op`` in ``mode``, or None when the op has no formula."""
        if op.startswith("attr:"):
            return no_cost
        return self._handles[mode].get(op)

    def ops(self, mode: str) -> list[str]:
        """The op names with a handle in ``mode``, sorted."""
        return sorted(self._handles[mode])

    def copy(self) -> OpRegistry:
        """An independent registry with the same entries."""
        new = OpRegistry()
        new._handles = {mode: dict(table) for mode, table in self._handles.items()}
        return new


# -- op names -----------------------------------------------------------------------------------

_ALIASES: dict[str, str] = {
    "radd": "add",
    "iadd": "add",
    "isub": "sub",
    "subtract": "sub",
    "rmul": "mul",
    "imul": "mul",
    "multiply": "mul",
    "truediv": "div",
    "rtruediv": "div",
    "itruediv": "div",
    "true_divide": "div",
    "divide": "div",
    "floordiv": "floor_divide",
    "rfloordiv": "floor_divide",
    "rmatmul": "matmul",
    "rpow": "pow",
    "ipow": "pow",
    "and": "bitwise_and",
    "or": "bitwise_or",
    "xor": "bitwise_xor",
    "invert": "bitwise_not",
    "rand": "bitwise_and",
    "ror": "bitwise_or",
    "iand": "bitwise_and",
    "ior": "bitwise_or",
    "greater": "gt",
    "less": "lt",
    "greater_equal": "ge",
    "less_equal": "le",
    "not_equal": "ne",
    "absolute": "abs",
}


def op_name(func: Any) -> str:
    """Normalised name of a torch-function-level callable.

    ``Tensor.__radd__``, ``Tensor.add_`` and ``torch.add`` are all ``"add"``; property getters
    (``Tensor.shape``) are ``"attr:<name>"``.
    """
    raw = getattr(func, "__name__", None)
    if not isinstance(raw, str):
        return type(func).__name__
    name: str = raw
    if name == "__get__":
        owner = getattr(func, "__self__", None)
        return "attr:" + str(getattr(owner, "__name__", "?"))
    if name.startswith("__") and name.endswith("__") and len(name) > 4:
        name = name[2:-2]
    elif name.endswith("_") and not name.startswith("_") and name != "_":
        name = name[:-1]
    return _ALIASES.get(name, name)
