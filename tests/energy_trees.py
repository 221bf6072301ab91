"""Hand-built predicted trees for the budget, diff and report tests (no torch, no profile)."""

from __future__ import annotations

from predictor.trace.tree import EnergyTree, Node


def ml(fqn: str, kind: str, energy_j: float) -> Node:
    return Node(name=f"{fqn}:{kind}", level="ml", type=kind, fqn=fqn, energy_j=energy_j)


def module(fqn: str, kind: str, energy_j: float, *children: Node) -> Node:
    return Node(
        name=f"{fqn}:{kind}",
        level="module",
        type=kind,
        fqn=fqn,
        energy_j=energy_j,
        children=list(children),
    )


def small_bert(
    name: str = "bert", *, attention0_j: float = 0.1, pooler_j: float = 0.05
) -> EnergyTree:
    """model -> encoder -> 2 layers (attention + a functional MatMul sharing the layer's fqn)
    and a leaf Linear pooler. Energies in joules, consistent sums."""
    layer0 = module(
        "encoder.layer.0",
        "BertLayer",
        attention0_j + 0.02,
        module(
            "encoder.layer.0.attention",
            "BertAttention",
            attention0_j,
            ml("encoder.layer.0.attention", "MatMul", attention0_j),
        ),
        ml("encoder.layer.0", "MatMul", 0.02),
    )
    layer1 = module(
        "encoder.layer.1",
        "BertLayer",
        0.12,
        module(
            "encoder.layer.1.attention",
            "BertAttention",
            0.1,
            ml("encoder.layer.1.attention", "MatMul", 0.1),
        ),
        ml("encoder.layer.1", "MatMul", 0.02),
    )
    encoder = module("encoder", "BertEncoder", (layer0.energy_j or 0) + 0.12, layer0, layer1)
    pooler = ml("pooler", "Linear", pooler_j)
    root = Node(
        name=name,
        level="model",
        type="BertModel",
        fqn="",
        batch_size=2,
        seq_len=8,
        energy_j=(encoder.energy_j or 0) + pooler_j,
        children=[encoder, pooler],
    )
    return EnergyTree(root=root, meta={"profile": "test"})
