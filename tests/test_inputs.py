"""Any inputs: described tensors (YAML / command-line forms), built on meta; models from a
local config or the Hugging Face cache; the zoo's defaults for factory decoders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from predictor.errors import ModelError, SequenceTooLong
from predictor.trace.inputs import (
    TensorSpec,
    make_inputs,
    parse_input_option,
    parse_input_specs,
    spec_dtype,
)
from predictor.trace.zoo import build_model, build_zoo_tree, uses_causal_mask

transformers = pytest.importorskip("transformers")


def test_described_inputs_parse_from_yaml_and_command_line_forms() -> None:
    specs = parse_input_specs(
        {
            "pixel_values": [8, 3, 224, 224],
            "input_features": {"shape": [1, 80, 3000], "dtype": "float16"},
            "decoder_input_ids": "1x64",
        }
    )
    assert specs["pixel_values"] == TensorSpec((8, 3, 224, 224))
    assert specs["input_features"].describe() == "float16[1, 80, 3000]"
    assert spec_dtype(specs["decoder_input_ids"], "decoder_input_ids") == torch.int64
    assert spec_dtype(specs["pixel_values"], "pixel_values", torch.bfloat16) == torch.bfloat16
    assert parse_input_option("x=8x128x256:bf16") == ("x", TensorSpec((8, 128, 256), "bf16"))
    assert parse_input_option("attention_mask=2,16") == ("attention_mask", TensorSpec((2, 16)))


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ({"x": [8, 0]}, "every dimension must be a positive integer"),
        ({"x": []}, "give a shape as a list of positive integers"),
        ({"x": {"shape": [2], "dtype": "fp8"}}, "dtype must be one of"),
        ({"x": {"dims": [2]}}, "unknown key"),
        ({"arg0": [2], "y": [2]}, "give one or the other"),
        ({"arg1": [2]}, "positional inputs must be arg0"),
        ({"not a name": [2]}, "must be the name of a forward parameter"),
    ],
)
def test_described_inputs_are_validated(specs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_input_specs(specs)


def test_option_form_is_validated() -> None:
    with pytest.raises(ValueError, match="NAME=SHAPE"):
        parse_input_option("8x128")


def test_inputs_are_built_on_meta_with_masks_of_ones() -> None:
    built = make_inputs(parse_input_specs({"input_ids": [2, 8], "attention_mask": [2, 8]}))
    assert isinstance(built, dict)
    assert all(t.is_meta and t.dtype == torch.int64 for t in built.values())
    real = make_inputs(parse_input_specs({"attention_mask": [2, 3]}), device="cpu")
    assert isinstance(real, dict) and bool(real["attention_mask"].all())
    positional = make_inputs(parse_input_specs({"arg0": [4, 16]}))
    assert isinstance(positional, tuple) and positional[0].shape == (4, 16)


def _save(config: object, folder: Path) -> Path:
    folder.mkdir(parents=True)
    config.save_pretrained(folder)  # type: ignore[attr-defined]
    return folder


def test_models_from_a_local_config_file_or_folder(tmp_path: Path) -> None:
    vit = _save(transformers.ViTConfig(hidden_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, intermediate_size=128), tmp_path / "vit")  # fmt: skip
    for spec in (str(vit), str(vit / "config.json")):
        model = build_model(spec)
        assert type(model).__name__ == "ViTModel" and next(model.parameters()).is_meta
    tree = build_zoo_tree(
        str(vit), inputs={"pixel_values": [2, 3, 224, 224]}, counting_mode="native"
    )
    # the sequence a ViT processes: 14 x 14 patches + the class token, not its 3 channels
    assert (tree.batch_size, tree.seq_len) == (2, 197)
    assert tree.meta["execution"] == "meta"
    with pytest.raises(ModelError, match=r"holds no config\.json"):
        build_model(str(tmp_path))


def test_a_hub_id_needs_its_config_in_the_local_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelError, match="no config for it in the local Hugging Face cache"):
        build_model("someone/not-cached-model")


def test_factory_decoders_get_a_mask_of_ones_and_stay_on_meta() -> None:
    tiny = "examples.tiny_models:tiny_gpt2"
    assert uses_causal_mask(build_model(tiny))
    assert not uses_causal_mask(build_model("examples.tiny_models:tiny_bert"))
    tree = build_zoo_tree(tiny, 2, 16, counting_mode="native")
    assert tree.meta["execution"] == "meta" and "fallback_reason" not in tree.meta
    assert "attention_mask" in tree.meta["inputs"]


def test_named_inputs_with_token_ids_and_dtype(tmp_path: Path) -> None:
    llama = _save(
        transformers.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, vocab_size=100,
                                 max_position_embeddings=64),
        tmp_path / "llama",
    )  # fmt: skip
    tree = build_zoo_tree(
        str(llama),
        inputs={"input_ids": [2, 8]},
        counting_mode="native",
        dtype=torch.bfloat16,
    )
    assert tree.meta["execution"] == "meta"
    assert (tree.batch_size, tree.seq_len) == (2, 8)
    assert set(tree.meta["inputs"]) == {"input_ids", "attention_mask", "use_cache"}
    assert tree.root.dtype == "bfloat16"
    with pytest.raises(SequenceTooLong):
        build_zoo_tree(str(llama), inputs={"input_ids": [1, 65]})
    with pytest.raises(ModelError, match="give batch_size and seq_len"):
        build_zoo_tree(str(llama))
    with pytest.raises(ModelError, match="go together"):
        build_zoo_tree(str(llama), batch_size=2, inputs={"input_ids": [2, 8]})
    with pytest.raises(ModelError, match="input 'pixel_values'"):
        build_zoo_tree(str(llama), inputs={"pixel_values": [2, -3]})


def test_speech_model_sequence_is_its_encoder_frames(tmp_path: Path) -> None:
    whisper = _save(
        transformers.WhisperConfig(d_model=64, encoder_layers=1, decoder_layers=1,
                                   encoder_attention_heads=2, decoder_attention_heads=2,
                                   encoder_ffn_dim=128, decoder_ffn_dim=128),
        tmp_path / "whisper",
    )  # fmt: skip
    tree = build_zoo_tree(
        str(whisper),
        inputs={"input_features": [1, 80, 3000], "decoder_input_ids": [1, 16]},
        counting_mode="native",
    )
    assert tree.meta["execution"] == "meta"  # a decoder mask of ones keeps it there
    assert tree.seq_len == 1500  # the frames its encoder runs on, after the stride-2 conv
