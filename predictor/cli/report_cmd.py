"""``irene report``: show a gate's JSON report in another medium, or merge shards of one.

``irene report REPORT.json [--base BASE.json] [--format text|json|markdown|github]
[--html OUT] [-o OUT]`` renders a report written by ``pytest --energy --energy-report`` (or
``irene budgets check --report``): as text, JSON, the Markdown summary (the diff when ``--base``
is given), GitHub ``::error`` annotations, and/or the self-contained HTML picture.

``irene report merge A.json B.json ... -o ALL.json`` combines the reports of a gate split over
CI jobs (a matrix, or pytest-xdist on several runners) into one, refusing reports from
different profiles and overlapping shards.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from predictor.gate.report import Report

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="render a JSON energy report (text, JSON, Markdown, annotations, HTML), or merge reports",
        usage=(
            "irene report REPORT.json [--base BASE.json] [--format {text,json,markdown,github}]"
            " [--html OUT] [-o OUT]\n       irene report merge A.json B.json ... -o ALL.json"
        ),
        description=(
            "Render a JSON energy report: text (default), json, markdown (the pull-request "
            "summary, or the diff with --base), github (one ::error annotation per violation, "
            "at its budgets-file line) and/or --html OUT, a self-contained picture of each "
            "model's energy (an icicle sized by energy; nodes coloured by change with --base). "
            "`irene report merge A.json B.json ... -o ALL.json` combines the reports of a gate "
            "split over CI jobs, refusing reports of different profiles and overlapping shards."
        ),
    )
    parser.add_argument(
        "reports",
        nargs="+",
        metavar="REPORT",
        help="the report to render; or `merge` followed by the reports to merge",
    )
    parser.add_argument(
        "--base",
        metavar="BASE.json",
        help="a base report: the Markdown diff, HTML coloured by change",
    )
    parser.add_argument(
        "--format",
        choices=tuple(_RENDERERS),
        default=None,
        help="output format: text, json, markdown, github (default text; none with --html only)",
    )
    parser.add_argument("--html", metavar="OUT", help="write the HTML picture to this path")
    parser.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="write the output (the merged report, for merge) to this file, atomically",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from predictor.errors import ConfigError

    if args.reports[0] == "merge":
        return _merge(args)
    if len(args.reports) > 1:
        raise ConfigError(
            f"one report at a time (got {len(args.reports)}); to combine reports use "
            "`irene report merge A.json B.json ... -o ALL.json`"
        )
    return _render(args)


def _merge(args: argparse.Namespace) -> int:
    from predictor.errors import ConfigError
    from predictor.gate.report import load_report, merge_reports, write_report

    paths = args.reports[1:]
    if not paths:
        raise ConfigError("irene report merge: give the reports to merge: A.json B.json ...")
    if not args.output:
        raise ConfigError("irene report merge: give the merged report's path with -o ALL.json")
    if args.base or args.html or args.format:
        raise ConfigError(
            "irene report merge takes only reports and -o; render the merged report with "
            "`irene report ALL.json ...`"
        )
    merged = merge_reports([(p, load_report(p)) for p in paths])
    path = write_report(merged, args.output)
    failed = sum(1 for m in merged.models if not m.passed)
    print(
        f"merged {len(paths)} reports ({len(merged.models)} models, {failed} over a limit) "
        f"into {path}"
    )
    return 0


def _text(report: Report, base: Report | None, picture: str | None) -> str:
    from predictor.gate.summary import render_report_text

    return render_report_text(report)


def _json(report: Report, base: Report | None, picture: str | None) -> str:
    import json

    return json.dumps(report.to_dict(), indent=2, allow_nan=False)


def _markdown(report: Report, base: Report | None, picture: str | None) -> str:
    if base is not None:
        from predictor.gate.diff import diff_reports, render_markdown

        return render_markdown(diff_reports(base, report), picture=picture)
    from predictor.gate.summary import render_summary_markdown

    return render_summary_markdown(report, picture=picture)


def _github(report: Report, base: Report | None, picture: str | None) -> str:
    from predictor.gate.annotations import github_annotations

    return "\n".join(github_annotations(report.models, report.budgets_file, errors=report.errors))


#: ``--format`` -> renderer of (report, base report or None, picture file name or None).
_RENDERERS: dict[str, Callable[[Report, Report | None, str | None], str]] = {
    "text": _text,
    "json": _json,
    "markdown": _markdown,
    "github": _github,
}


def _render(args: argparse.Namespace) -> int:
    from pathlib import Path

    from predictor.cli.output import write_output
    from predictor.files import write_text_atomic
    from predictor.gate.report import load_report

    report = load_report(args.reports[0])
    base = load_report(args.base) if args.base else None
    picture = None
    if args.html:
        from predictor.gate.html import render_html

        path = write_text_atomic(args.html, render_html(report, base))
        picture = Path(args.html).name
        print(f"energy HTML picture written to {path}", file=sys.stderr)
        if args.format is None:
            return 0
    text = _RENDERERS[args.format or "text"](report, base, picture)
    write_output(text, args.output)
    return 0
