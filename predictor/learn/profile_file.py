"""The profile file: a versioned, checksummed container, read without ever running its code.

Format (``.irene.joblib``): ``joblib.dump`` of a plain dict
``{"format": "irene-profile", "version": 1, "sha256": <hex>, "payload": <JSON text>}``.
The payload is JSON (numbers, strings, lists, dicts: no pickled estimator class), so a file
loads under any scikit-learn/numpy version; the sha256 of the payload text detects corruption
or tampering. :func:`read_profile_file` refuses, with a :class:`~predictor.errors.ProfileError`, a
file that is truncated, not a profile, of an unknown version, or whose checksum does not match.

Reading never executes code from the file. A joblib file is a pickle (compressed: zlib for
``compress=3``; gzip, bz2, lzma/xz also read), and unpickling can call any importable function.
So :func:`read_profile_file` does not call ``joblib.load``: it decompresses the container itself
(output capped at :data:`MAX_PAYLOAD_BYTES`) and unpickles with an unpickler that refuses every
global (class or function reference). The record holds only a dict, strings and an int, which
need none; a file that names any global (a crafted ``__reduce__``, a numpy array, a pickled
estimator) is refused before anything runs.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import lzma
import math
import pickle
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from predictor.errors import OutputError, ProfileError
from predictor.files import write_bytes_atomic

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_PAYLOAD_BYTES",
    "SUFFIX",
    "payload_digest",
    "read_profile_file",
    "write_profile_file",
]

T = TypeVar("T")

FORMAT = "irene-profile"
FORMAT_VERSION = 1
SUFFIX = ".irene.joblib"
#: Largest decompressed profile record read (a shipped profile is well under 1 MiB); a larger
#: one is refused instead of exhausting memory (a "zip bomb").
MAX_PAYLOAD_BYTES = 256 * 1024 * 1024

_HINT = "re-create it with `irene train DATA -o PROFILE` or use a shipped profile"


def payload_digest(text: str) -> str:
    """The sha256 (hex) of a payload's text: the checksum its file carries."""
    return hashlib.sha256(text.encode()).hexdigest()


def write_profile_file(path: Path, text: str) -> Path:
    """Write the payload ``text`` (canonical JSON) as a profile file, atomically."""
    import joblib

    record = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "sha256": payload_digest(text),
        "payload": text,
    }
    buf = io.BytesIO()
    joblib.dump(record, buf, compress=3)
    write_bytes_atomic(path, buf.getvalue())
    return path


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickles plain data only: any global (class, function) is refused, so no code runs."""

    def find_class(self, module: str, name: str) -> Any:
        raise ProfileError(
            f"profile files hold only plain data; refusing {module}.{name} (the file asks to "
            "import and call code, which loading a profile never does)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise ProfileError("profile files hold only plain data; refusing a persistent reference")


def _decompress(data: bytes) -> bytes:
    """The pickle inside a joblib file: raw (not compressed) or a zlib/gzip/bz2/xz/lzma stream,
    recognised by joblib's magic prefixes; at most :data:`MAX_PAYLOAD_BYTES` of output."""
    limit = MAX_PAYLOAD_BYTES
    decomp: Any
    if data[:1] == b"\x80":  # pickle protocol >= 2 opcode: joblib.dump without compression
        return data
    if data[:1] == b"\x78":  # zlib (joblib compress=3, the default compressor)
        decomp = zlib.decompressobj(zlib.MAX_WBITS)
    elif data[:2] == b"\x1f\x8b":
        decomp = zlib.decompressobj(31)  # gzip
    elif data[:2] == b"BZ":
        decomp = bz2.BZ2Decompressor()
    elif data[:5] == b"\xfd7zXZ" or data[:2] == b"\x5d\x00":
        decomp = lzma.LZMADecompressor()  # xz or legacy .lzma
    else:
        raise ValueError("unrecognised file header (not a joblib pickle)")
    out = decomp.decompress(data, limit + 1)
    if len(out) > limit:
        raise ValueError(f"decompresses to more than {limit} bytes")
    if not decomp.eof:
        raise ValueError("compressed stream ends early")
    return bytes(out)


def _load_record(path: Path) -> Any:
    """``joblib.load`` without its code execution: decompress, then unpickle plain data only."""
    try:
        raw = path.read_bytes()
    except OSError as exc:  # no permission, a folder: the file cannot be read, not corrupt
        raise OutputError.from_os_error(exc, "read", path) from None
    return _PlainDataUnpickler(io.BytesIO(_decompress(raw))).load()


def _no_constant(name: str) -> Any:
    raise ValueError(f"the payload holds {name}, not a number")


def _finite_payload(value: Any, where: str = "payload") -> None:
    """Every number in the payload is finite (JSON allows 1e999, which parses to inf): a
    coefficient that is not would put ``inf J`` or ``NaN`` into every prediction."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is {value!r}, not a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _finite_payload(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _finite_payload(item, f"{where}[{i}]")


def read_profile_file(path: Path, build: Callable[[dict[str, Any]], T]) -> T:
    """``build`` applied to the payload (parsed JSON) of the profile file ``path``, after every
    check above; a payload ``build`` cannot use (``KeyError``, ``TypeError``, ``ValueError``) is
    a :class:`~predictor.errors.ProfileError` too."""
    try:
        record = _load_record(path)
    except OutputError:
        raise
    except ProfileError as exc:
        raise ProfileError(f"{path}: {exc}; {_HINT}") from None
    except Exception as exc:  # zlib/pickle raise many types on garbage or truncation
        raise ProfileError(
            f"{path}: not a readable profile file (corrupt or truncated: {type(exc).__name__}: {exc}); {_HINT}"
        ) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ProfileError(f"{path}: not an {FORMAT} file; {_HINT}")
    version = record.get("version")
    if version != FORMAT_VERSION:
        raise ProfileError(
            f"{path}: profile format version {version!r} is not supported by this pytest-irene "
            f"(it reads version {FORMAT_VERSION}); upgrade pytest-irene or {_HINT}"
        )
    text = record.get("payload")
    digest = record.get("sha256")
    if not isinstance(text, str) or not isinstance(digest, str):
        raise ProfileError(f"{path}: profile record lacks its payload or checksum; {_HINT}")
    if payload_digest(text) != digest:
        raise ProfileError(
            f"{path}: checksum mismatch: the profile was modified or corrupted after it was saved; {_HINT}"
        )
    try:
        data = json.loads(text, parse_constant=_no_constant)
        if not isinstance(data, dict):
            raise TypeError(f"the payload is {type(data).__name__}, not an object")
        _finite_payload(data)
        return build(data)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ProfileError(
            f"{path}: profile payload is malformed ({type(exc).__name__}: {exc}); {_HINT}"
        ) from None
