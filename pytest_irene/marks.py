"""The ``energy_budget`` marker, defined as a function so Python checks its arguments and
``pytest --markers`` shows its signature (pytest-memray's ``marks.py`` pattern)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import pytest

from predictor.errors import ConfigError
from predictor.gate.checks import MarkerBudget, ModelResult

__all__ = ["ENERGY_BUDGET_HELP", "energy_budget", "marker_budgets", "unmatched_marker_models"]


def energy_budget(
    budget: str, *, module: str | None = None, model: str | None = None
) -> MarkerBudget:
    """An energy budget such as ``'150 mJ'`` for the models this test hands to the ``energy``
    fixture: ``module`` an fqn glob (none: the whole model), ``model`` the name of one of the
    test's models (none: each of them)."""
    return MarkerBudget.parse(budget, module, model)


ENERGY_BUDGET_HELP = f"energy_budget{inspect.signature(energy_budget)}: " + " ".join(
    (energy_budget.__doc__ or "").split()
)


def marker_budgets(item: pytest.Item) -> list[MarkerBudget]:
    """The test's ``energy_budget`` markers, parsed; a bad marker fails the test in one line."""
    out = []
    for mark in item.iter_markers("energy_budget"):
        try:
            bound = inspect.signature(energy_budget).bind(*mark.args, **mark.kwargs)
        except TypeError as exc:
            error = (
                f"{item.nodeid}: @pytest.mark.energy_budget: {exc}; use "
                "energy_budget('150 mJ', module='encoder.layer.*', model='name')"
            )
        else:
            try:
                out.append(energy_budget(*bound.args, **bound.kwargs))
                continue
            except ConfigError as exc:
                error = f"{item.nodeid}: @pytest.mark.{exc}"
        pytest.fail(error, pytrace=False)
    return out


def unmatched_marker_models(item: pytest.Item, results: Sequence[ModelResult]) -> list[str]:
    """``model=`` values of the test's energy_budget markers that name no predicted model."""
    names = {r.name for r in results}
    out = []
    for mark in item.iter_markers("energy_budget"):
        model = mark.kwargs.get("model")
        if isinstance(model, str) and model not in names:
            out.append(model)
    return out
