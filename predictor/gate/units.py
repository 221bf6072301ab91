"""Energy units: parsing budgets (``"150 mJ"``), printing energies and relative changes.

Joules per unit: ``µJ`` (also ``uJ`` and the Greek ``μJ``), ``mJ``, ``J``, ``kJ``, ``Wh``
(``1 Wh = 3600 J``), ``kWh``. Parsing is case-sensitive on the prefix (``mJ`` is not ``MJ``).

Every energy the package prints goes through :func:`format_energy`: 3 significant digits in
the closest of µJ, mJ, J, kJ, kWh (``171 mJ``, ``16.0 J``, ``1.23 kJ``), so a terminal, a
pull-request comment and a report's picture print the same number the same way.
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
    "kWh": 3.6e6,
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


#: The units energies are printed in, smallest first: (joules per unit, unit).
_PRINT_UNITS: tuple[tuple[float, str], ...] = (
    (1e-6, "µJ"),
    (1e-3, "mJ"),
    (1.0, "J"),
    (1e3, "kJ"),
    (3.6e6, "kWh"),
)


def format_energy(joules: float, digits: int = 3) -> str:
    """Joules -> ``digits`` significant digits (default 3, trailing zeros kept) in the closest
    unit of µJ, mJ, J, kJ, kWh: 0.1712 -> ``'171 mJ'``, 16 -> ``'16.0 J'``, 0 -> ``'0 J'``.

    >>> format_energy(0.1712), format_energy(1234.5), format_energy(1.2e-5)
    ('171 mJ', '1.23 kJ', '12.0 µJ')
    """
    if joules == 0.0 or not math.isfinite(joules):
        return f"{joules:g} J"
    rounded = float(f"{joules:.{digits - 1}e}")  # to `digits` significant digits, then the unit
    scale, unit = _PRINT_UNITS[0]
    for candidate_scale, candidate_unit in _PRINT_UNITS:
        if abs(rounded) >= candidate_scale:
            scale, unit = candidate_scale, candidate_unit
    value = round(rounded / scale, 12)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f} {unit}"


def format_percent(ratio: float) -> str:
    """A relative change: 0.1412 -> ``'+14.1%'``."""
    return f"{ratio * 100:+.1f}%"


def format_energy_pair(value_j: float, limit_j: float) -> tuple[str, str]:
    """Two energies with enough digits that unequal values never print alike."""
    for digits in (3, 4, 6, 8, 12):
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
