"""Sweep of bad and adversarial inputs against the CLI and the gate, each in a process of its
own, as a user meets them.

    python benchmarks/bench_bad_inputs.py [--only SUBSTRING]

Each case lays out files in a fresh folder (the repository's ``examples/`` is copied beside
them), runs one command (``irene ...`` or ``python -m pytest ...``), and is judged on: the exit
status the README's table documents, a first line that says what is wrong, no traceback, no
INTERNALERROR, and every file the case marks as precious left byte for byte as it was. Writes
``benchmarks/results/bad_inputs.md`` (a row per case) and ``bad_inputs.json``; exits 1 when any
case fails its verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO))

TINY = "examples.tiny_models:tiny_bert"
ENTRY = (
    f"  tiny:\n    model: {TINY}\n    inputs: {{batch_size: 2, seq_len: 16}}\n    budget: 1 kJ\n"
)
GOOD = "version: 1\nmodels:\n" + ENTRY
IRENE = [sys.executable, "-m", "predictor.cli.main"]
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]


@dataclass
class Case:
    """One bad input: files to lay out, the command, the documented exit status, a fragment
    the output must hold, and the files that must survive unchanged."""

    name: str
    command: list[str]
    code: int
    expect: str
    files: dict[str, str | bytes] = field(default_factory=dict)
    precious: tuple[str, ...] = ()
    prepare: Callable[[Path], None] | None = None
    timeout_s: float = 120.0


def _yaml(body: str) -> dict[str, str | bytes]:
    return {"b.yaml": body}


def _check(body: str, code: int, expect: str, name: str) -> Case:
    return Case(name, [*IRENE, "budgets", "check", "b.yaml"], code, expect, _yaml(body))


def _gate(body: str, code: int, expect: str, name: str, *extra: str) -> Case:
    return Case(name, [*PYTEST, "--energy", "b.yaml", *extra], code, expect, _yaml(body))


LAUGHS = "version: 1\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)


def _base_report(edit: str) -> Callable[[Path], None]:
    """Write base.json from a real run of the gate, then edit it."""

    def prepare(folder: Path) -> None:
        (folder / "b.yaml").write_text(GOOD)
        subprocess.run(
            [*PYTEST, "--energy", "b.yaml", "--energy-report", "base.json"],
            cwd=folder,
            check=True,
            capture_output=True,
            env=_env(),
        )
        data = json.loads((folder / "base.json").read_text())
        root = data["models"][0]["tree"]["root"]
        if edit == "zero":
            root["energy_j"] = 0.0
        elif edit == "negative":
            root["children"][0]["energy_j"] = -1.0
        elif edit == "profile":
            data["profile"]["sha256"] = "0" * 64
            root["energy_j"] /= 2
        elif edit == "schema":
            data["schema"] = "irene-report/99"
        (folder / "base.json").write_text(json.dumps(data))

    return prepare


def _tampered_profile(edit: str) -> Callable[[Path], None]:
    def prepare(folder: Path) -> None:
        from predictor.learn.profile import load_profile
        from predictor.learn.profile_file import write_profile_file

        payload = json.loads(load_profile(None).payload_text())
        if edit == "nan":
            payload["ml"]["fallback"]["base_coef"][0] = float("nan")
        elif edit == "type":
            payload["ml"]["by_type"] = "Linear"
        elif edit == "shape":
            payload["ml"]["fallback"]["base_coef"] = [1.0]
        write_profile_file(folder / "p.irene.joblib", json.dumps(payload, allow_nan=True))

    return prepare


def _pickle_bomb(folder: Path) -> None:
    """A joblib file whose unpickling would run ``os.system``."""
    import pickle

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {folder / 'PWNED'}",))

    import joblib

    joblib.dump({"format": "irene-profile", "payload": Evil()}, folder / "p.irene.joblib")
    del pickle


def cases() -> list[Case]:
    c: list[Case] = []
    # -- budgets files, through `irene budgets check` (exit 4, file:line) ----------------------
    yaml_cases = [
        ("yaml: billion laughs", LAUGHS, "b.yaml:3: YAML aliases (*a) are not supported"),
        ("yaml: recursive alias", "version: 1\nmodels: &r [*r]\n", "YAML aliases (*r)"),
        ("yaml: merge key with alias", "version: 1\nb: &b {x: 1}\nmodels:\n  m:\n    <<: *b\n", "aliases"),
        ("yaml: merge key", "version: 1\nmodels:\n  m:\n    <<: {budget: 1 J}\n", "a merge key (<<)"),
        ("yaml: !!python/name tag", "version: 1\nmodels:\n  m:\n    budget: !!python/name:os.system\n", "is not supported"),
        ("yaml: !!python/object/apply on a mapping", "version: 1\nmodels:\n  m: !!python/object/apply:os.system\n    args: [id]\n", "is not supported"),
        ("yaml: custom tag", "version: 1\nmodels:\n  m:\n    budget: !joules 1\n", "the tag '!joules'"),
        ("yaml: binary tag", "version: 1\nmodels:\n  m:\n    budget: !!binary aGk=\n", "is not supported"),
        ("yaml: malformed", "version: 1\nmodels: [\n", "malformed YAML"),
        ("yaml: empty file", "", "the budgets file is empty"),
        ("yaml: a list at the top", "- 1\n- 2\n", "must be a mapping"),
        ("yaml: no version", "models: {}\n", "missing 'version: 1'"),
        ("yaml: version 2", "version: 2\n", "version 2 is not supported"),
        ("yaml: version true", "version: true\n", "is not supported"),
        ("yaml: unknown top key", "version: 1\nmodle: {}\n", "unknown key 'modle'"),
        ("yaml: unknown model key", "version: 1\nmodels:\n  m:\n    budgte: 1 J\n", "unknown key 'budgte'"),
        ("yaml: duplicate key", "version: 1\nmodels:\n  m: {}\n  m: {}\n", "duplicate key 'm'"),
        ("yaml: energy without unit", "version: 1\nmodels:\n  m:\n    budget: 3\n", "like '3 J'"),
        ("yaml: unknown unit", "version: 1\nmodels:\n  m:\n    budget: 3 furlong\n", "unknown energy unit 'furlong'"),
        ("yaml: MJ is not mJ", "version: 1\nmodels:\n  m:\n    budget: 3 MJ\n", "unknown energy unit 'MJ'"),
        ("yaml: negative budget", "version: 1\nmodels:\n  m:\n    budget: -1 J\n", "positive energy"),
        ("yaml: zero budget", "version: 1\nmodels:\n  m:\n    budget: 0 J\n", "positive energy"),
        ("yaml: mapping as energy", "version: 1\nmodels:\n  m:\n    budget: {a: 1}\n", "(got a mapping)"),
        ("yaml: bad tolerance", "version: 1\ndefaults:\n  tolerance: five\n", "percentage like '5%'"),
        ("yaml: reversed-range glob", "version: 1\nmodels:\n  m:\n    modules:\n      '[z-a]': 1 J\n", "is not valid"),
        ("yaml: unclosed glob", "version: 1\nmodels:\n  m:\n    modules:\n      'a.[b': 1 J\n", "unclosed '['"),
        ("yaml: newline in a name", 'version: 1\nmodels:\n  "a\\nb":\n    budget: 1 J\n', "control character"),
        ("yaml: empty name", 'version: 1\nmodels:\n  "":\n    budget: 1 J\n', "is empty"),
        ("yaml: inputs without seq_len", f"version: 1\nmodels:\n  m:\n    model: {TINY}\n    inputs: {{batch_size: 2}}\n", "inputs needs seq_len"),
        ("yaml: batch_size 0", f"version: 1\nmodels:\n  m:\n    model: {TINY}\n    inputs: {{batch_size: 0, seq_len: 4}}\n", "positive integer"),
        ("yaml: batch_size true", f"version: 1\nmodels:\n  m:\n    model: {TINY}\n    inputs: {{batch_size: true, seq_len: 4}}\n", "positive integer"),
        ("yaml: seq_len beyond positions", f"version: 1\nmodels:\n  m:\n    model: {TINY}\n    inputs: {{batch_size: 1, seq_len: 100000}}\n", "set inputs.seq_len to 128 or less"),
        ("yaml: unknown zoo model", "version: 1\nmodels:\n  m:\n    model: no-such-model\n    inputs: {batch_size: 1, seq_len: 4}\n", "unknown model 'no-such-model'"),
    ]  # fmt: skip
    c += [_check(body, 4, expect, name) for name, body, expect in yaml_cases]
    c.append(
        Case(
            "yaml: a budgets file that is not UTF-8",
            [*IRENE, "budgets", "check", "b.yaml"],
            4,
            "not UTF-8",
            {"b.yaml": b"version: 1\n\xff\xfe\n"},
        )
    )
    c.append(
        Case(
            "yaml: huge batch traced on meta",
            [*IRENE, "budgets", "check", "b.yaml"],
            0,
            "1 of 1 check passed",
            _yaml(
                "version: 1\nmodels:\n  m:\n    model: bert-base-uncased\n"
                "    inputs: {batch_size: 1000000000, seq_len: 128}\n    budget: 1e12 J\n"
            ),
        )
    )
    # -- factories -----------------------------------------------------------------------------
    factories = {
        "bad_factories.py": (
            "import sys, time\nfrom examples.tiny_models import tiny_bert\n\n"
            "def raises():\n    raise RuntimeError('no weights here')\n\n"
            "def exits():\n    sys.exit(7)\n\n"
            "def not_a_module():\n    return 42\n\n"
            "def hangs():\n    time.sleep(60)\n    return tiny_bert()\n\n"
            "def chatty():\n    print('loading...')\n    return tiny_bert()\n"
        )
    }
    for spec, code, expect in [
        ("bad_factories:raises", 3, "raised RuntimeError: no weights here"),
        ("bad_factories:exits", 3, "called sys.exit(7)"),
        ("bad_factories:not_a_module", 3, "returned int, not a torch.nn.Module"),
        ("bad_factories:missing", 3, "has no attribute 'missing'"),
        ("no_such_module:f", 3, "cannot import module 'no_such_module'"),
    ]:
        c.append(
            Case(
                f"cli: factory {spec}",
                [*IRENE, "predict", spec, "-b", "1", "-s", "4"],
                code,
                expect,
                dict(factories),
            )
        )
    c.append(
        Case(
            "cli: a factory that prints keeps --format json clean",
            [*IRENE, "predict", "bad_factories:chatty", "-b", "1", "-s", "4", "--format", "json"],
            0,
            "{",
            dict(factories),
        )
    )
    c.append(
        Case(
            "gate: a factory that hangs hits --energy-timeout",
            [*PYTEST, "--energy", "b.yaml", "--energy-timeout", "1"],
            4,
            "took longer than 1 s",
            {
                **factories,
                "b.yaml": "version: 1\nmodels:\n  slow:\n    model: bad_factories:hangs\n    inputs: {batch_size: 1, seq_len: 4}\n",
            },
            timeout_s=60,
        )
    )
    c.append(
        Case(
            "gate: a factory calling sys.exit",
            [*PYTEST, "--energy", "b.yaml"],
            4,
            "called sys.exit(7)",
            {
                **factories,
                "b.yaml": "version: 1\nmodels:\n  x:\n    model: bad_factories:exits\n    inputs: {batch_size: 1, seq_len: 4}\n",
            },
        )
    )
    # -- CLI options and files -------------------------------------------------------------------
    c += [
        Case("cli: unknown zoo name", [*IRENE, "tree", "no-such-model"], 3, "unknown model"),
        Case("cli: -b 0", [*IRENE, "tree", "gpt2", "-b", "0"], 4, "must be a positive integer"),
        Case("cli: -b many", [*IRENE, "predict", "gpt2", "-b", "many"], 4, "must be a positive integer (got 'many')"),
        Case("cli: unknown option", [*IRENE, "predict", "gpt2", "-b", "1", "-s", "4", "--frobnicate"], 4, "unrecognized arguments"),
        Case("cli: seq_len beyond positions", [*IRENE, "predict", "gpt2", "-b", "1", "-s", "5000"], 3, "use --seq-len 1024 or less"),
        Case("cli: missing profile", [*IRENE, "predict", TINY, "-b", "1", "-s", "4", "--profile", "nope"], 7, "no profile 'nope'"),
        Case("cli: a text file as profile", [*IRENE, "predict", TINY, "-b", "1", "-s", "4", "--profile", "p.irene.joblib"], 7, "not a readable profile file", {"p.irene.joblib": "hello\n"}),
        Case("cli: truncated profile", [*IRENE, "predict", TINY, "-b", "1", "-s", "4", "--profile", "p.irene.joblib"], 7, "corrupt or truncated", prepare=lambda f: (f / "p.irene.joblib").write_bytes((REPO / "predictor/profiles/irene-device-1.irene.joblib").read_bytes()[:300])),
        Case("cli: profile with NaN coefficients", [*IRENE, "predict", TINY, "-b", "1", "-s", "4", "--profile", "p.irene.joblib"], 7, "holds NaN", prepare=_tampered_profile("nan")),
        Case("cli: profile with wrong-typed fields", [*IRENE, "predict", TINY, "-b", "1", "-s", "4", "--profile", "p.irene.joblib"], 7, "malformed", prepare=_tampered_profile("type")),
        Case("cli: profile with wrong-shaped arrays", [*IRENE, "predict", TINY, "-b", "1", "-s", "4", "--profile", "p.irene.joblib"], 7, "malformed", prepare=_tampered_profile("shape")),
        Case("cli: profile that would run os.system", [*IRENE, "predict", TINY, "-b", "1", "-s", "4", "--profile", "p.irene.joblib"], 7, "refusing posix.system", prepare=_pickle_bomb, precious=()),
        Case("cli: a profile that cannot be read", [*IRENE, "predict", TINY, "-b", "1", "-s", "4", "--profile", "/proc/self/mem"], 9, "cannot read /proc/"),
        Case("cli: diff of a missing report", [*IRENE, "diff", "a.json", "b.json"], 4, "energy report not found"),
        Case("cli: diff of malformed JSON", [*IRENE, "diff", "a.json", "a.json"], 4, "not a JSON energy report", {"a.json": "{"}),
        Case("cli: diff of a JSON list", [*IRENE, "diff", "a.json", "a.json"], 4, "expected a JSON object", {"a.json": "[]"}),
        Case("cli: diff of a folder", [*IRENE, "diff", "d", "d"], 9, "cannot read", prepare=lambda f: (f / "d").mkdir()),
        Case("cli: diff of a report with negative energies", [*IRENE, "diff", "base.json", "base.json"], 4, "energies are never negative", prepare=_base_report("negative")),
        Case("cli: diff of another schema", [*IRENE, "diff", "base.json", "base.json"], 4, "report schema 'irene-report/99' is not supported", prepare=_base_report("schema")),
        Case("cli: budgets init over a file", [*IRENE, "budgets", "init", TINY, "-o", "b.yaml"], 4, "exists; pass --force", {"b.yaml": GOOD}, precious=("b.yaml",)),
        Case("cli: budgets init, one name twice", [*IRENE, "budgets", "init", f"a={TINY}", f"a={TINY}", "-o", "n.yaml"], 4, "two models named 'a'"),
        Case("cli: budgets init, newline in a name", [*IRENE, "budgets", "init", f"a\nb={TINY}", "-o", "n.yaml"], 4, "control character"),
        Case("cli: budgets init, bad headroom", [*IRENE, "budgets", "init", TINY, "--headroom", "lots", "-o", "n.yaml"], 4, "percentage like '5%'"),
        Case("cli: budgets init, bad glob", [*IRENE, "budgets", "init", TINY, "--module", "[z-a]", "-o", "n.yaml"], 4, "is not valid"),
        Case("cli: budgets check of a missing file", [*IRENE, "budgets", "check", "nope.yaml"], 4, "irene budgets check PATH"),
        Case("cli: budgets check --check measured without a meter", [*IRENE, "budgets", "check", "b.yaml", "--check", "measured"], 4, "measured needs a meter", _yaml(GOOD)),
        Case("cli: calibrate over a dataset", [*IRENE, "calibrate", "--meter", "fake", "--models", TINY, "-o", "data"], 4, "already holds files", prepare=lambda f: ((f / "data").mkdir(), (f / "data" / "x.csv").write_text("hours of work\n")), precious=("data/x.csv",)),
        Case("cli: calibrate on an absent GPU", [*IRENE, "calibrate", "--meter", "nvml", "--models", TINY, "--device", "cuda", "-o", "data"], 8, "no CUDA device"),
        Case("cli: meters --require nvml without a GPU", [*IRENE, "meters", "--require", "nvml"], 8, "NVML"),
        Case("cli: train on a missing dataset", [*IRENE, "train", "nowhere", "-o", "p.irene.joblib"], 6, "nowhere"),
    ]  # fmt: skip
    # -- the pytest gate ---------------------------------------------------------------------------
    c += [
        _gate(LAUGHS, 4, "YAML aliases", "gate: billion laughs"),
        _gate("version: 1\nmodels:\n  m: !!python/name:os.system\n", 4, "is not supported", "gate: python tag"),
        Case("gate: report over the budgets file", [*PYTEST, "--energy", "b.yaml", "--energy-report", "b.yaml"], 4, "is also the budgets file", _yaml(GOOD), precious=("b.yaml",)),
        Case("gate: report over the base report", [*PYTEST, "--energy", "b.yaml", "--energy-compare", "base.json", "--energy-report", "base.json"], 4, "is also the compare file", prepare=_base_report("none"), precious=("base.json",)),
        Case("gate: a runtime-feature profile", [*PYTEST, "--energy", "b.yaml", "--energy-profile", "irene-device-1-full"], 4, "uses the 'full' feature set", _yaml(GOOD)),
        Case("gate: measured energy without a meter", [*PYTEST, "--energy", "b.yaml", "--energy-meter", "nvml", "--energy-check", "measured"], 4, "needs a working meter", _yaml(GOOD)),
        Case("gate: the fake meter", [*PYTEST, "--energy", "b.yaml", "--energy-meter", "fake", "--energy-check", "measured"], 0, "meter cpu: fake", _yaml(GOOD)),
        Case("gate: bad --energy-meter", [*PYTEST, "--energy", "b.yaml", "--energy-meter", "gpu"], 4, "invalid choice", _yaml(GOOD)),
        Case("gate: bad --energy-timeout", [*PYTEST, "--energy", "b.yaml", "--energy-timeout", "soon"], 4, "not a number of seconds", _yaml(GOOD)),
        Case("gate: a base report with a zero total", [*PYTEST, "--energy", "b.yaml", "--energy-compare", "base.json"], 4, "costs more than 0 J", prepare=_base_report("zero")),
        Case("gate: a base report from another profile", [*PYTEST, "--energy", "b.yaml", "--energy-compare", "base.json"], 0, "not compared with the base report", prepare=_base_report("profile")),
        Case("gate: a budgets file named but missing", [*PYTEST, "--energy", "--energy-budgets", "nope.yaml"], 4, "budgets file not found"),
        Case("gate: a bad ini bool", [*PYTEST], 4, "energy must be true or false", {"tox.ini": "[pytest]\nenergy = maybe\n"}),
        Case("gate: an unbuildable entry under -n 2", [*PYTEST, "-n", "2", "--energy", "b.yaml"], 4, "has no attribute 'nope'", _yaml("version: 1\nmodels:\n  x:\n    model: examples.tiny_models:nope\n    inputs: {batch_size: 1, seq_len: 4}\n")),
        Case(
            "gate: names that would inject into Markdown",
            [*PYTEST, "--energy", "test_names.py", "--energy-markdown", "s.md"],
            0,
            "energy Markdown summary written",
            {"test_names.py": "import torch\nfrom torch import nn\n\ndef test_it(energy):\n    energy(nn.Linear(4, 4), torch.ones(2, 4), name='</details><script>alert(1)</script>|@octocat')\n"},
        ),
        Case(
            "gate: control characters in a fixture name",
            [*PYTEST, "--energy", "test_ctrl.py", "--junit-xml", "j.xml"],
            1,
            "control character",
            {"test_ctrl.py": "import torch\nfrom torch import nn\n\ndef test_it(energy):\n    energy(nn.Linear(4, 4), torch.ones(2, 4), name='a\\x1b[31mb')\n"},
        ),
        Case(
            "gate: an empty input",
            [*PYTEST, "--energy", "test_empty.py"],
            1,
            "with an empty dimension",
            {"test_empty.py": "import torch\nfrom torch import nn\n\ndef test_it(energy):\n    energy(nn.Linear(32, 4), torch.zeros(2, 0, 32), name='empty')\n"},
        ),
        Case(
            "gate: Ctrl-C keeps the previous report",
            [*PYTEST, "--energy", "b.yaml", "test_stop.py", "--energy-report", "r.json"],
            2,
            "reports not written",
            {"b.yaml": GOOD, "r.json": "{\"previous\": true}\n", "test_stop.py": "def test_stop():\n    raise KeyboardInterrupt\n"},
            precious=("r.json",),
        ),
    ]  # fmt: skip
    return c


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([".", str(REPO), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env["HF_HUB_OFFLINE"] = env["TRANSFORMERS_OFFLINE"] = "1"
    env.pop("GITHUB_STEP_SUMMARY", None)
    return env


@dataclass
class Outcome:
    case: Case
    code: int | None
    first_line: str
    problems: list[str]
    wall_s: float

    @property
    def passed(self) -> bool:
        return not self.problems


def run_case(case: Case) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="bad-input-") as tmp:
        folder = Path(tmp)
        shutil.copytree(REPO / "examples", folder / "examples")
        for name, content in case.files.items():
            path = folder / name
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        if case.prepare is not None:
            case.prepare(folder)
        before = {p: (folder / p).read_bytes() for p in case.precious}
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                case.command,
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=case.timeout_s,
                env=_env(),
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Outcome(case, None, "", [f"hung for {case.timeout_s:g} s"], case.timeout_s)
        wall = time.perf_counter() - start
        text = proc.stdout + proc.stderr
        problems = []
        if proc.returncode != case.code:
            problems.append(f"exit {proc.returncode}, documented {case.code}")
        if "Traceback" in text:
            problems.append("traceback")
        if "INTERNALERROR" in text:
            problems.append("INTERNALERROR")
        if case.expect not in text:
            problems.append(f"no {case.expect!r} in the output")
        for path, content in before.items():
            if not (folder / path).is_file() or (folder / path).read_bytes() != content:
                problems.append(f"{path} lost or changed")
        if (folder / "PWNED").exists():
            problems.append("code from a profile file ran")
        if case.name.startswith("gate: names") and (folder / "s.md").is_file():
            markdown = (folder / "s.md").read_text()
            if "<script" in markdown or "@octocat" in markdown:
                problems.append("a name reached the Markdown raw")
        lines = [ln.strip() for ln in text.splitlines() if case.expect in ln] or [
            ln.strip() for ln in text.splitlines() if ln.strip()
        ]
        first = lines[0].replace(str(folder), "<dir>") if lines else ""
        return Outcome(case, proc.returncode, first[:160], problems, wall)


def _md(outcomes: list[Outcome], wall_s: float) -> str:
    failed = [o for o in outcomes if not o.passed]
    lines = [
        "# Bad inputs: the hardening sweep",
        "",
        f"`python benchmarks/bench_bad_inputs.py`: {len(outcomes)} cases, {len(outcomes) - len(failed)} "
        f"with the right verdict, {len(failed)} without; {wall_s:.0f} s on {os.cpu_count()} cores "
        f"(Python {platform.python_version()}). Each case runs in a process of its own in a fresh "
        "folder; a verdict holds when the exit status is the documented one, the output says "
        "what is wrong, there is no traceback or INTERNALERROR, and no precious file changed.",
        "",
        f"Tracebacks: {sum('traceback' in o.problems for o in outcomes)}; INTERNALERRORs: "
        f"{sum('INTERNALERROR' in o.problems for o in outcomes)}; wrong exit statuses: "
        f"{sum(any(p.startswith('exit') for p in o.problems) for o in outcomes)}; files lost: "
        f"{sum(any('lost' in p for p in o.problems) for o in outcomes)}.",
        "",
        "| case | exit | first line | verdict |",
        "|---|---:|---|---|",
    ]
    for o in outcomes:
        first = o.first_line.replace("|", "\\|").replace("`", "'")
        verdict = "ok" if o.passed else "FAIL: " + "; ".join(o.problems)
        lines.append(f"| {o.case.name} | {o.code} | {first} | {verdict} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run the cases whose name holds this")
    args = parser.parse_args()
    selected = [c for c in cases() if not args.only or args.only in c.name]
    start = time.perf_counter()
    outcomes = []
    for case in selected:
        outcome = run_case(case)
        outcomes.append(outcome)
        mark = "ok  " if outcome.passed else "FAIL"
        print(
            f"{mark} {outcome.wall_s:5.1f}s  {case.name}: {'; '.join(outcome.problems)}", flush=True
        )
    wall = time.perf_counter() - start
    if not args.only:
        from predictor.files import write_text_atomic

        write_text_atomic(RESULTS / "bad_inputs.md", _md(outcomes, wall))
        write_text_atomic(
            RESULTS / "bad_inputs.json",
            json.dumps(
                [
                    {"case": o.case.name, "exit": o.code, "documented": o.case.code,
                     "first_line": o.first_line, "problems": o.problems, "wall_s": o.wall_s}
                    for o in outcomes
                ],
                indent=2,
            ) + "\n",
        )  # fmt: skip
    failed = sum(not o.passed for o in outcomes)
    print(f"{len(outcomes)} cases, {failed} failed, {wall:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
