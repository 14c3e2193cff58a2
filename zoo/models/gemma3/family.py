"""The Gemma 3 family (text): Gemma 2's decoder with q/k norms, 5:1 sliding / global layers, two rotaries."""

from ...family import CatalogEntry, Family
from .config import Gemma3Config
from .model import Gemma3ForCausalLM, Gemma3Model

GEMMA3 = Family(
    name="gemma3",
    kind="decoder",
    config_class=Gemma3Config,
    base_class=Gemma3Model,
    lm_heads={"causal-lm": Gemma3ForCausalLM},
    # transformers has Gemma3TextForSequenceClassification, no token classifier for gemma3_text
    head_references=("sequence-classification",),
    token_layer="score",
    architecture="pre- and post-norm Transformer decoder (Gemma 3, text): (1 + w) RMSNorms around each "
    "sub-layer and on each query / key head, embeddings scaled by sqrt(hidden_size), grouped-query attention "
    "scaled by query_pre_attn_scalar, five sliding-window layers per global one with a local and a global "
    "RoPE base, GeGLU MLP, tied embeddings",
    parity="the Gemma 3 weights do not ship on PyPI, so the evidence is parity on random weights (norms "
    "included): logits and every hidden state within 1e-4 of transformers' `Gemma3ForCausalLM`, in both "
    "directions (max |diff| 0.0 in fp32), sdpa and eager, left- and right-padded batches of 12 tokens over a "
    "sliding window of 4, default and linear-scaled global RoPE with its own local base, final-logit "
    "soft-cap on and off, loss within 1e-5; greedy and beam search identical cached, uncached, left-padded and "
    "to transformers, generating past the window; `Gemma3TextForSequenceClassification` logits within 1e-4 "
    "both ways (`tests/test_gemma3.py`). Not yet checked against the real Gemma 3 weights",
    tiny_config=dict(
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        intermediate_size=128,
        max_position_embeddings=256,
        query_pre_attn_scalar=16,
        sliding_window=4,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        tie_word_embeddings=True,
    ),
    catalog=(
        CatalogEntry(
            "gemma-3-270m", "google/gemma-3-270m", "gemma", ("en",), "270M",
            "Gemma 3 270M base (text only): 18 layers, five sliding-window (512) layers per global one, GQA 4/1 "
            "heads with q/k norms, head_dim 256, 262k vocabulary, tied embeddings.",
        ),
    ),
)  # fmt: skip
