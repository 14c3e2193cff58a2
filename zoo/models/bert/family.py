"""The BERT and RoBERTa families: post-LayerNorm encoders that differ by data (RoBERTa's position offset)."""

from ...family import CatalogEntry, Family
from .config import BertConfig, RobertaConfig
from .model import BertForMaskedLM, BertModel, RobertaForMaskedLM, RobertaModel
from .unilm import BertForSeq2Seq, RobertaForSeq2Seq

_ENCODER = dict(
    kind="encoder",
    token_types=True,
    sequence_pooling="pooler",  # BERT's tanh pooler on [CLS]
    ignored_prefixes=("lm_head.", "head."),  # the masked-LM head: vocabulary projection and transform
    tiny_config=dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=256,
        hidden_dropout=0.0,
        attention_dropout=0.0,
    ),
)

BERT = Family(
    name="bert",
    config_class=BertConfig,
    base_class=BertModel,
    lm_heads={"masked-lm": BertForMaskedLM, "seq2seq": BertForSeq2Seq},
    transformers_model_types=("bert",),
    head_references=("sequence-classification", "sequence-labeling"),
    architecture="post-LayerNorm Transformer encoder (BERT): learned absolute positions, token types, GELU MLP",
    parity="logits and every hidden state equal transformers' `BertModel` / `BertForMaskedLM` on the same "
    "weights: max |difference| 0.0 in fp32 (`tests/test_parity.py`); the real all-MiniLM-L6-v2 weights give "
    "token embeddings within 1e-5 and the same sentence cosine similarities (`tests/test_real_weights.py`)",
    catalog=(
        CatalogEntry(
            "bert-base-en", "google-bert/bert-base-uncased", "apache-2.0", ("en",), "110M",
            "BERT base, uncased English WordPiece vocabulary (FlagAI's bert-base-en).",
        ),
        CatalogEntry(
            "roberta-base-ch", "hfl/chinese-roberta-wwm-ext", "apache-2.0", ("zh",), "102M",
            "Chinese RoBERTa-wwm-ext: RoBERTa training recipe with whole-word masking on a BERT "
            "architecture and character vocabulary (FlagAI's roberta-base-ch).",
        ),
        CatalogEntry(
            "all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2", "apache-2.0", ("en",), "22.7M",
            "Sentence embeddings: 6-layer MiniLM (BERT architecture), mean pooling and L2 normalisation.",
            # A sentence-transformers checkpoint: the encoder without the pre-training heads.
            heads=("embedding", "sequence-classification", "sequence-labeling", "sequence-labeling-crf"),
            head_defaults={"pooling": "mean", "normalize_embeddings": True},
        ),
        CatalogEntry(
            "bge-small-en-v1.5", "BAAI/bge-small-en-v1.5", "mit", ("en",), "33.4M",
            "BAAI's small English embedding model (BERT): CLS pooling, L2-normalised.",
            heads=("embedding", "sequence-classification", "sequence-labeling", "sequence-labeling-crf"),
            head_defaults={"pooling": "cls", "normalize_embeddings": True},
        ),
    ),
    **_ENCODER,
)  # fmt: skip

ROBERTA = Family(
    name="roberta",
    config_class=RobertaConfig,
    base_class=RobertaModel,
    lm_heads={"masked-lm": RobertaForMaskedLM, "seq2seq": RobertaForSeq2Seq},
    transformers_model_types=("roberta",),
    # BERT's pooler; transformers' RoBERTa sequence classifier is another layout
    head_references=("sequence-labeling",),
    architecture="post-LayerNorm Transformer encoder (RoBERTa): BERT's encoder with RoBERTa's position offset",
    parity="logits and every hidden state equal transformers' `RobertaForMaskedLM` on the same weights: "
    "max |difference| 0.0 in fp32 (`tests/test_parity.py`)",
    **_ENCODER,
)
