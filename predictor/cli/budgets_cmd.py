"""``irene budgets init|check``: write an energy_budgets.yaml from predictions; run the gate
without pytest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "budgets",
        help="write or check energy budgets (energy_budgets.yaml)",
        description="Write an energy_budgets.yaml from current predictions, or check one.",
    )
    sub = parser.add_subparsers(dest="budgets_command", required=True, metavar="ACTION")

    init = sub.add_parser(
        "init",
        help="write budgets for models from their current predictions plus headroom",
        description=(
            "Predict each model and write an energy_budgets.yaml whose budgets are the "
            "predictions plus --headroom: the whole model, the root's direct children and each "
            "repeated block (encoder.layer.*), plus any --module glob."
        ),
    )
    init.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help="zoo name or package.module:factory; NAME=SPEC names its entry",
    )
    init.add_argument("--batch-size", type=int, default=8, help="input batch size (default 8)")
    init.add_argument(
        "--seq-len", type=int, default=128, help="input sequence length (default 128)"
    )
    init.add_argument("--headroom", default="10%", help="margin over the prediction (default 10%%)")
    init.add_argument("--tolerance", default="5%", help="defaults.tolerance to write (default 5%%)")
    init.add_argument("--profile", help="profile name or path (default: the shipped profile)")
    init.add_argument(
        "--module", action="append", default=[], metavar="GLOB", help="also budget this module glob"
    )
    init.add_argument("-o", "--output", default="energy_budgets.yaml", help="file to write")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(handler=run_init)

    check = sub.add_parser(
        "check",
        help="predict the models of a budgets file and check them (the gate without pytest)",
    )
    check.add_argument("file", nargs="?", default="energy_budgets.yaml", help="the budgets file")
    check.add_argument("--profile", help="profile name or path (default: the file's, or shipped)")
    check.add_argument("--report", help="also write the JSON energy report here")
    check.set_defaults(handler=run_check)


def run_init(args: argparse.Namespace) -> int:
    from predictor.errors import ConfigError
    from predictor.gate.budgets import (
        Inputs,
        ModelBudget,
        parse_percent,
        predict_entry,
        render_budgets_yaml,
    )
    from predictor.gate.report import write_text_atomic

    out = Path(args.output)
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists; pass --force to overwrite it")
    try:
        headroom = parse_percent(args.headroom)
        tolerance = parse_percent(args.tolerance)
    except ValueError as exc:
        raise ConfigError(f"--headroom/--tolerance {exc}") from None
    if args.batch_size < 1 or args.seq_len < 1:
        raise ConfigError("--batch-size and --seq-len must be positive")
    profile = _load_profile(args.profile)
    seen: dict[str, str] = {}
    for arg in args.models:
        name = arg.rpartition("=")[0] or arg.rpartition("=")[2]
        if name in seen:
            raise ConfigError(
                f"two models named {name!r} ({seen[name]} and {arg}): each entry of a budgets "
                "file needs its own name; name them apart with NAME=SPEC"
            )
        seen[name] = arg
    entries = []
    for arg in args.models:
        name, _, spec = arg.rpartition("=")
        inputs = Inputs(args.batch_size, args.seq_len)
        entry = ModelBudget(name=name or spec, spec=spec, inputs=inputs)
        entries.append((entry, predict_entry(entry, profile)))
    text = render_budgets_yaml(
        entries,
        headroom=headroom,
        profile=args.profile,
        tolerance=tolerance,
        extra_globs=args.module,
    )
    write_text_atomic(out, text)
    print(f"wrote {out} ({len(entries)} model(s), {args.headroom} headroom)")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from predictor.errors import ConfigError
    from predictor.gate.budgets import check_tree, iter_collected, load_budgets, predict_entry
    from predictor.gate.report import ModelResult, Report, profile_identity, write_report

    if not Path(args.file).exists():
        raise ConfigError(
            f"{args.file}: budgets file not found; create one with "
            f"`irene budgets init MODEL -o {args.file}` or pass its path: irene budgets check PATH"
        )
    budgets = load_budgets(args.file)
    profile = _load_profile(args.profile or budgets.profile_ref())
    report = Report(
        profile=profile_identity(profile),
        budgets_file=str(args.file),
    )
    failed = 0
    for entry in iter_collected(budgets):
        with budgets.import_path():
            tree = predict_entry(entry, profile, budgets.location(entry.line))
        result = check_tree(tree, entry)
        report.models.append(
            ModelResult(
                entry.name,
                tree,
                source="budgets",
                spec=entry.spec,
                checks=list(result.checks),
                warnings=list(result.warnings),
            )
        )
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for violation in result.violations:
            print(violation.message())
        failed += bool(result.violations)
        bad, total = len(result.violations), len(result.checks)
        if bad:
            print(f"{entry.name}: {bad} of {total} checks failed")
        else:
            print(f"{entry.name}: {total} of {total} checks passed")
    if args.report:
        write_report(report, args.report)
    return 1 if failed else 0


def _load_profile(name: str | None) -> Any:
    from predictor.learn.profile import load_profile

    return load_profile(name)
