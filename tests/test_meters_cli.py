"""``irene meters``: every meter listed with its state and reason; exit 0 unless --require fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from predictor.cli.main import main


def _package_zone(root: Path) -> None:
    z = root / "intel-rapl:0"
    z.mkdir(parents=True)
    (z / "name").write_text("package-0\n")
    (z / "energy_uj").write_text("123\n")
    (z / "max_energy_range_uj").write_text("262143328850\n")


def test_lists_every_meter_with_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["meters", "--format", "json", "--powercap-root", str(tmp_path / "absent")])
    assert rc == 0
    rows = {r["meter"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"nvml", "rapl", "fake"}
    assert rows["rapl"]["available"] is False
    assert "no powercap in this container" in rows["rapl"]["reason"]
    assert rows["fake"]["available"] is True
    # NVML: unavailable with a reason on machines without a GPU driver, available on GPU runners
    assert rows["nvml"]["reason"]
    if not rows["nvml"]["available"]:
        assert rows["nvml"]["method"] is None


def test_rapl_available_on_a_powercap_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _package_zone(tmp_path)
    assert main(["meters", "--format", "json", "--powercap-root", str(tmp_path)]) == 0
    rows = {r["meter"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["rapl"]["available"] is True
    assert rows["rapl"]["method"] == "sysfs"
    assert "package-0 (intel-rapl:0)" in rows["rapl"]["reason"]


def test_table_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["meters", "--powercap-root", str(tmp_path / "absent")]) == 0
    out = capsys.readouterr().out
    assert "RAPL" in out and "NVML" in out and "no powercap" in out


def test_require_unavailable_meter_exits_8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["meters", "--require", "rapl", "--powercap-root", str(tmp_path / "absent")])
    assert rc == 8
    err = capsys.readouterr().err
    assert "RAPL unavailable: no powercap in this container" in err
    assert "Traceback" not in err


def test_require_available_meter_exits_0(tmp_path: Path) -> None:
    _package_zone(tmp_path)
    assert main(["meters", "--require", "rapl", "--powercap-root", str(tmp_path)]) == 0


def test_markdown_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["meters", "--format", "markdown", "--powercap-root", str(tmp_path / "x")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| Meter | Available | Device | Method, or why not |"
    assert any(line.startswith("| RAPL") and "| no |" in line for line in lines)
