"""Measure the energy of every node of one model's tree on real hardware.

The method (IrEne's, made explicit):

1. The static tree comes from :func:`predictor.trace.tracer.build_tree` (names, levels, FLOPs, bytes).
2. One real forward pass captures each node's inputs: forward pre-hooks on the modules, and a
   ``TorchFunctionMode`` for the functional primitives (MatMul, Softmax) called inside a module.
   Nodes are matched to captured calls by name and occurrence (``fqn:Type``, k-th call).
3. The idle power of the device is measured first (a window in which nothing runs).
4. Each node is replayed alone, ``repeats`` calls per window, ``repeats`` grown until a window
   lasts the meter's resolution time; windows are repeated until the per-call energy is stable
   (relative std below ``target_rel_std``, or ``max_windows``). Per call:
   ``energy_j = (window energy - idle power * window time) / repeats``. The spread
   (std / mean over windows) is recorded.
5. Identical nodes (same type and same input shapes, dtypes and parameter shapes) are measured
   once and reused; modules and the whole model are replayed as a whole with their inputs.

Runtime features seen during a node's windows are recorded with it under the dataset's names
(``gpu``, ``gpu_mem``, ``gpu_clk``, ``cpu`` ..., ``times_mean`` in s per call, and for GPU
counters ``gpu_energy_mean``, the raw counter per call). Nodes that cannot be measured (a
functional call that cannot be replayed alone, energy below the idle floor) are listed in
``gaps`` and left out of the dataset (their children join the enclosing module), never zero.
"""

from __future__ import annotations

import inspect
import math
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from predictor.errors import HardwareUnavailable
from predictor.gate.units import format_energy
from predictor.measure.meters.base import Measurement, Meter
from predictor.trace.tree import EnergyTree, Node, prune_unmeasured

__all__ = [
    "CalibrationResult",
    "MeasureSettings",
    "NodeMeasurement",
    "NodeRecord",
    "measure_callable",
    "measure_idle_power",
    "measure_tree",
]

#: Progress callback: (task description, completed, total).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class MeasureSettings:
    """How long and how often each node is measured.

    ``min_window_s`` None uses the meter's own resolution (``meter.min_window_s``).
    """

    min_window_s: float | None = None
    min_windows: int = 3
    max_windows: int = 10
    target_rel_std: float = 0.05
    max_repeats: int = 1_000_000
    warmup: int = 2
    idle_s: float = 2.0
    subtract_idle: bool = True

    def __post_init__(self) -> None:
        if self.min_windows < 1 or self.max_windows < self.min_windows:
            raise ValueError(
                f"need 1 <= min_windows <= max_windows (got {self.min_windows}, {self.max_windows})"
            )
        if self.idle_s <= 0:
            raise ValueError(f"idle_s must be > 0 (got {self.idle_s})")


@dataclass(frozen=True)
class NodeMeasurement:
    """Energy of one call of a node (J, idle subtracted) with its spread over windows."""

    energy_j: float
    energy_std_j: float
    raw_energy_j: float
    duration_s: float
    repeats: int
    windows: int
    runtime: dict[str, float] = field(default_factory=dict)

    @property
    def rel_std(self) -> float:
        """std / mean of the per-call energy over windows (inf when the mean is not positive)."""
        return self.energy_std_j / self.energy_j if self.energy_j > 0 else math.inf


@dataclass(frozen=True)
class NodeRecord:
    """One node of one configuration: what was measured, or why not."""

    name: str
    level: str
    occurrence: int
    key: str
    energy_j: float | None
    rel_std: float | None
    repeats: int
    windows: int
    reused: bool
    gap: str | None = None


@dataclass
class CalibrationResult:
    """A measured tree (gaps pruned), per-node records, and the idle power used (W)."""

    tree: EnergyTree
    records: list[NodeRecord]
    idle_power_w: float
    gaps: list[str] = field(default_factory=list)


# -- measuring one callable ---------------------------------------------------------------------


def _sync_for(device: torch.device | str | None) -> Callable[[], None]:
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        return lambda: torch.cuda.synchronize(dev)
    return lambda: None


def measure_idle_power(meter: Meter, settings: MeasureSettings) -> float:
    """Mean power (W) of the device while nothing runs, over ``settings.idle_s`` seconds."""
    return meter.idle_power_w(settings.idle_s)


def _window(
    meter: Meter, fn: Callable[[], Any], repeats: int, sync: Callable[[], None]
) -> Measurement:
    sync()
    meter.begin()
    try:
        for _ in range(repeats):
            fn()
        sync()
    except BaseException:
        meter.abort()
        raise
    return meter.end()


def measure_callable(
    fn: Callable[[], Any],
    meter: Meter,
    *,
    idle_power_w: float,
    settings: MeasureSettings,
    sync: Callable[[], None] = lambda: None,
) -> NodeMeasurement:
    """Measure one call of ``fn``: repeat it until a window is long enough and the mean stable."""
    for _ in range(settings.warmup):
        fn()
    sync()
    min_window = settings.min_window_s if settings.min_window_s is not None else meter.min_window_s
    repeats = 1
    while True:
        m = _window(meter, fn, repeats, sync)
        if m.duration_s >= min_window or repeats >= settings.max_repeats:
            break
        per_call = m.duration_s / repeats
        grow = math.ceil(1.2 * min_window / per_call) if per_call > 0 else repeats * 10
        repeats = min(settings.max_repeats, max(repeats * 2, grow))
    idle = idle_power_w if settings.subtract_idle else 0.0
    windows: list[Measurement] = [m]
    per_call_energy = [(m.energy_j - idle * m.duration_s) / repeats]
    while len(windows) < settings.max_windows:
        if len(windows) >= settings.min_windows:
            mean = statistics.fmean(per_call_energy)
            spread = statistics.pstdev(per_call_energy)
            if mean > 0 and spread / mean <= settings.target_rel_std:
                break
        m = _window(meter, fn, repeats, sync)
        windows.append(m)
        per_call_energy.append((m.energy_j - idle * m.duration_s) / repeats)
    runtime = _mean_features(windows)
    duration = statistics.fmean(w.duration_s for w in windows) / repeats
    raw = statistics.fmean(w.energy_j for w in windows) / repeats
    runtime["times_mean"] = duration
    if meter.counter_feature is not None:
        runtime[meter.counter_feature] = raw
    return NodeMeasurement(
        energy_j=statistics.fmean(per_call_energy),
        energy_std_j=statistics.pstdev(per_call_energy) if len(per_call_energy) > 1 else 0.0,
        raw_energy_j=raw,
        duration_s=duration,
        repeats=repeats,
        windows=len(windows),
        runtime=runtime,
    )


def _mean_features(windows: Sequence[Measurement]) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for w in windows:
        for k, v in w.runtime_features().items():
            values.setdefault(k, []).append(v)
    return {k: statistics.fmean(v) for k, v in values.items()}


# -- capturing each node's inputs ---------------------------------------------------------------


def _spec(value: Any) -> Any:
    """A hashable description of an argument: tensors by shape/dtype/device, scalars by value."""
    if isinstance(value, torch.Tensor):
        return ("T", tuple(value.shape), str(value.dtype), value.device.type)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_spec(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), _spec(v)) for k, v in value.items())))
    if value is None or isinstance(value, (bool, int, float, str, torch.dtype)):
        return value
    return ("obj", type(value).__qualname__)


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, tuple):
        return tuple(_clone(v) for v in value)
    if isinstance(value, list):
        return [_clone(v) for v in value]
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


@dataclass
class _Call:
    """How to replay one node: ``key`` identifies identical nodes; ``run`` is None if not replayable."""

    key: str
    run: Callable[[], Any] | None
    gap: str | None = None


@dataclass
class _Frame:
    name: str
    primitive: bool
    is_node: bool


class _Capture(TorchFunctionMode):
    """Records, for each node name and occurrence, a replayable call with cloned inputs."""

    def __init__(self, model: nn.Module, counting_mode: str) -> None:
        from predictor.trace.features import default_ops

        super().__init__()
        self.model = model
        self.mode = counting_mode
        self.ops = default_ops()
        self.stack: list[_Frame] = [_Frame("", primitive=False, is_node=True)]
        self.seen: Counter[str] = Counter()
        self.calls: dict[tuple[str, int], _Call] = {}
        self.inputs: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        #: fqns of mixture-of-experts modules: the tree counts their GEMMs as routed work
        #: (predictor.trace.moe), which no single call replays
        self.experts: set[str] = set()

    def frame(self) -> _Frame:
        for f in reversed(self.stack):
            if f.is_node:
                return f
        return self.stack[0]

    # module hooks
    def enter(self, name: str, module: nn.Module, prim: str | None, args: Any, kwargs: Any) -> None:
        from predictor.trace.moe import is_experts

        if self.stack[-1].primitive:
            self.stack.append(_Frame(name, primitive=True, is_node=False))
            return
        if prim is None and is_experts(module):
            self.experts.add(name)
        node_name = f"{name}:{prim or type(module).__name__}"
        k = self.seen[node_name]
        self.seen[node_name] += 1
        params = tuple((n, tuple(p.shape), str(p.dtype)) for n, p in module.named_parameters())
        key = repr(("module", type(module).__qualname__, _spec(args), _spec(kwargs), params))
        if key not in self.inputs:
            self.inputs[key] = (_clone(tuple(args)), _clone(dict(kwargs)))
        stored = self.inputs[key]

        def run(
            m: nn.Module = module, a: tuple[Any, ...] = stored[0], kw: dict[str, Any] = stored[1]
        ) -> Any:
            return m(*a, **kw)

        self.calls[(node_name, k)] = _Call(key, run)
        self.stack.append(_Frame(name, primitive=prim is not None, is_node=True))

    def leave(self) -> None:
        self.stack.pop()

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        from predictor.trace.ops import OpCall, op_name

        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        frame = self.frame()
        if frame.primitive or frame.name in self.experts:
            return out
        name = op_name(func)
        handle = self.ops.get(name, self.mode)
        if handle is None:
            return out
        try:
            parts = handle(OpCall(name, args, kwargs, out))
        except Exception:  # the tree reports formulas that fail; nothing to replay here
            return out
        prims = [p.primitive for p in parts if p.primitive is not None]
        for prim in prims:
            node_name = f"{frame.name}:{prim}"
            k = self.seen[node_name]
            self.seen[node_name] += 1  # a node with a count (a loop) spans that many calls
            if len(prims) != 1:
                self.calls[(node_name, k)] = _Call(
                    f"split:{name}",
                    None,
                    gap=f"'{name}' counts as {len(prims)} primitives that cannot be replayed alone "
                    "(build the model with attn_implementation='eager')",
                )
                continue
            key = repr(("op", name, _spec(args), _spec(kwargs)))
            if key not in self.inputs:
                self.inputs[key] = (_clone(tuple(args)), _clone(dict(kwargs)))
            stored = self.inputs[key]

            def run(
                f: Callable[..., Any] = func,
                a: tuple[Any, ...] = stored[0],
                kw: dict[str, Any] = stored[1],
            ) -> Any:
                return f(*a, **kw)

            self.calls[(node_name, k)] = _Call(key, run)
        return out


def _capture(
    model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], counting_mode: str
) -> _Capture:
    from predictor.trace.primitives import default_primitives, strip_compiled

    primitives = default_primitives()
    cap = _Capture(model, counting_mode)
    handles = []
    for raw_name, module in model.named_modules():
        if module is model or primitives.is_skipped(module):
            continue
        name = strip_compiled(raw_name)  # the tree's name of a torch.compile'd module
        if not name:  # a compiled root's original module: the root itself
            continue
        prim = primitives.type_of(module)  # the trace's typing (predictor.trace.primitives)

        def pre(mod: nn.Module, a: Any, kw: Any, n: str = name, p: str | None = prim) -> None:
            cap.enter(n, mod, p, a, kw)

        def post(mod: nn.Module, a: Any, out: Any) -> None:
            cap.leave()

        handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(module.register_forward_hook(post))
    try:
        with torch.no_grad(), cap:
            model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return cap


# -- measuring a tree ---------------------------------------------------------------------------


def measure_tree(
    model: nn.Module,
    tree: EnergyTree,
    *example_args: Any,
    meter: Meter,
    settings: MeasureSettings | None = None,
    idle_power_w: float | None = None,
    device: torch.device | str | None = None,
    progress: Progress | None = None,
    cache: dict[str, NodeMeasurement] | None = None,
    **example_kwargs: Any,
) -> CalibrationResult:
    """Measure every node of ``tree`` by replaying it on ``model`` (real weights, on ``device``).

    Returns a copy of the tree with ``measured_energy_j`` and ``runtime`` set on each measured
    node; unmeasurable nodes are pruned and listed in ``gaps``. ``cache`` (key -> measurement)
    lets identical nodes of several configurations share one measurement.
    """
    settings = settings or MeasureSettings()
    st = meter.status()
    if not st.available:
        raise HardwareUnavailable(st.describe())
    if device is None:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    sync = _sync_for(device)
    if idle_power_w is None:
        idle_power_w = measure_idle_power(meter, settings)
    cache = {} if cache is None else cache

    example_kwargs = _without_cache(model, example_kwargs)
    was_training = model.training
    model.eval()
    try:
        cap = _capture(model, example_args, example_kwargs, tree.counting_mode)

        def run_model() -> Any:
            return model(*example_args, **example_kwargs)

        measured = EnergyTree.from_dict(tree.to_dict())
        occurrences: Counter[str] = Counter()
        plan: list[tuple[Node, int, _Call]] = []
        for node in measured.walk():
            if node.level == "model":
                key = repr(("model", node.name, _spec(example_args), _spec(example_kwargs)))
                plan.append((node, 0, _Call(key, run_model)))
                continue
            k = occurrences[node.name]
            occurrences[node.name] += node.count
            call = cap.calls.get((node.name, k))
            if node.level == "ml" and node.fqn in cap.experts:
                plan.append(
                    (
                        node,
                        k,
                        _Call(
                            "",
                            None,
                            gap="routed expert GEMMs are counted for the uniform (or given) "
                            "routing, which no single call replays; the experts module is "
                            "measured as a whole",
                        ),
                    )
                )
            elif call is None:
                plan.append(
                    (node, k, _Call("", None, gap="no matching call in the real forward pass"))
                )
            else:
                plan.append((node, k, call))

        records: list[NodeRecord] = []
        gaps: list[str] = []
        unique = {c.key for _, _, c in plan if c.run is not None and c.key not in cache}
        done = 0
        with torch.no_grad():
            for node, k, call in plan:
                reused = call.key in cache
                if call.run is None:
                    records.append(
                        NodeRecord(
                            node.name, node.level, k, call.key, None, None, 0, 0, False, call.gap
                        )
                    )
                    gaps.append(f"{node.name} #{k}: {call.gap}")
                    continue
                if not reused:
                    if progress is not None:
                        progress(
                            f"{tree.model_name} b{tree.batch_size} s{tree.seq_len}",
                            done,
                            len(unique),
                        )
                    cache[call.key] = measure_callable(
                        call.run, meter, idle_power_w=idle_power_w, settings=settings, sync=sync
                    )
                    done += 1
                nm = cache[call.key]
                gap = None
                if nm.energy_j <= 0:
                    gap = (
                        f"energy per call {format_energy(nm.energy_j)} is not above the idle floor "
                        f"({idle_power_w:.3g} W): below the meter's resolution"
                    )
                    gaps.append(f"{node.name} #{k}: {gap}")
                else:
                    # a node with a count stands for that many identical calls (a loop)
                    node.measured_energy_j = nm.energy_j * node.count
                    node.runtime = dict(nm.runtime)
                    if node.count != 1:
                        for feature in ("times_mean", meter.counter_feature):
                            if feature is not None and feature in node.runtime:
                                node.runtime[feature] *= node.count
                records.append(
                    NodeRecord(
                        node.name,
                        node.level,
                        k,
                        call.key,
                        nm.energy_j if gap is None else None,
                        nm.rel_std if gap is None else None,
                        nm.repeats,
                        nm.windows,
                        reused,
                        gap,
                    )
                )
        if progress is not None:
            progress(
                f"{tree.model_name} b{tree.batch_size} s{tree.seq_len}",
                done,
                max(len(unique), done),
            )
    finally:
        model.train(was_training)

    if measured.root.measured_energy_j is None:
        raise HardwareUnavailable(
            f"{tree.model_name}: the whole model could not be measured ({gaps[-1] if gaps else 'no reading'})"
        )
    prune_unmeasured(measured.root)
    measured.meta = {
        **measured.meta,
        "measured": {"meter": st.kind, "method": st.method, "idle_power_w": idle_power_w},
    }
    return CalibrationResult(tree=measured, records=records, idle_power_w=idle_power_w, gaps=gaps)


def _without_cache(model: nn.Module, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Add ``use_cache=False`` where the forward takes it: a replayed attention module must not
    append to a key/value cache on every call (shapes would grow)."""
    if "use_cache" in kwargs:
        return kwargs
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return kwargs
    if "use_cache" in params:
        return {**kwargs, "use_cache": False}
    return kwargs
