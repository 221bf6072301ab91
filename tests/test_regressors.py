from __future__ import annotations

import numpy as np
import pytest

from predictor.errors import ProfileError
from predictor.learn.regressors import (
    ML_METHODS,
    ML_SETTINGS,
    STATIC_COLUMNS,
    WORK_COLUMNS,
    MLRegressors,
    PolyRegressor,
    _nnls,
    _ridge,
    feature_columns,
    feature_matrix,
    fit_regressor,
    poly_terms,
    register_ml_method,
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
    ml = MLRegressors.fit(nodes, "static", method="poly-free")
    assert sorted(ml.by_kernel) == ["gemm", "softmax"]  # their kernel classes
    assert ml.by_type == {}  # 8 rows each: too few for a regressor per type
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


def test_unknown_and_built_in_ml_methods() -> None:
    with pytest.raises(
        ValueError, match=r"unknown ML method 'poly'; use one of irene, linear, poly-free"
    ):
        MLRegressors.fit([_ml("Linear", 1, 1, 1.0)], "static", method="poly")
    with pytest.raises(ValueError, match="ML method 'linear' is built in"):
        register_ml_method("linear", ML_METHODS["irene"])
    assert list(ML_METHODS)[:3] == list(ML_SETTINGS) == ["irene", "linear", "poly-free"]


def test_a_monotone_fit_is_linear_only() -> None:
    x = np.linspace(1, 10, 20)[:, None]
    with pytest.raises(ValueError, match="a monotone fit is linear"):
        fit_regressor(x, x[:, 0], ["flops"], degree=3, monotone=True)


# -- the solvers, against hand-computed and brute-force solutions -----------------------------

# a = [[1, 0], [0, 1], [1, 1]], b = [1, -1, 0]: the unconstrained least squares is (1, -1)
# (normal equations [[2, 1], [1, 2]] x = [1, -1]); with x2 >= 0 it is x2 = 0 and x1 = 1/2
# (min (x1 - 1)^2 + 1 + x1^2), where the gradient in x2, a2 . (a x - b) = 1.5, is >= 0.
A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
B = np.array([1.0, -1.0, 0.0])


def test_nnls_by_hand() -> None:
    np.testing.assert_allclose(_nnls(A, B), [0.5, 0.0], atol=1e-15)
    np.testing.assert_allclose(_nnls(A, -B), [0.0, 0.5], atol=1e-15)
    np.testing.assert_allclose(_nnls(A, A @ [2.0, 3.0]), [2.0, 3.0], rtol=1e-14)  # interior


def test_ridge_by_hand() -> None:
    np.testing.assert_allclose(_ridge(A, B, 0.0), [1.0, -1.0], rtol=1e-14)
    # ridge 1: (a'a + I) x = a'b, [[3, 1], [1, 3]] x = [1, -1] -> x = (1/2, -1/2)
    np.testing.assert_allclose(_ridge(A, B, 1.0), [0.5, -0.5], rtol=1e-14)
    # one column, ridge 2: x = a'b / (a'a + 2) = 4 / 4
    np.testing.assert_allclose(_ridge(np.ones((2, 1)), np.array([1.0, 3.0]), 2.0), [1.0])
    # x2 >= 0 binds: as for the non-negative fit; x1 >= 0 does not: as unconstrained
    np.testing.assert_allclose(_ridge(A, B, 0.0, nonneg=[1]), [0.5, 0.0], atol=1e-15)
    np.testing.assert_allclose(_ridge(A, B, 0.0, nonneg=[0]), [1.0, -1.0], rtol=1e-14)
    # ridge 1, x2 >= 0: x2 = 0, then min (x1 - 1)^2 + x1^2 + x1^2 -> x1 = 1/3
    np.testing.assert_allclose(_ridge(A, B, 1.0, nonneg=[1]), [1 / 3, 0.0], atol=1e-15)


def _brute_force(a: np.ndarray, b: np.ndarray, ridge: float, nonneg: list[int]) -> np.ndarray:
    """The exact sign-constrained ridge fit by trying every set of constrained coefficients
    held at zero (what the library did by hand before it used scikit-learn and scipy)."""
    n = a.shape[1]
    aa = np.vstack([a, np.sqrt(ridge) * np.eye(n)])
    bb = np.concatenate([b, np.zeros(n)])
    best, best_res = np.zeros(n), np.inf
    for mask in range(1 << len(nonneg)):
        keep = [j for j in range(n) if j not in [k for i, k in enumerate(nonneg) if mask >> i & 1]]
        coef = np.zeros(n)
        coef[keep] = np.linalg.lstsq(aa[:, keep], bb, rcond=None)[0]
        res = float(np.sum((aa @ coef - bb) ** 2))
        if np.all(coef[nonneg] >= 0) and res < best_res:
            best, best_res = coef, res
    return best


@pytest.mark.parametrize("seed", range(20))
def test_solvers_match_the_exact_subset_search(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(30, 4))
    b = a @ rng.normal(size=4) + 0.3 * rng.normal(size=30)
    np.testing.assert_allclose(_nnls(a, b), _brute_force(a, b, 0.0, [0, 1, 2, 3]), atol=1e-12)
    np.testing.assert_allclose(_ridge(a, b, 0.5), _brute_force(a, b, 0.5, []), rtol=1e-12)
    np.testing.assert_allclose(
        _ridge(a, b, 1e-6, nonneg=[1, 3]), _brute_force(a, b, 1e-6, [1, 3]), atol=1e-12
    )


# -- monotonicity: more work never predicts less energy ---------------------------------------

WORK = WORK_COLUMNS


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


def test_monotone_linear_keeps_work_coefficients_non_negative() -> None:
    x, y = _dipping_data()
    cols = [STATIC_COLUMNS.index(c) for c in WORK_COLUMNS]
    y = y * (
        1.0 + 0.5 * np.log(x[:, cols[2]]).max() - 0.5 * np.log(x[:, cols[2]])
    )  # fewer tokens, dearer
    free = fit_regressor(x, y, STATIC_COLUMNS, **{**ML_SETTINGS["linear"], "monotone": False})
    mono = ML_METHODS["linear"](x, y, STATIC_COLUMNS)
    paths = _work_grid(mono, x[:, cols].min(axis=0), x[:, cols].max(axis=0))
    assert _falls(free, paths) > 0.0
    assert _falls(mono, paths) <= 1e-12  # rounding only


def test_monotone_regressors_never_predict_less_energy_for_more_work() -> None:
    """Every regressor of the shipped profiles fit ``monotone``: all of the full profile's
    (``linear``) and both fallbacks (the static profile's ``poly-free`` is not monotone: see
    predictor/learn/regressors.py)."""
    from predictor.learn.profile import Profile, list_profiles, load_profile

    checked = 0
    for name in list_profiles():
        profile = load_profile(name)
        if not isinstance(profile, Profile):  # a device profile: no regressors (test_devices)
            continue
        per_key = {**profile.ml.by_type, **{f"<{k}>": r for k, r in profile.ml.by_kernel.items()}}
        regs = {
            **{t: r for t, r in per_key.items() if profile.ml.method != "poly-free"},
            "<fallback>": profile.ml.fallback,
        }
        assert all(r.monotone for r in regs.values()), name
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
