"""How a zoo model loads: ``from_pretrained`` and strict weight loading (``PretrainedLoadingMixin``).

``from_pretrained`` builds the model on the meta device and assigns memory-mapped safetensors
tensors to it, so nothing is random-initialised on the way. A directory in the reference layout of
the family (what transformers saves: the Hub layout of ``gpt2``, ``bert-base-uncased``,
``roberta-base``) is converted on load through the family's weight map. ``load_weights`` accounts for
every name: a missing, unexpected or mis-shaped weight is a :class:`WeightsMismatchError` unless
missing ones are allowed (then they are initialised and reported in a :class:`LoadReport`).

Finding a checkpoint and reading its files is :mod:`zoo.loading`'s; this module is the model side.
The mixin is composed into :class:`zoo.modeling_base.ZooPreTrainedModel` ahead of transformers'
``PreTrainedModel`` and reads the class attributes declared there (``weight_maps``,
``_optional_checkpoint_prefixes``, ``_new_head_prefixes``).
"""

from __future__ import annotations

import inspect
import logging
import os
import tempfile
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import torch
from huggingface_hub.errors import StrictDataclassError
from transformers import GenerationConfig

from .configuration import ZooConfig
from .errors import ConfigError, WeightsMismatchError
from .gguf import gguf_path, open_gguf
from .loading import CONFIG_NAME, open_weights, read_config_dict, resolve_checkpoint
from .registry import config_builders, matching_builder
from .weights import Lazy

logger = logging.getLogger("zoo")

# Keyword arguments the transformers Auto classes and hub plumbing pass along; they need no action here.
_PLUMBING_KWARGS = {
    "_from_auto",
    "_from_pipeline",
    "_commit_hash",
    "trust_remote_code",
    "adapter_kwargs",
    "code_revision",
    "force_download",
    "proxies",
    "use_safetensors",
    # The zoo's loader always builds on the meta device and memory-maps the weights.
    "low_cpu_mem_usage",
}


@dataclass
class LoadReport:
    """What ``load_weights`` did: every name is accounted for."""

    loaded: list[str] = field(default_factory=list)
    initialized: list[str] = field(default_factory=list)  # missing, random-initialised on request
    ignored: list[str] = field(default_factory=list)  # head weights a base model has no use for


class PretrainedLoadingMixin:
    """``from_pretrained``, config resolution and strict weight loading of :class:`ZooPreTrainedModel`."""

    # -- from_pretrained and the config it builds -------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *model_args,
        config: ZooConfig | None = None,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        allow_missing_weights: bool = False,
        attn_implementation: str | None = None,
        ignore_checkpoint_weights: tuple[str, ...] = (),
        **kwargs,
    ) -> Self:
        """Load from a local directory (zoo or reference layout) or a Hub id.

        Arguments of the class constructor (e.g. ``add_pooling_layer=False``) are passed to it.
        ``allow_missing_weights=True`` random-initialises weights the checkpoint lacks (they are
        logged); otherwise any missing, unexpected or mis-shaped weight is a
        :class:`WeightsMismatchError`. ``ignore_checkpoint_weights``: zoo-name prefixes of checkpoint
        weights to leave unread (re-heading: another head's ``classifier.``), so the class's own new
        head layers are initialised in their place. Other transformers options (``device_map``, quantization, ...)
        are handed to ``transformers.PreTrainedModel.from_pretrained`` for zoo-layout checkpoints.
        """
        dtype = kwargs.pop("torch_dtype", dtype)
        gguf_file = kwargs.pop("gguf_file", None)
        if device is None and (single := _single_device(kwargs.get("device_map"))) is not None:
            device = single  # the whole model on one device: the zoo's own (strict) loader does that
            del kwargs["device_map"]
        for key in _PLUMBING_KWARGS:
            kwargs.pop(key, None)
        hub_kwargs = dict(
            revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only
        )
        stack = ExitStack()
        with stack:
            if gguf_file is not None:
                config_file = gguf_path(pretrained_model_name_or_path, gguf_file, **hub_kwargs)
                data, tensors = stack.enter_context(open_gguf(config_file))
                directory = config_file.parent
            else:
                directory = resolve_checkpoint(pretrained_model_name_or_path, **hub_kwargs)
                data, config_file, tensors = read_config_dict(directory), directory / CONFIG_NAME, None
            reference_type = cls.reference_type_of(data)
            config_fields = set(cls.config_class.__dataclass_fields__) | {"num_labels"}
            overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in config_fields}
            init_parameters = set(inspect.signature(cls.__init__).parameters) - {"self", "config"}
            model_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in init_parameters}
            if config is None:
                config = cls._config_from_dict(data, config_file, overrides)
            else:
                config = _with_overrides(config, overrides, config_file)
            if attn_implementation is not None:
                config._attn_implementation = attn_implementation
            if isinstance(dtype, str) and dtype != "auto":
                dtype = getattr(torch, dtype)
            dtype = None if dtype == "auto" else dtype

            # A quantised checkpoint (torchao, bitsandbytes) holds packed tensors and their scales under
            # names only transformers' quantizer knows: its loader rebuilds the quantised modules.
            if kwargs or (data.get("quantization_config") and reference_type is None and gguf_file is None):
                if model_args or gguf_file is not None:
                    raise TypeError(
                        f"{cls.__name__}.from_pretrained got unsupported arguments {sorted(kwargs)} with "
                        f"{'positional arguments' if model_args else 'a GGUF file'}; they need a safetensors checkpoint"
                    )
                if reference_type is None:
                    return cls._transformers_loader(directory, config, dtype, allow_missing_weights, kwargs)
                # transformers' loader reads the zoo's names: convert the transformers layout once, into a
                # temporary directory (removed at once; a weight still memory-mapped from it stays valid).
                logger.info(
                    "%s: converting the %s layout for transformers' loader", directory, reference_type
                )
                with tempfile.TemporaryDirectory(prefix="zoo-layout-", ignore_cleanup_errors=True) as tmp:
                    source = cls.from_pretrained(directory, allow_missing_weights=allow_missing_weights)
                    source.save_pretrained(tmp, layout="zoo")
                    del source
                    loaded = cls._transformers_loader(Path(tmp), config, dtype, allow_missing_weights, kwargs)
                model = loaded[0] if isinstance(loaded, tuple) else loaded
                model.config.name_or_path = str(pretrained_model_name_or_path)
                return loaded

            with torch.device("meta"):
                model = cls(config, **model_kwargs)
            if tensors is None:
                tensors = stack.enter_context(open_weights(directory))
            model._load_checkpoint(
                tensors,
                reference_type,
                str(directory),
                not allow_missing_weights,
                dtype,
                ignore_checkpoint_weights,
            )
            model.config.name_or_path = str(pretrained_model_name_or_path)
            if model.can_generate() and (directory / "generation_config.json").is_file():
                model.generation_config = GenerationConfig.from_pretrained(directory)
            model.eval()
            return model.to(device) if device is not None else model

    @classmethod
    def _transformers_loader(cls, directory: Path, config, dtype, allow_missing_weights: bool, kwargs):
        """transformers' ``from_pretrained`` (device maps, quantizers), held to the zoo's strictness: a
        weight it would random-initialise is a :class:`WeightsMismatchError` unless allowed."""
        wants_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(
            directory, config=config, dtype=dtype, output_loading_info=True, **kwargs
        )
        new_head = tuple(cls._new_head_prefixes)
        missing = [name for name in info.get("missing_keys", ()) if not name.startswith(new_head)]
        unexpected = [
            name
            for name in info.get("unexpected_keys", ())
            if not name.startswith(cls._optional_checkpoint_prefixes)
        ]
        mismatched = [(name, tuple(got), tuple(want)) for name, got, want in info.get("mismatched_keys", ())]
        if unexpected or mismatched or (missing and not allow_missing_weights):
            raise WeightsMismatchError(
                missing=missing,
                unexpected=unexpected,
                mismatched=mismatched,
                source=str(directory),
                hint="pass allow_missing_weights=True to random-initialise missing ones" if missing else "",
            )
        if missing:
            logger.warning(
                "random-initialised %d weights missing from %s: %s", len(missing), directory, missing
            )
        return (model, info) if wants_info else model

    def _load_checkpoint(
        self,
        tensors: dict[str, Lazy],
        reference_type: str | None,
        source: str,
        strict: bool,
        dtype,
        ignore: tuple[str, ...] = (),
    ) -> LoadReport:
        """Convert (reference layouts) and strictly load checkpoint tensors into this meta-built model."""
        converted = tensors
        if reference_type is not None:
            weight_map = self.weight_maps[reference_type]
            converted, unknown = weight_map.to_zoo(tensors, source=source)
            if unknown:
                raise WeightsMismatchError(
                    unexpected=unknown,
                    source=source,
                    hint=f"these names are not in the {reference_type} weight map of {type(self).__name__}",
                )
        if ignore:
            converted = {
                name: tensor for name, tensor in converted.items() if not name.startswith(tuple(ignore))
            }
        try:
            return self.load_weights(converted.items(), strict=strict, source=source, dtype=dtype)
        except WeightsMismatchError as error:
            if reference_type is None:
                raise
            # Name what is wrong as the checkpoint names it, not by the zoo names it converts to.
            raise self.weight_maps[reference_type].reference_error(error, tensors, self.config) from None

    @classmethod
    def reference_type_of(cls, data: dict[str, Any]) -> str | None:
        """The ``weight_maps`` key converting a checkpoint with this ``config.json``; None for the zoo layout.

        Families whose reference configs carry no ``model_type`` (FlagAI's GLM) override this.
        """
        model_type = data.get("model_type")
        if model_type in cls.weight_maps:
            return model_type
        builder = cls._foreign_config_builder(data)
        return builder.weight_layout if builder is not None else None

    @classmethod
    def _foreign_config_builder(cls, data: dict[str, Any]):
        """The registered config builder for a config.json no family of the zoo recognises, if any."""
        config_class = cls.config_class
        if data.get("model_type") in (
            config_class.model_type,
            *config_class.zoo_model_types,
            *cls.weight_maps,
        ):
            return None
        return matching_builder(data)

    @classmethod
    def _config_from_dict(cls, data: dict[str, Any], source: Path, overrides: dict[str, Any]) -> ZooConfig:
        config_class = cls.config_class
        model_type = cls.reference_type_of(data) or data.get("model_type", config_class.model_type)
        try:
            if (builder := cls._foreign_config_builder(data)) is not None:
                config = builder.build(data)
                if not isinstance(config, config_class):
                    raise ConfigError(
                        f"{source}: config builder {builder.name!r} built a {type(config).__name__}, "
                        f"but {cls.__name__} needs a {config_class.__name__}"
                    )
                config = _with_overrides(config, overrides, source)
            elif model_type in cls.weight_maps:
                config = _with_overrides(config_class.from_reference(data), overrides, source)
            elif model_type in (config_class.model_type, *config_class.zoo_model_types):
                # Overrides go through __init__ so they are validated like the file's own fields.
                config = config_class.from_dict(_merged(data, overrides))
            else:
                valid = sorted({config_class.model_type, *config_class.zoo_model_types, *cls.weight_maps})
                tried = ", ".join(b.name for b in config_builders()) or "none registered"
                raise ConfigError(
                    f"{source}: model_type {model_type!r} cannot be loaded by {cls.__name__}; "
                    f"it loads model_type {', '.join(map(repr, valid))} (config builders tried: {tried})"
                )
        except (StrictDataclassError, ValueError, TypeError) as error:
            if isinstance(error, ConfigError) and str(source) in str(error):
                raise
            raise ConfigError(f"{source}: {error}") from None  # every config error names its file
        return config

    # -- strict weight loading --------------------------------------------------------------------
    def load_weights(
        self,
        weights: Iterable[tuple[str, torch.Tensor | Lazy]],
        *,
        strict: bool = True,
        source: str = "weights",
        dtype: torch.dtype | None = None,
    ) -> LoadReport:
        """Load ``(zoo name, tensor)`` pairs; every parameter must be covered and every name used.

        Names may carry the head-model prefix (``model.``) or not: a base checkpoint loads into a
        head model's base, and a head checkpoint into a base model (its head weights are ignored and
        reported). Tied parameters may come under either of their names. With ``strict=False``
        missing parameters are random-initialised and listed in the report.
        """
        expected = dict(self.named_parameters(remove_duplicate=False))
        tied = dict(getattr(self, "all_tied_weights_keys", None) or {})  # target -> source
        prefix = self.base_model_prefix + "."
        is_head_model = self.base_model is not self
        pairs = list(weights)
        from_head_checkpoint = any(name.startswith(prefix) for name, _ in pairs)

        report = LoadReport()
        resolved: dict[str, torch.Tensor | Lazy] = {}
        unexpected = []
        for name, tensor in pairs:
            if not is_head_model and name.startswith(prefix):
                name = name[len(prefix) :]
            elif is_head_model and name not in expected and prefix + name in expected:
                name = prefix + name
            if name in tied:  # a tied alias: use it for the source only if the source is absent
                name = tied[name] if tied[name] not in resolved else None
                if name is None:
                    continue
            if name in expected:
                resolved.setdefault(name, tensor)
            elif (not is_head_model and from_head_checkpoint) or name.startswith(
                self._optional_checkpoint_prefixes
            ):
                report.ignored.append(name)
            else:
                unexpected.append(name)

        state: dict[str, torch.Tensor] = {}
        mismatched = []
        for name, tensor in resolved.items():
            try:
                value = tensor() if callable(tensor) else tensor
            except RuntimeError:  # a fused tensor whose parts cannot be concatenated
                mismatched.append((name, None, tuple(expected[name].shape)))
                continue
            if value.shape != expected[name].shape:
                mismatched.append((name, tuple(value.shape), tuple(expected[name].shape)))
                continue
            state[name] = value.to(dtype) if dtype is not None and value.is_floating_point() else value
        non_finite = [name for name, value in state.items() if _has_non_finite(value)]
        if non_finite:
            logger.warning(
                "%s holds NaN or infinite values in %d weight(s) (a diverged or damaged save?): %s",
                source,
                len(non_finite),
                non_finite,
            )
        missing = [
            name
            for name in expected
            if name not in state and name not in tied and name not in {n for n, _, _ in mismatched}
        ]
        required = [name for name in missing if not name.startswith(self._new_head_prefixes)]
        if unexpected or mismatched or (required and strict):
            raise WeightsMismatchError(
                missing=required if strict else missing,
                unexpected=unexpected,
                mismatched=mismatched,
                source=source,
                hint="pass allow_missing_weights=True (load_weights(strict=False)) to random-initialise missing ones"
                if required
                else "",
            )

        on_meta = any(p.is_meta for p in expected.values())
        self.load_state_dict(state, strict=False, assign=on_meta)
        report.loaded = sorted(state)
        if missing:
            self._initialize_missing(missing, dtype)
            report.initialized = missing
            if required:
                logger.warning(
                    "random-initialised %d weights missing from %s: %s", len(required), source, required
                )
            if len(required) < len(missing):
                new = [name for name in missing if name not in required]
                logger.warning(
                    "%s: initialised %d new head weights not in %s (train them): %s",
                    type(self).__name__,
                    len(new),
                    source,
                    new,
                )
        self._materialize_buffers()
        self.tie_weights()
        if report.ignored:
            log = logger.warning if self._new_head_prefixes else logger.info
            log("ignored %d head weights of %s: %s", len(report.ignored), source, report.ignored)
        return report

    def _initialize_missing(self, missing: list[str], dtype: torch.dtype | None) -> None:
        loaded = {name for name, _ in self.named_parameters() if name not in missing}
        for name, param in self.named_parameters():
            if name in loaded:
                param._is_hf_initialized = True
        for name in missing:
            module_name, _, param_name = name.rpartition(".")
            module = self.get_submodule(module_name)
            param = getattr(module, param_name)
            if param.is_meta:
                empty = torch.empty(param.shape, dtype=dtype or torch.get_default_dtype())
                setattr(module, param_name, torch.nn.Parameter(empty, requires_grad=param.requires_grad))
        for module in self.modules():
            self._init_weights(module)
        for _, param in self.named_parameters():
            param.__dict__.pop("_is_hf_initialized", None)

    def _materialize_buffers(self) -> None:
        """Recompute non-persistent buffers left on the meta device by a meta build (e.g. RoPE tables)."""
        for module in self.modules():
            if any(b.is_meta for b in module.buffers(recurse=False)) and hasattr(module, "reset_buffers"):
                module.reset_buffers(device="cpu")

    # -- adapters ---------------------------------------------------------------------------------
    def load_adapter(
        self, peft_model_id=None, adapter_name=None, peft_config=None, adapter_state_dict=None, **kwargs
    ):
        """transformers' ``model.load_adapter``, also for adapters trained on transformers' class of this
        architecture (``q_proj`` / ``k_proj`` / ``v_proj``: renamed and fused exactly, ``zoo/adapters.py``)."""
        if peft_model_id is not None and peft_config is None and adapter_state_dict is None:
            from .adapters import ADAPTER_WEIGHTS, adapter_to_zoo, names_transformers_modules, read_adapter

            if (Path(peft_model_id) / ADAPTER_WEIGHTS).is_file():
                config, state = read_adapter(peft_model_id)
                if names_transformers_modules(self, state):
                    config, state = adapter_to_zoo(self, config, state)
                    peft_model_id = None
                    kwargs.update(peft_config=config, adapter_state_dict=state)
        return super().load_adapter(
            peft_model_id,
            adapter_name=adapter_name,
            peft_config=kwargs.pop("peft_config", peft_config),
            adapter_state_dict=kwargs.pop("adapter_state_dict", adapter_state_dict),
            **kwargs,
        )


def _has_non_finite(tensor: torch.Tensor) -> bool:
    """Whether a floating tensor holds NaN or inf, in one pass over its storage (about 25 ms for GPT-2's
    124M weights): NaN and inf survive a sum; only a sum that is not finite (finite values can overflow
    it) is checked element by element."""
    if not tensor.is_floating_point() or tensor.numel() == 0 or tensor.is_meta:
        return False
    if tensor.dim() == 2 and not tensor.is_contiguous() and tensor.t().is_contiguous():
        tensor = tensor.t()  # a transposed view (GPT-2's Conv1D weights): read in storage order
    if bool(torch.isfinite(tensor.sum(dtype=torch.float32))):
        return False
    return not bool(torch.isfinite(tensor).all())


def _single_device(device_map) -> torch.device | None:
    """The one device a ``device_map`` puts everything on (``"cpu"``, ``"cuda:0"``, ``{"": 0}``); else None."""
    if isinstance(device_map, (str, int, torch.device)) and device_map not in (
        "auto",
        "balanced",
        "sequential",
    ):
        return torch.device(device_map)
    if isinstance(device_map, dict) and set(device_map) == {""}:
        return torch.device(device_map[""])
    return None


def _with_overrides(config: ZooConfig, overrides: dict[str, Any], source: Path) -> ZooConfig:
    if not overrides:
        return config
    try:
        return type(config).from_dict(_merged(config.to_dict(), overrides))
    except (StrictDataclassError, ValueError, TypeError) as error:
        raise ConfigError(f"{source} with overrides {overrides}: {error}") from None


def _merged(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``data`` updated by ``overrides``; a new ``num_labels`` replaces the label names it contradicts."""
    if "num_labels" in overrides and "id2label" not in overrides:
        data = {k: v for k, v in data.items() if k not in ("id2label", "label2id")}
    return {**data, **overrides}
