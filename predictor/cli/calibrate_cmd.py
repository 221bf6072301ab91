"""``irene calibrate``: measure per-node energy on this machine and write an IrEne dataset;
``--level model``: whole-model energy only, the CSV ``irene adapt`` reads."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from predictor.measure.calibrate import Progress

__all__ = ["parse_int_list", "register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "calibrate",
        help="measure per-node energy on this machine and write an IrEne-format dataset",
        description=(
            "Run each model on --device, replay every node of its tree alone under an energy "
            "meter (idle power subtracted, repeated until stable) and write the dataset in the "
            "IrEne CSV layout plus hardware.json, measurements.jsonl and summary.json. "
            "Train a profile on it with `irene train DIR -o PROFILE`. With --level model: "
            "measure each whole model only (seconds per configuration) and write -o as a CSV "
            "(model, batch_size, seq_len, dtype, energy_j, time_s, ...) plus OUT.hardware.json, "
            "for `irene adapt PROFILE OUT.csv --models ...`."
        ),
    )
    parser.add_argument(
        "--meter",
        required=True,
        choices=["nvml", "rapl", "fake", "auto"],
        help="energy meter: nvml (NVIDIA GPU), rapl (CPU), fake (deterministic, for tests)",
    )
    parser.add_argument(
        "--models",
        required=True,
        help="comma-separated zoo names or package.module:factory specs",
    )
    parser.add_argument("--batch-sizes", default="1,8", help="comma-separated (default 1,8)")
    parser.add_argument("--seq-lens", default="32,128", help="comma-separated (default 32,128)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="dataset folder to write (--level model: a .csv file)",
    )
    parser.add_argument(
        "--level",
        choices=("node", "model"),
        default="node",
        help="node: every node of the tree, replayed alone (default); model: the whole model only",
    )
    parser.add_argument(
        "--dtype",
        choices=("fp32", "bf16", "fp16"),
        help="--level model: run the models in this dtype (default: their own)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a folder that already holds a dataset (its files are replaced)",
    )
    parser.add_argument(
        "--powercap-root", default="/sys/class/powercap", help="RAPL: powercap sysfs folder"
    )
    parser.add_argument(
        "--nvml-method",
        choices=["auto", "counter", "sampling"],
        default="auto",
        help="NVML: total-energy counter or power sampling (default: counter where supported)",
    )
    parser.add_argument(
        "--min-window-s",
        type=float,
        help="shortest measuring window in s (default: the meter's resolution)",
    )
    parser.add_argument("--min-windows", type=int, default=3, help="windows per node, at least")
    parser.add_argument("--max-windows", type=int, default=10, help="windows per node, at most")
    parser.add_argument(
        "--target-rel-std",
        type=float,
        default=0.05,
        help="stop adding windows when std/mean of the per-call energy is below (default 0.05)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured calls before a node")
    parser.add_argument("--idle-s", type=float, default=2.0, help="idle measurement in s")
    parser.add_argument(
        "--no-idle-subtract", action="store_true", help="keep idle power in the node energies"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random input ids")
    parser.add_argument(
        "--time-budget-s",
        type=float,
        help="start no new configuration after this many seconds (the rest are listed as skipped)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)


def parse_int_list(text: str, option: str) -> list[int]:
    """``"1,8"`` -> [1, 8]; ConfigError naming the option on anything else."""
    from predictor.errors import ConfigError

    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = int(part)
        except ValueError:
            raise ConfigError(
                f"{option}: {part!r} is not an integer (give e.g. {option} 1,8)"
            ) from None
        if value < 1:
            raise ConfigError(f"{option}: {value} must be >= 1")
        out.append(value)
    if not out:
        raise ConfigError(f"{option}: give at least one value")
    return out


def _meter_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.meter == "nvml":
        return {"method": args.nvml_method}
    if args.meter == "rapl":
        return {"root": args.powercap_root}
    if args.meter == "auto":
        return {"method": args.nvml_method, "root": args.powercap_root}
    return {}


def run(args: argparse.Namespace) -> int:
    import torch

    from predictor.errors import ConfigError, HardwareUnavailable
    from predictor.measure.calibrate import calibrate_models
    from predictor.measure.nodes import MeasureSettings

    batch_sizes = parse_int_list(args.batch_sizes, "--batch-sizes")
    seq_lens = parse_int_list(args.seq_lens, "--seq-lens")
    specs = [s.strip() for s in args.models.split(",") if s.strip()]
    if not specs:
        raise ConfigError(
            "--models: give at least one model (e.g. --models bert-base-uncased,gpt2)"
        )
    device = args.device
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise HardwareUnavailable(
                f"--device {device}: torch {torch.__version__} sees no CUDA device "
                f"(built with CUDA {torch.version.cuda}); use --device cpu"
            )
    elif device != "cpu":
        raise ConfigError(f"--device must be cpu, cuda or cuda:N (got {device!r})")
    try:
        settings = MeasureSettings(
            min_window_s=args.min_window_s,
            min_windows=args.min_windows,
            max_windows=args.max_windows,
            target_rel_std=args.target_rel_std,
            warmup=args.warmup,
            idle_s=args.idle_s,
            subtract_idle=not args.no_idle_subtract,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    out = Path(args.output)
    if args.level == "model":
        return _run_whole_models(args, specs, batch_sizes, seq_lens, settings)
    if args.dtype is not None:
        raise ConfigError(
            "--dtype applies to --level model; the per-node calibration runs the models in "
            "their own dtype"
        )
    existing = sorted(p.name for p in out.glob("*") if p.is_file()) if out.is_dir() else []
    if existing and not args.force:
        raise ConfigError(
            f"{out} already holds files ({', '.join(existing[:4])}{', ...' if len(existing) > 4 else ''}); "
            "measurements take hours on real hardware, so calibrate does not overwrite them: "
            "give another -o folder, or pass --force to replace them"
        )
    total = len(specs) * len(batch_sizes) * len(seq_lens)
    with _metering(args, device, total) as (meter, progress):
        path = calibrate_models(
            specs,
            batch_sizes,
            seq_lens,
            meter=meter,
            out_dir=out,
            device=device,
            settings=settings,
            progress=progress,
            time_budget_s=args.time_budget_s,
        )
    _print_summary(path)
    return 0


def _run_whole_models(
    args: argparse.Namespace,
    specs: list[str],
    batch_sizes: list[int],
    seq_lens: list[int],
    settings: Any,
) -> int:
    from predictor.errors import ConfigError
    from predictor.measure.calibrate import calibrate_whole_models, hardware_sidecar

    out = Path(args.output)
    if out.suffix != ".csv":
        raise ConfigError(f"--level model writes a CSV file: give -o a .csv path (got {out})")
    if out.is_dir():
        raise ConfigError(f"-o {out} is a folder; --level model writes a .csv file")
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists; give another -o file, or pass --force to replace it")
    total = len(specs) * len(batch_sizes) * len(seq_lens)
    with _metering(args, args.device, total) as (meter, progress):
        path = calibrate_whole_models(
            specs,
            batch_sizes,
            seq_lens,
            meter=meter,
            out_csv=out,
            device=args.device,
            dtype=args.dtype,
            settings=settings,
            progress=progress,
            seed=args.seed,
            time_budget_s=args.time_budget_s,
        )
    rows = path.read_text().count("\n") - 1
    print(f"wrote {path} ({rows} whole-model measurement(s)) and {hardware_sidecar(path)}")
    return 0


@contextlib.contextmanager
def _metering(args: argparse.Namespace, device: str, total: int) -> Iterator[tuple[Any, Any]]:
    """The ``--meter`` for ``device``, refused (HardwareUnavailable) when it cannot read, its
    status on stderr, and the progress bars of ``total`` configurations; the meter is closed
    on the way out, whatever happens."""
    from predictor.errors import HardwareUnavailable
    from predictor.measure.meters import get_meter

    meter = get_meter(args.meter, device=device, **_meter_options(args))
    try:
        st = meter.status()
        if not st.available:
            raise HardwareUnavailable(st.describe())
        print(f"meter: {st.describe()}", file=sys.stderr)
        with _progress_bars(total, quiet=args.quiet) as progress:
            yield meter, progress
    finally:
        meter.close()


@contextlib.contextmanager
def _progress_bars(total: int, *, quiet: bool) -> Iterator[Progress | None]:
    """Progress bars on stderr (configurations, and the unique nodes of the current one),
    as a ``progress`` callback for :func:`predictor.measure.calibrate.calibrate_models`; None
    with ``quiet``."""
    if quiet:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bars

    with Bars(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=sys.stderr),
        transient=False,
    ) as bars:
        overall = bars.add_task("configurations", total=total)
        tasks: dict[str, Any] = {}

        def progress(desc: str, done: int, n: int) -> None:
            if desc not in tasks:
                for prev in tasks.values():  # the previous configuration is finished
                    bars.update(prev, completed=bars.tasks[prev].total)
                    bars.update(overall, advance=1)
                tasks.clear()
                tasks[desc] = bars.add_task(f"  {desc}: unique nodes", total=max(n, 1))
            bars.update(tasks[desc], completed=done, total=max(n, 1))

        yield progress
        bars.update(overall, completed=total)
        for task in tasks.values():
            bars.update(task, completed=bars.tasks[task].total)


def _print_summary(path: Path) -> None:
    import json

    summary = json.loads((path / "summary.json").read_text())
    hardware = json.loads((path / "hardware.json").read_text())
    print(f"wrote {path} ({summary['configurations']} configurations, nodes {summary['nodes']})")
    print(
        f"idle power: {summary['idle_power_w']:.3f} W ({hardware.get('method')} via {hardware.get('meter')})"
    )
    for level, stats in summary.get("rel_std", {}).items():
        if stats:
            print(
                f"spread (std/mean over windows) {level}: median {100 * stats['median']:.2f} %, "
                f"p90 {100 * stats['p90']:.2f} %"
            )
    skipped = hardware.get("skipped", [])
    if skipped:
        print(
            f"{len(skipped)} configuration(s) skipped (see hardware.json 'skipped'), e.g. {skipped[0]}"
        )
    gaps = hardware.get("gaps", [])
    if gaps:
        print(f"{len(gaps)} node(s) not measured (see hardware.json 'gaps'), e.g. {gaps[0]}")
