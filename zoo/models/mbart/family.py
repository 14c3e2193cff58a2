"""The mBART family: BART's encoder-decoder, pre-LN with final norms, multilingual."""

from ...family import CatalogEntry, Family
from ..bart.family import ATTENTION_PROJECTIONS, IGNORED_PREFIXES, MLP_PROJECTIONS, TINY_CONFIG
from .config import MBartConfig
from .model import MBartEncoderModel, MBartForConditionalGeneration, MBartModel

# A few of mBART-50's 50 languages (ISO 639-1, for the card's metadata); the tokenizer's codes are en_XX, ...
LANGUAGES = ("en", "de", "fr", "es", "ro", "ru", "zh", "ja", "ar", "hi")

MBART = Family(
    name="mbart",
    kind="encoder-decoder",
    config_class=MBartConfig,
    base_class=MBartModel,
    backbone_class=MBartEncoderModel,  # the token-level and embedding heads read the encoder only
    lm_heads={"seq2seq": MBartForConditionalGeneration},
    head_references=("sequence-classification",),
    ignored_prefixes=IGNORED_PREFIXES,
    attention_projections=ATTENTION_PROJECTIONS,
    mlp_projections=MLP_PROJECTIONS,
    architecture="pre-LayerNorm Transformer encoder-decoder (mBART): BART with pre-LN blocks, a final "
    "LayerNorm on encoder and decoder and scaled embeddings; language codes as the first target token",
    parity="random weights, as the real ones do not ship on PyPI: logits and every encoder and decoder hidden "
    "state within 1e-4 of transformers' `MBartForConditionalGeneration` / `MBartModel` on the "
    "same weights (fp32, right-padded batches, sdpa and eager), loaded either way; greedy and beam-search "
    "outputs identical to transformers' (forced language token included) and cached / uncached / batched; "
    "`MBartForSequenceClassification` logits within 1e-4 (`tests/test_bart.py`)",
    tiny_config=TINY_CONFIG,
    catalog=(
        CatalogEntry(
            "mbart-large-50", "facebook/mbart-large-50", "mit", ("multilingual", *LANGUAGES), "611M",
            "mBART-50 large: mBART pre-trained by multilingual denoising on 50 languages (12 + 12 layers, "
            "hidden 1024, 250k-token SentencePiece vocabulary). Set the tokenizer's src_lang / tgt_lang to its "
            "language codes (en_XX, de_DE, fr_XX, es_XX, ro_RO, ru_RU, zh_CN, ja_XX, ar_AR, hi_IN, ...): the "
            "seq2seq tasks then frame source and target with them and generate from the target code.",
        ),
    ),
)  # fmt: skip
