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
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="zoo name, package.module:factory, a config.json (or its folder) or a cached hub id",
    )
    parser.add_argument("-b", "--batch-size", type=int, help="input batch size (token models)")
    parser.add_argument("-s", "--seq-len", type=int, help="input sequence length (token models)")
    add_input_options(parser)
    parser.add_argument(
        "--max-extrapolated",
        metavar="PCT",
        help="fail (exit 1) when more than this share of the energy is extrapolated, e.g. 5%%",
    )
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
    lines += coverage_lines(tree)
    return "\n".join(lines)


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """``--input NAME=SHAPE[:DTYPE]`` (repeatable): named input tensors, for models that take
    more or other than token ids (``pixel_values=8x3x224x224``)."""
    parser.add_argument(
        "--input",
        dest="inputs",
        action="append",
        metavar="NAME=SHAPE[:DTYPE]",
        help="a named input tensor, built on the meta device (repeatable), e.g. "
        "pixel_values=8x3x224x224 or input_features=1x80x3000:float16; with -b/-s too, joined "
        "to the token ids",
    )


def parse_inputs(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``--input`` options as named tensor specs (None when none), or a ConfigError."""
    from predictor.errors import ConfigError
    from predictor.trace.input_specs import parse_input_option

    if not getattr(args, "inputs", None):
        return None
    out: dict[str, Any] = {}
    for text in args.inputs:
        try:
            name, spec = parse_input_option(text)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        out[name] = spec
    return out


def trace_model(
    model: str,
    batch_size: int | None,
    seq_len: int | None,
    counting_mode: str = "irene",
    inputs: dict[str, Any] | None = None,
) -> EnergyTree:
    """The model's tree (static features) from the zoo, in the profile's counting mode."""
    from predictor.trace import zoo

    tree: EnergyTree = zoo.build_zoo_tree(
        model, batch_size, seq_len, counting_mode=counting_mode, inputs=inputs
    )
    return tree


def coverage_lines(tree: EnergyTree) -> list[str]:
    """What the prediction cannot vouch for: the extrapolated share of the energy, the ops with
    no formula (not counted), and a dtype the profile was not trained on."""
    share = tree.extrapolated_share()
    types = sorted({f"{n.type} ({n.kernel or '?'})" for n in tree.walk() if n.extrapolated})
    lines = [
        f"extrapolated: {100 * share:.2f} % of the energy"
        + (
            f" (kernel classes the profile has no training data for: {', '.join(types)})"
            if types
            else ""
        )
    ]
    if tree.unsupported_ops:
        listed = ", ".join(f"{u.op} in {u.module} (x{u.count})" for u in tree.unsupported_ops)
        lines.append(f"unsupported ops (not counted): {listed}")
    else:
        lines.append("unsupported ops: none")
    for key in ("dtype_warning", "profile_warning"):
        if tree.meta.get(key):
            lines.append(f"note: {tree.meta[key]}")
    return lines


def run(args: argparse.Namespace) -> int:
    from predictor.cli.output import model_code
    from predictor.errors import ConfigError
    from predictor.learn.profile import load_profile, profile_counting

    inputs = parse_inputs(args)
    if inputs is None and (args.batch_size is None or args.seq_len is None):
        raise ConfigError(
            "give --batch-size and --seq-len (token models), or the model's inputs with "
            "--input NAME=SHAPE (e.g. --input pixel_values=8x3x224x224)"
        )
    max_share = _max_share(args.max_extrapolated)
    profile = load_profile(args.profile)
    with model_code():
        tree = trace_model(
            args.model, args.batch_size, args.seq_len, profile_counting(profile), inputs
        )
    profile.predict(tree)
    if args.format == "json":
        out = tree.to_dict()
        out["bottlenecks"] = bottlenecks(tree, args.top)
        out["extrapolated_share"] = tree.extrapolated_share()
        print(json.dumps(out, indent=2, allow_nan=False))
    else:
        print(format_text(tree, args.depth, args.top))
    if max_share is not None and tree.extrapolated_share() > max_share:
        import sys

        print(
            f"irene predict: {tree.model_name}: {100 * tree.extrapolated_share():.2f} % of the "
            f"energy is extrapolated, more than --max-extrapolated {100 * max_share:g} %",
            file=sys.stderr,
        )
        return 1
    return 0


def _max_share(text: str | None) -> float | None:
    from predictor.errors import ConfigError
    from predictor.gate.units import parse_percent

    if text is None:
        return None
    try:
        value = parse_percent(text)
    except ValueError as exc:
        raise ConfigError(f"--max-extrapolated {exc}") from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"--max-extrapolated must be between 0% and 100% (got {text!r})")
    return value
