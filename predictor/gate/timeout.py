"""A time limit for building, tracing and predicting one model (``--energy-timeout``).

A factory that hangs (a download that waits for a network there is none of, a lock) would hang
the gate forever. The limit uses ``SIGALRM`` on the main thread of a POSIX process (pytest's
and each pytest-xdist worker's main thread); elsewhere there is no limit, and
:func:`time_limit` says so through ``limited``. A test suite that also uses pytest-timeout's
signal method shares the one alarm: use its thread method beside this one.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from predictor.errors import ModelError

__all__ = ["ModelTimeout", "can_limit", "time_limit"]


class ModelTimeout(ModelError):
    """Building, tracing and predicting a model took longer than the limit."""

    def __init__(self, what: str, seconds: float) -> None:
        self.what = what
        self.seconds = seconds
        super().__init__(
            f"{what} took longer than {seconds:g} s to build, trace and predict "
            "(a factory that hangs?); raise the limit with --energy-timeout / energy_timeout"
        )


def can_limit() -> bool:
    """Whether a time limit can be set here (POSIX, on the main thread)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """Raise :class:`ModelTimeout` in the body after ``seconds`` (None or 0: no limit)."""
    if not seconds or not can_limit():
        yield
        return

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise _Alarm

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Alarm:
        raise ModelTimeout(what, seconds) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _Alarm(BaseException):
    """Raised by the alarm inside the body: a BaseException, like KeyboardInterrupt, so code
    under the limit that catches Exception (a factory retried on another device) cannot
    swallow it; :func:`time_limit` turns it into a :class:`ModelTimeout`."""
