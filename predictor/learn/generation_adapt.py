"""Adapting a device profile to measured generations (``irene adapt`` with a generation CSV).

A served generation spends its time in three places: the GPU kernels of the prefill passes
and of every decode step (the device profile's physical model prices them, from the traced
trees), and the serving engine's host work between and around them (scheduling, sampling over
the vocabulary, detokenising, streaming) while the GPU waits at its static power. The adapter
(:class:`GenerationAdapter`) fits, on the fitting core of :mod:`predictor.learn.adapt`, the
device profile's seven scales together with the two host times that carry a serving engine:

- ``sequence_time``: host time per sequence per decode step (``ServingOverhead.sequence_s``);
- ``vocab_time``: host time per vocabulary entry per sequence per decode step
  (``ServingOverhead.vocab_s``): the sampler works on every sequence's logits.

Both are time parameters (fitted only when every measurement has a time, as the device's own
time scales are): with energies alone, host time and static power cannot be told apart. The
adapted profile states the fitted overhead in ``hardware["serving"]``, which
:func:`predictor.learn.generation.predict_generation` adds to every decode step.

A measurement (:class:`GenerationMeasurement`) is one generation of a batch: its prefill
passes and decode steps as the parts of :class:`~predictor.learn.adapt.Measurement`, its whole
energy (J) and wall time (s). :func:`measurements_from_generation_csv` reads them from a CSV
(:data:`GENERATION_CSV_REQUIRED` columns).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from predictor.errors import DataError, ModelError
from predictor.learn.adapt import DeviceAdapter, Measurement
from predictor.learn.flat import Array
from predictor.learn.generation import ServingOverhead, serving_overhead
from predictor.trace.workload import Workload

if TYPE_CHECKING:
    from predictor.devices.profile import DeviceProfile
    from predictor.trace.generation import GenerationTrees

__all__ = [
    "GENERATION_CSV_OPTIONAL",
    "GENERATION_CSV_REQUIRED",
    "NOMINAL_SERVING",
    "SERVING_SCALES",
    "GenerationAdapter",
    "GenerationMeasurement",
    "generation_measurement",
    "generation_tracer",
    "is_generation_csv",
    "measurements_from_generation_csv",
]

#: The serving scales the adapter adds to a device profile's: (scale, ServingOverhead field).
SERVING_SCALES: tuple[tuple[str, str], ...] = (
    ("sequence_time", "sequence_s"),
    ("vocab_time", "vocab_s"),
)
#: What the serving scales multiply when the base profile states no overhead: 100 us per
#: sequence per step, 1 ns per vocabulary entry per sequence per step (the order of a Python
#: serving engine's per-request bookkeeping and of a GPU sampler's pass over fp32 logits).
NOMINAL_SERVING = ServingOverhead(sequence_s=1e-4, vocab_s=1e-9)


@dataclass(frozen=True)
class GenerationMeasurement(Measurement):
    """A measured generation: ``parts`` are its prefill passes and decode steps (each tree
    with the number of times it runs), ``energy_j`` and ``time_s`` the whole batch's."""

    workload: Workload | None = None
    vocab_size: int = 0


def generation_measurement(
    label: str,
    model: str,
    trees: GenerationTrees,
    energy_j: float,
    time_s: float | None = None,
) -> GenerationMeasurement:
    """A measurement of the generation ``trees`` traced (prefill passes x their count, each
    decode step x the steps it stands for)."""
    w = trees.workload
    parts = [(trees.prefill, w.prefill_passes), *((t, p.weight) for p, t in trees.decode)]
    return GenerationMeasurement(
        label=label,
        model=model,
        parts=tuple(parts),
        energy_j=energy_j,
        time_s=time_s,
        workload=w,
        vocab_size=int(trees.cache.get("vocab_size") or 0),
    )


class GenerationAdapter:
    """Adapts a device profile to generations: its seven scales (:class:`DeviceAdapter`) and
    the serving engine's host times (:data:`SERVING_SCALES`), see the module docstring."""

    predicts_time = True

    def __init__(self, base: DeviceProfile, measurements: Sequence[Measurement]) -> None:
        self.base = base
        self.device = DeviceAdapter(base, measurements)
        self.parameters: tuple[str, ...] = (
            *self.device.parameters,
            *(s for s, _ in SERVING_SCALES),
        )
        self.directions: Mapping[str, Mapping[str, float]] = {
            **DeviceAdapter.directions,
            **{s: {s: 1.0} for s, _ in SERVING_SCALES},
        }
        self.time_parameters: tuple[str, ...] = (
            *DeviceAdapter.time_parameters,
            *(s for s, _ in SERVING_SCALES),
        )
        stated = serving_overhead(base)
        self.nominal = (
            stated if any(getattr(stated, f) > 0 for _, f in SERVING_SCALES) else NOMINAL_SERVING
        )
        counts = []
        for m in measurements:
            w = getattr(m, "workload", None)
            if w is None:
                raise DataError(
                    f"{m.label}: not a generation (no workload): adapt forward passes with the "
                    "device adapter"
                )
            seq_steps = float(w.batch_size * w.decode_steps)
            counts.append((seq_steps, seq_steps * float(getattr(m, "vocab_size", 0))))
        #: Per measurement, the host-time units of each serving scale.
        self.units = np.asarray(counts, dtype=np.float64).reshape(-1, len(SERVING_SCALES))

    def _static_power_w(self, scales: Mapping[str, float]) -> float:
        physical = self.base.physical
        return (
            physical.static_power_w
            * physical.scales["static_power"]
            * float(scales.get("static_power", 1.0))
        )

    def _host_times(self, scales: Mapping[str, float]) -> Array:
        per_unit = np.asarray(
            [getattr(self.nominal, f) * float(scales.get(s, 1.0)) for s, f in SERVING_SCALES]
        )
        return np.asarray(self.units @ per_unit, dtype=np.float64)

    def predict(self, scales: Mapping[str, float]) -> tuple[Array, Array | None]:
        energy, time = self.device.predict({k: scales.get(k, 1.0) for k in self.device.parameters})
        host = self._host_times(scales)
        assert time is not None
        return energy + self._static_power_w(scales) * host, time + host

    def serving(self, scales: Mapping[str, float], source: str = "") -> ServingOverhead:
        """The serving overhead at ``scales``, at the adapted static power."""
        values = {
            f: getattr(self.nominal, f) * float(scales.get(s, 1.0)) for s, f in SERVING_SCALES
        }
        return ServingOverhead(idle_power_w=self._static_power_w(scales), source=source, **values)

    def adapted(self, scales: Mapping[str, float], *, name: str, **meta: Any) -> DeviceProfile:
        profile = self.device.adapted(
            {k: scales.get(k, 1.0) for k in self.device.parameters}, name=name, **meta
        )
        source = str(meta.get("training_data", {}).get("source", ""))
        profile.hardware["serving"] = self.serving(scales, source).to_dict()
        return profile


# -- reading measured generations ----------------------------------------------------------------

#: Columns of a generation measurements CSV: the model, the workload, the whole batch's energy.
GENERATION_CSV_REQUIRED: tuple[str, ...] = (
    "model",
    "batch_size",
    "prompt_len",
    "new_tokens",
    "energy_j",
)
#: Optional: the batch's wall time, prompts per prefill pass, dtype, a label.
GENERATION_CSV_OPTIONAL: tuple[str, ...] = ("time_s", "prefill_batch", "dtype", "label")

#: (spec, workload) -> its traced generation.
GenerationTraceFn = Callable[[str, Workload], "GenerationTrees"]


def generation_tracer(counting_mode: str = "native", points: int = 5) -> GenerationTraceFn:
    """A cached tracer of generations: each spec's causal LM built once per dtype, each
    workload traced once (:func:`predictor.trace.generation.trace_generation`)."""
    from predictor.trace.generation import build_generation_model, trace_generation

    models: dict[tuple[str, str | None], Any] = {}
    traced: dict[tuple[str, Workload], GenerationTrees] = {}

    def trace(spec: str, workload: Workload) -> GenerationTrees:
        key = (spec, workload)
        if key not in traced:
            mkey = (spec, workload.dtype)
            if mkey not in models:
                models[mkey] = build_generation_model(spec, workload.dtype)
            traced[key] = trace_generation(
                models[mkey], workload, name=spec, counting_mode=counting_mode, points=points
            )
        return traced[key]

    return trace


def is_generation_csv(path: str | Path) -> bool:
    """Whether a measurements CSV holds generations (it has ``new_tokens``)."""
    try:
        with Path(path).open(encoding="utf-8") as fh:
            lines = (line for line in fh if not line.startswith("#"))
            header = next(csv.reader(lines), [])
    except OSError:
        return False
    return "new_tokens" in header


def measurements_from_generation_csv(
    path: str | Path,
    trace: GenerationTraceFn,
    *,
    models: Sequence[str] | None = None,
) -> list[GenerationMeasurement]:
    """Measured generations from a CSV (:data:`GENERATION_CSV_REQUIRED` +
    :data:`GENERATION_CSV_OPTIONAL`; ``energy_j`` and ``time_s`` of the whole batch's
    generation), only those of ``models`` when given; each traced with ``trace``."""
    from predictor.learn.adapt import check_models_found, read_csv_rows

    out: list[GenerationMeasurement] = []
    rows = read_csv_rows(
        path, GENERATION_CSV_REQUIRED, GENERATION_CSV_OPTIONAL, "a generation measurements CSV"
    )
    for row in rows:
        spec = row.model()
        if models is not None and spec not in models:
            continue
        dtype = row.dtype()
        prefill = row.integer("prefill_batch") if row.text("prefill_batch") else None
        try:
            workload = Workload(
                row.integer("batch_size"),
                row.integer("prompt_len"),
                row.integer("new_tokens"),
                dtype,
                prefill,
            )
            trees = trace(spec, workload)
        except ModelError as exc:
            raise DataError(f"{row.path}:{row.line}: {exc}") from None
        label = row.text("label") or f"{spec} {workload.describe()}"
        out.append(
            generation_measurement(
                label, spec, trees, row.number("energy_j"), row.optional_number("time_s")
            )
        )
    check_models_found(Path(path), models, {o.model for o in out}, "generations")
    return out
