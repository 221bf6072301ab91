"""Metering the models under test: ``--energy-meter`` and ``--energy-check`` for the gate.

The gate's engine (:mod:`predictor.gate.engine`) calls this module. With
``--energy-meter auto|nvml|rapl|fake``
each model the gate predicts is also run for real and every node of its tree is measured
(:func:`predictor.measure.calibrate.measure_tree`, on the device the model is on), so reports show
measured beside predicted energy. ``--energy-check measured`` makes budgets judge measured
values (``predicted`` is the default). When the meter cannot read, the run says why and falls
back to prediction, or fails when measured values were demanded.

The options are resolved with the gate's others (:func:`predictor.gate.options.resolve_options`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from predictor.errors import HardwareUnavailable
from predictor.trace.tree import EnergyTree

__all__ = [
    "Metering",
    "Outcome",
    "measure_tree",
    "merge_measured",
    "tree_for_check",
]

# -- trees --------------------------------------------------------------------------------------


def merge_measured(predicted: EnergyTree, measured: EnergyTree) -> EnergyTree:
    """A copy of ``predicted`` with ``measured_energy_j`` and runtime features from ``measured``.

    Nodes are matched by name and occurrence (functional-op names repeat); nodes the meter
    could not measure keep ``measured_energy_j`` None.
    """
    out = EnergyTree.from_dict(predicted.to_dict())
    found: dict[tuple[str, int], Any] = {}
    seen: Counter[str] = Counter()
    for node in measured.walk():
        found[(node.name, seen[node.name])] = node
        seen[node.name] += 1
    seen.clear()
    for node in out.walk():
        match = found.get((node.name, seen[node.name]))
        seen[node.name] += 1
        if match is not None and match.measured_energy_j is not None:
            node.measured_energy_j = match.measured_energy_j
            node.runtime = dict(match.runtime)
    out.meta = {**out.meta, "measured": measured.meta.get("measured", {})}
    return out


def tree_for_check(tree: EnergyTree, check: str) -> EnergyTree:
    """The tree whose ``energy_j`` the budgets should judge.

    ``predicted``: the tree itself. ``measured``: a copy whose ``energy_j`` is the measured
    energy; nodes without a measurement keep the prediction and are listed in
    ``meta["energy_check"]["predicted_fallback"]`` (never a silent zero).
    """
    if check == "predicted":
        return tree
    if check != "measured":
        raise ValueError(f"check must be 'predicted' or 'measured' (got {check!r})")
    out = EnergyTree.from_dict(tree.to_dict())
    fallback: list[str] = []
    for node in out.walk():
        if node.measured_energy_j is not None:
            node.energy_j = node.measured_energy_j
        else:
            fallback.append(node.name)
    if out.root.measured_energy_j is None:
        raise HardwareUnavailable(
            f"{tree.model_name}: --energy-check measured, but the model was not measured"
        )
    out.meta = {**out.meta, "energy_check": {"source": "measured", "predicted_fallback": fallback}}
    return out


def measure_tree(
    model: Any,
    tree: EnergyTree,
    inputs: Sequence[Any] | Mapping[str, Any],
    meter: Any,
    *,
    settings: Any | None = None,
    idle_power_w: float | None = None,
) -> EnergyTree:
    """``tree`` (predicted or not) with ``measured_energy_j`` on every node the meter could read.

    ``inputs`` are the example inputs the tree was traced on: a sequence of positional
    arguments or a mapping of keyword arguments, on the model's device.
    """
    from predictor.measure.nodes import measure_tree as _measure

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    if isinstance(inputs, Mapping):
        kwargs = dict(inputs)
    else:
        args = tuple(inputs)
    result = _measure(
        model, tree, *args, meter=meter, settings=settings, idle_power_w=idle_power_w, **kwargs
    )
    merged = merge_measured(tree, result.tree)
    if result.gaps:
        merged.meta["measure_gaps"] = list(result.gaps)
    return merged


# -- per-run state ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """A tree after metering: ``measured`` False when the meter could not read (``note`` why)."""

    tree: EnergyTree
    measured: bool
    note: str = ""
    gaps: list[str] = field(default_factory=list)


class Metering:
    """One per pytest process: opens a meter per device on first use, measures idle once each.

    ``meter_factory`` (default :func:`predictor.measure.meters.get_meter`) lets tests inject a fake.
    """

    def __init__(
        self,
        meter: str,
        check: str = "predicted",
        *,
        meter_factory: Callable[..., Any] | None = None,
        measure_settings: Any | None = None,
    ) -> None:
        #: The meter kind (``auto``, ``nvml``, ``rapl``, ``fake``; ``none`` measures nothing) and
        #: which energy the budgets judge (``predicted`` or ``measured``).
        self.meter = meter
        self.check = check
        if meter_factory is None:
            from predictor.measure.meters import get_meter

            meter_factory = get_meter
        self._factory = meter_factory
        self._measure_settings = measure_settings
        self._meters: dict[str, Any] = {}
        self._status: dict[str, str] = {}
        self._idle: dict[str, float] = {}

    def meter_for(self, device: str) -> Any:
        """The meter for ``device`` (``"cpu"``, ``"cuda:0"``), opened once."""
        if device not in self._meters:
            self._meters[device] = self._factory(self.meter, device=device)
        return self._meters[device]

    def status_lines(self) -> list[str]:
        """One line per meter opened in this run, for the summary (also after :meth:`close`)."""
        for dev, meter in self._meters.items():
            self._status[dev] = meter.status().describe()
        return [f"{dev}: {text}" for dev, text in self._status.items()]

    def measure(
        self, model: Any, tree: EnergyTree, inputs: Sequence[Any] | Mapping[str, Any]
    ) -> Outcome:
        """Measure ``model``'s tree, or say why not (HardwareUnavailable when check=measured)."""
        if self.meter == "none":
            return Outcome(tree, measured=False, note="metering is off (--energy-meter none)")
        device = _device_of(model)
        meter = self.meter_for(device)
        st = meter.status()
        if not st.available:
            note = f"{tree.model_name}: not metered on {device}: {st.describe()}"
            if self.check == "measured":
                raise HardwareUnavailable(note + "; --energy-check measured needs a working meter")
            return Outcome(tree, measured=False, note=note + "; budgets judge predicted energy")
        from predictor.measure.nodes import MeasureSettings, measure_idle_power

        settings = self._measure_settings or MeasureSettings(
            min_windows=3, max_windows=5, idle_s=1.0
        )
        if device not in self._idle:
            self._idle[device] = measure_idle_power(meter, settings)
        merged = measure_tree(
            model, tree, inputs, meter, settings=settings, idle_power_w=self._idle[device]
        )
        gaps = list(merged.meta.get("measure_gaps", []))
        return Outcome(
            merged, measured=True, note=f"metered on {device} ({st.describe()})", gaps=gaps
        )

    def measure_spec(
        self,
        spec: str,
        tree: EnergyTree,
        *,
        device: str | None = None,
        dtype: str | None = None,
    ) -> Outcome:
        """Measure a budgets-file model by its zoo spec (the gate predicts those on the meta
        device): build it with real weights on ``device`` (CUDA when available, else the CPU)
        in ``dtype`` (the entry's ``inputs.dtype``; None: its config's, as predicted) and run
        it on inputs matching the ones ``tree`` was traced on."""
        if self.meter == "none":
            return Outcome(tree, measured=False, note="metering is off (--energy-meter none)")
        import torch

        from predictor.measure.calibrate import materialize, real_inputs
        from predictor.trace import zoo

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = materialize(zoo.build_model(spec, "eager", device=device, dtype=dtype), device)
        try:
            return self.measure(model, tree, real_inputs(tree, model, device, seed=0))
        finally:
            del model

    def close(self) -> None:
        self.status_lines()  # keep what each meter said for the summary printed after closing
        for meter in self._meters.values():
            meter.close()
        self._meters.clear()


def _device_of(model: Any) -> str:
    import torch

    first = next(iter(model.parameters()), None)
    if first is None:
        return "cpu"
    dev = first.device
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"cuda:{index}"
    return str(dev.type)
