from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from energy_trees import ml, small_bert

from predictor.cli.main import main
from predictor.errors import ConfigError
from predictor.gate.checks import Check, ModelResult, compare_tree
from predictor.gate.diff import (
    COMMENT_MARKER,
    append_step_summary,
    diff_reports,
    diff_trees,
    render_markdown,
    render_table,
)
from predictor.gate.report import REPORT_SCHEMA, Report, load_report, write_report


def _report(*results: ModelResult, profile: str = "irene-device-1") -> Report:
    return Report(models=list(results), profile={"name": profile, "feature_set": "static"})


def _head_tree() -> tuple[object, object]:
    base = small_bert(attention0_j=0.1, pooler_j=0.05)
    head = small_bert(attention0_j=0.13, pooler_j=0.049)
    # head gains a new module and loses none; base keeps one that head dropped
    head.root.children.append(ml("classifier", "Linear", 0.01))
    base.root.children.append(ml("old_head", "Linear", 0.002))
    return base, head


def test_diff_orders_by_absolute_change_and_finds_new_and_removed() -> None:
    base, head = _head_tree()
    diff = diff_trees("bert", base, head)  # type: ignore[arg-type]
    order = [(c.fqn, c.status) for c in diff.modules if c.status != "same"]
    assert order == [
        ("encoder", "changed"),
        ("encoder.layer.0", "changed"),
        ("encoder.layer.0.attention", "changed"),
        ("classifier", "new"),
        ("old_head", "removed"),
        ("pooler", "changed"),
    ]
    assert diff.total.delta_j == pytest.approx(0.03 - 0.001)
    assert [c.fqn for c in diff.new] == ["classifier"]
    assert [c.fqn for c in diff.removed] == ["old_head"]
    attention = next(c for c in diff.modules if c.fqn == "encoder.layer.0.attention")
    assert attention.ratio == pytest.approx(0.3)


def test_markdown_has_marker_totals_top_changes_and_details() -> None:
    base, head = _head_tree()
    diff = diff_reports(
        _report(ModelResult("bert", base)),  # type: ignore[arg-type]
        _report(ModelResult("bert", head), ModelResult("gpt", small_bert("gpt"))),  # type: ignore[arg-type]
    )
    text = render_markdown(diff, top=2)
    assert text.startswith(COMMENT_MARKER + "\n")
    assert "| bert | 290 mJ | 319 mJ | +29.0 mJ (+10.0%) |" in text
    assert "| gpt | — | 290 mJ | new |" in text
    assert "Largest module changes (2 of 4 changed modules):" in text
    assert "| <code>encoder</code> | 240 mJ | 270 mJ | +30.0 mJ (+12.5%) |" in text
    assert "New modules: <code>classifier</code>" in text
    assert "Removed modules: <code>old_head</code>" in text
    assert "<details><summary>All 8 modules of bert</summary>" in text
    assert "### gpt: model new" in text


def test_markdown_notes_a_profile_change() -> None:
    tree = small_bert()
    diff = diff_reports(
        _report(ModelResult("bert", tree), profile="a"),
        _report(ModelResult("bert", tree), profile="b"),
    )
    assert (
        "> ⚠️ **Note:** profile changed: a (static) -&gt; b (static) (base used one, head the "
        "other); part of the change comes from the profile" in render_markdown(diff)
    )
    assert "note: profile changed: a (static) -> b (static)" in render_table(diff)
    assert "No module changed." in render_markdown(diff)


def test_retrained_profile_of_the_same_name_is_a_profile_change() -> None:
    """Same name and feature set, another payload: the digest tells them apart."""
    tree = small_bert()
    base, head = _report(ModelResult("bert", tree)), _report(ModelResult("bert", tree))
    base.profile["sha256"], head.profile["sha256"] = "a" * 64, "b" * 64
    markdown = render_markdown(diff_reports(base, head))
    assert (
        "profile changed: irene-device-1 (static, sha256 aaaaaaaaaaaa) -&gt; "
        "irene-device-1 (static, sha256 bbbbbbbbbbbb)" in markdown
    )
    head.profile["sha256"] = "a" * 64
    assert "profile changed" not in render_markdown(diff_reports(base, head))


def test_report_records_the_profile_identity() -> None:
    from predictor.gate.report import profile_identity
    from predictor.learn.profile import load_profile

    profile = load_profile(None)
    identity = profile_identity(profile)
    assert identity["name"] == profile.name
    assert identity["feature_set"] == profile.feature_set
    assert identity["path"] == str(profile.path)
    import hashlib

    text = json.dumps(profile.payload(), sort_keys=True, allow_nan=False)
    assert identity["sha256"] == hashlib.sha256(text.encode()).hexdigest()


def test_table_rendering() -> None:
    base, head = _head_tree()
    text = render_table(
        diff_reports(_report(ModelResult("bert", base)), _report(ModelResult("bert", head)))
    )  # type: ignore[arg-type]
    lines = text.splitlines()
    assert lines[0] == "verdict: passed, 1 of 1 models within their limits"
    start = lines.index(next(line for line in lines if line.startswith("model ")))
    assert lines[start].split() == ["model", "base", "head", "change"]
    assert lines[start + 2].split() == ["bert", "290", "mJ", "319", "mJ", "+29.0", "mJ", "(+10.0%)"]
    assert "bert: largest module changes" in text


@pytest.mark.parametrize(("growth", "passed"), [(0.049, True), (0.05, True), (0.051, False)])
def test_compare_just_under_and_over_tolerance(growth: float, passed: bool) -> None:
    base = small_bert(attention0_j=0.1)
    head = small_bert(attention0_j=0.1 * (1 + growth))
    checks = compare_tree("bert", head, base, 0.05)
    assert {c.module for c in checks} == {
        None,
        "encoder",
        "encoder.layer.0",
        "encoder.layer.0.attention",
        "encoder.layer.1",
        "encoder.layer.1.attention",
        "pooler",
    }
    failing = [c for c in checks if not c.passed]
    assert (not failing) is passed
    if not passed:
        attention = next(c for c in failing if c.module == "encoder.layer.0.attention")
        assert attention.message() == (
            "bert / encoder.layer.0.attention: 105 mJ > base 100 mJ + 5.0% tolerance (+5.1%)"
        )


def test_step_summary_appends(tmp_path: Path) -> None:
    target = tmp_path / "summary.md"
    target.write_text("before\n")
    assert append_step_summary("## diff", {"GITHUB_STEP_SUMMARY": str(target)}) == target
    assert target.read_text() == "before\n## diff\n"
    assert append_step_summary("## diff", {}) is None


def test_report_round_trip_is_atomic_and_versioned(tmp_path: Path) -> None:
    check = Check("bert", "pooler", "pooler", 0.05, 0.04)
    report = _report(
        ModelResult("bert", small_bert(), nodeid="x::bert", checks=[check], warnings=["w"])
    )
    path = write_report(report, tmp_path / "out" / "head.json")
    assert [p.name for p in path.parent.iterdir()] == ["head.json"]  # no temp file left behind
    data = json.loads(path.read_text())
    assert data["schema"] == REPORT_SCHEMA
    assert data["passed"] is False
    assert set(data["versions"]) >= {"python", "pytest-irene", "torch", "transformers"}
    loaded = load_report(path)
    assert loaded.models[0].checks == [check]
    assert loaded.models[0].tree.to_dict() == small_bert().to_dict()
    assert loaded.models[0].warnings == ["w"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"schema": "irene-report/0"}', "schema 'irene-report/0' is not supported"),
        ('{\n  "schema": \n', "head.json:3: not a JSON energy report"),
        ("[]", "expected a JSON object"),
        (
            '{"schema": "irene-report/1", "versions": []}',
            "head.json: invalid energy report: versions: expected an object, got an array",
        ),
        (
            '{"schema": "irene-report/1", "models": [{"name": "bert"}]}',
            "head.json: invalid energy report: models[0].tree: missing (expected an object)",
        ),
        (
            '{"schema": "irene-report/1", "models": [{"name": "bert", "tree": {}}]}',
            "head.json: invalid energy report: models[0].tree: not an energy tree",
        ),
        ('{"schema": "irene-report/1", "models": {}}', "models: expected an array, got an object"),
    ],
)
def test_bad_reports_are_config_errors(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "head.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_report(path)


def test_cli_diff_markdown_and_step_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, head = _head_tree()
    write_report(_report(ModelResult("bert", base)), tmp_path / "base.json")  # type: ignore[arg-type]
    write_report(_report(ModelResult("bert", head)), tmp_path / "head.json")  # type: ignore[arg-type]
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    rc = main(
        ["diff", str(tmp_path / "base.json"), str(tmp_path / "head.json"), "--format", "markdown"]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith(COMMENT_MARKER)
    assert "| bert | 290 mJ | 319 mJ | +29.0 mJ (+10.0%) |" in out
    assert summary.read_text() == out

    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    rc = main(
        [
            "diff",
            str(tmp_path / "base.json"),
            str(tmp_path / "head.json"),
            "-o",
            str(tmp_path / "d.txt"),
        ]
    )
    assert rc == 0
    lines = (tmp_path / "d.txt").read_text().splitlines()
    assert lines[0].startswith("verdict: passed")
    assert ["model", "base", "head", "change"] in [line.split() for line in lines]


def test_cli_diff_missing_report_exits_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["diff", str(tmp_path / "nope.json"), str(tmp_path / "nope.json")])
    assert rc == 4
    assert "energy report not found" in capsys.readouterr().err


def test_cli_diff_io_errors_are_one_line_with_exit_9(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An output that cannot be written: one line naming the file, exit 9; a step summary that
    cannot be appended to: a warning, and the diff still succeeds."""
    write_report(_report(ModelResult("bert", small_bert())), tmp_path / "r.json")
    blocker = tmp_path / "file"
    blocker.write_text("")
    target = blocker / "x.md"  # a path under a regular file can never be created
    rc = main(["diff", str(tmp_path / "r.json"), str(tmp_path / "r.json"), "-o", str(target)])
    err = capsys.readouterr().err
    assert rc == 9
    assert err.startswith(f"irene diff: error: cannot write {target}: ")
    assert len(err.splitlines()) == 1
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "nonexistent" / "s.md"))
    rc = main(["diff", str(tmp_path / "r.json"), str(tmp_path / "r.json")])
    captured = capsys.readouterr()
    assert rc == 0
    assert "| bert |" not in captured.err and "bert" in captured.out
    assert captured.err.startswith(
        f"irene diff: warning: cannot append to $GITHUB_STEP_SUMMARY {tmp_path}/nonexistent/s.md: "
    )


def test_written_files_get_the_umask_mode(tmp_path: Path) -> None:
    import os

    from predictor.files import write_text_atomic

    old = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "r.md", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_cli_diff_malformed_report_is_one_line_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "irene-report/1", "models": [{"name": "m"}]}')
    rc = main(["diff", str(bad), str(bad)])
    err = capsys.readouterr().err
    assert rc == 4
    assert err == (
        f"irene diff: error: {bad}: invalid energy report: models[0].tree: missing "
        "(expected an object)\n"
    )


def test_markdown_lists_head_models_unsupported_ops() -> None:
    from predictor.trace.tree import UnsupportedOp

    head = small_bert()
    head.unsupported_ops = [UnsupportedOp("fft_fft", "encoder", 2)]
    markdown = render_markdown(
        diff_reports(_report(ModelResult("bert", small_bert())), _report(ModelResult("bert", head)))
    )
    assert "- bert: fft\\_fft x2 in encoder" in markdown


def test_dataset_csv_files_get_the_umask_mode(tmp_path: Path) -> None:
    """predictor.learn.data's atomic CSV writer, like write_text_atomic: not mkstemp's 0600."""
    import os

    from predictor.learn.data import _atomic_write_csv

    old = os.umask(0o022)
    try:
        _atomic_write_csv(tmp_path / "a.csv", [["x"], ["1"]])
    finally:
        os.umask(old)
    assert (tmp_path / "a.csv").stat().st_mode & 0o777 == 0o644
