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


def test_headroom_and_update_from_each_source(tmp_path: Path) -> None:
    """--energy-headroom > ini energy_headroom > the budgets file's defaults.headroom > 10%."""
    budgets = tmp_path / "cwd" / "energy_budgets.yaml"
    budgets.parent.mkdir()
    budgets.write_text("version: 1\n")
    dirs = _dirs(tmp_path)

    def read(_: Path, __: str) -> dict[str, object]:
        return {"defaults.headroom": 0.3}

    on = {"enabled": True, "budgets": str(budgets)}
    assert resolve_options(on, {}, **dirs).headroom == pytest.approx(0.10)
    from_file = resolve_options(on, {}, read_budgets=read, **dirs)
    assert from_file.headroom == pytest.approx(0.30) and from_file.sources["headroom"] == "budgets"
    from_ini = resolve_options(on, {"headroom": "25%"}, read_budgets=read, **dirs)
    assert from_ini.headroom == pytest.approx(0.25) and from_ini.sources["headroom"] == "ini"
    from_cli = resolve_options({**on, "headroom": "5%"}, {"headroom": "25%"}, **dirs)
    assert from_cli.headroom == pytest.approx(0.05) and from_cli.sources["headroom"] == "cli"
    with pytest.raises(ConfigError, match=r"--energy-headroom: must be a percentage"):
        resolve_options({**on, "headroom": "lots"}, {}, **dirs)

    assert resolve_options(on, {}, **dirs).update is None
    assert resolve_options({**on, "update": True}, {}, **dirs).update == "exceeded"
    assert resolve_options(on, {"update_all": "true"}, **dirs).update == "all"
    with pytest.raises(ConfigError, match="no budgets file to update"):
        resolve_options({"enabled": True, "update": True}, {}, **dirs)


def test_html_may_not_overwrite_another_input_or_output(tmp_path: Path) -> None:
    dirs = _dirs(tmp_path)
    with pytest.raises(ConfigError, match="is also the report output's path"):
        resolve_options({"report": "x.json", "html": "x.json"}, {}, **dirs)
    with pytest.raises(ConfigError, match="is also the compare file"):
        resolve_options({"compare": "b.json", "html": "b.json"}, {}, **dirs)
