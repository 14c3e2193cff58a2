"""mBART: BART's encoder-decoder (``zoo.models.bart``) with pre-LN blocks and a final LayerNorm per stack
(chosen by ``MBartConfig.pre_norm``), and mBART's shift of labels into decoder inputs."""

from __future__ import annotations

import torch

from ..bart.model import BartEncoderModel, BartForConditionalGeneration, BartModel, BartPreTrainedModel
from .config import MBartConfig
from .weights import MBART_WEIGHT_MAP


class MBartPreTrainedModel(BartPreTrainedModel):
    """As :class:`~zoo.models.bart.model.BartPreTrainedModel` except mBART's config, layout and label shift."""

    config_class = MBartConfig
    config: MBartConfig
    weight_maps = {"mbart": MBART_WEIGHT_MAP}

    def _shift_right(self, input_ids: torch.Tensor) -> torch.Tensor:
        """transformers' mBART ``shift_tokens_right``: the labels shifted right, each row starting with its
        last non-padding token (-100 read as padding); there is no fixed start token."""
        pad = self.config.pad_token_id
        if pad is None:
            raise ValueError("config.pad_token_id must be set to shift labels")
        tokens = input_ids.masked_fill(input_ids == -100, pad)
        last = (tokens.ne(pad).sum(dim=1) - 1).clamp(min=0).unsqueeze(-1)
        shifted = tokens.clone()
        shifted[:, 1:] = tokens[:, :-1]
        shifted[:, 0] = tokens.gather(1, last).squeeze(-1)
        return shifted


class MBartEncoderModel(MBartPreTrainedModel, BartEncoderModel):
    """As BART's encoder-only backbone, on mBART's config."""


class MBartModel(MBartPreTrainedModel, BartModel):
    reference_architectures = {"mbart": "MBartModel"}


class MBartForConditionalGeneration(MBartPreTrainedModel, BartForConditionalGeneration):
    reference_architectures = {"mbart": "MBartForConditionalGeneration"}
    base_model_class = MBartModel
