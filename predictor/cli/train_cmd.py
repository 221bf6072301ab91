"""``irene train DATA -o PROFILE [--features static|full]``: train a hardware profile."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register", "run"]


def add_counting_option(parser: argparse.ArgumentParser) -> None:
    """``--counting``: the features a dataset is learned from (its own, or re-derived by
    tracing; :data:`predictor.learn.retrace.COUNTINGS`), for ``irene train`` and ``evaluate``."""
    parser.add_argument(
        "--counting",
        choices=("dataset", "native", "irene"),
        default="dataset",
        help="features as the dataset holds them (default), or re-derived by tracing its models "
        "in this counting mode with the measurements attached (the shipped profiles: native)",
    )


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "train",
        help="train a hardware profile from an IrEne-format dataset",
        description=(
            "Train per-primitive regressors and the tree aggregator on every tree of DATA and "
            "save a versioned profile. By default leave-one-model-out CV runs first and its "
            "error per level is stored in the profile."
        ),
    )
    parser.add_argument("data", metavar="DATA", help="dataset folder (CSV layout) or .jsonl file")
    parser.add_argument(
        "-o", "--output", required=True, metavar="PROFILE", help="profile file to write"
    )
    parser.add_argument(
        "--features",
        choices=("static", "full"),
        default="static",
        help="static: what a CPU-only runner can compute (default); full: static + runtime",
    )
    parser.add_argument("--name", help="profile name (default: the output file's stem)")
    add_counting_option(parser)
    parser.add_argument("--description", default="", help="hardware / data description to store")
    parser.add_argument(
        "--method",
        choices=("ours", "irene"),
        default="ours",
        help="ours (default, chosen by LOMO) or the authors' IrEne method",
    )
    parser.add_argument("--no-cv", action="store_true", help="skip the cross-validation")
    from predictor.cli.output import add_format_option

    # What was trained. JSON stays the default: scripts read this command's stdout as JSON.
    add_format_option(parser, default="json")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from predictor.learn.evaluate import cross_validate
    from predictor.learn.profile import Settings, train_profile
    from predictor.learn.profile_file import SUFFIX
    from predictor.learn.retrace import load_training_data

    dataset = load_training_data(args.data, args.counting)
    settings = Settings.irene() if args.method == "irene" else Settings.default(args.features)
    cv_error: dict[str, Any] = {}
    if not args.no_cv and len(dataset.model_names) > 2:
        report = cross_validate(dataset, args.features, settings)
        cv_error = {
            "protocol": "leave-one-model-out MAPE %",
            "overall_row_weighted": report.overall,
            "mean_over_folds": report.mean_over_folds,
        }
        print(report.format_table(), file=sys.stderr)
    out = Path(args.output)
    name = args.name or out.name.removesuffix(SUFFIX).removesuffix(".joblib")
    profile = train_profile(
        dataset,
        args.features,
        name,
        settings=settings,
        description=args.description,
        cv_error=cv_error,
    )
    profile.save(out)
    _print_result(
        args.format,
        {"profile": str(out), "name": name, "feature_set": args.features, "cv_error": cv_error},
    )
    return 0


def _print_result(form: str, result: dict[str, Any]) -> None:
    """What was trained, in ``--format``'s form (CV error: MAPE % per level)."""
    if form == "json":
        print(json.dumps(result))
        return
    errors = result["cv_error"].get("overall_row_weighted", {}) if result["cv_error"] else {}
    cv = ", ".join(f"{level} {value:.2f} %" for level, value in errors.items()) or "not run"
    if form == "markdown":
        print("| Profile | Name | Features | CV MAPE (row-weighted) |")
        print("|---|---|---|---|")
        print(f"| `{result['profile']}` | {result['name']} | {result['feature_set']} | {cv} |")
        return
    print(
        f"wrote profile {result['name']!r} ({result['feature_set']} features) to {result['profile']}"
    )
    print(f"leave-one-model-out MAPE, row-weighted: {cv}")
