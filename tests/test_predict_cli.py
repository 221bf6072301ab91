from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from predictor.cli.main import main
from predictor.cli.predict_cmd import bottlenecks
from predictor.trace.tree import EnergyTree, Node

zoo = pytest.importorskip("predictor.trace.zoo")


def _predict_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(["predict", *argv, "--format", "json"]) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def _energies(node: dict[str, object]) -> list[float]:
    out = [float(node["energy_j"])]  # type: ignore[arg-type]
    for child in node["children"]:  # type: ignore[attr-defined]
        out.extend(_energies(child))
    return out


def _assert_children_within_parent(node: dict[str, object]) -> None:
    """For every node of a JSON tree: sum(children energy_j) <= energy_j (1e-9 relative)."""
    kids: list[dict[str, object]] = node["children"]  # type: ignore[assignment]
    total = sum(float(k["energy_j"]) for k in kids)  # type: ignore[arg-type]
    own = float(node["energy_j"])  # type: ignore[arg-type]
    assert total <= own * (1 + 1e-9), (node["name"], own, total)
    for kid in kids:
        _assert_children_within_parent(kid)


def test_predict_json_is_complete_and_bit_identical(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("distilgpt2", "--batch-size", "2", "--seq-len", "16")
    first = _predict_json(capsys, *args)
    second = _predict_json(capsys, *args)
    assert first == second  # bit-identical joules, same tree, same bottlenecks
    energies = _energies(first["root"])  # type: ignore[arg-type]
    assert all(e > 0 for e in energies)
    assert first["meta"]["profile"]["name"] == "irene-device-1"  # type: ignore[index]
    shares = [row["share_pct"] for row in first["bottlenecks"]["primitive_types"]]  # type: ignore[index]
    assert shares == sorted(shares, reverse=True) and 0 < shares[0] <= 100


def test_predict_text_shows_tree_and_bottlenecks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "bert-base-uncased", "-b", "1", "-s", "8", "--depth", "3"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "bert-base-uncased  batch 1  seq 8  float32"  # the dtype it computes in
    # which profile, device and scope the joules describe
    assert lines[1] == (
        "joules of profile 'irene-device-1': IrEne device_1, whole system, idle power included; "
        "trained on per-node measurements (Cao et al., ACL 2021)"
    )
    assert "encoder:BertEncoder" in out
    # the twelve identical layers are one row, as in `irene tree`
    layer_rows = [line for line in lines if "encoder.layer." in line and "BertLayer" in line]
    assert len(layer_rows) == 1 and "encoder.layer.0-11:BertLayer (x12)" in layer_rows[0]
    assert layer_rows[0].endswith(" each")
    assert "encoder.layer.*.intermediate:BertIntermediate x12" in out
    assert "Linear x73" in out
    # one energy formatter: 3 significant digits and a unit, everywhere
    energies = re.findall(r"\s(\d[\d.]*) (µJ|mJ|J|kJ)\b", out)
    assert energies and all(len(n.replace(".", "").lstrip("0")) == 3 for n, _ in energies)


def test_predict_markdown_and_json_say_what_the_joules_describe(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["predict", "distilgpt2", "-s", "8", "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("### distilgpt2: predicted energy")
    assert "h.0-5:GPT2Block (x6)" in md and "IrEne device\\_1" in md
    data = _predict_json(capsys, "distilgpt2", "-s", "8")
    assert data["energy_scope"]["scope"] == "whole system, idle power included"  # type: ignore[index]
    assert data["units"]["flops"].startswith("MFLOPs")  # type: ignore[index]


@pytest.mark.parametrize("model", zoo.known_models())
def test_every_zoo_model_predicts_with_the_static_profile(
    model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _predict_json(capsys, model, "--batch-size", "1", "--seq-len", "16")
    energies = _energies(out["root"])  # type: ignore[arg-type]
    assert all(e > 0 for e in energies) and len(energies) > 3
    _assert_children_within_parent(out["root"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "container"),
    [("bert-base-uncased", "encoder"), ("distilbert-base-uncased", "transformer")],
)
def test_no_child_exceeds_its_parent_in_the_reported_cases(
    model: str, container: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before reconciliation the single big container was predicted above the whole model."""
    first = _predict_json(capsys, model, "-b", "8", "-s", "128")
    root: dict[str, object] = first["root"]  # type: ignore[assignment]
    _assert_children_within_parent(root)
    (big,) = [c for c in root["children"] if c["name"].startswith(f"{container}:")]  # type: ignore[attr-defined]
    assert float(big["energy_j"]) <= float(root["energy_j"])  # type: ignore[arg-type]
    assert _predict_json(capsys, model, "-b", "8", "-s", "128") == first  # bit-identical


def test_full_profile_on_a_traced_model_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "predict",
            "distilgpt2",
            "--batch-size",
            "1",
            "--seq-len",
            "8",
            "--profile",
            "irene-device-1-full",
        ]
    )
    assert rc == 7
    err = capsys.readouterr().err
    assert "'full' feature set" in err and "use a static profile such as 'irene-device-1'" in err


def test_sequence_too_long_is_worded_for_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc = main(["predict", "roberta-base", "--batch-size", "1", "--seq-len", "600"])
    assert rc == 3
    err = capsys.readouterr().err
    assert err == (
        "irene predict: error: roberta-base: seq_len 600 is beyond the model's 512 positions "
        "(RobertaConfig.max_position_embeddings 514, 2 reserved); use --seq-len 512 or less\n"
    )


def test_corrupt_profile_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.irene.joblib"
    bad.write_bytes(b"\x80\x04garbage")
    rc = main(
        ["predict", "distilgpt2", "--batch-size", "1", "--seq-len", "8", "--profile", str(bad)]
    )
    assert rc == 7
    assert "corrupt or truncated" in capsys.readouterr().err


def test_bottlenecks_by_hand() -> None:
    def ml(fqn: str, typ: str, e: float) -> Node:
        return Node(name=f"{fqn}:{typ}", level="ml", type=typ, fqn=fqn, energy_j=e)

    layers = [
        Node(
            name=f"layer.{i}:Block",
            level="module",
            type="Block",
            fqn=f"layer.{i}",
            energy_j=3.0,
            children=[ml(f"layer.{i}.fc", "Linear", 2.0), ml(f"layer.{i}", "Softmax", 0.5)],
        )
        for i in range(2)
    ]
    head = Node(name="head:Head", level="module", type="Head", fqn="head", energy_j=4.0,
                children=[ml("head.fc", "Linear", 4.0)])  # fmt: skip
    tree = EnergyTree(
        root=Node(name="m", level="model", type="m", energy_j=10.0, children=[*layers, head])
    )
    b = bottlenecks(tree)
    assert b["modules"] == [
        {"pattern": "layer.*:Block", "count": 2, "energy_j": 6.0, "share_pct": 60.0},
        {"pattern": "head:Head", "count": 1, "energy_j": 4.0, "share_pct": 40.0},
    ]
    assert [
        (r["type"], r["count"], r["energy_j"], r["share_pct"]) for r in b["primitive_types"]
    ] == [
        ("Linear", 3, 8.0, 80.0),
        ("Softmax", 2, 1.0, 10.0),
    ]
