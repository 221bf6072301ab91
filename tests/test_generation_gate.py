"""Generation workloads in the gate and the CLI: budgets per token, per request and per decode
step, checked, compared, diffed and updated; ``irene predict --new-tokens``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from predictor.cli.main import main
from predictor.errors import ConfigError
from predictor.gate.budgets import Inputs, parse_budgets
from predictor.gate.checks import Check, check_tree, compare_tree
from predictor.gate.diff import diff_reports, render_markdown, render_table
from predictor.gate.engine import predict_generation_spec
from predictor.gate.generation import quantity_value
from predictor.gate.report import Report
from predictor.gate.units import format_energy
from predictor.learn.profile import load_profile
from predictor.trace.tree import EnergyTree

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_LLAMA = "examples.tiny_models:tiny_llama"
WORKLOAD = "{batch_size: 4, prompt_len: 32, new_tokens: 12}"


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)  # the example factories import from here


@pytest.fixture(scope="module")
def predicted() -> EnergyTree:
    """The tiny Llama's generation as the gate predicts it (the mean decode step's tree)."""
    inputs = Inputs(4, 32, prompt_len=32, new_tokens=12)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO_ROOT)
        return predict_generation_spec(TINY_LLAMA, inputs, load_profile(), name="chat").decode_step


def _j(value: float) -> str:
    return f"{value!r} J"


def _copy(tree: EnergyTree) -> EnergyTree:
    """A deep copy (a tree's dict shares its meta)."""
    return EnergyTree.from_dict(json.loads(tree.to_json()))


# ---------------------------------------------------------------- the budgets file


def test_generation_inputs_and_budgets_parse() -> None:
    text = (
        "version: 1\nmodels:\n  chat:\n    model: m:f\n"
        "    inputs: {batch_size: 8, prompt_len: 128, new_tokens: 256, dtype: bf16, "
        "prefill_batch: 1}\n"
        "    per_token: 0.2 J\n    per_request: 90 J\n    budget: 2 J\n"
    )
    entry = parse_budgets(text, "b.yaml").models["chat"]
    assert entry.inputs is not None and entry.inputs.generation
    w = entry.inputs.workload()
    assert (w.batch_size, w.prompt_len, w.new_tokens, w.dtype, w.prefill_batch) == (
        8,
        128,
        256,
        "bf16",
        1,
    )
    assert entry.inputs.describe() == (
        "batch_size=8, prompt_len=128, new_tokens=256, prefill_batch=1, dtype=bf16"
    )
    assert [(q.quantity, q.budget_j, q.line) for q in entry.quantities] == [
        ("per_token", 0.2, 6),
        ("per_request", 90.0, 7),
    ]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ("{batch_size: 8, prompt_len: 128}", r"b.yaml:5: .*inputs need new_tokens"),
        (
            "{batch_size: 8, seq_len: 64, prompt_len: 128, new_tokens: 4}",
            r"b.yaml:5: .*prompt is prompt_len, not seq_len",
        ),
        (
            "{batch_size: 2, prompt_len: 8, new_tokens: 4, prefill_batch: 3}",
            r"b.yaml:5: .*prefill_batch 3 is more prompts than the batch holds \(2\)",
        ),
        (
            "{batch_size: 8, prompt_len: 8, new_tokens: 4, prefill_batch: 3}",
            r"b.yaml:5: .*prefill_batch 3 does not divide the batch \(8\).*1, 2, 4, 8",
        ),
        ("{batch_size: 2, prompt_len: 8, new_tokens: 4, dtype: int8}", r"inputs.dtype must be"),
        ("{batch_size: 2, prompt_len: 8, new_tokens: 0}", r"new_tokens must be a positive"),
        ("{batch_size: 2, prompt_len: 8, new_tokens: 1}", r"b.yaml:5: .*the prefill alone"),
    ],
)
def test_bad_generation_inputs_say_where_and_how(inputs: str, message: str) -> None:
    text = f"version: 1\nmodels:\n  chat:\n    model: m:f\n    inputs: {inputs}\n"
    with pytest.raises(ConfigError, match=message):
        parse_budgets(text, "b.yaml")


@pytest.mark.parametrize("key", ["per_token", "per_request"])
def test_generation_budgets_on_forward_pass_inputs_are_refused_at_their_line(key: str) -> None:
    text = (
        f"version: 1\nmodels:\n  bert:\n    inputs: {{batch_size: 2, seq_len: 8}}\n    {key}: 1 J\n"
    )
    with pytest.raises(ConfigError, match=rf"b.yaml:5: .*{key} budgets a generation"):
        parse_budgets(text, "b.yaml")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--new-tokens", "1"], "the prefill alone"),
        (["-b", "8", "--new-tokens", "4", "--prefill-batch", "3"], "does not divide the batch"),
        (["-b", "2", "--new-tokens", "4", "--prefill-batch", "3"], "more prompts than the batch"),
        (["-s", "64", "--prompt-len", "32", "--new-tokens", "4"], "disagree"),
    ],
)
def test_bad_generation_options_are_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", TINY_LLAMA, *args]) == ConfigError.exit_code
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("model", "message"),
    [("bert-base-uncased", "attention is bidirectional"), ("t5-small", "no causal-LM form")],
)
def test_an_encoder_does_not_generate(
    model: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from predictor.errors import ModelError

    assert main(["predict", model, "--new-tokens", "4"]) == ModelError.exit_code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("irene predict")]
    assert len(lines) == 1 and message in lines[0] and len(lines[0]) < 400
    assert "Model type should be one of" not in err


def test_a_prompt_beyond_the_positions_names_the_generation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["predict", "gpt2", "--prompt-len", "1020", "--new-tokens", "10"]
    assert main(args) == 3
    assert "keep prompt_len + new_tokens - 1 <= 1024" in capsys.readouterr().err


def test_a_kernels_only_profile_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["predict", TINY_LLAMA, "-b", "2", "--prompt-len", "16", "--new-tokens", "4"]
    assert main([*args, "--profile", "irene-h200", "--format", "json"]) == 0
    generation = json.loads(capsys.readouterr().out)["generation"]
    assert generation["serving_overhead_j"] == 0.0
    assert any(n.startswith("kernels only") for n in generation["notes"])
    assert generation["workload"]["dtype"] == "bfloat16"  # the dtype it computed in
    assert main([*args, "--profile", "irene-h100-sxm", "--format", "json"]) == 0
    generation = json.loads(capsys.readouterr().out)["generation"]
    assert generation["serving_overhead_j"] > 0
    assert not any(n.startswith("kernels only") for n in generation["notes"])


def test_per_token_budget_must_be_an_energy() -> None:
    text = f"version: 1\nmodels:\n  chat:\n    inputs: {WORKLOAD}\n    per_token: fast\n"
    with pytest.raises(ConfigError, match=r"b.yaml:5: model 'chat': per_token"):
        parse_budgets(text, "b.yaml")


# ---------------------------------------------------------------- checks


@pytest.mark.parametrize(("factor", "passed"), [(1.001, True), (0.999, False)])
@pytest.mark.parametrize("quantity", ["per_token", "per_request"])
def test_quantity_budget_just_under_and_over(
    predicted: EnergyTree, quantity: str, factor: float, passed: bool
) -> None:
    value = quantity_value(predicted, quantity)
    assert value is not None and value > 0
    text = (
        f"version: 1\nmodels:\n  chat:\n    model: {TINY_LLAMA}\n    inputs: {WORKLOAD}\n"
        f"    {quantity}: {_j(value * factor)}\n"
    )
    entry = parse_budgets(text, "b.yaml").models["chat"]
    result = check_tree(predicted, entry, name="chat")
    (check,) = result.checks
    assert check.quantity == quantity and check.line == 6 and check.passed is passed
    label = "per output token" if quantity == "per_token" else "per request"
    assert check.message().startswith(f"chat {label}: ")
    assert format_energy(value)[:3] in check.message()
    assert Check.from_dict(check.to_dict()) == check


def test_a_quantity_budget_on_a_forward_pass_is_a_warning() -> None:
    from predictor.trace.zoo import build_zoo_tree

    tree = load_profile().predict(build_zoo_tree("examples.tiny_models:tiny_bert", 2, 16))
    text = "version: 1\nmodels:\n  bert:\n    per_token: 1 J\n"
    result = check_tree(tree, parse_budgets(text).models["bert"], name="bert")
    assert result.checks == []
    assert "needs a generation workload" in result.warnings[0]


def test_compare_checks_the_generation_quantities(predicted: EnergyTree) -> None:
    base = _copy(predicted)
    summary = base.meta["generation"]["summary"]
    summary["j_per_output_token"] /= 1.2  # the head costs 20 % more per token than the base
    checks = {c.quantity: c for c in compare_tree("chat", predicted, base, 0.05) if c.quantity}
    assert set(checks) == {"per_token", "per_request", "prefill", "decode"}
    assert not checks["per_token"].passed and checks["per_request"].passed
    assert "chat per output token:" in checks["per_token"].message()
    assert "(+20.0%)" in checks["per_token"].message()


def test_diff_shows_the_generation(predicted: EnergyTree) -> None:
    from predictor.gate.checks import ModelResult

    base_tree = _copy(predicted)
    base_tree.meta["generation"]["summary"]["j_per_request"] /= 2
    base = Report(models=[ModelResult("chat", base_tree, inputs="x")])
    head = Report(models=[ModelResult("chat", predicted, inputs="x")])
    diff = diff_reports(base, head)
    (model,) = diff.models
    assert [c.fqn for c in model.generation] == [
        "per output token",
        "per request",
        "prefill",
        "decode",
    ]
    markdown = render_markdown(diff)
    assert "| chat | per request |" in markdown and "(+100.0%)" in markdown
    assert "chat per request" in render_table(diff)
    assert diff.to_dict()["models"][0]["generation"][1]["ratio"] == pytest.approx(1.0)


# ---------------------------------------------------------------- the CLI


def test_predict_json_has_a_generation_object(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "predict",
            TINY_LLAMA,
            "--batch-size",
            "4",
            "--prompt-len",
            "32",
            "--new-tokens",
            "12",
            "--format",
            "json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    gen = out["generation"]
    for key in ("prefill_j", "decode_j", "j_per_output_token", "j_per_request"):
        assert isinstance(gen[key], float) and gen[key] > 0
    assert gen["j_per_output_token"] == pytest.approx(
        (gen["prefill_j"] + gen["decode_j"]) / (4 * 12)
    )
    assert out["prefill"]["root"]["seq_len"] == 32
    assert out["decode_step"]["root"]["seq_len"] == 1
    assert out["decode_step"]["meta"]["generation"]["phase"] == "decode"


def test_predict_text_leads_with_the_generation(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["predict", TINY_LLAMA, "-b", "2", "--prompt-len", "16", "--new-tokens", "4"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "per output token" in out and "per request" in out and "decode step" in out


def test_prompt_len_without_new_tokens_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["predict", TINY_LLAMA, "--prompt-len", "16"]) == ConfigError.exit_code
    assert "give --new-tokens N too" in capsys.readouterr().err


def test_tree_json_has_the_prefill_and_every_decode_step(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["tree", TINY_LLAMA, "-b", "2", "--prompt-len", "16", "--new-tokens", "40"]
    assert main([*args, "--counting", "native", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    steps = out["decode_steps"]
    assert sum(s["steps"] for s in steps) == pytest.approx(39)
    assert steps[0]["cache_len"] == 16 and steps[-1]["cache_len"] == 16 + 38
    assert out["prefill"]["meta"]["generation"]["phase"] == "prefill"


def test_init_check_and_update_a_generation(tmp_path: Path) -> None:
    out = tmp_path / "gen.yaml"
    init = ["budgets", "init", f"chat={TINY_LLAMA}", "-b", "4", "--prompt-len", "32"]
    assert main([*init, "--new-tokens", "12", "-o", str(out)]) == 0
    text = out.read_text()
    assert "inputs: {batch_size: 4, prompt_len: 32, new_tokens: 12}" in text
    assert "per_token:" in text and "per_request:" in text
    assert main(["budgets", "check", str(out)]) == 0
    # the answers grow: more tokens per request, a longer context per token
    out.write_text(text.replace("new_tokens: 12", "new_tokens: 60"))
    assert main(["budgets", "check", str(out)]) == 1
    assert main(["budgets", "update", str(out)]) == 0
    assert main(["budgets", "check", str(out)]) == 0


def test_the_readme_generation_walkthrough_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's walkthrough: budgets written for gemma-2-2b's generation on the H100
    profile pass; the larger gemma-2-9b fails its per-token and per-request budgets."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Generation: joules per output token", 1)[1].split("\n## ", 1)[0]
    assert "irene budgets init chat=gemma-2-2b --batch-size 32 --prompt-len 120" in section
    out = tmp_path / "chat_budgets.yaml"
    init = ["budgets", "init", "chat=gemma-2-2b", "--batch-size", "32", "--prompt-len", "120"]
    args = [*init, "--new-tokens", "256", "--profile", "irene-h100-sxm", "-o", str(out)]
    assert main(args) == 0
    text = out.read_text()
    assert "inputs: {batch_size: 32, prompt_len: 120, new_tokens: 256}" in text
    assert "    model: gemma-2-2b\n" in text and "model: gemma-2-9b" in section
    assert main(["budgets", "check", str(out)]) == 0
    capsys.readouterr()
    out.write_text(text.replace("model: gemma-2-2b", "model: gemma-2-9b"))
    assert main(["budgets", "check", str(out), "--format", "json"]) == 1
    checks = json.loads(capsys.readouterr().out)["models"][0]["checks"]
    failed = {c.get("quantity") for c in checks if not c["passed"]}
    assert {"per_token", "per_request"} <= failed


# ---------------------------------------------------------------- the pytest plugin


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    (pytester.path / "examples").mkdir()
    for name in ("__init__.py", "tiny_models.py"):
        shutil.copy(REPO_ROOT / "examples" / name, pytester.path / "examples" / name)
    return pytester


@pytest.mark.parametrize(("factor", "code"), [(1.001, 0), (0.999, 1)], ids=["under", "over"])
def test_per_token_budget_in_the_gate(
    project: pytest.Pytester, predicted: EnergyTree, factor: float, code: int
) -> None:
    value = quantity_value(predicted, "per_token")
    assert value is not None
    (project.path / "energy_budgets.yaml").write_text(
        f"version: 1\nmodels:\n  chat:\n    model: {TINY_LLAMA}\n    inputs: {WORKLOAD}\n"
        f"    per_token: {_j(value * factor)}\n"
    )
    result = project.runpytest("-p", "no:cacheprovider", "--energy", "-n", "2")
    assert result.ret == pytest.ExitCode(code)
    if code:
        result.stdout.fnmatch_lines(["*chat per output token: * > * budget (+0.1%)*"])


GENERATION_TEST = """
import pytest
from examples.tiny_models import tiny_llama
from predictor import Workload


def test_chat(energy):
    tree = energy(tiny_llama(), Workload(4, 32, 12), name="chat")
    assert tree.meta["generation"]["summary"]["j_per_output_token"] > 0
"""


@pytest.mark.parametrize(("factor", "code"), [(1.001, 0), (0.999, 1)], ids=["under", "over"])
def test_fixture_generation_per_request_budget(
    project: pytest.Pytester, predicted: EnergyTree, factor: float, code: int
) -> None:
    value = quantity_value(predicted, "per_request")
    assert value is not None
    (project.path / "energy_budgets.yaml").write_text(
        f"version: 1\nmodels:\n  chat:\n    per_request: {_j(value * factor)}\n"
    )
    project.makepyfile(GENERATION_TEST)
    result = project.runpytest("-p", "no:cacheprovider", "--energy")
    assert result.ret == pytest.ExitCode(code)
    if code:
        result.stdout.fnmatch_lines(["*chat per request: * > * budget (+0.1%)*"])


def test_a_kernels_only_note_reaches_the_gate_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A profile with no serving overhead says so in budgets check's text and Markdown, and in
    irene report's text, as irene predict does."""
    budgets = tmp_path / "b.yaml"
    budgets.write_text(
        f"version: 1\nprofile: irene-l4\nmodels:\n  chat:\n    model: {TINY_LLAMA}\n"
        f"    inputs: {WORKLOAD}\n    per_token: 10 J\n"
    )
    report, markdown = tmp_path / "r.json", tmp_path / "s.md"
    args = ["budgets", "check", str(budgets), "--report", str(report), "--markdown", str(markdown)]
    assert main(args) == 0
    assert "chat: note: kernels only: profile 'irene-l4'" in capsys.readouterr().out
    assert "- chat: kernels only: profile 'irene-l4'" in markdown.read_text().replace("&#x27;", "'")
    assert main(["report", str(report)]) == 0
    assert "    note: kernels only: profile 'irene-l4'" in capsys.readouterr().out
