"""Generation on meta tensors: the prefill pass and decode steps over a real KV cache object.

An LLM answers a request in two phases: a *prefill* pass over the prompt (``prompt_len``
tokens per sequence, which also yields the first output token), then one *decode step* per
further output token, each processing one token per sequence against the keys and values of
every earlier token, held in the KV cache. A server runs ``batch_size`` sequences together, so
a decode step reads the weights once for the whole batch and each sequence's cache once.

This module traces both phases (:func:`trace_prefill`, :func:`trace_decode_step`) with the
ordinary tracer (:func:`predictor.trace.tracer.build_tree`), computing nothing: the model's
causal-LM form on the meta device, transformers' own cache object (``DynamicCache`` built from
the model's config, so sliding-window layers keep ``sliding_window - 1`` tokens), and two ops
this module adds to the trace's registry (:func:`generation_ops`):

- ``kv_cache_write``: a cache layer's update. Serving engines write each new token's keys and
  values into a preallocated (paged) cache: the new entries are written once, nothing is
  copied. transformers' ``DynamicCache`` concatenates (a copy of the whole cache per step, an
  artefact of eager PyTorch), so its update runs outside the count and is charged as that write.
- ``fused_attention``: attention as a fused kernel (FlashAttention, paged attention) runs it:
  the queries read, each key and value of the cache read once per KV head (grouped-query and
  multi-query attention read ``num_key_value_heads`` heads, not one per query head), the output
  written; scores never reach memory. FLOPs count the visible (causal, windowed) query-key
  pairs only. It is charged as the ``bmm`` / ``softmax`` / ``bmm`` ML nodes it stands for
  (``MatMul``, ``Softmax``, ``MatMul``), so any profile prices it.

Logits are computed for the last position only (``logits_to_keep=1``), as a server does.
Each tree's ``meta["generation"]`` records the phase and the features that do not fit a node:
cache length, KV heads, head size, sliding windows, KV-cache bytes.

:func:`decode_points` chooses the cache lengths a generation's decode steps are traced at and
the weights that sum them (:mod:`predictor.learn.generation` integrates them).
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import handle_torch_function, has_torch_function

from predictor.errors import ModelError, SequenceTooLong
from predictor.trace.dtypes import DTYPE_NAMES, dtype_name
from predictor.trace.features import default_ops
from predictor.trace.formulas import tensor_shapes
from predictor.trace.kernels import BMM, COPY, SOFTMAX
from predictor.trace.ops import OpCall, OpCount, OpRegistry
from predictor.trace.tree import EnergyTree
from predictor.trace.workload import Workload

__all__ = [
    "ATTENTION_IMPLEMENTATION",
    "DTYPES",
    "DecodePoint",
    "GenerationTrees",
    "Workload",
    "build_generation_model",
    "cache_features",
    "decode_points",
    "fused_attention",
    "generation_ops",
    "kv_cache_write",
    "model_in_dtype",
    "resolve_dtype",
    "trace_decode_step",
    "trace_generation",
    "trace_prefill",
    "visible_pairs",
]

#: The attention implementation generation traces register with transformers
#: (``AttentionInterface``): :func:`fused_attention`. transformers builds no dense mask for an
#: implementation without a mask function, as for vLLM / TGI backends.
ATTENTION_IMPLEMENTATION = "irene_fused"

#: dtype names a workload may give (``--dtype``), by torch dtype.
DTYPES: dict[str, torch.dtype] = {
    name: getattr(torch, full) for name, full in DTYPE_NAMES.items() if name == full
}

_FP32 = 4


# --------------------------------------------------------------------------- the workload


def resolve_dtype(name: str) -> torch.dtype:
    """The torch dtype a name gives (``bfloat16``, ``bf16``, ``float16``, ``float32`` ...);
    ModelError naming the choices otherwise."""
    return DTYPES[dtype_name(name)]


# --------------------------------------------------------------------------- the two ops


def kv_cache_write(
    key_states: torch.Tensor, value_states: torch.Tensor, *, update: Callable[[], Any]
) -> Any:
    """A cache layer's update of ``key_states`` / ``value_states`` (the new tokens' keys and
    values), run by ``update``; the trace sees one op (``kv_cache_write``) that writes them."""
    if has_torch_function((key_states, value_states)):
        return handle_torch_function(
            kv_cache_write, (key_states, value_states), key_states, value_states, update=update
        )
    return update()


def fused_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    window: int | None = None,
    softcap: float | None = None,
) -> torch.Tensor:
    """Attention of ``query`` ``(B, H, Lq, D)`` over ``key`` / ``value`` ``(B, Hkv, S, Dv)``
    (the cache's keys and values, the last ``Lq`` being the queries' own), causal, within
    ``window`` positions when given: an output ``(B, Lq, H, Dv)`` made from the shapes only
    (generation traces compute nothing)."""
    if has_torch_function((query, key, value)):
        return handle_torch_function(
            fused_attention,
            (query, key, value),
            query,
            key,
            value,
            window=window,
            softcap=softcap,
        )
    b, h, lq = int(query.shape[0]), int(query.shape[1]), int(query.shape[2])
    return query.new_empty((b, lq, h, int(value.shape[-1])))


def visible_pairs(queries: int, keys: int, window: int | None = None) -> int:
    """Query-key pairs causal attention computes for ``queries`` queries at the last positions
    of ``keys`` keys, each seeing itself and earlier keys, at most ``window`` of them."""
    past = keys - queries
    if past < 0:
        raise ValueError(f"{queries} queries need at least as many keys (got {keys})")
    # query i (0-based) sees min(past + i + 1, window) keys
    lo, hi = past + 1, past + queries
    if window is None or window >= hi:
        return (lo + hi) * queries // 2
    if window <= lo:
        return window * queries
    below = window - lo  # queries seeing fewer than `window` keys: lo .. window-1
    return (lo + window - 1) * below // 2 + window * (queries - below)


def _nbytes(t: torch.Tensor, native: bool) -> float:
    return float(t.numel() * (t.element_size() if native else _FP32))


def _kv_write_handle(native: bool) -> Callable[[OpCall], list[OpCount]]:
    def handle(call: OpCall) -> list[OpCount]:
        k, v = call.args[0], call.args[1]
        return [OpCount(0.0, _nbytes(k, native) + _nbytes(v, native), kernel=COPY)]

    return handle


def _attention_handle(native: bool) -> Callable[[OpCall], list[OpCount]]:
    def handle(call: OpCall) -> list[OpCount]:
        q, k, v = call.args[0], call.args[1], call.args[2]
        window = call.kwargs.get("window")
        softcap = call.kwargs.get("softcap")
        out = call.out
        b, h, lq, d = (int(x) for x in q.shape)
        s, dv = int(k.shape[-2]), int(v.shape[-1])
        pairs = b * h * visible_pairs(lq, s, window)
        # softmax: max, subtract, exp, sum, divide; a logit soft-cap adds divide, tanh, multiply
        softmax_flops = (5.0 + (3.0 if softcap else 0.0)) * pairs
        return [
            OpCount(
                2.0 * pairs * d,
                _nbytes(q, native) + _nbytes(k, native),
                "MatMul",
                BMM,
                shapes=tensor_shapes(q, k),
            ),
            OpCount(softmax_flops, 0.0, "Softmax", SOFTMAX, shapes=()),
            OpCount(
                2.0 * pairs * dv,
                _nbytes(v, native) + _nbytes(out, native),
                "MatMul",
                BMM,
                shapes=tensor_shapes(v, out),
            ),
        ]

    return handle


def generation_ops(base: OpRegistry | None = None) -> OpRegistry:
    """A copy of ``base`` (default: the default registry) with the generation ops priced in
    both counting modes (native: each tensor at its own element size; irene: 4 bytes)."""
    reg = (base or default_ops()).copy()
    for mode, native in (("native", True), ("irene", False)):
        reg.set_op_handle("kv_cache_write", _kv_write_handle(native), mode)
        reg.set_op_handle("fused_attention", _attention_handle(native), mode)
    return reg


def _attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function interface, as :func:`fused_attention`."""
    window = kwargs.get("sliding_window")
    softcap = kwargs.get("softcap")
    out = fused_attention(
        query,
        key,
        value,
        window=int(window) if isinstance(window, int) and window > 0 else None,
        softcap=float(softcap) if isinstance(softcap, (int, float)) and softcap else None,
    )
    return out, None


def _register_attention() -> None:
    from transformers import AttentionInterface

    if ATTENTION_IMPLEMENTATION not in AttentionInterface._global_mapping:
        AttentionInterface.register(ATTENTION_IMPLEMENTATION, _attention_forward)


# --------------------------------------------------------------------------- the model


def _configs(model: nn.Module) -> list[Any]:
    config = getattr(model, "config", None)
    if config is None:
        return []
    out = [config]
    text = getattr(config, "get_text_config", None)
    if callable(text):
        inner = text(decoder=True)
        if inner is not config:
            out.append(inner)
    return out


@contextlib.contextmanager
def _fused_attention(model: nn.Module) -> Iterator[None]:
    """While tracing: the model's attention runs as :func:`fused_attention` (restored after)."""
    _register_attention()
    configs = _configs(model)
    saved = [getattr(c, "_attn_implementation", None) for c in configs]
    try:
        for c in configs:
            c._attn_implementation = ATTENTION_IMPLEMENTATION
        yield
    finally:
        for c, value in zip(configs, saved, strict=True):
            c._attn_implementation = value


def _text_config(model: nn.Module) -> Any:
    configs = _configs(model)
    if not configs:
        raise ModelError(
            f"{type(model).__name__} has no transformers config: generation needs a decoder "
            "whose forward takes a cache (a Hugging Face causal LM)"
        )
    return configs[-1]


def _cache_param(model: nn.Module) -> str:
    params = inspect.signature(model.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    raise ModelError(
        f"{type(model).__name__}.forward takes no cache (no 'past_key_values' or 'cache' "
        "parameter): generation needs a decoder that decodes with a KV cache"
    )


def _head_dim(config: Any) -> int:
    head_dim = getattr(config, "head_dim", None)
    if isinstance(head_dim, int) and head_dim > 0:
        return head_dim
    return int(config.hidden_size) // int(config.num_attention_heads)


def cache_features(model: nn.Module) -> dict[str, Any]:
    """What the KV cache of ``model`` holds per token: layers, KV heads, head size, the
    sliding windows of its layers (None: full attention) and the bytes per token and sequence
    in the model's dtype."""
    config = _text_config(model)
    layers = int(config.num_hidden_layers)
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = _head_dim(config)
    window = getattr(config, "sliding_window", None)
    types = getattr(config, "layer_types", None)
    if isinstance(types, (list, tuple)) and len(types) == layers:
        windows = [
            int(window) if t == "sliding_attention" and isinstance(window, int) else None
            for t in types
        ]
    else:
        windows = [int(window) if isinstance(window, int) and window > 0 else None] * layers
    first = next(model.parameters(), None)
    elem = first.element_size() if first is not None else _FP32
    return {
        "layers": layers,
        "attention_heads": heads,
        "kv_heads": kv_heads,
        "head_dim": head_dim,
        "sliding_windows": windows,
        "kv_bytes_per_token": 2 * layers * kv_heads * head_dim * elem,
        "vocab_size": int(getattr(config, "vocab_size", 0) or 0),
        "dtype": str(first.dtype).removeprefix("torch.") if first is not None else "",
    }


def _new_cache(
    model: nn.Module, batch: int, cache_len: int, device: torch.device
) -> tuple[Any, list[int]]:
    """transformers' ``DynamicCache`` for ``model``'s config, holding ``cache_len`` tokens per
    sequence (meta tensors: no memory), every layer's update counted as ``kv_cache_write``;
    and the list that gets an entry per update the model makes."""
    from transformers import DynamicCache

    config = _text_config(model)
    cache = DynamicCache(config=config)
    feats = cache_features(model)
    first = next(model.parameters())
    shape = (batch, feats["kv_heads"], cache_len, feats["head_dim"])
    layers: list[Any] = list(cache.layers)
    if len(layers) != feats["layers"]:
        raise ModelError(
            f"{type(model).__name__}: its cache has {len(layers)} layers for "
            f"{feats['layers']} decoder layers; generation needs one cache layer per layer"
        )
    writes: list[int] = []  # one entry per layer update the model makes
    for layer in layers:
        if cache_len > 0:
            k = torch.empty(shape, dtype=first.dtype, device=device)
            layer.update(k, torch.empty_like(k))
        original = layer.update

        def counted(
            key_states: torch.Tensor,
            value_states: torch.Tensor,
            *args: Any,
            _original: Callable[..., Any] = original,
            **kwargs: Any,
        ) -> Any:
            writes.append(1)
            return kv_cache_write(
                key_states,
                value_states,
                update=lambda: _original(key_states, value_states, *args, **kwargs),
            )

        layer.update = counted
    return cache, writes


def _check_causal(model: nn.Module, name: str) -> None:
    """ModelError when every attention module that says whether it is causal says no (an
    encoder's LM head, BERT without ``is_decoder``): it does not generate token by token."""
    flagged = [m for m in model.modules() if hasattr(m, "is_causal")]
    if flagged and not any(bool(m.is_causal) for m in flagged):
        classes = ", ".join(sorted({type(m).__name__ for m in flagged}))
        raise ModelError(
            f"{name}: its attention is bidirectional ({classes}: is_causal False), so it does "
            "not generate token by token; generation needs a causal LM (GPT-2, Llama, "
            "Qwen ...), or a config with is_decoder=True"
        )


def _check_positions(model: nn.Module, name: str, tokens: int, what: str) -> None:
    from predictor.trace.inputs import max_positions

    positions = max_positions(model)
    if positions is not None and tokens > positions[0]:
        raise SequenceTooLong(name, tokens, positions[0], positions[1])


def _trace(
    model: nn.Module,
    workload: Workload,
    *,
    batch: int,
    tokens: int,
    cache_len: int,
    name: str,
    counting_mode: str,
    ops: OpRegistry | None,
    phase: str,
) -> EnergyTree:
    from predictor.trace.tracer import build_tree

    first = next(model.parameters(), None)
    if first is None:
        raise ModelError(f"{name}: the model has no parameters to generate with")
    device = first.device
    b = batch
    _check_positions(model, name, cache_len + tokens, phase)
    cache, writes = _new_cache(model, b, cache_len, device)
    params = inspect.signature(model.forward).parameters
    kwargs: dict[str, Any] = {
        "input_ids": torch.zeros((b, tokens), dtype=torch.long, device=device),
        _cache_param(model): cache,
    }
    if "attention_mask" in params:
        kwargs["attention_mask"] = torch.ones(
            (b, cache_len + tokens), dtype=torch.long, device=device
        )
    if "position_ids" in params:
        positions = torch.arange(cache_len, cache_len + tokens, device=device)
        kwargs["position_ids"] = positions.unsqueeze(0)  # one row, broadcast: HF's default
    if "use_cache" in params:
        kwargs["use_cache"] = True
    if "logits_to_keep" in params:
        kwargs["logits_to_keep"] = 1
    with _fused_attention(model):
        tree = build_tree(
            model,
            kwargs,
            name=name,
            counting_mode=counting_mode,
            batch_size=b,
            seq_len=tokens,
            ops=generation_ops(ops),
        )
    if not writes:
        raise ModelError(
            f"{name}: the model wrote nothing to its KV cache, so it is not a decoder that "
            "generates token by token (an encoder such as BERT runs bidirectionally and "
            "recomputes every token); generation needs a causal LM (GPT-2, Llama, Qwen ...)"
        )
    feats = cache_features(model)
    windows = feats["sliding_windows"]
    held = [cache_len if w is None else min(cache_len, w - 1) for w in windows]
    tree.meta["generation"] = {
        "phase": phase,
        "cache_len": cache_len,
        "tokens": tokens,
        "workload": workload.to_dict(),
        "kv_heads": feats["kv_heads"],
        "attention_heads": feats["attention_heads"],
        "head_dim": feats["head_dim"],
        "sliding_windows": sorted({w for w in windows if w is not None}),
        "kv_cache_read_mib": b
        * sum(h + tokens for h in held)
        * 2
        * feats["kv_heads"]
        * feats["head_dim"]
        * (first.element_size() if counting_mode == "native" else _FP32)
        / 2**20,
        "attention_implementation": ATTENTION_IMPLEMENTATION,
    }
    unsupported = [u for u in tree.unsupported_ops if u.op in ("kv_cache_write", "fused_attention")]
    if unsupported:  # pragma: no cover - the registry above always prices them
        raise ModelError(f"{name}: generation ops were not priced: {unsupported}")
    return tree


def trace_prefill(
    model: nn.Module,
    workload: Workload,
    *,
    name: str | None = None,
    counting_mode: str = "native",
    ops: OpRegistry | None = None,
) -> EnergyTree:
    """A prefill pass: ``prompt_len`` tokens of each of ``prefill_size`` sequences into an
    empty cache, the logits of the last position (the first output token); the workload's
    ``prefill_passes`` of it admit the batch. ``model`` is a causal LM (on the meta device for
    a weightless trace), in the workload's dtype."""
    return _trace(
        model,
        workload,
        batch=workload.prefill_size,
        tokens=workload.prompt_len,
        cache_len=0,
        name=name or type(model).__name__,
        counting_mode=counting_mode,
        ops=ops,
        phase="prefill",
    )


def trace_decode_step(
    model: nn.Module,
    workload: Workload,
    cache_len: int,
    *,
    name: str | None = None,
    counting_mode: str = "native",
    ops: OpRegistry | None = None,
) -> EnergyTree:
    """One decode step: one token per sequence against a cache holding ``cache_len`` tokens
    (a sliding-window layer holds at most ``sliding_window - 1`` of them)."""
    if cache_len < 1:
        raise ModelError(f"a decode step needs a cache length >= 1 (got {cache_len})")
    return _trace(
        model,
        workload,
        batch=workload.batch_size,
        tokens=1,
        cache_len=cache_len,
        name=name or type(model).__name__,
        counting_mode=counting_mode,
        ops=ops,
        phase="decode",
    )


# --------------------------------------------------------------------------- decode quadrature


@dataclass(frozen=True)
class DecodePoint:
    """A cache length a decode step is traced at, and how many decode steps it stands for
    (``weight``: the composite trapezoid weights of the discrete sum over cache lengths, which
    add up to the number of steps)."""

    cache_len: int
    weight: float


def decode_points(
    workload: Workload, windows: list[int | None] | None = None, points: int = 5
) -> list[DecodePoint]:
    """Cache lengths and weights for the sum of every decode step's energy.

    The decode steps of a sequence see caches of ``prompt_len`` ... ``prompt_len + new_tokens
    - 2`` tokens, one step each. Every feature of a step is affine in the cache length except
    where a sliding window fills (``sliding_window - 1``: from there its layers' reads stop
    growing), so the range is split there, and each piece is summed by the composite trapezoid
    rule on the integers (at most ``points`` lengths per piece, ends included): exact for a
    step energy affine in the cache length, as every node's features are. The weights add up
    to the number of steps. :func:`predictor.learn.generation.integrate_decode` states the
    bound for any energy monotone in the cache length.
    """
    if points < 2:
        raise ValueError(f"decode quadrature needs at least 2 points (got {points})")
    first, last = workload.prompt_len, workload.prompt_len + workload.decode_steps - 1
    if workload.decode_steps < 1:
        return []
    cuts = sorted({w - 1 for w in (windows or []) if w is not None and first <= w - 1 < last})
    starts = [first, *(c + 1 for c in cuts)]
    ends = [*cuts, last]
    weights: dict[int, float] = {}
    for a, b in zip(starts, ends, strict=True):
        for length, w in _trapezoid(a, b, points):
            weights[length] = weights.get(length, 0.0) + w
    return [DecodePoint(k, weights[k]) for k in sorted(weights)]


def _trapezoid(a: int, b: int, points: int) -> list[tuple[int, float]]:
    """Integer nodes in [a, b] and weights w with sum_k w_k f(x_k) = sum_{L=a}^{b} f(L) for
    every affine f (the composite trapezoid rule on the integers)."""
    n = b - a + 1
    if n <= points:
        return [(a + i, 1.0) for i in range(n)]
    nodes = sorted({a + round(i * (b - a) / (points - 1)) for i in range(points)})
    out: dict[int, float] = {x: 0.0 for x in nodes}
    # each panel [x0, x1] holds the integers x0 .. x1 - 1 (the last panel also x1); an affine
    # f sums over them to (count) * (f at their mean), spread on x0 and x1
    for j, (x0, x1) in enumerate(itertools.pairwise(nodes)):
        hi = x1 if j == len(nodes) - 2 else x1 - 1
        count = hi - x0 + 1
        mean = (x0 + hi) / 2.0
        t = (mean - x0) / (x1 - x0)
        out[x0] += count * (1.0 - t)
        out[x1] += count * t
    assert math.isclose(sum(out.values()), n)
    return sorted(out.items())


# --------------------------------------------------------------------------- a whole generation


def model_in_dtype(model: nn.Module, dtype: str | None = None) -> nn.Module:
    """``model`` cast to ``dtype`` (a name: ``bfloat16`` / ``bf16``, ``float16`` / ``fp16``,
    ``float32`` / ``fp32``); with None, to the dtype its config states (``config.dtype``: the
    ML.ENERGY zoo models' bfloat16), else unchanged."""
    from predictor.trace.zoo import cast_model, config_dtype

    return cast_model(model, resolve_dtype(dtype) if dtype is not None else config_dtype(model))


def build_generation_model(
    spec: str, dtype: str | None = None, *, attn_implementation: str = "eager"
) -> nn.Module:
    """The causal LM a spec names, on the meta device, in ``dtype`` (default: the dtype its
    config states, else as built): a zoo name builds its ``*ForCausalLM`` (the zoo's forward
    traces use the bare decoder), a ``package.module:factory`` is called as for any trace and
    must return a decoder whose forward takes a KV cache."""
    from predictor.trace.zoo import build_model, zoo_config

    config = zoo_config(spec, attn_implementation)
    if config is not None:
        from transformers import AutoModelForCausalLM

        try:
            with torch.device("meta"):
                model: nn.Module = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            reason = " ".join(re.split(r"\s*Model type should be one of", str(exc))[0].split())
            raise ModelError(
                f"{spec}: has no causal-LM form to generate with ({reason[:200]}); generation "
                "needs a decoder such as GPT-2, Llama or Qwen"
            ) from None
    else:
        model = build_model(spec, attn_implementation)
    model = model_in_dtype(model, dtype)
    _cache_param(model)
    return model.eval()


@dataclass(frozen=True)
class GenerationTrees:
    """The traced phases of a generation: the prefill pass, and decode steps at the cache
    lengths :func:`decode_points` chose (each with the number of steps it stands for)."""

    workload: Workload
    prefill: EnergyTree
    decode: tuple[tuple[DecodePoint, EnergyTree], ...]
    #: :func:`cache_features` of the model.
    cache: dict[str, Any]


def trace_generation(
    model: nn.Module,
    workload: Workload,
    *,
    name: str | None = None,
    counting_mode: str = "native",
    points: int = 5,
    ops: OpRegistry | None = None,
) -> GenerationTrees:
    """Trace ``model`` (a causal LM, :func:`build_generation_model`) through ``workload``: the
    prefill and a decode step at each of :func:`decode_points`'s cache lengths (at most
    ``points`` per stretch of the context where every feature is affine in its length)."""
    label = name or type(model).__name__
    _check_causal(model, label)
    feats = cache_features(model)
    last = workload.prompt_len + workload.new_tokens - 1
    try:
        _check_positions(model, label, last, "generation")
    except SequenceTooLong as exc:
        where = f" ({exc.source})" if exc.source else ""
        raise ModelError(
            f"{label}: a prompt of {workload.prompt_len} tokens and {workload.new_tokens} new "
            f"tokens reach position {last}, beyond the model's {exc.limit} positions{where}; "
            f"keep prompt_len + new_tokens - 1 <= {exc.limit}"
        ) from None
    prefill = trace_prefill(model, workload, name=label, counting_mode=counting_mode, ops=ops)
    decode = tuple(
        (
            point,
            trace_decode_step(
                model, workload, point.cache_len, name=label, counting_mode=counting_mode, ops=ops
            ),
        )
        for point in decode_points(workload, feats["sliding_windows"], points)
    )
    return GenerationTrees(workload, prefill, decode, feats)
