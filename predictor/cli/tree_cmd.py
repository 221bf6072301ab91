"""``irene tree MODEL``: the model's tree with MFLOPs, MiB and parameters per node.

Text view: a rich tree where runs of identical sibling layers (``encoder.layer.0`` ...
``encoder.layer.11`` with equal subtrees) are shown once as ``encoder.layer.0-11 (x12)``, with
the features of one layer. JSON view: ``EnergyTree.to_dict()``, every node with ``name``,
``level``, ``type``, ``flops`` (MFLOPs), ``mem_bytes`` (MiB), ``num_parameters`` and
``children``, and the tree's ``units`` block saying so. Markdown view: the collapsed tree as
a table.

With ``--new-tokens N`` the model generates: the trees of its prefill and of a decode step
(at the middle of the cache lengths the decode steps are traced at: attention runs as a fused
kernel over a KV cache, :mod:`predictor.trace.generation`); JSON holds the prefill and every
traced decode step with the number of steps it stands for.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from predictor.trace.tree import EnergyTree, Node

__all__ = ["collapse_layers", "collapsed_rows", "register", "render_markdown", "render_text"]

_INDEXED = re.compile(r"^(?P<prefix>.*\.)?(?P<index>\d+)$")


def register(subparsers: Any) -> None:
    from predictor.cli.inputs import add_input_options, positive_int
    from predictor.cli.output import add_format_option

    parser = subparsers.add_parser(
        "tree",
        help="show a model's tree with static features (MFLOPs, MiB, parameters)",
        description=(
            "Trace MODEL (a zoo name or 'package.module:factory') on token inputs of shape "
            "(batch, seq), computing nothing, and show its model/module/ML-primitive tree."
        ),
    )
    parser.add_argument(
        "model", metavar="MODEL", nargs="?", help="zoo name (see --list) or package.module:factory"
    )
    parser.add_argument("--list", action="store_true", help="list the zoo's model names and exit")
    add_input_options(parser)
    add_format_option(parser)
    parser.add_argument(
        "--counting",
        choices=("irene", "native"),
        default="irene",
        help="irene: the IrEne dataset's counting rules (default); native: what executes",
    )
    parser.add_argument(
        "--attn", choices=("eager", "sdpa"), default="eager", help="attention implementation"
    )
    parser.add_argument(
        "--max-depth",
        type=positive_int,
        default=None,
        metavar="N",
        help="text and markdown: levels to show",
    )
    parser.add_argument(
        "--no-collapse", action="store_true", help="text and markdown: show every repeated layer"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from predictor.errors import ModelError
    from predictor.trace.zoo import known_models

    if args.list:
        sys.stdout.write("\n".join(known_models()) + "\n")
        return 0
    if args.model is None:
        raise ModelError(
            f"give a MODEL: one of {', '.join(known_models())}, or package.module:factory"
        )

    from predictor.cli.inputs import inputs_from_args
    from predictor.cli.output import model_code, write_output
    from predictor.gate.engine import trace_spec

    inputs = inputs_from_args(args)
    if inputs.generation:
        return _run_generation(args, inputs)
    with model_code():
        tree = trace_spec(
            args.model,
            inputs,
            counting_mode=args.counting,
            attn_implementation=args.attn,
        )
    if args.format == "json":
        write_output(tree.to_json())
    elif args.format == "markdown":
        write_output(render_markdown(tree, max_depth=args.max_depth, collapse=not args.no_collapse))
    else:
        render_text(tree, max_depth=args.max_depth, collapse=not args.no_collapse)
    return 0


def _run_generation(args: argparse.Namespace, inputs: Any) -> int:
    import json

    from predictor.cli.output import model_code, write_output
    from predictor.trace.generation import build_generation_model, trace_generation

    workload = inputs.workload()
    with model_code():
        model = build_generation_model(args.model, workload.dtype)
        trees = trace_generation(model, workload, name=args.model, counting_mode=args.counting)
    if args.format == "json":
        out = {
            "generation": {
                "workload": workload.to_dict(),
                "cache": trees.cache,
                "decode_steps": workload.decode_steps,
            },
            "prefill": trees.prefill.to_dict(),
            "decode_steps": [
                {"cache_len": p.cache_len, "steps": p.weight, "tree": t.to_dict()}
                for p, t in trees.decode
            ],
        }
        write_output(json.dumps(out, indent=2, allow_nan=False))
        return 0
    shown = [("prefill", trees.prefill)]
    if trees.decode:
        point, tree = trees.decode[len(trees.decode) // 2]
        lengths = ", ".join(str(p.cache_len) for p, _ in trees.decode)
        shown.append(
            (
                f"decode step at cache length {point.cache_len} (of {workload.decode_steps} "
                f"steps, traced at {lengths})",
                tree,
            )
        )
    collapse = not args.no_collapse
    for title, tree in shown:
        if args.format == "markdown":
            body = render_markdown(tree, max_depth=args.max_depth, collapse=collapse)
            write_output(f"#### {title}\n\n{body}")
        else:
            sys.stdout.write(f"{title}:\n")
            render_text(tree, max_depth=args.max_depth, collapse=collapse)
    return 0


# -- collapsing repeated layers -------------------------------------------------------------


def _signature(node: Node, prefix: str, top: bool = True) -> tuple[Any, ...]:
    """Structure and features of a subtree, with names relative to ``prefix``."""
    name = "" if top else node.name.removeprefix(prefix)
    return (
        name,
        node.type,
        node.level,
        round(node.flops, 6),
        round(node.mem_bytes, 6),
        node.num_parameters,
        tuple(_signature(c, prefix, top=False) for c in node.children),
    )


def collapse_layers(children: list[Node]) -> list[tuple[Node, str, int]]:
    """Group runs of consecutive siblings ``x.N:Class``, ``x.N+1:Class`` ... with identical
    subtrees into ``(first node, label, count)``; other nodes come back with count 1."""
    out: list[tuple[Node, str, int]] = []
    i = 0
    while i < len(children):
        node = children[i]
        m = (
            _INDEXED.match(node.fqn)
            if node.level != "ml" or node.type not in ("MatMul", "Softmax")
            else None
        )
        run_end = i + 1
        if m is not None:
            prefix = m.group("prefix") or ""
            start = int(m.group("index"))
            sig = _signature(node, f"{node.fqn}.")
            while run_end < len(children):
                nxt = children[run_end]
                expected = f"{prefix}{start + run_end - i}"
                if (
                    nxt.fqn != expected
                    or nxt.type != node.type
                    or _signature(nxt, f"{nxt.fqn}.") != sig
                ):
                    break
                run_end += 1
        count = run_end - i
        if count > 1 and m is not None:
            last = int(m.group("index")) + count - 1
            label = f"{node.fqn}-{last}:{node.type} (x{count})"
        else:
            label = node.name
        out.append((node, label, count))
        i = run_end
    return out


def collapsed_rows(
    tree: EnergyTree, *, max_depth: int | None = None, collapse: bool = True
) -> list[tuple[int, Node, str, int]]:
    """The tree as rows ``(depth, node, label, count)`` in pre-order, runs of identical layers
    as one row (:func:`collapse_layers`) unless ``collapse`` is False; the root is depth 0."""
    rows: list[tuple[int, Node, str, int]] = [(0, tree.root, tree.root.name, 1)]

    def add(node: Node, depth: int) -> None:
        if max_depth is not None and depth >= max_depth:
            return
        groups = (
            collapse_layers(node.children) if collapse else [(c, c.name, 1) for c in node.children]
        )
        for child, label, count in groups:
            rows.append((depth + 1, child, label, count))
            add(child, depth + 1)

    add(tree.root, 0)
    return rows


def footer(tree: EnergyTree) -> list[str]:
    """How the tree was traced, and what it could not count."""
    inputs = ", ".join(
        f"{k} {tuple(v['shape'])}" if isinstance(v, dict) and "shape" in v else f"{k}={v}"
        for k, v in tree.meta.get("inputs", {}).items()
    )
    lines = [
        f"counting mode: {tree.counting_mode}; attention: {tree.meta.get('attn_implementation')}; "
        f"inputs: {inputs}; traced on {tree.meta.get('execution')} tensors"
    ]
    if tree.meta.get("fallback_reason"):
        lines.append(f"note: {tree.meta['fallback_reason']}")
    if tree.unsupported_ops:
        listed = ", ".join(f"{u.op} in {u.module} (x{u.count})" for u in tree.unsupported_ops)
        lines.append(f"unsupported ops (not counted): {listed}")
    return lines


def render_markdown(
    tree: EnergyTree, *, max_depth: int | None = None, collapse: bool = True
) -> str:
    """The tree as a Markdown table (names escaped), repeated layers collapsed."""
    from predictor.gate.escape import md_code, md_text

    lines = [
        f"### {md_text(tree.root.name)}: model tree",
        "",
        "| Node | Level | MFLOPs | MiB | Parameters |",
        "|---|---|---:|---:|---:|",
    ]
    for depth, node, label, count in collapsed_rows(tree, max_depth=max_depth, collapse=collapse):
        each = " each" if count > 1 else ""
        indent = "&nbsp;&nbsp;" * depth
        lines.append(
            f"| {indent}{md_code(label)} | {node.level} | {node.flops:,.3f}{each} | "
            f"{node.mem_bytes:,.3f}{each} | {node.num_parameters:,}{each} |"
        )
    lines.append("")
    lines += [md_text(line) for line in footer(tree)]
    return "\n".join(lines) + "\n"


def _label(node: Node, name: str, count: int) -> str:
    from rich.markup import escape

    each = " each" if count > 1 else ""
    level_style = {"model": "bold", "module": "cyan", "ml": "green"}[node.level]
    params = f"  {node.num_parameters:,} params" if node.num_parameters else ""
    kind = escape(node.kernel) + " " if node.kernel else ""
    calls = f"  {node.count} calls" if node.count > 1 else ""
    dtype = f"  {escape(node.dtype)}" if node.dtype and node.level != "module" else ""
    return (
        f"[{level_style}]{escape(name)}[/]  [dim]{kind}{node.level}[/]  "
        f"{node.flops:,.3f} MFLOPs  {node.mem_bytes:,.3f} MiB{params}{calls}{dtype}{each}"
    )


def render_text(tree: EnergyTree, *, max_depth: int | None = None, collapse: bool = True) -> None:
    """Print the tree with rich (layers collapsed unless ``collapse`` is False)."""
    from rich.console import Console
    from rich.tree import Tree

    # Piped output is not cut at 80 columns: long fqns stay whole.
    console = Console(
        soft_wrap=True, highlight=False, width=None if sys.stdout.isatty() else 10_000
    )
    root = tree.root
    title = _label(root, f"{root.name} ({root.type})", 1)
    view = Tree(title)
    branches: dict[int, Tree] = {0: view}
    for depth, node, label, count in collapsed_rows(tree, max_depth=max_depth, collapse=collapse):
        if depth == 0:
            continue
        branches[depth] = branches[depth - 1].add(_label(node, label, count))
    console.print(view, crop=False)
    for line in footer(tree):
        console.print(line, markup=False)
