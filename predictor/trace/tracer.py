"""Any ``nn.Module`` + example inputs -> :class:`~predictor.trace.tree.EnergyTree`, with no compute.

The forward runs on the meta device (a model built under ``torch.device("meta")``) or under
``FakeTensorMode`` (a model with real weights): shapes propagate, nothing is computed and no
activation memory is allocated. Two interceptors build the tree while it runs:

- forward pre/post hooks on every submodule keep a stack of the modules being executed;
- a ``TorchFunctionMode`` sees each torch-function-level call (``F.linear``, ``torch.matmul``,
  ``F.softmax``, ``Tensor.add`` ...) once, at the outermost level, and charges its cost (the
  trace's op registry, :mod:`predictor.trace.features`) to the innermost module on the stack.
  Module costs roll up to their parents when they return, so a module's features are the sum
  of every op inside it.

Levels: the root (``model``), every non-primitive module except Dropout (``module``), and ML
primitives (``ml``): the modules the trace's primitive registry names
(:mod:`predictor.trace.primitives`: Linear / LayerNorm / Embedding / HF Conv1D / activations /
RMSNorm ...), plus functional MatMul and Softmax calls inside a module (named after that
module, one node per call). Inputs take the forms :mod:`predictor.trace.inputs` describes.

When the fake run fails (e.g. an op with no meta kernel, or a data-dependent ``.item()``), the
trace is retried on real tensors; when that fails too a :class:`~predictor.errors.TraceError`
names the module and op that failed.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.hooks import RemovableHandle

from predictor.errors import ModelError, SequenceTooLong, TraceError
from predictor.trace.features import FEATURES_VERSION, resolve_ops
from predictor.trace.formulas import first_tensor, is_weight, tensor_shapes
from predictor.trace.inputs import (
    Inputs,
    check_not_empty,
    describe_inputs,
    has_token_ids,
    infer_shape,
    map_tensors,
    max_positions,
    split_inputs,
    token_ids,
)
from predictor.trace.moe import Routing, RoutingSpec, experts_parts, is_experts, resolve_routing
from predictor.trace.ops import (
    COUNTING_MODES,
    MFLOP,
    MIB,
    OpCall,
    OpCount,
    OpHandle,
    OpRegistry,
    op_name,
)
from predictor.trace.primitives import (
    Primitive,
    PrimitiveRegistry,
    is_compiled_wrapper,
    resolve_primitives,
)
from predictor.trace.tree import EnergyTree, Node, UnsupportedOp

__all__ = ["build_tree"]


@dataclass
class _Frame:
    node: Node | None  # None: a module called inside a primitive (part of that primitive)
    module_name: str
    primitive: bool
    #: A primitive's kernel class from the registry ("": its costliest op's).
    kernel: str = ""
    #: The costliest op charged to a primitive so far: (score, kernel, dtype, shapes).
    best: tuple[float, str, str, tuple[tuple[int, ...], ...]] | None = None


@dataclass
class _Failure:
    module: str
    op: str
    in_op: bool
    error: BaseException

    def describe(self) -> str:
        where = f"in module '{self.module}'" if self.module else "in the model's own forward"
        at = (
            f"in op '{self.op}'"
            if self.in_op
            else f"after op '{self.op}'"
            if self.op
            else "before any op"
        )
        return f"{where} {at}: {type(self.error).__name__}: {_short(self.error)}"


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()).rstrip(".")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _calls(part: OpCount) -> int:
    """The op calls ``part`` stands for, if it did work (an estimate of the kernels launched)."""
    return part.count if part.flops > 0 or part.bytes > 0 else 0


def _dtype_name(value: Any) -> str:
    t = first_tensor(value)
    return "" if t is None else str(t.dtype).removeprefix("torch.")


def _grouped_mm_shape(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    """The output of ``_grouped_mm(a (S, K), b (G, K, N), offs)`` without computing it: the
    meta kernel refuses any dtype but bf16, so an fp32 meta trace is traced around it."""
    a = args[0] if args else kwargs.get("mat_a", kwargs.get("input"))
    b = args[1] if len(args) > 1 else kwargs.get("mat_b", kwargs.get("weight"))
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        return None
    if a.dim() == 2 and b.dim() == 3:
        return torch.empty((a.shape[0], b.shape[-1]), dtype=a.dtype, device=a.device)
    return None


#: Ops whose meta / fake kernels refuse some inputs the trace gives them (dtype checks): on a
#: failure their output is made from the input shapes (values are never needed).
_SHAPE_ONLY: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], torch.Tensor | None]] = {
    "_grouped_mm": _grouped_mm_shape,
    "grouped_mm": _grouped_mm_shape,
}


@dataclass
class _Tracer(TorchFunctionMode):
    mode: str
    root: Node
    ops: OpRegistry
    routing: Routing = field(default_factory=Routing)
    stack: list[_Frame] = field(default_factory=list)
    unsupported: Counter[tuple[str, str]] = field(default_factory=Counter)
    formula_errors: dict[str, str] = field(default_factory=dict)
    last_op: str = ""
    in_op: bool = False
    #: ids of functional ML nodes (named after the module that called them)
    functional: set[int] = field(default_factory=set)
    #: id(node) -> dtype -> work (FLOPs + bytes) charged to it, its subtree included
    work: dict[int, dict[str, float]] = field(default_factory=dict)
    paused: int = 0

    def __post_init__(self) -> None:
        super().__init__()
        self.stack = [_Frame(self.root, "", primitive=False)]

    def frame(self) -> _Frame:
        for frame in reversed(self.stack):
            if frame.node is not None:
                return frame
        return self.stack[0]

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if self.paused:
            return func(*args, **kwargs)
        name = op_name(func)
        self.last_op, self.in_op = name, True
        try:
            out = func(*args, **kwargs)
        except Exception:
            shape_only = _SHAPE_ONLY.get(name)
            made = shape_only(args, kwargs) if shape_only is not None else None
            if made is None:
                raise
            out = made
        self.in_op = False
        frame = self.frame()
        handle = self.ops.get(name, self.mode)
        if handle is None:
            self.unsupported[(name, frame.module_name)] += 1
            return out
        call = OpCall(name, args, kwargs, out)
        try:
            parts = handle(call)
        except Exception as exc:  # a formula that cannot read these arguments: report, not 0
            self.unsupported[(name, frame.module_name)] += 1
            self.formula_errors[name] = f"{type(exc).__name__}: {_short(exc, 120)}"
            return out
        self.charge(parts, call)
        return out

    def charge(self, parts: Iterable[OpCount], call: OpCall | None = None) -> None:
        """Add ``parts`` to the innermost node; parts naming a primitive become (or fold into)
        functional ML nodes of that module, unless it is itself a primitive."""
        frame = self.frame()
        node = frame.node
        assert node is not None
        call_dtype = ""
        call_shapes: tuple[tuple[int, ...], ...] = ()
        if call is not None:
            call_dtype = _dtype_name(call.out) or _dtype_name(call.args)
            outs = [call.out] if isinstance(call.out, torch.Tensor) else []
            call_shapes = tensor_shapes(*call.tensors(), *outs)
        for part in parts:
            dtype = part.dtype or call_dtype
            shapes = part.shapes if part.shapes is not None else call_shapes
            node.flops += part.flops
            node.mem_bytes += part.bytes
            node.ops += _calls(part)  # a functional node's calls are its parent's too
            if frame.primitive:
                score = part.flops + part.bytes
                if frame.best is None or score > frame.best[0]:
                    frame.best = (score, part.kernel, dtype, shapes)
            if part.primitive is not None and not frame.primitive:
                self._functional_node(frame, node, part, dtype, shapes, call)
            else:
                self._add_work(node, dtype, part.flops + part.bytes)

    def _add_work(self, node: Node, dtype: str, amount: float) -> None:
        if dtype and amount > 0:
            mine = self.work.setdefault(id(node), {})
            mine[dtype] = mine.get(dtype, 0.0) + amount

    def _functional_node(
        self,
        frame: _Frame,
        parent: Node,
        part: OpCount,
        dtype: str,
        shapes: tuple[tuple[int, ...], ...],
        call: OpCall | None,
    ) -> None:
        fqn = frame.module_name
        name = f"{fqn}:{part.primitive}"
        shape_list = [list(s) for s in shapes]
        last = parent.children[-1] if parent.children else None
        if (
            last is not None
            and id(last) in self.functional
            and last.name == name
            and last.kernel == part.kernel
            and last.dtype == dtype
            and last.shapes == shape_list
            and math.isclose(last.flops / last.count, part.flops / part.count, rel_tol=1e-9)
            and math.isclose(last.mem_bytes / last.count, part.bytes / part.count, rel_tol=1e-9)
        ):
            # the next step of a loop of identical calls: one node with a count
            last.count += part.count
            last.flops += part.flops
            last.mem_bytes += part.bytes
            last.ops += _calls(part)
            self._add_work(last, dtype, part.flops + part.bytes)
            return
        params = 0
        if call is not None:
            seen: set[int] = set()
            for t in call.tensors():
                if is_weight(t) and id(t) not in seen:
                    seen.add(id(t))
                    params += int(t.numel())
        child = Node(
            name=name,
            level="ml",
            type=part.primitive or "",
            fqn=fqn,
            flops=part.flops,
            mem_bytes=part.bytes,
            num_parameters=params,
            kernel=part.kernel,
            dtype=dtype,
            count=part.count,
            shapes=shape_list,
            base=part.base or part.primitive or "",
            ops=_calls(part),
        )
        parent.children.append(child)
        self.functional.add(id(child))
        self._add_work(child, dtype, part.flops + part.bytes)

    # -- module hooks -----------------------------------------------------------------------

    def enter(self, module_name: str, module: nn.Module, prim: Primitive | None) -> None:
        top = self.stack[-1]
        if top.primitive:
            self.stack.append(_Frame(None, module_name, primitive=True))
            return
        if prim is not None:
            node = Node(
                name=f"{module_name}:{prim.type}",
                level="ml",
                type=prim.type,
                fqn=module_name,
                base=prim.base,
            )
        else:
            cls = type(module).__name__
            node = Node(name=f"{module_name}:{cls}", level="module", type=cls, fqn=module_name)
        self.frame().node.children.append(node)  # type: ignore[union-attr]
        self.stack.append(
            _Frame(
                node,
                module_name,
                primitive=prim is not None,
                kernel=prim.kernel if prim is not None else "",
            )
        )

    def leave(self) -> None:
        frame = self.stack.pop()
        if frame.node is None:
            return
        node = frame.node
        if frame.primitive:
            best = frame.best
            node.kernel = frame.kernel or (best[1] if best is not None else "")
            if best is not None:
                node.dtype = best[2]
                node.shapes = [list(s) for s in best[3]]
                self._add_work(node, best[2], node.flops + node.mem_bytes)
        parent = self.frame().node
        assert parent is not None
        parent.flops += node.flops
        parent.mem_bytes += node.mem_bytes
        parent.ops += node.ops
        for dtype, amount in self.work.get(id(node), {}).items():
            self._add_work(parent, dtype, amount)

    # -- stand-ins --------------------------------------------------------------------------

    def experts_forward(self, module: nn.Module, fqn: str) -> Callable[..., Any]:
        """A forward for an experts module that computes nothing and charges the routed work
        (:func:`predictor.trace.moe.experts_parts`)."""

        def forward(
            hidden_states: torch.Tensor, top_k_index: torch.Tensor, *args: Any, **kwargs: Any
        ) -> torch.Tensor:
            parts = experts_parts(
                module, fqn, hidden_states, top_k_index, self.routing, self.mode == "native"
            )
            self.last_op = "experts"
            self.charge(parts)
            self.paused += 1
            try:
                return torch.empty_like(hidden_states)
            finally:
                self.paused -= 1

        return forward


def _install_hooks(
    model: nn.Module, tracer: _Tracer, primitives: PrimitiveRegistry
) -> tuple[list[RemovableHandle], list[nn.Module]]:
    handles: list[RemovableHandle] = []
    stood_in: list[nn.Module] = []
    for module_name, module in model.named_modules():
        if module is model or primitives.is_skipped(module):
            continue
        prim = primitives.classify(module)
        if prim is None and is_experts(module):
            module.forward = tracer.experts_forward(module, module_name)
            stood_in.append(module)

        def pre(
            mod: nn.Module, args: Any, name: str = module_name, p: Primitive | None = prim
        ) -> None:
            tracer.enter(name, mod, p)

        def post(mod: nn.Module, args: Any, out: Any) -> None:
            tracer.leave()

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    return handles, stood_in


@contextlib.contextmanager
def _unwrapped(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` with every ``torch.compile`` wrapper below it replaced by its original module
    (restored afterwards): the trace runs the eager code on meta / fake tensors, never a
    compilation, and names carry no ``_orig_mod``."""
    while is_compiled_wrapper(model):
        model = model._orig_mod  # type: ignore[assignment]
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    try:
        stack = [model]
        while stack:
            parent = stack.pop()
            for key, child in list(parent._modules.items()):
                if child is None:
                    continue
                inner = child
                while is_compiled_wrapper(inner):
                    inner = inner._orig_mod  # type: ignore[assignment]
                if inner is not child:
                    swapped.append((parent, key, child))
                    parent._modules[key] = inner
                stack.append(inner)
        yield model
    finally:
        for parent, key, child in reversed(swapped):
            parent._modules[key] = child


def _param_counts(model: nn.Module) -> dict[int, int]:
    """id(module) -> parameters of the module and its submodules, tied weights once."""
    return {id(m): sum(p.numel() for p in m.parameters()) for m in model.modules()}


def _is_meta(model: nn.Module) -> bool:
    tensors = itertools.chain(model.parameters(), model.buffers())
    return any(t.is_meta for t in tensors)


class _Attempt(Exception):
    def __init__(self, failure: _Failure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


def _attempt(
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name: str,
    mode: str,
    execution: str,
    ops: OpRegistry,
    primitives: PrimitiveRegistry,
    routing: Routing,
) -> tuple[Node, _Tracer]:
    root = Node(name=name, level="model", type=type(model).__name__, fqn="")
    tracer: _Tracer | None = None
    try:
        tracer = _Tracer(mode=mode, root=root, ops=ops, routing=routing)
        handles, stood_in = _install_hooks(model, tracer, primitives)
        try:
            with ExitStack() as stack:
                stack.enter_context(torch.no_grad())
                if execution == "fake":
                    from torch._subclasses.fake_tensor import FakeTensorMode

                    stack.enter_context(_quiet_logger("torch._subclasses.fake_tensor"))
                    stack.enter_context(FakeTensorMode(allow_non_fake_inputs=True))
                stack.enter_context(tracer)
                model(*args, **kwargs)
        finally:
            for h in handles:
                h.remove()
            for module in stood_in:
                del module.forward
    except Exception as exc:
        where = ""
        if tracer is not None:
            inner = tracer.stack[-1]
            where = inner.module_name
            if inner.node is not None and inner.node.level != "model":
                where = inner.node.name
        raise _Attempt(
            _Failure(
                module=where,
                op=tracer.last_op if tracer else "",
                in_op=bool(tracer and tracer.in_op),
                error=exc,
            )
        ) from exc
    return root, tracer


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """FakeTensorMode logs a traceback for an op it cannot run; the failure is ours to
    report (as one line, with the module and op), so that log is silenced meanwhile."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in flags:
            m.training = training


def _positions(root: Node, batch: int) -> int | None:
    """The sequence length a model processes, read from its GEMMs: the FLOP-weighted median of
    the rows per batch element of its ``gemm`` ML nodes (tokens for a Linear on (B, S, H),
    output positions for a convolution), or None when it has none. A ViT's is its patches + 1,
    Whisper's its encoder frames, a CNN's its output positions."""
    rows: list[tuple[int, float]] = []
    for node in root.walk():
        if node.level != "ml" or node.kernel != "gemm" or not node.shapes or node.flops <= 0:
            continue
        out = node.shapes[-1]
        if len(out) >= 3 and node.type.startswith("Conv"):
            per_item = math.prod(out[2:])
        elif len(out) >= 2:
            per_item = math.prod(out[:-1]) // max(batch, 1) if batch else math.prod(out[:-1])
        else:
            continue
        if per_item >= 1:
            rows.append((int(per_item), node.flops))
    if not rows:
        return None
    rows.sort()
    half, acc = sum(w for _, w in rows) / 2.0, 0.0
    for value, weight in rows:
        acc += weight
        if acc >= half:
            return value
    return rows[-1][0]


def _dominant(work: dict[str, float] | None) -> str:
    if not work:
        return ""
    return max(sorted(work), key=lambda d: work[d])


def _real_of_meta(t: torch.Tensor) -> torch.Tensor:
    """A meta input as a real one for the real-tensor retry (a meta tensor holds no data to
    copy): zeros of its shape and dtype on the CPU, as the token ids stand for any text."""
    return torch.zeros(t.shape, dtype=t.dtype) if t.is_meta else t


def build_tree(
    model: nn.Module,
    inputs: Inputs = (),
    *,
    name: str | None = None,
    counting_mode: str = "irene",
    batch_size: int | None = None,
    seq_len: int | None = None,
    real_model: Callable[[], nn.Module] | None = None,
    ops: OpRegistry | Mapping[str, OpHandle] | None = None,
    primitives: PrimitiveRegistry | Iterable[type[nn.Module] | str] | None = None,
    routing: RoutingSpec = None,
) -> EnergyTree:
    """Trace ``model`` on example ``inputs`` into an EnergyTree, computing nothing.

    ``inputs``: a tensor (the one positional argument), a tuple or list (positional
    arguments) or a mapping (keyword arguments) of the model's ``forward``; the options here
    are keyword-only and never reach the model. With no tensor among the inputs,
    ``batch_size`` and ``seq_len`` make ``input_ids`` (int64 zeros, ``(batch_size, seq_len)``),
    joined to any keyword inputs given. A model on the meta device runs on meta tensors, any
    other under ``FakeTensorMode``; if that fails the trace is retried on real tensors (for a
    meta model, on the model ``real_model()`` builds, when given). A ``torch.compile``d model
    (or submodule) is traced as its original module, under the same names.

    Every node gets ``batch_size`` and ``seq_len`` (by default the token ids' shape, else the
    sequence the model's GEMMs process: a ViT's patches, Whisper's frames), ``flops`` (MFLOPs),
    ``mem_bytes`` (MiB), ``num_parameters`` (tied weights once) and ``dtype``; ML nodes also
    their ``kernel`` class, operand ``shapes`` and ``count`` (identical consecutive calls, a
    loop's steps, are one node). Ops with no formula are listed in ``tree.unsupported_ops``.

    ``ops`` and ``primitives`` change the registries for this call only: an
    :class:`~predictor.trace.ops.OpRegistry` (e.g. ``default_ops().set_op_handle(...)``) or a
    mapping ``{op name: handle}`` laid over the defaults in every counting mode; a
    :class:`~predictor.trace.primitives.PrimitiveRegistry` or a list of module classes and
    class names added to the default primitives. Each trace works on a copy. ``routing``: how
    a mixture of experts routes tokens (:class:`~predictor.trace.moe.Routing`, a per-expert
    histogram, or ``{fqn glob: histogram}``); default the uniform expectation.

    Raises ModelError when the inputs are of another type or do not fit the model's
    signature, SequenceTooLong (a ModelError) when the sequence is beyond the model's
    positions, and TraceError when the forward fails on fake and on real tensors.
    """
    if counting_mode not in COUNTING_MODES:
        raise ModelError(
            f"counting mode must be one of {', '.join(COUNTING_MODES)} (got {counting_mode!r})"
        )
    if not isinstance(model, nn.Module):
        raise ModelError(f"build_tree needs a torch.nn.Module, got {type(model).__name__}")
    route = resolve_routing(routing)
    with _unwrapped(model) as eager:
        return _build(
            eager,
            inputs,
            name=name,
            counting_mode=counting_mode,
            batch_size=batch_size,
            seq_len=seq_len,
            real_model=real_model,
            op_registry=resolve_ops(ops),
            primitive_registry=resolve_primitives(primitives),
            routing=route,
        )


def _build(
    model: nn.Module,
    inputs: Inputs,
    *,
    name: str | None,
    counting_mode: str,
    batch_size: int | None,
    seq_len: int | None,
    real_model: Callable[[], nn.Module] | None,
    op_registry: OpRegistry,
    primitive_registry: PrimitiveRegistry,
    routing: Routing,
) -> EnergyTree:
    name = name or type(model).__name__
    cls = type(model).__name__
    meta_model = _is_meta(model)

    args, kwargs = split_inputs(inputs, name=name)
    if not args and not any(isinstance(v, torch.Tensor) for v in kwargs.values()):
        if batch_size is None or seq_len is None:
            raise ModelError(
                f"{name}: give example inputs, or batch_size and seq_len to make input_ids"
            )
        if batch_size < 1 or seq_len < 1:
            raise ModelError(
                f"{name}: batch_size and seq_len must be >= 1 (got {batch_size} and {seq_len})"
            )
        device = "meta" if meta_model else "cpu"
        kwargs = {"input_ids": token_ids(batch_size, seq_len, device), **kwargs}
    check_not_empty(args, kwargs, name=name)
    inferred = infer_shape(args, kwargs)
    tokens_given = has_token_ids(args, kwargs)
    batch = batch_size if batch_size is not None else inferred[0]
    seq = seq_len if seq_len is not None else inferred[1]

    positions = max_positions(model)
    if positions is not None and tokens_given and seq > positions[0]:
        raise SequenceTooLong(name, seq, positions[0], positions[1])
    try:
        inspect.signature(model.forward).bind(*args, **kwargs)
    except TypeError as exc:
        raise ModelError(
            f"{name}: the inputs do not fit {cls}.forward{inspect.signature(model.forward)}: {exc}"
        ) from None

    # Meta tensors are the fastest (no dispatch overhead) but code that branches on values
    # fails there; transformers skips such checks under fake tensors ("is_tracing").
    plan = ["meta", "fake", "real"] if meta_model else ["fake", "real"]
    failures: list[tuple[str, _Failure]] = []
    result: tuple[Node, _Tracer] | None = None
    execution = ""
    target = model
    for execution in plan:
        if execution == "real":
            if meta_model:
                if real_model is None:
                    break
                target = real_model()
            run_args = map_tensors(args, _real_of_meta)
            run_kwargs = map_tensors(kwargs, _real_of_meta)
        elif meta_model:
            to_meta = lambda t: t.to("meta")  # noqa: E731  (no data is copied to meta)
            run_args, run_kwargs = map_tensors(args, to_meta), map_tensors(kwargs, to_meta)
        else:
            run_args, run_kwargs = args, kwargs
        try:
            with _eval_mode(target):
                result = _attempt(
                    target,
                    run_args,
                    run_kwargs,
                    name,
                    counting_mode,
                    execution,
                    op_registry,
                    primitive_registry,
                    routing,
                )
            break
        except _Attempt as failed:
            if isinstance(failed.failure.error, ModelError):
                raise failed.failure.error from None  # the caller's input (a routing histogram)
            failures.append((execution, failed.failure))
    if result is None:
        tried = "; ".join(f"on {where} tensors {f.describe()}" for where, f in failures)
        hint = (
            " The model is on the meta device, so it could not be retried on real tensors: "
            "build it with real weights (or pass real_model=)."
            if meta_model and real_model is None
            else ""
        )
        # Making the failing module a primitive would not help: a primitive's forward still
        # runs (only its node is a leaf), so the advice is about the inputs.
        raise TraceError(
            f"{name} ({cls}) failed {tried}.{hint} Check that the inputs fit the model: the "
            "shapes and dtypes the failing module's forward expects"
        )
    root, tracer = result
    model = target
    fallback_reason = "; ".join(
        f"{where} tensors failed {f.describe()}" for where, f in failures if where != "meta"
    )
    if not tokens_given and seq_len is None:
        seq = _positions(root, batch) or seq

    counts = _param_counts(model)
    fqn_module = dict(model.named_modules())
    root.num_parameters = counts[id(model)]
    for node in root.walk():
        node.flops /= MFLOP
        node.mem_bytes /= MIB
        node.batch_size = batch
        node.seq_len = seq
        if node.level != "ml":
            node.dtype = _dominant(tracer.work.get(id(node)))
        if node.level != "model" and id(node) not in tracer.functional:
            module = fqn_module.get(node.fqn)
            node.num_parameters = counts.get(id(module), 0) if module is not None else 0

    unsupported = [
        UnsupportedOp(op=op, module=module or name, count=count)
        for (op, module), count in sorted(tracer.unsupported.items())
    ]
    meta: dict[str, Any] = {
        "model": name,
        "model_class": cls,
        "inputs": describe_inputs(args, kwargs),
        "attn_implementation": getattr(
            getattr(model, "config", None), "_attn_implementation", None
        ),
        "execution": execution,
        "features_version": FEATURES_VERSION,
        "torch": torch.__version__,
    }
    experts = getattr(getattr(model, "config", None), "_experts_implementation", None)
    if experts is not None:
        meta["experts_implementation"] = experts
    if routing.histogram is not None or routing.layers:
        meta["routing"] = {
            "histogram": None if routing.histogram is None else list(routing.histogram),
            "layers": {k: list(v) for k, v in routing.layers.items()},
        }
    if fallback_reason:
        meta["fallback_reason"] = fallback_reason
    if tracer.formula_errors:
        meta["formula_errors"] = dict(tracer.formula_errors)
    return EnergyTree(
        root=root, counting_mode=counting_mode, unsupported_ops=unsupported, meta=meta
    )
