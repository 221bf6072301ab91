"""The README's walk from install to a failing budget and back, run as written.

Every ``bash`` block of the section "From install to a failing budget, and back" runs in a
folder holding the bundled examples, in order, with the edit the prose asks for between the
first two steps (``seq_len: 128``); a ``# passes (exit 0)`` / ``# fails (exit 1)`` comment
is the exit status the command must give, any other command must exit 0.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _blocks() -> list[list[tuple[str, int]]]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## From install to a failing budget, and back", 1)[1]
    section = section.split("### In your own tests", 1)[0]
    blocks = []
    for body in re.findall(r"```bash\n(.*?)```", section, re.S):
        joined = re.sub(r"\\\n\s*", "", body)
        commands = []
        for line in joined.splitlines():
            line = line.strip()
            if not line:
                continue
            expected = re.search(r"#.*\(exit (\d+)\)\s*$", line)
            command = line.split("  #", 1)[0].strip()
            commands.append((command, int(expected.group(1)) if expected else 0))
        blocks.append(commands)
    return blocks


def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / "examples", tmp_path / "examples")
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    env.pop("GITHUB_ACTIONS", None)
    blocks = _blocks()
    assert len(blocks) >= 5, blocks
    for i, block in enumerate(blocks):
        if i == 1:  # "Make the model costlier (set seq_len: 128 in my_budgets.yaml)"
            budgets = tmp_path / "my_budgets.yaml"
            budgets.write_text(budgets.read_text().replace("seq_len: 64", "seq_len: 128"))
        for command, expected in block:
            argv = command.split()
            argv = [a.strip('"') for a in argv]
            if argv[0] == "pytest":
                argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *argv[1:]]
            done = subprocess.run(
                argv,
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == expected, (command, done.stdout[-3000:], done.stderr[-2000:])
            if command.startswith("irene diff"):
                assert done.stdout.startswith("<!-- irene-energy-diff -->")
                assert "inputs differ for tiny-bert" in done.stdout
    text = (tmp_path / "my_budgets.yaml").read_text()
    assert "# Raise budgets with `pytest --energy --energy-update`" in text  # kept by the update
    assert "seq_len: 128" in text and "headroom: 10%" in text
    assert (tmp_path / "energy.html").read_text().startswith("<!DOCTYPE html>")
