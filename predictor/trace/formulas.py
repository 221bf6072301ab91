"""The op formulas: what one call of an op costs, in FLOPs and bytes, by family.

Each public function here is an :data:`~predictor.trace.ops.OpHandle` (or builds one): it reads
the call's arguments and result (meta or fake tensors: shapes and dtypes, no values) and returns
:class:`~predictor.trace.ops.OpCount` parts in raw units. ``irene_*`` handles follow the IrEne
dataset's counting rules (fp32 bytes, 4 per element), ``native_*`` ones what executes (each
tensor's own element size). Which op gets which handle is decided in
:mod:`predictor.trace.features`; this module only prices calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from predictor.trace.ops import OpCall, OpCount, OpHandle

__all__ = [
    "irene_addmm",
    "irene_baddbmm",
    "irene_conv",
    "irene_elementwise",
    "irene_embedding",
    "irene_linear",
    "irene_matmul",
    "irene_softmax",
    "mha_parts",
    "native_addmm",
    "native_baddbmm",
    "native_cast",
    "native_contiguous",
    "native_conv",
    "native_copy",
    "native_create",
    "native_elementwise",
    "native_embedding",
    "native_linear",
    "native_matmul",
    "native_norm",
    "native_reduction",
    "native_softmax",
    "sdpa_parts",
]

_FP32 = 4


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


# -- elementwise, reductions, data movement ---------------------------------------------------


def irene_elementwise(flops: float, bytes_mult: float) -> OpHandle:
    """IrEne's rule: ``flops`` per output element and ``bytes_mult`` x 4 bytes per output element."""

    def handle(call: OpCall) -> list[OpCount]:
        n = _numel(call.out)
        return [OpCount(flops * n, bytes_mult * _FP32 * n)]

    return handle


def native_elementwise(flops: float) -> OpHandle:
    """``flops`` per output element; bytes = every input tensor read once + outputs written."""

    def handle(call: OpCall) -> list[OpCount]:
        outs = _out_tensors(call.out)
        n = int(outs[0].numel()) if outs else 0
        return [OpCount(flops * n, _sum_nbytes(call.tensors()) + _sum_nbytes(outs))]

    return handle


def native_reduction(flops_per_input: float) -> OpHandle:
    def handle(call: OpCall) -> list[OpCount]:
        src = _first_tensor(call.args)
        n = 0 if src is None else int(src.numel())
        return [OpCount(flops_per_input * n, _nbytes(src) + _sum_nbytes(_out_tensors(call.out)))]

    return handle


def native_copy(call: OpCall) -> list[OpCount]:
    """A copy: no arithmetic, the output written and as many bytes read."""
    written = _sum_nbytes(_out_tensors(call.out))
    return [OpCount(0.0, 2.0 * written)]


def native_create(call: OpCall) -> list[OpCount]:
    """A new tensor filled in place: written once."""
    return [OpCount(0.0, _sum_nbytes(_out_tensors(call.out)))]


def native_contiguous(call: OpCall) -> list[OpCount]:
    src = _first_tensor(call.args)
    if src is None or src.is_contiguous():
        return []
    return [OpCount(0.0, 2.0 * _nbytes(src))]


def native_cast(call: OpCall) -> list[OpCount]:
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


def irene_matmul(call: OpCall) -> list[OpCount]:
    a, b, out = call.arg(0, "input"), call.arg(1, "other"), _first_tensor(call.out)
    if out is None:
        return []
    batch, n, k, p = _matmul_dims(a, b, out)
    return [OpCount(2.0 * batch * n * k * p, _FP32 * batch * (n * k + k * p + n * p), "MatMul")]


def native_matmul(call: OpCall) -> list[OpCount]:
    a, b, out = call.arg(0, "input"), call.arg(1, "other"), _first_tensor(call.out)
    if out is None:
        return []
    batch, n, k, p = _matmul_dims(a, b, out)
    return [OpCount(2.0 * batch * n * k * p, _nbytes(a) + _nbytes(b) + _nbytes(out), "MatMul")]


def irene_addmm(call: OpCall) -> list[OpCount]:
    m1, m2 = call.arg(1, "mat1"), call.arg(2, "mat2")
    n, m = int(m1.shape[0]), int(m1.shape[1])
    p = int(m2.shape[1])
    return [OpCount(2.0 * n * m * p, _FP32 * (n * m + m * p + n * p))]


def native_addmm(call: OpCall) -> list[OpCount]:
    bias, m1, m2 = call.arg(0, "input"), call.arg(1, "mat1"), call.arg(2, "mat2")
    n, m = int(m1.shape[0]), int(m1.shape[1])
    p = int(m2.shape[1])
    out = _first_tensor(call.out)
    return [
        OpCount(2.0 * n * m * p + n * p, _nbytes(bias) + _nbytes(m1) + _nbytes(m2) + _nbytes(out))
    ]


def native_baddbmm(call: OpCall) -> list[OpCount]:
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


def irene_baddbmm(call: OpCall) -> list[OpCount]:
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


def irene_linear(call: OpCall) -> list[OpCount]:
    x, _w, b, fin, fout = _linear_dims(call)
    return [
        _linear_cost(tuple(int(d) for d in x.shape[:-1]), fin, fout, b is not None, native=False)
    ]


def native_linear(call: OpCall) -> list[OpCount]:
    x, _w, b, fin, fout = _linear_dims(call)
    return [
        _linear_cost(
            tuple(int(d) for d in x.shape[:-1]), fin, fout, b is not None, True, x.element_size()
        )
    ]


# -- attention ------------------------------------------------------------------------------------


def mha_parts(call: OpCall, native: bool) -> list[OpCount]:
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


def sdpa_parts(call: OpCall, native: bool) -> list[OpCount]:
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


# -- softmax, embedding, normalisation, convolution ----------------------------------------------


def irene_softmax(call: OpCall) -> list[OpCount]:
    n = _numel(call.out)
    return [OpCount(5.0 * n, 3.0 * _FP32 * n, "Softmax")]


def native_softmax(call: OpCall) -> list[OpCount]:
    n = _numel(call.out)
    return [
        OpCount(
            5.0 * n,
            _nbytes(_first_tensor(call.args)) + _sum_nbytes(_out_tensors(call.out)),
            "Softmax",
        )
    ]


def irene_embedding(call: OpCall) -> list[OpCount]:
    idx = call.arg(0, "input")
    return [OpCount(0.0, _nbytes(idx) + _FP32 * _numel(call.out))]


def native_embedding(call: OpCall) -> list[OpCount]:
    idx = call.arg(0, "input")
    out = _first_tensor(call.out)
    return [OpCount(0.0, _nbytes(idx) + 2.0 * _nbytes(out))]


def native_norm(flops: float) -> OpHandle:
    def handle(call: OpCall) -> list[OpCount]:
        out = _first_tensor(call.out)
        n = 0 if out is None else int(out.numel())
        return [OpCount(flops * n, _sum_nbytes(call.tensors()) + _nbytes(out))]

    return handle


def native_conv(call: OpCall) -> list[OpCount]:
    """convNd: 2 x (output elements) x (in_channels / groups) x kernel size, + bias."""
    x, w, b = call.arg(0, "input"), call.arg(1, "weight"), call.arg(2, "bias")
    out = _first_tensor(call.out)
    if out is None:
        return []
    per_out = int(w[0].numel())
    flops = 2.0 * out.numel() * per_out + (out.numel() if b is not None else 0)
    return [OpCount(flops, _nbytes(x) + _nbytes(w) + _nbytes(b) + _nbytes(out))]


def irene_conv(call: OpCall) -> list[OpCount]:
    (part,) = native_conv(call) or [OpCount(0.0, 0.0)]
    x, w, b = call.arg(0, "input"), call.arg(1, "weight"), call.arg(2, "bias")
    elems = sum(
        int(t.numel()) for t in (x, w, b, _first_tensor(call.out)) if isinstance(t, torch.Tensor)
    )
    return [OpCount(part.flops, _FP32 * elems)]
