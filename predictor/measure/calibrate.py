"""``irene calibrate``: measure per-node energy of zoo models on a grid of input shapes and write
the dataset in the IrEne layout (plus ``hardware.json``, ``measurements.jsonl``,
``summary.json``), for ``irene train``. Measuring one tree is :mod:`predictor.measure.nodes`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from predictor.errors import HardwareUnavailable, ModelError
from predictor.files import write_text_atomic
from predictor.measure.meters.base import Meter
from predictor.measure.nodes import (
    MeasureSettings,
    NodeMeasurement,
    measure_callable,
    measure_idle_power,
    measure_tree,
)
from predictor.trace.tree import EnergyTree

__all__ = [
    "WHOLE_MODEL_COLUMNS",
    "Progress",
    "calibrate_models",
    "calibrate_whole_models",
    "grid_order",
    "hardware_sidecar",
    "materialize",
    "real_inputs",
    "summarize",
]

#: Progress callback: (task description, completed, total).
Progress = Callable[[str, int, int], None]


def materialize(model: nn.Module, device: torch.device | str) -> nn.Module:
    """The model with real (random) weights on ``device``, in eval mode.

    A model on the meta device is rebuilt from its Hugging Face ``config`` directly on
    ``device`` (random init; energy does not depend on weight values), because ``to_empty``
    would leave buffers such as ``position_ids`` uninitialised, in the dtype of the meta
    model's parameters (what its tree was traced in).
    """
    meta = any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    if not meta:
        return model.to(device).eval()
    config = getattr(model, "config", None)
    if config is None:
        raise ModelError(
            f"{type(model).__name__} is on the meta device and has no config to rebuild it from; "
            "give a factory that builds it with real weights"
        )
    first = next(model.parameters(), None)
    with torch.device(device):
        real = type(model)(config)
    if first is not None and first.is_floating_point():  # as the meta model was cast
        real = real.to(first.dtype)
    return real.eval()


def real_inputs(tree: EnergyTree, model: nn.Module, device: str, seed: int) -> dict[str, Any]:
    """Real tensors matching the inputs the tree was traced on (``tree.meta["inputs"]``).

    Token ids are random in the vocabulary, ``position_ids`` count up, masks are ones, other
    tensors zeros; non-tensor inputs (``use_cache=False``) are passed as they were.
    """
    described = tree.meta.get("inputs") or {
        "input_ids": {"shape": [tree.batch_size, tree.seq_len], "dtype": "int64"}
    }
    vocab = int(getattr(getattr(model, "config", None), "vocab_size", 0) or 1000)
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, Any] = {}
    for key, desc in described.items():
        if key.startswith("arg"):
            raise ModelError(
                f"{tree.model_name}: positional example inputs cannot be rebuilt for calibration; "
                "give the model keyword inputs (input_ids=...)"
            )
        if not (isinstance(desc, dict) and "shape" in desc):
            out[key] = desc
            continue
        shape = tuple(int(d) for d in desc["shape"])
        dtype = getattr(torch, str(desc.get("dtype", "float32")))
        if key.endswith("input_ids"):
            t = torch.randint(0, vocab, shape, generator=gen, dtype=dtype)
        elif key == "position_ids":
            t = torch.arange(shape[-1], dtype=dtype).expand(*shape).contiguous()
        elif "mask" in key:
            t = torch.ones(shape, dtype=dtype)
        else:
            t = torch.zeros(shape, dtype=dtype)
        out[key] = t.to(device)
    return out


def calibrate_models(
    models: Sequence[str],
    batch_sizes: Sequence[int],
    seq_lens: Sequence[int],
    *,
    meter: Meter,
    out_dir: str | os.PathLike[str],
    device: str = "cpu",
    settings: MeasureSettings | None = None,
    progress: Progress | None = None,
    seed: int = 0,
    counting_mode: str = "irene",
    time_budget_s: float | None = None,
) -> Path:
    """Measure every (model, batch size, sequence length) and write the IrEne CSV dataset.

    ``models`` are zoo specs (``bert-base-uncased``, ``package.module:factory``); each tree is
    the one ``irene predict`` builds (:func:`predictor.trace.zoo.build_zoo_tree`), so a profile
    trained on the dataset sees the same features at prediction time. Configurations that
    do not fit a model (a sequence beyond its positions) are skipped and listed. Writes the
    four CSV files, ``hardware.json`` (device, meter, method, idle power, settings, date),
    ``measurements.jsonl`` (per node: spread, repeats, reuse, gaps) and ``summary.json``.

    The grid runs configuration-major (every model at one batch size and sequence length,
    then the next, corners of the grid first: :func:`grid_order`); after ``time_budget_s`` seconds no new configuration starts (the
    rest are listed as skipped). The dataset is rewritten after each configuration.
    """
    from predictor.learn.data import write_csv_dataset
    from predictor.trace import zoo

    settings = settings or MeasureSettings()
    st = meter.status()
    if not st.available:
        raise HardwareUnavailable(st.describe())
    for spec in models:  # fail fast on a bad spec, before any measuring
        zoo.build_model(spec, "eager")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    idle = measure_idle_power(meter, settings)
    # every model stays loaded so the grid runs configuration-major: when the time budget ends
    # the run, each model has its first configurations rather than one model having them all
    loaded = {
        spec: materialize(zoo.build_model(spec, "eager", device=device), device) for spec in models
    }
    caches: dict[str, dict[str, NodeMeasurement]] = {spec: {} for spec in models}
    trees: list[EnergyTree] = []
    lines: list[str] = []
    gaps: list[str] = []
    skipped: list[str] = []
    seconds: dict[str, float] = {}
    grid = grid_order(batch_sizes, seq_lens)

    def hardware() -> dict[str, Any]:
        return {
            **meter.hardware(),
            **_host_description(device),
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "idle_power_w": idle,
            "idle_subtracted": settings.subtract_idle,
            "settings": asdict(settings),
            "models": list(models),
            "batch_sizes": list(batch_sizes),
            "seq_lens": list(seq_lens),
            "counting_mode": counting_mode,
            "time_budget_s": time_budget_s,
            "config_seconds": dict(seconds),
            "gaps": list(gaps),
            "skipped": list(skipped),
            "energy_mean": (
                "J per call, idle power subtracted" if settings.subtract_idle else "J per call"
            ),
        }

    for bs, sl in grid:
        for spec in models:
            label = f"{spec} b{bs} s{sl}"
            if time_budget_s is not None and time.monotonic() - started > time_budget_s:
                skipped.append(f"{label}: time budget of {time_budget_s:g} s used up")
                continue
            try:
                tree = zoo.build_zoo_tree(spec, bs, sl, counting_mode=counting_mode)
            except ModelError as exc:
                skipped.append(f"{label}: {exc}")
                continue
            t0 = time.monotonic()
            model = loaded[spec]
            result = measure_tree(
                model,
                tree,
                meter=meter,
                settings=settings,
                idle_power_w=idle,
                device=device,
                progress=progress,
                cache=caches[spec],
                **real_inputs(tree, model, device, seed),
            )
            seconds[label] = round(time.monotonic() - t0, 3)
            trees.append(result.tree)
            gaps.extend(f"{label}: {g}" for g in result.gaps)
            for r in result.records:
                rec = {"model": spec, "batch_size": bs, "seq_len": sl, **asdict(r)}
                rec["rel_std"] = None if r.rel_std is None or math.isinf(r.rel_std) else r.rel_std
                lines.append(json.dumps(rec, allow_nan=False))
            # checkpoint: a run killed later still leaves every finished configuration
            write_csv_dataset(trees, out, hardware=hardware())
            write_text_atomic(out / "measurements.jsonl", "".join(line + "\n" for line in lines))
    del loaded
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    if not trees:
        raise ModelError("no configuration could be measured: " + "; ".join(skipped))
    write_csv_dataset(trees, out, hardware=hardware())
    write_text_atomic(
        out / "summary.json", json.dumps(summarize(out), indent=2, sort_keys=True) + "\n"
    )
    return out


def grid_order(batch_sizes: Sequence[int], seq_lens: Sequence[int]) -> list[tuple[int, int]]:
    """Every (batch size, sequence length), corners first, so a run cut short by its time
    budget still spans the grid.

    >>> grid_order([8, 32], [64, 128, 256])
    [(8, 64), (32, 256), (8, 256), (32, 64), (8, 128), (32, 128)]
    """
    pairs = [(bs, sl) for bs in batch_sizes for sl in seq_lens]
    b0, b1 = min(batch_sizes), max(batch_sizes)
    s0, s1 = min(seq_lens), max(seq_lens)
    corners = list(dict.fromkeys([(b0, s0), (b1, s1), (b0, s1), (b1, s0)]))
    return corners + [p for p in pairs if p not in corners]


def _host_description(device: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "device_type": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    from predictor.measure.meters.rapl import _cpu_model

    out["cpu_model"] = _cpu_model()
    out["dtype"] = str(torch.get_default_dtype()).removeprefix("torch.")
    out["tf32_matmul"] = bool(torch.backends.cuda.matmul.allow_tf32)
    if device.startswith("cuda") and torch.cuda.is_available():
        dev = torch.device(device)
        out["gpu_name"] = torch.cuda.get_device_name(dev)
        out["cuda"] = torch.version.cuda
    return out


def summarize(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Spread per level, idle power, and sum of measured children vs the measured parent.

    ``children_ratio`` is ``sum(children) / parent`` over every node with measured children;
    IrEne's aggregation learns the correction from it (1.0 would mean energies simply add up).
    """
    from predictor.learn.data import load_dataset

    p = Path(folder)
    ds = load_dataset(p)
    out: dict[str, Any] = {
        "configurations": len(ds.trees),
        "idle_power_w": ds.hardware.get("idle_power_w"),
    }
    spread: dict[str, list[float]] = {}
    rec_file = p / "measurements.jsonl"
    if rec_file.is_file():
        for line in rec_file.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("rel_std") is not None and not rec.get("reused"):
                spread.setdefault(rec["level"], []).append(float(rec["rel_std"]))
    out["rel_std"] = {level: _stats(v) for level, v in sorted(spread.items())}
    ratios: dict[str, list[float]] = {}
    for tree in ds.trees:
        for node in tree.walk():
            kids = [c.measured_energy_j for c in node.children if c.measured_energy_j is not None]
            if kids and node.measured_energy_j:
                ratios.setdefault(node.level, []).append(sum(kids) / node.measured_energy_j)
    out["children_ratio"] = {level: _stats(v) for level, v in sorted(ratios.items())}
    out["nodes"] = {
        level: sum(len(tree.nodes(level)) for tree in ds.trees)
        for level in ("model", "module", "ml")
    }
    return out


def _stats(values: Iterable[float]) -> dict[str, float]:
    v = sorted(values)
    if not v:
        return {}
    return {
        "n": float(len(v)),
        "mean": statistics.fmean(v),
        "median": statistics.median(v),
        "p90": v[min(len(v) - 1, math.ceil(0.9 * len(v)) - 1)],
        "min": v[0],
        "max": v[-1],
    }


#: Columns of the whole-model measurements CSV (what ``irene adapt`` reads, see
#: :data:`predictor.learn.adapt.CSV_REQUIRED`), in order.
WHOLE_MODEL_COLUMNS: tuple[str, ...] = (
    "model",
    "batch_size",
    "seq_len",
    "dtype",
    "energy_j",
    "time_s",
    "energy_std_j",
    "windows",
    "repeats",
)


def hardware_sidecar(path: str | os.PathLike[str]) -> Path:
    """Where the hardware description of a whole-model measurements CSV is written
    (``runs.csv`` -> ``runs.hardware.json``)."""
    return Path(path).with_suffix(".hardware.json")


def calibrate_whole_models(
    models: Sequence[str],
    batch_sizes: Sequence[int],
    seq_lens: Sequence[int],
    *,
    meter: Meter,
    out_csv: str | os.PathLike[str],
    device: str = "cpu",
    dtype: str | None = None,
    settings: MeasureSettings | None = None,
    progress: Progress | None = None,
    seed: int = 0,
    time_budget_s: float | None = None,
) -> Path:
    """Measure the whole model only, for every (model, batch size, sequence length): one
    forward repeated until the meter's window is long enough and the mean stable (seconds
    per configuration, instead of the per-node replay's minutes), and write the CSV
    :data:`WHOLE_MODEL_COLUMNS` that ``irene adapt`` reads, plus its hardware description
    (:func:`hardware_sidecar`). ``dtype``: the dtype the models run in (``fp32``, ``bf16``,
    ``fp16``; None: their own). Energies are J per forward, idle power subtracted unless
    ``settings.subtract_idle`` is false (as :func:`calibrate_models`)."""
    import csv
    import functools
    import io

    from predictor.measure.nodes import _sync_for, _without_cache
    from predictor.trace import zoo
    from predictor.trace.dtypes import MODEL_DTYPES

    settings = settings or MeasureSettings()
    st = meter.status()
    if not st.available:
        raise HardwareUnavailable(st.describe())
    torch_dtype = getattr(torch, MODEL_DTYPES[dtype]) if dtype is not None else None
    for spec in models:  # fail fast on a bad spec
        zoo.build_model(spec, "eager", dtype=dtype)
    out = Path(out_csv)
    started = time.monotonic()
    idle = measure_idle_power(meter, settings)
    sync = _sync_for(device)
    rows: list[list[str]] = [list(WHOLE_MODEL_COLUMNS)]
    skipped: list[str] = []
    grid = grid_order(batch_sizes, seq_lens)

    def write() -> None:
        buf = io.StringIO(newline="")
        csv.writer(buf).writerows(rows)
        write_text_atomic(out, buf.getvalue())
        hardware = {
            **meter.hardware(),
            **_host_description(device),
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "level": "model",
            "idle_power_w": idle,
            "idle_subtracted": settings.subtract_idle,
            "settings": asdict(settings),
            "models": list(models),
            "dtype_requested": dtype,
            "skipped": list(skipped),
        }
        write_text_atomic(
            hardware_sidecar(out), json.dumps(hardware, indent=2, sort_keys=True) + "\n"
        )

    for spec in models:
        model = materialize(zoo.build_model(spec, "eager", device=device), device)
        if torch_dtype is not None:
            model = model.to(torch_dtype)
        for bs, sl in grid:
            label = f"{spec} b{bs} s{sl}"
            if time_budget_s is not None and time.monotonic() - started > time_budget_s:
                skipped.append(f"{label}: time budget of {time_budget_s:g} s used up")
                continue
            try:
                tree = zoo.build_zoo_tree(spec, bs, sl, dtype=dtype)
            except ModelError as exc:
                skipped.append(f"{label}: {exc}")
                continue
            kwargs = _without_cache(model, real_inputs(tree, model, device, seed))
            if progress is not None:
                progress(label, 0, 1)
            with torch.no_grad():
                m = measure_callable(
                    functools.partial(model, **kwargs),
                    meter,
                    idle_power_w=idle,
                    settings=settings,
                    sync=sync,
                )
            if m.energy_j <= 0:
                skipped.append(
                    f"{label}: energy per forward {m.energy_j:.3g} J is not above the idle floor"
                )
                continue
            run_dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
            rows.append(
                [
                    spec,
                    str(bs),
                    str(sl),
                    {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(run_dtype, ""),
                    repr(m.energy_j),
                    repr(m.duration_s),
                    repr(m.energy_std_j),
                    str(m.windows),
                    str(m.repeats),
                ]
            )
            write()
    if len(rows) == 1:
        raise ModelError("no configuration could be measured: " + "; ".join(skipped))
    write()
    return out
