"""The input options of every command that builds a model (``tree``, ``predict``,
``budgets init``): one set of flags, one default, one place to extend.

:func:`add_input_options` adds them to a command's parser and :func:`inputs_from_args` turns
the parsed values into the :class:`~predictor.gate.budgets.Inputs` a budgets file holds, so a
model built from the command line and one built from ``energy_budgets.yaml`` are built the same
way (:func:`predictor.gate.engine.trace_spec`). New input forms (named tensors, a generation
workload) are new options here and new fields there.
"""

from __future__ import annotations

import argparse

from predictor.gate.budgets import Inputs
from predictor.trace.dtypes import MODEL_DTYPES

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_SEQ_LEN", "add_input_options", "inputs_from_args"]

#: The one default of every command that builds a model.
DEFAULT_BATCH_SIZE = 1
DEFAULT_SEQ_LEN = 128


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a usage error, exit 4, otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text!r})")
    return value


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """``-b/--batch-size`` and ``-s/--seq-len`` (token inputs), ``--input NAME=SHAPE[:DTYPE]``
    (named input tensors, repeatable), ``--new-tokens`` (with ``--prompt-len``,
    ``--prefill-batch``: a generation workload instead of one forward pass) and ``--dtype``
    (the dtype the model is built in): the inputs the model is traced on, on the meta device."""
    group = parser.add_argument_group("model inputs")
    group.add_argument(
        "-b",
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"batch size of the token inputs (default {DEFAULT_BATCH_SIZE}, unless --input "
        "gives the inputs)",
    )
    group.add_argument(
        "-s",
        "--seq-len",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"sequence length of the token inputs (default {DEFAULT_SEQ_LEN}, unless --input "
        "gives the inputs)",
    )
    group.add_argument(
        "--input",
        dest="inputs",
        action="append",
        metavar="NAME=SHAPE[:DTYPE]",
        help="a named input tensor (repeatable), e.g. pixel_values=8x3x224x224 or "
        "input_features=1x80x3000:float16; with -b/-s too, joined to the token ids",
    )
    group.add_argument(
        "--prompt-len",
        type=positive_int,
        default=None,
        metavar="N",
        help="a generation's prompt tokens per sequence (with --new-tokens; default --seq-len)",
    )
    group.add_argument(
        "--new-tokens",
        type=positive_int,
        default=None,
        metavar="N",
        help="generate N tokens per sequence: predict the prefill and every decode step "
        "(a KV cache of the growing context) instead of one forward pass",
    )
    group.add_argument(
        "--prefill-batch",
        type=positive_int,
        default=None,
        metavar="N",
        help="with --new-tokens: prompts per prefill pass, a divisor of the batch (default: the "
        "whole batch at once; 1: each request on its own, as a server with continuous batching "
        "admits them)",
    )
    group.add_argument(
        "--dtype",
        choices=tuple(MODEL_DTYPES),
        default=None,
        help="dtype the model is built in (default: the dtype its config states, e.g. bf16 "
        "for the ML.ENERGY chat models and most hub configs; else fp32)",
    )


def inputs_from_args(args: argparse.Namespace) -> Inputs:
    """The inputs :func:`add_input_options` parsed: named tensors from ``--input``, token ids
    of ``-b`` x ``-s`` (their defaults when no ``--input`` is given), a generation with
    ``--new-tokens``, and ``--dtype``. A malformed ``--input``, or ``--prompt-len`` /
    ``--prefill-batch`` without ``--new-tokens``, is a ConfigError."""
    from predictor.errors import ConfigError
    from predictor.trace.input_specs import parse_input_option
    from predictor.trace.workload import ONE_TOKEN, prefill_batch_problem

    dtype = getattr(args, "dtype", None)
    prompt = getattr(args, "prompt_len", None)
    new = getattr(args, "new_tokens", None)
    prefill = getattr(args, "prefill_batch", None)
    tensors = []
    for text in getattr(args, "inputs", None) or ():
        try:
            tensors.append(parse_input_option(text))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    for flag, value in (("--prompt-len", prompt), ("--prefill-batch", prefill)):
        if value is not None and new is None:
            raise ConfigError(
                f"{flag} {value} describes a generation: give --new-tokens N too (the "
                "tokens to generate), or --seq-len for one forward pass"
            )
    batch, seq = args.batch_size, args.seq_len
    if new is not None and new < 2:
        raise ConfigError(f"--new-tokens {new}: {ONE_TOKEN}")
    if new is not None and prompt is not None and seq is not None and seq != prompt:
        raise ConfigError(
            f"--seq-len {seq} and --prompt-len {prompt} disagree: a generation's prompt is "
            "--prompt-len (give one of them)"
        )
    if new is not None:
        if tensors:
            raise ConfigError(
                "--new-tokens generates from token ids: give -b/--batch-size and --prompt-len, "
                "not --input"
            )
        batch = DEFAULT_BATCH_SIZE if batch is None else batch
        prompt = int(prompt if prompt is not None else (DEFAULT_SEQ_LEN if seq is None else seq))
        problem = None if prefill is None else prefill_batch_problem(prefill, batch)
        if problem:
            raise ConfigError(f"--prefill-batch {prefill} {problem} (--batch-size {batch})")
        return Inputs(
            batch_size=int(batch),
            seq_len=prompt,
            prompt_len=prompt,
            new_tokens=int(new),
            dtype=dtype,
            prefill_batch=prefill,
        )
    if not tensors:
        batch = DEFAULT_BATCH_SIZE if batch is None else batch
        seq = DEFAULT_SEQ_LEN if seq is None else seq
    elif (batch is None) != (seq is None):
        raise ConfigError("give both --batch-size and --seq-len (token ids), or neither")
    return Inputs(batch_size=batch, seq_len=seq, tensors=tuple(tensors), dtype=dtype)
