"""Sentence embeddings from any family's backbone, trained as sentence-transformers' CosineSimilarityLoss.

The embedding is the pooled token states (``config.pooling``: "mean" over the attention mask,
"cls" the first token, "last" the last non-padding token), L2-normalised when
``config.normalize_embeddings``. Both options are config fields, so they travel with
``save_pretrained``. The head adds no parameters: a base checkpoint (e.g. all-MiniLM-L6-v2)
loads completely.

Training: pass a second batch (``pair_input_ids``, ``pair_attention_mask``, optionally
``pair_token_type_ids``) and ``labels``, the target similarity of each pair (in [-1, 1] or [0, 1]);
the loss is ``MSE(cosine(embedding_a, embedding_b), labels)``.

Saving: where the backbone has a transformers class (BERT, RoBERTa, GPT-2, Llama), ``save_pretrained``
writes a sentence-transformers directory (:meth:`~SentenceEmbeddingHead.save_sentence_transformers`):
plain ``SentenceTransformer(directory)`` loads it without this package and gives this head's vectors,
and ``from_pretrained`` reads the pooling back from its ``modules.json``. Other backbones (T5's
encoder, GLM) keep the zoo layout, where the pooling travels as config fields.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers.utils import ModelOutput

from ..configuration import POOLING_MODES
from ..errors import ConfigError
from ..hf_internals import can_return_tuple, checked_forward
from ..inputs import position_limit
from ..loading import resolve_checkpoint
from ..saving import staged_directory
from . import sentence_transformers as sentence_transformers_format
from .base import HeadMixin, gather_rows, last_index, mean_pool

logger = logging.getLogger(__name__)

# from_pretrained arguments that say where a Hub checkpoint is (to find its modules.json).
_HUB_KWARGS = ("revision", "cache_dir", "token", "local_files_only")


@dataclass
class SentenceEmbeddingOutput(ModelOutput):
    """``pooler_output``: (batch, hidden) sentence embeddings; ``similarity``: cosine of each pair."""

    loss: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    similarity: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class SentenceEmbeddingHead(HeadMixin):
    head_kind = "embedding"
    class_suffix = "SentenceEmbedding"
    accepts_loss_kwargs = False

    def __init__(self, config):
        super().__init__(config)
        if config.pooling not in POOLING_MODES:
            raise ConfigError(f"pooling={config.pooling!r} is not one of {', '.join(POOLING_MODES)}")
        self.build_backbone(config)
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *model_args, **kwargs):
        """Load as every zoo model loads; from a sentence-transformers directory, pool and normalise as its
        ``modules.json`` chain does (explicit ``pooling`` / ``normalize_embeddings`` win, and a module the
        head cannot reproduce is a :class:`ConfigError`)."""
        if kwargs.get("config") is None and kwargs.get("gguf_file") is None:
            hub = {key: kwargs[key] for key in _HUB_KWARGS if key in kwargs}
            directory = resolve_checkpoint(pretrained_model_name_or_path, **hub)
            kwargs = {
                **sentence_transformers_format.sentence_transformers_head_defaults(directory),
                **kwargs,
            }
        return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)

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
        """``layout="transformers"``: a sentence-transformers directory (:meth:`save_sentence_transformers`),
        the default where the backbone has a transformers class; ``layout="zoo"``: the zoo layout, the
        default for other backbones. ``state_dict`` (zoo names, as Trainer passes it) replaces the model's.
        """
        if layout is None:
            layout = "transformers" if self.saves_sentence_transformers() else "zoo"
        if layout != "transformers":
            super().save_pretrained(
                save_directory, is_main_process, state_dict, push_to_hub, max_shard_size, token,
                layout=layout, **kwargs,
            )  # fmt: skip
            return
        kwargs.pop("safe_serialization", None)  # always safetensors
        unsupported = sorted(kwargs) + (["push_to_hub"] if push_to_hub else [])
        if unsupported:
            raise TypeError(
                f"save_pretrained got unsupported arguments {unsupported} for a sentence-transformers "
                "directory; upload the saved directory (trainers.publish) to push it"
            )
        if is_main_process:
            self.save_sentence_transformers(
                save_directory, state_dict=state_dict, max_shard_size=max_shard_size
            )

    def saves_sentence_transformers(self) -> bool:
        """Whether the default save is a sentence-transformers directory: the backbone has a transformers
        class and its config can be written as that class's (else the zoo layout, with a warning)."""
        architecture = self.model.transformers_architecture
        if architecture is None or self._adapters_loaded():
            return False
        try:
            self.config.to_reference(architecture)
        except ConfigError as error:
            logger.warning("%s: saving in the zoo layout: %s", type(self).__name__, error)
            return False
        return True

    def save_sentence_transformers(
        self,
        directory: str | os.PathLike,
        tokenizer=None,
        max_seq_length: int | None = None,
        *,
        state_dict: dict[str, torch.Tensor] | None = None,
        max_shard_size: int | str = "5GB",
    ) -> Path:
        """Write a directory plain sentence-transformers loads (``SentenceTransformer(directory)``, without
        this package) whose vectors are this head's ``pooler_output``.

        The backbone goes to the top level in the transformers layout, where sentence-transformers'
        ``Transformer`` module loads it with ``AutoModel``; then a ``Pooling`` module pooling as
        ``config.pooling`` and, with ``config.normalize_embeddings``, a ``Normalize`` module. Module types and
        pooling flags are written as sentence-transformers 2 to 5 wrote them: every version since reads
        them, and so does ``auto_loader``. Inputs are truncated to ``max_seq_length``, by default as many
        tokens as the position table (and the ``tokenizer``'s ``model_max_length``) allows. Without a
        ``tokenizer``, sentence-transformers loads the directory once one is saved into it.
        """
        if self.model.transformers_architecture is None:
            raise ConfigError(
                f"{type(self).__name__}: sentence-transformers cannot load the {type(self.model).__name__} "
                "backbone (transformers has no class for it); save it with layout='zoo'"
            )
        if self._adapters_loaded():
            raise ConfigError(
                f"{type(self).__name__} holds PEFT adapters; merge them first (merge_and_unload) to save a "
                "sentence-transformers directory, or save the adapters alone with zoo.adapters.save_adapter"
            )
        positions = position_limit(self, sys.maxsize)
        if max_seq_length is None:
            max_seq_length = min(
                positions, tokenizer.model_max_length if tokenizer is not None else positions
            )
        elif not 1 <= max_seq_length <= positions:
            raise ConfigError(
                f"max_seq_length={max_seq_length} must be between 1 and {positions}, the positions "
                f"{type(self).__name__} embeds"
            )
        directory = Path(directory)
        with staged_directory(directory) as staging:  # the previous save stays whole if this one fails
            self._write_sentence_transformers(staging, tokenizer, max_seq_length, state_dict, max_shard_size)
        return directory

    def _write_sentence_transformers(
        self, directory: Path, tokenizer, max_seq_length, state_dict, max_shard_size
    ):
        prefix = f"{self.base_model_prefix}."
        backbone_state = (
            None if state_dict is None else {name.removeprefix(prefix): t for name, t in state_dict.items()}
        )
        self.model.save_pretrained(
            directory, state_dict=backbone_state, max_shard_size=max_shard_size, layout="transformers"
        )

        st = sentence_transformers_format
        modules = [(st._TRANSFORMER, ""), (st._POOLING, "1_Pooling")]
        if self.config.normalize_embeddings:
            modules.append((st._NORMALIZE, "2_Normalize"))
            (directory / "2_Normalize").mkdir(exist_ok=True)  # Normalize has no files, only its path
        _write_json(
            directory / st.MODULES_FILE,
            [
                {"idx": i, "name": str(i), "path": path, "type": kind}
                for i, (kind, path) in enumerate(modules)
            ],
        )
        flags = {flag: False for flag in (*st._POOLING_FLAGS, *st._UNSUPPORTED_FLAGS)}
        flags[next(flag for flag, mode in st._POOLING_FLAGS.items() if mode == self.config.pooling)] = True
        (directory / "1_Pooling").mkdir(exist_ok=True)
        _write_json(
            directory / "1_Pooling" / "config.json",
            {"word_embedding_dimension": self.config.hidden_size, **flags, "include_prompt": True},
        )
        _write_json(
            directory / "sentence_bert_config.json",
            {"max_seq_length": max_seq_length, "do_lower_case": False},
        )
        # The head is trained on cosine similarity; sentence-transformers' ``similarity`` then agrees.
        _write_json(
            directory / "config_sentence_transformers.json",
            {
                "model_type": "SentenceTransformer",
                "similarity_fn_name": "cosine",
                "prompts": {},
                "default_prompt_name": None,
            },
        )
        if tokenizer is not None:
            tokenizer.save_pretrained(directory)

    def pool(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        pooling = self.config.pooling
        if pooling == "cls":
            embeddings = hidden_states[:, 0]
        elif pooling == "last":
            if attention_mask is None:
                embeddings = hidden_states[:, -1]
            else:
                embeddings = gather_rows(hidden_states, last_index(attention_mask.to(hidden_states.device)))
        else:
            embeddings = mean_pool(hidden_states, attention_mask)
        if self.config.normalize_embeddings:
            embeddings = nn.functional.normalize(embeddings, p=2, dim=-1)
        return embeddings

    def embed(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None, **kwargs):
        """(backbone outputs, sentence embeddings) of one batch."""
        outputs = self.encode(input_ids, attention_mask, token_type_ids, None, inputs_embeds, kwargs)
        return outputs, self.pool(outputs.last_hidden_state, attention_mask)

    @checked_forward
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        pair_input_ids: torch.LongTensor | None = None,
        pair_attention_mask: torch.Tensor | None = None,
        pair_token_type_ids: torch.LongTensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SentenceEmbeddingOutput:
        kwargs.pop("num_items_in_batch", None)
        outputs, embeddings = self.embed(input_ids, attention_mask, token_type_ids, inputs_embeds, **kwargs)
        similarity = loss = None
        if pair_input_ids is not None:
            _, pair_embeddings = self.embed(pair_input_ids, pair_attention_mask, pair_token_type_ids)
            similarity = nn.functional.cosine_similarity(embeddings.float(), pair_embeddings.float(), dim=-1)
            if labels is not None:
                loss = nn.functional.mse_loss(similarity, labels.to(similarity).view(-1))
        elif labels is not None:
            raise ValueError("labels (pair similarities) need the second batch: pass pair_input_ids too")
        return SentenceEmbeddingOutput(
            loss=loss,
            pooler_output=embeddings,
            last_hidden_state=outputs.last_hidden_state,
            similarity=similarity,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
