"""The op calls each node launches (Node.ops): the kernels an eager forward issues."""

from __future__ import annotations

import torch
from torch import nn

from predictor.trace.tracer import build_tree
from predictor.trace.tree import EnergyTree
from predictor.trace.zoo import build_zoo_tree


class _ThreeKernels(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x)  # one kernel (the Linear primitive)
        y = y * 2.0 + 1.0  # two own ops of the root
        return torch.softmax(y.view(2, -1), dim=-1)  # a view (no work), then a softmax node


def test_each_node_counts_the_op_calls_it_launches() -> None:
    tree = build_tree(_ThreeKernels(), torch.zeros(2, 4), counting_mode="native")
    lin = tree.find("lin:Linear")[0]
    softmax = next(n for n in tree.walk() if n.type == "Softmax")
    assert (lin.ops, softmax.ops) == (1, 1)
    assert tree.root.ops == 4  # 1 + 2 own + 1: the view moved nothing
    again = EnergyTree.from_dict(tree.to_dict())
    assert [n.ops for n in again.walk()] == [n.ops for n in tree.walk()]


def test_a_python_gelu_launches_one_kernel_per_op() -> None:
    tree = build_zoo_tree("gpt2", 1, 8, counting_mode="native")
    act = tree.find("h.0.mlp.act:NewGELUActivation")[0]
    # 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))): pow, mul, add, mul, tanh, add,
    # mul, mul
    assert act.ops == 8
