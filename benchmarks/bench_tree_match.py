"""Traced trees vs the IrEne dataset's static features, for every configuration of device_1.

For each (model, batch, seq) of the dataset, the zoo model is traced (IrEne counting mode,
eager attention) and its nodes are matched with the dataset's: ML nodes by name (k-th
occurrence to k-th occurrence: functional-op names repeat), modules by fqn (transformers 5
renamed some classes), the model by its root. For each level it records the ratio
traced / dataset of ``flops`` and ``mem_bytes`` and keeps the worst (furthest from 1) per model.

Pass criteria (issue 2): on the six HF models, every dataset ML node is found with flops and
mem_bytes within 1 %, and model-level flops within 1 %. Module-level differences come from
transformers-5 code changes; they are listed with their cause and bounded by the measured
worst ratio. tiny-ctrl is reported too (it is not among the six).

    python benchmarks/bench_tree_match.py [--data DIR] [--out benchmarks/results]

writes tree_match.json and tree_match.md (atomically).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from predictor.learn.data import load_dataset  # noqa: E402
from predictor.trace.tree import EnergyTree, Node  # noqa: E402
from predictor.trace.zoo import build_zoo_tree  # noqa: E402

SIX = (
    "bert-base-uncased",
    "distilbert-base-uncased",
    "roberta-base",
    "gpt2",
    "distilgpt2",
    "openai-gpt",
)
TOLERANCE = 0.01

#: Why a module's features differ from the dataset's (transformers 4.2.2 -> 5). Keyed by the
#: dataset's class name; the measured bound is in the results table.
EXPLANATIONS: dict[str, str] = {
    "BertSelfAttention": (
        "scores scaled by mul (1 FLOP, 3x4 B per score) instead of div (1 FLOP, 2x4 B); no "
        "attention-mask add (no mask is passed; 4.2.2 always added the extended mask: 1 FLOP, "
        "2x4 B per score): -1 FLOP and -4 B per score element"
    ),
    "RobertaSelfAttention": "as BertSelfAttention",
    "BertAttention": "contains BertSelfAttention",
    "RobertaAttention": "contains RobertaSelfAttention",
    "BertLayer": "contains BertSelfAttention",
    "RobertaLayer": "contains RobertaSelfAttention",
    "BertEncoder": "contains 12 BertSelfAttention",
    "RobertaEncoder": "contains 12 RobertaSelfAttention",
    "MultiHeadSelfAttention": (
        "renamed DistilBertSelfAttention; 4.2.2 divided q (B*S*768 elements, 2x4 B each) "
        "before the matmul, transformers 5 multiplies the scores (B*12*S*S elements, 3x4 B "
        "each) after it; the mask path (masked_fill, uncounted) is gone"
    ),
    "TransformerBlock": "contains the attention",
    "Transformer": "contains 6 attentions",
    "Attention": (
        "renamed GPT2Attention; scores scaled by mul (3x4 B per score) instead of div "
        "(2x4 B), and the causal mask is added (1 FLOP, 2x4 B per score) instead of applied "
        "by torch.where (uncounted): +1 FLOP and +12 B per score element"
    ),
    "Block": "renamed GPT2Block; contains the attention",
    "MLP": "renamed GPT2MLP; same ops",
    "MultiHeadAttention": (
        "tiny-ctrl: scaling by mul (3x4 B per score) instead of div (2x4 B); the causal mask "
        "is no longer multiplied by -1e4 on each call (S*S fewer FLOPs)"
    ),
    "EncoderLayer": "tiny-ctrl: contains MultiHeadAttention",
}
NOTES: tuple[str, ...] = (
    "openai-gpt matches exactly at every level: its transformers-5 code keeps the 4.2.2 ops.",
    "Model-level mem_bytes differences are the sums of the module-level ones above; model "
    "flops stay within 0.1 %.",
    "tiny-ctrl's dataset has `h.N.ffn.1:ReLU` at module level (IrEne had no ReLU primitive); "
    "here activation modules are ML primitives, so it is traced as an ML node of the same name "
    "and matched by fqn.",
    "DistilBERT is fed position_ids of shape (B, S) in IrEne mode, as transformers 4.2.2 "
    "built them; transformers 5 uses (1, S), which would make the position Embedding node "
    "8x smaller in mem_bytes at batch 8.",
)


def _ratio(traced: float, data: float) -> float:
    if data == 0.0:
        return 1.0 if abs(traced) < 1e-9 else math.inf
    return traced / data


def _worse(a: float, b: float) -> float:
    """The ratio further from 1 (in log terms)."""

    def dist(r: float) -> float:
        return math.inf if r <= 0 or math.isinf(r) else abs(math.log(r))

    return a if dist(a) >= dist(b) else b


def compare(traced: EnergyTree, data: EnergyTree) -> dict[str, Any]:
    """Ratios per level for one configuration."""
    out: dict[str, Any] = {"missing_ml": [], "missing_module": []}
    # ML nodes: by name, k-th occurrence
    by_name: dict[str, list[Node]] = defaultdict(list)
    for node in traced.nodes("ml"):
        by_name[node.name].append(node)
    seen: dict[str, int] = defaultdict(int)
    worst = {"ml_flops": 1.0, "ml_mem": 1.0, "module_flops": 1.0, "module_mem": 1.0}
    worst_at: dict[str, str] = {}
    for node in data.nodes("ml"):
        k = seen[node.name]
        seen[node.name] += 1
        candidates = by_name.get(node.name, [])
        if k >= len(candidates):
            out["missing_ml"].append(node.name)
            continue
        mine = candidates[k]
        for key, a, b in (
            ("ml_flops", mine.flops, node.flops),
            ("ml_mem", mine.mem_bytes, node.mem_bytes),
        ):
            r = _ratio(a, b)
            if _worse(r, worst[key]) == r and r != worst[key]:
                worst_at[key] = node.name
            worst[key] = _worse(r, worst[key])
    # modules: by fqn
    by_fqn = {n.fqn: n for n in traced.nodes("module")}
    by_fqn.update(
        {
            n.fqn: n
            for n in traced.nodes("ml")
            if n.fqn not in by_fqn and n.type not in ("MatMul", "Softmax")
        }
    )
    module_classes: dict[str, dict[str, float]] = {}
    for node in data.nodes("module"):
        mine = by_fqn.get(node.fqn)
        if mine is None:
            out["missing_module"].append(node.name)
            continue
        rf, rm = _ratio(mine.flops, node.flops), _ratio(mine.mem_bytes, node.mem_bytes)
        cls = module_classes.setdefault(
            node.type, {"flops": 1.0, "mem": 1.0, "traced_as": mine.type}
        )  # type: ignore[dict-item]
        cls["flops"], cls["mem"] = _worse(rf, cls["flops"]), _worse(rm, cls["mem"])
        for key, r in (("module_flops", rf), ("module_mem", rm)):
            if _worse(r, worst[key]) == r and r != worst[key]:
                worst_at[key] = node.name
            worst[key] = _worse(r, worst[key])
    out.update(worst)
    out["worst_at"] = worst_at
    # traced ML nodes the dataset has no row for (transformers-5 activation modules)
    out["extra_ml"] = sorted(
        {name.rpartition(":")[2] for name, nodes in by_name.items() if len(nodes) > seen[name]}
    )
    out["module_classes"] = module_classes
    out["model_flops"] = _ratio(traced.root.flops, data.root.flops)
    out["model_mem"] = _ratio(traced.root.mem_bytes, data.root.mem_bytes)
    return out


def run(data_dir: Path) -> dict[str, Any]:
    dataset = load_dataset(data_dir)
    per_model: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for data_tree in dataset.trees:
        model = data_tree.model_name
        tree = build_zoo_tree(model, data_tree.batch_size, data_tree.seq_len)
        res = compare(tree, data_tree)
        agg = per_model.setdefault(
            model,
            {
                "configs": 0,
                "ml_nodes": 0,
                "missing_ml": set(),
                "missing_module": set(),
                "extra_ml": set(),
                "module_classes": {},
                "worst_at": {},
                **{
                    k: 1.0
                    for k in (
                        "ml_flops",
                        "ml_mem",
                        "module_flops",
                        "module_mem",
                        "model_flops",
                        "model_mem",
                    )
                },
            },
        )
        agg["configs"] += 1
        agg["ml_nodes"] += len(data_tree.nodes("ml"))
        agg["missing_ml"].update(res["missing_ml"])
        agg["missing_module"].update(res["missing_module"])
        agg["extra_ml"].update(res["extra_ml"])
        for key in ("ml_flops", "ml_mem", "module_flops", "module_mem", "model_flops", "model_mem"):
            new = _worse(res[key], agg[key])
            if new != agg[key]:
                agg["worst_at"][key] = {
                    "node": res["worst_at"].get(key, model),
                    "batch_size": data_tree.batch_size,
                    "seq_len": data_tree.seq_len,
                }
            agg[key] = new
        for cls, v in res["module_classes"].items():
            c = agg["module_classes"].setdefault(
                cls, {"flops": 1.0, "mem": 1.0, "traced_as": v["traced_as"]}
            )
            c["flops"], c["mem"] = _worse(v["flops"], c["flops"]), _worse(v["mem"], c["mem"])
    elapsed = time.perf_counter() - started
    models: dict[str, Any] = {}
    for model, agg in per_model.items():
        agg["missing_ml"] = sorted(agg["missing_ml"])
        agg["missing_module"] = sorted(agg["missing_module"])
        agg["extra_ml"] = sorted(agg["extra_ml"])
        within = lambda r: abs(r - 1.0) <= TOLERANCE  # noqa: E731
        agg["pass"] = bool(
            not agg["missing_ml"]
            and within(agg["ml_flops"])
            and within(agg["ml_mem"])
            and within(agg["model_flops"])
        )
        agg["gating"] = model in SIX
        models[model] = agg
    return {
        "data": str(data_dir),
        "tolerance": TOLERANCE,
        "configs": sum(m["configs"] for m in models.values()),
        "skipped_configs": dataset.skipped,
        "elapsed_s": round(elapsed, 2),
        "all_six_pass": all(models[m]["pass"] for m in SIX if m in models),
        "models": models,
    }


def _fmt(r: float) -> str:
    return "inf" if math.isinf(r) else f"{r:.4f}"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Traced trees vs the IrEne dataset (device_1)",
        "",
        f"`python benchmarks/bench_tree_match.py` - {result['configs']} configurations, "
        f"IrEne counting mode, eager attention, {result['elapsed_s']} s. Ratio = traced / dataset, "
        f"worst (furthest from 1) over all configurations and nodes of the level. "
        f"Criteria: ML flops and mem_bytes and model flops within {result['tolerance']:.0%}.",
        "",
        f"**All six HF models pass: {'yes' if result['all_six_pass'] else 'NO'}**",
        "",
        "| model | configs | ML nodes | ML flops | ML mem_bytes | module flops | module mem_bytes | model flops | model mem_bytes | missing ML | pass |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, m in result["models"].items():
        lines.append(
            f"| {model}{'' if m['gating'] else ' (not gating)'} | {m['configs']} | {m['ml_nodes']} | "
            f"{_fmt(m['ml_flops'])} | {_fmt(m['ml_mem'])} | {_fmt(m['module_flops'])} | "
            f"{_fmt(m['module_mem'])} | {_fmt(m['model_flops'])} | {_fmt(m['model_mem'])} | "
            f"{len(m['missing_ml'])} | {'yes' if m['pass'] else 'no'} |"
        )
    lines += [
        "",
        "## Module-level differences (transformers 5 vs the dataset's 4.2.2)",
        "",
        "Worst ratio per module class over all configurations; classes within 0.1 % are omitted.",
        "",
        "| model | dataset class | traced class | flops ratio | mem_bytes ratio | cause |",
        "|---|---|---|---|---|---|",
    ]
    for model, m in result["models"].items():
        for cls, v in sorted(m["module_classes"].items()):
            if abs(v["flops"] - 1) <= 1e-3 and abs(v["mem"] - 1) <= 1e-3 and cls == v["traced_as"]:
                continue
            cause = EXPLANATIONS.get(cls, "see notes")
            lines.append(
                f"| {model} | {cls} | {v['traced_as']} | {_fmt(v['flops'])} | {_fmt(v['mem'])} | {cause} |"
            )
    lines += [
        "",
        "## Traced ML nodes without a dataset row",
        "",
        "Types of traced ML nodes the dataset has no row for (every dataset ML node has its "
        "traced node, one to one). They are activation modules transformers 5 added where "
        "4.2.2 called a function; retracing for training drops them, their work staying their "
        "parent's own ops, as measured.",
        "",
    ]
    lines += [
        f"- {model}: {', '.join(m['extra_ml']) or 'none'}" for model, m in result["models"].items()
    ]
    lines += ["", "## Notes", ""] + [f"- {note}" for note in NOTES]
    missing = {
        model: m["missing_module"] for model, m in result["models"].items() if m["missing_module"]
    }
    if missing:
        lines += ["", "## Dataset modules with no traced module of that fqn", ""]
        for model, names in missing.items():
            shown = ", ".join(f"`{n}`" for n in names[:6])
            lines.append(f"- {model}: {len(names)} ({shown}{', ...' if len(names) > 6 else ''})")
    if result["skipped_configs"]:
        lines += ["", "## Dataset configurations without a tree", ""]
        lines += [f"- {s}" for s in result["skipped_configs"]]
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=REPO.parent / "shared" / "irene-data" / "device_1"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    result = run(args.data)
    _atomic_write(args.out / "tree_match.json", json.dumps(result, indent=2, default=str) + "\n")
    _atomic_write(args.out / "tree_match.md", markdown(result))
    print(markdown(result))
    return 0 if result["all_six_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
