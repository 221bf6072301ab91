"""Named inputs and max_extrapolated in the budgets file, the gate and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from predictor.cli.main import main
from predictor.errors import ConfigError
from predictor.gate.budgets import Inputs, parse_budgets
from predictor.gate.checks import extrapolation_check
from predictor.gate.engine import EnergyGate
from predictor.gate.options import resolve_options
from predictor.learn.profile import load_profile, profile_counting
from predictor.trace.input_specs import TensorSpec
from predictor.trace.primitives import default_primitives
from predictor.trace.tracer import build_tree

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("configs") / "vit"
    transformers.ViTConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128
    ).save_pretrained(folder)
    return folder


def test_budgets_take_named_input_shapes_and_max_extrapolated() -> None:
    budgets = parse_budgets(
        "version: 1\n"
        "defaults: {max_extrapolated: 5%}\n"
        "models:\n"
        "  vit:\n"
        "    model: some/vit\n"
        "    inputs: {pixel_values: [8, 3, 224, 224]}\n"
        "  whisper:\n"
        "    inputs:\n"
        "      input_features: {shape: [1, 80, 3000], dtype: float16}\n"
        "      decoder_input_ids: [1, 64]\n"
        "    max_extrapolated: 1%\n"
        "  bert:\n"
        "    inputs: {batch_size: 8, seq_len: 128}\n",
        "b.yaml",
    )
    vit, whisper, bert = budgets.models.values()
    assert vit.inputs == Inputs(None, None, (("pixel_values", TensorSpec((8, 3, 224, 224))),))
    assert vit.max_extrapolated == budgets.max_extrapolated == 0.05  # the default applies
    assert whisper.inputs is not None and whisper.inputs.named() == {
        "input_features": TensorSpec((1, 80, 3000), "float16"),
        "decoder_input_ids": TensorSpec((1, 64)),
    }
    assert whisper.max_extrapolated == 0.01
    assert bert.inputs == Inputs(8, 128) and bert.inputs.named() is None
    assert whisper.inputs.yaml() == (
        "{input_features: {shape: [1, 80, 3000], dtype: float16}, decoder_input_ids: [1, 64]}"
    )


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ("{pixel_values: [8, 0, 2]}", r"b.yaml:4: model 'm': inputs: input 'pixel_values': every"),
        ("{batch_size: 8}", r"b.yaml:4: model 'm': inputs needs seq_len"),
        ("{x: {shape: [2], dtype: fp8}}", r"b.yaml:4: model 'm': inputs: input 'x': dtype"),
        ("{arg0: [2], y: [2]}", r"b.yaml:4: model 'm': inputs: .*give one or the other"),
    ],
)
def test_bad_input_shapes_name_the_file_and_line(inputs: str, message: str) -> None:
    text = f"version: 1\nmodels:\n  m:\n    inputs: {inputs}\n"
    with pytest.raises(ConfigError, match=message):
        parse_budgets(text, "b.yaml")


def test_max_extrapolated_must_be_a_share() -> None:
    with pytest.raises(ConfigError, match=r"b.yaml:2: defaults.max_extrapolated must be between"):
        parse_budgets("version: 1\ndefaults: {max_extrapolated: 150%}\n", "b.yaml")


def test_budgets_check_builds_a_vision_model_from_its_shapes(
    vit_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    budgets = tmp_path / "energy_budgets.yaml"
    budgets.write_text(
        "version: 1\nmodels:\n  vit:\n"
        f"    model: {json.dumps(str(vit_folder))}\n"
        "    inputs: {pixel_values: [2, 3, 224, 224]}\n"
        "    budget: 1 kJ\n    max_extrapolated: 0%\n",
        encoding="utf-8",
    )
    report = tmp_path / "r.json"
    assert main(["budgets", "check", str(budgets), "--report", str(report)]) == 0
    (model,) = json.loads(report.read_text())["models"]
    assert model["seq_len"] == 197  # patches + class token
    assert [c["kind"] for c in model["checks"]] == ["budget", "extrapolated"]


def _gate(tmp_path: Path, text: str) -> EnergyGate:
    options = resolve_options({"energy": True}, {}, invocation_dir=tmp_path, rootdir=tmp_path)
    return EnergyGate(options, parse_budgets(text, tmp_path / "b.yaml"), load_profile())


def test_max_extrapolated_fails_a_model_beyond_it(tmp_path: Path) -> None:
    profile = load_profile()
    # a primitive of a kernel class the profile has no data for: its energy is extrapolated
    registry = default_primitives().register(nn.Sequential, kernel="elementwise")
    model = nn.Sequential(nn.Linear(64, 64), nn.Sequential(nn.ReLU(), nn.Tanh()))
    tree = profile.predict(
        build_tree(
            model,
            torch.zeros(8, 64),
            name="m",
            primitives=registry,
            counting_mode=profile_counting(profile),
        )
    )
    share = tree.extrapolated_share()
    assert 0 < share < 1
    check = extrapolation_check("m", tree, share / 2)
    assert not check.passed
    assert check.message().startswith(f"m: {100 * share:.1f}% of the energy extrapolated > ")
    assert extrapolation_check("m", tree, min(1.0, share * 2)).passed
    gate = _gate(tmp_path, "version: 1\ndefaults: {max_extrapolated: 0%}\nmodels:\n  m: {}\n")
    result = gate.evaluate("m", tree, source="fixture", nodeid="t")
    assert not result.passed and result.violations[0].kind == "extrapolated"
    lenient = _gate(tmp_path, "version: 1\nmodels:\n  m: {max_extrapolated: 100%}\n")
    assert lenient.evaluate("m", tree, source="fixture", nodeid="t").passed


def test_predict_takes_named_inputs_and_shows_what_it_cannot_vouch_for(
    vit_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", str(vit_folder), "--input", "pixel_values=2x3x224x224"]) == 0
    out = capsys.readouterr().out
    assert "extrapolated: 0.00 % of the energy" in out and "unsupported ops: none" in out
    assert main(["predict", str(vit_folder), "--input", "pixel_values=2x3x224x224",
                 "--format", "json"]) == 0  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert data["extrapolated_share"] == 0.0 and data["unsupported_ops"] == []
    assert main(["tree", str(vit_folder), "--input", "pixel_values=1x3x224x224", "--format",
                 "json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["root"]["seq_len"] == 197


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--input", "pixel_values"], "NAME=SHAPE"),
        ([], "ViTModel.forward takes no input_ids"),
        (["--input", "pixel_values=2x3x224x224", "--max-extrapolated", "200%"], "between 0%"),
    ],
)
def test_predict_input_errors(
    vit_folder: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code = main(["predict", str(vit_folder), *argv])
    assert code == (3 if not argv else 4)  # no inputs: the token-ids default does not fit
    assert message in capsys.readouterr().err
