"""Kernel classes: ML primitives typed by what executes, not by the Python class that calls it.

Every ML node of a tree carries a kernel class (``Node.kernel``) beside its IrEne-style name
(``encoder.layer.0.attention.self:MatMul``) and type (the module class, or the functional op's
name). Regressors are keyed by kernel class, so a ``FalconLinear``, an ``F.linear`` call and an
HF ``Conv1D`` are all the same GEMM to a profile, as they are to the device.

The classes (:data:`KERNEL_CLASSES`) and what maps to each:

- ``gemm``: a matrix product of activations with a weight. ``nn.Linear`` and its subclasses,
  HF ``Conv1D`` (an ``addmm``), ``F.linear`` / ``addmm`` / ``mm`` / ``matmul`` / ``einsum`` with a
  parameter operand, the q/k/v and output projections of ``F.multi_head_attention_forward``, the
  routed expert GEMMs of a mixture of experts, ``nn.Bilinear``, and convolutions: a convolution
  runs as an implicit GEMM (cuDNN's ``IMPLICIT_GEMM`` / ``IMPLICIT_PRECOMP_GEMM`` algorithms:
  M = batch x output positions, N = output channels / groups, K = input channels / groups x
  kernel size, per group), so its FLOPs and bytes are those of that GEMM and its energy is
  predicted like one. A depthwise convolution is the extreme (K = kernel size): few FLOPs per
  byte, which the regressor's bytes term carries.
- ``bmm``: a batched product of two activations (no weight): attention scores ``q @ k^T`` and
  values ``p @ v``, ``matmul`` / ``bmm`` / ``baddbmm`` / ``einsum`` of activations, the two
  products an SDPA call stands for, one step of a recurrence's matrix-vector product.
- ``softmax``: ``softmax`` / ``log_softmax`` (functional or ``nn.Softmax``).
- ``norm``: a normalisation that reduces over a dimension: ``LayerNorm``, ``RMSNorm`` in any
  class (``LlamaRMSNorm``, ``T5LayerNorm``, ``nn.RMSNorm``, ...), ``GroupNorm``,
  ``InstanceNorm``, ``F.layer_norm`` / ``F.rms_norm`` / ``F.group_norm``. An RMSNorm is a
  LayerNorm without the mean: one memory-bound pass reading each row, one reduction, a scale.
- ``activation``: one elementwise pass over a tensor: activation modules (``nn.GELU``,
  ``nn.SiLU``, ``nn.Tanh``, ``nn.ReLU`` ..., every leaf class of ``transformers.activations``)
  and batch norm (``nn.BatchNorm*d``, ``F.batch_norm``), which in eval mode (every trace runs
  the model in eval mode) is a per-channel scale and shift by its running statistics, with no
  reduction. Activation *functions* called inside a module stay that module's own ops, as in
  IrEne's trees.
- ``embedding``: a gather of table rows: ``nn.Embedding`` and subclasses, ``F.embedding``.
- ``pool``: pooling (``nn.MaxPool2d``, ``nn.AdaptiveAvgPool2d``, ``F.avg_pool2d`` ...). A
  profile without pooling data predicts it with its ``activation`` regressor
  (:data:`PROXIES`): a pool reads each input element once, compares or adds it, and writes a
  smaller output, one memory-bound pass like an elementwise kernel. That is a better guess
  than the pooled fallback, but still a guess: such nodes are flagged ``extrapolated``.
- ``scan``: a recurrence run as one fused kernel (a selective-scan or associative-scan op).
  HF Mamba's eager path is a Python loop of small ``bmm`` calls and elementwise updates: its
  steps are folded into one ``bmm`` node with a ``count`` (``Node.count``), not a scan.
- ``elementwise``, ``reduction``, ``copy``: the classes of ops that are not ML nodes (adds,
  masks, casts, concatenations): a module's own ops. A user-registered primitive whose costliest
  op is one of these takes its class.

:data:`TRAINING_TYPES` maps the primitive types of the IrEne dataset (and of trees loaded from
it) onto these classes: ``Linear`` and ``Conv1D`` -> ``gemm``, ``MatMul`` -> ``bmm``,
``Softmax`` -> ``softmax``, ``LayerNorm`` -> ``norm``, ``Embedding`` -> ``embedding``, ``Tanh``
and ``ReLU`` -> ``activation``. A profile trained on that data covers those six classes, and
``pool`` through its proxy; a node of any other class (``scan``, ``elementwise``,
``reduction``, ``copy``: a user-registered primitive of those) is predicted by the profile's
fallback and flagged ``extrapolated``, never merged into a class it is not.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "ACTIVATION",
    "BMM",
    "COPY",
    "ELEMENTWISE",
    "EMBEDDING",
    "GEMM",
    "KERNEL_CLASSES",
    "NODE_KERNELS",
    "NORM",
    "POOL",
    "PROXIES",
    "REDUCTION",
    "SCAN",
    "SOFTMAX",
    "TRAINING_TYPES",
    "kernel_of_type",
]

GEMM = "gemm"
BMM = "bmm"
SOFTMAX = "softmax"
NORM = "norm"
ACTIVATION = "activation"
EMBEDDING = "embedding"
POOL = "pool"
SCAN = "scan"
ELEMENTWISE = "elementwise"
REDUCTION = "reduction"
COPY = "copy"

#: Every kernel class, with what it stands for.
KERNEL_CLASSES: Mapping[str, str] = {
    GEMM: "activations x weight matrix product (Linear, Conv1D, F.linear, projections, experts, "
    "convolutions as implicit GEMM)",
    BMM: "batched product of two activations (attention scores and values)",
    SOFTMAX: "softmax over a dimension",
    NORM: "normalisation pass with a reduction (LayerNorm, RMSNorm, GroupNorm)",
    ACTIVATION: "elementwise pass (activation modules, eval-mode batch norm)",
    EMBEDDING: "table gather (Embedding)",
    POOL: "pooling",
    SCAN: "fused recurrence (selective / associative scan)",
    ELEMENTWISE: "elementwise arithmetic",
    REDUCTION: "reduction over a dimension",
    COPY: "data movement (copies, casts, concatenations)",
}

#: Kernel classes whose functional calls become ML nodes of the module that calls them (the
#: rest are that module's own ops).
NODE_KERNELS: frozenset[str] = frozenset({GEMM, BMM, SOFTMAX, NORM, EMBEDDING, POOL, SCAN})

#: Kernel classes a profile without data of their own predicts with another class's
#: regressor, because they execute like it (documented above); a node so predicted is not
#: extrapolated. Every other class without data is.
PROXIES: Mapping[str, str] = {POOL: ACTIVATION}

#: The IrEne dataset's primitive types (and the traced types of its models) -> kernel class.
TRAINING_TYPES: Mapping[str, str] = {
    "Linear": GEMM,
    "Conv1D": GEMM,
    "MatMul": BMM,
    "Softmax": SOFTMAX,
    "LayerNorm": NORM,
    "Embedding": EMBEDDING,
    "Tanh": ACTIVATION,
    "ReLU": ACTIVATION,
}


def kernel_of_type(type_name: str) -> str:
    """The kernel class of a primitive type known by name only (a tree read from a dataset or
    an older JSON file): :data:`TRAINING_TYPES`, else ``""`` (unknown)."""
    return TRAINING_TYPES.get(type_name, "")
