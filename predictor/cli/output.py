"""Where the CLI's output goes, and in which form.

Data goes to stdout, and nothing else does. A model factory is the user's code, and may print
(a progress bar, a debug line). Printed on stdout it would corrupt ``--format json`` (and any
output piped into another tool), so model code runs with its stdout sent to stderr
(:func:`model_code`).

Every command whose output is data takes ``--format text|json|markdown``
(:func:`add_format_option`): text for a terminal, JSON for tools (energies in joules, units
in the keys or a ``units`` block), Markdown for a pull request or a job summary.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence

__all__ = ["FORMATS", "add_format_option", "model_code", "write_output"]

#: The output forms of a command whose output is data.
FORMATS: tuple[str, ...] = ("text", "json", "markdown")


@contextlib.contextmanager
def model_code() -> Iterator[None]:
    """While building and tracing models: what they print goes to stderr."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def add_format_option(
    parser: argparse.ArgumentParser, formats: Sequence[str] = FORMATS, default: str = "text"
) -> None:
    """``--format text|json|markdown`` (default text)."""
    parser.add_argument(
        "--format",
        choices=tuple(formats),
        default=default,
        help=f"output format: {', '.join(formats)} (default {default})",
    )


def write_output(text: str, output: str | None = None) -> None:
    """``text`` on stdout, or written atomically to ``output``."""
    if not text.endswith("\n"):
        text += "\n"
    if output:
        from predictor.files import write_text_atomic

        write_text_atomic(output, text)
    else:
        sys.stdout.write(text)
