"""Never a silent zero: regressors per kernel class, non-negative own-op energy, the zero
guard, dtype warnings, and training trees re-derived in the native counting."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from predictor.api import predict
from predictor.errors import PredictionError
from predictor.learn.profile import check_prediction, load_profile, profile_counting
from predictor.learn.regressors import MLRegressors, node_kernel
from predictor.trace.tracer import build_tree
from predictor.trace.tree import EnergyTree, Node


@pytest.fixture(scope="module")
def profile():  # type: ignore[no-untyped-def]
    return load_profile()


def _assert_positive_everywhere(tree: EnergyTree) -> None:
    for node in tree.walk():
        assert node.energy_j is not None and math.isfinite(node.energy_j)
        if node.does_work:
            assert node.energy_j > 0, node.name


class FunctionalBlock(nn.Module):
    """Computes through F.linear and has a child module: IrEne's own-FLOPs coefficient came
    out negative, and such a model was predicted at 0 J on every node."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.zeros(1024, 256))
        self.w2 = nn.Parameter(torch.zeros(256, 1024))
        self.norm = nn.LayerNorm(256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + F.linear(F.gelu(F.linear(x, self.w1)), self.w2))


@pytest.mark.parametrize(
    "model",
    [
        nn.TransformerEncoder(nn.TransformerEncoderLayer(256, 4, 1024, batch_first=True), 2),
        nn.Sequential(FunctionalBlock(), FunctionalBlock()),
    ],
    ids=["nn.TransformerEncoder", "F.linear-with-child"],
)
def test_models_once_predicted_at_zero_are_positive_on_every_working_node(
    model: nn.Module,
    profile,  # type: ignore[no-untyped-def]
) -> None:
    tree = predict(model, torch.zeros(8, 64, 256), profile=profile, name="m")
    _assert_positive_everywhere(tree)
    assert tree.extrapolated_share() == 0.0  # every kernel class here has training data
    gemms = [n for n in tree.nodes("ml") if n.kernel == "gemm"]
    assert gemms and all(n.energy_j and n.energy_j > 0 for n in gemms)


def test_own_op_coefficients_of_the_shipped_profiles_are_non_negative() -> None:
    for name in ("irene-device-1", "irene-device-1-full"):
        agg = load_profile(name).aggregator
        for level, coef in agg.coef.items():  # type: ignore[union-attr]
            terms = agg._terms(level)  # type: ignore[union-attr]
            n_sums = len(coef) - len(terms)
            work = [
                c for t, c in zip(terms, coef[n_sums:], strict=True) if not t.startswith("own:")
            ]
            assert all(c >= 0 for c in coef[:n_sums]), (name, level)
            assert all(c >= 0 for c in work), (name, level, terms, coef)


def test_a_zero_prediction_is_an_error_naming_the_node(profile) -> None:  # type: ignore[no-untyped-def]
    broken = copy.deepcopy(profile)
    broken.aggregator.coef["model"] = np.zeros_like(broken.aggregator.coef["model"])
    tree = build_tree(
        nn.Sequential(nn.Linear(8, 8), nn.ReLU()), torch.zeros(2, 8), name="mlp",
        counting_mode=profile_counting(profile),
    )  # fmt: skip
    with pytest.raises(PredictionError, match=r"mlp: node 'mlp' was predicted 0.0 J") as info:
        broken.predict(tree)
    assert (info.value.model, info.value.node, info.value.energy_j) == ("mlp", "mlp", 0.0)
    assert info.value.exit_code == 7  # a ProfileError to the CLI


def _node(name: str, energy: float, flops: float = 1.0, children: list[Node] | None = None) -> Node:
    return Node(
        name=name, level="ml" if not children else "model", type="X", flops=flops,
        energy_j=energy, children=children or [],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("energy", "flops", "reason"),
    [(0.0, 1.0, "it does work"), (-1e-3, 1.0, "below zero"), (math.nan, 0.0, "not a finite")],
)
def test_check_prediction_refuses_zero_negative_and_non_finite(
    energy: float, flops: float, reason: str
) -> None:
    tree = EnergyTree(
        root=_node("m", 1.0, children=[_node("a:X", 0.5), _node("b:X", energy, flops)])
    )
    with pytest.raises(PredictionError, match=rf"node 'b:X' was predicted .* \({reason}"):
        check_prediction(tree)


def test_a_node_doing_no_work_may_be_zero() -> None:
    idle = _node("idle:X", 0.0, flops=0.0)
    check_prediction(EnergyTree(root=_node("m", 1.0, children=[idle])))


# -- regressors by kernel class ---------------------------------------------------------------


class FalconLikeLinear(nn.Linear):
    pass


def test_subclasses_functional_calls_and_convs_use_trained_regressors(profile) -> None:  # type: ignore[no-untyped-def]
    ml = profile.ml
    lin = Node("a:Linear", "ml", "Linear", kernel="gemm", flops=200.0, mem_bytes=10.0,
               batch_size=8, seq_len=128)  # fmt: skip
    falcon = copy.deepcopy(lin)
    falcon.type, falcon.base = "FalconLinear", "Linear"
    conv = copy.deepcopy(lin)
    conv.type, conv.base = "Conv2d", "Conv2d"
    pool = copy.deepcopy(lin)
    pool.type, pool.kernel = "MaxPool2d", "pool"
    scan = copy.deepcopy(lin)
    scan.type, scan.kernel = "SelectiveScan", "scan"
    energy, extrapolated = ml.predict([lin, falcon, conv, pool, scan])
    assert energy[0] == energy[1]  # a FalconLinear is a Linear
    assert ml.regressor(conv) is ml.by_kernel["gemm"]  # implicit GEMM: the pooled GEMMs
    assert ml.regressor(pool) is ml.by_kernel["activation"]  # its proxy: one elementwise pass
    # no pooling and no scan in the data: both are flagged, the pool predicted by its proxy
    assert extrapolated.tolist() == [False, False, False, True, True]
    assert ml.proxied(pool) and not ml.proxied(conv)
    assert set(ml.covers()) == {
        "gemm", "bmm", "softmax", "norm", "embedding", "activation",
    }  # fmt: skip


def test_a_node_with_a_count_is_predicted_per_call_times_its_count(profile) -> None:  # type: ignore[no-untyped-def]
    one = Node("m:MatMul", "ml", "MatMul", kernel="bmm", flops=0.5, mem_bytes=0.2,
               batch_size=1, seq_len=256)  # fmt: skip
    folded = copy.deepcopy(one)
    folded.count, folded.flops, folded.mem_bytes = 256, 0.5 * 256, 0.2 * 256
    folded.seq_len = 256
    one.seq_len, one.batch_size = 1, 1  # one step processes one token of one sequence
    (e_one, e_folded), _ = profile.ml.predict([one, folded])
    assert e_folded == pytest.approx(256 * e_one)


def test_regressors_fit_per_kernel_class_and_per_type() -> None:
    nodes = []
    for i, (typ, kernel) in enumerate([("Linear", "gemm"), ("Conv1D", "gemm"), ("MatMul", "")]):
        for k in range(1, 101):  # MIN_TYPE_ROWS rows each
            nodes.append(
                Node(f"x{i}:{typ}", "ml", typ, kernel=kernel, flops=10.0 * k, mem_bytes=k,
                     batch_size=2, seq_len=8 * k, measured_energy_j=0.01 * k + 0.001 * i)
            )  # fmt: skip
    by_kernel = MLRegressors.fit(nodes, "static", method="linear", key="kernel")
    assert sorted(by_kernel.by_kernel) == ["bmm", "gemm"] and by_kernel.by_type == {}
    by_type = MLRegressors.fit(nodes, "static", method="linear", key="type")
    assert sorted(by_type.by_type) == ["Conv1D", "Linear", "MatMul"]
    few = MLRegressors.fit(nodes[:150], "static", method="linear", key="type")
    assert sorted(few.by_type) == ["Linear"]  # Conv1D has 50 rows: its class's regressor
    assert node_kernel(nodes[-1]) == "bmm"  # a dataset's MatMul: its type's class
    back = MLRegressors.from_dict(by_type.to_dict())
    assert back.by_kernel.keys() == by_type.by_kernel.keys() and back.key == "type"


def test_dtype_different_from_training_is_said(profile) -> None:  # type: ignore[no-untyped-def]
    model = nn.Sequential(nn.Linear(64, 64), nn.GELU()).to(torch.bfloat16)
    tree = predict(model, torch.zeros(4, 64, dtype=torch.bfloat16), profile=profile)
    assert profile.dtype == "float32"
    assert "bfloat16" in tree.meta["dtype_warning"] and "float32" in tree.meta["dtype_warning"]
    fp32 = predict(model.float(), torch.zeros(4, 64), profile=profile)
    assert "dtype_warning" not in fp32.meta
    assert tree.root.energy_j is not None and fp32.root.energy_j is not None
    assert tree.root.energy_j < fp32.root.energy_j  # half the bytes


def test_shipped_profile_is_trained_on_the_native_counting(profile) -> None:  # type: ignore[no-untyped-def]
    assert profile.counting_mode == "native" and profile_counting(profile) == "native"
    assert "re-derived" in profile.training_data["features"]


# -- training trees re-derived ----------------------------------------------------------------


@pytest.mark.needs_data
def test_retraced_trees_carry_the_measurements_on_native_features(irene_device_1: Path) -> None:
    from predictor.learn.data import load_dataset
    from predictor.learn.retrace import load_training_data

    data = load_dataset(irene_device_1)
    measured = [t for t in data.trees if t.model_name == "distilgpt2"]
    ds = load_training_data(irene_device_1, "native", models=["distilgpt2"])
    assert len(ds.trees) == len(measured) == 28
    for tree, orig in zip(ds.trees, measured, strict=True):
        assert tree.counting_mode == "native" and tree.meta["retraced"]["unmatched"] == 0
        assert all(n.measured_energy_j is not None for n in tree.walk())
        # every measured ML node, by name (k-th of a name to k-th); the same energies
        assert sorted((n.name, n.measured_energy_j) for n in tree.nodes("ml")) == sorted(
            (n.name, n.measured_energy_j) for n in orig.nodes("ml")
        )
        assert tree.root.measured_energy_j == orig.root.measured_energy_j
    # the counting differs where IrEne's did: GPT-2's Conv1D reads its fp32 weight once
    conv = ds.trees[0].nodes("ml")[3]
    assert conv.type == "Conv1D" and conv.kernel == "gemm" and conv.dtype == "float32"
