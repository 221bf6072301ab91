"""Every zoo model builds a tree with no weights; totals against an independent estimate."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from torch import nn

from predictor.errors import ModelError, SequenceTooLong
from predictor.trace.primitives import default_primitives
from predictor.trace.zoo import build_model, build_zoo_tree, known_models, model_inputs

BATCH, SEQ = 2, 32
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Factory specs such as examples.tiny_models:tiny_bert import from the current directory."""
    monkeypatch.chdir(REPO)


MATMUL_TYPES = ("Linear", "Conv1D", "MatMul")


def _estimate_matmul_flops(model: nn.Module, batch: int, seq: int) -> float:
    """2 x (weights of Linear/Conv1D) x tokens (+ tokens x biases), with layer reuse, plus the
    attention products 2 x 2*B*S*S*(heads*head_dim) per attention; from the config alone."""
    config = model.config  # type: ignore[union-attr]
    tokens = batch * seq
    reuse_prefix, reuse = "encoder.albert_layer_groups.", getattr(config, "num_hidden_layers", 1)
    total = 0.0
    for name, module in model.named_modules():
        if type(module).__name__ not in ("Linear", "Conv1D"):
            continue
        factor = reuse if name.startswith(reuse_prefix) else 1
        weight = module.weight.numel()  # type: ignore[union-attr]
        bias = module.bias.numel() if getattr(module, "bias", None) is not None else 0  # type: ignore[union-attr]
        total += factor * (2 * tokens * weight + tokens * bias)
    heads = (
        getattr(config, "num_attention_heads", None)
        or getattr(config, "n_head", None)
        or config.num_heads
    )
    layers = (
        getattr(config, "num_hidden_layers", None)
        or getattr(config, "n_layer", None)
        or config.num_layers
    )
    hidden = (
        getattr(config, "hidden_size", None) or getattr(config, "n_embd", None) or config.d_model
    )
    head_dim = getattr(config, "head_dim", None) or getattr(config, "d_kv", None) or hidden // heads
    attentions = layers * (3 if getattr(config, "is_encoder_decoder", False) else 1)
    total += attentions * 2 * (2 * batch * seq * seq * heads * head_dim)
    return total


@pytest.mark.parametrize("name", known_models())
def test_zoo_model_builds_and_matmuls_match_estimate(name: str) -> None:
    model = build_model(name)
    assert all(p.is_meta for p in model.parameters()), "parameters must have no storage"
    tree = build_zoo_tree(name, BATCH, SEQ)
    assert tree.root.name == name and tree.root.type == type(model).__name__
    assert tree.meta["attn_implementation"] == "eager"
    assert tree.unsupported_ops == [], tree.unsupported_ops
    traced = sum(n.flops for n in tree.nodes("ml") if n.type in MATMUL_TYPES) * 1e6
    estimate = _estimate_matmul_flops(model, BATCH, SEQ)
    assert traced == pytest.approx(estimate, rel=0.01)
    assert tree.root.flops * 1e6 >= traced
    assert tree.root.num_parameters == sum(p.numel() for p in model.parameters())
    kinds = {n.type for n in tree.nodes("ml")}
    assert "MatMul" in kinds and "Softmax" in kinds


def test_seven_billion_parameters_without_storage() -> None:
    model = build_model("llama-2-7b")
    params = list(model.parameters())
    assert sum(p.numel() for p in params) > 6.5e9
    assert sum(p.numel() * p.element_size() for p in params if not p.is_meta) == 0
    assert default_primitives().type_of(model.norm) == "LlamaRMSNorm"


def test_sdpa_attention_is_counted_like_eager() -> None:
    eager = build_zoo_tree("gpt2", 1, 16)
    sdpa = build_zoo_tree("gpt2", 1, 16, attn_implementation="sdpa")
    assert sdpa.meta["attn_implementation"] == "sdpa"
    assert [n.name for n in sdpa.nodes("ml")] == [n.name for n in eager.nodes("ml")]
    assert sdpa.root.flops == pytest.approx(eager.root.flops, rel=0.01)


def test_native_mode_differs_and_is_recorded() -> None:
    irene = build_zoo_tree("bert-base-uncased", 1, 16)
    native = build_zoo_tree("bert-base-uncased", 1, 16, counting_mode="native")
    assert native.counting_mode == "native"
    # native charges each tensor once at its own size, copies and casts included; IrEne's
    # rules differ (e.g. 3 x 4 B per element for mul), so the bytes differ, the FLOPs hardly
    assert native.root.mem_bytes != irene.root.mem_bytes
    assert native.root.flops == pytest.approx(irene.root.flops, rel=0.01)


def test_t5_gets_decoder_inputs_and_distilbert_irene_positions() -> None:
    t5 = build_zoo_tree("t5-small", 1, 8)
    assert "decoder_input_ids" in t5.meta["inputs"]
    distil = build_zoo_tree("distilbert-base-uncased", 2, 8)
    assert distil.meta["inputs"]["position_ids"]["shape"] == [2, 8]
    native = build_zoo_tree("distilbert-base-uncased", 2, 8, counting_mode="native")
    assert "position_ids" not in native.meta["inputs"]


def test_factory_spec_builds_on_meta() -> None:
    tree = build_zoo_tree("examples.tiny_models:tiny_bert", 2, 16)
    assert tree.root.name == "examples.tiny_models:tiny_bert"
    assert tree.root.num_parameters == sum(
        p.numel() for p in build_model("examples.tiny_models:tiny_bert").parameters()
    )
    assert all(p.is_meta for p in build_model("examples.tiny_models:tiny_gpt2").parameters())


@pytest.mark.parametrize(
    ("spec", "seq", "pattern"),
    [
        (
            "bert-large-cased",
            8,
            "unknown model 'bert-large-cased'; known models: bert-base-uncased, ",
        ),
        ("no_such_pkg.models:make", 8, "cannot import module 'no_such_pkg.models'"),
        ("examples.tiny_models:nope", 8, "has no attribute 'nope'"),
        ("gpt2", 1025, "seq_len 1025 is beyond the model's 1024 positions"),
        ("roberta-base", 513, "beyond the model's 512 positions"),
        ("examples.tiny_models:tiny_bert", 129, "beyond the model's 128 positions"),
    ],
)
def test_bad_specs_raise_model_error(spec: str, seq: int, pattern: str) -> None:
    with pytest.raises(ModelError, match=re.escape(pattern)):
        build_zoo_tree(spec, 1, seq)


@pytest.mark.parametrize(
    ("spec", "limit", "source"),
    [
        ("gpt2", 1024, "GPT2Config.max_position_embeddings"),
        ("roberta-base", 512, "RobertaConfig.max_position_embeddings 514, 2 reserved"),
        ("examples.tiny_models:tiny_bert", 128, "BertConfig.max_position_embeddings"),
    ],
)
def test_sequence_too_long_carries_its_fields(spec: str, limit: int, source: str) -> None:
    assert build_zoo_tree(spec, 1, limit).seq_len == limit  # the longest input fits
    with pytest.raises(SequenceTooLong) as info:
        build_zoo_tree(spec, 1, limit + 1)
    exc = info.value
    assert (exc.model, exc.seq_len, exc.limit, exc.source) == (spec, limit + 1, limit, source)
    assert "--seq-len" not in str(exc) and "inputs.seq_len" not in str(exc)


def test_bad_attention_and_sizes() -> None:
    with pytest.raises(ModelError, match="attention implementation must be one of eager, sdpa"):
        build_model("gpt2", attn_implementation="flash")
    with pytest.raises(ModelError, match=">= 1"):
        build_zoo_tree("gpt2", 0, 8)


def test_unknown_name_lists_every_known_model() -> None:
    with pytest.raises(ModelError) as info:
        build_zoo_tree("llama-3-8b", 1, 8)
    for name in known_models():
        assert name in str(info.value)
    assert len(known_models()) == 21


def test_factory_failing_on_meta_is_built_real_and_inputs_must_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "realonly.py").write_text(
        "import torch\n"
        "from torch import nn\n"
        "def make():\n"
        "    if torch.ones(1).item() != 1.0:  # needs real values: fails on meta\n"
        "        raise RuntimeError\n"
        "    return nn.Linear(4, 4)\n"
    )
    monkeypatch.chdir(tmp_path)
    model = build_model("realonly:make")
    assert isinstance(model, nn.Linear) and not model.weight.is_meta
    # nn.Linear.forward takes `input`, not token ids
    with pytest.raises(ModelError, match=re.escape("Linear.forward takes no input_ids")):
        build_zoo_tree("realonly:make", 1, 4)


def test_model_inputs_for_a_spec_are_the_traced_ones() -> None:
    model = build_model("gpt2")
    # a decoder built on create_causal_mask gets a mask of ones, named by the zoo or not
    plain = model_inputs(model, 2, 8)
    assert set(plain) == {"input_ids", "attention_mask", "use_cache"}
    assert set(model_inputs(build_model("bert-base-uncased"), 2, 8)) == {"input_ids", "use_cache"}
    assert set(model_inputs(model, 2, 8, spec="gpt2")) == {
        "input_ids",
        "attention_mask",
        "use_cache",
    }
    distil = build_model("distilbert-base-uncased")
    ids = model_inputs(distil, 2, 8, spec="distilbert-base-uncased")["position_ids"]
    assert tuple(ids.shape) == (2, 8)
