"""``irene evaluate DATA --cv leave-one-model-out``: cross-validated error per level;
``irene evaluate DATA --profile P``: a fixed profile's error per level and model."""

from __future__ import annotations

import argparse
import json
from typing import Any

from predictor.cli.train_cmd import add_counting_option

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "evaluate",
        help="cross-validate the predictor on an IrEne-format dataset, or score a profile",
        description=(
            "Leave-one-model-out cross-validation (IrEne's protocol, every scaler and regressor "
            "fit on the training folds only; sshleifer/tiny-ctrl trains but is never a fold): "
            "MAPE per left-out model and overall for the ml, module and model levels. With "
            "--profile: the error of that profile as it is (no refitting) per model and level, "
            "in the same layout; a profile that counts features otherwise than the dataset (a "
            "device profile) predicts each configuration traced again from the zoo."
        ),
    )
    parser.add_argument("data", metavar="DATA", help="dataset folder (CSV layout) or .jsonl file")
    parser.add_argument(
        "--cv", choices=("leave-one-model-out",), default="leave-one-model-out", help="CV scheme"
    )
    parser.add_argument("--features", choices=("static", "full"), default="static")
    add_counting_option(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument(
        "--method", choices=("ours", "irene"), default="ours", help="ours (default) or IrEne's"
    )
    parser.add_argument(
        "--models",
        nargs="+",
        metavar="MODEL",
        help="only these folds, or with --profile these models (default: every model)",
    )
    parser.add_argument(
        "--profile",
        metavar="NAME|PATH",
        help="score this fixed profile instead of cross-validating (no --cv, --features, --method)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from predictor.learn.evaluate import cross_validate
    from predictor.learn.profile import Settings
    from predictor.learn.retrace import load_training_data

    if args.profile is not None:
        from predictor.cli.output import model_code
        from predictor.learn.data import attach_num_parameters, load_dataset
        from predictor.learn.evaluate import evaluate_profile
        from predictor.learn.profile import load_profile

        dataset = load_dataset(args.data)
        attach_num_parameters(dataset.trees)
        with model_code():
            report = evaluate_profile(load_profile(args.profile), dataset, models=args.models)
    else:
        dataset = load_training_data(args.data, args.counting)
        settings = Settings.irene() if args.method == "irene" else Settings.default(args.features)
        report = cross_validate(dataset, args.features, settings, models=args.models)
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2, allow_nan=False))
    else:
        print(report.format_table())
    return 0
