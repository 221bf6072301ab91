from __future__ import annotations

import math

import numpy as np
import pytest

from predictor.learn.aggregate import (
    IreneAggregator,
    ResidualAggregator,
    aggregator_from_dict,
    register_residual_term,
)
from predictor.learn.flat import Flat
from predictor.learn.reconcile import reconcile, register_reconcile_mode
from predictor.trace.tree import EnergyTree, Node


def _ml(name: str, flops: float, mem: float, energy: float) -> Node:
    return Node(
        name=name, level="ml", type=name.split(":")[1], fqn=name.split(":")[0], flops=flops,
        mem_bytes=mem, batch_size=8, seq_len=32, measured_energy_j=energy,
    )  # fmt: skip


def _tree(scale: float = 1.0, resid_mem: float = 0.0) -> EnergyTree:
    """root -> (block -> (a, b), c): a module of two primitives plus a direct primitive.

    The block's own ops move ``resid_mem`` MiB its children do not (an add, a GELU function).
    Energies: block = 1.1 * children + 0.002 J/MiB * resid_mem; root = children sum.
    """
    a = _ml("block.a:Linear", 10 * scale, 4 * scale, 0.010 * scale)
    b = _ml("block:Softmax", 2 * scale, 1 * scale, 0.003 * scale)
    c = _ml("head:Linear", 5 * scale, 2 * scale, 0.006 * scale)
    e_block = 1.1 * (a.measured_energy_j + b.measured_energy_j) + 0.002 * resid_mem  # type: ignore[operator]
    block = Node(
        name="block:Block", level="module", type="Block", fqn="block", flops=12 * scale,
        mem_bytes=5 * scale + resid_mem, batch_size=8, seq_len=32, measured_energy_j=e_block,
        children=[a, b],
    )  # fmt: skip
    root = Node(
        name="toy", level="model", type="toy", flops=17 * scale, mem_bytes=7 * scale + resid_mem,
        batch_size=8, seq_len=32, measured_energy_j=e_block + 0.006 * scale, children=[block, c],
    )  # fmt: skip
    return EnergyTree(root=root)


def test_flat_structure_by_hand() -> None:
    flat = Flat.of([_tree(), _tree()])
    names = [n.name for n in flat.nodes[:5]]
    assert names == ["toy", "block:Block", "block.a:Linear", "block:Softmax", "head:Linear"]
    assert flat.parent.tolist() == [-1, 0, 1, 1, 0, -1, 5, 6, 6, 5]
    assert flat.depth.tolist() == [0, 1, 2, 2, 1] * 2
    assert flat.tree.tolist() == [0] * 5 + [1] * 5
    sums = flat.child_sum(np.arange(10, dtype=float))
    assert sums[:5].tolist() == [1 + 4, 2 + 3, 0, 0, 0]
    assert [d.tolist() for d in flat.depths_bottom_up()] == [[1, 6], [0, 5]]


def test_irene_weights_by_hand() -> None:
    agg = IreneAggregator(columns=("flops",), degree=1)
    agg.mean, agg.scale = np.zeros(1), np.ones(1)
    agg.weight, agg.bias = np.zeros(1), 0.0  # w = 1: plain sums
    flat = Flat.of([_tree()])
    leaf = np.array([0.0, 0.0, 1.0, 2.0, 4.0])
    assert agg.predict_flat(flat, leaf).tolist() == [7.0, 3.0, 1.0, 2.0, 4.0]
    agg.bias = 0.5  # w = 1 + tanh(0.5) / 10 for every child
    w = 1 + math.tanh(0.5) / 10
    out = agg.predict_flat(flat, leaf)
    assert out[1] == pytest.approx(3.0 * w)
    assert out[0] == pytest.approx(3.0 * w * w + 4.0 * w)


def test_irene_training_reduces_the_error() -> None:
    trees = [_tree(s) for s in (1.0, 2.0, 3.0, 4.0)]
    flat = Flat.of(trees)
    leaf = flat.measured()
    y = flat.measured()
    inner = ~flat.is_leaf
    untrained = IreneAggregator(columns=("flops", "mem_bytes"))
    untrained.mean, untrained.scale = np.zeros(2), np.ones(2)
    untrained.weight = np.zeros(9)
    err0 = np.abs(untrained.predict_flat(flat, leaf)[inner] / y[inner] - 1).mean()
    agg = IreneAggregator(columns=("flops", "mem_bytes")).fit(trees, leaf, epochs=200, lr=1e-2)
    err1 = np.abs(agg.predict_flat(flat, leaf)[inner] / y[inner] - 1).mean()
    assert err1 < 0.5 * err0
    back = aggregator_from_dict(agg.to_dict())
    assert back.predict_flat(flat, leaf).tolist() == agg.predict_flat(flat, leaf).tolist()


@pytest.mark.parametrize("split", [False, True])
def test_residual_recovers_the_law(split: bool) -> None:
    trees = [_tree(s, r) for s in (1.0, 2.0, 3.0) for r in (0.0, 5.0, 10.0)]
    flat = Flat.of(trees)
    leaf = flat.measured()
    agg = ResidualAggregator(terms=("resid_mem",), split_children=split, ridge=0.0).fit(trees, leaf)
    pred = agg.predict_flat(flat, leaf)
    np.testing.assert_allclose(pred, flat.measured(), rtol=1e-9)
    # block: 1.1 * children + 0.002 J/MiB of residual bytes, recovered in the coefficients
    coef = agg.coef["module"] / agg.scale["module"]
    assert coef[-1] == pytest.approx(0.002, rel=1e-6)
    assert coef[0] == pytest.approx(1.1, rel=1e-6)
    back = aggregator_from_dict(agg.to_dict())
    assert back.predict_flat(flat, leaf).tolist() == pred.tolist()


def test_residual_uses_predicted_children_at_test_time() -> None:
    trees = [_tree(s, 5.0) for s in (1.0, 2.0)]
    flat = Flat.of(trees)
    agg = ResidualAggregator(terms=("resid_mem",), ridge=0.0).fit(trees, flat.measured())
    leaf = flat.measured() * 2.0  # every primitive predicted twice as high
    pred = agg.predict_flat(flat, leaf)
    assert pred[1] == pytest.approx(1.1 * 2.0 * 0.013 + 0.002 * 5.0, rel=1e-6)


def test_unknown_aggregator_kind() -> None:
    with pytest.raises(ValueError, match="unknown aggregator kind 'magic'"):
        aggregator_from_dict({"kind": "magic"})


# -- hierarchical consistency -----------------------------------------------------------------


def assert_children_within_parent(flat: Flat, energy: np.ndarray) -> None:
    """The invariant: for every node, sum(children energy) <= node energy (1e-9 relative)."""
    sums = flat.child_sum(energy)
    inner = np.flatnonzero(~flat.is_leaf)
    bad = inner[sums[inner] > energy[inner] * (1 + 1e-9)]
    assert bad.size == 0, [(flat.nodes[i].name, energy[i], sums[i]) for i in bad[:5]]


def test_reconcile_top_down_by_hand() -> None:
    # toy -> (block -> (a, b), c), pre-order [toy, block, a, b, c]
    flat = Flat.of([_tree()])
    # Children overrun the root by 1 J (9 + 2 > 10) and the block by 1 J (6 + 4 > 9).
    out = reconcile(flat, np.array([10.0, 9.0, 6.0, 4.0, 2.0]))
    # Root kept; its overrun cut evenly (1/11 of each child); the block, now 90/11 J, is overrun
    # by its children's 10 J: they lose 20/11 J in proportion (2/11 each).
    np.testing.assert_allclose(out, [10.0, 90 / 11, 54 / 11, 36 / 11, 20 / 11], rtol=1e-15)
    assert_children_within_parent(flat, out)
    # The block's own-op energy (9 - 7 = 2 J) absorbs its 9/11 J cut: a and b stay as predicted.
    pred = np.array([10.0, 9.0, 3.0, 4.0, 2.0])
    out = reconcile(flat, pred)
    assert out.tolist()[2:4] == [3.0, 4.0]
    np.testing.assert_allclose(out[:2], [10.0, 90 / 11], rtol=1e-15)
    assert out[4] == pytest.approx(20 / 11, rel=1e-15)
    # Already consistent: returned exactly as predicted.
    pred = np.array([12.0, 9.0, 3.0, 4.0, 2.0])
    assert reconcile(flat, pred).tolist() == pred.tolist()


def test_reconcile_none_and_unknown_modes() -> None:
    flat = Flat.of([_tree()])
    pred = np.array([10.0, 9.0, 6.0, 4.0, 2.0])
    assert reconcile(flat, pred, "none") is pred  # IrEne's method: as predicted
    # Negative predictions are no energy: set to 0 before reconciling.
    out = reconcile(flat, np.array([10.0, 9.0, -1.0, 4.0, 2.0]))
    assert out[2] == 0.0 and out[3] == 4.0
    with pytest.raises(ValueError, match="unknown reconcile mode 'sideways'"):
        reconcile(flat, pred, "sideways")


def test_built_in_entries_cannot_be_replaced() -> None:
    with pytest.raises(ValueError, match="reconcile mode 'top-down' is built in"):
        register_reconcile_mode("top-down", lambda flat, e: e)
    with pytest.raises(ValueError, match="residual term 'resid_mem' is built in"):
        register_residual_term("resid_mem", lambda nodes: np.zeros(len(nodes)))
    with pytest.raises(ValueError, match="prefix 'own:' names a runtime column"):
        register_residual_term("own:cpu", lambda nodes: np.zeros(len(nodes)))


def test_unknown_residual_term() -> None:
    trees = [_tree(s) for s in (1.0, 2.0)]
    with pytest.raises(ValueError, match=r"unknown aggregator term 'ownx:a\*b'.*resid_flops"):
        ResidualAggregator(terms=("ownx:a*b",)).fit(trees, Flat.of(trees).measured())


def _random_tree(rng: np.random.Generator, depth: int = 0) -> Node:
    """A random tree (fan-out 0-4, depth <= 4) with random energies, often inconsistent."""
    energy = float(rng.uniform(0.1, 10.0))
    n_kids = int(rng.integers(1, 5)) if depth == 0 else int(rng.integers(0, 5)) if depth < 4 else 0
    kids = [_random_tree(rng, depth + 1) for _ in range(n_kids)]
    level = "model" if depth == 0 else "module" if kids else "ml"
    return Node(name=f"n{depth}", level=level, type="T", energy_j=energy, children=kids)


def random_forest_prediction(seed: int = 7) -> tuple[Flat, np.ndarray]:
    """300 random trees and their (mostly inconsistent) random energies."""
    rng = np.random.default_rng(seed)
    flat = Flat.of([EnergyTree(root=_random_tree(rng)) for _ in range(300)])
    pred = np.asarray([n.energy_j for n in flat.nodes], dtype=np.float64)
    assert (flat.child_sum(pred) > pred)[~flat.is_leaf].mean() > 0.3  # mostly inconsistent
    return flat, pred


def test_reconcile_invariant_on_random_trees() -> None:
    flat, pred = random_forest_prediction()
    out = reconcile(flat, pred, "top-down")
    assert_children_within_parent(flat, out)
    assert np.all(out >= 0)
    roots = flat.parent < 0
    assert out[roots].tolist() == pred[roots].tolist()  # the root keeps its prediction
    assert np.all(out <= pred)  # nothing grows
    assert reconcile(flat, pred).tolist() == out.tolist()  # deterministic
    np.testing.assert_allclose(reconcile(flat, out), out, rtol=1e-9)  # idempotent


def test_aggregators_reconcile_their_predictions() -> None:
    flat = Flat.of([_tree()])
    leaf = np.array([0.0, 0.0, 1.0, 2.0, 4.0])
    # A module level that undercuts its children: block = 0.5 * children.
    agg = ResidualAggregator(terms=(), reconcile="none")
    agg.coef = {"module": np.array([0.5]), "model": np.array([1.0])}
    agg.scale = {"module": np.ones(1), "model": np.ones(1)}
    raw = agg.predict_flat(flat, leaf)
    assert raw.tolist() == [5.5, 1.5, 1.0, 2.0, 4.0]  # block (1.5) < a + b (3)
    data = agg.to_dict()
    data["reconcile"] = "top-down"
    fixed = aggregator_from_dict(data).predict_flat(flat, leaf)
    assert_children_within_parent(flat, fixed)
    assert fixed[0] == 5.5 and fixed[4] == 4.0 and fixed[1] == 1.5
    np.testing.assert_allclose(fixed[2:4], [0.5, 1.0], rtol=1e-15)
    del data["reconcile"]  # a profile saved before reconciliation: reconciled too
    assert aggregator_from_dict(data).predict_flat(flat, leaf).tolist() == fixed.tolist()
    data["reconcile"] = "sideways"
    with pytest.raises(ValueError, match="unknown reconcile mode"):
        aggregator_from_dict(data)
    irene = IreneAggregator(columns=("flops",), degree=1, bias=-5.0, reconcile="top-down")
    irene.mean, irene.scale, irene.weight = np.zeros(1), np.ones(1), np.zeros(1)
    out = irene.predict_flat(flat, leaf)  # w = 1 + tanh(-5) / 10 < 1 for every child
    assert out[0] == pytest.approx((3.0 * 0.9 + 4.0) * 0.9, rel=1e-3)
    assert_children_within_parent(flat, out)
