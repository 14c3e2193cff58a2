"""T5: transformers / Hub names -> zoo names.

T5 checkpoints carry no base-model prefix (``shared.weight``, ``encoder.block.0...``), so every entry
is a full name. Query / key / value fuse into ``qkv``; cross-attention key / value into ``kv``. The
token embedding is stored once, as the encoder's; the decoder reads it through the parent model.
"""

from collections.abc import Mapping

from ...weights import Lazy, WeightMap

_ENC = "model.encoder.layers.{}"
_DEC = "model.decoder.layers.{}"

T5_COMMON = {
    "shared.weight": "model.encoder.embed_tokens.weight",
    # Aliases of shared.weight some checkpoints also store.
    "encoder.embed_tokens.weight": "model.encoder.embed_tokens.weight",
    "decoder.embed_tokens.weight": "model.encoder.embed_tokens.weight",
    (
        "encoder.block.{}.layer.0.SelfAttention.q.weight",
        "encoder.block.{}.layer.0.SelfAttention.k.weight",
        "encoder.block.{}.layer.0.SelfAttention.v.weight",
    ): f"{_ENC}.attn.qkv.weight",
    "encoder.block.{}.layer.0.SelfAttention.o.weight": f"{_ENC}.attn.out.weight",
    # Only block 0 has it; the stack shares it with every block.
    "encoder.block.{}.layer.0.SelfAttention.relative_attention_bias.weight": f"{_ENC}.position_bias.embedding.weight",
    "encoder.block.{}.layer.0.layer_norm.weight": f"{_ENC}.attn_norm.weight",
    "encoder.block.{}.layer.1.layer_norm.weight": f"{_ENC}.mlp_norm.weight",
    "encoder.final_layer_norm.weight": "model.encoder.norm.weight",
    (
        "decoder.block.{}.layer.0.SelfAttention.q.weight",
        "decoder.block.{}.layer.0.SelfAttention.k.weight",
        "decoder.block.{}.layer.0.SelfAttention.v.weight",
    ): f"{_DEC}.attn.qkv.weight",
    "decoder.block.{}.layer.0.SelfAttention.o.weight": f"{_DEC}.attn.out.weight",
    "decoder.block.{}.layer.0.SelfAttention.relative_attention_bias.weight": f"{_DEC}.position_bias.embedding.weight",
    "decoder.block.{}.layer.0.layer_norm.weight": f"{_DEC}.attn_norm.weight",
    "decoder.block.{}.layer.1.EncDecAttention.q.weight": f"{_DEC}.cross_attn.q.weight",
    (
        "decoder.block.{}.layer.1.EncDecAttention.k.weight",
        "decoder.block.{}.layer.1.EncDecAttention.v.weight",
    ): f"{_DEC}.cross_attn.kv.weight",
    "decoder.block.{}.layer.1.EncDecAttention.o.weight": f"{_DEC}.cross_attn.out.weight",
    "decoder.block.{}.layer.1.layer_norm.weight": f"{_DEC}.cross_attn_norm.weight",
    "decoder.block.{}.layer.2.layer_norm.weight": f"{_DEC}.mlp_norm.weight",
    "decoder.final_layer_norm.weight": "model.decoder.norm.weight",
    "lm_head.weight": "lm_head.weight",  # tied to shared.weight in original T5
    # Cross-attention has no position bias; old checkpoints carry an unused one.
    "decoder.block.{}.layer.1.EncDecAttention.relative_attention_bias.weight": None,
}

# Original T5: DenseReluDense.wi / wo.
T5_RELU_FEED_FORWARD = {
    "encoder.block.{}.layer.1.DenseReluDense.wi.weight": f"{_ENC}.mlp.up.weight",
    "encoder.block.{}.layer.1.DenseReluDense.wo.weight": f"{_ENC}.mlp.down.weight",
    "decoder.block.{}.layer.2.DenseReluDense.wi.weight": f"{_DEC}.mlp.up.weight",
    "decoder.block.{}.layer.2.DenseReluDense.wo.weight": f"{_DEC}.mlp.down.weight",
}

# T5 v1.1 / FLAN: wo(act(wi_0 x) * wi_1 x).
T5_GATED_FEED_FORWARD = {
    "encoder.block.{}.layer.1.DenseReluDense.wi_0.weight": f"{_ENC}.mlp.gate.weight",
    "encoder.block.{}.layer.1.DenseReluDense.wi_1.weight": f"{_ENC}.mlp.up.weight",
    "encoder.block.{}.layer.1.DenseReluDense.wo.weight": f"{_ENC}.mlp.down.weight",
    "decoder.block.{}.layer.2.DenseReluDense.wi_0.weight": f"{_DEC}.mlp.gate.weight",
    "decoder.block.{}.layer.2.DenseReluDense.wi_1.weight": f"{_DEC}.mlp.up.weight",
    "decoder.block.{}.layer.2.DenseReluDense.wo.weight": f"{_DEC}.mlp.down.weight",
}


class FeedForwardLayoutWeightMap(WeightMap):
    """A WeightMap except: export names the feed-forward by ``config.mlp_type`` (``wi`` or ``wi_0`` / ``wi_1``),
    as zoo's ``mlp.up`` is T5's ``wi`` in one layout and ``wi_1`` in the other."""

    def __init__(self, common: Mapping, plain: Mapping, gated: Mapping):
        super().__init__({}, {**common, **plain, **gated}, reference_prefix="")
        self._gated = WeightMap({}, {**common, **gated, **plain}, reference_prefix="")

    def to_reference(self, zoo: Mapping[str, Lazy], config, with_prefix: bool) -> dict[str, Lazy]:
        if config.mlp_type == "gated":
            return self._gated.to_reference(zoo, config, with_prefix)
        return super().to_reference(zoo, config, with_prefix)


T5_WEIGHT_MAP = FeedForwardLayoutWeightMap(T5_COMMON, T5_RELU_FEED_FORWARD, T5_GATED_FEED_FORWARD)
