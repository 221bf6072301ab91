"""The README's examples run as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = "examples/test_custom_model.py"


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_custom_model_example_passes_with_energy() -> None:
    done = _pytest("--energy", EXAMPLE)
    assert done.returncode == pytest.ExitCode.OK, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout
    assert "two-layer-mlp" in done.stdout and "tiny-bert-64" in done.stdout


def test_custom_model_example_is_skipped_without_energy() -> None:
    done = _pytest(EXAMPLE)
    assert done.returncode == pytest.ExitCode.OK, done.stdout[-3000:]
    assert "2 skipped" in done.stdout
    assert "run pytest with --energy" in done.stdout
