"""A dataset's trees predicted by a profile that counts features another way.

A dataset's features follow the counting rules it was measured with (the IrEne data: IrEne's,
fp32); a device profile predicts what executes (native counting, at each tensor's dtype). To
compare such a profile with the dataset's measurements, each configuration is traced again from
the zoo in the profile's counting mode, predicted, and the predictions are carried over to the
dataset's nodes: the root to the root, modules by fqn (transformers 5 renamed some classes),
ML primitives by name, k-th occurrence to k-th occurrence (functional-op names repeat). A
dataset node with no counterpart is reported, never given 0 J.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from predictor.trace.tree import EnergyTree, Node

__all__ = ["Carried", "carry_predictions"]


@dataclass
class Carried:
    """A copy of a dataset tree with predicted ``energy_j`` carried over from a traced tree;
    ``unmatched``: the dataset nodes that had no counterpart (their ``energy_j`` is None)."""

    tree: EnergyTree
    unmatched: list[str] = field(default_factory=list)


def _key(node: Node) -> str:
    return node.fqn if node.level == "module" else node.name


def carry_predictions(dataset_tree: EnergyTree, predicted: EnergyTree) -> Carried:
    """``dataset_tree``'s nodes with the energies of their counterparts in ``predicted``."""
    copy = EnergyTree.from_dict(dataset_tree.to_dict())
    by_key: dict[tuple[str, str], list[Node]] = {}
    for node in predicted.walk():
        if node.level != "model":
            by_key.setdefault((node.level, _key(node)), []).append(node)
    seen: Counter[tuple[str, str]] = Counter()
    unmatched: list[str] = []
    for node in copy.walk():
        node.energy_j = None
        node.extrapolated = False
        if node.level == "model":
            match: Node | None = predicted.root
        else:
            key = (node.level, _key(node))
            k = seen[key]
            seen[key] += 1
            candidates = by_key.get(key, [])
            match = candidates[k] if k < len(candidates) else None
        if match is None or match.energy_j is None:
            unmatched.append(f"{node.level} {node.name}")
            continue
        node.energy_j = match.energy_j
        node.extrapolated = match.extrapolated
    copy.meta = {**copy.meta, "profile": predicted.meta.get("profile")}
    return Carried(copy, unmatched)


#: Traces a configuration again: (model, batch size, sequence length, dtype) -> tree.
Retrace = Callable[[str, int, int, str | None], EnergyTree]
