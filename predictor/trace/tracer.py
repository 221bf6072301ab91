"""Any ``nn.Module`` + example inputs -> :class:`~predictor.trace.tree.EnergyTree`, with no compute.

The forward runs on the meta device (a model built under ``torch.device("meta")``) or under
``FakeTensorMode`` (a model with real weights): shapes propagate, nothing is computed and no
activation memory is allocated. Two interceptors build the tree while it runs:

- forward pre/post hooks on every submodule keep a stack of the modules being executed;
- a ``TorchFunctionMode`` sees each torch-function-level call (``F.linear``, ``torch.matmul``,
  ``F.softmax``, ``Tensor.add`` ...) once, at the outermost level, and charges its cost
  (:mod:`predictor.trace.features`) to the innermost module on the stack. Module costs roll up to
  their parents when they return, so a module's features are the sum of every op inside it.

Levels: the root (``model``), every non-primitive module except Dropout (``module``), and ML
primitives (``ml``): leaf modules such as Linear / LayerNorm / Embedding / HF Conv1D /
activations / RMSNorm, plus functional MatMul and Softmax calls inside a module (named after
that module, one node per call). When the fake run fails (e.g. an op with no meta kernel, or a
data-dependent ``.item()``), the trace is retried on real tensors; when that fails too a
:class:`~predictor.errors.TraceError` names the module and op that failed.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.hooks import RemovableHandle

from predictor.errors import ModelError, TraceError
from predictor.trace.features import (
    COUNTING_MODES,
    FEATURES_VERSION,
    MFLOP,
    MIB,
    OpCall,
    get_op_handle,
    op_name,
)
from predictor.trace.tree import EnergyTree, Node, UnsupportedOp

__all__ = [
    "PRIMITIVE_MODULES",
    "build_tree",
    "is_skipped_module",
    "primitive_type",
    "register_primitive",
]

#: Leaf modules that are ML primitives, by class (isinstance) ...
PRIMITIVE_MODULES: list[type[nn.Module]] = [
    nn.Linear,
    nn.Bilinear,
    nn.LayerNorm,
    nn.RMSNorm,
    nn.GroupNorm,
    nn.modules.batchnorm._BatchNorm,
    nn.Embedding,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.Tanh,
    nn.GELU,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Mish,
    nn.ELU,
    nn.SELU,
    nn.Softplus,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.GLU,
]
#: ... and, for classes defined outside torch (Hugging Face), by class name of a leaf module.
_PRIMITIVE_NAMES: set[str] = {"Conv1D", "T5LayerNorm"}
_PRIMITIVE_SUFFIXES: tuple[str, ...] = ("RMSNorm",)
#: Every leaf module defined in these modules is an activation primitive.
_ACTIVATION_MODULES: tuple[str, ...] = ("transformers.activations",)


def register_primitive(cls: type[nn.Module] | str) -> None:
    """Make a module class (or a class name) an ML primitive: a leaf of the tree."""
    if isinstance(cls, str):
        _PRIMITIVE_NAMES.add(cls)
    else:
        PRIMITIVE_MODULES.append(cls)


def primitive_type(module: nn.Module) -> str | None:
    """The ML-primitive type (the class name) of a leaf-module primitive, else None."""
    cls = type(module)
    if isinstance(module, tuple(PRIMITIVE_MODULES)):
        return cls.__name__
    if next(iter(module.children()), None) is not None:
        return None
    name = cls.__name__
    if name in _PRIMITIVE_NAMES or name.endswith(_PRIMITIVE_SUFFIXES):
        return name
    if cls.__module__ in _ACTIVATION_MODULES:
        return name
    return None


def is_skipped_module(module: nn.Module) -> bool:
    """Dropout modules are not nodes (their ops, none in eval mode, go to the parent)."""
    return isinstance(module, nn.modules.dropout._DropoutNd) or type(module).__name__.endswith(
        "Dropout"
    )


@dataclass
class _Frame:
    node: Node | None  # None: a module called inside a primitive (part of that primitive)
    module_name: str
    primitive: bool


@dataclass
class _Failure:
    module: str
    op: str
    in_op: bool
    error: BaseException

    def describe(self) -> str:
        where = f"in module '{self.module}'" if self.module else "in the model's own forward"
        at = (
            f"in op '{self.op}'"
            if self.in_op
            else f"after op '{self.op}'"
            if self.op
            else "before any op"
        )
        return f"{where} {at}: {type(self.error).__name__}: {_short(self.error)}"


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()).rstrip(".")
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class _Tracer(TorchFunctionMode):
    mode: str
    root: Node
    stack: list[_Frame] = field(default_factory=list)
    unsupported: Counter[tuple[str, str]] = field(default_factory=Counter)
    formula_errors: dict[str, str] = field(default_factory=dict)
    last_op: str = ""
    in_op: bool = False

    def __post_init__(self) -> None:
        super().__init__()
        self.stack = [_Frame(self.root, "", primitive=False)]

    def frame(self) -> _Frame:
        for frame in reversed(self.stack):
            if frame.node is not None:
                return frame
        return self.stack[0]

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        name = op_name(func)
        self.last_op, self.in_op = name, True
        out = func(*args, **kwargs)
        self.in_op = False
        frame = self.frame()
        node = frame.node
        assert node is not None
        handle = get_op_handle(name, self.mode)
        if handle is None:
            self.unsupported[(name, frame.module_name)] += 1
            return out
        try:
            parts = handle(OpCall(name, args, kwargs, out))
        except Exception as exc:  # a formula that cannot read these arguments: report, not 0
            self.unsupported[(name, frame.module_name)] += 1
            self.formula_errors[name] = f"{type(exc).__name__}: {_short(exc, 120)}"
            return out
        for part in parts:
            node.flops += part.flops
            node.mem_bytes += part.bytes
            if part.primitive is not None and not frame.primitive:
                fqn = frame.module_name
                node.children.append(
                    Node(
                        name=f"{fqn}:{part.primitive}",
                        level="ml",
                        type=part.primitive,
                        fqn=fqn,
                        flops=part.flops,
                        mem_bytes=part.bytes,
                    )
                )
        return out

    # -- module hooks -----------------------------------------------------------------------

    def enter(self, module_name: str, module: nn.Module, prim: str | None) -> None:
        top = self.stack[-1]
        if top.primitive:
            self.stack.append(_Frame(None, module_name, primitive=True))
            return
        if prim is not None:
            node = Node(name=f"{module_name}:{prim}", level="ml", type=prim, fqn=module_name)
        else:
            cls = type(module).__name__
            node = Node(name=f"{module_name}:{cls}", level="module", type=cls, fqn=module_name)
        self.frame().node.children.append(node)  # type: ignore[union-attr]
        self.stack.append(_Frame(node, module_name, primitive=prim is not None))

    def leave(self) -> None:
        frame = self.stack.pop()
        if frame.node is None:
            return
        parent = self.frame().node
        assert parent is not None
        parent.flops += frame.node.flops
        parent.mem_bytes += frame.node.mem_bytes


def _install_hooks(model: nn.Module, tracer: _Tracer) -> list[RemovableHandle]:
    handles: list[RemovableHandle] = []
    for module_name, module in model.named_modules():
        if module is model or is_skipped_module(module):
            continue
        prim = primitive_type(module)

        def pre(mod: nn.Module, args: Any, name: str = module_name, p: str | None = prim) -> None:
            tracer.enter(name, mod, p)

        def post(mod: nn.Module, args: Any, out: Any) -> None:
            tracer.leave()

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    return handles


def _param_counts(model: nn.Module) -> dict[int, int]:
    """id(module) -> parameters of the module and its submodules, tied weights once."""
    return {id(m): sum(p.numel() for p in m.parameters()) for m in model.modules()}


def _is_meta(model: nn.Module) -> bool:
    tensors = itertools.chain(model.parameters(), model.buffers())
    return any(t.is_meta for t in tensors)


def _map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple):
        return tuple(_map_tensors(v, fn) for v in value)
    if isinstance(value, list):
        return [_map_tensors(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    return value


def _max_positions(model: nn.Module) -> int | None:
    config = getattr(model, "config", None)
    if config is None:
        return None
    for attr in ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _describe_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    def one(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return {"shape": list(value.shape), "dtype": str(value.dtype).removeprefix("torch.")}
        if isinstance(value, (bool, int, float, str)) or value is None:
            return value
        return type(value).__name__

    out: dict[str, Any] = {f"arg{i}": one(v) for i, v in enumerate(args)}
    out.update({k: one(v) for k, v in kwargs.items()})
    return out


def _infer_shape(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int, int]:
    """(batch, seq) from the first integer 2-D tensor input, else the first tensor's two dims."""
    tensors = [v for v in itertools.chain(args, kwargs.values()) if isinstance(v, torch.Tensor)]
    for t in tensors:
        if t.dim() == 2 and not t.is_floating_point():
            return int(t.shape[0]), int(t.shape[1])
    for t in tensors:
        if t.dim() >= 2:
            return int(t.shape[0]), int(t.shape[1])
        if t.dim() == 1:
            return int(t.shape[0]), 1
    return 0, 0


class _Attempt(Exception):
    def __init__(self, failure: _Failure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


def _attempt(
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name: str,
    mode: str,
    execution: str,
) -> tuple[Node, _Tracer]:
    root = Node(name=name, level="model", type=type(model).__name__, fqn="")
    tracer: _Tracer | None = None
    try:
        tracer = _Tracer(mode=mode, root=root)
        handles = _install_hooks(model, tracer)
        try:
            with ExitStack() as stack:
                stack.enter_context(torch.no_grad())
                if execution == "fake":
                    from torch._subclasses.fake_tensor import FakeTensorMode

                    stack.enter_context(_quiet_logger("torch._subclasses.fake_tensor"))
                    stack.enter_context(FakeTensorMode(allow_non_fake_inputs=True))
                stack.enter_context(tracer)
                model(*args, **kwargs)
        finally:
            for h in handles:
                h.remove()
    except Exception as exc:
        where = ""
        if tracer is not None:
            inner = tracer.stack[-1]
            where = inner.module_name
            if inner.node is not None and inner.node.level != "model":
                where = inner.node.name
        raise _Attempt(
            _Failure(
                module=where,
                op=tracer.last_op if tracer else "",
                in_op=bool(tracer and tracer.in_op),
                error=exc,
            )
        ) from exc
    return root, tracer


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """FakeTensorMode logs a traceback for an op it cannot run; the failure is ours to
    report (as one line, with the module and op), so that log is silenced meanwhile."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in flags:
            m.training = training


def build_tree(
    model: nn.Module,
    *example_args: Any,
    name: str | None = None,
    counting_mode: str = "irene",
    batch_size: int | None = None,
    seq_len: int | None = None,
    real_model: Callable[[], nn.Module] | None = None,
    **example_kwargs: Any,
) -> EnergyTree:
    """Trace ``model`` on example inputs into an EnergyTree, computing nothing.

    With no example inputs, ``batch_size`` and ``seq_len`` make ``input_ids`` (int64, zeros,
    shape ``(batch_size, seq_len)``). A model on the meta device runs on meta tensors, any other
    under ``FakeTensorMode``; if that fails the trace is retried on real tensors (for a meta
    model, on the model ``real_model()`` builds, when given). Every node gets ``batch_size``,
    ``seq_len``, ``flops`` (MFLOPs), ``mem_bytes`` (MiB) and ``num_parameters`` (tied weights
    once). Ops with no formula are listed in ``tree.unsupported_ops``.

    Raises ModelError when the inputs do not fit the model (signature, positions) and
    TraceError when the forward fails on fake and on real tensors.
    """
    if counting_mode not in COUNTING_MODES:
        raise ModelError(
            f"counting mode must be one of {', '.join(COUNTING_MODES)} (got {counting_mode!r})"
        )
    if not isinstance(model, nn.Module):
        raise ModelError(f"build_tree needs a torch.nn.Module, got {type(model).__name__}")
    name = name or type(model).__name__
    cls = type(model).__name__
    meta_model = _is_meta(model)

    args: tuple[Any, ...] = example_args
    kwargs: dict[str, Any] = dict(example_kwargs)
    if not args and not any(isinstance(v, torch.Tensor) for v in kwargs.values()):
        if batch_size is None or seq_len is None:
            raise ModelError(
                f"{name}: give example inputs, or batch_size and seq_len to make input_ids"
            )
        if batch_size < 1 or seq_len < 1:
            raise ModelError(
                f"{name}: batch_size and seq_len must be >= 1 (got {batch_size} and {seq_len})"
            )
        kwargs = {"input_ids": torch.zeros((batch_size, seq_len), dtype=torch.long), **kwargs}
    inferred = _infer_shape(args, kwargs)
    batch = batch_size if batch_size is not None else inferred[0]
    seq = seq_len if seq_len is not None else inferred[1]

    limit = _max_positions(model)
    if limit is not None and seq > limit:
        raise ModelError(
            f"{name}: seq_len {seq} is beyond the model's {limit} positions "
            f"({cls}.config); use --seq-len {limit} or less"
        )
    try:
        inspect.signature(model.forward).bind(*args, **kwargs)
    except TypeError as exc:
        raise ModelError(
            f"{name}: the inputs do not fit {cls}.forward{inspect.signature(model.forward)}: {exc}"
        ) from None

    # Meta tensors are the fastest (no dispatch overhead) but code that branches on values
    # fails there; transformers skips such checks under fake tensors ("is_tracing").
    plan = ["meta", "fake", "real"] if meta_model else ["fake", "real"]
    failures: list[tuple[str, _Failure]] = []
    result: tuple[Node, _Tracer] | None = None
    execution = ""
    target = model
    for execution in plan:
        if execution == "real":
            if meta_model:
                if real_model is None:
                    break
                target = real_model()
            run_args = _map_tensors(args, lambda t: t.to("cpu") if t.is_meta else t)
            run_kwargs = _map_tensors(kwargs, lambda t: t.to("cpu") if t.is_meta else t)
        elif meta_model:
            to_meta = lambda t: t.to("meta")  # noqa: E731  (no data is copied to meta)
            run_args, run_kwargs = _map_tensors(args, to_meta), _map_tensors(kwargs, to_meta)
        else:
            run_args, run_kwargs = args, kwargs
        try:
            with _eval_mode(target):
                result = _attempt(target, run_args, run_kwargs, name, counting_mode, execution)
            break
        except _Attempt as failed:
            failures.append((execution, failed.failure))
    if result is None:
        tried = "; ".join(f"on {where} tensors {f.describe()}" for where, f in failures)
        hint = (
            " The model is on the meta device, so it could not be retried on real tensors: "
            "build it with real weights (or pass real_model=)."
            if meta_model and real_model is None
            else ""
        )
        raise TraceError(
            f"{name} ({cls}) failed {tried}.{hint} Check that the inputs fit the model, or "
            "register the failing module as a primitive (predictor.trace.tracer.register_primitive)"
        )
    root, tracer = result
    model = target
    fallback_reason = "; ".join(
        f"{where} tensors failed {f.describe()}" for where, f in failures if where != "meta"
    )

    counts = _param_counts(model)
    fqn_module = dict(model.named_modules())
    root.num_parameters = counts[id(model)]
    for node in root.walk():
        node.flops /= MFLOP
        node.mem_bytes /= MIB
        node.batch_size = batch
        node.seq_len = seq
        if node.level != "model" and node.type not in ("MatMul", "Softmax"):
            module = fqn_module.get(node.fqn)
            node.num_parameters = counts.get(id(module), 0) if module is not None else 0

    unsupported = [
        UnsupportedOp(op=op, module=module or name, count=count)
        for (op, module), count in sorted(tracer.unsupported.items())
    ]
    meta: dict[str, Any] = {
        "model": name,
        "model_class": cls,
        "inputs": _describe_inputs(args, kwargs),
        "attn_implementation": getattr(
            getattr(model, "config", None), "_attn_implementation", None
        ),
        "execution": execution,
        "features_version": FEATURES_VERSION,
        "torch": torch.__version__,
    }
    if fallback_reason:
        meta["fallback_reason"] = fallback_reason
    if tracer.formula_errors:
        meta["formula_errors"] = dict(tracer.formula_errors)
    return EnergyTree(
        root=root, counting_mode=counting_mode, unsupported_ops=unsupported, meta=meta
    )
