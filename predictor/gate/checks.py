"""Checks: a predicted tree against its budgets (absolute) or a base run (relative growth).

One result type, :class:`ModelResult`: a model's tree, every :class:`Check` made on it and the
warnings of checking it (a module glob that matched nothing). The gate's engine, the reports,
the terminal and Markdown summaries and ``irene budgets check`` all read it. Energies are
joules.

Module globs match a module's fully qualified name (``encoder.layer.3.attention``): ``*``
matches within one dotted segment, ``**`` across segments, ``?`` one character, ``[ab]`` a
character class (``[!ab]`` its complement).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from predictor.errors import ConfigError
from predictor.gate.generation import (
    QUANTITIES,
    generation_summary,
    quantity_label,
    quantity_value,
)
from predictor.gate.json_fields import get_field, json_type
from predictor.gate.units import format_energy_pair, format_percent, parse_energy
from predictor.trace.tree import EnergyTree, Node

if TYPE_CHECKING:  # budgets imports this module for its globs
    from predictor.gate.budgets import ModelBudget

__all__ = [
    "Check",
    "MarkerBudget",
    "ModelResult",
    "check_tree",
    "compare_tree",
    "extrapolation_check",
    "glob_to_regex",
    "module_nodes",
    "violations",
    "worst",
]


# --------------------------------------------------------------------------- globs


@lru_cache(maxsize=512)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a module glob: ``*`` within a segment, ``**`` across, ``?``, ``[...]``.

    Raises ValueError for a glob that is not well formed (an unclosed ``[``)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif ch == "*":
            out.append(r"[^.]*")
            i += 1
        elif ch == "?":
            out.append(r"[^.]")
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                raise ValueError(f"unclosed '[' in module glob {pattern!r}")
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
            i += 1
    try:
        return re.compile("".join(out) + r"\Z")
    except re.error as exc:  # e.g. a reversed range [z-a]
        raise ValueError(f"module glob {pattern!r} is not valid: {exc.msg}") from None


def module_nodes(tree: EnergyTree) -> dict[str, Node]:
    """Each module of the tree by fully qualified name, root excluded.

    Functional ops share their enclosing module's fqn; the outermost node with a given fqn
    (the module itself, or a leaf module such as a Linear) stands for it.
    """
    out: dict[str, Node] = {}
    for node in tree.walk():
        if node is tree.root or not node.fqn:
            continue
        out.setdefault(node.fqn, node)
    return out


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Check:
    """One checked value: a whole model (``module`` None) or one module against a limit.

    ``kind`` is ``"budget"`` (an absolute limit), ``"compare"`` (the base report's value
    plus the tolerance) or ``"extrapolated"`` (the energy of extrapolated nodes against
    ``max_extrapolated``, ``tolerance``, times the model's energy, ``base_j``). ``value_j`` is
    None when the profile gave no prediction: that fails. ``origin`` says where the limit was
    set: ``"budgets"`` (the budgets file, at ``line``), ``"marker"`` (a test's
    ``energy_budget`` marker) or ``"compare"`` (the base report).
    ``quantity`` names a generation quantity (:data:`predictor.gate.generation.QUANTITIES`:
    ``per_token``, ``per_request`` ...) checked instead of a node's energy.
    """

    model: str
    module: str | None
    pattern: str | None
    value_j: float | None
    limit_j: float
    kind: str = "budget"
    base_j: float | None = None
    tolerance: float | None = None
    origin: str = "budgets"
    line: int = 0
    quantity: str | None = None

    @property
    def excess(self) -> float:
        """How far over its limit the value is (0.18 = 18 % over; negative when within;
        infinite when there is no value)."""
        if self.value_j is None:
            return float("inf")
        return self.value_j / self.limit_j - 1.0 if self.limit_j > 0 else float("inf")

    @property
    def passed(self) -> bool:
        return self.value_j is not None and self.value_j <= self.limit_j

    @property
    def subject(self) -> str:
        if self.quantity is not None:
            return f"{self.model} {quantity_label(self.quantity)}"
        return self.model if self.module is None else f"{self.model} / {self.module}"

    def message(self) -> str:
        """``bert-base-uncased / encoder.layer.3.attention: 171.2 mJ > 150 mJ budget (+14.1%)``."""
        if self.value_j is None:
            return f"{self.subject}: no predicted energy (the profile left this node empty)"
        sign = ">" if not self.passed else "<="
        if self.kind == "extrapolated" and self.base_j:
            share = format_percent(self.value_j / self.base_j).lstrip("+")
            limit = format_percent(self.tolerance or 0.0).lstrip("+")
            return (
                f"{self.subject}: {share} of the energy extrapolated {sign} max_extrapolated "
                f"{limit} (kernel classes the profile has no training data for)"
            )
        if self.kind == "compare" and self.base_j is not None:
            value, base = format_energy_pair(self.value_j, self.base_j)
            tol = format_percent(self.tolerance or 0.0).lstrip("+")
            growth = format_percent(self.value_j / self.base_j - 1.0) if self.base_j else "new"
            return f"{self.subject}: {value} {sign} base {base} + {tol} tolerance ({growth})"
        value, limit = format_energy_pair(self.value_j, self.limit_j)
        growth = format_percent(self.value_j / self.limit_j - 1.0)
        return f"{self.subject}: {value} {sign} {limit} budget ({growth})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "module": self.module,
            "pattern": self.pattern,
            "value_j": self.value_j,
            "limit_j": self.limit_j,
            "kind": self.kind,
            "base_j": self.base_j,
            "tolerance": self.tolerance,
            "origin": self.origin,
            "line": self.line,
            "quantity": self.quantity,
            "passed": self.passed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Check:
        value = data.get("value_j")
        base = data.get("base_j")
        tol = data.get("tolerance")
        kind = str(data.get("kind", "budget"))
        return cls(
            model=str(data["model"]),
            module=None if data.get("module") is None else str(data["module"]),
            pattern=None if data.get("pattern") is None else str(data["pattern"]),
            value_j=None if value is None else float(value),
            limit_j=float(data["limit_j"]),
            kind=kind,
            base_j=None if base is None else float(base),
            tolerance=None if tol is None else float(tol),
            # reports written before these fields: compare checks came from the base report
            origin=str(data.get("origin") or ("compare" if kind == "compare" else "budgets")),
            line=int(data.get("line") or 0),
            quantity=None if data.get("quantity") is None else str(data["quantity"]),
        )


@dataclass
class ModelResult:
    """One predicted model: where it came from, its tree, and what was checked.

    ``source`` is ``"budgets"`` (an entry of the budgets file the gate built itself) or
    ``"fixture"`` (a model a test handed to the ``energy`` fixture); ``nodeid`` is the owning
    test (``energy_budgets.yaml::bert`` for a budgets-file entry). ``inputs`` describes the
    example inputs (``"input_ids=int64[2, 16]"``): a model is identified by its name *and*
    inputs, so one name predicted with different inputs (parametrized tests) stays two results.
    ``entry`` is the budgets-file entry that was checked, if any.
    """

    name: str
    tree: EnergyTree
    source: str = "budgets"
    spec: str | None = None
    nodeid: str | None = None
    checks: list[Check] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    inputs: str | None = None
    entry: str | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        """What identifies the model across reports: its name and its inputs."""
        return self.name, self.inputs

    @property
    def energy_j(self) -> float | None:
        return self.tree.root.energy_j

    @property
    def violations(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def passed(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "spec": self.spec,
            "nodeid": self.nodeid,
            "inputs": self.inputs,
            "entry": self.entry,
            "batch_size": self.tree.batch_size,
            "seq_len": self.tree.seq_len,
            "energy_j": self.energy_j,
            "generation": _plain_summary(self.tree),
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "warnings": list(self.warnings),
            "tree": self.tree.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> ModelResult:
        """Parse one model; a missing or mistyped key is a ValueError naming it (``where`` is
        its path in the report, e.g. ``models[2].``)."""
        tree = get_field(data, "tree", dict, where, required=True)
        try:
            energy_tree = EnergyTree.from_dict(tree)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(
                f"{where}tree: not an energy tree ({type(exc).__name__}: {exc})"
            ) from None
        checks = []
        for i, check in enumerate(get_field(data, "checks", list, where, default=[])):
            if not isinstance(check, dict):
                raise ValueError(f"{where}checks[{i}]: expected an object, got {json_type(check)}")
            try:
                checks.append(Check.from_dict(check))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"{where}checks[{i}]: invalid check ({type(exc).__name__}: {exc})"
                ) from None
        return cls(
            name=get_field(data, "name", str, where, required=True),
            tree=energy_tree,
            source=get_field(data, "source", str, where, default="budgets"),
            spec=get_field(data, "spec", str, where),
            nodeid=get_field(data, "nodeid", str, where),
            checks=checks,
            warnings=[str(w) for w in get_field(data, "warnings", list, where, default=[])],
            inputs=get_field(data, "inputs", str, where),
            entry=get_field(data, "entry", str, where),
        )


def _plain_summary(tree: EnergyTree) -> dict[str, Any] | None:
    """A generation's summary (per phase, per token, per request; joules), or None."""
    summary = generation_summary(tree)
    return dict(summary) if summary is not None else None


@dataclass(frozen=True)
class MarkerBudget:
    """A budget from ``@pytest.mark.energy_budget("150 mJ", module=..., model=...)``: the
    whole model (``module`` None) or every module matching the glob, for the model named
    ``model`` (None: every model the test predicts)."""

    budget_j: float
    module: str | None = None
    model: str | None = None

    @classmethod
    def parse(cls, budget: object, module: object = None, model: object = None) -> MarkerBudget:
        """Validate a marker's arguments; a ConfigError says which and how to fix it."""
        if not isinstance(budget, str):
            raise ConfigError(
                f"energy_budget: the budget must be a string with a unit like '150 mJ' "
                f"(got {budget!r})"
            )
        try:
            joules = parse_energy(budget)
        except ValueError as exc:
            raise ConfigError(f"energy_budget: budget {exc}") from None
        names: list[str | None] = []
        for label, value in (("module", module), ("model", model)):
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"energy_budget: {label} must be a string (got {value!r})")
            names.append(value)
        if names[0] is not None:
            try:
                glob_to_regex(names[0])
            except ValueError as exc:
                raise ConfigError(f"energy_budget: {exc}") from None
        return cls(joules, names[0], names[1])

    def applies_to(self, name: str) -> bool:
        return self.model is None or self.model == name


@dataclass(frozen=True)
class _Limit:
    """A budget to check: the whole model (``pattern`` None) or a module glob."""

    pattern: str | None
    budget_j: float
    line: int = 0
    origin: str = "budgets"


def check_tree(
    tree: EnergyTree,
    budget: ModelBudget | None = None,
    *,
    name: str | None = None,
    extra: Iterable[MarkerBudget] = (),
) -> ModelResult:
    """Check a predicted tree against a model's budgets (a
    :class:`~predictor.gate.budgets.ModelBudget`, or None) and any ``extra`` ones (test markers
    that apply to this model).

    Each module matching a glob is one check; a glob matching no module is a warning, not a
    failure. Returns a :class:`ModelResult` named ``name`` (default: the budget's name, else
    the tree's model name) whose ``entry`` is the budget's name.
    """
    model = name or (budget.name if budget is not None else tree.model_name)
    limits: list[_Limit] = []
    if budget is not None:
        if budget.budget_j is not None:
            limits.append(_Limit(None, budget.budget_j, budget.budget_line))
        limits += [_Limit(m.pattern, m.budget_j, m.line) for m in budget.modules]
    limits += [_Limit(m.module, m.budget_j, origin="marker") for m in extra]
    checks: list[Check] = []
    warnings: list[str] = []
    for q in budget.quantities if budget is not None else ():
        value = quantity_value(tree, q.quantity)
        if value is None:
            warnings.append(
                f"{model}: a {quantity_label(q.quantity)} budget (line {q.line}) needs a "
                "generation workload: give inputs prompt_len and new_tokens"
            )
            continue
        checks.append(Check(model, None, None, value, q.budget_j, line=q.line, quantity=q.quantity))
    modules = module_nodes(tree) if any(lim.pattern is not None for lim in limits) else {}
    for lim in limits:
        if lim.pattern is None:
            checks.append(
                Check(
                    model,
                    None,
                    None,
                    tree.root.energy_j,
                    lim.budget_j,
                    origin=lim.origin,
                    line=lim.line,
                )
            )
            continue
        try:
            regex = glob_to_regex(lim.pattern)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        matched = [(fqn, node) for fqn, node in modules.items() if regex.match(fqn)]
        if not matched:
            where = f" (line {lim.line})" if lim.line else ""
            warnings.append(f"{model}: module glob {lim.pattern!r}{where} matched no module")
        for fqn, node in matched:
            checks.append(
                Check(
                    model,
                    fqn,
                    lim.pattern,
                    node.energy_j,
                    lim.budget_j,
                    origin=lim.origin,
                    line=lim.line,
                )
            )
    return ModelResult(
        model,
        tree,
        checks=checks,
        warnings=warnings,
        entry=budget.name if budget is not None else None,
    )


def extrapolation_check(name: str, tree: EnergyTree, max_share: float) -> Check:
    """The check of ``max_extrapolated``: the predicted energy of extrapolated nodes
    (:meth:`~predictor.trace.tree.EnergyTree.extrapolated_j`) at most ``max_share`` of the
    model's."""
    total = tree.root.energy_j
    return Check(
        model=name,
        module=None,
        pattern="max_extrapolated",
        value_j=tree.extrapolated_j() if total is not None else None,
        limit_j=max_share * (total or 0.0),
        kind="extrapolated",
        base_j=total,
        tolerance=max_share,
    )


def compare_tree(name: str, head: EnergyTree, base: EnergyTree, tolerance: float) -> list[Check]:
    """Checks of head against base: the total, every module present in both, and for a
    generation its quantities (:data:`predictor.gate.generation.QUANTITIES`).

    A value fails when it exceeds ``base * (1 + tolerance)``. New modules have no base and are
    not checked (the diff lists them).
    """

    def check(
        value: float | None, base_j: float, module: str | None = None, quantity: str | None = None
    ) -> Check:
        return Check(
            model=name,
            module=module,
            pattern=None,
            value_j=value,
            limit_j=base_j * (1.0 + tolerance),
            kind="compare",
            base_j=base_j,
            tolerance=tolerance,
            origin="compare",
            quantity=quantity,
        )

    base_modules = module_nodes(base)
    pairs: list[tuple[str | None, float | None, float | None]] = [
        (None, head.root.energy_j, base.root.energy_j)
    ]
    for fqn, node in module_nodes(head).items():
        if fqn in base_modules:
            pairs.append((fqn, node.energy_j, base_modules[fqn].energy_j))
    out = [check(value, base_j, module) for module, value, base_j in pairs if base_j is not None]
    for key in QUANTITIES:  # a generation: per token, per request, each phase
        before, after = quantity_value(base, key), quantity_value(head, key)
        if before is not None and after is not None:
            out.append(check(after, before, quantity=key))
    return out


def violations(results: Sequence[ModelResult]) -> list[Check]:
    """Every failed check of ``results``, in order."""
    return [c for r in results for c in r.violations]


def worst(checks: Iterable[Check]) -> Check | None:
    """The failed check furthest over its limit (relatively), or None when none failed. Excesses
    equal to 6 decimals (a model and its one heavy module over the same share) are a tie, won
    by the first in order (the whole model comes before its modules), not by float noise."""
    failed = [c for c in checks if not c.passed]
    return max(failed, key=lambda c: round(c.excess, 6)) if failed else None
