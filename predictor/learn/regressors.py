"""ML level: one regressor per primitive type, plus a pooled fallback for unseen types.

IrEne fits, per primitive type (Linear, LayerNorm, MatMul, ...), ordinary least squares on
standardised features. We keep that as the ``"irene"`` method and add ``"poly"`` (the default),
chosen by leave-one-model-out cross-validation and by predictions at batch sizes and sequence
lengths missing from training (benchmarks/results/ablation.md):

1. a *physical base*: energy = a + b * MFLOPs + c * MiB + d * tokens with non-negative
   coefficients, fitted by relative least squares (minimising ``sum ((pred - y) / y)^2``, the
   squared percentage error IrEne's metric measures), so energy never falls as work grows and
   extrapolates linearly in work (a 7B model is not fed to a cubic);
2. a multiplicative *correction* ``pred = base * c(z)``, a ridge-regularised cubic in the
   standardised logs of FLOPs, bytes and tokens, clipped to the range seen in training, its value
   clipped to the range it took there. It fits how efficiency changes with size (a MatMul at seq
   160 costs more per FLOP than at 128) without keying on the dataset's batch/seq grid;
3. optionally *monotone* (method ``poly``): the correction is fit under the constraint that
   ``base * c`` does not fall as FLOPs, bytes or tokens grow (imposed on a grid over the training
   box wherever the clipped correction is live), and above the box the extra work is charged at
   the base's own, non-negative rate. The static default is the unconstrained ``poly-free``:
   device_1's measurements are not monotone themselves, and the constraint costs ~1.1 points of
   leave-one-model-out ML error (3.8 % against the 3 % target). Its known limitation: far from
   the training data (a width-64 Linear on 2 vs 16 tokens) a bigger input can be predicted a few
   percent lower. The full profile's ``linear`` and the fallback are monotone.

Everything a fitted regressor holds is plain numbers (``to_dict``/``from_dict``), so a profile
stores no pickled estimator class. All arithmetic is numpy float64 in a fixed order, so the same
input gives bit-identical joules on every run.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from predictor.errors import ProfileError
from predictor.trace.tree import RUNTIME_FEATURES, Node

__all__ = [
    "FEATURE_SETS",
    "STATIC_COLUMNS",
    "FeatureSet",
    "MLRegressors",
    "PolyRegressor",
    "feature_columns",
    "feature_matrix",
    "fit_regressor",
    "poly_terms",
]

FeatureSet = Literal["static", "full"]
FEATURE_SETS: tuple[FeatureSet, ...] = ("static", "full")
Method = Literal["irene", "poly"]

#: Static columns fed to the regressors (``input_size`` = batch_size * seq_len tokens).
STATIC_COLUMNS: tuple[str, ...] = (
    "batch_size",
    "seq_len",
    "flops",
    "mem_bytes",
    "input_size",
    "num_parameters",
)

Array = npt.NDArray[np.float64]


def feature_columns(feature_set: str, runtime: Sequence[str] = RUNTIME_FEATURES) -> tuple[str, ...]:
    """The feature columns of a feature set: ``static``, or ``full`` (static + ``runtime``, by
    default every runtime column of the IrEne layout)."""
    if feature_set == "static":
        return STATIC_COLUMNS
    if feature_set == "full":
        return STATIC_COLUMNS + tuple(runtime)
    raise ProfileError(f"unknown feature set {feature_set!r}; use one of {', '.join(FEATURE_SETS)}")


def feature_matrix(nodes: Sequence[Node], columns: Sequence[str]) -> Array:
    """``len(nodes) x len(columns)`` float64 matrix; a missing runtime feature raises."""
    out = np.empty((len(nodes), len(columns)), dtype=np.float64)
    for i, node in enumerate(nodes):
        for j, col in enumerate(columns):
            try:
                out[i, j] = node.feature(col)
            except KeyError:
                raise ProfileError(
                    f"node {node.name!r} has no runtime feature {col!r}: this profile uses the "
                    "'full' feature set (static + runtime measurements), which only a tree measured "
                    "on the device has; use a static profile (e.g. 'irene-device-1') for traced models"
                ) from None
    return out


def poly_terms(z: Array, degree: int) -> Array:
    """Polynomial expansion ``[1, z_i, z_i z_j, ...]`` up to ``degree`` (monomials, fixed order)."""
    cols = [np.ones(z.shape[0])]
    for d in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(z.shape[1]), d):
            term = z[:, combo[0]].copy()
            for k in combo[1:]:
                term = term * z[:, k]
            cols.append(term)
    return np.column_stack(cols)


def _log_transform(x: Array) -> Array:
    """``log(1 + max(x, 0))``: sizes spanning decades become evenly spread."""
    return np.log1p(np.maximum(x, 0.0))


def _n_terms(n_features: int, degree: int) -> int:
    """Number of monomials of degree <= ``degree`` in ``n_features`` variables."""
    return math.comb(n_features + degree, degree)


def _solve(a: Array, b: Array, ridge: float) -> Array:
    """Ridge-regularised least squares ``argmin |a x - b|^2 + ridge |x|^2`` (intercept too)."""
    if ridge > 0.0:
        n = a.shape[1]
        a = np.vstack([a, np.sqrt(ridge) * np.eye(n)])
        b = np.concatenate([b, np.zeros(n)])
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    return np.asarray(coef, dtype=np.float64)


def _nnls_small(a: Array, b: Array) -> Array:
    """Non-negative least squares for a few columns: the best unconstrained fit over every
    subset of columns whose coefficients are all >= 0 (exact, deterministic, 2^k solves)."""
    k = a.shape[1]
    best = np.zeros(k)
    best_res = float(b @ b)
    for mask in range(1, 1 << k):
        cols = [j for j in range(k) if mask >> j & 1]
        coef, *_ = np.linalg.lstsq(a[:, cols], b, rcond=None)
        if np.any(coef < 0):
            continue
        r = b - a[:, cols] @ coef
        res = float(r @ r)
        if res < best_res:
            best_res = res
            best = np.zeros(k)
            best[cols] = coef
    return best


#: Columns of the physical base model of the ``poly`` method (non-negative coefficients, so
#: energy never falls as work grows and extrapolation stays linear in work).
BASE_COLUMNS: tuple[str, ...] = ("flops", "mem_bytes", "input_size")


@dataclass
class PolyRegressor:
    """``pred = max(floor, base(x) * clip(correction(clip(z)), c_lo, c_hi))``.

    ``base`` is linear (coefficients ``base_coef``, intercept last): on the standardised
    features ``z`` for ``degree`` 1 (IrEne's OLS and our linear method), or with a physical
    base (``base_idx`` set) non-negative on the raw columns ``base_idx`` divided by
    ``base_scale``. ``correction`` is a polynomial of ``degree`` in ``z`` clipped to the training
    range (``corr_coef``, empty for degree 1), its value clipped to the range it took on the
    training rows, so an input off the training manifold cannot blow up. Columns constant in
    training (``active`` false) are ignored at prediction, whatever their value.
    """

    columns: tuple[str, ...]
    mean: Array
    scale: Array
    active: Array
    base_coef: Array
    degree: int = 1
    corr_coef: Array = field(default_factory=lambda: np.zeros(0))
    lo: Array = field(default_factory=lambda: np.zeros(0))
    hi: Array = field(default_factory=lambda: np.zeros(0))
    floor: float = 0.0
    n_train: int = 0
    base_idx: list[int] = field(default_factory=list)
    base_scale: Array = field(default_factory=lambda: np.zeros(0))
    c_lo: float = 0.0
    c_hi: float = 0.0
    log_features: bool = False
    corr_idx: list[int] = field(default_factory=list)
    #: Monotone form (see :meth:`predict_matrix`); ``False`` is the earlier, unconstrained form.
    monotone: bool = False
    #: Largest raw training value of each correction column (the box the correction is fit on).
    corr_xmax: Array = field(default_factory=lambda: np.zeros(0))

    def _base(self, x: Array, z: Array) -> Array:
        if self.base_idx:
            raw = x[:, self.base_idx] / self.base_scale
            return np.asarray(np.column_stack([raw, np.ones(x.shape[0])]) @ self.base_coef)
        return np.asarray(np.column_stack([z, np.ones(z.shape[0])]) @ self.base_coef)

    def _z(self, x: Array) -> Array:
        t = _log_transform(x) if self.log_features else x
        return ((t - self.mean) / self.scale)[:, self.active.astype(bool)]

    def _corr_columns(self) -> list[int]:
        """Indices (into ``columns``) of the correction's inputs."""
        active = np.flatnonzero(self.active.astype(bool)).tolist()
        return [active[i] for i in self.corr_idx] if self.corr_idx else active

    def predict_matrix(self, x: Array) -> Array:
        z = self._z(x)
        base = self._base(x, z)
        if self.degree > 1:
            zc = z[:, self.corr_idx] if self.corr_idx else z
            corr = poly_terms(np.clip(zc, self.lo, self.hi), self.degree) @ self.corr_coef
            corr = np.clip(corr, self.c_lo, self.c_hi)
            if self.monotone:
                # Inside the training box: base * c. Above it the correction is applied to the
                # base at the box's edge and the extra work is charged at the base's (constant,
                # non-negative) marginal rate, so far outside the data the prediction is the
                # physical base plus a bounded offset; below it, base * c(edge). With base * c
                # non-decreasing on the box (enforced by the fit) this is non-decreasing in
                # every work feature over the whole domain.
                capped = x.copy()
                cols = self._corr_columns()
                capped[:, cols] = np.minimum(x[:, cols], self.corr_xmax)
                base_cap = self._base(capped, z)
                base = corr * base_cap + (base - base_cap)
            else:
                base = np.maximum(base, self.floor) * corr
        return np.maximum(base, self.floor)

    def predict(self, nodes: Sequence[Node]) -> Array:
        return self.predict_matrix(feature_matrix(nodes, self.columns))

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "active": self.active.astype(int).tolist(),
            "base_coef": self.base_coef.tolist(),
            "degree": self.degree,
            "corr_coef": self.corr_coef.tolist(),
            "lo": self.lo.tolist(),
            "hi": self.hi.tolist(),
            "floor": self.floor,
            "n_train": self.n_train,
            "base_idx": list(self.base_idx),
            "base_scale": self.base_scale.tolist(),
            "c_lo": self.c_lo,
            "c_hi": self.c_hi,
            "log_features": self.log_features,
            "corr_idx": list(self.corr_idx),
            "monotone": self.monotone,
            "corr_xmax": self.corr_xmax.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolyRegressor:
        def arr(key: str) -> Array:
            return np.asarray(data[key], dtype=np.float64)

        reg = cls(
            columns=tuple(str(c) for c in data["columns"]),
            mean=arr("mean"),
            scale=arr("scale"),
            active=arr("active"),
            base_coef=arr("base_coef"),
            degree=int(data["degree"]),
            corr_coef=arr("corr_coef"),
            lo=arr("lo"),
            hi=arr("hi"),
            floor=float(data["floor"]),
            n_train=int(data["n_train"]),
            base_idx=[int(i) for i in data["base_idx"]],
            base_scale=arr("base_scale"),
            c_lo=float(data["c_lo"]),
            c_hi=float(data["c_hi"]),
            log_features=bool(data["log_features"]),
            corr_idx=[int(i) for i in data["corr_idx"]],
            # Profiles saved before the monotone form predict as they did.
            monotone=bool(data.get("monotone", False)),
            corr_xmax=np.asarray(data.get("corr_xmax", []), dtype=np.float64),
        )
        n_cols, n_active = len(reg.columns), int(reg.active.sum())
        n_base = len(reg.base_idx) if reg.base_idx else n_active
        if (
            reg.mean.shape != (n_cols,)
            or reg.scale.shape != (n_cols,)
            or reg.base_coef.shape != (n_base + 1,)
        ):
            raise ValueError("regressor arrays do not match its columns")
        if reg.monotone and reg.degree > 1 and reg.corr_xmax.shape != reg.lo.shape:
            raise ValueError("monotone regressor lacks the bounds of its correction")
        return reg


def fit_regressor(
    x: Array,
    y: Array,
    columns: Sequence[str],
    *,
    degree: int = 3,
    relative: bool = True,
    ridge: float = 1e-6,
    physical_base: bool = False,
    rows_per_term: float = 0.0,
    log_features: bool = False,
    corr_columns: Sequence[str] | None = None,
    monotone: bool = False,
) -> PolyRegressor:
    """Fit a :class:`PolyRegressor` on rows ``x`` (columns ``columns``) and energies ``y`` (J).

    ``relative`` weights each row by ``1/y`` (squared percentage error); ``relative=False`` and
    ``degree=1`` is IrEne's standardised OLS. ``physical_base`` makes the base a non-negative
    fit on :data:`BASE_COLUMNS` (those present) instead of a linear model of all features.
    ``rows_per_term`` lowers ``degree`` until the correction has at least that many training
    rows per polynomial term (a primitive type seen once per tree gets a simpler curve).
    ``monotone`` makes the prediction non-decreasing in the work columns (:data:`WORK_COLUMNS`)
    everywhere: a linear base gets non-negative coefficients on them, and a correction is fit
    under the constraint that ``base * c`` does not fall on the training box
    (:func:`_monotone_correction`), then extended outside it as :meth:`PolyRegressor.predict_matrix`
    describes.
    """
    if x.shape[0] == 0:
        raise ValueError("no training rows")
    if np.any(y <= 0):
        raise ValueError("energies must be positive")
    t = _log_transform(x) if log_features else x
    mean = t.mean(axis=0)
    scale = t.std(axis=0)
    active = scale > 1e-12 * np.maximum(1.0, np.abs(mean))
    scale = np.where(active, scale, 1.0)
    z = ((t - mean) / scale)[:, active]
    w = 1.0 / y if relative else np.ones_like(y)
    floor = float(0.01 * y.min())
    reg = PolyRegressor(
        columns=tuple(columns),
        mean=mean,
        scale=scale,
        active=active.astype(np.float64),
        base_coef=np.zeros(0),
        degree=1,
        floor=floor,
        n_train=int(x.shape[0]),
        log_features=log_features,
    )
    base_idx = [columns.index(c) for c in BASE_COLUMNS if c in columns] if physical_base else []
    if base_idx:
        raw = x[:, base_idx]
        bscale = np.abs(raw).max(axis=0)
        bscale = np.where(bscale > 0, bscale, 1.0)
        design = np.column_stack([raw / bscale, np.ones(x.shape[0])])
        reg.base_coef = _nnls_small(design * w[:, None], y * w)
        reg.base_idx, reg.base_scale = base_idx, bscale
    else:
        design = np.column_stack([z, np.ones(z.shape[0])])
        active_cols = [c for c, a in zip(columns, active, strict=True) if a]
        signed = [j for j, c in enumerate(active_cols) if c in WORK_COLUMNS] if monotone else []
        reg.base_coef = _solve_signed(design * w[:, None], y * w, ridge, signed)
    reg.monotone = monotone
    active_names = [c for c, a in zip(columns, active, strict=True) if a]
    if corr_columns is not None:
        reg.corr_idx = [active_names.index(c) for c in corr_columns if c in active_names]
    zc = z[:, reg.corr_idx] if reg.corr_idx else z
    while degree > 1 and rows_per_term * _n_terms(zc.shape[1], degree) > x.shape[0]:
        degree -= 1
    if degree > 1 and zc.shape[1] > 0 and (corr_columns is None or reg.corr_idx):
        base = np.maximum(design @ reg.base_coef, floor)
        lo, hi = zc.min(axis=0), zc.max(axis=0)
        terms = poly_terms(zc, degree)
        # pred = base * c(z): relative error (base*c - y)/y, i.e. rows scaled by base/y.
        wc = base / y if relative else base
        reg.corr_coef = _solve(terms * wc[:, None], (y / base) * wc, ridge)
        reg.degree, reg.lo, reg.hi = degree, lo, hi
        if monotone:
            if not base_idx:
                raise ValueError("a monotone correction needs the physical base")
            reg.corr_xmax = x[:, reg._corr_columns()].max(axis=0)
            reg.corr_coef = _monotone_correction(
                reg, terms * wc[:, None], (y / base) * wc, ridge, x, terms
            )
        fitted = terms @ reg.corr_coef
        reg.c_lo, reg.c_hi = float(fitted.min()), float(fitted.max())
        if monotone:
            reg.c_lo = max(reg.c_lo, 0.0)
    return reg


#: Work features a prediction must not fall in (``input_size`` is tokens).
WORK_COLUMNS: tuple[str, ...] = ("flops", "mem_bytes", "input_size")


def _solve_signed(a: Array, b: Array, ridge: float, nonneg: Sequence[int]) -> Array:
    """:func:`_solve` with coefficients ``nonneg`` constrained >= 0: the best fit over the
    subsets of those held at zero whose free coefficients are all >= 0 (exact, 2^k solves)."""
    if not nonneg:
        return _solve(a, b, ridge)
    best: Array | None = None
    best_res = math.inf
    for mask in range(1 << len(nonneg)):
        zero = [j for i, j in enumerate(nonneg) if mask >> i & 1]
        keep = [j for j in range(a.shape[1]) if j not in zero]
        coef = np.zeros(a.shape[1])
        coef[keep] = _solve(a[:, keep], b, ridge)
        if np.any(coef[list(nonneg)] < 0):
            continue
        r = a @ coef - b
        res = float(r @ r) + ridge * float(coef @ coef)
        if res < best_res:
            best, best_res = coef, res
    assert best is not None  # all of ``nonneg`` at zero is always feasible
    return best


def poly_terms_grad(z: Array, degree: int, k: int) -> Array:
    """Derivative of :func:`poly_terms` with respect to ``z[:, k]`` (same columns)."""
    cols = [np.zeros(z.shape[0])]
    for d in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(z.shape[1]), d):
            n = combo.count(k)
            if n == 0:
                cols.append(np.zeros(z.shape[0]))
                continue
            rest = list(combo)
            rest.remove(k)
            term = np.full(z.shape[0], float(n))
            for j in rest:
                term = term * z[:, j]
            cols.append(term)
    return np.column_stack(cols)


#: Grid points per correction input where monotonicity is checked (and imposed where needed).
MONOTONE_GRID = 21
#: Most constraint-generation rounds before the fallback shrink.
MONOTONE_ROUNDS = 25
#: Slack asked of each (unit-normalised) imposed constraint, so a row where ``c = 1`` is only
#: just monotone (a work feature the base does not charge) stays satisfied between grid points.
MONOTONE_MARGIN = 1e-6
#: Rounding-size violation tolerated by the last-resort shrink toward ``c = 1``.
MONOTONE_TOL = 1e-12


def _monotone_rows(reg: PolyRegressor, n: int, x_train: Array) -> tuple[Array, Array]:
    """On an ``n``-per-axis grid over the correction's training box: the correction's terms
    ``T`` (``c = T @ w``) and, per work input ``k`` (stacked), unit-normalised rows ``D`` with
    ``D @ w >= 0`` iff ``base * c`` does not fall in that feature there (the log-derivative
    ``e_k c + dc/dz_k / s_k``, ``e_k`` the base's elasticity)."""
    cols = reg._corr_columns()
    axes = [np.linspace(lo, hi, n) for lo, hi in zip(reg.lo.tolist(), reg.hi.tolist(), strict=True)]
    zc = np.array(list(itertools.product(*axes)), dtype=np.float64).reshape(-1, len(cols))
    x = np.tile(np.median(x_train, axis=0), (zc.shape[0], 1))
    for k, col in enumerate(cols):
        x[:, col] = np.expm1(zc[:, k] * reg.scale[col] + reg.mean[col])
    base = np.maximum(reg._base(x, zc), 1e-300)
    terms = poly_terms(zc, reg.degree)
    rows = []
    for k, col in enumerate(cols):
        slope = 0.0
        if col in reg.base_idx:
            pos = reg.base_idx.index(col)
            slope = float(reg.base_coef[pos] / reg.base_scale[pos])
        elasticity = slope * (1.0 + x[:, col]) / base  # d log base / d log(1 + x_col)
        grad = poly_terms_grad(zc, reg.degree, k) / reg.scale[col]
        rows.append(elasticity[:, None] * terms + grad)
    d = np.vstack(rows)
    return terms, d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-300)


def _monotone_correction(
    reg: PolyRegressor, a: Array, b: Array, ridge: float, x: Array, train_terms: Array
) -> Array:
    """Correction coefficients minimising the ridge least squares ``|a w - b|^2 + ridge |w|^2``
    subject to ``base * c`` non-decreasing in each work feature on the training box.

    The prediction clips ``c`` to the range it takes on the training rows; where it is clipped,
    ``base * c_lo`` and ``base * c_hi`` cannot fall. So the constraint binds only at grid points
    where ``c`` lies inside that range (a cubic leaves it in the box's far corners, away from
    any data). Constraint generation: SLSQP refits with every row found violated so far until
    the fine grid holds; if it does not converge, the result is shrunk toward ``c = 1`` (which
    complies: the base is monotone) as little as needed.
    """
    w0 = reg.corr_coef
    ident = np.zeros_like(w0)
    ident[0] = 1.0
    terms, check = _monotone_rows(reg, MONOTONE_GRID, x)
    n_inputs = check.shape[0] // terms.shape[0]

    def violated(w: Array, tol: float) -> npt.NDArray[np.bool_]:
        fitted = train_terms @ w
        c = terms @ w
        lo, hi = float(fitted.min()), float(fitted.max())
        live = (c >= lo - 1e-9 * abs(lo)) & (c <= hi + 1e-9 * abs(hi))
        return np.asarray(np.tile(live, n_inputs) & (check @ w < -tol))

    bad = violated(w0, 0.0)
    if not bad.any():
        return w0
    from scipy.optimize import minimize

    ata = a.T @ a + ridge * np.eye(a.shape[1])
    atb = a.T @ b

    def fun(w: Array) -> float:
        return float(w @ ata @ w - 2.0 * (atb @ w))

    def jac(w: Array) -> Array:
        return np.asarray(2.0 * (ata @ w - atb))

    imposed = bad.copy()
    w = w0
    for _ in range(MONOTONE_ROUNDS):
        rows = check[imposed]
        res = minimize(
            fun,
            w,
            jac=jac,
            method="SLSQP",
            constraints=[
                {
                    "type": "ineq",
                    "fun": lambda v, r=rows: r @ v - MONOTONE_MARGIN,
                    "jac": lambda v, r=rows: r,
                }
            ],
            options={"maxiter": 300, "ftol": 1e-12},
        )
        cand = np.asarray(res.x, dtype=np.float64)
        if not np.all(np.isfinite(cand)):
            break
        w = cand
        bad = violated(w, 0.0)
        if not bad.any():
            return w
        imposed |= bad
    lo, hi = 0.0, 1.0  # largest lam with ident + lam (w - ident) compliant, by bisection
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if not violated(ident + mid * (w - ident), MONOTONE_TOL).any():
            lo = mid
        else:
            hi = mid
    return ident + lo * (w - ident)


#: ML methods by name, as fit_regressor settings. ``poly`` (ours) was chosen by
#: leave-one-model-out *and* by predictions at configurations missing from training
#: (benchmarks/results/ablation.md): a correction on every feature, ``poly-all``, fits the
#: dataset's batch/seq grid (LOMO ML 2.3 %) but misses an unseen batch size by 18 %; a smooth
#: correction on log FLOPs, bytes and tokens keeps LOMO under 3 % and stays near the physical
#: base elsewhere. ``poly-free`` (unconstrained) is the static default: the monotone ``poly``
#: costs ~1.1 points of ML error on device_1; ``linear-free`` is kept for the ablation.
ML_METHODS: dict[str, dict[str, Any]] = {
    "irene": {"degree": 1, "relative": False},
    "linear": {"degree": 1, "relative": True, "monotone": True},
    "linear-free": {"degree": 1, "relative": True},
    "physical": {"degree": 1, "relative": True, "physical_base": True, "monotone": True},
    "poly-all": {"degree": 3, "relative": True, "physical_base": True, "ridge": 1e-6},
    "poly": {
        "degree": 3,
        "relative": True,
        "physical_base": True,
        "log_features": True,
        "corr_columns": ("flops", "mem_bytes", "input_size"),
        "ridge": 1e-2,
        "monotone": True,
    },
    "poly-free": {
        "degree": 3,
        "relative": True,
        "physical_base": True,
        "log_features": True,
        "corr_columns": ("flops", "mem_bytes", "input_size"),
        "ridge": 1e-2,
    },
}
#: The fallback for unseen types is the physical base alone, pooled over every type: monotone
#: in work and linear outside the data (a cubic fitted on other types would be a guess).
FALLBACK_SETTINGS: dict[str, Any] = {
    "degree": 1,
    "relative": True,
    "physical_base": True,
    "monotone": True,
}


_FIT_CACHE: dict[str, dict[str, Any]] = {}
_FIT_CACHE_SIZE = 512


def _fit_cached(
    x: Array, y: Array, columns: Sequence[str], settings: dict[str, Any]
) -> PolyRegressor:
    """:func:`fit_regressor`, memoised on the exact training rows and settings: a constrained
    fit takes seconds, and cross-validation and ablations refit the same rows many times. The
    result is rebuilt from plain data, so callers never share an object."""
    import hashlib

    key = hashlib.sha256(
        repr((tuple(columns), sorted(settings.items()), x.shape)).encode()
        + np.ascontiguousarray(x).tobytes()
        + np.ascontiguousarray(y).tobytes()
    ).hexdigest()
    data = _FIT_CACHE.get(key)
    if data is None:
        data = fit_regressor(x, y, columns, **settings).to_dict()
        if len(_FIT_CACHE) >= _FIT_CACHE_SIZE:
            _FIT_CACHE.pop(next(iter(_FIT_CACHE)))
        _FIT_CACHE[key] = data
    return PolyRegressor.from_dict(data)


@dataclass
class MLRegressors:
    """Per-primitive-type regressors and the pooled fallback (static features only)."""

    by_type: dict[str, PolyRegressor]
    fallback: PolyRegressor
    method: str = "poly"

    @classmethod
    def fit(
        cls,
        nodes: Sequence[Node],
        feature_set: str,
        method: str = "poly",
        runtime: Sequence[str] = RUNTIME_FEATURES,
    ) -> MLRegressors:
        """Fit on ML nodes with measured energy (``runtime``: the runtime columns of ``full``)."""
        if method not in ML_METHODS:
            raise ValueError(f"unknown ML method {method!r}; use one of {', '.join(ML_METHODS)}")
        columns = feature_columns(feature_set, runtime)
        by_type_nodes: dict[str, list[Node]] = {}
        for node in nodes:
            by_type_nodes.setdefault(node.type, []).append(node)
        by_type: dict[str, PolyRegressor] = {}
        for typ in sorted(by_type_nodes):
            group = by_type_nodes[typ]
            by_type[typ] = _fit_cached(
                feature_matrix(group, columns), _energies(group), columns, ML_METHODS[method]
            )
        fallback = _fit_cached(
            feature_matrix(nodes, STATIC_COLUMNS),
            _energies(nodes),
            STATIC_COLUMNS,
            FALLBACK_SETTINGS,
        )
        return cls(by_type=by_type, fallback=fallback, method=method)

    def predict(self, nodes: Sequence[Node]) -> tuple[Array, npt.NDArray[np.bool_]]:
        """Energies (J) of ``nodes`` and a mask of those predicted by the fallback."""
        out = np.empty(len(nodes), dtype=np.float64)
        extrapolated = np.zeros(len(nodes), dtype=bool)
        groups: dict[str, list[int]] = {}
        for i, node in enumerate(nodes):
            groups.setdefault(node.type, []).append(i)
        for typ, idx in groups.items():
            reg = self.by_type.get(typ)
            if reg is None:
                reg = self.fallback
                extrapolated[idx] = True
            out[idx] = reg.predict([nodes[i] for i in idx])
        return out, extrapolated

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "by_type": {typ: reg.to_dict() for typ, reg in sorted(self.by_type.items())},
            "fallback": self.fallback.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MLRegressors:
        return cls(
            by_type={str(t): PolyRegressor.from_dict(r) for t, r in data["by_type"].items()},
            fallback=PolyRegressor.from_dict(data["fallback"]),
            method=str(data["method"]),
        )


def _energies(nodes: Sequence[Node]) -> Array:
    out = np.empty(len(nodes), dtype=np.float64)
    for i, node in enumerate(nodes):
        if node.measured_energy_j is None:
            raise ValueError(f"node {node.name!r} has no measured energy to train on")
        out[i] = node.measured_energy_j
    return out
