"""Op -> (FLOPs, bytes) formulas: a registry, so a new op is one entry.

The tracer (:mod:`predictor.trace.tracer`) sees every torch-function-level call (``F.linear``,
``torch.matmul``, ``Tensor.add``, ...), normalises its name with :func:`op_name` and asks the
handle registered for that name and the tree's counting mode what the call cost. A handle
returns :class:`OpCount` parts in raw units (FLOPs, bytes); the tracer converts to the tree's
units (MFLOPs, MiB) once at the end. A part with ``primitive`` set ("MatMul", "Softmax")
becomes a functional-op ML node when called inside a (non-primitive) module.

Two counting modes:

- ``irene`` reproduces the counting rules behind the IrEne dataset (irene-method.md): a multiply-
  add counts 2, bytes are fp32 (4 per element) except embedding indices, ``F.linear`` on a 3-D
  input is charged like the old ``matmul`` + ``add_`` (the weight once per batch row), data
  movement (views, masks, ``where``, ``cat``, dtype casts, dropout, ``rsqrt``) is not counted,
  as IrEne had no counter for it.
- ``native`` counts what executes: the same arithmetic per element, bytes at each tensor's real
  element size, every tensor read once (weights too), and copies charged.

An op with no registered handle is never counted as 0 silently: the tracer lists it on the tree
(``EnergyTree.unsupported_ops``). Register one with :func:`set_op_handle`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "COUNTING_MODES",
    "FEATURES_VERSION",
    "MFLOP",
    "MIB",
    "OpCall",
    "OpCount",
    "OpHandle",
    "get_op_handle",
    "op_name",
    "registered_ops",
    "set_op_handle",
]

#: Bump when a formula changes: profiles trained on trees of another version are suspect.
FEATURES_VERSION = "1"
COUNTING_MODES: tuple[str, ...] = ("irene", "native")
MFLOP = 1e6
MIB = float(2**20)
_FP32 = 4


@dataclass(frozen=True)
class OpCount:
    """One costed part of an op call, in raw units: ``flops`` FLOPs, ``bytes`` bytes.

    ``primitive`` names the ML-primitive type ("MatMul", "Softmax") when this part is a
    functional op that IrEne makes a node of; ``None`` for ops only summed into modules.
    """

    flops: float
    bytes: float
    primitive: str | None = None


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

_HANDLES: dict[str, dict[str, OpHandle]] = {mode: {} for mode in COUNTING_MODES}


def set_op_handle(op: str, handle: OpHandle, mode: str | None = None) -> None:
    """Register ``handle`` for the normalised op name ``op`` in one counting mode (or both)."""
    modes = COUNTING_MODES if mode is None else (mode,)
    for m in modes:
        if m not in _HANDLES:
            raise ValueError(
                f"counting mode must be one of {', '.join(COUNTING_MODES)} (got {m!r})"
            )
        _HANDLES[m][op] = handle


def get_op_handle(op: str, mode: str) -> OpHandle | None:
    """The handle for ``op`` in ``mode``, or None when the op has no formula.

    Property reads (``"attr:shape"``, ``"attr:dtype"``) cost nothing.
    """
    if op.startswith("attr:"):
        return _zero
    return _HANDLES[mode].get(op)


def registered_ops(mode: str) -> list[str]:
    return sorted(_HANDLES[mode])


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


# -- helpers ------------------------------------------------------------------------------------


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _numel(value: Any) -> int:
    t = _first_tensor(value)
    return 0 if t is None else int(t.numel())


def _nbytes(t: torch.Tensor | None) -> float:
    return 0.0 if t is None else float(t.numel() * t.element_size())


def _sum_nbytes(tensors: Iterable[torch.Tensor]) -> float:
    seen: set[int] = set()
    total = 0.0
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            total += _nbytes(t)
    return total


def _out_tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for t in out if isinstance(t, torch.Tensor)]
    return []


def _zero(call: OpCall) -> list[OpCount]:
    return []


def _irene_elementwise(flops: float, bytes_mult: float) -> OpHandle:
    """IrEne's rule: ``flops`` per output element and ``bytes_mult`` x 4 bytes per output element."""

    def handle(call: OpCall) -> list[OpCount]:
        n = _numel(call.out)
        return [OpCount(flops * n, bytes_mult * _FP32 * n)]

    return handle


def _native_elementwise(flops: float) -> OpHandle:
    """``flops`` per output element; bytes = every input tensor read once + outputs written."""

    def handle(call: OpCall) -> list[OpCount]:
        outs = _out_tensors(call.out)
        n = int(outs[0].numel()) if outs else 0
        return [OpCount(flops * n, _sum_nbytes(call.tensors()) + _sum_nbytes(outs))]

    return handle


def _native_reduction(flops_per_input: float) -> OpHandle:
    def handle(call: OpCall) -> list[OpCount]:
        src = _first_tensor(call.args)
        n = 0 if src is None else int(src.numel())
        return [OpCount(flops_per_input * n, _nbytes(src) + _sum_nbytes(_out_tensors(call.out)))]

    return handle


def _native_copy(call: OpCall) -> list[OpCount]:
    """A copy: no arithmetic, the output written and as many bytes read."""
    written = _sum_nbytes(_out_tensors(call.out))
    return [OpCount(0.0, 2.0 * written)]


def _native_create(call: OpCall) -> list[OpCount]:
    """A new tensor filled in place: written once."""
    return [OpCount(0.0, _sum_nbytes(_out_tensors(call.out)))]


def _native_contiguous(call: OpCall) -> list[OpCount]:
    src = _first_tensor(call.args)
    if src is None or src.is_contiguous():
        return []
    return [OpCount(0.0, 2.0 * _nbytes(src))]


def _native_cast(call: OpCall) -> list[OpCount]:
    src = _first_tensor(call.args)
    out = _first_tensor(call.out)
    if src is None or out is None or out is src:
        return []
    return [OpCount(0.0, _nbytes(src) + _nbytes(out))]


# -- linear algebra ---------------------------------------------------------------------------


def _matmul_dims(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> tuple[int, int, int, int]:
    """(batch, n, k, p) of ``a @ b`` with numpy broadcasting; 1-D operands as in torch.matmul."""
    k = int(a.shape[-1])
    n = int(a.shape[-2]) if a.dim() >= 2 else 1
    p = int(b.shape[-1]) if b.dim() >= 2 else 1
    batch = int(out.numel()) // max(n * p, 1)
    return batch, n, k, p


def _irene_matmul(call: OpCall) -> list[OpCount]:
    a, b, out = call.arg(0, "input"), call.arg(1, "other"), _first_tensor(call.out)
    if out is None:
        return []
    batch, n, k, p = _matmul_dims(a, b, out)
    return [OpCount(2.0 * batch * n * k * p, _FP32 * batch * (n * k + k * p + n * p), "MatMul")]


def _native_matmul(call: OpCall) -> list[OpCount]:
    a, b, out = call.arg(0, "input"), call.arg(1, "other"), _first_tensor(call.out)
    if out is None:
        return []
    batch, n, k, p = _matmul_dims(a, b, out)
    return [OpCount(2.0 * batch * n * k * p, _nbytes(a) + _nbytes(b) + _nbytes(out), "MatMul")]


def _irene_addmm(call: OpCall) -> list[OpCount]:
    m1, m2 = call.arg(1, "mat1"), call.arg(2, "mat2")
    n, m = int(m1.shape[0]), int(m1.shape[1])
    p = int(m2.shape[1])
    return [OpCount(2.0 * n * m * p, _FP32 * (n * m + m * p + n * p))]


def _native_addmm(call: OpCall) -> list[OpCount]:
    bias, m1, m2 = call.arg(0, "input"), call.arg(1, "mat1"), call.arg(2, "mat2")
    n, m = int(m1.shape[0]), int(m1.shape[1])
    p = int(m2.shape[1])
    out = _first_tensor(call.out)
    return [
        OpCount(2.0 * n * m * p + n * p, _nbytes(bias) + _nbytes(m1) + _nbytes(m2) + _nbytes(out))
    ]


def _native_baddbmm(call: OpCall) -> list[OpCount]:
    bias, b1, b2 = call.arg(0, "input"), call.arg(1, "batch1"), call.arg(2, "batch2")
    out = _first_tensor(call.out)
    if out is None:
        return []
    batch, n, k, p = _matmul_dims(b1, b2, out)
    return [
        OpCount(
            2.0 * batch * n * k * p + batch * n * p,
            _nbytes(bias) + _nbytes(b1) + _nbytes(b2) + _nbytes(out),
        )
    ]


def _irene_baddbmm(call: OpCall) -> list[OpCount]:
    b1, b2, out = call.arg(1, "batch1"), call.arg(2, "batch2"), _first_tensor(call.out)
    if out is None:
        return []
    batch, n, k, p = _matmul_dims(b1, b2, out)
    return [OpCount(2.0 * batch * n * k * p, _FP32 * batch * (n * k + k * p + n * p))]


def _linear_dims(call: OpCall) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, int, int]:
    x, w, b = call.arg(0, "input"), call.arg(1, "weight"), call.arg(2, "bias")
    return x, w, b, int(w.shape[-1]), int(w.shape[0]) if w.dim() == 2 else 1


def _linear_cost(
    lead: tuple[int, ...], fin: int, fout: int, bias: bool, native: bool, size: int = _FP32
) -> OpCount:
    """A linear layer on an input of shape ``(*lead, fin)``.

    irene: 2-D inputs ran as addmm (bias ignored), others as matmul + add_(bias) with the
    weight charged once per batch row (torch 1.x, IrEne's counter); native: each tensor once.
    """
    n = 1
    for d in lead:
        n *= d
    if native:
        flops = 2.0 * n * fin * fout + (n * fout if bias else 0)
        return OpCount(flops, size * (n * fin + fin * fout + (fout if bias else 0) + n * fout))
    if len(lead) <= 1:
        return OpCount(2.0 * n * fin * fout, _FP32 * (n * fin + fin * fout + n * fout))
    seq = lead[-1]
    batch = n // max(seq, 1)
    flops = 2.0 * n * fin * fout
    nbytes = _FP32 * batch * (seq * fin + fin * fout + seq * fout)
    if bias:
        flops += n * fout
        nbytes += 2 * _FP32 * n * fout
    return OpCount(flops, nbytes)


def _irene_linear(call: OpCall) -> list[OpCount]:
    x, _w, b, fin, fout = _linear_dims(call)
    return [
        _linear_cost(tuple(int(d) for d in x.shape[:-1]), fin, fout, b is not None, native=False)
    ]


def _native_linear(call: OpCall) -> list[OpCount]:
    x, _w, b, fin, fout = _linear_dims(call)
    return [
        _linear_cost(
            tuple(int(d) for d in x.shape[:-1]), fin, fout, b is not None, True, x.element_size()
        )
    ]


def _mha_parts(call: OpCall, native: bool) -> list[OpCount]:
    """``F.multi_head_attention_forward`` (nn.MultiheadAttention) as the ops it runs: q/k/v
    projections, q scaling, ``q @ k^T``, mask add, softmax, ``p @ v``, output projection.
    Inputs are (L, N, E) or unbatched (L, E)."""
    q, k = call.arg(0, "query"), call.arg(1, "key")
    heads = int(call.arg(4, "num_heads"))
    in_bias = call.arg(6, "in_proj_bias") is not None
    out_bias = call.arg(12, "out_proj_bias") is not None
    mask = call.arg(16, "attn_mask")
    e = int(q.shape[-1])
    lq, s = int(q.shape[0]), int(k.shape[0])
    n = int(q.shape[1]) if q.dim() == 3 else 1
    d = e // max(heads, 1)
    size = q.element_size() if native else _FP32
    q_lead = (lq, n) if q.dim() == 3 else (lq,)
    k_lead = (s, n) if k.dim() == 3 else (s,)
    big, scores = n * heads, n * heads * lq * s
    parts = [
        _linear_cost(q_lead, e, e, in_bias, native, size),
        _linear_cost(k_lead, e, e, in_bias, native, size),
        _linear_cost(k_lead, e, e, in_bias, native, size),
        OpCount(float(lq * n * e), 3.0 * size * lq * n * e),  # q scaling (mul)
        OpCount(2.0 * big * lq * d * s, size * big * (lq * d + d * s + lq * s), "MatMul"),
    ]
    if isinstance(mask, torch.Tensor):
        parts.append(OpCount(float(scores), 2.0 * size * scores))
    parts += [
        OpCount(5.0 * scores, (2.0 if native else 3.0) * size * scores, "Softmax"),
        OpCount(2.0 * big * lq * s * d, size * big * (lq * s + s * d + lq * d), "MatMul"),
        _linear_cost(q_lead, e, e, out_bias, native, size),
    ]
    return parts


def _sdpa_parts(call: OpCall, native: bool) -> list[OpCount]:
    """scaled_dot_product_attention as the eager code it stands for:
    ``q @ k^T``, scale (mul), mask (add, when a mask tensor is given), softmax, ``p @ v``."""
    q, k, v = call.arg(0, "query"), call.arg(1, "key"), call.arg(2, "value")
    mask = call.arg(3, "attn_mask")
    out = _first_tensor(call.out)
    if out is None:
        return []
    big = int(q.numel()) // max(int(q.shape[-1]) * int(q.shape[-2]), 1)
    lq, e = int(q.shape[-2]), int(q.shape[-1])
    s, ev = int(k.shape[-2]), int(v.shape[-1])
    scores = big * lq * s
    size = q.element_size() if native else _FP32
    parts = [
        OpCount(2.0 * big * lq * e * s, size * big * (lq * e + e * s + lq * s), "MatMul"),
        OpCount(float(scores), 3.0 * size * scores),
    ]
    if isinstance(mask, torch.Tensor):
        parts.append(OpCount(float(scores), 2.0 * size * scores))
    parts.append(
        OpCount(5.0 * scores, 3.0 * size * scores if not native else 2.0 * size * scores, "Softmax")
    )
    parts.append(
        OpCount(2.0 * big * lq * s * ev, size * big * (lq * s + s * ev + lq * ev), "MatMul")
    )
    return parts


def _irene_softmax(call: OpCall) -> list[OpCount]:
    n = _numel(call.out)
    return [OpCount(5.0 * n, 3.0 * _FP32 * n, "Softmax")]


def _native_softmax(call: OpCall) -> list[OpCount]:
    n = _numel(call.out)
    return [
        OpCount(
            5.0 * n,
            _nbytes(_first_tensor(call.args)) + _sum_nbytes(_out_tensors(call.out)),
            "Softmax",
        )
    ]


def _irene_embedding(call: OpCall) -> list[OpCount]:
    idx = call.arg(0, "input")
    return [OpCount(0.0, _nbytes(idx) + _FP32 * _numel(call.out))]


def _native_embedding(call: OpCall) -> list[OpCount]:
    idx = call.arg(0, "input")
    out = _first_tensor(call.out)
    return [OpCount(0.0, _nbytes(idx) + 2.0 * _nbytes(out))]


def _native_norm(flops: float) -> OpHandle:
    def handle(call: OpCall) -> list[OpCount]:
        out = _first_tensor(call.out)
        n = 0 if out is None else int(out.numel())
        return [OpCount(flops * n, _sum_nbytes(call.tensors()) + _nbytes(out))]

    return handle


def _conv_flops(call: OpCall) -> list[OpCount]:
    """convNd: 2 x (output elements) x (in_channels / groups) x kernel size, + bias."""
    x, w, b = call.arg(0, "input"), call.arg(1, "weight"), call.arg(2, "bias")
    out = _first_tensor(call.out)
    if out is None:
        return []
    per_out = int(w[0].numel())
    flops = 2.0 * out.numel() * per_out + (out.numel() if b is not None else 0)
    return [OpCount(flops, _nbytes(x) + _nbytes(w) + _nbytes(b) + _nbytes(out))]


def _irene_conv(call: OpCall) -> list[OpCount]:
    (part,) = _conv_flops(call) or [OpCount(0.0, 0.0)]
    x, w, b = call.arg(0, "input"), call.arg(1, "weight"), call.arg(2, "bias")
    elems = sum(
        int(t.numel()) for t in (x, w, b, _first_tensor(call.out)) if isinstance(t, torch.Tensor)
    )
    return [OpCount(part.flops, _FP32 * elems)]


# -- the registry ---------------------------------------------------------------------------------

#: No arithmetic and no data movement in either mode: shapes, views, metadata.
_FREE: tuple[str, ...] = (
    "size", "dim", "ndimension", "numel", "stride", "storage_offset", "data_ptr", "element_size",
    "is_contiguous", "is_floating_point", "is_complex", "get_device", "nelement",
    "view", "view_as", "reshape", "reshape_as", "transpose", "swapaxes", "permute", "t", "T",
    "unsqueeze", "squeeze", "expand", "expand_as", "broadcast_to", "flatten", "unflatten",
    "split", "split_with_sizes", "chunk", "unbind", "narrow", "select", "getitem", "movedim",
    "as_strided", "diagonal", "detach", "requires_grad", "len", "iter", "format", "repr",
    "index", "hash", "contains", "dropout", "alpha_dropout",
    "feature_alpha_dropout", "dropout1d", "dropout2d", "dropout3d", "identity", "is_nonzero",
    "result_type", "can_cast", "promote_types", "is_tensor", "is_grad_enabled", "tolist", "item",
    "setstate", "reduce_ex", "deepcopy", "get", "set_", "unsafe_view", "view_as_real",
    "view_as_complex", "align_to", "rename", "new_tensor",
)  # fmt: skip

#: IrEne had no counter for these (data movement, masks, casts, creation): 0 in irene mode;
#: native mode charges the copy or the write.
_MOVES: dict[str, OpHandle] = {
    "contiguous": _native_contiguous,
    "clone": _native_copy,
    "to": _native_cast,
    "type": _native_cast,
    "type_as": _native_cast,
    "float": _native_cast,
    "half": _native_cast,
    "bfloat16": _native_cast,
    "double": _native_cast,
    "long": _native_cast,
    "int": _native_cast,
    "bool": _native_cast,
    "cat": _native_copy,
    "concat": _native_copy,
    "concatenate": _native_copy,
    "stack": _native_copy,
    "repeat": _native_copy,
    "repeat_interleave": _native_copy,
    "tile": _native_copy,
    "copy": _native_copy,
    "setitem": _native_copy,
    "gather": _native_copy,
    "index_select": _native_copy,
    "take_along_dim": _native_copy,
    "roll": _native_copy,
    "flip": _native_copy,
    "pad": _native_copy,
    "triu": _native_copy,
    "tril": _native_copy,
    "where": _native_elementwise(1),
    "masked_fill": _native_elementwise(1),
    "clamp": _native_elementwise(1),
    "clip": _native_elementwise(1),
    "clamp_min": _native_elementwise(1),
    "clamp_max": _native_elementwise(1),
    "rsqrt": _native_elementwise(1),
    "arange": _native_create,
    "zeros": _native_create,
    "ones": _native_create,
    "full": _native_create,
    "empty": _native_create,
    "tensor": _native_create,
    "as_tensor": _native_create,
    "zeros_like": _native_create,
    "ones_like": _native_create,
    "full_like": _native_create,
    "empty_like": _native_create,
    "new_zeros": _native_create,
    "new_ones": _native_create,
    "new_full": _native_create,
    "new_empty": _native_create,
    "fill": _native_create,
    "zero": _native_create,
    "eq": _native_elementwise(1),
    "ne": _native_elementwise(1),
    "lt": _native_elementwise(1),
    "le": _native_elementwise(1),
    "gt": _native_elementwise(1),
    "ge": _native_elementwise(1),
    "logical_not": _native_elementwise(1),
    "logical_and": _native_elementwise(1),
    "logical_or": _native_elementwise(1),
    "bitwise_not": _native_elementwise(1),
    "bitwise_and": _native_elementwise(1),
    "bitwise_or": _native_elementwise(1),
    "bitwise_xor": _native_elementwise(1),
    "isinf": _native_elementwise(1),
    "isnan": _native_elementwise(1),
    "any": _native_reduction(1),
    "all": _native_reduction(1),
    "argmax": _native_reduction(1),
    "argmin": _native_reduction(1),
    "cumsum": _native_elementwise(1),
    "diff": _native_elementwise(1),
}

#: Arithmetic ops: (IrEne FLOPs per output element, IrEne bytes as multiples of 4 x numel,
#: native FLOPs per output element). The first block is IrEne's own table (irene-method.md);
#: the rest follow its pattern (1 FLOP and read + write per unary, 2 reads + write per binary).
_ARITH: dict[str, tuple[float, float, float]] = {
    "add": (1, 2, 1),
    "sub": (1, 2, 1),
    "div": (1, 2, 1),
    "pow": (1, 2, 1),
    "mul": (1, 3, 1),
    "rsub": (1, 3, 1),
    "gelu": (6, 2, 6),
    "tanh": (4, 1, 4),
    "relu": (1, 2, 1),
    "clone": (0, 2, 0),
    # beyond IrEne's table (not in its dataset's models):
    "addcmul": (2, 3, 2),
    "addcdiv": (2, 3, 2),
    "floor_divide": (1, 2, 1),
    "remainder": (1, 2, 1),
    "fmod": (1, 2, 1),
    "neg": (1, 2, 1),
    "abs": (1, 2, 1),
    "exp": (1, 2, 1),
    "log": (1, 2, 1),
    "sqrt": (1, 2, 1),
    "reciprocal": (1, 2, 1),
    "sin": (1, 2, 1),
    "cos": (1, 2, 1),
    "erf": (1, 2, 1),
    "sign": (1, 2, 1),
    "round": (1, 2, 1),
    "floor": (1, 2, 1),
    "ceil": (1, 2, 1),
    "maximum": (1, 2, 1),
    "minimum": (1, 2, 1),
    "sigmoid": (4, 2, 4),
    "silu": (5, 2, 5),
    "mish": (6, 2, 6),
    "hardtanh": (1, 2, 1),
    "relu6": (1, 2, 1),
    "leaky_relu": (2, 2, 2),
    "elu": (4, 2, 4),
    "selu": (4, 2, 4),
    "softplus": (4, 2, 4),
    "hardswish": (4, 2, 4),
    "hardsigmoid": (3, 2, 3),
    "glu": (5, 2, 5),
    "lerp": (2, 3, 2),
}
_REDUCTIONS: tuple[str, ...] = (
    "sum",
    "mean",
    "max",
    "min",
    "amax",
    "amin",
    "prod",
    "norm",
    "var",
    "std",
)


def _register_defaults() -> None:
    for name in _FREE:
        set_op_handle(name, _zero)
    for name, native in _MOVES.items():
        set_op_handle(name, _zero, "irene")
        set_op_handle(name, native, "native")
    for name, (flops, mult, native_flops) in _ARITH.items():
        set_op_handle(name, _irene_elementwise(flops, mult), "irene")
        set_op_handle(
            name, _native_elementwise(native_flops) if name != "clone" else _native_copy, "native"
        )
    for name in _REDUCTIONS:
        set_op_handle(name, _irene_elementwise(1, 1), "irene")
        set_op_handle(name, _native_reduction(1), "native")
    set_op_handle("linear", _irene_linear, "irene")
    set_op_handle("linear", _native_linear, "native")
    for name in ("matmul", "bmm", "mm"):
        set_op_handle(name, _irene_matmul, "irene")
        set_op_handle(name, _native_matmul, "native")
    set_op_handle("addmm", _irene_addmm, "irene")
    set_op_handle("addmm", _native_addmm, "native")
    set_op_handle("baddbmm", _irene_baddbmm, "irene")
    set_op_handle("baddbmm", _native_baddbmm, "native")
    set_op_handle("softmax", _irene_softmax, "irene")
    set_op_handle("softmax", _native_softmax, "native")
    set_op_handle("log_softmax", _irene_elementwise(5, 3), "irene")
    set_op_handle("log_softmax", _native_elementwise(5), "native")
    set_op_handle("layer_norm", _irene_elementwise(8, 4), "irene")
    set_op_handle("layer_norm", _native_norm(8), "native")
    set_op_handle("rms_norm", _irene_elementwise(4, 3), "irene")
    set_op_handle("rms_norm", _native_norm(4), "native")
    set_op_handle("group_norm", _irene_elementwise(8, 4), "irene")
    set_op_handle("group_norm", _native_norm(8), "native")
    set_op_handle("batch_norm", _irene_elementwise(2, 2), "irene")
    set_op_handle("batch_norm", _native_norm(2), "native")
    set_op_handle("embedding", _irene_embedding, "irene")
    set_op_handle("embedding", _native_embedding, "native")
    set_op_handle("scaled_dot_product_attention", lambda c: _sdpa_parts(c, native=False), "irene")
    set_op_handle("scaled_dot_product_attention", lambda c: _sdpa_parts(c, native=True), "native")
    set_op_handle("multi_head_attention_forward", lambda c: _mha_parts(c, native=False), "irene")
    set_op_handle("multi_head_attention_forward", lambda c: _mha_parts(c, native=True), "native")
    for name in ("conv1d", "conv2d", "conv3d"):
        set_op_handle(name, _irene_conv, "irene")
        set_op_handle(name, _conv_flops, "native")


_register_defaults()
