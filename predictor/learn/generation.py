"""Generation energy: a profile's joules for a prefill, every decode step, per token, per request.

:func:`predict_generation` predicts the traced phases of a generation
(:func:`predictor.trace.generation.trace_generation`) with any profile and sums them:

- ``prefill_j``: the prefill passes that admit the whole batch (the prefill tree's root,
  times ``prefill_passes``: one pass of the batch, or one per request with ``prefill_batch``
  1), plus the serving engine's time per admitted request (:class:`ServingOverhead`) at the
  GPU's idle power;
- ``decode_j``: every decode step of the whole batch. A step's energy is its tree's root (the
  GPU kernels) plus the serving overhead of a step (scheduling, sampling over the vocabulary,
  streaming: host time during which the GPU draws its idle power). The steps see caches of
  ``prompt_len`` ... ``prompt_len + new_tokens - 2`` tokens; their sum is the composite
  trapezoid rule over the traced cache lengths (:func:`integrate_decode`): exact when the step
  energy is affine in the cache length between them, and within ``decode_bound_j`` of the
  exact sum whenever it is monotone there (a rigorous bound, stated with every prediction);
- ``j_per_output_token`` = (prefill + decode) / (batch x new tokens), ``j_per_request`` =
  (prefill + decode) / batch.

The per-module energy of a decode step is the tree :func:`mean_decode_tree` builds: each node's
energy averaged over the generation's steps (the same weights), so module budgets and diffs
read it like any tree.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from predictor.errors import ModelError
from predictor.trace.tree import EnergyTree
from predictor.trace.workload import ONE_TOKEN, Workload

if TYPE_CHECKING:
    from predictor.learn.profile import AnyProfile as Profile
    from predictor.trace.generation import GenerationTrees

__all__ = [
    "DecodeSample",
    "GenerationEnergy",
    "GenerationPrediction",
    "ServingOverhead",
    "integrate_decode",
    "mean_decode_tree",
    "predict_generation",
    "serving_overhead",
]


@dataclass(frozen=True)
class ServingOverhead:
    """Time a serving engine spends outside the GPU kernels a step's tree holds, while the GPU
    waits at ``idle_power_w``: ``step_s`` per decode step, ``sequence_s`` per sequence per step
    (scheduling, streaming), ``vocab_s`` per vocabulary entry per sequence per step (sampling
    over the logits), ``request_s`` per request admitted (its prefill's scheduling). All zero:
    the kernels only (a profile that states none)."""

    idle_power_w: float = 0.0
    step_s: float = 0.0
    sequence_s: float = 0.0
    vocab_s: float = 0.0
    request_s: float = 0.0
    #: What the figures were fitted to (e.g. "vLLM 0.5.4, ML.ENERGY Leaderboard v2").
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("idle_power_w", "step_s", "sequence_s", "vocab_s", "request_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"serving overhead {name} must be a number >= 0 (got {value!r})")

    def step_time_s(self, batch_size: int, vocab_size: int) -> float:
        """Host time of one decode step of ``batch_size`` sequences (s)."""
        return self.step_s + batch_size * (self.sequence_s + vocab_size * self.vocab_s)

    def step_energy_j(self, batch_size: int, vocab_size: int) -> float:
        return self.idle_power_w * self.step_time_s(batch_size, vocab_size)

    def prefill_energy_j(self, batch_size: int) -> float:
        return self.idle_power_w * self.request_s * batch_size

    def to_dict(self) -> dict[str, Any]:
        return {
            "idle_power_w": self.idle_power_w,
            "step_s": self.step_s,
            "sequence_s": self.sequence_s,
            "vocab_s": self.vocab_s,
            "request_s": self.request_s,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServingOverhead:
        return cls(
            idle_power_w=float(data.get("idle_power_w", 0.0)),
            step_s=float(data.get("step_s", 0.0)),
            sequence_s=float(data.get("sequence_s", 0.0)),
            vocab_s=float(data.get("vocab_s", 0.0)),
            request_s=float(data.get("request_s", 0.0)),
            source=str(data.get("source", "")),
        )


def serving_overhead(profile: Profile) -> ServingOverhead:
    """The serving overhead a profile states (``hardware["serving"]``), else none (zeros)."""
    data = getattr(profile, "hardware", {}).get("serving")
    if isinstance(data, Mapping):
        return ServingOverhead.from_dict(data)
    return ServingOverhead()


@dataclass(frozen=True)
class DecodeSample:
    """A decode step's predicted energy (whole batch, J) at one cache length, and how many of
    the generation's steps it stands for."""

    cache_len: int
    weight: float
    energy_j: float


def integrate_decode(samples: Sequence[DecodeSample]) -> tuple[float, float, bool]:
    """``(sum, bound, monotone)`` of the decode steps' energy from samples at increasing cache
    lengths: the sum of the affine interpolant over every integer length (the samples'
    weights), the largest error that sum can have if the step energy is monotone between
    consecutive samples (each step lies between its two neighbours' energies), and whether the
    samples themselves are monotone (the bound's premise, as far as they show)."""
    ordered = sorted(samples, key=lambda s: s.cache_len)
    total = sum(s.weight * s.energy_j for s in ordered)
    bound = 0.0
    for a, b in itertools.pairwise(ordered):
        n = b.cache_len - a.cache_len
        if n <= 1:
            continue
        # the interior lengths a+1 .. b-1 sit at t = j/n; each is off by at most max(t, 1-t) |df|
        spread = sum(max(j, n - j) for j in range(1, n)) / n
        bound += spread * abs(b.energy_j - a.energy_j)
    diffs = [b.energy_j - a.energy_j for a, b in itertools.pairwise(ordered)]
    monotone = all(d >= 0 for d in diffs) or all(d <= 0 for d in diffs)
    return total, bound, monotone


@dataclass(frozen=True)
class GenerationEnergy:
    """A generation's predicted energy (J) per phase, per output token and per request."""

    workload: Workload
    prefill_j: float
    decode_j: float
    #: Of ``prefill_j`` and ``decode_j``: the serving overhead (GPU idle while the host works).
    overhead_j: float = 0.0
    #: The decode sum's error bound (:func:`integrate_decode`), and whether the samples were
    #: monotone in the cache length (the bound's premise).
    decode_bound_j: float = 0.0
    monotone: bool = True
    samples: tuple[DecodeSample, ...] = ()
    #: The serving overhead per decode step of the whole batch (J).
    step_overhead_j: float = 0.0
    notes: tuple[str, ...] = field(default=())
    #: The predicted wall time of the whole generation (s: kernels and serving overhead), where
    #: the profile predicts times (device profiles); None otherwise.
    time_s: float | None = None
    #: Of it, the decode steps'.
    decode_time_s: float | None = None

    @property
    def total_j(self) -> float:
        return self.prefill_j + self.decode_j

    @property
    def j_per_output_token(self) -> float:
        return self.total_j / self.workload.output_tokens

    @property
    def j_per_request(self) -> float:
        return self.total_j / self.workload.batch_size

    @property
    def decode_step_time_s(self) -> float | None:
        """The mean decode step's predicted time (s): a request's time per output token."""
        steps = self.workload.decode_steps
        if self.decode_time_s is None or not steps:
            return None
        return self.decode_time_s / steps

    @property
    def decode_step_j(self) -> float:
        """The mean decode step of the whole batch (J, kernels + overhead); 0 with no steps."""
        steps = self.workload.decode_steps
        return self.decode_j / steps if steps else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON data: joules in ``*_j`` keys."""
        return {
            "workload": self.workload.to_dict(),
            "prefill_j": self.prefill_j,
            "decode_j": self.decode_j,
            "total_j": self.total_j,
            "j_per_output_token": self.j_per_output_token,
            "j_per_request": self.j_per_request,
            "decode_steps": self.workload.decode_steps,
            "decode_step_j": self.decode_step_j,
            "serving_overhead_j": self.overhead_j,
            "decode_step_overhead_j": self.step_overhead_j,
            "decode_error_bound_j": self.decode_bound_j,
            "decode_monotone": self.monotone,
            "decode_samples": [
                {"cache_len": s.cache_len, "steps": s.weight, "energy_j": s.energy_j}
                for s in self.samples
            ],
            "notes": list(self.notes),
            "time_s": self.time_s,
            "decode_time_s": self.decode_time_s,
            "decode_step_time_s": self.decode_step_time_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationEnergy:
        """Read :meth:`to_dict`'s form back; ValueError (naming the key) for a malformed one."""
        try:
            w = data["workload"]
            workload = Workload(
                int(w["batch_size"]),
                int(w["prompt_len"]),
                int(w["new_tokens"]),
                None if w.get("dtype") is None else str(w["dtype"]),
                None if w.get("prefill_batch") is None else int(w["prefill_batch"]),
            )
            return cls(
                workload=workload,
                prefill_j=float(data["prefill_j"]),
                decode_j=float(data["decode_j"]),
                overhead_j=float(data.get("serving_overhead_j", 0.0)),
                decode_bound_j=float(data.get("decode_error_bound_j", 0.0)),
                monotone=bool(data.get("decode_monotone", True)),
                samples=tuple(
                    DecodeSample(int(s["cache_len"]), float(s["steps"]), float(s["energy_j"]))
                    for s in data.get("decode_samples", [])
                ),
                step_overhead_j=float(data.get("decode_step_overhead_j", 0.0)),
                notes=tuple(str(n) for n in data.get("notes", [])),
                time_s=_opt(data.get("time_s")),
                decode_time_s=_opt(data.get("decode_time_s")),
            )
        except (KeyError, TypeError, ValueError, ModelError) as exc:
            raise ValueError(f"not a generation summary ({type(exc).__name__}: {exc})") from None


@dataclass
class GenerationPrediction:
    """The predicted phases: the energy summary, the prefill's tree and the mean decode step's
    (:func:`mean_decode_tree`), whose ``meta["generation"]`` holds the summary."""

    energy: GenerationEnergy
    prefill: EnergyTree
    decode_step: EnergyTree


def mean_decode_tree(trees: Sequence[EnergyTree], weights: Sequence[float]) -> EnergyTree:
    """One tree whose every node's ``flops``, ``mem_bytes`` and ``energy_j`` are the weighted
    mean of that node over ``trees`` (decode steps of one model at several cache lengths: the
    same nodes in the same order). ModelError when the trees' nodes differ."""
    if not trees or len(trees) != len(weights):
        raise ValueError("mean_decode_tree needs one weight per tree, and at least one tree")
    out = EnergyTree.from_dict(trees[0].to_dict())
    total = float(sum(weights))
    walks = [list(t.walk()) for t in trees]
    names = [n.name for n in walks[0]]
    for walk in walks[1:]:
        if [n.name for n in walk] != names:
            raise ModelError(
                f"{trees[0].model_name}: the decode steps' trees differ in their nodes at "
                "different cache lengths; the model's structure depends on the cache length"
            )
    for i, node in enumerate(out.walk()):
        nodes = [walk[i] for walk in walks]
        node.flops = sum(w * n.flops for w, n in zip(weights, nodes, strict=True)) / total
        node.mem_bytes = sum(w * n.mem_bytes for w, n in zip(weights, nodes, strict=True)) / total
        energies = [n.energy_j for n in nodes]
        known = [e for e in energies if e is not None]
        if len(known) == len(energies):
            node.energy_j = sum(w * e for w, e in zip(weights, known, strict=True)) / total
        node.extrapolated = any(n.extrapolated for n in nodes)
    return out


def predict_generation(
    trees: GenerationTrees, profile: Profile, serving: ServingOverhead | None = None
) -> GenerationPrediction:
    """Predict every traced phase with ``profile`` and sum the generation (module docstring).

    ``serving``: the serving engine's overhead (default: the one the profile states, else
    none). The mean decode step's tree carries the summary in ``meta["generation"]``."""
    w = trees.workload
    overhead = serving if serving is not None else serving_overhead(profile)
    vocab = int(trees.cache.get("vocab_size") or 0)
    prefill = profile.predict(trees.prefill)
    prefill_kernels = _root_j(prefill) * w.prefill_passes
    prefill_over = overhead.prefill_energy_j(w.batch_size)
    step_over = overhead.step_energy_j(w.batch_size, vocab)
    samples: list[DecodeSample] = []
    predicted: list[EnergyTree] = []
    times: list[float | None] = []
    for point, tree in trees.decode:
        profile.predict(tree)
        predicted.append(tree)
        samples.append(DecodeSample(point.cache_len, point.weight, _root_j(tree) + step_over))
        times.append(_time_s(tree))
    decode_j, bound, monotone = integrate_decode(samples)
    step_host = overhead.step_time_s(w.batch_size, vocab)
    decode_time: float | None = None
    total_time: float | None = None
    prefill_time = _time_s(prefill)
    known = [t for t in times if t is not None]
    if prefill_time is not None and len(known) == len(times):
        decode_time = sum(
            p.weight * (t + step_host) for (p, _), t in zip(trees.decode, known, strict=True)
        )
        total_time = (
            prefill_time * w.prefill_passes + overhead.request_s * w.batch_size + decode_time
        )
    notes: list[str] = []
    if serving is None and prefill_over == 0 and step_over == 0:
        notes.append(
            f"kernels only: profile {profile.name!r} states no serving-engine overhead (it was "
            "not fitted on measured generations), so the host's time per step (scheduling, "
            "sampling) is not charged; irene-h100-sxm and irene-a100-sxm4-40gb are fitted with "
            "it"
        )
    if not monotone:
        notes.append(
            "the decode step's predicted energy is not monotone in the cache length at the "
            "traced lengths, so the decode sum's error bound assumes what the samples do not show"
        )
    energy = GenerationEnergy(
        workload=w,
        prefill_j=prefill_kernels + prefill_over,
        decode_j=decode_j,
        overhead_j=prefill_over + step_over * w.decode_steps,
        decode_bound_j=bound,
        monotone=monotone,
        samples=tuple(samples),
        step_overhead_j=step_over,
        notes=tuple(notes),
        time_s=total_time,
        decode_time_s=decode_time,
    )
    if not predicted:  # pragma: no cover - a Workload has at least one decode step
        raise ModelError(ONE_TOKEN)
    weights = [s.weight for s in samples]
    step = mean_decode_tree(predicted, weights)
    mean_len = sum(wt * s.cache_len for wt, s in zip(weights, samples, strict=True)) / sum(weights)
    kv_reads = [t.meta.get("generation", {}).get("kv_cache_read_mib") for t in predicted]
    gen_meta = dict(step.meta.get("generation", {}))
    if all(isinstance(v, (int, float)) for v in kv_reads):  # the mean step's, like its energy
        gen_meta["kv_cache_read_mib"] = sum(
            wt * float(v) for wt, v in zip(weights, kv_reads, strict=True)
        ) / sum(weights)
    gen_meta.update(
        {
            "phase": "decode",
            "mean_over_steps": True,
            "cache_len": mean_len,
            "summary": energy.to_dict(),
            "prefill": {
                "energy_j": prefill_kernels,
                "passes": w.prefill_passes,
                "flops": prefill.root.flops,
                "mem_bytes": prefill.root.mem_bytes,
            },
            "serving_overhead": overhead.to_dict(),
        }
    )
    step.meta["generation"] = gen_meta
    return GenerationPrediction(energy, prefill, step)


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _time_s(tree: EnergyTree) -> float | None:
    t = tree.meta.get("predicted_time_s")
    return float(t) if isinstance(t, (int, float)) and math.isfinite(t) else None


def _root_j(tree: EnergyTree) -> float:
    e = tree.root.energy_j
    if e is None or not math.isfinite(e):
        raise ModelError(f"{tree.model_name}: the profile left the model's energy empty")
    return float(e)
