"""What a gate run says: the summary table and messages (terminal) and the Markdown summary.

The pytest plugin's terminal summary and ``irene budgets check`` print the same table and the
same messages (:func:`print_summary`); ``--energy-markdown`` without a base report writes
:func:`render_summary_markdown`. Names and fqns are user strings: the terminal prints them as
rich ``Text`` (never markup).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from predictor.gate.checks import ModelResult, module_nodes
from predictor.gate.escape import md_code, md_text, printable
from predictor.gate.units import format_energy
from predictor.trace.tree import EnergyTree, Node

if TYPE_CHECKING:
    from predictor.gate.engine import EnergyGate
    from predictor.gate.report import Report

__all__ = [
    "check_status",
    "hottest_modules",
    "labels",
    "name_collisions",
    "print_summary",
    "render_summary_markdown",
    "summary_messages",
    "unsupported_ops_text",
    "violation_text",
]


def hottest_modules(result: ModelResult, top: int = 3) -> list[Node]:
    """The most expensive innermost modules (modules without module children)."""
    modules = module_nodes(result.tree).values()
    innermost = [
        n
        for n in modules
        if n.level == "module"
        and n.energy_j is not None
        and not any(c.level == "module" for c in n.children)
    ]
    if not innermost:
        innermost = [n for n in modules if n.energy_j is not None]
    return sorted(innermost, key=lambda n: -(n.energy_j or 0.0))[:top]


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
    """``("1 of 3 checks failed", "bold red")``: what was checked and how it went, with the
    rich style to show it in."""
    total = len(result.checks)
    if not total:
        return "no budget", "dim"
    bad = len(result.violations)
    noun = "check" if total == 1 else "checks"
    if bad:
        return f"{bad} of {total} {noun} failed", "bold red"
    return f"{total} of {total} {noun} passed", "green"


def _extrapolated(result: ModelResult) -> list[Node]:
    return [n for n in result.tree.walk() if n.extrapolated]


def summary_messages(gate: EnergyGate) -> list[tuple[str, str]]:
    """The messages under the table, each ``(text, rich style)`` and one line: hottest
    modules, extrapolated nodes, unsupported ops, every violation, warnings, and budgets of the
    file that no model was checked against."""
    results = gate.results
    names = labels(results)
    out: list[tuple[str, str]] = []
    for result, label in zip(results, names, strict=True):
        hot = ", ".join(
            f"{n.fqn} {format_energy(n.energy_j or 0.0)}" for n in hottest_modules(result)
        )
        if hot:
            out.append((f"{label} hottest modules: {hot}", ""))
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
        if result.tree.meta.get("dtype_warning"):
            out.append((f"{label}: note: {result.tree.meta['dtype_warning']}", "yellow"))
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


def print_summary(console: Any, gate: EnergyGate, extra: Sequence[tuple[str, str]] = ()) -> None:
    """Print the summary table (model, energy, budgets, extrapolated nodes) and the messages
    (plus ``extra`` ones) on a rich ``console``."""
    from rich.table import Table
    from rich.text import Text

    results = gate.results
    if not results:
        console.print(Text("no model was predicted"))
    else:
        table = Table(box=None, pad_edge=False, show_edge=False)
        table.add_column("model")
        table.add_column("energy", justify="right")
        table.add_column("budgets")
        table.add_column("extrapolated", justify="right")
        for result, label in zip(results, labels(results), strict=True):
            status, style = check_status(result)
            total = format_energy(result.energy_j) if result.energy_j is not None else "—"
            n_extra = len(_extrapolated(result))
            share = f"{100 * result.tree.extrapolated_share():.1f} % ({n_extra} nodes)"
            table.add_row(
                Text(printable(label)),
                total,
                Text(status, style=style),
                Text(share, style="yellow" if n_extra else ""),
            )
        console.print(table)
    for text, style in [*summary_messages(gate), *extra]:
        console.print(Text(printable(text), style=style), soft_wrap=True)


def render_summary_markdown(report: Report) -> str:
    """A Markdown summary of one run: totals, budget status, every violation."""
    lines = [
        "## Energy gate (IrEne prediction)",
        "",
        f"Profile: {md_code(str(report.profile.get('name')))}",
        "",
        "| Model | Energy | Budgets | Extrapolated |",
        "|---|---:|---|---:|",
    ]
    for m in report.models:
        text, _ = check_status(m)
        status = text if not m.checks else ("❌ " if m.violations else "✅ ") + text
        total = format_energy(m.energy_j) if m.energy_j is not None else "—"
        share = f"{100 * m.tree.extrapolated_share():.1f} %"
        lines.append(f"| {md_text(m.name)} | {total} | {status} | {share} |")
    violations = [c.message() for m in report.models for c in m.violations]
    if violations:
        lines += ["", "**Over budget:**", "", *(f"- {md_code(v)}" for v in violations)]
    unsupported = [(m.name, unsupported_ops_text(m.tree)) for m in report.models]
    if any(text for _, text in unsupported):
        lines += ["", "**Unsupported ops (not counted in the prediction):**", ""]
        lines += [f"- {md_text(name)}: {md_text(text)}" for name, text in unsupported if text]
    if report.errors:
        lines += ["", "**Configuration errors:**", "", *(f"- {md_code(e)}" for e in report.errors)]
    if report.warnings:
        lines += ["", "**Warnings:**", "", *(f"- {md_text(w)}" for w in report.warnings)]
    return "\n".join(lines) + "\n"


def violation_text(results: Sequence[ModelResult]) -> str:
    """Every violation of ``results``, one per line (memray style), under a count."""
    lines = [c.message() for r in results for c in r.violations]
    noun = "violation" if len(lines) == 1 else "violations"
    return f"energy budget exceeded ({len(lines)} {noun}):\n" + "\n".join(
        f"  {line}" for line in lines
    )
