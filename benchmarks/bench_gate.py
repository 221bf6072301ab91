"""Wall time of the energy gate on this repo's own budgets: the README's main command.

Goal (issue 4): ``pytest --energy`` on the bundled example models takes <= 15 s for the whole
process on 2 cores. Each run is a fresh process (imports, profile load, tracing, prediction,
checks, reports), timed from outside; the figure is the median of ``--repeat`` runs, the worst
is reported too. Also timed: ``--collect-only`` (imports + profile load, no tracing) and the
same gate under ``-n 2`` (pytest-xdist).

    python benchmarks/bench_gate.py [--repeat 3] [--out benchmarks/results]

writes gate.json and gate.md (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
GOAL_S = 15.0

#: The README's main command (run from the repo root).
GATE = [sys.executable, "-m", "pytest", "--energy", "-p", "no:cacheprovider", "energy_budgets.yaml"]
CASES: dict[str, list[str]] = {
    "gate": GATE,
    "gate -n 2": [*GATE, "-n", "2"],
    "collect only": [*GATE, "--collect-only", "-q"],
}


def _time(command: list[str]) -> tuple[float, int, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done.returncode, done.stdout[-2000:] + done.stderr[-2000:]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def _models() -> list[str]:
    sys.path.insert(0, str(REPO))
    from predictor.gate.budgets import iter_collected, load_budgets

    budgets = load_budgets(REPO / "energy_budgets.yaml")
    return [
        f"{m.name} ({m.spec}, b{m.inputs.batch_size} s{m.inputs.seq_len})"
        for m in iter_collected(budgets)
        if m.inputs is not None
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()

    results: dict[str, Any] = {}
    load_before = os.getloadavg()
    for name, command in CASES.items():
        times: list[float] = []
        for _ in range(args.repeat):
            seconds, code, tail = _time(command)
            if code != 0:
                print(f"{name}: exit {code}\n{tail}", file=sys.stderr)
                return 1
            times.append(seconds)
        results[name] = {
            "command": " ".join(["python", *command[1:]]),
            "runs_s": [round(t, 3) for t in times],
            "median_s": round(statistics.median(times), 3),
            "max_s": round(max(times), 3),
        }
        print(f"{name}: median {results[name]['median_s']} s, runs {results[name]['runs_s']}")
    gate = results["gate"]
    data = {
        "goal_s": GOAL_S,
        "met": gate["max_s"] <= GOAL_S,
        "cases": results,
        "models": _models(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        "commit": _git_commit(),
        "note": "wall time of a fresh process each run, measured from outside, "
        "on a machine shared with other jobs",
    }
    _write(args.out / "gate.json", json.dumps(data, indent=2) + "\n")
    rows = "\n".join(
        f"| `{r['command']}` | {r['median_s']:.2f} | {r['max_s']:.2f} | {r['runs_s']} |"
        for r in results.values()
    )
    _write(
        args.out / "gate.md",
        "# Energy gate wall time\n\n"
        f"Goal: the whole `pytest --energy` process <= {GOAL_S:g} s on 2 cores; "
        f"met: **{data['met']}** (worst gate run {gate['max_s']:.2f} s).\n\n"
        f"Machine: {data['machine']['cpus']} CPUs, {data['machine']['platform']}; "
        f"commit {data['commit']}; 1-minute load average {load_before[0]:.1f} before, "
        f"{data['load_average_1m']['after']:.1f} after (other jobs shared the cores).\n\n"
        f"Models: {', '.join(data['models'])}.\n\n"
        "| command | median (s) | worst (s) | runs (s) |\n|---|---:|---:|---|\n"
        f"{rows}\n",
    )
    return 0 if data["met"] else 2


if __name__ == "__main__":
    sys.exit(main())
