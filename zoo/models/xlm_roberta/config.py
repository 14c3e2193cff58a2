"""XLM-RoBERTa configuration: RoBERTa's, read from and written as transformers' ``XLMRobertaConfig``.

transformers' ``XLMRobertaConfig`` has ``RobertaConfig``'s fields one for one (only its vocabulary default
differs), so the conversion is RoBERTa's with the model_type swapped. The defaults are those of
``FacebookAI/xlm-roberta-base``: RoBERTa base with a 250,002-token SentencePiece vocabulary.
"""

import copy
from typing import Any

import transformers
from huggingface_hub.dataclasses import strict

from ..bert.config import RobertaConfig

REFERENCE_MODEL_TYPE = "xlm-roberta"
_ROBERTA = "roberta"  # the layout RobertaConfig converts; XLM-R's fields are the same


@strict
class XLMRobertaConfig(RobertaConfig):
    model_type = "zoo_xlm_roberta"
    reference_model_types = (REFERENCE_MODEL_TYPE,)
    zoo_model_types = ("zoo_xlm_roberta",)

    vocab_size: int = 250002

    @classmethod
    def from_reference(cls, reference: dict[str, Any]) -> "XLMRobertaConfig":
        config = super().from_reference({**reference, "model_type": _ROBERTA})
        config.reference_model_type = REFERENCE_MODEL_TYPE
        return config

    def to_reference(self, architecture: str) -> transformers.PreTrainedConfig:
        as_roberta = copy.copy(self)
        as_roberta.reference_model_type = _ROBERTA
        roberta = RobertaConfig.to_reference(as_roberta, architecture)
        return transformers.XLMRobertaConfig.from_dict(
            {**roberta.to_dict(), "model_type": REFERENCE_MODEL_TYPE}
        )
