"""A family declares itself once, in its folder; the rest of the package derives what it knows from that.

``zoo/models/<family>/family.py`` builds one :class:`Family`: its name, kind, config / backbone / LM
classes, the transformers model types it reads, whether it takes token types, its heads' layer names,
its projections, its card text, its catalog entries and a tiny config. ``zoo/models/<family>/heads.py``
defines the task-head classes, one line each (``class LlamaForTokenClassification(TokenClassificationHead,
LlamaPreTrainedModel): family = LLAMA``), and the folder's ``__init__`` calls :func:`register_family`.

Derived from the declarations, never written down twice:

======================================  ===========================================================
what                                    from
======================================  ===========================================================
``head_class`` / ``supported_heads``    ``lm_heads``, the registered heads (decoders: seq2seq = causal LM)
tasks' ``token_type_ids`` filter        ``token_types``
the seq2seq format                      ``kind`` (:data:`SEQ2SEQ_FORMATS`)
backbone inputs of the heads            ``kind`` (decoders: no cache; blank infilling: bidirectional)
head classes' transformers names        ``head_references`` + the transformers model types
LoRA targets, PEFT default targets      ``attention_projections``, ``mlp_projections``
card metadata and text                  ``kind``, ``lm_heads``, ``architecture``, ``parity``
the catalog                             ``catalog``
examples' tiny models and tokenizers    ``tiny_config``, ``kind``
benchmark classes and references        ``lm_heads``, their transformers architectures
======================================  ===========================================================

A declaration missing a fact, or claiming a transformers model type another family reads, fails at
registration with :class:`FamilyDeclarationError` naming the family and the field.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import transformers
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    PreTrainedConfig,
)

from .adapters import register_peft_defaults
from .errors import UnknownNameError, ZooError
from .registry import register_class

KINDS = ("encoder", "decoder", "encoder-decoder", "blank-infilling")
HEAD_KINDS = (
    "causal-lm",
    "masked-lm",
    "seq2seq",
    "sequence-labeling",
    "sequence-labeling-crf",
    "sequence-classification",
    "embedding",
)
LM_HEAD_KINDS = ("causal-lm", "masked-lm", "seq2seq")
# How each kind turns a (source, target) pair into a training row (tasks.seq2seq_formats).
SEQ2SEQ_FORMATS = {
    "encoder": "unilm",
    "decoder": "prefix-lm",
    "encoder-decoder": "encoder-decoder",
    "blank-infilling": "glm",
}
# The transformers Auto class each class is registered with (None: zoo.load only).
AUTO_CLASSES: dict[str, type | None] = {
    "base": AutoModel,
    "causal-lm": AutoModelForCausalLM,
    "masked-lm": AutoModelForMaskedLM,
    "seq2seq": AutoModelForSeq2SeqLM,
    "sequence-classification": AutoModelForSequenceClassification,
    "sequence-labeling": AutoModelForTokenClassification,
    "sequence-labeling-crf": None,
    "embedding": None,
}
POOLINGS = ("pooler", "last", "mean")
MODEL_CARDS = Path(__file__).resolve().parent.parent / "model_cards"


class FamilyDeclarationError(ZooError, TypeError):
    """A family declaration lacks a fact, has an invalid one, or claims what another family claims."""


class UnsupportedHeadError(ZooError, ValueError):
    """A family or head kind that has no class; the message lists what is supported."""


@dataclass(frozen=True)
class CatalogEntry:
    """A named real model of a family: its Hub repository, license and card."""

    name: str
    hub_id: str  # the real Hub repository
    license: str  # Hub license identifier
    languages: tuple[str, ...]
    parameters: str  # approximate size, as published
    description: str
    family: str = ""  # filled in from the declaration that lists the entry
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
        return self.heads or supported_heads(self.family)


_REQUIRED = ("name", "kind", "config_class", "base_class", "lm_heads", "architecture", "parity")


@dataclass(frozen=True, kw_only=True)
class Family:
    """Everything outside a family's folder knows about it. Only the first seven fields are required."""

    name: str = ""  # "llama": the name tasks, AutoLoader, LoRA and the CLI use
    kind: str = ""  # one of KINDS
    config_class: type | None = None
    base_class: type | None = None  # the headless model (AutoModel)
    lm_heads: Mapping[str, type] = field(default_factory=dict)  # LM head kind -> the family's class
    architecture: str = ""  # one line for the model cards
    parity: str = ""  # where parity with the reference is measured, and the figure (model cards)
    # transformers model_type values whose checkpoints this family reads (default: its config's).
    transformers_model_types: tuple[str, ...] | None = None
    backbone_class: type | None = None  # the task heads' backbone (default: base_class)
    token_types: bool = False  # the models read token_type_ids (BERT's segment embeddings)
    sequence_pooling: str = ""  # "pooler" / "last" / "mean"; default: decoders "last", else "mean"
    sequence_layer: str = ""  # sequence classifier's layer; default: decoders "score", else "classifier"
    token_layer: str = "classifier"  # token classifier's layer
    # head kinds whose transformers class (<Prefix>For<Suffix>) shares the head's layout
    head_references: tuple[str, ...] = ()
    # checkpoint prefixes a task head finds and ignores (LM heads, a decoder it does not use)
    ignored_prefixes: tuple[str, ...] = ("lm_head.",)
    # projections (module name suffixes) of the attention and feed-forward: LoRA's targets
    attention_projections: tuple[str, ...] = ("attn.qkv", "attn.out")
    mlp_projections: tuple[str, ...] = ()  # default: the config's default mlp_type
    catalog: tuple[CatalogEntry, ...] = ()
    tiny_config: Mapping[str, Any] | None = None  # examples' from-scratch model (vocab from the tokenizer)

    def __post_init__(self):
        name = self.name or "<unnamed>"
        for fact in _REQUIRED:
            if not getattr(self, fact):
                raise FamilyDeclarationError(f"family {name!r}: the declaration lacks {fact!r}")
        if self.kind not in KINDS:
            raise FamilyDeclarationError(
                f"family {name!r}: kind={self.kind!r} is not one of {', '.join(KINDS)}"
            )
        unknown = sorted(set(self.lm_heads) - set(LM_HEAD_KINDS))
        if unknown:
            raise FamilyDeclarationError(
                f"family {name!r}: lm_heads names {unknown}; LM head kinds are {', '.join(LM_HEAD_KINDS)}"
            )
        defaults = {
            "transformers_model_types": tuple(self.config_class.reference_model_types),
            "backbone_class": self.base_class,
            "sequence_pooling": "last" if self.kind == "decoder" else "mean",
            "sequence_layer": "score" if self.kind == "decoder" else "classifier",
            "mlp_projections": ("mlp.gate", "mlp.up", "mlp.down")
            if self.config_class().mlp_type == "gated"
            else ("mlp.up", "mlp.down"),
        }
        for fact, value in defaults.items():
            if getattr(self, fact) is None or (
                fact != "transformers_model_types" and not getattr(self, fact)
            ):
                object.__setattr__(self, fact, value)
        if self.kind == "decoder" and "seq2seq" not in self.lm_heads and "causal-lm" in self.lm_heads:
            # decoders do seq2seq as a prefix LM: the task's collator puts -100 on the source tokens
            object.__setattr__(self, "lm_heads", {**self.lm_heads, "seq2seq": self.lm_heads["causal-lm"]})
        if self.sequence_pooling not in POOLINGS:
            raise FamilyDeclarationError(
                f"family {name!r}: sequence_pooling={self.sequence_pooling!r} is not one of {', '.join(POOLINGS)}"
            )
        object.__setattr__(
            self, "catalog", tuple(dataclasses.replace(entry, family=self.name) for entry in self.catalog)
        )

    # -- derived facts -------------------------------------------------------------------------------
    @property
    def class_prefix(self) -> str:
        """``LlamaConfig`` -> ``Llama``: the prefix of the family's head classes."""
        return self.config_class.__name__.removesuffix("Config")

    @property
    def model_types(self) -> tuple[str, ...]:
        """The model_type values that name this family: its zoo config's, and the transformers ones it reads."""
        return (self.config_class.model_type, *self.transformers_model_types)

    @property
    def seq2seq_format(self) -> str:
        return SEQ2SEQ_FORMATS[self.kind]

    @property
    def bidirectional(self) -> bool:
        return self.kind != "decoder"

    @property
    def pipeline_tag(self) -> str:
        if "causal-lm" in self.lm_heads:
            return "text-generation"
        if "masked-lm" in self.lm_heads:
            return "fill-mask"
        return "text2text-generation"

    @property
    def tokenizer_kind(self) -> str:
        """The tokenizer a model trained from scratch gets: byte-level BPE for decoders, else WordPiece."""
        return "bpe" if self.kind == "decoder" else "wordpiece"

    def backbone_inputs(self, length: int) -> dict[str, Any]:
        """Extra backbone inputs the task heads pass for a sequence of ``length`` tokens."""
        if self.kind == "decoder":
            return {"use_cache": False}
        if self.kind == "blank-infilling":
            return {"use_cache": False, "sep": length}  # the whole input is GLM's bidirectional context
        return {}

    def build_backbone(self, config, with_pooler: bool = False):
        if self.sequence_pooling == "pooler":
            return self.backbone_class(config, add_pooling_layer=with_pooler)
        return self.backbone_class(config)

    def head_architectures(self, kind: str, suffix: str) -> dict[str, str]:
        """``{transformers model_type: architecture}`` a head of ``kind`` loads and exports."""
        if kind not in self.head_references:
            return {}
        return {
            model_type: f"{_transformers_prefix(model_type)}For{suffix}"
            for model_type in self.transformers_model_types
        }

    @property
    def lora_targets(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(attention targets, feed-forward targets) of LoRA on this family."""
        return tuple(self.attention_projections), tuple(self.mlp_projections)

    @property
    def peft_default_targets(self) -> tuple[tuple[str, ...], str]:
        """PEFT's defaults: the projections reading the hidden state (not the attention outputs), and the
        feed-forward's output projection (IA3's feed-forward module)."""
        inputs = tuple(p for p in self.attention_projections if not p.endswith(".out"))
        return inputs, self.mlp_projections[-1]

    def no_dropout(self) -> dict[str, float]:
        """Every dropout field of the config, zero."""
        return {name: 0.0 for name in self.config_class.__dataclass_fields__ if name.endswith("dropout")}


def _transformers_prefix(model_type: str) -> str:
    """``"qwen2"`` -> ``"Qwen2"``: transformers' class prefix of a model type."""
    return transformers.CONFIG_MAPPING[model_type].__name__.removesuffix("Config")


# -- the registry ------------------------------------------------------------------------------------
_FAMILIES: dict[str, Family] = {}
_BY_MODEL_TYPE: dict[str, Family] = {}  # zoo and transformers model_type -> family
_HEADS: dict[str, dict[str, type]] = {}  # family -> head kind -> class


def register_family(family: Family, heads: tuple[type, ...] = ()) -> Family:
    """Register ``family`` and its ``heads`` with ``zoo.load`` and the transformers Auto classes.

    Re-registering a family under its own name replaces it (a test re-declaring one).
    """
    if not isinstance(family, Family):
        raise FamilyDeclarationError(
            f"register_family takes a Family declaration, got {type(family).__name__}"
        )
    claims = dict.fromkeys(family.model_types, family)
    for model_type in claims:
        other = _BY_MODEL_TYPE.get(model_type)
        if other is not None and other.name != family.name:
            raise FamilyDeclarationError(
                f"families {other.name!r} and {family.name!r} both claim the model type {model_type!r}"
            )
    by_kind: dict[str, type] = {}
    for cls in heads:
        kind = getattr(cls, "head_kind", None)
        if getattr(cls, "family", None) is not family:
            raise FamilyDeclarationError(
                f"family {family.name!r}: head class {cls.__name__} declares family = "
                f"{getattr(getattr(cls, 'family', None), 'name', None)!r}"
            )
        if kind in by_kind or kind in family.lm_heads:
            raise FamilyDeclarationError(f"family {family.name!r}: two classes for the {kind!r} head")
        by_kind[kind] = cls
    for kind, cls in family.lm_heads.items():
        if cls.config_class is not family.config_class:
            raise FamilyDeclarationError(
                f"family {family.name!r}: lm_heads[{kind!r}] = {cls.__name__} is built on "
                f"{cls.config_class.__name__}, not {family.config_class.__name__}"
            )
    _FAMILIES[family.name] = family
    _BY_MODEL_TYPE.update(claims)
    _HEADS[family.name] = by_kind
    if family.base_class.config_class is family.config_class:
        register_class(family.base_class, AUTO_CLASSES["base"])
    for kind, cls in family.lm_heads.items():
        if kind == "seq2seq" and cls is family.lm_heads.get("causal-lm"):
            continue
        register_class(cls, AUTO_CLASSES[kind])
    for kind, cls in by_kind.items():
        register_class(cls, AUTO_CLASSES[kind])
    # LoraConfig(task_type=...) / IA3Config() need no target_modules on zoo models
    register_peft_defaults(family.config_class.model_type, *family.peft_default_targets)
    return family


def unregister_family(name: str) -> Family:
    """Remove the family called ``name`` from the family tables (``families``, ``get_family``,
    ``family_for``, ``supported_heads`` / ``head_class``, ``catalog_entries``) and return its declaration;
    an unknown name raises ``UnknownNameError``. For code that registers a family for a while (a test).

    What :func:`register_family` registered elsewhere stays: its classes remain loadable by ``zoo.load``
    and the transformers Auto classes (``zoo.registry`` and transformers have no removal), and PEFT keeps
    the default targets of its config's model_type.
    """
    family = get_family(name)
    del _FAMILIES[family.name]
    _HEADS.pop(family.name, None)
    for model_type in [t for t, claimant in _BY_MODEL_TYPE.items() if claimant.name == family.name]:
        del _BY_MODEL_TYPE[model_type]
    return family


def families() -> dict[str, Family]:
    """Every registered family by name, in registration order."""
    return dict(_FAMILIES)


def get_family(name: str) -> Family:
    """The family called ``name``; an unknown name raises ``UnknownNameError`` with close matches."""
    family = _FAMILIES.get(name.lower() if isinstance(name, str) else name)
    if family is None:
        raise UnknownNameError("model family", str(name), _FAMILIES)
    return family


def family_for(config_or_model: Any) -> Family:
    """The family of a family name, a zoo or transformers ``model_type``, a config (dict) or a model."""
    config = getattr(config_or_model, "config", config_or_model)
    if isinstance(config, PreTrainedConfig):
        model_type = config.model_type
    elif isinstance(config, Mapping):
        model_type = config.get("model_type")
    else:
        model_type = config
    if model_type in _FAMILIES:
        return _FAMILIES[model_type]
    if model_type not in _BY_MODEL_TYPE:
        raise UnknownNameError("model family or model_type", str(model_type), [*_FAMILIES, *_BY_MODEL_TYPE])
    return _BY_MODEL_TYPE[model_type]


def family_of(config_or_model: Any) -> str:
    """The family name of a zoo config, model, config dict, model_type or family name."""
    try:
        return family_for(config_or_model).name
    except UnknownNameError as error:
        raise UnsupportedHeadError(str(error)) from None


def _unknown(what: str, name: str, valid) -> str:
    valid = list(valid)
    close = difflib.get_close_matches(str(name), valid, n=3, cutoff=0.5)
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    return f"unknown {what} {name!r}{hint}; valid: {', '.join(valid)}"


def supported_heads(family: str) -> tuple[str, ...]:
    """The head kinds ``family`` has, in ``HEAD_KINDS`` order."""
    if family not in _FAMILIES:
        raise UnsupportedHeadError(_unknown("family", family, _FAMILIES))
    kinds = {*_FAMILIES[family].lm_heads, *_HEADS[family]}
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
    return _HEADS[family].get(head) or _FAMILIES[family].lm_heads[head]


def head_classes() -> dict[str, type]:
    """Every registered task-head class by name (``LlamaForTokenClassification``, ...)."""
    return {cls.__name__: cls for heads in _HEADS.values() for cls in heads.values()}


def catalog_entries() -> list[CatalogEntry]:
    """The catalog entries of every family, in registration order."""
    return [entry for family in _FAMILIES.values() for entry in family.catalog]


__all__ = [
    "AUTO_CLASSES",
    "CatalogEntry",
    "Family",
    "FamilyDeclarationError",
    "HEAD_KINDS",
    "KINDS",
    "SEQ2SEQ_FORMATS",
    "UnsupportedHeadError",
    "catalog_entries",
    "families",
    "family_for",
    "family_of",
    "get_family",
    "head_class",
    "head_classes",
    "register_family",
    "supported_heads",
    "unregister_family",
]
