"""Generation traces: prefill and decode steps on meta tensors with transformers' own cache.

A tiny Llama with grouped-query attention (4 query heads, 2 KV heads of 16), fp32, on the meta
device; expected bytes and FLOPs are computed by hand from its sizes.
"""

from __future__ import annotations

import pytest
import torch

from predictor.errors import ModelError
from predictor.learn.generation import (
    DecodeSample,
    ServingOverhead,
    integrate_decode,
    mean_decode_tree,
    predict_generation,
)
from predictor.trace.generation import (
    Workload,
    cache_features,
    decode_points,
    trace_decode_step,
    trace_generation,
    trace_prefill,
    visible_pairs,
)
from predictor.trace.tree import EnergyTree

transformers = pytest.importorskip("transformers")

HIDDEN, INTER, LAYERS, HEADS, KV_HEADS, VOCAB = 64, 128, 2, 4, 2, 128
HEAD_DIM = HIDDEN // HEADS  # 16
FP32 = 4
#: Linear weights (elements): q, k, v, o, gate, up, down per layer, and the LM head.
LAYER_WEIGHTS = (
    HIDDEN * HIDDEN  # q
    + 2 * KV_HEADS * HEAD_DIM * HIDDEN  # k, v
    + HIDDEN * HIDDEN  # o
    + 3 * INTER * HIDDEN  # gate, up, down
)
GEMM_WEIGHTS = LAYERS * LAYER_WEIGHTS + VOCAB * HIDDEN
#: Inputs + outputs per row of every Linear (elements): q, k, v, o, gate, up, down; LM head.
LAYER_ROW_IO = (2 * HIDDEN) + 2 * (HIDDEN + KV_HEADS * HEAD_DIM) + 2 * HIDDEN + 3 * (HIDDEN + INTER)
HEAD_ROW_IO = HIDDEN + VOCAB


def tiny_llama(**overrides: object) -> torch.nn.Module:
    settings: dict[str, object] = {
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "intermediate_size": INTER,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "max_position_embeddings": 4096,
    }
    config = transformers.LlamaConfig(**(settings | overrides))
    with torch.device("meta"):
        return transformers.LlamaForCausalLM(config).eval()


def tiny_mistral(window: int) -> torch.nn.Module:
    config = transformers.MistralConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=INTER,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=4096,
        sliding_window=window,
    )
    with torch.device("meta"):
        return transformers.MistralForCausalLM(config).eval()


def _bytes(tree: EnergyTree, kernel: str) -> float:
    return sum(n.mem_bytes for n in tree.nodes("ml") if n.kernel == kernel) * 2**20


def _flops(tree: EnergyTree, kernel: str) -> float:
    return sum(n.flops for n in tree.nodes("ml") if n.kernel == kernel) * 1e6


def _own_op_bytes(tree: EnergyTree, module_type: str) -> float:
    """Bytes charged to modules of ``module_type`` beyond their ML children (their own ops)."""
    total = 0.0
    for n in tree.walk():
        if n.type == module_type:
            total += n.mem_bytes - sum(c.mem_bytes for c in n.children)
    return total * 2**20


@pytest.mark.parametrize("batch", [1, 2, 8])
def test_decode_step_reads_weights_once_and_the_kv_cache(batch: int) -> None:
    cache_len = 20
    tree = trace_decode_step(tiny_llama(), Workload(batch, 16, 8), cache_len, name="tiny")
    # GEMMs: each weight once for the whole batch, each row's input and output once
    assert _bytes(tree, "gemm") == FP32 * (
        GEMM_WEIGHTS + batch * (LAYERS * LAYER_ROW_IO + HEAD_ROW_IO)
    )
    assert _flops(tree, "gemm") == 2 * batch * GEMM_WEIGHTS
    # attention: the queries, every cached key and value once per KV head (GQA: 2 of 4), the
    # step's own key included, the output; no score matrix in memory
    keys = cache_len + 1
    kv_read = FP32 * LAYERS * 2 * batch * KV_HEADS * keys * HEAD_DIM
    q_and_out = FP32 * LAYERS * 2 * batch * HEADS * HEAD_DIM
    assert _bytes(tree, "bmm") == kv_read + q_and_out
    assert _bytes(tree, "softmax") == 0
    assert _flops(tree, "bmm") == LAYERS * 2 * 2 * batch * HEADS * keys * HEAD_DIM
    meta = tree.meta["generation"]
    assert meta["phase"] == "decode" and meta["cache_len"] == cache_len
    assert meta["kv_heads"] == KV_HEADS and meta["head_dim"] == HEAD_DIM
    assert meta["kv_cache_read_mib"] * 2**20 == kv_read
    assert tree.batch_size == batch and tree.seq_len == 1
    assert not tree.unsupported_ops


def test_decode_step_writes_only_the_new_keys_and_values() -> None:
    """The cache update is a write of the step's own keys and values (a paged cache), not
    DynamicCache's concatenation (a copy of the whole cache per step)."""
    batch = 2
    short = trace_decode_step(tiny_llama(), Workload(batch, 16, 8), 20, name="tiny")
    long = trace_decode_step(tiny_llama(), Workload(batch, 16, 8), 2000, name="tiny")
    own_short = _own_op_bytes(short, "LlamaAttention")
    own_long = _own_op_bytes(long, "LlamaAttention")
    assert own_short == own_long  # rotary embedding + the write: independent of the cache
    write = FP32 * LAYERS * 2 * batch * KV_HEADS * HEAD_DIM
    assert own_short >= write


def test_weights_are_read_once_whatever_the_batch() -> None:
    one = trace_decode_step(tiny_llama(), Workload(1, 16, 8), 32, name="tiny")
    many = trace_decode_step(tiny_llama(), Workload(64, 16, 8), 32, name="tiny")
    per_row = FP32 * (LAYERS * LAYER_ROW_IO + HEAD_ROW_IO)
    assert _bytes(many, "gemm") - _bytes(one, "gemm") == 63 * per_row


def test_prefill_flops_are_the_forward_at_prompt_len() -> None:
    from predictor.trace.generation import _fused_attention
    from predictor.trace.tracer import build_tree

    batch, prompt = 2, 24
    model = tiny_llama()
    prefill = trace_prefill(model, Workload(batch, prompt, 8), name="tiny")
    ids = torch.zeros((batch, prompt), dtype=torch.long, device="meta")
    with _fused_attention(model):
        from predictor.trace.generation import generation_ops

        forward = build_tree(
            model,
            {
                "input_ids": ids,
                "position_ids": torch.arange(prompt, device="meta").unsqueeze(0),
                "use_cache": False,
                "logits_to_keep": 1,
            },
            counting_mode="native",
            ops=generation_ops(),
        )
    assert prefill.root.flops == pytest.approx(forward.root.flops, rel=1e-12)
    # by hand: every Linear on every prompt token, the LM head on the last one only
    body = LAYERS * LAYER_WEIGHTS
    assert _flops(prefill, "gemm") == 2 * batch * (prompt * body + VOCAB * HIDDEN)
    # causal attention: the visible pairs only (p(p+1)/2 per head), q.k and p.v
    pairs = prompt * (prompt + 1) // 2
    assert _flops(prefill, "bmm") == LAYERS * 2 * 2 * batch * HEADS * pairs * HEAD_DIM
    # the cache is written, never read, in the prefill: keys and values of every prompt token
    assert prefill.meta["generation"]["phase"] == "prefill"
    assert prefill.seq_len == prompt


def test_sliding_window_caps_kv_reads() -> None:
    window = 8
    model = tiny_mistral(window)
    feats = cache_features(model)
    assert feats["sliding_windows"] == [window] * LAYERS
    w = Workload(1, 4, 200)
    reads = {L: _bytes(trace_decode_step(model, w, L, name="m"), "bmm") for L in (3, 7, 20, 150)}
    assert reads[3] < reads[7]  # below the window the read grows with the cache
    assert reads[7] == reads[20] == reads[150]  # then it holds window keys per layer
    assert reads[150] == FP32 * LAYERS * (2 * KV_HEADS * window * HEAD_DIM + 2 * HEADS * HEAD_DIM)
    full = tiny_llama()
    assert _bytes(trace_decode_step(full, w, 150, name="m"), "bmm") > reads[150]


def test_sliding_window_prefill_counts_windowed_pairs() -> None:
    assert visible_pairs(5, 5) == 15
    assert visible_pairs(5, 5, window=2) == 1 + 2 * 4
    assert visible_pairs(1, 21) == 21
    assert visible_pairs(1, 21, window=8) == 8
    assert visible_pairs(3, 10, window=9) == 8 + 9 + 9
    brute = sum(min(7 + i + 1, 4) for i in range(6))
    assert visible_pairs(6, 13, window=4) == brute


@pytest.mark.parametrize(
    ("prompt", "new", "windows", "points"),
    [
        (16, 8, None, 5),
        (16, 2, None, 5),
        (128, 512, None, 5),
        (4, 300, [8, None], 4),
        (10, 2, None, 5),
    ],
)
def test_decode_points_sum_affine_energies_exactly(
    prompt: int, new: int, windows: list[int | None] | None, points: int
) -> None:
    w = Workload(1, prompt, new)
    pts = decode_points(w, windows, points)
    lengths = list(range(prompt, prompt + new - 1))
    assert sum(p.weight for p in pts) == pytest.approx(len(lengths))
    if not lengths:
        assert pts == []
        return
    assert pts[0].cache_len == lengths[0] and pts[-1].cache_len == lengths[-1]
    for a, b in ((3.0, 0.25), (0.0, 1.0)):
        exact = sum(a + b * L for L in lengths)
        assert sum(p.weight * (a + b * p.cache_len) for p in pts) == pytest.approx(exact)
    # a windowed cache stops growing at window - 1: a function with that kink is exact too
    if windows:
        kink = [min(L, 7) for L in lengths]
        assert sum(p.weight * min(p.cache_len, 7) for p in pts) == pytest.approx(sum(kink))


def test_decode_sum_error_bound_holds_for_monotone_energies() -> None:
    lengths = list(range(100, 400))
    w = Workload(1, 100, 301)
    pts = decode_points(w, None, 5)
    # convex and monotone: weights read every step, plus a cache read growing faster than linearly
    f = lambda L: 5.0 + (L / 400.0) ** 3  # noqa: E731
    samples = [DecodeSample(p.cache_len, p.weight, f(p.cache_len)) for p in pts]
    total, bound, monotone = integrate_decode(samples)
    exact = sum(f(L) for L in lengths)
    assert monotone
    assert abs(total - exact) <= bound
    assert bound < 0.05 * exact


def test_generation_end_to_end_with_a_profile() -> None:
    from predictor.learn.profile import load_profile

    profile = load_profile()
    model = tiny_llama()
    w = Workload(4, 16, 12)
    trees = trace_generation(model, w, name="tiny", counting_mode=profile.counting_mode)
    assert len(trees.decode) == 5
    pred = predict_generation(trees, profile)
    e = pred.energy
    assert e.prefill_j > 0 and e.decode_j > 0
    assert e.j_per_output_token == pytest.approx((e.prefill_j + e.decode_j) / (4 * 12))
    assert e.j_per_request == pytest.approx((e.prefill_j + e.decode_j) / 4)
    assert e.decode_step_j == pytest.approx(e.decode_j / 11)
    # the mean decode step's tree: its root is the mean step's kernels (no overhead here)
    assert pred.decode_step.root.energy_j == pytest.approx(e.decode_step_j)
    assert pred.decode_step.meta["generation"]["summary"]["j_per_output_token"] == pytest.approx(
        e.j_per_output_token
    )
    data = e.to_dict()
    for key in ("prefill_j", "decode_j", "j_per_output_token", "j_per_request"):
        assert isinstance(data[key], float) and data[key] > 0


def test_serving_overhead_adds_idle_power_times_host_time() -> None:
    from predictor.learn.profile import load_profile

    profile = load_profile()
    trees = trace_generation(tiny_llama(), Workload(2, 8, 5), name="tiny")
    plain = predict_generation(trees, profile).energy
    trees = trace_generation(tiny_llama(), Workload(2, 8, 5), name="tiny")
    over = ServingOverhead(idle_power_w=100.0, step_s=1e-3, sequence_s=1e-4, vocab_s=1e-7)
    busy = predict_generation(trees, profile, over).energy
    step_over = 100.0 * (1e-3 + 2 * (1e-4 + VOCAB * 1e-7))
    assert busy.decode_j - plain.decode_j == pytest.approx(4 * step_over)
    assert busy.overhead_j == pytest.approx(4 * step_over)


def test_mean_decode_tree_refuses_trees_of_different_structure() -> None:
    a = trace_decode_step(tiny_llama(), Workload(1, 4, 4), 5, name="t")
    b = trace_decode_step(tiny_mistral(4), Workload(1, 4, 4), 5, name="t")
    with pytest.raises(ModelError, match="differ"):
        mean_decode_tree([a, b], [1.0, 1.0])


def test_workload_is_validated() -> None:
    with pytest.raises(ModelError, match="new_tokens"):
        Workload(1, 8, 0)
    with pytest.raises(ModelError, match="the prefill alone"):
        Workload(1, 8, 1)  # no decode step
    with pytest.raises(ModelError, match=r"prefill_batch 3 does not divide the batch \(8\)"):
        Workload(8, 8, 4, prefill_batch=3)  # a smaller last pass would be charged as a fraction
    with pytest.raises(ModelError, match="dtype"):
        Workload(1, 8, 4, dtype="int8")
    assert Workload(2, 8, 4, "bf16").describe() == (
        "batch_size=2, prompt_len=8, new_tokens=4, dtype=bf16"
    )


def test_dtype_halves_the_bytes() -> None:
    from predictor.trace.generation import model_in_dtype

    fp32 = trace_decode_step(tiny_llama(), Workload(1, 8, 4), 30, name="t")
    bf16 = trace_decode_step(model_in_dtype(tiny_llama(), "bf16"), Workload(1, 8, 4), 30, name="t")
    assert _bytes(bf16, "gemm") == _bytes(fp32, "gemm") / 2
    assert _bytes(bf16, "bmm") == _bytes(fp32, "bmm") / 2
    assert bf16.dtypes()[0] == "bfloat16"


def test_positions_beyond_the_model_are_refused() -> None:
    from predictor.errors import ModelError

    model = tiny_llama(max_position_embeddings=32)
    with pytest.raises(ModelError, match=r"reach position 39, .* <= 32"):
        trace_generation(model, Workload(1, 20, 20), name="t")


def test_a_decoder_with_cross_attention_still_generates() -> None:
    """Only a model whose every attention is bidirectional is refused: GPT-2 with cross
    attention (causal self-attention, non-causal cross-attention of the same class) decodes."""
    config = transformers.GPT2Config(
        n_layer=1, n_head=2, n_embd=16, vocab_size=VOCAB, n_positions=64, add_cross_attention=True
    )
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(config).eval()
    trees = trace_generation(model, Workload(2, 8, 3), name="x-attn")
    assert trees.decode


def test_an_encoder_is_refused() -> None:
    config = transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    with torch.device("meta"):
        model = transformers.BertLMHeadModel(config).eval()
    with pytest.raises(ModelError, match=r"bidirectional \(BertSelfAttention: is_causal False\)"):
        trace_generation(model, Workload(1, 8, 3), name="bert")


def test_a_model_in_a_dtype_outside_the_names_still_generates() -> None:
    from predictor.gate.engine import predict_generation_model
    from predictor.learn.profile import load_profile

    model = tiny_llama().to(torch.float64)
    prediction = predict_generation_model(model, Workload(2, 8, 3), load_profile(), name="f64")
    assert prediction.energy.workload.dtype is None  # not a dtype name the tool knows
    assert prediction.energy.j_per_output_token > 0
    assert next(model.parameters()).dtype == torch.float64  # a model object keeps its dtype
