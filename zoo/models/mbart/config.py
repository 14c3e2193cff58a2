"""mBART configuration: BART's fields, mBART-50's defaults, read from and written as transformers'
``MBartConfig``.

mBART is BART with pre-LN blocks and a final LayerNorm on the encoder and the decoder (fairseq's
``normalize_before`` and ``add_final_layer_norm``, which every mBART checkpoint sets), scaled token
embeddings, and decoder inputs that start with the last non-padding token of the labels (the language
code in mBART-cc25's layout, ``eos`` in mBART-50's) instead of a fixed ``decoder_start_token_id``.
The defaults are those of ``facebook/mbart-large-50``.
"""

import transformers
from huggingface_hub.dataclasses import strict

from ..bart.config import BartConfig


@strict
class MBartConfig(BartConfig):
    """As :class:`~zoo.models.bart.config.BartConfig` except pre-LN with final norms, and mBART-50's defaults."""

    model_type = "zoo_mbart"
    reference_model_types = ("mbart",)
    zoo_model_types = ("zoo_mbart",)
    pre_norm = True
    reference_config_class = transformers.MBartConfig

    vocab_size: int = 250054
    hidden_size: int = 1024
    num_hidden_layers: int = 12
    num_attention_heads: int = 16
    intermediate_size: int | None = 4096
    scale_embedding: bool = True
    attention_dropout: float | int = 0.0
    activation_dropout: float | int = 0.0
