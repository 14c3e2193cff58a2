"""The Llama family: Llama, Mistral and Qwen2 checkpoints, one pre-RMSNorm decoder that differs by data."""

from ...family import CatalogEntry, Family
from .config import LlamaConfig
from .model import LlamaForCausalLM, LlamaModel

LLAMA = Family(
    name="llama",
    kind="decoder",
    config_class=LlamaConfig,
    base_class=LlamaModel,
    lm_heads={"causal-lm": LlamaForCausalLM},
    head_references=("sequence-classification", "sequence-labeling"),
    token_layer="score",
    architecture="pre-RMSNorm Transformer decoder (Llama family): RoPE, grouped-query attention, SwiGLU MLP",
    parity="logits within 1e-4 of transformers' `LlamaForCausalLM`, `MistralForCausalLM` and "
    "`Qwen2ForCausalLM` on the same weights, greedy generation identical including left-padded batches "
    "(`tests/test_llama.py`); the real SmolLM2-135M-Instruct weights give logits within 1e-3 of "
    "transformers and the same next tokens (`tests/test_real_weights.py`)",
    tiny_config=dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=256,
        tie_word_embeddings=False,
    ),
    catalog=(
        CatalogEntry(
            "smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0", ("en",), "135M",
            "SmolLM2 135M instruction-tuned: Llama architecture, GQA 9/3 heads, tied embeddings.",
        ),
        CatalogEntry(
            "qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B", "apache-2.0", ("en", "zh"), "494M",
            "Qwen2.5 0.5B base: Qwen2 architecture (q/k/v bias, GQA 14/2), loaded by the Llama family.",
        ),
        CatalogEntry(
            "tinyllama-1.1b", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "apache-2.0", ("en",), "1.1B",
            "TinyLlama 1.1B chat: Llama 2 architecture and tokenizer, GQA 32/4.",
        ),
    ),
)  # fmt: skip
