"""GPT-2: transformers / Hub names -> zoo names. Conv1D weights are stored (in, out): transposed."""

from ...weights import Transposed, WeightMap

GPT2_BASE = {
    "wte.weight": "embed_tokens.weight",
    "wpe.weight": "embed_positions.weight",
    "h.{}.ln_1.weight": "layers.{}.attn_norm.weight",
    "h.{}.ln_1.bias": "layers.{}.attn_norm.bias",
    "h.{}.attn.c_attn.weight": Transposed("layers.{}.attn.qkv.weight"),
    "h.{}.attn.c_attn.bias": "layers.{}.attn.qkv.bias",
    "h.{}.attn.c_proj.weight": Transposed("layers.{}.attn.out.weight"),
    "h.{}.attn.c_proj.bias": "layers.{}.attn.out.bias",
    "h.{}.ln_2.weight": "layers.{}.mlp_norm.weight",
    "h.{}.ln_2.bias": "layers.{}.mlp_norm.bias",
    "h.{}.mlp.c_fc.weight": Transposed("layers.{}.mlp.up.weight"),
    "h.{}.mlp.c_fc.bias": "layers.{}.mlp.up.bias",
    "h.{}.mlp.c_proj.weight": Transposed("layers.{}.mlp.down.weight"),
    "h.{}.mlp.c_proj.bias": "layers.{}.mlp.down.bias",
    "ln_f.weight": "norm.weight",
    "ln_f.bias": "norm.bias",
    # Causal-mask buffers older checkpoints carry; masks now come from transformers.masking_utils.
    "h.{}.attn.bias": None,
    "h.{}.attn.masked_bias": None,
}

GPT2_HEADS = {
    "lm_head.weight": "lm_head.weight",
    "score.weight": "score.weight",  # GPT2ForSequenceClassification
    "classifier.weight": "classifier.weight",  # GPT2ForTokenClassification
    "classifier.bias": "classifier.bias",
}

GPT2_WEIGHT_MAP = WeightMap(GPT2_BASE, GPT2_HEADS, reference_prefix="transformer")
