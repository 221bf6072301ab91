from __future__ import annotations

import math

import numpy as np
import pytest

from predictor.aggregate import Flat, IreneAggregator, ResidualAggregator, aggregator_from_dict
from predictor.tree import EnergyTree, Node


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
