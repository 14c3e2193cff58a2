"""ModernBERT: transformers / Hub names -> zoo names.

The attention's ``Wqkv`` holds the query, key and value heads in the zoo's ``attn.qkv`` row order, so it
maps one to one. The GeGLU input projection ``mlp.Wi`` holds the activated half, then the multiplied
half: the zoo keeps them as ``mlp.gate`` and ``mlp.up`` (the shared gated MLP), split on import and
concatenated back on export (Phi-3's :class:`~zoo.models.phi3.weights.SplitWeightMap`). Biases are mapped
for checkpoints that turn them on (``attention_bias``, ``mlp_bias``, ``norm_bias``, ``classifier_bias``,
``decoder_bias``).
"""

from ..phi3.weights import SplitWeightMap

_BIASED = ("weight", "bias")

MODERNBERT_BASE = {
    "embeddings.tok_embeddings.weight": "embed_tokens.weight",
    **{f"embeddings.norm.{p}": f"embed_norm.{p}" for p in _BIASED},
    **{f"layers.{{}}.attn_norm.{p}": f"layers.{{}}.attn_norm.{p}" for p in _BIASED},
    **{f"layers.{{}}.attn.Wqkv.{p}": f"layers.{{}}.attn.qkv.{p}" for p in _BIASED},
    **{f"layers.{{}}.attn.Wo.{p}": f"layers.{{}}.attn.out.{p}" for p in _BIASED},
    **{f"layers.{{}}.mlp_norm.{p}": f"layers.{{}}.mlp_norm.{p}" for p in _BIASED},
    **{f"layers.{{}}.mlp.Wo.{p}": f"layers.{{}}.mlp.down.{p}" for p in _BIASED},
    **{f"final_norm.{p}": f"norm.{p}" for p in _BIASED},
}

# One reference tensor -> the zoo's gate and up tensors, its two row halves in this order.
MODERNBERT_SPLITS = {
    f"layers.{{}}.mlp.Wi.{p}": (f"layers.{{}}.mlp.gate.{p}", f"layers.{{}}.mlp.up.{p}") for p in _BIASED
}

MODERNBERT_HEADS = {
    # the prediction head (dense + activation + norm) of the masked LM and of the classifiers
    **{f"head.{layer}.{p}": f"head.{layer}.{p}" for layer in ("dense", "norm") for p in _BIASED},
    **{f"decoder.{p}": f"lm_head.{p}" for p in _BIASED},  # the weight is tied to the token embeddings
    **{f"classifier.{p}": f"classifier.{p}" for p in _BIASED},  # ModernBertFor*Classification
}

MODERNBERT_WEIGHT_MAP = SplitWeightMap(
    MODERNBERT_BASE, MODERNBERT_HEADS, reference_prefix="model", splits=MODERNBERT_SPLITS
)
