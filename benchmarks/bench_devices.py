"""What the shipped specification profiles predict: ``python benchmarks/bench_devices.py``.

For every device profile, bert-base-uncased at batch 8 x seq 128 and llama-2-7b at batch 1 x
seq 512, both in bf16 (native counting: what executes), with the predicted energy, latency,
mean power and TFLOP per J (the model's FLOPs / predicted joules), next to the device's
datasheet ceiling (dense bf16 peak / board power). Writes ``devices.md`` and ``devices.json`` to
``--out`` (default benchmarks/results); the README's table is this one, and
tests/test_devices.py checks that they agree.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from predictor.devices.specs import DEVICE_SPECS  # noqa: E402
from predictor.gate.units import format_energy  # noqa: E402
from predictor.learn.profile import load_profile  # noqa: E402
from predictor.trace.zoo import build_zoo_tree  # noqa: E402

#: The workloads of the README's table: (label, zoo model, batch size, sequence length).
WORKLOADS: tuple[tuple[str, str, int, int], ...] = (
    ("bert-base b8 s128", "bert-base-uncased", 8, 128),
    ("llama-2-7b b1 s512", "llama-2-7b", 1, 512),
)


def predictions() -> list[dict[str, Any]]:
    """One row per device profile: each workload's predicted J, s, W and TFLOP/J (bf16)."""
    trees = {
        label: build_zoo_tree(spec, b, s, counting_mode="native", dtype="bf16")
        for label, spec, b, s in WORKLOADS
    }
    rows = []
    for name, spec in DEVICE_SPECS.items():
        profile = load_profile(name)  # as shipped: some are adapted to measurements
        provenance = getattr(profile, "provenance", None) or {}
        row: dict[str, Any] = {
            "profile": name,
            "device": spec.device,
            "provenance": str(provenance.get("kind", "specification")),
            "data": str(provenance.get("data_attribution") or provenance.get("data") or "").split(
                " ("
            )[0],
            "peak_tflop_per_j": spec.matrix_tflops["bf16"] / spec.board_power_w,
        }
        for label, tree in trees.items():
            profile.predict(tree)
            energy = float(tree.root.energy_j or 0.0)
            seconds = float(tree.meta["predicted_time_s"])
            row[label] = {
                "energy_j": energy,
                "time_s": seconds,
                "power_w": energy / seconds,
                "tflop_per_j": tree.root.flops * 1e6 / energy / 1e12,
            }
        rows.append(row)
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The README's table."""
    head = " | ".join(f"{label} (TFLOP/J)" for label, *_ in WORKLOADS)
    lines = [
        f"| profile | {head} | datasheet bf16 ceiling (TFLOP/J) | from |",
        "|---|" + "---|" * len(WORKLOADS) + "---|---|",
    ]
    for r in rows:
        cells = " | ".join(
            f"{format_energy(r[label]['energy_j'])} ({r[label]['tflop_per_j']:.2f})"
            for label, *_ in WORKLOADS
        )
        source = (
            "datasheet"
            if r["provenance"] == "specification"
            else f"datasheet, adapted to {r['data'] or 'measurements'}"
        )
        lines.append(f"| `{r['profile']}` | {cells} | {r['peak_tflop_per_j']:.2f} | {source} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    rows = predictions()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    detail = [
        "| profile | workload | energy | latency | mean power | TFLOP/J |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        for label, *_ in WORKLOADS:
            w = r[label]
            detail.append(
                f"| `{r['profile']}` | {label} | {format_energy(w['energy_j'])} | "
                f"{1e3 * w['time_s']:.2f} ms | {w['power_w']:.0f} W | {w['tflop_per_j']:.3f} |"
            )
    text = "\n".join(
        [
            "# What the specification profiles predict (bf16, eager PyTorch, native counting)",
            "",
            "Produced by `python benchmarks/bench_devices.py`: predictions from datasheet "
            "figures and stated assumptions, nothing measured (see "
            "benchmarks/results/transfer.md for adapted profiles against measurements). "
            "TFLOP/J = the model's FLOPs / predicted joules; the ceiling is the dense bf16 peak "
            "over board power.",
            "",
            markdown_table(rows),
            "",
            *detail,
            "",
        ]
    )
    for path, body in (
        (out / "devices.md", text),
        (out / "devices.json", json.dumps(rows, indent=2) + "\n"),
    ):
        fd, tmp = tempfile.mkstemp(dir=out, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
