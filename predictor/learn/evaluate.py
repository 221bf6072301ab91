"""Leave-one-model-out cross-validation, IrEne's protocol without its leaks.

For each model of the dataset (except those kept out of the folds: ``sshleifer/tiny-ctrl``, as
in the paper, stays in every training set but is never a fold), every scaler, regressor and
aggregator is fitted on the other models' trees only, then every configuration of the left-out
model is predicted from its static (or static + runtime) features alone.

Metric: mean absolute percentage error ``100 * |pred - true| / true`` over the nodes of a level
(``ml``, ``module``) and over the roots (``model``). ``overall`` pools every fold's rows
(row-weighted, as IrEne's tables); ``mean_over_folds`` averages the per-fold MAPEs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from predictor.errors import DataError
from predictor.learn.data import Dataset
from predictor.learn.flat import Array, Flat
from predictor.learn.profile import Settings, fit_components, predict_flat
from predictor.trace.tree import LEVELS, EnergyTree

__all__ = [
    "NOT_A_FOLD",
    "CVReport",
    "FoldResult",
    "cross_validate",
    "evaluate_profile",
    "level_errors",
]

#: Models that train every fold but are never held out (IrEne's protocol).
NOT_A_FOLD: tuple[str, ...] = ("sshleifer/tiny-ctrl",)


@dataclass(frozen=True)
class FoldResult:
    """One left-out model: MAPE (%) and row count per level."""

    model: str
    mape: dict[str, float]
    rows: dict[str, int]
    fit_s: float


@dataclass
class CVReport:
    feature_set: str
    settings: dict[str, Any]
    folds: list[FoldResult]
    overall: dict[str, float]
    mean_over_folds: dict[str, float]
    wall_s: float
    dataset: str = ""
    not_a_fold: tuple[str, ...] = NOT_A_FOLD
    extra: dict[str, Any] = field(default_factory=dict)
    #: The table's first line (default: the cross-validation's) and its first column's header.
    title: str = ""
    row_label: str = "left-out model"

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "feature_set": self.feature_set,
            "protocol": "leave-one-model-out; scalers and regressors fit on training folds only; "
            f"never a fold: {', '.join(self.not_a_fold) or 'none'}",
            "settings": self.settings,
            "folds": [asdict(f) for f in self.folds],
            "overall_row_weighted_mape": self.overall,
            "mean_over_folds_mape": self.mean_over_folds,
            "wall_s": self.wall_s,
            **self.extra,
        }

    def format_table(self) -> str:
        title = self.title or f"leave-one-model-out, features={self.feature_set}"
        lines = [
            f"{title}, MAPE % (rows)",
            f"{self.row_label:<26} {'ml':>16} {'module':>16} {'model':>14}",
        ]
        for f in self.folds:
            cells = [f"{f.mape[lvl]:7.2f} ({f.rows[lvl]:>5})" for lvl in ("ml", "module", "model")]
            lines.append(f"{f.model:<26} {cells[0]:>16} {cells[1]:>16} {cells[2]:>14}")
        mean_label = "mean over folds" if self.row_label == "left-out model" else "mean over models"
        for label, values in (
            ("overall (row-weighted)", self.overall),
            (mean_label, self.mean_over_folds),
        ):
            lines.append(
                f"{label:<26} {values['ml']:>16.2f} {values['module']:>16.2f} {values['model']:>14.2f}"
            )
        lines.append(f"wall time {self.wall_s:.1f} s")
        return "\n".join(lines)


def level_errors(trees: Sequence[EnergyTree], predicted: Array, flat: Flat) -> dict[str, Array]:
    """Absolute percentage errors per level for nodes with measured energy."""
    del trees
    y = flat.measured()
    levels = np.asarray([n.level for n in flat.nodes])
    out: dict[str, Array] = {}
    for lvl in LEVELS:
        mask = (levels == lvl) & np.isfinite(y)
        out[lvl] = 100.0 * np.abs(predicted[mask] - y[mask]) / y[mask]
    return out


def cross_validate(
    dataset: Dataset,
    feature_set: str,
    settings: Settings | None = None,
    *,
    models: Sequence[str] | None = None,
    not_a_fold: Sequence[str] = NOT_A_FOLD,
) -> CVReport:
    """Leave-one-model-out CV; ``models`` restricts the folds (default: all but ``not_a_fold``)."""
    settings = settings or Settings.default(feature_set)
    start = time.perf_counter()
    fold_models = [m for m in (models or dataset.model_names) if m not in not_a_fold]
    unknown = [m for m in fold_models if m not in dataset.model_names]
    if unknown:
        raise DataError(f"{dataset.path}: no trees for model(s) {', '.join(unknown)}")
    if len(dataset.model_names) < 2:
        raise DataError(f"{dataset.path}: leave-one-model-out needs at least two models")
    folds: list[FoldResult] = []
    pooled: dict[str, list[Array]] = {lvl: [] for lvl in LEVELS}
    for held_out in fold_models:
        t0 = time.perf_counter()
        train = [t for t in dataset.trees if t.model_name != held_out]
        test = dataset.by_model(held_out)
        ml, agg = fit_components(train, feature_set, settings)
        flat = Flat.of(test)
        predicted, _ = predict_flat(flat, ml, agg)
        errors = level_errors(test, predicted, flat)
        for lvl in LEVELS:
            pooled[lvl].append(errors[lvl])
        folds.append(
            FoldResult(
                model=held_out,
                mape={
                    lvl: float(errors[lvl].mean()) if errors[lvl].size else float("nan")
                    for lvl in LEVELS
                },
                rows={lvl: int(errors[lvl].size) for lvl in LEVELS},
                fit_s=time.perf_counter() - t0,
            )
        )
    overall: dict[str, float] = {lvl: float(np.concatenate(pooled[lvl]).mean()) for lvl in LEVELS}
    mean_folds: dict[str, float] = {
        lvl: float(np.mean([f.mape[lvl] for f in folds])) for lvl in LEVELS
    }
    return CVReport(
        feature_set=feature_set,
        settings=settings.to_dict(),
        folds=folds,
        overall=overall,
        mean_over_folds=mean_folds,
        wall_s=time.perf_counter() - start,
        dataset=str(dataset.path),
        not_a_fold=tuple(not_a_fold),
    )


def evaluate_profile(
    profile: Any,
    dataset: Dataset,
    *,
    models: Sequence[str] | None = None,
    retrace: Any = None,
) -> CVReport:
    """The error of a fixed ``profile`` on ``dataset`` per model and level (no refitting), in
    the layout of :func:`cross_validate` (one row per model instead of per fold).

    A profile counting features as the dataset does predicts its trees; any other (a device
    profile: native counting) predicts each configuration traced again from the zoo in its own
    counting mode at the dataset's dtype, its energies carried over to the dataset's nodes
    (:mod:`predictor.learn.retrace`; ``retrace`` overrides the tracer). Dataset nodes without
    a counterpart are counted in ``extra["unmatched"]``, not scored.
    """
    from predictor.learn.adapt import zoo_tracer
    from predictor.learn.retrace import carry_predictions

    start = time.perf_counter()
    chosen = list(models or [m for m in dataset.model_names])
    unknown = [m for m in chosen if m not in dataset.model_names]
    if unknown:
        raise DataError(f"{dataset.path}: no trees for model(s) {', '.join(unknown)}")
    same_counting = all(t.counting_mode == profile.counting_mode for t in dataset.trees)
    dtype = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(
        str(dataset.hardware.get("dtype", "float32")), "fp32"
    )
    trace = retrace or (None if same_counting else zoo_tracer(profile.counting_mode))
    folds: list[FoldResult] = []
    pooled: dict[str, list[Array]] = {lvl: [] for lvl in LEVELS}
    unmatched: dict[str, int] = {}
    by_type: dict[str, list[float]] = {}
    for model in chosen:
        t0 = time.perf_counter()
        predicted_trees: list[EnergyTree] = []
        for tree in dataset.by_model(model):
            if trace is None:
                copy = EnergyTree.from_dict(tree.to_dict())
                predicted_trees.append(profile.predict(copy))
                continue
            traced = profile.predict(trace(model, tree.batch_size, tree.seq_len, dtype))
            carried = carry_predictions(tree, traced)
            unmatched[model] = unmatched.get(model, 0) + len(carried.unmatched)
            predicted_trees.append(carried.tree)
        flat = Flat.of(predicted_trees)
        predicted = np.asarray(
            [np.nan if n.energy_j is None else n.energy_j for n in flat.nodes], dtype=np.float64
        )
        y = flat.measured()
        levels = np.asarray([n.level for n in flat.nodes])
        errors: dict[str, Array] = {}
        for lvl in LEVELS:
            mask = (levels == lvl) & np.isfinite(y) & np.isfinite(predicted)
            errors[lvl] = 100.0 * np.abs(predicted[mask] - y[mask]) / y[mask]
            pooled[lvl].append(errors[lvl])
        for node, p, m in zip(flat.nodes, predicted.tolist(), y.tolist(), strict=True):
            if node.level == "ml" and np.isfinite(p) and np.isfinite(m):
                by_type.setdefault(node.type, []).append(100.0 * abs(p - m) / m)
        folds.append(
            FoldResult(
                model=model,
                mape={
                    lvl: float(errors[lvl].mean()) if errors[lvl].size else float("nan")
                    for lvl in LEVELS
                },
                rows={lvl: int(errors[lvl].size) for lvl in LEVELS},
                fit_s=time.perf_counter() - t0,
            )
        )
    overall: dict[str, float] = {
        lvl: float(np.concatenate(pooled[lvl]).mean()) if pooled[lvl] else float("nan")
        for lvl in LEVELS
    }
    mean_folds: dict[str, float] = {
        lvl: float(np.nanmean([f.mape[lvl] for f in folds])) for lvl in LEVELS
    }
    from predictor.gate.report import profile_identity

    return CVReport(
        feature_set=profile.feature_set,
        settings={"profile": profile_identity(profile)},
        folds=folds,
        overall=overall,
        mean_over_folds=mean_folds,
        wall_s=time.perf_counter() - start,
        dataset=str(dataset.path),
        not_a_fold=(),
        extra={
            "protocol": f"fixed profile {profile.name!r}, no refitting; MAPE % per model",
            "unmatched": unmatched,
            "retraced": trace is not None,
            "ml_mape_by_type": {
                t: {"mape": float(np.mean(v)), "rows": len(v)} for t, v in sorted(by_type.items())
            },
        },
        title=f"profile {profile.name!r} on {dataset.path}, features={profile.feature_set}",
        row_label="model",
    )
