"""RAPL meter against fake powercap trees in a temporary folder (no patching of builtins.open)."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from predictor.errors import HardwareUnavailable
from predictor.measure.meters import get_meter
from predictor.measure.meters.rapl import PowercapReader, RaplMeter, wrap_delta_uj


def zone(
    root: Path,
    name: str,
    label: str,
    energy_uj: int | None,
    max_uj: int | None = 1_000_000_000,
) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "name").write_text(label + "\n")
    if energy_uj is not None:
        (d / "energy_uj").write_text(f"{energy_uj}\n")
    if max_uj is not None:
        (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def set_energy(root: Path, name: str, value: int) -> None:
    (root / name / "energy_uj").write_text(f"{value}\n")


@pytest.fixture
def two_socket(tmp_path: Path) -> Path:
    """Two packages with core/dram sub-zones, plus a psys zone that overlaps them."""
    zone(tmp_path, "intel-rapl:0", "package-0", 1_000)
    zone(tmp_path, "intel-rapl:0:0", "core", 500)
    zone(tmp_path, "intel-rapl:0:1", "dram", 2_000)
    zone(tmp_path, "intel-rapl:1", "package-1", 3_000)
    zone(tmp_path, "intel-rapl:2", "psys", 9_000)
    (tmp_path / "intel-rapl").mkdir()  # the control-type folder, not a zone
    return tmp_path


def test_reads_packages_and_dram_but_not_core_or_psys(two_socket: Path) -> None:
    meter = RaplMeter(root=two_socket, poll_s=None)
    st = meter.status()
    assert st.available, st.reason
    assert [d.name for d in meter.domains] == ["package-0", "dram", "package-1"]
    assert meter.backend == "sysfs"
    meter.begin()
    set_energy(two_socket, "intel-rapl:0", 1_000 + 2_000_000)  # +2 J
    set_energy(two_socket, "intel-rapl:0:0", 500 + 7_000_000)  # core: inside package, ignored
    set_energy(two_socket, "intel-rapl:0:1", 2_000 + 250_000)  # +0.25 J
    set_energy(two_socket, "intel-rapl:1", 3_000 + 1_000_000)  # +1 J
    set_energy(two_socket, "intel-rapl:2", 9_000 + 50_000_000)  # psys, ignored
    m = meter.end()
    assert m.energy_j == pytest.approx(3.25)
    assert m.method == "rapl-sysfs"
    assert m.duration_s >= 0


def test_wraparound_uses_max_energy_range(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "package-0", 999_000, max_uj=1_000_000)
    meter = RaplMeter(root=tmp_path, poll_s=None)
    meter.begin()
    set_energy(tmp_path, "intel-rapl:0", 500)  # wrapped: 1000 uJ to the top, then 500
    assert meter.end().energy_j == pytest.approx(1_500e-6)


def test_polling_thread_survives_two_wraps(tmp_path: Path) -> None:
    """Each poll sees at most one wrap, so a window spanning two wraps is still exact."""
    zone(tmp_path, "intel-rapl:0", "package-0", 100, max_uj=1_000)
    values = iter([100, 100, 900, 300, 200])  # discover, begin, poll, poll, end

    def read_text(path: Path) -> str:
        if path.name == "energy_uj":
            return f"{next(values)}\n"
        return path.read_text()

    meter = RaplMeter(root=tmp_path, poll_s=None, read_text=read_text)
    meter.begin()  # reads 100
    meter._poll()  # 900: +800
    meter._poll()  # 300: wrapped, +100 +300
    m = meter.end()  # 200: wrapped again, +700 +200
    assert m.energy_j == pytest.approx(2_100e-6)


@pytest.mark.parametrize(
    ("before", "after", "top", "delta"),
    [(10, 30, 100, 20), (90, 5, 100, 15), (0, 0, 100, 0), (99, 0, 100, 1)],
)
def test_wrap_delta(before: int, after: int, top: int, delta: int) -> None:
    assert wrap_delta_uj(before, after, top) == delta


def test_wrap_without_known_range_raises() -> None:
    with pytest.raises(ValueError, match="max_energy_range_uj is unknown"):
        wrap_delta_uj(50, 10, 0)


def test_background_polling_accumulates(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    meter = RaplMeter(root=tmp_path, poll_s=0.001)
    meter.begin()
    set_energy(tmp_path, "intel-rapl:0", 4_000_000)
    m = meter.end()
    assert m.energy_j == pytest.approx(4.0)
    assert m.samples >= 2


# -- absent and unreadable hardware ------------------------------------------------------------


def test_no_powercap_at_all(tmp_path: Path) -> None:
    meter = RaplMeter(root=tmp_path / "missing", poll_s=None)
    st = meter.status()
    assert not st.available
    assert "no powercap in this container" in st.reason
    assert st.describe().startswith("RAPL unavailable: no powercap")
    with pytest.raises(HardwareUnavailable, match="no powercap in this container"):
        meter.begin()


def test_powercap_without_rapl_zones(tmp_path: Path) -> None:
    (tmp_path / "dtpm").mkdir()
    st = RaplMeter(root=tmp_path, poll_s=None).status()
    assert not st.available
    assert "no RAPL domains" in st.reason


def test_zone_without_energy_file_is_skipped(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "package-0", None)
    zone(tmp_path, "intel-rapl:1", "package-1", 10)
    reader = PowercapReader(tmp_path)
    assert [d.name for d in reader.discover()] == ["package-1"]
    assert any("no energy_uj" in s for s in reader.skipped)


def test_only_zones_without_energy_is_unavailable(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "package-0", None)
    st = RaplMeter(root=tmp_path, poll_s=None).status()
    assert not st.available
    assert "no readable RAPL domain" in st.reason and "no energy_uj" in st.reason


def test_requested_domain_missing(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "package-0", 10)
    st = RaplMeter(root=tmp_path, domains=["dram"], poll_s=None).status()
    assert not st.available
    assert "dram" in st.reason and "domains there: package-0" in st.reason


def test_requested_domain_selects(two_socket: Path) -> None:
    meter = RaplMeter(root=two_socket, domains=["core"], poll_s=None)
    assert [d.zone for d in meter.domains] == ["intel-rapl:0:0"]


def test_permission_error_from_reader_maps_to_reason(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "package-0", 10)

    def read_text(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text()

    meter = RaplMeter(root=tmp_path, read_text=read_text, poll_s=None)
    st = meter.status()
    assert not st.available
    assert "energy_uj is root-only since Linux 5.10; run as root or grant read access" in st.reason
    assert str(tmp_path / "intel-rapl:0" / "energy_uj") in st.reason


def test_counter_vanishing_mid_window_raises(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "package-0", 10)
    meter = RaplMeter(root=tmp_path, poll_s=None)
    meter.begin()
    (tmp_path / "intel-rapl:0" / "energy_uj").unlink()
    with pytest.raises(HardwareUnavailable, match="RAPL unreadable"):
        meter.end()


@pytest.fixture
def world_traversable_dir() -> Iterator[Path]:
    """A folder another user can traverse (pytest's tmp_path root is private to its owner)."""
    d = Path(tempfile.mkdtemp(prefix="irene-powercap-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _discover_as(uid: int, root: Path) -> str:
    """Run the real reader in a forked child that dropped to ``uid``; return its outcome."""
    r, w = os.pipe()
    with warnings.catch_warnings():
        # Python >= 3.12 warns about fork() in a process with threads; the child only reads
        # files and exits, so the warning does not apply here.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(r)
        try:
            os.setgid(uid)
            os.setuid(uid)
            st = RaplMeter(root=root, poll_s=None, backend="sysfs").status()
            msg = ("ok:" if st.available else "unavailable:") + st.reason
        except BaseException as exc:
            msg = f"error:{exc!r}"
        os.write(w, msg.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as fh:
        out = fh.read()
    os.waitpid(pid, 0)
    return out


def test_chmod_000_energy_file_is_a_reason_not_a_zero(world_traversable_dir: Path) -> None:
    root = world_traversable_dir
    zone(root, "intel-rapl:0", "package-0", 12345)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    (root / "intel-rapl:0" / "energy_uj").chmod(0o000)
    if os.geteuid() != 0:
        st = RaplMeter(root=root, poll_s=None).status()
        assert not st.available
        assert "root-only since Linux 5.10" in st.reason
        return
    # root reads anything, so check the real file-system denial as an unprivileged user
    outcome = _discover_as(65534, root)
    if outcome.startswith("error:") and "Operation not permitted" in outcome:
        pytest.skip(f"cannot drop to an unprivileged user here: {outcome}")
    assert outcome.startswith("unavailable:"), outcome
    assert "energy_uj is root-only since Linux 5.10; run as root or grant read access" in outcome
    # and as root the same tree is readable
    assert RaplMeter(root=root, poll_s=None).status().available


# -- pyRAPL backend ----------------------------------------------------------------------------


class FakePyRAPL:
    """The parts of the pyRAPL module the meter uses."""

    def __init__(self, pkg: list[float], dram: list[float] | None, fail: Exception | None = None):
        self.pkg, self.dram, self.fail = pkg, dram, fail
        self.set_up = False

    def setup(self) -> None:
        if self.fail is not None:
            raise self.fail
        self.set_up = True

    def Measurement(self, label: str) -> Any:
        outer = self

        class _M:
            result: Any = None

            def begin(self) -> None:
                pass

            def end(self) -> None:
                self.result = SimpleNamespace(pkg=outer.pkg, dram=outer.dram, duration=1.0)

        return _M()


def test_pyrapl_backend_sums_packages_and_dram(tmp_path: Path) -> None:
    fake = FakePyRAPL(pkg=[2_000_000.0, 1_000_000.0], dram=[500_000.0])
    meter = RaplMeter(root=tmp_path / "none", backend="pyrapl", pyrapl=fake, poll_s=None)
    assert meter.status().available and meter.backend == "pyrapl"
    with meter.window() as w:
        pass
    assert w.result.energy_j == pytest.approx(3.5)
    assert w.result.method == "rapl-pyrapl"


def test_auto_falls_back_to_pyrapl_when_sysfs_absent(tmp_path: Path) -> None:
    fake = FakePyRAPL(pkg=[1_000_000.0], dram=None)
    meter = RaplMeter(root=tmp_path / "none", pyrapl=fake, poll_s=None)
    assert meter.backend == "pyrapl"


def test_pyrapl_wrap_is_an_error(tmp_path: Path) -> None:
    fake = FakePyRAPL(pkg=[-1.0], dram=None)
    meter = RaplMeter(root=tmp_path, backend="pyrapl", pyrapl=fake, poll_s=None)
    meter.begin()
    with pytest.raises(HardwareUnavailable, match="wrapped"):
        meter.end()


def test_pyrapl_setup_failure_is_a_reason(tmp_path: Path) -> None:
    fake = FakePyRAPL(pkg=[], dram=None, fail=RuntimeError("no RAPL on this CPU"))
    st = RaplMeter(root=tmp_path, backend="pyrapl", pyrapl=fake).status()
    assert not st.available
    assert "pyRAPL cannot read RAPL here (RuntimeError: no RAPL on this CPU)" in st.reason


def test_factory_passes_root(two_socket: Path) -> None:
    meter = get_meter("rapl", root=two_socket, poll_s=None)
    assert meter.status().available
    auto = get_meter("auto", device="cpu", root=two_socket, poll_s=None)
    assert auto.kind == "rapl" and auto.status().available


def test_bad_backend_name() -> None:
    with pytest.raises(ValueError, match="backend must be"):
        RaplMeter(backend="msr")


def test_docstring_examples_run() -> None:
    import doctest

    import predictor.measure.meters
    import predictor.measure.meters.base
    import predictor.measure.meters.rapl

    for module in (
        predictor.measure.meters,
        predictor.measure.meters.base,
        predictor.measure.meters.rapl,
    ):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
