"""What a joule describes: the profile that predicted it, the device, the scope, the provenance.

A predicted joule is a joule of one device as its training data measured it: the IrEne device
profiles were measured on a GPU workstation as a whole (GPU, CPU, memory, idle power included),
a profile built from a datasheet would describe the GPU alone. Every output that prints a joule
says which (:func:`energy_scope` -> :meth:`EnergyScope.line`).

A profile may state its ``scope`` and ``provenance`` (as attributes, or in its ``hardware``
metadata); where it does not, they are inferred: a profile trained on the IrEne authors' data
measured the whole system per node; anything else says ``not recorded`` rather than guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["EnergyScope", "energy_scope", "scope_fields"]

#: The scope of the IrEne device profiles: the authors measured the whole machine.
IRENE_SCOPE = "whole system, idle power included"
NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class EnergyScope:
    """Which profile predicted, for which ``device``, measuring what (``scope``: the GPU only,
    or the whole system), known how (``provenance``: measured per node, from a specification,
    adapted from measurements)."""

    profile: str
    device: str
    scope: str
    provenance: str

    def line(self) -> str:
        """``profile 'irene-device-1': IrEne device_1, whole system, idle power included;
        measured per node (Cao et al., ACL 2021)``."""
        return f"profile {self.profile!r}: {self.device}, {self.scope}; {self.provenance}"

    def to_dict(self) -> dict[str, str]:
        return {
            "profile": self.profile,
            "device": self.device,
            "scope": self.scope,
            "provenance": self.provenance,
        }


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, Mapping):  # a structured record (predictor.learn.provenance): its words
        for key in ("summary", "kind", "name"):
            if isinstance(value.get(key), str):
                return str(value[key])
    return None


def _kind(value: Any) -> str | None:
    """The ``kind`` of a structured scope / provenance record, else None."""
    if isinstance(value, Mapping) and isinstance(value.get("kind"), str):
        return str(value["kind"])
    return None


def scope_fields(profile: Any) -> dict[str, str]:
    """``device``, ``scope`` and ``provenance`` of a profile (explicit fields first, then its
    hardware metadata, then what its training data implies), in words; with
    ``scope_kind`` (``gpu`` / ``system``), ``provenance_kind`` (``specification`` /
    ``adapted`` / ``measured per node``) and ``dtype`` where the profile records them."""
    hardware = getattr(profile, "hardware", None) or {}
    training = getattr(profile, "training_data", None) or {}
    source = " ".join(
        str(x) for x in (hardware.get("source"), training.get("source"), profile_name(profile))
    )
    irene = "Cao et al" in source or "irene-data" in source
    device = _text(getattr(profile, "device", None)) or _text(hardware.get("device"))
    scope_rec = getattr(profile, "scope", None) or hardware.get("scope")
    provenance_rec = getattr(profile, "provenance", None) or hardware.get("provenance")
    scope = _text(scope_rec)
    provenance = _text(provenance_rec)
    if provenance is None and training.get("ml_rows"):
        origin = hardware.get("source") or training.get("source") or "its training data"
        provenance = f"trained on per-node measurements ({origin})"
    out = {
        "device": device or NOT_RECORDED,
        "scope": scope or (IRENE_SCOPE if irene else NOT_RECORDED),
        "provenance": provenance or NOT_RECORDED,
    }
    scope_kind = _kind(scope_rec) or ("system" if irene and scope is None else None)
    provenance_kind = _kind(provenance_rec)
    dtype = _text(hardware.get("dtype")) or _text(getattr(profile, "dtype", None))
    for key, value in (
        ("scope_kind", scope_kind),
        ("provenance_kind", provenance_kind),
        ("dtype", dtype),
    ):
        if value is not None:
            out[key] = value
    return out


def profile_name(profile: Any) -> str:
    return str(getattr(profile, "name", "") or "")


def energy_scope(identity: Mapping[str, Any] | None) -> EnergyScope:
    """The scope recorded in a report's profile identity
    (:func:`predictor.gate.report.profile_identity`); reports written before these fields
    existed give ``not recorded`` (an IrEne device profile's scope where its name says so)."""
    identity = identity or {}
    name = str(identity.get("name") or "unknown")
    irene_default = IRENE_SCOPE if name.startswith("irene-device-") else NOT_RECORDED
    return EnergyScope(
        profile=name,
        device=_text(identity.get("device")) or NOT_RECORDED,
        scope=_text(identity.get("scope")) or irene_default,
        provenance=_text(identity.get("provenance")) or NOT_RECORDED,
    )
