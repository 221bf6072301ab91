"""``irene report merge``: one report from the shards of a gate split over CI jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from energy_trees import small_bert

from predictor.cli.main import main
from predictor.errors import ConfigError
from predictor.gate.checks import Check, ModelResult
from predictor.gate.report import Report, load_report, merge_reports, write_report

PROFILE = {"name": "irene-device-1", "feature_set": "static", "sha256": "a" * 64}


def _shard(*names: str, profile: dict[str, str] | None = None, over: bool = False) -> Report:
    models = []
    for name in names:
        checks = [Check(name, None, None, 0.29, 0.1 if over else 1.0, line=4)]
        models.append(
            ModelResult(
                name, small_bert(name), nodeid=f"energy_budgets.yaml::{name}", checks=checks
            )
        )
    return Report(
        models=models, profile=dict(profile or PROFILE), budgets_file="energy_budgets.yaml"
    )


def test_merge_keeps_every_model_and_the_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_report(_shard("bert", "gpt2"), tmp_path / "a.json")
    shard_b = _shard("llama", over=True)
    shard_b.warnings.append("llama: not in the base report")
    write_report(shard_b, tmp_path / "b.json")
    out = tmp_path / "all.json"
    assert (
        main(
            ["report", "merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-o", str(out)]
        )
        == 0
    )
    assert "merged 2 reports (3 models, 1 over a limit)" in capsys.readouterr().out
    merged = load_report(out)
    assert [m.name for m in merged.models] == ["bert", "gpt2", "llama"]
    assert merged.passed is False and merged.warnings == ["llama: not in the base report"]
    assert json.loads(out.read_text())["profile"]["sha256"] == "a" * 64
    # the merged report renders like any other
    assert main(["report", str(out), "--format", "text"]) == 0
    assert capsys.readouterr().out.startswith("verdict: FAILED, 1 of 3 models over a limit")


def test_merge_refuses_other_profiles_and_overlapping_shards(tmp_path: Path) -> None:
    other = {**PROFILE, "sha256": "b" * 64}
    with pytest.raises(
        ConfigError,
        match=r"b.json: predicted by profile 'irene-device-1' \(bbbbbbbbbbbb\), a.json by",
    ):
        merge_reports([("a.json", _shard("bert")), ("b.json", _shard("gpt2", profile=other))])
    with pytest.raises(
        ConfigError, match=r"b.json: model 'bert' .* is also in a.json: the shards overlap"
    ):
        merge_reports([("a.json", _shard("bert")), ("b.json", _shard("bert"))])


def test_merge_usage_errors_exit_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_report(_shard("bert"), tmp_path / "a.json")
    assert main(["report", "merge", str(tmp_path / "a.json")]) == 4
    assert "-o ALL.json" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "a.json"), str(tmp_path / "a.json")]) == 4
    assert "irene report merge" in capsys.readouterr().err
    other = _shard("gpt2", profile={**PROFILE, "sha256": "c" * 64})
    write_report(other, tmp_path / "c.json")
    args = [
        "report",
        "merge",
        str(tmp_path / "a.json"),
        str(tmp_path / "c.json"),
        "-o",
        str(tmp_path / "x.json"),
    ]
    assert main(args) == 4
    assert not (tmp_path / "x.json").exists()
