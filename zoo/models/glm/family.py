"""The GLM family: FlagAI's autoregressive blank infilling (2-D positions, a bidirectional context)."""

from ...family import CatalogEntry, Family
from .config import GLMConfig
from .model import GLMForSeq2Seq, GLMModel

GLM = Family(
    name="glm",
    kind="blank-infilling",
    config_class=GLMConfig,
    base_class=GLMModel,
    # The Hub's GLM repositories map AutoModelForSeq2SeqLM to their generation class; GLM stays a
    # decoder-only model (is_encoder_decoder=False), so generate returns the context and the blank.
    lm_heads={"seq2seq": GLMForSeq2Seq},
    architecture="GLM: Transformer with 2-D (position, block position) embeddings and blank-infilling "
    "attention masks",
    parity="logits within 1e-5 of FlagAI 1.8.4's own `GLMModel` on the same weights for [MASK], [sMASK] "
    "and [gMASK] blank infilling; greedy blank filling equals a FlagAI decode (`tests/test_glm.py`)",
    catalog=(
        CatalogEntry(
            "glm-large-ch", "BAAI/glm-large-chinese", "other", ("zh",), "335M",
            "GLM large, Chinese, autoregressive blank infilling (FlagAI's GLM-large-ch).",
        ),
        CatalogEntry(
            "glm-large-en", "BAAI/glm-large", "other", ("en",), "335M",
            "GLM large, English, autoregressive blank infilling (FlagAI's GLM-large-en).",
        ),
        CatalogEntry(
            "glm-10b-ch", "BAAI/glm-10b-chinese", "other", ("zh",), "10B",
            "GLM 10B, Chinese, autoregressive blank infilling (FlagAI's GLM-10b-ch).",
        ),
    ),
)  # fmt: skip
