"""Training trees re-derived in another counting: the dataset's measurements on freshly traced
trees.

The IrEne dataset's static features follow IrEne's own counting (fp32 bytes always, a 3-D
Linear's weight charged once per batch row). A profile that predicts traced models in the
``native`` counting (dtype-aware bytes, weights read once per forward) must be trained on
features counted the same way, so :func:`retrace_dataset` traces each of the dataset's models
(zoo names, built from their config classes, eager attention, the inputs the measurements ran
with) at each configuration (batch size, sequence length) and attaches the measured energies and runtime features by node:

- ML nodes by name, the k-th traced node of a name taking the k-th measured one (functional op
  names repeat); ``benchmarks/bench_tree_match.py`` shows they match one to one;
- modules by fqn (transformers 5 renamed some classes, e.g. GPT-2's ``Block`` ->
  ``GPT2Block``), also onto an ML node of that fqn (tiny-ctrl's ``ReLU`` was a module to IrEne);
- the root by the root.

A traced node without a measurement (an activation module transformers 5 added, e.g.
``GELUActivation``, whose work the dataset measured inside its parent) is dropped: its features
stay in its parent's, as the parent's own ops, exactly as the dataset measured them. Measured
nodes without a traced node are counted in the tree's ``meta["unmatched"]``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from predictor.errors import DataError, ModelError
from predictor.learn.data import Dataset, attach_num_parameters, load_dataset
from predictor.trace.tree import EnergyTree, Node, prune_unmeasured

__all__ = [
    "COUNTINGS",
    "Carried",
    "carry_predictions",
    "load_training_data",
    "pair_nodes",
    "retrace_dataset",
    "retrace_tree",
]

#: How ``irene train`` / ``irene evaluate`` take a dataset's features: ``dataset`` (as its files
#: hold them) or re-derived by tracing its models in a counting mode (``native``, ``irene``).
COUNTINGS: tuple[str, ...] = ("dataset", "native", "irene")


def pair_nodes(reference: EnergyTree, traced: EnergyTree) -> list[tuple[Node, Node]]:
    """The nodes of ``traced`` paired with their counterparts in ``reference`` (the same model
    and configuration, counted or traced another way): the root with the root, an ML node by
    name (the k-th traced node of a name with the k-th of ``reference``: functional-op names
    repeat), a module by fqn (transformers 5 renamed some classes), and a node whose name has
    no counterpart with ``reference``'s module of its fqn (tiny-ctrl's ``ReLU`` was a module
    to IrEne). Pairs are ``(traced node, reference node)``, each reference node used once."""
    by_name: dict[str, list[Node]] = defaultdict(list)
    modules: dict[str, Node] = {}
    for node in reference.walk():
        if node.level == "ml":
            by_name[node.name].append(node)
        elif node.level == "module":
            modules[node.fqn] = node
    taken: dict[str, int] = defaultdict(int)
    used_modules: set[str] = set()
    pairs: list[tuple[Node, Node]] = []
    for node in traced.walk():
        if node.level == "model":
            pairs.append((node, reference.root))
            continue
        if node.level == "ml":
            k = taken[node.name]
            candidates = by_name.get(node.name, [])
            if k < len(candidates):
                taken[node.name] += 1
                pairs.append((node, candidates[k]))
                continue
        module = modules.get(node.fqn)
        if module is not None and node.fqn not in used_modules:
            used_modules.add(node.fqn)
            pairs.append((node, module))
    return pairs


def retrace_tree(data: EnergyTree, traced: EnergyTree) -> EnergyTree:
    """``traced`` (the same model and configuration as ``data``) with ``data``'s measurements
    attached (see the module docstring); nodes without one are pruned."""
    pairs = pair_nodes(data, traced)
    for node, measured in pairs:
        node.measured_energy_j = measured.measured_energy_j
        node.runtime = dict(measured.runtime)
    prune_unmeasured(traced.root)
    total = sum(1 for _ in data.walk())
    traced.meta = {
        **traced.meta,
        "source": data.meta.get("source", ""),
        "retraced": {"counting_mode": traced.counting_mode, "unmatched": total - len(pairs)},
    }
    return traced


@dataclass
class Carried:
    """A copy of a dataset tree with predicted ``energy_j`` carried over from a traced tree;
    ``unmatched``: the dataset nodes that had no counterpart (their ``energy_j`` is None)."""

    tree: EnergyTree
    unmatched: list[str] = field(default_factory=list)


def carry_predictions(dataset_tree: EnergyTree, predicted: EnergyTree) -> Carried:
    """The other direction: ``dataset_tree``'s nodes with the predicted energies of their
    counterparts in ``predicted`` (:func:`pair_nodes`), to score a profile that counts
    features otherwise than the dataset on the dataset's own nodes. A node with no
    counterpart keeps ``energy_j`` None (reported, never 0 J)."""
    copy = EnergyTree.from_dict(dataset_tree.to_dict())
    for node in copy.walk():
        node.energy_j, node.extrapolated = None, False
    for node, reference in pair_nodes(copy, predicted):
        reference.energy_j, reference.extrapolated = node.energy_j, node.extrapolated
    unmatched = [f"{n.level} {n.name}" for n in copy.walk() if n.energy_j is None]
    copy.meta = {**copy.meta, "profile": predicted.meta.get("profile")}
    return Carried(copy, unmatched)


def retrace_dataset(dataset: Dataset, counting_mode: str = "native") -> Dataset:
    """Every tree of ``dataset`` re-derived by tracing its zoo model at its configuration in
    ``counting_mode``, with the dataset's measurements attached. A model the zoo does not know
    is a DataError (its features can only be taken as the dataset holds them)."""
    from predictor.learn.adapt import dataset_dtype
    from predictor.trace.zoo import build_zoo_tree

    dtype = dataset_dtype(dataset)  # the dtype it was measured in, not the config's
    trees: list[EnergyTree] = []
    skipped = list(dataset.skipped)
    for data in dataset.trees:
        try:
            traced = build_zoo_tree(
                data.model_name,
                data.batch_size,
                data.seq_len,
                counting_mode=counting_mode,
                as_measured=True,
                dtype=dtype,
            )
        except ModelError as exc:
            raise DataError(
                f"{dataset.path}: cannot re-derive the features of {data.model_name} batch "
                f"{data.batch_size} seq {data.seq_len} in the {counting_mode!r} counting: {exc}; "
                "use the dataset's own features (--counting dataset)"
            ) from None
        tree = retrace_tree(data, traced)
        unmatched = int(tree.meta["retraced"]["unmatched"])
        if unmatched:
            skipped.append(
                f"{data.model_name} batch {data.batch_size} seq {data.seq_len}: {unmatched} "
                "measured node(s) without a traced node of that name (left out)"
            )
        trees.append(tree)
    return replace(dataset, trees=trees, skipped=skipped)


def load_training_data(
    path: str | os.PathLike[str], counting: str = "dataset", *, models: Sequence[str] | None = None
) -> Dataset:
    """A dataset ready to train or evaluate on: read (:func:`predictor.learn.data.load_dataset`),
    its features as the files hold them (``dataset``, parameter counts filled in from the zoo)
    or re-derived in a counting mode (``native``, ``irene``: :func:`retrace_dataset`).
    ``models`` keeps only those models' trees."""
    if counting not in COUNTINGS:
        raise DataError(f"counting must be one of {', '.join(COUNTINGS)} (got {counting!r})")
    dataset = load_dataset(Path(path))
    if models is not None:
        dataset = replace(dataset, trees=[t for t in dataset.trees if t.model_name in models])
    if counting == "dataset":
        attach_num_parameters(dataset.trees)
        return dataset
    return retrace_dataset(dataset, counting)
