"""Updating a budgets file in place: ``pytest --energy --energy-update`` and
``irene budgets update FILE``.

The budgets of the models that ran are raised to their prediction plus the headroom, rounded
up to 3 significant digits (:func:`predictor.gate.units.format_budget`): only those that are
exceeded, or every budget of those models with ``all_budgets``. Everything else in the file
stays byte for byte as it was: comments, order, quoting, flow mappings, indentation, line
endings, and every entry of a model that did not run. The file is not re-emitted by a YAML
writer (which re-indents, re-wraps and drops formatting it does not model); the parser
(:func:`predictor.gate.budgets.parse_budgets`, with its validation and its refusal of aliases
and tags) records where each budget's value is in the text, and only those characters are
replaced. The new text is parsed again before it is written, and must give the new budgets.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from predictor.errors import ConfigError
from predictor.gate.budgets import Budgets, ModelBudget, Span, parse_budgets
from predictor.gate.checks import glob_to_regex, module_nodes
from predictor.gate.generation import quantity_label, quantity_value
from predictor.gate.units import format_budget, format_energy, parse_energy
from predictor.trace.tree import EnergyTree

__all__ = ["BudgetChange", "BudgetsUpdate", "plan_update", "update_lines"]


@dataclass(frozen=True)
class BudgetChange:
    """One budget rewritten: the whole model (``pattern`` None) or a module glob, at ``line``
    of the file, from ``old_j`` to ``new_j`` (written as ``new_text``) because the model
    predicted ``value_j`` (the largest of the glob's matches)."""

    model: str
    pattern: str | None
    line: int
    old_j: float
    new_j: float
    new_text: str
    value_j: float
    #: A generation's quantity (``per_token``, ``per_request``) instead of a node's energy.
    quantity: str | None = None

    @property
    def subject(self) -> str:
        if self.quantity is not None:
            return f"{self.model} {quantity_label(self.quantity)}"
        return self.model if self.pattern is None else f"{self.model} / {self.pattern}"

    @property
    def raised(self) -> bool:
        return self.new_j > self.old_j

    def describe(self) -> str:
        """``tiny-bert / encoder.layer.*: 88.6 mJ -> 116 mJ (predicted 105 mJ; line 22)``."""
        return (
            f"{self.subject}: {format_energy(self.old_j)} -> {self.new_text} "
            f"(predicted {format_energy(self.value_j)}; line {self.line})"
        )


@dataclass(frozen=True)
class BudgetsUpdate:
    """The file's text before and after, and what changed."""

    path: Path | None
    old_text: str
    new_text: str
    changes: tuple[BudgetChange, ...]

    @property
    def changed(self) -> bool:
        return self.new_text != self.old_text

    def diff(self) -> str:
        """A unified diff of the file (empty when nothing changed)."""
        name = str(self.path) if self.path is not None else "energy_budgets.yaml"
        lines = difflib.unified_diff(
            self.old_text.splitlines(keepends=True),
            self.new_text.splitlines(keepends=True),
            fromfile=f"{name} (before)",
            tofile=f"{name} (updated)",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    def summary(self) -> str:
        """``3 budgets raised, 1 lowered in energy_budgets.yaml``."""
        raised = sum(1 for c in self.changes if c.raised)
        lowered = len(self.changes) - raised
        parts = [f"{raised} budget{'s' if raised != 1 else ''} raised"]
        if lowered:
            parts.append(f"{lowered} lowered")
        where = f" in {self.path}" if self.path is not None else ""
        return ", ".join(parts) + where


def _quoted(token: str, text: str) -> str:
    """``text`` in the quoting ``token`` (the value as written) used."""
    if token[:1] in ("'", '"'):
        return f"{token[0]}{text}{token[0]}"
    return text


def _target(
    value_j: float | None, budget_j: float, headroom: float, all_budgets: bool
) -> tuple[float, str] | None:
    """The new budget (joules, text), or None when this one stays."""
    if value_j is None or not value_j > 0:
        return None
    if not all_budgets and value_j <= budget_j:
        return None
    text = format_budget(value_j * (1.0 + headroom))
    new_j = parse_energy(text)
    if new_j == budget_j:
        return None
    return new_j, text


def _model_changes(
    entry: ModelBudget, trees: Iterable[EnergyTree], headroom: float, all_budgets: bool
) -> list[tuple[Span, BudgetChange]]:
    trees = list(trees)
    out: list[tuple[Span, BudgetChange]] = []
    totals = [t.root.energy_j for t in trees if t.root.energy_j is not None]
    if entry.budget_j is not None and entry.budget_span is not None and totals:
        value = max(totals)
        target = _target(value, entry.budget_j, headroom, all_budgets)
        if target is not None:
            change = BudgetChange(
                entry.name, None, entry.budget_line, entry.budget_j, *target, value
            )
            out.append((entry.budget_span, change))
    for q in entry.quantities:  # a generation's per_token / per_request
        values = [v for v in (quantity_value(t, q.quantity) for t in trees) if v is not None]
        if q.span is None or not values:
            continue
        target = _target(max(values), q.budget_j, headroom, all_budgets)
        if target is not None:
            change = BudgetChange(
                entry.name, None, q.line, q.budget_j, *target, max(values), quantity=q.quantity
            )
            out.append((q.span, change))
    modules = [module_nodes(t) for t in trees]
    for budget in entry.modules:
        if budget.span is None:
            continue
        regex = glob_to_regex(budget.pattern)
        values = [
            node.energy_j
            for nodes in modules
            for fqn, node in nodes.items()
            if regex.match(fqn) and node.energy_j is not None
        ]
        if not values:  # the glob matched nothing: a warning of the run, not a budget to set
            continue
        target = _target(max(values), budget.budget_j, headroom, all_budgets)
        if target is not None:
            change = BudgetChange(
                entry.name, budget.pattern, budget.line, budget.budget_j, *target, max(values)
            )
            out.append((budget.span, change))
    return out


def plan_update(
    text: str,
    trees: Mapping[str, Iterable[EnergyTree]],
    *,
    headroom: float,
    all_budgets: bool = False,
    path: Path | str | None = None,
) -> BudgetsUpdate:
    """The update of the budgets file ``text`` for the predicted ``trees`` of its entries
    (entry name -> the trees predicted for it; entries not named are left alone). Budgets
    are set to the prediction plus ``headroom`` (0.1 = 10 %), rounded up: those exceeded, or
    all of them with ``all_budgets``. ConfigError when ``text`` is not a valid budgets file."""
    where = Path(path) if path is not None else None
    budgets: Budgets = parse_budgets(text, where)
    edits: list[tuple[Span, BudgetChange]] = []
    for name, model_trees in trees.items():
        entry = budgets.get(name)
        if entry is not None:
            edits += _model_changes(entry, model_trees, headroom, all_budgets)
    edits.sort(key=lambda e: e[0][0])
    pieces: list[str] = []
    cursor = 0
    for (start, end), change in edits:
        pieces += [text[cursor:start], _quoted(text[start:end], change.new_text)]
        cursor = end
    new_text = "".join(pieces) + text[cursor:]
    _verify(new_text, where, [c for _, c in edits])
    return BudgetsUpdate(where, text, new_text, tuple(c for _, c in edits))


def _verify(text: str, path: Path | None, changes: list[BudgetChange]) -> None:
    """The updated text parses and holds the new budgets (a guard on the splice itself)."""
    updated = parse_budgets(text, path)
    for change in changes:
        entry = updated.models[change.model]
        got: float | None
        if change.quantity is not None:
            got = next(q.budget_j for q in entry.quantities if q.quantity == change.quantity)
        elif change.pattern is None:
            got = entry.budget_j
        else:
            got = next(m.budget_j for m in entry.modules if m.pattern == change.pattern)
        if got != change.new_j:
            raise ConfigError(
                f"{path}:{change.line}: updating {change.subject} to {change.new_text} gave "
                f"{got!r} J; the file was left as it was (please report this)"
            )


def update_lines(update: BudgetsUpdate | None, *, written: bool = True) -> list[str]:
    """What an update did, for a terminal: a summary line, one line per budget, the diff."""
    if update is None:
        return []
    if not update.changed:
        return [f"energy budgets: nothing to update in {update.path} (every budget holds)"]
    verb = "updated" if written else "would be updated (dry run)"
    lines = [f"energy budgets {verb}: {update.summary()}"]
    lines += [f"  {change.describe()}" for change in update.changes]
    lines += update.diff().rstrip("\n").splitlines()
    return lines
