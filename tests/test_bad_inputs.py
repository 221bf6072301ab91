"""Bad and adversarial inputs (the hardening sweep, issue 14): each gets one clear line with
what, where (file:line for YAML) and how to fix it, its documented exit status, no traceback,
and nothing overwritten. The CLI runs through ``main()``, the gate through ``pytester``.

Exit statuses are the README's table: CLI 3 model, 4 configuration, 5 trace, 6 data,
7 profile, 8 hardware, 9 a file that cannot be read or written; pytest 1 budget exceeded,
4 usage/configuration error.
"""

from __future__ import annotations

import json
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

# Imported before any in-process pytester run: pytester drops the modules a run imports first,
# and numpy / torch cannot be imported twice in one process.
import examples.tiny_models  # noqa: F401
import predictor.learn.profile
import predictor.trace.zoo  # noqa: F401
from predictor.cli.main import main
from predictor.gate.diff import diff_reports, render_markdown
from predictor.gate.escape import md_code, md_text, printable
from predictor.gate.report import Report
from predictor.gate.summary import render_summary_markdown

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = "examples.tiny_models:tiny_bert"
ENTRY = (
    f"  tiny:\n    model: {TINY}\n    inputs: {{batch_size: 2, seq_len: 16}}\n    budget: 1 kJ\n"
)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    return code, captured.err


def _check(tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str) -> tuple[int, str]:
    path = tmp_path / "b.yaml"
    path.write_text(body, encoding="utf-8")
    return _cli(capsys, "budgets", "check", str(path))


# ---------------------------------------------------------------- YAML (1, 2, 20)

LAUGHS = "version: 1\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        (LAUGHS, 3, "YAML aliases (*a) are not supported"),
        ("version: 1\nmodels: &r [*r]\n", 2, "YAML aliases (*r) are not supported"),
        (
            "version: 1\nbase: &b {budget: 1 J}\nmodels:\n  m:\n    <<: *b\n",
            5,
            "YAML aliases (*b)",
        ),
        ("version: 1\nmodels:\n  m:\n    <<: {budget: 1 J}\n", 4, "a merge key (<<) is not"),
        (
            "version: 1\nmodels:\n  m:\n    budget: !!python/name:os.system\n",
            4,
            "the tag 'tag:yaml.org,2002:python/name:os.system' is not supported",
        ),
        ("version: 1\nmodels:\n  m:\n    budget: !joules 1\n", 4, "the tag '!joules'"),
        (
            "version: 1\nmodels:\n  m: !!python/object/apply:os.system\n    args: [echo hi]\n",
            3,
            "the tag 'tag:yaml.org,2002:python/object/apply:os.system' is not supported",
        ),
        (
            "version: 1\nmodels:\n  m:\n    modules:\n      '[z-a]': 1 J\n",
            5,
            "module glob '[z-a]' is not valid",
        ),
        ("version: 1\nmodels:\n  m:\n    budget: {a: 1}\n", 4, "(got a mapping)"),
        ('version: 1\nmodels:\n  "a\\nb":\n    budget: 1 J\n', 3, "control character '\\n'"),
    ],
    ids=[
        "billion-laughs",
        "recursive-alias",
        "merge-alias",
        "merge-key",
        "python-tag",
        "custom-tag",
        "object-apply-on-mapping",
        "reversed-range-glob",
        "mapping-as-energy",
        "newline-in-name",
    ],
)
def test_budgets_yaml_refused_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, line: int, fragment: str
) -> None:
    start = time.perf_counter()
    code, err = _check(tmp_path, capsys, body)
    assert time.perf_counter() - start < 10  # refused while composing: nothing expands
    assert code == 4
    assert f"b.yaml:{line}: " in err and fragment in err, err
    assert "_Y(" not in err  # never an internal repr
    assert len(err.strip().splitlines()) == 1


def test_pytest_gate_refuses_tags_as_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", energy_budgets="version: 1\nmodels:\n  m: !!python/name:os.system\n")
    result = pytester.runpytest("--energy", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *energy_budgets.yaml:3: the tag *is not supported*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_init_refuses_a_bad_glob_and_a_name_with_a_newline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b.yaml"
    code, err = _cli(capsys, "budgets", "init", TINY, "--module", "[z-a]", "-o", str(out))
    assert code == 4 and "--module: module glob '[z-a]' is not valid" in err
    code, err = _cli(capsys, "budgets", "init", f"a\nb={TINY}", "-o", str(out))
    assert code == 4 and "control character '\\n'" in err
    assert not out.exists()


# ---------------------------------------------------------------- gate setup errors (4, 9, 13)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    (pytester.path / "examples").mkdir()
    for name in ("__init__.py", "tiny_models.py"):
        shutil.copy(REPO_ROOT / "examples" / name, pytester.path / "examples" / name)
    return pytester


def _budgets(pytester: pytest.Pytester, body: str = ENTRY) -> Path:
    path = pytester.path / "energy_budgets.yaml"
    path.write_text("version: 1\nmodels:\n" + body, encoding="utf-8")
    return path


def _no_traceback(result: pytest.RunResult) -> str:
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text and "INTERNALERROR" not in text
    return text


def test_runtime_feature_profile_is_a_usage_error(project: pytest.Pytester) -> None:
    _budgets(project)
    result = project.runpytest("--energy", "--energy-profile", "irene-device-1-full")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    _no_traceback(result)
    result.stderr.fnmatch_lines(["ERROR: profile 'irene-device-1-full' uses the 'full' *static*"])


def test_factory_calling_sys_exit(
    project: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.path / "exiting.py").write_text("import sys\n\ndef make():\n    sys.exit(7)\n")
    _budgets(project, "  x:\n    model: exiting:make\n    inputs: {batch_size: 1, seq_len: 4}\n")
    result = project.runpytest("--energy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    _no_traceback(result)
    result.stdout.fnmatch_lines(["*energy_budgets.yaml:3: model 'x': *called sys.exit(7)*"])
    code, err = _cli(capsys, "predict", "exiting:make", "-b", "1", "-s", "4")
    assert code == 3 and "called sys.exit(7)" in err


def test_factory_that_hangs_fails_naming_the_model(project: pytest.Pytester) -> None:
    (project.path / "slow.py").write_text(
        "import time\nfrom examples.tiny_models import tiny_bert\n\n"
        "def make():\n    time.sleep(30)\n    return tiny_bert()\n"
    )
    _budgets(project, "  slow:\n    model: slow:make\n    inputs: {batch_size: 1, seq_len: 4}\n")
    start = time.perf_counter()
    result = project.runpytest("--energy", "--energy-timeout", "0.5")
    assert time.perf_counter() - start < 20
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    _no_traceback(result)
    result.stdout.fnmatch_lines(["*model 'slow' took longer than 0.5 s*--energy-timeout*"])


@pytest.mark.parametrize("target", ["budgets", "compare"])
def test_report_over_an_input_is_refused(project: pytest.Pytester, target: str) -> None:
    path = _budgets(project)
    before = path.read_bytes()
    assert project.runpytest("--energy", "--energy-report", "base.json").ret == 0
    base = (project.path / "base.json").read_bytes()
    out = "energy_budgets.yaml" if target == "budgets" else "base.json"
    result = project.runpytest("--energy", "--energy-compare", "base.json", "--energy-report", out)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    _no_traceback(result)
    result.stderr.fnmatch_lines([f"ERROR: --energy-report: *{out} is also the {target} file*"])
    assert path.read_bytes() == before and (project.path / "base.json").read_bytes() == base


def test_interrupted_run_keeps_the_previous_report(project: pytest.Pytester) -> None:
    _budgets(project)
    assert project.runpytest("--energy", "--energy-report", "r.json").ret == 0
    before = (project.path / "r.json").read_bytes()
    project.makepyfile(test_stop="def test_stop():\n    raise KeyboardInterrupt\n")
    result = project.runpytest_subprocess(  # Ctrl-C: a process of its own
        "--energy", "energy_budgets.yaml", "test_stop.py", "--energy-report", "r.json"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["energy gate: the run was interrupted; reports not written*"])
    assert (project.path / "r.json").read_bytes() == before


def test_fixture_name_with_control_characters_fails_in_one_line(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import torch
        from torch import nn

        def test_it(energy):
            energy(nn.Linear(4, 4), torch.ones(2, 4), name="bad\\x1b[31mname\\n")
        """
    )
    result = project.runpytest("--energy", "--junit-xml", "j.xml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*the name holds the control character '\\x1b'*"])
    assert "\x1b[31m" not in result.stdout.str()
    ET.parse(project.path / "j.xml")  # still parses


def test_empty_input_is_refused(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import torch
        from torch import nn

        def test_it(energy):
            energy(nn.Linear(32, 4), torch.zeros(2, 0, 32), name="empty")
        """
    )
    result = project.runpytest("--energy")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    _no_traceback(result)
    result.stdout.fnmatch_lines(
        ["*input argument 0 has shape (2, 0, 32), with an empty dimension*"]
    )


def test_fake_meter_is_accepted(project: pytest.Pytester) -> None:
    _budgets(project)
    result = project.runpytest("--energy", "--energy-meter", "fake", "--energy-check", "measured")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["meter cpu: fake*"])


# ---------------------------------------------------------------- base reports (14, 15)


def _base(project: pytest.Pytester, edit: str) -> None:
    _budgets(project)
    assert project.runpytest("--energy", "--energy-report", "base.json").ret == 0
    data = json.loads((project.path / "base.json").read_text())
    root = data["models"][0]["tree"]["root"]
    if edit == "zero":
        root["energy_j"] = 0.0
    elif edit == "negative":
        root["children"][0]["energy_j"] = -1.0
    elif edit == "profile":
        data["profile"]["sha256"] = "0" * 64
        data["profile"]["name"] = "other-profile"
        root["energy_j"] = root["energy_j"] / 2  # the other profile predicted half
    (project.path / "base.json").write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [("zero", "total energy_j is 0.0 J"), ("negative", "has energy_j -1.0 J; energies are never")],
)
def test_base_report_with_impossible_energies_is_refused(
    project: pytest.Pytester, edit: str, fragment: str
) -> None:
    _base(project, edit)
    result = project.runpytest("--energy", "--energy-compare", "base.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    _no_traceback(result)
    result.stderr.fnmatch_lines(
        [f"ERROR: *base.json: invalid energy report: models?0? *{fragment}*"]
    )


def test_base_report_from_another_profile_is_not_compared(project: pytest.Pytester) -> None:
    _base(project, "profile")
    result = project.runpytest("--energy", "--energy-compare", "base.json")
    assert result.ret == pytest.ExitCode.OK  # not a +100 % failure caused by the profile
    result.stdout.fnmatch_lines(
        [
            "warning: tiny: not compared with the base report: it was predicted by profile "
            "'other-profile' *this run by 'irene-device-1'*"
        ]
    )


# ---------------------------------------------------------------- files (10, 11, 18)


def test_unreadable_report_is_exit_9(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "a-folder.json"
    folder.mkdir()
    code, err = _cli(capsys, "diff", str(folder), str(folder))
    assert code == 9 and f"cannot read {folder}" in err


def test_option_errors_exit_4(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["predict", "gpt2", "--batch-size", "many"])
    assert info.value.code == 4
    assert "--batch-size" in capsys.readouterr().err


def test_calibrate_does_not_overwrite_a_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "model_level_features.csv").write_text("hours of measurements\n")
    code, err = _cli(
        capsys, "calibrate", "--meter", "fake", "--models", TINY, "--batch-sizes", "1",
        "--seq-lens", "4", "-o", str(out),
    )  # fmt: skip
    assert code == 4 and "already holds files (model_level_features.csv)" in err
    assert "--force" in err
    assert (out / "model_level_features.csv").read_text() == "hours of measurements\n"


# ---------------------------------------------------------------- user strings (7, 8)

NASTY = ["</details><script>alert(1)</script>", "a|b", "@octocat", "<img src=x onerror=alert(1)>",
         "tick`s`", "two\nlines"]  # fmt: skip


@pytest.mark.parametrize("name", NASTY)
def test_names_are_inert_in_markdown(name: str) -> None:
    from energy_trees import small_bert

    from predictor.gate.checks import Check, ModelResult

    tree = small_bert()
    result = ModelResult(name, tree, checks=[Check(name, "encoder", None, 0.3, 0.1)])
    report = Report(models=[result], profile={"name": name})
    for text in (render_summary_markdown(report), render_markdown(diff_reports(report, report))):
        for bad in ("<script", "<img", "</details><script", "@octocat"):
            assert bad not in text
        tables: list[list[str]] = [[]]  # each run of table rows keeps its header's columns
        for line in text.splitlines():
            if line.startswith("|"):
                tables[-1].append(line)
            elif tables[-1]:
                tables.append([])
        for rows in (t for t in tables if t):
            columns = rows[0].count("|")
            assert all(row.count("|") - row.count("\\|") == columns for row in rows), rows


def test_escape_helpers() -> None:
    assert printable("a\nb\x1b") == "a\\x0ab\\x1b"
    assert md_text("x|y*z_@") == "x\\|y\\*z\\_&#64;"
    assert md_code("a`|<b>") == "<code>a`&#124;&lt;b&gt;</code>"


def test_a_factory_that_prints_does_not_corrupt_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "chatty.py").write_text(
        "from examples.tiny_models import tiny_bert\n\n"
        "def make():\n    print('loading weights...')\n    return tiny_bert()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for command in (["predict"], ["tree"]):
        assert main([*command, "chatty:make", "-b", "1", "-s", "4", "--format", "json"]) == 0
        captured = capsys.readouterr()
        json.loads(captured.out)  # stdout holds the JSON alone
        assert "loading weights..." in captured.err


# ---------------------------------------------------------------- profiles (5, 10)


def _tampered_profile(tmp_path: Path, edit: str) -> Path:
    """The shipped profile with a payload edit and a *recomputed* checksum: it passes the
    integrity check, so only the schema and number checks can refuse it."""
    from predictor.learn.profile import load_profile
    from predictor.learn.profile_file import write_profile_file

    payload = json.loads(load_profile(None).payload_text())
    reg = payload["ml"]["fallback"]
    if edit == "wrong-type":
        payload["ml"]["by_type"] = "Linear"
    elif edit == "nan":
        reg["base_coef"][0] = float("nan")
    elif edit == "inf":
        reg["base_coef"][0] = float("inf")
    elif edit == "huge":  # 1e999 parses to inf
        text = json.dumps(payload).replace(json.dumps(reg["base_coef"][0]), "1e999", 1)
        return write_profile_file(tmp_path / "p.irene.joblib", text)
    text = json.dumps(payload, allow_nan=True)
    return write_profile_file(tmp_path / "p.irene.joblib", text)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        ("wrong-type", "profile payload is malformed"),
        ("nan", "holds NaN, not a number"),
        ("inf", "holds Infinity, not a number"),
        ("huge", "not a finite number"),
    ],
)
def test_tampered_profile_is_refused_at_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str, fragment: str
) -> None:
    path = _tampered_profile(tmp_path, edit)
    code, err = _cli(capsys, "predict", TINY, "-b", "1", "-s", "4", "--profile", str(path))
    assert code == 7, err
    assert fragment in err and len(err.strip().splitlines()) == 1


def test_unreadable_profile_is_exit_9(capsys: pytest.CaptureFixture[str]) -> None:
    """A file that exists but cannot be read is exit 9 (not 7, "corrupt"). Tests run as root,
    which reads any file mode, so the unreadable file is one the kernel refuses to read."""
    unreadable = Path("/proc/self/mem")
    if not unreadable.is_file():
        pytest.skip("needs Linux's /proc/self/mem, a file that cannot be read in full")
    code, err = _cli(capsys, "predict", TINY, "-b", "1", "-s", "4", "--profile", str(unreadable))
    assert code == 9 and "cannot read /proc/" in err and "mem: Input/output error" in err


# ---------------------------------------------------------------- the exit-status table


def test_the_readme_exit_status_table_is_the_truth() -> None:
    """Every error type's exit status is the one the README's table gives it, and the table
    names every status the CLI and the gate use."""
    import re

    from predictor import errors

    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("<!-- exit-statuses -->", 1)[1].split("\n\n", 1)[0]
    rows = {
        int(m.group(1)): (m.group(2).strip(), m.group(3).strip())
        for m in re.finditer(r"^\| *(\d+) *\|(.*?)\|(.*?)\|$", table, re.MULTILINE)
    }
    error_types = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type)
        and issubclass(cls, errors.IreneError)
        and cls is not errors.IreneError
    ]
    for cls in error_types:
        cli_text = rows[cls.exit_code][0]
        base = next(b for b in cls.__mro__ if b.__name__ in cli_text)  # the type or its base
        assert base is not object, (cls, cli_text)
    assert set(rows) == {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 130}
    assert rows[1][1] and rows[2][1] and rows[4][1]  # pytest's statuses for the gate
    assert int(pytest.ExitCode.TESTS_FAILED) == 1 and int(pytest.ExitCode.INTERRUPTED) == 2
    assert int(pytest.ExitCode.USAGE_ERROR) == 4
