from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from predictor.cli.main import main
from predictor.learn.data import Dataset, load_dataset
from predictor.learn.evaluate import cross_validate
from predictor.learn.profile import Settings
from predictor.trace.tree import EnergyTree, Node


def _tree(model: str, width: int, batch: int, seq: int) -> EnergyTree:
    tokens = batch * seq
    kids = []
    for typ, flops in (("Linear", 2e-6 * tokens * width * width), ("Softmax", 5e-6 * tokens * seq)):
        e = 1e-3 + 1e-4 * flops
        kids.append(
            Node(
                name=f"block:{typ}",
                level="ml",
                type=typ,
                fqn="block",
                flops=flops,
                mem_bytes=flops / 10,
                batch_size=batch,
                seq_len=seq,
                measured_energy_j=e,
            )
        )
    e_block = 1.2 * sum(k.measured_energy_j or 0 for k in kids)
    block = Node(
        name="block:Block", level="module", type="Block", fqn="block", flops=sum(k.flops for k in kids),
        mem_bytes=sum(k.mem_bytes for k in kids), batch_size=batch, seq_len=seq,
        measured_energy_j=e_block, children=kids,
    )  # fmt: skip
    root = Node(
        name=model, level="model", type=model, flops=block.flops, mem_bytes=block.mem_bytes,
        batch_size=batch, seq_len=seq, measured_energy_j=e_block, children=[block],
    )  # fmt: skip
    return EnergyTree(root=root)


def test_cross_validation_on_an_exact_law() -> None:
    trees = [
        _tree(f"m{w}", w, b, s) for w in (32, 48, 64, 80) for b in (1, 2, 4) for s in (8, 16, 32)
    ]
    ds = Dataset(path=Path("synthetic"), trees=trees)
    report = cross_validate(ds, "static", Settings(ml_method="linear"), not_a_fold=("m80",))
    assert [f.model for f in report.folds] == ["m32", "m48", "m64"]  # m80 trains, never a fold
    for fold in report.folds:
        assert fold.rows == {"model": 9, "module": 9, "ml": 18}
        for level in ("ml", "module", "model"):
            assert fold.mape[level] < 1e-6
    d = report.to_dict()
    assert "never a fold: m80" in d["protocol"]
    assert "m32" in report.format_table()


def test_overall_is_row_weighted_and_fold_mean_is_not() -> None:
    trees = [_tree(f"m{w}", w, b, s) for w in (32, 64, 96) for b in (1, 2) for s in (8, 16)]
    trees += [_tree("m999", 999, b, 8) for b in (1, 2, 3, 4, 5, 6, 7, 8)]  # far off the others
    ds = Dataset(path=Path("synthetic"), trees=trees)
    report = cross_validate(ds, "static", Settings(ml_method="irene"), not_a_fold=())
    rows = np.array([f.rows["ml"] for f in report.folds], dtype=float)
    mapes = np.array([f.mape["ml"] for f in report.folds])
    assert report.overall["ml"] == pytest.approx(float((rows * mapes).sum() / rows.sum()))
    assert report.mean_over_folds["ml"] == pytest.approx(float(mapes.mean()))


def test_one_fold_on_the_irene_data(irene_device_1: Path) -> None:
    ds = load_dataset(irene_device_1)
    report = cross_validate(ds, "static", models=["distilgpt2"])
    (fold,) = report.folds
    assert fold.model == "distilgpt2" and fold.rows["model"] == 28
    assert fold.mape["ml"] < 3.0 and fold.mape["module"] < 8.0 and fold.mape["model"] < 5.0


@pytest.fixture(scope="module")
def native_device_1(irene_device_1: Path) -> Dataset:
    """device_1 with its features re-derived in the native counting, as the shipped profiles
    are trained."""
    from predictor.learn.retrace import load_training_data

    return load_training_data(irene_device_1, "native")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("features", "targets"),
    [  # issue 10's bounds
        ("static", {"ml": 2.7, "module": 6.1, "model": 2.5}),
        ("full", {"ml": 0.6, "module": 0.8, "model": 0.5}),
    ],
)
def test_full_leave_one_model_out_meets_the_targets(
    native_device_1: Dataset, features: str, targets: dict[str, float]
) -> None:
    ds = native_device_1
    report = cross_validate(ds, features)
    assert len(report.folds) == 6  # tiny-ctrl is never a fold
    for level, target in targets.items():
        assert report.overall[level] <= target, (level, report.format_table())
        assert report.mean_over_folds[level] <= target, (level, report.format_table())


# -- the CLI on bad input ---------------------------------------------------------------------


def _copy_data(src: Path, dst: Path) -> Path:
    """A small copy of the dataset: two models, batch 8, so the CLI tests stay fast."""
    dst.mkdir()
    for f in src.glob("*.csv"):
        lines = f.read_text().splitlines()
        keep = [lines[0]] + [
            ln
            for ln in lines[1:]
            if ln.startswith("8.0,") and ln.endswith((",distilgpt2", ",gpt2", ",openai-gpt"))
        ]
        (dst / f.name).write_text("\n".join(keep) + "\n")
    return dst


def test_cli_evaluate_json(
    irene_device_1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _copy_data(irene_device_1, tmp_path / "d")
    assert main(["evaluate", str(data), "--cv", "leave-one-model-out", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [f["model"] for f in out["folds"]] == ["distilgpt2", "openai-gpt", "gpt2"]
    assert set(out["overall_row_weighted_mape"]) == {"ml", "module", "model"}


def test_cli_missing_file(
    irene_device_1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d"
    shutil.copytree(irene_device_1, data)
    (data / "ml2_level_features.csv").unlink()
    assert main(["evaluate", str(data)]) == 6
    assert "missing file(s) ml2_level_features.csv" in capsys.readouterr().err


def test_cli_missing_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d"
    data.mkdir()
    for name in ("model", "module", "ml1", "ml2"):
        (data / f"{name}_level_features.csv").write_text(
            "batch_size,seq_len,flops,level_name,model_name\n"
        )
    assert main(["train", str(data), "-o", str(tmp_path / "p.irene.joblib")]) == 6
    err = capsys.readouterr().err
    assert ":1: missing column(s) mem_bytes, energy_mean" in err


def test_cli_non_numeric_value(
    irene_device_1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _copy_data(irene_device_1, tmp_path / "d")
    f = data / "module_level_features.csv"
    lines = f.read_text().splitlines()
    cells = lines[3].split(",")
    cells[2] = "lots"
    lines[3] = ",".join(cells)
    f.write_text("\n".join(lines) + "\n")
    assert main(["evaluate", str(data)]) == 6
    assert (
        "module_level_features.csv:4: column 'flops' must be a number (got 'lots')"
        in capsys.readouterr().err
    )


def test_cli_train_then_use(
    irene_device_1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _copy_data(irene_device_1, tmp_path / "d")
    out = tmp_path / "mine.irene.joblib"
    assert main(["train", str(data), "-o", str(out), "--features", "full"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["name"] == "mine" and summary["feature_set"] == "full"
    assert summary["cv_error"]["overall_row_weighted"]["model"] < 5.0
    from predictor.learn.profile import load_profile

    profile = load_profile(out)
    tree = load_dataset(data).by_model("gpt2")[0]
    profile.predict(tree)
    assert tree.root.energy_j == pytest.approx(tree.root.measured_energy_j, rel=0.05)
