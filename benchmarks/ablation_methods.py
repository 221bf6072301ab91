"""The variants leave-one-model-out rejected, kept so the ablation can rerun them.

``python benchmarks/bench_accuracy.py`` calls :func:`register`, which adds them to the library's
registries by name; nothing in ``predictor/`` uses them, and no shipped profile names them.

ML methods (:func:`predictor.learn.regressors.register_ml_method`):

- ``linear-free``: relative least squares on standardised features, work coefficients of any
  sign (the full profile's ``linear`` keeps them non-negative);
- ``physical``: the physical base alone, no correction (what the fallback fits, per type);
- ``poly-all``: the physical base times a cubic correction in every standardised feature;
  wins on the dataset's batch/seq grid, misses unseen batch sizes by up to ~18 %;
- ``poly``: ``poly-free`` with its correction fit under the constraint that the prediction
  never falls as FLOPs, bytes or tokens grow (:class:`MonotonePolyRegressor`). device_1's
  measurements are not monotone themselves, so it costs ~1.1 points of ML error (3.8 %) and
  makes the cross-validation ~10x slower; fits are memoised, as the ablation refits the same
  rows in several variants.

Reconciliations (:func:`predictor.learn.reconcile.register_reconcile_mode`): ``bottom-up``
(a parent raised to its children's sum) and ``scale`` (an overrun scales the whole subtree).

Aggregators (:func:`predictor.learn.profile.register_aggregator`): ``residual-refit-N`` (the
residual aggregator refit N times on its own bottom-up predictions) and ``residual-one-level``
(one linear model for module and model levels). Residual term
(:func:`predictor.learn.aggregate.register_residual_term`): ``input_size`` (tokens).
:func:`unconstrained_residuals` fits the residual aggregator without its sign bounds (as
before issue 10).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from predictor.learn.aggregate import Aggregator, ResidualAggregator, register_residual_term
from predictor.learn.flat import Array, Flat, IntArray
from predictor.learn.profile import AggregatorFit, AggregatorTraining, register_aggregator
from predictor.learn.reconcile import register_reconcile_mode
from predictor.learn.regressors import (
    FALLBACK_SETTINGS,
    ML_METHODS,
    ML_SETTINGS,
    MLFit,
    PolyRegressor,
    fit_regressor,
    poly_terms,
    register_ml_method,
)
from predictor.trace.tree import EnergyTree, Node

__all__ = [
    "ABLATION_ML_METHODS",
    "MonotonePolyRegressor",
    "OneLevelResidualAggregator",
    "RefitResidualAggregator",
    "fit_monotone_poly",
    "reconcile_bottom_up",
    "reconcile_scale",
    "register",
]


# -- the monotone cubic correction ------------------------------------------------------------

#: Grid points per correction input where monotonicity is checked (and imposed where needed).
MONOTONE_GRID = 21
#: Most constraint-generation rounds before the fallback shrink.
MONOTONE_ROUNDS = 25
#: Slack asked of each (unit-normalised) imposed constraint, so a row where ``c = 1`` is only
#: just monotone (a work feature the base does not charge) stays satisfied between grid points.
MONOTONE_MARGIN = 1e-6
#: Rounding-size violation tolerated by the last-resort shrink toward ``c = 1``.
MONOTONE_TOL = 1e-12


@dataclass
class MonotonePolyRegressor(PolyRegressor):
    """``poly-free``'s form, non-decreasing in every work feature over the whole domain.

    Inside the training box of the correction's inputs (up to ``corr_xmax``): ``base * c``,
    with ``c`` fit so that this does not fall (:func:`fit_monotone_poly`). Above the box the
    correction is applied to the base at the box's edge and the extra work is charged at the
    base's (constant, non-negative) marginal rate, so far outside the data the prediction is
    the physical base plus a bounded offset; below it, ``base * c(edge)``.
    """

    #: Largest raw training value of each correction column (the box the correction is fit on).
    corr_xmax: Array = field(default_factory=lambda: np.zeros(0))

    def corr_columns(self) -> list[int]:
        """Indices (into ``columns``) of the correction's inputs."""
        active = np.flatnonzero(self.active.astype(bool)).tolist()
        return [active[i] for i in self.corr_idx] if self.corr_idx else active

    def predict_matrix(self, x: Array) -> Array:
        z = self.standardise(x)
        base = self.base(x, z)
        if self.degree > 1:
            corr = self.correction(z)
            capped = x.copy()
            cols = self.corr_columns()
            capped[:, cols] = np.minimum(x[:, cols], self.corr_xmax)
            base_cap = self.base(capped, z)
            base = corr * base_cap + (base - base_cap)
        return np.maximum(base, self.floor)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "corr_xmax": self.corr_xmax.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MonotonePolyRegressor:
        plain = PolyRegressor.from_dict({**data, "monotone": False})
        xmax = np.asarray(data["corr_xmax"], dtype=np.float64)
        return cls.of(plain, corr_xmax=xmax)

    @classmethod
    def of(cls, plain: PolyRegressor, corr_xmax: Array | None = None) -> MonotonePolyRegressor:
        """``plain``'s fields, marked monotone, with the correction's box ``corr_xmax``."""
        values = {f.name: getattr(plain, f.name) for f in fields(PolyRegressor)}
        values["monotone"] = True
        return cls(**values, corr_xmax=np.zeros(0) if corr_xmax is None else corr_xmax)


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


def _monotone_rows(reg: MonotonePolyRegressor, n: int, x_train: Array) -> tuple[Array, Array]:
    """On an ``n``-per-axis grid over the correction's training box: the correction's terms
    ``T`` (``c = T @ w``) and, per work input ``k`` (stacked), unit-normalised rows ``D`` with
    ``D @ w >= 0`` iff ``base * c`` does not fall in that feature there (the log-derivative
    ``e_k c + dc/dz_k / s_k``, ``e_k`` the base's elasticity)."""
    cols = reg.corr_columns()
    axes = [np.linspace(lo, hi, n) for lo, hi in zip(reg.lo.tolist(), reg.hi.tolist(), strict=True)]
    zc = np.array(list(itertools.product(*axes)), dtype=np.float64).reshape(-1, len(cols))
    x = np.tile(np.median(x_train, axis=0), (zc.shape[0], 1))
    for k, col in enumerate(cols):
        x[:, col] = np.expm1(zc[:, k] * reg.scale[col] + reg.mean[col])
    base = np.maximum(reg.base(x, zc), 1e-300)
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
    reg: MonotonePolyRegressor, a: Array, b: Array, ridge: float, x: Array, train_terms: Array
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
    from scipy.optimize import minimize

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


_MONOTONE_CACHE: dict[str, dict[str, Any]] = {}
_MONOTONE_CACHE_SIZE = 512


def fit_monotone_poly(x: Array, y: Array, columns: Sequence[str]) -> MonotonePolyRegressor:
    """``poly-free``'s fit, then its correction refit under the monotonicity constraint.

    Memoised on the exact rows (a constrained fit takes seconds and the ablation refits the
    same rows in several variants); the result is rebuilt from plain data, so callers never
    share an object.
    """
    key = hashlib.sha256(
        repr((tuple(columns), x.shape)).encode()
        + np.ascontiguousarray(x).tobytes()
        + np.ascontiguousarray(y).tobytes()
    ).hexdigest()
    data = _MONOTONE_CACHE.get(key)
    if data is None:
        data = _fit_monotone_poly(x, y, columns).to_dict()
        if len(_MONOTONE_CACHE) >= _MONOTONE_CACHE_SIZE:
            _MONOTONE_CACHE.pop(next(iter(_MONOTONE_CACHE)))
        _MONOTONE_CACHE[key] = data
    return MonotonePolyRegressor.from_dict(data)


def _fit_monotone_poly(x: Array, y: Array, columns: Sequence[str]) -> MonotonePolyRegressor:
    reg = MonotonePolyRegressor.of(ML_METHODS["poly-free"](x, y, columns))
    if reg.degree == 1:  # no correction to constrain: the physical base is monotone
        return reg
    ridge = float(ML_SETTINGS["poly-free"]["ridge"])
    z = reg.standardise(x)
    zc = z[:, reg.corr_idx] if reg.corr_idx else z
    terms = poly_terms(zc, reg.degree)
    base = np.maximum(reg.base(x, z), reg.floor)
    wc = base / y  # relative error (base * c - y) / y: rows scaled by base / y
    reg.corr_xmax = x[:, reg.corr_columns()].max(axis=0)
    reg.corr_coef = _monotone_correction(reg, terms * wc[:, None], (y / base) * wc, ridge, x, terms)
    fitted = terms @ reg.corr_coef
    reg.c_lo, reg.c_hi = max(float(fitted.min()), 0.0), float(fitted.max())
    return reg


#: The rejected ML methods by name.
ABLATION_ML_METHODS: dict[str, MLFit] = {
    "linear-free": partial(fit_regressor, degree=1, relative=True),
    "physical": partial(fit_regressor, **FALLBACK_SETTINGS),
    "poly-all": partial(fit_regressor, degree=3, relative=True, physical_base=True, ridge=1e-6),
    "poly": fit_monotone_poly,
}


# -- reconciliations --------------------------------------------------------------------------


def reconcile_bottom_up(flat: Flat, energy: Array) -> Array:
    """A parent is raised to its children's sum where it is below it (the root can only grow).
    Negative predictions are set to 0 first."""
    e = np.maximum(np.asarray(energy, dtype=np.float64), 0.0)
    for idx in flat.depths_bottom_up():
        e[idx] = np.maximum(e[idx], flat.child_sum(e)[idx])
    return e


def reconcile_scale(flat: Flat, energy: Array) -> Array:
    """The root keeps its prediction; an overrun scales the whole subtree under the node by
    ``E(n) / sum E(children)``. Negative predictions are set to 0 first."""
    e = np.maximum(np.asarray(energy, dtype=np.float64), 0.0)
    sums = flat.child_sum(e)
    fraction = np.zeros(len(e), dtype=np.float64)
    factor = np.ones(len(e), dtype=np.float64)  # cumulative scale of each node's subtree
    for d in range(int(flat.depth.max(initial=0)) + 1):
        idx = np.flatnonzero((flat.depth == d) & ~flat.is_leaf)
        over = sums[idx] > e[idx]
        fraction[idx] = np.where(over, e[idx] / np.where(over, sums[idx], 1.0), 1.0)
        kids = flat.children_of(idx)
        factor[kids] = factor[flat.parent[kids]] * fraction[flat.parent[kids]]
    return e * factor


# -- aggregators and terms --------------------------------------------------------------------


@dataclass
class RefitResidualAggregator(ResidualAggregator):
    """The residual aggregator fit stepwise, then refit ``refits`` times on the energies it
    predicts bottom-up. The iteration does not converge monotonically; LOMO preferred none."""

    refits: int = 1

    def fit(self, trees: Sequence[EnergyTree], leaf_pred: Array) -> RefitResidualAggregator:
        super().fit(trees, leaf_pred)
        flat = Flat.of(trees)
        for _ in range(self.refits):
            self.fit_on(flat, self.predict_unreconciled(flat, leaf_pred))
        return self


@dataclass
class OneLevelResidualAggregator(ResidualAggregator):
    """One linear model for module and model levels together."""

    def groups(self, flat: Flat, idx: IntArray) -> dict[str, IntArray]:
        return {"all": idx}


def _refit_aggregator(refits: int) -> AggregatorFit:
    def fit(t: AggregatorTraining) -> Aggregator:
        return t.residual(RefitResidualAggregator, refits=refits).fit(t.trees, t.leaf_pred)

    return fit


def _one_level_aggregator(t: AggregatorTraining) -> Aggregator:
    return t.residual(OneLevelResidualAggregator).fit(t.trees, t.leaf_pred)


def _input_size(nodes: Sequence[Node]) -> Array:
    """Tokens (batch * seq) the node processes."""
    return np.asarray([float(n.input_size) for n in nodes], dtype=np.float64)


#: Refit counts the ablation runs (``residual-refit-N``).
REFITS: tuple[int, ...] = (1, 2, 4)


@contextlib.contextmanager
def unconstrained_residuals() -> Iterator[None]:
    """While active, the residual aggregator is fitted by plain least squares (no sign bounds on
    the children weights and own-op terms): the fit before issue 10, whose module-level
    coefficient on own FLOPs came out negative."""
    import predictor.learn.aggregate as aggregate

    bounded = aggregate._bounded_lstsq

    def plain(a: Array, b: Array, nonneg: Sequence[int]) -> Array:
        del nonneg
        return np.asarray(np.linalg.lstsq(a, b, rcond=None)[0], dtype=np.float64)

    aggregate._bounded_lstsq = plain
    try:
        yield
    finally:
        aggregate._bounded_lstsq = bounded


def register() -> None:
    """Add every rejected variant to the library's registries (idempotent)."""
    for name, fit in ABLATION_ML_METHODS.items():
        register_ml_method(name, fit)
    register_reconcile_mode("bottom-up", reconcile_bottom_up)
    register_reconcile_mode("scale", reconcile_scale)
    for n in REFITS:
        register_aggregator(f"residual-refit-{n}", _refit_aggregator(n))
    register_aggregator("residual-one-level", _one_level_aggregator)
    register_residual_term("input_size", _input_size)
