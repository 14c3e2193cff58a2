"""The XLM-RoBERTa family: RoBERTa's architecture as data, under transformers' ``xlm-roberta`` model type."""

from ...family import CatalogEntry, Family
from .config import XLMRobertaConfig
from .model import XLMRobertaForMaskedLM, XLMRobertaForSeq2Seq, XLMRobertaModel

_EMBEDDING_HEADS = ("embedding", "sequence-classification", "sequence-labeling", "sequence-labeling-crf")

XLM_ROBERTA = Family(
    name="xlm-roberta",
    kind="encoder",
    token_types=True,
    sequence_pooling="pooler",  # BERT's tanh pooler on <s>
    config_class=XLMRobertaConfig,
    base_class=XLMRobertaModel,
    lm_heads={"masked-lm": XLMRobertaForMaskedLM, "seq2seq": XLMRobertaForSeq2Seq},
    transformers_model_types=("xlm-roberta",),
    # BERT's pooler; transformers' XLM-R sequence classifier is another layout (as RoBERTa's)
    head_references=("sequence-labeling",),
    ignored_prefixes=("lm_head.", "head."),  # the masked-LM head: vocabulary projection and transform
    architecture="post-LayerNorm Transformer encoder (XLM-RoBERTa): RoBERTa's encoder with a multilingual "
    "SentencePiece vocabulary",
    parity="logits and every hidden state equal transformers' `XLMRobertaForMaskedLM` / `XLMRobertaModel` on "
    "the same weights, loaded either way, sdpa and eager: max |difference| 0.0 in fp32 "
    "(`tests/test_xlm_roberta.py`)",
    tiny_config=dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=256,
        hidden_dropout=0.0,
        attention_dropout=0.0,
    ),
    catalog=(
        CatalogEntry(
            "xlm-roberta-base", "FacebookAI/xlm-roberta-base", "mit", ("multilingual",), "278M",
            "XLM-RoBERTa base: RoBERTa pre-trained by masked language modelling on 2.5 TB of CommonCrawl "
            "text in 100 languages, 250k-token SentencePiece vocabulary.",
        ),
        CatalogEntry(
            "bge-m3", "BAAI/bge-m3", "mit", ("multilingual",), "568M",
            "BAAI's multilingual dense embedding model (XLM-RoBERTa large): CLS pooling, L2-normalised.",
            # A sentence-transformers checkpoint: the encoder without the pre-training heads.
            heads=_EMBEDDING_HEADS,
            head_defaults={"pooling": "cls", "normalize_embeddings": True},
        ),
    ),
)  # fmt: skip
