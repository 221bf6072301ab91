"""``irene predict MODEL --batch-size B --seq-len S``: predicted joules per node + bottlenecks."""

from __future__ import annotations

import argparse
import json
from typing import Any

from predictor.trace.tree import EnergyTree, Node

__all__ = ["bottlenecks", "format_text", "register", "run"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "predict",
        help="predict a model's inference energy per node with a hardware profile",
        description=(
            "Trace MODEL (zoo name or package.module:factory) without running it, predict the "
            "energy of every node with a profile, and show where the energy goes."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="zoo name or package.module:factory")
    parser.add_argument("-b", "--batch-size", type=int, required=True, help="input batch size")
    parser.add_argument("-s", "--seq-len", type=int, required=True, help="input sequence length")
    parser.add_argument(
        "--profile", help="shipped profile name or profile file (default: irene-device-1, static)"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--depth", type=int, default=2, help="tree depth shown in text (default 2)")
    parser.add_argument("--top", type=int, default=8, help="bottleneck rows (default 8)")
    parser.set_defaults(handler=run)


def _module_energy(node: Node) -> float:
    return float(node.energy_j or 0.0)


def _pattern(node: Node) -> str:
    """``encoder.layer.3.output:BertOutput`` -> ``encoder.layer.*.output:BertOutput``."""
    parts = ["*" if p.isdigit() else p for p in node.fqn.split(".")] if node.fqn else []
    return f"{'.'.join(parts)}:{node.type}"


def bottlenecks(tree: EnergyTree, top: int = 8) -> dict[str, Any]:
    """Where the energy goes: innermost modules (only primitives below them), grouped over
    repeated blocks (``encoder.layer.*``), and primitive types. Shares are of the model's
    predicted energy (the root's ``energy_j``)."""
    total = float(tree.root.energy_j or 0.0)

    def share(e: float) -> float:
        return 100.0 * e / total if total > 0 else 0.0

    groups: dict[str, list[float]] = {}
    for n in tree.nodes("module"):
        if n.children and all(c.level == "ml" for c in n.children):
            groups.setdefault(_pattern(n), []).append(_module_energy(n))
    by_type: dict[str, list[float]] = {}
    extrapolated: set[str] = set()
    for n in tree.nodes("ml"):
        by_type.setdefault(n.type, []).append(float(n.energy_j or 0.0))
        if n.extrapolated:
            extrapolated.add(n.type)
    mods = sorted(groups.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    types = sorted(by_type.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    return {
        "model_energy_j": total,
        "modules": [
            {"pattern": k, "count": len(v), "energy_j": sum(v), "share_pct": share(sum(v))}
            for k, v in mods[:top]
        ],
        "primitive_types": [
            {
                "type": t,
                "count": len(v),
                "energy_j": sum(v),
                "share_pct": share(sum(v)),
                "extrapolated": t in extrapolated,
            }
            for t, v in types[:top]
        ],
    }


def _joules(value: float | None) -> str:
    if value is None:
        return "?"
    if abs(value) >= 1.0:
        return f"{value:.3f} J"
    return f"{value * 1e3:.3f} mJ"


def format_text(tree: EnergyTree, depth: int = 2, top: int = 8) -> str:
    meta = tree.meta.get("profile", {})
    lines = [
        f"{tree.model_name}  batch {tree.batch_size}  seq {tree.seq_len}  "
        f"profile {meta.get('name', '?')} ({meta.get('feature_set', '?')} features)",
    ]

    def visit(node: Node, d: int) -> None:
        flag = "  [extrapolated: type unseen in training]" if node.extrapolated else ""
        lines.append(f"{'  ' * d}{node.name}  {_joules(node.energy_j)}{flag}")
        if d < depth:
            for child in node.children:
                visit(child, d + 1)

    visit(tree.root, 0)
    b = bottlenecks(tree, top)
    lines.append("")
    lines.append("bottlenecks: innermost modules (repeated blocks summed)")
    for row in b["modules"]:
        lines.append(
            f"  {row['share_pct']:6.2f} %  {_joules(row['energy_j']):>12}  "
            f"{row['pattern']} x{row['count']}"
        )
    lines.append("bottlenecks: primitive types")
    for row in b["primitive_types"]:
        flag = "  [extrapolated]" if row["extrapolated"] else ""
        lines.append(
            f"  {row['share_pct']:6.2f} %  {_joules(row['energy_j']):>12}  "
            f"{row['type']} x{row['count']}{flag}"
        )
    ext = [n.name for n in tree.walk() if n.extrapolated]
    if ext:
        lines.append(
            f"note: {len(ext)} node(s) of types the profile never saw were predicted by its "
            "pooled fallback regressor (marked extrapolated)"
        )
    return "\n".join(lines)


def trace_model(
    model: str, batch_size: int, seq_len: int, counting_mode: str = "irene"
) -> EnergyTree:
    """The model's tree (static features) from the zoo, in the profile's counting mode."""
    from predictor.trace import zoo

    tree: EnergyTree = zoo.build_zoo_tree(model, batch_size, seq_len, counting_mode=counting_mode)
    return tree


def run(args: argparse.Namespace) -> int:
    from predictor.cli.output import model_code
    from predictor.learn.profile import load_profile, profile_counting

    profile = load_profile(args.profile)
    with model_code():
        tree = trace_model(args.model, args.batch_size, args.seq_len, profile_counting(profile))
    profile.predict(tree)
    if args.format == "json":
        out = tree.to_dict()
        out["bottlenecks"] = bottlenecks(tree, args.top)
        print(json.dumps(out, indent=2, allow_nan=False))
    else:
        print(format_text(tree, args.depth, args.top))
    return 0
