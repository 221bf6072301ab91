"""Training cost: time to train each profile on all of device_1, profile size, prediction time.

    python benchmarks/bench_training.py [DATA]      # default ../shared/irene-data/device_1

Each step is timed with ``time.perf_counter`` (best of ``--repeat``); peak RSS is this
process's (``resource.getrusage``). Writes benchmarks/results/training.json and training.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from predictor.learn.data import attach_num_parameters, load_dataset  # noqa: E402
from predictor.learn.profile import Settings, load_profile, train_profile  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _best(fn: Any, repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "data", nargs="?", default=str(REPO.parent / "shared" / "irene-data" / "device_1")
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    load_s, ds = _best(lambda: load_dataset(args.data), args.repeat)
    attach_s, _ = _best(lambda: attach_num_parameters(ds.trees), 1)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, features, settings in (
            ("ours", "static", Settings.default("static")),
            ("ours", "full", Settings.default("full")),
            ("irene", "static", Settings.irene()),
            ("irene", "full", Settings.irene()),
        ):
            secs, profile = _best(
                lambda f=features, s=settings: train_profile(ds, f, "bench", settings=s),
                args.repeat,
            )
            path = profile.save(Path(tmp) / f"{label}-{features}.irene.joblib")
            load_s_p, _ = _best(lambda p=path: load_profile(p), args.repeat)
            rows.append(
                {
                    "method": label,
                    "features": features,
                    "train_s": secs,
                    "file_bytes": path.stat().st_size,
                    "load_s": load_s_p,
                }
            )
            print(rows[-1], flush=True)

    # Prediction time of the shipped static profile on traced zoo trees (trace not included).
    from predictor.trace.zoo import build_zoo_tree

    profile = load_profile()
    predict: list[dict[str, Any]] = []
    for model, b, s in (("bert-base-uncased", 8, 128), ("gpt2", 8, 128), ("llama-2-7b", 1, 2048)):
        tree = build_zoo_tree(model, b, s)
        secs, _ = _best(lambda t=tree: profile.predict(t), args.repeat)
        predict.append(
            {
                "model": model,
                "batch_size": b,
                "seq_len": s,
                "nodes": len(tree.nodes()),
                "predict_s": secs,
            }
        )
        print(predict[-1], flush=True)

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    env = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    result = {
        "environment": env,
        "dataset": {"trees": len(ds.trees), "load_s": load_s, "attach_num_parameters_s": attach_s},
        "training": rows,
        "prediction": predict,
        "peak_rss_mib": peak,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    _write(RESULTS / "training.json", json.dumps(result, indent=2) + "\n")
    md = [
        "# Training cost",
        "",
        f"Produced by `python benchmarks/bench_training.py` (best of {args.repeat}; {env['cpus']} CPUs "
        "shared with other jobs). Training uses every tree of device_1 "
        f"({len(ds.trees)} trees); loading the CSVs takes {load_s:.2f} s, filling num_parameters "
        f"from the zoo {attach_s:.1f} s (once). Peak RSS of the whole run: {peak:.0f} MiB.",
        "",
        "| method | features | train s | profile file bytes | load s |",
        "|---|---|---|---|---|",
        *(
            f"| {r['method']} | {r['features']} | {r['train_s']:.2f} | {r['file_bytes']} | {r['load_s']:.4f} |"
            for r in rows
        ),
        "",
        "Prediction with the shipped static profile (tree already traced):",
        "",
        "| model | batch | seq | nodes | predict s |",
        "|---|---|---|---|---|",
        *(
            f"| {p['model']} | {p['batch_size']} | {p['seq_len']} | {p['nodes']} | {p['predict_s']:.4f} |"
            for p in predict
        ),
        "",
    ]
    _write(RESULTS / "training.md", "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
