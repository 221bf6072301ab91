"""Energy units: parsing budgets (``"150 mJ"``), printing energies and relative changes.

Joules per unit: ``µJ`` (also ``uJ`` and the Greek ``μJ``), ``mJ``, ``J``, ``kJ``, ``Wh``
(``1 Wh = 3600 J``). Parsing is case-sensitive on the prefix (``mJ`` is not ``MJ``).
"""

from __future__ import annotations

import math
import re

__all__ = [
    "ENERGY_UNITS",
    "format_budget",
    "format_energy",
    "format_energy_pair",
    "format_percent",
    "parse_energy",
    "parse_percent",
]

#: Joules per unit.
ENERGY_UNITS: dict[str, float] = {
    "µJ": 1e-6,
    "μJ": 1e-6,
    "uJ": 1e-6,
    "mJ": 1e-3,
    "J": 1.0,
    "kJ": 1e3,
    "Wh": 3600.0,
}

_ENERGY_RE = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-zµμ]+)\s*$")
_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*$")


def parse_energy(text: str) -> float:
    """``"150 mJ"`` -> 0.15 (joules). Raises ValueError with the accepted units."""
    match = _ENERGY_RE.match(text)
    units = ", ".join(u for u in ENERGY_UNITS if u != "μJ")
    if match is None:
        raise ValueError(f"must be an energy like '1.5 J' ({units}) (got {text!r})")
    number, unit = match.groups()
    if unit not in ENERGY_UNITS:
        raise ValueError(f"unknown energy unit {unit!r} in {text!r}; use one of {units}")
    value = float(number) * ENERGY_UNITS[unit]
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a positive energy (got {text!r})")
    return value


def parse_percent(text: str) -> float:
    """``"5%"`` -> 0.05. Raises ValueError."""
    match = _PERCENT_RE.match(text)
    if match is None:
        raise ValueError(f"must be a percentage like '5%' (got {text!r})")
    return float(match.group(1)) / 100.0


def format_energy(joules: float, digits: int = 4) -> str:
    """Joules -> a short human string in the closest unit: 0.1712 -> ``'171.2 mJ'``."""
    magnitude = abs(joules)
    if magnitude >= 1e3:
        value, unit = joules / 1e3, "kJ"
    elif magnitude >= 1.0 or magnitude == 0.0:
        value, unit = joules, "J"
    elif magnitude >= 1e-3:
        value, unit = joules * 1e3, "mJ"
    else:
        value, unit = joules * 1e6, "µJ"
    return f"{value:.{digits}g} {unit}"


def format_percent(ratio: float) -> str:
    """A relative change: 0.1412 -> ``'+14.1%'``."""
    return f"{ratio * 100:+.1f}%"


def format_energy_pair(value_j: float, limit_j: float) -> tuple[str, str]:
    """Two energies with enough digits that unequal values never print alike."""
    for digits in (4, 6, 8, 12):
        a, b = format_energy(value_j, digits), format_energy(limit_j, digits)
        if a != b or value_j == limit_j:
            return a, b
    return format_energy(value_j, 17), format_energy(limit_j, 17)


def format_budget(joules: float) -> str:
    """An energy for a budgets file, rounded *up* to 3 significant digits: ``'13.6 mJ'``.

    Only units the parser accepts are used (J, mJ, kJ)."""
    if joules >= 1e3:
        value, unit = joules / 1e3, "kJ"
    elif joules >= 1.0:
        value, unit = joules, "J"
    else:
        value, unit = joules * 1e3, "mJ"
    if value <= 0:
        raise ValueError(f"a budget must be positive (got {joules!r} J)")
    exponent = math.floor(math.log10(value)) - 2
    step = 10.0**exponent
    rounded = math.ceil(value / step - 1e-9) * step
    decimals = max(0, -exponent)
    return f"{rounded:.{decimals}f} {unit}"
