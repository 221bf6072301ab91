"""GitHub Actions annotations: each violation as an ``::error`` at the budgets file's line.

A failed check of a budget in the budgets file points at the line of that budget
(``::error file=energy_budgets.yaml,line=22,title=energy over budget::tiny-bert / ...``), so
the pull request's "Files changed" view shows it where the budget is written; a marker's or a
comparison's violation points at the test file, or at nothing. Printed by the gate (pytest and
``irene budgets check``) when ``GITHUB_ACTIONS`` is ``true``, and by ``irene report REPORT.json
--format github``. Property values and messages are escaped as the workflow-command syntax
requires (``%``, CR, LF, and in properties ``:`` and ``,``), so a model name cannot end the
command or inject another.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from predictor.gate.checks import Check, ModelResult

__all__ = ["github_annotations", "in_github_actions"]


def in_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("GITHUB_ACTIONS") == "true"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _relative(path: str | None, root: Path) -> str | None:
    """``path`` relative to ``root`` (the repository checkout), as GitHub wants it."""
    if not path:
        return None
    p = Path(path)
    try:
        return (
            p.resolve().relative_to(root.resolve()).as_posix() if p.is_absolute() else p.as_posix()
        )
    except ValueError:
        return p.as_posix()


def _location(
    check: Check, result: ModelResult, budgets_file: str | None, root: Path
) -> dict[str, str]:
    if check.origin == "budgets" and budgets_file:
        where = {"file": _relative(budgets_file, root) or budgets_file}
        if check.line:
            where["line"] = str(check.line)
        return where
    nodeid = result.nodeid or ""
    test_file = nodeid.split("::", 1)[0]
    if test_file.endswith(".py"):
        return {"file": test_file}
    return {}


def github_annotations(
    results: Iterable[ModelResult],
    budgets_file: str | None,
    *,
    errors: Iterable[str] = (),
    root: Path | None = None,
) -> list[str]:
    """One ``::error`` line per violation of ``results`` (and per configuration error)."""
    root = root or Path.cwd()
    out: list[str] = []
    for result in results:
        for check in result.violations:
            props = _location(check, result, budgets_file, root)
            props["title"] = (
                "energy over the base report" if check.kind == "compare" else "energy over budget"
            )
            text = ",".join(f"{k}={_property(v)}" for k, v in props.items())
            out.append(f"::error {text}::{_data(check.message())}")
    for error in errors:
        out.append(f"::error title={_property('energy gate configuration error')}::{_data(error)}")
    return out
