"""The CI workflows: valid against GitHub's schema, clean under zizmor, pinned, least privilege."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from predictor.gate.diff import COMMENT_MARKER

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))


def _load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _steps(data: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in data["jobs"].values() for step in job.get("steps", [])]


def test_there_are_test_and_gate_workflows() -> None:
    assert {p.name for p in FILES} >= {"tests.yml", "energy-gate.yml"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actions_pinned_by_full_sha_and_checkout_drops_credentials(path: Path) -> None:
    for step in _steps(_load(path)):
        uses = step.get("uses")
        if uses is None:
            continue
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), uses
        if uses.startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_least_privilege(path: Path) -> None:
    data = _load(path)
    assert data["permissions"] in ({}, {"contents": "read"})
    for name, job in data["jobs"].items():
        for scope, level in job.get("permissions", {}).items():
            allowed = {("contents", "read"), ("pull-requests", "write"), ("actions", "read")}
            assert (scope, level) in allowed, (name, scope, level)
            if scope == "pull-requests":
                assert "checkout" not in str(job.get("steps")), (
                    "the writing job must not run PR code"
                )


def test_the_comment_workflow_posts_the_gate_artifact_for_forks_too() -> None:
    comment = _load(WORKFLOWS / "energy-comment.yml")
    # `on:` is read by PyYAML as True
    trigger = comment[True]["workflow_run"]
    assert trigger == {"workflows": ["energy gate"], "types": ["completed"]}
    (job,) = comment["jobs"].values()
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    script = next(s["with"]["script"] for s in job["steps"] if "github-script" in s.get("uses", ""))
    assert f"'{COMMENT_MARKER}'" in script
    assert "updateComment" in script and "createComment" in script
    assert "${{" not in script  # nothing interpolated into the script (template injection)
    # the number comes from the pull request's artifact: validated, and tied to the run's head
    assert "/^[0-9]{1,10}$/.test(number)" in script
    assert "pr.head.sha !== context.payload.workflow_run.head_sha" in script
    gate = _load(WORKFLOWS / "energy-gate.yml")
    assert gate["permissions"] == {}
    assert all(set(j.get("permissions", {}).values()) <= {"read"} for j in gate["jobs"].values())
    upload = next(s for s in _steps(gate) if "upload-artifact" in s.get("uses", ""))
    assert upload["with"]["name"] == "energy-gate"


def test_one_install_and_pip_caching() -> None:
    for path in FILES:
        data = _load(path)
        for job in data["jobs"].values():
            steps = job.get("steps", [])
            installs = [s for s in steps if "pip install" in str(s.get("run", ""))]
            assert len(installs) <= 1, (path.name, installs)
            for step in steps:
                if "setup-python" in step.get("uses", ""):
                    assert step["with"]["cache"] == "pip", path.name
    tests = _load(WORKFLOWS / "tests.yml")
    assert tests["jobs"]["test"]["strategy"]["matrix"]["python"] == ["3.11", "3.12", "3.13"]


@pytest.mark.parametrize(
    "command",
    [
        ["check-jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, FILES)],
        ["zizmor", "--offline", str(WORKFLOWS)],
    ],
    ids=["check-jsonschema", "zizmor"],
)
def test_validators_pass(command: list[str]) -> None:
    # Next to this interpreter (a venv that is not activated), else on PATH.
    exe = shutil.which(command[0], path=str(Path(sys.executable).parent)) or shutil.which(
        command[0]
    )
    if exe is None:
        pytest.skip(f"{command[0]} not installed (pip install -e .[dev])")
    done = subprocess.run(
        [exe, *command[1:]], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
