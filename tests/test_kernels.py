"""Kernel classes, functional ML leaves, loops, dtype, torch.compile and MoE routing, on tiny
modules with hand-computed FLOPs and bytes (native counting: each tensor at its own element
size, read once per call)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from predictor.errors import ModelError
from predictor.trace.kernels import KERNEL_CLASSES, TRAINING_TYPES, kernel_of_type
from predictor.trace.primitives import default_primitives
from predictor.trace.tracer import build_tree
from predictor.trace.tree import EnergyTree, Node

MIB = 2**20


def ml(tree: EnergyTree) -> list[Node]:
    return tree.nodes("ml")


def raw(node: Node) -> tuple[float, float]:
    """(FLOPs, bytes) of a node in raw units."""
    return round(node.flops * 1e6, 6), round(node.mem_bytes * MIB, 6)


class Holder(nn.Module):
    """Runs ``fn(self, x)`` so functional calls land in a named module ``inner``."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.inner(*args)  # type: ignore[no-any-return]


# -- the taxonomy -----------------------------------------------------------------------------


def test_training_types_map_onto_kernel_classes() -> None:
    assert TRAINING_TYPES["Linear"] == TRAINING_TYPES["Conv1D"] == "gemm"
    assert kernel_of_type("MatMul") == "bmm"
    assert kernel_of_type("LayerNorm") == "norm"
    assert kernel_of_type("Tanh") == "activation"
    assert kernel_of_type("FooBar") == ""
    assert set(TRAINING_TYPES.values()) <= set(KERNEL_CLASSES)


class FalconLikeLinear(nn.Linear):
    pass


class ScaledEmbedding(nn.Embedding):
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return super().forward(ids) * 2.0


class FooRMSNorm(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)


@pytest.mark.parametrize(
    ("module", "kernel"),
    [
        (FalconLikeLinear(4, 4), "gemm"),
        (nn.Conv2d(2, 2, 3), "gemm"),
        (ScaledEmbedding(10, 4), "embedding"),
        (FooRMSNorm(4), "norm"),
        (nn.RMSNorm(4), "norm"),
        (nn.BatchNorm2d(4), "activation"),  # eval mode: a per-channel scale and shift
        (nn.GroupNorm(2, 4), "norm"),
        (nn.SiLU(), "activation"),
        (nn.Softmax(dim=-1), "softmax"),
        (nn.MaxPool2d(2), "pool"),
        (nn.AdaptiveAvgPool2d(1), "pool"),
    ],
)
def test_subclasses_and_foreign_classes_resolve_to_their_base_kernel(
    module: nn.Module, kernel: str
) -> None:
    prim = default_primitives().classify(module)
    assert prim is not None and prim.kernel == kernel
    assert prim.type == type(module).__name__  # names stay IrEne's fqn:ClassName


def test_a_subclass_is_traced_as_its_base_with_its_own_name() -> None:
    x = torch.zeros(2, 5, 4)
    tree = build_tree(Holder(FalconLikeLinear(4, 3)), x, counting_mode="native")
    (node,) = ml(tree)
    assert (node.name, node.type, node.kernel, node.dtype) == (
        "inner:FalconLikeLinear",
        "FalconLikeLinear",
        "gemm",
        "float32",
    )
    assert raw(node) == (2 * 10 * 4 * 3 + 10 * 3, 4 * (40 + 12 + 3 + 30))
    assert node.shapes == [[2, 5, 4], [3, 4], [3], [2, 5, 3]]


def test_registered_primitive_without_kernel_takes_its_costliest_op() -> None:
    block = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4))
    tree = build_tree(Holder(block), torch.zeros(2, 4), primitives=[nn.Sequential])
    (node,) = ml(tree)
    assert node.type == "Sequential" and node.kernel == "gemm"
    registry = default_primitives().register(nn.Sequential, kernel="elementwise")
    (node,) = ml(build_tree(Holder(block), torch.zeros(2, 4), primitives=registry))
    assert node.kernel == "elementwise"
    with pytest.raises(ValueError, match="unknown kernel class"):
        default_primitives().register("X", kernel="tensorcore")


# -- functional calls are ML leaves of the module calling them --------------------------------


class FunctionalLinear(nn.Module):
    """A module computing through F.linear that also has a child module (the case IrEne's sum
    and a negative own-FLOPs coefficient turned into 0 J)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3, 4))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(F.linear(x, self.w))


def test_f_linear_is_a_gemm_leaf_of_the_calling_module() -> None:
    tree = build_tree(Holder(FunctionalLinear()), torch.zeros(2, 5, 4), counting_mode="native")
    inner = tree.root.children[0]
    assert [(n.name, n.kernel) for n in inner.children] == [
        ("inner:Linear", "gemm"),
        ("inner.act:ReLU", "activation"),
    ]
    lin = inner.children[0]
    assert raw(lin) == (2 * 10 * 4 * 3, 4 * (40 + 12 + 30))
    assert lin.num_parameters == 12  # the weight it reads


@pytest.mark.parametrize(
    ("fn", "node_type", "kernel", "flops", "nbytes"),
    [
        # layer_norm: 8 FLOPs per element; input, weight, bias and output once
        (lambda x, w: F.layer_norm(x, (4,), w, w), "LayerNorm", "norm", 8 * 24, 4 * (24 + 4 + 24)),
        (lambda x, w: F.rms_norm(x, (4,), w), "RMSNorm", "norm", 4 * 24, 4 * (24 + 4 + 24)),
        (lambda x, w: F.softmax(x, dim=-1), "Softmax", "softmax", 5 * 24, 4 * (24 + 24)),
        (lambda x, w: torch.bmm(x, x.transpose(1, 2)), "MatMul", "bmm", 2 * 2 * 3 * 4 * 3, 4 * (24 + 24 + 18)),
        (lambda x, w: x @ w.diag(), "MatMul", "bmm", 2 * 6 * 4 * 4, 4 * (24 + 16 + 24)),
        (lambda x, w: torch.einsum("bsd,btd->bst", x, x), "MatMul", "bmm", 2 * 2 * 3 * 3 * 4, 4 * (24 + 18)),
    ],
)  # fmt: skip
def test_functional_primitives(
    fn: object, node_type: str, kernel: str, flops: float, nbytes: float
) -> None:
    class Fn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return fn(x, self.w)  # type: ignore[operator, no-any-return]

    tree = build_tree(Holder(Fn()), torch.zeros(2, 3, 4), counting_mode="native")
    nodes = [n for n in ml(tree) if n.type == node_type]
    assert len(nodes) == 1, [n.name for n in ml(tree)]
    assert (nodes[0].name, nodes[0].kernel) == (f"inner:{node_type}", kernel)
    assert raw(nodes[0]) == (flops, nbytes)


def test_matmul_with_a_weight_operand_is_a_gemm() -> None:
    class XW(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(4, 6))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.einsum("bsd,de->bse", x, self.w).sum() + (x[:, :2] @ self.w).sum()

    tree = build_tree(Holder(XW()), torch.zeros(2, 3, 4), counting_mode="native")
    assert [(n.type, n.kernel, raw(n)[0]) for n in ml(tree)] == [
        ("MatMul", "gemm", 2 * 2 * 3 * 4 * 6),
        ("MatMul", "gemm", 2 * 2 * 2 * 4 * 6),
    ]


def test_embedding_and_conv_functions() -> None:
    class Fn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = nn.Parameter(torch.zeros(10, 4))
            self.k = nn.Parameter(torch.zeros(4, 2, 3, 3))

        def forward(self, ids: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
            e = F.embedding(ids, self.table)
            return F.conv2d(img, self.k, padding=1).sum() + e.sum()

    ids, img = torch.zeros(2, 3, dtype=torch.long), torch.zeros(1, 2, 5, 5)
    tree = build_tree(Holder(Fn()), (ids, img), counting_mode="native")
    by_type = {n.type: n for n in ml(tree)}
    assert by_type["Embedding"].kernel == "embedding"
    assert raw(by_type["Embedding"]) == (0, 8 * 6 + 2 * 4 * 24)  # ids, rows read, rows written
    conv = by_type["Conv2d"]
    # implicit GEMM: 2 x (1*4*5*5 outputs) x (2 in-channels x 3 x 3)
    assert conv.kernel == "gemm" and raw(conv) == (2 * 100 * 18, 4 * (50 + 72 + 100))


def test_pooling_is_its_own_class() -> None:
    tree = build_tree(Holder(nn.MaxPool2d(2)), torch.zeros(1, 2, 4, 4), counting_mode="native")
    (node,) = ml(tree)
    assert node.kernel == "pool" and raw(node) == (8 * 4, 4 * (32 + 8))


# -- loops, dtype, compile --------------------------------------------------------------------


class Scan(nn.Module):
    """A Python loop of identical steps, as HF Mamba's eager scan."""

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        state = torch.zeros_like(x[:, :, 0, :])
        outs = []
        for i in range(x.shape[2]):
            state = state * 0.5 + x[:, :, i, :]
            outs.append(torch.matmul(state, c[:, i, :].unsqueeze(-1)))
        return torch.stack(outs, dim=-1)


def test_a_loop_of_identical_calls_is_one_node_with_a_count() -> None:
    x, c = torch.zeros(1, 8, 50, 4), torch.zeros(1, 50, 4)
    tree = build_tree(Holder(Scan()), (x, c), counting_mode="native")
    (node,) = ml(tree)
    assert (node.name, node.kernel, node.count) == ("inner:MatMul", "bmm", 50)
    per_step = 2 * 8 * 4 * 1  # (1, 8, 4) @ (1, 4, 1)
    assert raw(node)[0] == 50 * per_step
    assert node.shapes == [[1, 8, 4], [1, 4, 1], [1, 8, 1]]


def test_dtype_is_recorded_and_bytes_follow_it() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))
    x = torch.zeros(4, 8)
    fp32 = build_tree(model, x, counting_mode="native")
    bf16 = build_tree(model.to(torch.bfloat16), x.to(torch.bfloat16), counting_mode="native")
    assert {n.dtype for n in fp32.walk()} == {"float32"}
    assert {n.dtype for n in bf16.walk()} == {"bfloat16"}
    assert bf16.dtypes() == ["bfloat16"]
    assert bf16.root.flops == fp32.root.flops
    assert bf16.root.mem_bytes == pytest.approx(fp32.root.mem_bytes / 2)
    # irene counting charges 4 bytes per element whatever the dtype, as the dataset did
    irene = build_tree(model, x.to(torch.bfloat16))
    assert irene.root.mem_bytes == pytest.approx(build_tree(model.float(), x).root.mem_bytes)


# torch.compile imports inductor, which warns that torch.jit.script_method is deprecated
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_compiled_model_is_traced_eagerly_under_its_own_names() -> None:
    from torch._dynamo.utils import counters

    inner = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
    model = nn.Sequential(torch.compile(inner), nn.ReLU())
    plain = build_tree(nn.Sequential(inner, nn.ReLU()), torch.zeros(2, 16))
    frames = counters["frames"]["total"]
    tree = build_tree(torch.compile(model), torch.zeros(2, 16))
    assert counters["frames"]["total"] == frames  # dynamo compiled nothing
    assert [n.name for n in tree.walk()][1:] == [n.name for n in plain.walk()][1:]
    assert not any("_orig_mod" in n.name for n in tree.walk())
    assert tree.meta["execution"] == "fake" and "fallback_reason" not in tree.meta
    assert tree.root.flops == plain.root.flops
    assert type(model[0]).__name__ == "OptimizedModule"  # the model is left as it was


def test_vision_sequence_length_is_the_patches_not_the_channels() -> None:
    class TinyViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.patch = nn.Conv2d(3, 16, 8, stride=8)
            self.mlp = nn.Linear(16, 16)

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            h = self.patch(pixel_values).flatten(2).transpose(1, 2)  # (B, 16 patches, 16)
            return self.mlp(h)  # type: ignore[no-any-return]

    tree = build_tree(TinyViT(), {"pixel_values": torch.zeros(2, 3, 32, 32)})
    assert (tree.batch_size, tree.seq_len) == (2, 16)


# -- mixture of experts -------------------------------------------------------------------------


def _tiny_mixtral(implementation: str, dtype: torch.dtype = torch.float32) -> nn.Module:
    transformers = pytest.importorskip("transformers")
    config = transformers.MixtralConfig(
        num_hidden_layers=1,
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=8,
        num_experts_per_tok=2,
        vocab_size=100,
    )
    config._attn_implementation = "eager"
    with torch.device("meta"):
        model = transformers.MixtralModel(config).eval().to(dtype)
    model.config._experts_implementation = implementation
    return model  # type: ignore[no-any-return]


def _experts(tree: EnergyTree) -> list[Node]:
    return [n for n in tree.nodes("ml") if ".experts:" in n.name]


@pytest.mark.parametrize("implementation", ["grouped_mm", "batched_mm", "eager"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_moe_experts_are_counted_as_routed_work_on_meta(
    implementation: str, dtype: torch.dtype
) -> None:
    model = _tiny_mixtral(implementation, dtype)
    b, s = 2, 8
    inputs = {
        "input_ids": torch.zeros(b, s, dtype=torch.long, device="meta"),
        "attention_mask": torch.ones(b, s, dtype=torch.long, device="meta"),
    }
    tree = build_tree(model, inputs, counting_mode="native")
    assert tree.meta["execution"] == "meta" and tree.unsupported_ops == []
    up, down = _experts(tree)
    slots = b * s * 2  # tokens x top_k
    assert up.kernel == down.kernel == "gemm"
    assert raw(up)[0] == 2 * slots * 32 * 128  # gate + up: 2 x intermediate outputs
    assert raw(down)[0] == 2 * slots * 64 * 32
    expected_hit = 8 * (1 - (1 - 2 / 8) ** (b * s))  # uniform routing expectation
    size = 2 if dtype == torch.bfloat16 else 4
    assert raw(down)[1] == pytest.approx(size * (slots * (64 + 32) + expected_hit * 64 * 32))
    name = {"grouped_mm": "GroupedMM", "batched_mm": "BatchedMM", "eager": "Linear"}
    assert up.type == name[implementation]
    assert up.count == (round(expected_hit) if implementation == "eager" else 1)
    assert up.dtype == str(dtype).removeprefix("torch.")
    # the router is traced as it runs: its linear and softmax are ML leaves
    router = [n.name for n in tree.nodes("ml") if ".mlp.gate:" in n.name]
    assert router == ["layers.0.mlp.gate:Linear", "layers.0.mlp.gate:Softmax"]


def test_moe_routing_histogram_sets_the_experts_read() -> None:
    model = _tiny_mixtral("eager")
    inputs = {
        "input_ids": torch.zeros(1, 16, dtype=torch.long, device="meta"),
        "attention_mask": torch.ones(1, 16, dtype=torch.long, device="meta"),
    }
    uniform = _experts(build_tree(model, inputs, counting_mode="native"))
    skewed = _experts(
        build_tree(model, inputs, counting_mode="native", routing=[5, 0, 0, 0, 0, 0, 0, 5])
    )
    # the same routed FLOPs; only the two experts with tokens read their weights
    assert raw(skewed[1])[0] == raw(uniform[1])[0]
    assert skewed[1].count == 2
    assert raw(skewed[1])[1] == pytest.approx(4 * (32 * (64 + 32) + 2 * 64 * 32))
    per_layer = _experts(
        build_tree(model, inputs, counting_mode="native", routing={"layers.0.*": [1] + [0] * 7})
    )
    assert per_layer[1].count == 1
    with pytest.raises(ModelError, match="has 3 entries; the layer has 8 experts"):
        build_tree(model, inputs, routing=[1, 2, 3])
    with pytest.raises(ModelError, match="finite number >= 0"):
        build_tree(model, inputs, routing=[-1.0] * 8)


def test_moe_decode_step_reads_top_k_experts() -> None:
    model = _tiny_mixtral("grouped_mm")
    inputs = {
        "input_ids": torch.zeros(1, 1, dtype=torch.long, device="meta"),
        "attention_mask": torch.ones(1, 1, dtype=torch.long, device="meta"),
    }
    _, down = _experts(build_tree(model, inputs, counting_mode="native"))
    assert raw(down)[1] == pytest.approx(4 * (2 * (64 + 32) + 2 * 64 * 32))  # 2 experts' weights
