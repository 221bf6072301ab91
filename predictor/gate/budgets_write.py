"""Writing a budgets file: ``irene budgets init`` renders one from predictions plus headroom.

Budgets are rounded *up* to 3 significant digits (:func:`predictor.gate.units.format_budget`),
so a model predicted exactly at today's energy passes with the headroom asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from predictor.errors import ConfigError
from predictor.gate.budgets import BUDGETS_VERSION, DEFAULT_TOLERANCE, ModelBudget
from predictor.gate.checks import glob_to_regex, module_nodes
from predictor.gate.escape import printable
from predictor.gate.generation import BUDGET_QUANTITIES, quantity_label, quantity_value
from predictor.gate.units import format_budget
from predictor.trace.tree import EnergyTree

__all__ = ["render_budgets_yaml", "suggest_module_globs"]


def suggest_module_globs(tree: EnergyTree) -> dict[str, float]:
    """Globs worth budgeting and the largest energy among their matches (joules).

    The root's direct children (``embeddings``, ``encoder``), and each repeated block with its
    index replaced by ``*`` (``encoder.layer.3`` -> ``encoder.layer.*``, ``h.0`` -> ``h.*``).
    """
    out: dict[str, float] = {}
    for fqn, node in module_nodes(tree).items():
        if node.energy_j is None:
            continue
        parts = fqn.split(".")
        patterns = []
        if len(parts) == 1:
            patterns.append(fqn)
        if parts[-1].isdigit():
            patterns.append(".".join([*parts[:-1], "*"]))
        for pattern in patterns:
            out[pattern] = max(out.get(pattern, 0.0), node.energy_j)
    return out


def render_budgets_yaml(
    entries: Iterable[tuple[ModelBudget, EnergyTree]],
    *,
    headroom: float,
    profile: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    extra_globs: Iterable[str] = (),
    scope: str | None = None,
) -> str:
    """An energy_budgets.yaml for predicted models: each budget is the prediction plus
    ``headroom`` (0.1 = 10%), rounded up, and ``headroom`` is written as ``defaults.headroom``
    (what ``--energy-update`` adds). ``extra_globs`` adds module globs to each model with a
    matching module; a glob that matches no module of any model is a ConfigError. ``scope``
    (what the joules describe) goes into the header comment."""
    extra = tuple(extra_globs)
    for pattern in extra:
        try:
            glob_to_regex(pattern)
        except ValueError as exc:
            raise ConfigError(f"--module: {exc}") from None
    used: set[str] = set()
    lines = [
        "# Energy budgets checked by `pytest --energy` (pytest-irene).",
        f"# Written by `irene budgets init` with {headroom * 100:g}% headroom over the predictions.",
    ]
    if scope:
        lines.append(f"# Joules of {printable(scope)}.")
    lines += [
        "# Raise budgets with `pytest --energy --energy-update` (a reviewed change to this file).",
        f"version: {BUDGETS_VERSION}",
    ]
    if profile:
        lines.append(f"profile: {_yaml_str(profile)}")
    lines += [
        "defaults:",
        f"  tolerance: {tolerance * 100:g}%",
        f"  headroom: {headroom * 100:g}%",
        "models:",
    ]
    for entry, tree in entries:
        total = tree.root.energy_j
        if total is None:
            raise ConfigError(f"model {entry.name!r}: the profile predicted no total energy")
        lines.append(f"  {_yaml_str(entry.name)}:")
        if entry.spec != entry.name:
            lines.append(f"    model: {_yaml_str(entry.spec)}")
        if entry.inputs is not None:
            lines.append(f"    inputs: {entry.inputs.yaml()}")
        for key in BUDGET_QUANTITIES:  # a generation: J per output token, per request
            value = quantity_value(tree, key)
            if value is not None:
                lines.append(
                    f"    {key}: {format_budget(value * (1.0 + headroom))}"
                    f"{'':<{max(1, 20 - len(key) - len(format_budget(value * (1.0 + headroom))))}}"
                    f"# J {quantity_label(key)}"
                )
        per_step = (
            "  # one decode step of the batch, serving overhead apart"
            if quantity_value(tree, "per_token")
            else ""
        )
        lines.append(f"    budget: {format_budget(total * (1.0 + headroom))}{per_step}")
        globs = suggest_module_globs(tree)
        modules = module_nodes(tree)
        for pattern in extra:
            regex = glob_to_regex(pattern)
            values = [
                n.energy_j for f, n in modules.items() if regex.match(f) and n.energy_j is not None
            ]
            if values:
                globs[pattern] = max(values)
                used.add(pattern)
        if globs:
            lines.append("    modules:")
            for pattern, value in globs.items():
                lines.append(
                    f"      {_yaml_str(pattern)}: {format_budget(value * (1.0 + headroom))}"
                )
    unused = [p for p in extra if p not in used]
    if unused:
        raise ConfigError(f"module glob {unused[0]!r} matches no module of any model")
    return "\n".join(lines) + "\n"


def _yaml_str(text: str) -> str:
    """Quote a key or value for YAML when it is not a plain safe word."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", text) and text.lower() not in {
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "null",
        "y",
        "n",
    }:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
