"""The dtypes a model can be built in by name (``--dtype``, ``inputs: {dtype: bf16}``).

Kept apart from torch so the budgets parser and the CLI can validate a name without importing
it; :func:`predictor.trace.zoo.build_model` casts the model with ``getattr(torch, ...)``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["MODEL_DTYPES", "check_dtype"]

#: Short name -> torch dtype attribute. ``None`` (no name) keeps the model's own dtype.
MODEL_DTYPES: Mapping[str, str] = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def check_dtype(name: str) -> str:
    """``name`` if it is one of :data:`MODEL_DTYPES`; ValueError saying which are."""
    if name not in MODEL_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(MODEL_DTYPES)} (got {name!r})")
    return name
