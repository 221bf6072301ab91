"""The model tree: model -> modules -> ML primitives, with features and energies per node.

Every part of the project walks this type: tracing builds it, the data loader reads the IrEne
dataset into it, profiles fill in predicted energy, budgets and reports read it.

Units (as in the IrEne dataset):
- ``flops``: MFLOPs (1e6 floating-point operations, a multiply-add counts 2);
- ``mem_bytes``: MiB (2**20 bytes) read + written;
- energies: joules.

Node names follow IrEne: ``fqn:ClassName`` for modules and leaf-module primitives
(``encoder.layer.0.attention.self:BertSelfAttention``), the enclosing module's fqn for
functional ops (``encoder.layer.0.attention.self:MatMul``, one node per call, so names can
repeat), and the model's name for the root.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, cast

__all__ = [
    "LEVELS",
    "RUNTIME_FEATURES",
    "STATIC_FEATURES",
    "TREE_SCHEMA",
    "UNITS",
    "EnergyTree",
    "Level",
    "Node",
    "UnsupportedOp",
    "prune_unmeasured",
]

Level = Literal["model", "module", "ml"]
LEVELS: tuple[Level, ...] = ("model", "module", "ml")

#: Features a CPU-only runner can compute from the trace.
STATIC_FEATURES: tuple[str, ...] = (
    "batch_size",
    "seq_len",
    "flops",
    "mem_bytes",
    "num_parameters",
    "input_size",
)
#: Features measured on the device while the node runs (IrEne's "resource_utilization").
RUNTIME_FEATURES: tuple[str, ...] = (
    "cpu",
    "mem",
    "gpu",
    "gpu_mem",
    "gpu_clk",
    "gpu_mem_clk",
    "times_mean",
    "gpu_energy_mean",
)

#: Version tag of the serialized form; bump on incompatible changes.
TREE_SCHEMA = "irene-tree/1"

#: The units of the serialized form's numeric keys (written as its ``units`` block, so a reader
#: of the JSON need not know the IrEne dataset's conventions; reading ignores the block).
UNITS: dict[str, str] = {
    "flops": "MFLOPs (1e6 floating-point operations; a multiply-add counts 2)",
    "mem_bytes": "MiB (2**20 bytes) read + written",
    "energy_j": "J",
    "measured_energy_j": "J",
    "num_parameters": "parameters",
    "seq_len": "tokens",
}


@dataclass
class Node:
    """One node of the tree.

    ``energy_j`` is the predicted energy (set by a profile), ``measured_energy_j`` the
    measured one (from a dataset or a meter); either may be ``None`` when unknown, never 0
    as a stand-in. ``extrapolated`` marks a prediction made by a fallback regressor for a
    primitive type the profile never saw.
    """

    name: str
    level: Level
    type: str
    fqn: str = ""
    flops: float = 0.0
    mem_bytes: float = 0.0
    num_parameters: int = 0
    batch_size: int = 0
    seq_len: int = 0
    runtime: dict[str, float] = field(default_factory=dict)
    energy_j: float | None = None
    measured_energy_j: float | None = None
    extrapolated: bool = False
    children: list[Node] = field(default_factory=list)
    #: Kernel class of an ML node (:mod:`predictor.trace.kernels`: ``gemm``, ``bmm``, ``norm``
    #: ...); ``""`` for modules and the model, or when unknown.
    kernel: str = ""
    #: Compute dtype: of the node's costliest op for an ML node, the dtype doing most of the
    #: work (FLOPs + bytes) below a module or the model (``"float32"``, ``"bfloat16"`` ...).
    dtype: str = ""
    #: Identical consecutive calls folded into this node (a loop's steps): ``flops`` and
    #: ``mem_bytes`` are their total, each call costs ``1 / count`` of it.
    count: int = 1
    #: Operand shapes of an ML node's costliest op (inputs and weights, then the output).
    shapes: list[list[int]] = field(default_factory=list)
    #: The primitive type an ML node's class derives from (``Linear`` for ``FalconLinear``,
    #: a routed expert GEMM); regressors without data for ``type`` use it, then ``kernel``.
    base: str = ""
    #: Op calls that did work (FLOPs or bytes) traced in the node, its subtree included: the
    #: kernels it launches in eager mode (a Python GELU of 8 elementwise ops launches 8).
    #: 0 when unknown (trees read from a dataset).
    ops: int = 0

    @property
    def input_size(self) -> int:
        """Tokens in the input: batch_size * seq_len."""
        return self.batch_size * self.seq_len

    @property
    def is_leaf(self) -> bool:
        return not self.children

    @property
    def does_work(self) -> bool:
        """Whether any op ran in the node (FLOPs or bytes above 0): such a node must never be
        predicted 0 J."""
        return self.flops > 0 or self.mem_bytes > 0

    def walk(self) -> Iterator[Node]:
        """Pre-order traversal: this node, then each child's subtree in order."""
        stack: list[Node] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def feature(self, name: str) -> float:
        """A static or runtime feature by name; a missing runtime feature raises KeyError."""
        if name in STATIC_FEATURES:
            return float(getattr(self, name))
        return float(self.runtime[name])

    def static_features(self) -> dict[str, float]:
        return {name: self.feature(name) for name in STATIC_FEATURES}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "level": self.level,
            "type": self.type,
            "fqn": self.fqn,
            "flops": self.flops,
            "mem_bytes": self.mem_bytes,
            "num_parameters": self.num_parameters,
            "batch_size": self.batch_size,
            "seq_len": self.seq_len,
        }
        if self.runtime:
            out["runtime"] = dict(self.runtime)
        if self.energy_j is not None:
            out["energy_j"] = self.energy_j
        if self.measured_energy_j is not None:
            out["measured_energy_j"] = self.measured_energy_j
        if self.extrapolated:
            out["extrapolated"] = True
        if self.kernel:
            out["kernel"] = self.kernel
        if self.dtype:
            out["dtype"] = self.dtype
        if self.count != 1:
            out["count"] = self.count
        if self.shapes:
            out["shapes"] = [list(s) for s in self.shapes]
        if self.base and self.base != self.type:
            out["base"] = self.base
        if self.ops:
            out["ops"] = self.ops
        out["children"] = [child.to_dict() for child in self.children]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Node:
        level = data["level"]
        if level not in LEVELS:
            raise ValueError(
                f"node {data.get('name')!r}: level must be one of {LEVELS}, got {level!r}"
            )
        return cls(
            name=str(data["name"]),
            level=cast(Level, level),
            type=str(data["type"]),
            fqn=str(data.get("fqn", "")),
            flops=float(data.get("flops", 0.0)),
            mem_bytes=float(data.get("mem_bytes", 0.0)),
            num_parameters=int(data.get("num_parameters", 0)),
            batch_size=int(data.get("batch_size", 0)),
            seq_len=int(data.get("seq_len", 0)),
            runtime={k: float(v) for k, v in data.get("runtime", {}).items()},
            energy_j=_opt_float(data.get("energy_j")),
            measured_energy_j=_opt_float(data.get("measured_energy_j")),
            extrapolated=bool(data.get("extrapolated", False)),
            children=[cls.from_dict(child) for child in data.get("children", [])],
            kernel=str(data.get("kernel", "")),
            dtype=str(data.get("dtype", "")),
            count=int(data.get("count", 1)),
            shapes=[[int(d) for d in s] for s in data.get("shapes", [])],
            base=str(data.get("base", "")),
            ops=int(data.get("ops", 0)),
        )


@dataclass(frozen=True)
class UnsupportedOp:
    """An op seen in the trace that has no FLOP/byte formula: listed, never counted as 0."""

    op: str
    module: str
    count: int


@dataclass
class EnergyTree:
    """A model's tree plus how it was built.

    ``counting_mode`` is ``"irene"`` (the dataset's counting rules) or ``"native"`` (what
    actually executes); ``meta`` carries provenance such as the profile that predicted it.
    """

    root: Node
    counting_mode: str = "irene"
    unsupported_ops: list[UnsupportedOp] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        return self.root.name

    @property
    def batch_size(self) -> int:
        return self.root.batch_size

    @property
    def seq_len(self) -> int:
        return self.root.seq_len

    def walk(self) -> Iterator[Node]:
        return self.root.walk()

    def nodes(self, level: Level | None = None) -> list[Node]:
        """All nodes in pre-order, optionally only those of one level."""
        return [n for n in self.walk() if level is None or n.level == level]

    def find(self, name: str) -> list[Node]:
        """Every node called ``name`` (functional-op names can repeat)."""
        return [n for n in self.walk() if n.name == name]

    def extrapolated_j(self) -> float:
        """Predicted energy (J) of the ML nodes a profile's fallback predicted (kernel classes
        it has no training data for); 0 when none or before prediction."""
        return float(sum(n.energy_j or 0.0 for n in self.walk() if n.extrapolated and n.energy_j))

    def extrapolated_share(self) -> float:
        """The fraction (0..1) of the model's predicted energy on extrapolated nodes; 0 before
        prediction."""
        total = self.root.energy_j
        if total is None or not total > 0:
            return 0.0
        return min(self.extrapolated_j() / total, 1.0)

    def dtypes(self) -> list[str]:
        """The compute dtypes of the tree's ML nodes, most work (FLOPs + bytes) first."""
        work: dict[str, float] = {}
        for n in self.walk():
            if n.level == "ml" and n.dtype:
                work[n.dtype] = work.get(n.dtype, 0.0) + n.flops + n.mem_bytes
        return sorted(work, key=lambda d: (-work[d], d))

    def parents(self) -> dict[int, Node]:
        """Map id(node) -> its parent, for every node but the root."""
        out: dict[int, Node] = {}
        for node in self.walk():
            for child in node.children:
                out[id(child)] = node
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": TREE_SCHEMA,
            "units": dict(UNITS),
            "counting_mode": self.counting_mode,
            "unsupported_ops": [
                {"op": u.op, "module": u.module, "count": u.count} for u in self.unsupported_ops
            ],
            "meta": self.meta,
            "root": self.root.to_dict(),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnergyTree:
        schema = data.get("schema")
        if schema != TREE_SCHEMA:
            raise ValueError(
                f"tree schema {schema!r} is not supported (expected {TREE_SCHEMA!r}); "
                "re-create the tree with this version of pytest-irene"
            )
        return cls(
            root=Node.from_dict(data["root"]),
            counting_mode=str(data.get("counting_mode", "irene")),
            unsupported_ops=[
                UnsupportedOp(str(u["op"]), str(u["module"]), int(u["count"]))
                for u in data.get("unsupported_ops", [])
            ],
            meta=dict(data.get("meta", {})),
        )


def _opt_float(value: Any) -> float | None:
    if value is None:
        return None
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"energy must be a finite number, got {value!r}")
    return out


def prune_unmeasured(node: Node) -> None:
    """Drop the nodes below ``node`` that have no measured energy; an unmeasured node's
    children join its parent (a measured tree keeps the structure of what was metered)."""
    kept: list[Node] = []
    for child in node.children:
        prune_unmeasured(child)
        if child.measured_energy_j is not None:
            kept.append(child)
        else:
            kept.extend(child.children)
    node.children = kept
