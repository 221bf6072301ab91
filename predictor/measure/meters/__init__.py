"""Energy meters: NVML (NVIDIA GPUs), RAPL (CPU packages), a deterministic fake, a null meter.

>>> from predictor.measure.meters import get_meter
>>> meter = get_meter("fake")
>>> with meter.window() as w:
...     meter.sleep(0.5)  # the fake meter's virtual clock
>>> round(w.result.energy_j, 6), w.result.duration_s
(20.0, 0.5)

``get_meter(kind)`` never raises for missing hardware: it returns a :class:`NullMeter` whose
``status().reason`` says why (opening a window on it raises HardwareUnavailable). Unknown kinds
raise ConfigError. A new meter is one :func:`register_meter` call with its class.
"""

from __future__ import annotations

import importlib
import inspect
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

#: Meter kinds and their classes, as ``module:Class`` so a class is imported (with its
#: optional hardware library) only when that kind is asked for; :func:`register_meter` adds
#: one. ``auto`` and ``none`` are not classes: see :func:`get_meter`.
_METERS: dict[str, str | type[Meter]] = {
    "nvml": "predictor.measure.meters.nvml:NvmlMeter",
    "rapl": "predictor.measure.meters.rapl:RaplMeter",
    "fake": "predictor.measure.meters.fake:FakeMeter",
}

#: Kinds ``get_meter`` accepts (``auto`` picks NVML for CUDA devices, RAPL for the CPU).
METER_KINDS: tuple[str, ...] = ("nvml", "rapl", "fake", "auto", "none")


def register_meter(kind: str, cls: type[Meter] | str) -> None:
    """Add (or replace) a meter kind: a :class:`Meter` subclass, or ``"module:Class"``."""
    _METERS[kind] = cls


def _meter_class(kind: str) -> type[Meter]:
    target = _METERS[kind]
    if isinstance(target, str):
        module, _, name = target.partition(":")
        target = getattr(importlib.import_module(module), name)
    assert isinstance(target, type) and issubclass(target, Meter)
    return target


def _make(kind: str, opts: dict[str, Any]) -> Meter:
    """A meter of ``kind`` given the options its constructor accepts (``auto`` forwards one
    option set to several kinds)."""
    cls = _meter_class(kind)
    params = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in opts.items() if k in params})


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
            meter = _make(candidate, opts)
            st = meter.status()
            if st.available:
                return meter
            meter.close()
            reasons.append(st.describe())
        return NullMeter(
            "auto", "no meter for " + (device or "this machine") + ": " + "; ".join(reasons)
        )
    if kind not in _METERS:
        known = ", ".join([*_METERS, "auto", "none"])
        raise ConfigError(f"unknown energy meter {kind!r}; choose one of {known}")
    return _make(kind, opts)


def list_meters(**opts: Any) -> list[MeterStatus]:
    """Status of every registered meter here, available or not, each with its reason."""
    out: list[MeterStatus] = []
    for kind in _METERS:
        meter = get_meter(kind, **opts)
        try:
            out.append(meter.status())
        finally:
            meter.close()
    return out
