"""Atomic file writes: a reader (or a crash) never sees half a file.

Every file the package writes (reports, Markdown, budgets, datasets, profiles) goes through
:func:`write_bytes_atomic`: a temporary file in the target's folder, then ``os.replace``. The
file gets the mode a plain ``open()`` would give (0666 less the umask), not mkstemp's 0600, and
an OS failure (missing folder, no permission, full disk) is an :class:`OutputError` naming the
file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from predictor.errors import OutputError

__all__ = ["write_bytes_atomic", "write_text_atomic"]


def write_bytes_atomic(path: Path | str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path written."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError.from_os_error(exc, "write", target) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError.from_os_error(exc, "write", target) from None
        raise
    return target


def write_text_atomic(path: Path | str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path written."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def _umask() -> int:
    """The process umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
