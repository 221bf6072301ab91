"""pytest hooks and options of the energy gate; the gate itself is :mod:`predictor.gate.engine`.

Without ``--energy`` (or ``energy = true`` in the ini file) the plugin only registers its
options and marker: it imports no torch, collects nothing and changes no test. The gate's
state lives in one :class:`~predictor.gate.engine.EnergyGate` kept in ``config.stash``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from predictor.errors import ConfigError, IreneError
from predictor.gate.engine import EnergyGate, open_gate
from predictor.gate.options import OPTIONS
from pytest_irene.items import GATE_KEY, RESULTS_KEY, BudgetItem, BudgetsFile, EnergyProbe
from pytest_irene.marks import ENERGY_BUDGET_HELP, unmatched_marker_models

__all__ = [
    "energy",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_report_header",
    "pytest_runtest_makereport",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Every option of :data:`predictor.gate.options.OPTIONS`, as a flag and an ini key. CLI
    defaults are None so the one resolver can tell "not given" from a value."""
    group = parser.getgroup("irene", "energy budgets (pytest-irene)")
    for opt in OPTIONS:
        if opt.kind == "bool":
            group.addoption(
                opt.flag, action="store_true", dest=opt.ini, default=None, help=opt.help
            )
            if opt.key == "enabled":
                group.addoption(
                    "--no-energy",
                    action="store_false",
                    dest=opt.ini,
                    default=None,
                    help="turn the energy gate off even if the ini file sets energy = true",
                )
            # A bool, so TOML's native `energy = true` works; a bad value is reported by
            # pytest_configure naming the file and the key (pytest's own error names neither).
            parser.addini(opt.ini, f"like {opt.flag}", type="bool", default=None)
            continue
        group.addoption(
            opt.flag,
            dest=opt.ini,
            default=None,
            metavar=opt.metavar,
            choices=opt.choices or None,
            help=opt.help,
        )
        parser.addini(opt.ini, f"like {opt.flag}", type="string", default=None)


def _gate(config: pytest.Config) -> EnergyGate | None:
    return config.stash.get(GATE_KEY, None)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")  # set by pytest-xdist on its workers


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", ENERGY_BUDGET_HELP)
    ini_name = str(config.inipath or "the ini file")
    cli = {opt.key: config.getoption(opt.ini) for opt in OPTIONS}
    ini: dict[str, Any] = {}
    for opt in OPTIONS:
        try:
            ini[opt.key] = config.getini(opt.ini)
        except (ValueError, pytest.UsageError) as exc:  # `energy = maybe`: pytest's bool parsing
            raise pytest.UsageError(
                f"{ini_name}: {opt.ini} must be true or false ({exc})"
            ) from None
    try:
        gate = open_gate(
            cli,
            ini,
            invocation_dir=config.invocation_params.dir,
            ini_dir=config.inipath.parent if config.inipath else config.rootpath,
            rootdir=config.rootpath,
            ini_name=ini_name,
            file_args=_file_args(config),
        )
    except IreneError as exc:
        raise pytest.UsageError(str(exc)) from None
    if gate is None:
        return
    config.stash[GATE_KEY] = gate
    config.pluginmanager.register(_Aggregator(gate), "irene-aggregator")


def _file_args(config: pytest.Config) -> list[str]:
    """Paths given on the command line (not from testpaths), relative to the invocation dir."""
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        return []
    return [str(arg) for arg in config.args]


def pytest_report_header(config: pytest.Config) -> str | None:
    gate = _gate(config)
    if gate is None:
        return None
    budgets = gate.budgets.path or f"{gate.options.budgets} (absent)"
    return f"energy: profile {gate.profile.name}, budgets {budgets}"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    gate = _gate(parent.config)
    if gate is None or not gate.is_budgets_file(file_path):
        return None
    collector: pytest.Collector = BudgetsFile.from_parent(parent, path=file_path)
    return collector


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist (controller): tell workers whether to add the budgets file's items."""
    gate = _gate(node.config)
    if gate is not None:
        node.workerinput["irene_add_budgets"] = _should_add_budgets(node.config)


def _should_add_budgets(config: pytest.Config) -> bool:
    """Run the budgets file's models: always when the file is named (--energy-budgets or the
    ini's energy_budgets), else only when no paths were given (``pytest --energy``)."""
    if _is_worker(config):
        return bool(config.workerinput.get("irene_add_budgets", False))  # type: ignore[attr-defined]
    gate = _gate(config)
    if gate is not None and gate.options.sources.get("budgets") in ("cli", "ini"):
        return True
    return config.args_source is not pytest.Config.ArgsSource.ARGS


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Also run the budgets file's models, wherever it is (see :func:`_should_add_budgets`)."""
    gate = _gate(config)
    if gate is None or gate.budgets_collected or gate.budgets.path is None:
        return
    if not _should_add_budgets(config):
        return
    collector = BudgetsFile.from_parent(session, path=gate.options.budgets)
    items.extend(i for i in session.genitems(collector) if isinstance(i, pytest.Item))


@pytest.fixture
def energy(request: pytest.FixtureRequest) -> EnergyProbe:
    """``energy(model, inputs, *, name=...) -> EnergyTree``: predict a model built in test code
    on its example inputs (one tensor, a tuple of positional tensors, or a dict of keyword
    tensors) and check its budgets (the budgets file's entry for ``name`` and the test's
    ``energy_budget`` markers). Skipped when the gate is off."""
    gate = _gate(request.config)
    if gate is None:
        pytest.skip("energy gate is off: run pytest with --energy (or energy = true in the ini)")
    return EnergyProbe(gate, request.node)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    gate = _gate(item.config)
    if gate is None:
        return report
    if isinstance(item, BudgetItem):  # strings on the report: pytest-xdist carries them as is
        report.irene_budget_entry = item.entry.name  # type: ignore[attr-defined]
    error = call.excinfo.value if call.excinfo is not None else None
    if call.when == "setup" and isinstance(error, ConfigError):
        report.irene_config_error = str(error)  # type: ignore[attr-defined]
        report.longrepr = str(error)
    if call.when != "call":
        return report
    from predictor.gate.summary import violation_text

    results = item.stash.get(RESULTS_KEY, [])
    if report.passed and not isinstance(item, BudgetItem):
        if not results and any(True for _ in item.iter_markers("energy_budget")):
            report.outcome = "failed"
            report.longrepr = (
                f"{item.nodeid}: @pytest.mark.energy_budget needs the test to predict a model "
                "with the `energy` fixture: energy(model, inputs, name=...)"
            )
        elif unmatched := unmatched_marker_models(item, results):
            report.outcome = "failed"
            names = ", ".join(repr(r.name) for r in results)
            report.longrepr = (
                f"{item.nodeid}: @pytest.mark.energy_budget(model={unmatched[0]!r}) matched no "
                f"model this test predicted ({names}); use one of these names or pass "
                f"name={unmatched[0]!r} to the `energy` fixture"
            )
        elif failures := [c for r in results for c in gate.failures(r)]:
            report.outcome = "failed"
            report.longrepr = violation_text(failures)
    elif (
        report.failed
        and not isinstance(item, BudgetItem)
        and (failures := [c for r in results for c in gate.failures(r)])
    ):
        # The test failed on its own: its violations go with its failure, not lost (the
        # summary does not repeat them)
        report.sections.append(("energy budget exceeded", violation_text(failures)))
    # A JSON string on the report: pytest-xdist carries it to the controller as is.
    if results:
        payload = json.dumps([r.to_dict() for r in results], allow_nan=False)
        report.irene_energy = payload  # type: ignore[attr-defined]
    return report


class _Aggregator:
    """Registered when the gate is on: gathers the results shipped on test reports (on the
    controller under pytest-xdist, where the workers' reports arrive)."""

    def __init__(self, gate: EnergyGate) -> None:
        self.gate = gate

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = getattr(report, "irene_budget_entry", None)
        if entry:
            self.gate.record_entry_run(str(entry))
        error = getattr(report, "irene_config_error", None)
        if error:
            self.gate.record_config_error(str(error))
        payload = getattr(report, "irene_energy", None)
        if payload and report.when == "call":
            self.gate.record_payload(json.loads(payload))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    gate = _gate(config)
    if gate is None:
        return
    from pytest_irene.terminal import write_terminal_summary

    write_terminal_summary(terminalreporter, gate)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int | pytest.ExitCode) -> None:
    gate = _gate(session.config)
    if gate is None:
        return
    gate.close()
    if _is_worker(session.config):
        return
    from pytest_irene.terminal import say_lines, start_line

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    unfinished = _unfinished(session, exitstatus)
    if unfinished is not None:  # a partial report would read as a complete, passing one
        kept = [str(p) for p in (gate.options.report, gate.options.markdown) if p is not None]
        if kept:
            say_lines(
                reporter,
                session.config,
                [
                    f"energy gate: {unfinished}; reports not written ({', '.join(kept)} left as they were)"
                ],
            )
        return
    if gate.config_errors:  # budgets-file entries that could not be built: a usage error
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
    try:
        updated = _update_budgets(gate)
        written = gate.write_outputs()
    except IreneError as exc:
        text = f"ERROR: energy gate: {exc}"
        if reporter is not None:
            start_line(reporter, session.config)
            reporter.write_line(text, red=True)
        else:
            print(text, file=sys.stderr)
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
        return
    say_lines(reporter, session.config, [*updated, *written])


def _update_budgets(gate: EnergyGate) -> list[str]:
    """``--energy-update``: rewrite the budgets file and say what changed (with its diff)."""
    if gate.options.update is None:
        return []
    if gate.config_errors:
        return [
            f"energy budgets not updated: {len(gate.config_errors)} model(s) could not be built"
        ]
    from predictor.gate.budgets_update import update_lines

    return update_lines(gate.update_budgets())


def _unfinished(session: pytest.Session, exitstatus: int | pytest.ExitCode) -> str | None:
    """Why the run did not complete (interrupted, stopped early, an internal error), or None."""
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return "the run was interrupted"
    if exitstatus == pytest.ExitCode.INTERNAL_ERROR:
        return "the run ended with an internal error"
    if session.shouldstop:
        return f"the run stopped early ({session.shouldstop})"
    if session.shouldfail:
        return f"the run stopped early ({session.shouldfail})"
    return None
