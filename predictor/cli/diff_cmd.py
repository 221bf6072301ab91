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
            "verdict per model (the head's checks) and every violation, the total change per "
            "model, the modules with the largest absolute change first, new and removed modules. "
            "The Markdown form is also appended to $GITHUB_STEP_SUMMARY when that variable is set."
        ),
    )
    from predictor.cli.output import add_format_option

    parser.add_argument("base", metavar="BASE", help="the base report (e.g. from the merge base)")
    parser.add_argument("head", metavar="HEAD", help="the head report (e.g. from the pull request)")
    add_format_option(parser)
    parser.add_argument(
        "--top",
        type=int,
        default=10,
        metavar="N",
        help="largest module changes shown per model (default 10)",
    )
    parser.add_argument(
        "--html",
        metavar="PATH",
        help="also write the HTML picture of the head, coloured by change against the base",
    )
    parser.add_argument(
        "-o", "--output", metavar="PATH", help="write to this file (atomically) instead of stdout"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json

    from predictor.cli.output import write_output
    from predictor.errors import ConfigError
    from predictor.files import write_text_atomic
    from predictor.gate.diff import append_step_summary, diff_reports, render_markdown, render_table
    from predictor.gate.report import load_report

    if args.top < 1:
        raise ConfigError(f"--top must be at least 1 (got {args.top})")
    base, head = load_report(args.base), load_report(args.head)
    diff = diff_reports(base, head)
    picture = None
    if args.html:
        from pathlib import Path

        from predictor.gate.html import render_html

        write_text_atomic(args.html, render_html(head, base))
        picture = Path(args.html).name
    markdown = render_markdown(diff, top=args.top, picture=picture)
    if args.format == "markdown":
        text = markdown
    elif args.format == "json":
        text = json.dumps(diff.to_dict(), indent=2, allow_nan=False)
    else:
        text = render_table(diff, top=args.top)
    write_output(text, args.output)
    try:
        append_step_summary(markdown)
    except OSError as exc:  # the diff itself succeeded: a broken summary file must not fail it
        print(
            f"irene diff: warning: cannot append to $GITHUB_STEP_SUMMARY "
            f"{exc.filename}: {exc.strerror or exc}",
            file=sys.stderr,
        )
    return 0
