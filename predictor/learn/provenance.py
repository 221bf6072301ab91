"""What a profile's joules are: their scope (what was metered) and provenance (how known).

A profile states both as small records, ``{"kind": ..., "summary": ...}`` plus details:

- scope (:data:`SCOPES`): ``gpu``, the GPU board only (what NVML reports; a profile from a
  datasheet describes this), ``cpu`` (what RAPL reports), ``system``, the whole machine with
  its idle power (what the IrEne authors' wall-power meter measured), or ``virtual`` (the
  fake meter's modelled device);
- provenance (:data:`PROVENANCE_KINDS`): ``specification`` (public datasheet figures and
  stated assumptions, nothing measured), ``adapted`` (a base profile's device parameters
  refitted on N whole-model measurements: ``irene adapt``), ``measured per node`` (trained on
  per-node measurements: ``irene train``).

:func:`predictor.gate.scope.scope_fields` reads them for every output that prints a joule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ADAPTED",
    "MEASURED",
    "PROVENANCE_KINDS",
    "SCOPES",
    "SPECIFICATION",
    "provenance_record",
    "scope_record",
]

#: Scope kinds -> what the joules include.
SCOPES: Mapping[str, str] = {
    "gpu": "GPU board only, static power included, host not",
    "cpu": "CPU package and DRAM (RAPL), host idle power included",
    "system": "whole system, idle power included",
    "virtual": "a modelled device (the fake meter), not hardware",
}

SPECIFICATION = "specification"
ADAPTED = "adapted"
MEASURED = "measured per node"
PROVENANCE_KINDS: tuple[str, ...] = (SPECIFICATION, ADAPTED, MEASURED)


def scope_record(kind: str, detail: str = "") -> dict[str, str]:
    """``{"kind": kind, "summary": ...}`` for a scope of :data:`SCOPES` (ValueError otherwise);
    ``detail`` is appended to the summary."""
    if kind not in SCOPES:
        raise ValueError(f"unknown scope {kind!r}; use one of {', '.join(SCOPES)}")
    summary = SCOPES[kind] + (f"; {detail}" if detail else "")
    return {"kind": kind, "summary": summary}


def provenance_record(kind: str, summary: str, **details: Any) -> dict[str, Any]:
    """``{"kind": kind, "summary": summary, **details}`` for a kind of
    :data:`PROVENANCE_KINDS` (ValueError otherwise)."""
    if kind not in PROVENANCE_KINDS:
        raise ValueError(f"unknown provenance {kind!r}; use one of {', '.join(PROVENANCE_KINDS)}")
    return {"kind": kind, "summary": summary, **details}
