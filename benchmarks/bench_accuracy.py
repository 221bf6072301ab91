"""Accuracy benchmark: leave-one-model-out MAPE of our method, IrEne's, simple baselines, and
the ablation that chose each part of ours.

    python benchmarks/bench_accuracy.py [DATA]      # default ../shared/irene-data/device_1

1. The headline runs are the documented CLI, each in its own process so its wall time and peak
   RSS are its own: ``irene evaluate DATA --cv leave-one-model-out --features static|full
   --counting native --format json`` (ours, on the features the shipped profiles are trained
   on: the dataset's models traced in the native counting, the authors' measurements attached
   by node), and ``--method irene --counting dataset`` (the authors' method on their own
   features, as published; our implementation).
2. Simple baselines on the same folds and the same (native) features, fit on training folds
   only: per-type OLS at ML level; a pooled ``c*flops + d*mem_bytes`` at module level;
   ``c*FLOPs`` at model level.
3. The ablation (native features unless a row says otherwise): each change from IrEne's method
   to ours, alone and together, and the variants that LOMO rejected (those not shipped are
   registered from ``ablation_methods.py``).

Writes benchmarks/results/accuracy.json, accuracy.md, ablation.json, ablation.md.

IrEne's method trains its aggregator with Adam through whole trees, and that training amplifies
last-digit differences of its inputs: a 1e-12 relative change of the leaves' energies moves its
model-level error by ~1e-3 points. So its figures depend on the BLAS kernels numpy and scipy
run (recorded as ``blas_kernels``): the results here were produced with OpenBLAS's ``SkylakeX``
kernels (``OPENBLAS_CORETYPE=SkylakeX``); with ``Haswell`` the full-feature IrEne model level
reads 6.99 instead of 7.02 (ours and the baselines agree to ~1e-12).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import ablation_methods  # noqa: E402
from predictor.learn.data import Dataset  # noqa: E402
from predictor.learn.evaluate import NOT_A_FOLD, cross_validate  # noqa: E402
from predictor.learn.profile import Settings  # noqa: E402
from predictor.learn.retrace import load_training_data  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
LEVELS = ("ml", "module", "model")
TARGETS = {  # issue 10's bounds
    "static": {"ml": 2.7, "module": 6.1, "model": 2.5},
    "full": {"ml": 0.6, "module": 0.8, "model": 0.5},
}
#: The features each headline run evaluates on: ours the shipped profiles' (native counting),
#: IrEne's method the dataset's own, as published.
COUNTING = {"ours": "native", "irene": "dataset"}


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _blas_kernels() -> str:
    """The OpenBLAS kernels numpy/scipy run (IrEne's aggregator turns their last-digit
    differences into ~0.03 points of model-level error; see the module docstring)."""
    from threadpoolctl import threadpool_info  # scikit-learn's dependency

    return ", ".join(sorted({str(i.get("architecture")) for i in threadpool_info()})) or "unknown"


def run_cli(data: str, features: str, method: str) -> dict[str, Any]:
    """``irene evaluate`` in a child process; its own wall time and peak RSS (os.wait4)."""
    cmd = [
        sys.executable, "-m", "predictor.cli.main", "evaluate", data, "--cv",
        "leave-one-model-out", "--features", features, "--counting", COUNTING[method],
        "--format", "json", "--method", method,
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode()}")
    report: dict[str, Any] = json.loads(out)
    report["command"] = "irene " + " ".join(cmd[3:])
    report["process_wall_s"] = wall
    report["process_peak_rss_mib"] = usage.ru_maxrss / 1024.0  # Linux: KiB
    return report


# -- simple baselines -------------------------------------------------------------------------


def _lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.linalg.lstsq(a, b, rcond=None)[0])


def simple_baselines(ds: Dataset) -> dict[str, Any]:
    """Per-type OLS (ML), pooled c*flops + d*mem (module), c*FLOPs (model); LOMO."""
    folds = [m for m in ds.model_names if m not in NOT_A_FOLD]
    cols = ("batch_size", "seq_len", "flops", "mem_bytes", "input_size", "num_parameters")

    def rows(trees: list[Any], level: str) -> tuple[list[Any], np.ndarray]:
        nodes = [n for t in trees for n in t.walk() if n.level == level]
        return nodes, np.array([n.measured_energy_j for n in nodes])

    pooled: dict[str, list[np.ndarray]] = {lvl: [] for lvl in LEVELS}
    per_fold: dict[str, dict[str, float]] = {}
    for held in folds:
        train = [t for t in ds.trees if t.model_name != held]
        test = ds.by_model(held)
        # ML: per type, standardised features + OLS with intercept
        tr_nodes, tr_y = rows(train, "ml")
        te_nodes, te_y = rows(test, "ml")
        xtr = np.array([[n.feature(c) for c in cols] for n in tr_nodes])
        xte = np.array([[n.feature(c) for c in cols] for n in te_nodes])
        pred = np.empty(len(te_nodes))
        types_tr = np.array([n.type for n in tr_nodes])
        types_te = np.array([n.type for n in te_nodes])
        for typ in set(types_te.tolist()):
            m_tr, m_te = types_tr == typ, types_te == typ
            mu, sd = xtr[m_tr].mean(0), xtr[m_tr].std(0)
            sd = np.where(sd > 0, sd, 1.0)
            z_tr = np.column_stack([(xtr[m_tr] - mu) / sd, np.ones(m_tr.sum())])
            z_te = np.column_stack([(xte[m_te] - mu) / sd, np.ones(m_te.sum())])
            pred[m_te] = z_te @ _lstsq(z_tr, tr_y[m_tr])
        errs = {"ml": 100 * np.abs(pred - te_y) / te_y}
        # module: pooled c*flops + d*mem_bytes
        tr_nodes, tr_y = rows(train, "module")
        te_nodes, te_y = rows(test, "module")
        a = np.array([[n.flops, n.mem_bytes] for n in tr_nodes])
        coef = _lstsq(a, tr_y)
        pred = np.array([[n.flops, n.mem_bytes] for n in te_nodes]) @ coef
        errs["module"] = 100 * np.abs(pred - te_y) / te_y
        # model: c*FLOPs
        tr_nodes, tr_y = rows(train, "model")
        te_nodes, te_y = rows(test, "model")
        c = _lstsq(np.array([[n.flops] for n in tr_nodes]), tr_y)
        pred = np.array([[n.flops] for n in te_nodes]) @ c
        errs["model"] = 100 * np.abs(pred - te_y) / te_y
        per_fold[held] = {lvl: float(errs[lvl].mean()) for lvl in LEVELS}
        for lvl in LEVELS:
            pooled[lvl].append(errs[lvl])
    return {
        "what": {
            "ml": "per-type OLS on standardised static features",
            "module": "pooled least squares c*flops + d*mem_bytes",
            "model": "least squares c*FLOPs",
        },
        "folds": per_fold,
        "overall_row_weighted_mape": {
            lvl: float(np.concatenate(pooled[lvl]).mean()) for lvl in LEVELS
        },
        "mean_over_folds_mape": {
            lvl: float(np.mean([f[lvl] for f in per_fold.values()])) for lvl in LEVELS
        },
    }


# -- ablation ---------------------------------------------------------------------------------

ablation_methods.register()
S0 = Settings.default("static")
F0 = Settings.default("full")
S0N = replace(S0, reconcile="none")  # ours before the hierarchical reconciliation
F0N = replace(F0, reconcile="none")
ABLATION: list[tuple[str, str, Settings, str]] = [
    ("static", "IrEne: per-type OLS + tanh-weighted sum", Settings.irene(), "baseline"),
    ("static", "ours on the dataset's own features (IrEne's counting)", S0, "dataset"),
    ("static", "ours, one regressor per kernel class (Linear and Conv1D one GEMM)", replace(S0, ml_key="kernel"), "rejected: ML +0.2"),
    ("static", "ours, residual coefficients unconstrained (a negative own-FLOPs one)", S0, "unconstrained"),
    ("static", "poly ML + IrEne aggregator", replace(Settings.irene(), ml_method="poly"), "ML change alone"),
    ("static", "IrEne OLS ML + our aggregator", replace(S0N, ml_method="irene"), "aggregator change alone"),
    ("static", "poly ML + per-level a*sum(children)", replace(S0N, residual_terms=(), split_children=False, model_terms=None, weight_prior=0.0), "step"),
    ("static", "  + residual flops/bytes of own ops", replace(S0N, residual_terms=("resid_flops", "resid_mem"), split_children=False, model_terms=None, weight_prior=0.0), "step"),
    ("static", "  + intercept", replace(S0N, split_children=False, model_terms=None, weight_prior=0.0), "step"),
    ("static", "  + ML/module children apart, root = weighted sum only", replace(S0N, model_terms=(), weight_prior=0.0), "step (root's ML weight 6.7: a flat MLP predicted at 6.7x its children)"),
    ("static", "  + children weights pulled to 1, root + own-op bytes", S0N, "step (inconsistent: children may exceed parent)"),
    ("static", "  + top-down reconciliation (ours)", S0, "ours"),
    ("static", "ours, children weights free (no pull to 1), root = weighted sum only", replace(S0, model_terms=(), weight_prior=0.0), "rejected: root weight 6.7 on ML children"),
    ("static", "ours, pull to 1 with strength 0.3", replace(S0, weight_prior=0.3), "sensitivity"),
    ("static", "ours, pull to 1 with strength 10", replace(S0, weight_prior=10.0), "sensitivity"),
    ("static", "ours, root intercept instead of own-op bytes", replace(S0, model_terms=("intercept",)), "rejected: +87 mJ on any model"),
    ("static", "ours, bottom-up reconciliation (parent raised to children)", replace(S0, reconcile="bottom-up"), "rejected"),
    ("static", "ours, reconciliation by scaling whole subtrees", replace(S0, reconcile="scale"), "rejected"),
    ("static", "ours, linear (relative LS) ML", replace(S0, ml_method="linear"), "rejected"),
    ("static", "ours, physical base alone (no correction)", replace(S0, ml_method="physical"), "rejected"),
    ("static", "ours, correction on every feature (poly-all)", replace(S0, ml_method="poly-all"), "rejected: off-grid"),
    ("static", "ours, monotone cubic correction (poly: more work never predicts less energy)", replace(S0, ml_method="poly"), "rejected: ML 3.8 %, over the 3 % target; CV 10x slower"),
    ("static", "ours + input_size term", replace(S0, residual_terms=(*S0.residual_terms, "input_size")), "rejected"),
    ("static", "ours, all residual terms at the root", replace(S0, model_terms=None), "rejected"),
    ("static", "ours, one model for module and model levels", replace(S0, aggregator="residual-one-level", model_terms=None), "rejected"),
    ("static", "ours, refit once on own bottom-up predictions", replace(S0, aggregator="residual-refit-1"), "rejected"),
    ("static", "ours, refit twice on own bottom-up predictions", replace(S0, aggregator="residual-refit-2"), "rejected"),
    ("static", "ours, refit 4 times on own bottom-up predictions", replace(S0, aggregator="residual-refit-4"), "rejected"),
    ("full", "IrEne: per-type OLS + tanh-weighted sum", Settings.irene(), "baseline"),
    ("full", "ours on the dataset's own features (IrEne's counting)", F0, "dataset"),
    ("full", "ours, residual coefficients unconstrained", F0, "unconstrained"),
    ("full", "relative linear ML; children sums + residual + own runtime", F0N, "step (inconsistent: children may exceed parent)"),
    ("full", "  + top-down reconciliation (ours)", F0, "ours"),
    ("full", "ours, bottom-up reconciliation (parent raised to children)", replace(F0, reconcile="bottom-up"), "rejected"),
    ("full", "ours, reconciliation by scaling whole subtrees", replace(F0, reconcile="scale"), "rejected"),
    ("full", "ours, poly ML", replace(F0, ml_method="poly"), "rejected"),
    ("full", "ours, linear ML with unsigned work coefficients (previous form)", replace(F0, ml_method="linear-free"), "rejected: not monotone"),
    ("full", "ours, without own runtime terms", replace(F0, residual_terms=("resid_flops", "resid_mem")), "rejected"),
    ("full", "ours, ML/module children apart", replace(F0, split_children=True), "rejected"),
    ("full", "ours, refit twice on own bottom-up predictions", replace(F0, aggregator="residual-refit-2"), "rejected"),
]  # fmt: skip


PRIOR_NOTE = (
    "The pull of the children weights toward 1 is the other exception, kept for models unlike"
    " the training set. Left free, the root's weight on its ML children came out near 6.7: in"
    " the IrEne trees only GPT-like roots have ML children (wte, wpe, ln_f), so that weight "
    "stood in for the root's own ops, and a user's model whose root holds only primitives (a "
    "plain MLP) was predicted at 6.7x its children. With the pull (strength 1; 0.3 and 10 "
    "give the same errors) the weights stay within 0.98-1.05 and the root's own ops are "
    "charged through their memory traffic (the rows `children weights free` and `ours`)."
)

SIGN_NOTE = (
    "The sign bounds of the residual aggregator are kept for validity, not accuracy: fitted "
    "without them, the module level's coefficient on a module's own FLOPs came out negative, "
    "and a model computing through `F.linear` in a module with a child (or an "
    "`nn.TransformerEncoder`) was predicted at 0 J on every node. Bounded (children weights and "
    "own-op terms >= 0), the row `residual coefficients unconstrained` shows what they cost on "
    "these folds."
)

IRENE_NOTE = (
    "Rows with IrEne's aggregator (trained with Adam through whole trees) depend on the last"
    " digits of their inputs: a 1e-12 relative change of the leaves' energies moves their model"
    " level by ~1e-3 points. `poly ML + IrEne aggregator` is the extreme case: its ML fit is a"
    " constrained optimisation (the monotone `poly`, which moves by ~0.01 points with the"
    " rounding of its least-squares base), and its model level has read between 5.5 and 7.4 %"
    " across solver and BLAS-kernel changes; read it to about one point."
)


def ablation(ds: Dataset, dataset_features: Dataset) -> list[dict[str, Any]]:
    out = []
    for features, label, settings, role in ABLATION:
        data = dataset_features if role == "dataset" else ds
        if role == "unconstrained":
            with ablation_methods.unconstrained_residuals():
                report = cross_validate(data, features, settings)
        else:
            report = cross_validate(data, features, settings)
        out.append(
            {
                "features": features,
                "variant": label,
                "role": role,
                "settings": settings.to_dict(),
                "overall": report.overall,
                "mean_over_folds": report.mean_over_folds,
                "per_fold": {f.model: f.mape for f in report.folds},
                "wall_s": report.wall_s,
            }
        )
        print(
            f"{features:6} {label:70} " + " ".join(f"{report.overall[lvl]:6.2f}" for lvl in LEVELS),
            flush=True,
        )
    return out


# -- robustness off the training grid --------------------------------------------------------

#: Configurations removed from training (every model) and predicted for the left-out model.
OFF_GRID: dict[str, Any] = {
    "LOMO (all configurations)": None,
    "unseen seq 128 and 160 (interpolation)": lambda t: t.seq_len in (128, 160),
    "unseen batch 16 (interpolation)": lambda t: t.batch_size == 16,
    "unseen seq >= 224 (extrapolation)": lambda t: t.seq_len >= 224,
    "unseen batch 32 (extrapolation)": lambda t: t.batch_size == 32,
    "unseen seq 32 (extrapolation)": lambda t: t.seq_len == 32,
}
OFF_GRID_ML = ("irene", "physical", "poly-all", "poly", "poly-free")


def off_grid(ds: Dataset) -> list[dict[str, Any]]:
    """Leave one model out *and* some configurations out of training: the same code, asked
    about batch sizes / sequence lengths it never saw, as a CI user's model will be."""
    from predictor.learn.evaluate import level_errors
    from predictor.learn.flat import Flat
    from predictor.learn.profile import fit_components, predict_flat

    folds = [m for m in ds.model_names if m not in NOT_A_FOLD]
    out = []
    for method in OFF_GRID_ML:
        settings = replace(S0, ml_method=method)
        for scenario, held in OFF_GRID.items():
            pooled: dict[str, list[np.ndarray]] = {lvl: [] for lvl in LEVELS}
            for model in folds:
                train = [
                    t for t in ds.trees if t.model_name != model and (held is None or not held(t))
                ]
                test = [t for t in ds.by_model(model) if held is None or held(t)]
                ml, agg = fit_components(train, "static", settings)
                flat = Flat.of(test)
                pred, _ = predict_flat(flat, ml, agg)
                errors = level_errors(test, pred, flat)
                for lvl in LEVELS:
                    pooled[lvl].append(errors[lvl])
            row = {lvl: float(np.concatenate(pooled[lvl]).mean()) for lvl in LEVELS}
            out.append({"ml_method": method, "scenario": scenario, "mape": row})
            print(
                f"off-grid {method:9} {scenario:42} "
                + " ".join(f"{row[lvl]:6.2f}" for lvl in LEVELS),
                flush=True,
            )
    return out


# -- markdown ---------------------------------------------------------------------------------


def _fold_table(report: dict[str, Any]) -> list[str]:
    lines = ["| left-out model | ML % | module % | model % |", "|---|---|---|---|"]
    for f in report["folds"]:
        m = f["mape"]
        lines.append(f"| {f['model']} | {m['ml']:.2f} | {m['module']:.2f} | {m['model']:.2f} |")
    o, mf = report["overall_row_weighted_mape"], report["mean_over_folds_mape"]
    lines.append(
        f"| **overall (row-weighted)** | **{o['ml']:.2f}** | **{o['module']:.2f}** | **{o['model']:.2f}** |"
    )
    lines.append(f"| mean over folds | {mf['ml']:.2f} | {mf['module']:.2f} | {mf['model']:.2f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    data = args[0] if args else str(REPO.parent / "shared" / "irene-data" / "device_1")
    RESULTS.mkdir(parents=True, exist_ok=True)
    env = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "blas_kernels": _blas_kernels(),
    }

    headline: dict[str, Any] = {}
    for features in ("static", "full"):
        for method in ("ours", "irene"):
            key = f"{method}-{features}"
            headline[key] = run_cli(data, features, method)
            r = headline[key]
            print(
                f"{key}: {r['overall_row_weighted_mape']} wall {r['process_wall_s']:.1f}s "
                f"rss {r['process_peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    ds = load_training_data(data, "native")
    baselines = simple_baselines(ds)
    abl = ablation(ds, load_training_data(data, "dataset"))
    grid = off_grid(ds)

    _write(
        RESULTS / "accuracy.json",
        json.dumps(
            {
                "environment": env,
                "targets": TARGETS,
                "runs": headline,
                "simple_baselines": baselines,
            },
            indent=2,
        )
        + "\n",
    )
    _write(
        RESULTS / "ablation.json",
        json.dumps({"environment": env, "variants": abl}, indent=2) + "\n",
    )

    md = [
        "# Accuracy: leave-one-model-out on IrEne device_1",
        "",
        "Produced by `python benchmarks/bench_accuracy.py`. Protocol: IrEne's leave-one-model-out "
        "without its leaks (every scaler and regressor fit on the training folds only; "
        "sshleifer/tiny-ctrl trains every fold but is never one). MAPE %, overall = row-weighted "
        f"over all folds, also the mean over the six folds. Machine: {env['cpus']} CPUs, "
        "shared with other jobs, so wall times are upper bounds; OpenBLAS kernels "
        f"{env['blas_kernels']} (IrEne's method depends on them in the second decimal, see "
        "bench_accuracy.py).",
        "",
        "Counting: ours on the features the shipped profiles are trained on (`--counting native`: "
        "each of the dataset's models traced at each configuration, dtype-aware bytes, weights "
        "read once per forward, the authors' measurements attached by node); IrEne's method on "
        "the dataset's own features (`--counting dataset`: IrEne's counting), as published.",
        "",
        "| run | features | counting | ML | module | model | target (ML/module/model) | CV wall s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in headline.items():
        o = r["overall_row_weighted_mape"]
        t = TARGETS[r["feature_set"]] if key.startswith("ours") else None
        target = f"{t['ml']} / {t['module']} / {t['model']}" if t else "(reference)"
        md.append(
            f"| {key} | {r['feature_set']} | {COUNTING[key.split('-')[0]]} | {o['ml']:.2f} | "
            f"{o['module']:.2f} | {o['model']:.2f} | "
            f"{target} | {r['process_wall_s']:.1f} | {r['process_peak_rss_mib']:.0f} |"
        )
    b = baselines["overall_row_weighted_mape"]
    md += [
        f"| simple baselines | static | native | {b['ml']:.2f} | {b['module']:.2f} | {b['model']:.2f} | "
        "(per-type OLS / c*flops+d*mem / c*FLOPs) | | |",
        "",
        "Wall time and peak RSS are of the whole `irene evaluate` process (Python start, imports, "
        "reading the CSVs, with `--counting native` tracing the dataset's 193 configurations, "
        "six folds).",
        "",
    ]
    for key, r in headline.items():
        md += [f"## {key}", "", f"`{r['command']}`", "", *_fold_table(r), ""]
    _write(RESULTS / "accuracy.md", "\n".join(md))

    amd = [
        "# Ablation: what each change does under leave-one-model-out",
        "",
        "Produced by `python benchmarks/bench_accuracy.py` (same folds and protocol as accuracy.md; on the native-counted features the shipped profiles are trained on, unless a row says otherwise). "
        "A change was kept only where it lowered the LOMO error; rejected variants are listed too. "
        "Overall row-weighted MAPE %, then mean over folds in brackets. Differences under 0.1 "
        "point are treated as noise, and there the simpler model is kept (e.g. the input_size term).",
        "",
        "Reconciliation is the exception: it is kept for consistency, not accuracy. Without it a "
        "child can be predicted above its parent (e.g. bert-base-uncased's encoder above the "
        "model), which a per-module report must never show. The measured data itself is not "
        "consistent (each node was metered on its own: for most roots the children's measured sum "
        "exceeds the root's by ~1 %), so any consistent prediction moves some rows away from "
        "their measurement. Of the three forms, top-down (the root keeps its prediction; an "
        "overrun is cut evenly from the children, absorbed by their own-op energy first) leaves "
        "the model level unchanged and costs least at module level; bottom-up raises the root, "
        "scaling whole subtrees moves every primitive.",
        "",
        PRIOR_NOTE,
        "",
        SIGN_NOTE,
        "",
        IRENE_NOTE,
        "",
        "| features | variant | role | ML | module | model |",
        "|---|---|---|---|---|---|",
    ]
    for v in abl:
        o, m = v["overall"], v["mean_over_folds"]
        amd.append(
            f"| {v['features']} | {v['variant'].strip()} | {v['role']} | "
            + " | ".join(f"{o[lvl]:.2f} ({m[lvl]:.2f})" for lvl in LEVELS)
            + " |"
        )
    amd += [
        "",
        "## Off the training grid",
        "",
        "The dataset measures every model at the same 28 (batch, seq) points, so leave-one-model-out "
        "rewards a regressor that memorises that grid. Here the listed configurations are also "
        "removed from training (for every model) and predicted for the left-out model: what a CI "
        "user's batch size or sequence length looks like. Static features, our aggregator, "
        "row-weighted MAPE % (ML / module / model).",
        "",
        "| scenario | " + " | ".join(OFF_GRID_ML) + " |",
        "|---|" + "---|" * len(OFF_GRID_ML),
    ]
    for scenario in OFF_GRID:
        cells = []
        for method in OFF_GRID_ML:
            (m,) = [
                g["mape"] for g in grid if g["scenario"] == scenario and g["ml_method"] == method
            ]
            cells.append(" / ".join(f"{m[lvl]:.2f}" for lvl in LEVELS))
        amd.append(f"| {scenario} | " + " | ".join(cells) + " |")
    amd += [
        "",
        "`poly-all` (a cubic correction on every feature) wins on the grid but misses unseen batch "
        "sizes by up to ~18 % at ML level; `poly-free` (ours: cubic in log FLOPs, bytes, tokens, "
        "ridge 1e-2) stays close to the physical base off the grid. A monotone form of it "
        "(`poly`: the correction fit under the constraint that predicted energy never falls as "
        "FLOPs, bytes or tokens grow) was tried and is not the default: device_1's measurements "
        "are not monotone themselves (a MatMul with less FLOPs, bytes and tokens is measured up "
        "to 40 % dearer), so it costs ~1.1 points at ML level (3.8 %, over the 3 % target) and "
        "makes the cross-validation ~10x slower. Known limitation of `poly-free`: far from the "
        "training data (a Linear of width 64 on 2 vs 16 tokens) a bigger input can be predicted "
        "a few percent lower. The full profile's linear ML and the fallback are monotone.",
    ]
    _write(RESULTS / "ablation.md", "\n".join(amd) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
