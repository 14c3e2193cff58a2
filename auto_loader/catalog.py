"""The catalog: one table of named models, each with its family, Hub repository, license and card.

Names are FlagAI's (``bert-base-en``, ``glm-large-ch``, ...) plus Llama-family and sentence
embedding models. Lookups are case-insensitive. The heads an entry supports are its family's
(``tasks.heads.supported_heads``) unless the entry narrows them; its card is
``model_cards/<name>.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from zoo.errors import UnknownNameError

MODEL_CARDS = Path(__file__).resolve().parent.parent / "model_cards"


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    family: str  # tasks.heads family name
    hub_id: str  # the real Hub repository
    license: str  # Hub license identifier
    languages: tuple[str, ...]
    parameters: str  # approximate size, as published
    description: str
    # Where the tokenizer comes from (a Hub id; the model repository itself unless stated).
    tokenizer: str = ""
    # Head kinds offered for this model; empty = every head its family supports.
    heads: tuple[str, ...] = ()
    # Config overrides a task head starts from (e.g. the pooling a sentence-embedding model was trained with).
    head_defaults: dict = field(default_factory=dict)

    @property
    def tokenizer_id(self) -> str:
        return self.tokenizer or self.hub_id

    @property
    def card_path(self) -> Path:
        return MODEL_CARDS / f"{self.name}.md"

    def supported_heads(self) -> tuple[str, ...]:
        from tasks.heads import supported_heads

        return self.heads or supported_heads(self.family)


_ENTRIES = [
    # name, family, Hub id, license, languages, parameters, description, extra fields
    CatalogEntry(
        "bert-base-en", "bert", "google-bert/bert-base-uncased", "apache-2.0", ("en",), "110M",
        "BERT base, uncased English WordPiece vocabulary (FlagAI's bert-base-en).",
    ),
    CatalogEntry(
        "roberta-base-ch", "bert", "hfl/chinese-roberta-wwm-ext", "apache-2.0", ("zh",), "102M",
        "Chinese RoBERTa-wwm-ext: RoBERTa training recipe with whole-word masking on a BERT "
        "architecture and character vocabulary (FlagAI's roberta-base-ch).",
    ),
    CatalogEntry(
        "gpt2-base-ch", "gpt2", "uer/gpt2-chinese-cluecorpussmall", "other", ("zh",), "102M",
        "GPT-2 base trained on CLUECorpusSmall with a BERT character vocabulary (FlagAI's gpt2-base-ch).",
    ),
    CatalogEntry(
        "gpt2-base-en", "gpt2", "openai-community/gpt2", "mit", ("en",), "124M",
        "OpenAI GPT-2 small (FlagAI's gpt2-base-en).",
    ),
    CatalogEntry(
        "t5-base-ch", "t5", "uer/t5-base-chinese-cluecorpussmall", "other", ("zh",), "247M",
        "T5 base trained on CLUECorpusSmall with a BERT character vocabulary (FlagAI's t5-base-ch).",
    ),
    CatalogEntry(
        "t5-base-en", "t5", "google-t5/t5-base", "apache-2.0", ("en", "fr", "ro", "de"), "223M",
        "Google T5 base (FlagAI's t5-base-en).",
    ),
    CatalogEntry(
        "glm-large-ch", "glm", "BAAI/glm-large-chinese", "other", ("zh",), "335M",
        "GLM large, Chinese, autoregressive blank infilling (FlagAI's GLM-large-ch).",
    ),
    CatalogEntry(
        "glm-large-en", "glm", "BAAI/glm-large", "other", ("en",), "335M",
        "GLM large, English, autoregressive blank infilling (FlagAI's GLM-large-en).",
    ),
    CatalogEntry(
        "glm-10b-ch", "glm", "BAAI/glm-10b-chinese", "other", ("zh",), "10B",
        "GLM 10B, Chinese, autoregressive blank infilling (FlagAI's GLM-10b-ch).",
    ),
    CatalogEntry(
        "smollm2-135m", "llama", "HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0", ("en",), "135M",
        "SmolLM2 135M instruction-tuned: Llama architecture, GQA 9/3 heads, tied embeddings.",
    ),
    CatalogEntry(
        "qwen2.5-0.5b", "llama", "Qwen/Qwen2.5-0.5B", "apache-2.0", ("en", "zh"), "494M",
        "Qwen2.5 0.5B base: Qwen2 architecture (q/k/v bias, GQA 14/2), loaded by the Llama family.",
    ),
    CatalogEntry(
        "tinyllama-1.1b", "llama", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "apache-2.0", ("en",), "1.1B",
        "TinyLlama 1.1B chat: Llama 2 architecture and tokenizer, GQA 32/4.",
    ),
    CatalogEntry(
        "all-minilm-l6-v2", "bert", "sentence-transformers/all-MiniLM-L6-v2", "apache-2.0", ("en",), "22.7M",
        "Sentence embeddings: 6-layer MiniLM (BERT architecture), mean pooling and L2 normalisation.",
        # A sentence-transformers checkpoint: the encoder without the pre-training heads.
        heads=("embedding", "sequence-classification", "sequence-labeling", "sequence-labeling-crf"),
        head_defaults={"pooling": "mean", "normalize_embeddings": True},
    ),
]  # fmt: skip

CATALOG: dict[str, CatalogEntry] = {entry.name: entry for entry in _ENTRIES}


def get_entry(name: str) -> CatalogEntry:
    """The catalog entry called ``name`` (any case); unknown names list the catalog and close matches."""
    entry = CATALOG.get(name.lower())
    if entry is None:
        raise UnknownNameError("model name", name, CATALOG)
    return entry


def find_entry(name: str) -> CatalogEntry | None:
    return CATALOG.get(name.lower())


def catalog_names() -> list[str]:
    return list(CATALOG)
