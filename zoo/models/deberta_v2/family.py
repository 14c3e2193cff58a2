"""The DeBERTa-v2 family (DeBERTa-v3 checkpoints use it): BERT's post-LN encoder with disentangled attention."""

from ...family import CatalogEntry, Family
from .config import DebertaV2Config
from .model import DebertaV2ForMaskedLM, DebertaV2Model

DEBERTA_V2 = Family(
    name="deberta-v2",
    kind="encoder",
    config_class=DebertaV2Config,
    base_class=DebertaV2Model,
    lm_heads={"masked-lm": DebertaV2ForMaskedLM},
    transformers_model_types=("deberta-v2",),
    token_types=False,  # DeBERTa-v3 has no token types (type_vocab_size 0)
    sequence_pooling="pooler",  # DeBERTa's ContextPooler: act(dense(h[CLS]))
    head_references=("sequence-classification", "sequence-labeling"),
    # the masked-LM head (transform, vocabulary projection); absolute positions v3 checkpoints may carry
    ignored_prefixes=("lm_head.", "head.", "model.embed_positions."),
    architecture="post-LayerNorm Transformer encoder (DeBERTa-v2 / v3): disentangled attention with "
    "content-to-position and position-to-content terms over shared, log-bucketed relative-position "
    "embeddings; no absolute positions in v3",
    parity="logits and every hidden state, at every position of right- and left-padded batches, equal "
    "transformers' `DebertaV2Model` / `DebertaV2ForMaskedLM` (both head layouts) / "
    "`DebertaV2ForSequenceClassification` / `DebertaV2ForTokenClassification` on the same random weights, "
    "loaded either way, with the zoo's sdpa and eager attention against transformers' eager (its only one for "
    "DeBERTa): max |difference| 1.0e-6 in fp32 (`tests/test_deberta_v2.py`). The pretrained weights do not "
    "ship on PyPI, so this parity on random weights is the evidence; no real checkpoint was run",
    tiny_config=dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=128,
        position_buckets=8,
        legacy=False,
        hidden_dropout=0.0,
        attention_dropout=0.0,
    ),
    catalog=(
        CatalogEntry(
            "deberta-v3-base", "microsoft/deberta-v3-base", "mit", ("en",), "184M",
            "DeBERTa-v3 base: 12-layer disentangled-attention encoder pre-trained as an ELECTRA-style "
            "replaced-token-detection discriminator, 128k-token SentencePiece vocabulary (86M backbone "
            "parameters plus 98M in the embedding).",
        ),
        CatalogEntry(
            "deberta-v3-small", "microsoft/deberta-v3-small", "mit", ("en",), "141M",
            "DeBERTa-v3 small: 6-layer, 768-wide disentangled-attention encoder pre-trained by "
            "replaced-token detection, 128k-token SentencePiece vocabulary (44M backbone parameters plus "
            "98M in the embedding).",
        ),
    ),
)  # fmt: skip
