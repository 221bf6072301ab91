"""The ablation's rejected variants (benchmarks/ablation_methods.py): they must still do what
the ablation table says they do, since bench_accuracy.py reruns them."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

import predictor.learn.aggregate as aggregate_module
import predictor.learn.profile as profile_module
import predictor.learn.reconcile as reconcile_module
import predictor.learn.regressors as regressors_module
from predictor.learn.flat import Flat
from predictor.learn.regressors import ML_METHODS, STATIC_COLUMNS, WORK_COLUMNS

# benchmarks/ is a folder of scripts beside the package, not part of the installed library.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from test_aggregate import _tree, assert_children_within_parent, random_forest_prediction
from test_regressors import _dipping_data, _falls, _work_grid

from benchmarks.ablation_methods import (
    ABLATION_ML_METHODS,
    MonotonePolyRegressor,
    OneLevelResidualAggregator,
    RefitResidualAggregator,
    fit_monotone_poly,
    reconcile_bottom_up,
    reconcile_scale,
    register,
)


def test_monotone_correction_never_falls_as_work_grows() -> None:
    x, y = _dipping_data()
    free = ML_METHODS["poly-free"](x, y, STATIC_COLUMNS)
    mono = fit_monotone_poly(x, y, STATIC_COLUMNS)
    assert isinstance(mono, MonotonePolyRegressor) and mono.degree == 3
    cols = [STATIC_COLUMNS.index(c) for c in WORK_COLUMNS]
    paths = _work_grid(mono, x[:, cols].min(axis=0), x[:, cols].max(axis=0))
    assert _falls(free, paths) > 0.05  # the data dips, and so does the free cubic
    assert _falls(mono, paths) <= 1e-12  # rounding only
    # ... and still fits the data better than no correction at all.
    plain = ABLATION_ML_METHODS["physical"](x, y, STATIC_COLUMNS)
    mape = {
        r: float(np.mean(np.abs(reg.predict_matrix(x) - y) / y))
        for r, reg in (("mono", mono), ("plain", plain))
    }
    assert mape["mono"] < mape["plain"]
    back = MonotonePolyRegressor.from_dict(mono.to_dict())
    assert back.predict_matrix(x).tolist() == mono.predict_matrix(x).tolist()


def test_other_reconciliations_by_hand() -> None:
    flat = Flat.of([_tree()])  # toy -> (block -> (a, b), c), pre-order [toy, block, a, b, c]
    pred = np.array([10.0, 9.0, 6.0, 4.0, 2.0])
    # bottom-up: block raised to 10 J, then the root to 10 + 2 J.
    assert reconcile_bottom_up(flat, pred).tolist() == [12.0, 10.0, 6.0, 4.0, 2.0]
    # scale: the root's subtree x 10/11; the block's children further x 9/10 (their raw sum
    # overran the block's raw 9 J): every primitive moves, unlike top-down's absorption.
    np.testing.assert_allclose(
        reconcile_scale(flat, pred), [10.0, 90 / 11, 54 / 11, 36 / 11, 20 / 11], rtol=1e-15
    )
    out = reconcile_scale(flat, np.array([10.0, 9.0, 3.0, 4.0, 2.0]))
    np.testing.assert_allclose(out, [10.0, 90 / 11, 30 / 11, 40 / 11, 20 / 11], rtol=1e-15)


@pytest.mark.parametrize("fn", [reconcile_bottom_up, reconcile_scale])
def test_other_reconciliations_keep_the_invariant(fn: reconcile_module.ReconcileFn) -> None:
    flat, pred = random_forest_prediction()
    out = fn(flat, pred)
    assert_children_within_parent(flat, out)
    assert np.all(out >= 0)
    if fn is reconcile_bottom_up:
        assert np.all(out >= pred)
    else:
        roots = flat.parent < 0
        assert out[roots].tolist() == pred[roots].tolist()
        assert np.all(out <= pred)
    np.testing.assert_allclose(fn(flat, out), out, rtol=1e-9)  # idempotent


def test_refits_and_one_level_change_the_fit() -> None:
    trees = [_tree(s, r) for s in (1.0, 2.0, 3.0) for r in (0.0, 5.0, 10.0)]
    flat = Flat.of(trees)
    leaf = flat.measured() * 1.2  # biased leaves: a refit on own predictions absorbs the bias
    stepwise = RefitResidualAggregator(terms=("resid_mem",), ridge=0.0, refits=0)
    refit = RefitResidualAggregator(terms=("resid_mem",), ridge=0.0, refits=1)
    stepwise.fit(trees, leaf)
    refit.fit(trees, leaf)
    weight = {
        name: agg.coef["module"][0] / agg.scale["module"][0]
        for name, agg in (("stepwise", stepwise), ("refit", refit))
    }
    assert weight["stepwise"] == pytest.approx(1.1)  # block = 1.1 * its true children
    assert weight["refit"] == pytest.approx(1.1 / 1.2)  # ... = 1.1 / 1.2 * the predicted ones
    inner = ~flat.is_leaf
    y = flat.measured()

    def err(agg: aggregate_module.ResidualAggregator) -> float:
        return float(np.abs(agg.predict_flat(flat, leaf)[inner] / y[inner] - 1).mean())

    assert err(refit) < err(stepwise)
    one = OneLevelResidualAggregator(terms=("resid_mem",), ridge=0.0).fit(trees, leaf)
    assert sorted(one.coef) == ["all"]


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variants registered into copies of the library's registries, so no other test
    sees them (the registries are module-level: the benchmark registers once per process)."""
    for module, name in (
        (regressors_module, "ML_METHODS"),
        (reconcile_module, "RECONCILE_MODES"),
        (profile_module, "AGGREGATORS"),
        (aggregate_module, "RESIDUAL_TERMS"),
    ):
        monkeypatch.setattr(module, name, dict(getattr(module, name)))
    register()
    register()  # idempotent


@pytest.mark.usefixtures("registered")
def test_register_makes_every_variant_usable() -> None:
    from test_evaluate import _tree as law_tree

    from predictor.learn.data import Dataset
    from predictor.learn.evaluate import cross_validate
    from predictor.learn.profile import Settings

    trees = [law_tree(f"m{w}", w, b, s) for w in (32, 64, 96) for b in (1, 2) for s in (8, 16)]
    ds = Dataset(path=Path("synthetic"), trees=trees)
    variants = zip(
        ("poly", "poly-all", "linear-free", "physical"),
        itertools.cycle(("residual-refit-2", "residual-one-level")),
        itertools.cycle(("bottom-up", "scale")),
        strict=False,
    )
    for ml_method, aggregator, rec in variants:
        settings = Settings(
            ml_method=ml_method,
            aggregator=aggregator,
            reconcile=rec,
            residual_terms=("resid_flops", "input_size"),
        )
        report = cross_validate(ds, "static", settings, not_a_fold=())
        assert all(np.isfinite(v) for v in report.overall.values()), settings
    assert "poly" not in regressors_module.ML_SETTINGS  # a variant, never built in


@pytest.mark.slow
@pytest.mark.usefixtures("registered")
def test_a_bigger_input_never_costs_less_with_a_monotone_profile(irene_device_1: Path) -> None:
    """The reviewer's case: a 2-layer MLP at 8x the tokens predicted fc1 at less energy with
    the free correction; a profile trained with the monotone ``poly`` method never does."""
    from dataclasses import replace

    import torch
    from torch import nn

    from predictor.learn.data import attach_num_parameters, load_dataset
    from predictor.learn.profile import Settings, train_profile
    from predictor.trace.tracer import build_tree

    ds = load_dataset(irene_device_1)
    attach_num_parameters(ds.trees)
    settings = replace(Settings.default("static"), ml_method="poly")
    profile = train_profile(ds, "static", "monotone", settings=settings)

    torch.manual_seed(0)
    mlp = nn.Sequential()
    mlp.add_module("fc1", nn.Linear(64, 256))
    mlp.add_module("act", nn.GELU())
    mlp.add_module("fc2", nn.Linear(256, 64))
    energy: dict[int, dict[str, float]] = {}
    for seq in (1, 2, 4, 16, 128, 4096):
        tree = profile.predict(build_tree(mlp, torch.zeros(1, seq, 64), name="mlp"))
        energy[seq] = {n.name: float(n.energy_j or 0.0) for n in tree.walk()}
    seqs = sorted(energy)
    for name in energy[seqs[0]]:
        values = [energy[s][name] for s in seqs]
        assert all(b >= a for a, b in itertools.pairwise(values)), (name, values)
