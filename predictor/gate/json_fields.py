"""Typed reads of JSON fields, so a malformed report is an error naming its key and the JSON
type expected (``models[1].tree: missing (expected an object)``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["get_field", "json_type"]

_JSON_TYPES: dict[type, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}


def json_type(value: Any) -> str:
    """``an object``, ``a string``, ``null``: a parsed JSON value's type as JSON names it."""
    if value is None:
        return "null"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def get_field(
    data: Mapping[str, Any],
    key: str,
    kind: type,
    where: str,
    *,
    required: bool = False,
    default: Any = None,
) -> Any:
    """``data[key]`` checked to be of JSON type ``kind``; absent or null gives ``default``
    (or a ValueError when ``required``). ``where`` prefixes the key in messages."""
    value = data.get(key)
    if value is None:
        if required:
            raise ValueError(f"{where}{key}: missing (expected {_JSON_TYPES[kind]})")
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ValueError(f"{where}{key}: expected {_JSON_TYPES[kind]}, got {json_type(value)}")
    return value
