"""The JSON energy report: every predicted tree of a run, its checks, the profile and versions.

Written by ``pytest --energy --energy-report PATH`` and read by ``irene diff`` and
``--energy-compare``. The file is versioned (``"schema": "irene-report/1"``) and written
atomically (a temporary file in the same folder, then ``os.replace``), so a reader never sees a
half-written report. Energies are joules.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from predictor.errors import ConfigError
from predictor.files import write_text_atomic
from predictor.gate.budgets import Check
from predictor.trace.tree import EnergyTree

if TYPE_CHECKING:  # profile imports numpy; a report is read without it
    from predictor.learn.profile import Profile

__all__ = [
    "REPORT_SCHEMA",
    "ModelResult",
    "Report",
    "library_versions",
    "load_report",
    "profile_identity",
    "write_report",
    "write_text_atomic",
]

#: Version tag of the report format; bump on incompatible changes.
REPORT_SCHEMA = "irene-report/1"


@dataclass
class ModelResult:
    """One predicted model: where it came from, its tree, and what was checked.

    ``source`` is ``"budgets"`` (an item collected from the budgets file) or ``"fixture"`` (a
    model a test handed to the ``energy`` fixture); ``nodeid`` is the owning test. ``inputs``
    describes the example inputs (``"input_ids=int64[2, 16]"``): a model is identified by its
    name *and* inputs, so one name predicted with different inputs (parametrized tests) stays
    two results. ``entry`` is the budgets file entry that was checked, if any.
    """

    name: str
    tree: EnergyTree
    source: str = "budgets"
    spec: str | None = None
    nodeid: str | None = None
    checks: list[Check] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    inputs: str | None = None
    entry: str | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        """What identifies the model across reports: its name and its inputs."""
        return self.name, self.inputs

    @property
    def energy_j(self) -> float | None:
        return self.tree.root.energy_j

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def violations(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "spec": self.spec,
            "nodeid": self.nodeid,
            "inputs": self.inputs,
            "entry": self.entry,
            "batch_size": self.tree.batch_size,
            "seq_len": self.tree.seq_len,
            "energy_j": self.energy_j,
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "warnings": list(self.warnings),
            "tree": self.tree.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> ModelResult:
        """Parse one model; a missing or mistyped key is a ValueError naming it (``where`` is
        its path in the report, e.g. ``models[2].``)."""
        tree = _get(data, "tree", dict, where, required=True)
        try:
            energy_tree = EnergyTree.from_dict(tree)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(
                f"{where}tree: not an energy tree ({type(exc).__name__}: {exc})"
            ) from None
        checks = []
        for i, check in enumerate(_get(data, "checks", list, where, default=[])):
            if not isinstance(check, dict):
                raise ValueError(f"{where}checks[{i}]: expected an object, got {_json_type(check)}")
            try:
                checks.append(Check.from_dict(check))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"{where}checks[{i}]: invalid check ({type(exc).__name__}: {exc})"
                ) from None
        inputs = _get(data, "inputs", str, where)
        entry = _get(data, "entry", str, where)
        spec = _get(data, "spec", str, where)
        nodeid = _get(data, "nodeid", str, where)
        return cls(
            name=_get(data, "name", str, where, required=True),
            tree=energy_tree,
            source=_get(data, "source", str, where, default="budgets"),
            spec=spec,
            nodeid=nodeid,
            checks=checks,
            warnings=[str(w) for w in _get(data, "warnings", list, where, default=[])],
            inputs=inputs,
            entry=entry,
        )


_JSON_TYPES: dict[type, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _get(
    data: Mapping[str, Any],
    key: str,
    kind: type,
    where: str,
    *,
    required: bool = False,
    default: Any = None,
) -> Any:
    """``data[key]`` checked to be of JSON type ``kind``; absent/null gives ``default``."""
    value = data.get(key)
    if value is None:
        if required:
            raise ValueError(f"{where}{key}: missing (expected {_JSON_TYPES[kind]})")
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ValueError(f"{where}{key}: expected {_JSON_TYPES[kind]}, got {_json_type(value)}")
    return value


@dataclass
class Report:
    """A run's report. ``profile`` identifies the predicting profile (:func:`profile_identity`)."""

    models: list[ModelResult] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    budgets_file: str | None = None
    warnings: list[str] = field(default_factory=list)
    created_utc: str = ""

    @property
    def passed(self) -> bool:
        return all(m.passed for m in self.models)

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
        for i, m in enumerate(_get(data, "models", list, "", default=[])):
            if not isinstance(m, dict):
                raise ValueError(f"models[{i}]: expected an object, got {_json_type(m)}")
            models.append(ModelResult.from_dict(m, f"models[{i}]."))
        versions = _get(data, "versions", dict, "", default={})
        return cls(
            models=models,
            profile=dict(_get(data, "profile", dict, "", default={})),
            versions={str(k): str(v) for k, v in versions.items()},
            budgets_file=_get(data, "budgets_file", str, ""),
            warnings=[str(w) for w in _get(data, "warnings", list, "", default=[])],
            created_utc=str(_get(data, "created_utc", str, "", default="")),
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
    saved profile file carries), so two same-named but retrained profiles are told apart."""
    return {
        "name": profile.name,
        "feature_set": profile.feature_set,
        "counting_mode": profile.counting_mode,
        "version": profile.version,
        "path": None if profile.path is None else str(profile.path),
        "sha256": profile.sha256,
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
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the energy report: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: not an energy report (expected a JSON object)")
    try:
        return Report.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{p}: invalid energy report: {exc}") from None
