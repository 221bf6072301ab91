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
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from predictor.errors import ModelError, SequenceTooLong
from predictor.trace.inputs import max_positions, token_ids
from predictor.trace.tracer import build_tree
from predictor.trace.tree import EnergyTree

__all__ = [
    "ATTN_IMPLEMENTATIONS",
    "ZooEntry",
    "build_model",
    "build_zoo_tree",
    "known_models",
    "model_inputs",
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
}


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


def build_model(
    spec: str, attn_implementation: str = "eager", *, device: str = "meta"
) -> nn.Module:
    """The model a spec names, in eval mode, on ``device`` (meta: no parameter storage).

    A factory is called under the meta device; if it fails there it is called normally.
    """
    _check_attn(attn_implementation)
    entry = _ZOO.get(spec)
    if entry is not None:
        try:
            return _build_entry(spec, entry, attn_implementation, device)
        except ValueError as exc:
            raise ModelError(
                f"{spec}: cannot build with attention {attn_implementation!r}: {exc}"
            ) from None
    if ":" not in spec:
        raise ModelError(
            f"unknown model {spec!r}; known models: {', '.join(known_models())}; "
            "or give a factory as 'package.module:function'"
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
    for decoder-only (``causal``) models ``attention_mask`` (ones, as ``generate()`` passes it;
    it also keeps transformers off value-dependent packed-sequence checks, so the trace runs
    on meta tensors),
    ``decoder_input_ids`` for encoder-decoders, ``use_cache=False`` where the forward takes it
    (a single forward, as measured in the dataset). With a zoo ``spec``, the entry's own
    ``causal`` and ``irene_position_ids`` apply: the inputs ``build_zoo_tree`` traces.
    ``as_measured`` (default: in irene counting) feeds the inputs the IrEne dataset's
    measurements ran with (DistilBERT's (batch, seq) position ids)."""
    entry = _ZOO.get(spec) if spec is not None else None
    if entry is not None:
        causal = causal or entry.causal
        irene_position_ids = irene_position_ids or entry.irene_position_ids
    # On the model's device: a meta model gets meta inputs, which hold no memory at any size.
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    device = first.device if first is not None and first.is_meta else torch.device("cpu")
    kwargs: dict[str, Any] = {"input_ids": token_ids(batch_size, seq_len, device)}
    params = inspect.signature(model.forward).parameters
    if causal and "attention_mask" in params:
        kwargs["attention_mask"] = torch.ones(
            (batch_size, seq_len), dtype=torch.long, device=device
        )
    config = getattr(model, "config", None)
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in params:
        kwargs["decoder_input_ids"] = token_ids(batch_size, seq_len, device)
    if "use_cache" in params:
        kwargs["use_cache"] = False
    if as_measured is None:
        as_measured = counting_mode == "irene"
    if irene_position_ids and as_measured and "position_ids" in params:
        positions = torch.arange(seq_len, device=device)
        kwargs["position_ids"] = positions.unsqueeze(0).expand(batch_size, seq_len)
    return kwargs


def build_zoo_tree(
    spec: str,
    batch_size: int,
    seq_len: int,
    *,
    counting_mode: str = "irene",
    attn_implementation: str = "eager",
    as_measured: bool | None = None,
) -> EnergyTree:
    """Build ``spec`` (zoo name or ``package.module:factory``) and trace it on token inputs
    (:func:`model_inputs`; ``as_measured``: as the IrEne dataset measured them).

    Raises SequenceTooLong when ``seq_len`` is beyond the model's positions (less those it
    reserves), ModelError when the spec cannot be built or its inputs do not fit, TraceError
    when the forward fails."""
    if batch_size < 1 or seq_len < 1:
        raise ModelError(
            f"{spec}: batch size and sequence length must be >= 1 (got {batch_size} and {seq_len})"
        )
    model = build_model(spec, attn_implementation)
    entry = _ZOO.get(spec)
    positions = max_positions(model, reserved=entry.position_offset if entry else 0)
    if positions is not None and seq_len > positions[0]:
        raise SequenceTooLong(spec, seq_len, positions[0], positions[1])
    kwargs = model_inputs(
        model, batch_size, seq_len, counting_mode=counting_mode, spec=spec, as_measured=as_measured
    )
    real_model: Callable[[], nn.Module] | None = None
    if sum(p.numel() for p in model.parameters()) <= _REAL_RETRY_MAX_PARAMS:
        if entry is not None:
            real_model = lambda: _build_entry(spec, entry, attn_implementation, "cpu")  # noqa: E731
        else:
            real_model = lambda: build_model(spec, attn_implementation, device="cpu")  # noqa: E731
    tree = build_tree(
        model,
        kwargs,
        name=spec,
        counting_mode=counting_mode,
        batch_size=batch_size,
        seq_len=seq_len,
        real_model=real_model,
    )
    tree.meta["spec"] = spec
    return tree
