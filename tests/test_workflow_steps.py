"""The energy-gate workflow's steps, run here as GitHub would run them.

A throwaway git repository stands for a pull request: a base commit and a head commit. The
gate job's ``run:`` steps are taken from ``.github/workflows/energy-gate.yml`` as written and
run in order with bash (GitHub's ``bash -e {0}``), with the variables and step environment a
runner gives them; ``uses:`` steps and the install (done here already) are left out. Every
step after the head's has ``if: ${{ !cancelled() }}``, so on GitHub they run after a failed
step just as here. Checked: each failure path fails in the step that has the cause and leaves
a comment that says what is wrong, and a run that reaches a verdict leaves the verdict first.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "energy-gate.yml"

GOOD = """# budgets reviewed by the team
version: 1
models:
  tiny-bert:
    model: "examples.tiny_models:tiny_bert"
    inputs: {batch_size: 2, seq_len: 16}
    budget: 1 J
    modules:
      "encoder.layer.*": 100 J
"""
OVER = GOOD.replace("budget: 1 J", "budget: 1 mJ")
INVALID = GOOD.replace("budget: 1 J", "budget: fast")


def _gate_steps() -> list[dict[str, Any]]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    steps: list[dict[str, Any]] = data["jobs"]["gate"]["steps"]
    return steps


def test_every_step_after_the_head_runs_unless_cancelled() -> None:
    """So the failure paths still reach the comment and the artifact upload."""
    steps = _gate_steps()
    head = next(i for i, s in enumerate(steps) if s.get("name") == "Gate on the head")
    assert "if" not in steps[head] and "continue-on-error" not in steps[head]
    for step in steps[head + 1 :]:
        assert step.get("if") == "${{ !cancelled() }}", step.get("name") or step.get("uses")


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def _pull_request(tmp_path: Path, base: str | None, head: str) -> tuple[Path, str, str]:
    """A repository whose base commit holds budgets ``base`` (None: no budgets file) and whose
    head commit holds ``head``; returns (checkout, base sha, head sha)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "ci@example.invalid")
    _git(repo, "config", "user.name", "ci")
    shutil.copytree(
        REPO_ROOT / "examples", repo / "examples", ignore=shutil.ignore_patterns("__pycache__")
    )
    (repo / ".gitignore").write_text("energy-gate/\n__pycache__/\n")
    if base is not None:
        (repo / "energy_budgets.yaml").write_text(base)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    base_sha = _git(repo, "rev-parse", "HEAD")
    (repo / "energy_budgets.yaml").write_text(head)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "head")
    return repo, base_sha, _git(repo, "rev-parse", "HEAD")


_EXPRESSIONS = {
    "${{ github.event.pull_request.number }}": "7",
}


def _run_steps(
    tmp_path: Path, repo: Path, base_sha: str, head_sha: str
) -> list[tuple[str, int, str]]:
    """Run the gate job's run-steps; returns (step name, exit status, output) for each."""
    runner = tmp_path / "runner"
    runner.mkdir()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "PYTEST_", "RUNNER_"))
    }
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        GITHUB_ACTIONS="true",
        GITHUB_WORKSPACE=str(repo),
        GITHUB_OUTPUT=str(runner / "output"),
        GITHUB_STEP_SUMMARY=str(runner / "summary.md"),
        RUNNER_TEMP=str(runner),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    expressions = {
        **_EXPRESSIONS,
        "${{ github.event.pull_request.base.sha }}": base_sha,
        "${{ github.event.pull_request.head.sha }}": head_sha,
    }
    results = []
    for step in _gate_steps():
        script = step.get("run")
        if script is None or "pip install" in script:
            continue  # actions, and the install (this environment has it)
        step_env = {**env, **{k: expressions[v] for k, v in step.get("env", {}).items()}}
        assert "${{" not in script  # expressions only through env: (no template injection)
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script],
            cwd=repo,
            env=step_env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        results.append((str(step["name"]), done.returncode, done.stdout + done.stderr))
    return results


def _by_name(results: list[tuple[str, int, str]]) -> dict[str, tuple[int, str]]:
    return {name: (code, out) for name, code, out in results}


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_invalid_budgets_on_the_head_fail_in_the_head_step_and_say_why(tmp_path: Path) -> None:
    repo, base, head = _pull_request(tmp_path, GOOD, INVALID)
    steps = _by_name(_run_steps(tmp_path, repo, base, head))
    code, out = steps["Gate on the head"]
    assert code == 4, out  # the configuration error's exit status, in the step that has it
    assert "::error::energy gate: no report on the head (exit 4)" in out
    assert all(c == 0 for name, (c, _) in steps.items() if name != "Gate on the head"), steps
    comment = (repo / "energy-gate" / "comment.md").read_text()
    assert comment.startswith("<!-- irene-energy-diff -->\n")
    assert "### ❌ Energy gate: no verdict" in comment
    assert "The gate could not run on the head: pytest --energy exited 4" in comment
    # the cause, with its file and line, from the log
    assert re.search(r"energy\\_budgets\.yaml:7|energy_budgets\.yaml:7", comment), comment
    assert "must be an energy like" in comment
    assert (repo / "energy-gate" / "pr-number").read_text() == "7\n"
    assert "no verdict" in (tmp_path / "runner" / "summary.md").read_text()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_no_base_report_fails_in_the_base_step_and_says_why(tmp_path: Path) -> None:
    repo, base, head = _pull_request(tmp_path, INVALID, GOOD)  # the base's gate cannot run
    steps = _by_name(_run_steps(tmp_path, repo, base, head))
    assert steps["Gate on the head"][0] == 0
    code, out = steps["Gate on the merge base"]
    assert code == 1, out
    assert "::error::energy gate: the merge base wrote no report (exit 4)" in out
    assert steps["Energy diff (also appended to the job summary)"][0] == 0
    comment = (repo / "energy-gate" / "comment.md").read_text()
    assert "No base report: the gate on the merge base " + base[:12] in comment
    assert "must be an energy like" in comment  # the base log's tail
    assert not (repo / "energy-gate" / "base.json").exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_over_budget_head_fails_with_the_verdict_first_and_annotations(tmp_path: Path) -> None:
    repo, base, head = _pull_request(tmp_path, None, OVER)  # a base without budgets: all new
    steps = _by_name(_run_steps(tmp_path, repo, base, head))
    code, out = steps["Gate on the head"]
    assert code == 1, out
    # the violation is an annotation at the budget's line of the budgets file
    assert re.search(
        r"^::error file=energy_budgets\.yaml,line=7,title=energy over budget::tiny-bert: ",
        out,
        re.M,
    ), out
    assert (
        "::notice::the merge base has no energy_budgets.yaml" in steps["Gate on the merge base"][1]
    )
    assert steps["Energy diff (also appended to the job summary)"][0] == 0
    comment = (repo / "energy-gate" / "comment.md").read_text()
    lines = comment.splitlines()
    assert lines[:4] == [
        "<!-- irene-energy-diff -->",
        "## Energy diff (IrEne prediction)",
        "",
        "### ❌ Energy gate failed: 1 of 1 models over a limit",
    ]
    assert "**Violations (1):**" in comment and "| tiny-bert | — |" in comment
    assert (repo / "energy-gate" / "energy.html").is_file()
