"""Tiny Hugging Face models for examples and tests, built from config classes (no download).

Use them as zoo specs: ``irene tree examples.tiny_models:tiny_bert --batch-size 2 --seq-len 16``.
The encoders use eager attention so their trees have IrEne's MatMul / Softmax nodes. The tiny
Llamas are causal LMs for generation workloads (``irene predict
examples.tiny_models:tiny_llama --batch-size 8 --prompt-len 64 --new-tokens 32``).
"""

from __future__ import annotations

from transformers import (
    BertConfig,
    BertModel,
    GPT2Config,
    GPT2Model,
    LlamaConfig,
    LlamaForCausalLM,
)

__all__ = ["tiny_bert", "tiny_gpt2", "tiny_llama", "tiny_llama_4_layers"]


def tiny_bert() -> BertModel:
    """A 2-layer BERT: hidden 64, 2 heads, intermediate 128, vocab 1000, 128 positions."""
    config = BertConfig(
        vocab_size=1000,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=128,
        attn_implementation="eager",
    )
    return BertModel(config).eval()


def tiny_gpt2() -> GPT2Model:
    """A 2-layer GPT-2: n_embd 64, 2 heads, inner 128, vocab 1000, 128 positions."""
    config = GPT2Config(
        vocab_size=1000,
        n_embd=64,
        n_layer=2,
        n_head=2,
        n_inner=128,
        n_positions=128,
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation="eager",
    )
    return GPT2Model(config).eval()


def tiny_llama(layers: int = 2) -> LlamaForCausalLM:
    """A 2-layer Llama causal LM with grouped-query attention: hidden 256, 8 query heads and 2
    KV heads of 32, a gated MLP of 512, vocab 4096, 2048 positions, bf16."""
    config = LlamaConfig(
        vocab_size=4096,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=layers,
        num_attention_heads=8,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        dtype="bfloat16",
    )
    return LlamaForCausalLM(config).to(config.dtype).eval()


def tiny_llama_4_layers() -> LlamaForCausalLM:
    """:func:`tiny_llama` grown to 4 layers."""
    return tiny_llama(layers=4)
