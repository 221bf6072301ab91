"""The gate's engine: one loop for ``pytest --energy`` and ``irene budgets check``.

:class:`EnergyGate` holds a run's state: its resolved options (:mod:`predictor.gate.options`),
the budgets file, the profile that predicts, the base report to compare against, the meter, and
the results. It builds and predicts each model (a budgets-file entry or a model handed to the
``energy`` fixture), checks it against its budgets, the test's markers and the base report,
measures it when a meter is on, and assembles and writes the JSON report and the Markdown
summary or diff. The pytest plugin keeps only hooks, items, the fixture and terminal output;
the CLI loops over the budgets file's entries with :meth:`EnergyGate.run_budgets`.

State changes only through the methods: results are recorded with :meth:`EnergyGate.record`
(under pytest-xdist the controller records the results its workers ship as JSON), budgets-file
entries that could not be built with :meth:`EnergyGate.record_config_error`. Nothing here
imports torch at import time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from predictor.errors import (
    ConfigError,
    HardwareUnavailable,
    IreneError,
    ModelError,
    ProfileError,
    SequenceTooLong,
    TraceError,
)
from predictor.gate.budgets import Budgets, Inputs, ModelBudget, iter_collected, load_budgets
from predictor.gate.checks import (
    Check,
    MarkerBudget,
    ModelResult,
    check_tree,
    compare_tree,
    extrapolation_check,
)
from predictor.gate.options import GateOptions, resolve_options
from predictor.gate.report import Report, library_versions, load_report, profile_identity
from predictor.trace.tree import EnergyTree

if TYPE_CHECKING:
    from predictor.gate.budgets_update import BudgetsUpdate
    from predictor.learn.generation import GenerationPrediction
    from predictor.learn.profile import AnyProfile as Profile
    from predictor.measure.metering import Metering, Outcome

__all__ = [
    "EnergyGate",
    "open_gate",
    "predict_generation_spec",
    "predict_spec",
    "read_budgets_file",
    "trace_spec",
]


def read_budgets_file(path: Path, source: str) -> Budgets:
    """The budgets file at ``path``: parsed when it exists; an empty file when it is the
    default and absent; a ConfigError when it was named (``source`` cli or ini) but is absent."""
    if path.is_file() or source != "default":
        if not path.exists():
            named = "the command line" if source == "cli" else "energy_budgets in the ini file"
            raise ConfigError(
                f"{path}: budgets file not found (set by {named}); create one with "
                "`irene budgets init MODEL` or correct the path"
            )
        return load_budgets(path)
    return Budgets(path=None)


def open_gate(
    cli: Mapping[str, Any],
    ini: Mapping[str, Any] | None = None,
    *,
    invocation_dir: Path,
    ini_dir: Path | None = None,
    rootdir: Path | None = None,
    ini_name: str = "the ini file",
    file_args: Sequence[str] = (),
    cli_flags: bool = False,
    metering: Metering | None = None,
) -> EnergyGate | None:
    """Resolve the options (:func:`predictor.gate.options.resolve_options`, with the budgets
    file as a source) and open the gate; None when the gate is off. ConfigError, ProfileError
    on anything wrong (the plugin turns them into a usage error, the CLI into its exit code)."""
    read: dict[str, Budgets] = {}

    def read_values(path: Path, source: str) -> dict[str, Any]:
        read["budgets"] = read_budgets_file(path, source)
        return {"profile": read["budgets"].profile, "defaults.headroom": read["budgets"].headroom}

    options = resolve_options(
        cli,
        ini,
        invocation_dir=invocation_dir,
        ini_dir=ini_dir,
        rootdir=rootdir,
        ini_name=ini_name,
        file_args=file_args,
        cli_flags=cli_flags,
        read_budgets=read_values,
    )
    if not options.enabled:
        return None
    return EnergyGate.load(options, budgets=read.get("budgets"), metering=metering)


class EnergyGate:
    """One gate run's state (one per pytest process; the controller's aggregates under xdist)."""

    def __init__(
        self,
        options: GateOptions,
        budgets: Budgets,
        profile: Profile,
        base: Report | None = None,
        metering: Metering | None = None,
    ) -> None:
        self.options = options
        self.budgets = budgets
        self.profile = profile
        self.base = base
        #: Measures the models when ``options.meter`` names a meter, else None.
        self.metering = metering
        self._results: list[ModelResult] = []
        self._config_errors: list[str] = []
        self._entries_run: set[str] = set()
        self._budgets_collected = False
        self._cache: dict[str, EnergyTree] = {}
        #: Why the base report cannot be compared with (it was predicted by another profile),
        #: or None. Its energies would differ by the profile, not by the change: comparing
        #: them would fail or pass for the wrong reason.
        self.base_mismatch = _profile_mismatch(base, profile) if base is not None else None

    @classmethod
    def load(
        cls,
        options: GateOptions,
        *,
        budgets: Budgets | None = None,
        metering: Metering | None = None,
    ) -> EnergyGate:
        """Open the budgets file (unless given), the profile and the base report, and a meter
        when ``options.meter`` names one (unless ``metering`` is given)."""
        if budgets is None:
            budgets = read_budgets_file(options.budgets, options.sources.get("budgets", "cli"))
        from predictor.learn.profile import load_profile

        profile = load_profile(options.profile, base=options.profile_base)
        if getattr(profile, "feature_set", "static") != "static":
            raise ProfileError(
                f"profile {profile.name!r} uses the {profile.feature_set!r} feature set (static + "
                "runtime measurements), which only a tree measured on the device has; the gate "
                "predicts traced models: use a static profile such as 'irene-device-1'"
            )
        base = load_report(options.compare) if options.compare is not None else None
        if metering is None and options.metering:
            from predictor.measure.metering import Metering

            metering = Metering(options.meter, options.check)
        return cls(options, budgets, profile, base, metering)

    # ------------------------------------------------------------------ state

    @property
    def results(self) -> tuple[ModelResult, ...]:
        """The results recorded so far, in the order they were recorded."""
        return tuple(self._results)

    @property
    def config_errors(self) -> tuple[str, ...]:
        """Budgets-file entries that could not be built: the run is a configuration error."""
        return tuple(self._config_errors)

    @property
    def entries_run(self) -> frozenset[str]:
        """Names of the budgets-file entries whose checks ran (passed, failed or errored)."""
        return frozenset(
            self._entries_run | {r.name for r in self._results if r.source == "budgets"}
        )

    @property
    def budgets_collected(self) -> bool:
        return self._budgets_collected

    def mark_budgets_collected(self) -> None:
        """The budgets file's entries are collected as tests (pytest collected the file)."""
        self._budgets_collected = True

    def record(self, results: Iterable[ModelResult]) -> None:
        self._results.extend(results)

    def record_payload(self, payload: Sequence[Mapping[str, Any]]) -> None:
        """Record results shipped as JSON (``ModelResult.to_dict``) from another process."""
        self.record(ModelResult.from_dict(item) for item in payload)

    def record_entry_run(self, name: str) -> None:
        self._entries_run.add(name)

    def record_config_error(self, message: str) -> None:
        self._config_errors.append(message)

    def is_budgets_file(self, path: Path) -> bool:
        return self.budgets.path is not None and path.resolve() == self.options.budgets

    # ------------------------------------------------------------------ predicting

    def predict_entry(self, entry: ModelBudget) -> EnergyTree:
        """Build and predict a budgets-file entry (cached per process); an entry that cannot
        be built or traced is a ConfigError at its ``file:line``, worded for the file."""
        if entry.name in self._cache:
            return self._cache[entry.name]
        if entry.inputs is None:
            raise ConfigError(
                f"{self.budgets.location(entry.line)}: model {entry.name!r} has no inputs; add "
                "inputs: {batch_size: N, seq_len: N} (or named shapes such as "
                "{pixel_values: [8, 3, 224, 224]}) or hand the model to the `energy` fixture"
            )
        from predictor.gate.timeout import time_limit

        with self.budgets.import_path():
            try:
                with time_limit(self.options.timeout_s, f"model {entry.name!r}"):
                    tree = predict_spec(entry, self.profile)
            except (ModelError, TraceError) as exc:
                raise ConfigError(
                    f"{self.budgets.location(entry.line)}: model {entry.name!r}: "
                    f"{_yaml_wording(exc, entry)}"
                ) from None
            if self.metering is not None and entry.inputs.generation:
                tree.meta["metering"] = {
                    "measured": False,
                    "note": f"{entry.name}: not metered: a generation workload is predicted "
                    "only (meters measure one forward pass); its budgets judge the prediction",
                    "gaps": [],
                }
            elif self.metering is not None:
                # predicted on the meta device: metering rebuilds it with real weights
                try:
                    tree = self._judge(
                        self.metering.measure_spec(entry.spec, tree, dtype=entry.inputs.dtype)
                    )
                except (HardwareUnavailable, ModelError) as exc:
                    raise ConfigError(
                        f"{self.budgets.location(entry.line)}: model {entry.name!r}: {exc}"
                    ) from None
        self._cache[entry.name] = tree
        return tree

    def predict_model(
        self,
        model: Any,
        inputs: Any,
        *,
        name: str,
        batch_size: int | None = None,
        seq_len: int | None = None,
    ) -> EnergyTree:
        """Trace a model built in test code on its example ``inputs`` (a tensor, a tuple or list
        of positional inputs, or a mapping of keyword inputs), predict it, and measure it when
        metering. ``inputs`` a :class:`~predictor.trace.workload.Workload`: the model (a
        causal LM) generates, and the tree returned is its mean decode step's, with the
        generation's summary in ``meta["generation"]``."""
        from predictor.gate.timeout import time_limit
        from predictor.learn.profile import profile_counting
        from predictor.trace.inputs import split_inputs
        from predictor.trace.tracer import build_tree
        from predictor.trace.workload import Workload

        if isinstance(inputs, Workload):  # a generation: predicted, never metered
            with time_limit(self.options.timeout_s, f"model {name!r}"):
                return predict_generation_model(model, inputs, self.profile, name=name).decode_step
        with time_limit(self.options.timeout_s, f"model {name!r}"):
            tree = build_tree(
                model,
                inputs,
                name=name,
                batch_size=batch_size,
                seq_len=seq_len,
                counting_mode=profile_counting(self.profile),
            )
            predicted = self.profile.predict(tree)
        if self.metering is None:
            return predicted
        args, kwargs = split_inputs(inputs, name=name)
        return self._judge(self.metering.measure(model, predicted, kwargs if kwargs else args))

    def _judge(self, outcome: Outcome) -> EnergyTree:
        """A metering outcome -> the tree the budgets judge (per ``options.check``), with the
        metering's note kept in ``tree.meta["metering"]``."""
        from predictor.measure.metering import tree_for_check

        measured = outcome.tree
        measured.meta["metering"] = {
            "measured": outcome.measured,
            "note": outcome.note,
            "gaps": list(outcome.gaps),
        }
        return tree_for_check(measured, self.options.check)

    # ------------------------------------------------------------------ checking

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
        default ``name``, that the file has), the markers that apply to ``name``, and the base
        report when comparing (its model of the same name and ``inputs``)."""
        entry = next(
            (e for e in map(self.budgets.get, entry_names or (name,)) if e is not None), None
        )
        result = check_tree(
            tree, entry, name=name, extra=[m for m in markers if m.applies_to(name)]
        )
        checks = list(result.checks)
        warnings = list(result.warnings)
        max_extrapolated = entry.max_extrapolated if entry is not None else None
        if max_extrapolated is None:
            max_extrapolated = self.budgets.max_extrapolated
        if max_extrapolated is not None:
            checks.append(extrapolation_check(name, tree, max_extrapolated))
        metering = tree.meta.get("metering")
        if isinstance(metering, dict) and not metering.get("measured", True):
            warnings.append(str(metering.get("note", "")))
        if self.base_mismatch is not None:
            warnings.append(f"{name}: not compared with the base report: {self.base_mismatch}")
        elif self.base is not None:
            base = self.base.model(name, inputs, nodeid)
            others = sorted(
                {m.inputs for m in self.base.models if m.name == name and m.inputs != inputs},
                key=str,
            )
            if base is None and others:
                warnings.append(
                    f"{name}: NOT COMPARED with the base report {self.options.compare}: its "
                    f"inputs differ (base: {'; '.join(f'({o})' for o in others)}; this run: "
                    f"({inputs})), so the energies would differ by the inputs, not by the change; "
                    "give both runs the same inputs to compare"
                )
            elif base is None:
                with_inputs = f" with inputs {inputs}" if inputs else ""
                warnings.append(
                    f"{name}: not in the base report {self.options.compare}{with_inputs}"
                )
            else:
                tolerance = entry.tolerance if entry is not None else self.budgets.tolerance
                checks += compare_tree(name, tree, base.tree, tolerance)
        return dataclasses.replace(
            result,
            source=source,
            spec=spec,
            nodeid=nodeid,
            checks=checks,
            warnings=warnings,
            inputs=inputs,
        )

    def run_entry(
        self, entry: ModelBudget, *, nodeid: str, markers: Sequence[MarkerBudget] = ()
    ) -> ModelResult:
        """Predict and check one budgets-file entry (not recorded: the caller records it)."""
        tree = self.predict_entry(entry)
        return self.evaluate(
            entry.name,
            tree,
            source="budgets",
            nodeid=nodeid,
            spec=entry.spec,
            markers=markers,
            inputs=entry.inputs.describe() if entry.inputs is not None else None,
        )

    def failures(self, result: ModelResult) -> list[Check]:
        """The violations that fail the test now: all of them, except (when updating the
        budgets file) those of the file's budgets, which the update raises."""
        if self.options.update is None:
            return result.violations
        return [c for c in result.violations if c.origin != "budgets"]

    # ------------------------------------------------------------------ updating

    def update_budgets(self, *, write: bool = True) -> BudgetsUpdate | None:
        """Rewrite the budgets file's budgets for the models that ran
        (:func:`predictor.gate.budgets_update.plan_update`, with ``options.update`` and
        ``options.headroom``), write it atomically unless ``write`` is False, and re-check the
        results against the new budgets. None when there is no budgets file or no update."""
        if self.options.update is None or self.budgets.path is None:
            return None
        from predictor.files import write_text_atomic
        from predictor.gate.budgets import read_budgets_text
        from predictor.gate.budgets_update import plan_update

        trees: dict[str, list[EnergyTree]] = {}
        for result in self._results:
            if result.entry is not None:
                trees.setdefault(result.entry, []).append(result.tree)
        path = self.budgets.path
        update = plan_update(
            read_budgets_text(path),
            trees,
            headroom=self.options.headroom,
            all_budgets=self.options.update == "all",
            path=path,
        )
        if not update.changed or not write:
            return update
        mode = path.stat().st_mode & 0o7777
        write_text_atomic(path, update.new_text)
        path.chmod(mode)  # the file keeps its permissions (the atomic write makes a new file)
        self.budgets = load_budgets(path)
        self._results = [self._recheck(r) for r in self._results]
        return update

    def _recheck(self, result: ModelResult) -> ModelResult:
        """``result`` with its budgets-file checks made again against the file as it is now."""
        entry = self.budgets.get(result.entry) if result.entry is not None else None
        if entry is None:
            return result
        fresh = check_tree(result.tree, entry, name=result.name)
        kept = [c for c in result.checks if c.origin != "budgets"]
        return dataclasses.replace(result, checks=[*fresh.checks, *kept])

    def run_budgets(self, nodeid_prefix: str) -> None:
        """Run every entry of the budgets file that has inputs, recording each result, or its
        configuration error and going on (what ``irene budgets check`` does; pytest runs each
        entry as its own test item). Entries are named ``{nodeid_prefix}::{name}``."""
        for entry in iter_collected(self.budgets):
            self.record_entry_run(entry.name)
            try:
                result = self.run_entry(entry, nodeid=f"{nodeid_prefix}::{entry.name}")
            except ConfigError as exc:
                self.record_config_error(str(exc))
                continue
            self.record([result])

    # ------------------------------------------------------------------ outputs

    @property
    def exit_code(self) -> int:
        """0 every check passed, 1 a budget exceeded, 4 a configuration error."""
        if self._config_errors:
            return ConfigError.exit_code
        return 0 if self.report().passed else 1

    def report(self) -> Report:
        return Report(
            models=list(self._results),
            profile=profile_identity(self.profile),
            versions=library_versions(),
            budgets_file=str(self.budgets.path) if self.budgets.path is not None else None,
            warnings=[w for r in self._results for w in r.warnings],
            errors=list(self._config_errors),
        )

    def markdown(self, report: Report | None = None) -> tuple[str, str]:
        """``(kind, text)``: the Markdown diff against the base report when comparing, else the
        run's summary."""
        report = report or self.report()
        picture = self.options.html.name if self.options.html is not None else None
        if self.base is not None:
            from predictor.gate.diff import diff_reports, render_markdown

            diff = diff_reports(self.base, report)
            return "energy Markdown diff", render_markdown(diff, picture=picture)
        from predictor.gate.summary import render_summary_markdown

        return "energy Markdown summary", render_summary_markdown(report, picture=picture)

    def write_outputs(self) -> list[str]:
        """Write the JSON report and the Markdown file the options name (atomically); returns
        one line per file written. An OutputError / ConfigError names a file that could not
        be written."""
        from predictor.files import write_text_atomic
        from predictor.gate.report import write_report

        if all(p is None for p in (self.options.report, self.options.markdown, self.options.html)):
            return []
        report = self.report()
        written: list[str] = []
        if self.options.report is not None:
            path = write_report(report, self.options.report)
            written.append(f"energy JSON report written to {path}")
        if self.options.markdown is not None:
            what, text = self.markdown(report)
            path = write_text_atomic(self.options.markdown, text)
            written.append(f"{what} written to {path}")
        if self.options.html is not None:
            from predictor.gate.html import render_html

            compared = self.base if self.base_mismatch is None else None
            path = write_text_atomic(self.options.html, render_html(report, compared))
            written.append(f"energy HTML picture written to {path}")
        return written

    def close(self) -> None:
        if self.metering is not None:
            self.metering.close()


def _profile_mismatch(base: Report, profile: Profile) -> str | None:
    """``base report predicted by 'a' (sha256 ...), this run by 'b' (...)``, or None when the
    base report names the same profile payload (or names none: an older report)."""
    theirs = base.profile.get("sha256")
    ours = profile_identity(profile)
    if not theirs or theirs == ours["sha256"]:
        return None
    return (
        f"it was predicted by profile {base.profile.get('name')!r} (sha256 {str(theirs)[:12]}), "
        f"this run by {ours['name']!r} (sha256 {str(ours['sha256'])[:12]}); re-run the base with "
        "this profile to compare"
    )


def trace_spec(
    spec: str,
    inputs: Inputs,
    *,
    counting_mode: str = "irene",
    attn_implementation: str = "eager",
) -> EnergyTree:
    """Build a model from its spec (zoo name or ``package.module:factory``) on the meta device
    and trace it on ``inputs``: how every command and the gate build a model. ModelError /
    TraceError as the zoo raises them."""
    from predictor.trace.zoo import build_zoo_tree

    return build_zoo_tree(
        spec,
        inputs.batch_size,
        inputs.seq_len,
        counting_mode=counting_mode,
        attn_implementation=attn_implementation,
        inputs=inputs.named(),
        dtype=inputs.dtype,
    )


def predict_spec(entry: ModelBudget, profile: Profile) -> EnergyTree:
    """Build an entry's model from its spec and inputs (:func:`trace_spec`, in the counting the
    profile was trained on) and predict it; the tree's root takes the entry's name. A
    generation entry's tree is its mean decode step's (:func:`predict_generation_spec`), with
    the generation's summary in its meta."""
    from predictor.learn.profile import profile_counting

    if entry.inputs is None:
        raise ModelError(f"model {entry.name!r} has no inputs to build it with")
    if entry.inputs.generation:
        return predict_generation_spec(
            entry.spec, entry.inputs, profile, name=entry.name
        ).decode_step
    tree = trace_spec(entry.spec, entry.inputs, counting_mode=profile_counting(profile))
    tree.root.name = entry.name
    return profile.predict(tree)


def predict_generation_spec(
    spec: str, inputs: Inputs, profile: Profile, *, name: str | None = None
) -> GenerationPrediction:
    """Build a spec's causal LM in the workload's dtype on the meta device, trace the
    generation ``inputs`` describe (prefill, decode steps) in the profile's counting and
    predict it (:func:`predictor.learn.generation.predict_generation`)."""
    from predictor.trace.generation import build_generation_model

    return predict_generation_model(
        build_generation_model(spec, inputs.workload().dtype),
        inputs.workload(),
        profile,
        name=name or spec,
    )


def predict_generation_model(
    model: Any, workload: Any, profile: Profile, *, name: str
) -> GenerationPrediction:
    """Trace and predict a causal LM (an ``nn.Module``) through a
    :class:`~predictor.trace.workload.Workload`: in the model's own dtype, or cast in place to
    the workload's ``dtype`` when it names one."""
    from predictor.learn.generation import predict_generation
    from predictor.learn.profile import profile_counting
    from predictor.trace.dtypes import DTYPE_NAMES
    from predictor.trace.generation import model_in_dtype, trace_generation

    if workload.dtype is not None:  # cast (in place) only to a dtype the workload names
        model = model_in_dtype(model, workload.dtype)
    first = next(model.parameters(), None)
    computed = None if first is None else str(first.dtype).removeprefix("torch.")
    if workload.dtype is None and computed in DTYPE_NAMES:  # say which dtype it computes in
        workload = dataclasses.replace(workload, dtype=computed)
    trees = trace_generation(model, workload, name=name, counting_mode=profile_counting(profile))
    return predict_generation(trees, profile)


def _yaml_wording(exc: IreneError, entry: ModelBudget) -> str:
    """A model error's message, with the fix worded for the budgets file."""
    if isinstance(exc, SequenceTooLong):
        return (
            f"inputs.seq_len: {exc.seq_len} exceeds the model's {exc.limit} positions; "
            f"set inputs.seq_len to {exc.limit} or less"
        )
    return str(exc)
