"""pytest hooks and options only; the state lives in pytest_irene.session (issue: the gate)."""

from __future__ import annotations

import pytest

__all__ = ["pytest_addoption"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("irene", "energy budgets (pytest-irene)")
    group.addoption(
        "--energy",
        action="store_true",
        default=None,
        help="predict the inference energy of the models under test and check energy budgets",
    )
