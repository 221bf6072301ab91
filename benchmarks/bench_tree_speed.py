"""Speed and memory of tree building, each case in a fresh subprocess.

Goals (issue 2): bert-base-uncased at batch 8, seq 128 in <= 0.3 s in process; llama-2-7b at
batch 1, seq 2048 in <= 1 s with peak RSS <= 600 MB, and no parameter storage allocated.

For each case a fresh ``python`` imports the library, then times ``build_zoo_tree`` (model
built from its config on the meta device + trace): the first call (cold: lazy imports of the
model's transformers module) and the median of ``--repeat`` further calls (warm, in process).
It reports the process's peak RSS (``ru_maxrss``), the bytes of parameter storage that are not
on the meta device, and RSS before/after building the model.

    python benchmarks/bench_tree_speed.py [--repeat 5] [--out benchmarks/results]

writes tree_speed.json (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

CASES: tuple[dict[str, Any], ...] = (
    {
        "model": "bert-base-uncased",
        "batch_size": 8,
        "seq_len": 128,
        "goal_s": 0.3,
        "goal_rss_mb": None,
    },
    {"model": "llama-2-7b", "batch_size": 1, "seq_len": 2048, "goal_s": 1.0, "goal_rss_mb": 600},
)

_CHILD = r"""
import json, os, resource, statistics, sys, time
sys.path.insert(0, sys.argv[1])
os.environ["HF_HUB_OFFLINE"] = "1"
case = json.loads(sys.argv[2]); repeat = int(sys.argv[3])

def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

t0 = time.perf_counter()
import torch
from predictor.trace.zoo import build_model, build_zoo_tree
import_s = time.perf_counter() - t0

before = rss_mb()
model = build_model(case["model"])
after_model = rss_mb()
params = list(model.parameters())
storage = sum(p.numel() * p.element_size() for p in params if not p.is_meta)
meta_params = sum(1 for p in params if p.is_meta)
n_params = sum(p.numel() for p in params)
del model, params

t = time.perf_counter()
tree = build_zoo_tree(case["model"], case["batch_size"], case["seq_len"])
first_s = time.perf_counter() - t
warm = []
for _ in range(repeat):
    t = time.perf_counter()
    tree = build_zoo_tree(case["model"], case["batch_size"], case["seq_len"])
    warm.append(time.perf_counter() - t)
print(json.dumps({
    "import_s": import_s,
    "first_call_s": first_s,
    "warm_median_s": statistics.median(warm) if warm else None,
    "warm_min_s": min(warm) if warm else None,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rss_before_model_mb": before,
    "rss_after_model_mb": after_model,
    "parameters": n_params,
    "parameters_on_meta": meta_params,
    "parameter_storage_bytes": storage,
    "nodes": sum(1 for _ in tree.walk()),
    "model_mflops": tree.root.flops,
    "execution": tree.meta["execution"],
    "unsupported_ops": len(tree.unsupported_ops),
}))
"""


def run_case(case: dict[str, Any], repeat: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(REPO), json.dumps(case), str(repeat)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    if proc.returncode != 0:
        raise SystemExit(f"{case['model']}: child failed ({proc.returncode}):\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(case)
    result["meets_time_goal_warm"] = result["warm_median_s"] <= case["goal_s"]
    result["meets_time_goal_first_call"] = result["first_call_s"] <= case["goal_s"]
    if case["goal_rss_mb"] is not None:
        result["meets_rss_goal"] = result["peak_rss_mb"] <= case["goal_rss_mb"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    import torch
    import transformers

    results = [run_case(case, args.repeat) for case in CASES]
    report = {
        "command": "python benchmarks/bench_tree_speed.py",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "cases": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.out, prefix="tree_speed.json", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, args.out / "tree_speed.json")
    for r in results:
        rss = f", peak RSS {r['peak_rss_mb']:.0f} MB" if r["goal_rss_mb"] else ""
        print(
            f"{r['model']} b{r['batch_size']} s{r['seq_len']}: first call {r['first_call_s']:.3f} s, "
            f"warm median {r['warm_median_s']:.3f} s (goal {r['goal_s']} s){rss}, "
            f"parameter storage {r['parameter_storage_bytes']} B, {r['nodes']} nodes"
        )
    ok = all(r["meets_time_goal_warm"] and r.get("meets_rss_goal", True) for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
