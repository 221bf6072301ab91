"""The errors the library raises, each with the exit status the CLI gives it.

Every message says what is wrong, where, and how to fix it. The CLI prints the message (no
traceback) and exits with ``exit_code``; the pytest plugin turns configuration errors into a
usage error (exit 4).
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "HardwareUnavailable",
    "IreneError",
    "ModelError",
    "OutputError",
    "PredictionError",
    "ProfileError",
    "SequenceTooLong",
    "TraceError",
]


class IreneError(Exception):
    """Base class: a user-facing error with a distinct exit status."""

    exit_code: int = 1


class ModelError(IreneError):
    """A model cannot be resolved or built: unknown zoo name, factory that does not import,
    inputs that do not fit the model (e.g. seq_len beyond its positions)."""

    exit_code = 3


class SequenceTooLong(ModelError):
    """A sequence length beyond the positions a model has.

    Fields for the caller to word its own advice (the CLI names ``--seq-len``, the budgets file
    ``inputs.seq_len``): ``model`` (the model's name as given), ``seq_len`` (the length asked
    for), ``limit`` (the longest the model takes) and ``source`` (where the limit comes from,
    e.g. ``GPT2Config.n_positions``; may be empty). The message itself names no option.
    """

    def __init__(self, model: str, seq_len: int, limit: int, source: str = "") -> None:
        self.model = model
        self.seq_len = seq_len
        self.limit = limit
        self.source = source
        where = f" ({source})" if source else ""
        super().__init__(
            f"{model}: seq_len {seq_len} is beyond the model's {limit} positions{where}"
        )

    def __reduce__(self) -> tuple[type[SequenceTooLong], tuple[str, int, int, str]]:
        return type(self), (self.model, self.seq_len, self.limit, self.source)


class ConfigError(IreneError):
    """A configuration file or option is invalid (energy_budgets.yaml, CLI options)."""

    exit_code = 4


class TraceError(IreneError):
    """The model's forward pass failed under fake tensors and on real tensors."""

    exit_code = 5


class DataError(IreneError):
    """A dataset folder is missing files or columns, or holds values that are not numbers."""

    exit_code = 6


class ProfileError(IreneError):
    """A profile file is corrupt, truncated, tampered with, of an unknown version, or used in a
    way it cannot support (a `full` profile without runtime features)."""

    exit_code = 7


class PredictionError(ProfileError):
    """A profile predicted a node that does work at 0 J, below 0 or not finite: the prediction
    cannot be trusted, and a gate must not pass it as "within budget".

    Fields: ``model`` (the tree's model name), ``node`` (the node's name, ``fqn:Type``),
    ``energy_j`` (the value predicted) and ``reason``; the message names them.
    """

    def __init__(self, model: str, node: str, energy_j: float, reason: str) -> None:
        self.model = model
        self.node = node
        self.energy_j = energy_j
        self.reason = reason
        super().__init__(
            f"{model}: node {node!r} was predicted {energy_j!r} J ({reason}); the profile "
            "cannot predict this model, and a zero, negative or non-finite energy is never "
            "passed as a result: retrain the profile on data that covers it, or report it"
        )

    def __reduce__(self) -> tuple[type[PredictionError], tuple[str, str, float, str]]:
        return type(self), (self.model, self.node, self.energy_j, self.reason)


class HardwareUnavailable(IreneError):
    """A meter was demanded but its hardware is absent or unreadable; the message says why."""

    exit_code = 8


class OutputError(IreneError):
    """A file cannot be written or read for a reason outside the library (a missing folder, no
    permission, a full disk); the message names the file and the system's reason."""

    exit_code = 9

    @classmethod
    def from_os_error(cls, exc: OSError, action: str = "write", path: object = None) -> OutputError:
        """``cannot write /x/r.json: No such file or directory``."""
        target = path if path is not None else exc.filename
        reason = exc.strerror or str(exc)
        return cls(f"cannot {action} {target}: {reason}")
