"""The gate's view of a generation: its quantities, their budgets' keys, their wording.

A generation entry's result holds the tree of its mean decode step (module budgets and the
whole-model ``budget:`` are per decode step, of the whole batch) with the generation's summary
(:meth:`predictor.learn.generation.GenerationEnergy.to_dict`) in ``tree.meta["generation"]
["summary"]``. The quantities a budget can limit, or a base report compare, are here, one
entry each (:data:`QUANTITIES`); checks, diffs, summaries and reports all read this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from predictor.gate.units import format_energy
from predictor.trace.tree import EnergyTree

__all__ = [
    "BUDGET_QUANTITIES",
    "QUANTITIES",
    "Quantity",
    "generation_line",
    "generation_summary",
    "quantity_label",
    "quantity_value",
]


@dataclass(frozen=True)
class Quantity:
    """A generation quantity: its key (a budgets-file key where ``budget`` is True), the key
    of its value in the summary (joules) and how messages name it."""

    key: str
    field: str
    label: str
    budget: bool = False


#: Every quantity, in the order reports show them.
QUANTITIES: Mapping[str, Quantity] = {
    q.key: q
    for q in (
        Quantity("per_token", "j_per_output_token", "per output token", budget=True),
        Quantity("per_request", "j_per_request", "per request", budget=True),
        Quantity("prefill", "prefill_j", "prefill"),
        Quantity("decode", "decode_j", "decode"),
    )
}
#: The quantities a budgets file (``per_token: 0.2 J``, ``per_request: 90 J``) can limit.
BUDGET_QUANTITIES: tuple[str, ...] = tuple(k for k, q in QUANTITIES.items() if q.budget)


def generation_summary(tree: EnergyTree | None) -> Mapping[str, Any] | None:
    """The generation summary a predicted tree carries, or None for a forward pass."""
    if tree is None:
        return None
    gen = tree.meta.get("generation")
    if not isinstance(gen, Mapping):
        return None
    summary = gen.get("summary")
    return summary if isinstance(summary, Mapping) else None


def quantity_value(tree: EnergyTree | None, key: str) -> float | None:
    """The joules of quantity ``key`` (:data:`QUANTITIES`) of a generation's tree; None for a
    forward pass or a summary without it."""
    summary = generation_summary(tree)
    if summary is None:
        return None
    value = summary.get(QUANTITIES[key].field)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def quantity_label(key: str | None) -> str:
    """``per output token``: how a check on quantity ``key`` names it ("" for none)."""
    return QUANTITIES[key].label if key is not None and key in QUANTITIES else ""


def generation_line(tree: EnergyTree | None) -> str | None:
    """``0.213 J per output token, 54.6 J per request (prefill 1.2 J, decode 435 J; 1.71 J per
    decode step, 255 steps)``, or None for a forward pass."""
    summary = generation_summary(tree)
    if summary is None:
        return None

    def j(key: str) -> str:
        value = summary.get(key)
        return format_energy(float(value)) if isinstance(value, (int, float)) else "?"

    w = summary.get("workload", {})
    line = (
        f"{j('j_per_output_token')} per output token, {j('j_per_request')} per request "
        f"(prefill {j('prefill_j')}, decode {j('decode_j')}: {j('decode_step_j')} per decode "
        f"step of the batch, {summary.get('decode_steps', '?')} steps"
    )
    overhead = summary.get("decode_step_overhead_j")
    if isinstance(overhead, (int, float)) and overhead > 0:
        line += f" with {j('decode_step_overhead_j')} of serving overhead each"
    bound = summary.get("decode_error_bound_j")
    if isinstance(bound, (int, float)) and bound > 0:
        line += f", summed within {format_energy(float(bound))}"
    line += ")"
    if isinstance(w, Mapping) and w:
        line += (
            f"; batch {w.get('batch_size')}, prompt {w.get('prompt_len')}, "
            f"{w.get('new_tokens')} new tokens"
        )
    return line
