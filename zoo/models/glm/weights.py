"""GLM: FlagAI checkpoint names -> zoo names (FlagAI already fuses query / key / value).

One table serves every layout the GLM checkpoints come in; they differ only by prefix:

* FlagAI (``GLM-large-ch``, ``GLM-large-en``, ``GLM-10b-ch``): ``GLMModel.state_dict()`` names, no
  prefix, in ``pytorch_model.bin`` (training saves wrap them as ``{"module": ...}``, unwrapped on load);
* FlagAI task wrappers (``GLMForSequenceClassification``, ...): the same names under ``model.``;
* the Hub repositories (``THUDM/glm-large-chinese``, ``THUDM/glm-10b``): ``GLMModel`` unprefixed,
  ``GLMForConditionalGeneration`` under ``glm.`` (the reference prefix, also what export writes).
"""

from ...weights import WeightMap

GLM_BASE = {
    "word_embeddings.weight": "embed_tokens.weight",
    "transformer.position_embeddings.weight": "embed_positions.weight",
    "transformer.block_position_embeddings.weight": "embed_block_positions.weight",
    "transformer.layers.{}.input_layernorm.weight": "layers.{}.attn_norm.weight",
    "transformer.layers.{}.input_layernorm.bias": "layers.{}.attn_norm.bias",
    "transformer.layers.{}.attention.query_key_value.weight": "layers.{}.attn.qkv.weight",
    "transformer.layers.{}.attention.query_key_value.bias": "layers.{}.attn.qkv.bias",
    "transformer.layers.{}.attention.dense.weight": "layers.{}.attn.out.weight",
    "transformer.layers.{}.attention.dense.bias": "layers.{}.attn.out.bias",
    "transformer.layers.{}.post_attention_layernorm.weight": "layers.{}.mlp_norm.weight",
    "transformer.layers.{}.post_attention_layernorm.bias": "layers.{}.mlp_norm.bias",
    "transformer.layers.{}.mlp.dense_h_to_4h.weight": "layers.{}.mlp.up.weight",
    "transformer.layers.{}.mlp.dense_h_to_4h.bias": "layers.{}.mlp.up.bias",
    "transformer.layers.{}.mlp.dense_4h_to_h.weight": "layers.{}.mlp.down.weight",
    "transformer.layers.{}.mlp.dense_4h_to_h.bias": "layers.{}.mlp.down.bias",
    "transformer.final_layernorm.weight": "norm.weight",
    "transformer.final_layernorm.bias": "norm.bias",
}

# The logits come from the tied word embeddings: no head weights. FlagAI's task wrappers prefix
# the base names with "model." (listed here so they load; export writes the unprefixed names).
GLM_HEADS = {f"model.{ref}": f"model.{zoo}" for ref, zoo in GLM_BASE.items()}

GLM_WEIGHT_MAP = WeightMap(GLM_BASE, GLM_HEADS, reference_prefix="glm")
