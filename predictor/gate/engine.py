"""Per-run state of the energy gate: resolved settings, budgets, profile, predictions, results.

One :class:`EnergyGate` exists per pytest process when ``--energy`` is on, kept in
``config.stash``. Items record their :class:`~predictor.gate.report.ModelResult` s; the plugin
ships them on the test report (``report.irene_energy``, plain JSON, so pytest-xdist carries them
to the controller), and the controller's gate aggregates them for the terminal summary and the
JSON/Markdown reports. Nothing here imports torch at import time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from predictor.errors import ConfigError
from predictor.gate.budgets import (
    Budgets,
    Check,
    ModelBudget,
    check_tree,
    parse_energy,
)
from predictor.gate.report import ModelResult, Report, library_versions, profile_identity
from predictor.trace.tree import EnergyTree

__all__ = [
    "DEFAULT_BUDGETS_FILE",
    "OPTIONS",
    "EnergyGate",
    "MarkerBudget",
    "Settings",
    "resolve_settings",
]

DEFAULT_BUDGETS_FILE = "energy_budgets.yaml"

#: Option name -> (command-line flag, ini key). Each is resolved CLI > ini > default.
OPTIONS: dict[str, tuple[str, str]] = {
    "enabled": ("--energy", "energy"),
    "budgets": ("--energy-budgets", "energy_budgets"),
    "profile": ("--energy-profile", "energy_profile"),
    "report": ("--energy-report", "energy_report"),
    "compare": ("--energy-compare", "energy_compare"),
    "markdown": ("--energy-markdown", "energy_markdown"),
}


@dataclass(frozen=True)
class Settings:
    """The gate's options after resolution; ``sources`` says where each came from
    (``"cli"``, ``"ini"`` or ``"default"``)."""

    enabled: bool
    budgets: Path
    profile: str | None = None
    report: Path | None = None
    compare: Path | None = None
    markdown: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict)


def _ini_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes", "on"}:
        return True
    if text in {"false", "0", "no", "off", ""}:
        return False
    raise ConfigError(f"{where} must be true or false (got {value!r})")


def resolve_settings(
    cli: Mapping[str, Any],
    ini: Mapping[str, Any],
    *,
    invocation_dir: Path,
    ini_dir: Path,
    rootdir: Path,
    ini_name: str = "the ini file",
    file_args: Sequence[str] = (),
) -> Settings:
    """The one place that decides each option: the command line if given (not None), else the
    ini/pyproject value if set (not None or empty), else the default. For the budgets file, a
    YAML file named as a positional argument (``pytest --energy my_budgets.yaml``) comes after
    ``--energy-budgets`` and before the ini value. Relative paths are taken
    from the invocation directory (command line) or the ini file's folder (ini)."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in OPTIONS:
        cli_value, ini_value = cli.get(key), ini.get(key)
        if cli_value is not None:
            values[key], sources[key] = cli_value, "cli"
        elif ini_value not in (None, ""):
            values[key], sources[key] = ini_value, "ini"
        else:
            values[key], sources[key] = None, "default"

    def path(key: str) -> Path | None:
        value = values[key]
        if value is None:
            return None
        base = invocation_dir if sources[key] == "cli" else ini_dir
        return (base / os.path.expanduser(str(value))).resolve()

    enabled = values["enabled"]
    enabled = False if enabled is None else _ini_bool(enabled, f"{ini_name}: energy")
    yaml_args = [
        a.split("::")[0] for a in file_args if a.split("::")[0].endswith((".yaml", ".yml"))
    ]
    if yaml_args and sources["budgets"] != "cli":
        if len(set(yaml_args)) > 1:
            raise ConfigError(
                f"one budgets file per run, got {', '.join(yaml_args)}; run them one at a time"
            )
        values["budgets"], sources["budgets"] = yaml_args[0], "cli"
    budgets = path("budgets") or (rootdir / DEFAULT_BUDGETS_FILE).resolve()
    profile = values["profile"]
    if profile is not None:
        profile = str(profile)
        base = invocation_dir if sources["profile"] == "cli" else ini_dir
        candidate = base / profile
        if os.sep in profile or candidate.exists():
            profile = str(candidate.resolve())
    return Settings(
        enabled=enabled,
        budgets=budgets,
        profile=profile,
        report=path("report"),
        compare=path("compare"),
        markdown=path("markdown"),
        sources=sources,
    )


@dataclass(frozen=True)
class MarkerBudget:
    """A budget from ``@pytest.mark.energy_budget("150 mJ", module=..., model=...)``."""

    budget_j: float
    module: str | None = None
    model: str | None = None

    @classmethod
    def from_marker(cls, args: Sequence[Any], kwargs: Mapping[str, Any]) -> MarkerBudget:
        unknown = set(kwargs) - {"budget", "module", "model"}
        if unknown:
            raise ConfigError(
                f"energy_budget: unknown argument(s) {', '.join(sorted(unknown))}; "
                "use energy_budget('150 mJ', module='encoder.layer.*', model='name')"
            )
        if len(args) > 1:
            raise ConfigError("energy_budget takes one positional argument, the budget ('150 mJ')")
        budget = args[0] if args else kwargs.get("budget")
        if not isinstance(budget, str):
            raise ConfigError(
                f"energy_budget: the budget must be a string with a unit like '150 mJ' "
                f"(got {budget!r})"
            )
        try:
            joules = parse_energy(budget)
        except ValueError as exc:
            raise ConfigError(f"energy_budget: budget {exc}") from None
        module, model = kwargs.get("module"), kwargs.get("model")
        for label, value in (("module", module), ("model", model)):
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"energy_budget: {label} must be a string (got {value!r})")
        return cls(joules, module, model)

    def applies_to(self, name: str) -> bool:
        return self.model is None or self.model == name


class EnergyGate:
    """State of one pytest process with ``--energy`` on."""

    def __init__(
        self,
        settings: Settings,
        budgets: Budgets,
        profile: Any,
        base: Report | None = None,
        metering: Any | None = None,
    ) -> None:
        self.settings = settings
        self.budgets = budgets
        self.profile = profile
        self.base = base
        #: A predictor.measure.metering.Metering when --energy-meter is on, else None.
        self.metering = metering
        #: ModelResults reported by finished tests (on the controller under xdist).
        self.results: list[ModelResult] = []
        self.budgets_file_collected = False
        #: Configuration errors met while running items (budgets-file entries that cannot be
        #: built): the run ends with a usage error (exit 4).
        self.config_errors: list[str] = []
        #: Names of the budgets-file entries whose items ran (passed, failed or errored).
        self.entries_run: set[str] = set()
        self._cache: dict[str, EnergyTree] = {}

    @classmethod
    def load(
        cls,
        settings: Settings,
        *,
        load_profile: Callable[[str | None], Any] | None = None,
        metering: Any | None = None,
    ) -> EnergyGate:
        """Parse the budgets file, load the profile and the base report; ConfigError and
        ProfileError on anything wrong (the plugin turns them into a usage error)."""
        from predictor.gate.budgets import load_budgets
        from predictor.gate.report import load_report

        if settings.budgets.is_file():
            budgets = load_budgets(settings.budgets)
        elif settings.sources.get("budgets", "default") != "default":
            raise ConfigError(
                f"{settings.budgets}: budgets file not found (set by "
                f"{'the command line' if settings.sources['budgets'] == 'cli' else 'energy_budgets in the ini file'})"
            )
        else:
            budgets = Budgets(path=None)
        if load_profile is None:
            from predictor.learn.profile import load_profile as _load

            load_profile = _load
        profile = load_profile(settings.profile or budgets.profile_ref())
        base = load_report(settings.compare) if settings.compare is not None else None
        return cls(settings, budgets, profile, base, metering)

    # ------------------------------------------------------------------ predicting

    def is_budgets_file(self, path: Path) -> bool:
        return self.budgets.path is not None and path.resolve() == self.settings.budgets

    def predict_entry(self, entry: ModelBudget) -> EnergyTree:
        """Build and predict a model from the budgets file (cached per process)."""
        from predictor.gate.budgets import predict_entry

        if entry.name not in self._cache:
            with self.budgets.import_path():
                tree = predict_entry(entry, self.profile, self.budgets.location(entry.line))
                if self.metering is not None:
                    # predicted on the meta device: metering rebuilds it with real weights
                    tree = self._judge(self.metering.measure_spec(entry.spec, tree))
                self._cache[entry.name] = tree
        return self._cache[entry.name]

    def measure(
        self, model: Any, tree: EnergyTree, inputs: Sequence[Any] | Mapping[str, Any]
    ) -> EnergyTree:
        """With --energy-meter: the tree with measured energies beside the predicted ones (or a
        note saying why not, kept in ``tree.meta["metering"]``); budgets then judge the energy
        --energy-check names. Without a meter: the tree unchanged."""
        if self.metering is None:
            return tree
        return self._judge(self.metering.measure(model, tree, inputs))

    def _judge(self, outcome: Any) -> EnergyTree:
        """A metering Outcome -> the tree the budgets judge (per --energy-check)."""
        from predictor.measure.metering import tree_for_check

        assert self.metering is not None
        measured: EnergyTree = outcome.tree
        measured.meta["metering"] = {
            "measured": outcome.measured,
            "note": outcome.note,
            "gaps": list(outcome.gaps),
        }
        judged: EnergyTree = tree_for_check(measured, self.metering.settings.check)
        return judged

    def predict_model(
        self,
        model: Any,
        inputs: Any,
        *,
        name: str,
        batch_size: int | None = None,
        seq_len: int | None = None,
    ) -> EnergyTree:
        """Trace a model built in test code with its example inputs (a tensor, a tuple or list
        of positional inputs, or a mapping of keyword inputs) and predict it."""
        from predictor.trace.inputs import split_inputs
        from predictor.trace.tracer import build_tree

        tree = build_tree(model, inputs, name=name, batch_size=batch_size, seq_len=seq_len)
        predicted: EnergyTree = self.profile.predict(tree)
        args, kwargs = split_inputs(inputs, name=name)
        return self.measure(model, predicted, kwargs if kwargs else args)

    def evaluate(
        self,
        name: str,
        tree: EnergyTree,
        *,
        source: str,
        nodeid: str,
        spec: str | None = None,
        markers: Sequence[MarkerBudget] = (),
        entry_names: Sequence[str] = (),
        inputs: str | None = None,
    ) -> ModelResult:
        """Check a predicted tree: the budgets file's entry (the first of ``entry_names``, by
        default ``name``, that the file has), the markers, and the base report when comparing
        (the base model of the same name and ``inputs``)."""
        entry = next(
            (e for e in map(self.budgets.get, entry_names or (name,)) if e is not None), None
        )
        extra: list[tuple[str | None, float]] = [
            (m.module, m.budget_j) for m in markers if m.applies_to(name)
        ]
        result = check_tree(tree, entry, name=name, extra=extra)
        checks: list[Check] = list(result.checks)
        warnings = list(result.warnings)
        metering = tree.meta.get("metering")
        if isinstance(metering, dict) and not metering.get("measured", True):
            warnings.append(str(metering.get("note", "")))
        if self.base is not None:
            from predictor.gate.diff import compare_tree

            base = self.base.model(name, inputs, nodeid)
            if base is None:
                with_inputs = f" with inputs {inputs}" if inputs else ""
                warnings.append(
                    f"{name}: not in the base report {self.settings.compare}{with_inputs}"
                )
            else:
                tolerance = entry.tolerance if entry is not None else self.budgets.tolerance
                checks += compare_tree(name, tree, base.tree, tolerance)
        return ModelResult(
            name,
            tree,
            source=source,
            spec=spec,
            nodeid=nodeid,
            checks=checks,
            warnings=warnings,
            inputs=inputs,
            entry=entry.name if entry is not None else None,
        )

    # ------------------------------------------------------------------ aggregating

    def add(self, payload: Sequence[Mapping[str, Any]]) -> None:
        """Add results shipped on a test report (``report.irene_energy``)."""
        for item in payload:
            self.results.append(ModelResult.from_dict(item))

    def report(self) -> Report:
        warnings = [w for r in self.results for w in r.warnings]
        return Report(
            models=list(self.results),
            profile=profile_identity(self.profile),
            versions=library_versions(),
            budgets_file=str(self.budgets.path) if self.budgets.path is not None else None,
            warnings=warnings,
        )


def properties(result: ModelResult) -> list[tuple[str, object]]:
    """JUnit XML properties for a result: the total and every budget check (joules)."""
    out: list[tuple[str, object]] = [(f"energy_j[{result.name}]", result.energy_j)]
    for check in result.checks:
        if check.kind == "compare" and check.passed and check.module is not None:
            continue  # every module is compared; only failures and the total are worth a line
        key = check.subject.replace(" / ", "/")
        if check.module is not None:
            out.append((f"energy_j[{key}]", check.value_j))
        label = "budget" if check.kind == "budget" else "compare_limit"
        out.append((f"energy_{label}_j[{key}]", check.limit_j))
    return out


def violation_text(results: Sequence[ModelResult]) -> str:
    """Every violation of the results, one per line (memray style)."""
    lines = [c.message() for r in results for c in r.checks if not c.passed]
    noun = "violation" if len(lines) == 1 else "violations"
    return f"energy budget exceeded ({len(lines)} {noun}):\n" + "\n".join(
        f"  {line}" for line in lines
    )
