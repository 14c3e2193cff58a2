"""BERT / RoBERTa configuration: a post-LN encoder with learned positions and token types.

RoBERTa differs only by data: positions counted from the padding index (``positions_from_padding``),
one token type, other special ids. ``RobertaConfig`` just changes the defaults.
"""

from types import MappingProxyType
from typing import Any

import transformers
from huggingface_hub.dataclasses import strict

from ...configuration import ZooConfig, shared_token_fields

_REFERENCE_CONFIGS = {"bert": transformers.BertConfig, "roberta": transformers.RobertaConfig}


@strict
class BertConfig(ZooConfig):
    model_type = "zoo_bert"
    reference_model_types = ("bert", "roberta")
    zoo_model_types = ("zoo_bert", "zoo_roberta")
    field_ranges = MappingProxyType({**ZooConfig.field_ranges, "type_vocab_size": "count"})

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    # RoBERTa: position ids start after the padding index and skip pad tokens.
    positions_from_padding: bool = False
    classifier_dropout: float | int | None = None

    @classmethod
    def from_reference(cls, reference: dict[str, Any]) -> "BertConfig":
        model_type = reference.get("model_type", "bert")
        ref = _REFERENCE_CONFIGS[model_type].from_dict(reference)
        return cls(
            vocab_size=ref.vocab_size,
            hidden_size=ref.hidden_size,
            num_hidden_layers=ref.num_hidden_layers,
            num_attention_heads=ref.num_attention_heads,
            intermediate_size=ref.intermediate_size,
            hidden_act=ref.hidden_act,
            max_position_embeddings=ref.max_position_embeddings,
            type_vocab_size=ref.type_vocab_size,
            layer_norm_eps=ref.layer_norm_eps,
            hidden_dropout=ref.hidden_dropout_prob,
            attention_dropout=ref.attention_probs_dropout_prob,
            classifier_dropout=ref.classifier_dropout,
            positions_from_padding=model_type == "roberta",
            reference_model_type=model_type,
            **shared_token_fields(reference),
        )

    def to_reference(self, architecture: str) -> transformers.PreTrainedConfig:
        return _REFERENCE_CONFIGS[self.reference_model_type](
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            hidden_act=self.hidden_act,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            layer_norm_eps=self.layer_norm_eps,
            hidden_dropout_prob=self.hidden_dropout,
            attention_probs_dropout_prob=self.attention_dropout,
            classifier_dropout=self.classifier_dropout,
            initializer_range=self.initializer_range,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            tie_word_embeddings=self.tie_word_embeddings,
            architectures=[architecture],
        )


@strict
class RobertaConfig(BertConfig):
    model_type = "zoo_roberta"
    reference_model_types = ("roberta", "bert")

    vocab_size: int = 50265
    max_position_embeddings: int = 514
    type_vocab_size: int = 1
    layer_norm_eps: float = 1e-5
    pad_token_id: int | None = 1
    bos_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 2
    positions_from_padding: bool = True
