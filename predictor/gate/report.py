"""The JSON energy report: every predicted tree of a run, its checks, the profile and versions.

Written by ``pytest --energy --energy-report PATH`` and read by ``irene diff`` and
``--energy-compare``. The file is versioned (``"schema": "irene-report/1"``) and written
atomically (a temporary file in the same folder, then ``os.replace``), so a reader never sees a
half-written report. Energies are joules.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from predictor.errors import ConfigError, OutputError
from predictor.files import write_text_atomic
from predictor.gate.checks import ModelResult
from predictor.gate.json_fields import get_field, json_type

if TYPE_CHECKING:  # profile imports numpy; a report is read without it
    from predictor.learn.profile import AnyProfile as Profile

__all__ = [
    "REPORT_SCHEMA",
    "Report",
    "library_versions",
    "load_report",
    "merge_reports",
    "profile_identity",
    "write_report",
]

#: Version tag of the report format; bump on incompatible changes.
REPORT_SCHEMA = "irene-report/1"


@dataclass
class Report:
    """A run's report. ``profile`` identifies the predicting profile (:func:`profile_identity`);
    ``errors`` are configuration errors of the run (budgets-file entries that could not be
    built): a run with any did not pass, whatever its models' checks say."""

    models: list[ModelResult] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    budgets_file: str | None = None
    warnings: list[str] = field(default_factory=list)
    created_utc: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.errors and all(m.passed for m in self.models)

    def model(
        self, name: str, inputs: str | None = None, nodeid: str | None = None
    ) -> ModelResult | None:
        """The model called ``name`` predicted with ``inputs``; None when there is none.

        A model recorded without inputs (budgets-file items, older reports) matches any
        inputs when it is the only one of that name; a name predicted with several inputs only
        matches the same inputs; a name and inputs recorded by several tests (one name reused
        for different models) only match the same test. So nothing is compared with a
        different configuration."""
        named = [m for m in self.models if m.name == name]
        exact = [m for m in named if m.inputs == inputs]
        if len(exact) > 1:
            same_test = [m for m in exact if m.nodeid == nodeid]
            return same_test[0] if len(same_test) == 1 else None
        if exact:
            return exact[0]
        if len(named) == 1 and (named[0].inputs is None or inputs is None):
            return named[0]
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "created_utc": self.created_utc or _now(),
            "versions": dict(self.versions) or library_versions(),
            "profile": dict(self.profile),
            "budgets_file": self.budgets_file,
            "passed": self.passed,
            "warnings": list(self.warnings),
            "errors": list(self.errors),
            "models": [m.to_dict() for m in self.models],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        """Parse a report; an unknown schema, or a missing or mistyped key, is a ValueError
        naming the key (``models[1].tree: missing (expected an object)``)."""
        schema = data.get("schema")
        if schema != REPORT_SCHEMA:
            raise ValueError(
                f"report schema {schema!r} is not supported (expected {REPORT_SCHEMA!r}); "
                "re-run the gate with this version of pytest-irene"
            )
        models = []
        for i, m in enumerate(get_field(data, "models", list, "", default=[])):
            if not isinstance(m, dict):
                raise ValueError(f"models[{i}]: expected an object, got {json_type(m)}")
            models.append(ModelResult.from_dict(m, f"models[{i}]."))
        versions = get_field(data, "versions", dict, "", default={})
        return cls(
            models=models,
            profile=dict(get_field(data, "profile", dict, "", default={})),
            versions={str(k): str(v) for k, v in versions.items()},
            budgets_file=get_field(data, "budgets_file", str, ""),
            warnings=[str(w) for w in get_field(data, "warnings", list, "", default=[])],
            errors=[str(e) for e in get_field(data, "errors", list, "", default=[])],
            created_utc=str(get_field(data, "created_utc", str, "", default="")),
        )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def library_versions(
    names: Iterable[str] = ("pytest-irene", "torch", "transformers"),
) -> dict[str, str]:
    """Installed versions of the libraries a prediction depends on (``"absent"`` if missing)."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def profile_identity(profile: Profile) -> dict[str, Any]:
    """What identifies the profile that predicted: name, feature set, counting mode, format
    version, the file it came from, and ``sha256``, the digest of its payload (the checksum a
    saved profile file carries), so two same-named but retrained profiles are told apart; and
    what its joules describe: ``device``, ``scope``, ``provenance``
    (:func:`predictor.gate.scope.scope_fields`)."""
    from predictor.gate.scope import scope_fields

    return {
        "name": profile.name,
        "feature_set": profile.feature_set,
        "counting_mode": profile.counting_mode,
        "version": profile.version,
        "path": None if profile.path is None else str(profile.path),
        "sha256": profile.sha256,
        **scope_fields(profile),
    }


def write_report(report: Report, path: Path | str) -> Path:
    """Serialize the report to JSON at ``path`` atomically."""
    return write_text_atomic(path, json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")


def load_report(path: Path | str) -> Report:
    """Read a report; a missing, malformed or foreign file is a ConfigError naming the file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{p}: energy report not found; write one with `pytest --energy --energy-report {p}`"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}:{exc.lineno}: not a JSON energy report: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not a JSON energy report (not UTF-8 text: {exc.reason})") from None
    except OSError as exc:
        raise OutputError.from_os_error(exc, "read", p) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: not an energy report (expected a JSON object)")
    try:
        report = Report.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{p}: invalid energy report: {exc}") from None
    for i, model in enumerate(report.models):
        problem = _energy_problem(model)
        if problem:
            raise ConfigError(
                f"{p}: invalid energy report: models[{i}] ({model.name!r}): {problem}"
            )
    return report


def _energy_problem(model: ModelResult) -> str | None:
    """Why a model's recorded energies cannot be compared with (a negative node, a total that
    is not positive), or None."""
    for node in model.tree.walk():
        for label, value in (
            ("energy_j", node.energy_j),
            ("measured_energy_j", node.measured_energy_j),
        ):
            if value is not None and value < 0:
                return f"node {node.name!r} has {label} {value!r} J; energies are never negative"
    total = model.tree.root.energy_j
    if total is not None and not total > 0:
        return f"the model's total energy_j is {total!r} J; a model that ran costs more than 0 J"
    return None


def merge_reports(reports: Sequence[tuple[str, Report]]) -> Report:
    """One report from the reports of a gate split over several jobs (``(label, report)``
    pairs, e.g. the files' paths): their models, warnings and errors together, in order.

    Refused (ConfigError naming both files) when two reports were predicted by different
    profiles (their joules would not add up to one picture), or when a model (name, inputs
    and test) is in two of them (the shards overlap, and one of them would be dropped)."""
    if not reports:
        raise ConfigError("give at least one report to merge")
    first_label, first = reports[0]
    ours = first.profile.get("sha256") or first.profile.get("name")
    seen: dict[tuple[str, str | None, str | None], str] = {}
    merged = Report(
        profile=dict(first.profile),
        versions=dict(first.versions),
        budgets_file=first.budgets_file,
        created_utc=first.created_utc,
    )
    for label, report in reports:
        theirs = report.profile.get("sha256") or report.profile.get("name")
        if theirs != ours:
            raise ConfigError(
                f"{label}: predicted by profile {report.profile.get('name')!r} "
                f"({str(theirs)[:12]}), {first_label} by {first.profile.get('name')!r} "
                f"({str(ours)[:12]}); run every shard with the same profile"
            )
        for model in report.models:
            key = (model.name, model.inputs, model.nodeid)
            if key in seen:
                raise ConfigError(
                    f"{label}: model {model.name!r} ({model.inputs or 'no inputs'}, "
                    f"{model.nodeid or 'no test'}) is also in {seen[key]}: the shards overlap; "
                    "give each job its own models"
                )
            seen[key] = label
            merged.models.append(model)
        if report.budgets_file != merged.budgets_file and report.budgets_file is not None:
            merged.warnings.append(
                f"{label}: budgets file {report.budgets_file}, {first_label}: {merged.budgets_file}"
            )
        merged.warnings += report.warnings
        merged.errors += report.errors
    return merged
