"""``irene tree MODEL``: the model's tree with MFLOPs, MiB and parameters per node.

Text view: a rich tree where runs of identical sibling layers (``encoder.layer.0`` ...
``encoder.layer.11`` with equal subtrees) are shown once as ``encoder.layer.0-11 (x12)``, with
the features of one layer. JSON view: ``EnergyTree.to_dict()``, every node with ``name``,
``level``, ``type``, ``flops``, ``mem_bytes``, ``num_parameters`` and ``children``.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from predictor.trace.tree import EnergyTree, Node

__all__ = ["collapse_layers", "register", "render_text"]

_INDEXED = re.compile(r"^(?P<prefix>.*\.)?(?P<index>\d+)$")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text!r})")
    return value


def register(subparsers: Any) -> None:
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
    parser.add_argument(
        "--batch-size", "-b", type=_positive_int, default=None, help="batch size (default 1)"
    )
    parser.add_argument(
        "--seq-len", "-s", type=_positive_int, default=None, help="sequence length (default 128)"
    )
    from predictor.cli.predict_cmd import add_input_options

    add_input_options(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
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
        "--max-depth", type=_positive_int, default=None, help="text view: levels to show"
    )
    parser.add_argument(
        "--no-collapse", action="store_true", help="text view: show every repeated layer"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from predictor.errors import ModelError
    from predictor.trace.zoo import build_zoo_tree, known_models

    if args.list:
        sys.stdout.write("\n".join(known_models()) + "\n")
        return 0
    if args.model is None:
        raise ModelError(
            f"give a MODEL: one of {', '.join(known_models())}, or package.module:factory"
        )

    from predictor.cli.output import model_code
    from predictor.cli.predict_cmd import parse_inputs

    inputs = parse_inputs(args)
    batch, seq = args.batch_size, args.seq_len
    if inputs is None:  # token ids: the defaults apply
        batch, seq = batch or 1, seq or 128
    with model_code():
        tree = build_zoo_tree(
            args.model,
            batch,
            seq,
            counting_mode=args.counting,
            attn_implementation=args.attn,
            inputs=inputs,
        )
    if args.format == "json":
        sys.stdout.write(tree.to_json() + "\n")
    else:
        render_text(tree, max_depth=args.max_depth, collapse=not args.no_collapse)
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
    inputs = ", ".join(
        f"{k} {tuple(v['shape'])}" if isinstance(v, dict) and "shape" in v else f"{k}={v}"
        for k, v in tree.meta.get("inputs", {}).items()
    )
    title = _label(root, f"{root.name} ({root.type})", 1)
    view = Tree(title)

    def add(parent: Tree, node: Node, depth: int) -> None:
        if max_depth is not None and depth >= max_depth:
            return
        groups = (
            collapse_layers(node.children) if collapse else [(c, c.name, 1) for c in node.children]
        )
        for child, name, count in groups:
            branch = parent.add(_label(child, name, count))
            add(branch, child, depth + 1)

    add(view, root, 0)
    console.print(view, crop=False)
    console.print(
        f"counting mode: {tree.counting_mode}; attention: {tree.meta.get('attn_implementation')}; "
        f"inputs: {inputs}; traced on {tree.meta.get('execution')} tensors",
        markup=False,
    )
    if tree.meta.get("fallback_reason"):
        console.print(f"note: {tree.meta['fallback_reason']}", markup=False)
    if tree.unsupported_ops:
        listed = ", ".join(f"{u.op} in {u.module} (x{u.count})" for u in tree.unsupported_ops)
        console.print(f"unsupported ops (not counted): {listed}", markup=False)
