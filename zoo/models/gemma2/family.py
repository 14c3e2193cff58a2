"""The Gemma 2 family: pre- and post-norm decoder, soft-capped attention and logits, sliding-window layers."""

from ...family import CatalogEntry, Family
from .config import Gemma2Config
from .model import Gemma2ForCausalLM, Gemma2Model

GEMMA2 = Family(
    name="gemma2",
    kind="decoder",
    config_class=Gemma2Config,
    base_class=Gemma2Model,
    lm_heads={"causal-lm": Gemma2ForCausalLM},
    head_references=("sequence-classification", "sequence-labeling"),
    token_layer="score",
    architecture="pre- and post-norm Transformer decoder (Gemma 2): (1 + w) RMSNorms around each sub-layer, "
    "embeddings scaled by sqrt(hidden_size), RoPE, grouped-query attention scaled by query_pre_attn_scalar "
    "with tanh soft-capped scores, sliding-window and global layers alternating, GeGLU MLP, soft-capped "
    "final logits, tied embeddings",
    parity="the Gemma 2 weights do not ship on PyPI, so the evidence is parity on random weights (norms "
    "included): logits and every hidden state within 1e-4 of transformers' `Gemma2ForCausalLM`, in both "
    "directions, fp32, left- and right-padded batches of 12 tokens over a sliding window of 4, both soft-caps "
    "on (max |diff| 0.0 in eager and in zoo sdpa, which runs the eager maths under a soft-cap) and off (zoo "
    "sdpa vs transformers' eager, its only Gemma 2 kernel: 3.4e-6), loss within 1e-5; greedy and beam search "
    "identical cached, uncached, left-padded and to transformers, generating past the window; "
    "`Gemma2ForSequenceClassification` and `Gemma2ForTokenClassification` logits within 1e-4 "
    "(`tests/test_gemma2.py`). Not yet checked against the real Gemma 2 weights",
    tiny_config=dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        intermediate_size=128,
        max_position_embeddings=256,
        query_pre_attn_scalar=16,
        sliding_window=4,
        # sdpa cannot soft-cap (the zoo runs the eager maths there): the tiny model compares both kernels
        attn_logit_softcapping=None,
        final_logit_softcapping=None,
        tie_word_embeddings=True,
    ),
    catalog=(
        CatalogEntry(
            "gemma-2-2b", "google/gemma-2-2b", "gemma", ("en",), "2.6B",
            "Gemma 2 2B base: 26 layers alternating sliding-window (4096) and global attention, GQA 8/4 heads, "
            "head_dim 256, attention and final-logit soft-capping, tied embeddings.",
        ),
    ),
)  # fmt: skip
