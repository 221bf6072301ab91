"""Public specification figures of the GPUs the shipped device profiles describe.

One :class:`DeviceSpec` per device, in :data:`DEVICE_SPECS`: dense peak throughput per
precision (the datasheets' sparsity figures halved), memory bandwidth and capacity, board
power, and the public pages the figures come from. Static power is not a datasheet figure:
it is an estimate (stated as one in each spec's ``assumptions``), which ``irene adapt`` refits
from measurements.

:func:`predictor.devices.physical.PhysicalModel.from_spec` turns a spec into the parameters
of the physical model; ``benchmarks/build_device_profiles.py`` writes the shipped profile
files from these specs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEVICE_SPECS", "PRECISIONS", "DeviceSpec", "device_spec"]

#: Precisions a matrix unit may run, by name in :attr:`DeviceSpec.matrix_tflops`.
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8")

_STATIC_NOTE = (
    "static_power_w is an estimate, not a datasheet figure: the board's draw at its active "
    "clocks while no kernel computes (about 20-25 % of board power on these parts); irene "
    "adapt refits it"
)


@dataclass(frozen=True)
class DeviceSpec:
    """What a datasheet says about one GPU, and where it says it.

    ``matrix_tflops``: dense peak TFLOP/s (1e12) of matrix products per precision; ``fp32`` is
    the non-tensor (CUDA-core FMA) rate PyTorch uses for fp32 matmuls by default, ``tf32`` the
    tensor-core rate it uses when ``allow_tf32`` is set. ``vector_tflops``: fp32 CUDA-core
    peak, the rate of the non-matrix kernels (softmax, norms, elementwise).
    ``memory_bandwidth_gb_s``: GB/s (1e9 bytes). ``board_power_w``: the maximum board power
    (TDP / TBP). ``static_power_w``: estimated, see ``assumptions``.
    """

    name: str
    device: str
    architecture: str
    matrix_tflops: Mapping[str, float]
    vector_tflops: float
    memory_gb: float
    memory_type: str
    memory_bandwidth_gb_s: float
    board_power_w: float
    static_power_w: float
    form_factor: str
    sources: tuple[str, ...]
    assumptions: tuple[str, ...] = (_STATIC_NOTE,)
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        unknown = sorted(set(self.matrix_tflops) - set(PRECISIONS))
        if unknown:
            raise ValueError(f"{self.name}: unknown precision(s) {unknown}; use {PRECISIONS}")
        for key in ("fp32", "bf16", "fp16"):
            if key not in self.matrix_tflops:
                raise ValueError(f"{self.name}: matrix_tflops needs {key!r}")
        if not 0 < self.static_power_w < self.board_power_w:
            raise ValueError(f"{self.name}: need 0 < static_power_w < board_power_w")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "device": self.device,
            "architecture": self.architecture,
            "form_factor": self.form_factor,
            "matrix_tflops_dense": dict(self.matrix_tflops),
            "vector_tflops_fp32": self.vector_tflops,
            "memory_gb": self.memory_gb,
            "memory_type": self.memory_type,
            "memory_bandwidth_gb_s": self.memory_bandwidth_gb_s,
            "board_power_w": self.board_power_w,
            "static_power_w": self.static_power_w,
            "sources": list(self.sources),
            "assumptions": list(self.assumptions),
            "notes": list(self.notes),
        }


_A100_DATASHEET = (
    "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
    "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf"
)
_A100_WHITEPAPER = (
    "https://images.nvidia.com/aem-dam/en-zz/Solutions/data-center/"
    "nvidia-ampere-architecture-whitepaper.pdf"
)
_H100_DATASHEET = "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet"
_H100_WHITEPAPER = "https://resources.nvidia.com/en-us-tensor-core/gtc22-whitepaper-hopper"
_H100_PCIE_BRIEF = (
    "https://www.nvidia.com/content/dam/en-zz/Solutions/gtcs22/data-center/h100/"
    "PB-11133-001_v01.pdf"
)
_SPARSE_HALVED = "tensor-core figures are the datasheet's dense ones (its sparsity figures / 2)"

_A100_TFLOPS = {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0, "int8": 624.0}
_H100_SXM_TFLOPS = {
    "fp32": 66.9,
    "tf32": 494.7,
    "bf16": 989.4,
    "fp16": 989.4,
    "fp8": 1978.9,
    "int8": 1978.9,
}

#: The shipped devices, by profile name.
DEVICE_SPECS: Mapping[str, DeviceSpec] = {
    s.name: s
    for s in (
        DeviceSpec(
            name="irene-a100-sxm4-40gb",
            device="NVIDIA A100-SXM4-40GB",
            architecture="Ampere (GA100), 108 SMs",
            matrix_tflops=_A100_TFLOPS,
            vector_tflops=19.5,
            memory_gb=40.0,
            memory_type="HBM2",
            memory_bandwidth_gb_s=1555.0,
            board_power_w=400.0,
            static_power_w=90.0,
            form_factor="SXM4",
            sources=(_A100_DATASHEET, _A100_WHITEPAPER),
            notes=(_SPARSE_HALVED, "no FP8 tensor cores: fp8 runs at the bf16 rate"),
        ),
        DeviceSpec(
            name="irene-a100-sxm4-80gb",
            device="NVIDIA A100-SXM4-80GB",
            architecture="Ampere (GA100), 108 SMs",
            matrix_tflops=_A100_TFLOPS,
            vector_tflops=19.5,
            memory_gb=80.0,
            memory_type="HBM2e",
            memory_bandwidth_gb_s=2039.0,
            board_power_w=400.0,
            static_power_w=90.0,
            form_factor="SXM4",
            sources=(_A100_DATASHEET, _A100_WHITEPAPER),
            notes=(_SPARSE_HALVED, "no FP8 tensor cores: fp8 runs at the bf16 rate"),
        ),
        DeviceSpec(
            name="irene-h100-sxm",
            device="NVIDIA H100 SXM5 80GB",
            architecture="Hopper (GH100), 132 SMs",
            matrix_tflops=_H100_SXM_TFLOPS,
            vector_tflops=66.9,
            memory_gb=80.0,
            memory_type="HBM3",
            memory_bandwidth_gb_s=3350.0,
            board_power_w=700.0,
            static_power_w=140.0,
            form_factor="SXM5",
            sources=(_H100_DATASHEET, _H100_WHITEPAPER),
            notes=(_SPARSE_HALVED,),
        ),
        DeviceSpec(
            name="irene-h100-pcie",
            device="NVIDIA H100 PCIe 80GB",
            architecture="Hopper (GH100), 114 SMs",
            matrix_tflops={
                "fp32": 51.2,
                "tf32": 378.0,
                "bf16": 756.5,
                "fp16": 756.5,
                "fp8": 1513.0,
                "int8": 1513.0,
            },
            vector_tflops=51.2,
            memory_gb=80.0,
            memory_type="HBM2e",
            memory_bandwidth_gb_s=2000.0,
            board_power_w=350.0,
            static_power_w=80.0,
            form_factor="PCIe Gen5, dual slot",
            sources=(_H100_DATASHEET, _H100_PCIE_BRIEF),
            notes=(_SPARSE_HALVED, "board power 300-350 W configurable; 350 W used"),
        ),
        DeviceSpec(
            name="irene-h200",
            device="NVIDIA H200 SXM 141GB",
            architecture="Hopper (GH100), 132 SMs",
            matrix_tflops=_H100_SXM_TFLOPS,
            vector_tflops=66.9,
            memory_gb=141.0,
            memory_type="HBM3e",
            memory_bandwidth_gb_s=4800.0,
            board_power_w=700.0,
            static_power_w=140.0,
            form_factor="SXM5",
            sources=(
                "https://www.nvidia.com/en-us/data-center/h200/",
                "https://nvdam.widen.net/s/nb5zzzsjdf/hpc-datasheet-sc23-h200-datasheet-3002446",
            ),
            notes=(_SPARSE_HALVED, "compute as H100 SXM; more and faster memory"),
        ),
        DeviceSpec(
            name="irene-l4",
            device="NVIDIA L4 24GB",
            architecture="Ada Lovelace (AD104), 58 SMs",
            matrix_tflops={
                "fp32": 30.3,
                "tf32": 60.0,
                "bf16": 121.0,
                "fp16": 121.0,
                "fp8": 242.5,
                "int8": 242.5,
            },
            vector_tflops=30.3,
            memory_gb=24.0,
            memory_type="GDDR6",
            memory_bandwidth_gb_s=300.0,
            board_power_w=72.0,
            static_power_w=16.0,
            form_factor="PCIe Gen4, single slot, low profile",
            sources=(
                "https://www.nvidia.com/en-us/data-center/l4/",
                "https://nvdam.widen.net/s/rvq98gbwsw/l4-datasheet-2595652",
            ),
            notes=(_SPARSE_HALVED,),
        ),
        DeviceSpec(
            name="irene-l40s",
            device="NVIDIA L40S 48GB",
            architecture="Ada Lovelace (AD102), 142 SMs",
            matrix_tflops={
                "fp32": 91.6,
                "tf32": 183.0,
                "bf16": 366.0,
                "fp16": 366.0,
                "fp8": 733.0,
                "int8": 733.0,
            },
            vector_tflops=91.6,
            memory_gb=48.0,
            memory_type="GDDR6 with ECC",
            memory_bandwidth_gb_s=864.0,
            board_power_w=350.0,
            static_power_w=70.0,
            form_factor="PCIe Gen4, dual slot",
            sources=(
                "https://www.nvidia.com/en-us/data-center/l40s/",
                "https://resources.nvidia.com/en-us-l40s/l40s-datasheet-28413",
            ),
            notes=(_SPARSE_HALVED,),
        ),
        DeviceSpec(
            name="irene-b200",
            device="NVIDIA B200 (HGX B200, per GPU)",
            architecture="Blackwell, 2 dies",
            matrix_tflops={
                "fp32": 75.0,
                "tf32": 1125.0,
                "bf16": 2250.0,
                "fp16": 2250.0,
                "fp8": 4500.0,
                "int8": 4500.0,
            },
            vector_tflops=75.0,
            memory_gb=180.0,
            memory_type="HBM3e",
            memory_bandwidth_gb_s=8000.0,
            board_power_w=1000.0,
            static_power_w=200.0,
            form_factor="SXM (HGX B200 baseboard)",
            sources=(
                "https://www.nvidia.com/en-us/data-center/hgx/",
                "https://www.nvidia.com/en-us/data-center/dgx-b200/",
            ),
            notes=(
                "per-GPU figures: the HGX B200 system's (8 GPUs) divided by 8; " + _SPARSE_HALVED,
                "FP4 (9 PFLOPS dense) is not a precision PyTorch eager runs; not modelled",
            ),
        ),
    )
}


def device_spec(name: str) -> DeviceSpec:
    """The spec of a shipped device profile; KeyError naming the known ones otherwise."""
    try:
        return DEVICE_SPECS[name]
    except KeyError:
        raise KeyError(f"no device spec {name!r}; known: {', '.join(DEVICE_SPECS)}") from None
