"""Where the CLI's output goes: its data on stdout, and nothing else there.

A model factory is the user's code, and may print (a progress bar, a debug line). Printed on
stdout it would corrupt ``--format json`` (and any output piped into another tool), so model
code runs with its stdout sent to stderr (:func:`model_code`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

__all__ = ["model_code"]


@contextlib.contextmanager
def model_code() -> Iterator[None]:
    """While building and tracing models: what they print goes to stderr."""
    with contextlib.redirect_stdout(sys.stderr):
        yield
