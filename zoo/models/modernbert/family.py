"""The ModernBERT family: a pre-LayerNorm encoder with rotary positions, GeGLU and alternating global /
banded local attention."""

from ...family import CatalogEntry, Family
from .config import ModernBertConfig
from .model import ModernBertForMaskedLM, ModernBertModel

MODERNBERT = Family(
    name="modernbert",
    kind="encoder",
    config_class=ModernBertConfig,
    base_class=ModernBertModel,
    lm_heads={"masked-lm": ModernBertForMaskedLM},
    head_references=("sequence-classification", "sequence-labeling"),
    # the masked-LM head: vocabulary projection and transform (classifiers load the transform, as transformers)
    ignored_prefixes=("lm_head.", "head."),
    architecture="pre-LayerNorm Transformer encoder (ModernBERT): rotary positions with separate global and "
    "local bases, global attention every few layers and banded local attention between, GeGLU MLP, "
    "bias-free LayerNorms and projections",
    parity="logits and every hidden state within 1e-4 of transformers' `ModernBertModel` / "
    "`ModernBertForMaskedLM` / `ModernBertForSequenceClassification` / `ModernBertForTokenClassification` "
    "on the same random weights, loaded either way (fp32, left- and right-padded batches longer than the "
    "local window, sdpa and eager; measured max |diff| 1e-6 on CPU), the masked-LM loss equal "
    "(`tests/test_modernbert.py`). The pretrained weights do not ship on PyPI and the tests run offline, "
    "so parity on random weights is the evidence: not yet checked against the real ModernBERT-base weights",
    tiny_config=dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=96,
        max_position_embeddings=256,
        global_attn_every_n_layers=2,
        local_attention=4,  # two keys either side: shorter than the test rows, so the band matters
    ),
    catalog=(
        CatalogEntry(
            "modernbert-base", "answerdotai/ModernBERT-base", "apache-2.0", ("en",), "149M",
            "ModernBERT base: a 22-layer English encoder (text and code) pre-trained by masked language "
            "modelling on 2T tokens, 8192-token context, global attention every third layer and 128-token "
            "local attention between.",
        ),
    ),
)  # fmt: skip
