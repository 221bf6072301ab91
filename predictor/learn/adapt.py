"""Adapting any profile to a device from whole-model measurements (``irene adapt``).

The shape of the energy across a model's primitives transfers between devices; a few
parameters carry the device. Adapting refits those few on whole-model measurements only
(minutes of metering, no per-node replay), keeping everything else of the base profile:

- a device profile (:class:`~predictor.devices.profile.DeviceProfile`): the seven scales of
  its physical model (:data:`predictor.devices.physical.SCALES`): energy per FLOP, energy
  per byte, static power, and the time per FLOP, per byte, per kernel (ramp) and per launch.
  The device-time scales are fitted only when every measurement has a time (with energies
  alone they are indistinguishable from the energy scales);
- a trained profile (:class:`~predictor.learn.profile.Profile`, e.g. ``irene-device-1``): a
  scale per group of its predictions (:data:`GROUPS`): compute-bound primitives (GEMMs,
  batched products), memory-bound primitives (every other class), and each module's own ops.
  The adapted profile (:class:`AdaptedProfile`) predicts as the base, then scales each node's
  own energy by its group's factor, so its trees stay consistent.

:func:`fit_adaptation` is the fitting core, for any :class:`Adapter` (the registry
:data:`ADAPTERS` makes one per profile kind) and any :class:`Measurement` (one or more
traced trees with multiplicities: a forward pass, or a generation's prefill and decode steps).
It minimises the squared relative errors of the predicted energies (and times) plus a prior
``PRIOR * sum(log(scale)^2)`` that keeps each scale at the base's value unless the data asks
otherwise (the directions the measurements cannot tell apart stay put), and reports the fit's
residual and a leave-one-configuration-out error.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from predictor.errors import DataError, ProfileError
from predictor.learn.flat import Array, Flat
from predictor.learn.profile import Profile
from predictor.learn.provenance import ADAPTED, provenance_record
from predictor.trace.kernels import BMM, GEMM, kernel_of_type
from predictor.trace.tree import EnergyTree, Node

if TYPE_CHECKING:
    from predictor.devices.profile import DeviceProfile
    from predictor.learn.profile import AnyProfile

__all__ = [
    "ADAPTERS",
    "GROUPS",
    "PRIOR",
    "AdaptFit",
    "AdaptedProfile",
    "Adapter",
    "DeviceAdapter",
    "GroupAdapter",
    "Measurement",
    "adapt_profile",
    "adapter_for",
    "apply_group_scales",
    "fit_adaptation",
    "group_energies",
    "measurements_from_csv",
    "measurements_from_dataset",
]

#: Strength of the prior on each log-scale: a doubling costs ``PRIOR * ln(2)^2`` ~ 5e-4, what
#: a 0.4 % relative misfit costs on each of 30 measurements; so the fit moves a scale whenever
#: the data shows it, and a direction the data cannot see stays at the base's value.
PRIOR = 1e-3

#: The groups a trained profile's predictions are scaled by: compute-bound primitives, every
#: other primitive, and the own ops of modules and the model.
GROUPS: tuple[str, ...] = ("compute", "memory", "own")
_COMPUTE_KERNELS = frozenset({GEMM, BMM})


@dataclass(frozen=True)
class Measurement:
    """One measured run: the trees it executes with how often each runs (a forward pass: one
    tree once), its measured energy (J) and, when known, its time (s)."""

    label: str
    model: str
    parts: tuple[tuple[EnergyTree, float], ...]
    energy_j: float
    time_s: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.energy_j) and self.energy_j > 0):
            raise DataError(f"{self.label}: energy must be a positive number of joules")
        if self.time_s is not None and not (math.isfinite(self.time_s) and self.time_s > 0):
            raise DataError(f"{self.label}: time must be a positive number of seconds")
        if not self.parts or any(w <= 0 for _, w in self.parts):
            raise DataError(f"{self.label}: a measurement runs at least one tree a positive times")


class Adapter(Protocol):
    """A base profile's adaptable parameters, and its prediction of the measurements."""

    #: Every scale that can be adapted.
    parameters: tuple[str, ...]
    #: The directions the fit moves the scales in, by name: each a change of the log-scales
    #: (parameter -> coefficient). The prior holds each direction at 0, so what the data
    #: cannot tell apart moves along the common directions (a device uniformly faster or
    #: costlier than the base) rather than along one parameter.
    directions: Mapping[str, Mapping[str, float]]
    #: The ones only time measurements can fix (fitted only when every measurement has one).
    time_parameters: tuple[str, ...]
    #: Whether :meth:`predict` predicts times.
    predicts_time: bool

    def predict(self, scales: Mapping[str, float]) -> tuple[Array, Array | None]:
        """Energy (J) and time (s, or None) of every measurement at ``scales`` (relative to
        the base: 1 is the base)."""
        ...

    def adapted(self, scales: Mapping[str, float], *, name: str, **meta: Any) -> AnyProfile:
        """The base with ``scales`` applied, named ``name``; ``meta``: ``description``,
        ``device``, ``scope``, ``provenance``, ``training_data``, ``cv_error``."""
        ...


# -- trained profiles: scales per group -------------------------------------------------------


def _group_of(node: Node) -> str:
    if node.children:
        return "own"
    if node.level == "ml" and (node.kernel or kernel_of_type(node.type)) in _COMPUTE_KERNELS:
        return "compute"
    return "memory"


def _own_energy(flat: Flat) -> Array:
    energy = np.asarray([n.energy_j or 0.0 for n in flat.nodes], dtype=np.float64)
    return np.maximum(energy - flat.child_sum(energy), 0.0)


def group_energies(tree: EnergyTree) -> dict[str, float]:
    """A predicted tree's energy split by :data:`GROUPS` (each node's own energy: its
    prediction less its children's); the values sum to the root's energy."""
    flat = Flat.of([tree])
    own = _own_energy(flat)
    out = dict.fromkeys(GROUPS, 0.0)
    for node, e in zip(flat.nodes, own.tolist(), strict=True):
        out[_group_of(node)] += e
    return out


def apply_group_scales(tree: EnergyTree, scales: Mapping[str, float]) -> EnergyTree:
    """Scale each node's own predicted energy by its group's factor (:data:`GROUPS`) and
    re-sum the tree, in place: children still sum to at most their parent."""
    flat = Flat.of([tree])
    own = _own_energy(flat)
    factor = np.asarray([float(scales.get(_group_of(n), 1.0)) for n in flat.nodes])
    total = own * factor
    for idx in flat.depths_bottom_up():
        kids = flat.children_of(idx)
        np.add.at(total, flat.parent[kids], total[kids])
    for node, e in zip(flat.nodes, total.tolist(), strict=True):
        node.energy_j = float(e)
    return tree


@dataclass
class AdaptedProfile(Profile):
    """A trained profile whose predictions are rescaled per group (:func:`apply_group_scales`)
    for another device, with that device's scope and provenance."""

    adaptation: dict[str, Any] = field(default_factory=dict)
    scope: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    kind: str = "adapted"

    @property
    def scales(self) -> dict[str, float]:
        return {g: float(self.adaptation.get("scales", {}).get(g, 1.0)) for g in GROUPS}

    def predict(self, tree: EnergyTree) -> EnergyTree:
        super().predict(tree)
        apply_group_scales(tree, self.scales)
        return tree

    def summary(self) -> dict[str, Any]:
        return {
            **super().summary(),
            "kind": self.kind,
            "scales": self.scales,
            "scope": self.scope.get("summary", ""),
            "provenance": self.provenance.get("summary", ""),
        }

    def payload(self) -> dict[str, Any]:
        return {
            **super().payload(),
            "kind": self.kind,
            "adaptation": self.adaptation,
            "scope": self.scope,
            "provenance": self.provenance,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any], path: Path | None = None) -> AdaptedProfile:
        if data.get("kind") != "adapted":
            raise ValueError(f"not an adapted profile (kind {data.get('kind')!r})")
        base = Profile.from_payload(data, path=path)
        scales = data["adaptation"]["scales"]
        if set(scales) != set(GROUPS) or not all(float(v) >= 0 for v in scales.values()):
            raise ValueError(f"adaptation scales must be >= 0 for each of {', '.join(GROUPS)}")
        return cls(
            **{f: getattr(base, f) for f in _PROFILE_FIELDS},
            adaptation=dict(data["adaptation"]),
            scope=dict(data.get("scope", {})),
            provenance=dict(data.get("provenance", {})),
        )


_PROFILE_FIELDS = tuple(f for f in Profile.__dataclass_fields__)


class GroupAdapter:
    """Adapts a trained profile: one scale per group of :data:`GROUPS`. The decomposition of
    each measurement (``n x 3``, J per group, the base's prediction) may be given directly."""

    parameters: tuple[str, ...] = GROUPS
    #: One direction per group. (One overall factor first, then memory-bound and own-op energy
    #: relative to compute-bound, did slightly worse on the adaptation model's own module and ML
    #: rows, which the fit does not see: benchmarks/results/transfer.md.)
    directions: Mapping[str, Mapping[str, float]] = {g: {g: 1.0} for g in GROUPS}
    time_parameters: tuple[str, ...] = ()
    predicts_time = False

    def __init__(
        self,
        base: Profile,
        measurements: Sequence[Measurement] = (),
        *,
        decomposition: Array | None = None,
    ) -> None:
        self.base = base
        if decomposition is None:
            rows = []
            for m in measurements:
                row = np.zeros(len(GROUPS))
                for tree, weight in m.parts:
                    split = group_energies(base.predict(tree))
                    row += weight * np.asarray([split[g] for g in GROUPS])
                rows.append(row)
            decomposition = np.asarray(rows, dtype=np.float64).reshape(-1, len(GROUPS))
        self.decomposition = decomposition

    def predict(self, scales: Mapping[str, float]) -> tuple[Array, Array | None]:
        s = np.asarray([float(scales.get(g, 1.0)) for g in GROUPS])
        return np.asarray(self.decomposition @ s, dtype=np.float64), None

    def adapted(self, scales: Mapping[str, float], *, name: str, **meta: Any) -> AdaptedProfile:
        base = self.base
        before = base.scales if isinstance(base, AdaptedProfile) else dict.fromkeys(GROUPS, 1.0)
        composed = {g: before[g] * float(scales.get(g, 1.0)) for g in GROUPS}
        hardware = dict(base.hardware)
        if meta.get("device"):
            hardware["device"] = meta["device"]
        fields = {f: getattr(base, f) for f in _PROFILE_FIELDS}
        fields.update(
            name=name,
            description=str(meta.get("description", base.description)),
            hardware=hardware,
            training_data=dict(meta.get("training_data", {})),
            cv_error=dict(meta.get("cv_error", {})),
            path=None,
        )
        return AdaptedProfile(
            **fields,
            adaptation={"scales": composed, "groups": {g: _GROUP_TEXT[g] for g in GROUPS}},
            scope=dict(meta.get("scope", {})),
            provenance=dict(meta.get("provenance", {})),
        )


_GROUP_TEXT = {
    "compute": "compute-bound primitives (kernel classes gemm, bmm)",
    "memory": "memory-bound primitives (every other kernel class, leaf modules)",
    "own": "the own ops of modules and the model (their energy less their children's)",
}


# -- device profiles: the physical model's scales ---------------------------------------------


class DeviceAdapter:
    """Adapts a device profile: the seven scales of its physical model."""

    time_parameters: tuple[str, ...] = ("compute_time", "memory_time", "ramp_time")
    #: A device is first uniformly faster or slower than the specification (compute and
    #: memory time together), costlier or cheaper per unit of work (FLOPs and bytes
    #: together); then memory relative to compute, static power, per-kernel overheads (the
    #: device's ramp, the host's launch).
    directions: Mapping[str, Mapping[str, float]] = {
        "speed": {"compute_time": 1.0, "memory_time": 1.0},
        "memory_vs_compute_time": {"memory_time": 1.0},
        "ramp_time": {"ramp_time": 1.0},
        "launch_time": {"launch_time": 1.0},
        "energy_per_work": {"compute_energy": 1.0, "memory_energy": 1.0},
        "memory_vs_compute_energy": {"memory_energy": 1.0},
        "static_power": {"static_power": 1.0},
    }
    predicts_time = True

    def __init__(self, base: DeviceProfile, measurements: Sequence[Measurement]) -> None:
        from predictor.devices.physical import SCALES

        self.base = base
        self.parameters = SCALES
        trees: list[EnergyTree] = []
        weights: list[float] = []
        owner: list[int] = []
        for i, m in enumerate(measurements):
            for tree, weight in m.parts:
                trees.append(tree)
                weights.append(weight)
                owner.append(i)
        self.items = base.physical.work_items(trees)
        tree_of_item = self.items.flat.tree
        self.weight = np.asarray(weights, dtype=np.float64)[tree_of_item]
        self.owner = np.asarray(owner, dtype=np.int64)[tree_of_item]
        self.n = len(measurements)

    def predict(self, scales: Mapping[str, float]) -> tuple[Array, Array | None]:
        physical = self.base.physical
        composed = {k: physical.scales[k] * float(scales.get(k, 1.0)) for k in self.parameters}
        t, e = physical.evaluate(self.items, composed)
        energy = np.bincount(self.owner, weights=e * self.weight, minlength=self.n)
        time = np.bincount(self.owner, weights=t * self.weight, minlength=self.n)
        return energy.astype(np.float64), time.astype(np.float64)

    def adapted(self, scales: Mapping[str, float], *, name: str, **meta: Any) -> DeviceProfile:
        from predictor.devices.profile import DeviceProfile

        base = self.base
        physical = base.physical
        composed = {k: physical.scales[k] * float(scales.get(k, 1.0)) for k in self.parameters}
        hardware = dict(base.hardware)
        if meta.get("device"):
            hardware["device"] = meta["device"]
        return DeviceProfile(
            name=name,
            physical=physical.with_scales(composed),
            description=str(meta.get("description", base.description)),
            hardware=hardware,
            scope=dict(meta.get("scope") or base.scope),
            provenance=dict(meta.get("provenance", {})),
            dtype=base.dtype,
            training_data=dict(meta.get("training_data", {})),
            cv_error=dict(meta.get("cv_error", {})),
        )


#: How a profile of each kind (its ``kind`` attribute; a trained profile has none) is adapted.
ADAPTERS: Mapping[str, Callable[[Any, Sequence[Measurement]], Adapter]] = {
    "trained": GroupAdapter,
    "adapted": GroupAdapter,
    "device": DeviceAdapter,
}


def adapter_for(base: AnyProfile, measurements: Sequence[Measurement]) -> Adapter:
    """The :class:`Adapter` of ``base``'s kind (:data:`ADAPTERS`)."""
    kind = str(getattr(base, "kind", "trained"))
    make = ADAPTERS.get(kind)
    if make is None:
        raise ProfileError(f"profile {base.name!r} of kind {kind!r} cannot be adapted")
    return make(base, measurements)


# -- the fit ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdaptFit:
    """A fit: the scales (relative to the base), the directions fitted, the prediction of each
    measurement, and the errors (MAPE %): in sample (``residual``), of the times when there
    were times, and leave-one-configuration-out (each measurement predicted by a fit on the
    others)."""

    scales: dict[str, float]
    fitted: tuple[str, ...]
    labels: tuple[str, ...]
    measured_j: tuple[float, ...]
    predicted_j: tuple[float, ...]
    residual_mape: float
    residual_max: float
    time_mape: float | None
    loco_mape: float | None
    loco_errors: tuple[float, ...]
    prior: float
    base_mape: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "scales": dict(self.scales),
            "fitted": list(self.fitted),
            "prior": self.prior,
            "base_mape": self.base_mape,
            "residual_mape": self.residual_mape,
            "residual_max_ape": self.residual_max,
            "time_mape": self.time_mape,
            "loco_mape": self.loco_mape,
            "rows": [
                {"label": lab, "measured_j": m, "predicted_j": p, "loco_ape": lo}
                for lab, m, p, lo in zip(
                    self.labels,
                    self.measured_j,
                    self.predicted_j,
                    self.loco_errors or (None,) * len(self.labels),
                    strict=True,
                )
            ],
        }


def _solve(
    adapter: Adapter,
    directions: Mapping[str, Mapping[str, float]],
    energy: Array,
    time: Array | None,
    mask: Array,
    prior: float,
) -> dict[str, float]:
    """The scales minimising the squared relative errors of the ``mask`` measurements plus
    ``prior * |phi|^2``, the log-scales being ``M phi`` (``M``: the ``directions``)."""
    from scipy.optimize import least_squares

    params = adapter.parameters
    m = np.asarray(
        [[float(moves.get(p, 0.0)) for moves in directions.values()] for p in params]
    ).reshape(len(params), len(directions))

    def scales_of(phi: Array) -> dict[str, float]:
        theta = m @ phi
        return {p: math.exp(float(v)) for p, v in zip(params, theta, strict=True)}

    def residuals(phi: Array) -> Array:
        pred_e, pred_t = adapter.predict(scales_of(phi))
        parts = [pred_e[mask] / energy[mask] - 1.0]
        if time is not None and pred_t is not None:
            parts.append(pred_t[mask] / time[mask] - 1.0)
        parts.append(math.sqrt(prior) * phi)
        return np.concatenate(parts)

    result = least_squares(residuals, np.zeros(len(directions)), method="trf")
    return scales_of(np.asarray(result.x, dtype=np.float64))


def fit_adaptation(
    adapter: Adapter,
    measurements: Sequence[Measurement],
    *,
    prior: float = PRIOR,
    fit: Sequence[str] | None = None,
    directions: Mapping[str, Mapping[str, float]] | None = None,
    loco: bool = True,
) -> AdaptFit:
    """Fit ``adapter``'s scales to ``measurements`` (see the module docstring).

    ``fit``: the directions to fit (:attr:`Adapter.directions`; default: all, less those
    moving a time parameter unless every measurement has a time and the adapter predicts
    times). ``directions``: other directions than the adapter's (a form to compare, e.g. one
    per parameter). ``loco``: also refit once per measurement without it, for the
    leave-one-configuration-out error.
    """
    if not measurements:
        raise DataError("no measurements to adapt to")
    energy = np.asarray([m.energy_j for m in measurements], dtype=np.float64)
    have_time = adapter.predicts_time and all(m.time_s is not None for m in measurements)
    time = np.asarray([m.time_s for m in measurements], dtype=np.float64) if have_time else None
    every = dict(directions if directions is not None else adapter.directions)
    bad = [p for moves in every.values() for p in moves if p not in adapter.parameters]
    if bad:
        raise ValueError(
            f"directions move unknown parameter(s) {', '.join(bad)}; the profile's are "
            f"{', '.join(adapter.parameters)}"
        )
    if fit is None:
        fitted = tuple(
            d
            for d, moves in every.items()
            if have_time or not set(moves) & set(adapter.time_parameters)
        )
    else:
        unknown = [d for d in fit if d not in every]
        if unknown:
            raise ValueError(
                f"cannot fit {', '.join(unknown)}; the directions are {', '.join(every)}"
            )
        fitted = tuple(fit)
    chosen = {d: every[d] for d in fitted}
    everything = np.ones(len(measurements), dtype=bool)
    scales = _solve(adapter, chosen, energy, time, everything, prior)
    pred_e, pred_t = adapter.predict(scales)
    base_e, _ = adapter.predict({})
    ape = 100.0 * np.abs(pred_e - energy) / energy
    loco_errors: list[float] = []
    if loco and len(measurements) > 1:
        for i in range(len(measurements)):
            mask = everything.copy()
            mask[i] = False
            held = _solve(adapter, chosen, energy, time, mask, prior)
            e_i, _ = adapter.predict(held)
            loco_errors.append(float(100.0 * abs(e_i[i] - energy[i]) / energy[i]))
    time_mape = None
    if time is not None and pred_t is not None:
        time_mape = float(np.mean(100.0 * np.abs(pred_t - time) / time))
    return AdaptFit(
        scales=scales,
        fitted=fitted,
        labels=tuple(m.label for m in measurements),
        measured_j=tuple(energy.tolist()),
        predicted_j=tuple(pred_e.tolist()),
        residual_mape=float(ape.mean()),
        residual_max=float(ape.max()),
        time_mape=time_mape,
        loco_mape=float(np.mean(loco_errors)) if loco_errors else None,
        loco_errors=tuple(loco_errors),
        prior=prior,
        base_mape=float(np.mean(100.0 * np.abs(base_e - energy) / energy)),
    )


def adapt_profile(
    base: AnyProfile,
    measurements: Sequence[Measurement],
    *,
    name: str,
    data: str,
    scope: Mapping[str, Any] | None = None,
    device: str | None = None,
    prior: float = PRIOR,
    fit: Sequence[str] | None = None,
    directions: Mapping[str, Mapping[str, float]] | None = None,
    adapter: Adapter | None = None,
) -> tuple[AnyProfile, AdaptFit]:
    """``base`` adapted to ``measurements`` (from ``data``, named in its provenance): the
    adapted profile named ``name`` and the fit. ``scope``: what the measurements metered
    (:func:`predictor.learn.provenance.scope_record`; default the base's). ``adapter``: the
    :class:`Adapter` to fit (default :func:`adapter_for` the base's kind; generations:
    :class:`predictor.learn.generation_adapt.GenerationAdapter`)."""
    adapter = adapter if adapter is not None else adapter_for(base, measurements)
    result = fit_adaptation(adapter, measurements, prior=prior, fit=fit, directions=directions)
    models = list(dict.fromkeys(m.model for m in measurements))
    summary = (
        f"adapted from {len(measurements)} whole-model measurement(s) of "
        f"{', '.join(models)} ({data}) on base profile '{base.name}'"
    )
    provenance = provenance_record(
        ADAPTED,
        summary,
        base={
            "name": base.name,
            "sha256": base.sha256,
            "provenance": _provenance_text(base),
        },
        data=data,
        measurements=len(measurements),
        models=models,
        scales=dict(result.scales),
        fitted=list(result.fitted),
        residual_mape=result.residual_mape,
        loco_mape=result.loco_mape,
    )
    from predictor.learn.profile import _library_versions

    profile = adapter.adapted(
        result.scales,
        name=name,
        description=f"{base.description} Adapted: {summary}.",
        device=device,
        scope=dict(scope) if scope else _scope_of(base),
        provenance=provenance,
        training_data={
            "source": data,
            "models": models,
            "measurements": len(measurements),
            "labels": [m.label for m in measurements],
        },
        cv_error={
            "protocol": "leave-one-configuration-out MAPE % of the adaptation's measurements",
            "loco_mape": result.loco_mape,
            "residual_mape": result.residual_mape,
        },
    )
    profile.library_versions = _library_versions()
    return profile, result


def _provenance_text(profile: AnyProfile) -> str:
    from predictor.gate.scope import scope_fields

    return scope_fields(profile)["provenance"]


def _scope_of(profile: AnyProfile) -> dict[str, Any]:
    from predictor.gate.scope import scope_fields

    fields = scope_fields(profile)
    return {"kind": fields.get("scope_kind", ""), "summary": fields["scope"]}


# -- reading measurements ---------------------------------------------------------------------

#: A traced tree of (spec, batch size, sequence length, dtype), cached per counting mode.
TraceFn = Callable[[str, int, int, str | None], EnergyTree]


def zoo_tracer(counting_mode: str) -> TraceFn:
    """A cached :func:`predictor.trace.zoo.build_zoo_tree` in ``counting_mode``."""
    from predictor.trace.zoo import build_zoo_tree

    cache: dict[tuple[str, int, int, str | None], EnergyTree] = {}

    def trace(spec: str, batch: int, seq: int, dtype: str | None) -> EnergyTree:
        key = (spec, batch, seq, dtype)
        if key not in cache:
            cache[key] = build_zoo_tree(spec, batch, seq, counting_mode=counting_mode, dtype=dtype)
        return cache[key]

    return trace


def dataset_dtype(dataset: Any) -> str:
    """The dtype a dataset was measured in (its ``hardware.json``; default the IrEne data's
    fp32), as a :data:`~predictor.trace.dtypes.MODEL_DTYPES` name."""
    from predictor.trace.dtypes import short_dtype_name

    return short_dtype_name(str(dataset.hardware.get("dtype", "float32")))


def measurements_from_dataset(
    dataset: Any, models: Sequence[str], trace: TraceFn, *, level: str = "model"
) -> list[Measurement]:
    """The ``level`` rows (only ``model``: whole-model energies and ``times_mean``) of
    ``models`` in an IrEne-layout dataset (:class:`predictor.learn.data.Dataset`), each traced
    with ``trace``; the dtype is the dataset's (``hardware.json``; the IrEne data's fp32)."""
    if level != "model":
        raise DataError(f"adapting from {level!r} rows is not supported; use --level model")
    unknown = [m for m in models if m not in dataset.model_names]
    if unknown:
        raise DataError(
            f"{dataset.path}: no configurations of {', '.join(unknown)} "
            f"(the dataset has {', '.join(dataset.model_names)})"
        )
    dtype = dataset_dtype(dataset)
    out = []
    for tree in dataset.trees:
        if tree.model_name not in models:
            continue
        root = tree.root
        if root.measured_energy_j is None:
            continue
        label = f"{tree.model_name} b{tree.batch_size} s{tree.seq_len} {dtype}"
        time = root.runtime.get("times_mean")
        out.append(
            Measurement(
                label=label,
                model=tree.model_name,
                parts=((trace(tree.model_name, tree.batch_size, tree.seq_len, dtype), 1.0),),
                energy_j=float(root.measured_energy_j),
                time_s=float(time) if time is not None and time > 0 else None,
            )
        )
    return out


#: Columns of a whole-model measurements CSV (``irene calibrate --level model`` writes them):
#: required, then optional.
CSV_REQUIRED: tuple[str, ...] = ("model", "batch_size", "seq_len", "energy_j")
CSV_OPTIONAL: tuple[str, ...] = ("dtype", "time_s")


@dataclass(frozen=True)
class CsvRow:
    """One data row of a measurements CSV, at ``line`` of ``path`` (comment lines counted),
    whose values are read with what, where and how to fix it when they are bad."""

    path: Path
    line: int
    values: Mapping[str, str]

    def text(self, col: str) -> str:
        return (self.values.get(col) or "").strip()

    def number(self, col: str) -> float:
        """A positive finite number."""
        raw = self.text(col)
        try:
            value = float(raw)
        except ValueError:
            raise DataError(
                f"{self.path}:{self.line}: {col} must be a number (got {raw!r})"
            ) from None
        if not (math.isfinite(value) and value > 0):
            raise DataError(
                f"{self.path}:{self.line}: {col} must be a positive number (got {raw!r})"
            )
        return value

    def optional_number(self, col: str) -> float | None:
        return self.number(col) if self.text(col) else None

    def integer(self, col: str) -> int:
        """A positive integer."""
        value = self.number(col)
        if value != int(value):
            raise DataError(f"{self.path}:{self.line}: {col} must be an integer (got {value!r})")
        return int(value)

    def model(self) -> str:
        spec = self.text("model")
        if not spec:
            raise DataError(
                f"{self.path}:{self.line}: model is empty; give a zoo name or "
                "package.module:factory"
            )
        return spec

    def dtype(self) -> str | None:
        """A :data:`~predictor.trace.dtypes.MODEL_DTYPES` name, or None when blank."""
        from predictor.trace.dtypes import MODEL_DTYPES

        dtype = self.text("dtype") or None
        if dtype is not None and dtype not in MODEL_DTYPES:
            raise DataError(
                f"{self.path}:{self.line}: dtype must be one of {', '.join(MODEL_DTYPES)} or "
                f"blank (got {dtype!r})"
            )
        return dtype


def read_csv_rows(
    path: str | Path, required: Sequence[str], optional: Sequence[str], what: str
) -> list[CsvRow]:
    """The data rows of a CSV whose ``#`` lines are comments, after checking its header has
    the ``required`` columns (``what``: the kind of CSV, for the message). Unreadable:
    OutputError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        from predictor.errors import OutputError

        raise OutputError.from_os_error(exc, "read", p) from None
    kept = [(n, line) for n, line in enumerate(text.splitlines(), 1) if not line.startswith("#")]
    reader = csv.DictReader(line for _, line in kept)
    header = reader.fieldnames or []
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(
            f"{p}:{kept[0][0] if kept else 1}: missing column(s) {', '.join(missing)}; {what} "
            f"needs {', '.join(required)} (optional: {', '.join(optional)})"
        )
    return [CsvRow(p, kept[reader.line_num - 1][0], row) for row in reader]


def check_models_found(
    path: Path, models: Sequence[str] | None, found: set[str], what: str
) -> None:
    """DataError when a requested model has no rows, or when there are no rows at all."""
    if models is not None:
        absent = [m for m in models if m not in found]
        if absent:
            raise DataError(f"{path}: no rows of {', '.join(absent)}")
    if not found:
        raise DataError(f"{path}: no {what} (rows) to adapt to")


def measurements_from_csv(
    path: str | Path, trace: TraceFn, *, models: Sequence[str] | None = None
) -> list[Measurement]:
    """Whole-model measurements from a CSV (:data:`CSV_REQUIRED` + :data:`CSV_OPTIONAL`
    columns; a blank ``dtype`` is the model's own), only the rows of ``models`` when given."""
    from predictor.errors import ModelError

    out: list[Measurement] = []
    for row in read_csv_rows(path, CSV_REQUIRED, CSV_OPTIONAL, "a measurements CSV"):
        spec = row.model()
        if models is not None and spec not in models:
            continue
        batch, seq = row.integer("batch_size"), row.integer("seq_len")
        dtype = row.dtype()
        try:
            tree = trace(spec, batch, seq, dtype)
        except ModelError as exc:
            raise DataError(f"{row.path}:{row.line}: {exc}") from None
        out.append(
            Measurement(
                label=f"{spec} b{batch} s{seq} {dtype or 'native dtype'}",
                model=spec,
                parts=((tree, 1.0),),
                energy_j=row.number("energy_j"),
                time_s=row.optional_number("time_s"),
            )
        )
    check_models_found(Path(path), models, {m.model for m in out}, "measurements")
    return out
