"""The base every zoo model shares: :class:`ZooPreTrainedModel`, its class-level declarations and the
seeds' model API (``model_name``, ``get_num_params``, ``criterion``, ``init_from_json``, ``from_pretrain``).

The class is composed like transformers' own ``PreTrainedModel``, from mixins ahead of it:

- :mod:`zoo.pretrained_loading`: ``from_pretrained``, config resolution, strict weight loading
  (``load_weights``, :class:`LoadReport`) and ``load_adapter``;
- :mod:`zoo.pretrained_saving`: ``save_pretrained`` in either of the :data:`LAYOUTS`,
  ``save_reference`` and ``load_state_dict`` of either layout;
- :mod:`zoo.criterion`: :class:`Criterion`, the loss ``model.criterion`` returns.

Every name those define that callers use stays importable from here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from transformers import PreTrainedModel

from .configuration import ZooConfig
from .criterion import _CRITERION_CALLS, Criterion
from .errors import ConfigError
from .fused_loss import can_fuse
from .loading import CONFIG_NAME, read_config_dict, resolve_checkpoint
from .pretrained_loading import LoadReport, PretrainedLoadingMixin
from .pretrained_saving import LAYOUTS, PretrainedSavingMixin
from .weights import WeightMap

__all__ = ["LAYOUTS", "Criterion", "LoadReport", "ZooPreTrainedModel"]


class ZooPreTrainedModel(PretrainedLoadingMixin, PretrainedSavingMixin, PreTrainedModel):
    """Base of every zoo model (families subclass it once, as ``<Family>PreTrainedModel``)."""

    config_class = ZooConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True  # masks come from transformers' helpers, BlockMasks under flex
    _supports_attention_backend = True
    # Reference model_type -> the WeightMap converting that layout (set by each family).
    weight_maps: ClassVar[dict[str, WeightMap]] = {}
    # Reference model_type -> the transformers class this zoo class exports as.
    reference_architectures: ClassVar[dict[str, str]] = {}
    # Checkpoint names this class may find and not need (e.g. a pooler a masked-LM class lacks).
    _optional_checkpoint_prefixes: ClassVar[tuple[str, ...]] = ()
    # Parameters a task head adds to its backbone (e.g. ``classifier.``): a checkpoint without them
    # (a base or LM checkpoint) still loads strictly; they are initialised and logged.
    _new_head_prefixes: ClassVar[tuple[str, ...]] = ()
    # False: save_pretrained keeps the zoo layout by default although save_reference can export one
    # (nanoGPT's GPT writes GPT-2's layout on request; GLM's reference layout is FlagAI's).
    has_transformers_counterpart: ClassVar[bool] = True
    # The transformers loss (a ``LOSS_MAPPING`` key) forward computes from logits and labels, for
    # ``criterion``; None: derived from the class name (see ``criterion``).
    criterion_loss_type: ClassVar[str | None] = None
    # Vocabulary heads called with labels compute the loss chunk by chunk (zoo.fused_loss: no whole fp32
    # logits, gradients per chunk) and return the logits detached in the compute dtype. Set False on a
    # model (or class) for the plain path: logits with gradients, the transformers loss on them.
    fused_loss: bool = True

    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        # transformers reads the loss from the class name (``...ForCausalLM``); a class whose name does not
        # say it (nanoGPT's ``GPT``, UniLM) declares it, so ``loss_function`` and Trainer's token count for
        # ``num_items_in_batch`` (shifted for causal LMs) agree with the loss forward computes.
        if self.criterion_loss_type is not None:
            self.loss_type = self.criterion_loss_type

    def fuses_loss(self, lm_head, logits_to_keep: int | object = 0) -> bool:
        """Whether forward with labels takes the chunked loss through ``lm_head``: ``fused_loss`` is on,
        every position's logits are asked for, nobody replaced ``loss_function`` and the head is a
        plain, unhooked ``nn.Linear`` (see :func:`zoo.fused_loss.can_fuse`)."""
        return (
            self.fused_loss
            and isinstance(logits_to_keep, int)
            and logits_to_keep == 0
            and "_loss_function" not in self.__dict__
            and can_fuse(lm_head)
        )

    # -- the seeds' model API ---------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        """Where the weights came from (path or Hub id), else the class name."""
        return self.config.name_or_path or type(self).__name__

    def get_num_params(self, trainable_only: bool = False) -> int:
        """Number of parameters; tied parameters count once."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    @property
    def criterion(self) -> Criterion:
        """``criterion(logits, labels, **loss_kwargs) -> loss``: the loss forward computes for these logits
        and labels (Oumi's ``model.criterion``), for loops that compute the loss themselves. (Vocabulary
        heads compute forward's chunk by chunk, ``zoo.fused_loss``: the two agree to fp32 rounding.)

        The loss is ``criterion_loss_type`` when the class sets it; else the one its class name (or a base
        class's name) ends with, as transformers names them (``...ForCausalLM`` shifts the labels); a
        zoo encoder-decoder LM's is the unshifted token cross-entropy. Any other class raises
        :class:`ConfigError` rather than guess.
        """
        loss_type = self.criterion_loss_type
        if (
            loss_type is None
            and self.config.is_encoder_decoder
            and self.loss_type == "ForConditionalGeneration"
        ):
            loss_type = "ForMaskedLM"  # transformers maps this name to the shifting causal loss
        for cls in () if loss_type is not None else type(self).__mro__:
            loss_type = next((key for key in _CRITERION_CALLS if cls.__name__.endswith(key)), None)
            if loss_type is not None:
                break
        if loss_type is None:
            raise ConfigError(
                f"{type(self).__name__} does not declare which loss its forward computes: set the class "
                f"attribute criterion_loss_type to one of {', '.join(_CRITERION_CALLS)}, or override criterion"
            )
        return Criterion(loss_type, self.config)

    @classmethod
    def init_from_json(cls, config_file: str | os.PathLike, **overrides) -> ZooPreTrainedModel:
        """A randomly initialised model from a config file (zoo or reference layout) plus overrides."""
        file = Path(config_file)
        unknown = sorted(set(overrides) - set(cls.config_class.__dataclass_fields__))
        if unknown:
            raise ConfigError(
                f"{file}: unknown config field(s) {', '.join(unknown)} for {cls.config_class.__name__}; "
                f"valid: {', '.join(sorted(cls.config_class.__dataclass_fields__))}"
            )
        config = cls._config_from_dict(read_config_dict(file.parent, file.name), file, overrides)
        return cls(config)

    @classmethod
    def from_pretrain(cls, download_path: str | os.PathLike, model_name: str, **kwargs) -> ZooPreTrainedModel:
        """Load ``download_path/model_name`` if it exists, else download Hub id ``model_name`` into it."""
        local = Path(download_path) / model_name
        if not (local / CONFIG_NAME).is_file():
            resolve_checkpoint(
                model_name,
                revision=kwargs.get("revision"),
                token=kwargs.get("token"),
                local_files_only=kwargs.get("local_files_only", False),
                local_dir=local,
            )
        return cls.from_pretrained(local, **kwargs)
