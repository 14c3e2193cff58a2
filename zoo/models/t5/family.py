"""The T5 family: an encoder-decoder with relative position bias (t5 and v1.1 / flan layouts)."""

from ...family import CatalogEntry, Family
from .config import T5Config
from .encoder import T5EncoderModel
from .model import T5ForConditionalGeneration, T5Model

T5 = Family(
    name="t5",
    kind="encoder-decoder",
    config_class=T5Config,
    base_class=T5Model,
    backbone_class=T5EncoderModel,  # the task heads read the encoder only
    lm_heads={"seq2seq": T5ForConditionalGeneration},
    ignored_prefixes=("model.decoder.", "decoder.", "lm_head."),
    attention_projections=("attn.qkv", "attn.out", "cross_attn.q", "cross_attn.kv", "cross_attn.out"),
    mlp_projections=("mlp.gate", "mlp.up", "mlp.down"),  # the gate only in v1.1 (gated-gelu)
    architecture="Transformer encoder-decoder (T5): relative position bias, RMS-style LayerNorm, ReLU or "
    "gated-GELU MLP",
    parity="logits within 1e-5 of transformers' `T5ForConditionalGeneration` for the t5 and v1.1 / flan "
    "layouts; greedy and beam-search outputs identical (`tests/test_t5.py`)",
    tiny_config=dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_decoder_layers=2,
        num_attention_heads=4,
        head_dim=16,
        intermediate_size=128,
        relative_attention_num_buckets=16,
        relative_attention_max_distance=64,
        hidden_dropout=0.0,
        attention_dropout=0.0,
    ),
    catalog=(
        CatalogEntry(
            "t5-base-ch", "uer/t5-base-chinese-cluecorpussmall", "other", ("zh",), "247M",
            "T5 base trained on CLUECorpusSmall with a BERT character vocabulary (FlagAI's t5-base-ch).",
        ),
        CatalogEntry(
            "t5-base-en", "google-t5/t5-base", "apache-2.0", ("en", "fr", "ro", "de"), "223M",
            "Google T5 base (FlagAI's t5-base-en).",
        ),
    ),
)  # fmt: skip
