"""``AutoLoader(task_name, model_name)``: a ready task head, its tokenizer and a predictor.

Where the weights come from, in order:

1. ``model_dir/<model_name>-<task>`` then ``model_dir/<model_name>`` (a fine-tuned variant first);
   ``model_name`` may itself be a local directory (then ``<dir>-<task>`` beside it is preferred);
2. the Hub through ``huggingface_hub``: the catalog entry's repository (or ``model_name`` when it is
   a Hub id), with ``revision`` pinning, the Hugging Face cache, and ``HF_HUB_OFFLINE=1`` respected.
   A fine-tuned ``<model_name>-<task>`` catalog entry is preferred when the catalog has one.

The head is the task's head kind composed with the checkpoint's family (``tasks.heads``). A base
checkpoint loads strictly into the head's backbone; only the head's own layers start from random
weights (and are logged).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import constants as hub_constants
from transformers import AutoTokenizer, PreTrainedTokenizerBase

import zoo
from tasks import get_task
from zoo.errors import CheckpointNotFoundError, ConfigError, UnknownNameError, ZooError
from zoo.family import UnsupportedHeadError, family_of, head_class, supported_heads
from zoo.heads.sentence_transformers import sentence_transformers_head_defaults
from zoo.loading import _HUB_ID, CONFIG_NAME, read_config_dict, resolve_checkpoint
from zoo.registry import zoo_class_for

from .catalog import CATALOG, CatalogEntry, find_entry
from .registry import ModelBundle, registered_factory, registered_models

# Loader keyword arguments; every other keyword is a config override of the model.
_HUB_KWARGS = ("revision", "cache_dir", "token")
# FlagAI's names for the label count, and the label names themselves.
_LABEL_KWARGS = ("class_num", "num_labels", "labels")


class ModelUnavailableError(CheckpointNotFoundError):
    """The model is neither in a local directory nor reachable on the Hub (or in its cache)."""


def family_of_directory(directory: Path) -> str:
    """The family of a checkpoint directory, from its ``config.json``."""
    model_class = zoo_class_for(read_config_dict(directory), source=str(directory / CONFIG_NAME))
    return family_of(model_class.config_class.model_type)


def _local_candidates(model_name: str, model_dir: str | os.PathLike | None, task: str | None) -> list[Path]:
    names = [f"{model_name}-{task}", model_name] if task else [model_name]
    candidates = [Path(model_dir) / name for name in names] if model_dir is not None else []
    path = Path(model_name).expanduser()
    if path.is_dir():
        if task:
            candidates.append(path.with_name(f"{path.name}-{task}"))
        candidates.append(path)
    return candidates


def resolve_model_directory(
    model_name: str,
    model_dir: str | os.PathLike | None = None,
    task: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
) -> Path:
    """The local directory holding ``model_name`` (see the module docstring for the order)."""
    for candidate in _local_candidates(model_name, model_dir, task):
        if (candidate / CONFIG_NAME).is_file():
            return candidate
    entry = find_entry(model_name)
    hub_ids: list[str] = []
    if entry is not None:
        variant = find_entry(f"{entry.name}-{task}") if task else None
        hub_ids = [*([variant.hub_id] if variant else []), entry.hub_id]
    elif "/" in model_name and _HUB_ID.match(model_name) and not Path(model_name).expanduser().exists():
        hub_ids = [model_name]
    if not hub_ids:
        if Path(model_name).expanduser().is_dir():
            raise CheckpointNotFoundError(f"{model_name} is a directory but holds no {CONFIG_NAME}")
        valid = sorted({*CATALOG, *registered_models()})
        where = f" (looked in {', '.join(str(c) for c in _local_candidates(model_name, model_dir, task))})"
        raise UnknownNameError(
            "model name" + (where if model_dir is not None else "") + "; give a catalog name, a local "
            "directory or a Hub id 'owner/name'. Model name",
            model_name,
            valid,
        )
    last_error: Exception | None = None
    for hub_id in hub_ids:
        try:
            return resolve_checkpoint(hub_id, revision=revision, cache_dir=cache_dir, token=token,
                                      local_files_only=hub_constants.HF_HUB_OFFLINE)  # fmt: skip
        except CheckpointNotFoundError as error:
            last_error = error
    local = f"{Path(model_dir) / model_name}" if model_dir is not None else f"<model_dir>/{model_name}"
    raise ModelUnavailableError(
        f"{model_name!r} ({', '.join(hub_ids)}) is not available: {str(last_error).rstrip('.')}. Without the "
        f"Hub, put the checkpoint in {local} and pass model_dir=..."
    ) from None


def load_tokenizer(directory: Path, model_name: str, entry: CatalogEntry | None = None, **hub_kwargs):
    """The tokenizer saved with the model, else the catalog entry's tokenizer repository."""
    sources: list[str | Path] = [directory]
    if entry is not None and entry.tokenizer:
        sources.append(entry.tokenizer_id)
    errors = []
    for source in sources:
        try:
            return AutoTokenizer.from_pretrained(source, **hub_kwargs)
        except (OSError, ValueError) as error:
            errors.append(f"{source}: {type(error).__name__}: {error}".splitlines()[0])
    raise CheckpointNotFoundError(
        f"no tokenizer for {model_name!r}: " + "; ".join(errors) + ". Save one into the model directory "
        "(tokenizer.save_pretrained(model_dir))."
    )


def _label_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    labels = overrides.pop("labels", None)
    count = overrides.pop("num_labels", None)
    class_num = overrides.pop("class_num", None)
    if count is not None and class_num is not None and count != class_num:
        raise ConfigError(f"class_num={class_num} and num_labels={count} disagree; give one of them")
    count = count if count is not None else class_num
    if labels is None:
        return {} if count is None else {"num_labels": int(count)}
    labels = [str(label) for label in labels]
    if len(set(labels)) != len(labels):
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        raise ConfigError(f"labels must be distinct; repeated: {duplicates}")
    if count is not None and count != len(labels):
        raise ConfigError(f"{len(labels)} labels given but class_num/num_labels={count}")
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }


class AutoLoader:
    """(task, model name) -> a task head with its tokenizer and predictor.

    ``AutoLoader("title-generation", model_name="t5-base-ch", model_dir="./checkpoints")``

    Keyword overrides: ``class_num`` / ``num_labels`` / ``labels`` (label names, in id order), any
    config field of the model (e.g. ``pooling="cls"``, ``hidden_dropout=0.2``); ``revision``,
    ``cache_dir``, ``token`` for the Hub; ``device`` and ``dtype`` for the loaded model.
    ``adapter``: a PEFT (LoRA) adapter directory or Hub id (``adapter_revision`` pins it) loaded onto
    the head with ``zoo.adapters.load_adapter``; the model is then a ``peft.PeftModel``.
    ``reheading=True``: a checkpoint saved with another task's head (e.g. an NER model for
    classification) gets a new head for this task on its backbone, the saved head left unread
    (without it, that is an ``UnsupportedHeadError``).
    """

    def __init__(
        self,
        task_name: str,
        model_name: str,
        model_dir: str | os.PathLike | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        adapter: str | os.PathLike | None = None,
        adapter_revision: str | None = None,
        reheading: bool = False,
        **overrides: Any,
    ):
        self.task = get_task(task_name)
        self.task_name = self.task.name
        self.model_name = model_name
        self.model_dir = model_dir
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        hub_kwargs = {k: overrides.pop(k) for k in _HUB_KWARGS if k in overrides}

        factory = registered_factory(model_name)
        if factory is not None:  # outside code decides how this name is built
            bundle = factory(model_name, self.device, task=self.task_name, **hub_kwargs, **overrides)
            self.directory, self.family, self.entry = None, None, find_entry(model_name)
            self.model, self.tokenizer = bundle.module, bundle.tokenizer
            self._attach_adapter(adapter, adapter_revision, hub_kwargs)
            return

        self.entry = find_entry(model_name)
        if self.entry is not None:  # known before any download
            self._check_head(self.entry.family, self.entry.supported_heads())
        self.directory = resolve_model_directory(model_name, model_dir, self.task_name, **hub_kwargs)
        self.family = family_of_directory(self.directory)
        self._check_head(
            self.family, self.entry.supported_heads() if self.entry else supported_heads(self.family)
        )
        replaced_head = self._check_saved_head(model_name, reheading, overrides)
        model_class = head_class(self.family, self.task.head)
        config_overrides = {**(self.entry.head_defaults if self.entry else {})}
        if self.task.head == "embedding":  # a sentence-transformers directory says how it pools
            config_overrides.update(sentence_transformers_head_defaults(self.directory))
        config_overrides.update(overrides)
        config_overrides.update(_label_overrides(config_overrides))
        try:
            self.model = model_class.from_pretrained(
                self.directory, dtype=dtype, ignore_checkpoint_weights=replaced_head, **config_overrides
            )
        except TypeError as error:
            fields = sorted(model_class.config_class.__dataclass_fields__)
            raise ConfigError(
                f"AutoLoader({self.task_name!r}, {model_name!r}): {error}; config fields: {', '.join(fields)}"
            ) from None
        self.model.to(self.device)
        self.tokenizer = load_tokenizer(self.directory, model_name, self.entry)
        # Decoder tokenizers often lack a padding token: batches pad with end-of-text (masked out),
        # and heads that pool the last real token need the model to know the padding id.
        if self.tokenizer.pad_token is None and self.tokenizer.eos_token is not None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if getattr(self.model.config, "pad_token_id", 0) is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self._attach_adapter(adapter, adapter_revision, hub_kwargs)

    def _attach_adapter(self, adapter, revision: str | None, hub_kwargs: dict[str, Any]) -> None:
        if adapter is None:
            return
        from zoo.adapters import load_adapter

        hub_kwargs = {k: v for k, v in hub_kwargs.items() if k != "revision"}  # that one pins the base
        self.model = load_adapter(self.model, adapter, revision=revision, **hub_kwargs)

    def _check_saved_head(
        self, model_name: str, reheading: bool, overrides: dict[str, Any]
    ) -> tuple[str, ...]:
        """A checkpoint saved with another task's head (an NER model for classification) would lend that
        head to this task under the wrong meaning (tags as classes): an error, unless ``reheading`` asks
        for a new head on its backbone. Returns the saved head's layer prefixes to leave unread."""
        data = read_config_dict(self.directory)
        saved = zoo_class_for(data, source=str(self.directory / CONFIG_NAME))
        saved_kind = getattr(saved, "head_kind", None)
        if saved_kind is None or saved_kind == self.task.head:
            return ()
        found = (
            f"{model_name!r} was saved with a {saved_kind} head ({(data.get('architectures') or ['?'])[0]})"
        )
        if not reheading:
            raise UnsupportedHeadError(
                f"{found}; task {self.task_name!r} needs a {self.task.head} head. Pass reheading=True to "
                f"train a new {self.task.head} head on its backbone (the saved head is dropped), or start "
                "from the base model it was fine-tuned from"
            )
        if not any(key in overrides for key in ("labels", "num_labels", "class_num")) and (
            self.task.head.startswith("sequence-")
        ):
            raise ConfigError(
                f"{found}: re-heading it for {self.task_name!r} needs the new head's labels (labels=[...])"
            )
        return tuple(saved._new_head_prefixes)

    def _check_head(self, family: str, offered: tuple[str, ...]) -> None:
        if self.task.head not in offered:
            raise UnsupportedHeadError(
                f"task {self.task_name!r} needs a {self.task.head} head, which {self.model_name!r} "
                f"(family {family}) does not have; its heads: {', '.join(offered)}"
            )

    def get_model(self) -> torch.nn.Module:
        return self.model

    def get_tokenizer(self) -> PreTrainedTokenizerBase:
        return self.tokenizer

    def get_predictor(self, **kwargs):
        """The task's batched predictor around this model and tokenizer."""
        return self.task.predictor(self.model, self.tokenizer, **kwargs)

    def __repr__(self) -> str:
        source = self.directory or "registered factory"
        return f"AutoLoader(task={self.task_name!r}, model={self.model_name!r}, from={source})"


__all__ = ["AutoLoader", "ModelUnavailableError", "ZooError", "resolve_model_directory"]


# -- named factories ------------------------------------------------------------------------------
def make_model(name: str, device: str | torch.device = "cpu", **model_kwargs: Any) -> ModelBundle:
    """Build the model called ``name``: a registered factory, else the default (``default_factory``)."""
    factory = registered_factory(name) or default_factory
    bundle = factory(name, torch.device(device), **model_kwargs)
    if not isinstance(bundle, ModelBundle):
        raise TypeError(f"the factory for {name!r} returned {type(bundle).__name__}, not a ModelBundle")
    return bundle


def default_factory(name: str, device: torch.device, task: str | None = None, **model_kwargs) -> ModelBundle:
    """A catalog name, local directory or Hub id: its task head when ``task`` is given, else the model
    class its ``config.json`` names (``zoo.load``)."""
    if task is not None:
        loader = AutoLoader(task, name, device=device, **model_kwargs)
        return ModelBundle(name, loader.get_model(), loader.get_tokenizer(), device)

    hub_kwargs = {k: model_kwargs.pop(k) for k in ("revision", "cache_dir", "token") if k in model_kwargs}
    model_dir = model_kwargs.pop("model_dir", None)
    try:
        directory = resolve_model_directory(name, model_dir=model_dir, **hub_kwargs)
    except UnknownNameError as error:
        valid = sorted({*error.valid, *registered_models()})
        raise UnknownNameError("model name", name, valid) from None
    module = zoo.load(directory, device=device, **model_kwargs)
    return ModelBundle(name, module, load_tokenizer(directory, name), device)
