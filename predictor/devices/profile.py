"""A device profile: a GPU predicted by the physical model of its specification.

A :class:`DeviceProfile` holds a :class:`~predictor.devices.physical.PhysicalModel` (plain
numbers), the specification it came from with its sources, its scope (``gpu``) and its
provenance (``specification``, or ``adapted`` after ``irene adapt``). It predicts any traced
tree at the dtype each node runs in (native counting: what executes, weights read once,
bytes at each tensor's element size). It is saved in the same checksummed, code-free container
as a trained profile (:mod:`predictor.learn.profile_file`), with ``"kind": "device"``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from predictor.devices.physical import PhysicalModel
from predictor.devices.specs import DeviceSpec, device_spec
from predictor.learn.profile_file import FORMAT_VERSION, payload_digest, write_profile_file
from predictor.learn.provenance import SPECIFICATION, provenance_record, scope_record
from predictor.trace.tree import EnergyTree

__all__ = ["DEVICE_KIND", "DTYPES_NOTE", "DeviceProfile", "device_profile"]

DEVICE_KIND = "device"
#: The dtypes a device profile predicts: each node's own.
DTYPES_NOTE = "each node's own (fp32, tf32 with allow_tf32, bf16, fp16, fp8)"


@dataclass
class DeviceProfile:
    """A profile whose primitives are predicted by a physical model (see the module doc).

    Quacks like :class:`~predictor.learn.profile.Profile` where the gate and the CLI use one:
    ``name``, ``feature_set`` (static), ``counting_mode`` (native), ``predict``, ``summary``,
    ``payload``, ``sha256``, ``save``.
    """

    name: str
    physical: PhysicalModel
    description: str = ""
    hardware: dict[str, Any] = field(default_factory=dict)
    scope: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    dtype: str = DTYPES_NOTE
    training_data: dict[str, Any] = field(default_factory=dict)
    cv_error: dict[str, Any] = field(default_factory=dict)
    library_versions: dict[str, str] = field(default_factory=dict)
    version: int = FORMAT_VERSION
    path: Path | None = None
    kind: str = DEVICE_KIND
    feature_set: str = "static"
    counting_mode: str = "native"
    runtime_columns: tuple[str, ...] = ()

    # -- prediction ---------------------------------------------------------------------------

    def check_tree(self, tree: EnergyTree) -> None:
        """Any traced tree can be predicted (static features only)."""
        del tree

    def predict(self, tree: EnergyTree) -> EnergyTree:
        """Fill ``energy_j`` (J) on every node, in place; nodes whose kernel class is unknown are
        predicted as the fallback class and flagged ``extrapolated``. The root's predicted
        latency (s) goes to ``tree.meta["predicted_time_s"]``."""
        items = self.physical.work_items([tree])
        time_s, energy_j = self.physical.evaluate(items)
        energy = self.physical.node_totals(items, energy_j)
        total_time = self.physical.node_totals(items, time_s)
        # A child's extrapolated work is in its parents' energy, which are not themselves
        # extrapolated (the gate reports the share of extrapolated work separately).
        for node, e, ext in zip(
            items.flat.nodes, energy.tolist(), items.extrapolated.tolist(), strict=True
        ):
            node.energy_j = float(e)
            node.extrapolated = bool(ext)
        if tree.counting_mode != self.counting_mode:
            tree.meta["profile_warning"] = (
                f"tree counted in {tree.counting_mode!r} mode; device profile {self.name!r} "
                f"predicts {self.counting_mode!r} features (what executes)"
            )
        tree.meta["profile"] = self.summary()
        tree.meta["predicted_time_s"] = float(total_time[0])
        return tree

    def predict_time(self, tree: EnergyTree) -> float:
        """The predicted latency (s) of one forward of ``tree``."""
        items = self.physical.work_items([tree])
        time_s, _ = self.physical.evaluate(items)
        return float(np.sum(time_s))

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "feature_set": self.feature_set,
            "counting_mode": self.counting_mode,
            "version": self.version,
            "description": self.description,
            "device": self.hardware.get("device", ""),
            "scope": self.scope.get("summary", ""),
            "provenance": self.provenance.get("summary", ""),
            "dtype": self.dtype,
            "cv_error": self.cv_error,
            "known_types": sorted(self.physical.curves),
            "unseen_types_fallback": (
                f"kernel class {self.physical.fallback_kernel!r}; such nodes are flagged "
                "extrapolated"
            ),
            "scales": dict(self.physical.scales),
        }

    # -- persistence --------------------------------------------------------------------------

    def payload(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "feature_set": self.feature_set,
            "counting_mode": self.counting_mode,
            "description": self.description,
            "hardware": self.hardware,
            "scope": self.scope,
            "provenance": self.provenance,
            "dtype": self.dtype,
            "training_data": self.training_data,
            "cv_error": self.cv_error,
            "library_versions": self.library_versions,
            "physical": self.physical.to_dict(),
        }

    def payload_text(self) -> str:
        return json.dumps(self.payload(), sort_keys=True, allow_nan=False)

    @property
    def sha256(self) -> str:
        return payload_digest(self.payload_text())

    def save(self, path: str | os.PathLike[str]) -> Path:
        return write_profile_file(Path(path), self.payload_text())

    @classmethod
    def from_payload(cls, data: dict[str, Any], path: Path | None = None) -> DeviceProfile:
        if data.get("kind") != DEVICE_KIND:
            raise ValueError(f"not a device profile (kind {data.get('kind')!r})")
        if data["counting_mode"] != "native" or data["feature_set"] != "static":
            raise ValueError("a device profile predicts static features in native counting")
        return cls(
            name=str(data["name"]),
            physical=PhysicalModel.from_dict(data["physical"]),
            description=str(data.get("description", "")),
            hardware=dict(data.get("hardware", {})),
            scope=dict(data["scope"]),
            provenance=dict(data["provenance"]),
            dtype=str(data.get("dtype", DTYPES_NOTE)),
            training_data=dict(data.get("training_data", {})),
            cv_error=dict(data.get("cv_error", {})),
            library_versions={str(k): str(v) for k, v in data.get("library_versions", {}).items()},
            path=path,
        )


def _spec_description(spec: DeviceSpec) -> str:
    t = spec.matrix_tflops
    fp8 = f", fp8 {t['fp8']:g}" if "fp8" in t else ""
    return (
        f"{spec.device} from its public specification: dense matrix TFLOP/s fp32 {t['fp32']:g}, "
        f"tf32 {t.get('tf32', t['fp32']):g}, bf16 {t['bf16']:g}{fp8}; "
        f"{spec.memory_bandwidth_gb_s:g} GB/s {spec.memory_type}; {spec.board_power_w:g} W board "
        f"power, {spec.static_power_w:g} W static (estimated). Physical model: roofline time "
        "per kernel class with efficiency curves and launch overhead, static + dynamic energy, "
        "capped by board power. GPU only; not measured."
    )


def device_profile(spec: str | DeviceSpec) -> DeviceProfile:
    """The specification profile of a device (a :data:`DEVICE_SPECS` name or a spec)."""
    s = device_spec(spec) if isinstance(spec, str) else spec
    # No library versions: nothing in a specification profile depends on them, so the
    # shipped files are rebuilt byte for byte on any machine.
    return DeviceProfile(
        name=s.name,
        physical=PhysicalModel.from_spec(s),
        description=_spec_description(s),
        hardware={"device": s.device, "spec": s.to_dict(), "source": "specification"},
        scope=scope_record("gpu", "as NVML reports board power"),
        provenance=provenance_record(
            SPECIFICATION,
            "specification: datasheet figures; kernel efficiencies and static power assumed",
            sources=list(s.sources),
        ),
    )
