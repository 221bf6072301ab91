"""``irene budgets init|check``: write an energy_budgets.yaml from predictions; run the gate
without pytest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from predictor.gate.budgets import DEFAULT_BUDGETS_FILE
from predictor.gate.options import OPTIONS

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
        description=(
            "Run the energy gate without pytest: predict every model of FILE that has inputs, "
            "check its budgets (and against a base report with --compare), write the JSON "
            "report and the Markdown summary or diff. Same verdicts, exit codes and report as "
            "`pytest --energy FILE` with the matching --energy-* options."
        ),
    )
    check.add_argument(
        "file",
        nargs="?",
        default=DEFAULT_BUDGETS_FILE,
        help=f"the budgets file (default: {DEFAULT_BUDGETS_FILE} in the current folder)",
    )
    for opt in OPTIONS:
        if opt.key in ("enabled", "budgets"):
            continue
        check.add_argument(
            opt.cli_flag,
            dest=opt.key,
            default=None,
            metavar=opt.metavar,
            choices=opt.choices or None,
            help=opt.help,
        )
    check.set_defaults(handler=run_check)


def run_init(args: argparse.Namespace) -> int:
    from predictor.cli.output import model_code
    from predictor.errors import ConfigError
    from predictor.files import write_text_atomic
    from predictor.gate.budgets import Inputs, ModelBudget, name_problem
    from predictor.gate.budgets_write import render_budgets_yaml
    from predictor.gate.checks import glob_to_regex
    from predictor.gate.engine import predict_spec
    from predictor.gate.units import parse_percent

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
    for pattern in args.module:
        try:
            glob_to_regex(pattern)
        except ValueError as exc:
            raise ConfigError(f"--module: {exc}") from None
    profile = _load_profile(args.profile)
    seen: dict[str, str] = {}
    for arg in args.models:
        name = arg.rpartition("=")[0] or arg.rpartition("=")[2]
        problem = name_problem(name)
        if problem:
            raise ConfigError(f"model name {name!r} {problem} (in {arg!r})")
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
        with model_code():
            entries.append((entry, predict_spec(entry, profile)))
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
    from rich.console import Console

    from predictor.cli.output import model_code
    from predictor.errors import ConfigError
    from predictor.gate.engine import open_gate
    from predictor.gate.summary import print_summary

    if not Path(args.file).exists():
        raise ConfigError(
            f"{args.file}: budgets file not found; create one with "
            f"`irene budgets init MODEL -o {args.file}` or pass its path: irene budgets check PATH"
        )
    cli = {opt.key: getattr(args, opt.key, None) for opt in OPTIONS}
    cli["enabled"], cli["budgets"] = True, args.file
    cwd = Path.cwd()
    gate = open_gate(cli, invocation_dir=cwd, rootdir=cwd, cli_flags=True)
    assert gate is not None  # enabled above
    try:
        with model_code():
            gate.run_budgets(_nodeid_prefix(gate.options.budgets, cwd))
        for error in gate.config_errors:
            print(f"irene budgets check: error: {error}", file=sys.stderr)
        print_summary(Console(highlight=False, soft_wrap=True), gate)
        for line in gate.write_outputs():
            print(line)
    finally:
        gate.close()
    return gate.exit_code


def _nodeid_prefix(path: Path, cwd: Path) -> str:
    """The budgets file as pytest names it in node ids (relative to the rootdir, here the
    current folder), so a report of ``irene budgets check`` matches the pytest gate's."""
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return path.as_posix()


def _load_profile(name: str | None) -> Any:
    from predictor.learn.profile import load_profile

    return load_profile(name)
