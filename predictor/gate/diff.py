"""Compare two energy reports (base vs head): per model and per module, largest change first.

``irene diff BASE.json HEAD.json --format markdown`` renders the pull-request comment (and
``--energy-compare BASE.json --energy-markdown OUT.md`` the same). The checks against a base
report are :func:`predictor.gate.checks.compare_tree`. Modules are matched by fully qualified
name (see :func:`predictor.gate.checks.module_nodes`).
Energies are joules.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from predictor.gate.checks import ModelResult, module_nodes
from predictor.gate.escape import md_code, md_text
from predictor.gate.generation import QUANTITIES, quantity_value
from predictor.gate.report import Report
from predictor.gate.scope import EnergyScope, energy_scope
from predictor.gate.summary import (
    check_status,
    picture_note,
    unsupported_ops_text,
    verdict_markdown,
    worst_text,
)
from predictor.gate.units import format_energy, format_percent
from predictor.trace.tree import EnergyTree

__all__ = [
    "COMMENT_MARKER",
    "ModelDiff",
    "ModuleChange",
    "ReportDiff",
    "append_step_summary",
    "diff_reports",
    "diff_trees",
    "format_delta",
    "render_markdown",
    "render_table",
]

#: First line of the Markdown diff: lets a workflow find and update its own PR comment.
COMMENT_MARKER = "<!-- irene-energy-diff -->"


@dataclass(frozen=True)
class ModuleChange:
    """One module's energy in base and head; None where the module does not exist."""

    fqn: str
    base_j: float | None
    head_j: float | None

    @property
    def status(self) -> str:
        if self.base_j is None and self.head_j is not None:
            return "new"
        if self.head_j is None and self.base_j is not None:
            return "removed"
        return "changed" if self.delta_j != 0.0 else "same"

    @property
    def delta_j(self) -> float:
        return (self.head_j or 0.0) - (self.base_j or 0.0)

    @property
    def ratio(self) -> float | None:
        """Relative change, or None when there is no base to compare with."""
        if self.base_j is None or self.head_j is None or self.base_j == 0.0:
            return None
        return self.head_j / self.base_j - 1.0


@dataclass
class ModelDiff:
    """A model's total and its modules, sorted by absolute change (largest first)."""

    name: str
    total: ModuleChange
    modules: list[ModuleChange] = field(default_factory=list)
    #: ``(base inputs, head inputs)`` when the two runs predicted the model on different
    #: inputs: its change is (partly) the inputs', not the code's.
    inputs_changed: tuple[str | None, str | None] | None = None
    #: A generation's quantities (J per output token, per request, prefill, decode), named by
    #: their labels; empty for a forward pass. Its modules are those of a decode step.
    generation: list[ModuleChange] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.total.status

    @property
    def changed(self) -> list[ModuleChange]:
        return [m for m in self.modules if m.status == "changed"]

    @property
    def new(self) -> list[ModuleChange]:
        return [m for m in self.modules if m.status == "new"]

    @property
    def removed(self) -> list[ModuleChange]:
        return [m for m in self.modules if m.status == "removed"]


@dataclass
class ReportDiff:
    """``base_profile``/``head_profile`` are profile names; ``*_profile_id`` a longer label
    (name, feature set, digest) that differs whenever the profiles' identities differ."""

    models: list[ModelDiff]
    base_profile: str | None = None
    head_profile: str | None = None
    base_profile_id: str | None = None
    head_profile_id: str | None = None
    #: Head models' ops without a formula (not counted): model label -> text.
    unsupported: dict[str, str] = field(default_factory=dict)
    #: The head run's configuration errors (entries that could not be built).
    errors: list[str] = field(default_factory=list)
    #: The head run's models (their checks give the verdict), and their labels in the diff.
    head_models: list[ModelResult] = field(default_factory=list)
    head_labels: list[str] = field(default_factory=list)
    #: What the head's (and the base's) joules describe.
    head_scope: EnergyScope | None = None
    base_scope: EnergyScope | None = None

    @property
    def passed(self) -> bool:
        return not self.errors and all(m.passed for m in self.head_models)

    def to_dict(self) -> dict[str, Any]:
        """The diff as JSON data: energies in joules (``*_j``), ratios as fractions."""

        def change(c: ModuleChange) -> dict[str, Any]:
            return {
                "name": c.fqn,
                "status": c.status,
                "base_j": c.base_j,
                "head_j": c.head_j,
                "delta_j": c.delta_j,
                "ratio": c.ratio,
            }

        return {
            "passed": self.passed,
            "errors": list(self.errors),
            "energy_scope": self.head_scope.to_dict() if self.head_scope else None,
            "base_energy_scope": self.base_scope.to_dict() if self.base_scope else None,
            "profile_changed": self.profile_changed,
            "verdicts": [
                {
                    "model": label,
                    "passed": m.passed,
                    "checks": len(m.checks),
                    "violations": [c.to_dict() | {"message": c.message()} for c in m.violations],
                }
                for m, label in zip(self.head_models, self.head_labels, strict=True)
            ],
            "models": [
                {
                    **change(m.total),
                    "inputs_changed": list(m.inputs_changed) if m.inputs_changed else None,
                    "generation": [change(c) for c in m.generation],
                    "modules": [change(c) for c in m.modules],
                }
                for m in self.models
            ],
            "unsupported": dict(self.unsupported),
        }

    @property
    def profile_changed(self) -> bool:
        return (
            self.base_profile_id is not None
            and self.head_profile_id is not None
            and self.base_profile_id != self.head_profile_id
        )


def _energies(tree: EnergyTree | None) -> dict[str, float | None]:
    if tree is None:
        return {}
    return {fqn: node.energy_j for fqn, node in module_nodes(tree).items()}


def diff_trees(name: str, base: EnergyTree | None, head: EnergyTree | None) -> ModelDiff:
    """Diff two predicted trees of one model; either may be None (model added or removed)."""
    b, h = _energies(base), _energies(head)
    changes: list[ModuleChange] = []
    for fqn in list(h) + [f for f in b if f not in h]:
        changes.append(ModuleChange(fqn, b.get(fqn) if fqn in b else None, h.get(fqn)))
    # Round away float noise so that equal changes tie and then sort by name.
    changes.sort(key=lambda c: (-float(f"{abs(c.delta_j):.9g}"), c.fqn))
    total = ModuleChange(
        name,
        base.root.energy_j if base is not None else None,
        head.root.energy_j if head is not None else None,
    )
    generation = [
        ModuleChange(q.label, quantity_value(base, key), quantity_value(head, key))
        for key, q in QUANTITIES.items()
        if quantity_value(base, key) is not None or quantity_value(head, key) is not None
    ]
    return ModelDiff(name, total, changes, generation=generation)


_Key = tuple[str, str | None, str]


def _keyed(report: Report) -> dict[_Key, ModelResult]:
    """Each model by (name, inputs, test): nothing is dropped. The test (nodeid) only tells
    apart models that share a name and inputs; exact repeats get ``#2``, ``#3``."""
    groups: dict[tuple[str, str | None], list[ModelResult]] = {}
    for m in report.models:
        groups.setdefault((m.name, m.inputs), []).append(m)
    out: dict[_Key, ModelResult] = {}
    for (name, inputs), members in groups.items():
        for m in members:
            tag = (m.nodeid or "") if len(members) > 1 else ""
            key, n = (name, inputs, tag), 1
            while key in out:
                n += 1
                key = (name, inputs, f"{tag} #{n}".strip())
            out[key] = m
    return out


def diff_reports(base: Report, head: Report) -> ReportDiff:
    """Diff every model of two reports, in head order, then models only in base.

    Models are matched by name and inputs (see :attr:`ModelResult.key`): a name predicted with
    several inputs gives one row per inputs, labelled ``name (inputs)``. A model recorded
    without inputs (an older report) matches the only model of its name on the other side."""
    b, h = _keyed(base), _keyed(head)
    pairs: list[tuple[_Key, ModelResult | None, ModelResult | None]] = []
    used: set[_Key] = set()
    for key, hm in h.items():
        bkey: _Key | None = key if key in b else None
        if bkey is None:
            # one model of this name on each side: the same model, on the inputs each run
            # recorded (none in an older report); a change of inputs is said, not hidden
            same_b = [k for k in b if k[0] == key[0]]
            same_h = [k for k in h if k[0] == key[0]]
            if len(same_b) == 1 and len(same_h) == 1:
                bkey = same_b[0]
        if bkey is not None:
            used.add(bkey)
        pairs.append((key, b[bkey] if bkey is not None else None, hm))
    pairs += [(key, bm, None) for key, bm in b.items() if key not in used]
    inputs_per_name: dict[str, set[str | None]] = {}
    for key, _, _ in pairs:
        inputs_per_name.setdefault(key[0], set()).add(key[1])
    out: list[ModelDiff] = []
    unsupported: dict[str, str] = {}
    head_labels: dict[int, str] = {}
    for (name, inputs, tag), base_m, head_m in pairs:
        label = name
        if len(inputs_per_name[name]) > 1:
            label += f" ({inputs or 'no inputs'})"
        if tag:
            label += f" [{tag}]"
        model_diff = diff_trees(
            label,
            base_m.tree if base_m else None,
            head_m.tree if head_m else None,
        )
        if (
            base_m is not None
            and head_m is not None
            and None not in (base_m.inputs, head_m.inputs)
            and base_m.inputs != head_m.inputs
        ):
            model_diff.inputs_changed = (base_m.inputs, head_m.inputs)
        out.append(model_diff)
        if head_m is not None:
            head_labels[id(head_m)] = label
        text = unsupported_ops_text(head_m.tree) if head_m is not None else None
        if text:
            unsupported[label] = text
    return ReportDiff(
        out,
        unsupported=unsupported,
        errors=list(head.errors),
        head_models=list(head.models),
        head_labels=[head_labels.get(id(m), m.name) for m in head.models],
        head_scope=energy_scope(head.profile) if head.profile else None,
        base_scope=energy_scope(base.profile) if base.profile else None,
        base_profile=_profile_name(base.profile),
        head_profile=_profile_name(head.profile),
        base_profile_id=_profile_label(base.profile),
        head_profile_id=_profile_label(head.profile),
    )


def _profile_name(profile: Mapping[str, object]) -> str | None:
    name = profile.get("name")
    return None if name is None else str(name)


def _profile_label(profile: Mapping[str, object]) -> str | None:
    """``irene-device-1 (static, sha256 3f2a9c1b0d4e)``; None when the report names none."""
    name = _profile_name(profile)
    if name is None:
        return None
    details = [str(profile["feature_set"])] if profile.get("feature_set") else []
    if profile.get("sha256"):
        details.append(f"sha256 {str(profile['sha256'])[:12]}")
    return f"{name} ({', '.join(details)})" if details else name


# --------------------------------------------------------------------------- rendering


def format_delta(change: ModuleChange) -> str:
    """``+1.2 mJ (+5.0%)``, ``new``, ``removed`` or ``0``."""
    if change.status == "new":
        return "new"
    if change.status == "removed":
        return "removed"
    if change.delta_j == 0.0:
        return "0"
    sign = "+" if change.delta_j > 0 else "-"
    text = f"{sign}{format_energy(abs(change.delta_j))}"
    ratio = change.ratio
    return f"{text} ({format_percent(ratio)})" if ratio is not None else text


def _fmt(value: float | None) -> str:
    return "—" if value is None else format_energy(value)


def _md_rows(changes: list[ModuleChange], first: str) -> list[str]:
    rows = [f"| {first} | Base | Head | Change |", "|---|---:|---:|---:|"]
    for c in changes:
        rows.append(
            f"| {md_code(c.fqn)} | {_fmt(c.base_j)} | {_fmt(c.head_j)} | {format_delta(c)} |"
        )
    return rows


def _notes(diff: ReportDiff) -> list[str]:
    """What makes the energies less comparable than they look: a profile change, changed
    inputs."""
    out = []
    if diff.profile_changed:
        out.append(
            f"profile changed: {diff.base_profile_id} -> {diff.head_profile_id} (base used one, "
            "head the other); part of the change comes from the profile"
        )
    for m in diff.models:
        if m.inputs_changed is not None:
            before, after = m.inputs_changed
            out.append(
                f"inputs differ for {m.name}: base ({before}), head ({after}); its change is "
                "the inputs' as much as the code's"
            )
    return out


def render_markdown(diff: ReportDiff, top: int = 10, *, picture: str | None = None) -> str:
    """The pull-request comment: the verdict per model and every violation first, then what
    the joules describe, totals, the ``top`` largest module changes per model, new and removed
    modules, and every module under ``<details>``. Starts with :data:`COMMENT_MARKER`."""
    lines = [COMMENT_MARKER, "## Energy diff (IrEne prediction)", ""]
    lines += verdict_markdown(diff.head_models, diff.errors, labels_=diff.head_labels)
    if diff.head_scope is not None:
        lines += [f"Joules of {md_text(diff.head_scope.line())}.", ""]
    elif diff.head_profile:
        lines += [f"Profile: {md_code(diff.head_profile)}", ""]
    for note in _notes(diff):
        lines += [f"> ⚠️ **Note:** {md_text(note)}", ""]
    if picture:
        lines += [picture_note(picture), ""]
    if not diff.models:
        return "\n".join([*lines, "No models in either report.", ""])
    lines += ["| Model | Base | Head | Change |", "|---|---:|---:|---:|"]
    for m in diff.models:
        t = m.total
        lines.append(
            f"| {md_text(m.name)} | {_fmt(t.base_j)} | {_fmt(t.head_j)} | {format_delta(t)} |"
        )
    lines.append("")
    generations = [m for m in diff.models if m.generation]
    if generations:
        lines += [
            "Generation (the model's energy and modules above are per decode step):",
            "",
            "| Model | Quantity | Base | Head | Change |",
            "|---|---|---:|---:|---:|",
        ]
        for m in generations:
            for c in m.generation:
                lines.append(
                    f"| {md_text(m.name)} | {md_text(c.fqn)} | {_fmt(c.base_j)} | "
                    f"{_fmt(c.head_j)} | {format_delta(c)} |"
                )
        lines.append("")
    if diff.unsupported:
        lines += ["**Unsupported ops (not counted in the prediction):**", ""]
        lines += [
            f"- {md_text(label)}: {md_text(text)}" for label, text in diff.unsupported.items()
        ]
        lines.append("")
    for m in diff.models:
        if m.status in ("new", "removed"):
            lines += [f"### {md_text(m.name)}: model {m.status}", ""]
            continue
        changed = m.changed
        lines.append(f"### {md_text(m.name)}")
        lines.append("")
        if changed:
            shown = changed[:top]
            lines.append(
                f"Largest module changes ({len(shown)} of {len(changed)} changed modules):"
            )
            lines.append("")
            lines += _md_rows(shown, "Module")
            lines.append("")
        else:
            lines += ["No module changed.", ""]
        if m.new:
            lines += ["New modules: " + ", ".join(md_code(c.fqn) for c in m.new), ""]
        if m.removed:
            lines += ["Removed modules: " + ", ".join(md_code(c.fqn) for c in m.removed), ""]
        lines += [
            f"<details><summary>All {len(m.modules)} modules of {md_text(m.name)}</summary>",
            "",
            *_md_rows(m.modules, "Module"),
            "",
            "</details>",
            "",
        ]
    return "\n".join(lines)


def _table(rows: list[tuple[str, str, str, str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    out = []
    for i, r in enumerate(rows):
        out.append(
            f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}"
        )
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def render_table(diff: ReportDiff, top: int = 10) -> str:
    """A plain-text rendering for terminals: totals, then the largest module changes."""
    lines: list[str] = []
    failed = [
        (m, label)
        for m, label in zip(diff.head_models, diff.head_labels, strict=True)
        if not m.passed
    ]
    if diff.errors:
        lines.append(
            f"verdict: configuration error ({len(diff.errors)}); not every model was checked"
        )
        lines += [f"  error: {e}" for e in diff.errors]
    elif failed:
        lines.append(
            f"verdict: FAILED, {len(failed)} of {len(diff.head_models)} models over a limit"
        )
    elif diff.head_models:
        lines.append(
            f"verdict: passed, {len(diff.head_models)} of {len(diff.head_models)} models within their limits"
        )
    for result, label in zip(diff.head_models, diff.head_labels, strict=True):
        status, _ = check_status(result)
        worst_cell = worst_text(result.checks)
        lines.append(f"  {label}: {status}" + (f"; worst {worst_cell}" if worst_cell else ""))
        lines += [f"    {c.message()}" for c in result.violations]
    if diff.head_scope is not None:
        lines.append(f"joules of {diff.head_scope.line()}")
    lines += [f"note: {note}" for note in _notes(diff)]
    if lines:
        lines.append("")
    header = ("model", "base", "head", "change")
    rows = [header] + [
        (m.name, _fmt(m.total.base_j), _fmt(m.total.head_j), format_delta(m.total))
        for m in diff.models
    ]
    lines += _table(rows)
    generation_rows = [
        (f"{m.name} {c.fqn}", _fmt(c.base_j), _fmt(c.head_j), format_delta(c))
        for m in diff.models
        for c in m.generation
    ]
    if generation_rows:
        lines.append("")
        lines.append("generation (model and module energies are per decode step)")
        lines += _table([("quantity", "base", "head", "change"), *generation_rows])
    for m in diff.models:
        if m.status in ("new", "removed"):
            continue
        interesting = [c for c in m.modules if c.status != "same"][:top]
        if not interesting:
            continue
        lines.append("")
        lines.append(f"{m.name}: largest module changes")
        lines += _table(
            [("module", "base", "head", "change")]
            + [(c.fqn, _fmt(c.base_j), _fmt(c.head_j), format_delta(c)) for c in interesting]
        )
    return "\n".join(lines) + "\n"


def append_step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append to the file named by ``$GITHUB_STEP_SUMMARY``; returns it, or None when unset."""
    env = os.environ if environ is None else environ
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return path
