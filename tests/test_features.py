"""Op formulas on tiny inputs with hand-computed FLOPs and bytes (fvcore-style)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from predictor.trace.features import default_ops
from predictor.trace.ops import OpCall, OpCount, OpRegistry, op_name
from predictor.trace.tracer import build_tree

MIB = 2**20


class Wrap(nn.Module):
    """Calls ``fn`` on its inputs, so the op's cost lands on the root."""

    def __init__(self, fn: object) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.fn(*args)  # type: ignore[operator, no-any-return]


def cost(fn: object, *args: torch.Tensor, mode: str = "irene") -> tuple[float, float]:
    """(FLOPs, bytes) of one call, traced."""
    tree = build_tree(Wrap(fn), args, counting_mode=mode)
    assert not tree.unsupported_ops, tree.unsupported_ops
    return tree.root.flops * 1e6, tree.root.mem_bytes * MIB


@pytest.mark.parametrize(
    ("func", "expected"),
    [
        (torch.Tensor.__radd__, "add"),
        (torch.Tensor.add_, "add"),
        (torch.add, "add"),
        (torch.Tensor.__rsub__, "rsub"),
        (torch.Tensor.__truediv__, "div"),
        (torch.Tensor.__matmul__, "matmul"),
        (F.linear, "linear"),
        (torch.Tensor.shape.__get__, "attr:shape"),  # type: ignore[attr-defined]
    ],
)
def test_op_names_are_normalised(func: object, expected: str) -> None:
    assert op_name(func) == expected


def test_irene_linear_on_3d_input_is_matmul_plus_bias_add() -> None:
    lin = nn.Linear(4, 3)
    x = torch.zeros(2, 5, 4)
    flops, nbytes = cost(lin, x)
    # 2*B*S*in*out + B*S*out; 4*B*(S*in + in*out + S*out) + 2*4*B*S*out
    assert flops == 2 * 2 * 5 * 4 * 3 + 2 * 5 * 3
    assert nbytes == 4 * 2 * (5 * 4 + 4 * 3 + 5 * 3) + 8 * 2 * 5 * 3


def test_irene_linear_on_2d_input_is_addmm_without_bias() -> None:
    flops, nbytes = cost(nn.Linear(4, 3), torch.zeros(5, 4))
    assert flops == 2 * 5 * 4 * 3
    assert nbytes == 4 * (5 * 4 + 4 * 3 + 5 * 3)


def test_native_linear_reads_weights_once_and_is_dtype_aware() -> None:
    flops, nbytes = cost(nn.Linear(4, 3), torch.zeros(2, 5, 4), mode="native")
    assert flops == 2 * 10 * 4 * 3 + 10 * 3
    assert nbytes == 4 * (40 + 12 + 3 + 30)
    half = nn.Linear(4, 3).to(torch.float16)
    _, nbytes16 = cost(half, torch.zeros(2, 5, 4, dtype=torch.float16), mode="native")
    assert nbytes16 == nbytes / 2


def test_matmul_softmax_and_elementwise_follow_irene_rules() -> None:
    a, b = torch.zeros(2, 3, 4), torch.zeros(2, 4, 5)
    assert cost(torch.matmul, a, b) == (2 * 2 * 3 * 4 * 5, 4 * 2 * (12 + 20 + 15))
    x = torch.zeros(2, 3)
    assert cost(lambda t: F.softmax(t, dim=-1), x) == (5 * 6, 3 * 4 * 6)
    assert cost(torch.add, x, x) == (6, 2 * 4 * 6)
    assert cost(torch.mul, x, x) == (6, 3 * 4 * 6)
    assert cost(torch.tanh, x) == (4 * 6, 1 * 4 * 6)
    assert cost(lambda t: F.layer_norm(t, (3,)), x) == (8 * 6, 4 * 4 * 6)
    # broadcasting: per output element
    assert cost(torch.add, torch.zeros(2, 1), torch.zeros(1, 3)) == (6, 2 * 4 * 6)
    # IrEne had no counter for masks and dropout
    assert cost(lambda t: torch.where(t > 0, t, t), x)[0] == 0  # comparison and where: 0


def test_embedding_charges_int64_indices_and_fp32_output() -> None:
    emb = nn.Embedding(10, 4)
    ids = torch.zeros(2, 3, dtype=torch.long)
    assert cost(emb, ids) == (0, 8 * 6 + 4 * 6 * 4)


def test_sdpa_counts_as_matmul_softmax_matmul_nodes() -> None:
    class Attn(nn.Module):
        def forward(self, q: torch.Tensor) -> torch.Tensor:
            return F.scaled_dot_product_attention(q, q, q)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = Attn()

        def forward(self, q: torch.Tensor) -> torch.Tensor:
            return self.attn(q)  # type: ignore[no-any-return]

    q = torch.zeros(1, 2, 4, 8)
    tree = build_tree(Net(), q)
    ml = [(n.name, n.flops * 1e6) for n in tree.nodes("ml")]
    scores = 1 * 2 * 4 * 4
    mm = 2 * 2 * 4 * 8 * 4
    assert ml == [("attn:MatMul", mm), ("attn:Softmax", 5 * scores), ("attn:MatMul", mm)]
    # plus the scale (mul), counted in the module only
    assert tree.root.flops * 1e6 == pytest.approx(2 * mm + 5 * scores + scores)


def _logcumsumexp(t: torch.Tensor) -> torch.Tensor:
    return torch.logcumsumexp(t, 0)  # an op with no formula


def _one_flop_per_output(call: OpCall) -> list[OpCount]:
    return [OpCount(float(call.out.numel()), 0.0)]


def test_op_without_formula_is_listed_not_counted() -> None:
    assert default_ops().get("logcumsumexp", "irene") is None
    tree = build_tree(Wrap(_logcumsumexp), torch.zeros(3))
    assert [(u.op, u.count) for u in tree.unsupported_ops] == [("logcumsumexp", 1)]
    assert tree.root.flops == 0


def test_a_new_op_is_one_entry_for_one_call() -> None:
    tree = build_tree(
        Wrap(_logcumsumexp), torch.zeros(3), ops={"logcumsumexp": _one_flop_per_output}
    )
    assert tree.unsupported_ops == []
    assert tree.root.flops == pytest.approx(3e-6)
    # nothing global changed: the next trace has no formula for it again
    assert default_ops().get("logcumsumexp", "irene") is None
    assert [u.op for u in build_tree(Wrap(_logcumsumexp), torch.zeros(3)).unsupported_ops] == [
        "logcumsumexp"
    ]


def test_a_registry_object_overrides_one_mode_and_is_copied_into_the_trace() -> None:
    ops = default_ops().set_op_handle("logcumsumexp", _one_flop_per_output, "native")
    native = build_tree(Wrap(_logcumsumexp), torch.zeros(3), counting_mode="native", ops=ops)
    assert native.unsupported_ops == [] and native.root.flops == pytest.approx(3e-6)
    irene = build_tree(Wrap(_logcumsumexp), torch.zeros(3), ops=ops)
    assert [u.op for u in irene.unsupported_ops] == ["logcumsumexp"]
    # the trace works on a copy: changing the registry afterwards changes no tree already built
    ops.set_op_handle("logcumsumexp", lambda call: [OpCount(100.0, 0.0)], "native")
    assert native.root.flops == pytest.approx(3e-6)


def test_an_existing_formula_overridden_for_one_call() -> None:
    x = torch.zeros(2, 3)
    assert cost(torch.add, x, x) == (6, 2 * 4 * 6)
    tree = build_tree(Wrap(torch.add), (x, x), ops={"add": lambda call: [OpCount(100.0, 8.0)]})
    assert (tree.root.flops * 1e6, tree.root.mem_bytes * MIB) == (100, 8)
    assert cost(torch.add, x, x) == (6, 2 * 4 * 6)  # the default is back for the next call


def test_unknown_counting_mode_and_bad_ops_are_refused() -> None:
    with pytest.raises(ValueError, match="counting mode"):
        OpRegistry().set_op_handle("x", lambda call: [], mode="bogus")
    with pytest.raises(TypeError, match="ops= takes an OpRegistry"):
        build_tree(Wrap(torch.neg), torch.zeros(2), ops=[torch.neg])  # type: ignore[arg-type]
    assert OpCall("x", ()).arg(0, "input", "d") == "d"


def test_torch_multihead_attention_is_decomposed() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.attn(x, x, x, need_weights=False)[0]  # type: ignore[no-any-return]

    tree = build_tree(Net(), torch.zeros(2, 5, 16))  # (L=5, N=2, E=16) inside, 2 heads of 8
    assert tree.unsupported_ops == []
    attn = tree.root.children[0]
    ml = [(n.name, n.kernel, n.flops * 1e6) for n in attn.children]
    packed = 2 * 10 * 16 * 48 + 10 * 48  # self-attention: one q/k/v GEMM (IrEne's 3-D linear)
    projection = 2 * 10 * 16 * 16 + 10 * 16
    assert ml == [
        ("attn:Linear", "gemm", packed),
        ("attn:MatMul", "bmm", 2 * 4 * 5 * 8 * 5),
        ("attn:Softmax", "softmax", 5 * 4 * 5 * 5),
        ("attn:MatMul", "bmm", 2 * 4 * 5 * 5 * 8),
        ("attn:Linear", "gemm", projection),
    ]
    # the q scaling (10 x 16 elements) is the module's own op
    assert attn.flops * 1e6 == pytest.approx(packed + projection + 10 * 16 + 2 * 1600 + 500)
