"""``irene meters``: list each energy meter, whether it can measure here, and why (not)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    from predictor.cli.output import add_format_option

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "meters",
        help="list the energy meters (NVML, RAPL, fake) and whether they can measure here",
        description=(
            "List each energy meter, available or not, with the method it would use or the "
            "reason it cannot measure. Exit status 0, unless --require names a meter that "
            "is unavailable (exit 8)."
        ),
    )
    parser.add_argument(
        "--gpu-index", type=int, default=0, metavar="N", help="NVML: GPU to probe (default 0)"
    )
    parser.add_argument(
        "--powercap-root",
        default="/sys/class/powercap",
        metavar="PATH",
        help="RAPL: powercap sysfs folder (default /sys/class/powercap)",
    )
    parser.add_argument(
        "--require",
        choices=["nvml", "rapl", "fake", "auto"],
        help="exit 8 if this meter cannot measure here",
    )
    add_format_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from predictor.errors import HardwareUnavailable
    from predictor.measure.meters import get_meter, list_meters

    opts: dict[str, Any] = {"index": args.gpu_index, "root": args.powercap_root}
    statuses = list_meters(**opts)
    if args.format == "json":
        payload = [
            {
                "meter": s.kind,
                "available": s.available,
                "method": s.method,
                "device": s.device,
                "reason": s.reason,
            }
            for s in statuses
        ]
        print(json.dumps(payload, indent=2))
    elif args.format == "markdown":
        print(_markdown(statuses))
    else:
        _print_table(statuses)
    if args.require:
        meter = get_meter(args.require, **opts)
        try:
            st = meter.status()
        finally:
            meter.close()
        if not st.available:
            raise HardwareUnavailable(st.describe())
    return 0


def _markdown(statuses: list[Any]) -> str:
    from predictor.gate.escape import md_text

    lines = ["| Meter | Available | Device | Method, or why not |", "|---|---|---|---|"]
    for s in statuses:
        lines.append(
            f"| {md_text(s.title)} | {'yes' if s.available else 'no'} | "
            f"{md_text(s.device or '-')} | {md_text(s.reason)} |"
        )
    return "\n".join(lines)


def _print_table(statuses: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="energy meters", show_lines=False)
    table.add_column("meter")
    table.add_column("available")
    table.add_column("device")
    table.add_column("method, or why not", overflow="fold")
    for s in statuses:
        table.add_row(
            s.title,
            "[green]yes[/green]" if s.available else "[red]no[/red]",
            s.device or "-",
            s.reason,
        )
    Console(file=sys.stdout, soft_wrap=False).print(table)
