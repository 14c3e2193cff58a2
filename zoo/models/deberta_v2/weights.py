"""DeBERTa-v2 / v3: transformers / Hub names -> zoo names.

Query, key and value are fused into one ``qkv`` projection (as BERT's); the relative-position embeddings
and their LayerNorm sit in transformers' encoder (``encoder.rel_embeddings``, ``encoder.LayerNorm``).
The sequence classifier's ``ContextPooler`` is a top-level ``pooler`` in transformers and the backbone's
``pooler`` here.

The masked-LM head has two names for the same maths (dense -> act -> LayerNorm -> the tied word
embeddings + a bias): transformers' legacy ``cls.predictions.*`` and DeBERTa's own
``lm_predictions.lm_head.*`` (transformers' ``legacy=False``, the names of Microsoft's checkpoints).
Either loads; ``save_pretrained`` writes the names ``config.legacy`` selects. The replaced-token-detection
head of DeBERTa-v3's discriminator checkpoints (``mask_predictions.*``) has no zoo class and is dropped.
"""

from collections.abc import Mapping

from ...weights import Lazy, WeightMap

ENCODER_BASE = {
    "embeddings.word_embeddings.weight": "embed_tokens.weight",
    "embeddings.position_embeddings.weight": "embed_positions.weight",  # position_biased_input only
    "embeddings.token_type_embeddings.weight": "embed_token_types.weight",  # type_vocab_size > 0 only
    "embeddings.LayerNorm.weight": "embed_norm.weight",
    "embeddings.LayerNorm.bias": "embed_norm.bias",
    "embeddings.position_ids": None,  # a buffer some checkpoints carry; positions are computed
    (
        "encoder.layer.{}.attention.self.query_proj.weight",
        "encoder.layer.{}.attention.self.key_proj.weight",
        "encoder.layer.{}.attention.self.value_proj.weight",
    ): "layers.{}.attn.qkv.weight",
    (
        "encoder.layer.{}.attention.self.query_proj.bias",
        "encoder.layer.{}.attention.self.key_proj.bias",
        "encoder.layer.{}.attention.self.value_proj.bias",
    ): "layers.{}.attn.qkv.bias",
    # share_att_key=False only: the relative embeddings' own projections
    "encoder.layer.{}.attention.self.pos_key_proj.weight": "layers.{}.attn.pos_key.weight",
    "encoder.layer.{}.attention.self.pos_key_proj.bias": "layers.{}.attn.pos_key.bias",
    "encoder.layer.{}.attention.self.pos_query_proj.weight": "layers.{}.attn.pos_query.weight",
    "encoder.layer.{}.attention.self.pos_query_proj.bias": "layers.{}.attn.pos_query.bias",
    "encoder.layer.{}.attention.output.dense.weight": "layers.{}.attn.out.weight",
    "encoder.layer.{}.attention.output.dense.bias": "layers.{}.attn.out.bias",
    "encoder.layer.{}.attention.output.LayerNorm.weight": "layers.{}.attn_norm.weight",
    "encoder.layer.{}.attention.output.LayerNorm.bias": "layers.{}.attn_norm.bias",
    "encoder.layer.{}.intermediate.dense.weight": "layers.{}.mlp.up.weight",
    "encoder.layer.{}.intermediate.dense.bias": "layers.{}.mlp.up.bias",
    "encoder.layer.{}.output.dense.weight": "layers.{}.mlp.down.weight",
    "encoder.layer.{}.output.dense.bias": "layers.{}.mlp.down.bias",
    "encoder.layer.{}.output.LayerNorm.weight": "layers.{}.mlp_norm.weight",
    "encoder.layer.{}.output.LayerNorm.bias": "layers.{}.mlp_norm.bias",
    "encoder.rel_embeddings.weight": "rel_embeddings.weight",  # relative_attention only
    "encoder.LayerNorm.weight": "rel_norm.weight",  # norm_rel_ebd="layer_norm" only
    "encoder.LayerNorm.bias": "rel_norm.bias",
    "encoder.conv.conv.weight": "conv.conv.weight",  # conv_kernel_size > 0 only
    "encoder.conv.conv.bias": "conv.conv.bias",
    "encoder.conv.LayerNorm.weight": "conv.norm.weight",
    "encoder.conv.LayerNorm.bias": "conv.norm.bias",
}

TASK_HEADS = {
    # DebertaV2ForSequenceClassification's ContextPooler and classifier; the token classifier's layer
    "pooler.dense.weight": "model.pooler.dense.weight",
    "pooler.dense.bias": "model.pooler.dense.bias",
    "classifier.weight": "classifier.weight",
    "classifier.bias": "classifier.bias",
    # DeBERTa-v3's replaced-token-detection discriminator: no zoo class uses it
    **{
        f"mask_predictions.{layer}.{kind}": None
        for layer in ("dense", "LayerNorm", "classifier")
        for kind in ("weight", "bias")
    },
}

LEGACY_MLM_HEAD = {
    "cls.predictions.transform.dense.weight": "head.dense.weight",
    "cls.predictions.transform.dense.bias": "head.dense.bias",
    "cls.predictions.transform.LayerNorm.weight": "head.norm.weight",
    "cls.predictions.transform.LayerNorm.bias": "head.norm.bias",
    "cls.predictions.bias": "lm_head.bias",
    "cls.predictions.decoder.weight": "lm_head.weight",  # tied to the word embeddings
    "cls.predictions.decoder.bias": "lm_head.bias",  # alias of cls.predictions.bias
}

MLM_HEAD = {
    "lm_predictions.lm_head.dense.weight": "head.dense.weight",
    "lm_predictions.lm_head.dense.bias": "head.dense.bias",
    "lm_predictions.lm_head.LayerNorm.weight": "head.norm.weight",
    "lm_predictions.lm_head.LayerNorm.bias": "head.norm.bias",
    "lm_predictions.lm_head.bias": "lm_head.bias",  # the vocabulary projection is the word embeddings
}


class MaskedLMLayoutWeightMap(WeightMap):
    """A WeightMap except: export names the masked-LM head as ``config.legacy`` says (``cls.predictions``
    or ``lm_predictions.lm_head``), and load errors name it as the checkpoint does; both names load."""

    def __init__(self, base: Mapping, heads: Mapping, legacy_head: Mapping, head: Mapping):
        super().__init__(base, {**heads, **legacy_head, **head}, reference_prefix="deberta")
        self._enhanced = WeightMap(base, {**heads, **head, **legacy_head}, reference_prefix="deberta")

    def to_reference(self, zoo: Mapping[str, Lazy], config, with_prefix: bool) -> dict[str, Lazy]:
        if not config.legacy:
            return self._enhanced.to_reference(zoo, config, with_prefix)
        return super().to_reference(zoo, config, with_prefix)

    def reference_error(self, error, reference: Mapping[str, Lazy], config):
        legacy = any(n.startswith("cls.predictions.") for n in reference) or (
            config.legacy and not any(n.startswith("lm_predictions.") for n in reference)
        )
        layout = super() if legacy else self._enhanced
        return layout.reference_error(error, reference, config)


DEBERTA_V2_WEIGHT_MAP = MaskedLMLayoutWeightMap(ENCODER_BASE, TASK_HEADS, LEGACY_MLM_HEAD, MLM_HEAD)
