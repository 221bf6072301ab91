"""Mixture-of-experts layers counted as routed work, on meta / fake tensors in any dtype.

A Hugging Face experts module (``MixtralExperts``, ``Qwen2MoeExperts``, ``Qwen3MoeExperts`` ...:
the classes ``transformers.integrations.use_experts_implementation`` decorates, holding 3-D
``gate_up_proj`` / ``up_proj`` and ``down_proj`` parameters) cannot be traced as it runs: its
eager path loops over the experts a data-dependent ``nonzero`` found, its ``grouped_mm`` path
needs bf16 weights and per-expert offsets (values), and its ``batched_mm`` path gathers one copy
of an expert's weights per token. On meta or fake tensors none of that has values, so the tracer
stands in for the module's forward (:func:`experts_parts`) and counts what routing does:

- every token goes through ``top_k`` experts: ``S = tokens x top_k`` rows through the up (or
  gate + up) projection and the down projection, ``2 x S x in x out`` FLOPs each, whatever the
  implementation;
- each expert that receives a token reads its weights once; under the default uniform routing
  expectation an expert is hit with probability ``1 - (1 - top_k / E)^tokens``, with a measured
  histogram (:class:`Routing`) with ``1 - (1 - top_k x p_e)^tokens`` (``p_e`` its share of
  the routed slots), so a decode step of one token reads ``top_k`` experts' weights, a long
  prompt every expert's;
- the GEMMs are ML nodes of kernel class ``gemm``: ``GroupedMM`` (one grouped kernel, the
  default ``grouped_mm`` path), ``BatchedMM`` (``batched_mm``: one batched kernel; its
  per-token copy of the weights is an artefact of that implementation, not routed work, and is
  not charged) or ``Linear`` with ``count`` = experts hit (the eager loop: one GEMM per expert);
- the gate activation and product, the routing-weight product, the sum over the ``top_k``
  outputs and the token gather / sort are the experts module's own ops.

The output is an empty tensor of the input's shape (nothing is computed). The router (a linear
layer, a softmax, ``topk``) is traced as it runs.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import torch
from torch import nn

from predictor.errors import ModelError
from predictor.trace.kernels import ACTIVATION, COPY, ELEMENTWISE, GEMM, REDUCTION
from predictor.trace.ops import OpCount

__all__ = ["Routing", "RoutingSpec", "experts_parts", "is_experts", "resolve_routing"]

_FP32 = 4


def _histogram(values: Any, where: str) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ModelError(
            f"routing histogram {where} must be a list of per-expert token counts or shares "
            f"(got {values!r})"
        )
    out: list[float] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ModelError(f"routing histogram {where}: {v!r} is not a number")
        x = float(v)
        if not math.isfinite(x) or x < 0:
            raise ModelError(
                f"routing histogram {where}: every entry must be a finite number >= 0 (got {v!r})"
            )
        out.append(x)
    if not out or sum(out) <= 0:
        raise ModelError(f"routing histogram {where}: needs at least one expert with tokens")
    return tuple(out)


@dataclass(frozen=True)
class Routing:
    """How routed tokens spread over the experts.

    ``histogram``: per-expert token counts (or shares) applied to every MoE layer; ``layers``:
    per experts-module fqn glob (``"layers.3.mlp.experts"``, ``"layers.*.mlp.experts"``), first
    match wins, before ``histogram``. Neither: the uniform routing expectation.
    """

    histogram: tuple[float, ...] | None = None
    layers: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def for_module(self, fqn: str) -> tuple[float, ...] | None:
        for pattern, hist in self.layers.items():
            if fnmatch.fnmatchcase(fqn, pattern):
                return hist
        return self.histogram


#: What ``build_tree(..., routing=...)`` accepts: None (uniform), one histogram for every MoE
#: layer, a mapping of experts-module fqn globs to histograms, or a :class:`Routing`.
RoutingSpec: TypeAlias = "Routing | Sequence[float] | Mapping[str, Sequence[float]] | None"


def resolve_routing(routing: Any) -> Routing:
    """A :class:`Routing` from what a caller gave (None, a histogram, a mapping of fqn globs
    to histograms, or a Routing); ModelError for anything else or a bad histogram."""
    if routing is None:
        return Routing()
    if isinstance(routing, Routing):
        return routing
    if isinstance(routing, Mapping):
        return Routing(layers={str(k): _histogram(v, f"for {k!r}") for k, v in routing.items()})
    return Routing(histogram=_histogram(routing, "(all layers)"))


def is_experts(module: nn.Module) -> bool:
    """Whether ``module`` is a Hugging Face experts module (3-D expert weight parameters and the
    attributes ``use_experts_implementation`` gives it)."""
    down = getattr(module, "down_proj", None)
    return (
        hasattr(module, "has_gate")
        and hasattr(module, "is_transposed")
        and isinstance(down, nn.Parameter)
        and down.dim() == 3
        and isinstance(getattr(module, "num_experts", None), int)
    )


def _weight(module: nn.Module, name: str) -> torch.Tensor | None:
    w = getattr(module, name, None)
    return w if isinstance(w, torch.Tensor) else None


def _expected_hit(tokens: int, top_k: int, experts: int, hist: tuple[float, ...] | None) -> float:
    """Expected number of experts receiving at least one of ``tokens`` tokens."""
    if hist is None:
        p = [1.0 / experts] * experts
    else:
        total = sum(hist)
        p = [h / total for h in hist]
    return sum(1.0 - (1.0 - min(1.0, top_k * pe)) ** tokens for pe in p if pe > 0)


def experts_parts(
    module: nn.Module,
    fqn: str,
    hidden_states: torch.Tensor,
    top_k_index: torch.Tensor,
    routing: Routing,
    native: bool,
) -> list[OpCount]:
    """The routed cost of one call of an experts module (see the module docstring)."""
    experts = int(module.num_experts)  # type: ignore[arg-type]
    hidden = int(hidden_states.shape[-1])
    tokens = int(hidden_states.numel()) // max(hidden, 1)
    top_k = int(top_k_index.shape[-1]) if top_k_index.dim() else 1
    hist = routing.for_module(fqn)
    if hist is not None and len(hist) != experts:
        raise ModelError(
            f"routing histogram for {fqn!r} has {len(hist)} entries; the layer has {experts} "
            "experts"
        )
    slots = tokens * top_k
    hit = _expected_hit(tokens, top_k, experts, hist)
    transposed = bool(getattr(module, "is_transposed", False))
    has_gate = bool(getattr(module, "has_gate", True))
    up = _weight(module, "gate_up_proj" if has_gate else "up_proj")
    down = _weight(module, "down_proj")
    if up is None or down is None:
        return []
    up_out = int(up.shape[-1] if transposed else up.shape[-2])
    down_in = int(down.shape[-2] if transposed else down.shape[-1])
    inter = up_out // 2 if has_gate else up_out
    a = hidden_states.element_size() if native else _FP32
    w = up.element_size() if native else _FP32
    has_bias = bool(getattr(module, "has_bias", False))
    impl = str(getattr(getattr(module, "config", None), "_experts_implementation", None) or "")
    if impl in ("", "eager"):
        name, count = "Linear", max(1, round(hit))
    elif impl == "batched_mm":
        name, count = "BatchedMM", 1
    else:
        name, count = "GroupedMM", 1
    dtype = str(hidden_states.dtype).removeprefix("torch.")

    def gemm(rows: int, fin: int, fout: int, weight: torch.Tensor) -> OpCount:
        flops = 2.0 * rows * fin * fout + (rows * fout if has_bias else 0)
        nbytes = a * rows * (fin + fout) + w * hit * (fin * fout + (fout if has_bias else 0))
        return OpCount(
            flops,
            nbytes,
            name,
            GEMM,
            dtype=dtype,
            shapes=((rows, fin), tuple(int(d) for d in weight.shape), (rows, fout)),
            count=count,
            base="Linear",  # each group is one linear layer's GEMM
        )

    act_flops = 6.0 if has_gate else 5.0  # SiLU (5) and, gated, the product (1)
    parts = [
        # tokens gathered by expert (and, grouped, the sort and histogram that order them)
        OpCount(0.0, 2.0 * a * slots * hidden, kernel=COPY, dtype=dtype),
        gemm(slots, hidden, up_out, up),
        OpCount(
            act_flops * slots * inter,
            a * slots * (up_out + inter),
            kernel=ACTIVATION,
            dtype=dtype,
        ),
        gemm(slots, down_in, hidden, down),
        # routing weights applied, then the top_k outputs of each token summed
        OpCount(
            float(slots * hidden),
            a * (2 * slots * hidden + slots),
            kernel=ELEMENTWISE,
            dtype=dtype,
        ),
        OpCount(
            float(slots * hidden), a * (slots + tokens) * hidden, kernel=REDUCTION, dtype=dtype
        ),
    ]
    if name == "GroupedMM":
        parts.append(
            OpCount(
                slots * max(math.log2(max(slots, 2)), 1.0) + slots,
                16.0 * slots + 4.0 * experts,
                kernel=REDUCTION,
                dtype=dtype,
            )
        )
    return parts
