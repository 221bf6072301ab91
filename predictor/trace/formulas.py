"""The op formulas: what one call of an op costs, in FLOPs and bytes, by family.

Each public function here is an :data:`~predictor.trace.ops.OpHandle` (or builds one): it reads
the call's arguments and result (meta or fake tensors: shapes and dtypes, no values) and returns
:class:`~predictor.trace.ops.OpCount` parts in raw units, each tagged with its kernel class
(:mod:`predictor.trace.kernels`) and, for the parts that are ML nodes, the node's type
(``MatMul``, ``Linear``, ``Softmax`` ...). ``irene_*`` handles follow the IrEne dataset's
counting rules (fp32 bytes, 4 per element), ``native_*`` ones what executes (each tensor at its
own element size, read once per call: a weight is read once per forward of the op, whatever the
batch). Which op gets which handle is decided in :mod:`predictor.trace.features`; this module
only prices calls.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from predictor.trace.kernels import (
    BMM,
    COPY,
    ELEMENTWISE,
    EMBEDDING,
    GEMM,
    NORM,
    POOL,
    REDUCTION,
    SOFTMAX,
)
from predictor.trace.ops import OpCall, OpCount, OpHandle

__all__ = [
    "ACTIVATION_OPS",
    "conv_parts",
    "einsum_parts",
    "grouped_mm_parts",
    "irene_addmm",
    "irene_baddbmm",
    "irene_conv",
    "irene_elementwise",
    "irene_embedding",
    "irene_linear",
    "irene_matmul",
    "irene_norm",
    "irene_softmax",
    "is_weight",
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
    "native_getitem",
    "native_linear",
    "native_matmul",
    "native_norm",
    "native_reduction",
    "native_scatter",
    "native_softmax",
    "pool_handle",
    "sdpa_parts",
    "sort_handle",
    "topk_handle",
]

_FP32 = 4


# -- helpers ------------------------------------------------------------------------------------


def first_tensor(value: Any) -> torch.Tensor | None:
    """The first tensor in ``value`` (a tensor, or nested lists / tuples), else None."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)):
        for item in value:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def _numel(value: Any) -> int:
    t = first_tensor(value)
    return 0 if t is None else int(t.numel())


def _nbytes(t: Any) -> float:
    return float(t.numel() * t.element_size()) if isinstance(t, torch.Tensor) else 0.0


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


def is_weight(t: Any) -> bool:
    """Whether ``t`` is a parameter or a view of one (``self.weight.t()``, an expert's slice
    ``gate_up_proj[e]``): an operand the model holds, not an activation."""
    if isinstance(t, nn.Parameter):
        return True
    base = getattr(t, "_base", None) if isinstance(t, torch.Tensor) else None
    return isinstance(base, nn.Parameter)


def _product_kernel(*operands: Any) -> str:
    """``gemm`` when an operand is a weight, else ``bmm`` (a product of two activations)."""
    return GEMM if any(is_weight(t) for t in operands) else BMM


def tensor_shapes(*tensors: Any) -> tuple[tuple[int, ...], ...]:
    """The shapes of the tensors among ``tensors`` (anything else is skipped), as int tuples."""
    return tuple(tuple(int(d) for d in t.shape) for t in tensors if isinstance(t, torch.Tensor))


# -- elementwise, reductions, data movement ---------------------------------------------------


def irene_elementwise(flops: float, bytes_mult: float, kernel: str = ELEMENTWISE) -> OpHandle:
    """IrEne's rule: ``flops`` per output element and ``bytes_mult`` x 4 bytes per output element."""

    def handle(call: OpCall) -> list[OpCount]:
        n = _numel(call.out)
        return [OpCount(flops * n, bytes_mult * _FP32 * n, kernel=kernel)]

    return handle


def native_elementwise(flops: float, kernel: str = ELEMENTWISE) -> OpHandle:
    """``flops`` per output element; bytes = every input tensor read once + outputs written."""

    def handle(call: OpCall) -> list[OpCount]:
        outs = _out_tensors(call.out)
        n = int(outs[0].numel()) if outs else 0
        return [OpCount(flops * n, _sum_nbytes(call.tensors()) + _sum_nbytes(outs), kernel=kernel)]

    return handle


def native_reduction(flops_per_input: float) -> OpHandle:
    """``flops_per_input`` per input element; the input read once, the outputs written."""

    def handle(call: OpCall) -> list[OpCount]:
        src = first_tensor(call.args)
        n = 0 if src is None else int(src.numel())
        return [
            OpCount(
                flops_per_input * n,
                _nbytes(src) + _sum_nbytes(_out_tensors(call.out)),
                kernel=REDUCTION,
            )
        ]

    return handle


def native_copy(call: OpCall) -> list[OpCount]:
    """A copy: no arithmetic, the output written and as many bytes read."""
    written = _sum_nbytes(_out_tensors(call.out))
    return [OpCount(0.0, 2.0 * written, kernel=COPY)]


def native_create(call: OpCall) -> list[OpCount]:
    """A new tensor filled in place: written once."""
    return [OpCount(0.0, _sum_nbytes(_out_tensors(call.out)), kernel=COPY)]


def native_contiguous(call: OpCall) -> list[OpCount]:
    src = first_tensor(call.args)
    if src is None or src.is_contiguous():
        return []
    return [OpCount(0.0, 2.0 * _nbytes(src), kernel=COPY)]


def native_cast(call: OpCall) -> list[OpCount]:
    src = first_tensor(call.args)
    out = first_tensor(call.out)
    if src is None or out is None or out is src:
        return []
    return [OpCount(0.0, _nbytes(src) + _nbytes(out), kernel=COPY)]


def native_getitem(call: OpCall) -> list[OpCount]:
    """Indexing: a view (free) with basic indices; a gather (read + write of the result) when
    an index is a tensor (advanced indexing: ``hidden_states[token_idx]``)."""
    index = call.arg(1, "index")
    items = index if isinstance(index, tuple) else (index,)
    if not any(isinstance(i, torch.Tensor) for i in items):
        return []
    return [OpCount(0.0, 2.0 * _sum_nbytes(_out_tensors(call.out)), kernel=COPY)]


def native_scatter(call: OpCall) -> list[OpCount]:
    """``scatter`` / ``index_add`` / ``index_copy`` / ``masked_scatter`` ...: the source and
    index read, the written slots and the result; one FLOP per source element (an add)."""
    src = [t for t in call.tensors()[1:] if isinstance(t, torch.Tensor)]
    n = max((int(t.numel()) for t in src), default=0)
    return [OpCount(float(n), _sum_nbytes(src) + _sum_nbytes(_out_tensors(call.out)), kernel=COPY)]


def topk_handle(call: OpCall) -> list[OpCount]:
    """``topk``: one comparison per input element (a partial selection), the input read, the
    values and indices written."""
    src = first_tensor(call.args)
    n = 0 if src is None else int(src.numel())
    return [OpCount(float(n), _nbytes(src) + _sum_nbytes(_out_tensors(call.out)), kernel=REDUCTION)]


def sort_handle(call: OpCall) -> list[OpCount]:
    """``sort`` / ``argsort``: n log2(n) comparisons along the sorted dimension, the input read,
    the sorted values and / or indices written."""
    src = first_tensor(call.args)
    if src is None or src.numel() == 0:
        return []
    dim = call.arg(1, "dim", -1)
    length = int(src.shape[dim]) if src.dim() > 0 and isinstance(dim, int) else int(src.numel())
    flops = float(src.numel()) * max(math.log2(max(length, 2)), 1.0)
    return [OpCount(flops, _nbytes(src) + _sum_nbytes(_out_tensors(call.out)), kernel=REDUCTION)]


# -- linear algebra ---------------------------------------------------------------------------


def _matmul_dims(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> tuple[int, int, int, int]:
    """(batch, n, k, p) of ``a @ b`` with numpy broadcasting; 1-D operands as in torch.matmul."""
    k = int(a.shape[-1])
    n = int(a.shape[-2]) if a.dim() >= 2 else 1
    p = int(b.shape[-1]) if b.dim() >= 2 else 1
    batch = int(out.numel()) // max(n * p, 1)
    return batch, n, k, p


def irene_matmul(call: OpCall) -> list[OpCount]:
    a, b, out = call.arg(0, "input"), call.arg(1, "other"), first_tensor(call.out)
    if out is None:
        return []
    batch, n, k, p = _matmul_dims(a, b, out)
    return [
        OpCount(
            2.0 * batch * n * k * p,
            _FP32 * batch * (n * k + k * p + n * p),
            "MatMul",
            _product_kernel(a, b),
        )
    ]


def native_matmul(call: OpCall) -> list[OpCount]:
    a, b, out = call.arg(0, "input"), call.arg(1, "other"), first_tensor(call.out)
    if out is None:
        return []
    batch, n, k, p = _matmul_dims(a, b, out)
    return [
        OpCount(
            2.0 * batch * n * k * p,
            _nbytes(a) + _nbytes(b) + _nbytes(out),
            "MatMul",
            _product_kernel(a, b),
        )
    ]


def irene_addmm(call: OpCall) -> list[OpCount]:
    m1, m2 = call.arg(1, "mat1"), call.arg(2, "mat2")
    n, m = int(m1.shape[0]), int(m1.shape[1])
    p = int(m2.shape[1])
    return [OpCount(2.0 * n * m * p, _FP32 * (n * m + m * p + n * p), "Linear", GEMM)]


def native_addmm(call: OpCall) -> list[OpCount]:
    bias, m1, m2 = call.arg(0, "input"), call.arg(1, "mat1"), call.arg(2, "mat2")
    n, m = int(m1.shape[0]), int(m1.shape[1])
    p = int(m2.shape[1])
    out = first_tensor(call.out)
    return [
        OpCount(
            2.0 * n * m * p + n * p,
            _nbytes(bias) + _nbytes(m1) + _nbytes(m2) + _nbytes(out),
            "Linear",
            GEMM,
        )
    ]


def native_baddbmm(call: OpCall) -> list[OpCount]:
    bias, b1, b2 = call.arg(0, "input"), call.arg(1, "batch1"), call.arg(2, "batch2")
    out = first_tensor(call.out)
    if out is None:
        return []
    batch, n, k, p = _matmul_dims(b1, b2, out)
    return [
        OpCount(
            2.0 * batch * n * k * p + batch * n * p,
            _nbytes(bias) + _nbytes(b1) + _nbytes(b2) + _nbytes(out),
            "MatMul",
            _product_kernel(b1, b2),
        )
    ]


def irene_baddbmm(call: OpCall) -> list[OpCount]:
    b1, b2, out = call.arg(1, "batch1"), call.arg(2, "batch2"), first_tensor(call.out)
    if out is None:
        return []
    batch, n, k, p = _matmul_dims(b1, b2, out)
    return [
        OpCount(
            2.0 * batch * n * k * p,
            _FP32 * batch * (n * k + k * p + n * p),
            "MatMul",
            _product_kernel(b1, b2),
        )
    ]


def _linear_dims(call: OpCall) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, int, int]:
    x, w, b = call.arg(0, "input"), call.arg(1, "weight"), call.arg(2, "bias")
    return x, w, b, int(w.shape[-1]), int(w.shape[0]) if w.dim() == 2 else 1


def _linear_cost(
    lead: tuple[int, ...],
    fin: int,
    fout: int,
    bias: bool,
    native: bool,
    size: int = _FP32,
    wsize: int | None = None,
) -> OpCount:
    """A linear layer on an input of shape ``(*lead, fin)`` (a ``gemm`` ML node ``Linear``).

    irene: 2-D inputs ran as addmm (bias ignored), others as matmul + add_(bias) with the
    weight charged once per batch row (torch 1.x, IrEne's counter); native: each tensor read or
    written once, activations at ``size`` bytes per element, the weight and bias at ``wsize``
    (default ``size``).
    """
    n = 1
    for d in lead:
        n *= d
    if native:
        ws = size if wsize is None else wsize
        flops = 2.0 * n * fin * fout + (n * fout if bias else 0)
        nbytes = size * (n * fin + n * fout) + ws * (fin * fout + (fout if bias else 0))
        return OpCount(flops, nbytes, "Linear", GEMM)
    if len(lead) <= 1:
        return OpCount(
            2.0 * n * fin * fout, _FP32 * (n * fin + fin * fout + n * fout), "Linear", GEMM
        )
    seq = lead[-1]
    batch = n // max(seq, 1)
    flops = 2.0 * n * fin * fout
    nbytes = _FP32 * batch * (seq * fin + fin * fout + seq * fout)
    if bias:
        flops += n * fout
        nbytes += 2 * _FP32 * n * fout
    return OpCount(flops, nbytes, "Linear", GEMM)


def irene_linear(call: OpCall) -> list[OpCount]:
    x, _w, b, fin, fout = _linear_dims(call)
    return [
        _linear_cost(tuple(int(d) for d in x.shape[:-1]), fin, fout, b is not None, native=False)
    ]


def native_linear(call: OpCall) -> list[OpCount]:
    x, w, b, fin, fout = _linear_dims(call)
    return [
        _linear_cost(
            tuple(int(d) for d in x.shape[:-1]),
            fin,
            fout,
            b is not None,
            True,
            x.element_size(),
            w.element_size(),
        )
    ]


_EINSUM_TERM = re.compile(r"[^a-zA-Z.]")


def einsum_parts(native: bool) -> OpHandle:
    """``torch.einsum``: a product of two operands is 2 x (product of every index's size)
    FLOPs (a multiply-add per point of the joint index space), a ``MatMul`` node (``gemm`` with
    a weight operand, else ``bmm``); more operands are priced pairwise, left to right; one
    operand is a reduction or a permutation."""

    def handle(call: OpCall) -> list[OpCount]:
        eq = (
            call.args[0]
            if call.args and isinstance(call.args[0], str)
            else call.kwargs.get("equation")
        )
        operands = [t for t in call.tensors()]
        out = first_tensor(call.out)
        if not isinstance(eq, str) or out is None or not operands or "..." in eq:
            if out is None:
                return []
            # ellipses: charge the output's size times the contracted length of the first pair
            flops = 2.0 * float(out.numel()) * (int(operands[0].shape[-1]) if operands else 1)
            nbytes = _sum_nbytes(operands) + _nbytes(out)
            size = _FP32 * (sum(int(t.numel()) for t in operands) + int(out.numel()))
            return [
                OpCount(flops, nbytes if native else size, "MatMul", _product_kernel(*operands))
            ]
        lhs = eq.replace(" ", "").split("->")[0]
        terms = lhs.split(",")
        sizes: dict[str, int] = {}
        for term, t in zip(terms, operands, strict=False):
            letters = _EINSUM_TERM.sub("", term)
            for letter, dim in zip(letters, t.shape, strict=False):
                sizes[letter] = max(sizes.get(letter, 1), int(dim))
        if len(operands) == 1:
            return [
                OpCount(
                    float(operands[0].numel()),
                    _nbytes(operands[0]) + _nbytes(out)
                    if native
                    else _FP32 * (operands[0].numel() + out.numel()),
                    kernel=REDUCTION,
                )
            ]
        flops = 0.0
        seen = set(_EINSUM_TERM.sub("", terms[0]))
        for term in terms[1:]:
            seen |= set(_EINSUM_TERM.sub("", term))
            flops += 2.0 * math.prod(sizes[c] for c in seen)
        nbytes = (
            _sum_nbytes(operands) + _nbytes(out)
            if native
            else _FP32 * (sum(int(t.numel()) for t in operands) + int(out.numel()))
        )
        return [OpCount(flops, nbytes, "MatMul", _product_kernel(*operands))]

    return handle


def grouped_mm_parts(native: bool) -> OpHandle:
    """``torch._grouped_mm`` / ``F.grouped_mm`` / HF's ``grouped_mm_fallback`` on a 2-D input
    ``(S, K)`` sorted by group and 3-D weights ``(G, K, N)``: every row goes through one group's
    GEMM, so 2 x S x K x N FLOPs; the input, every group's weight and the output once
    (a ``gemm`` node ``GroupedMM``)."""

    def handle(call: OpCall) -> list[OpCount]:
        x, w = call.arg(0, "input"), call.arg(1, "weight", call.kwargs.get("mat_b"))
        out = first_tensor(call.out)
        if not isinstance(x, torch.Tensor) or not isinstance(w, torch.Tensor) or out is None:
            return []
        rows = int(x.numel()) // max(int(x.shape[-1]), 1)
        flops = 2.0 * rows * int(x.shape[-1]) * int(out.shape[-1])
        if native:
            nbytes = _nbytes(x) + _nbytes(w) + _nbytes(out)
        else:
            nbytes = _FP32 * (x.numel() + w.numel() + out.numel())
        return [OpCount(flops, float(nbytes), "GroupedMM", GEMM)]

    return handle


# -- attention ------------------------------------------------------------------------------------


def mha_parts(call: OpCall, native: bool) -> list[OpCount]:
    """``F.multi_head_attention_forward`` (nn.MultiheadAttention) as the ops it runs: the input
    projection (one packed GEMM for self-attention, where query, key and value are one tensor;
    three otherwise), q scaling, ``q @ k^T``, mask add, softmax, ``p @ v``, output projection.
    Inputs are (L, N, E) or unbatched (L, E)."""
    q, k, v = call.arg(0, "query"), call.arg(1, "key"), call.arg(2, "value")
    heads = int(call.arg(4, "num_heads"))
    in_w = call.arg(5, "in_proj_weight")
    in_bias = call.arg(6, "in_proj_bias") is not None
    out_bias = call.arg(12, "out_proj_bias") is not None
    mask = call.arg(16, "attn_mask")
    e = int(q.shape[-1])
    lq, s = int(q.shape[0]), int(k.shape[0])
    n = int(q.shape[1]) if q.dim() == 3 else 1
    d = e // max(heads, 1)
    size = q.element_size() if native else _FP32
    wsize = in_w.element_size() if native and isinstance(in_w, torch.Tensor) else size
    q_lead = (lq, n) if q.dim() == 3 else (lq,)
    k_lead = (s, n) if k.dim() == 3 else (s,)
    big, scores = n * heads, n * heads * lq * s
    if q is k and k is v:
        parts = [_linear_cost(q_lead, e, 3 * e, in_bias, native, size, wsize)]
    else:
        parts = [
            _linear_cost(q_lead, e, e, in_bias, native, size, wsize),
            _linear_cost(k_lead, e, e, in_bias, native, size, wsize),
            _linear_cost(k_lead, e, e, in_bias, native, size, wsize),
        ]
    parts += [
        OpCount(float(lq * n * e), 3.0 * size * lq * n * e, kernel=ELEMENTWISE),  # q scaling
        OpCount(2.0 * big * lq * d * s, size * big * (lq * d + d * s + lq * s), "MatMul", BMM),
    ]
    if isinstance(mask, torch.Tensor):
        parts.append(OpCount(float(scores), 2.0 * size * scores, kernel=ELEMENTWISE))
    parts += [
        OpCount(5.0 * scores, (2.0 if native else 3.0) * size * scores, "Softmax", SOFTMAX),
        OpCount(2.0 * big * lq * s * d, size * big * (lq * s + s * d + lq * d), "MatMul", BMM),
        _linear_cost(q_lead, e, e, out_bias, native, size, wsize),
    ]
    return parts


def sdpa_parts(call: OpCall, native: bool) -> list[OpCount]:
    """scaled_dot_product_attention as the eager code it stands for:
    ``q @ k^T``, scale (mul), mask (add, when a mask tensor is given), softmax, ``p @ v``."""
    q, k, v = call.arg(0, "query"), call.arg(1, "key"), call.arg(2, "value")
    mask = call.arg(3, "attn_mask")
    out = first_tensor(call.out)
    if out is None:
        return []
    big = int(q.numel()) // max(int(q.shape[-1]) * int(q.shape[-2]), 1)
    lq, e = int(q.shape[-2]), int(q.shape[-1])
    s, ev = int(k.shape[-2]), int(v.shape[-1])
    scores = big * lq * s
    size = q.element_size() if native else _FP32
    parts = [
        OpCount(2.0 * big * lq * e * s, size * big * (lq * e + e * s + lq * s), "MatMul", BMM),
        OpCount(float(scores), 3.0 * size * scores, kernel=ELEMENTWISE),
    ]
    if isinstance(mask, torch.Tensor):
        parts.append(OpCount(float(scores), 2.0 * size * scores, kernel=ELEMENTWISE))
    parts.append(
        OpCount(
            5.0 * scores,
            3.0 * size * scores if not native else 2.0 * size * scores,
            "Softmax",
            SOFTMAX,
        )
    )
    parts.append(
        OpCount(2.0 * big * lq * s * ev, size * big * (lq * s + s * ev + lq * ev), "MatMul", BMM)
    )
    return parts


# -- softmax, embedding, normalisation, convolution, pooling ---------------------------------------


def irene_softmax(call: OpCall) -> list[OpCount]:
    n = _numel(call.out)
    return [OpCount(5.0 * n, 3.0 * _FP32 * n, "Softmax", SOFTMAX)]


def native_softmax(call: OpCall) -> list[OpCount]:
    n = _numel(call.out)
    return [
        OpCount(
            5.0 * n,
            _nbytes(first_tensor(call.args)) + _sum_nbytes(_out_tensors(call.out)),
            "Softmax",
            SOFTMAX,
        )
    ]


def irene_embedding(call: OpCall) -> list[OpCount]:
    idx = call.arg(0, "input")
    return [OpCount(0.0, _nbytes(idx) + _FP32 * _numel(call.out), "Embedding", EMBEDDING)]


def native_embedding(call: OpCall) -> list[OpCount]:
    """A gather: the indices read, each gathered row read from the table and written."""
    idx = call.arg(0, "input")
    out = first_tensor(call.out)
    return [OpCount(0.0, _nbytes(idx) + 2.0 * _nbytes(out), "Embedding", EMBEDDING)]


def irene_norm(flops: float, bytes_mult: float, primitive: str, kernel: str = NORM) -> OpHandle:
    """IrEne's elementwise rule for a normalisation (``layer_norm``: 8 FLOPs and 4 x 4 bytes
    per element), a node ``primitive`` of class ``kernel``."""

    def handle(call: OpCall) -> list[OpCount]:
        n = _numel(call.out)
        return [OpCount(flops * n, bytes_mult * _FP32 * n, primitive, kernel)]

    return handle


def native_norm(flops: float, primitive: str, kernel: str = NORM) -> OpHandle:
    """``flops`` per output element; every tensor argument (input, weight, bias, running
    statistics) read once, the output written: a node ``primitive`` of class ``kernel``."""

    def handle(call: OpCall) -> list[OpCount]:
        out = first_tensor(call.out)
        n = 0 if out is None else int(out.numel())
        return [OpCount(flops * n, _sum_nbytes(call.tensors()) + _nbytes(out), primitive, kernel)]

    return handle


def conv_parts(call: OpCall, native: bool, primitive: str) -> list[OpCount]:
    """convNd as the implicit GEMM it runs (a ``gemm`` node ``primitive``): 2 x (output
    elements) x (input channels / groups) x kernel size FLOPs, + bias; the input, weight, bias
    and output once (native at their element sizes; irene 4 bytes per element)."""
    x, w, b = call.arg(0, "input"), call.arg(1, "weight"), call.arg(2, "bias")
    out = first_tensor(call.out)
    if out is None or not isinstance(w, torch.Tensor):
        return []
    per_out = (
        int(w[0].numel())
        if "transpose" not in call.name
        else int(w.numel()) // max(int(w.shape[0]), 1)
    )
    flops = 2.0 * out.numel() * per_out + (out.numel() if b is not None else 0)
    if native:
        nbytes = _nbytes(x) + _nbytes(w) + _nbytes(b) + _nbytes(out)
    else:
        elems = sum(int(t.numel()) for t in (x, w, b, out) if isinstance(t, torch.Tensor))
        nbytes = float(_FP32 * elems)
    return [OpCount(flops, nbytes, primitive, GEMM)]


def native_conv(call: OpCall) -> list[OpCount]:
    return conv_parts(call, True, "Conv")


def irene_conv(call: OpCall) -> list[OpCount]:
    return conv_parts(call, False, "Conv")


def pool_handle(native: bool, primitive: str) -> OpHandle:
    """Pooling (a ``pool`` node ``primitive``): one FLOP per input element read into a window
    (windows may overlap: output elements x window size when the window is known, else the
    input's elements); the input read and the output written."""

    def handle(call: OpCall) -> list[OpCount]:
        x = first_tensor(call.args)
        outs = _out_tensors(call.out)
        if x is None or not outs:
            return []
        kernel_size = call.arg(1, "kernel_size")
        dims = int(call.name[-2]) if call.name[-2:-1].isdigit() else 1
        if "adaptive" in call.name or kernel_size is None:
            flops = float(x.numel())
        elif isinstance(kernel_size, int):
            flops = float(outs[0].numel() * kernel_size**dims)
        elif isinstance(kernel_size, Sequence):
            flops = float(outs[0].numel() * math.prod(int(k) for k in kernel_size))
        else:
            flops = float(x.numel())
        if native:
            nbytes = _nbytes(x) + _sum_nbytes(outs)
        else:
            nbytes = float(_FP32 * (x.numel() + outs[0].numel()))
        return [OpCount(flops, nbytes, primitive, POOL)]

    return handle


#: Activation functions: their own ops are tagged ``activation`` (a module's own ops, never
#: nodes: functional activations are not ML primitives, as in IrEne's trees).
ACTIVATION_OPS: frozenset[str] = frozenset(
    {
        "gelu", "tanh", "relu", "sigmoid", "silu", "mish", "hardtanh", "relu6", "leaky_relu",
        "elu", "selu", "celu", "softplus", "hardswish", "hardsigmoid", "glu", "softsign",
        "logsigmoid", "prelu", "rrelu", "tanhshrink",
    }
)  # fmt: skip
