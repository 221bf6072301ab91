"""Adapting profiles from whole-model measurements: the fit, the adapted kinds, the readers,
``irene adapt`` / ``evaluate --profile`` / ``calibrate --level model`` / ``profiles``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from predictor.cli.main import main
from predictor.devices.profile import DeviceProfile, device_profile
from predictor.errors import DataError
from predictor.learn.adapt import (
    AdaptedProfile,
    DeviceAdapter,
    GroupAdapter,
    Measurement,
    adapt_profile,
    apply_group_scales,
    fit_adaptation,
    group_energies,
    measurements_from_csv,
    zoo_tracer,
)
from predictor.learn.profile import load_profile
from predictor.learn.retrace import carry_predictions
from predictor.trace.tree import EnergyTree, Node

TINY = "examples.tiny_models:tiny_bert"


def _tree() -> EnergyTree:
    """root (own 0.1 J) -> module (own 0.2 J) -> a GEMM (1.0 J) and a norm (0.5 J)."""
    gemm = Node(
        name="m.a:Linear", level="ml", type="Linear", fqn="m.a", kernel="gemm", energy_j=1.0
    )
    norm = Node(name="m.b:LayerNorm", level="ml", type="LayerNorm", fqn="m.b", energy_j=0.5)
    module = Node(
        name="m:Block", level="module", type="Block", fqn="m", energy_j=1.7, children=[gemm, norm]
    )
    root = Node(name="net", level="model", type="Net", energy_j=1.8, children=[module])
    return EnergyTree(root=root)


def test_group_energies_split_the_root() -> None:
    split = group_energies(_tree())
    assert split == pytest.approx({"compute": 1.0, "memory": 0.5, "own": 0.3})


def test_group_scales_rescale_each_nodes_own_energy_by_hand() -> None:
    tree = apply_group_scales(_tree(), {"compute": 2.0, "memory": 3.0, "own": 0.5})
    module = tree.root.children[0]
    assert module.energy_j == pytest.approx(0.2 * 0.5 + 2.0 * 1.0 + 3.0 * 0.5)  # 3.6
    assert tree.root.energy_j == pytest.approx(0.1 * 0.5 + 3.6)


def test_the_fit_recovers_group_scales_from_a_decomposition() -> None:
    rng = np.random.default_rng(0)
    decomposition = rng.uniform(0.5, 2.0, size=(12, 3))
    truth = np.array([2.0, 0.8, 1.3])
    base = load_profile("irene-device-1")
    assert not isinstance(base, DeviceProfile)
    adapter = GroupAdapter(base, decomposition=decomposition)
    trees = [(EnergyTree(root=Node(name="x", level="model", type="X")), 1.0)]
    measured = [
        Measurement(f"row {i}", "x", tuple(trees), float(e))
        for i, e in enumerate(decomposition @ truth)
    ]
    fit = fit_adaptation(adapter, measured)
    got = [fit.scales[g] for g in ("compute", "memory", "own")]
    assert got == pytest.approx(truth.tolist(), rel=0.02)  # the prior pulls a little toward 1
    assert fit.residual_mape < 0.5 and fit.loco_mape is not None and fit.loco_mape < 1.0
    assert fit.base_mape > 10.0


def _measured_by(profile: DeviceProfile, configs: list[tuple[int, int]]) -> list[Measurement]:
    trace = zoo_tracer("native")
    out = []
    for b, s in configs:
        tree = trace(TINY, b, s, None)
        energy = profile.predict(tree).root.energy_j
        assert energy is not None
        out.append(
            Measurement(f"b{b} s{s}", TINY, ((tree, 1.0),), energy, tree.meta["predicted_time_s"])
        )
    return out


def test_a_device_fit_on_its_own_predictions_changes_nothing() -> None:
    base = device_profile("irene-l4")
    configs = [(b, s) for b in (1, 4, 16) for s in (8, 32, 64)]
    fit = fit_adaptation(
        DeviceAdapter(base, _measured_by(base, configs)), _measured_by(base, configs)
    )
    assert all(v == pytest.approx(1.0, abs=1e-6) for v in fit.scales.values())
    assert fit.residual_mape < 1e-6 and fit.time_mape is not None and fit.time_mape < 1e-6


def test_a_device_fit_recovers_a_device_twice_as_static_and_slower_memory() -> None:
    base = device_profile("irene-l4")
    truth = DeviceProfile(
        name="truth",
        physical=base.physical.with_scales({"static_power": 2.0, "memory_time": 3.0}),
        scope={},
        provenance={},
    )
    configs = [(b, s) for b in (1, 4, 16, 32) for s in (8, 32, 64, 128)]
    measured = _measured_by(truth, configs)
    adapted, fit = adapt_profile(base, measured, name="l4-like", data="synthetic")
    assert fit.base_mape > 20.0 and fit.residual_mape < 2.0 and fit.loco_mape is not None
    assert fit.fitted == (
        "speed",
        "memory_vs_compute_time",
        "ramp_time",
        "launch_time",
        "energy_per_work",
        "memory_vs_compute_energy",
        "static_power",
    )
    assert isinstance(adapted, DeviceProfile)
    assert adapted.physical.scales["static_power"] == pytest.approx(2.0, rel=0.15)
    assert adapted.provenance["kind"] == "adapted"
    assert adapted.provenance["base"]["name"] == "irene-l4"
    assert adapted.provenance["measurements"] == len(configs)
    assert "adapted from 16 whole-model measurement(s)" in adapted.provenance["summary"]


def test_without_times_only_the_energy_directions_are_fitted() -> None:
    base = device_profile("irene-h100-sxm")
    measured = [
        Measurement(m.label, m.model, m.parts, 1.5 * m.energy_j)
        for m in _measured_by(base, [(1, 8), (4, 32), (8, 64)])
    ]
    fit = fit_adaptation(DeviceAdapter(base, measured), measured)
    assert fit.fitted == (
        "launch_time",
        "energy_per_work",
        "memory_vs_compute_energy",
        "static_power",
    )
    assert fit.scales["compute_time"] == 1.0 and fit.time_mape is None
    assert fit.residual_mape < 1.0


def test_an_adapted_trained_profile_round_trips(tmp_path: Path) -> None:
    base = load_profile("irene-device-1")
    trace = zoo_tracer("irene")
    measured = [
        Measurement(f"b{b}", TINY, ((trace(TINY, b, 16, None), 1.0),), 0.01 * b + 0.02)
        for b in (1, 2, 4, 8)
    ]
    adapted, fit = adapt_profile(base, measured, name="tiny-dev", data="runs.csv")
    assert isinstance(adapted, AdaptedProfile) and adapted.kind == "adapted"
    loaded = load_profile(adapted.save(tmp_path / "tiny-dev.irene.joblib"))
    assert isinstance(loaded, AdaptedProfile) and loaded.scales == adapted.scales
    tree = trace(TINY, 2, 16, None)
    base_split = group_energies(base.predict(EnergyTree.from_dict(tree.to_dict())))
    ours = loaded.predict(EnergyTree.from_dict(tree.to_dict())).root.energy_j
    assert ours == pytest.approx(sum(loaded.scales[g] * base_split[g] for g in base_split))
    assert loaded.provenance["base"]["name"] == "irene-device-1"
    assert fit.loco_mape is not None


def test_a_measurement_must_be_positive() -> None:
    tree = EnergyTree(root=Node(name="x", level="model", type="X"))
    with pytest.raises(DataError, match="energy must be a positive number"):
        Measurement("x", "x", ((tree, 1.0),), 0.0)


def test_the_csv_reader_says_where_a_row_is_wrong(tmp_path: Path) -> None:
    trace = zoo_tracer("native")
    path = tmp_path / "runs.csv"
    path.write_text("model,batch_size,energy_j\n")
    with pytest.raises(DataError, match=r"runs.csv:1: missing column\(s\) seq_len"):
        measurements_from_csv(path, trace)
    path.write_text(f"model,batch_size,seq_len,dtype,energy_j\n{TINY},2,8,fp64,1.0\n")
    with pytest.raises(DataError, match=r"runs.csv:2: dtype must be one of fp32, bf16, fp16"):
        measurements_from_csv(path, trace)
    path.write_text(f"model,batch_size,seq_len,energy_j\n{TINY},2,8,-1\n")
    with pytest.raises(DataError, match=r"runs.csv:2: energy_j must be a positive number"):
        measurements_from_csv(path, trace)
    path.write_text(f"model,batch_size,seq_len,energy_j,time_s\n{TINY},2,8,1.5,0.01\n")
    (m,) = measurements_from_csv(path, trace)
    assert (m.energy_j, m.time_s, m.model) == (1.5, 0.01, TINY)
    with pytest.raises(DataError, match="no rows of gpt2"):
        measurements_from_csv(path, trace, models=[TINY, "gpt2"])
    # comment lines count: the error names the file's own line
    path.write_text(f"# measured by me\nmodel,batch_size,seq_len,energy_j\n{TINY},2,x,1\n")
    with pytest.raises(DataError, match=r"runs.csv:3: seq_len must be a number"):
        measurements_from_csv(path, trace)


def test_predictions_are_carried_to_a_datasets_nodes_by_name_and_occurrence() -> None:
    def ml(name: str, energy: float | None = None) -> Node:
        fqn, _, typ = name.partition(":")
        return Node(name=name, level="ml", type=typ, fqn=fqn, energy_j=energy)

    data = EnergyTree(
        root=Node(
            name="net",
            level="model",
            type="net",
            children=[
                Node(
                    name="a:OldName",
                    level="module",
                    type="OldName",
                    fqn="a",
                    children=[ml("a:MatMul"), ml("a:MatMul"), ml("a.gone:Linear")],
                )
            ],
        )
    )
    predicted = EnergyTree(
        root=Node(
            name="net",
            level="model",
            type="net",
            energy_j=9.0,
            children=[
                Node(
                    name="a:NewName",
                    level="module",
                    type="NewName",
                    fqn="a",
                    energy_j=5.0,
                    children=[ml("a:MatMul", 1.0), ml("a:MatMul", 2.0)],
                )
            ],
        )
    )
    carried = carry_predictions(data, predicted)
    energies = [n.energy_j for n in carried.tree.walk()]
    assert energies == [9.0, 5.0, 1.0, 2.0, None]
    assert carried.unmatched == ["ml a.gone:Linear"]


# -- the commands, end to end ------------------------------------------------------------------


def _calibrate_whole(tmp_path: Path) -> Path:
    out = tmp_path / "runs.csv"
    code = main(
        [
            "calibrate",
            "--meter",
            "fake",
            "--level",
            "model",
            "--models",
            TINY,
            "--batch-sizes",
            "1,4",
            "--seq-lens",
            "8,32",
            "--idle-s",
            "0.5",
            "--min-windows",
            "1",
            "--max-windows",
            "1",
            "--warmup",
            "0",
            "--quiet",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    return out


def test_calibrate_whole_models_then_adapt_then_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = _calibrate_whole(tmp_path)
    header, *rows = runs.read_text().splitlines()
    assert header.startswith("model,batch_size,seq_len,dtype,energy_j,time_s")
    assert len(rows) == 4 and all(r.startswith(f"{TINY},") for r in rows)
    hardware = json.loads((tmp_path / "runs.hardware.json").read_text())
    assert hardware["meter"] == "fake" and hardware["level"] == "model"
    capsys.readouterr()
    out = tmp_path / "tiny-l4.irene.joblib"
    assert main(["adapt", "irene-l4", str(runs), "--models", TINY, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "irene-l4 adapted from 4 whole-model measurement(s)" in text
    assert "leave-one-configuration-out" in text
    # the meter's scope (the fake meter: a virtual device) and provenance are the profile's
    assert main(["profiles", str(out), "--format", "json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)["profiles"]}
    assert listed["tiny-l4"]["provenance_kind"] == "adapted"
    assert listed["tiny-l4"]["scope_kind"] == "virtual"
    assert listed["irene-h100-pcie"]["provenance_kind"] == "specification"
    assert listed["irene-h100-sxm"]["provenance_kind"] == "adapted"  # on ML.ENERGY v2
    trained = load_profile("irene-device-1").cv_error["overall_row_weighted"]  # its LOMO CV
    assert listed["irene-device-1"]["error_mape"]["model"] == pytest.approx(trained["model"])
    assert 0 < trained["model"] < 5
    # an existing output is not overwritten
    assert main(["adapt", "irene-l4", str(runs), "--models", TINY, "-o", str(out)]) == 4
    assert "exists; pass --force" in capsys.readouterr().err


def test_evaluate_a_fixed_profile_per_model_and_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "tiny-data"
    args = ["--idle-s", "0.5", "--min-windows", "1", "--max-windows", "1", "--warmup", "0"]
    cal = ["calibrate", "--meter", "fake", "--models", TINY, "--batch-sizes", "1,2"]
    assert main([*cal, "--seq-lens", "8", *args, "--quiet", "-o", str(data)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(data), "--profile", "irene-h100-sxm", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (fold,) = report["folds"]
    assert fold["model"] == TINY and fold["rows"]["model"] == 2 and fold["rows"]["ml"] > 0
    assert report["retraced"] is True and report["unmatched"] == {TINY: 0}
    assert main(["evaluate", str(data), "--profile", "irene-device-1"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("profile 'irene-device-1' on ")
    assert "mean over models" in table
