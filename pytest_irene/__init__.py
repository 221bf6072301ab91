"""pytest-irene's pytest plugin: ``pytest --energy`` gates per-module energy budgets."""

from __future__ import annotations

__all__: list[str] = []
