"""Energy budgets next to your own tests: the ``energy`` fixture and the ``energy_budget`` marker.

Run with ``pytest --energy examples/test_custom_model.py``; without ``--energy`` both tests are
skipped with the reason. The README shows this file.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from examples.tiny_models import tiny_bert


class TwoLayerMLP(nn.Module):
    """A model of your own: any nn.Module works, no weights are allocated for the prediction."""

    def __init__(self, width: int = 256) -> None:
        super().__init__()
        self.up = nn.Linear(width, 4 * width)
        self.act = nn.GELU()
        self.down = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(x)))


def test_mlp_energy(energy) -> None:  # type: ignore[no-untyped-def]
    tree = energy(TwoLayerMLP(), torch.zeros(8, 128, 256), name="two-layer-mlp")
    assert tree.root.energy_j is not None and tree.root.energy_j > 0
    # Budgets for "two-layer-mlp" in energy_budgets.yaml (if any) are checked as well.


@pytest.mark.energy_budget("1 J")  # the whole model
@pytest.mark.energy_budget("150 mJ", module="encoder.layer.*")  # each matching module
def test_tiny_bert_layers(energy) -> None:  # type: ignore[no-untyped-def]
    energy(tiny_bert(), {"input_ids": torch.ones(8, 64, dtype=torch.long)}, name="tiny-bert-64")
