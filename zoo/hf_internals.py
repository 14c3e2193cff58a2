"""Every transformers internal zoo touches, in one module.

transformers renames its internals between minor releases (5.24 moved the KV cache from
``past_key_values=`` to ``cache=`` in ``forward``, in model outputs and in the mask helpers, and a
forward that took only the old name decoded with no history: wrong tokens, no error). So everything
below that is not transformers' public API (caches, the mask helpers, output capturing, the
gradient-checkpointing layer, the attention and RoPE registries, the loss functions, the GGUF and
tiktoken readers, the Auto classes' model-type tables, Trainer's special-token alignment, the private
generation hooks) is imported or overridden here and nowhere else in the package;
``tests/test_internals.py`` fails on a direct import elsewhere. An upstream rename is one edit here.

Three guards make the next rename fail loudly instead of generating garbage:

* :func:`checked_forward` wraps the forward of every zoo model and head: an argument the forward does
  not declare and transformers does not define as a pass-through keyword (``TransformersKwargs``) is a
  ``TypeError`` naming it, instead of vanishing into ``**kwargs``.
* :class:`ZooGenerationMixin`, the generation base of every zoo generative class, raises when
  ``generate`` does not hand the cache a forward returned back to the next step.
* :func:`warn_if_untested` (called on ``import zoo``) warns once when the installed transformers is
  outside the range this package was tested with.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import torch
import transformers
from packaging.version import Version
from transformers import CompileConfig, GenerationMixin
from transformers.cache_utils import Cache, DynamicCache, EncoderDecoderCache, StaticCache
from transformers.loss.loss_utils import (
    LOSS_MAPPING,
    ForCausalLMLoss,
    ForSequenceClassificationLoss,
    ForTokenClassification,
    fixed_cross_entropy,
)
from transformers.masking_utils import (
    create_bidirectional_mask,
    create_bidirectional_sliding_window_mask,
    create_causal_mask,
    create_sliding_window_causal_mask,
    find_packed_sequence_indices,
    packed_sequence_mask_function,
)
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS, dynamic_rope_update
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils.generic import TransformersKwargs, can_return_tuple
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

__all__ = [
    "ALL_ATTENTION_FUNCTIONS",
    "BLOCK_MASK_ATTENTION",
    "LOSS_MAPPING",
    "ROPE_INIT_FUNCTIONS",
    "TESTED_TRANSFORMERS",
    "Cache",
    "DynamicCache",
    "EncoderDecoderCache",
    "ForCausalLMLoss",
    "ForSequenceClassificationLoss",
    "ForTokenClassification",
    "ZooGenerationMixin",
    "GradientCheckpointingLayer",
    "OutputRecorder",
    "StaticCache",
    "bidirectional_mask",
    "bidirectional_sliding_window_mask",
    "can_return_tuple",
    "capture_outputs",
    "cache_key_length",
    "causal_mask",
    "checked_forward",
    "compile_config_for_decoding",
    "convert_tiktoken_to_fast",
    "dynamic_rope_update",
    "fixed_cross_entropy",
    "forward_builds_mask",
    "list_model_type",
    "load_gguf_checkpoint",
    "packed_bidirectional_mask",
    "packed_sequence_ids",
    "require_full_cache",
    "sliding_window_causal_mask",
    "special_tokens_aligned_for_use",
    "warn_if_untested",
]

# The transformers releases this package is tested with: [lowest, first untested). Keep in step with
# pyproject.toml and constraints.txt (tests/test_internals.py checks that they agree).
TESTED_TRANSFORMERS = ("5.24.0", "5.25.0")

# -- versions -------------------------------------------------------------------------------------
_warned_untested = False


def warn_if_untested(version: str | None = None) -> bool:
    """Warn once (``UserWarning``) if transformers ``version`` (default: the installed one) is outside
    :data:`TESTED_TRANSFORMERS`; returns whether it is outside."""
    global _warned_untested
    installed = Version(version or transformers.__version__)
    lowest, first_untested = map(Version, TESTED_TRANSFORMERS)
    outside = not (lowest <= installed < first_untested)
    if outside and not _warned_untested:
        _warned_untested = True
        warnings.warn(
            f"zoo is tested with transformers >={lowest},<{first_untested}; transformers {installed} is "
            "installed. Its internals change between minor releases: install the tested set with "
            "`pip install -c constraints.txt -e .` (see the README, 'Dependencies').",
            UserWarning,
            stacklevel=2,
        )
    return outside


# -- the KV cache argument ------------------------------------------------------------------------
# What transformers calls the cache in forward signatures and model outputs, and its old names: a
# caller (PEFT's prefix tuning, code written for transformers < 5.24) may still pass those.
CACHE_ARGUMENT = "cache"
_DEPRECATED_CACHE_ARGUMENTS = ("past_key_values", "cache_params")
# Keyword arguments any forward may receive and pass on: transformers' own (output flags,
# num_items_in_batch, flash-attention varlen lengths), plus return_dict.
PASS_THROUGH_KWARGS = frozenset(TransformersKwargs.__annotations__) | {"return_dict"}


def checked_forward(forward: Callable | None = None, *, ignored: tuple[str, ...] = ()) -> Callable:
    """Decorate a model's ``forward``: old cache names become ``cache`` (with a ``FutureWarning``, as
    transformers does), and any other keyword the forward neither declares nor passes through is a
    ``TypeError`` naming it and what is valid, never silently dropped into ``**kwargs``.

    ``ignored`` names are dropped on purpose (``@checked_forward(ignored=("labels",))``): arguments a
    caller is known to hand this module although another consumes them.
    """
    if forward is None:
        return functools.partial(checked_forward, ignored=ignored)
    signature = inspect.signature(forward)
    declared = {
        name
        for name, parameter in signature.parameters.items()
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    } - {"self"}
    takes_cache = CACHE_ARGUMENT in declared

    @functools.wraps(forward)
    def wrapper(self, *args, **kwargs):
        for name in ignored:
            kwargs.pop(name, None)
        for old in _DEPRECATED_CACHE_ARGUMENTS:
            if old in kwargs and takes_cache:
                value = kwargs.pop(old)
                if kwargs.get(CACHE_ARGUMENT) is not None:
                    raise TypeError(
                        f"{type(self).__name__}.forward got both `{CACHE_ARGUMENT}` and `{old}`; "
                        f"pass `{CACHE_ARGUMENT}` only"
                    )
                warnings.warn(
                    f"`{old}` is deprecated (transformers >= 5.24); pass `{CACHE_ARGUMENT}=` to "
                    f"{type(self).__name__}.forward",
                    FutureWarning,
                    stacklevel=2,
                )
                kwargs[CACHE_ARGUMENT] = value
        unknown = [name for name in kwargs if name not in declared and name not in PASS_THROUGH_KWARGS]
        if unknown:
            raise TypeError(_unknown_arguments_message(type(self).__name__, unknown, declared))
        if torch.compiler.is_compiling():
            return forward(self, *args, **kwargs)
        try:
            return forward(self, *args, **kwargs)
        except (IndexError, RuntimeError) as error:
            # torch's "index out of range in self" says nothing of which input: name it, at no cost to
            # the calls that succeed (the inputs are read only after a failure).
            _explain_input_failure(self, args, kwargs, error)
            raise

    return wrapper


def _explain_input_failure(model, args, kwargs, error: Exception) -> None:
    """Raise :class:`~zoo.errors.ModelInputError` from ``error`` if ``model``'s inputs explain it."""
    from .inputs import check_model_inputs

    input_ids = kwargs.get("input_ids", args[0] if args else None)
    config = getattr(model, "config", None)
    if not isinstance(input_ids, torch.Tensor) or input_ids.is_floating_point() or config is None:
        return
    try:
        check_model_inputs(config, input_ids, kwargs.get("attention_mask"))
    except ValueError as explained:
        raise explained from error


def _unknown_arguments_message(owner: str, unknown: list[str], declared: set[str]) -> str:
    valid = sorted(declared | PASS_THROUGH_KWARGS)
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=2)
        parts.append(f"{name!r}" + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""))
    return (
        f"{owner}.forward got argument(s) it does not use: {', '.join(parts)}. Dropping them silently "
        f"could change results; valid: {', '.join(valid)}"
    )


# -- readers of other formats (imported when used: they need optional packages) ------------------
def load_gguf_checkpoint(path: str, **options):
    """transformers' GGUF reader (needs the ``gguf`` package): ``{"config": ..., "tensors": ...}``."""
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint as load

    return load(path, **options)


def convert_tiktoken_to_fast(encoding, directory: str) -> None:
    """Write a tiktoken ``encoding`` as a ``tokenizer.json`` into ``directory`` (needs ``tiktoken``)."""
    from transformers.integrations.tiktoken import convert_tiktoken_to_fast as convert

    convert(encoding, directory)


# -- Auto classes ---------------------------------------------------------------------------------
def list_model_type(auto_class, model_type: str, model_class: type) -> None:
    """List ``model_type`` among ``auto_class``'s model types, beside the registration that loads it.

    ``AutoModelForX.register`` makes the Auto class load a custom model type but leaves it out of the
    model-type tables (``MODEL_FOR_CAUSAL_LM_MAPPING_NAMES``, ...) that clients read to tell what a
    model is: lm-eval's ``HFLM`` then warns "neither CausalLM nor Seq2SeqLM" and runs a T5 as a
    causal LM. The entry names the zoo class by its module path, so nothing can mistake it for a
    transformers class; loading still goes through the registration.
    """
    names = auto_class._model_mapping._model_mapping  # the model-type -> class-name table itself
    names[model_type] = f"{model_class.__module__}.{model_class.__qualname__}"


# -- caches ---------------------------------------------------------------------------------------
def cache_key_length(cache: Cache | None, query_length: int, layer_idx: int = 0) -> int:
    """How many key positions attention sees at ``layer_idx`` after ``cache`` takes ``query_length`` new
    tokens: cached + new for a dynamic cache, the allocated length for a static one (as the masks
    transformers builds for it)."""
    if cache is None:
        return query_length
    return cache.get_mask_sizes(query_length, layer_idx)[0]


def require_full_cache(model, cache: Cache | None, why: str) -> None:
    """Raise :class:`~zoo.errors.UnsupportedCacheError` if ``cache`` has a sliding-window layer: a model
    whose own mask lets every later position see the first ones needs all their keys kept."""
    if cache is not None and any(cache.is_sliding):
        from .errors import UnsupportedCacheError

        raise UnsupportedCacheError(
            f"{type(model).__name__} needs every cached key ({why}); a {type(cache).__name__} with "
            "sliding-window layers drops the earliest. Generate with the default dynamic cache or "
            'cache_implementation="static"'
        )


def _padding_mask_over_cache(inputs_embeds: torch.Tensor, attention_mask, cache, **_):
    if attention_mask is None:
        return None
    key_length = cache_key_length(cache, inputs_embeds.shape[1])
    return torch.nn.functional.pad(attention_mask, (0, key_length - attention_mask.shape[-1]))


def forward_builds_mask(model_class: type) -> type:
    """Class decorator: ``generate`` hands ``model_class.forward`` the 2-D padding mask with any cache.

    With a static cache, ``generate`` builds the 4-D mask ahead of ``forward``
    (``create_masks_for_generate``), causal, and a forward takes a 4-D mask as is; a model whose mask
    is not causal (GLM's context, UniLM's source are attended bidirectionally) builds it itself. The
    padding mask comes extended over the keys :func:`cache_key_length` counts (a static cache's
    allocated length), so that every decode step has the same shapes and compiles to one graph.
    """
    model_class.create_masks_for_generate = staticmethod(_padding_mask_over_cache)
    return model_class


# -- masks ----------------------------------------------------------------------------------------
def causal_mask(config, inputs_embeds: torch.Tensor, attention_mask, cache: Cache | None, **options):
    """transformers' causal mask for the configured attention implementation (``options``:
    ``position_ids``, ``block_sequence_ids``, ``allow_is_causal_skip``, ...)."""
    return create_causal_mask(
        config=config, inputs_embeds=inputs_embeds, attention_mask=attention_mask, cache=cache, **options
    )


def sliding_window_causal_mask(config, inputs_embeds: torch.Tensor, attention_mask, cache, **options):
    """As :func:`causal_mask`, restricted to ``config.sliding_window`` keys back."""
    return create_sliding_window_causal_mask(
        config=config, inputs_embeds=inputs_embeds, attention_mask=attention_mask, cache=cache, **options
    )


def bidirectional_mask(config, inputs_embeds: torch.Tensor, attention_mask, cache=None, **options):
    """transformers' bidirectional (padding-only) mask; ``encoder_hidden_states`` for cross-attention."""
    return create_bidirectional_mask(
        config=config, inputs_embeds=inputs_embeds, attention_mask=attention_mask, cache=cache, **options
    )


def bidirectional_sliding_window_mask(
    config, inputs_embeds: torch.Tensor, attention_mask, cache=None, **options
):
    """As :func:`bidirectional_mask`, restricted to keys at most ``config.sliding_window`` positions away on
    either side (ModernBERT's local layers)."""
    return create_bidirectional_sliding_window_mask(
        config=config, inputs_embeds=inputs_embeds, attention_mask=attention_mask, cache=cache, **options
    )


# -- packed rows (several records in one row, tasks.packing) -------------------------------------
# The attention implementations whose masks transformers builds from a mask function, so a packed
# row's block-diagonal mask reaches attention as it is; flash attention is handed a padding mask only.
BLOCK_MASK_ATTENTION = ("sdpa", "eager", "flex_attention")


def packed_sequence_ids(position_ids, attention_mask=None, cache: Cache | None = None):
    """(batch, seq) index of the record each token belongs to, when ``position_ids`` restart inside a
    row of a packed batch (no 2-D ``attention_mask``, no ``cache``): the rule transformers' causal
    masks detect packing by. None when no row restarts or the batch is not packed."""
    if position_ids is None or attention_mask is not None or cache is not None:
        return None
    return find_packed_sequence_indices(position_ids)


def packed_bidirectional_mask(
    config,
    inputs_embeds: torch.Tensor,
    attention_mask,
    position_ids,
    cache: Cache | None = None,
    sliding_window: bool = False,
    **options,
):
    """:func:`bidirectional_mask`, confined to each record when the batch is packed
    (:func:`packed_sequence_ids`): a block-diagonal bidirectional mask, as ``create_causal_mask`` makes
    a block-diagonal causal one for decoders. ``create_bidirectional_mask`` does not read positions.
    ``sliding_window``: :func:`bidirectional_sliding_window_mask` instead (the band of ``config.sliding_window``)."""
    if position_ids is not None and position_ids.shape[0] != inputs_embeds.shape[0]:
        position_ids = position_ids.expand(inputs_embeds.shape[0], -1)
    sequence_ids = packed_sequence_ids(position_ids, attention_mask, cache)
    unpacked = bidirectional_sliding_window_mask if sliding_window else bidirectional_mask
    if sequence_ids is None:
        return unpacked(config, inputs_embeds, attention_mask, cache, **options)
    implementation = config._attn_implementation
    if implementation not in BLOCK_MASK_ATTENTION:
        from .errors import PackingError

        raise PackingError(
            f"a packed batch (position_ids restarting inside a row, no attention_mask) needs attention that "
            f"takes a block-diagonal mask; attn_implementation={implementation!r} takes a padding mask "
            f"only, so records would attend to each other. Valid: {', '.join(BLOCK_MASK_ATTENTION)}"
        )
    return unpacked(
        config,
        inputs_embeds,
        None,
        None,
        and_mask_function=packed_sequence_mask_function(sequence_ids),
        **options,
    )


# -- Trainer --------------------------------------------------------------------------------------
_logger = logging.getLogger("zoo")


@contextlib.contextmanager
def special_tokens_aligned_for_use(model) -> Iterator[None]:
    """While ``Trainer.train`` runs, align only the special tokens ``model`` uses with its tokenizer.

    ``Trainer.train`` copies the tokenizer's pad, bos and eos ids into the model's config (and warns
    that it did). A model that cannot generate uses none but pad (decoder classifiers pool the last
    non-padding token), so copying a WordPiece tokenizer's ``[SEP]`` as ``eos_token_id`` into a BERT
    classifier's config writes an id that means nothing there. Generative models keep transformers'
    alignment.
    """
    import transformers.trainer as trainer_module

    original = trainer_module.align_special_tokens

    def align(model, processing_class):
        can_generate = getattr(model, "can_generate", None)
        if callable(can_generate) and can_generate():
            return original(model, processing_class)
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        pad = getattr(tokenizer, "pad_token_id", None)
        config = model.config.get_text_config()
        if pad is not None and getattr(config, "pad_token_id", None) != pad:
            _logger.info("pad_token_id of %s set to the tokenizer's: %s", type(model).__name__, pad)
            config.pad_token_id = pad

    trainer_module.align_special_tokens = align
    try:
        yield
    finally:
        trainer_module.align_special_tokens = original


def compile_config_for_decoding(
    backend: str = "inductor", fullgraph: bool = True, dynamic: bool | None = None, **options
) -> CompileConfig:
    """A ``CompileConfig`` for ``generate(..., cache_implementation="static", compile_config=...)`` that
    compiles the decode step on every device, the CPU included (transformers compiles it on accelerators
    only unless told otherwise). ``dynamic=None``: a sliding-window static cache, whose fill level is a
    Python int until the window is full, settles on a second graph instead of recompiling every step."""
    config = CompileConfig(backend=backend, fullgraph=fullgraph, dynamic=dynamic, **options)
    config._compile_all_devices = True
    return config


# -- generation hooks -----------------------------------------------------------------------------
class ZooGenerationMixin(GenerationMixin):
    """``GenerationMixin`` as every zoo generative class uses it: a check that ``generate`` hands the
    cache a forward returned back to the next step (else decoding would go on without history: wrong
    tokens, no error), and zoo-named hooks for models whose generation inputs transformers cannot
    derive: GLM's 2-D positions (position, block position), UniLM's segments.

    (The name ends in ``GenerationMixin``: ``PreTrainedModel.can_generate`` looks for that among the
    direct bases.) The inputs named in ``generation_owned_inputs`` are kept from transformers' own bookkeeping: they
    are expanded on the batch dimension for beam search / ``num_return_sequences``, and advanced after
    each step by :meth:`advance_generation_inputs`. The private ``GenerationMixin`` methods are
    overridden here only, so a rename upstream is one edit.
    """

    generation_owned_inputs: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # transformers' declaration that a decode step compiles as one graph (PreTrainedModel says False;
        # tests/test_lean_decoding.py checks it for every generative class, static cache and fullgraph).
        cls._can_compile_fullgraph = True

    def _get_candidate_generator(self, *args, assistant_model=None, **kwargs):
        # Assisted and prompt-lookup decoding extend a model's inputs over the draft tokens by transformers'
        # rule (positions + 1, the last token type repeated), not by advance_generation_inputs: GLM's block
        # positions and UniLM's target segments would come out wrong, and with them the tokens.
        owners = [m for m in (self, assistant_model) if getattr(m, "generation_owned_inputs", ())]
        if owners:
            from .errors import UnsupportedGenerationError

            raise UnsupportedGenerationError(
                f"{type(owners[0]).__name__} lays out its own generation inputs "
                f"({', '.join(owners[0].generation_owned_inputs)}), which assisted generation and prompt "
                "lookup cannot extend over draft tokens; generate without assistant_model / "
                "prompt_lookup_num_tokens (greedy, beam search and sampling are exact)"
            )
        return super()._get_candidate_generator(*args, assistant_model=assistant_model, **kwargs)

    def initial_generation_inputs(self, inputs_tensor: torch.Tensor, model_kwargs: dict[str, Any]) -> None:
        """Fill in model inputs the prompt implies (in place), before the first step."""

    def generation_position_offset(self) -> int:
        """Added to the position ids transformers counts from the attention mask (RoBERTa: pad id + 1)."""
        return 0

    def advance_generation_inputs(self, owned: dict[str, torch.Tensor], num_new_tokens: int) -> dict:
        """The owned inputs after ``num_new_tokens`` generated tokens (default: unchanged)."""
        return owned

    def generation_recompute_length(self) -> int | None:
        """A length at which generation drops the cache once and recomputes the whole sequence (Phi-3's
        LongRoPE switches factors past it); None: never."""
        return None

    def prepare_inputs_for_generation(self, input_ids, *args, **kwargs):
        limit = self.generation_recompute_length()
        cache = kwargs.get("cache")
        if (
            limit is not None
            and cache
            and input_ids.shape[1] >= limit + 1
            and cache.get_seq_length() <= limit
        ):
            kwargs.update(cache=None, next_sequence_length=None)
        return super().prepare_inputs_for_generation(input_ids, *args, **kwargs)

    def _prepare_model_inputs(self, inputs=None, bos_token_id=None, model_kwargs=None):
        inputs_tensor, input_name, model_kwargs = super()._prepare_model_inputs(
            inputs, bos_token_id, model_kwargs
        )
        self.initial_generation_inputs(inputs_tensor, model_kwargs)
        return inputs_tensor, input_name, model_kwargs

    def _prepare_position_ids_for_generation(self, inputs_tensor, model_kwargs):
        positions = super()._prepare_position_ids_for_generation(inputs_tensor, model_kwargs)
        return positions + self.generation_position_offset()

    def _expand_inputs_for_generation(
        self, expand_size=1, is_encoder_decoder=False, input_ids=None, **model_kwargs
    ):
        owned = self._pop_owned(model_kwargs)
        input_ids, model_kwargs = super()._expand_inputs_for_generation(
            expand_size=expand_size,
            is_encoder_decoder=is_encoder_decoder,
            input_ids=input_ids,
            **model_kwargs,
        )
        model_kwargs.update({k: v.repeat_interleave(expand_size, dim=0) for k, v in owned.items()})
        return input_ids, model_kwargs

    def _update_model_kwargs_for_generation(
        self, outputs, model_kwargs, is_encoder_decoder=False, num_new_tokens=1
    ):
        owned = self._pop_owned(model_kwargs)
        model_kwargs = super()._update_model_kwargs_for_generation(
            outputs, model_kwargs, is_encoder_decoder=is_encoder_decoder, num_new_tokens=num_new_tokens
        )
        returned = outputs.get(CACHE_ARGUMENT)
        if returned is not None and model_kwargs.get(CACHE_ARGUMENT) is not returned:
            raise RuntimeError(
                f"generate (transformers {transformers.__version__}) did not hand the cache "
                f"{type(self).__name__}.forward returned back as `{CACHE_ARGUMENT}=`; decoding on would "
                f"lose its history. zoo is tested with transformers >={TESTED_TRANSFORMERS[0]},"
                f"<{TESTED_TRANSFORMERS[1]}: the cache's name moved in {sorted(model_kwargs)}"
            )
        if owned:
            model_kwargs.update(self.advance_generation_inputs(owned, num_new_tokens))
        return model_kwargs

    def _pop_owned(self, model_kwargs: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {
            name: model_kwargs.pop(name)
            for name in self.generation_owned_inputs
            if model_kwargs.get(name) is not None
        }
