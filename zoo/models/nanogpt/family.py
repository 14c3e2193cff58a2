"""nanoGPT's GPT: GPT-2's architecture under nanoGPT's config names; it exports as GPT-2 and reads no
transformers model type of its own (GPT-2's family does)."""

from ...family import Family
from .config import GPTConfig
from .model import GPT, GPTModel

NANOGPT = Family(
    name="gpt",
    kind="decoder",
    config_class=GPTConfig,
    base_class=GPTModel,
    lm_heads={"causal-lm": GPT},
    transformers_model_types=(),
    token_layer="classifier",
    architecture="nanoGPT-style decoder: GPT-2's architecture built from the shared zoo blocks",
    parity="a nanoGPT `ckpt.pt` of transformers' `GPT2LMHeadModel` weights gives logits within the GPT-2 "
    "tolerance of that model on padded batches, and the weights export back to nanoGPT's names unchanged "
    "(`tests/test_nanogpt.py`)",
    tiny_config=dict(
        hidden_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=512,
        max_position_embeddings=128,
        dropout=0.0,
    ),
)
