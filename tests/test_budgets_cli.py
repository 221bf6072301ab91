"""`irene budgets init|check`: budgets from predictions, and the gate without pytest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from predictor.cli.main import main
from predictor.gate.budgets import load_budgets
from predictor.gate.checks import module_nodes
from predictor.gate.units import format_budget
from predictor.trace.tree import EnergyTree

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_BERT = "examples.tiny_models:tiny_bert"


@pytest.fixture(scope="module")
def tiny_bert_tree() -> EnergyTree:
    from predictor.learn.profile import load_profile, profile_counting
    from predictor.trace.zoo import build_zoo_tree

    profile = load_profile(None)
    return profile.predict(
        build_zoo_tree(TINY_BERT, 2, 16, counting_mode=profile_counting(profile))
    )


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)  # the example factories import from here


def _init(out: Path, *extra: str) -> int:
    return main(
        [
            "budgets",
            "init",
            TINY_BERT,
            "--batch-size",
            "2",
            "--seq-len",
            "16",
            "-o",
            str(out),
            *extra,
        ]
    )


def test_init_writes_budgets_with_headroom(
    tmp_path: Path, tiny_bert_tree: EnergyTree, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "energy_budgets.yaml"
    assert _init(out, "--headroom", "20%", "--module", "encoder.layer.*.attention") == 0
    assert "wrote" in capsys.readouterr().out
    budgets = load_budgets(out)
    entry = budgets.models[TINY_BERT]
    assert entry.inputs is not None and (entry.inputs.batch_size, entry.inputs.seq_len) == (2, 16)
    total = tiny_bert_tree.root.energy_j
    assert total is not None
    assert f"budget: {format_budget(total * 1.2)}" in out.read_text()
    modules = {m.pattern: m.budget_j for m in entry.modules}
    layers = module_nodes(tiny_bert_tree)
    attention = max(layers[f"encoder.layer.{i}.attention"].energy_j or 0.0 for i in range(2))
    assert modules["encoder.layer.*.attention"] == pytest.approx(attention * 1.2, rel=1e-2)
    assert modules["encoder.layer.*.attention"] >= attention * 1.2
    assert {"embeddings", "encoder", "encoder.layer.*"} <= set(modules)


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "energy_budgets.yaml"
    out.write_text("mine\n")
    assert _init(out) == 4
    assert "exists; pass --force" in capsys.readouterr().err
    assert out.read_text() == "mine\n"
    assert _init(out, "--force") == 0
    assert load_budgets(out).models


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--headroom", "ten"], 4, "percentage like '5%'"),
        (["--seq-len", "0"], 4, "--seq-len: must be a positive integer (got '0')"),
    ],
)
def test_init_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, fragment: str
) -> None:
    try:
        rc = _init(tmp_path / "b.yaml", *args)
    except SystemExit as exc:  # a usage error found by argparse
        rc = int(exc.code or 0)
    assert rc == code
    assert fragment in capsys.readouterr().err


def test_init_unknown_model_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["budgets", "init", "no-such-model", "-o", str(tmp_path / "b.yaml")])
    assert rc == 3
    assert "no-such-model" in capsys.readouterr().err


@pytest.mark.parametrize(("factor", "code"), [(1.001, 0), (0.999, 1)], ids=["under", "over"])
def test_check_runs_the_gate_without_pytest(
    tmp_path: Path,
    tiny_bert_tree: EnergyTree,
    capsys: pytest.CaptureFixture[str],
    factor: float,
    code: int,
) -> None:
    total = tiny_bert_tree.root.energy_j
    assert total is not None
    path = tmp_path / "energy_budgets.yaml"
    path.write_text(
        "version: 1\nmodels:\n  tiny:\n"
        f"    model: {TINY_BERT}\n    inputs: {{batch_size: 2, seq_len: 16}}\n"
        f"    budget: {total * factor:.12g} J\n"
    )
    report = tmp_path / "r.json"
    assert main(["budgets", "check", str(path), "--report", str(report)]) == code
    out = capsys.readouterr().out
    if code:
        assert "budget (+0.1%)" in out and "1 of 1 check failed" in out
    data = json.loads(report.read_text())
    assert data["models"][0]["energy_j"] == pytest.approx(total)
    assert data["passed"] is (code == 0)


def test_check_bad_file_exits_4_with_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "energy_budgets.yaml"
    path.write_text("version: 1\nmodels:\n  a:\n    budget: 1 furlong\n")
    assert main(["budgets", "check", str(path)]) == 4
    assert f"{path}:4: model 'a': budget unknown energy unit 'furlong'" in capsys.readouterr().err


def test_repo_budgets_file_parses() -> None:
    budgets = load_budgets(REPO_ROOT / "energy_budgets.yaml")
    assert budgets.models and all(m.collected for m in budgets.models.values())


def test_check_resolves_factories_and_profile_from_the_files_folder(
    tmp_path: Path, tiny_bert_tree: EnergyTree, capsys: pytest.CaptureFixture[str]
) -> None:
    """A factory module and a profile file beside the budgets file, checked from elsewhere:
    both resolve from the file's folder, as in the pytest gate."""
    import shutil

    from predictor.learn.profile import load_profile

    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "ha_local_factories.py").write_text(
        "from examples.tiny_models import tiny_bert as make\n"
    )
    shipped = load_profile(None).path
    assert shipped is not None
    shutil.copy(shipped, sub / "mine.irene.joblib")
    path = sub / "s.yaml"
    path.write_text(
        "version: 1\nprofile: mine.irene.joblib\nmodels:\n  tiny:\n"
        "    model: ha_local_factories:make\n    inputs: {batch_size: 2, seq_len: 16}\n"
        "    budget: 1 kJ\n"
    )
    report = tmp_path / "r.json"
    assert main(["budgets", "check", str(path), "--report", str(report)]) == 0, (
        capsys.readouterr().err
    )
    data = json.loads(report.read_text())
    assert data["profile"]["path"] == str((sub / "mine.irene.joblib").resolve())
    assert data["models"][0]["energy_j"] == pytest.approx(tiny_bert_tree.root.energy_j)


def test_init_rejects_duplicate_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b.yaml"
    rc = main(
        ["budgets", "init", f"a={TINY_BERT}", "a=examples.tiny_models:tiny_gpt2", "-o", str(out)]
    )
    assert rc == 4
    assert "two models named 'a'" in capsys.readouterr().err
    assert not out.exists()


def test_check_counts_failed_checks_and_names_the_cli_argument(
    tmp_path: Path, tiny_bert_tree: EnergyTree, capsys: pytest.CaptureFixture[str]
) -> None:
    total = tiny_bert_tree.root.energy_j
    assert total is not None
    path = tmp_path / "energy_budgets.yaml"
    path.write_text(
        "version: 1\nmodels:\n  tiny:\n"
        f"    model: {TINY_BERT}\n    inputs: {{batch_size: 2, seq_len: 16}}\n"
        f"    budget: {total / 2:.12g} J\n    modules:\n      'encoder.layer.*': 1 kJ\n"
    )
    assert main(["budgets", "check", str(path)]) == 1
    assert "1 of 3 checks failed" in capsys.readouterr().out
    missing = tmp_path / "nope.yaml"
    assert main(["budgets", "check", str(missing)]) == 4
    err = capsys.readouterr().err
    assert "irene budgets check PATH" in err and "--energy-budgets" not in err


def test_check_formats_and_annotations_keep_stdout_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "energy_budgets.yaml"
    path.write_text(
        "version: 1\nmodels:\n  tiny:\n"
        f"    model: {TINY_BERT}\n    inputs: {{batch_size: 2, seq_len: 16}}\n    budget: 1 mJ\n"
    )
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert main(["budgets", "check", str(path), "--format", "json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["passed"] is False  # stdout holds the JSON alone
    assert f"::error file={path},line=6,title=energy over budget::tiny: " in captured.err
    assert main(["budgets", "check", str(path), "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("## Energy gate (IrEne prediction)\n\n### ❌ Energy gate failed")
    assert main(["budgets", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^tiny: \S+ \S+ > 1.00 mJ budget", out, re.M) and "::error file=" in out
