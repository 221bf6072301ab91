"""Host CPU utilisation and memory use from ``/proc`` (Linux), for a meter window's features.

IrEne's ``cpu`` and ``mem`` runtime features are the host's CPU utilisation and memory use in
percent while the node runs. Where ``/proc`` is absent (not Linux) they are simply not reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["HostSnapshot", "host_features", "take_host_snapshot"]


@dataclass(frozen=True)
class HostSnapshot:
    """Cumulative CPU jiffies (busy, total) and memory used (%) at one instant."""

    busy: int | None
    total: int | None
    mem_used_pct: float | None


def take_host_snapshot(proc_root: str | Path = "/proc") -> HostSnapshot:
    root = Path(proc_root)
    busy = total = None
    try:
        first = (root / "stat").read_text().splitlines()[0].split()
        if first and first[0] == "cpu":
            ticks = [int(x) for x in first[1:]]
            # user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
            ticks = ticks[:8]
            idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
            total = sum(ticks)
            busy = total - idle
    except (OSError, IndexError, ValueError):
        pass
    mem = None
    try:
        info: dict[str, int] = {}
        for line in (root / "meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts:
                info[key] = int(parts[0])
        if info.get("MemTotal") and "MemAvailable" in info:
            mem = 100.0 * (1.0 - info["MemAvailable"] / info["MemTotal"])
    except (OSError, ValueError):
        pass
    return HostSnapshot(busy=busy, total=total, mem_used_pct=mem)


def host_features(a: HostSnapshot, b: HostSnapshot) -> dict[str, float]:
    """``cpu_util_pct`` between two snapshots and ``mem_used_pct`` at the second one."""
    out: dict[str, float] = {}
    if a.busy is not None and b.busy is not None and a.total is not None and b.total is not None:
        dt = b.total - a.total
        if dt > 0:
            out["cpu_util_pct"] = 100.0 * (b.busy - a.busy) / dt
    if b.mem_used_pct is not None:
        out["mem_used_pct"] = b.mem_used_pct
    return out
