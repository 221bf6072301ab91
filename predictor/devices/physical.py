"""The physical model of a device profile: each node's time and energy from its work.

Every node of a tree contributes one *work item*: an ML primitive its own FLOPs and bytes, a
module or the model the work of its own ops (its features minus its children's: adds, masks,
activation functions, all memory-bound), a childless module its whole work. A node's energy is
its item's plus its children's, so the tree is consistent by construction (a child never
costs more than its parent) and a node that does work never costs 0 J.

Per item, with ``F`` FLOPs, ``B`` bytes, ``n`` kernel launches (the op calls with work traced in
it, ``Node.ops`` less its children's; where a tree does not record them, ``Node.count`` calls of
the curve's ``launches`` for a primitive and one for a node's own ops), kernel class ``k``
(:data:`predictor.trace.kernels.KERNEL_CLASSES`) and its curve (:class:`KernelCurve`):

- compute time ``t_c = s_ct * F / (peak_p * ce_k)``, ``peak_p`` the matrix unit's dense peak at
  the node's precision ``p`` (from its dtype: fp32, tf32, bf16, fp16, fp8, int8) for GEMMs and
  batched products, the fp32 vector (CUDA-core) peak for every other class;
- memory time ``t_m = s_mt * B / (BW * me_k)``;
- power-cap time ``t_p = s_ct * (e_p F + e_b B) / P_cap``, the dynamic power a board can draw
  (``P_cap`` = board power - static power): a kernel that would draw more runs slower;
- busy time ``t_busy = max(t_c, t_m, t_p) + s_rt * n * ramp_k`` (``ramp_k``: the fixed time of a
  kernel before it streams: fill, drain, the last wave; it makes small kernels run below peak,
  the efficiency curve of the class);
- time ``t = max(t_busy, s_lt * n * launch_s)``: kernels take at least their host dispatch
  (eager PyTorch issues one kernel at a time);
- energy ``E = s_st * P_static * t + s_ce * e_p * F + s_me * e_b * B``: static power while the
  item runs, plus dynamic energy per FLOP (per precision; the vector rate for vector classes)
  and per byte moved.

The ``s_*`` are the seven scales of :data:`SCALES` (1 for a profile from a specification;
``irene adapt`` fits them). Every term grows with ``F`` and ``B``, so predictions are monotone
in the work, hence in batch size and sequence length.

The energies per FLOP and per byte come from the specification (:meth:`PhysicalModel.from_spec`):
a unit running at its peak draws a fixed share of the dynamic power budget,
``e_p = MATRIX_POWER_SHARE * P_cap / peak_p``, ``e_vector = VECTOR_POWER_SHARE * P_cap / peak_fp32``,
``e_b = MEMORY_POWER_SHARE * P_cap / BW``. The curves' efficiencies and ramps are
assumptions from commonly reported achieved fractions of peak (large cuBLAS GEMMs 70-80 %,
streaming kernels 80-90 % of bandwidth, softmax / norms 60-70 %), the same for every device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from predictor.learn.flat import Array, Flat
from predictor.trace.kernels import (
    ACTIVATION,
    BMM,
    COPY,
    ELEMENTWISE,
    EMBEDDING,
    GEMM,
    KERNEL_CLASSES,
    NORM,
    POOL,
    REDUCTION,
    SCAN,
    SOFTMAX,
    kernel_of_type,
)
from predictor.trace.tree import Node

if TYPE_CHECKING:
    from predictor.devices.specs import DeviceSpec

__all__ = [
    "DEFAULT_CURVES",
    "DTYPE_PRECISION",
    "MATRIX",
    "MATRIX_POWER_SHARE",
    "MEMORY_POWER_SHARE",
    "SCALES",
    "VECTOR",
    "VECTOR_POWER_SHARE",
    "KernelCurve",
    "PhysicalModel",
    "WorkItems",
]

MATRIX = "matrix"
VECTOR = "vector"
_UNITS = (MATRIX, VECTOR)

#: Share of the dynamic power budget a matrix unit draws at its dense peak: a GEMM at 70-80 %
#: of peak runs near board power (it is why large GEMMs throttle on H100).
MATRIX_POWER_SHARE = 1.0
#: Share drawn by the fp32 CUDA cores at their peak.
VECTOR_POWER_SHARE = 0.5
#: Share drawn by memory traffic at full bandwidth (DRAM, L2 and the load/store path).
MEMORY_POWER_SHARE = 0.5

#: The seven scales ``irene adapt`` fits (1 = the specification): energy per FLOP, per byte,
#: static power; time per FLOP, per byte, per kernel on the device (ramp) and per launch on
#: the host.
SCALES: tuple[str, ...] = (
    "compute_energy",
    "memory_energy",
    "static_power",
    "compute_time",
    "memory_time",
    "ramp_time",
    "launch_time",
)

#: A node's dtype -> the precision its matrix products run at (``""``: the IrEne datasets'
#: fp32). A float8 dtype on a device without FP8 runs at the bf16 rate (see the spec).
DTYPE_PRECISION: Mapping[str, str] = {
    "": "fp32",
    "float32": "fp32",
    "float64": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "float8_e4m3fn": "fp8",
    "float8_e5m2": "fp8",
    "float8_e4m3fnuz": "fp8",
    "float8_e5m2fnuz": "fp8",
    "int8": "int8",
    "uint8": "int8",
}
#: Precisions a device may lack, and the one it runs instead.
_PRECISION_FALLBACK: Mapping[str, str] = {"tf32": "fp32", "fp8": "bf16", "int8": "fp16"}


@dataclass(frozen=True)
class KernelCurve:
    """How one kernel class runs: on the ``matrix`` or ``vector`` unit, the fraction of peak
    compute (``compute_eff``) and of bandwidth (``memory_eff``) it reaches on large inputs,
    ``ramp_s`` seconds per call before it streams (the efficiency curve: a call of ``F`` FLOPs
    reaches ``F / (F + peak * eff * ramp_s)`` of ``eff``), and the kernels it ``launches`` per
    call where a tree does not record its op calls."""

    unit: str
    compute_eff: float
    memory_eff: float
    ramp_s: float
    launches: float = 1.0

    def __post_init__(self) -> None:
        if self.unit not in _UNITS:
            raise ValueError(f"kernel curve unit must be one of {_UNITS} (got {self.unit!r})")
        if not (0 < self.compute_eff <= 1 and 0 < self.memory_eff <= 1):
            raise ValueError("kernel curve efficiencies must be in (0, 1]")
        if self.ramp_s < 0 or self.launches < 0:
            raise ValueError("kernel curve ramp_s and launches must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "compute_eff": self.compute_eff,
            "memory_eff": self.memory_eff,
            "ramp_s": self.ramp_s,
            "launches": self.launches,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KernelCurve:
        return cls(
            unit=str(data["unit"]),
            compute_eff=float(data["compute_eff"]),
            memory_eff=float(data["memory_eff"]),
            ramp_s=float(data["ramp_s"]),
            launches=float(data["launches"]),
        )


#: Every kernel class's curve (assumptions, the same for every device; see the module doc).
DEFAULT_CURVES: Mapping[str, KernelCurve] = {
    GEMM: KernelCurve(MATRIX, compute_eff=0.75, memory_eff=0.80, ramp_s=3e-6),
    BMM: KernelCurve(MATRIX, compute_eff=0.50, memory_eff=0.70, ramp_s=3e-6),
    SOFTMAX: KernelCurve(VECTOR, compute_eff=0.30, memory_eff=0.65, ramp_s=2e-6),
    NORM: KernelCurve(VECTOR, compute_eff=0.30, memory_eff=0.65, ramp_s=2e-6),
    ACTIVATION: KernelCurve(VECTOR, compute_eff=0.40, memory_eff=0.80, ramp_s=2e-6),
    EMBEDDING: KernelCurve(VECTOR, compute_eff=0.30, memory_eff=0.50, ramp_s=2e-6),
    POOL: KernelCurve(VECTOR, compute_eff=0.30, memory_eff=0.60, ramp_s=2e-6),
    SCAN: KernelCurve(VECTOR, compute_eff=0.20, memory_eff=0.40, ramp_s=5e-6),
    ELEMENTWISE: KernelCurve(VECTOR, compute_eff=0.40, memory_eff=0.80, ramp_s=2e-6),
    REDUCTION: KernelCurve(VECTOR, compute_eff=0.30, memory_eff=0.65, ramp_s=2e-6),
    COPY: KernelCurve(VECTOR, compute_eff=0.40, memory_eff=0.85, ramp_s=2e-6),
}
#: Host dispatch time of one eager PyTorch kernel launch (s): 5-10 us on current CPUs.
DEFAULT_LAUNCH_S = 6e-6


@dataclass
class WorkItems:
    """The work items of a forest (one per node of ``flat``), as arrays: FLOPs, bytes, kernel
    launches, the curve and precision each runs with, whether it does any work, and whether
    its kernel class was guessed (``extrapolated``)."""

    flat: Flat
    flops: Array
    bytes: Array
    kernels: Array
    kernel: list[str]
    precision: list[str]
    works: Any  # bool array
    extrapolated: Any  # bool array
    #: Per item, the model's numbers for its curve and precision: peak FLOP/s, J per FLOP,
    #: compute and memory efficiency, ramp (s per kernel).
    peak: Array
    e_flop: Array
    compute_eff: Array
    memory_eff: Array
    ramp_s: Array


@dataclass
class PhysicalModel:
    """The parameters of the physical model (see the module docstring), all plain numbers.

    FLOP/s, bytes/s, W, s and J per FLOP / per byte; ``scales`` holds :data:`SCALES`.
    ``own_ops_kernel`` is the class a node's own ops run as, ``fallback_kernel`` the class of
    an ML node whose kernel is unknown (it is flagged ``extrapolated``). ``fp32_matmul``:
    ``fp32`` (PyTorch's default, CUDA cores) or ``tf32`` (``allow_tf32``).
    """

    matrix_flops: dict[str, float]
    vector_flops: float
    bandwidth_bytes_s: float
    static_power_w: float
    dynamic_power_cap_w: float
    launch_s: float
    matrix_j_per_flop: dict[str, float]
    vector_j_per_flop: float
    j_per_byte: float
    curves: dict[str, KernelCurve]
    own_ops_kernel: str = ELEMENTWISE
    fallback_kernel: str = ELEMENTWISE
    fp32_matmul: str = "fp32"
    scales: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SCALES, 1.0))

    def __post_init__(self) -> None:
        from predictor.devices.specs import PRECISIONS

        missing = [p for p in PRECISIONS if p not in self.matrix_flops]
        if missing or set(self.matrix_j_per_flop) != set(self.matrix_flops):
            raise ValueError(
                f"physical model: matrix_flops and matrix_j_per_flop need every precision "
                f"({', '.join(PRECISIONS)}); missing {missing or 'energies'}"
            )
        for name in (self.own_ops_kernel, self.fallback_kernel):
            if name not in self.curves:
                raise ValueError(f"physical model: no curve for kernel class {name!r}")
        if self.fp32_matmul not in ("fp32", "tf32"):
            raise ValueError(f"fp32_matmul must be fp32 or tf32 (got {self.fp32_matmul!r})")
        unknown = sorted(set(self.scales) - set(SCALES))
        if unknown:
            raise ValueError(f"physical model: unknown scale(s) {unknown}; use {SCALES}")
        self.scales = {s: float(self.scales.get(s, 1.0)) for s in SCALES}
        numbers = [
            *self.matrix_flops.values(),
            *self.matrix_j_per_flop.values(),
            self.vector_flops,
            self.bandwidth_bytes_s,
            self.static_power_w,
            self.dynamic_power_cap_w,
            self.vector_j_per_flop,
            self.j_per_byte,
            *self.scales.values(),
        ]
        if not all(math.isfinite(v) and v > 0 for v in numbers) or not self.launch_s >= 0:
            raise ValueError("physical model: every rate, power, energy and scale must be > 0")

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_spec(
        cls,
        spec: DeviceSpec,
        *,
        curves: Mapping[str, KernelCurve] | None = None,
        launch_s: float = DEFAULT_LAUNCH_S,
    ) -> PhysicalModel:
        """The model of a specification (every scale 1): peaks, bandwidth and powers from
        ``spec``, energies per FLOP and per byte from the power shares (module docstring)."""
        from predictor.devices.specs import PRECISIONS

        tflops = dict(spec.matrix_tflops)
        for p in PRECISIONS:  # a precision the device lacks runs at its fallback's rate
            q = p
            while q not in tflops:
                q = _PRECISION_FALLBACK[q]
            tflops.setdefault(p, tflops[q])
        cap = spec.board_power_w - spec.static_power_w
        matrix = {p: tflops[p] * 1e12 for p in PRECISIONS}
        vector = spec.vector_tflops * 1e12
        bandwidth = spec.memory_bandwidth_gb_s * 1e9
        return cls(
            matrix_flops=matrix,
            vector_flops=vector,
            bandwidth_bytes_s=bandwidth,
            static_power_w=spec.static_power_w,
            dynamic_power_cap_w=cap,
            launch_s=launch_s,
            matrix_j_per_flop={p: MATRIX_POWER_SHARE * cap / f for p, f in matrix.items()},
            vector_j_per_flop=VECTOR_POWER_SHARE * cap / vector,
            j_per_byte=MEMORY_POWER_SHARE * cap / bandwidth,
            curves=dict(curves if curves is not None else DEFAULT_CURVES),
        )

    def with_scales(self, scales: Mapping[str, float]) -> PhysicalModel:
        """A copy whose scales are these (the others kept)."""
        return replace(self, scales={**self.scales, **{k: float(v) for k, v in scales.items()}})

    # -- work items -----------------------------------------------------------------------------

    def kernel_of(self, node: Node) -> tuple[str, bool]:
        """The curve a node's item runs with and whether that class was guessed."""
        if node.level == "ml":
            kernel = node.kernel or kernel_of_type(node.type)
            if kernel in self.curves:
                return kernel, False
            return self.fallback_kernel, True
        if node.children:
            return self.own_ops_kernel, False
        return self.fallback_kernel, True  # a module traced without primitives below it

    def precision_of(self, node: Node) -> str:
        p = DTYPE_PRECISION.get(node.dtype, "fp32")
        if p == "fp32" and self.fp32_matmul == "tf32":
            return "tf32"
        return p

    def work_items(self, trees: Sequence[Any]) -> WorkItems:
        """The work item of every node of ``trees`` (:class:`~predictor.trace.tree.EnergyTree`)."""
        flat = Flat.of(trees)
        n = len(flat.nodes)
        own_flops = np.asarray([nd.flops for nd in flat.nodes], dtype=np.float64)
        own_bytes = np.asarray([nd.mem_bytes for nd in flat.nodes], dtype=np.float64)
        own_flops = np.maximum(own_flops - flat.child_sum(own_flops), 0.0) * 1e6
        own_bytes = np.maximum(own_bytes - flat.child_sum(own_bytes), 0.0) * float(2**20)
        ops = np.asarray([nd.ops for nd in flat.nodes], dtype=np.float64)
        own_ops = np.maximum(ops - flat.child_sum(ops), 0.0)
        kernels: list[str] = []
        precision: list[str] = []
        extrapolated = np.zeros(n, dtype=bool)
        launched = np.ones(n, dtype=np.float64)
        per_item = np.empty((5, n), dtype=np.float64)
        for i, node in enumerate(flat.nodes):
            kernel, guessed = self.kernel_of(node)
            c = self.curves[kernel]
            p = self.precision_of(node)
            kernels.append(kernel)
            precision.append(p)
            if node.ops > 0:  # traced: the op calls with work are its kernels
                launched[i] = max(own_ops[i], 1.0)
            elif node.level == "ml":
                launched[i] = max(int(node.count), 1) * c.launches
            extrapolated[i] = guessed and node.level == "ml"
            if c.unit == MATRIX:
                peak, e_flop = self.matrix_flops[p], self.matrix_j_per_flop[p]
            else:
                peak, e_flop = self.vector_flops, self.vector_j_per_flop
            per_item[:, i] = (peak, e_flop, c.compute_eff, c.memory_eff, c.ramp_s)
        works = (own_flops > 0) | (own_bytes > 0)
        return WorkItems(
            flat=flat,
            flops=own_flops,
            bytes=own_bytes,
            kernels=launched,
            kernel=kernels,
            precision=precision,
            works=works,
            extrapolated=extrapolated,
            peak=per_item[0],
            e_flop=per_item[1],
            compute_eff=per_item[2],
            memory_eff=per_item[3],
            ramp_s=per_item[4],
        )

    # -- time and energy ------------------------------------------------------------------------

    def evaluate(
        self, items: WorkItems, scales: Mapping[str, float] | None = None
    ) -> tuple[Array, Array]:
        """Per item ``(time_s, energy_j)`` (the module docstring's equations), with ``scales``
        instead of :attr:`scales` when given. ``items`` must come from this model's
        :meth:`work_items` (they carry its rates per item)."""
        s = {**self.scales, **(scales or {})}
        peak, e_flop, ce, me = items.peak, items.e_flop, items.compute_eff, items.memory_eff
        ramp, n = items.ramp_s, items.kernels
        f, b, works = items.flops, items.bytes, items.works
        dyn_base = e_flop * f + self.j_per_byte * b
        t_c = s["compute_time"] * f / (peak * ce)
        t_m = s["memory_time"] * b / (self.bandwidth_bytes_s * me)
        t_p = s["compute_time"] * dyn_base / self.dynamic_power_cap_w
        busy = np.maximum(np.maximum(t_c, t_m), t_p) + s["ramp_time"] * n * ramp
        dispatch = s["launch_time"] * n * self.launch_s
        t = np.where(works, np.maximum(busy, dispatch), 0.0)
        energy = (
            s["static_power"] * self.static_power_w * t
            + s["compute_energy"] * e_flop * f
            + s["memory_energy"] * self.j_per_byte * b
        )
        return t, np.where(works, energy, 0.0)

    def node_totals(self, items: WorkItems, values: Array) -> Array:
        """Per node, the sum of ``values`` (one per item) over its subtree."""
        flat = items.flat
        total = np.array(values, dtype=np.float64)
        for idx in flat.depths_bottom_up():
            kids = flat.children_of(idx)
            np.add.at(total, flat.parent[kids], total[kids])
        return total

    # -- data -----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "matrix_flops": dict(sorted(self.matrix_flops.items())),
            "vector_flops": self.vector_flops,
            "bandwidth_bytes_s": self.bandwidth_bytes_s,
            "static_power_w": self.static_power_w,
            "dynamic_power_cap_w": self.dynamic_power_cap_w,
            "launch_s": self.launch_s,
            "matrix_j_per_flop": dict(sorted(self.matrix_j_per_flop.items())),
            "vector_j_per_flop": self.vector_j_per_flop,
            "j_per_byte": self.j_per_byte,
            "curves": {k: c.to_dict() for k, c in sorted(self.curves.items())},
            "own_ops_kernel": self.own_ops_kernel,
            "fallback_kernel": self.fallback_kernel,
            "fp32_matmul": self.fp32_matmul,
            "scales": dict(self.scales),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PhysicalModel:
        curves = {str(k): KernelCurve.from_dict(v) for k, v in data["curves"].items()}
        unknown = sorted(set(curves) - set(KERNEL_CLASSES))
        if unknown:
            raise ValueError(f"physical model: curves for unknown kernel class(es) {unknown}")
        return cls(
            matrix_flops={str(k): float(v) for k, v in data["matrix_flops"].items()},
            vector_flops=float(data["vector_flops"]),
            bandwidth_bytes_s=float(data["bandwidth_bytes_s"]),
            static_power_w=float(data["static_power_w"]),
            dynamic_power_cap_w=float(data["dynamic_power_cap_w"]),
            launch_s=float(data["launch_s"]),
            matrix_j_per_flop={str(k): float(v) for k, v in data["matrix_j_per_flop"].items()},
            vector_j_per_flop=float(data["vector_j_per_flop"]),
            j_per_byte=float(data["j_per_byte"]),
            curves=curves,
            own_ops_kernel=str(data["own_ops_kernel"]),
            fallback_kernel=str(data["fallback_kernel"]),
            fp32_matmul=str(data["fp32_matmul"]),
            scales={str(k): float(v) for k, v in data["scales"].items()},
        )
