"""A generation workload: how many sequences, how long their prompts, how many new tokens.

Kept apart from torch (the budgets parser and the CLI build one without importing it); the
traces of a workload are :mod:`predictor.trace.generation`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from predictor.errors import ModelError
from predictor.trace.dtypes import dtype_name

__all__ = ["ONE_TOKEN", "Workload", "prefill_batch_problem"]


def prefill_batch_problem(prefill: int, batch: int) -> str | None:
    """What is wrong with ``prefill`` prompts per prefill pass for a batch of ``batch``
    (worded to follow the option's name and value), or None: more prompts than the batch
    holds, or a size that leaves a smaller last pass (its energy would be charged as a
    fraction of a full one)."""
    if prefill > batch:
        return f"is more prompts than the batch holds ({batch}); give 1 to {batch}"
    if batch % prefill:
        divisors = ", ".join(str(d) for d in range(1, batch + 1) if batch % d == 0)
        return (
            f"does not divide the batch ({batch}): the last pass would be smaller than the "
            f"others; give one of {divisors}"
        )
    return None


#: Why a generation of one token is refused: there is no decode step to predict.
ONE_TOKEN = (
    "new_tokens 1 is the prefill alone (the prefill yields the first token, every further "
    "token is a decode step): predict it as one forward pass (seq_len = the prompt), or "
    "generate 2 or more tokens"
)


@dataclass(frozen=True)
class Workload:
    """A generation: ``batch_size`` sequences decoded together, each with a prompt of
    ``prompt_len`` tokens and ``new_tokens`` generated tokens (the prefill yields the first,
    ``new_tokens - 1`` decode steps the rest). ``dtype``: the weights' and activations' dtype
    (None: the model's own). ``prefill_batch``: prompts per prefill pass (None: the whole
    batch at once; 1: each request's prompt on its own, as a server with continuous batching
    admits requests as others finish, each prefill reading the weights again)."""

    batch_size: int
    prompt_len: int
    new_tokens: int
    dtype: str | None = None
    prefill_batch: int | None = None

    def __post_init__(self) -> None:
        for label in ("batch_size", "prompt_len", "new_tokens"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelError(f"generation {label} must be an integer >= 1 (got {value!r})")
        if self.new_tokens < 2:
            raise ModelError(ONE_TOKEN)
        if self.dtype is not None:
            dtype_name(self.dtype)
        p = self.prefill_batch
        if p is not None:
            if isinstance(p, bool) or not isinstance(p, int) or p < 1:
                raise ModelError(f"generation prefill_batch must be an integer >= 1 (got {p!r})")
            problem = prefill_batch_problem(p, self.batch_size)
            if problem:
                raise ModelError(f"generation prefill_batch {p} {problem}")

    @property
    def prefill_size(self) -> int:
        """Prompts per prefill pass."""
        return self.prefill_batch if self.prefill_batch is not None else self.batch_size

    @property
    def prefill_passes(self) -> float:
        """Prefill passes of ``prefill_size`` prompts that admit the whole batch."""
        return self.batch_size / self.prefill_size

    @property
    def decode_steps(self) -> int:
        """Decode steps per sequence: one per output token after the first."""
        return self.new_tokens - 1

    @property
    def output_tokens(self) -> int:
        """Output tokens of the whole batch."""
        return self.batch_size * self.new_tokens

    def describe(self) -> str:
        """``batch_size=8, prompt_len=128, new_tokens=256``: how reports record the workload."""
        text = (
            f"batch_size={self.batch_size}, prompt_len={self.prompt_len}, "
            f"new_tokens={self.new_tokens}"
        )
        if self.prefill_batch is not None:
            text += f", prefill_batch={self.prefill_batch}"
        return text + (f", dtype={self.dtype}" if self.dtype else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "prompt_len": self.prompt_len,
            "new_tokens": self.new_tokens,
            "dtype": self.dtype,
            "prefill_batch": self.prefill_batch,
        }
