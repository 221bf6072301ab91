"""A deterministic meter: a virtual device whose energy and time follow from the work it runs.

For tests and for running ``irene calibrate`` end to end where no energy counter exists. While a
window is open, every aten op that executes is seen through a ``TorchDispatchMode`` and charged
with a simple roofline model of a device:

- time: ``max(flops / peak_flops, bytes / bandwidth) + launch_s`` per op;
- energy: ``idle_power_w * window time + j_per_gflop * GFLOPs + j_per_gib * GiB moved + j_per_op``.

FLOPs of matmul-like ops come from ``torch.utils.flop_counter``'s formula registry; every other
op is charged one FLOP per output element. Bytes are the sizes of the tensors read and written.
The clock is virtual (it advances by the modelled op times and by :meth:`sleep`), so the same
work gives the same joules on every run, idle power measures exactly ``idle_power_w``, and
nothing depends on the speed of the machine. ``noise_rel`` adds seeded multiplicative noise to
the dynamic energy, to exercise the calibration's stability loop.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from predictor.measure.meters.base import Measurement, Meter, MeterStatus

__all__ = ["FakeMeter", "WorkCounter"]


class WorkCounter(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Counts aten ops, FLOPs and bytes of everything that executes while it is active."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.ops = 0
        self.flops = 0.0
        self.bytes = 0.0
        self.op_costs: list[tuple[float, float]] = []

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = getattr(func, "overloadpacket", func)
        formula = flop_registry.get(packet)
        outs = _tensors(out)
        if formula is not None:
            flops = float(formula(*args, **kwargs, out_val=out))
        else:
            flops = float(sum(t.numel() for t in outs))
        nbytes = float(sum(_nbytes(t) for t in _tensors(args) + _tensors(kwargs) + outs))
        self.ops += 1
        self.flops += flops
        self.bytes += nbytes
        self.op_costs.append((flops, nbytes))
        return out


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for item in obj for t in _tensors(item)]
    if isinstance(obj, dict):
        return [t for item in obj.values() for t in _tensors(item)]
    return []


def _nbytes(t: torch.Tensor) -> int:
    return int(t.numel() * t.element_size())


class FakeMeter(Meter):
    """The deterministic virtual device (see the module docstring); always available."""

    kind = "fake"
    counter_feature = "gpu_energy_mean"

    def __init__(
        self,
        *,
        idle_power_w: float = 40.0,
        j_per_gflop: float = 0.4,
        j_per_gib: float = 1.5,
        j_per_op: float = 2e-5,
        peak_gflops: float = 2000.0,
        bandwidth_gib_s: float = 400.0,
        launch_s: float = 5e-6,
        gpu_clk_mhz: float = 1410.0,
        gpu_mem_clk_mhz: float = 1593.0,
        noise_rel: float = 0.0,
        seed: int = 0,
        min_window_s: float = 0.0,
    ) -> None:
        self._now = 0.0
        super().__init__(clock=self._virtual_clock, sleep=self._virtual_sleep, host_features=False)
        for name, value in (
            ("idle_power_w", idle_power_w),
            ("peak_gflops", peak_gflops),
            ("bandwidth_gib_s", bandwidth_gib_s),
        ):
            if value <= 0:
                raise ValueError(f"fake meter: {name} must be > 0 (got {value})")
        self.idle_w = idle_power_w
        self.j_per_gflop = j_per_gflop
        self.j_per_gib = j_per_gib
        self.j_per_op = j_per_op
        self.peak_gflops = peak_gflops
        self.bandwidth_gib_s = bandwidth_gib_s
        self.launch_s = launch_s
        self.gpu_clk_mhz = gpu_clk_mhz
        self.gpu_mem_clk_mhz = gpu_mem_clk_mhz
        self.noise_rel = noise_rel
        self.min_window_s = min_window_s
        self._rng = random.Random(seed)
        self._counter: WorkCounter | None = None
        self._t_begin = 0.0

    def _virtual_clock(self) -> float:
        return self._now

    def _virtual_sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot sleep {seconds} s")
        self._now += seconds

    def status(self) -> MeterStatus:
        return MeterStatus(
            "fake",
            True,
            "deterministic virtual device (roofline time and energy of the aten ops run)",
            method="model",
            device="virtual device",
        )

    def _begin(self) -> None:
        self._counter = WorkCounter()
        self._counter.__enter__()  # type: ignore[no-untyped-call]
        self._t_begin = self._now

    def _end(self, duration_s: float) -> Measurement:
        counter = self._counter
        assert counter is not None
        counter.__exit__(None, None, None)  # type: ignore[no-untyped-call]
        self._counter = None
        compute_s = mem_s = busy_s = 0.0
        for flops, nbytes in counter.op_costs:
            tc = flops / (self.peak_gflops * 1e9)
            tm = nbytes / (self.bandwidth_gib_s * 2**30)
            compute_s += tc
            mem_s += tm
            busy_s += max(tc, tm) + self.launch_s
        self._now += busy_s
        total_s = duration_s + busy_s  # duration_s covers sleeps inside the window
        dynamic = (
            self.j_per_gflop * counter.flops / 1e9
            + self.j_per_gib * counter.bytes / 2**30
            + self.j_per_op * counter.ops
        )
        if self.noise_rel > 0:
            dynamic *= 1.0 + self._rng.gauss(0.0, self.noise_rel)
        energy = self.idle_w * total_s + dynamic
        pct: Callable[[float], float] = lambda part: 100.0 * part / total_s if total_s > 0 else 0.0  # noqa: E731
        return Measurement(
            energy_j=energy,
            duration_s=total_s,
            method="fake-model",
            cpu_util_pct=pct(self.launch_s * counter.ops),
            mem_used_pct=10.0,
            gpu_util_pct=pct(busy_s),
            gpu_mem_util_pct=pct(mem_s),
            gpu_clk_mhz=self.gpu_clk_mhz,
            gpu_mem_clk_mhz=self.gpu_mem_clk_mhz,
            samples=counter.ops,
        )

    def hardware(self) -> dict[str, Any]:
        out = super().hardware()
        out["fake_model"] = {
            "idle_power_w": self.idle_w,
            "j_per_gflop": self.j_per_gflop,
            "j_per_gib": self.j_per_gib,
            "j_per_op": self.j_per_op,
            "peak_gflops": self.peak_gflops,
            "bandwidth_gib_s": self.bandwidth_gib_s,
            "launch_s": self.launch_s,
            "noise_rel": self.noise_rel,
        }
        return out
