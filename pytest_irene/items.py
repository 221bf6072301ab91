"""Collected test items: one per model of the budgets file (``energy_budgets.yaml::bert``),
and the ``energy`` fixture's callable for models built in test code. The work is the gate's
(:class:`~predictor.gate.engine.EnergyGate`); these only hand it pytest's context."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from predictor.errors import IreneError
from predictor.gate.budgets import ModelBudget, iter_collected, name_problem
from predictor.gate.checks import Check, ModelResult
from predictor.gate.engine import EnergyGate
from predictor.trace.tree import EnergyTree
from pytest_irene.marks import marker_budgets

__all__ = [
    "GATE_KEY",
    "RESULTS_KEY",
    "BudgetExceeded",
    "BudgetItem",
    "BudgetsFile",
    "EnergyProbe",
    "describe_inputs",
    "properties",
    "record",
]

GATE_KEY = pytest.StashKey[EnergyGate]()
#: Results of the models one test predicted.
RESULTS_KEY = pytest.StashKey[list[ModelResult]]()


class BudgetExceeded(Exception):
    """Raised by a budget item whose model is over one of its budgets."""

    def __init__(self, result: ModelResult, failures: list[Check]) -> None:
        from predictor.gate.summary import violation_text

        super().__init__(violation_text(failures))
        self.result = result


def properties(result: ModelResult) -> list[tuple[str, object]]:
    """JUnit XML properties for a result: the total and every budget check (joules)."""
    out: list[tuple[str, object]] = [(f"energy_j[{result.name}]", result.energy_j)]
    for check in result.checks:
        if check.kind == "compare" and check.passed and check.module is not None:
            continue  # every module is compared; only failures and the total are worth a line
        key = check.subject.replace(" / ", "/")
        if check.module is not None:
            out.append((f"energy_j[{key}]", check.value_j))
        label = "budget" if check.kind == "budget" else "compare_limit"
        out.append((f"energy_{label}_j[{key}]", check.limit_j))
    return out


def record(item: pytest.Item, result: ModelResult) -> None:
    """Keep a result on its test item and record its values as JUnit properties."""
    item.stash.setdefault(RESULTS_KEY, []).append(result)
    item.user_properties.extend(properties(result))


class BudgetsFile(pytest.File):
    """The budgets file: one item per model that has inputs."""

    def collect(self) -> Iterator[BudgetItem]:
        gate: EnergyGate = self.config.stash[GATE_KEY]
        gate.mark_budgets_collected()
        for entry in iter_collected(gate.budgets):
            yield BudgetItem.from_parent(self, name=entry.name, entry=entry)


class BudgetItem(pytest.Item):
    """Builds one model from its spec and inputs, predicts it, checks its budgets."""

    def __init__(self, *, entry: ModelBudget, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entry = entry

    def setup(self) -> None:
        """Build and predict the model: an entry that cannot be built is a configuration error,
        reported as this item's error (not as a budget failure)."""
        self.config.stash[GATE_KEY].predict_entry(self.entry)

    def runtest(self) -> None:
        gate = self.config.stash[GATE_KEY]
        result = gate.run_entry(self.entry, nodeid=self.nodeid, markers=marker_budgets(self))
        record(self, result)
        failures = gate.failures(result)
        if failures:
            raise BudgetExceeded(result, failures)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        if isinstance(excinfo.value, BudgetExceeded | IreneError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, self.entry.line - 1, f"energy budget: {self.entry.name}"


class EnergyProbe:
    """What the ``energy`` fixture returns: ``energy(model, inputs, *, name=...)``.

    Traces ``model`` on its example ``inputs`` (one tensor, a tuple of positional tensors, or a
    dict of keyword tensors), predicts it, checks the budgets file's entry for ``name`` and the
    test's ``energy_budget`` markers, and returns the predicted tree. The test fails after its
    body if any budget is exceeded. ``inputs`` a :class:`predictor.Workload` (batch size,
    prompt length, new tokens): the model, a causal LM, generates; the tree is its mean decode
    step's and the budgets file's ``per_token`` / ``per_request`` apply.
    """

    def __init__(self, gate: EnergyGate, item: pytest.Item) -> None:
        self._gate = gate
        self._item = item

    def __call__(
        self,
        model: Any,
        inputs: Any = (),
        *,
        name: str | None = None,
        batch_size: int | None = None,
        seq_len: int | None = None,
    ) -> EnergyTree:
        from predictor.trace.inputs import split_inputs  # imports torch: only when used
        from predictor.trace.workload import Workload

        # Without name=, the class name alone would merge different tests' models (and a
        # compare would pit one against the other): the default is unique per test.
        label = name or f"{type(model).__name__}[{self._item.nodeid}]"
        error: str | None = None
        why = name_problem(label) if name is not None else None
        if why:
            pytest.fail(f"energy(name={name!r}): the name {why}", pytrace=False)
        try:
            tree = self._gate.predict_model(
                model, inputs, name=label, batch_size=batch_size, seq_len=seq_len
            )
        except IreneError as exc:  # a model, trace, meter or profile error: one line
            error = f"energy({label!r}): {exc}"
        if error is not None:  # outside the except: no "during handling" chain in the report
            pytest.fail(error, pytrace=False)
        result = self._gate.evaluate(
            label,
            tree,
            source="fixture",
            nodeid=self._item.nodeid,
            markers=marker_budgets(self._item),
            entry_names=(label,) if name else (label, type(model).__name__),
            inputs=inputs.describe()
            if isinstance(inputs, Workload)
            else describe_inputs(
                *split_inputs(inputs, name=label), batch_size=batch_size, seq_len=seq_len
            ),
        )
        record(self._item, result)
        return tree


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"{str(dtype).removeprefix('torch.')}{list(shape)}"
    if isinstance(value, list | tuple):
        inner = ", ".join(_describe(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_describe(v)}" for k, v in value.items()) + "}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def describe_inputs(
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    batch_size: int | None = None,
    seq_len: int | None = None,
) -> str:
    """A short, stable description of example inputs: ``"int64[2, 16], mask=int64[2, 16]"``;
    with ``name`` it identifies a fixture model in reports, diffs and comparisons."""
    parts = [_describe(a) for a in args] + [f"{k}={_describe(v)}" for k, v in kwargs.items()]
    if batch_size is not None:
        parts.append(f"batch_size={batch_size}")
    if seq_len is not None:
        parts.append(f"seq_len={seq_len}")
    return ", ".join(parts)
