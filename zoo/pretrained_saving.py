"""How a zoo model saves: ``save_pretrained`` in either layout, reference export and state-dict
conversion (``PretrainedSavingMixin``).

``save_pretrained`` writes the transformers layout by default for every class transformers also has
(``layout="transformers"``): the directory loads in plain transformers, vLLM, TGI or llama.cpp's
converter without this package. ``layout="zoo"`` writes the zoo's own names (fused ``attn.qkv``; it
loads without conversion, a fast-load cache); classes with no transformers counterpart (nanoGPT's
``GPT``, GLM, UniLM, CRF heads) always write it. A zoo-layout ``config.json`` names its class
``Zoo<Class>`` (``ZooLlamaForCausalLM``), never a class another library has, so tools that resolve
``architectures`` fall back to the Auto classes zoo registers. ``load_state_dict`` takes either
layout, so Trainer resumes from either kind of checkpoint.

Every save goes through :func:`zoo.saving.staged_directory`, so a failed one leaves the previous
model whole. The mixin is composed into :class:`zoo.modeling_base.ZooPreTrainedModel` ahead of
transformers' ``PreTrainedModel`` and reads the class attributes declared there (``weight_maps``,
``reference_architectures``, ``has_transformers_counterpart``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from huggingface_hub import create_repo, split_torch_state_dict_into_shards, upload_folder
from safetensors.torch import save_file

from .errors import ConfigError, UnknownNameError
from .saving import staged_directory
from .weights import Lazy

logger = logging.getLogger("zoo")

# What ``save_pretrained(layout=...)`` writes: transformers' names and config, or the zoo's own.
LAYOUTS = ("transformers", "zoo")


class PretrainedSavingMixin:
    """``save_pretrained`` / ``save_reference`` and ``load_state_dict`` of :class:`ZooPreTrainedModel`."""

    # -- saving: the transformers layout by default ----------------------------------------------
    @property
    def transformers_architecture(self) -> str | None:
        """The transformers class ``save_pretrained`` writes this model as by default; None: the zoo layout."""
        if not self.has_transformers_counterpart or getattr(self, "hf_quantizer", None) is not None:
            return None
        return self.reference_architectures.get(self.config.reference_model_type)

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        is_main_process: bool = True,
        state_dict: dict[str, torch.Tensor] | None = None,
        push_to_hub: bool = False,
        max_shard_size: int | str = "5GB",
        token: str | bool | None = None,
        *,
        layout: str | None = None,
        **kwargs,
    ) -> None:
        """Save weights and config; ``layout`` is ``"transformers"`` (default where transformers has the
        class) or ``"zoo"`` (see the module docstring).

        ``state_dict`` (zoo names, as Trainer passes it) replaces ``self.state_dict()``. With
        ``push_to_hub=True`` the directory is uploaded to ``repo_id`` (default: its name). A config the
        transformers class cannot express (e.g. a Llama with q/k/v but no output bias) is saved in the
        zoo layout with a warning by default, and raises :class:`ConfigError` with ``layout="transformers"``.
        """
        if layout is not None and layout not in LAYOUTS:
            raise UnknownNameError("save layout", layout, LAYOUTS)
        if layout is None:
            layout = "zoo"  # also with adapters injected by ``load_adapter``: transformers saves those
            if self.transformers_architecture is not None and not self._adapters_loaded():
                try:
                    self._reference_config()
                    layout = "transformers"
                except ConfigError as error:
                    logger.warning("%s: saving in the zoo layout: %s", type(self).__name__, error)
        if layout == "transformers" and self._adapters_loaded():
            raise ConfigError(
                f"{type(self).__name__} holds adapters injected by load_adapter; merge them first "
                "(merge_and_unload) to save the full model in the transformers layout, or save with layout='zoo'"
            )
        hub = {k: kwargs.pop(k) for k in ("repo_id", "commit_message", "create_pr", "private") if k in kwargs}
        if layout == "transformers":
            kwargs.pop("safe_serialization", None)  # always safetensors
            if kwargs:
                raise TypeError(
                    f"save_pretrained got unexpected arguments {sorted(kwargs)} for the transformers layout"
                )
            reference_config = self._reference_config()  # a config error before anything is written
        directory = Path(save_directory)
        # the previous save stays whole if this one fails; other processes than the main one write nothing
        with staged_directory(directory, commit=is_main_process) as staging:
            if layout == "zoo":
                super().save_pretrained(
                    staging,
                    is_main_process=is_main_process,
                    state_dict=state_dict,
                    max_shard_size=max_shard_size,
                    token=token,
                    **kwargs,
                )
            elif is_main_process:
                _save_safetensors(self._reference_state_dict(state_dict), staging, max_shard_size)
                reference_config.save_pretrained(staging)
                if self.can_generate():
                    self.generation_config.save_pretrained(staging)
        if push_to_hub and is_main_process:
            repo_id = hub.get("repo_id", directory.name)
            repo_id = create_repo(repo_id, token=token, private=hub.get("private"), exist_ok=True).repo_id
            upload_folder(
                repo_id=repo_id,
                folder_path=directory,
                commit_message=hub.get("commit_message") or "Upload model",
                create_pr=hub.get("create_pr", False),
                token=token,
            )

    def save_reference(self, save_directory: str | os.PathLike, max_shard_size: str | int = "5GB") -> Path:
        """Write this model in the family's reference layout, loadable without this package (also for
        classes whose default save is the zoo layout: nanoGPT's ``GPT`` as GPT-2, GLM as FlagAI's)."""
        self.save_pretrained(save_directory, max_shard_size=max_shard_size, layout="transformers")
        return Path(save_directory)

    def _adapters_loaded(self) -> bool:
        """transformers' own PEFT integration injected adapters into this model (``model.load_adapter``)."""
        return bool(getattr(self, "_hf_peft_config_loaded", False))

    def _reference_config(self):
        """The transformers config of this model as ``reference_architectures`` names it, labels included."""
        config = self.config
        architecture = self.reference_architectures.get(config.reference_model_type)
        if architecture is None:
            raise ConfigError(
                f"{type(self).__name__} has no {config.reference_model_type} reference architecture to save as; "
                f"it has: {', '.join(self.reference_architectures) or 'none'} (save it with layout='zoo')"
            )
        reference_config = config.to_reference(architecture)
        for key in ("id2label", "label2id", "problem_type"):  # a task head's labels travel with it
            setattr(reference_config, key, getattr(config, key))
        return reference_config

    def _reference_state_dict(self, state_dict: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        """Zoo tensors (``state_dict`` or this model's) renamed, split and transposed to the reference layout."""
        config = self.config
        weight_map = self.weight_maps[config.reference_model_type]
        is_head_model = self.base_model is not self
        tied_targets = (
            set(getattr(self, "all_tied_weights_keys", None) or {}) if config.tie_word_embeddings else set()
        )
        state = self.state_dict() if state_dict is None else state_dict
        zoo_state: dict[str, Lazy] = {}
        for name, tensor in state.items():
            if name in tied_targets:
                continue
            full_name = name if is_head_model else f"{self.base_model_prefix}.{name}"
            zoo_state[full_name] = lambda t=tensor: t.detach()
        reference = weight_map.to_reference(zoo_state, config, with_prefix=is_head_model)
        return {name: tensor() for name, tensor in reference.items()}

    # -- state dicts in either layout -------------------------------------------------------------
    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict`` that also takes the transformers layout ``save_pretrained`` writes
        (what Trainer's resume and best-model reload pass), converted through the family's weight map."""
        return super().load_state_dict(self._zoo_state_dict(state_dict), strict=strict, assign=assign)

    def _zoo_state_dict(self, state_dict):
        own = set(super().state_dict(keep_vars=True))
        weight_map = self.weight_maps.get(self.config.reference_model_type)
        if weight_map is None or all(name in own for name in state_dict):
            return state_dict
        converted, unknown = weight_map.to_zoo(
            {name: (lambda t=tensor: t) for name, tensor in state_dict.items()}, source="state dict"
        )
        if unknown:  # not the reference layout either: let nn.Module report the names as given
            return state_dict
        prefix = self.base_model_prefix + "."
        is_head_model = self.base_model is not self
        result = {}
        for name, tensor in converted.items():
            if not is_head_model and name.startswith(prefix):
                name = name[len(prefix) :]
            result[name] = tensor()
        for target, source in (getattr(self, "all_tied_weights_keys", None) or {}).items():
            if target in own and target not in result and source in result:
                result[target] = result[source]
        return result


def _save_safetensors(state: dict[str, torch.Tensor], directory: Path, max_shard_size: str | int) -> None:
    split = split_torch_state_dict_into_shards(state, max_shard_size=max_shard_size)
    for filename, names in split.filename_to_tensors.items():
        save_file(
            {name: state[name].contiguous() for name in names},
            directory / filename,
            metadata={"format": "pt"},
        )
    if split.is_sharded:
        index = {"metadata": split.metadata, "weight_map": split.tensor_to_filename}
        (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
