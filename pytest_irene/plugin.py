"""pytest hooks and options of the energy gate; the state lives in predictor.gate.engine.

Without ``--energy`` (or ``energy = true`` in the ini file) the plugin only registers its
options and marker: it imports no torch, collects nothing and changes no test.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from predictor.errors import ConfigError, IreneError
from predictor.gate.engine import OPTIONS, EnergyGate, resolve_settings
from pytest_irene.items import EnergyProbe

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

_HELP = {
    "budgets": "energy budgets file (default: energy_budgets.yaml in the rootdir)",
    "profile": "hardware profile name or path that predicts (default: the budgets file's, "
    "else the shipped one)",
    "report": "write the JSON energy report (every predicted tree and check) to this path",
    "compare": "base JSON report: fail modules that grew beyond the tolerance",
    "markdown": "write a Markdown summary (the diff when comparing) to this path",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("irene", "energy budgets (pytest-irene)")
    group.addoption(
        "--energy",
        action="store_true",
        dest="energy",
        default=None,
        help="predict the inference energy of the models under test and check energy budgets",
    )
    group.addoption(
        "--no-energy",
        action="store_false",
        dest="energy",
        default=None,
        help="turn the energy gate off even if the ini file sets energy = true",
    )
    for key, text in _HELP.items():
        flag, _ = OPTIONS[key]
        group.addoption(flag, dest=f"energy_{key}", default=None, metavar="PATH", help=text)
    from predictor.measure import metering

    metering.add_options(group, parser)
    # A bool, so TOML's native `energy = true` works; a bad value is reported by
    # pytest_configure naming the file and the key (pytest's own error names neither).
    parser.addini("energy", "turn the energy gate on (like --energy)", type="bool", default=None)
    for key, text in _HELP.items():
        parser.addini(f"energy_{key}", text, type="string", default=None)


def _gate(config: pytest.Config) -> EnergyGate | None:
    from pytest_irene.items import GATE_KEY

    return config.stash.get(GATE_KEY, None)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")  # set by pytest-xdist on its workers


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "energy_budget(budget, module=None, model=None): an energy budget such as '150 mJ' for "
        "the models this test hands to the `energy` fixture (module: an fqn glob; none = the "
        "whole model)",
    )
    cli = {key: config.getoption(f"energy_{key}") for key in OPTIONS if key != "enabled"}
    cli["enabled"] = config.getoption("energy")
    ini_name = str(config.inipath or "the ini file")
    ini = {key: config.getini(ini_key) for key, (_, ini_key) in OPTIONS.items() if key != "enabled"}
    try:
        ini["enabled"] = config.getini("energy")
    except (ValueError, pytest.UsageError) as exc:  # `energy = maybe`: pytest's bool parsing
        raise pytest.UsageError(f"{ini_name}: energy must be true or false ({exc})") from None
    try:
        settings = resolve_settings(
            cli,
            ini,
            invocation_dir=config.invocation_params.dir,
            ini_dir=config.inipath.parent if config.inipath else config.rootpath,
            rootdir=config.rootpath,
            ini_name=ini_name,
            file_args=_file_args(config),
        )
        if not settings.enabled:
            return
        gate = EnergyGate.load(settings, metering=_metering(config))
    except IreneError as exc:
        raise pytest.UsageError(str(exc)) from None
    from pytest_irene.items import GATE_KEY

    config.stash[GATE_KEY] = gate
    config.pluginmanager.register(_Aggregator(gate), "irene-aggregator")


def _file_args(config: pytest.Config) -> list[str]:
    """Paths given on the command line (not from testpaths), relative to the invocation dir."""
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        return []
    return [str(arg) for arg in config.args]


def _metering(config: pytest.Config) -> Any | None:
    """The metering state when --energy-meter (or energy_meter in the ini) names a meter."""
    from predictor.measure.metering import METERING_OPTIONS, Metering, resolve_metering

    cli = {key: config.getoption(f"energy_{key}") for key in METERING_OPTIONS}
    ini = {key: config.getini(ini_key) for key, (_, ini_key) in METERING_OPTIONS.items()}
    settings = resolve_metering(cli, ini, ini_name=str(config.inipath or "the ini file"))
    return Metering(settings) if settings.enabled else None


def pytest_report_header(config: pytest.Config) -> str | None:
    gate = _gate(config)
    if gate is None:
        return None
    budgets = gate.budgets.path or f"{gate.settings.budgets} (absent)"
    return f"energy: profile {getattr(gate.profile, 'name', '?')}, budgets {budgets}"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    gate = _gate(parent.config)
    if gate is None or not gate.is_budgets_file(file_path):
        return None
    from pytest_irene.items import BudgetsFile

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
    if gate is not None and gate.settings.sources.get("budgets") in ("cli", "ini"):
        return True
    return config.args_source is not pytest.Config.ArgsSource.ARGS


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Also run the budgets file's models, wherever it is (see :func:`_should_add_budgets`)."""
    gate = _gate(config)
    if gate is None or gate.budgets_file_collected or gate.budgets.path is None:
        return
    if not _should_add_budgets(config):
        return
    from pytest_irene.items import BudgetsFile

    collector = BudgetsFile.from_parent(session, path=gate.settings.budgets)
    items.extend(i for i in session.genitems(collector) if isinstance(i, pytest.Item))


@pytest.fixture
def energy(request: pytest.FixtureRequest) -> EnergyProbe:
    """``energy(model, inputs, *, name=...) -> EnergyTree``: predict a model built in test code
    on ``inputs`` (a tensor, a tuple of positional inputs or a dict of keyword inputs) and check
    its budgets (the budgets file's entry for ``name`` and the test's ``energy_budget``
    markers). Skipped when the gate is off."""
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
    from pytest_irene.items import RESULTS_KEY, BudgetItem

    if isinstance(item, BudgetItem):  # strings on the report: pytest-xdist carries them as is
        report.irene_budget_entry = item.entry.name  # type: ignore[attr-defined]
    error = call.excinfo.value if call.excinfo is not None else None
    if call.when == "setup" and isinstance(error, ConfigError):
        report.irene_config_error = str(error)  # type: ignore[attr-defined]
        report.longrepr = str(error)
    if call.when != "call":
        return report
    from predictor.gate.engine import violation_text

    results = item.stash.get(RESULTS_KEY, [])
    if report.passed and not isinstance(item, BudgetItem):
        if not results and any(True for _ in item.iter_markers("energy_budget")):
            report.outcome = "failed"
            report.longrepr = (
                f"{item.nodeid}: @pytest.mark.energy_budget needs the test to predict a model "
                "with the `energy` fixture: energy(model, input_ids, name=...)"
            )
        elif unmatched := _unmatched_marker_models(item, results):
            report.outcome = "failed"
            names = ", ".join(repr(r.name) for r in results)
            report.longrepr = (
                f"{item.nodeid}: @pytest.mark.energy_budget(model={unmatched[0]!r}) matched no "
                f"model this test predicted ({names}); use one of these names or pass "
                f"name={unmatched[0]!r} to the `energy` fixture"
            )
        elif any(not r.passed for r in results):
            report.outcome = "failed"
            report.longrepr = violation_text(results)
    # A JSON string on the report: pytest-xdist carries it to the controller as is.
    if results:
        payload = json.dumps([r.to_dict() for r in results], allow_nan=False)
        report.irene_energy = payload  # type: ignore[attr-defined]
    return report


def _unmatched_marker_models(item: pytest.Item, results: list[Any]) -> list[str]:
    """``model=`` values of the test's energy_budget markers that name no predicted model."""
    names = {r.name for r in results}
    out = []
    for mark in item.iter_markers("energy_budget"):
        model = mark.kwargs.get("model")
        if isinstance(model, str) and model not in names:
            out.append(model)
    return out


class _Aggregator:
    """Registered when the gate is on: gathers the results shipped on test reports (on the
    controller under pytest-xdist, where the workers' reports arrive)."""

    def __init__(self, gate: EnergyGate) -> None:
        self.gate = gate

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = getattr(report, "irene_budget_entry", None)
        if entry:
            self.gate.entries_run.add(str(entry))
        error = getattr(report, "irene_config_error", None)
        if error:
            self.gate.config_errors.append(str(error))
        payload = getattr(report, "irene_energy", None)
        if payload and report.when == "call":
            self.gate.add(json.loads(payload))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    gate = _gate(config)
    if gate is None:
        return
    from pytest_irene.report import write_terminal_summary

    write_terminal_summary(terminalreporter, gate)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    gate = _gate(session.config)
    if gate is None:
        return
    if gate.metering is not None:
        gate.metering.close()
    if _is_worker(session.config):
        return
    from pytest_irene.report import write_files

    if gate.config_errors:  # budgets-file entries that could not be built: a usage error
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
    error = write_files(session.config, gate)
    if error is not None:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = f"ERROR: energy gate: {error}"
        if reporter is not None:
            from pytest_irene.report import start_line

            start_line(reporter, session.config)
            reporter.write_line(text, red=True)
        else:
            print(text, file=sys.stderr)
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
