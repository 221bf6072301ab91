"""The dtypes a model can be built in by name (``--dtype``, ``inputs: {dtype: bf16}``).

Kept apart from torch so the budgets parser and the CLI can validate a name without importing
it; :func:`predictor.trace.zoo.build_model` casts the model with ``getattr(torch, ...)``.
"""

from __future__ import annotations

from collections.abc import Mapping

from predictor.errors import ModelError

__all__ = ["DTYPE_NAMES", "MODEL_DTYPES", "dtype_name", "short_dtype_name"]

#: Short name -> torch dtype attribute. ``None`` (no name) keeps the model's own dtype.
MODEL_DTYPES: Mapping[str, str] = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}

#: Every name a model dtype is taken under (a generation's ``Workload``, a config's stated
#: dtype) -> torch's name.
DTYPE_NAMES: Mapping[str, str] = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


def dtype_name(name: str) -> str:
    """torch's name of a dtype name (``bf16`` -> ``bfloat16``); ModelError naming the
    choices for any other."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in DTYPE_NAMES:
        raise ModelError(f"dtype must be one of {', '.join(DTYPE_NAMES)} (got {name!r})")
    return DTYPE_NAMES[key]


def short_dtype_name(torch_name: str, default: str = "fp32") -> str:
    """The :data:`MODEL_DTYPES` name of torch's dtype name (``bfloat16`` -> ``bf16``), else
    ``default``."""
    short = {full: name for name, full in MODEL_DTYPES.items()}
    return short.get(torch_name, default)
