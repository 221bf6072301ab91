"""Energy meters: NVML (NVIDIA GPUs), RAPL (CPU packages), a deterministic fake, a null meter.

>>> from predictor.measure.meters import get_meter
>>> meter = get_meter("fake")
>>> with meter.window() as w:
...     meter.sleep(0.5)  # the fake meter's virtual clock
>>> round(w.result.energy_j, 6), w.result.duration_s
(20.0, 0.5)

``get_meter(kind)`` never raises for missing hardware: it returns a :class:`NullMeter` whose
``status().reason`` says why (opening a window on it raises HardwareUnavailable). Unknown kinds
raise ConfigError. New meters are one :func:`register_meter` call.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from predictor.errors import ConfigError
from predictor.measure.meters.base import Measurement, Meter, MeterStatus, NullMeter, Window

__all__ = [
    "METER_KINDS",
    "Measurement",
    "Meter",
    "MeterStatus",
    "NullMeter",
    "Window",
    "get_meter",
    "list_meters",
    "register_meter",
]

MeterFactory = Callable[..., Meter]


def _nvml(**opts: Any) -> Meter:
    from predictor.measure.meters.nvml import NvmlMeter

    return NvmlMeter(**opts)


def _rapl(**opts: Any) -> Meter:
    from predictor.measure.meters.rapl import RaplMeter

    return RaplMeter(**opts)


def _fake(**opts: Any) -> Meter:
    from predictor.measure.meters.fake import FakeMeter

    return FakeMeter(**opts)


_REGISTRY: dict[str, MeterFactory] = {"nvml": _nvml, "rapl": _rapl, "fake": _fake}
_TARGETS: dict[str, str] = {
    "nvml": "predictor.measure.meters.nvml:NvmlMeter",
    "rapl": "predictor.measure.meters.rapl:RaplMeter",
    "fake": "predictor.measure.meters.fake:FakeMeter",
}

#: Kinds ``get_meter`` accepts (``auto`` picks NVML for CUDA devices, RAPL for the CPU).
METER_KINDS: tuple[str, ...] = ("nvml", "rapl", "fake", "auto", "none")


def register_meter(kind: str, factory: MeterFactory) -> None:
    """Add a meter kind: ``factory(**opts) -> Meter``."""
    _REGISTRY[kind] = factory


def _accepted(kind: str, opts: dict[str, Any]) -> dict[str, Any]:
    """The options the kind's constructor accepts (``auto`` forwards a shared option set)."""
    target = _TARGETS.get(kind)
    if target is None:
        return opts
    module, _, cls = target.partition(":")
    import importlib

    params = inspect.signature(getattr(importlib.import_module(module), cls)).parameters
    return {k: v for k, v in opts.items() if k in params}


def get_meter(kind: str, *, device: str | None = None, **opts: Any) -> Meter:
    """A meter of ``kind`` (nvml, rapl, fake, auto, none), configured with ``opts``.

    ``device`` (``"cuda"``, ``"cuda:1"``, ``"cpu"``) guides ``auto`` (NVML for CUDA, RAPL for
    the CPU, both tried when None) and sets the NVML GPU index from ``cuda:N``.
    """
    kind = kind.strip().lower()
    dev_type, _, dev_index = (device or "").partition(":")
    if dev_type == "cuda" and dev_index and "index" not in opts:
        opts["index"] = int(dev_index)
    if kind == "none":
        return NullMeter("none", "metering is off (--energy-meter none)")
    if kind == "auto":
        order = {"cuda": ["nvml"], "cpu": ["rapl"]}.get(dev_type, ["nvml", "rapl"])
        reasons: list[str] = []
        for candidate in order:
            meter = _REGISTRY[candidate](**_accepted(candidate, opts))
            st = meter.status()
            if st.available:
                return meter
            meter.close()
            reasons.append(st.describe())
        return NullMeter(
            "auto", "no meter for " + (device or "this machine") + ": " + "; ".join(reasons)
        )
    factory = _REGISTRY.get(kind)
    if factory is None:
        raise ConfigError(f"unknown energy meter {kind!r}; choose one of {', '.join(METER_KINDS)}")
    return factory(**_accepted(kind, opts) if kind in _TARGETS else opts)


def list_meters(**opts: Any) -> list[MeterStatus]:
    """Status of every registered meter here, available or not, each with its reason."""
    out: list[MeterStatus] = []
    for kind in _REGISTRY:
        meter = get_meter(kind, **opts)
        try:
            out.append(meter.status())
        finally:
            meter.close()
    return out
