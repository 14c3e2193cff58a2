"""The Qwen3 family: the Llama family's decoder with per-head RMSNorm on queries and keys."""

from ...family import CatalogEntry, Family
from .config import Qwen3Config
from .model import Qwen3ForCausalLM, Qwen3Model

QWEN3 = Family(
    name="qwen3",
    kind="decoder",
    config_class=Qwen3Config,
    base_class=Qwen3Model,
    lm_heads={"causal-lm": Qwen3ForCausalLM},
    head_references=("sequence-classification", "sequence-labeling"),
    token_layer="score",
    architecture="pre-RMSNorm Transformer decoder (Qwen3): RoPE, grouped-query attention with per-head "
    "RMSNorm on queries and keys, explicit head_dim, SwiGLU MLP",
    parity="logits within 1e-4 of transformers' `Qwen3ForCausalLM` on the same weights, in both directions "
    "(fp32, left- and right-padded batches, sdpa and eager; max |diff| measured 0.0 on CPU), with head_dim "
    "unequal to hidden_size / heads; greedy generation identical cached, uncached and in left-padded batches; "
    "`Qwen3ForSequenceClassification` and `Qwen3ForTokenClassification` logits within 1e-4 "
    "(`tests/test_qwen3.py`). Not yet checked against the real Qwen3-0.6B weights",
    tiny_config=dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=24,
        intermediate_size=128,
        max_position_embeddings=256,
        tie_word_embeddings=True,
    ),
    catalog=(
        CatalogEntry(
            "qwen3-0.6b", "Qwen/Qwen3-0.6B", "apache-2.0", ("en", "zh"), "0.6B",
            "Qwen3 0.6B post-trained (thinking and non-thinking modes): GQA 16/8 heads with q/k norms, "
            "head_dim 128, tied embeddings.",
        ),
    ),
)  # fmt: skip
