"""XLM-RoBERTa: RoBERTa's encoder (BERT's, with positions counted from the padding index) under
``XLMRobertaConfig``, loading and writing transformers' ``XLMRoberta*`` checkpoints.

Nothing is computed differently from RoBERTa: the classes only bind the config, the ``xlm-roberta``
weight layout and the transformers architecture names.
"""

from __future__ import annotations

from ..bert.model import BertPreTrainedModel, RobertaForMaskedLM, RobertaModel
from ..bert.unilm import BertForSeq2Seq, RobertaForSeq2Seq
from .config import REFERENCE_MODEL_TYPE, XLMRobertaConfig
from .weights import XLM_ROBERTA_WEIGHT_MAP

_WEIGHT_MAPS = {REFERENCE_MODEL_TYPE: XLM_ROBERTA_WEIGHT_MAP}


class XLMRobertaPreTrainedModel(BertPreTrainedModel):
    """Base of the task heads: BERT's, reading the ``xlm-roberta`` layout."""

    config_class = XLMRobertaConfig
    weight_maps = _WEIGHT_MAPS


class XLMRobertaModel(RobertaModel):
    config_class = XLMRobertaConfig
    weight_maps = _WEIGHT_MAPS
    reference_architectures = {REFERENCE_MODEL_TYPE: "XLMRobertaModel"}


class XLMRobertaForMaskedLM(RobertaForMaskedLM):
    config_class = XLMRobertaConfig
    weight_maps = _WEIGHT_MAPS
    reference_architectures = {REFERENCE_MODEL_TYPE: "XLMRobertaForMaskedLM"}


class XLMRobertaForSeq2Seq(RobertaForSeq2Seq):
    """UniLM seq2seq (``BertForSeq2Seq``) on XLM-RoBERTa; loads ``xlm-roberta-base``-layout masked-LM
    checkpoints and ``save_reference`` writes ``XLMRobertaForMaskedLM``."""

    config_class = XLMRobertaConfig
    weight_maps = _WEIGHT_MAPS

    def save_reference(self, save_directory, max_shard_size: str | int = "5GB"):
        # BertForSeq2Seq.save_reference exports as BERT's / RoBERTa's masked LM; this one as XLM-R's.
        self.reference_architectures = XLMRobertaForMaskedLM.reference_architectures
        try:
            return super(BertForSeq2Seq, self).save_reference(save_directory, max_shard_size)
        finally:
            del self.reference_architectures
