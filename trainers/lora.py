"""LoRA on every zoo family through PEFT: default target layers, a config that follows the head, adapters.

Every family is built from the same layers (``zoo/layers``), so LoRA targets are module-name
suffixes (PEFT matches ``name == target`` or ``name.endswith("." + target)``) taken from the family's
declaration (``Family.attention_projections`` / ``mlp_projections``, see ``lora_targets``):

- bert, roberta, gpt2, gpt (nanoGPT), glm: ``attn.qkv``, ``attn.out``; with ``mlp=True`` also
  ``mlp.up``, ``mlp.down``
- llama (Llama, Mistral, Qwen2): ``attn.qkv``, ``attn.out``; with ``mlp=True`` also ``mlp.gate``,
  ``mlp.up``, ``mlp.down``
- t5: ``attn.qkv``, ``attn.out`` (self-attention), ``cross_attn.q``, ``cross_attn.kv``,
  ``cross_attn.out``; with ``mlp=True`` also ``mlp.gate`` (v1.1), ``mlp.up``, ``mlp.down``

``attn.qkv`` is the fused query/key/value projection: one LoRA pair on it is LoRA on q, k and v with
a shared down-projection ``A`` (rank ``r`` for the three together). ``attn.out`` does not match
``cross_attn.out`` (the suffix must follow a dot), so the T5 rows name self- and cross-attention apart.
Given a model rather than a family name, only the suffixes the model has are returned (a T5 encoder
head has no cross-attention, T5 v1.0 no ``mlp.gate``).

The PEFT task type follows the head (``head_kind``): causal-lm -> ``CAUSAL_LM``; seq2seq ->
``SEQ_2_SEQ_LM`` for encoder-decoders (T5), else ``CAUSAL_LM`` (GLM, UniLM, decoder prefix-LMs);
sequence-classification -> ``SEQ_CLS``; sequence-labeling (-crf) -> ``TOKEN_CLS``; embedding ->
``FEATURE_EXTRACTION``; masked-lm -> none (a plain ``PeftModel``). ``SEQ_CLS`` / ``TOKEN_CLS`` make
PEFT train and save ``classifier`` / ``score``; ``lora_config`` adds the head's other new layers
(the CRF, BERT's pooler) to ``modules_to_save``, so every randomly initialised layer is trained and
saved with the adapter.
"""

from __future__ import annotations

from typing import Any

import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model

from tasks.heads import UnsupportedHeadError, family_of, head_class, supported_heads
from zoo.adapters import (
    ADAPTER_CONFIG,
    AdapterMismatchError,
    AdapterNotFoundError,
    _peft_probe_without_warning,
    load_adapter,
    resolve_adapter,
)
from zoo.errors import UnknownNameError, ZooError
from zoo.family import families, get_family


def lora_targets(family: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(attention targets, feed-forward targets) of a family, from its declaration."""
    try:
        return get_family(family).lora_targets
    except UnknownNameError:
        raise UnknownLoraFamilyError(family) from None


# head kind -> PEFT task type (None: a plain PeftModel, which passes every input through)
TASK_TYPES: dict[str, TaskType | None] = {
    "causal-lm": TaskType.CAUSAL_LM,
    "seq2seq": TaskType.CAUSAL_LM,  # decoder-only seq2seq heads; encoder-decoders: SEQ_2_SEQ_LM
    "masked-lm": None,
    "sequence-classification": TaskType.SEQ_CLS,
    "sequence-labeling": TaskType.TOKEN_CLS,
    "sequence-labeling-crf": TaskType.TOKEN_CLS,
    "embedding": TaskType.FEATURE_EXTRACTION,
}

# PEFT's SEQ_CLS / TOKEN_CLS models add these to modules_to_save themselves
_PEFT_HEAD_NAMES = ("classifier", "score")


class UnknownLoraFamilyError(UnknownNameError):
    """A model or family name that is no registered family; the message lists the families."""

    def __init__(self, name: str):
        super().__init__("family for LoRA", name, families())
        self.args = (f"{self.args[0]}. For another model pass target_modules=[...] (its nn.Linear names)",)


class LoraSetupError(ZooError, ValueError):
    """A LoRA request that cannot work (bad task type, a model already wrapped, no targets matched)."""


def _family(model_or_family: Any) -> str:
    if isinstance(model_or_family, str):
        name = model_or_family
    else:
        try:
            name = family_of(model_or_family)
        except (UnsupportedHeadError, AttributeError):
            config = getattr(model_or_family, "config", None)
            name = getattr(config, "model_type", type(model_or_family).__name__)
    if name not in families():
        raise UnknownLoraFamilyError(name)
    return name


def default_target_modules(model_or_family: Any, mlp: bool = False) -> list[str]:
    """LoRA target suffixes of a family (``lora_targets``), attention only by default.

    Given a model, only the suffixes that name one of its ``nn.Linear`` layers are kept.
    """
    attention, feed_forward = lora_targets(_family(model_or_family))
    targets = [*attention, *(feed_forward if mlp else ())]
    if isinstance(model_or_family, str):
        return targets
    linear = [name for name, module in model_or_family.named_modules() if isinstance(module, torch.nn.Linear)]
    return [t for t in targets if any(name == t or name.endswith("." + t) for name in linear)]


def head_kind(model: torch.nn.Module) -> str | None:
    """The tasks.heads kind of a zoo model ("causal-lm", "sequence-classification", ...), None if unknown."""
    kind = getattr(type(model), "head_kind", None)  # every composed head declares it
    if kind is not None:
        return kind
    try:
        family = family_of(model)
    except (UnsupportedHeadError, AttributeError):
        return None
    classes = {head: head_class(family, head) for head in supported_heads(family)}
    exact = [head for head, cls in classes.items() if type(model) is cls]
    inherited = [head for head, cls in classes.items() if isinstance(model, cls)]
    return (exact or inherited or [None])[0]


def task_type_for(model: torch.nn.Module) -> TaskType | None:
    """The PEFT task type that matches the model's head (see the module docstring)."""
    kind = head_kind(model)
    if kind == "seq2seq" and getattr(model.config, "is_encoder_decoder", False):
        return TaskType.SEQ_2_SEQ_LM
    return TASK_TYPES.get(kind)


def _task_type(task_type: str | TaskType | None, model: torch.nn.Module) -> TaskType | None:
    if task_type is None:
        return task_type_for(model)
    try:
        return TaskType(task_type)
    except ValueError:
        valid = ", ".join(t.value for t in TaskType)
        raise LoraSetupError(f"task_type={task_type!r} is not a PEFT task type; valid: {valid}") from None


def _head_layers(model: torch.nn.Module) -> list[str]:
    """The layers a composed head adds to its backbone (randomly initialised from a base checkpoint)."""
    return [prefix.rstrip(".") for prefix in getattr(type(model), "_new_head_prefixes", ())]


def lora_config(
    model: torch.nn.Module,
    task_type: str | TaskType | None = None,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.0,
    target_modules: list[str] | str | None = None,
    mlp: bool = False,
    **kwargs: Any,
) -> LoraConfig:
    """A ``peft.LoraConfig`` for ``model``: default targets of its family, task type from its head.

    ``task_type``: a ``peft.TaskType`` or its name, default from the head (``task_type_for``).
    ``target_modules``: suffixes or a regex; default ``default_target_modules(model, mlp=mlp)``.
    ``modules_to_save`` (in ``kwargs``) is extended with the head's own new layers (classifier / score,
    CRF, a BERT pooler). Other keywords go to ``LoraConfig`` (``bias``, ``use_rslora``, ...).
    """
    if isinstance(model, PeftModel):
        raise LoraSetupError("the model is already a PeftModel; pass its base model (model.get_base_model())")
    if target_modules is None:
        target_modules = default_target_modules(model, mlp=mlp)
        if not target_modules:
            raise LoraSetupError(f"{type(model).__name__} has none of the LoRA targets of its family")
    task_type = _task_type(task_type, model)
    peft_adds = _PEFT_HEAD_NAMES if task_type in (TaskType.SEQ_CLS, TaskType.TOKEN_CLS) else ()
    head_layers = [name for name in _head_layers(model) if name not in peft_adds]
    modules_to_save = [*(kwargs.pop("modules_to_save", None) or []), *head_layers]
    return LoraConfig(
        task_type=task_type,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules,
        modules_to_save=list(dict.fromkeys(modules_to_save)) or None,
        **kwargs,
    )


def apply_lora(model: torch.nn.Module, **kwargs: Any) -> PeftModel:
    """``get_peft_model(model, lora_config(model, **kwargs))``: only LoRA and head layers stay trainable."""
    config = lora_config(model, **kwargs)
    with _peft_probe_without_warning():
        return get_peft_model(model, config)


__all__ = [
    "ADAPTER_CONFIG",
    "lora_targets",
    "TASK_TYPES",
    "UnknownLoraFamilyError",
    "AdapterMismatchError",
    "AdapterNotFoundError",
    "LoraSetupError",
    "apply_lora",
    "default_target_modules",
    "head_kind",
    "load_adapter",
    "lora_config",
    "resolve_adapter",
    "task_type_for",
]
