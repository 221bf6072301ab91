"""CPU (and DRAM) energy through RAPL: the Linux powercap sysfs, or pyRAPL.

The powercap tree (``/sys/class/powercap/intel-rapl:*``, used by Intel and by AMD Zen) has one
zone per package (``intel-rapl:0``, name ``package-0``) with sub-zones (``intel-rapl:0:0`` core,
``intel-rapl:0:1`` uncore or ``dram``). Each zone's ``energy_uj`` is a counter in microjoules that
wraps at ``max_energy_range_uj``; the meter polls it in a background thread (every ``poll_s``)
so a window survives any number of wraps as long as one poll interval sees at most one.

By default the packages are metered (``psys`` is skipped: it overlaps them) plus the ``dram``
sub-zones (not part of the package domain). ``domains=`` picks zones by name.

Since Linux 5.10 ``energy_uj`` is readable by root only (CVE-2020-8694); an unreadable counter
is a state with that reason, never a zero. ``root`` and ``read_text`` are parameters so tests
run against a fake tree in a temporary folder.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from predictor.errors import HardwareUnavailable
from predictor.measure.meters.base import Clock, Measurement, Meter, MeterStatus, PeriodicSampler

__all__ = [
    "DEFAULT_POWERCAP_ROOT",
    "PowercapReader",
    "RaplDomain",
    "RaplMeter",
    "wrap_delta_uj",
]

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
_ZONE = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")

#: Reads a small sysfs file as text; tests inject their own (it must raise OSError subclasses).
ReadText = Callable[[Path], str]


def _read_text(path: Path) -> str:
    with path.open() as fh:
        return fh.read()


def permission_reason(path: Path) -> str:
    return (
        f"{path}: energy_uj is root-only since Linux 5.10; run as root or grant read access "
        f"(sudo chmod a+r {path.parent.parent}/intel-rapl:*/energy_uj)"
    )


def wrap_delta_uj(before: int, after: int, max_energy_range_uj: int) -> int:
    """Energy (uJ) between two readings of a counter that wraps at ``max_energy_range_uj``.

    >>> wrap_delta_uj(100, 250, 1000)
    150
    >>> wrap_delta_uj(900, 50, 1000)  # wrapped once: 100 to the top, then 50
    150
    """
    if after >= before:
        return after - before
    if max_energy_range_uj <= 0:
        raise ValueError(
            f"counter went backwards ({before} -> {after}) and max_energy_range_uj is unknown"
        )
    return max_energy_range_uj - before + after


@dataclass(frozen=True)
class RaplDomain:
    """One readable powercap zone: ``zone`` is the folder (``intel-rapl:0``), ``name`` its name."""

    zone: str
    name: str
    path: Path
    max_energy_range_uj: int

    @property
    def is_package_level(self) -> bool:
        m = _ZONE.match(self.zone)
        return bool(m) and m is not None and m.group(2) is None


class PowercapReader:
    """Finds and reads RAPL zones under a powercap root (``/sys/class/powercap`` by default)."""

    def __init__(
        self,
        root: str | Path = DEFAULT_POWERCAP_ROOT,
        *,
        read_text: ReadText = _read_text,
        domains: Sequence[str] | None = None,
    ) -> None:
        self.root = Path(root)
        self._read = read_text
        self._wanted = list(domains) if domains is not None else None
        self.skipped: list[str] = []

    def discover(self) -> list[RaplDomain]:
        """The zones to meter, each checked readable; HardwareUnavailable with the reason if none."""
        if not self.root.is_dir():
            raise HardwareUnavailable(
                f"no powercap in this container ({self.root} does not exist); RAPL needs a Linux "
                "host with the intel_rapl driver (Intel, AMD Zen) and /sys/class/powercap visible"
            )
        zones = sorted(
            (p for p in self.root.iterdir() if _ZONE.match(p.name)),
            key=lambda p: tuple(int(x) for x in p.name.split(":")[1:]),
        )
        if not zones:
            raise HardwareUnavailable(
                f"no RAPL domains under {self.root} (no intel-rapl:* zones: the CPU has no RAPL "
                "or the intel_rapl_common module is not loaded)"
            )
        found: list[RaplDomain] = []
        names: list[str] = []
        denied: list[Path] = []
        self.skipped = []
        for zone in zones:
            try:
                name = self._read(zone / "name").strip()
            except FileNotFoundError:
                self.skipped.append(f"{zone.name}: no name file")
                continue
            except PermissionError:
                denied.append(zone / "name")
                continue
            names.append(name)
            if not self._selected(zone.name, name):
                continue
            energy_file = zone / "energy_uj"
            try:
                int(self._read(energy_file).strip())
            except FileNotFoundError:
                self.skipped.append(f"{zone.name} ({name}): no energy_uj")
                continue
            except PermissionError:
                denied.append(energy_file)
                continue
            except ValueError:
                self.skipped.append(f"{zone.name} ({name}): energy_uj is not an integer")
                continue
            try:
                max_range = int(self._read(zone / "max_energy_range_uj").strip())
            except (OSError, ValueError):
                max_range = 0  # wraparound then raises instead of guessing
                self.skipped.append(
                    f"{zone.name} ({name}): no max_energy_range_uj (wraps undetectable)"
                )
            found.append(RaplDomain(zone.name, name, energy_file, max_range))
        if self._wanted is not None:
            missing = [w for w in self._wanted if w not in {d.name for d in found}]
            if missing and not denied:
                raise HardwareUnavailable(
                    f"RAPL domain(s) {', '.join(missing)} not found under {self.root}; "
                    f"domains there: {', '.join(names) or 'none'}"
                )
        if denied and not found:
            raise HardwareUnavailable(permission_reason(denied[0]))
        if not found:
            detail = "; ".join(self.skipped) or "no package or dram zone"
            raise HardwareUnavailable(f"no readable RAPL domain under {self.root} ({detail})")
        if denied:
            self.skipped.extend(f"{p}: permission denied" for p in denied)
        return found

    def _selected(self, zone: str, name: str) -> bool:
        if self._wanted is not None:
            return name in self._wanted or zone in self._wanted
        m = _ZONE.match(zone)
        top = m is not None and m.group(2) is None
        if top:
            return name != "psys"
        return name == "dram"

    def read_uj(self, domain: RaplDomain) -> int:
        try:
            return int(self._read(domain.path).strip())
        except PermissionError:
            raise HardwareUnavailable(
                "RAPL unreadable: " + permission_reason(domain.path)
            ) from None
        except (OSError, ValueError) as exc:
            raise HardwareUnavailable(f"RAPL unreadable: {domain.path}: {exc}") from None


class RaplMeter(Meter):
    """CPU package (+ DRAM) energy via RAPL.

    ``backend``: ``"sysfs"`` (powercap, wraparound-safe), ``"pyrapl"`` (the pyRAPL package,
    which reads the same counters but does not handle wraparound), or ``"auto"`` (sysfs, else
    pyRAPL where that works). ``pyrapl`` injects a pyRAPL-like module (tests).
    """

    kind = "rapl"
    min_window_s = 0.05  # RAPL counters update every ~1 ms

    def __init__(
        self,
        *,
        root: str | Path = DEFAULT_POWERCAP_ROOT,
        backend: str = "auto",
        domains: Sequence[str] | None = None,
        read_text: ReadText = _read_text,
        poll_s: float | None = 0.5,
        pyrapl: Any | None = None,
        clock: Clock = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
        host_features: bool = True,
        proc_root: str = "/proc",
    ) -> None:
        super().__init__(clock=clock, sleep=sleep, host_features=host_features, proc_root=proc_root)
        if backend not in ("auto", "sysfs", "pyrapl"):
            raise ValueError(f"RAPL backend must be auto, sysfs or pyrapl (got {backend!r})")
        self.reader = PowercapReader(root, read_text=read_text, domains=domains)
        self.poll_s = poll_s
        self.domains: list[RaplDomain] = []
        self._backend: str | None = None
        self._reason: str | None = None
        self._pyrapl: Any = None
        self._lock = threading.Lock()
        self._last: list[int] = []
        self._acc: list[int] = []
        self._sampler: PeriodicSampler | None = None
        self._pyrapl_measurement: Any = None

        sysfs_reason: str | None = None
        if backend in ("auto", "sysfs"):
            try:
                self.domains = self.reader.discover()
                self._backend = "sysfs"
                return
            except HardwareUnavailable as exc:
                sysfs_reason = str(exc)
                if backend == "sysfs":
                    self._reason = sysfs_reason
                    return
        # pyRAPL reads the same counters at the real /sys path: with a custom root only an
        # injected module is tried, and with no powercap at all, or unreadable counters, it
        # cannot work either
        if (
            backend == "pyrapl"
            or pyrapl is not None
            or (
                Path(root) == DEFAULT_POWERCAP_ROOT
                and self.reader.root.is_dir()
                and "root-only" not in (sysfs_reason or "")
            )
        ):
            py_reason = self._setup_pyrapl(pyrapl)
            if py_reason is None:
                self._backend = "pyrapl"
                return
            if backend == "pyrapl" or sysfs_reason is None:
                self._reason = py_reason
            elif py_reason.startswith("pyRAPL is not installed"):
                self._reason = sysfs_reason
            else:
                self._reason = f"{sysfs_reason}; pyRAPL: {py_reason}"
        else:
            self._reason = sysfs_reason

    def _setup_pyrapl(self, injected: Any | None) -> str | None:
        module = injected
        if module is None:
            previous = logging.root.manager.disable
            logging.disable(logging.WARNING)  # pyRAPL logs warnings about optional outputs
            try:
                module = importlib.import_module("pyRAPL")
            except ImportError:
                return "pyRAPL is not installed (pip install 'pytest-irene[rapl]')"
            finally:
                logging.disable(previous)
        try:
            module.setup()
        except PermissionError as exc:
            return permission_reason(
                Path(exc.filename or DEFAULT_POWERCAP_ROOT / "intel-rapl:0" / "energy_uj")
            )
        except Exception as exc:  # pyRAPL raises its own exception types and plain OSErrors
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return f"pyRAPL cannot read RAPL here ({detail})"
        self._pyrapl = module
        return None

    @property
    def backend(self) -> str | None:
        """``"sysfs"`` or ``"pyrapl"`` when available, else None."""
        return self._backend

    def status(self) -> MeterStatus:
        if self._backend is None:
            return MeterStatus("rapl", False, self._reason or "not initialised")
        if self._backend == "sysfs":
            names = ", ".join(f"{d.name} ({d.zone})" for d in self.domains)
            how = f"powercap sysfs {self.reader.root}: {names}"
        else:
            how = "pyRAPL (package + dram, all sockets)"
        return MeterStatus("rapl", True, how, method=self._backend, device=_cpu_model())

    # -- sysfs ------------------------------------------------------------------------------

    def _poll(self) -> dict[str, float]:
        with self._lock:
            for i, d in enumerate(self.domains):
                now = self.reader.read_uj(d)
                self._acc[i] += wrap_delta_uj(self._last[i], now, d.max_energy_range_uj)
                self._last[i] = now
        return {}

    def _begin(self) -> None:
        if self._backend == "pyrapl":
            self._pyrapl_measurement = self._pyrapl.Measurement("irene")
            self._pyrapl_measurement.begin()
            return
        self._last = [self.reader.read_uj(d) for d in self.domains]
        self._acc = [0] * len(self.domains)
        if self.poll_s is not None:
            self._sampler = PeriodicSampler(self._poll, self.poll_s, self.clock)
            self._sampler.start()

    def _end(self, duration_s: float) -> Measurement:
        if self._backend == "pyrapl":
            m = self._pyrapl_measurement
            m.end()
            self._pyrapl_measurement = None
            result = m.result
            parts = list(result.pkg or []) + list(result.dram or [])
            if any(p < 0 for p in parts):
                raise HardwareUnavailable(
                    "RAPL: a pyRAPL counter wrapped during the window (pyRAPL does not handle "
                    "wraparound); use the sysfs backend (--rapl-backend sysfs)"
                )
            return Measurement(sum(parts) / 1e6, duration_s, method="rapl-pyrapl", samples=2)
        if self._sampler is not None:
            samples = self._sampler.stop()
            self._sampler = None
            n = len(samples)
        else:
            self._poll()
            n = 2
        return Measurement(sum(self._acc) / 1e6, duration_s, method="rapl-sysfs", samples=n)

    def hardware(self) -> dict[str, Any]:
        out = super().hardware()
        out["cpu_model"] = _cpu_model()
        if self._backend == "sysfs":
            out["rapl_domains"] = [
                {"zone": d.zone, "name": d.name, "max_energy_range_uj": d.max_energy_range_uj}
                for d in self.domains
            ]
        return out


def _cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str | None:
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        return None
    return None
