"""One CLI: the same inputs and formats everywhere, reports of the previous version still read,
and comparisons that refuse to pit different inputs against each other."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from energy_trees import small_bert

from predictor.cli.main import main
from predictor.cli.train_cmd import _print_result
from predictor.gate.checks import Check, ModelResult
from predictor.gate.diff import diff_reports, render_markdown
from predictor.gate.report import Report, load_report, write_report

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_BERT = "examples.tiny_models:tiny_bert"


def _strip_new_keys(data: Any) -> Any:
    """A report as the previous version wrote it: no units block, checks without origin and
    line, budgets-file models without inputs, a profile without device/scope/provenance."""
    if isinstance(data, dict):
        drop = {"units", "origin", "line", "device", "scope", "provenance"}
        return {k: _strip_new_keys(v) for k, v in data.items() if k not in drop}
    if isinstance(data, list):
        return [_strip_new_keys(v) for v in data]
    return data


def test_reports_of_the_previous_version_still_load_and_diff(tmp_path: Path) -> None:
    result = ModelResult(
        "bert", small_bert(), checks=[Check("bert", None, None, 0.29, 0.3, line=5)]
    )
    write_report(Report(models=[result], profile={"name": "irene-device-1"}), tmp_path / "new.json")
    data = json.loads((tmp_path / "new.json").read_text())
    assert data["models"][0]["tree"]["units"]["flops"].startswith("MFLOPs")
    old = _strip_new_keys(data)
    old["models"][0]["inputs"] = None
    (tmp_path / "old.json").write_text(json.dumps(old))
    loaded = load_report(tmp_path / "old.json")
    check = loaded.models[0].checks[0]
    assert (check.origin, check.line) == ("budgets", 0)
    diff = diff_reports(loaded, load_report(tmp_path / "new.json"))
    assert [m.status for m in diff.models] == ["same"]
    assert "irene-device-1&#x27;: not recorded, whole system" in render_markdown(diff)


@pytest.mark.parametrize("command", ["tree", "predict"])
def test_tree_and_predict_take_the_same_inputs_and_default(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    assert main([command, TINY_BERT, "--format", "json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert (default["root"]["batch_size"], default["root"]["seq_len"]) == (1, 128)
    assert main([command, TINY_BERT, "-b", "2", "-s", "8", "--format", "json"]) == 0
    given = json.loads(capsys.readouterr().out)
    assert (given["root"]["batch_size"], given["root"]["seq_len"]) == (2, 8)


def test_train_prints_what_it_trained_in_each_format(capsys: pytest.CaptureFixture[str]) -> None:
    result = {
        "profile": "p.irene.joblib",
        "name": "p",
        "feature_set": "static",
        "cv_error": {"overall_row_weighted": {"ml": 2.5, "module": 6.0, "model": 2.4}},
    }
    _print_result("json", result)
    assert json.loads(capsys.readouterr().out) == result
    _print_result("text", result)
    assert capsys.readouterr().out.splitlines() == [
        "wrote profile 'p' (static features) to p.irene.joblib",
        "leave-one-model-out MAPE, row-weighted: ml 2.50 %, module 6.00 %, model 2.40 %",
    ]
    _print_result("markdown", {**result, "cv_error": {}})
    assert capsys.readouterr().out.splitlines()[-1] == (
        "| `p.irene.joblib` | p | static | not run |"
    )


def test_compare_with_other_inputs_is_not_compared_and_says_so_loudly(
    pytester: pytest.Pytester,
) -> None:
    shutil.copytree(REPO_ROOT / "examples", pytester.path / "examples")
    entry = "version: 1\nmodels:\n  tiny:\n    model: {spec}\n    inputs: {{batch_size: 2, seq_len: {seq}}}\n"
    budgets = pytester.path / "energy_budgets.yaml"
    budgets.write_text(entry.format(spec=TINY_BERT, seq=16))
    args = ["-p", "no:cacheprovider", "--energy"]
    assert pytester.runpytest_subprocess(*args, "--energy-report", "base.json").ret == 0
    budgets.write_text(entry.format(spec=TINY_BERT, seq=32))
    result = pytester.runpytest_subprocess(
        *args, "--energy-compare", "base.json", "--energy-report", "head.json"
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "warning: tiny: NOT COMPARED with the base report *base.json: its inputs differ "
            "(base: (batch_size=2, seq_len=16); this run: (batch_size=2, seq_len=32))*"
        ]
    )
    head = load_report(pytester.path / "head.json")
    assert [c.kind for c in head.models[0].checks] == []  # no compare checks were made
    diff = diff_reports(load_report(pytester.path / "base.json"), head)
    assert diff.models[0].inputs_changed == ("batch_size=2, seq_len=16", "batch_size=2, seq_len=32")
    assert "inputs differ for tiny: base (batch\\_size=2, seq\\_len=16)" in render_markdown(diff)
