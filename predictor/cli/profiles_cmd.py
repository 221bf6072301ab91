"""``irene profiles [PATH ...]``: the shipped and local profiles, and what their joules are."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["describe_profile", "register", "run"]


def register(subparsers: Any) -> None:
    from predictor.cli.output import add_format_option

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "profiles",
        help="list the shipped and local profiles: device, scope, provenance, dtype, error",
        description=(
            "List the profiles shipped with pytest-irene and local profile files (PATHs: files "
            "or folders; default the current folder's *.irene.joblib): kind, device, scope "
            "(GPU only / whole system), provenance (specification / adapted / measured per "
            "node), dtype, feature set, and the cross-validated error where there is one."
        ),
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="profile files or folders")
    add_format_option(parser)
    parser.set_defaults(handler=run)


def _error_of(profile: Any) -> dict[str, float] | None:
    """MAPE % per level (``overall_row_weighted`` of a CV), or an adaptation's
    leave-one-configuration-out error (``model``), or None."""
    cv = getattr(profile, "cv_error", None) or {}
    overall = cv.get("overall_row_weighted")
    if isinstance(overall, dict):
        return {str(k): float(v) for k, v in overall.items()}
    if cv.get("loco_mape") is not None:
        return {"model": float(cv["loco_mape"])}
    return None


def describe_profile(profile: Any, *, shipped: bool) -> dict[str, Any]:
    """One row of the listing."""
    from predictor.gate.scope import scope_fields

    fields = scope_fields(profile)
    cv = getattr(profile, "cv_error", None) or {}
    provenance = getattr(profile, "provenance", None)
    provenance = provenance if isinstance(provenance, dict) else {}
    protocol = cv.get("protocol") or (
        "leave-one-configuration-out, whole-model energy" if cv.get("loco_mape") else None
    )
    return {
        "name": profile.name,
        "shipped": shipped,
        "kind": str(getattr(profile, "kind", "trained")),
        "device": fields["device"],
        "scope": fields["scope"],
        "scope_kind": fields.get("scope_kind"),
        "provenance": fields["provenance"],
        "provenance_kind": fields.get("provenance_kind"),
        "dtype": fields.get("dtype", "not recorded"),
        "feature_set": profile.feature_set,
        "counting_mode": profile.counting_mode,
        "error_mape": _error_of(profile),
        "error_protocol": protocol,
        "data_attribution": provenance.get("data_attribution"),
        "data_license": provenance.get("data_license"),
        "path": None if profile.path is None else str(profile.path),
    }


def _local_files(paths: list[str]) -> list[Path]:
    from predictor.learn.profile_file import SUFFIX

    found: list[Path] = []
    for text in paths or ["."]:
        p = Path(text)
        if p.is_dir():
            found.extend(sorted(p.glob(f"*{SUFFIX}")))
        elif p.is_file():
            found.append(p)
        else:
            from predictor.errors import ConfigError

            raise ConfigError(f"{p}: no such profile file or folder")
    return found


def run(args: argparse.Namespace) -> int:
    from predictor.cli.output import write_output
    from predictor.errors import ProfileError
    from predictor.learn.profile import PROFILES_DIR, list_profiles, load_profile

    rows: list[dict[str, Any]] = []
    problems: list[dict[str, str]] = []
    for name in list_profiles():
        rows.append(describe_profile(load_profile(name), shipped=True))
    for path in _local_files(args.paths):
        if path.resolve().parent == PROFILES_DIR.resolve():
            continue  # listed as shipped
        try:
            rows.append(describe_profile(load_profile(str(path)), shipped=False))
        except ProfileError as exc:
            problems.append({"path": str(path), "error": str(exc)})
    if args.format == "json":
        write_output(json.dumps({"profiles": rows, "unreadable": problems}, indent=2))
    elif args.format == "markdown":
        write_output(_markdown(rows, problems))
    else:
        write_output(_text(rows, problems))
    return 0


def _err(row: dict[str, Any]) -> str:
    err = row["error_mape"]
    if not err:
        return "none"
    return ", ".join(f"{lvl} {err[lvl]:.2f} %" for lvl in ("model", "module", "ml") if lvl in err)


def _text(rows: list[dict[str, Any]], problems: list[dict[str, str]]) -> str:
    lines: list[str] = []
    for r in rows:
        where = "shipped" if r["shipped"] else r["path"]
        lines.append(f"{r['name']}  ({r['kind']}, {where})")
        lines.append(f"  device: {r['device']}; scope: {r['scope']}")
        lines.append(f"  provenance: {r['provenance']}")
        if r.get("data_attribution"):
            lines.append(f"  data: {r['data_attribution']}")
        protocol = f" ({r['error_protocol']})" if r.get("error_protocol") else ""
        lines.append(
            f"  dtype: {r['dtype']}; features: {r['feature_set']} ({r['counting_mode']} counting); "
            f"error: {_err(r)}{protocol}"
        )
    for p in problems:
        lines.append(f"unreadable: {p['path']}: {p['error']}")
    return "\n".join(lines)


def _provenance(row: dict[str, Any]) -> str:
    data = row.get("data_attribution")
    return f"{row['provenance']}; data: {data}" if data else str(row["provenance"])


def _markdown(rows: list[dict[str, Any]], problems: list[dict[str, str]]) -> str:
    from predictor.gate.escape import md_code, md_text

    lines = [
        "| Profile | Kind | Device | Scope | Provenance | dtype | Features | Error (MAPE) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {md_code(r['name'])} | {r['kind']} | {md_text(r['device'])} | "
            f"{md_text(r['scope'])} | {md_text(_provenance(r))} | {md_text(r['dtype'])} | "
            f"{r['feature_set']} | {_err(r)} |"
        )
    for p in problems:
        lines.append(f"\nUnreadable: {md_code(p['path'])}: {md_text(p['error'])}")
    return "\n".join(lines) + "\n"
