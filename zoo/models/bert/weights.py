"""BERT and RoBERTa: transformers / Hub names -> zoo names.

Query, key and value are fused into one ``qkv`` projection. The encoder names are shared; the
two layouts differ in the base prefix (``bert.`` / ``roberta.``) and the masked-LM head.
"""

from ...weights import WeightMap

ENCODER_BASE = {
    "embeddings.word_embeddings.weight": "embed_tokens.weight",
    "embeddings.position_embeddings.weight": "embed_positions.weight",
    "embeddings.token_type_embeddings.weight": "embed_token_types.weight",
    "embeddings.LayerNorm.weight": "embed_norm.weight",
    "embeddings.LayerNorm.bias": "embed_norm.bias",
    (
        "encoder.layer.{}.attention.self.query.weight",
        "encoder.layer.{}.attention.self.key.weight",
        "encoder.layer.{}.attention.self.value.weight",
    ): "layers.{}.attn.qkv.weight",
    (
        "encoder.layer.{}.attention.self.query.bias",
        "encoder.layer.{}.attention.self.key.bias",
        "encoder.layer.{}.attention.self.value.bias",
    ): "layers.{}.attn.qkv.bias",
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
    "pooler.dense.weight": "pooler.dense.weight",
    "pooler.dense.bias": "pooler.dense.bias",
    # Buffers some checkpoints carry; positions and token types are computed.
    "embeddings.position_ids": None,
    "embeddings.token_type_ids": None,
}

BERT_HEADS = {
    "cls.predictions.transform.dense.weight": "head.dense.weight",
    "cls.predictions.transform.dense.bias": "head.dense.bias",
    "cls.predictions.transform.LayerNorm.weight": "head.norm.weight",
    "cls.predictions.transform.LayerNorm.bias": "head.norm.bias",
    "cls.predictions.bias": "lm_head.bias",
    "cls.predictions.decoder.weight": "lm_head.weight",  # tied to the token embeddings
    "cls.predictions.decoder.bias": "lm_head.bias",  # alias of cls.predictions.bias
    # Next-sentence-prediction head of pre-training checkpoints: no zoo class uses it.
    "cls.seq_relationship.weight": None,
    "cls.seq_relationship.bias": None,
    **{f"classifier.{p}": f"classifier.{p}" for p in ("weight", "bias")},  # Bert*Classification
}

ROBERTA_HEADS = {
    "lm_head.dense.weight": "head.dense.weight",
    "lm_head.dense.bias": "head.dense.bias",
    "lm_head.layer_norm.weight": "head.norm.weight",
    "lm_head.layer_norm.bias": "head.norm.bias",
    "lm_head.bias": "lm_head.bias",
    "lm_head.decoder.weight": "lm_head.weight",
    "lm_head.decoder.bias": "lm_head.bias",
    # RobertaForTokenClassification (its sequence classifier has another layout, not mapped)
    **{f"classifier.{p}": f"classifier.{p}" for p in ("weight", "bias")},
}

BERT_WEIGHT_MAP = WeightMap(ENCODER_BASE, BERT_HEADS, reference_prefix="bert")
ROBERTA_WEIGHT_MAP = WeightMap(ENCODER_BASE, ROBERTA_HEADS, reference_prefix="roberta")
