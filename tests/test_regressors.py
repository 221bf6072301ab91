from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from predictor.errors import ProfileError
from predictor.learn.regressors import (
    ML_METHODS,
    STATIC_COLUMNS,
    MLRegressors,
    PolyRegressor,
    feature_columns,
    feature_matrix,
    fit_regressor,
    poly_terms,
)
from predictor.trace.tree import RUNTIME_FEATURES, Node


def test_poly_terms_by_hand() -> None:
    z = np.array([[2.0, 3.0]])
    # 1, z0, z1, z0^2, z0 z1, z1^2
    assert poly_terms(z, 2).tolist() == [[1.0, 2.0, 3.0, 4.0, 6.0, 9.0]]
    assert poly_terms(np.zeros((1, 3)), 3).shape == (1, 1 + 3 + 6 + 10)


def test_ols_recovers_a_linear_law() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(1, 10, size=(50, 2))
    y = 0.5 + 2.0 * x[:, 0] + 0.25 * x[:, 1]
    reg = fit_regressor(x, y, ["flops", "mem_bytes"], degree=1, relative=False, ridge=0.0)
    x_new = np.array([[3.0, 7.0], [20.0, 1.0]])  # the second one outside the training range
    np.testing.assert_allclose(
        reg.predict_matrix(x_new), [0.5 + 6 + 1.75, 0.5 + 40 + 0.25], rtol=1e-10
    )


def test_relative_fit_weights_small_targets() -> None:
    # Two clusters that a line cannot fit: relative LS trades absolute error on the big one
    # for a small percentage error on the small one; OLS does the opposite.
    x = np.array([[1.0], [1.0], [100.0], [100.0], [50.0]])
    y = np.array([1.0, 1.2, 100.0, 140.0, 50.0])
    rel = fit_regressor(x, y, ["flops"], degree=1, relative=True, ridge=0.0)
    ols = fit_regressor(x, y, ["flops"], degree=1, relative=False, ridge=0.0)
    small = np.array([[1.0]])
    assert abs(rel.predict_matrix(small)[0] - 1.1) < abs(ols.predict_matrix(small)[0] - 1.1)


def test_poly_correction_fits_curvature_and_stops_at_the_range() -> None:
    x = np.linspace(1.0, 10.0, 40)[:, None]
    y = x[:, 0] * (1.0 + 0.05 * (x[:, 0] - 5.0) ** 2)
    lin = fit_regressor(x, y, ["flops"], degree=1)
    cubic = fit_regressor(x, y, ["flops"], degree=3, ridge=0.0)
    err_lin = np.abs(lin.predict_matrix(x) / y - 1).mean()
    err_cubic = np.abs(cubic.predict_matrix(x) / y - 1).mean()
    assert err_lin > 0.15  # a line misses the curvature by ~17 %
    assert err_cubic < 0.02  # the cubic correction gets within ~1 %
    # Outside the range the correction is frozen at its boundary value: base * c(hi).
    far = np.array([[1000.0]])
    z_far = (far - cubic.mean) / cubic.scale
    base = float((np.column_stack([z_far, [[1.0]]]) @ cubic.base_coef)[0])
    c_hi = float((poly_terms(cubic.hi[None, :], 3) @ cubic.corr_coef)[0])
    assert cubic.predict_matrix(far)[0] == pytest.approx(base * c_hi, rel=1e-12)


def test_constant_column_is_ignored_at_prediction() -> None:
    x = np.column_stack([np.linspace(1, 5, 10), np.zeros(10)])
    y = 2.0 * x[:, 0]
    reg = fit_regressor(x, y, ["flops", "num_parameters"], degree=3)
    assert reg.active.tolist() == [1.0, 0.0]
    a = reg.predict_matrix(np.array([[3.0, 0.0]]))
    b = reg.predict_matrix(np.array([[3.0, 1e9]]))
    assert a[0] == b[0] == pytest.approx(6.0, rel=1e-6)


def test_predictions_are_floored_positive() -> None:
    x = np.linspace(1, 10, 10)[:, None]
    y = x[:, 0] - 0.5
    reg = fit_regressor(x, y, ["flops"], degree=1)
    assert reg.predict_matrix(np.array([[-100.0]]))[0] == pytest.approx(0.01 * y.min())


def test_round_trip_through_plain_data() -> None:
    rng = np.random.default_rng(2)
    x = rng.uniform(1, 10, size=(30, 3))
    y = x.sum(axis=1) + x[:, 0] ** 2
    reg = fit_regressor(x, y, ["a", "b", "c"], degree=3)
    back = PolyRegressor.from_dict(reg.to_dict())
    probe = rng.uniform(0, 12, size=(7, 3))
    assert back.predict_matrix(probe).tolist() == reg.predict_matrix(probe).tolist()


def _ml(typ: str, flops: float, mem: float, energy: float | None = None, batch: int = 8) -> Node:
    return Node(
        name=f"x:{typ}", level="ml", type=typ, flops=flops, mem_bytes=mem,
        batch_size=batch, seq_len=32, measured_energy_j=energy,
    )  # fmt: skip


def test_per_type_regressors_and_flagged_fallback() -> None:
    nodes = [_ml("Linear", f, 2 * f, 1e-3 * f + 1e-4, b) for f in (1, 2, 4, 8) for b in (8, 16)]
    nodes += [_ml("Softmax", f, f, 5e-3 * f + 1e-3, b) for f in (1, 2, 4, 8) for b in (8, 16)]
    ml = MLRegressors.fit(nodes, "static")
    assert sorted(ml.by_type) == ["Linear", "Softmax"]
    probe = [_ml("Linear", 3, 6), _ml("SiLU", 3, 6), _ml("Softmax", 3, 3)]
    energy, extrapolated = ml.predict(probe)
    assert extrapolated.tolist() == [False, True, False]
    assert energy[0] == pytest.approx(3.1e-3, rel=1e-2)
    assert energy[2] == pytest.approx(1.6e-2, rel=1e-2)
    assert np.isfinite(energy[1]) and energy[1] > 0
    back = MLRegressors.from_dict(ml.to_dict())
    assert back.predict(probe)[0].tolist() == energy.tolist()


def test_feature_sets_and_missing_runtime() -> None:
    assert feature_columns("static") == STATIC_COLUMNS
    assert feature_columns("full") == STATIC_COLUMNS + RUNTIME_FEATURES
    with pytest.raises(ProfileError, match="unknown feature set 'gpu'"):
        feature_columns("gpu")
    node = _ml("Linear", 1, 1)
    with pytest.raises(ProfileError, match=r"no runtime feature 'cpu'.*static profile"):
        feature_matrix([node], feature_columns("full"))


def test_correction_on_chosen_columns_in_log_space() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(1, 100, size=(200, 3))  # flops, batch_size (a grid axis), mem
    x[:, 1] = rng.choice([8.0, 24.0, 32.0], size=200)
    y = x[:, 0] * (1 + 0.2 * np.log(x[:, 0])) + x[:, 2]
    reg = fit_regressor(
        x, y, ["flops", "batch_size", "mem_bytes"], degree=3, physical_base=True,
        log_features=True, corr_columns=("flops", "mem_bytes"), ridge=0.0,
    )  # fmt: skip
    assert reg.corr_idx == [0, 2] and reg.base_idx == [0, 2]
    assert np.abs(reg.predict_matrix(x) / y - 1).mean() < 0.01
    # batch_size plays no part: an unseen batch gives the same energy
    probe = np.array([[50.0, 16.0, 20.0], [50.0, 8.0, 20.0]])
    a, b = reg.predict_matrix(probe)
    assert a == b
    # the physical base is non-negative: more work never predicts less energy
    assert np.all(reg.base_coef >= 0)
    back = PolyRegressor.from_dict(reg.to_dict())
    assert back.predict_matrix(probe).tolist() == reg.predict_matrix(probe).tolist()


def test_degree_drops_for_rare_types() -> None:
    x = np.linspace(1, 10, 12)[:, None] * np.array([[1.0, 2.0, 0.5]]) + np.arange(12)[:, None] % 3
    y = x.sum(axis=1)
    reg = fit_regressor(x, y, ["a", "b", "c"], degree=3, rows_per_term=5.0)
    assert reg.degree == 1  # 10 terms for degree 2 would need 50 rows


# -- monotonicity: more work never predicts less energy ---------------------------------------

WORK = ("flops", "mem_bytes", "input_size")


def _dipping_data() -> tuple[np.ndarray, np.ndarray]:
    """Energies that *fall* by up to ~25 % in the middle of the range (as GPU kernels with
    friendlier shapes do): a free cubic correction follows the dip, a monotone one may not."""
    rng = np.random.default_rng(0)
    n = 400
    tokens = rng.integers(8, 512, n).astype(float)
    flops = tokens * rng.uniform(1e3, 1e5, n)
    mem = tokens * rng.uniform(1e2, 1e3, n)
    u = np.log(flops)
    dip = 1.0 - 0.25 * np.exp(-((u - u.mean()) ** 2) / (2 * (0.3 * u.std()) ** 2))
    energy = (1e-4 + 2e-9 * flops + 1e-8 * mem) * dip
    x = np.zeros((n, len(STATIC_COLUMNS)))
    x[:, STATIC_COLUMNS.index("flops")] = flops
    x[:, STATIC_COLUMNS.index("mem_bytes")] = mem
    x[:, STATIC_COLUMNS.index("input_size")] = tokens
    x[:, STATIC_COLUMNS.index("batch_size")] = 1.0
    x[:, STATIC_COLUMNS.index("seq_len")] = tokens
    return x, energy


def _work_grid(
    reg: PolyRegressor, lows: np.ndarray, highs: np.ndarray, n: int = 13
) -> list[np.ndarray]:
    """Rows that increase along one work feature (others on a grid), from 1000x below to 1000x
    above ``lows``/``highs``, plus a path where all three grow together."""
    axes = [
        np.geomspace(max(lo, 1.0) * 1e-3, hi * 1e3, n) for lo, hi in zip(lows, highs, strict=True)
    ]
    idx = [reg.columns.index(c) for c in WORK]
    fixed = np.ones(len(reg.columns))
    for c, v in (("batch_size", 8.0), ("seq_len", 128.0), ("num_parameters", 1e6)):
        if c in reg.columns:
            fixed[reg.columns.index(c)] = v
    paths = []
    for k in range(3):
        others = [a for j, a in enumerate(axes) if j != k]
        for o1 in others[0][::3]:
            for o2 in others[1][::3]:
                x = np.tile(fixed, (n, 1))
                x[:, idx[k]] = axes[k]
                x[:, [i for j, i in enumerate(idx) if j != k]] = (o1, o2)
                paths.append(x)
    x = np.tile(fixed, (n, 1))
    x[:, idx] = np.column_stack(axes)
    paths.append(x)
    return paths


def _falls(reg: PolyRegressor, paths: list[np.ndarray]) -> float:
    """Largest relative fall of the prediction along any path (0 when monotone)."""
    worst = 0.0
    for x in paths:
        e = reg.predict_matrix(x)
        worst = max(worst, float(np.max((e[:-1] - e[1:]) / e[:-1])))
    return worst


def test_monotone_correction_never_falls_as_work_grows() -> None:
    x, y = _dipping_data()
    settings = ML_METHODS["poly"]
    free = fit_regressor(x, y, STATIC_COLUMNS, **{**settings, "monotone": False})
    mono = fit_regressor(x, y, STATIC_COLUMNS, **settings)
    cols = [STATIC_COLUMNS.index(c) for c in WORK]
    paths = _work_grid(mono, x[:, cols].min(axis=0), x[:, cols].max(axis=0))
    assert _falls(free, paths) > 0.05  # the data dips, and so does the free cubic
    assert _falls(mono, paths) <= 1e-12  # rounding only
    # ... and still fits the data better than no correction at all.
    plain = fit_regressor(x, y, STATIC_COLUMNS, **ML_METHODS["physical"])
    mape = {
        r: float(np.mean(np.abs(reg.predict_matrix(x) - y) / y))
        for r, reg in (("mono", mono), ("plain", plain))
    }
    assert mape["mono"] < mape["plain"]


def test_monotone_linear_keeps_work_coefficients_non_negative() -> None:
    x, y = _dipping_data()
    cols = [STATIC_COLUMNS.index(c) for c in WORK]
    y = y * (
        1.0 + 0.5 * np.log(x[:, cols[2]]).max() - 0.5 * np.log(x[:, cols[2]])
    )  # fewer tokens, dearer
    free = fit_regressor(x, y, STATIC_COLUMNS, **ML_METHODS["linear-free"])
    mono = fit_regressor(x, y, STATIC_COLUMNS, **ML_METHODS["linear"])
    paths = _work_grid(mono, x[:, cols].min(axis=0), x[:, cols].max(axis=0))
    assert _falls(free, paths) > 0.0
    assert _falls(mono, paths) <= 1e-12  # rounding only


def test_monotone_regressors_never_predict_less_energy_for_more_work() -> None:
    """Every regressor fit with ``monotone`` in the shipped profiles: all of the full
    profile's and both fallbacks (the static default ``poly-free`` is not monotone: see
    predictor/learn/regressors.py)."""
    from predictor.learn.profile import list_profiles, load_profile

    checked = 0
    for name in list_profiles():
        profile = load_profile(name)
        regs = {
            **{t: r for t, r in profile.ml.by_type.items() if profile.ml.method != "poly-free"},
            "<fallback>": profile.ml.fallback,
        }
        checked += len(regs)
        for typ, reg in regs.items():
            cols = [reg.columns.index(c) for c in WORK]
            if reg.log_features:
                t = reg.mean[cols]
                lows, highs = np.expm1(t - 3 * reg.scale[cols]), np.expm1(t + 3 * reg.scale[cols])
            else:
                lows, highs = reg.mean[cols] / 100, reg.mean[cols] * 100 + 1
            paths = _work_grid(reg, np.maximum(lows, 1.0), np.maximum(highs, 2.0))
            assert _falls(reg, paths) <= 1e-12, (name, typ)
    assert checked >= 8  # the full profile's types and two fallbacks


@pytest.mark.slow
def test_a_bigger_input_never_costs_less_with_a_monotone_profile(irene_device_1: Path) -> None:
    """The reviewer's case: a 2-layer MLP at 8x the tokens predicted fc1 at less energy with
    the free correction; a profile trained with the monotone ``poly`` method never does."""
    from dataclasses import replace

    import torch
    from torch import nn

    from predictor.learn.data import load_dataset
    from predictor.learn.profile import Settings, attach_num_parameters, train_profile
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
