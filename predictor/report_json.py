"""The JSON energy report: every predicted tree of a run, its checks, the profile and versions.

Written by ``pytest --energy --energy-report PATH`` and read by ``irene diff`` and
``--energy-compare``. The file is versioned (``"schema": "irene-report/1"``) and written
atomically (a temporary file in the same folder, then ``os.replace``), so a reader never sees a
half-written report. Energies are joules.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from predictor.budgets import Check
from predictor.errors import ConfigError, OutputError
from predictor.tree import EnergyTree

__all__ = [
    "REPORT_SCHEMA",
    "ModelResult",
    "Report",
    "library_versions",
    "load_report",
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
    def from_dict(cls, data: Mapping[str, Any]) -> ModelResult:
        return cls(
            name=str(data["name"]),
            tree=EnergyTree.from_dict(data["tree"]),
            source=str(data.get("source", "budgets")),
            spec=None if data.get("spec") is None else str(data["spec"]),
            nodeid=None if data.get("nodeid") is None else str(data["nodeid"]),
            checks=[Check.from_dict(c) for c in data.get("checks", [])],
            warnings=[str(w) for w in data.get("warnings", [])],
            inputs=None if data.get("inputs") is None else str(data["inputs"]),
            entry=None if data.get("entry") is None else str(data["entry"]),
        )


@dataclass
class Report:
    """A run's report. ``profile`` holds the predicting profile's name and feature set."""

    models: list[ModelResult] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    budgets_file: str | None = None
    warnings: list[str] = field(default_factory=list)
    created_utc: str = ""

    @property
    def passed(self) -> bool:
        return all(m.passed for m in self.models)

    def model(self, name: str, inputs: str | None = None) -> ModelResult | None:
        """The model called ``name`` predicted with ``inputs``; None when there is none.

        A model recorded without inputs (budgets-file items, older reports) matches any
        inputs when it is the only one of that name; a name predicted with several inputs only
        matches the same inputs, so nothing is compared with a different configuration."""
        named = [m for m in self.models if m.name == name]
        for m in named:
            if m.inputs == inputs:
                return m
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
        schema = data.get("schema")
        if schema != REPORT_SCHEMA:
            raise ValueError(
                f"report schema {schema!r} is not supported (expected {REPORT_SCHEMA!r}); "
                "re-run the gate with this version of pytest-irene"
            )
        return cls(
            models=[ModelResult.from_dict(m) for m in data.get("models", [])],
            profile=dict(data.get("profile", {})),
            versions={str(k): str(v) for k, v in data.get("versions", {}).items()},
            budgets_file=data.get("budgets_file"),
            warnings=[str(w) for w in data.get("warnings", [])],
            created_utc=str(data.get("created_utc", "")),
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


def write_text_atomic(path: Path | str, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    The file gets the mode a plain ``open()`` would give (0666 less the umask), not mkstemp's
    0600. An OS failure (missing folder, no permission, full disk) is an OutputError naming the
    file."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError.from_os_error(exc, "write", target) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError.from_os_error(exc, "write", target) from None
        raise
    return target


def _umask() -> int:
    """The process umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
