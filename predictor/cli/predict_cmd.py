"""``irene predict MODEL --batch-size B --seq-len S``: predicted joules per node + bottlenecks.

With ``--new-tokens N`` (and ``--prompt-len P``) the model generates: the prefill and every
decode step are predicted (:func:`predictor.gate.engine.predict_generation_spec`) and the
output leads with the generation's joules (prefill, decode, per output token, per request),
then the mean decode step's tree per module; ``--format json`` has a top-level
``"generation"`` object and the ``"prefill"`` and ``"decode_step"`` trees."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from predictor.trace.tree import EnergyTree, Node

if TYPE_CHECKING:
    from predictor.gate.scope import EnergyScope
    from predictor.learn.generation import GenerationEnergy

__all__ = ["bottlenecks", "format_markdown", "format_text", "generation_text", "register", "run"]


def register(subparsers: Any) -> None:
    from predictor.cli.inputs import add_input_options, positive_int
    from predictor.cli.output import add_format_option

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
    add_input_options(parser)
    parser.add_argument(
        "--max-extrapolated",
        metavar="PCT",
        help="fail (exit 1) when more than this share of the energy is extrapolated, e.g. 5%%",
    )
    parser.add_argument(
        "--profile",
        metavar="NAME|PATH",
        help="shipped profile name or profile file (default: irene-device-1, static)",
    )
    add_format_option(parser)
    parser.add_argument(
        "--depth",
        type=positive_int,
        default=2,
        metavar="N",
        help="tree depth shown in text and markdown (default 2)",
    )
    parser.add_argument(
        "--top", type=positive_int, default=8, metavar="N", help="bottleneck rows (default 8)"
    )
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


def _rows(tree: EnergyTree, depth: int) -> list[tuple[int, Node, str, int]]:
    from predictor.cli.tree_cmd import collapsed_rows

    return collapsed_rows(tree, max_depth=depth)


def _energy(value: float | None) -> str:
    from predictor.gate.units import format_energy

    return "?" if value is None else format_energy(value)


def _header(tree: EnergyTree, scope: EnergyScope) -> list[str]:
    gen = tree.meta.get("generation")
    if isinstance(gen, dict) and gen.get("phase") == "decode":
        shape = f"batch {tree.batch_size}  decode step (mean cache {gen.get('cache_len', 0):.0f})"
    else:
        shape = f"batch {tree.batch_size}  seq {tree.seq_len}"
    dtypes = tree.dtypes()
    if dtypes:  # the dtype doing most of the work first
        shape += f"  {dtypes[0]}" + (f" (also {', '.join(dtypes[1:])})" if dtypes[1:] else "")
    return [f"{tree.model_name}  {shape}", f"joules of {scope.line()}"]


def format_text(tree: EnergyTree, scope: EnergyScope, depth: int = 2, top: int = 8) -> str:
    """The tree to ``depth`` (repeated layers collapsed, energy of one each), the bottlenecks,
    and what the joules describe."""
    lines = _header(tree, scope)
    for d, node, label, count in _rows(tree, depth):
        flag = "  [extrapolated: type unseen in training]" if node.extrapolated else ""
        each = " each" if count > 1 else ""
        lines.append(f"{'  ' * d}{label}  {_energy(node.energy_j)}{each}{flag}")
    b = bottlenecks(tree, top)
    lines.append("")
    lines.append("bottlenecks: innermost modules (repeated blocks summed)")
    for row in b["modules"]:
        lines.append(
            f"  {row['share_pct']:6.2f} %  {_energy(row['energy_j']):>10}  "
            f"{row['pattern']} x{row['count']}"
        )
    lines.append("bottlenecks: primitive types")
    for row in b["primitive_types"]:
        flag = "  [extrapolated]" if row["extrapolated"] else ""
        lines.append(
            f"  {row['share_pct']:6.2f} %  {_energy(row['energy_j']):>10}  "
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


def format_markdown(tree: EnergyTree, scope: EnergyScope, depth: int = 2, top: int = 8) -> str:
    """The same as :func:`format_text`, as Markdown tables (names escaped)."""
    from predictor.gate.escape import md_code, md_text

    lines = [
        f"### {md_text(tree.model_name)}: predicted energy",
        "",
        f"Batch {tree.batch_size}, sequence {tree.seq_len}; joules of {md_text(scope.line())}.",
        "",
        "| Node | Energy | Extrapolated |",
        "|---|---:|---|",
    ]
    for d, node, label, count in _rows(tree, depth):
        each = " each" if count > 1 else ""
        lines.append(
            f"| {'&nbsp;&nbsp;' * d}{md_code(label)} | {_energy(node.energy_j)}{each} | "
            f"{'yes' if node.extrapolated else ''} |"
        )
    b = bottlenecks(tree, top)
    lines += ["", "| Innermost modules (repeated summed) | Count | Energy | Share |"]
    lines.append("|---|---:|---:|---:|")
    for row in b["modules"]:
        lines.append(
            f"| {md_code(row['pattern'])} | {row['count']} | {_energy(row['energy_j'])} | "
            f"{row['share_pct']:.2f} % |"
        )
    lines += ["", "| Primitive type | Count | Energy | Share |", "|---|---:|---:|---:|"]
    for row in b["primitive_types"]:
        flag = " (extrapolated)" if row["extrapolated"] else ""
        lines.append(
            f"| {md_text(row['type'])}{flag} | {row['count']} | {_energy(row['energy_j'])} | "
            f"{row['share_pct']:.2f} % |"
        )
    lines += ["", *(f"- {md_text(line)}" for line in coverage_lines(tree))]
    return "\n".join(lines) + "\n"


def _prefill_text(w: Any) -> str:
    if w.prefill_size == w.batch_size:
        return "the batch's prompts in one pass"
    return f"{w.prefill_passes:g} passes of {w.prefill_size} prompt(s)"


def generation_text(energy: GenerationEnergy) -> list[str]:
    """The generation's joules, for a terminal."""
    from predictor.gate.units import format_energy as fe

    w = energy.workload
    lines = [
        f"generation: batch {w.batch_size}, prompt {w.prompt_len} tokens, {w.new_tokens} new "
        f"tokens{f', {w.dtype}' if w.dtype else ''}",
        f"  {fe(energy.j_per_output_token)} per output token, {fe(energy.j_per_request)} per "
        "request",
        f"  prefill {fe(energy.prefill_j)} ({_prefill_text(w)}), decode {fe(energy.decode_j)} "
        f"({w.decode_steps} steps of the batch, {fe(energy.decode_step_j)} each on average)",
    ]
    if energy.overhead_j > 0:
        lines.append(
            f"  of which serving overhead {fe(energy.overhead_j)} (GPU idle while the host "
            f"schedules and samples: {fe(energy.step_overhead_j)} per decode step)"
        )
    step_time = energy.decode_step_time_s
    if step_time is not None and energy.time_s is not None:
        lines.append(
            f"  predicted time: {step_time * 1e3:.3g} ms per decode step (a request's time per "
            f"output token), {energy.time_s:.3g} s for the whole generation"
        )
    cache = ", ".join(f"{s.cache_len}" for s in energy.samples)
    if cache:
        lines.append(
            f"  decode summed over cache lengths {energy.samples[0].cache_len}.."
            f"{energy.samples[-1].cache_len} from steps traced at {cache}: exact for an energy "
            f"affine in the cache length, within {fe(energy.decode_bound_j)} if monotone"
        )
    lines += [f"  note: {n}" for n in energy.notes]
    lines.append(
        "the tree below: the mean decode step of the batch, the work traced in it (serving "
        "overhead not included)"
    )
    return lines


def _generation_markdown(energy: GenerationEnergy) -> list[str]:
    from predictor.gate.units import format_energy as fe

    w = energy.workload
    lines = [
        f"Generation: batch {w.batch_size}, prompt {w.prompt_len} tokens, {w.new_tokens} new "
        f"tokens{f', {w.dtype}' if w.dtype else ''}.",
        "",
        "| Quantity | Energy |",
        "|---|---:|",
        f"| per output token | {fe(energy.j_per_output_token)} |",
        f"| per request | {fe(energy.j_per_request)} |",
        f"| prefill ({_prefill_text(w)}) | {fe(energy.prefill_j)} |",
        f"| decode ({w.decode_steps} steps of the batch) | {fe(energy.decode_j)} |",
        f"| decode step (mean) | {fe(energy.decode_step_j)} |",
    ]
    if energy.overhead_j > 0:
        lines += [
            f"| of which serving overhead, whole generation | {fe(energy.overhead_j)} |",
            f"| of which serving overhead, per decode step | {fe(energy.step_overhead_j)} |",
        ]
    lines.append(f"| decode sum's error bound | {fe(energy.decode_bound_j)} |")
    step_time = energy.decode_step_time_s
    if step_time is not None and energy.time_s is not None:
        lines += [
            "",
            f"Predicted time: {step_time * 1e3:.3g} ms per decode step, {energy.time_s:.3g} s "
            "for the whole generation.",
        ]
    lines += [f"Note: {n}" for n in energy.notes]
    lines += [
        "",
        "The tree below is the mean decode step of the batch, the work traced in it (serving "
        "overhead not included).",
        "",
    ]
    return lines


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
    from predictor.cli.inputs import inputs_from_args
    from predictor.cli.output import model_code, write_output
    from predictor.gate.engine import predict_generation_spec, trace_spec
    from predictor.gate.report import profile_identity
    from predictor.gate.scope import energy_scope
    from predictor.learn.profile import load_profile, profile_counting

    inputs = inputs_from_args(args)
    max_share = _max_share(args.max_extrapolated)
    profile = load_profile(args.profile)
    scope = energy_scope(profile_identity(profile))
    if inputs.generation:
        with model_code():
            prediction = predict_generation_spec(args.model, inputs, profile)
        tree = prediction.decode_step
        if args.format == "json":
            out = {
                "generation": prediction.energy.to_dict(),
                "prefill": prediction.prefill.to_dict(),
                "decode_step": tree.to_dict(),
                "bottlenecks": bottlenecks(tree, args.top),
                "energy_scope": scope.to_dict(),
                "extrapolated_share": tree.extrapolated_share(),
            }
            write_output(json.dumps(out, indent=2, allow_nan=False))
        elif args.format == "markdown":
            body = format_markdown(tree, scope, args.depth, args.top).split("\n")
            write_output(
                "\n".join([*body[:2], *_generation_markdown(prediction.energy), *body[2:]])
            )
        else:
            text = format_text(tree, scope, args.depth, args.top).split("\n")
            write_output("\n".join([*text[:2], *generation_text(prediction.energy), *text[2:]]))
    else:
        with model_code():
            tree = trace_spec(args.model, inputs, counting_mode=profile_counting(profile))
        profile.predict(tree)
        if args.format == "json":
            out = tree.to_dict()
            out["bottlenecks"] = bottlenecks(tree, args.top)
            out["energy_scope"] = scope.to_dict()
            out["extrapolated_share"] = tree.extrapolated_share()
            write_output(json.dumps(out, indent=2, allow_nan=False))
        elif args.format == "markdown":
            write_output(format_markdown(tree, scope, args.depth, args.top))
        else:
            write_output(format_text(tree, scope, args.depth, args.top))
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
