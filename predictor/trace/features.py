"""Which op gets which formula in each counting mode: the default op registry.

The tracer (:mod:`predictor.trace.tracer`) prices every torch-function-level call with the
handle an :class:`~predictor.trace.ops.OpRegistry` holds for its normalised name; this module
builds the default registry from the tables below and the formulas of
:mod:`predictor.trace.formulas`. Every part carries its kernel class
(:mod:`predictor.trace.kernels`); a part with ``primitive`` set (``MatMul``, ``Linear``,
``Softmax``, ``LayerNorm``, ``Embedding``, ``Conv2d``, ``MaxPool2d`` ...) becomes a functional-op
ML node when called inside a (non-primitive) module: ``F.linear`` / ``addmm`` / ``einsum`` /
``bmm`` / grouped GEMMs, the projections inside ``F.multi_head_attention_forward``, SDPA's two
products and softmax, ``F.layer_norm`` / ``F.rms_norm``, ``F.embedding``, ``F.conv*``, pools.
Elementwise ops (activation functions included), reductions and copies are the module's own ops.

Two counting modes:

- ``irene`` reproduces the counting rules behind the IrEne dataset (irene-method.md): a multiply-
  add counts 2, bytes are fp32 (4 per element) except embedding indices, ``F.linear`` on a 3-D
  input is charged like the old ``matmul`` + ``add_`` (the weight once per batch row), data
  movement (views, masks, ``where``, ``cat``, dtype casts, dropout, ``rsqrt``) is not counted,
  as IrEne had no counter for it.
- ``native`` counts what executes: the same arithmetic per element, bytes at each tensor's own
  element size (dtype-aware), every tensor read once per call (a weight once per forward of its
  op, whatever the batch), and copies, casts, masks and gathers charged. The shipped profiles are
  trained on trees counted this way.

An op with no handle is never counted as 0 silently: the tracer lists it on the tree
(``EnergyTree.unsupported_ops``). A new op is one entry in :func:`_build_defaults`; for one
trace only, override it on a copy: ``build_tree(model, inputs, ops={"cumprod": handle})``.
"""

from __future__ import annotations

from collections.abc import Mapping

from predictor.trace.formulas import (
    ACTIVATION_OPS,
    conv_parts,
    einsum_parts,
    grouped_mm_parts,
    irene_addmm,
    irene_baddbmm,
    irene_elementwise,
    irene_embedding,
    irene_linear,
    irene_matmul,
    irene_norm,
    irene_softmax,
    mha_parts,
    native_addmm,
    native_baddbmm,
    native_cast,
    native_contiguous,
    native_copy,
    native_create,
    native_elementwise,
    native_embedding,
    native_getitem,
    native_linear,
    native_matmul,
    native_norm,
    native_reduction,
    native_scatter,
    native_softmax,
    pool_handle,
    sdpa_parts,
    sort_handle,
    topk_handle,
)
from predictor.trace.kernels import ACTIVATION, ELEMENTWISE
from predictor.trace.ops import OpCall, OpCount, OpHandle, OpRegistry, no_cost

__all__ = ["FEATURES_VERSION", "default_ops", "resolve_ops"]

#: Bump when a formula changes: profiles trained on trees of another version are suspect.
#: 2: kernel classes on every part; functional linear / norm / embedding / conv / pool calls
#: are ML nodes; native bytes at each tensor's own element size; advanced indexing, scatters,
#: topk, sort, einsum and grouped GEMMs priced.
FEATURES_VERSION = "2"

#: No arithmetic and no data movement in either mode: shapes, views, metadata.
_FREE: tuple[str, ...] = (
    "size", "dim", "ndimension", "numel", "stride", "storage_offset", "data_ptr", "element_size",
    "is_contiguous", "is_floating_point", "is_complex", "get_device", "nelement",
    "view", "view_as", "reshape", "reshape_as", "transpose", "swapaxes", "permute", "t", "T",
    "unsqueeze", "squeeze", "expand", "expand_as", "broadcast_to", "flatten", "unflatten",
    "split", "split_with_sizes", "chunk", "unbind", "narrow", "select", "movedim",
    "as_strided", "diagonal", "detach", "requires_grad", "len", "iter", "format", "repr",
    "index", "hash", "contains", "dropout", "alpha_dropout",
    "feature_alpha_dropout", "dropout1d", "dropout2d", "dropout3d", "identity", "is_nonzero",
    "result_type", "can_cast", "promote_types", "is_tensor", "is_grad_enabled", "tolist", "item",
    "setstate", "reduce_ex", "deepcopy", "get", "set_", "unsafe_view", "view_as_real",
    "view_as_complex", "align_to", "rename", "new_tensor", "requires_grad_", "bool_",
    "is_inference", "is_leaf", "is_signed", "dim_order", "untyped_storage", "storage",
    "record_stream", "pin_memory", "share_memory_", "is_pinned", "is_shared", "cpu", "cuda",
)  # fmt: skip

#: IrEne had no counter for these (data movement, masks, casts, creation, index bookkeeping):
#: 0 in irene mode; native mode charges the copy or the write.
_MOVES: dict[str, OpHandle] = {
    "contiguous": native_contiguous,
    "clone": native_copy,
    "to": native_cast,
    "type": native_cast,
    "type_as": native_cast,
    "float": native_cast,
    "half": native_cast,
    "bfloat16": native_cast,
    "double": native_cast,
    "long": native_cast,
    "int": native_cast,
    "bool": native_cast,
    "cat": native_copy,
    "concat": native_copy,
    "concatenate": native_copy,
    "stack": native_copy,
    "hstack": native_copy,
    "vstack": native_copy,
    "repeat": native_copy,
    "repeat_interleave": native_copy,
    "tile": native_copy,
    "copy": native_copy,
    "setitem": native_copy,
    "getitem": native_getitem,
    "gather": native_copy,
    "index_select": native_copy,
    "masked_select": native_copy,
    "take_along_dim": native_copy,
    "take": native_copy,
    "roll": native_copy,
    "flip": native_copy,
    "pad": native_copy,
    "triu": native_copy,
    "tril": native_copy,
    "unfold": native_copy,
    "fold": native_copy,
    "pixel_shuffle": native_copy,
    "pixel_unshuffle": native_copy,
    "one_hot": native_create,
    "scatter": native_scatter,
    "scatter_add": native_scatter,
    "scatter_reduce": native_scatter,
    "index_add": native_scatter,
    "index_copy": native_scatter,
    "index_fill": native_scatter,
    "index_put": native_scatter,
    "masked_scatter": native_scatter,
    "put": native_scatter,
    "where": native_elementwise(1),
    "masked_fill": native_elementwise(1),
    "clamp": native_elementwise(1),
    "clip": native_elementwise(1),
    "clamp_min": native_elementwise(1),
    "clamp_max": native_elementwise(1),
    "rsqrt": native_elementwise(1),
    "nan_to_num": native_elementwise(1),
    "arange": native_create,
    "linspace": native_create,
    "zeros": native_create,
    "ones": native_create,
    "full": native_create,
    "empty": native_create,
    "tensor": native_create,
    "as_tensor": native_create,
    "zeros_like": native_create,
    "ones_like": native_create,
    "full_like": native_create,
    "empty_like": native_create,
    "new_zeros": native_create,
    "new_ones": native_create,
    "new_full": native_create,
    "new_empty": native_create,
    "fill": native_create,
    "zero": native_create,
    "rand": native_create,
    "randn": native_create,
    "rand_like": native_create,
    "randn_like": native_create,
    "normal": native_create,
    "uniform": native_create,
    "bernoulli": native_create,
    "eq": native_elementwise(1),
    "ne": native_elementwise(1),
    "lt": native_elementwise(1),
    "le": native_elementwise(1),
    "gt": native_elementwise(1),
    "ge": native_elementwise(1),
    "isclose": native_elementwise(1),
    "logical_not": native_elementwise(1),
    "logical_and": native_elementwise(1),
    "logical_or": native_elementwise(1),
    "logical_xor": native_elementwise(1),
    "bitwise_not": native_elementwise(1),
    "bitwise_and": native_elementwise(1),
    "bitwise_or": native_elementwise(1),
    "bitwise_xor": native_elementwise(1),
    "isinf": native_elementwise(1),
    "isnan": native_elementwise(1),
    "isfinite": native_elementwise(1),
    "any": native_reduction(1),
    "all": native_reduction(1),
    "argmax": native_reduction(1),
    "argmin": native_reduction(1),
    "count_nonzero": native_reduction(1),
    "nonzero": native_reduction(1),
    "cumsum": native_elementwise(1),
    "cumprod": native_elementwise(1),
    "diff": native_elementwise(1),
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
    "exp2": (1, 2, 1),
    "expm1": (1, 2, 1),
    "log": (1, 2, 1),
    "log1p": (1, 2, 1),
    "log2": (1, 2, 1),
    "log10": (1, 2, 1),
    "sqrt": (1, 2, 1),
    "square": (1, 2, 1),
    "reciprocal": (1, 2, 1),
    "sin": (1, 2, 1),
    "cos": (1, 2, 1),
    "atan": (1, 2, 1),
    "atan2": (1, 2, 1),
    "erf": (1, 2, 1),
    "sign": (1, 2, 1),
    "sgn": (1, 2, 1),
    "round": (1, 2, 1),
    "floor": (1, 2, 1),
    "ceil": (1, 2, 1),
    "trunc": (1, 2, 1),
    "frac": (1, 2, 1),
    "maximum": (1, 2, 1),
    "minimum": (1, 2, 1),
    "fmax": (1, 2, 1),
    "fmin": (1, 2, 1),
    "logaddexp": (3, 2, 3),
    "hypot": (3, 2, 3),
    "xlogy": (2, 2, 2),
    "outer": (1, 2, 1),
    "sigmoid": (4, 2, 4),
    "silu": (5, 2, 5),
    "mish": (6, 2, 6),
    "hardtanh": (1, 2, 1),
    "relu6": (1, 2, 1),
    "leaky_relu": (2, 2, 2),
    "prelu": (2, 2, 2),
    "rrelu": (2, 2, 2),
    "elu": (4, 2, 4),
    "celu": (4, 2, 4),
    "selu": (4, 2, 4),
    "softplus": (4, 2, 4),
    "softsign": (3, 2, 3),
    "logsigmoid": (5, 2, 5),
    "tanhshrink": (5, 2, 5),
    "hardswish": (4, 2, 4),
    "hardsigmoid": (3, 2, 3),
    "glu": (5, 2, 5),
    "lerp": (2, 3, 2),
    "interpolate": (1, 2, 1),
    "upsample": (1, 2, 1),
}
_REDUCTIONS: tuple[str, ...] = (
    "sum",
    "mean",
    "max",
    "min",
    "amax",
    "amin",
    "aminmax",
    "prod",
    "norm",
    "var",
    "std",
    "var_mean",
    "std_mean",
    "logsumexp",
    "nansum",
    "nanmean",
    "median",
    "histc",
    "bincount",
)
#: Normalisations: (op, node type, IrEne FLOPs per element, IrEne bytes multiple, native FLOPs).
_NORMS: tuple[tuple[str, str, float, float, float], ...] = (
    ("layer_norm", "LayerNorm", 8, 4, 8),
    ("rms_norm", "RMSNorm", 4, 3, 4),
    ("group_norm", "GroupNorm", 8, 4, 8),
    ("instance_norm", "InstanceNorm", 8, 4, 8),
    ("local_response_norm", "LocalResponseNorm", 8, 4, 8),
)
_CONVS: dict[str, str] = {
    "conv1d": "Conv1d",
    "conv2d": "Conv2d",
    "conv3d": "Conv3d",
    "conv_transpose1d": "ConvTranspose1d",
    "conv_transpose2d": "ConvTranspose2d",
    "conv_transpose3d": "ConvTranspose3d",
}
_POOL_OPS: dict[str, str] = {
    f"{kind}{d}d": f"{title}{d}d"
    for kind, title in (
        ("max_pool", "MaxPool"),
        ("avg_pool", "AvgPool"),
        ("adaptive_avg_pool", "AdaptiveAvgPool"),
        ("adaptive_max_pool", "AdaptiveMaxPool"),
        ("lp_pool", "LPPool"),
    )
    for d in (1, 2, 3)
}
_POOL_OPS.update({f"max_pool{d}d_with_indices": f"MaxPool{d}d" for d in (1, 2, 3)})


def _conv(native: bool, primitive: str) -> OpHandle:
    def handle(call: OpCall) -> list[OpCount]:
        return conv_parts(call, native, primitive)

    return handle


def _build_defaults() -> OpRegistry:
    reg = OpRegistry()
    set_op_handle = reg.set_op_handle
    for name in _FREE:
        set_op_handle(name, no_cost)
    for name, native in _MOVES.items():
        set_op_handle(name, no_cost, "irene")
        set_op_handle(name, native, "native")
    for name, (flops, mult, native_flops) in _ARITH.items():
        kernel = ACTIVATION if name in ACTIVATION_OPS else ELEMENTWISE
        set_op_handle(name, irene_elementwise(flops, mult, kernel), "irene")
        set_op_handle(
            name,
            native_elementwise(native_flops, kernel) if name != "clone" else native_copy,
            "native",
        )
    for name in _REDUCTIONS:
        set_op_handle(name, irene_elementwise(1, 1, "reduction"), "irene")
        set_op_handle(name, native_reduction(1), "native")
    for name in ("topk",):
        set_op_handle(name, topk_handle)
    for name in ("sort", "argsort", "msort"):
        set_op_handle(name, sort_handle)
    set_op_handle("linear", irene_linear, "irene")
    set_op_handle("linear", native_linear, "native")
    for name in ("matmul", "bmm", "mm", "mv", "dot", "vdot"):
        set_op_handle(name, irene_matmul, "irene")
        set_op_handle(name, native_matmul, "native")
    set_op_handle("addmm", irene_addmm, "irene")
    set_op_handle("addmm", native_addmm, "native")
    set_op_handle("baddbmm", irene_baddbmm, "irene")
    set_op_handle("baddbmm", native_baddbmm, "native")
    set_op_handle("einsum", einsum_parts(native=False), "irene")
    set_op_handle("einsum", einsum_parts(native=True), "native")
    for name in ("_grouped_mm", "grouped_mm", "grouped_mm_fallback"):
        set_op_handle(name, grouped_mm_parts(native=False), "irene")
        set_op_handle(name, grouped_mm_parts(native=True), "native")
    set_op_handle("softmax", irene_softmax, "irene")
    set_op_handle("softmax", native_softmax, "native")
    set_op_handle("log_softmax", irene_softmax, "irene")
    set_op_handle("log_softmax", native_softmax, "native")
    for name, primitive, flops, mult, native_flops in _NORMS:
        set_op_handle(name, irene_norm(flops, mult, primitive), "irene")
        set_op_handle(name, native_norm(native_flops, primitive), "native")
    # eval-mode batch norm: a per-channel scale and shift, an elementwise pass (kernels.py)
    set_op_handle("batch_norm", irene_norm(2, 2, "BatchNorm", ACTIVATION), "irene")
    set_op_handle("batch_norm", native_norm(2, "BatchNorm", ACTIVATION), "native")
    set_op_handle("embedding", irene_embedding, "irene")
    set_op_handle("embedding", native_embedding, "native")
    set_op_handle("scaled_dot_product_attention", lambda c: sdpa_parts(c, native=False), "irene")
    set_op_handle("scaled_dot_product_attention", lambda c: sdpa_parts(c, native=True), "native")
    set_op_handle("multi_head_attention_forward", lambda c: mha_parts(c, native=False), "irene")
    set_op_handle("multi_head_attention_forward", lambda c: mha_parts(c, native=True), "native")
    for name, primitive in _CONVS.items():
        set_op_handle(name, _conv(False, primitive), "irene")
        set_op_handle(name, _conv(True, primitive), "native")
    for name, primitive in _POOL_OPS.items():
        set_op_handle(name, pool_handle(False, primitive), "irene")
        set_op_handle(name, pool_handle(True, primitive), "native")
    return reg


_DEFAULTS = _build_defaults()


def default_ops() -> OpRegistry:
    """A fresh copy of the default registry: every op above, in both counting modes.

    Change the copy (``default_ops().set_op_handle("cumprod", handle)``) and hand it to
    ``build_tree(..., ops=...)``; the defaults themselves never change.
    """
    return _DEFAULTS.copy()


def resolve_ops(ops: OpRegistry | Mapping[str, OpHandle] | None) -> OpRegistry:
    """The registry one trace works on, from what its caller gave: None (the defaults), an
    :class:`OpRegistry` (copied) or a mapping ``{op name: handle}`` laid over the defaults in
    every counting mode."""
    if ops is None:
        return default_ops()
    if isinstance(ops, OpRegistry):
        return ops.copy()
    if isinstance(ops, Mapping):
        registry = default_ops()
        for op, handle in ops.items():
            registry.set_op_handle(op, handle)
        return registry
    raise TypeError(
        "ops= takes an OpRegistry (e.g. default_ops().set_op_handle(...)) or a mapping of op "
        f"names to handles (got a {type(ops).__name__})"
    )
