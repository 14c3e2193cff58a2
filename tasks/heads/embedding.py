"""Sentence embeddings from any family's backbone, trained as sentence-transformers' CosineSimilarityLoss.

The embedding is the pooled token states (``config.pooling``: "mean" over the attention mask,
"cls" the first token, "last" the last non-padding token), L2-normalised when
``config.normalize_embeddings``. Both options are config fields, so they travel with
``save_pretrained``. The head adds no parameters: a base checkpoint (e.g. all-MiniLM-L6-v2)
loads completely.

Training: pass a second batch (``pair_input_ids``, ``pair_attention_mask``, optionally
``pair_token_type_ids``) and ``labels``, the target similarity of each pair (in [-1, 1] or [0, 1]);
the loss is ``MSE(cosine(embedding_a, embedding_b), labels)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.utils import ModelOutput

from zoo.configuration import POOLING_MODES
from zoo.errors import ConfigError
from zoo.hf_internals import can_return_tuple, checked_forward

from .base import HeadMixin, gather_rows, last_index, mean_pool


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
    accepts_loss_kwargs = False

    def __init__(self, config):
        super().__init__(config)
        if config.pooling not in POOLING_MODES:
            raise ConfigError(f"pooling={config.pooling!r} is not one of {', '.join(POOLING_MODES)}")
        self.build_backbone(config)
        self.post_init()

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
