"""The BART family: a post-LN encoder-decoder with learned positions and a shared, tied embedding."""

from ...family import CatalogEntry, Family
from .config import BartConfig
from .model import BartEncoderModel, BartForConditionalGeneration, BartModel

# Token-level heads read the encoder only (as T5's); a checkpoint's decoder and LM head are ignored.
IGNORED_PREFIXES = ("model.decoder.", "decoder.", "lm_head.", "final_logits_bias", "classifier.")
ATTENTION_PROJECTIONS = ("attn.qkv", "attn.out", "cross_attn.q", "cross_attn.kv", "cross_attn.out")
MLP_PROJECTIONS = ("mlp.up", "mlp.down")
# The examples' from-scratch model: hidden 64, 2 + 2 layers.
TINY_CONFIG = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_decoder_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    max_position_embeddings=256,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
)

BART = Family(
    name="bart",
    kind="encoder-decoder",
    config_class=BartConfig,
    base_class=BartModel,
    backbone_class=BartEncoderModel,  # the token-level and embedding heads read the encoder only
    lm_heads={"seq2seq": BartForConditionalGeneration},
    head_references=("sequence-classification",),
    ignored_prefixes=IGNORED_PREFIXES,
    attention_projections=ATTENTION_PROJECTIONS,
    mlp_projections=MLP_PROJECTIONS,
    architecture="post-LayerNorm Transformer encoder-decoder (BART): learned positions (offset 2), "
    "LayerNorm on the embeddings, GELU MLP, one token embedding shared by encoder, decoder and the LM head "
    "(plus final_logits_bias)",
    parity="random weights, as the real ones do not ship on PyPI: logits and every encoder and decoder hidden "
    "state within 1e-4 of transformers' `BartForConditionalGeneration` / `BartModel` on the "
    "same weights (fp32, right-padded batches, sdpa and eager), loaded either way; greedy and beam-search "
    "outputs identical to transformers' and cached / uncached / batched; `BartForSequenceClassification` "
    "logits within 1e-4 (`tests/test_bart.py`)",
    tiny_config=TINY_CONFIG,
    catalog=(
        CatalogEntry(
            "bart-base", "facebook/bart-base", "apache-2.0", ("en",), "139M",
            "BART base: a denoising sequence-to-sequence autoencoder pre-trained on English text "
            "(6 + 6 layers, hidden 768, byte-level BPE vocabulary of 50,265 tokens).",
        ),
    ),
)  # fmt: skip
