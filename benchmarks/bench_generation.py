"""Generation benchmark: the A100 and H100 device profiles fitted on ML.ENERGY v2, leave one
model out.

    python benchmarks/bench_generation.py [DATA]   # default ../shared/energy-data/mlenergy-v2

Data: ML.ENERGY Leaderboard v2 (Apache-2.0, "ML.ENERGY Leaderboard v2"): GPU energy per request
of LLMs served by vLLM 0.5.4 in bf16 (see that folder's README). Only the single-GPU chat rows
are predicted; rows with tensor parallelism > 1 and the code task are counted apart.

1. Each row becomes a generation workload, chosen on physical grounds before any fit:
   ``batch_size`` = the batch vLLM reached (``avg_batch``, rounded), ``new_tokens`` = the
   model's mean output length, ``prompt_len`` = 120 tokens (the README: ShareGPT first turns
   of mean 350 characters, ~90 tokens at ~4 characters per token, plus a chat template and a
   one-line system prompt), ``prefill_batch`` = 1 (continuous batching admits each request as
   another finishes, so each prompt is its own prefill pass). The measured energy of the batch
   is ``energy_per_request_j x batch``, its wall time ``new_tokens x batch /
   output_tokens_per_s``. These rows are written to ``benchmarks/data/mlenergy_v2_chat_*.csv``
   (the generation CSV ``irene adapt`` reads; derived from ../shared, so git-ignored).
2. Per GPU and per held-out model: the specification profile of the GPU is adapted on the other
   models' rows (:class:`predictor.learn.generation_adapt.GenerationAdapter`: the device's seven
   scales and the serving engine's two host times, energies and times) and predicts the held-out
   model's rows. Reported per row: predicted vs measured J per output token and the error; per
   GPU: the MAPE, and the MAPE of the batch scaling alone (J per token at batch B over J per
   token at the model's smallest batch, predicted vs measured).
3. The shipped ``irene-a100-sxm4-40gb`` and ``irene-h100-sxm`` are the specification profiles
   adapted on every model's rows with ``irene adapt`` (run by this script with ``--ship``).

Writes benchmarks/results/generation.md and generation.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from predictor.devices import device_profile  # noqa: E402
from predictor.learn.adapt import fit_adaptation  # noqa: E402
from predictor.learn.generation_adapt import (  # noqa: E402
    GenerationAdapter,
    GenerationMeasurement,
    generation_tracer,
    measurements_from_generation_csv,
)

DEFAULT_DATA = REPO.parent / "shared" / "energy-data" / "mlenergy-v2"
RESULTS = REPO / "benchmarks" / "results"
CSV_DIR = REPO / "benchmarks" / "data"
ATTRIBUTION = (
    "ML.ENERGY Leaderboard v2 (ml-energy/leaderboard-v2 @ c3af7f31, Apache-2.0): GPU energy "
    "per request of LLMs served by vLLM 0.5.4 in bf16"
)
#: The v2 chat models -> the zoo's configs of them.
MODELS: dict[str, str] = {
    "meta-llama/Meta-Llama-3.1-8B-Instruct": "llama-3.1-8b",
    "mistralai/Mistral-7B-Instruct-v0.3": "mistral-7b-v0.3",
    "mistralai/Mistral-Nemo-Instruct-2407": "mistral-nemo-12b",
    "google/gemma-2-2b-it": "gemma-2-2b",
    "google/gemma-2-9b-it": "gemma-2-9b",
    "microsoft/Phi-3-mini-4k-instruct": "phi-3-mini-4k",
    "microsoft/Phi-3-small-8k-instruct": "phi-3-small-8k",
    "microsoft/Phi-3-medium-4k-instruct": "phi-3-medium-4k",
}
#: NVML's GPU names -> the device profile fitted to them.
GPUS: dict[str, str] = {
    "NVIDIA A100-SXM4-40GB": "irene-a100-sxm4-40gb",
    "NVIDIA H100 80GB HBM3": "irene-h100-sxm",
}
PROMPT_LEN = 120
PREFILL_BATCH = 1
TARGETS = {"mape": 15.0, "scaling_mape": 10.0}


@dataclass(frozen=True)
class Row:
    gpu: str
    hf_model: str
    model: str
    max_batch: int
    avg_batch: float
    output_tokens: float
    j_per_request: float
    tpot_s: float
    tokens_per_s: float
    source: str

    @property
    def batch(self) -> int:
        return max(1, round(self.avg_batch))

    @property
    def new_tokens(self) -> int:
        return max(2, round(self.output_tokens))

    @property
    def j_per_token(self) -> float:
        return self.j_per_request / self.output_tokens

    @property
    def label(self) -> str:
        return f"{self.model} max_batch {self.max_batch}"


def read_rows(data: Path) -> tuple[list[Row], dict[str, int]]:
    """The single-GPU chat rows of the two GPUs, and counts of the rows left out."""
    rows: list[Row] = []
    left: dict[str, int] = {}
    with (data / "llm_generation.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            tp = int(r["tensor_parallel"] or 1)
            task = r["task"].rsplit("/", 1)[-1]
            if task != "chat" or tp > 1 or r["gpu"] not in GPUS or r["model"] not in MODELS:
                key = f"{task}, {r['gpu']}, tensor parallel {tp}"
                left[key] = left.get(key, 0) + 1
                continue
            rows.append(
                Row(
                    gpu=r["gpu"],
                    hf_model=r["model"],
                    model=MODELS[r["model"]],
                    max_batch=int(r["max_batch"]),
                    avg_batch=float(r["avg_batch"]),
                    output_tokens=float(r["avg_output_tokens"]),
                    j_per_request=float(r["energy_per_request_j"]),
                    tpot_s=float(r["avg_tpot_s"]),
                    tokens_per_s=float(r["output_tokens_per_s"]),
                    source=r["source"],
                )
            )
    rows.sort(key=lambda r: (r.gpu, r.model, r.max_batch))
    return rows, dict(sorted(left.items()))


def write_csv(rows: list[Row], path: Path) -> None:
    """The rows as a generation measurements CSV (energy and wall time of the whole batch), and
    its ``.hardware.json`` sidecar: what was metered, on which GPU, and whose data it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sidecar = {
        "scope": "gpu",
        "meter": "nvml",
        "measured_gpu": rows[0].gpu,
        "serving_engine": "vLLM 0.5.4 (continuous batching, bf16)",
        "attribution": ATTRIBUTION,
        "license": "Apache-2.0",
    }
    path.with_suffix(".hardware.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(f"# {ATTRIBUTION}. Derived: one row per single-GPU chat configuration;\n")
        fh.write(
            f"# batch_size = round(avg_batch), new_tokens = round(avg_output_tokens), prompt_len "
            f"= {PROMPT_LEN} (assumed), energy_j = energy_per_request_j x batch_size, time_s = "
            "new_tokens x batch_size / output_tokens_per_s.\n"
        )
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(
            [
                "model",
                "batch_size",
                "prompt_len",
                "new_tokens",
                "prefill_batch",
                "dtype",
                "energy_j",
                "time_s",
                "label",
            ]
        )
        for r in rows:
            w.writerow(
                [
                    r.model,
                    r.batch,
                    PROMPT_LEN,
                    r.new_tokens,
                    PREFILL_BATCH,
                    "bf16",
                    f"{r.j_per_request * r.batch:.6g}",
                    f"{r.new_tokens * r.batch / r.tokens_per_s:.6g}",
                    r.label,
                ]
            )


def _per_token(m: GenerationMeasurement, energy_j: float) -> float:
    assert m.workload is not None
    return energy_j / (m.workload.batch_size * m.workload.new_tokens)


def lomo(gpu: str, rows: list[Row], measurements: list[GenerationMeasurement]) -> dict[str, Any]:
    """Leave one model out on one GPU: adapt the specification profile on the other models,
    predict the held-out model's rows."""
    base = device_profile(GPUS[gpu])
    by_label = {m.label: m for m in measurements}
    models = sorted({r.model for r in rows})
    out_rows: list[dict[str, Any]] = []
    folds: list[dict[str, Any]] = []
    for held in models:
        train = [m for m in measurements if m.model != held]
        test = [by_label[r.label] for r in rows if r.model == held]
        fit = fit_adaptation(GenerationAdapter(base, train), train, loco=False)
        energy, time_s = GenerationAdapter(base, test).predict(fit.scales)
        assert time_s is not None
        held_rows = [r for r in rows if r.model == held]
        predicted = [_per_token(m, e) for m, e in zip(test, energy.tolist(), strict=True)]
        measured = [r.j_per_token for r in held_rows]
        ref_p, ref_m = predicted[0], measured[0]
        for r, m, p, t in zip(held_rows, test, predicted, time_s.tolist(), strict=True):
            assert m.workload is not None
            scaling_p, scaling_m = p / ref_p, r.j_per_token / ref_m
            out_rows.append(
                {
                    "model": r.model,
                    "hf_model": r.hf_model,
                    "max_batch": r.max_batch,
                    "batch": r.batch,
                    "new_tokens": r.new_tokens,
                    "measured_j_per_token": r.j_per_token,
                    "predicted_j_per_token": p,
                    "error_pct": 100.0 * (p / r.j_per_token - 1.0),
                    "measured_scaling": scaling_m,
                    "predicted_scaling": scaling_p,
                    "scaling_error_pct": 100.0 * (scaling_p / scaling_m - 1.0),
                    "measured_step_s": m.time_s / m.workload.new_tokens if m.time_s else None,
                    "predicted_step_s": t / m.workload.new_tokens,
                    "smallest_batch": r is held_rows[0],
                }
            )
        folds.append(
            {
                "held_out": held,
                "train_residual_mape": fit.residual_mape,
                "train_time_mape": fit.time_mape,
                "scales": fit.scales,
                "mape": float(
                    np.mean([abs(p / m - 1) for p, m in zip(predicted, measured, strict=True)])
                    * 100
                ),
            }
        )
    errors = [abs(r["error_pct"]) for r in out_rows]
    scaling = [abs(r["scaling_error_pct"]) for r in out_rows if not r["smallest_batch"]]
    return {
        "gpu": gpu,
        "profile": GPUS[gpu],
        "rows": out_rows,
        "folds": folds,
        "mape": float(np.mean(errors)),
        "max_ape": float(np.max(errors)),
        "scaling_mape": float(np.mean(scaling)),
        "scaling_rows": len(scaling),
    }


def ship(gpu: str, csv_path: Path, models: list[str]) -> dict[str, Any]:
    """Adapt the specification profile on every model's rows with ``irene adapt`` and write it
    as the shipped profile."""
    name = GPUS[gpu]
    out = REPO / "predictor" / "profiles" / f"{name}.irene.joblib"
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / f"{name}.irene.joblib"
        device_profile(name).save(spec)
        argv = [
            sys.executable,
            "-m",
            "predictor.cli.main",
            "adapt",
            str(spec),
            str(csv_path.relative_to(REPO)),
            "--models",
            *models,
            "-o",
            str(out.relative_to(REPO)),
            "--name",
            name,
            "--force",
            "--format",
            "json",
        ]
        done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"irene adapt failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    result["command"] = "irene adapt <the specification profile> " + " ".join(argv[5:])
    _manifest(name, out)
    return result


def _manifest(name: str, path: Path) -> None:
    """The shipped profile's entry in ``predictor/profiles/manifest.json`` (the others kept)."""
    from benchmarks.build_device_profiles import manifest_entry
    from predictor.learn.profile import load_profile

    manifest_path = path.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    profile = load_profile(path)
    manifest["profiles"][name] = {
        **manifest_entry(name, path, profile),
        "serving": profile.hardware.get("serving"),
        "built_by": "python benchmarks/bench_generation.py --ship",
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _f(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}g}"


def render(report: dict[str, Any]) -> str:
    lines = [
        "# Generation energy: ML.ENERGY v2 chat rows, leave one model out",
        "",
        f"Written by `python benchmarks/bench_generation.py` in {report['wall_s']:.0f} s on "
        f"{report['cpus']} CPU cores. Data: {ATTRIBUTION}.",
        "",
        "Workload per row (fixed before fitting): batch = `avg_batch` (rounded), new tokens = "
        f"`avg_output_tokens`, prompt {PROMPT_LEN} tokens, each prompt its own prefill pass "
        "(continuous batching); bf16. Each GPU's specification profile is adapted (seven device "
        "scales + two serving host times, on energies and wall times) on the other models and "
        "predicts the held-out model. Batch scaling: J/token at batch B over J/token at the "
        "model's smallest batch, predicted over measured.",
        "",
        "| GPU | profile | rows | MAPE J/token | max | batch-scaling MAPE | targets |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for g in report["gpus"]:
        lines.append(
            f"| {g['gpu']} | `{g['profile']}` | {len(g['rows'])} | {g['mape']:.1f} % | "
            f"{g['max_ape']:.1f} % | {g['scaling_mape']:.1f} % ({g['scaling_rows']} rows) | "
            f"<= {TARGETS['mape']:g} % / <= {TARGETS['scaling_mape']:g} % |"
        )
    lines.append("")
    for g in report["gpus"]:
        lines += [
            f"## {g['gpu']}",
            "",
            "| model | max batch | batch | tokens | measured J/tok | predicted J/tok | error | "
            "measured scaling | predicted scaling | scaling error | measured s/step | "
            "predicted s/step |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in g["rows"]:
            scaling = "—" if r["smallest_batch"] else f"{r['scaling_error_pct']:+.1f} %"
            lines.append(
                f"| {r['model']} | {r['max_batch']} | {r['batch']} | {r['new_tokens']} | "
                f"{_f(r['measured_j_per_token'])} | {_f(r['predicted_j_per_token'])} | "
                f"{r['error_pct']:+.1f} % | {r['measured_scaling']:.3f} | "
                f"{r['predicted_scaling']:.3f} | {scaling} | {_f(r['measured_step_s'], 3)} | "
                f"{_f(r['predicted_step_s'], 3)} |"
            )
        lines += ["", "Per fold (held-out model): training residual, and the scales fitted:", ""]
        for f in g["folds"]:
            scales = ", ".join(f"{k} {v:.3g}" for k, v in f["scales"].items())
            lines.append(
                f"- {f['held_out']}: held-out MAPE {f['mape']:.1f} %, train residual "
                f"{f['train_residual_mape']:.1f} % (time {f['train_time_mape'] or 0:.1f} %); {scales}"
            )
        lines.append("")
    if report.get("shipped"):
        lines += ["## Shipped profiles (adapted on every model's rows)", ""]
        for s in report["shipped"]:
            lines += [
                f"- `{s['name']}`: `{s['command']}`; residual {s['residual_mape']:.1f} %, "
                f"leave-one-configuration-out {s['loco_mape']:.1f} %, time "
                f"{s['time_mape']:.1f} %; scales "
                + ", ".join(f"{k} {v:.3g}" for k, v in s["scales"].items()),
            ]
        lines.append("")
    lines += ["## Rows not predicted", ""]
    lines += [f"- {k}: {v} rows" for k, v in report["left_out"].items()]
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA))
    parser.add_argument("--ship", action="store_true", help="also write the shipped profiles")
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "llm_generation.csv").is_file():
        print(f"no ML.ENERGY v2 data at {data}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    rows, left = read_rows(data)
    trace = generation_tracer("native")
    gpus = []
    shipped = []
    for gpu, name in GPUS.items():
        mine = [r for r in rows if r.gpu == gpu]
        csv_path = CSV_DIR / f"mlenergy_v2_chat_{name.removeprefix('irene-')}.csv"
        write_csv(mine, csv_path)
        measurements = measurements_from_generation_csv(csv_path, trace)
        gpus.append(lomo(gpu, mine, measurements))
        if args.ship:
            shipped.append(ship(gpu, csv_path, sorted({r.model for r in mine})))
    report = {
        "data": str(data),
        "attribution": ATTRIBUTION,
        "prompt_len": PROMPT_LEN,
        "prefill_batch": PREFILL_BATCH,
        "gpus": gpus,
        "shipped": shipped,
        "left_out": left,
        "wall_s": time.perf_counter() - start,
        "cpus": os.cpu_count(),
        "targets": TARGETS,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "generation.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    (RESULTS / "generation.md").write_text(render(report))
    for g in gpus:
        print(
            f"{g['gpu']}: MAPE {g['mape']:.1f} % (max {g['max_ape']:.1f} %), batch scaling "
            f"{g['scaling_mape']:.1f} %"
        )
    print(f"wrote {RESULTS / 'generation.md'} in {report['wall_s']:.0f} s")
    ok = all(
        g["mape"] <= TARGETS["mape"] and g["scaling_mape"] <= TARGETS["scaling_mape"] for g in gpus
    )
    return 0 if ok and math.isfinite(report["wall_s"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
