"""The pytest plugin end to end (pytester): budgets items, fixture, marker, config sources,
errors, xdist, JUnit properties, comparisons against a base report, and inertness when off.

Expected energies come from the library itself (the same zoo + shipped profile the plugin
uses); budgets are set just under and just over them, so each test can fail.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from predictor.gate.checks import Check, module_nodes
from predictor.gate.units import format_energy
from predictor.trace.tree import EnergyTree

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_BERT = "examples.tiny_models:tiny_bert"
TINY_GPT2 = "examples.tiny_models:tiny_gpt2"
INPUTS = "{batch_size: 2, seq_len: 16}"


@pytest.fixture(scope="module")
def predicted() -> dict[str, EnergyTree]:
    """The plugin's expected predictions for the two tiny example models (b2 s16)."""
    from predictor.learn.profile import load_profile, profile_counting
    from predictor.trace.zoo import build_zoo_tree

    profile = load_profile(None)
    mode = profile_counting(profile)  # the gate traces in the profile's counting
    return {
        spec: profile.predict(build_zoo_tree(spec, 2, 16, counting_mode=mode))
        for spec in (TINY_BERT, TINY_GPT2)
    }


def _layer0(predicted: dict[str, EnergyTree]) -> float:
    energy = module_nodes(predicted[TINY_BERT])["encoder.layer.0"].energy_j
    assert energy is not None and energy > 0
    return energy


def _total(predicted: dict[str, EnergyTree], spec: str = TINY_BERT) -> float:
    energy = predicted[spec].root.energy_j
    assert energy is not None and energy > 0
    return energy


def _j(joules: float) -> str:
    """An energy for a budgets file or marker, exact to the joule's 12th digit."""
    return f"{joules:.12g} J"


@pytest.fixture
def project(pytester: pytest.Pytester, predicted: dict[str, EnergyTree]) -> pytest.Pytester:
    """A pytester folder holding the example factories, as a user's project would.

    Depends on ``predicted`` so that numpy, torch and the transformers models are imported
    before any in-process run: pytester drops modules first imported inside a run, and numpy
    cannot be imported twice in one process."""
    (pytester.path / "examples").mkdir()
    for name in ("__init__.py", "tiny_models.py"):
        shutil.copy(REPO_ROOT / "examples" / name, pytester.path / "examples" / name)
    return pytester


def _budgets(pytester: pytest.Pytester, body: str, name: str = "energy_budgets.yaml") -> Path:
    path = pytester.path / name
    path.write_text("version: 1\nmodels:\n" + body, encoding="utf-8")
    return path


def _tiny_bert_entry(modules: str = "", budget: str | None = None, name: str = "tiny-bert") -> str:
    text = f"  {name}:\n    model: {TINY_BERT}\n    inputs: {INPUTS}\n"
    if budget:
        text += f"    budget: {budget}\n"
    if modules:
        text += "    modules:\n" + "".join(f"      {line}\n" for line in modules.splitlines())
    return text


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", *args)


# ---------------------------------------------------------------- budgets items


@pytest.mark.parametrize(("factor", "code"), [(1.001, 0), (0.999, 1)], ids=["under", "over"])
def test_module_budget_just_under_and_over(
    project: pytest.Pytester, predicted: dict[str, EnergyTree], factor: float, code: int
) -> None:
    limit = _layer0(predicted) * factor
    _budgets(project, _tiny_bert_entry(f'"encoder.layer.*": {_j(limit)}'))
    result = _run(project, "--energy")
    assert result.ret == pytest.ExitCode(code)
    result.assert_outcomes(passed=1 - code, failed=code)
    if code:
        message = Check("tiny-bert", "encoder.layer.0", None, _layer0(predicted), limit).message()
        assert message.endswith("budget (+0.1%)")
        result.stdout.fnmatch_lines(
            [
                f"  {message}",
                "FAILED energy_budgets.yaml::tiny-bert - encoder.layer.0 +0.1% over budget*",
            ]
        )


@pytest.mark.parametrize(("factor", "code"), [(1.001, 0), (0.999, 1)], ids=["under", "over"])
def test_whole_model_budget(
    project: pytest.Pytester, predicted: dict[str, EnergyTree], factor: float, code: int
) -> None:
    limit = _total(predicted) * factor
    _budgets(project, _tiny_bert_entry(budget=_j(limit)))
    result = _run(project, "--energy", "energy_budgets.yaml")
    assert result.ret == pytest.ExitCode(code)
    if code:
        line = Check("tiny-bert", None, None, _total(predicted), limit).message()
        result.stdout.fnmatch_lines([f"  {line}"])


def test_every_violation_is_listed(
    project: pytest.Pytester, predicted: dict[str, EnergyTree]
) -> None:
    layer = _layer0(predicted)
    _budgets(
        project,
        _tiny_bert_entry(f'"encoder.layer.*": {_j(layer * 0.5)}', budget=_j(_total(predicted) / 2)),
    )
    result = _run(project, "--energy")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    lines = [
        f"  tiny-bert: {format_energy(_total(predicted))} > * budget (+100.0%)",
        "  tiny-bert / encoder.layer.0: * > * budget (+100.0%)",
        "  tiny-bert / encoder.layer.1: * > * budget (+100.0%)",
    ]
    result.stdout.fnmatch_lines(
        ["tiny-bert +100.0% over budget, the worst of 3 violations:", *lines]
    )
    # each violation is printed once: under the failing item, not again in the summary
    assert len(re.findall(r"> \S+ \S+ budget \(\+100\.0%\)", result.stdout.str())) == 3
    # the short summary line names the worst
    result.stdout.fnmatch_lines(
        ["FAILED energy_budgets.yaml::tiny-bert - tiny-bert +100.0% over budget*"]
    )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            f"  nope:\n    model: examples.tiny_models:nope\n    inputs: {INPUTS}\n",
            "*energy_budgets.yaml:3: model 'nope': *has no attribute 'nope'*",
        ),
        (
            f"  long:\n    model: {TINY_BERT}\n    inputs: {{batch_size: 1, seq_len: 100000}}\n",
            "*energy_budgets.yaml:3: model 'long': inputs.seq_len: 100000 exceeds the model's "
            "* positions; set inputs.seq_len to * or less",
        ),
    ],
    ids=["unknown-factory", "seq-len"],
)
def test_unbuildable_entry_is_a_configuration_error_at_its_line(
    project: pytest.Pytester, entry: str, expected: str
) -> None:
    _budgets(project, entry)
    result = _run(project, "--energy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([expected])
    result.stdout.no_fnmatch_line("*--seq-len*")
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*budget exceeded*")


def test_fixture_model_error_is_a_one_line_failure(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import torch
        from torch import nn

        class Broken(nn.Module):
            def forward(self, x):
                raise RuntimeError("boom")

        def test_broken(energy):
            energy(Broken(), torch.ones(2, 3), name="broken")
        """
    )
    result = _run(project, "--energy")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*energy('broken'): *boom*"])
    result.stdout.no_fnmatch_line("*def __call__*")  # no traceback through the plugin


def test_glob_matching_nothing_is_a_warning(
    project: pytest.Pytester, predicted: dict[str, EnergyTree]
) -> None:
    _budgets(project, _tiny_bert_entry('"decoder.*": 1 J'))
    result = _run(project, "--energy", "--energy-report", "out/head.json")
    assert result.ret == pytest.ExitCode.OK
    warning = "tiny-bert: module glob 'decoder.*' (line 7) matched no module"
    result.stdout.fnmatch_lines([f"warning: {warning}"])
    report = json.loads((project.path / "out" / "head.json").read_text())
    assert report["warnings"] == [warning]
    assert report["models"][0]["energy_j"] == pytest.approx(_total(predicted))
    assert report["models"][0]["tree"]["root"]["name"] == "tiny-bert"


# ---------------------------------------------------------------- configuration errors


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("  a: {budget: 1 J\n", "*energy_budgets.yaml:4: malformed YAML*"),
        ("  a:\n    bugdet: 1 J\n", "*energy_budgets.yaml:4: unknown key 'bugdet' in model 'a'*"),
        (
            "  a:\n    budget: 3 MJ\n",
            "*energy_budgets.yaml:4: model 'a': budget unknown energy unit 'MJ'*",
        ),
    ],
    ids=["malformed", "unknown-key", "bad-unit"],
)
def test_bad_budgets_file_is_a_usage_error(
    pytester: pytest.Pytester, body: str, expected: str
) -> None:
    _budgets(pytester, body)
    result = _run(pytester, "--energy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {expected}"])


def test_budgets_file_named_but_missing_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--energy", "--energy-budgets", "nope.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *nope.yaml: budgets file not found (set by the command line)*"]
    )


# ---------------------------------------------------------------- config sources


def test_ini_turns_the_gate_on_and_no_energy_turns_it_off(
    project: pytest.Pytester, predicted: dict[str, EnergyTree]
) -> None:
    _budgets(project, _tiny_bert_entry(f'"encoder.layer.*": {_j(_layer0(predicted) / 2)}'))
    project.makeini("[pytest]\nenergy = true\n")
    assert _run(project).ret == pytest.ExitCode.TESTS_FAILED
    assert _run(project, "--no-energy").ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_pyproject_sets_the_budgets_file_and_cli_overrides_it(
    project: pytest.Pytester, predicted: dict[str, EnergyTree]
) -> None:
    layer = _layer0(predicted)
    _budgets(project, _tiny_bert_entry(f'"encoder.layer.*": {_j(layer / 2)}'), "tight.yaml")
    _budgets(project, _tiny_bert_entry(f'"encoder.layer.*": {_j(layer * 2)}'), "loose.yaml")
    project.makepyprojecttoml(
        '[tool.pytest.ini_options]\nenergy = true\nenergy_budgets = "tight.yaml"\n'
    )
    # ini: the tight budgets (collected without naming the file)
    assert _run(project).ret == pytest.ExitCode.TESTS_FAILED
    # CLI beats ini
    result = _run(project, "--energy-budgets", "loose.yaml")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)


def test_no_args_adds_the_budgets_file_beside_testpaths(
    project: pytest.Pytester, predicted: dict[str, EnergyTree]
) -> None:
    _budgets(project, _tiny_bert_entry(budget="1 kJ"))
    project.makeini("[pytest]\ntestpaths = tests\n")
    project.mkdir("tests")
    (project.path / "tests" / "test_plain.py").write_text("def test_ok():\n    pass\n")
    result = _run(project, "--energy", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["tests/test_plain.py::test_ok", "energy_budgets.yaml::tiny-bert"])
    result = _run(project, "--energy", "--collect-only", "-q", "tests")  # paths given: only those
    result.stdout.no_fnmatch_line("energy_budgets.yaml::*")
    result = _run(project, "--collect-only", "-q")  # gate off: nothing added
    result.stdout.no_fnmatch_line("energy_budgets.yaml::*")


def test_default_budgets_file_is_at_the_rootdir(
    project: pytest.Pytester, predicted: dict[str, EnergyTree]
) -> None:
    _budgets(project, _tiny_bert_entry(f'"encoder.layer.*": {_j(_layer0(predicted) * 2)}'))
    project.makeini("[pytest]\n")
    sub = project.mkdir("sub")
    (sub / "test_plain.py").write_text("def test_ok():\n    pass\n")
    result = project.runpytest("-p", "no:cacheprovider", "--energy", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["energy_budgets.yaml::tiny-bert", "sub/test_plain.py::test_ok"])


@pytest.mark.parametrize("source", ["cli", "ini", "budgets-file"])
def test_profile_from_each_source(project: pytest.Pytester, source: str) -> None:
    """A profile that does not exist is a usage error naming it, whichever source set it."""
    header = "version: 1\n"
    if source == "budgets-file":
        header += "profile: no-such-profile\n"
    (project.path / "energy_budgets.yaml").write_text(
        header + "models:\n" + _tiny_bert_entry(budget="1 kJ")
    )
    args = ["--energy"]
    if source == "cli":
        args += ["--energy-profile", "no-such-profile"]
    if source == "ini":
        project.makeini("[pytest]\nenergy_profile = no-such-profile\n")
    result = _run(project, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *no-such-profile*"])
    # the command line wins over the others
    result = _run(project, *args, "--energy-profile", "irene-device-1")
    assert result.ret == pytest.ExitCode.OK


def test_report_path_from_ini_and_cli(project: pytest.Pytester) -> None:
    _budgets(project, _tiny_bert_entry(budget="1 kJ"))
    project.makeini("[pytest]\nenergy_report = reports/ini.json\n")
    assert _run(project, "--energy").ret == pytest.ExitCode.OK
    assert (project.path / "reports" / "ini.json").is_file()
    assert _run(project, "--energy", "--energy-report", "cli.json").ret == pytest.ExitCode.OK
    assert (project.path / "cli.json").is_file()


# ---------------------------------------------------------------- fixture and marker

FIXTURE_TEST = """
import pytest
import torch
from examples.tiny_models import tiny_bert

{marks}
def test_model(energy):
    tree = energy(tiny_bert(), {{"input_ids": torch.zeros((2, 16), dtype=torch.long)}}, name="tiny")
    assert tree.root.energy_j > 0
"""


@pytest.mark.parametrize(("factor", "code"), [(1.001, 0), (0.999, 1)], ids=["under", "over"])
def test_fixture_checks_the_budgets_for_its_name(
    project: pytest.Pytester, predicted: dict[str, EnergyTree], factor: float, code: int
) -> None:
    limit = _layer0(predicted) * factor
    _budgets(project, f'  tiny:\n    modules:\n      "encoder.layer.*": {_j(limit)}\n')
    project.makepyfile(FIXTURE_TEST.format(marks=""))
    result = _run(project, "--energy", "test_fixture_checks_the_budgets_for_its_name.py")
    assert result.ret == pytest.ExitCode(code)
    if code:
        line = Check("tiny", "encoder.layer.0", None, _layer0(predicted), limit).message()
        result.stdout.fnmatch_lines([f"  {line}"])


@pytest.mark.parametrize(("factor", "code"), [(1.001, 0), (0.999, 1)], ids=["under", "over"])
def test_marker_budget(
    project: pytest.Pytester, predicted: dict[str, EnergyTree], factor: float, code: int
) -> None:
    limit = _layer0(predicted) * factor
    marks = f'@pytest.mark.energy_budget("{_j(limit)}", module="encoder.layer.*")'
    project.makepyfile(FIXTURE_TEST.format(marks=marks))
    result = _run(project, "--energy")
    assert result.ret == pytest.ExitCode(code)
    if code:
        line = Check("tiny", "encoder.layer.1", None, _layer0(predicted), limit).message()
        result.stdout.fnmatch_lines([f"  {line}"])


def test_marker_without_module_is_the_whole_model(
    project: pytest.Pytester, predicted: dict[str, EnergyTree]
) -> None:
    limit = _total(predicted) * 0.999
    project.makepyfile(FIXTURE_TEST.format(marks=f'@pytest.mark.energy_budget("{_j(limit)}")'))
    result = _run(project, "--energy")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    message = Check("tiny", None, None, _total(predicted), limit).message()
    result.stdout.fnmatch_lines([f"  {message}"])
    assert message.endswith("budget (+0.1%)")


def test_marker_misuse_fails_the_test(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.energy_budget("1 J")
        def test_without_fixture():
            pass
        """
    )
    project.makepyfile(
        test_bad_unit=FIXTURE_TEST.format(marks='@pytest.mark.energy_budget("1 MJ")')
    )
    result = _run(project, "--energy")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*energy_budget: budget unknown energy unit 'MJ'*",
            "*energy_budget needs the test to predict a model with the `energy` fixture*",
        ],
        consecutive=False,
    )


# ---------------------------------------------------------------- off by default


def test_inert_without_energy(project: pytest.Pytester) -> None:
    """No --energy: the fixture skips with its reason, the budgets file (even a broken one) is
    not read, nothing is collected from it, and torch is never imported."""
    (project.path / "energy_budgets.yaml").write_text("version: [\n")
    project.makepyfile(
        test_off=FIXTURE_TEST.format(marks='@pytest.mark.energy_budget("1 J")'),
        test_torch_free="""
            import sys

            def test_no_torch():
                assert "torch" not in sys.modules
                assert "predictor.trace.zoo" not in sys.modules
            """,
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-rs", "test_torch_free.py")
    assert result.ret == pytest.ExitCode.OK
    result = _run(project, "-rs", "test_off.py")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*energy gate is off: run pytest with --energy*"])
    result = _run(project, "energy_budgets.yaml")  # nothing collects it: pytest's "not found"
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: not found: *energy_budgets.yaml"])


def test_disabled_with_p_no_irene(project: pytest.Pytester) -> None:
    _budgets(project, _tiny_bert_entry(budget="1 J"))
    project.makepyfile("def test_ok():\n    pass\n")
    result = _run(project, "-p", "no:irene")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    result = _run(project, "-p", "no:irene", "--energy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --energy*"])


# ---------------------------------------------------------------- xdist, JUnit, compare


def test_xdist_aggregates_on_the_controller(
    project: pytest.Pytester, predicted: dict[str, EnergyTree]
) -> None:
    layer = _layer0(predicted)
    _budgets(
        project,
        _tiny_bert_entry(f'"encoder.layer.*": {_j(layer * 0.999)}')
        + f"  tiny-gpt2:\n    model: {TINY_GPT2}\n    inputs: {INPUTS}\n    budget: 1 kJ\n",
    )
    # testpaths do not reach the budgets file: `pytest --energy` adds its items on every worker
    project.makeini("[pytest]\ntestpaths = tests\n")
    project.mkdir("tests")
    (project.path / "tests" / "test_plain.py").write_text("def test_ok():\n    pass\n")
    result = project.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--energy", "--energy-report", "head.json"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, failed=1)
    line = Check("tiny-bert", "encoder.layer.0", None, layer, layer * 0.999).message()
    result.stdout.fnmatch_lines([f"  {line}", "*energy (IrEne prediction, profile *"])
    report = json.loads((project.path / "head.json").read_text())
    assert sorted(m["name"] for m in report["models"]) == ["tiny-bert", "tiny-gpt2"]
    gpt2 = next(m for m in report["models"] if m["name"] == "tiny-gpt2")
    assert gpt2["energy_j"] == pytest.approx(_total(predicted, TINY_GPT2))
    assert report["passed"] is False


def test_junit_xml_records_each_checked_value(
    project: pytest.Pytester, predicted: dict[str, EnergyTree]
) -> None:
    _budgets(project, _tiny_bert_entry('"encoder.layer.*": 1 J', budget="1 kJ"))
    result = _run(project, "--energy", "--junit-xml", "junit.xml")
    assert result.ret == pytest.ExitCode.OK
    props = {
        p.get("name"): float(p.get("value", "nan"))
        for p in ET.parse(project.path / "junit.xml").iter("property")
    }
    layers = module_nodes(predicted[TINY_BERT])
    assert props == pytest.approx(
        {
            "energy_j[tiny-bert]": _total(predicted),
            "energy_budget_j[tiny-bert]": 1000.0,
            "energy_j[tiny-bert/encoder.layer.0]": layers["encoder.layer.0"].energy_j,
            "energy_budget_j[tiny-bert/encoder.layer.0]": 1.0,
            "energy_j[tiny-bert/encoder.layer.1]": layers["encoder.layer.1"].energy_j,
            "energy_budget_j[tiny-bert/encoder.layer.1]": 1.0,
        }
    )


def _scale_base(path: Path, fqn: str, factor: float) -> None:
    data = json.loads(path.read_text())

    def walk(node: dict[str, object]) -> None:
        if node.get("fqn") == fqn and isinstance(node.get("energy_j"), float):
            node["energy_j"] = float(node["energy_j"]) * factor  # type: ignore[arg-type]
        for child in node.get("children", []):  # type: ignore[attr-defined]
            walk(child)

    for model in data["models"]:
        walk(model["tree"]["root"])
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("shrink", "code"), [(1 / 1.049, 0), (1 / 1.051, 1)], ids=["under", "over"]
)
def test_compare_against_a_base_report(project: pytest.Pytester, shrink: float, code: int) -> None:
    """The base had encoder.layer.0 smaller: head grows 4.9% (within 5%) or 5.1% (beyond)."""
    _budgets(project, _tiny_bert_entry(budget="1 kJ"))
    assert _run(project, "--energy", "--energy-report", "base.json").ret == pytest.ExitCode.OK
    _scale_base(project.path / "base.json", "encoder.layer.0", shrink)
    result = _run(
        project, "--energy", "--energy-compare", "base.json", "--energy-markdown", "diff.md"
    )
    assert result.ret == pytest.ExitCode(code)
    if code:
        result.stdout.fnmatch_lines(
            ["  tiny-bert / encoder.layer.0: * > base * + 5.0% tolerance (+5.1%)"]
        )
    markdown = (project.path / "diff.md").read_text()
    assert markdown.startswith("<!-- irene-energy-diff -->")
    assert "| <code>encoder.layer.0</code> |" in markdown


# ---------------------------------------------------------------- metering


def _nvml_available() -> bool:
    from predictor.measure.meters import get_meter

    meter = get_meter("nvml")
    try:
        return bool(meter.status().available)
    finally:
        meter.close()


@pytest.mark.parametrize(("check", "code"), [("predicted", 0), ("measured", 4)])
def test_unreadable_meter_falls_back_or_fails_with_its_reason(
    project: pytest.Pytester, check: str, code: int
) -> None:
    if _nvml_available():
        pytest.skip("NVML can read here: this test needs a meter that cannot")
    _budgets(project, _tiny_bert_entry(budget="1 kJ"))
    result = _run(project, "--energy", "--energy-meter", "nvml", "--energy-check", check)
    assert result.ret == pytest.ExitCode(code)
    if code:  # measured energy was demanded and cannot be had: one line, a usage error
        result.stdout.fnmatch_lines(
            [
                "*energy_budgets.yaml:3: model 'tiny-bert': tiny-bert: not metered on cpu: *"
                "--energy-check measured needs a working meter*"
            ]
        )
        assert "Traceback" not in result.stdout.str()
    else:
        result.stdout.fnmatch_lines(
            ["warning: tiny-bert: not metered on cpu: *; budgets judge predicted energy"]
        )


# ---------------------------------------------------------------- this repository's gate

#: The README's main command, run from the repository root (also the energy-gate workflow's).
GATE_COMMAND = ["-m", "pytest", "--energy", "-p", "no:cacheprovider", "energy_budgets.yaml"]


def test_repo_gate_passes_on_its_own_budgets(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, *GATE_COMMAND, "--energy-report", str(tmp_path / "head.json")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == pytest.ExitCode.OK, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "head.json").read_text())
    names = {m["name"] for m in report["models"]}
    assert names == {"tiny-bert", "tiny-gpt2", "distilbert-base-uncased"}
    assert report["passed"] is True
    workflow = (REPO_ROOT / ".github" / "workflows" / "energy-gate.yml").read_text()
    assert "python -m pytest --energy -p no:cacheprovider" in workflow


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_bad_ini_bool_names_the_file(pytester: pytest.Pytester, value: str) -> None:
    pytester.makefile(".ini", tox=f"[pytest]\nenergy = {value}\n")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: *tox.ini: energy must be true or false (invalid truth value '{value}')"]
    )


@pytest.mark.parametrize(
    "config",
    [
        ("tox", ".ini", "[pytest]\nenergy = yes\n", True),
        ("tox", ".ini", "[pytest]\nenergy = False\n", False),
        ("pyproject", ".toml", "[tool.pytest]\nenergy = true\n", True),  # native TOML bool
    ],
    ids=["ini-yes", "ini-False", "toml-true"],
)
def test_ini_bool_spellings(pytester: pytest.Pytester, config: tuple[str, str, str, bool]) -> None:
    name, ext, text, gate_on = config
    pytester.makefile(ext, **{name: text})
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.OK
    assert ("energy (IrEne prediction" in result.stdout.str()) is gate_on


def test_markdown_summary_without_a_base(
    project: pytest.Pytester, predicted: dict[str, EnergyTree]
) -> None:
    limit = _total(predicted) * 0.999
    _budgets(project, _tiny_bert_entry(budget=_j(limit)))
    result = _run(project, "--energy", "--energy-markdown", "summary.md")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = (project.path / "summary.md").read_text()
    assert text.startswith("## Energy gate (IrEne prediction)\n\n### ❌ Energy gate failed: 1 of 1")
    assert (
        "| tiny-bert | ❌ over | 1 of 1 check failed | <code>tiny-bert (-0.1%)</code> |" not in text
    )
    assert "| tiny-bert | ❌ over | 1 of 1 check failed | <code>tiny-bert (+0.1%)</code> |" in text
    assert (
        f"| tiny-bert | batch\\_size=2, seq\\_len=16 | {format_energy(_total(predicted))} |" in text
    )
    message = Check("tiny-bert", None, None, _total(predicted), limit).message()
    assert f"- <code>{message.replace('>', '&gt;')}</code>" in text


def test_unused_fixture_budgets_are_noted_and_a_missing_base_is_a_usage_error(
    project: pytest.Pytester,
) -> None:
    _budgets(project, "  tiny:\n    budget: 1 J\n")
    project.makepyfile("def test_ok():\n    pass\n")
    result = _run(project, "--energy")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["note: no test handed 'tiny' to the `energy` fixture*"])
    result = _run(project, "--energy", "--energy-compare", "base.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *base.json: energy report not found*"])


# ---------------------------------------------------------------- model identity

MLP_TESTS = """
import pytest
import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(x)


def test_small(energy):
    energy(MLP(), torch.ones(1, 2, 8))


def test_big(energy):
    energy(MLP(), torch.ones(16, 32, 8))


@pytest.mark.parametrize("batch", [1, 16])
def test_named(energy, batch):
    energy(MLP(), torch.ones(batch, 4, 8), name="my-mlp")


@pytest.mark.parametrize("layers", [1, 3])
def test_same_name_and_inputs(energy, layers):
    energy(nn.Sequential(*[nn.Linear(8, 8) for _ in range(layers)]), torch.ones(2, 4, 8), name="seq")
"""


def test_models_are_told_apart_by_test_and_inputs(project: pytest.Pytester) -> None:
    """Two tests predicting one class without name=, and one name= with two inputs: the
    report keeps four models, comparing with itself passes, and the diff has four rows."""
    project.makepyfile(test_mlp=MLP_TESTS)
    assert _run(project, "--energy", "--energy-report", "base.json").ret == pytest.ExitCode.OK
    report = json.loads((project.path / "base.json").read_text())
    names = sorted(m["name"] for m in report["models"])
    assert names == [
        "MLP[test_mlp.py::test_big]",
        "MLP[test_mlp.py::test_small]",
        "my-mlp",
        "my-mlp",
        "seq",
        "seq",
    ]
    assert {m["inputs"] for m in report["models"] if m["name"] == "my-mlp"} == {
        "float32[1, 4, 8]",
        "float32[16, 4, 8]",
    }
    result = _run(project, "--energy", "--energy-compare", "base.json", "--energy-report", "h.json")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*not in the base report*")
    result.stdout.fnmatch_lines(
        [
            "warning: name 'seq' names different models with the same inputs (float32?2, 4, 8?) "
            "in test_mlp.py::test_same_name_and_inputs?1?, "
            "test_mlp.py::test_same_name_and_inputs?3?; give each its own name=*",
        ]
    )
    # names are shown as written (not read as markup), with inputs where a name has several
    result.stdout.fnmatch_lines(["MLP?test_mlp.py::test_big?  *", "my-mlp (float32?1, 4, 8?)  *"])
    from predictor.gate.diff import diff_reports
    from predictor.gate.report import load_report

    diff = diff_reports(
        load_report(project.path / "base.json"), load_report(project.path / "h.json")
    )
    assert sorted(m.name for m in diff.models) == [
        "MLP[test_mlp.py::test_big]",
        "MLP[test_mlp.py::test_small]",
        "my-mlp (float32[1, 4, 8])",
        "my-mlp (float32[16, 4, 8])",
        "seq [test_mlp.py::test_same_name_and_inputs[1]]",
        "seq [test_mlp.py::test_same_name_and_inputs[3]]",
    ]
    assert all(m.status == "same" for m in diff.models)


def test_named_budgets_file_runs_its_models_beside_paths(project: pytest.Pytester) -> None:
    """--energy-budgets with a test path still runs the file's models; a default budgets file
    beside a path is not run, and the summary says so and how to include it."""
    _budgets(project, _tiny_bert_entry(budget="1 kJ"), name="b.yaml")
    project.makepyfile(test_ok="def test_ok():\n    pass\n")
    result = _run(project, "--energy", "--energy-budgets", "b.yaml", "test_ok.py")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=2)
    _budgets(project, _tiny_bert_entry(budget="1 kJ"))
    result = _run(project, "--energy", "test_ok.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["note: 1 model(s) of *energy_budgets.yaml were not run (tiny-bert): *pytest --energy *"]
    )


def test_marker_for_a_model_the_test_did_not_predict_fails(project: pytest.Pytester) -> None:
    marks = '@pytest.mark.energy_budget("1 kJ", model="typo-name")'
    project.makepyfile(FIXTURE_TEST.format(marks=marks))
    result = _run(project, "--energy")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.energy_budget(model='typo-name') matched no model this test "
            "predicted ('tiny'); use one of these names or pass name='typo-name'*"
        ]
    )


def test_unwritable_report_is_a_usage_error_without_traceback(project: pytest.Pytester) -> None:
    _budgets(project, _tiny_bert_entry(budget="1 kJ"))
    (project.path / "file").write_text("")
    result = _run(
        project, "--energy", "--energy-report", "file/r.json", "--energy-markdown", "s.md"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["ERROR: energy gate: cannot write *file/r.json: *"])
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_written_files_are_named_on_their_own_lines(project: pytest.Pytester) -> None:
    _budgets(project, _tiny_bert_entry(budget="1 kJ"))
    for quiet in ((), ("-q",)):
        result = _run(
            project, "--energy", "--energy-report", "r.json", "--energy-markdown", "s.md", *quiet
        )
        assert result.ret == pytest.ExitCode.OK
        result.stdout.fnmatch_lines(
            ["energy JSON report written to *r.json", "energy Markdown summary written to *s.md"]
        )


def test_malformed_base_report_is_a_usage_error(project: pytest.Pytester) -> None:
    (project.path / "bad.json").write_text('{"schema": "irene-report/1", "versions": []}')
    result = _run(project, "--energy", "--energy-compare", "bad.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *bad.json: invalid energy report: versions: expected an object, got an array"]
    )
    result.stderr.no_fnmatch_line("*INTERNALERROR*")


def test_unsupported_ops_are_listed_per_model(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import torch
        from torch import nn

        class F(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 8)

            def forward(self, x):
                return torch.fft.fft(self.fc(x)).real

        def test_fft(energy):
            energy(F(), torch.ones(2, 4, 8), name="fft-model")
        """
    )
    result = _run(project, "--energy", "--energy-markdown", "s.md")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["fft-model: unsupported ops (not counted): fft_fft x1 in *"])
    text = (project.path / "s.md").read_text()
    assert "**Unsupported ops (not counted in the prediction):**" in text
    assert "- fft-model: fft\\_fft x1 in " in text


# ---------------------------------------------------------------- one engine, two shells


def _report_without_time(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text())
    data.pop("created_utc")
    return data


@pytest.mark.parametrize("case", ["pass", "budget-fails", "compare-fails", "config-error"])
def test_budgets_check_and_pytest_give_the_same_verdict_and_report(
    project: pytest.Pytester,
    predicted: dict[str, EnergyTree],
    case: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``irene budgets check FILE --compare BASE --markdown OUT`` and ``pytest --energy FILE
    --energy-compare BASE --energy-markdown OUT`` run the same engine: same exit code, same
    JSON report (timestamps aside), same Markdown diff."""
    from predictor.cli.main import main

    gpt2 = f"  tiny-gpt2:\n    model: {TINY_GPT2}\n    inputs: {INPUTS}\n    budget: 1 kJ\n"
    _budgets(project, _tiny_bert_entry(budget="1 kJ") + gpt2)
    assert _run(project, "--energy", "--energy-report", "base.json").ret == pytest.ExitCode.OK
    layer = _layer0(predicted)
    if case == "budget-fails":
        body = _tiny_bert_entry(f'"encoder.layer.*": {_j(layer * 0.999)}', budget="1 kJ") + gpt2
        _budgets(project, body)
    elif case == "compare-fails":
        _scale_base(project.path / "base.json", "encoder.layer.0", 1 / 1.06)
    elif case == "config-error":
        _budgets(
            project, gpt2 + f"  nope:\n    model: examples.tiny_models:nope\n    inputs: {INPUTS}\n"
        )
    expected = {"pass": 0, "budget-fails": 1, "compare-fails": 1, "config-error": 4}[case]
    common = ("--energy-compare", "base.json")
    ran = _run(
        project,
        "--energy",
        "energy_budgets.yaml",
        *common,
        "--energy-report",
        "pytest.json",
        "--energy-markdown",
        "pytest.md",
    )
    assert ran.ret == expected
    monkeypatch.chdir(project.path)
    monkeypatch.syspath_prepend(str(project.path))
    code = main(["budgets", "check", "energy_budgets.yaml", "--compare", "base.json",
                 "--report", "cli.json", "--markdown", "cli.md"])  # fmt: skip
    assert code == expected
    cli, gate = (
        _report_without_time(project.path / "cli.json"),
        _report_without_time(project.path / "pytest.json"),
    )
    assert cli == gate
    assert (project.path / "cli.md").read_text() == (project.path / "pytest.md").read_text()
    assert cli["passed"] is (expected == 0)
    assert len(cli["errors"]) == (case == "config-error")  # type: ignore[arg-type]


def test_violations_of_a_test_that_fails_on_its_own_are_shown_with_its_failure(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        test_both="""
import pytest
import torch
from examples.tiny_models import tiny_bert


@pytest.mark.energy_budget("1 uJ")
def test_both(energy):
    energy(tiny_bert(), {"input_ids": torch.ones(2, 16, dtype=torch.long)}, name="tb")
    assert False, "the test's own failure"
"""
    )
    result = _run(project, "--energy")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*the test's own failure*",
            "*energy budget exceeded*",
            "tb * over budget:",
            "  tb: * > 1.00 µJ budget*",
        ]
    )
    assert len(re.findall(r"> 1\.00 µJ budget", result.stdout.str())) == 1
