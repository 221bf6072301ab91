"""Which op gets which formula in each counting mode: the default op registry.

The tracer (:mod:`predictor.trace.tracer`) prices every torch-function-level call with the
handle an :class:`~predictor.trace.ops.OpRegistry` holds for its normalised name; this module
builds the default registry from the tables below and the formulas of
:mod:`predictor.trace.formulas`. A part with ``primitive`` set ("MatMul", "Softmax") becomes a
functional-op ML node when called inside a (non-primitive) module.

Two counting modes:

- ``irene`` reproduces the counting rules behind the IrEne dataset (irene-method.md): a multiply-
  add counts 2, bytes are fp32 (4 per element) except embedding indices, ``F.linear`` on a 3-D
  input is charged like the old ``matmul`` + ``add_`` (the weight once per batch row), data
  movement (views, masks, ``where``, ``cat``, dtype casts, dropout, ``rsqrt``) is not counted,
  as IrEne had no counter for it.
- ``native`` counts what executes: the same arithmetic per element, bytes at each tensor's real
  element size, every tensor read once (weights too), and copies charged.

An op with no handle is never counted as 0 silently: the tracer lists it on the tree
(``EnergyTree.unsupported_ops``). A new op is one entry in :func:`_build_defaults`; for one
trace only, override it on a copy: ``build_tree(model, inputs, ops={"cumprod": handle})``.
"""

from __future__ import annotations

from collections.abc import Mapping

from predictor.trace.formulas import (
    irene_addmm,
    irene_baddbmm,
    irene_conv,
    irene_elementwise,
    irene_embedding,
    irene_linear,
    irene_matmul,
    irene_softmax,
    mha_parts,
    native_addmm,
    native_baddbmm,
    native_cast,
    native_contiguous,
    native_conv,
    native_copy,
    native_create,
    native_elementwise,
    native_embedding,
    native_linear,
    native_matmul,
    native_norm,
    native_reduction,
    native_softmax,
    sdpa_parts,
)
from predictor.trace.ops import OpHandle, OpRegistry, no_cost

__all__ = ["FEATURES_VERSION", "default_ops", "resolve_ops"]

#: Bump when a formula changes: profiles trained on trees of another version are suspect.
FEATURES_VERSION = "1"

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
    "repeat": native_copy,
    "repeat_interleave": native_copy,
    "tile": native_copy,
    "copy": native_copy,
    "setitem": native_copy,
    "gather": native_copy,
    "index_select": native_copy,
    "take_along_dim": native_copy,
    "roll": native_copy,
    "flip": native_copy,
    "pad": native_copy,
    "triu": native_copy,
    "tril": native_copy,
    "where": native_elementwise(1),
    "masked_fill": native_elementwise(1),
    "clamp": native_elementwise(1),
    "clip": native_elementwise(1),
    "clamp_min": native_elementwise(1),
    "clamp_max": native_elementwise(1),
    "rsqrt": native_elementwise(1),
    "arange": native_create,
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
    "eq": native_elementwise(1),
    "ne": native_elementwise(1),
    "lt": native_elementwise(1),
    "le": native_elementwise(1),
    "gt": native_elementwise(1),
    "ge": native_elementwise(1),
    "logical_not": native_elementwise(1),
    "logical_and": native_elementwise(1),
    "logical_or": native_elementwise(1),
    "bitwise_not": native_elementwise(1),
    "bitwise_and": native_elementwise(1),
    "bitwise_or": native_elementwise(1),
    "bitwise_xor": native_elementwise(1),
    "isinf": native_elementwise(1),
    "isnan": native_elementwise(1),
    "any": native_reduction(1),
    "all": native_reduction(1),
    "argmax": native_reduction(1),
    "argmin": native_reduction(1),
    "cumsum": native_elementwise(1),
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


def _build_defaults() -> OpRegistry:
    reg = OpRegistry()
    set_op_handle = reg.set_op_handle
    for name in _FREE:
        set_op_handle(name, no_cost)
    for name, native in _MOVES.items():
        set_op_handle(name, no_cost, "irene")
        set_op_handle(name, native, "native")
    for name, (flops, mult, native_flops) in _ARITH.items():
        set_op_handle(name, irene_elementwise(flops, mult), "irene")
        set_op_handle(
            name, native_elementwise(native_flops) if name != "clone" else native_copy, "native"
        )
    for name in _REDUCTIONS:
        set_op_handle(name, irene_elementwise(1, 1), "irene")
        set_op_handle(name, native_reduction(1), "native")
    set_op_handle("linear", irene_linear, "irene")
    set_op_handle("linear", native_linear, "native")
    for name in ("matmul", "bmm", "mm"):
        set_op_handle(name, irene_matmul, "irene")
        set_op_handle(name, native_matmul, "native")
    set_op_handle("addmm", irene_addmm, "irene")
    set_op_handle("addmm", native_addmm, "native")
    set_op_handle("baddbmm", irene_baddbmm, "irene")
    set_op_handle("baddbmm", native_baddbmm, "native")
    set_op_handle("softmax", irene_softmax, "irene")
    set_op_handle("softmax", native_softmax, "native")
    set_op_handle("log_softmax", irene_elementwise(5, 3), "irene")
    set_op_handle("log_softmax", native_elementwise(5), "native")
    set_op_handle("layer_norm", irene_elementwise(8, 4), "irene")
    set_op_handle("layer_norm", native_norm(8), "native")
    set_op_handle("rms_norm", irene_elementwise(4, 3), "irene")
    set_op_handle("rms_norm", native_norm(4), "native")
    set_op_handle("group_norm", irene_elementwise(8, 4), "irene")
    set_op_handle("group_norm", native_norm(8), "native")
    set_op_handle("batch_norm", irene_elementwise(2, 2), "irene")
    set_op_handle("batch_norm", native_norm(2), "native")
    set_op_handle("embedding", irene_embedding, "irene")
    set_op_handle("embedding", native_embedding, "native")
    set_op_handle("scaled_dot_product_attention", lambda c: sdpa_parts(c, native=False), "irene")
    set_op_handle("scaled_dot_product_attention", lambda c: sdpa_parts(c, native=True), "native")
    set_op_handle("multi_head_attention_forward", lambda c: mha_parts(c, native=False), "irene")
    set_op_handle("multi_head_attention_forward", lambda c: mha_parts(c, native=True), "native")
    for name in ("conv1d", "conv2d", "conv3d"):
        set_op_handle(name, irene_conv, "irene")
        set_op_handle(name, native_conv, "native")
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
