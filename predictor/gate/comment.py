"""The pull-request comment for a gate that could not give a verdict.

When the gate cannot run on the head (an invalid budgets file) or the merge base wrote no
report, the workflow still posts its one comment (:data:`predictor.gate.diff.COMMENT_MARKER`),
saying what is wrong, the tail of the log, and how to fix it, instead of failing three steps
later with "artifact not found". The log is the run's output, which holds names from the pull
request: it is escaped (HTML, ``@``) inside a ``<pre>`` block.

``python -m predictor.gate.comment WHAT LOG [--fix TEXT] -o comment.md`` writes it (and
appends it to ``$GITHUB_STEP_SUMMARY`` when that is set); the energy-gate workflow calls it.
"""

from __future__ import annotations

import argparse
import html
import sys
from collections.abc import Sequence
from pathlib import Path

from predictor.gate.diff import COMMENT_MARKER, append_step_summary
from predictor.gate.escape import md_text, printable

__all__ = ["failure_comment", "main"]

#: Log lines kept in the comment (the end of the log holds the error).
TAIL_LINES = 40


def failure_comment(what: str, log: str, *, fix: str | None = None) -> str:
    """The comment: the marker, a heading saying the gate gave no verdict, ``what`` went
    wrong, ``fix`` (how to fix it), and the last lines of ``log``."""
    tail = log.splitlines()[-TAIL_LINES:]
    shown = "\n".join(printable(line) for line in tail)
    lines = [
        COMMENT_MARKER,
        "## Energy gate (IrEne prediction)",
        "",
        "### ❌ Energy gate: no verdict",
        "",
        f"**{md_text(what)}**",
        "",
    ]
    if fix:
        lines += [md_text(fix), ""]
    lines += [
        f"<details open><summary>The last {len(tail)} lines of the log</summary>",
        "",
        "<pre>" + html.escape(shown).replace("@", "&#64;") + "</pre>",
        "",
        "</details>",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m predictor.gate.comment",
        description="Write the energy gate's pull-request comment for a run with no verdict.",
    )
    parser.add_argument("what", help="what went wrong, in one line")
    parser.add_argument("log", help="the log of the failed step (its tail goes in the comment)")
    parser.add_argument("--fix", help="how to fix it")
    parser.add_argument("-o", "--output", required=True, help="the comment file to write")
    args = parser.parse_args(argv)
    from predictor.files import write_text_atomic

    try:
        log = Path(args.log).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        log = f"(no log: {exc})"
    text = failure_comment(args.what, log, fix=args.fix)
    write_text_atomic(args.output, text)
    append_step_summary(text)
    print(f"energy gate: {args.what}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
