"""NVIDIA GPU energy through NVML (the ``nvidia-ml-py`` package, imported lazily).

Two methods, chosen per GPU and reported in :meth:`NvmlMeter.status`:

- ``counter``: the driver's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ
  since the driver loaded), Volta and newer: energy = end - start;
- ``sampling``: where the counter is not supported, power (``nvmlDeviceGetPowerUsage``, mW) is
  sampled in a background thread and integrated over the window with the trapezoid rule.

Either way a background thread samples utilisation (GPU and memory controller, %) and the SM and
memory clocks (MHz) so a window also yields IrEne's runtime features.

The driver is the ``pynvml`` module by default; tests inject any object with the same functions
and constants (``driver=``). NVML errors are mapped to a reason ("no NVIDIA driver (...)"),
never to a zero.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Callable
from typing import Any

from predictor.errors import HardwareUnavailable
from predictor.measure.meters.base import (
    Clock,
    Measurement,
    Meter,
    MeterStatus,
    PeriodicSampler,
    trapezoid_energy_j,
)

__all__ = ["NvmlMeter", "load_pynvml"]

_INSTALL_HINT = "pip install 'pytest-irene[gpu]' (the nvidia-ml-py package)"


def load_pynvml() -> Any:
    """The ``pynvml`` module of nvidia-ml-py, or HardwareUnavailable saying how to install it."""
    try:
        return importlib.import_module("pynvml")
    except ImportError as exc:
        raise HardwareUnavailable(
            f"nvidia-ml-py is not installed ({exc}); {_INSTALL_HINT}"
        ) from None


def _error_reason(driver: Any, exc: BaseException, what: str) -> str:
    """Map an NVMLError to a one-line reason that says how to fix it."""
    code = getattr(exc, "value", None)

    def const(name: str) -> Any:
        return getattr(driver, name, object())

    if code == const("NVML_ERROR_LIBRARY_NOT_FOUND"):
        return (
            f"no NVIDIA driver ({exc}: libnvidia-ml.so is not installed or not on the loader path)"
        )
    if code == const("NVML_ERROR_DRIVER_NOT_LOADED"):
        return f"no NVIDIA driver ({exc}: the kernel module is not loaded)"
    if code == const("NVML_ERROR_NO_PERMISSION"):
        return f"no permission to {what} ({exc}); run with access to /dev/nvidia*"
    if code == const("NVML_ERROR_GPU_IS_LOST"):
        return f"the GPU fell off the bus while trying to {what} ({exc})"
    return f"NVML failed to {what} ({exc})"


class NvmlMeter(Meter):
    """Energy of one NVIDIA GPU (``index``) through NVML.

    Construction never raises for missing hardware: an unusable GPU gives ``available`` False
    and the reason in :meth:`status`. ``method`` forces ``"counter"`` or ``"sampling"``
    (default ``"auto"``: the counter where supported).
    """

    kind = "nvml"
    counter_feature = "gpu_energy_mean"

    def __init__(
        self,
        index: int = 0,
        *,
        driver: Any | None = None,
        method: str = "auto",
        sample_period_s: float = 0.02,
        clock: Clock = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
        host_features: bool = True,
        proc_root: str = "/proc",
    ) -> None:
        super().__init__(clock=clock, sleep=sleep, host_features=host_features, proc_root=proc_root)
        if method not in ("auto", "counter", "sampling"):
            raise ValueError(f"NVML method must be auto, counter or sampling (got {method!r})")
        self.index = index
        self.sample_period_s = sample_period_s
        self._nv: Any | None = None
        self._handle: Any = None
        self._reason: str | None = None
        self._method: str | None = None
        self._name: str | None = None
        self._driver_version: str | None = None
        self._initialised = False
        self._sampler: PeriodicSampler | None = None
        self._counter0_mj: int | None = None
        self._probe(driver, method)

    # -- probing ----------------------------------------------------------------------------

    def _probe(self, driver: Any | None, method: str) -> None:
        if driver is None:
            try:
                driver = load_pynvml()
            except HardwareUnavailable as exc:
                self._reason = str(exc)
                return
        nv = driver
        self._nv = nv
        error_type: type[BaseException] = getattr(nv, "NVMLError", Exception)
        try:
            nv.nvmlInit()
        except error_type as exc:
            self._reason = _error_reason(nv, exc, "initialise NVML")
            return
        self._initialised = True
        try:
            count = int(nv.nvmlDeviceGetCount())
            if not 0 <= self.index < count:
                self._reason = (
                    f"no GPU with index {self.index} (NVML sees {count} GPU(s)); "
                    f"choose an index in 0..{max(count - 1, 0)}"
                )
                return
            self._handle = nv.nvmlDeviceGetHandleByIndex(self.index)
            self._name = _text(nv.nvmlDeviceGetName(self._handle))
            self._driver_version = _text(nv.nvmlSystemGetDriverVersion())
        except error_type as exc:
            self._reason = _error_reason(nv, exc, f"open GPU {self.index}")
            return
        counter_ok = False
        counter_error = ""
        try:
            nv.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            counter_ok = True
        except error_type as exc:
            counter_error = str(exc)
        if method == "counter" and not counter_ok:
            self._reason = (
                f"GPU {self.index} ({self._name}) has no total-energy counter ({counter_error}); "
                "it needs Volta or newer: use method 'sampling'"
            )
            return
        if method == "sampling" or not counter_ok:
            try:
                nv.nvmlDeviceGetPowerUsage(self._handle)
            except error_type as exc:
                self._reason = _error_reason(nv, exc, f"read the power of GPU {self.index}")
                return
            self._method = "sampling"
        else:
            self._method = "counter"
        if self._method == "sampling":
            # power readings are averaged by the driver; windows must be long to integrate well
            self.min_window_s = 0.5
        else:
            self.min_window_s = 0.1

    # -- Meter API --------------------------------------------------------------------------

    @property
    def method(self) -> str | None:
        """``"counter"`` or ``"sampling"`` when available, else None."""
        return self._method

    def status(self) -> MeterStatus:
        if self._reason is not None or self._method is None:
            return MeterStatus(
                "nvml", False, self._reason or "not initialised", device=self._device()
            )
        how = (
            "total-energy counter (nvmlDeviceGetTotalEnergyConsumption)"
            if self._method == "counter"
            else f"power sampling every {self.sample_period_s * 1e3:g} ms, trapezoid-integrated "
            "(this GPU has no total-energy counter)"
        )
        return MeterStatus("nvml", True, how, method=self._method, device=self._device())

    def _device(self) -> str | None:
        if self._name is None:
            return f"GPU {self.index}"
        return f"GPU {self.index}: {self._name} (driver {self._driver_version})"

    def _read_features(self) -> dict[str, float]:
        nv = self._nv
        assert nv is not None
        h = self._handle
        util = nv.nvmlDeviceGetUtilizationRates(h)
        out = {
            "gpu_util_pct": float(util.gpu),
            "gpu_mem_util_pct": float(util.memory),
            "gpu_clk_mhz": float(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
            "gpu_mem_clk_mhz": float(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM)),
        }
        if self._method == "sampling":
            out["power_w"] = float(nv.nvmlDeviceGetPowerUsage(h)) / 1e3
        return out

    def _begin(self) -> None:
        nv = self._nv
        assert nv is not None
        error_type: type[BaseException] = getattr(nv, "NVMLError", Exception)
        try:
            self._sampler = PeriodicSampler(self._read_features, self.sample_period_s, self.clock)
            self._sampler.start()
            if self._method == "counter":
                self._counter0_mj = int(nv.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except error_type as exc:
            raise HardwareUnavailable(
                "NVML unavailable: " + _error_reason(nv, exc, f"read GPU {self.index}")
            ) from None

    def _end(self, duration_s: float) -> Measurement:
        nv = self._nv
        assert nv is not None and self._sampler is not None
        error_type: type[BaseException] = getattr(nv, "NVMLError", Exception)
        try:
            if self._method == "counter":
                counter1 = int(nv.nvmlDeviceGetTotalEnergyConsumption(self._handle))
                assert self._counter0_mj is not None
                energy = (counter1 - self._counter0_mj) / 1e3
            samples = self._sampler.stop()
        except error_type as exc:
            raise HardwareUnavailable(
                "NVML unavailable: " + _error_reason(nv, exc, f"read GPU {self.index}")
            ) from None
        finally:
            self._sampler = None
        if self._method == "sampling":
            energy = trapezoid_energy_j([(t, v["power_w"]) for t, v in samples])
        mean = PeriodicSampler.mean
        return Measurement(
            energy_j=energy,
            duration_s=duration_s,
            method=f"nvml-{self._method}",
            gpu_util_pct=mean(samples, "gpu_util_pct"),
            gpu_mem_util_pct=mean(samples, "gpu_mem_util_pct"),
            gpu_clk_mhz=mean(samples, "gpu_clk_mhz"),
            gpu_mem_clk_mhz=mean(samples, "gpu_mem_clk_mhz"),
            samples=len(samples),
        )

    def hardware(self) -> dict[str, Any]:
        out = super().hardware()
        out.update(
            {"gpu_index": self.index, "gpu_name": self._name, "driver": self._driver_version}
        )
        if self._nv is not None and self._handle is not None and self._method is not None:
            nv = self._nv
            for key, clock in (
                ("max_sm_clock_mhz", "NVML_CLOCK_SM"),
                ("max_mem_clock_mhz", "NVML_CLOCK_MEM"),
            ):
                try:
                    out[key] = int(nv.nvmlDeviceGetMaxClockInfo(self._handle, getattr(nv, clock)))
                except Exception:  # optional detail; some drivers/fakes lack it
                    out[key] = None
            try:
                out["power_limit_w"] = float(nv.nvmlDeviceGetEnforcedPowerLimit(self._handle)) / 1e3
            except Exception:  # optional detail, as above
                out["power_limit_w"] = None
        return out

    def close(self) -> None:
        if self._initialised and self._nv is not None:
            self._initialised = False
            # shutting down a half-initialised library is best effort
            with contextlib.suppress(Exception):
                self._nv.nvmlShutdown()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
