"""The Meter interface: open a window, run something, close it -> joules, seconds, runtime features.

Every meter (NVML, RAPL, the deterministic fake) implements :class:`Meter`. A meter whose
hardware is absent or unreadable is still a :class:`Meter`: :class:`NullMeter` carries the
reason, ``available`` is False, and opening a window raises
:class:`predictor.errors.HardwareUnavailable` with that reason. Absence is never a zero.

Units: energy in joules, durations in seconds, utilisation and memory in percent, clocks in MHz.
"""

from __future__ import annotations

import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, ClassVar

from predictor.errors import HardwareUnavailable
from predictor.measure.meters.host import HostSnapshot, host_features, take_host_snapshot

__all__ = [
    "Clock",
    "Measurement",
    "Meter",
    "MeterStatus",
    "NullMeter",
    "PeriodicSampler",
    "Window",
    "trapezoid_energy_j",
]

#: A monotonic clock in seconds (``time.perf_counter`` unless a test injects a virtual one).
Clock = Callable[[], float]

#: Measurement field -> runtime-feature name of the IrEne dataset (predictor.trace.tree.RUNTIME_FEATURES).
_FEATURE_NAMES: dict[str, str] = {
    "cpu_util_pct": "cpu",
    "mem_used_pct": "mem",
    "gpu_util_pct": "gpu",
    "gpu_mem_util_pct": "gpu_mem",
    "gpu_clk_mhz": "gpu_clk",
    "gpu_mem_clk_mhz": "gpu_mem_clk",
}


@dataclass(frozen=True)
class Measurement:
    """What one window saw: energy (J) over ``duration_s`` (s), and the mean runtime features.

    ``energy_j`` is the raw reading of the meter for the window (idle power not subtracted).
    Runtime features a meter cannot see are ``None``.
    """

    energy_j: float
    duration_s: float
    method: str
    cpu_util_pct: float | None = None
    mem_used_pct: float | None = None
    gpu_util_pct: float | None = None
    gpu_mem_util_pct: float | None = None
    gpu_clk_mhz: float | None = None
    gpu_mem_clk_mhz: float | None = None
    samples: int = 0

    @property
    def power_w(self) -> float:
        """Mean power over the window in watts (0-length windows raise ZeroDivisionError)."""
        return self.energy_j / self.duration_s

    def runtime_features(self) -> dict[str, float]:
        """The features this window saw, under the IrEne dataset's names (cpu, gpu_clk, ...)."""
        out: dict[str, float] = {}
        for attr, name in _FEATURE_NAMES.items():
            value = getattr(self, attr)
            if value is not None:
                out[name] = float(value)
        return out


@dataclass(frozen=True)
class MeterStatus:
    """Whether a meter can measure here, and why (or how) in one line."""

    kind: str
    available: bool
    reason: str
    method: str | None = None
    device: str | None = None

    @property
    def title(self) -> str:
        return {"nvml": "NVML", "rapl": "RAPL"}.get(self.kind, self.kind)

    def describe(self) -> str:
        """``"NVML unavailable: no NVIDIA driver (...)"`` or ``"RAPL: powercap sysfs (...)"``."""
        if self.available:
            return f"{self.title}: {self.reason}"
        return f"{self.title} unavailable: {self.reason}"


@dataclass
class Window:
    """Handle yielded by :meth:`Meter.window`; ``measurement`` is set when the window closes."""

    measurement: Measurement | None = None

    @property
    def result(self) -> Measurement:
        if self.measurement is None:
            raise RuntimeError(
                "the meter window is still open; read the result after the with-block"
            )
        return self.measurement


class Meter(ABC):
    """Base class of every meter.

    Subclasses implement :meth:`status`, :meth:`_begin` and :meth:`_end`; the base class checks
    availability, times the window with the injected ``clock`` and adds host CPU/memory
    utilisation (from ``/proc``) unless ``host_features`` is False.
    """

    #: Short name used by the factory and the CLI (``nvml``, ``rapl``, ``fake``, ``none``).
    kind: ClassVar[str] = "meter"
    #: Runtime feature that holds the meter's raw reading per call (IrEne's ``gpu_energy_mean``
    #: is the GPU driver's counter), or None when the meter is not a GPU counter.
    counter_feature: ClassVar[str | None] = None
    #: Shortest window (s) that the counter resolves well; calibration repeats a node until a
    #: window lasts at least this long.
    min_window_s: float = 0.05

    def __init__(
        self,
        *,
        clock: Clock = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
        host_features: bool = True,
        proc_root: str = "/proc",
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self._host_features = host_features
        self._proc_root = proc_root
        self._t0: float | None = None
        self._host0: HostSnapshot | None = None

    # -- to implement -----------------------------------------------------------------------

    @abstractmethod
    def status(self) -> MeterStatus:
        """Availability and the method used, or the reason it cannot measure."""

    @abstractmethod
    def _begin(self) -> None:
        """Start reading the hardware (called after the clock has been read)."""

    @abstractmethod
    def _end(self, duration_s: float) -> Measurement:
        """Stop reading; return the window's measurement (host features are added after)."""

    # -- public API -------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        return self.status().available

    def begin(self) -> None:
        """Open a window. Raises HardwareUnavailable (with the reason) if the meter cannot read."""
        st = self.status()
        if not st.available:
            raise HardwareUnavailable(st.describe())
        if self._t0 is not None:
            raise RuntimeError(f"{self.kind} meter: begin() called twice without end()")
        if self._host_features:
            self._host0 = take_host_snapshot(self._proc_root)
        self._t0 = self.clock()
        self._begin()

    def end(self) -> Measurement:
        """Close the window and return what it saw."""
        if self._t0 is None:
            raise RuntimeError(f"{self.kind} meter: end() called without begin()")
        duration = self.clock() - self._t0
        self._t0 = None
        m = self._end(duration)
        if self._host_features and self._host0 is not None:
            extra = host_features(self._host0, take_host_snapshot(self._proc_root))
            self._host0 = None
            m = _with_host(m, extra)
        return m

    @contextmanager
    def window(self) -> Iterator[Window]:
        """``with meter.window() as w: run(); print(w.result.energy_j)``."""
        handle = Window()
        self.begin()
        try:
            yield handle
        except BaseException:
            self.abort()
            raise
        handle.measurement = self.end()

    def idle_power_w(self, duration_s: float = 2.0) -> float:
        """Mean power (W) of a window in which nothing runs: sleep ``duration_s`` inside it."""
        self.begin()
        try:
            self.sleep(duration_s)
        except BaseException:
            self.abort()
            raise
        m = self.end()
        if m.duration_s <= 0:
            raise HardwareUnavailable(f"{self.kind} meter: idle window lasted {m.duration_s} s")
        return m.power_w

    def hardware(self) -> dict[str, Any]:
        """Description of the metered hardware for a dataset's ``hardware.json``."""
        st = self.status()
        return {"meter": self.kind, "method": st.method, "device": st.device}

    def close(self) -> None:  # noqa: B027 - optional hook; meters holding nothing keep it
        """Release the hardware library (idempotent)."""

    def __enter__(self) -> Meter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def abort(self) -> None:
        """Close a window whose body raised, discarding its reading."""
        if self._t0 is not None:
            try:
                self.end()
            finally:
                self._t0 = None


def _with_host(m: Measurement, extra: Mapping[str, float]) -> Measurement:
    """Fill in host CPU/memory features the meter itself did not report."""
    return replace(
        m,
        cpu_util_pct=m.cpu_util_pct if m.cpu_util_pct is not None else extra.get("cpu_util_pct"),
        mem_used_pct=m.mem_used_pct if m.mem_used_pct is not None else extra.get("mem_used_pct"),
    )


class NullMeter(Meter):
    """A meter that cannot measure, and says why. ``get_meter`` returns it when hardware is absent."""

    def __init__(self, kind: str, reason: str, *, device: str | None = None) -> None:
        super().__init__(host_features=False)
        self._kind = kind
        self._reason = reason
        self._device = device

    @property
    def reason(self) -> str:
        return self._reason

    def status(self) -> MeterStatus:
        return MeterStatus(
            kind=self._kind, available=False, reason=self._reason, device=self._device
        )

    def _begin(self) -> None:  # pragma: no cover - begin() raises before reaching here
        raise HardwareUnavailable(self.status().describe())

    def _end(self, duration_s: float) -> Measurement:  # pragma: no cover - never opened
        raise HardwareUnavailable(self.status().describe())


# -- helpers shared by the hardware meters -----------------------------------------------------


def trapezoid_energy_j(samples: list[tuple[float, float]]) -> float:
    """Integrate ``(time_s, power_w)`` samples with the trapezoid rule -> joules.

    >>> trapezoid_energy_j([(0.0, 100.0), (1.0, 200.0), (3.0, 200.0)])
    550.0
    """
    energy = 0.0
    for (t0, p0), (t1, p1) in itertools.pairwise(samples):
        if t1 < t0:
            raise ValueError(f"power samples out of order: {t1} s after {t0} s")
        energy += 0.5 * (p0 + p1) * (t1 - t0)
    return energy


@dataclass
class PeriodicSampler:
    """Calls ``read()`` every ``period_s`` in a daemon thread and keeps ``(time_s, values)``.

    ``start()`` takes one sample synchronously, ``stop()`` takes a last one, so even a window
    shorter than the period has two samples. An exception in ``read()`` stops the sampling and
    is re-raised by ``stop()``.
    """

    read: Callable[[], dict[str, float]]
    period_s: float
    clock: Clock = time.perf_counter
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _error: BaseException | None = None

    def start(self) -> None:
        self.samples = [(self.clock(), self.read())]
        self._stop.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="irene-meter-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.samples.append((self.clock(), self.read()))
            except BaseException as exc:  # re-raised in stop()
                self._error = exc
                return

    def stop(self) -> list[tuple[float, dict[str, float]]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error
        self.samples.append((self.clock(), self.read()))
        return self.samples

    @staticmethod
    def mean(samples: list[tuple[float, dict[str, float]]], key: str) -> float | None:
        values = [v[key] for _, v in samples if key in v]
        return sum(values) / len(values) if values else None
