"""``irene diff BASE.json HEAD.json``: the per-module energy change between two gate reports."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "diff",
        help="compare two energy reports (pytest --energy --energy-report) module by module",
        description=(
            "Compare two JSON energy reports written by `pytest --energy --energy-report`: the "
            "total change per model, the modules with the largest absolute change first, new "
            "and removed modules. The Markdown form is also appended to $GITHUB_STEP_SUMMARY "
            "when that variable is set."
        ),
    )
    parser.add_argument("base", help="the base report (e.g. from the merge base)")
    parser.add_argument("head", help="the head report (e.g. from the pull request)")
    parser.add_argument(
        "--format",
        choices=("markdown", "table"),
        default="table",
        help="markdown (a PR comment) or table (a terminal); default: table",
    )
    parser.add_argument(
        "--top", type=int, default=10, help="largest module changes shown per model (default 10)"
    )
    parser.add_argument("-o", "--output", help="write to this file (atomically) instead of stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from predictor.errors import ConfigError
    from predictor.files import write_text_atomic
    from predictor.gate.diff import append_step_summary, diff_reports, render_markdown, render_table
    from predictor.gate.report import load_report

    if args.top < 1:
        raise ConfigError(f"--top must be at least 1 (got {args.top})")
    diff = diff_reports(load_report(args.base), load_report(args.head))
    markdown = render_markdown(diff, top=args.top)
    text = markdown if args.format == "markdown" else render_table(diff, top=args.top)
    if args.output:
        write_text_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    try:
        append_step_summary(markdown)
    except OSError as exc:  # the diff itself succeeded: a broken summary file must not fail it
        print(
            f"irene diff: warning: cannot append to $GITHUB_STEP_SUMMARY "
            f"{exc.filename}: {exc.strerror or exc}",
            file=sys.stderr,
        )
    return 0
