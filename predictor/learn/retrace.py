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
from dataclasses import replace
from pathlib import Path

from predictor.errors import DataError, ModelError
from predictor.learn.data import Dataset, attach_num_parameters, load_dataset
from predictor.trace.tree import EnergyTree, Node

__all__ = ["COUNTINGS", "load_training_data", "retrace_dataset", "retrace_tree"]

#: How ``irene train`` / ``irene evaluate`` take a dataset's features: ``dataset`` (as its files
#: hold them) or re-derived by tracing its models in a counting mode (``native``, ``irene``).
COUNTINGS: tuple[str, ...] = ("dataset", "native", "irene")


def _attach(traced: Node, measured: Node) -> None:
    traced.measured_energy_j = measured.measured_energy_j
    traced.runtime = dict(measured.runtime)


def retrace_tree(data: EnergyTree, traced: EnergyTree) -> EnergyTree:
    """``traced`` (the same model and configuration as ``data``) with ``data``'s measurements
    attached (see the module docstring); nodes without one are pruned."""
    by_name: dict[str, list[Node]] = defaultdict(list)
    modules: dict[str, Node] = {}
    for node in data.walk():
        if node.level == "ml":
            by_name[node.name].append(node)
        elif node.level == "module":
            modules[node.fqn] = node
    taken: dict[str, int] = defaultdict(int)
    used_modules: set[str] = set()
    matched = 0
    for node in traced.walk():
        if node.level == "model":
            _attach(node, data.root)
            matched += 1
            continue
        if node.level == "ml":
            k = taken[node.name]
            candidates = by_name.get(node.name, [])
            if k < len(candidates):
                taken[node.name] += 1
                _attach(node, candidates[k])
                matched += 1
                continue
        module = modules.get(node.fqn)
        if module is not None and node.fqn not in used_modules:
            used_modules.add(node.fqn)
            _attach(node, module)
            matched += 1
    _prune(traced.root)
    total = sum(1 for _ in data.walk())
    traced.meta = {
        **traced.meta,
        "source": data.meta.get("source", ""),
        "retraced": {"counting_mode": traced.counting_mode, "unmatched": total - matched},
    }
    return traced


def _prune(node: Node) -> None:
    """Drop unmeasured nodes; an unmeasured node's children join its parent."""
    kept: list[Node] = []
    for child in node.children:
        _prune(child)
        if child.measured_energy_j is not None:
            kept.append(child)
        else:
            kept.extend(child.children)
    node.children = kept


def retrace_dataset(dataset: Dataset, counting_mode: str = "native") -> Dataset:
    """Every tree of ``dataset`` re-derived by tracing its zoo model at its configuration in
    ``counting_mode``, with the dataset's measurements attached. A model the zoo does not know
    is a DataError (its features can only be taken as the dataset holds them)."""
    from predictor.trace.zoo import build_zoo_tree

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
