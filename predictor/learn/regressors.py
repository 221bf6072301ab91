"""ML level: one regressor per kernel class (or per primitive type), plus a pooled fallback.

A regressor (:class:`PolyRegressor`) predicts ``max(floor, base(x) * c(z))``: a linear *base*
times an optional multiplicative *correction* ``c``. The ML methods the library ships
(:data:`ML_METHODS`) are the ones its profiles and commands use:

- ``irene``: IrEne's per-type ordinary least squares on standardised features
  (``irene train --method irene``);
- ``linear``: relative least squares (minimising ``sum ((pred - y) / y)^2``, the squared
  percentage error IrEne's metric measures) on standardised features, with non-negative
  coefficients on FLOPs, bytes and tokens so more work never predicts less energy (the full
  profile ``irene-device-1-full``);
- ``poly-free``: a *physical base* ``a + b * MFLOPs + c * MiB + d * tokens`` with non-negative
  coefficients, fitted by relative least squares, so it extrapolates linearly in work (a 7B model
  is not fed to a cubic), times a ridge-regularised cubic correction in the standardised logs of
  FLOPs, bytes and tokens, its inputs clipped to the training range and its value to the range it
  took there (the static profile ``irene-device-1``). It fits how efficiency changes with size (a
  MatMul at seq 160 costs more per FLOP than at 128) without keying on the dataset's batch/seq
  grid. It is not monotone: far from the training data (a width-64 Linear on 2 vs 16 tokens) a
  bigger input can be predicted a few percent lower.

Which method a profile uses is :class:`predictor.learn.profile.Settings`' choice, made by
leave-one-model-out cross-validation; the variants that lost (benchmarks/ablation_methods.py)
are registered from the benchmark with :func:`register_ml_method`.

Regressors follow the kernel classes (:mod:`predictor.trace.kernels`): one per kernel class,
fitted on every training node of the class (a ``FalconLinear``, an ``F.linear`` call, a
convolution and a routed expert GEMM are ``gemm``s), and with ``Settings.ml_key = "type"``
also one per primitive type of the training data, which a node of that type (or base type:
``FalconLinear`` is a ``Linear``) uses first. A node whose kernel class has no training data
(``pool``, ``scan``, an elementwise primitive) uses :data:`FALLBACK_SETTINGS`, the physical
base alone pooled over every node, and is flagged extrapolated. A node folded from ``count`` identical
calls is predicted per call (its work columns divided by the count), times the count.

Everything a fitted regressor holds is plain numbers (``to_dict``/``from_dict``), so a profile
stores no pickled estimator class: scikit-learn and scipy solve the fits, and only their
coefficients are kept. Prediction is numpy float64 in a fixed order, so the same input gives
bit-identical joules on every run.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from predictor.errors import ProfileError
from predictor.learn.flat import Array
from predictor.trace.kernels import PROXIES, kernel_of_type
from predictor.trace.tree import RUNTIME_FEATURES, Node

__all__ = [
    "BASE_COLUMNS",
    "FALLBACK_SETTINGS",
    "FEATURE_SETS",
    "MIN_TYPE_ROWS",
    "ML_KEYS",
    "ML_METHODS",
    "ML_SETTINGS",
    "STATIC_COLUMNS",
    "WORK_COLUMNS",
    "FeatureSet",
    "MLFit",
    "MLRegressors",
    "PolyRegressor",
    "feature_columns",
    "feature_matrix",
    "fit_regressor",
    "node_kernel",
    "per_call_matrix",
    "poly_terms",
    "register_ml_method",
]

FeatureSet = Literal["static", "full"]
FEATURE_SETS: tuple[FeatureSet, ...] = ("static", "full")

#: Static columns fed to the regressors (``input_size`` = batch_size * seq_len tokens).
STATIC_COLUMNS: tuple[str, ...] = (
    "batch_size",
    "seq_len",
    "flops",
    "mem_bytes",
    "input_size",
    "num_parameters",
)
#: Work features a monotone prediction must not fall in (``input_size`` is tokens).
WORK_COLUMNS: tuple[str, ...] = ("flops", "mem_bytes", "input_size")
#: Columns of the physical base: the work, charged with non-negative coefficients, so energy
#: never falls as work grows and extrapolation stays linear in work.
BASE_COLUMNS: tuple[str, ...] = WORK_COLUMNS


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


# -- solvers ----------------------------------------------------------------------------------


def _nnls(a: Array, b: Array) -> Array:
    """Non-negative least squares ``argmin |a x - b|^2, x >= 0`` (scikit-learn's positive
    linear regression, Lawson-Hanson active set)."""
    from sklearn.linear_model import LinearRegression

    fit = LinearRegression(positive=True, fit_intercept=False).fit(a, b)
    return np.asarray(fit.coef_, dtype=np.float64)


def _ridge(a: Array, b: Array, ridge: float, nonneg: Sequence[int] = ()) -> Array:
    """Ridge least squares ``argmin |a x - b|^2 + ridge |x|^2`` (the intercept column is
    penalised too), with ``x[j] >= 0`` for every ``j`` in ``nonneg`` (none: unconstrained).

    scipy's bounded least squares (``lsq_linear``, BVLS active set) on ``a`` stacked over
    ``sqrt(ridge) I``: its unconstrained step is LAPACK's SVD least squares of that system, and
    the active set adds the bounds where they bind. scikit-learn's ``positive=True`` bounds every
    coefficient, which an intercept and the standardised non-work features must not be; its
    ``Ridge`` solves the same unconstrained problem by an SVD of ``a`` alone, which on the
    near-collinear IrEne designs (tokens = batch x seq; FLOPs proportional to bytes) gives
    coefficients differing by ~1e-9 relative. IrEne's Adam-trained aggregator amplifies that
    into ~0.1 points of model-level error (a 1e-12 relative change of its leaves moves it by
    ~1e-3), so the reference figures of IrEne's method would no longer reproduce.
    """
    from scipy.optimize import lsq_linear

    n = a.shape[1]
    lower = np.full(n, -np.inf)
    lower[list(nonneg)] = 0.0
    res = lsq_linear(
        np.vstack([a, np.sqrt(ridge) * np.eye(n)]),
        np.concatenate([b, np.zeros(n)]),
        bounds=(lower, np.full(n, np.inf)),
        method="bvls",
    )
    if not res.success:
        raise ValueError(f"ridge least squares did not converge: {res.message}")
    return np.asarray(res.x, dtype=np.float64)


# -- the regressor ----------------------------------------------------------------------------


@dataclass
class PolyRegressor:
    """``pred = max(floor, base(x) * clip(correction(clip(z)), c_lo, c_hi))``.

    ``base`` is linear (coefficients ``base_coef``, intercept last): on the standardised
    features ``z`` (IrEne's OLS and the ``linear`` method), or with a physical base
    (``base_idx`` set) non-negative on the raw columns ``base_idx`` divided by ``base_scale``.
    ``correction`` (``degree`` > 1) is a polynomial in the columns ``corr_idx`` of ``z`` (all
    of them when empty) clipped to the training range ``lo``..``hi`` (``corr_coef``), its value
    clipped to the range it took on the training rows, so an input off the training manifold
    cannot blow up. Columns constant in training (``active`` false) are ignored at prediction,
    whatever their value. ``monotone`` records that the fit kept the prediction non-decreasing
    in the work columns (non-negative work coefficients; linear forms only).
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
    monotone: bool = False

    def base(self, x: Array, z: Array) -> Array:
        """The linear base at raw rows ``x`` (standardised ``z``), before the correction."""
        if self.base_idx:
            raw = x[:, self.base_idx] / self.base_scale
            return np.asarray(np.column_stack([raw, np.ones(x.shape[0])]) @ self.base_coef)
        return np.asarray(np.column_stack([z, np.ones(z.shape[0])]) @ self.base_coef)

    def standardise(self, x: Array) -> Array:
        """The active columns of ``x``, (log-transformed and) standardised as in training."""
        t = _log_transform(x) if self.log_features else x
        return ((t - self.mean) / self.scale)[:, self.active.astype(bool)]

    def correction(self, z: Array) -> Array:
        """The clipped correction ``c`` at standardised rows ``z`` (``degree`` > 1)."""
        zc = z[:, self.corr_idx] if self.corr_idx else z
        corr = poly_terms(np.clip(zc, self.lo, self.hi), self.degree) @ self.corr_coef
        return np.clip(corr, self.c_lo, self.c_hi)

    def predict_matrix(self, x: Array) -> Array:
        """Energies (J) of raw feature rows ``x`` (columns :attr:`columns`)."""
        z = self.standardise(x)
        base = self.base(x, z)
        if self.degree > 1:
            base = np.maximum(base, self.floor) * self.correction(z)
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
            monotone=bool(data.get("monotone", False)),  # absent in the earliest profiles
        )
        n_cols, n_active = len(reg.columns), int(reg.active.sum())
        n_base = len(reg.base_idx) if reg.base_idx else n_active
        if (
            reg.mean.shape != (n_cols,)
            or reg.scale.shape != (n_cols,)
            or reg.base_coef.shape != (n_base + 1,)
        ):
            raise ValueError("regressor arrays do not match its columns")
        if reg.monotone and reg.degree > 1:
            raise ValueError(
                "this regressor uses the monotone cubic correction (ML method 'poly'), an "
                "experiment of benchmarks/ablation_methods.py that the library does not predict "
                "with; retrain the profile with a shipped ML method "
                f"({', '.join(ML_SETTINGS)})"
            )
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
    log_features: bool = False,
    corr_columns: Sequence[str] | None = None,
    monotone: bool = False,
) -> PolyRegressor:
    """Fit a :class:`PolyRegressor` on rows ``x`` (columns ``columns``) and energies ``y`` (J).

    ``relative`` weights each row by ``1/y`` (squared percentage error); ``relative=False`` and
    ``degree=1`` is IrEne's standardised OLS. ``physical_base`` makes the base a non-negative
    fit on :data:`BASE_COLUMNS` (those present) instead of a ridge fit on all features.
    ``degree`` > 1 adds a ridge-regularised polynomial correction in ``corr_columns`` (all
    active columns when ``None``; none present: no correction). ``monotone`` makes a base on all
    features keep non-negative coefficients on :data:`WORK_COLUMNS` (the physical base always
    does); it cannot be combined with a correction.
    """
    if x.shape[0] == 0:
        raise ValueError("no training rows")
    if np.any(y <= 0):
        raise ValueError("energies must be positive")
    if monotone and degree > 1:
        raise ValueError(
            "a monotone fit is linear (degree 1): the library has no monotone correction"
        )
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
        floor=floor,
        n_train=int(x.shape[0]),
        log_features=log_features,
        monotone=monotone,
    )
    active_names = [c for c, a in zip(columns, active, strict=True) if a]
    base_idx = [columns.index(c) for c in BASE_COLUMNS if c in columns] if physical_base else []
    if base_idx:
        raw = x[:, base_idx]
        bscale = np.abs(raw).max(axis=0)
        bscale = np.where(bscale > 0, bscale, 1.0)
        design = np.column_stack([raw / bscale, np.ones(x.shape[0])])
        reg.base_coef = _nnls(design * w[:, None], y * w)
        reg.base_idx, reg.base_scale = base_idx, bscale
    else:
        design = np.column_stack([z, np.ones(z.shape[0])])
        signed = [j for j, c in enumerate(active_names) if c in WORK_COLUMNS] if monotone else []
        reg.base_coef = _ridge(design * w[:, None], y * w, ridge, signed)
    if corr_columns is not None:
        reg.corr_idx = [active_names.index(c) for c in corr_columns if c in active_names]
    zc = z[:, reg.corr_idx] if reg.corr_idx else z
    if degree > 1 and zc.shape[1] > 0 and (corr_columns is None or reg.corr_idx):
        base = np.maximum(design @ reg.base_coef, floor)
        terms = poly_terms(zc, degree)
        # pred = base * c(z): relative error (base*c - y)/y, i.e. rows scaled by base/y.
        wc = base / y if relative else base
        reg.corr_coef = _ridge(terms * wc[:, None], (y / base) * wc, ridge)
        reg.degree, reg.lo, reg.hi = degree, zc.min(axis=0), zc.max(axis=0)
        fitted = terms @ reg.corr_coef
        reg.c_lo, reg.c_hi = float(fitted.min()), float(fitted.max())
    return reg


# -- ML methods -------------------------------------------------------------------------------

#: An ML method: fits one primitive type's rows ``x`` (columns ``columns``) and energies ``y``.
MLFit = Callable[[Array, Array, Sequence[str]], PolyRegressor]

#: The ML methods a shipped profile or command uses, as :func:`fit_regressor` settings (see
#: the module docstring).
ML_SETTINGS: Mapping[str, Mapping[str, Any]] = {
    "irene": {"degree": 1, "relative": False},
    "linear": {"degree": 1, "relative": True, "monotone": True},
    "poly-free": {
        "degree": 3,
        "relative": True,
        "physical_base": True,
        "log_features": True,
        "corr_columns": BASE_COLUMNS,
        "ridge": 1e-2,
    },
}
#: Every ML method by name: the shipped ones and those added by :func:`register_ml_method`.
ML_METHODS: dict[str, MLFit] = {
    name: partial(fit_regressor, **settings) for name, settings in ML_SETTINGS.items()
}

#: The fallback for unseen types: the physical base alone, pooled over every type: monotone in
#: work and linear outside the data (a cubic fitted on other types would be a guess).
FALLBACK_SETTINGS: Mapping[str, Any] = {
    "degree": 1,
    "relative": True,
    "physical_base": True,
    "monotone": True,
}


def register_ml_method(name: str, fit: MLFit) -> None:
    """Make ``fit`` the ML method ``name`` (``Settings(ml_method=name)``, ``MLRegressors.fit``).

    For experiments (benchmarks/ablation_methods.py registers the variants leave-one-model-out
    rejected). A built-in method cannot be replaced: a saved profile names its method, and the
    name must keep meaning what it was trained with. Registering an experiment's name again
    replaces it.
    """
    if name in ML_SETTINGS:
        raise ValueError(f"ML method {name!r} is built in and cannot be replaced")
    ML_METHODS[name] = fit


#: How ML nodes are grouped into regressors (``Settings.ml_key``): ``type`` (one regressor
#: per primitive type of the training data, and one per kernel class for every other node:
#: looked up by type, then base type, then kernel class) or ``kernel`` (one per kernel class,
#: :mod:`predictor.trace.kernels`, only).
ML_KEYS: tuple[str, ...] = ("type", "kernel")

#: Fewest training rows a primitive type needs for a regressor of its own (``ml_key="type"``);
#: a type with fewer uses its kernel class's. A handful of tiny ops identify no size law: on
#: device_1 BERT's pooler Tanh (56 rows of one (batch, 768) op) and tiny-ctrl's ReLU (54) are
#: pooled into ``activation``; leave-one-model-out is the same to the third decimal.
MIN_TYPE_ROWS = 100

#: Work columns that a node with ``count`` identical calls holds the total of.
_PER_CALL: tuple[str, ...] = ("flops", "mem_bytes", "input_size")


def node_kernel(node: Node) -> str:
    """A node's kernel class: its own, else its type's (a tree from a dataset,
    :data:`predictor.trace.kernels.TRAINING_TYPES`), else ``""``."""
    return node.kernel or kernel_of_type(node.type)


def per_call_matrix(nodes: Sequence[Node], columns: Sequence[str]) -> tuple[Array, Array]:
    """The feature rows of one call of each node and each node's call count: the work columns
    of a node folded from ``count`` identical calls (a loop's steps) divided by its count."""
    x = feature_matrix(nodes, columns)
    counts = np.asarray([max(int(n.count), 1) for n in nodes], dtype=np.float64)
    if np.any(counts != 1):
        for j, col in enumerate(columns):
            if col in _PER_CALL:
                x[:, j] /= counts
    return x, counts


@dataclass
class MLRegressors:
    """ML-level regressors: per kernel class (``by_kernel``), per primitive type (``by_type``:
    IrEne's keying, used first when fitted) and the pooled fallback for kernel classes without
    training data (static features)."""

    by_type: dict[str, PolyRegressor]
    fallback: PolyRegressor
    method: str
    by_kernel: dict[str, PolyRegressor] = field(default_factory=dict)
    key: str = "type"

    @classmethod
    def fit(
        cls,
        nodes: Sequence[Node],
        feature_set: str,
        *,
        method: str,
        runtime: Sequence[str] = RUNTIME_FEATURES,
        key: str = "type",
    ) -> MLRegressors:
        """Fit ``method`` per kernel class (and with ``key="type"`` also per primitive type) on
        ML nodes with measured energy (``runtime``: the runtime columns of ``full``), and the
        fallback on all of them (static features). A node with a count trains on one call."""
        fit = ML_METHODS.get(method)
        if fit is None:
            raise ValueError(f"unknown ML method {method!r}; use one of {', '.join(ML_METHODS)}")
        if key not in ML_KEYS:
            raise ValueError(f"unknown ML key {key!r}; use one of {', '.join(ML_KEYS)}")
        columns = feature_columns(feature_set, runtime)
        groups: dict[str, dict[str, list[Node]]] = {"kernel": {}, "type": {}}
        for node in nodes:
            kernel = node_kernel(node)
            if kernel:
                groups["kernel"].setdefault(kernel, []).append(node)
            if key == "type":
                groups["type"].setdefault(node.type, []).append(node)
        groups["type"] = {t: g for t, g in groups["type"].items() if len(g) >= MIN_TYPE_ROWS}
        fitted: dict[str, dict[str, PolyRegressor]] = {"kernel": {}, "type": {}}
        for which, by in groups.items():
            for name in sorted(by):
                group = by[name]
                x, counts = per_call_matrix(group, columns)
                fitted[which][name] = fit(x, _energies(group) / counts, columns)
        x, counts = per_call_matrix(nodes, STATIC_COLUMNS)
        fallback = fit_regressor(x, _energies(nodes) / counts, STATIC_COLUMNS, **FALLBACK_SETTINGS)
        return cls(
            by_type=fitted["type"],
            fallback=fallback,
            method=method,
            by_kernel=fitted["kernel"],
            key=key,
        )

    def regressor(self, node: Node) -> PolyRegressor | None:
        """The regressor for ``node``: its type's (when fitted), else its base type's
        (``Linear`` for ``FalconLinear``), else its kernel class's, else its kernel class's
        proxy's (:data:`predictor.trace.kernels.PROXIES`: pooling is an elementwise-like pass),
        else None (the fallback predicts it: extrapolated)."""
        reg = self.by_type.get(node.type)
        if reg is None and node.base:
            reg = self.by_type.get(node.base)
        kernel = node_kernel(node)
        if reg is None:
            reg = self.by_kernel.get(kernel)
        if reg is None and kernel in PROXIES:  # a class that executes like another (kernels.py)
            reg = self.by_kernel.get(PROXIES[kernel])
        return reg

    def covers(self) -> list[str]:
        """The kernel classes this profile predicts without extrapolating: those it has
        training data for. A class predicted through its proxy (:data:`PROXIES`) is not
        among them: no measurement of it was trained on, so its nodes are extrapolated."""
        return sorted(self.by_kernel)

    def proxied(self, node: Node) -> bool:
        """Whether ``node`` is predicted by another class's regressor (its kernel class has
        no training data, its proxy has): a guess from a kernel that executes alike, flagged
        extrapolated like any prediction the training data does not cover."""
        if node.type in self.by_type or (node.base and node.base in self.by_type):
            return False
        kernel = node_kernel(node)
        return kernel not in self.by_kernel and PROXIES.get(kernel) in self.by_kernel

    def predict(self, nodes: Sequence[Node]) -> tuple[Array, npt.NDArray[np.bool_]]:
        """Energies (J) of ``nodes`` and a mask of those predicted by the fallback. A node with
        a count is predicted per call, times its count."""
        out = np.empty(len(nodes), dtype=np.float64)
        extrapolated = np.zeros(len(nodes), dtype=bool)
        groups: dict[int, tuple[PolyRegressor, list[int]]] = {}
        for i, node in enumerate(nodes):
            reg = self.regressor(node)
            if reg is None:
                reg = self.fallback
                extrapolated[i] = True
            elif self.proxied(node):
                extrapolated[i] = True
            groups.setdefault(id(reg), (reg, []))[1].append(i)
        for reg, idx in groups.values():
            group = [nodes[i] for i in idx]
            x, counts = per_call_matrix(group, reg.columns)
            out[idx] = reg.predict_matrix(x) * counts
        return out, extrapolated

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "key": self.key,
            "by_type": {typ: reg.to_dict() for typ, reg in sorted(self.by_type.items())},
            "by_kernel": {k: reg.to_dict() for k, reg in sorted(self.by_kernel.items())},
            "fallback": self.fallback.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MLRegressors:
        return cls(
            by_type={str(t): PolyRegressor.from_dict(r) for t, r in data["by_type"].items()},
            fallback=PolyRegressor.from_dict(data["fallback"]),
            method=str(data["method"]),
            # profiles written before kernel classes hold per-type regressors only
            by_kernel={
                str(k): PolyRegressor.from_dict(r) for k, r in data.get("by_kernel", {}).items()
            },
            key=str(data.get("key", "type")),
        )


def _energies(nodes: Sequence[Node]) -> Array:
    out = np.empty(len(nodes), dtype=np.float64)
    for i, node in enumerate(nodes):
        if node.measured_energy_j is None:
            raise ValueError(f"node {node.name!r} has no measured energy to train on")
        out[i] = node.measured_energy_j
    return out
