"""Per-node calibration: the measuring loop, node capture and replay, and `irene calibrate` end
to end on tiny models with the deterministic fake meter."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from predictor.cli.main import COMMANDS, main
from predictor.errors import HardwareUnavailable
from predictor.learn.data import load_dataset
from predictor.measure.meters import Measurement, Meter, MeterStatus, NullMeter, get_meter
from predictor.measure.meters.fake import FakeMeter
from predictor.measure.nodes import (
    MeasureSettings,
    measure_callable,
    measure_tree,
)
from predictor.trace.tracer import build_tree
from predictor.trace.tree import Node, prune_unmeasured

# -- a scripted meter: energy and time follow the calls the test makes -------------------------


class ScriptedMeter(Meter):
    """Virtual clock; each ``work(seconds, joules)`` advances time and adds energy; idle power
    ``idle_w`` is charged for all time in a window."""

    kind = "scripted"

    def __init__(self, idle_w: float, min_window_s: float = 0.1) -> None:
        self.now = 0.0
        super().__init__(clock=lambda: self.now, sleep=self._sleep, host_features=False)
        self.idle_w = idle_w
        self.min_window_s = min_window_s
        self._dynamic = 0.0

    def _sleep(self, s: float) -> None:
        self.now += s

    def work(self, seconds: float, joules: float) -> None:
        self.now += seconds
        self._dynamic += joules

    def status(self) -> MeterStatus:
        return MeterStatus("scripted", True, "test")

    def _begin(self) -> None:
        self._dynamic = 0.0

    def _end(self, duration_s: float) -> Measurement:
        return Measurement(self.idle_w * duration_s + self._dynamic, duration_s, "scripted")


def test_repeats_grow_until_window_is_long_enough_and_idle_is_subtracted() -> None:
    meter = ScriptedMeter(idle_w=10.0, min_window_s=0.1)
    calls = 0

    def fn() -> None:
        nonlocal calls
        calls += 1
        meter.work(0.01, 0.5)  # 10 ms, 0.5 J above idle per call

    settings = MeasureSettings(min_windows=3, max_windows=10, warmup=1, idle_s=1.0)
    idle = meter.idle_power_w(settings.idle_s)
    assert idle == pytest.approx(10.0)
    nm = measure_callable(fn, meter, idle_power_w=idle, settings=settings)
    # first window: 1 call, 10 ms < 100 ms -> ceil(1.2 * 0.1 / 0.01) = 12 calls a window
    assert nm.repeats == 12
    assert nm.windows == 3  # stable at once: std 0
    assert nm.energy_j == pytest.approx(0.5)
    assert nm.raw_energy_j == pytest.approx(0.5 + 10.0 * 0.01)
    assert nm.duration_s == pytest.approx(0.01)
    assert nm.runtime["times_mean"] == pytest.approx(0.01)
    assert nm.rel_std == pytest.approx(0.0, abs=1e-12)
    assert calls == 1 + 1 + 3 * 12  # warmup, the 1-call window, three 12-call windows


def test_unstable_energy_uses_max_windows_and_reports_spread() -> None:
    meter = ScriptedMeter(idle_w=0.0, min_window_s=0.0)
    energies = iter([0.4, 0.6, 0.4, 0.6])
    settings = MeasureSettings(min_windows=2, max_windows=4, warmup=0, target_rel_std=0.05)
    nm = measure_callable(
        lambda: meter.work(0.01, next(energies)), meter, idle_power_w=0.0, settings=settings
    )
    assert nm.windows == 4 and nm.repeats == 1
    assert nm.energy_j == pytest.approx(0.5)
    assert nm.energy_std_j == pytest.approx(0.1)
    assert nm.rel_std == pytest.approx(0.2)


def test_no_idle_subtraction_keeps_raw_energy() -> None:
    meter = ScriptedMeter(idle_w=10.0, min_window_s=0.0)
    settings = MeasureSettings(min_windows=1, warmup=0, subtract_idle=False)
    nm = measure_callable(lambda: meter.work(0.1, 1.0), meter, idle_power_w=10.0, settings=settings)
    assert nm.energy_j == pytest.approx(2.0)


def test_settings_reject_bad_window_counts() -> None:
    with pytest.raises(ValueError, match="min_windows"):
        MeasureSettings(min_windows=5, max_windows=2)


# -- the fake meter ----------------------------------------------------------------------------


def test_fake_meter_charges_the_roofline_model_by_hand() -> None:
    meter = FakeMeter(idle_power_w=40.0, j_per_gflop=0.4, j_per_gib=1.5, j_per_op=2e-5)
    a, b = torch.ones(4, 8), torch.ones(8, 16)
    with meter.window() as w:
        torch.mm(a, b)
    flops = 2 * 4 * 8 * 16
    nbytes = 4 * (4 * 8 + 8 * 16 + 4 * 16)
    busy = max(flops / 2000e9, nbytes / (400 * 2**30)) + 5e-6
    expected = 40.0 * busy + 0.4 * flops / 1e9 + 1.5 * nbytes / 2**30 + 2e-5
    assert w.result.duration_s == pytest.approx(busy)
    assert w.result.energy_j == pytest.approx(expected)
    assert meter.idle_power_w(2.0) == pytest.approx(40.0)
    # deterministic: the same work gives the same joules
    with meter.window() as w2:
        torch.mm(a, b)
    assert w2.result.energy_j == w.result.energy_j


def test_null_meter_refuses_to_measure() -> None:
    meter = get_meter("none")
    assert isinstance(meter, NullMeter)
    with pytest.raises(HardwareUnavailable, match="metering is off"):
        meter.begin()
    tree = build_tree(nn.Linear(2, 2), torch.ones(1, 2), name="lin")
    with pytest.raises(HardwareUnavailable, match="none unavailable"):
        measure_tree(nn.Linear(2, 2), tree, torch.ones(1, 2), meter=meter)


# -- measuring a tree --------------------------------------------------------------------------


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        scores = torch.matmul(h, h.transpose(-1, -2))
        return torch.matmul(F.softmax(scores, dim=-1), h)


class TwoBlocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = Block()
        self.b = Block()
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.b(self.a(x)))


@pytest.fixture
def fast() -> MeasureSettings:
    return MeasureSettings(min_windows=1, max_windows=1, warmup=0, idle_s=1.0)


def test_every_node_measured_and_identical_nodes_reused(fast: MeasureSettings) -> None:
    torch.manual_seed(0)
    model = TwoBlocks().eval()
    x = torch.randn(2, 5, 8)
    tree = build_tree(model, x, name="two-blocks")
    result = measure_tree(model, tree, x, meter=FakeMeter(), settings=fast)
    names = [n.name for n in result.tree.walk()]
    assert names == [n.name for n in tree.walk()]  # nothing pruned
    assert "a:MatMul" in names and "b.proj:Linear" in names and "a:Softmax" in names
    assert all(
        n.measured_energy_j is not None and n.measured_energy_j > 0 for n in result.tree.walk()
    )
    assert result.gaps == []
    by_name = {(r.name, r.occurrence): r for r in result.records}
    # block b sees the same shapes as block a: measured once, reused
    assert by_name[("b:Block", 0)].reused and not by_name[("a:Block", 0)].reused
    assert by_name[("b.proj:Linear", 0)].reused
    a_block = result.tree.find("a:Block")[0]
    b_block = result.tree.find("b:Block")[0]
    assert a_block.measured_energy_j == b_block.measured_energy_j
    # the two MatMul calls of a block have different shapes ((5x8)(8x5) vs (5x5)(5x8))
    mm = [n for n in result.tree.walk() if n.name == "a:MatMul"]
    assert len(mm) == 2 and mm[0].measured_energy_j != mm[1].measured_energy_j
    # the head Linear (8 -> 4) differs from proj (8 -> 8), so it was measured on its own
    assert not by_name[("head:Linear", 0)].reused
    # runtime features recorded with each node
    root = result.tree.root
    assert root.runtime["times_mean"] > 0 and "gpu_energy_mean" in root.runtime
    assert result.idle_power_w == pytest.approx(40.0)


def test_deterministic_under_the_fake_meter(fast: MeasureSettings) -> None:
    torch.manual_seed(0)
    model = TwoBlocks().eval()
    x = torch.randn(1, 3, 8)
    tree = build_tree(model, x, name="m")
    e1 = [
        n.measured_energy_j
        for n in measure_tree(model, tree, x, meter=FakeMeter(), settings=fast).tree.walk()
    ]
    e2 = [
        n.measured_energy_j
        for n in measure_tree(model, tree, x, meter=FakeMeter(), settings=fast).tree.walk()
    ]
    assert e1 == e2


class SdpaModule(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.q(x)
        return F.scaled_dot_product_attention(q, q, q)


class SdpaModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = SdpaModule()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x)


def test_fused_attention_parts_are_gaps_and_pruned(fast: MeasureSettings) -> None:
    model = SdpaModel().eval()
    x = torch.randn(1, 2, 4, 8)
    tree = build_tree(model, x, name="sdpa")
    assert [n.type for n in tree.nodes("ml")] == ["Linear", "MatMul", "Softmax", "MatMul"]
    result = measure_tree(model, tree, x, meter=FakeMeter(), settings=fast)
    assert len(result.gaps) == 3
    assert all("cannot be replayed alone" in g for g in result.gaps)
    assert [n.type for n in result.tree.nodes("ml")] == ["Linear"]
    assert result.tree.find("attn:SdpaModule")[0].measured_energy_j is not None


def test_prune_lifts_children_of_unmeasured_module() -> None:
    leaf = Node("a.x:Linear", "ml", "Linear", measured_energy_j=1.0)
    lost = Node("a.y:Softmax", "ml", "Softmax")
    mod = Node("a:Block", "module", "Block", children=[leaf, lost])
    root = Node("m", "model", "M", measured_energy_j=3.0, children=[mod])
    prune_unmeasured(root)
    assert [c.name for c in root.children] == ["a.x:Linear"]


# -- irene calibrate end to end ----------------------------------------------------------------

TINY = "examples.tiny_models:tiny_gpt2,examples.tiny_models:tiny_bert"


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("cal") / "data"
    rc = main(
        [
            "calibrate",
            "--meter", "fake",
            "--models", TINY,
            "--batch-sizes", "1",
            "--seq-lens", "8,16",
            "--min-windows", "1",
            "--warmup", "0",
            "--idle-s", "1",
            "--quiet",
            "-o", str(out),
        ]
    )  # fmt: skip
    assert rc == 0
    yield out


def test_calibrate_writes_a_dataset_load_dataset_reads(calibrated: Path) -> None:
    from predictor.trace.zoo import build_zoo_tree

    ds = load_dataset(calibrated)
    assert ds.skipped == []
    assert ds.model_names == ["examples.tiny_models:tiny_gpt2", "examples.tiny_models:tiny_bert"]
    assert len(ds.trees) == 4
    assert ds.hardware["meter"] == "fake"
    assert ds.hardware["idle_power_w"] == pytest.approx(40.0)
    assert ds.hardware["gaps"] == []
    # same static features as the tree irene predict builds, every node measured
    static = build_zoo_tree("examples.tiny_models:tiny_bert", 1, 16)
    measured = ds.by_model("examples.tiny_models:tiny_bert")[1]
    assert measured.seq_len == 16
    assert sorted(n.name for n in measured.walk()) == sorted(n.name for n in static.walk())
    assert measured.root.flops == pytest.approx(static.root.flops)
    for node in measured.walk():
        assert node.measured_energy_j is not None and node.measured_energy_j > 0
        assert node.runtime["times_mean"] > 0
    records = [
        json.loads(line) for line in (calibrated / "measurements.jsonl").read_text().splitlines()
    ]
    assert len(records) == sum(len(t.nodes()) for t in ds.trees)
    summary = json.loads((calibrated / "summary.json").read_text())
    assert summary["configurations"] == 4
    ratio = summary["children_ratio"]["model"]
    # a model's children never cost more than the model (it runs them plus glue ops)
    assert 0 < ratio["max"] <= 1.0 + 1e-9


@pytest.mark.skipif("train" not in COMMANDS, reason="irene train is not registered yet")
def test_train_and_evaluate_accept_the_dataset(calibrated: Path, tmp_path: Path) -> None:
    profile = tmp_path / "fake.profile"
    assert main(["train", str(calibrated), "-o", str(profile), "--no-cv"]) == 0
    assert profile.is_file()
    if "evaluate" in COMMANDS:
        assert main(["evaluate", str(calibrated), "--format", "json"]) == 0


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--batch-sizes", "1,x"], 4, "--batch-sizes: 'x' is not an integer"),
        (["--seq-lens", "0"], 4, "--seq-lens: 0 must be >= 1"),
        (["--device", "tpu"], 4, "--device must be cpu, cuda or cuda:N"),
        (["--models", "no-such-model"], 3, "unknown model 'no-such-model'"),
    ],
)
def test_calibrate_bad_options(
    argv: list[str], code: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {
        "--models": "examples.tiny_models:tiny_gpt2",
        "--meter": "fake",
        "-o": str(tmp_path / "o"),
    }
    args: dict[str, Any] = dict(base)
    for k, v in zip(argv[::2], argv[1::2], strict=True):
        args[k] = v
    flat = [x for kv in args.items() for x in kv]
    assert main(["calibrate", *flat]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_calibrate_without_hardware_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "calibrate", "--meter", "rapl", "--powercap-root", str(tmp_path / "absent"),
            "--models", "examples.tiny_models:tiny_gpt2", "-o", str(tmp_path / "o"),
        ]
    )  # fmt: skip
    assert rc == 8
    assert "RAPL unavailable: no powercap in this container" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_calibrate_cuda_without_gpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "calibrate",
            "--meter",
            "fake",
            "--device",
            "cuda",
            "--models",
            "examples.tiny_models:tiny_gpt2",
            "-o",
            str(tmp_path),
        ]
    )
    assert rc == 8
    assert "sees no CUDA device" in capsys.readouterr().err


def test_relative_std_is_inf_for_non_positive_mean() -> None:
    from predictor.measure.nodes import NodeMeasurement

    assert math.isinf(NodeMeasurement(0.0, 0.1, 1.0, 0.1, 1, 2).rel_std)


def test_time_budget_skips_configurations_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "calibrate", "--meter", "fake", "--models", "examples.tiny_models:tiny_gpt2",
            "--batch-sizes", "1", "--seq-lens", "8", "--time-budget-s", "0", "--quiet",
            "-o", str(tmp_path / "o"),
        ]
    )  # fmt: skip
    assert rc == 3
    assert "time budget of 0 s used up" in capsys.readouterr().err


SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_calibrate.sh"


def test_gpu_script_parses_and_rejects_unknown_arguments() -> None:
    import subprocess

    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0
    bad = subprocess.run(
        ["bash", str(SCRIPT), "--gpu"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "unknown argument '--gpu'" in bad.stderr


@pytest.mark.slow
def test_gpu_script_dry_run_end_to_end(tmp_path: Path) -> None:
    """The issue-6 script on the CPU with the fake meter: dataset, two profiles, evaluation."""
    import os
    import subprocess

    env = {
        **os.environ,
        "OUT": str(tmp_path / "out"),
        "CAL_BATCH_SIZES": "1",
        "CAL_SEQ_LENS": "8",
    }
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run"], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = tmp_path / "out"
    assert (out / "profiles" / "irene-fake.irene.joblib").is_file()
    assert (out / "profiles" / "irene-fake-full.irene.joblib").is_file()
    assert json.loads((out / "evaluate_static.json").read_text())
    report = (out / "REPORT.md").read_text()
    assert "idle power: 40.00 W" in report and "Leave-one-model-out" in report
    assert len(load_dataset(out / "data").trees) == 2


def test_calibrate_docstring_examples_run() -> None:
    import doctest

    import predictor.measure.calibrate

    result = doctest.testmod(predictor.measure.calibrate)
    assert result.attempted > 0 and result.failed == 0


def test_grid_order_covers_each_pair_once() -> None:
    from predictor.measure.calibrate import grid_order

    assert grid_order([1], [8]) == [(1, 8)]
    order = grid_order([1, 8, 16], [32, 64])
    assert order[:4] == [(1, 32), (16, 64), (1, 64), (16, 32)]
    assert sorted(order) == sorted((b, s) for b in (1, 8, 16) for s in (32, 64))
