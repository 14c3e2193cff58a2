"""Every (family, head) pair: a table of families, a table of head kinds, and one small factory.

A composed class is ``type("<Prefix>For<Task>", (<Kind>Head, <Family>PreTrainedModel), {...})`` with
the family's config class and weight maps, the head's own layer names (so base checkpoints load and
the head layers are initialised), and the transformers architectures whose checkpoints it shares.
Language-model heads (causal-lm, masked-lm, seq2seq) are the zoo's own classes.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, PreTrainedConfig

import zoo
from zoo.errors import ZooError
from zoo.models.bert import BertPreTrainedModel
from zoo.models.glm.model import GLMPreTrainedModel
from zoo.models.gpt2 import GPT2PreTrainedModel
from zoo.models.llama import LlamaPreTrainedModel
from zoo.models.t5.model import T5PreTrainedModel, T5Stack

from .base import Family, HeadMixin
from .classification import SequenceClassificationHead
from .embedding import SentenceEmbeddingHead
from .labeling import TokenClassificationCRFHead, TokenClassificationHead

HEAD_KINDS = (
    "causal-lm",
    "masked-lm",
    "seq2seq",
    "sequence-labeling",
    "sequence-labeling-crf",
    "sequence-classification",
    "embedding",
)


class UnsupportedHeadError(ZooError, ValueError):
    """A family or head kind that has no composed class; the message lists what is supported."""


class T5EncoderModel(T5PreTrainedModel):
    """T5's encoder stack alone (as transformers' ``T5EncoderModel``): the backbone of T5's non-LM heads.

    Its parameters are named ``encoder.*`` like the full model's, so T5 checkpoints load into it and
    their decoder and LM head are ignored.
    """

    def __init__(self, config):
        super().__init__(config)
        self.encoder = T5Stack(config, is_decoder=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.encoder.embed_tokens

    def set_input_embeddings(self, value) -> None:
        self.encoder.embed_tokens = value

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs):
        return self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs
        )


def _no_cache(length: int) -> dict[str, Any]:
    return {"use_cache": False}


def _glm_bidirectional(length: int) -> dict[str, Any]:
    return {"use_cache": False, "sep": length}  # GLM's context is [0, sep): every token sees every token


def _per_reference(names: dict[str, str], task: str) -> dict[str, str]:
    return {reference_type: f"{prefix}For{task}" for reference_type, prefix in names.items()}


_LLAMA_PREFIXES = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2"}
_ENCODER = dict(is_encoder=True, sequence_layer="classifier", token_layer="classifier")
_BERT_IGNORED = ("lm_head.", "head.")  # the masked-LM head: vocabulary projection and transform

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            "bert",
            "Bert",
            zoo.BertConfig,
            BertPreTrainedModel,
            lambda config, pooler: zoo.BertModel(config, add_pooling_layer=pooler),
            sequence_pooling="pooler",
            accepts_token_type_ids=True,
            ignored_prefixes=_BERT_IGNORED,
            references={
                "sequence-classification": {"bert": "BertForSequenceClassification"},
                "sequence-labeling": {"bert": "BertForTokenClassification"},
            },
            **_ENCODER,
        ),
        Family(
            "roberta",
            "Roberta",
            zoo.RobertaConfig,
            BertPreTrainedModel,
            lambda config, pooler: zoo.RobertaModel(config, add_pooling_layer=pooler),
            sequence_pooling="pooler",  # BERT's pooler; transformers' RoBERTa classifier is another layout
            accepts_token_type_ids=True,
            ignored_prefixes=_BERT_IGNORED,
            references={"sequence-labeling": {"roberta": "RobertaForTokenClassification"}},
            **_ENCODER,
        ),
        Family(
            "t5",
            "T5",
            zoo.T5Config,
            T5PreTrainedModel,
            lambda config, pooler: T5EncoderModel(config),
            sequence_pooling="mean",
            ignored_prefixes=("model.decoder.", "decoder.", "lm_head."),
            **_ENCODER,
        ),
        Family(
            "glm",
            "GLM",
            zoo.GLMConfig,
            GLMPreTrainedModel,
            lambda config, pooler: zoo.GLMModel(config),
            sequence_pooling="mean",
            extra_inputs=_glm_bidirectional,
            ignored_prefixes=("lm_head.",),
            **_ENCODER,
        ),
        Family(
            "gpt2",
            "GPT2",
            zoo.GPT2Config,
            GPT2PreTrainedModel,
            lambda config, pooler: zoo.GPT2Model(config),
            is_encoder=False,
            sequence_pooling="last",
            sequence_layer="score",
            token_layer="classifier",
            accepts_token_type_ids=True,
            extra_inputs=_no_cache,
            ignored_prefixes=("lm_head.",),
            references={
                "sequence-classification": {"gpt2": "GPT2ForSequenceClassification"},
                "sequence-labeling": {"gpt2": "GPT2ForTokenClassification"},
            },
        ),
        Family(
            "llama",
            "Llama",
            zoo.LlamaConfig,
            LlamaPreTrainedModel,
            lambda config, pooler: zoo.LlamaModel(config),
            is_encoder=False,
            sequence_pooling="last",
            sequence_layer="score",
            token_layer="score",
            extra_inputs=_no_cache,
            ignored_prefixes=("lm_head.",),
            references={
                "sequence-classification": _per_reference(_LLAMA_PREFIXES, "SequenceClassification"),
                "sequence-labeling": _per_reference(_LLAMA_PREFIXES, "TokenClassification"),
            },
        ),
        Family(  # nanoGPT: GPT-2's backbone under GPTConfig; exports nothing (GPT-2's heads do)
            "gpt",
            "GPT",
            zoo.GPTConfig,
            GPT2PreTrainedModel,
            lambda config, pooler: zoo.GPT2Model(config),
            is_encoder=False,
            sequence_pooling="last",
            sequence_layer="score",
            token_layer="classifier",
            accepts_token_type_ids=True,
            extra_inputs=_no_cache,
            ignored_prefixes=("lm_head.",),
        ),
    )
}

# head kind -> (mixin, class-name suffix, transformers Auto class or None)
_COMPOSED_KINDS = {
    "sequence-classification": (
        SequenceClassificationHead,
        "SequenceClassification",
        AutoModelForSequenceClassification,
    ),
    "sequence-labeling": (TokenClassificationHead, "TokenClassification", AutoModelForTokenClassification),
    "sequence-labeling-crf": (TokenClassificationCRFHead, "TokenClassificationCRF", None),
    "embedding": (SentenceEmbeddingHead, "SentenceEmbedding", None),
}

# The zoo's own LM classes; a string is "module:attribute", imported when asked for (UniLM heads).
_LM_HEADS: dict[str, dict[str, type | str]] = {
    "bert": {"masked-lm": zoo.BertForMaskedLM, "seq2seq": "tasks.heads.unilm:BertForSeq2Seq"},
    "roberta": {"masked-lm": zoo.RobertaForMaskedLM, "seq2seq": "tasks.heads.unilm:RobertaForSeq2Seq"},
    "t5": {"seq2seq": zoo.T5ForConditionalGeneration},
    "glm": {"seq2seq": zoo.GLMForSeq2Seq},
    # decoders do seq2seq as a prefix LM: the task's collator puts -100 on the source tokens
    "gpt2": {"causal-lm": zoo.GPT2ForCausalLM, "seq2seq": zoo.GPT2ForCausalLM},
    "llama": {"causal-lm": zoo.LlamaForCausalLM, "seq2seq": zoo.LlamaForCausalLM},
    "gpt": {"causal-lm": zoo.GPT, "seq2seq": zoo.GPT},
}


def _head_layers(family: Family, kind: str) -> tuple[str, ...]:
    """Prefixes of the parameters the head adds to the backbone (initialised when a checkpoint lacks them)."""
    if kind == "sequence-classification":
        pooler = ("model.pooler.",) if family.sequence_pooling == "pooler" else ()
        return (f"{family.sequence_layer}.", *pooler)
    if kind == "sequence-labeling":
        return (f"{family.token_layer}.",)
    if kind == "sequence-labeling-crf":
        return (f"{family.token_layer}.", "crf.")
    return ()


def compose(family: Family, kind: str) -> type:
    """Build the class for one (family, head kind) pair."""
    mixin, suffix, _ = _COMPOSED_KINDS[kind]
    name = f"{family.class_prefix}For{suffix}"
    namespace = {
        "__module__": __package__,
        "__qualname__": name,
        "__doc__": f"{family.name} backbone (``self.model``) with the {kind} head. {mixin.__doc__ or ''}",
        "family": family,
        "config_class": family.config_class,
        "reference_architectures": dict(family.references.get(kind, {})),
        "_new_head_prefixes": _head_layers(family, kind),
        "_optional_checkpoint_prefixes": (*family.ignored_prefixes, "model.pooler."),
    }
    return type(name, (mixin, family.pretrained_class), namespace)


COMPOSED: dict[tuple[str, str], type] = {
    (family.name, kind): compose(family, kind) for family in FAMILIES.values() for kind in _COMPOSED_KINDS
}


def register_heads() -> None:
    """Make every composed class loadable by ``zoo.load`` and the transformers Auto classes."""
    for (_, kind), cls in COMPOSED.items():
        zoo.register_class(cls, _COMPOSED_KINDS[kind][2])


def _unknown(kind: str, name: str, valid) -> str:
    valid = list(valid)
    close = difflib.get_close_matches(str(name), valid, n=3, cutoff=0.5)
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    return f"unknown {kind} {name!r}{hint}; valid: {', '.join(valid)}"


def supported_heads(family: str) -> tuple[str, ...]:
    """The head kinds ``family`` has, in ``HEAD_KINDS`` order."""
    if family not in FAMILIES:
        raise UnsupportedHeadError(_unknown("family", family, FAMILIES))
    kinds = {*_LM_HEADS.get(family, {}), *(kind for name, kind in COMPOSED if name == family)}
    return tuple(kind for kind in HEAD_KINDS if kind in kinds)


def head_class(family: str, head: str) -> type:
    """The model class of ``head`` on ``family`` (e.g. ``head_class("bert", "sequence-labeling-crf")``)."""
    supported = supported_heads(family)
    if head not in supported:
        if head in HEAD_KINDS:
            raise UnsupportedHeadError(
                f"family {family!r} has no {head!r} head; supported: {', '.join(supported)}"
            )
        raise UnsupportedHeadError(_unknown("head", head, supported) + f" (supported by {family!r})")
    if (family, head) in COMPOSED:
        return COMPOSED[(family, head)]
    entry = _LM_HEADS[family][head]
    if isinstance(entry, str):
        module, _, attribute = entry.partition(":")
        return getattr(importlib.import_module(module), attribute)
    return entry


_FAMILY_OF_MODEL_TYPE = {family.config_class.model_type: name for name, family in FAMILIES.items()}


def family_of(config_or_model: Any) -> str:
    """The family name of a zoo config, model, config dict or zoo ``model_type`` string."""
    config = getattr(config_or_model, "config", config_or_model)
    if isinstance(config, PreTrainedConfig):
        model_type = config.model_type
    elif isinstance(config, dict):
        model_type = config.get("model_type")
    else:
        model_type = config
    if model_type in FAMILIES:
        return model_type
    if model_type not in _FAMILY_OF_MODEL_TYPE:
        raise UnsupportedHeadError(_unknown("zoo model_type", model_type, _FAMILY_OF_MODEL_TYPE))
    return _FAMILY_OF_MODEL_TYPE[model_type]


__all__ = [
    "COMPOSED",
    "FAMILIES",
    "HEAD_KINDS",
    "HeadMixin",
    "T5EncoderModel",
    "UnsupportedHeadError",
    "family_of",
    "head_class",
    "register_heads",
    "supported_heads",
]
