"""The ``irene`` command line: one module per command group, registered in ``main.COMMANDS``."""

from __future__ import annotations

__all__: list[str] = []
