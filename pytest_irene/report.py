"""What the gate shows and writes: the terminal summary (rich), the JSON report, Markdown."""

from __future__ import annotations

import io
from typing import Any

import pytest

from predictor.errors import IreneError
from predictor.gate.budgets import format_energy, module_nodes
from predictor.gate.engine import EnergyGate
from predictor.gate.report import ModelResult, Report, write_report, write_text_atomic
from predictor.trace.tree import Node

__all__ = [
    "hottest_modules",
    "name_collisions",
    "render_summary_markdown",
    "start_line",
    "unsupported_text",
    "write_files",
    "write_terminal_summary",
]


def hottest_modules(result: ModelResult, top: int = 3) -> list[Node]:
    """The most expensive innermost modules (modules without module children)."""
    innermost = [
        n
        for n in module_nodes(result.tree).values()
        if n.level == "module"
        and n.energy_j is not None
        and not any(c.level == "module" for c in n.children)
    ]
    if not innermost:
        innermost = [n for n in module_nodes(result.tree).values() if n.energy_j is not None]
    return sorted(innermost, key=lambda n: -(n.energy_j or 0.0))[:top]


def unsupported_text(result: ModelResult) -> str | None:
    """``fft_fft x1 in encoder.fft, ...`` (see :func:`predictor.gate.diff.unsupported_ops_text`)."""
    from predictor.gate.diff import unsupported_ops_text

    return unsupported_ops_text(result.tree)


def name_collisions(results: list[ModelResult]) -> list[str]:
    """One warning per name that several tests used, with the same inputs, for models that
    predict differently: reports keep them apart by test, but the name no longer says which
    is which, and a renamed test loses its comparison."""
    groups: dict[tuple[str, str | None], list[ModelResult]] = {}
    for r in results:
        groups.setdefault((r.name, r.inputs), []).append(r)
    out = []
    for (name, inputs), members in groups.items():
        tests = sorted({m.nodeid or "?" for m in members})
        if len(tests) > 1 and len({m.energy_j for m in members}) > 1:
            out.append(
                f"name {name!r} names different models with the same inputs "
                f"({inputs or 'none recorded'}) in {', '.join(tests)}; give each its own "
                "name= (e.g. name=f'" + name + "-{param}')"
            )
    return out


def _labels(results: list[ModelResult]) -> list[str]:
    """Each result's name, with its inputs where one name was predicted with several."""
    inputs: dict[str, set[str | None]] = {}
    for r in results:
        inputs.setdefault(r.name, set()).add(r.inputs)
    return [
        f"{r.name} ({r.inputs or 'no inputs'})" if len(inputs[r.name]) > 1 else r.name
        for r in results
    ]


def _extrapolated(result: ModelResult) -> list[Node]:
    return [n for n in result.tree.walk() if n.extrapolated]


def _status(result: ModelResult) -> tuple[str, str]:
    if not result.checks:
        return "no budget", "dim"
    bad = len(result.violations)
    if bad:
        return f"FAILED {bad}/{len(result.checks)}", "bold red"
    return f"ok {len(result.checks)}/{len(result.checks)}", "green"


def write_terminal_summary(terminalreporter: Any, gate: EnergyGate) -> None:
    """A table per run: model, predicted total, budget status, hottest modules, extrapolation.

    Only writes; the run's outcome is decided by the test items, never here."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    profile = getattr(gate.profile, "name", "?")
    terminalreporter.write_sep("=", f"energy (IrEne prediction, profile {profile})")
    if not gate.results:
        terminalreporter.write_line("no model was predicted")
    table = Table(box=None, pad_edge=False, show_edge=False)
    table.add_column("model")
    table.add_column("energy", justify="right")
    table.add_column("budgets")
    table.add_column("extrapolated nodes", justify="right")
    labels = _labels(gate.results)
    for result, label in zip(gate.results, labels, strict=True):
        status, style = _status(result)
        total = format_energy(result.energy_j) if result.energy_j is not None else "—"
        n_extra = len(_extrapolated(result))
        table.add_row(  # Text: names and fqns are never read as rich markup ("MLP[test]")
            Text(label),
            total,
            Text(status, style=style),
            Text(str(n_extra), style="yellow" if n_extra else ""),
        )
    width = terminalreporter.config.get_terminal_writer().fullwidth
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=max(width, 60),
        force_terminal=bool(terminalreporter.hasmarkup),
        no_color=not terminalreporter.hasmarkup,
        highlight=False,
    )
    if gate.results:
        console.print(table)

    # Messages stay on one line each: CI logs are grepped for them.
    def say(text: str, style: str = "") -> None:
        console.print(Text(text, style=style), soft_wrap=True)

    for result, label in zip(gate.results, labels, strict=True):
        hot = ", ".join(
            f"{n.fqn} {format_energy(n.energy_j or 0.0)}" for n in hottest_modules(result)
        )
        if hot:
            say(f"{label} hottest modules: {hot}")
    for result, label in zip(gate.results, labels, strict=True):
        extrapolated = _extrapolated(result)
        if extrapolated:
            types = sorted({n.type for n in extrapolated})
            say(
                f"{label}: {len(extrapolated)} node(s) extrapolated by the fallback "
                f"regressor (types the profile never saw: {', '.join(types)})",
                "yellow",
            )
        unsupported = unsupported_text(result)
        if unsupported:
            say(f"{label}: unsupported ops (not counted): {unsupported}", "yellow")
        for check in result.violations:
            say(check.message(), "red")
    for warning in (w for r in gate.results for w in r.warnings):
        say(f"warning: {warning}", "yellow")
    for warning in name_collisions(gate.results):
        say(f"warning: {warning}", "yellow")
    predicted = {r.name for r in gate.results} | {r.entry for r in gate.results if r.entry}
    for name, entry in gate.budgets.models.items():
        if not entry.collected and name not in predicted:
            say(
                f"note: no test handed {name!r} to the `energy` fixture, so its budgets in "
                f"{gate.budgets.path} were not checked"
            )
    ran = gate.entries_run | {r.name for r in gate.results if r.source == "budgets"}
    skipped = [e.name for e in gate.budgets.models.values() if e.collected and e.name not in ran]
    if skipped:
        file = gate.budgets.path
        say(
            f"note: {len(skipped)} model(s) of {file} were not run ({', '.join(skipped)}): "
            f"the gate runs them when no paths are given, or name the file: "
            f"pytest --energy {file} ... (or --energy-budgets {file})"
        )
    if gate.metering is not None:
        for line in gate.metering.status_lines():
            say(f"meter {line}")
    terminalreporter.write(buffer.getvalue())


def render_summary_markdown(report: Report) -> str:
    """A Markdown summary of one run: totals, budget status, every violation."""
    lines = [
        "## Energy gate (IrEne prediction)",
        "",
        f"Profile: `{report.profile.get('name')}`",
        "",
        "| Model | Energy | Budgets |",
        "|---|---:|---|",
    ]
    for m in report.models:
        status = (
            "no budget"
            if not m.checks
            else ("❌ " if m.violations else "✅ ")
            + (f"{len(m.checks) - len(m.violations)}/{len(m.checks)} within")
        )
        total = format_energy(m.energy_j) if m.energy_j is not None else "—"
        lines.append(f"| {m.name} | {total} | {status} |")
    violations = [c.message() for m in report.models for c in m.violations]
    if violations:
        lines += ["", "**Over budget:**", "", *(f"- `{v}`" for v in violations)]
    unsupported = [(m.name, unsupported_text(m)) for m in report.models]
    if any(text for _, text in unsupported):
        lines += ["", "**Unsupported ops (not counted in the prediction):**", ""]
        lines += [f"- {name}: {text}" for name, text in unsupported if text]
    if report.warnings:
        lines += ["", "**Warnings:**", "", *(f"- {w}" for w in report.warnings)]
    return "\n".join(lines) + "\n"


def start_line(reporter: Any, config: pytest.Config) -> None:
    """End the progress line (``....  [100%]``, also with -q) so the next write starts anew."""
    reporter.ensure_newline()
    if config.get_terminal_writer().width_of_current_line:
        reporter.write("\n")


def write_files(config: pytest.Config, gate: EnergyGate) -> str | None:
    """Write the JSON report and the Markdown summary (controller only, once per run).

    Returns None, or the message of a file that could not be written (the plugin reports it
    and ends the run with a usage error); each written file gets its own line."""
    settings = gate.settings
    if settings.report is None and settings.markdown is None:
        return None
    report = gate.report()
    written: list[str] = []
    try:
        if settings.report is not None:
            path = write_report(report, settings.report)
            written.append(f"energy JSON report written to {path}")
        if settings.markdown is not None:
            if gate.base is not None:
                from predictor.gate.diff import diff_reports, render_markdown

                text = render_markdown(diff_reports(gate.base, report))
                what = "energy Markdown diff"
            else:
                text = render_summary_markdown(report)
                what = "energy Markdown summary"
            written.append(f"{what} written to {write_text_atomic(settings.markdown, text)}")
    except IreneError as exc:
        error: str | None = str(exc)
    else:
        error = None
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        start_line(reporter, config)
        for line in written:
            reporter.write_line(line)
    return error
