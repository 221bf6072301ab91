"""A model's example inputs: the forms a caller may give, the shape the tree records, and the
limits a model sets on them.

Inputs are apart from options: ``build_tree(model, inputs, *, name=..., seq_len=...)`` takes
``inputs`` as one of

- a tensor: the forward's one positional argument;
- a tuple or list: the forward's positional arguments, in order;
- a mapping of names to values: the forward's keyword arguments;

so no option of the library can collide with an argument of the model's ``forward``. Empty
inputs with ``batch_size`` and ``seq_len`` stand for token ids (:func:`token_ids`).

Inputs can also be *described* instead of built (a budgets file, the command line: parsed by
:mod:`predictor.trace.input_specs`, re-exported here); :func:`make_inputs` builds them on the
meta device (no memory at any size): token ids, masks and positions as int64 (masks of ones),
everything else in the model's floating dtype.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import torch
from torch import nn

from predictor.errors import ModelError
from predictor.trace.input_specs import (
    DTYPE_NAMES,
    TensorSpec,
    is_integer_input,
    is_positional,
    parse_input_option,
    parse_input_specs,
    parse_tensor_spec,
)

__all__ = [
    "Inputs",
    "TensorSpec",
    "check_not_empty",
    "describe_inputs",
    "has_token_ids",
    "infer_shape",
    "make_inputs",
    "map_tensors",
    "max_positions",
    "parse_input_option",
    "parse_input_specs",
    "parse_tensor_spec",
    "spec_dtype",
    "split_inputs",
    "token_ids",
]

#: What ``build_tree``, ``predict`` and the ``energy`` fixture accept as a model's inputs.
Inputs: TypeAlias = torch.Tensor | tuple[Any, ...] | list[Any] | Mapping[str, Any]

#: Config attributes that bound a model's sequence length, in the order they are read.
_POSITION_ATTRS: tuple[str, ...] = (
    "max_position_embeddings",
    "n_positions",
    "n_ctx",
    "max_seq_len",
)


def split_inputs(inputs: object, *, name: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``inputs`` (see the module docstring) as the forward's ``(args, kwargs)``.

    Raises ModelError, naming the model ``name``, for any other type or a non-string key.
    """
    if isinstance(inputs, torch.Tensor):
        return (inputs,), {}
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    if isinstance(inputs, Mapping):
        for key in inputs:
            if not isinstance(key, str):
                raise ModelError(
                    f"{name}: keyword inputs are named by strings, the forward's parameter "
                    f"names (got the key {key!r}, a {type(key).__name__})"
                )
        return (), dict(inputs)
    raise ModelError(
        f"{name}: inputs must be a tensor, a tuple or list of positional inputs, or a mapping "
        f"of keyword inputs such as {{'input_ids': ids}} (got a {type(inputs).__name__})"
    )


def token_ids(batch_size: int, seq_len: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """Token ids standing for any text: int64 zeros of shape ``(batch_size, seq_len)``, on
    ``device`` (``"meta"`` for a model on the meta device: no memory at any size)."""
    return torch.zeros((batch_size, seq_len), dtype=torch.long, device=device)


def check_not_empty(args: tuple[Any, ...], kwargs: Mapping[str, Any], *, name: str) -> None:
    """A ModelError for a tensor input with a dimension of size 0: it would trace a model
    that does no work (and a profile would still predict its fixed costs)."""
    named = [(f"argument {i}", v) for i, v in enumerate(args)] + [
        (repr(k), v) for k, v in kwargs.items()
    ]
    for label, value in named:
        if isinstance(value, torch.Tensor) and value.dim() > 0 and 0 in value.shape:
            raise ModelError(
                f"{name}: input {label} has shape {tuple(value.shape)}, with an empty "
                "dimension: the model would do no work; give every dimension at least one element"
            )


def has_token_ids(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
    """Whether the model's first tensor input (in the order given) is token ids: an integer
    2-D tensor (batch, seq). Whisper's first is its float frames (its decoder ids come after),
    a ViT's its pixels."""
    first = next(
        (v for v in itertools.chain(args, kwargs.values()) if isinstance(v, torch.Tensor)), None
    )
    return (
        first is not None
        and first.dim() == 2
        and not first.is_floating_point()
        and first.dtype != torch.bool
    )


def infer_shape(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[int, int]:
    """(batch, seq) from the first integer 2-D tensor input, else the first tensor's two dims."""
    tensors = [v for v in itertools.chain(args, kwargs.values()) if isinstance(v, torch.Tensor)]
    for t in tensors:
        if t.dim() == 2 and not t.is_floating_point():
            return int(t.shape[0]), int(t.shape[1])
    for t in tensors:
        if t.dim() >= 2:
            return int(t.shape[0]), int(t.shape[1])
        if t.dim() == 1:
            return int(t.shape[0]), 1
    return 0, 0


def describe_inputs(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs as the tree's ``meta["inputs"]`` records them: ``arg0``, ``arg1`` ... and the
    keyword names, each a ``{"shape", "dtype"}`` for a tensor, the value for a scalar, else the
    type's name."""

    def one(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return {"shape": list(value.shape), "dtype": str(value.dtype).removeprefix("torch.")}
        if isinstance(value, (bool, int, float, str)) or value is None:
            return value
        return type(value).__name__

    out: dict[str, Any] = {f"arg{i}": one(v) for i, v in enumerate(args)}
    out.update({k: one(v) for k, v in kwargs.items()})
    return out


def map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``value`` with ``fn`` applied to every tensor in it (through tuples, lists and dicts)."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple):
        return tuple(map_tensors(v, fn) for v in value)
    if isinstance(value, list):
        return [map_tensors(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: map_tensors(v, fn) for k, v in value.items()}
    return value


def max_positions(model: nn.Module, reserved: int = 0) -> tuple[int, str] | None:
    """The longest sequence ``model`` takes, from its HF-style ``config``, and where that limit
    comes from (``"GPT2Config.n_positions"``); ``reserved`` positions (RoBERTa's padding
    offset) are not available to inputs. None when the model states no limit."""
    config = getattr(model, "config", None)
    if config is None:
        return None
    for attr in _POSITION_ATTRS:
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            source = f"{type(config).__name__}.{attr}"
            if reserved:
                source += f" {value}, {reserved} reserved"
            return value - reserved, source
    return None


# -- described inputs ---------------------------------------------------------------------------


def spec_dtype(
    spec: TensorSpec, name: str, float_dtype: torch.dtype = torch.float32
) -> torch.dtype:
    """The dtype :func:`make_inputs` builds the described input ``name`` in."""
    if spec.dtype is not None:
        return getattr(torch, DTYPE_NAMES[spec.dtype])  # type: ignore[no-any-return]
    return torch.int64 if is_integer_input(name) else float_dtype


def make_inputs(
    specs: Mapping[str, TensorSpec],
    *,
    device: str | torch.device = "meta",
    float_dtype: torch.dtype = torch.float32,
) -> tuple[Any, ...] | dict[str, Any]:
    """The tensors ``specs`` describe (:mod:`predictor.trace.input_specs`), on ``device`` (meta:
    no memory): a tuple for positional inputs (``arg0`` ...), else a dict. Masks are ones,
    everything else zeros."""
    built: dict[str, torch.Tensor] = {}
    for name, spec in specs.items():
        fill = torch.ones if name.endswith("mask") else torch.zeros
        built[name] = fill(spec.shape, dtype=spec_dtype(spec, name, float_dtype), device=device)
    if built and all(is_positional(n) for n in built):
        return tuple(built[f"arg{i}"] for i in range(len(built)))
    return built
