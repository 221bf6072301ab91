"""Hierarchical consistency: a parent's predicted energy is at least its children's sum.

A parent runs all of its children plus its own ops, so a per-module report must never show a
child above its parent. Aggregators end their prediction with :func:`reconcile`; the mode is a
setting of the profile (:data:`RECONCILE_MODES`): ``top-down`` (ours, the default) or ``none``
(IrEne's method, as published). Experiments register more with :func:`register_reconcile_mode`
(benchmarks/ablation_methods.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from predictor.learn.flat import Array, Flat

__all__ = [
    "DEFAULT_RECONCILE",
    "RECONCILE_MODES",
    "ReconcileFn",
    "reconcile",
    "reconcile_mode",
    "register_reconcile_mode",
]

#: A reconciliation: ``(flat, energy) -> energy`` (one value per node of ``flat``).
ReconcileFn = Callable[[Flat, Array], Array]


def _unchanged(flat: Flat, energy: Array) -> Array:
    """``none``: the prediction as it is (IrEne's method; children may exceed their parent)."""
    del flat
    return energy


def _top_down(flat: Flat, energy: Array) -> Array:
    """``top-down``: the root keeps its prediction. Where a node's children overrun its
    (possibly already cut) energy by ``X``, each child is cut by ``X * E(c) / sum E(children)``
    (the same relative cut for every child: nothing says which one is wrong), and a child absorbs
    its cut from its own-op energy first (``E(c) - sum E(its children)``, the part its children
    do not explain); only the rest is passed to its children, the same way. Nodes that are
    consistent with their parent are left exactly as predicted. Negative predictions (a linear
    model far outside its data) are set to 0 first."""
    e = np.maximum(np.asarray(energy, dtype=np.float64), 0.0)
    sums = flat.child_sum(e)
    # Fraction of each inner node's children's sum that must go: X / sum, X = overrun.
    fraction = np.zeros(len(e), dtype=np.float64)
    cut = np.zeros(len(e), dtype=np.float64)
    for d in range(int(flat.depth.max(initial=0)) + 1):
        idx = np.flatnonzero((flat.depth == d) & ~flat.is_leaf)
        if idx.size == 0:
            continue
        overrun = np.maximum(sums[idx] - (e[idx] - cut[idx]), 0.0)
        positive = sums[idx] > 0
        fraction[idx] = np.where(positive, overrun / np.where(positive, sums[idx], 1.0), 0.0)
        kids = flat.children_of(idx)
        cut[kids] = e[kids] * fraction[flat.parent[kids]]
    return np.asarray(e - cut, dtype=np.float64)


#: The reconciliation a profile uses when its file names none (saved before reconciliation
#: existed) and the one ours trains with: its predictions are made consistent.
DEFAULT_RECONCILE = "top-down"
_BUILTIN_RECONCILE: Mapping[str, ReconcileFn] = {"top-down": _top_down, "none": _unchanged}
#: How :func:`reconcile` makes children sum to at most their parent, by name: the built-ins and
#: those added by :func:`register_reconcile_mode`.
RECONCILE_MODES: dict[str, ReconcileFn] = dict(_BUILTIN_RECONCILE)


def register_reconcile_mode(name: str, fn: ReconcileFn) -> None:
    """Make ``fn`` the reconciliation ``name`` (``Settings(reconcile=name)``).

    For experiments (benchmarks/ablation_methods.py). The result of ``fn`` must be >= 0 with
    every node's children summing to at most the node. A built-in mode cannot be replaced;
    registering an experiment's name again replaces it.
    """
    if name in _BUILTIN_RECONCILE:
        raise ValueError(f"reconcile mode {name!r} is built in and cannot be replaced")
    RECONCILE_MODES[name] = fn


def _reconcile_fn(mode: str) -> ReconcileFn:
    fn = RECONCILE_MODES.get(mode)
    if fn is None:
        raise ValueError(f"unknown reconcile mode {mode!r} (one of {', '.join(RECONCILE_MODES)})")
    return fn


def reconcile_mode(data: dict[str, Any]) -> str:
    """The ``reconcile`` entry of a saved aggregator/settings dict (absent: the default)."""
    mode = str(data.get("reconcile", DEFAULT_RECONCILE))
    _reconcile_fn(mode)
    return mode


def reconcile(flat: Flat, energy: Array, mode: str = DEFAULT_RECONCILE) -> Array:
    """Make ``energy`` (one value per node of ``flat``) hierarchically consistent with the
    reconciliation ``mode`` (:data:`RECONCILE_MODES`; ``top-down`` and ``none`` built in).

    Afterwards, except with ``none``, every energy is >= 0 and, for every node, the sum of its
    children's energies is at most its own (up to float rounding, ~1e-16 relative).
    """
    return _reconcile_fn(mode)(flat, energy)
