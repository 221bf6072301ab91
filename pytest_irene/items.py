"""Collected test items: one per model of the budgets file (``energy_budgets.yaml::bert``),
and the ``energy`` fixture's callable for models built in test code."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from predictor.errors import IreneError, ModelError, TraceError
from predictor.gate.budgets import ModelBudget, iter_collected
from predictor.gate.engine import EnergyGate, MarkerBudget, properties, violation_text
from predictor.gate.report import ModelResult
from predictor.trace.tree import EnergyTree

__all__ = [
    "GATE_KEY",
    "RESULTS_KEY",
    "BudgetExceeded",
    "BudgetItem",
    "BudgetsFile",
    "EnergyProbe",
    "describe_inputs",
    "marker_budgets",
    "record",
]

GATE_KEY = pytest.StashKey[EnergyGate]()
#: Results of the models one test predicted.
RESULTS_KEY = pytest.StashKey[list[ModelResult]]()


class BudgetExceeded(Exception):
    """Raised by a budget item whose model is over one of its budgets."""

    def __init__(self, result: ModelResult) -> None:
        super().__init__(violation_text([result]))
        self.result = result


def record(item: pytest.Item, result: ModelResult) -> None:
    """Keep a result on its test item and record its values as JUnit properties."""
    item.stash.setdefault(RESULTS_KEY, []).append(result)
    item.user_properties.extend(properties(result))


def marker_budgets(item: pytest.Item) -> list[MarkerBudget]:
    """The test's ``energy_budget`` markers, parsed; a bad marker fails the test."""
    out = []
    for mark in item.iter_markers("energy_budget"):
        try:
            out.append(MarkerBudget.from_marker(mark.args, mark.kwargs))
        except IreneError as exc:
            error = f"{item.nodeid}: @pytest.mark.{exc}"
        else:
            continue
        pytest.fail(error, pytrace=False)
    return out


class BudgetsFile(pytest.File):
    """The budgets file: one item per model that has inputs."""

    def collect(self) -> Iterator[BudgetItem]:
        gate: EnergyGate = self.config.stash[GATE_KEY]
        gate.budgets_file_collected = True
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
        gate: EnergyGate = self.config.stash[GATE_KEY]
        gate.predict_entry(self.entry)

    def runtest(self) -> None:
        gate: EnergyGate = self.config.stash[GATE_KEY]
        tree = gate.predict_entry(self.entry)
        result = gate.evaluate(
            self.entry.name,
            tree,
            source="budgets",
            nodeid=self.nodeid,
            spec=self.entry.spec,
            markers=marker_budgets(self),
        )
        record(self, result)
        if not result.passed:
            raise BudgetExceeded(result)

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
    """What the ``energy`` fixture returns: ``energy(model, inputs, *, name=..., batch_size=...,
    seq_len=...)``, ``inputs`` a tensor, a tuple or list of positional inputs, or a mapping of
    keyword inputs (``{"input_ids": ids}``), apart from the options.

    Traces ``model`` with the example inputs, predicts it, checks the budgets file's entry for
    ``name`` and the test's ``energy_budget`` markers, and returns the predicted tree. The test
    fails after its body if any budget is exceeded.
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
        from predictor.trace.inputs import split_inputs

        # Without name=, the class name alone would merge different tests' models (and a
        # compare would pit one against the other): the default is unique per test.
        label = name or f"{type(model).__name__}[{self._item.nodeid}]"
        error: str | None = None
        try:
            args, kwargs = split_inputs(inputs, name=label)
            tree = self._gate.predict_model(
                model, inputs, name=label, batch_size=batch_size, seq_len=seq_len
            )
        except (ModelError, TraceError) as exc:
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
            inputs=describe_inputs(args, kwargs, batch_size=batch_size, seq_len=seq_len),
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
