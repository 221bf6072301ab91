"""The tracer: names, levels, roll-up, parameters, fallbacks and errors, on tiny modules with
hand-computed features; and a few IrEne dataset configurations matched node by node."""

from __future__ import annotations

import pickle
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from predictor.errors import ModelError, SequenceTooLong, TraceError
from predictor.learn.data import load_dataset
from predictor.trace.primitives import PrimitiveRegistry, default_primitives
from predictor.trace.tracer import build_tree
from predictor.trace.tree import EnergyTree, Node
from predictor.trace.zoo import build_zoo_tree

MIB = 2**20


class Attn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.GELU()
        self.drop = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)  # (2, 3, 4)
        s = torch.matmul(h, h.transpose(-1, -2))  # (2, 3, 3)
        p = F.softmax(s, dim=-1)
        out = self.drop(torch.matmul(p, h))
        return self.act(out) + x  # add: 24 elements


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.block = Attn()
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight  # tied

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.emb(input_ids)
        x = self.block(x)
        x = self.block(x)  # shared module called twice: two nodes
        return self.head(x)


def _tree() -> EnergyTree:
    return build_tree(Net(), name="net", batch_size=2, seq_len=3)


def test_names_levels_and_order() -> None:
    tree = _tree()
    assert tree.root.name == "net" and tree.root.type == "Net" and tree.root.level == "model"
    names = [(n.level, n.name) for n in tree.root.children]
    assert names == [
        ("ml", "emb:Embedding"),
        ("module", "block:Attn"),
        ("module", "block:Attn"),
        ("ml", "head:Linear"),
    ]
    block = tree.root.children[1]
    assert [(n.level, n.name) for n in block.children] == [
        ("ml", "block.fc:Linear"),
        ("ml", "block:MatMul"),
        ("ml", "block:Softmax"),
        ("ml", "block:MatMul"),
        ("ml", "block.act:GELU"),
    ]  # no Dropout node


def test_features_hand_computed_and_rolled_up() -> None:
    tree = _tree()
    block = tree.root.children[1]
    fc, mm1, sm, mm2, act = block.children
    # Linear (2,3,4)x(4,4)+bias: 2*2*3*4*4 + 2*3*4
    assert fc.flops * 1e6 == pytest.approx(192 + 24)
    assert fc.mem_bytes * MIB == pytest.approx(4 * 2 * (12 + 16 + 12) + 8 * 24)
    assert mm1.flops * 1e6 == pytest.approx(2 * 2 * 3 * 4 * 3)
    assert mm2.flops * 1e6 == pytest.approx(2 * 2 * 3 * 3 * 4)
    assert sm.flops * 1e6 == pytest.approx(5 * 18)
    assert act.flops * 1e6 == pytest.approx(6 * 24)
    # the residual add (24 elements) is in the module, not in any child
    children = sum(c.flops for c in block.children)
    assert (block.flops - children) * 1e6 == pytest.approx(24)
    assert (block.mem_bytes - sum(c.mem_bytes for c in block.children)) * MIB == pytest.approx(
        8 * 24
    )
    root_children = sum(c.flops for c in tree.root.children)
    assert tree.root.flops == pytest.approx(root_children)
    for node in tree.walk():
        assert (node.batch_size, node.seq_len) == (2, 3)


def test_parameters_tied_weights_once() -> None:
    tree = _tree()
    emb, block, _, head = tree.root.children
    assert emb.num_parameters == 40 and head.num_parameters == 40
    assert block.num_parameters == 20
    assert tree.root.num_parameters == 40 + 20  # the tied head weight is not counted twice
    assert all(n.num_parameters == 0 for n in tree.nodes("ml") if n.type in ("MatMul", "Softmax"))


def test_meta_and_unsupported() -> None:
    tree = _tree()
    assert tree.counting_mode == "irene"
    assert tree.meta["model"] == "net"
    assert tree.meta["inputs"] == {"input_ids": {"shape": [2, 3], "dtype": "int64"}}
    assert "attn_implementation" in tree.meta
    assert tree.unsupported_ops == []
    assert EnergyTree.from_dict(tree.to_dict()).to_dict() == tree.to_dict()


def test_default_primitives() -> None:
    primitives = default_primitives()
    assert primitives.type_of(nn.Linear(2, 2)) == "Linear"
    assert primitives.type_of(nn.SiLU()) == "SiLU"
    assert primitives.type_of(Attn()) is None
    assert primitives.is_skipped(nn.Dropout(0.1)) and not primitives.is_skipped(Attn())

    class LlamaRMSNorm(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    assert primitives.type_of(LlamaRMSNorm()) == "LlamaRMSNorm"


def test_a_primitive_for_one_call_leaves_other_traces_alone() -> None:
    default = _tree()
    as_leaf = build_tree(Net(), name="net", batch_size=2, seq_len=3, primitives=[Attn])
    blocks = [n for n in as_leaf.root.children if n.fqn == "block"]
    assert [(n.level, n.name, n.type) for n in blocks] == [("ml", "block:Attn", "Attn")] * 2
    assert all(n.children == [] for n in blocks)  # its Linear, MatMuls ... are inside the leaf
    assert blocks[0].flops == pytest.approx(default.root.children[1].flops)
    assert blocks[0].num_parameters == 20
    # the defaults did not change: the next trace without the override has the module again
    assert default_primitives().type_of(Attn()) is None
    assert _tree().root.children[1].level == "module"
    # the same through a registry object; a class *name* matches leaf modules only
    registry = default_primitives().register(Attn)
    assert isinstance(registry, PrimitiveRegistry)
    same = build_tree(Net(), name="net", batch_size=2, seq_len=3, primitives=registry)
    assert same.to_dict() == as_leaf.to_dict()
    by_name = build_tree(Net(), name="net", batch_size=2, seq_len=3, primitives=["Attn"])
    assert by_name.to_dict() == default.to_dict()  # Attn has children: not a leaf
    with pytest.raises(TypeError, match=r"primitives=\[MyBlock\]"):
        build_tree(Net(), batch_size=2, seq_len=3, primitives="Attn")  # type: ignore[arg-type]


class ItemModel(nn.Module):
    """Data-dependent control flow: fails on fake tensors, runs on real ones."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum().item() >= 0:
            return self.fc(x)
        return x


def test_fake_failure_falls_back_to_real_tensors() -> None:
    tree = build_tree(ItemModel(), torch.zeros(2, 4))
    assert tree.meta["execution"] == "real"
    assert "item" in tree.meta["fallback_reason"]
    assert tree.root.children[0].flops * 1e6 == pytest.approx(2 * 2 * 4 * 4)


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(4, 4), Bad())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)  # type: ignore[no-any-return]


class Bad(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, torch.zeros(5, 5))  # (.., 4) @ (5, 5): never fits


def test_failure_on_fake_and_real_names_module_and_op() -> None:
    with pytest.raises(TraceError) as info:
        build_tree(Broken(), torch.zeros(2, 4))
    msg = str(info.value)
    assert "inner.1:Bad" in msg and "'matmul'" in msg and "real tensors" in msg
    assert "Check that the inputs fit the model" in msg


def test_inputs_that_do_not_fit_and_missing_inputs() -> None:
    ids = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ModelError, match="do not fit"):
        build_tree(Net(), {"input_ids": ids, "pixel_values": torch.zeros(1)})
    with pytest.raises(ModelError, match="do not fit"):
        build_tree(Net(), (ids, ids))
    with pytest.raises(ModelError, match="batch_size and seq_len"):
        build_tree(Net())
    with pytest.raises(ModelError, match="counting mode"):
        build_tree(Net(), batch_size=1, seq_len=2, counting_mode="fast")


class TwoInputs(nn.Module):
    """forward(x, y): a Linear on x, plus y (an add of 2*3*4 = 24 FLOPs)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + y  # type: ignore[no-any-return]


@pytest.mark.parametrize("form", ["tuple", "list", "mapping", "mixed-order mapping"])
def test_each_input_form_traces_the_same(form: str) -> None:
    x, y = torch.zeros(2, 3, 4), torch.ones(2, 3, 4)
    inputs: Any = {
        "tuple": (x, y),
        "list": [x, y],
        "mapping": {"x": x, "y": y},
        "mixed-order mapping": {"y": y, "x": x},
    }[form]
    tree = build_tree(TwoInputs(), inputs, name="two")
    fc = tree.root.children[0]
    assert fc.flops * 1e6 == pytest.approx(2 * 2 * 3 * 4 * 4 + 2 * 3 * 4)
    assert (tree.root.flops - fc.flops) * 1e6 == pytest.approx(24)  # the add of y
    assert (tree.root.batch_size, tree.root.seq_len) == (2, 3)
    names = {"tuple": ["arg0", "arg1"], "list": ["arg0", "arg1"]}.get(form, ["x", "y"])
    assert sorted(tree.meta["inputs"]) == names


def test_a_single_tensor_is_the_one_positional_input() -> None:
    x = torch.zeros(2, 3, 4)
    single = build_tree(nn.Linear(4, 4), x)
    assert single.to_dict() == build_tree(nn.Linear(4, 4), (x,)).to_dict()
    assert single.meta["inputs"] == {"arg0": {"shape": [2, 3, 4], "dtype": "float32"}}


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            "input_ids",
            "inputs must be a tensor, a tuple or list of positional inputs, or a mapping",
        ),
        (7, "(got a int)"),
        ({0: torch.zeros(2, 3)}, "keyword inputs are named by strings"),
    ],
)
def test_inputs_of_a_wrong_type_are_a_model_error(inputs: Any, message: str) -> None:
    with pytest.raises(ModelError) as info:
        build_tree(TwoInputs(), inputs, name="two")
    assert str(info.value).startswith("two: ") and message in str(info.value)


class WithSeqLen(nn.Module):
    """A forward with a ``seq_len`` parameter, as the library's option is named: it keeps the
    first ``seq_len`` positions before the Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.fc = nn.Linear(4, 4)

    def forward(self, input_ids: torch.Tensor, seq_len: int | None = None) -> torch.Tensor:
        x = self.emb(input_ids)
        if seq_len is not None:
            x = x[:, :seq_len]
        return self.fc(x)  # type: ignore[no-any-return]


def test_a_forward_parameter_named_like_an_option_reaches_the_model() -> None:
    ids = torch.zeros(2, 6, dtype=torch.long)
    full = build_tree(WithSeqLen(), {"input_ids": ids})
    cut = build_tree(WithSeqLen(), {"input_ids": ids, "seq_len": 2}, seq_len=6)
    fc_full, fc_cut = full.root.children[1], cut.root.children[1]
    # IrEne's 3-D linear, 2 x tokens x in x out + tokens x out (bias), on 2x6 and 2x2 tokens
    assert fc_full.flops * 1e6 == pytest.approx(2 * 12 * 4 * 4 + 12 * 4)
    assert fc_cut.flops * 1e6 == pytest.approx(2 * 4 * 4 * 4 + 4 * 4)
    # the input went to the forward; the option only annotates the tree
    assert cut.meta["inputs"]["seq_len"] == 2
    assert (cut.root.seq_len, full.root.seq_len) == (6, 6)


def test_sequence_beyond_the_positions_is_a_typed_error() -> None:
    model = Net()
    model.config = SimpleNamespace(max_position_embeddings=4)  # type: ignore[assignment]
    build_tree(model, batch_size=1, seq_len=4)  # at the limit: fits
    with pytest.raises(SequenceTooLong) as info:
        build_tree(model, batch_size=1, seq_len=5, name="tiny")
    exc = info.value
    assert isinstance(exc, ModelError)
    assert (exc.model, exc.seq_len, exc.limit) == ("tiny", 5, 4)
    assert exc.source == "SimpleNamespace.max_position_embeddings"
    assert str(exc) == (
        "tiny: seq_len 5 is beyond the model's 4 positions (SimpleNamespace.max_position_embeddings)"
    )
    # inferred from the inputs as well, and the message names no command-line option
    with pytest.raises(SequenceTooLong, match="seq_len 6 is beyond") as again:
        build_tree(model, torch.zeros(1, 6, dtype=torch.long))
    assert "--" not in str(again.value)
    copy = pickle.loads(pickle.dumps(exc))
    assert (type(copy), copy.limit, copy.source, str(copy)) == (
        SequenceTooLong,
        4,
        exc.source,
        str(exc),
    )


def test_meta_model_allocates_no_storage() -> None:
    with torch.device("meta"):
        model = Net()
    tree = build_tree(model, batch_size=2, seq_len=3)
    assert all(p.is_meta for p in model.parameters())
    assert tree.root.flops == pytest.approx(_tree().root.flops)


# -- the IrEne dataset ----------------------------------------------------------------------

CONFIGS = [
    ("bert-base-uncased", 8, 32),
    ("distilbert-base-uncased", 24, 64),
    ("roberta-base", 8, 256),
    ("gpt2", 16, 96),
    ("distilgpt2", 32, 64),
    ("openai-gpt", 8, 224),
]


@pytest.fixture(scope="module")
def dataset(irene_device_1: Path) -> dict[tuple[str, int, int], EnergyTree]:
    data = load_dataset(irene_device_1)
    return {(t.model_name, t.batch_size, t.seq_len): t for t in data.trees}


@pytest.mark.parametrize(("model", "batch", "seq"), CONFIGS)
def test_traced_ml_nodes_and_model_flops_match_dataset(
    dataset: dict[tuple[str, int, int], EnergyTree], model: str, batch: int, seq: int
) -> None:
    data = dataset[(model, batch, seq)]
    tree = build_zoo_tree(model, batch, seq)
    mine: dict[str, list[Node]] = defaultdict(list)
    for node in tree.nodes("ml"):
        mine[node.name].append(node)
    seen: dict[str, int] = defaultdict(int)
    for node in data.nodes("ml"):
        k = seen[node.name]
        seen[node.name] += 1
        assert k < len(mine[node.name]), f"{node.name} (occurrence {k + 1}) not traced"
        traced = mine[node.name][k]
        assert traced.flops == pytest.approx(node.flops, rel=0.01, abs=1e-9), node.name
        assert traced.mem_bytes == pytest.approx(node.mem_bytes, rel=0.01), node.name
    assert tree.root.flops == pytest.approx(data.root.flops, rel=0.01)
