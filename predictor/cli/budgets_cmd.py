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


#: Gate options that ``budgets check`` and ``budgets update`` do not take as --FLAGs: the
#: gate is on, the budgets file is the positional FILE, and updating is its own command.
_NOT_FLAGS = ("enabled", "budgets", "update", "update_all")


def _add_gate_options(parser: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    """The gate's options (:data:`predictor.gate.options.OPTIONS`), as ``--report`` ..."""
    parser.add_argument(
        "file",
        nargs="?",
        default=DEFAULT_BUDGETS_FILE,
        metavar="FILE",
        help=f"the budgets file (default: {DEFAULT_BUDGETS_FILE} in the current folder)",
    )
    for opt in OPTIONS:
        if opt.key in _NOT_FLAGS or opt.key in skip:
            continue
        parser.add_argument(
            opt.cli_flag,
            dest=opt.key,
            default=None,
            metavar=opt.metavar,
            choices=opt.choices or None,
            help=opt.help,
        )


def register(subparsers: Any) -> None:
    from predictor.cli.inputs import add_input_options
    from predictor.cli.output import add_format_option

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "budgets",
        help="write, check or update energy budgets (energy_budgets.yaml)",
        description=(
            "Write an energy_budgets.yaml from current predictions, check one, or raise its "
            "exceeded budgets in place."
        ),
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
    add_input_options(init)
    init.add_argument(
        "--headroom",
        default="10%",
        metavar="PERCENT",
        help="margin over the prediction, also written as defaults.headroom (default 10%%)",
    )
    init.add_argument(
        "--tolerance",
        default="5%",
        metavar="PERCENT",
        help="defaults.tolerance to write (default 5%%)",
    )
    init.add_argument(
        "--profile", metavar="NAME|PATH", help="profile name or path (default: the shipped profile)"
    )
    init.add_argument(
        "--module", action="append", default=[], metavar="GLOB", help="also budget this module glob"
    )
    init.add_argument(
        "-o", "--output", default="energy_budgets.yaml", metavar="PATH", help="file to write"
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(handler=run_init)

    check = sub.add_parser(
        "check",
        help="predict the models of a budgets file and check them (the gate without pytest)",
        description=(
            "Run the energy gate without pytest: predict every model of FILE that has inputs, "
            "check its budgets (and against a base report with --compare), write the JSON "
            "report, the Markdown summary or diff and the HTML picture. Same verdicts, exit "
            "codes and report as `pytest --energy FILE` with the matching --energy-* options. "
            "Under GitHub Actions each violation is also an ::error annotation at its line."
        ),
    )
    _add_gate_options(check, skip=("headroom",))
    add_format_option(check)
    check.set_defaults(handler=run_check)

    update = sub.add_parser(
        "update",
        help="raise the exceeded budgets of FILE in place (comments and other entries kept)",
        description=(
            "Predict every model of FILE that has inputs and rewrite, in place, the budgets "
            "they exceed as prediction + headroom (rounded up to 3 significant digits); with "
            "--all every budget of those models. Only those values change: comments, order, "
            "quoting and every other entry stay byte for byte. Prints the diff. Exit 0 once "
            "the budgets hold (1 if a comparison with --compare still fails, 4 a configuration "
            "error)."
        ),
    )
    _add_gate_options(update)
    update.add_argument(
        "--all",
        action="store_true",
        help="set every budget of the models to prediction + headroom (lowering loose ones)",
    )
    update.add_argument(
        "--dry-run", action="store_true", help="print the diff, leave the file as it is"
    )
    update.set_defaults(handler=run_update)


def run_init(args: argparse.Namespace) -> int:
    from predictor.cli.inputs import inputs_from_args
    from predictor.cli.output import model_code
    from predictor.errors import ConfigError
    from predictor.files import write_text_atomic
    from predictor.gate.budgets import ModelBudget, name_problem
    from predictor.gate.budgets_write import render_budgets_yaml
    from predictor.gate.checks import glob_to_regex
    from predictor.gate.engine import predict_spec
    from predictor.gate.report import profile_identity
    from predictor.gate.scope import energy_scope
    from predictor.gate.units import parse_percent

    out = Path(args.output)
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists; pass --force to overwrite it")
    try:
        headroom = parse_percent(args.headroom)
        tolerance = parse_percent(args.tolerance)
    except ValueError as exc:
        raise ConfigError(f"--headroom/--tolerance {exc}") from None
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
        inputs = inputs_from_args(args)
        entry = ModelBudget(name=name or spec, spec=spec, inputs=inputs)
        with model_code():
            entries.append((entry, predict_spec(entry, profile)))
    text = render_budgets_yaml(
        entries,
        headroom=headroom,
        profile=args.profile,
        tolerance=tolerance,
        extra_globs=args.module,
        scope=energy_scope(profile_identity(profile)).line(),
    )
    write_text_atomic(out, text)
    print(f"wrote {out} ({len(entries)} model(s), {args.headroom} headroom)")
    return 0


def _open(args: argparse.Namespace, **extra: Any) -> Any:
    from predictor.errors import ConfigError
    from predictor.gate.engine import open_gate

    if not Path(args.file).exists():
        raise ConfigError(
            f"{args.file}: budgets file not found; create one with "
            f"`irene budgets init MODEL -o {args.file}` or pass its path: "
            f"irene budgets {args.budgets_command} PATH"
        )
    cli = {opt.key: getattr(args, opt.key, None) for opt in OPTIONS}
    cli.update(enabled=True, budgets=args.file, **extra)
    cwd = Path.cwd()
    gate = open_gate(cli, invocation_dir=cwd, rootdir=cwd, cli_flags=True)
    assert gate is not None  # enabled above
    return gate


def _run_budgets(gate: Any) -> None:
    from predictor.cli.output import model_code

    with model_code():
        gate.run_budgets(_nodeid_prefix(gate.options.budgets, Path.cwd()))
    for error in gate.config_errors:
        print(f"irene budgets: error: {error}", file=sys.stderr)


def _print_annotations(gate: Any, *, stream: Any = None) -> None:
    """Under GitHub Actions, each violation as an ``::error`` line (the runner reads them on
    stdout and stderr; stderr when stdout holds JSON or Markdown)."""
    from predictor.gate.annotations import github_annotations, in_github_actions

    if in_github_actions():
        path = str(gate.budgets.path) if gate.budgets.path is not None else None
        for line in github_annotations(gate.results, path, errors=gate.config_errors):
            print(line, file=stream or sys.stdout)


def run_check(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from predictor.cli.output import write_output
    from predictor.gate.summary import print_summary

    gate = _open(args)
    try:
        _run_budgets(gate)
        if args.format == "json":
            write_output(json.dumps(gate.report().to_dict(), indent=2, allow_nan=False))
        elif args.format == "markdown":
            write_output(gate.markdown()[1])
        else:
            print_summary(Console(highlight=False, soft_wrap=True), gate)
        _print_annotations(gate, stream=sys.stdout if args.format == "text" else sys.stderr)
        for line in gate.write_outputs():
            print(line, file=sys.stderr if args.format != "text" else sys.stdout)
    finally:
        gate.close()
    return int(gate.exit_code)


def run_update(args: argparse.Namespace) -> int:
    from rich.console import Console

    from predictor.gate.budgets_update import update_lines
    from predictor.gate.summary import print_summary

    gate = _open(args, update=not args.all, update_all=args.all)
    try:
        _run_budgets(gate)
        if gate.config_errors:
            print(
                f"irene budgets update: {args.file} left as it was: "
                f"{len(gate.config_errors)} model(s) could not be built",
                file=sys.stderr,
            )
            return int(gate.exit_code)
        update = gate.update_budgets(write=not args.dry_run)
        for line in update_lines(update, written=not args.dry_run):
            print(line)
        if args.dry_run:
            from predictor.gate.report import profile_identity
            from predictor.gate.scope import energy_scope

            print(f"joules of {energy_scope(profile_identity(gate.profile)).line()}")
            return 0
        print_summary(Console(highlight=False, soft_wrap=True), gate)
        for line in gate.write_outputs():
            print(line)
    finally:
        gate.close()
    return int(gate.exit_code)


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
