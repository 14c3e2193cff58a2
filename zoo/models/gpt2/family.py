"""The GPT-2 family: a pre-LayerNorm decoder with learned positions."""

from ...family import CatalogEntry, Family
from .config import GPT2Config
from .model import GPT2ForCausalLM, GPT2Model

GPT2 = Family(
    name="gpt2",
    kind="decoder",
    config_class=GPT2Config,
    base_class=GPT2Model,
    lm_heads={"causal-lm": GPT2ForCausalLM},
    head_references=("sequence-classification", "sequence-labeling"),
    sequence_layer="score",
    token_layer="classifier",
    architecture="pre-LayerNorm Transformer decoder (GPT-2): learned positions, tanh-GELU MLP, tied LM head",
    parity="logits within 1e-5 of transformers' `GPT2LMHeadModel` on the same weights (about 1e-6: "
    "`nn.Linear` instead of `Conv1D`); greedy generation identical, cached, uncached and left-padded "
    "(`tests/test_parity.py`, `tests/test_generation.py`)",
    tiny_config=dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        max_position_embeddings=256,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        embedding_dropout=0.0,
    ),
    catalog=(
        CatalogEntry(
            "gpt2-base-ch", "uer/gpt2-chinese-cluecorpussmall", "other", ("zh",), "102M",
            "GPT-2 base trained on CLUECorpusSmall with a BERT character vocabulary (FlagAI's gpt2-base-ch).",
        ),
        CatalogEntry(
            "gpt2-base-en", "openai-community/gpt2", "mit", ("en",), "124M",
            "OpenAI GPT-2 small (FlagAI's gpt2-base-en).",
        ),
    ),
)  # fmt: skip
