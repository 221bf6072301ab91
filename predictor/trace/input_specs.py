"""Described inputs: a model's input tensors by name, shape and dtype, as a budgets file or the
command line writes them (no torch here: the budgets parser and the pytest plugin import this
without loading torch; :func:`predictor.trace.inputs.make_inputs` builds the tensors).

``{pixel_values: [8, 3, 224, 224]}``, ``{input_features: {shape: [1, 80, 3000], dtype:
float16}}``, ``--input x=8x128x256``. ``arg0``, ``arg1`` ... name positional inputs. A dtype
left out is int64 for token ids, masks and positions (by name: ``*_ids``, ``*_mask``,
``*positions``, ``labels``) and the model's floating dtype for everything else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DTYPE_NAMES",
    "TensorSpec",
    "is_integer_input",
    "is_positional",
    "parse_input_option",
    "parse_input_specs",
    "parse_tensor_spec",
]

#: dtype names a described input may take, and the torch dtype each stands for.
DTYPE_NAMES: Mapping[str, str] = {
    "float32": "float32", "float": "float32", "fp32": "float32",
    "float16": "float16", "half": "float16", "fp16": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float64": "float64", "double": "float64",
    "int64": "int64", "long": "int64", "int32": "int32", "int": "int32",
    "int16": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool",
}  # fmt: skip

_INTEGER_NAME = re.compile(r"(^|_)(ids|mask|positions?|labels|indices|index)$")
_POSITIONAL = re.compile(r"^arg(\d+)$")


def is_integer_input(name: str) -> bool:
    """Whether an input of this name holds integers (token ids, masks, positions)."""
    return _INTEGER_NAME.search(name) is not None


def is_positional(name: str) -> bool:
    """Whether ``name`` (``arg0``, ``arg1`` ...) names a positional input."""
    return _POSITIONAL.match(name) is not None


@dataclass(frozen=True)
class TensorSpec:
    """A described input tensor: its ``shape`` and ``dtype`` (a :data:`DTYPE_NAMES` name; None:
    int64 for ids, masks and positions by name, else the model's floating dtype)."""

    shape: tuple[int, ...]
    dtype: str | None = None

    def describe(self) -> str:
        """``[8, 3, 224, 224]`` or ``float16[1, 80, 3000]``."""
        dims = f"[{', '.join(str(d) for d in self.shape)}]"
        return dims if self.dtype is None else f"{self.dtype}{dims}"


def _shape(value: Any, what: str) -> tuple[int, ...]:
    if isinstance(value, str):
        parts = [p for p in re.split(r"[x,\s]+", value.strip().strip("[]()")) if p]
        try:
            value = [int(p) for p in parts]
        except ValueError:
            raise ValueError(
                f"{what}: the shape {value!r} must be positive integers such as 8x3x224x224"
            ) from None
    if isinstance(value, (list, tuple)) and value:
        dims: list[int] = []
        for d in value:
            if isinstance(d, bool) or not isinstance(d, int) or d < 1:
                raise ValueError(
                    f"{what}: every dimension must be a positive integer (got {d!r} in "
                    f"{list(value)!r})"
                )
            dims.append(d)
        return tuple(dims)
    raise ValueError(
        f"{what}: give a shape as a list of positive integers, e.g. [8, 3, 224, 224] "
        f"(got {value!r})"
    )


def _dtype(value: Any, what: str) -> str:
    if not isinstance(value, str) or value not in DTYPE_NAMES:
        raise ValueError(
            f"{what}: dtype must be one of {', '.join(sorted(DTYPE_NAMES))} (got {value!r})"
        )
    return value


def parse_tensor_spec(value: Any, *, name: str) -> TensorSpec:
    """A :class:`TensorSpec` from its written form: a shape (``[8, 3, 224, 224]``,
    ``"8x3x224x224"``) or ``{shape: [...], dtype: "float16"}``. ValueError naming ``name``
    and saying what is wrong."""
    what = f"input {name!r}"
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"shape", "dtype"})
        if unknown:
            raise ValueError(
                f"{what}: unknown key(s) {', '.join(map(repr, unknown))}; an input is "
                "{shape: [...], dtype: ...}"
            )
        if "shape" not in value:
            raise ValueError(f"{what}: needs a shape, e.g. {{shape: [8, 128], dtype: int64}}")
        dtype = _dtype(value["dtype"], what) if value.get("dtype") is not None else None
        return TensorSpec(_shape(value["shape"], what), dtype)
    return TensorSpec(_shape(value, what))


def parse_input_specs(specs: Mapping[str, Any]) -> dict[str, TensorSpec]:
    """Every entry of ``{name: shape or {shape, dtype}}`` parsed (:func:`parse_tensor_spec`).
    Positional inputs are named ``arg0``, ``arg1`` ... and cannot be mixed with named ones."""
    out: dict[str, TensorSpec] = {}
    for name, value in specs.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f"input name {name!r} must be the name of a forward parameter (or arg0, arg1 "
                "... for positional inputs)"
            )
        out[name] = parse_tensor_spec(value, name=name)
    positional = [n for n in out if is_positional(n)]
    if positional and len(positional) != len(out):
        raise ValueError(
            f"inputs {', '.join(positional)} are positional and "
            f"{', '.join(n for n in out if n not in positional)} named: give one or the other"
        )
    if positional:
        wanted = [f"arg{i}" for i in range(len(positional))]
        if sorted(positional, key=lambda n: int(n[3:])) != wanted:
            raise ValueError(
                f"positional inputs must be {', '.join(wanted)} (got {', '.join(positional)})"
            )
    return out


def parse_input_option(text: str) -> tuple[str, TensorSpec]:
    """``NAME=SHAPE[:DTYPE]`` (the command line's ``--input``): ``pixel_values=8x3x224x224``,
    ``input_features=1x80x3000:float16``. ValueError saying what is wrong."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise ValueError(
            f"--input {text!r}: write NAME=SHAPE[:DTYPE], e.g. pixel_values=8x3x224x224"
        )
    shape, _, dtype = rest.partition(":")
    name = name.strip()
    spec = parse_input_specs({name: {"shape": shape, "dtype": dtype.strip() or None}})
    return name, spec[name]
