"""The Phi-3 family: Microsoft's Phi-3 checkpoints (fused qkv / gate-up projections, LongRoPE)."""

from ...family import CatalogEntry, Family
from .config import Phi3Config
from .model import Phi3ForCausalLM, Phi3Model

PHI3 = Family(
    name="phi3",
    kind="decoder",
    config_class=Phi3Config,
    base_class=Phi3Model,
    lm_heads={"causal-lm": Phi3ForCausalLM},
    head_references=("sequence-classification", "sequence-labeling"),
    token_layer="score",
    architecture="pre-RMSNorm Transformer decoder (Phi-3): RoPE with LongRoPE scaling, grouped-query attention, "
    "SwiGLU MLP, optional sliding-window attention",
    parity="logits within 1e-4 of transformers' `Phi3ForCausalLM` on the same weights both ways (measured: "
    "identical, max |diff| 0.0 in fp32), on left- and right-padded batches under sdpa and eager, LongRoPE on "
    "sequences shorter and longer than `original_max_position_embeddings`, sliding-window attention; greedy "
    "generation identical cached, uncached and left-padded, across the LongRoPE switch; "
    "`Phi3ForSequenceClassification` / `Phi3ForTokenClassification` logits identical (`tests/test_phi3.py`)",
    tiny_config=dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=256,
        original_max_position_embeddings=256,
        tie_word_embeddings=False,
    ),
    catalog=(
        CatalogEntry(
            "phi-3-mini", "microsoft/Phi-3-mini-4k-instruct", "mit", ("en",), "3.8B",
            "Phi-3 mini 4k instruct: 32 layers, 32 heads (no GQA), fused qkv / gate-up, 4k context.",
        ),
    ),
)  # fmt: skip
