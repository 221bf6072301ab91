"""NVML meter against a fake driver object (the pynvml-like namespace), no GPU needed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from predictor.errors import HardwareUnavailable
from predictor.measure.meters import get_meter
from predictor.measure.meters.nvml import NvmlMeter


class FakeNVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(
            {3: "Not Supported", 9: "Driver Not Loaded", 12: "NVML Shared Library Not Found"}.get(
                value, f"error {value}"
            )
        )
        self.value = value


class FakeDriver:
    """A GPU whose energy counter and power are scripted by the test.

    ``energy_mj`` is the counter (None: not supported, as on pre-Volta GPUs); ``power_mw``
    the power reading; ``init_error`` an NVML error code raised by nvmlInit.
    """

    NVMLError = FakeNVMLError
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_DRIVER_NOT_LOADED = 9
    NVML_ERROR_LIBRARY_NOT_FOUND = 12
    NVML_ERROR_NO_PERMISSION = 4
    NVML_ERROR_GPU_IS_LOST = 15
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2

    def __init__(
        self,
        energy_mj: int | None = 1_000_000,
        power_mw: int = 250_000,
        init_error: int | None = None,
        count: int = 1,
    ) -> None:
        self.energy_mj = energy_mj
        self.power_mw = power_mw
        self.init_error = init_error
        self.count = count
        self.shutdowns = 0
        self.power_reads = 0

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise FakeNVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return self.count

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        return ("gpu", index)

    def nvmlDeviceGetName(self, handle: Any) -> bytes:
        return b"NVIDIA H100 80GB HBM3"

    def nvmlSystemGetDriverVersion(self) -> str:
        return "580.65.06"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        if self.energy_mj is None:
            raise FakeNVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        return self.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        self.power_reads += 1
        return self.power_mw

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any:
        return SimpleNamespace(gpu=80, memory=30)

    def nvmlDeviceGetClockInfo(self, handle: Any, clock: int) -> int:
        return 1980 if clock == self.NVML_CLOCK_SM else 2619

    def nvmlDeviceGetMaxClockInfo(self, handle: Any, clock: int) -> int:
        return 1980 if clock == self.NVML_CLOCK_SM else 2619


class StepClock:
    """A clock that the test advances by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_counter_present_energy_is_counter_difference() -> None:
    drv = FakeDriver(energy_mj=5_000_000)
    clock = StepClock()
    meter = NvmlMeter(0, driver=drv, clock=clock, sample_period_s=60.0)
    st = meter.status()
    assert st.available and meter.method == "counter"
    assert "total-energy counter" in st.reason
    assert st.device == "GPU 0: NVIDIA H100 80GB HBM3 (driver 580.65.06)"
    meter.begin()
    drv.energy_mj += 1_234  # 1.234 J
    clock.now += 0.5
    m = meter.end()
    assert m.energy_j == pytest.approx(1.234)
    assert m.duration_s == pytest.approx(0.5)
    assert m.method == "nvml-counter"
    assert m.runtime_features()["gpu"] == 80.0
    assert m.runtime_features()["gpu_mem"] == 30.0
    assert m.runtime_features()["gpu_clk"] == 1980.0
    assert m.runtime_features()["gpu_mem_clk"] == 2619.0
    assert drv.power_reads == 0  # the counter path does not sample power
    meter.close()
    meter.close()
    assert drv.shutdowns == 1


def test_counter_unsupported_falls_back_to_sampling() -> None:
    drv = FakeDriver(energy_mj=None, power_mw=200_000)
    clock = StepClock()
    meter = NvmlMeter(0, driver=drv, clock=clock, sample_period_s=60.0)
    st = meter.status()
    assert st.available and meter.method == "sampling"
    assert "power sampling" in st.reason and "no total-energy counter" in st.reason
    meter.begin()  # first sample at t=0, 200 W
    clock.now = 2.0
    drv.power_mw = 300_000
    m = meter.end()  # last sample at t=2, 300 W -> trapezoid 0.5*(200+300)*2
    assert m.energy_j == pytest.approx(500.0)
    assert m.method == "nvml-sampling"
    assert m.samples == 2


def test_sampling_thread_integrates_many_samples() -> None:
    drv = FakeDriver(energy_mj=None, power_mw=100_000)
    meter = NvmlMeter(0, driver=drv, sample_period_s=0.001)
    meter.begin()
    meter.sleep(0.05)
    m = meter.end()
    assert m.samples > 2
    assert m.energy_j == pytest.approx(100.0 * m.duration_s, rel=0.2)


def test_forced_counter_on_gpu_without_counter_is_a_reason() -> None:
    st = NvmlMeter(0, driver=FakeDriver(energy_mj=None), method="counter").status()
    assert not st.available
    assert "no total-energy counter" in st.reason and "Volta" in st.reason


def test_no_driver_is_a_state_with_its_reason() -> None:
    meter = NvmlMeter(0, driver=FakeDriver(init_error=FakeDriver.NVML_ERROR_LIBRARY_NOT_FOUND))
    st = meter.status()
    assert not st.available
    assert st.describe().startswith("NVML unavailable: no NVIDIA driver (")
    with pytest.raises(HardwareUnavailable, match="NVML unavailable: no NVIDIA driver"):
        meter.begin()
    meter.close()  # nothing to shut down, no error


def test_driver_not_loaded() -> None:
    st = NvmlMeter(
        0, driver=FakeDriver(init_error=FakeDriver.NVML_ERROR_DRIVER_NOT_LOADED)
    ).status()
    assert "no NVIDIA driver" in st.reason and "kernel module" in st.reason


def test_gpu_index_out_of_range() -> None:
    st = NvmlMeter(3, driver=FakeDriver(count=2)).status()
    assert not st.available
    assert "no GPU with index 3 (NVML sees 2 GPU(s))" in st.reason


def test_factory_selects_gpu_from_device_string() -> None:
    meter = get_meter("nvml", device="cuda:1", driver=FakeDriver(count=2))
    assert isinstance(meter, NvmlMeter) and meter.index == 1
    auto = get_meter("auto", device="cuda", driver=FakeDriver())
    assert auto.kind == "nvml" and auto.available


def test_real_pynvml_without_driver_reports_reason() -> None:
    """With nvidia-ml-py installed but no GPU driver (CI, this container): a reason, no crash."""
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("an NVIDIA driver is present here")
    st = NvmlMeter(0).status()
    assert not st.available
    assert "no NVIDIA driver" in st.reason or "NVML failed" in st.reason


def test_hardware_description_names_gpu_driver_and_clocks() -> None:
    hw = NvmlMeter(0, driver=FakeDriver()).hardware()
    assert hw["gpu_name"] == "NVIDIA H100 80GB HBM3" and hw["driver"] == "580.65.06"
    assert hw["max_sm_clock_mhz"] == 1980 and hw["method"] == "counter"
    assert hw["power_limit_w"] is None  # the fake driver has no power-limit query


class BusyGPU(FakeDriver):
    """A fake GPU whose energy follows this process: 50 W idle plus 200 W per busy CPU second
    (the replayed nodes run on the CPU here), so calibration sees real, positive node energy."""

    def __init__(self, counter: bool) -> None:
        super().__init__(energy_mj=0 if counter else None)
        import time

        self._time = time
        self._t0 = time.perf_counter()
        self._c0 = time.process_time()
        self._last = (self._t0, self._c0)

    def _energy_j(self) -> float:
        wall = self._time.perf_counter() - self._t0
        cpu = self._time.process_time() - self._c0
        return 50.0 * wall + 200.0 * cpu

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        if self.energy_mj is None:
            raise FakeNVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        return int(1000 * self._energy_j())

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        now = (self._time.perf_counter(), self._time.process_time())
        dt = max(now[0] - self._last[0], 1e-9)
        busy = (now[1] - self._last[1]) / dt
        self._last = now
        return int(1000 * (50.0 + 200.0 * min(busy, 1.0)))


@pytest.mark.parametrize("counter", [True, False], ids=["counter", "sampling"])
def test_calibration_through_nvml_meter(counter: bool, tmp_path: Path) -> None:
    """The whole NVML path of `irene calibrate` (threads, counter or sampling) on a fake GPU."""
    from predictor.learn.data import load_dataset
    from predictor.measure.calibrate import calibrate_models
    from predictor.measure.nodes import MeasureSettings

    meter = NvmlMeter(0, driver=BusyGPU(counter), sample_period_s=0.005)
    assert meter.method == ("counter" if counter else "sampling")
    settings = MeasureSettings(
        min_window_s=0.03, min_windows=2, max_windows=3, warmup=1, idle_s=0.2, target_rel_std=0.5
    )
    out = calibrate_models(
        ["examples.tiny_models:tiny_gpt2"],
        [1],
        [8],
        meter=meter,
        out_dir=tmp_path,
        settings=settings,
    )
    ds = load_dataset(out)
    assert len(ds.trees) == 1
    root = ds.trees[0].root
    assert root.measured_energy_j is not None and root.measured_energy_j > 0
    assert root.runtime["gpu_clk"] == 1980.0 and root.runtime["gpu"] == 80.0
    assert root.runtime["gpu_energy_mean"] > root.measured_energy_j  # raw includes idle
    assert ds.hardware["method"] == ("counter" if counter else "sampling")
    assert 40.0 < ds.hardware["idle_power_w"] < 120.0
