"""Models by name, built from their Hugging Face config classes: no network, no weights.

``build_model("bert-base-uncased")`` builds the model under ``torch.device("meta")``, so its
parameters have shapes but no storage (a 7B model costs no memory), and
``build_zoo_tree(spec, batch_size, seq_len)`` traces it. A spec is either a zoo name
(:func:`known_models`) or ``"package.module:factory"``, a zero-argument callable returning an
``nn.Module`` (called under the meta device when it allows it); the current directory is
importable, as for ``python -m``.

Zoo models are the bare encoders/decoders (``BertModel``, ``GPT2Model``, ``LlamaModel``: no
task head), as in the IrEne dataset. Sizes are the published configurations.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from predictor.errors import ModelError, SequenceTooLong
from predictor.trace.dtypes import DTYPE_NAMES, MODEL_DTYPES
from predictor.trace.inputs import (
    TensorSpec,
    make_inputs,
    max_positions,
    parse_input_specs,
    token_ids,
)
from predictor.trace.moe import RoutingSpec
from predictor.trace.tracer import build_tree
from predictor.trace.tree import EnergyTree

__all__ = [
    "ATTN_IMPLEMENTATIONS",
    "ZooEntry",
    "build_model",
    "build_zoo_tree",
    "cast_model",
    "complete_inputs",
    "config_dtype",
    "known_models",
    "model_inputs",
    "uses_causal_mask",
    "zoo_config",
]

ATTN_IMPLEMENTATIONS: tuple[str, ...] = ("eager", "sdpa")
#: Above this many parameters a failed fake trace is not retried on real weights (memory).
_REAL_RETRY_MAX_PARAMS = 1_000_000_000


@dataclass(frozen=True)
class ZooEntry:
    """A named model: its transformers config and model classes and the config's arguments.

    ``position_offset``: positions the model reserves (RoBERTa's padding offset), so the
    longest input is ``max_position_embeddings - position_offset``.
    ``irene_position_ids``: feed ``position_ids`` of shape (batch, seq) in irene mode (or when
    tracing the dataset's configurations ``as_measured``), as transformers 4.2.2 (the IrEne
    dataset's version) did for this model.
    ``causal``: a decoder-only model built on transformers' ``create_causal_mask``, fed an
    attention mask of ones as ``generate()`` does (without one, that function runs a
    value-dependent packed-sequence check, which meta tensors cannot answer). The mask it
    builds is added to the scores either way: the counts change by a few scalar ops.
    """

    config_class: str
    model_class: str
    config: dict[str, Any] = field(default_factory=dict)
    position_offset: int = 0
    irene_position_ids: bool = False
    causal: bool = False


_ZOO: dict[str, ZooEntry] = {
    # -- the IrEne dataset's models -------------------------------------------------------------
    "bert-base-uncased": ZooEntry("BertConfig", "BertModel"),
    "distilbert-base-uncased": ZooEntry(
        "DistilBertConfig", "DistilBertModel", irene_position_ids=True
    ),
    "roberta-base": ZooEntry(
        "RobertaConfig",
        "RobertaModel",
        {
            "vocab_size": 50265,
            "max_position_embeddings": 514,
            "type_vocab_size": 1,
            "layer_norm_eps": 1e-5,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
        },
        position_offset=2,
    ),
    "gpt2": ZooEntry("GPT2Config", "GPT2Model", causal=True),
    "distilgpt2": ZooEntry("GPT2Config", "GPT2Model", {"n_layer": 6}, causal=True),
    # no mask: its (4.2.2-style) code adds a given mask to the scores, and IrEne passed none
    "openai-gpt": ZooEntry("OpenAIGPTConfig", "OpenAIGPTModel"),
    "sshleifer/tiny-ctrl": ZooEntry(
        "CTRLConfig",
        "CTRLModel",
        {"n_layer": 2, "n_embd": 16, "n_head": 2, "dff": 2},
        causal=True,
    ),
    # -- modern models, published sizes ---------------------------------------------------------
    "llama-2-7b": ZooEntry(
        "LlamaConfig",
        "LlamaModel",
        {
            "vocab_size": 32000,
            "hidden_size": 4096,
            "intermediate_size": 11008,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5,
        },
        causal=True,
    ),
    "mistral-7b": ZooEntry(
        "MistralConfig",
        "MistralModel",
        {
            "vocab_size": 32000,
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "max_position_embeddings": 32768,
            "sliding_window": 4096,
            "rms_norm_eps": 1e-5,
        },
        causal=True,
    ),
    "qwen2-0.5b": ZooEntry(
        "Qwen2Config",
        "Qwen2Model",
        {
            "vocab_size": 151936,
            "hidden_size": 896,
            "intermediate_size": 4864,
            "num_hidden_layers": 24,
            "num_attention_heads": 14,
            "num_key_value_heads": 2,
            "max_position_embeddings": 131072,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": True,
        },
        causal=True,
    ),
    "t5-small": ZooEntry(
        "T5Config",
        "T5Model",
        {
            "vocab_size": 32128,
            "d_model": 512,
            "d_kv": 64,
            "d_ff": 2048,
            "num_layers": 6,
            "num_heads": 8,
            "relative_attention_num_buckets": 32,
            "feed_forward_proj": "relu",
        },
    ),
    "albert-base-v2": ZooEntry(
        "AlbertConfig",
        "AlbertModel",
        {
            "vocab_size": 30000,
            "embedding_size": 128,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "hidden_act": "gelu_new",
            "max_position_embeddings": 512,
        },
    ),
    "electra-small": ZooEntry(
        "ElectraConfig",
        "ElectraModel",
        {
            "vocab_size": 30522,
            "embedding_size": 128,
            "hidden_size": 256,
            "num_hidden_layers": 12,
            "num_attention_heads": 4,
            "intermediate_size": 1024,
            "max_position_embeddings": 512,
        },
    ),
    # -- the ML.ENERGY Leaderboard v2 chat models, published configs (bf16) -----------------------
    "llama-3.1-8b": ZooEntry(
        "LlamaConfig",
        "LlamaModel",
        {
            "vocab_size": 128256,
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "max_position_embeddings": 131072,
            "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0,
            "dtype": "bfloat16",
        },
        causal=True,
    ),
    "mistral-7b-v0.3": ZooEntry(
        "MistralConfig",
        "MistralModel",
        {
            "vocab_size": 32768,
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "max_position_embeddings": 32768,
            "sliding_window": None,
            "rms_norm_eps": 1e-5,
            "dtype": "bfloat16",
        },
        causal=True,
    ),
    "mistral-nemo-12b": ZooEntry(
        "MistralConfig",
        "MistralModel",
        {
            "vocab_size": 131072,
            "hidden_size": 5120,
            "intermediate_size": 14336,
            "num_hidden_layers": 40,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "max_position_embeddings": 1024000,
            "sliding_window": None,
            "rms_norm_eps": 1e-5,
            "dtype": "bfloat16",
        },
        causal=True,
    ),
    "gemma-2-2b": ZooEntry(
        "Gemma2Config",
        "Gemma2Model",
        {
            "vocab_size": 256000,
            "hidden_size": 2304,
            "intermediate_size": 9216,
            "num_hidden_layers": 26,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "head_dim": 256,
            "max_position_embeddings": 8192,
            "sliding_window": 4096,
            "attn_logit_softcapping": 50.0,
            "final_logit_softcapping": 30.0,
            "dtype": "bfloat16",
        },
        causal=True,
    ),
    "gemma-2-9b": ZooEntry(
        "Gemma2Config",
        "Gemma2Model",
        {
            "vocab_size": 256000,
            "hidden_size": 3584,
            "intermediate_size": 14336,
            "num_hidden_layers": 42,
            "num_attention_heads": 16,
            "num_key_value_heads": 8,
            "head_dim": 256,
            "max_position_embeddings": 8192,
            "sliding_window": 4096,
            "attn_logit_softcapping": 50.0,
            "final_logit_softcapping": 30.0,
            "dtype": "bfloat16",
        },
        causal=True,
    ),
    "phi-3-mini-4k": ZooEntry(
        "Phi3Config",
        "Phi3Model",
        {
            "vocab_size": 32064,
            "hidden_size": 3072,
            "intermediate_size": 8192,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "max_position_embeddings": 4096,
            "original_max_position_embeddings": 4096,
            "sliding_window": 2047,
            "pad_token_id": 32000,
            "dtype": "bfloat16",
        },
        causal=True,
    ),
    # Phi-3-small has its own architecture (remote code: GEGLU MLP, alternating block-sparse
    # attention, mu-P scaling) that transformers does not ship; its sizes on a Llama layout
    # (the same GEMMs: 32 layers, GQA 32/8 heads of 128, a 14336-wide gated MLP, tied
    # embeddings); its block-sparse layers attend like dense ones below 1024 tokens of context.
    "phi-3-small-8k": ZooEntry(
        "LlamaConfig",
        "LlamaModel",
        {
            "vocab_size": 100352,
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "max_position_embeddings": 8192,
            "tie_word_embeddings": True,
            "dtype": "bfloat16",
        },
        causal=True,
    ),
    "phi-3-medium-4k": ZooEntry(
        "Phi3Config",
        "Phi3Model",
        {
            "vocab_size": 32064,
            "hidden_size": 5120,
            "intermediate_size": 17920,
            "num_hidden_layers": 40,
            "num_attention_heads": 40,
            "num_key_value_heads": 10,
            "max_position_embeddings": 4096,
            "original_max_position_embeddings": 4096,
            "sliding_window": 2047,
            "pad_token_id": 32000,
            "dtype": "bfloat16",
        },
        causal=True,
    ),
}


def zoo_config(spec: str, attn_implementation: str = "eager") -> Any | None:
    """The transformers config of the zoo model ``spec`` (its published sizes), or None when
    ``spec`` is not a zoo name. For builders of other forms of the model (its causal LM)."""
    entry = _ZOO.get(spec)
    if entry is None:
        return None
    _check_attn(attn_implementation)
    config = _hf_class(entry.config_class)(**entry.config)
    config._attn_implementation = attn_implementation
    return config


def known_models() -> list[str]:
    """Zoo names, in registry order (the IrEne dataset's seven first)."""
    return list(_ZOO)


def _check_attn(attn_implementation: str) -> None:
    if attn_implementation not in ATTN_IMPLEMENTATIONS:
        raise ModelError(
            f"attention implementation must be one of {', '.join(ATTN_IMPLEMENTATIONS)} "
            f"(got {attn_implementation!r})"
        )


def _hf_class(name: str) -> Any:
    try:
        import transformers
    except ImportError:
        raise ModelError(
            f"zoo models are built with Hugging Face transformers ({name}), which is not "
            "installed: pip install 'pytest-irene[hf]'"
        ) from None
    return getattr(transformers, name)


def _build_entry(spec: str, entry: ZooEntry, attn: str, device: str) -> nn.Module:
    config = _hf_class(entry.config_class)(**entry.config)
    config._attn_implementation = attn
    with torch.device(device):
        model = _hf_class(entry.model_class)(config)
    return model.eval()  # type: ignore[no-any-return]


def _import_factory(spec: str) -> Callable[[], Any]:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ModelError(
            f"unknown model {spec!r}: give a zoo name ({', '.join(known_models())}) "
            "or a factory as 'package.module:function'"
        )
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelError(
            f"model factory {spec!r}: cannot import module {module_name!r} "
            f"({type(exc).__name__}: {exc}); check the dotted path and that it is importable "
            "from the current directory or PYTHONPATH"
        ) from None
    except SystemExit as exc:
        raise ModelError(
            f"model factory {spec!r}: importing {module_name!r} called sys.exit({exc.code!r})"
        ) from None
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
    factory = module
    for part in attr.split("."):
        try:
            factory = getattr(factory, part)
        except AttributeError:
            raise ModelError(
                f"model factory {spec!r}: module {module_name!r} ({getattr(module, '__file__', '?')}) "
                f"has no attribute {attr!r}"
            ) from None
    if not callable(factory):
        raise ModelError(f"model factory {spec!r}: {attr!r} is not callable")
    return factory


def _call_factory(spec: str, factory: Callable[[], Any], device: str | None) -> nn.Module:
    try:
        if device is None:
            model = factory()
        else:
            with torch.device(device):
                model = factory()
    except Exception as exc:
        raise ModelError(f"model factory {spec!r} raised {type(exc).__name__}: {exc}") from None
    except SystemExit as exc:  # a factory is library code: it must not end the gate or the CLI
        raise ModelError(
            f"model factory {spec!r} called sys.exit({exc.code!r}); a factory must return a "
            "torch.nn.Module (raise an exception to report a problem)"
        ) from None
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"model factory {spec!r} returned {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def _set_attn(model: nn.Module, spec: str, attn: str) -> None:
    config = getattr(model, "config", None)
    setter = getattr(model, "set_attn_implementation", None)
    if config is None or getattr(config, "_attn_implementation", attn) == attn or setter is None:
        return
    try:
        setter(attn)
    except (ValueError, ImportError) as exc:
        raise ModelError(
            f"{spec}: attention implementation {attn!r} is not supported: {exc}"
        ) from None


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def config_dtype(model: nn.Module) -> torch.dtype | None:
    """The floating dtype ``model``'s config states (``config.dtype``, a ``torch.dtype`` or a
    name such as ``bfloat16``), else None."""
    stated = getattr(getattr(model, "config", None), "dtype", None)
    if isinstance(stated, torch.dtype):
        return stated if stated.is_floating_point else None
    key = stated.strip().lower() if isinstance(stated, str) else ""
    return getattr(torch, DTYPE_NAMES[key]) if key in DTYPE_NAMES else None


def cast_model(model: nn.Module, target: torch.dtype | None) -> nn.Module:
    """``model`` moved to ``target`` (in place, as ``nn.Module.to``) when it has parameters in
    another dtype; unchanged with None."""
    first = next(model.parameters(), None)
    if target is None or first is None or first.dtype == target:
        return model
    return model.to(target)


def _cast(model: nn.Module, spec: str, dtype: str | torch.dtype | None) -> nn.Module:
    """``model`` in ``dtype``: a :data:`~predictor.trace.dtypes.MODEL_DTYPES` name (``bf16``)
    or a ``torch.dtype``; None: the dtype its config states (``config.dtype``, as a hub
    config's ``torch_dtype`` or the ML.ENERGY zoo entries' bfloat16), else its own."""
    if dtype is None:
        return cast_model(model, config_dtype(model))
    if isinstance(dtype, str):
        if dtype not in MODEL_DTYPES:
            raise ModelError(
                f"{spec}: dtype must be one of {', '.join(MODEL_DTYPES)} (got {dtype!r})"
            )
        dtype = getattr(torch, MODEL_DTYPES[dtype])
    return model.to(dtype)


def _config_source(spec: str) -> str | None:
    """What ``AutoConfig.from_pretrained`` should read for ``spec``: a local ``config.json``
    (or a folder holding one), or a hub id (``org/name``); None for anything else."""
    path = Path(os.path.expanduser(spec))
    if path.is_file() and path.suffix == ".json":
        return str(path.parent) if path.name == "config.json" else str(path)
    if path.is_dir():
        if (path / "config.json").is_file():
            return str(path)
        raise ModelError(f"{spec}: a folder, but it holds no config.json to build a model from")
    if _HUB_ID.match(spec):
        return spec
    return None


def _build_from_config(spec: str, source: str, attn: str, device: str) -> nn.Module:
    """A bare model (``AutoModel``, no task head, as the zoo's) from a local config or a hub
    id whose config is in the local Hugging Face cache; never downloads."""
    transformers = _hf_module(spec)
    try:
        config = transformers.AutoConfig.from_pretrained(source, local_files_only=True)
    except OSError as exc:
        raise ModelError(
            f"unknown model {spec!r}: not a zoo name ({', '.join(known_models())}), and no "
            f"config for it in the local Hugging Face cache ({_short_error(exc)}); download it "
            "once (huggingface-cli download SPEC config.json), give a config.json path, or a "
            "factory as 'package.module:function'"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{spec}: cannot read its config: {_short_error(exc)}") from None
    config._attn_implementation = attn
    try:
        with torch.device(device):
            model = transformers.AutoModel.from_config(config)
    except (ValueError, KeyError, TypeError, ImportError) as exc:
        raise ModelError(
            f"{spec}: cannot build a model from its config: {_short_error(exc)}"
        ) from None
    return model.eval()  # type: ignore[no-any-return]


def _short_error(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _hf_module(spec: str) -> Any:
    try:
        import transformers
    except ImportError:
        raise ModelError(
            f"{spec}: building a model from a Hugging Face config needs transformers, which is "
            "not installed: pip install 'pytest-irene[hf]'"
        ) from None
    return transformers


def build_model(
    spec: str,
    attn_implementation: str = "eager",
    *,
    device: str = "meta",
    dtype: str | torch.dtype | None = None,
) -> nn.Module:
    """The model a spec names, in eval mode, on ``device`` (meta: no parameter storage), in
    ``dtype`` (``fp32``, ``bf16``, ``fp16`` or a ``torch.dtype``; None: the dtype the model's
    config states, else as built: float32 for config classes that state none).

    A spec is a zoo name, ``package.module:factory`` (called under the meta device; if it fails
    there it is called normally), a local ``config.json`` or a folder holding one, or a hub id
    (``org/name``) whose config is in the local Hugging Face cache (``local_files_only``: no
    download): ``AutoConfig`` + ``AutoModel.from_config``, the bare model.
    """
    return _cast(_build(spec, attn_implementation, device), spec, dtype)


def _build(spec: str, attn_implementation: str, device: str) -> nn.Module:
    _check_attn(attn_implementation)
    entry = _ZOO.get(spec)
    if entry is not None:
        try:
            return _build_entry(spec, entry, attn_implementation, device)
        except ValueError as exc:
            raise ModelError(
                f"{spec}: cannot build with attention {attn_implementation!r}: {exc}"
            ) from None
    if ":" not in spec or os.sep in spec or spec.endswith(".json"):
        source = _config_source(spec)
        if source is not None:
            return _build_from_config(spec, source, attn_implementation, device)
        raise ModelError(
            f"unknown model {spec!r}; known models: {', '.join(known_models())}; "
            "or give a factory as 'package.module:function', a config.json path, or a hub id "
            "whose config is in the local Hugging Face cache"
        )
    factory = _import_factory(spec)
    try:
        model = _call_factory(spec, factory, device)
    except ModelError:
        if device != "meta":
            raise
        model = _call_factory(spec, factory, None)
    _set_attn(model, spec, attn_implementation)
    return model.eval()


_CAUSAL_FORWARD: dict[type, bool] = {}


def _forward_calls_causal_mask(cls: type) -> bool:
    """Whether the class's ``forward`` source calls a ``create_*causal_mask`` (cached)."""
    if cls not in _CAUSAL_FORWARD:
        try:
            source = inspect.getsource(getattr(cls, "forward"))  # noqa: B009  (any class)
        except (OSError, TypeError):
            source = ""
        _CAUSAL_FORWARD[cls] = re.search(r"\bcreate_\w*causal_mask\b", source) is not None
    return _CAUSAL_FORWARD[cls]


def uses_causal_mask(model: nn.Module) -> bool:
    """Whether ``model`` is a decoder-only model whose forward (or a submodule's) calls
    transformers' ``create_causal_mask`` (or ``create_sliding_window_causal_mask`` ...): without an attention mask that function runs a
    value-dependent packed-sequence check, which meta tensors cannot answer, so such a decoder
    is fed a mask of ones, as ``generate()`` passes it. Encoders (BERT builds its masks in a
    helper, causal only as a decoder) and encoder-decoders are not."""
    if getattr(getattr(model, "config", None), "is_encoder_decoder", False):
        return False
    classes = dict.fromkeys(
        type(m) for m in model.modules() if type(m).__module__.startswith("transformers.")
    )
    return any(_forward_calls_causal_mask(cls) for cls in classes)


def _device_of(model: nn.Module) -> torch.device:
    """Where a model's inputs go: meta for a meta model (no memory at any size), else cpu."""
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return first.device if first is not None and first.is_meta else torch.device("cpu")


def _float_dtype(model: nn.Module) -> torch.dtype:
    first = next((p for p in model.parameters() if p.is_floating_point()), None)
    return first.dtype if first is not None else torch.float32


def model_inputs(
    model: nn.Module,
    batch_size: int,
    seq_len: int,
    *,
    counting_mode: str = "irene",
    irene_position_ids: bool = False,
    causal: bool = False,
    spec: str | None = None,
    as_measured: bool | None = None,
) -> dict[str, Any]:
    """Keyword inputs for one forward of a token model: ``input_ids`` (int64 zeros, (B, S)),
    the defaults of :func:`complete_inputs` (an attention mask of ones for decoder-only
    models, ``use_cache=False``), and ``decoder_input_ids`` for encoder-decoders. With a zoo
    ``spec``, the entry's own ``causal`` and ``irene_position_ids`` apply: the inputs
    ``build_zoo_tree`` traces. ``as_measured`` (default: in irene counting) feeds the inputs
    the IrEne dataset's measurements ran with (DistilBERT's (batch, seq) position ids)."""
    device = _device_of(model)
    kwargs: dict[str, Any] = {"input_ids": token_ids(batch_size, seq_len, device)}
    params = inspect.signature(model.forward).parameters
    config = getattr(model, "config", None)
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in params:
        kwargs["decoder_input_ids"] = token_ids(batch_size, seq_len, device)
    kwargs = complete_inputs(model, kwargs, causal=causal, spec=spec)
    entry = _ZOO.get(spec) if spec is not None else None
    irene_position_ids = irene_position_ids or (entry is not None and entry.irene_position_ids)
    if as_measured is None:
        as_measured = counting_mode == "irene"
    if irene_position_ids and as_measured and "position_ids" in params:
        positions = torch.arange(seq_len, device=device)
        kwargs["position_ids"] = positions.unsqueeze(0).expand(batch_size, seq_len)
    return kwargs


def complete_inputs(
    model: nn.Module, kwargs: dict[str, Any], *, causal: bool = False, spec: str | None = None
) -> dict[str, Any]:
    """``kwargs`` with the defaults a single traced forward needs, each only where the forward
    takes it and the caller gave none: for a decoder-only model (a zoo entry marked
    ``causal``, any other model that builds its mask with ``create_causal_mask``:
    :func:`uses_causal_mask`) an ``attention_mask`` of ones the shape of ``input_ids``, as
    ``generate()`` passes it (it also keeps transformers off value-dependent checks, so the
    trace stays on meta tensors); for an encoder-decoder a ``decoder_attention_mask`` of ones
    beside ``decoder_input_ids``; ``use_cache=False`` (one forward, as measured in the dataset).
    Factories get the same defaults as zoo models."""
    out = dict(kwargs)
    params = inspect.signature(model.forward).parameters
    entry = _ZOO.get(spec) if spec is not None else None
    config = getattr(model, "config", None)
    encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
    causal = causal or (entry.causal if entry is not None else uses_causal_mask(model))
    ids = out.get("input_ids")
    if causal and isinstance(ids, torch.Tensor) and "attention_mask" in params:
        out.setdefault("attention_mask", torch.ones(ids.shape, dtype=torch.long, device=ids.device))
    dec = out.get("decoder_input_ids")
    if (
        encoder_decoder
        and entry is None
        and isinstance(dec, torch.Tensor)
        and "decoder_attention_mask" in params
    ):
        out.setdefault(
            "decoder_attention_mask", torch.ones(dec.shape, dtype=torch.long, device=dec.device)
        )
    if "use_cache" in params:
        out.setdefault("use_cache", False)
    return out


def _check_takes_token_ids(spec: str, model: nn.Module) -> None:
    """A ModelError when the model's forward names no ``input_ids`` (a vision or audio model):
    token ids of ``batch_size`` x ``seq_len`` are not its inputs, and would fail deep inside
    its forward. The message lists the inputs it does take."""
    params = inspect.signature(model.forward).parameters
    if "input_ids" in params:
        return
    named = [
        n
        for n, p in params.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is p.empty
    ] or [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    raise ModelError(
        f"{spec}: {type(model).__name__}.forward takes no input_ids (token ids of batch_size x "
        f"seq_len); give its inputs by name, e.g. {', '.join(named[:3]) or 'its arguments'} "
        "(command line: --input NAME=SHAPE; budgets file: inputs: {NAME: [SHAPE]})"
    )


def build_zoo_tree(
    spec: str,
    batch_size: int | None = None,
    seq_len: int | None = None,
    *,
    counting_mode: str = "irene",
    attn_implementation: str = "eager",
    as_measured: bool | None = None,
    inputs: Mapping[str, TensorSpec | Sequence[int] | Mapping[str, Any]] | None = None,
    dtype: str | torch.dtype | None = None,
    routing: RoutingSpec = None,
) -> EnergyTree:
    """Build ``spec`` (:func:`build_model`: a zoo name, ``package.module:factory``, a local
    config or a cached hub id) on the meta device and trace it.

    Inputs: ``batch_size`` and ``seq_len``, the short form for token models (token ids and
    :func:`model_inputs`' defaults; ``as_measured``: as the IrEne dataset measured them),
    and / or ``inputs``, described tensors by name (``{"pixel_values": [8, 3, 224, 224]}``,
    :class:`~predictor.trace.inputs.TensorSpec`, ``arg0`` ... positional), built on meta in the
    model's dtype (ids and masks int64) and completed with :func:`complete_inputs`' defaults.
    ``dtype`` casts the model (None: the dtype its config states, else as built).
    ``routing``: a mixture of experts' routing (:func:`predictor.trace.tracer.build_tree`).

    Raises SequenceTooLong when the token ids are longer than the model's positions (less
    those it reserves), ModelError when the spec cannot be built or its inputs are malformed or
    do not fit, TraceError when the forward fails."""
    if inputs is None and (batch_size is None or seq_len is None):
        raise ModelError(
            f"{spec}: give batch_size and seq_len (token models), or named input shapes"
        )
    for label, value in (("batch size", batch_size), ("sequence length", seq_len)):
        if value is not None and value < 1:
            raise ModelError(f"{spec}: {label} must be >= 1 (got {value})")
    if (batch_size is None) != (seq_len is None):
        raise ModelError(
            f"{spec}: batch_size and seq_len go together (token ids of shape (batch, seq)); "
            "give both, or name every input"
        )
    specs = _specs(spec, inputs)
    model = build_model(spec, attn_implementation, dtype=dtype)
    entry = _ZOO.get(spec)
    positions = max_positions(model, reserved=entry.position_offset if entry else 0)
    run: dict[str, Any] | tuple[Any, ...]
    if batch_size is not None and seq_len is not None:
        if positions is not None and seq_len > positions[0]:
            raise SequenceTooLong(spec, seq_len, positions[0], positions[1])
        _check_takes_token_ids(spec, model)
        run = model_inputs(
            model,
            batch_size,
            seq_len,
            counting_mode=counting_mode,
            spec=spec,
            as_measured=as_measured,
        )
    else:
        run = {}
    if specs:
        built = make_inputs(specs, device=_device_of(model), float_dtype=_float_dtype(model))
        if isinstance(built, tuple):
            if run:
                raise ModelError(
                    f"{spec}: positional inputs (arg0 ...) cannot be joined to the token ids "
                    "batch_size and seq_len make; name the inputs instead"
                )
            run = built
        else:
            ids = built.get("input_ids")
            if (
                isinstance(ids, torch.Tensor)
                and ids.dim() == 2
                and positions is not None
                and ids.shape[1] > positions[0]
            ):
                raise SequenceTooLong(spec, int(ids.shape[1]), positions[0], positions[1])
            run = complete_inputs(model, {**run, **built}, spec=spec)
    real_model: Callable[[], nn.Module] | None = None
    if sum(p.numel() for p in model.parameters()) <= _REAL_RETRY_MAX_PARAMS:
        if entry is not None:
            real_model = lambda: _cast(  # noqa: E731
                _build_entry(spec, entry, attn_implementation, "cpu"), spec, dtype
            )
        else:
            real_model = lambda: build_model(  # noqa: E731
                spec, attn_implementation, device="cpu", dtype=dtype
            )
    tree = build_tree(
        model,
        run,
        name=spec,
        counting_mode=counting_mode,
        batch_size=batch_size if not specs else None,
        seq_len=seq_len if not specs else None,
        real_model=real_model,
        routing=routing,
    )
    tree.meta["spec"] = spec
    return tree


def _specs(
    spec: str, inputs: Mapping[str, TensorSpec | Sequence[int] | Mapping[str, Any]] | None
) -> dict[str, TensorSpec]:
    if not inputs:
        return {}
    raw = {k: v for k, v in inputs.items() if not isinstance(v, TensorSpec)}
    try:
        parsed = parse_input_specs(raw)
    except ValueError as exc:
        raise ModelError(f"{spec}: {exc}") from None
    return {k: v if isinstance(v, TensorSpec) else parsed[k] for k, v in inputs.items()}
