"""Models built in a dtype by name (--dtype, inputs.dtype, build_zoo_tree(dtype=...))."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers

from predictor.cli.main import main
from predictor.errors import ConfigError, ModelError
from predictor.gate.budgets import Inputs, load_budgets
from predictor.trace.tree import EnergyTree
from predictor.trace.zoo import build_zoo_tree

TINY_BERT = "examples.tiny_models:tiny_bert"
QUERY = "encoder.layer.0.attention.self.query:Linear"


@pytest.mark.parametrize(
    ("dtype", "size", "name"), [("fp32", 4, "float32"), ("bf16", 2, "bfloat16")]
)
def test_zoo_builds_a_model_in_a_dtype(dtype: str, size: int, name: str) -> None:
    tree = build_zoo_tree(TINY_BERT, 2, 8, counting_mode="native", dtype=dtype)
    query = tree.find(QUERY)[0]
    # input 2x8x64, weight 64x64, bias 64, output 2x8x64: 6208 elements at the dtype's size
    assert query.mem_bytes * 2**20 == 6208 * size
    assert query.flops * 1e6 == 2 * 16 * 64 * 64 + 16 * 64
    assert query.dtype == name and tree.dtypes()[0] == name


def test_an_unknown_dtype_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="dtype must be one of fp32, bf16, fp16"):
        build_zoo_tree(TINY_BERT, 1, 8, dtype="fp64")


def test_inputs_describe_their_dtype_only_when_set() -> None:
    assert Inputs(8, 128).describe() == "batch_size=8, seq_len=128"
    assert Inputs(8, 128, dtype="bf16").describe() == "batch_size=8, seq_len=128, dtype=bf16"


def test_budgets_file_inputs_take_a_dtype(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "version: 1\nmodels:\n  m:\n    inputs: {batch_size: 2, seq_len: 8, dtype: bf16}\n"
        "    budget: 1 J\n"
    )
    assert load_budgets(good).models["m"].inputs == Inputs(2, 8, dtype="bf16")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nmodels:\n  m:\n    inputs: {batch_size: 2, seq_len: 8, dtype: fp64}\n"
    )
    with pytest.raises(ConfigError, match=r"bad.yaml:4: .*inputs.dtype must be one of fp32"):
        load_budgets(bad)


def test_tree_command_builds_in_the_dtype(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "tree",
                TINY_BERT,
                "-s",
                "8",
                "--dtype",
                "bf16",
                "--counting",
                "native",
                "--format",
                "json",
            ]
        )
        == 0
    )
    tree = EnergyTree.from_dict(json.loads(capsys.readouterr().out))
    assert tree.root.dtype == "bfloat16"


def test_a_config_stated_dtype_is_the_default_and_survives_materializing() -> None:
    """A model named by zoo name computes in the dtype its config states (the ML.ENERGY chat
    entries: bf16), and a meter's real model is rebuilt in the dtype the tree was traced in."""
    from predictor.measure.calibrate import materialize
    from predictor.trace.zoo import build_model

    model = build_model("gemma-2-2b")
    assert next(model.parameters()).dtype == torch.bfloat16
    assert next(build_model("gemma-2-2b", dtype="fp32").parameters()).dtype == torch.float32
    assert next(build_model("gpt2").parameters()).dtype == torch.float32  # states none
    config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        dtype="bfloat16",
    )
    with torch.device("meta"):
        meta = transformers.LlamaForCausalLM(config).to(torch.bfloat16)
    real = materialize(meta, "cpu")
    assert not next(real.parameters()).is_meta
    assert next(real.parameters()).dtype == torch.bfloat16
