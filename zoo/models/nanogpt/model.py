"""nanoGPT's GPT: GPT-2's decoder under nanoGPT's config, with the text interface of the seeds.

nanoGPT's architecture is GPT-2's (pre-LN blocks, learned positions, tied head, scaled init of the
residual projections), so this family inherits the GPT-2 model built from the shared layers and
blocks, and differs only by data (``GPTConfig``: exact GELU, optional biases, one dropout) and by
the seeds' API: ``model(idx)`` -> logits, ``generate("text")`` -> text with the model's own
tokenizer, which is saved and loaded with the weights.
"""

from __future__ import annotations

import os

import torch

from ...errors import ConfigError, WeightsMismatchError
from ...loading import _torch_load, resolve_checkpoint
from ...text_generation import generate_text
from ...tokenization import has_tokenizer, load_tokenizer
from ..gpt2.model import GPT2ForCausalLM, GPT2Model
from ..gpt2.weights import GPT2_WEIGHT_MAP
from .config import GPTConfig
from .weights import NANOGPT_WEIGHT_MAP

_ORIG_MOD = "_orig_mod."  # prefix torch.compile leaves on the names of nanoGPT's compiled checkpoints


class GPTModel(GPT2Model):
    """GPT-2's backbone under nanoGPT's config: the headless model of the family and its heads' backbone."""

    config_class = GPTConfig
    config: GPTConfig
    has_transformers_counterpart = False  # a GPT-2 directory loads as GPT-2, not as nanoGPT


class GPT(GPT2ForCausalLM):
    """Identical to ``GPT2ForCausalLM`` except: nanoGPT's config, ``model(idx)`` returns logits, text generation."""

    config_class = GPTConfig
    config: GPTConfig
    weight_maps = {"gpt2": GPT2_WEIGHT_MAP}
    reference_architectures = {"gpt2": "GPT2LMHeadModel"}  # save_reference: GPT-2's layout, on request
    has_transformers_counterpart = False  # nanoGPT's API (model(idx) -> logits) is the zoo's own
    criterion_loss_type = "ForCausalLM"  # the class name does not say so

    def __init__(self, config: GPTConfig, tokenizer=None):
        super().__init__(config)
        self.tokenizer = tokenizer

    def __call__(self, *args, **kwargs):
        """``model(idx)`` (a tensor, no labels) returns the logits tensor, as nanoGPT's model does.

        Keyword calls (Trainer, ``generate``, PEFT: ``model(input_ids=..., labels=...)``) return the
        standard ``CausalLMOutputWithPast``; ``forward`` itself is unchanged.
        """
        if len(args) > 1:
            raise TypeError(
                f"{type(self).__name__} takes one positional argument (the token ids); pass the rest "
                "by keyword, e.g. model(input_ids=ids, labels=ids)"
            )
        if args and torch.is_tensor(args[0]) and kwargs.get("labels") is None:
            kwargs.setdefault("use_cache", False)
            return super().__call__(input_ids=args[0], **kwargs).logits
        return super().__call__(*args, **kwargs)

    def generate(self, inputs=None, *args, **kwargs):
        """``generate("prompt text", max_new_tokens=...) -> str`` with ``self.tokenizer``; token tensors
        go to ``GenerationMixin.generate`` unchanged. See :func:`zoo.text_generation.generate_text`."""
        if isinstance(inputs, str):
            context = self.config.max_position_embeddings
            return generate_text(self, self.tokenizer, inputs, *args, context_length=context, **kwargs)
        return super().generate(inputs, *args, **kwargs)

    def get_num_params(self, trainable_only: bool = False, non_embedding: bool = False) -> int:
        """Parameters, tied ones once; ``non_embedding`` leaves out the position embeddings (nanoGPT's count)."""
        count = super().get_num_params(trainable_only)
        if non_embedding:
            count -= self.model.embed_positions.weight.numel()
        return count

    # -- the tokenizer travels with the weights ---------------------------------------------------
    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        super().save_pretrained(save_directory, *args, **kwargs)
        if self.tokenizer is not None and kwargs.get("is_main_process", True):
            self.tokenizer.save_pretrained(save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *model_args, **kwargs) -> GPT:
        """``ZooPreTrainedModel.from_pretrained``, plus the tokenizer saved beside the weights, if any."""
        model = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        if model.tokenizer is None:
            directory = resolve_checkpoint(
                pretrained_model_name_or_path,
                kwargs.get("revision"),
                kwargs.get("cache_dir"),
                kwargs.get("token"),
                kwargs.get("local_files_only", False),
            )
            if has_tokenizer(directory):
                model.tokenizer = load_tokenizer(directory)
        return model

    # -- nanoGPT checkpoints ----------------------------------------------------------------------
    @classmethod
    def from_nanogpt_checkpoint(cls, path: str | os.PathLike, tokenizer=None, **config_overrides) -> GPT:
        """Load nanoGPT's ``ckpt.pt`` (read with ``weights_only=True``): its ``model_args`` and ``model``."""
        checkpoint = _torch_load(path, tensors_only=False)  # weights beside model_args, iter_num, ...
        if not isinstance(checkpoint, dict) or "model_args" not in checkpoint or "model" not in checkpoint:
            raise ConfigError(
                f"{path} is not a nanoGPT training checkpoint (a dict with 'model_args' and 'model'); "
                "for a bare state dict build GPT(GPTConfig(...)) and call load_nanogpt_state_dict"
            )
        config = GPTConfig.from_nanogpt(checkpoint["model_args"], **config_overrides)
        with torch.device("meta"):
            model = cls(config, tokenizer=tokenizer)
        model.load_nanogpt_state_dict(checkpoint["model"], source=str(path))
        model.config.name_or_path = str(path)
        return model.eval()

    def load_nanogpt_state_dict(
        self, state_dict: dict[str, torch.Tensor], source: str = "nanoGPT state dict"
    ):
        """Load a state dict with nanoGPT's names (``transformer.h.0.attn.c_attn.weight``, ...), strictly."""
        named = {name.removeprefix(_ORIG_MOD): (lambda t=t: t) for name, t in state_dict.items()}
        converted, unknown = NANOGPT_WEIGHT_MAP.to_zoo(named, source=source)
        if unknown:
            raise WeightsMismatchError(
                unexpected=unknown, source=source, hint="these names are not in nanoGPT's GPT"
            )
        try:
            return self.load_weights(converted.items(), source=source)
        except WeightsMismatchError as error:  # name what is wrong as the checkpoint names it
            raise NANOGPT_WEIGHT_MAP.reference_error(error, named, self.config) from None

    def nanogpt_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights under nanoGPT's names: ``nanoGPT.model.GPT(config).load_state_dict`` takes them."""
        zoo_state = {name: (lambda t=t: t.detach()) for name, t in self.state_dict().items()}
        reference = NANOGPT_WEIGHT_MAP.to_reference(zoo_state, self.config, with_prefix=True)
        return {name: tensor() for name, tensor in reference.items()}
