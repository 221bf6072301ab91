"""predictor.measure.metering: measuring a model under test, measured beside predicted."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from predictor.errors import HardwareUnavailable
from predictor.measure.metering import (
    Metering,
    measure_tree,
    tree_for_check,
)
from predictor.measure.meters import NullMeter
from predictor.measure.meters.fake import FakeMeter
from predictor.measure.nodes import MeasureSettings
from predictor.trace.tracer import build_tree

FAST = MeasureSettings(min_windows=1, max_windows=1, warmup=0, idle_s=1.0)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 8)
        self.b = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


def test_measure_tree_sets_measured_beside_predicted() -> None:
    model = Tiny().eval()
    x = torch.randn(3, 4)
    tree = build_tree(model, x, name="tiny")
    for node in tree.walk():
        node.energy_j = 1.0  # stands for a profile's prediction
    out = measure_tree(model, tree, [x], FakeMeter(), settings=FAST)
    assert [n.energy_j for n in out.walk()] == [1.0] * len(out.nodes())
    assert all(n.measured_energy_j is not None and n.measured_energy_j > 0 for n in out.walk())
    checked = tree_for_check(out, "measured")
    assert [n.energy_j for n in checked.walk()] == [n.measured_energy_j for n in out.walk()]
    assert checked.meta["energy_check"]["predicted_fallback"] == []
    assert tree_for_check(out, "predicted") is out


def test_unavailable_meter_falls_back_to_prediction_with_reason() -> None:
    model = Tiny().eval()
    x = torch.randn(1, 4)
    tree = build_tree(model, x, name="tiny")
    metering = Metering(
        "rapl",
        "predicted",
        meter_factory=lambda kind, device: NullMeter("rapl", "no powercap in this container"),
    )
    outcome = metering.measure(model, tree, [x])
    assert not outcome.measured and outcome.tree is tree
    assert "RAPL unavailable: no powercap in this container" in outcome.note
    assert "budgets judge predicted energy" in outcome.note


def test_unavailable_meter_fails_when_measured_is_demanded() -> None:
    model = Tiny().eval()
    x = torch.randn(1, 4)
    tree = build_tree(model, x, name="tiny")
    metering = Metering(
        "nvml",
        "measured",
        meter_factory=lambda kind, device: NullMeter("nvml", "no NVIDIA driver"),
    )
    with pytest.raises(HardwareUnavailable, match="NVML unavailable: no NVIDIA driver"):
        metering.measure(model, tree, [x])


def test_metering_uses_one_meter_per_device_and_measures() -> None:
    opened: list[tuple[str, str]] = []

    def factory(kind: str, device: str) -> FakeMeter:
        opened.append((kind, device))
        return FakeMeter()

    model = Tiny().eval()
    x = torch.randn(2, 4)
    tree = build_tree(model, x, name="tiny")
    metering = Metering("auto", meter_factory=factory, measure_settings=FAST)
    first = metering.measure(model, tree, [x])
    second = metering.measure(model, tree, [x])
    assert first.measured and second.measured
    assert opened == [("auto", "cpu")]
    assert first.tree.root.measured_energy_j == second.tree.root.measured_energy_j
    assert metering.status_lines() == [
        "cpu: fake: deterministic virtual device (roofline time and energy of the aten ops run)"
    ]
    metering.close()


def test_measure_spec_builds_real_weights_from_the_zoo() -> None:
    from predictor.trace.zoo import build_zoo_tree

    tree = build_zoo_tree("examples.tiny_models:tiny_gpt2", 1, 8)
    metering = Metering(
        "auto",
        meter_factory=lambda kind, device: FakeMeter(),
        measure_settings=FAST,
    )
    outcome = metering.measure_spec("examples.tiny_models:tiny_gpt2", tree, device="cpu")
    assert outcome.measured and outcome.gaps == []
    assert all(n.measured_energy_j is not None for n in outcome.tree.walk())
    assert [n.name for n in outcome.tree.walk()] == [n.name for n in tree.walk()]
