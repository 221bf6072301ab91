"""The tree type (predictor.trace.tree) and the IrEne dataset reader/writer (predictor.learn.data)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from predictor.errors import DataError
from predictor.learn.data import (
    CSV_FILES,
    FUNCTIONAL_OPS,
    load_csv_dataset,
    load_dataset,
    load_jsonl_dataset,
    write_csv_dataset,
)
from predictor.trace.tree import TREE_SCHEMA, EnergyTree, Node, UnsupportedOp

HEADER = (
    "batch_size,seq_len,flops,mem_bytes,cpu,mem,gpu,gpu_mem,gpu_clk,gpu_mem_clk,"
    "times_mean,gpu_energy_mean,energy_mean,level_name,model_name"
)


def _row(
    name: str, flops: float, energy: float, model: str = "m", batch: int = 2, seq: int = 4
) -> str:
    return f"{batch}.0,{seq}.0,{flops},1.5,10.0,5.0,90.0,3.0,1500.0,3800.0,0.01,0.5,{energy},{name},{model}"


def _write(folder: Path, rows: dict[str, list[str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, fname in CSV_FILES.items():
        (folder / fname).write_text("\n".join([HEADER, *rows.get(key, [])]) + "\n")
    return folder


def _tiny(folder: Path) -> Path:
    return _write(
        folder,
        {
            "model": [_row("m", 100.0, 9.0)],
            "module": [_row("enc:Enc", 90.0, 8.0), _row("enc.layer.0:Layer", 80.0, 7.0)],
            "ml1": [_row("emb:Embedding", 0.0, 0.5), _row("enc.layer.0.fc:Linear", 60.0, 4.0)],
            "ml2": [
                _row("enc.layer.0:MatMul", 5.0, 0.2),
                _row("enc.layer.0:MatMul", 5.0, 0.2),
                _row("enc.layer.0:Softmax", 1.0, 0.1),
                # ML rows of a configuration with no model row: skipped, with the reason
                _row("enc.layer.0:Softmax", 1.0, 0.1, batch=4),
            ],
        },
    )


# -- tree.py --------------------------------------------------------------------------------


def _sample_tree() -> EnergyTree:
    leaf = Node("a.fc:Linear", "ml", "Linear", "a.fc", flops=2.0, mem_bytes=1.0, num_parameters=6)
    mm = Node("a:MatMul", "ml", "MatMul", "a", flops=1.0, runtime={"cpu": 5.0}, energy_j=0.1)
    mod = Node("a:A", "module", "A", "a", flops=3.5, children=[leaf, mm], measured_energy_j=0.4)
    root = Node("net", "model", "Net", batch_size=2, seq_len=8, children=[mod], extrapolated=True)
    return EnergyTree(root, "native", [UnsupportedOp("cumprod", "a", 2)], {"model": "net"})


def test_walk_find_parents_and_levels() -> None:
    tree = _sample_tree()
    assert [n.name for n in tree.walk()] == ["net", "a:A", "a.fc:Linear", "a:MatMul"]
    assert [n.name for n in tree.nodes("ml")] == ["a.fc:Linear", "a:MatMul"]
    assert tree.find("a:MatMul")[0].type == "MatMul"
    parents = tree.parents()
    assert parents[id(tree.find("a.fc:Linear")[0])].name == "a:A"
    assert tree.model_name == "net" and tree.batch_size == 2 and tree.seq_len == 8
    assert tree.root.input_size == 16
    assert tree.root.static_features()["input_size"] == 16.0
    with pytest.raises(KeyError):
        tree.root.feature("cpu")
    assert tree.find("a:MatMul")[0].feature("cpu") == 5.0


def test_round_trip_keeps_everything() -> None:
    tree = _sample_tree()
    again = EnergyTree.from_dict(json.loads(tree.to_json()))
    assert again.to_dict() == tree.to_dict()
    assert again.counting_mode == "native"
    assert again.unsupported_ops == [UnsupportedOp("cumprod", "a", 2)]
    assert again.root.extrapolated and again.find("a:MatMul")[0].energy_j == 0.1


def test_bad_serialized_trees_are_refused() -> None:
    data = _sample_tree().to_dict()
    with pytest.raises(ValueError, match="schema 'irene-tree/0' is not supported"):
        EnergyTree.from_dict({**data, "schema": "irene-tree/0"})
    assert data["schema"] == TREE_SCHEMA
    bad_level = {**data["root"], "level": "layer"}
    with pytest.raises(ValueError, match="level must be one of"):
        Node.from_dict(bad_level)
    with pytest.raises(ValueError, match="finite"):
        Node.from_dict({**data["root"], "energy_j": float("nan")})
    tree = _sample_tree()
    tree.root.flops = float("inf")
    with pytest.raises(ValueError):
        tree.to_json()


# -- data.py: CSV layout --------------------------------------------------------------------


def test_csv_links_nodes_to_nearest_enclosing_module(tmp_path: Path) -> None:
    data = load_dataset(_tiny(tmp_path / "d"))
    assert data.model_names == ["m"]
    assert data.skipped == ["m batch 4 seq 4: 0 model-level rows (need exactly 1)"]
    (tree,) = data.trees
    root = tree.root
    assert (root.name, root.level, root.measured_energy_j) == ("m", "model", 9.0)
    assert [c.name for c in root.children] == ["enc:Enc", "emb:Embedding"]
    layer = tree.find("enc.layer.0:Layer")[0]
    assert tree.parents()[id(layer)].name == "enc:Enc"
    # leaf modules go to the enclosing module; functional ops to the module of their own fqn
    assert [c.name for c in layer.children] == [
        "enc.layer.0.fc:Linear",
        "enc.layer.0:MatMul",
        "enc.layer.0:MatMul",
        "enc.layer.0:Softmax",
    ]
    fc = tree.find("enc.layer.0.fc:Linear")[0]
    assert (fc.type, fc.fqn, fc.flops, fc.mem_bytes, fc.batch_size, fc.seq_len) == (
        "Linear",
        "enc.layer.0.fc",
        60.0,
        1.5,
        2,
        4,
    )
    assert fc.runtime["gpu_clk"] == 1500.0 and fc.measured_energy_j == 4.0


def test_csv_write_then_read_is_identical(tmp_path: Path) -> None:
    data = load_csv_dataset(_tiny(tmp_path / "d"))
    out = write_csv_dataset(data.trees, tmp_path / "out", hardware={"gpu": "test"})
    again = load_csv_dataset(out)
    assert [t.to_dict()["root"] for t in again.trees] == [t.to_dict()["root"] for t in data.trees]
    assert again.hardware == {"gpu": "test"}
    assert not list(out.glob("*.tmp"))
    ml2 = (out / CSV_FILES["ml2"]).read_text()
    assert "MatMul" in ml2 and "Linear" not in ml2 and {"MatMul", "Softmax"} == FUNCTIONAL_OPS


def test_writing_an_unmeasured_tree_is_refused(tmp_path: Path) -> None:
    tree = _sample_tree()
    with pytest.raises(DataError, match="has no measured energy"):
        write_csv_dataset([tree], tmp_path / "out")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("flops,mem_bytes", "flop,mem_bytes"), ":1: missing column(s) flops"),
        (
            lambda t: t.replace(",100.0,", ",lots,"),
            ":2: column 'flops' must be a number (got 'lots')",
        ),
        (lambda t: t.replace(",100.0,", ",inf,"), ":2: column 'flops' must be finite"),
        (lambda t: t.replace(",m\n", ",m,extra\n"), ":2: 16 fields, the header has 15"),
        (lambda t: "", "the file is empty"),
    ],
)
def test_csv_errors_say_file_and_line(tmp_path: Path, edit: object, message: str) -> None:
    folder = _tiny(tmp_path / "d")
    model_csv = folder / CSV_FILES["model"]
    model_csv.write_text(edit(model_csv.read_text()))  # type: ignore[operator]
    with pytest.raises(DataError) as info:
        load_dataset(folder)
    assert str(model_csv) in str(info.value) and message in str(info.value)


def test_missing_files_and_bad_hardware(tmp_path: Path) -> None:
    folder = _tiny(tmp_path / "d")
    (folder / CSV_FILES["ml2"]).unlink()
    with pytest.raises(DataError, match=re.escape("missing file(s) ml2_level_features.csv")):
        load_dataset(folder)
    with pytest.raises(DataError, match="no such dataset"):
        load_dataset(tmp_path / "nowhere")
    folder = _tiny(tmp_path / "e")
    (folder / "hardware.json").write_text("{\n  oops\n}")
    with pytest.raises(DataError, match=r"hardware.json:2: not valid JSON"):
        load_dataset(folder)


# -- data.py: JSONL layout ------------------------------------------------------------------


def _jsonl_record() -> dict[str, object]:
    mm = {"type": "ml", "instance_type": "MatMul", "scope": "root.enc.attn.matmul", "flops": 4.0}
    fc = {
        "type": "ml",
        "instance_type": "Linear",
        "scope": "root.enc.attn.q",
        "flops": 8.0,
        "num_parameters": 12,
    }
    attn = {
        "type": "module",
        "instance_type": "Attn",
        "scope": "root.enc.attn",
        "flops": 12.5,
        "ground_truth_energy": 0.3,
        "child_nodes_obj": [fc, mm],
    }
    root = {
        "type": "model",
        "instance_type": "Net",
        "scope": "root",
        "flops": 13.0,
        "child_nodes_obj": [attn],
        "ground_truth_energy": 1.0,
        "gpu": 50.0,
    }
    return {"model_name": "net", "batch_size": 2, "seq_len": 8, "frontend_tree": root}


def test_jsonl_tree(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(_jsonl_record()) + "\n\n")
    (tree,) = load_dataset(path).trees
    assert [n.name for n in tree.walk()] == [
        "net",
        "enc.attn:Attn",
        "enc.attn.q:Linear",
        "enc.attn:MatMul",
    ]
    assert tree.root.runtime == {"gpu": 50.0} and tree.root.measured_energy_j == 1.0
    assert tree.find("enc.attn.q:Linear")[0].num_parameters == 12
    assert all(n.batch_size == 2 and n.seq_len == 8 for n in tree.walk())


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", ":2: not valid JSON"),
        (
            json.dumps({"batch_size": 1, "seq_len": 2, "model_name": "x"}),
            ":2: missing key 'frontend_tree'",
        ),
        (
            json.dumps(
                {**_jsonl_record(), "frontend_tree": {"type": "layer", "instance_type": "X"}}
            ),
            ":2: node None: type must be model, module or ml (got 'layer')",
        ),
    ],
)
def test_jsonl_errors_say_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(_jsonl_record()) + "\n" + line + "\n")
    with pytest.raises(DataError, match=re.escape(message)):
        load_jsonl_dataset(path)


# -- the authors' data ----------------------------------------------------------------------


def test_irene_device_1(irene_device_1: Path) -> None:
    data = load_dataset(irene_device_1)
    assert sorted(data.model_names) == sorted(
        [
            "bert-base-uncased",
            "distilbert-base-uncased",
            "roberta-base",
            "gpt2",
            "distilgpt2",
            "openai-gpt",
            "sshleifer/tiny-ctrl",
        ]
    )
    assert len(data.trees) == 193
    assert data.skipped == ["openai-gpt batch 32 seq 128: 0 model-level rows (need exactly 1)"]
    bert = next(
        t for t in data.by_model("bert-base-uncased") if (t.batch_size, t.seq_len) == (8, 32)
    )
    assert len(bert.nodes("module")) == 75
    assert len(bert.find("encoder.layer.0.attention.self:MatMul")) == 2
    parents = bert.parents()
    for node in bert.nodes("ml"):
        assert parents[id(node)].level in ("module", "model")
    assert bert.root.flops == pytest.approx(43928.543744)
