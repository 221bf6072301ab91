"""The one resolver of the gate's options: command line > ini > budgets file > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from predictor.errors import ConfigError
from predictor.gate.options import OPTIONS, resolve_options


def _dirs(tmp_path: Path) -> dict[str, Path]:
    return {
        "invocation_dir": tmp_path / "cwd",
        "ini_dir": tmp_path / "ini",
        "rootdir": tmp_path / "root",
    }


def test_defaults(tmp_path: Path) -> None:
    opts = resolve_options({}, {}, **_dirs(tmp_path))
    assert not opts.enabled
    assert opts.budgets == (tmp_path / "root" / "energy_budgets.yaml").resolve()
    assert (opts.report, opts.compare, opts.markdown, opts.profile) == (None, None, None, None)
    assert (opts.meter, opts.check) == ("none", "predicted")
    assert set(opts.sources.values()) == {"default"}
    assert set(opts.sources) == {o.key for o in OPTIONS}


def test_each_source_and_its_path_base(tmp_path: Path) -> None:
    dirs = _dirs(tmp_path)
    ini = {"enabled": "true", "budgets": "b.yaml", "report": "r.json", "profile": "p1"}
    ini |= {"meter": "rapl", "check": "measured"}
    from_ini = resolve_options({}, ini, **dirs)
    assert from_ini.enabled
    assert from_ini.budgets == (tmp_path / "ini" / "b.yaml").resolve()
    assert from_ini.report == (tmp_path / "ini" / "r.json").resolve()
    assert (from_ini.profile, from_ini.profile_base) == ("p1", tmp_path / "ini")
    assert (from_ini.meter, from_ini.check) == ("rapl", "measured")
    assert from_ini.sources["budgets"] == from_ini.sources["meter"] == "ini"

    cli = {"enabled": False, "budgets": "c.yaml", "profile": "dir/p.joblib", "meter": "fake"}
    both = resolve_options(cli, ini, **dirs)
    assert not both.enabled  # --no-energy beats energy = true
    assert both.budgets == (tmp_path / "cwd" / "c.yaml").resolve()
    assert (both.profile, both.profile_base) == ("dir/p.joblib", tmp_path / "cwd")
    assert both.report == (tmp_path / "ini" / "r.json").resolve()
    assert (both.meter, both.check) == ("fake", "measured")
    assert (both.sources["budgets"], both.sources["report"]) == ("cli", "ini")


def test_the_budgets_file_sits_between_ini_and_default(tmp_path: Path) -> None:
    """A budgets file's profile: is read relative to the file's folder, loses to the ini
    file and the command line, and beats the default."""
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "mine.irene.joblib").write_bytes(b"x")
    calls: list[tuple[Path, str]] = []

    def read(path: Path, source: str) -> dict[str, str]:
        calls.append((path, source))
        return {"profile": "mine.irene.joblib"}

    dirs = _dirs(tmp_path)
    cli = {"enabled": True, "budgets": str(folder / "b.yaml")}
    opts = resolve_options(cli, {}, read_budgets=read, **dirs)
    assert calls == [((folder / "b.yaml").resolve(), "cli")]
    assert (opts.profile, opts.profile_base) == ("mine.irene.joblib", folder.resolve())
    assert opts.sources["profile"] == "budgets"
    assert resolve_options(cli, {"profile": "p1"}, read_budgets=read, **dirs).profile == "p1"
    over = resolve_options({**cli, "profile": "p2"}, {"profile": "p1"}, read_budgets=read, **dirs)
    assert (over.profile, over.sources["profile"]) == ("p2", "cli")
    calls.clear()
    off = resolve_options({"enabled": False, "budgets": "b.yaml"}, {}, read_budgets=read, **dirs)
    assert not off.enabled and calls == []  # a gate that is off reads no file


def test_a_yaml_argument_names_the_budgets_file(tmp_path: Path) -> None:
    dirs = _dirs(tmp_path)
    opts = resolve_options({}, {"budgets": "ini.yaml"}, file_args=["x.yaml::m"], **dirs)
    assert (opts.budgets, opts.sources["budgets"]) == (
        (tmp_path / "cwd" / "x.yaml").resolve(),
        "cli",
    )
    flag = resolve_options({"budgets": "f.yaml"}, {}, file_args=["x.yaml", "y.yaml"], **dirs)
    assert flag.budgets.name == "f.yaml"
    with pytest.raises(ConfigError, match=r"one budgets file per run, got x\.yaml, y\.yaml"):
        resolve_options({}, {}, file_args=["x.yaml", "y.yaml"], **dirs)


def test_choices_are_validated_where_they_were_set(tmp_path: Path) -> None:
    dirs = _dirs(tmp_path)
    with pytest.raises(ConfigError, match=r"tox.ini: energy_meter: 'gpu' is not one of none, auto"):
        resolve_options({}, {"meter": "gpu"}, ini_name="tox.ini", **dirs)
    with pytest.raises(
        ConfigError, match=r"--energy-check: measured needs a meter: add --energy-meter"
    ):
        resolve_options({"check": "measured"}, {}, **dirs)
    with pytest.raises(ConfigError, match=r"--check: measured needs a meter: add --meter auto"):
        resolve_options({"check": "measured"}, {}, cli_flags=True, **dirs)
    with pytest.raises(ConfigError, match=r"tox\.ini: energy must be true or false"):
        resolve_options({}, {"enabled": "maybe"}, ini_name="tox.ini", **dirs)
