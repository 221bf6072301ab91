"""``irene adapt BASE DATA --models M ... -o OUT``: refit a profile's device parameters on
whole-model measurements (:mod:`predictor.learn.adapt`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["data_scope", "register", "run"]


def register(subparsers: Any) -> None:
    from predictor.cli.output import add_format_option
    from predictor.learn.provenance import SCOPES

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "adapt",
        help="adapt a profile to a device from whole-model measurements",
        description=(
            "Refit the few parameters that carry a device (a device profile: scales on energy "
            "per FLOP, per byte, static power and the times per FLOP, per byte, per kernel, per "
            "launch; a trained profile: scales on its compute-bound, memory-bound and own-op "
            "predictions) on whole-model measurements of MODELs in DATA, and write the adapted "
            "profile. DATA: a dataset in the IrEne layout (only its model rows of MODELs are "
            "used) or a CSV of whole-model measurements (model, batch_size, seq_len, "
            "energy_j; optional dtype, time_s), as `irene calibrate --level model` writes. "
            "Prints the fit's residual and its leave-one-configuration-out error."
        ),
    )
    parser.add_argument("base", metavar="BASE", help="profile to adapt: shipped name or file")
    parser.add_argument(
        "data", metavar="DATA", help="IrEne-layout dataset (folder, .jsonl) or measurements .csv"
    )
    parser.add_argument(
        "--models",
        nargs="+",
        required=True,
        metavar="MODEL",
        help="the models whose measurements are used (zoo names or package.module:factory)",
    )
    parser.add_argument(
        "--level",
        choices=("model",),
        default="model",
        help="which rows of an IrEne-layout dataset are used (whole-model only)",
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="profile to write")
    parser.add_argument("--name", help="profile name (default: the output file's stem)")
    parser.add_argument("--device", help="the measured device, in words (default: DATA's)")
    parser.add_argument(
        "--scope",
        choices=tuple(SCOPES),
        help="what DATA's meter measured (default: from DATA's hardware.json, else the base's)",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite OUT if it exists (never BASE or DATA)"
    )
    add_format_option(parser)
    parser.set_defaults(handler=run)


#: A meter kind -> the scope of its joules.
_METER_SCOPES = {"nvml": "gpu", "rapl": "cpu", "fake": "virtual"}


def data_scope(hardware: dict[str, Any], data: Path) -> tuple[str | None, str | None]:
    """``(scope kind, device)`` a dataset's ``hardware.json`` implies (the IrEne authors' data,
    which has none: ``system``, ``IrEne device_1``); None where it says nothing."""
    scope = hardware.get("scope")
    if not isinstance(scope, str):
        scope = _METER_SCOPES.get(str(hardware.get("meter", "")))
    device = hardware.get("gpu_name") or hardware.get("device")
    if not hardware and "irene-data" in str(data.resolve()):
        scope, device = "system", f"IrEne {data.resolve().name}"
    return scope, None if device is None else str(device)


def _read(args: argparse.Namespace, counting_mode: str) -> tuple[list[Any], dict[str, Any]]:
    from predictor.learn.adapt import measurements_from_csv, measurements_from_dataset, zoo_tracer
    from predictor.learn.data import load_dataset

    data = Path(args.data)
    trace = zoo_tracer(counting_mode)
    if data.is_file() and data.suffix == ".csv":
        sidecar = data.with_suffix(".hardware.json")
        hardware = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        return measurements_from_csv(data, trace, models=args.models), hardware
    dataset = load_dataset(data)
    measurements = measurements_from_dataset(dataset, args.models, trace, level=args.level)
    return measurements, dict(dataset.hardware)


def run(args: argparse.Namespace) -> int:
    from predictor.cli.output import model_code, write_output
    from predictor.errors import ConfigError
    from predictor.learn.adapt import adapt_profile
    from predictor.learn.profile import find_profile, load_profile, profile_counting
    from predictor.learn.profile_file import SUFFIX
    from predictor.learn.provenance import scope_record

    out = Path(args.output)
    base_path = find_profile(args.base)
    for what, path in (("BASE", base_path), ("DATA", Path(args.data))):
        if out.exists() and path.exists() and out.resolve() == path.resolve():
            raise ConfigError(f"-o {out} is the {what}; write the adapted profile elsewhere")
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists; pass --force to overwrite it")
    base = load_profile(base_path)
    with model_code():
        measurements, hardware = _read(args, profile_counting(base))
    scope_kind, device = data_scope(hardware, Path(args.data))
    scope_kind = args.scope or scope_kind
    name = args.name or out.name.removesuffix(SUFFIX).removesuffix(".joblib")
    profile, fit = adapt_profile(
        base,
        measurements,
        name=name,
        data=Path(args.data).name,
        scope=scope_record(scope_kind) if scope_kind else None,
        device=args.device or device,
    )
    profile.save(out)
    result = {
        "profile": str(out),
        "name": name,
        "base": base.name,
        "measurements": len(measurements),
        "models": list(dict.fromkeys(m.model for m in measurements)),
        **fit.to_dict(),
    }
    if args.format == "json":
        write_output(json.dumps(result, indent=2, allow_nan=False))
    elif args.format == "markdown":
        write_output(_markdown(result))
    else:
        write_output(_text(result))
    return 0


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} %"


def _text(r: dict[str, Any]) -> str:
    scales = ", ".join(f"{k} x{v:.3g}" for k, v in r["scales"].items())
    lines = [
        f"wrote profile {r['name']!r} to {r['profile']}: {r['base']} adapted from "
        f"{r['measurements']} whole-model measurement(s) of {', '.join(r['models'])}",
        f"scales (fitted: {', '.join(r['fitted'])}): {scales}",
        f"energy MAPE: base {_pct(r['base_mape'])}, fit residual {_pct(r['residual_mape'])} "
        f"(max {_pct(r['residual_max_ape'])}), leave-one-configuration-out {_pct(r['loco_mape'])}",
    ]
    if r["time_mape"] is not None:
        lines.append(f"time MAPE of the fit: {_pct(r['time_mape'])}")
    worst = max(r["rows"], key=lambda row: row["loco_ape"] or 0.0)
    if worst["loco_ape"] is not None:
        lines.append(
            f"worst left-out configuration: {worst['label']} ({_pct(worst['loco_ape'])}); "
            "every row: --format json"
        )
    return "\n".join(lines)


def _markdown(r: dict[str, Any]) -> str:
    from predictor.gate.escape import md_code, md_text

    lines = [
        f"### {md_text(r['name'])}: {md_text(r['base'])} adapted from {r['measurements']} "
        "whole-model measurement(s)",
        "",
        "| Scale | Value |",
        "|---|---:|",
        *(f"| {md_code(k)} | {v:.4g} |" for k, v in r["scales"].items()),
        "",
        "| Energy MAPE | % |",
        "|---|---:|",
        f"| base profile | {_pct(r['base_mape'])} |",
        f"| fit residual | {_pct(r['residual_mape'])} |",
        f"| leave-one-configuration-out | {_pct(r['loco_mape'])} |",
    ]
    return "\n".join(lines) + "\n"
