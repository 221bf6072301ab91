"""Entry point of the ``irene`` console script.

Each command lives in ``predictor/cli/<name>_cmd.py`` and exposes
``register(subparsers) -> None``, which adds its sub-parser and sets ``handler`` to a function
``(args: argparse.Namespace) -> int``. Heavy imports (torch, transformers, sklearn) happen
inside the handlers, so ``irene --help`` stays fast.

Errors derived from :class:`predictor.errors.IreneError` are printed as one line on stderr
(no traceback) and give the error's distinct exit status; an OSError the command did not
turn into one (a file it cannot read or write) is an OutputError (exit 9). The library's
errors name no command-line option; :func:`describe_error` adds the advice in the CLI's terms
(``use --seq-len 512 or less``) from the error's fields.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from predictor import __version__
from predictor.errors import ConfigError, IreneError, OutputError, SequenceTooLong

__all__ = ["COMMANDS", "build_parser", "describe_error", "main"]

#: Command modules, in the order ``irene --help`` lists them.
COMMANDS: tuple[str, ...] = (
    "tree",
    "diff",
    "report",
    "budgets",
    "meters",
    "calibrate",
    "train",
    "evaluate",
    "adapt",
    "profiles",
    "predict",
)


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's exit status for a usage error: 4, a configuration error (as in
    the README's table), not argparse's 2. Sub-command parsers inherit it."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ConfigError.exit_code, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="irene",
        description="Predict and gate the inference energy of PyTorch / Hugging Face models (IrEne).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"predictor.cli.{name}_cmd").register(sub)
    return parser


def describe_error(exc: IreneError, args: argparse.Namespace) -> str:
    """``exc``'s message with the fix worded for the command line that ``args`` parsed."""
    if isinstance(exc, SequenceTooLong) and hasattr(args, "seq_len"):
        return f"{exc}; use --seq-len {exc.limit} or less"
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except IreneError as exc:
        print(f"irene {args.command}: error: {describe_error(exc, args)}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `irene tree ... | head`
        return 0
    except OSError as exc:  # a file the command reads or writes: one line, OutputError's code
        error = OutputError.from_os_error(exc, "access")
        print(f"irene {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"irene {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
