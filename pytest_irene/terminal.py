"""The gate's terminal output under pytest: the summary section and the files written."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pytest

from predictor.gate.engine import EnergyGate

__all__ = ["say_lines", "start_line", "write_terminal_summary"]


def write_terminal_summary(terminalreporter: Any, gate: EnergyGate) -> None:
    """The gate's section: the summary every gate run prints
    (:func:`predictor.gate.summary.print_summary`), plus a note on budgets-file models that
    this pytest run did not collect. Only writes; the run's outcome is decided by the test
    items, never here."""
    from rich.console import Console

    from predictor.gate.summary import print_summary

    terminalreporter.write_sep("=", f"energy (IrEne prediction, profile {gate.profile.name})")
    width = terminalreporter.config.get_terminal_writer().fullwidth
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=max(width, 60),
        force_terminal=bool(terminalreporter.hasmarkup),
        no_color=not terminalreporter.hasmarkup,
        highlight=False,
    )
    extra: list[tuple[str, str]] = []
    ran = gate.entries_run
    skipped = [e.name for e in gate.budgets.models.values() if e.collected and e.name not in ran]
    if skipped:
        file = gate.budgets.path
        extra.append(
            (
                f"note: {len(skipped)} model(s) of {file} were not run ({', '.join(skipped)}): "
                f"the gate runs them when no paths are given, or name the file: "
                f"pytest --energy {file} ... (or --energy-budgets {file})",
                "",
            )
        )
    print_summary(console, gate, extra, list_violations=False)
    terminalreporter.write(buffer.getvalue())
    from predictor.gate.annotations import github_annotations, in_github_actions

    if in_github_actions():  # each violation at its budgets-file line in the pull request
        path = str(gate.budgets.path) if gate.budgets.path is not None else None
        root = terminalreporter.config.rootpath
        for line in github_annotations(gate.results, path, errors=gate.config_errors, root=root):
            terminalreporter.write_line(line)


def start_line(reporter: Any, config: pytest.Config) -> None:
    """End the progress line (``....  [100%]``, also with -q) so the next write starts anew."""
    reporter.ensure_newline()
    if config.get_terminal_writer().width_of_current_line:
        reporter.write("\n")


def say_lines(reporter: Any, config: pytest.Config, lines: Sequence[str]) -> None:
    """Write each line on its own line, after the progress line."""
    if reporter is None or not lines:
        return
    start_line(reporter, config)
    for line in lines:
        reporter.write_line(line)
