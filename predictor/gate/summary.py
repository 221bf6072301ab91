"""What a gate run says: the summary table and messages (terminal) and the Markdown summary.

The pytest plugin's terminal summary and ``irene budgets check`` print the same table and the
same messages (:func:`print_summary`); ``--energy-markdown`` without a base report writes
:func:`render_summary_markdown`. Names and fqns are user strings: the terminal prints them as
rich ``Text`` (never markup).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from predictor.gate.checks import Check, ModelResult, worst
from predictor.gate.escape import md_code, md_text, printable
from predictor.gate.generation import generation_line, generation_summary, quantity_value
from predictor.gate.scope import energy_scope
from predictor.gate.units import format_energy, format_percent
from predictor.trace.tree import EnergyTree, Node

if TYPE_CHECKING:
    from predictor.gate.engine import EnergyGate
    from predictor.gate.report import Report

__all__ = [
    "check_status",
    "energy_cell",
    "hottest_nodes",
    "labels",
    "name_collisions",
    "own_energy",
    "picture_note",
    "prediction_notes",
    "print_summary",
    "render_report_text",
    "render_summary_markdown",
    "summary_messages",
    "unsupported_ops_text",
    "verdict_markdown",
    "violation_text",
    "worst_text",
]


def own_energy(node: Node) -> float:
    """A node's own energy: what it costs beyond its children (all of it for a primitive),
    joules, never negative."""
    if node.energy_j is None:
        return 0.0
    below = sum(c.energy_j or 0.0 for c in node.children)
    return max(0.0, node.energy_j - below)


def hottest_nodes(result: ModelResult, top: int = 3) -> list[tuple[Node, float]]:
    """The ``top`` nodes with the most own energy (:func:`own_energy`), over every node of
    the tree but the root: ML primitives (a Linear, a MatMul) and the modules' own ops alike,
    so the energy is named where it is spent. ``(node, own joules)``, largest first."""
    nodes = [(n, own_energy(n)) for n in result.tree.walk() if n is not result.tree.root]
    ranked = sorted((item for item in nodes if item[1] > 0), key=lambda item: -item[1])
    return ranked[:top]


def prediction_notes(tree: EnergyTree) -> list[str]:
    """What a prediction says of itself that its numbers do not: a dtype the profile was not
    trained on, and a generation's notes (kernels only, a decode sum whose bound assumes
    monotone steps)."""
    notes = [str(tree.meta["dtype_warning"])] if tree.meta.get("dtype_warning") else []
    summary = generation_summary(tree)
    if summary is not None:
        notes += [str(n) for n in summary.get("notes", ()) if n]
    return notes


def unsupported_ops_text(tree: EnergyTree) -> str | None:
    """``fft_fft x1 in encoder.fft, ...``: the ops the tracer has no formula for (their energy
    is not in the prediction), or None when there are none."""
    if not tree.unsupported_ops:
        return None
    return ", ".join(f"{u.op} x{u.count} in {u.module or '(root)'}" for u in tree.unsupported_ops)


def name_collisions(results: Sequence[ModelResult]) -> list[str]:
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


def labels(results: Sequence[ModelResult]) -> list[str]:
    """Each result's name, with its inputs where one name was predicted with several."""
    inputs: dict[str, set[str | None]] = {}
    for r in results:
        inputs.setdefault(r.name, set()).add(r.inputs)
    return [
        f"{r.name} ({r.inputs or 'no inputs'})" if len(inputs[r.name]) > 1 else r.name
        for r in results
    ]


def check_status(result: ModelResult) -> tuple[str, str]:
    """``("1 of 3 checks failed", "bold red")``: how many of the model's checks (budgets,
    markers, comparisons with the base report) failed or passed, with the rich style."""
    total = len(result.checks)
    if not total:
        return "no budget", "dim"
    bad = len(result.violations)
    noun = "check" if total == 1 else "checks"
    if bad:
        return f"{bad} of {total} {noun} failed", "bold red"
    return f"{total} of {total} {noun} passed", "green"


def worst_text(checks: Sequence[Check]) -> str | None:
    """``tiny-bert / encoder.layer.0 (+18.1%)``: the failed check furthest over its limit, or
    None when none failed."""
    bad = worst(checks)
    if bad is None:
        return None
    over = "no prediction" if bad.value_j is None else format_percent(bad.excess)
    return f"{bad.subject} ({over})"


def _extrapolated(result: ModelResult) -> list[Node]:
    return [n for n in result.tree.walk() if n.extrapolated]


def energy_cell(result: ModelResult) -> str:
    """A model's energy in one cell: the whole model (a forward pass), or for a generation
    its joules per output token and per request and per decode step (``—`` when unknown)."""
    per_token = quantity_value(result.tree, "per_token")
    if per_token is not None:
        per_request = quantity_value(result.tree, "per_request")
        step = format_energy(result.energy_j) if result.energy_j is not None else "?"
        request = format_energy(per_request) if per_request is not None else "?"
        return f"{format_energy(per_token)}/token, {request}/request ({step} kernels/decode step)"
    return format_energy(result.energy_j) if result.energy_j is not None else "—"


def summary_messages(gate: EnergyGate, *, list_violations: bool = True) -> list[tuple[str, str]]:
    """The messages under the table, each ``(text, rich style)`` and one line: what the
    joules describe, hottest nodes, extrapolated nodes, unsupported ops, every violation
    (unless ``list_violations`` is False: pytest lists them under each failing test, and a
    violation is printed once), warnings, and budgets of the file no model was checked
    against."""
    from predictor.gate.report import profile_identity

    results = gate.results
    names = labels(results)
    out: list[tuple[str, str]] = [
        (f"joules of {energy_scope(profile_identity(gate.profile)).line()}", "dim")
    ]
    for result, label in zip(results, names, strict=True):
        line = generation_line(result.tree)
        if line:
            out.append((f"{label} generation: {line}", ""))
    for result, label in zip(results, names, strict=True):
        hot = ", ".join(f"{n.name} {format_energy(e)}" for n, e in hottest_nodes(result))
        if hot:
            per_step = " per decode step" if generation_line(result.tree) else ""
            out.append((f"{label} hottest nodes (own energy{per_step}): {hot}", ""))
    for result, label in zip(results, names, strict=True):
        extrapolated = _extrapolated(result)
        if extrapolated:
            types = sorted({n.type for n in extrapolated})
            out.append(
                (
                    f"{label}: {100 * result.tree.extrapolated_share():.1f} % of the energy on "
                    f"{len(extrapolated)} node(s) extrapolated by the fallback regressor (kernel "
                    f"classes the profile has no training data for: {', '.join(types)})",
                    "yellow",
                )
            )
        unsupported = unsupported_ops_text(result.tree)
        if unsupported:
            out.append((f"{label}: unsupported ops (not counted): {unsupported}", "yellow"))
        out += [(f"{label}: note: {note}", "yellow") for note in prediction_notes(result.tree)]
        if list_violations:
            out += [(check.message(), "red") for check in result.violations]
    out += [(f"warning: {w}", "yellow") for r in results for w in r.warnings]
    out += [(f"warning: {w}", "yellow") for w in name_collisions(results)]
    predicted = {r.name for r in results} | {r.entry for r in results if r.entry}
    for name, entry in gate.budgets.models.items():
        if not entry.collected and name not in predicted:
            out.append(
                (
                    f"note: no test handed {name!r} to the `energy` fixture, so its budgets in "
                    f"{gate.budgets.path} were not checked",
                    "",
                )
            )
    if gate.metering is not None:
        out += [(f"meter {line}", "") for line in gate.metering.status_lines()]
    return out


def print_summary(
    console: Any,
    gate: EnergyGate,
    extra: Sequence[tuple[str, str]] = (),
    *,
    list_violations: bool = True,
) -> None:
    """Print the summary table (model, energy, checks, extrapolated nodes) and the messages (plus ``extra`` ones) on a rich ``console``."""
    from rich.table import Table
    from rich.text import Text

    results = gate.results
    if not results:
        console.print(Text("no model was predicted"))
    else:
        table = Table(box=None, pad_edge=False, show_edge=False)
        table.add_column("model")
        table.add_column("energy", justify="right")
        table.add_column("checks")
        table.add_column("extrapolated", justify="right")
        for result, label in zip(results, labels(results), strict=True):
            status, style = check_status(result)
            total = energy_cell(result)
            n_extra = len(_extrapolated(result))
            share = f"{100 * result.tree.extrapolated_share():.1f} % ({n_extra} nodes)"
            table.add_row(
                Text(printable(label)),
                total,
                Text(status, style=style),
                Text(share, style="yellow" if n_extra else ""),
            )
        console.print(table)
    for text, style in [*summary_messages(gate, list_violations=list_violations), *extra]:
        console.print(Text(printable(text), style=style), soft_wrap=True)


def picture_note(name: str, environ: Mapping[str, str] | None = None) -> str:
    """A Markdown line pointing at the HTML picture ``name``: in a GitHub Actions run, a link
    to the run's artifacts (where the workflow uploads it)."""
    env = os.environ if environ is None else environ
    text = f"Picture of the energy per module: {md_code(name)}"
    server, repo, run = (
        env.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    if server and repo and run:
        url = f"{server}/{repo}/actions/runs/{run}#artifacts"
        if re.fullmatch(
            r"https://[A-Za-z0-9.\-]+(:\d+)?/[\w.\-]+/[\w.\-]+/actions/runs/\d+#artifacts", url
        ):
            text += f", in [this run's artifacts]({url}) (download it and open it in a browser)"
    return text


def verdict_markdown(
    models: Sequence[ModelResult], errors: Sequence[str], *, labels_: Sequence[str] | None = None
) -> list[str]:
    """The verdict first: one line for the run, then one row per model (verdict, checks,
    worst violation) and every violation, escaped. Shared by the summary and the diff."""
    names = list(labels_) if labels_ is not None else labels(models)
    failed = [m for m in models if not m.passed]
    if errors:
        head = (
            f"### ❌ Energy gate: configuration error ({len(errors)}); not every model was checked"
        )
    elif failed:
        head = f"### ❌ Energy gate failed: {len(failed)} of {len(models)} models over a limit"
    elif models:
        head = (
            f"### ✅ Energy gate passed: {len(models)} of {len(models)} models within their limits"
        )
    else:
        head = "### Energy gate: no model was predicted"
    lines = [head, ""]
    if models:
        lines += ["| Model | Verdict | Checks | Worst violation |", "|---|---|---|---|"]
        for m, label in zip(models, names, strict=True):
            status, _ = check_status(m)
            verdict = "—" if not m.checks else ("❌ over" if m.violations else "✅ within")
            worst_cell = worst_text(m.checks)
            lines.append(
                f"| {md_text(label)} | {verdict} | {status} | "
                f"{md_code(worst_cell) if worst_cell else ''} |"
            )
        lines.append("")
    bad = [c.message() for m in models for c in m.violations]
    if bad:
        lines += [f"**Violations ({len(bad)}):**", "", *(f"- {md_code(v)}" for v in bad), ""]
    if errors:
        lines += ["**Configuration errors:**", "", *(f"- {md_code(e)}" for e in errors), ""]
    return lines


def render_summary_markdown(report: Report, *, picture: str | None = None) -> str:
    """A Markdown summary of one run: the verdict per model and every violation first, then
    energies, what the joules describe, unsupported ops and warnings."""
    scope = energy_scope(report.profile)
    lines = ["## Energy gate (IrEne prediction)", ""]
    lines += verdict_markdown(report.models, report.errors)
    lines += [f"Joules of {md_text(scope.line())}.", ""]
    if picture:
        lines += [picture_note(picture), ""]
    if report.models:
        lines += ["| Model | Inputs | Energy | Extrapolated |", "|---|---|---:|---:|"]
        for m in report.models:
            total = energy_cell(m)
            inputs = md_text(m.inputs) if m.inputs else "—"
            share = f"{100 * m.tree.extrapolated_share():.1f} %"
            lines.append(f"| {md_text(m.name)} | {inputs} | {total} | {share} |")
    unsupported = [(m.name, unsupported_ops_text(m.tree)) for m in report.models]
    if any(text for _, text in unsupported):
        lines += ["", "**Unsupported ops (not counted in the prediction):**", ""]
        lines += [f"- {md_text(name)}: {md_text(text)}" for name, text in unsupported if text]
    notes = [(m.name, note) for m in report.models for note in prediction_notes(m.tree)]
    if notes:
        lines += ["", "**Notes:**", "", *(f"- {md_text(n)}: {md_text(t)}" for n, t in notes)]
    if report.warnings:
        lines += ["", "**Warnings:**", "", *(f"- {md_text(w)}" for w in report.warnings)]
    return "\n".join(lines) + "\n"


def violation_text(checks: Sequence[Check]) -> str:
    """The failed ``checks``, one per line (memray style), under a first line that names the
    worst and counts them (pytest's short summary shows that line)."""
    bad = [c for c in checks if not c.passed]
    first = worst(bad)
    if first is None:
        return "no energy limit exceeded"
    models = {c.model for c in bad}
    where = first.module if first.module is not None and len(models) == 1 else first.subject
    over = "no prediction" if first.value_j is None else format_percent(first.excess)
    limit = {"compare": "over the base + tolerance", "extrapolated": "over max_extrapolated"}.get(
        first.kind, "over budget"
    )
    head = f"{where} {over} {limit}"
    if len(bad) > 1:
        head += f", the worst of {len(bad)} violations"
    return head + ":\n" + "\n".join(f"  {c.message()}" for c in bad)


def render_report_text(report: Report) -> str:
    """A report for a terminal: the verdict, each model (inputs, energy, checks, worst
    violation), every violation once, what the joules describe, warnings and errors."""
    failed = [m for m in report.models if not m.passed]
    if report.errors:
        lines = [
            f"verdict: configuration error ({len(report.errors)}); not every model was checked"
        ]
    elif failed:
        lines = [f"verdict: FAILED, {len(failed)} of {len(report.models)} models over a limit"]
    else:
        lines = [
            f"verdict: passed, {len(report.models)} of {len(report.models)} models within their limits"
        ]
    for m, label in zip(report.models, labels(report.models), strict=True):
        status, _ = check_status(m)
        total = energy_cell(m) if m.energy_j is not None else "no prediction"
        worst_cell = worst_text(m.checks)
        lines.append(
            f"  {printable(label)} ({printable(m.inputs or 'no inputs')}): {total}, {status}"
            + (f"; worst {printable(worst_cell)}" if worst_cell else "")
        )
        lines += [f"    {printable(c.message())}" for c in m.violations]
        lines += [f"    note: {printable(n)}" for n in prediction_notes(m.tree)]
    lines.append(f"joules of {printable(energy_scope(report.profile).line())}")
    lines += [f"error: {printable(e)}" for e in report.errors]
    lines += [f"warning: {printable(w)}" for w in report.warnings]
    return "\n".join(lines) + "\n"
