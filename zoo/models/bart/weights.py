"""BART / mBART: transformers / Hub names -> zoo names.

Base names sit under ``model.`` in the head checkpoints (``BartForConditionalGeneration``,
``BartForSequenceClassification``) and bare in ``BartModel``'s. Query / key / value fuse into ``qkv``,
cross-attention key / value into ``kv``. The token embedding is stored once, as ``shared``; the encoder's
and decoder's ``embed_tokens`` (tied to it) are aliases older checkpoints also store. mBART adds the
final ``layer_norm`` of each stack.
"""

from ...weights import WeightMap


def _stack(stack: str, decoder: bool) -> dict:
    layer, zoo = f"{stack}.layers.{{}}", f"{stack}.layers.{{}}"
    table = {
        f"{stack}.embed_tokens.weight": "shared.weight",  # tied alias of shared.weight
        f"{stack}.embed_positions.weight": f"{stack}.embed_positions.weight",
        f"{stack}.layernorm_embedding.weight": f"{stack}.embed_norm.weight",
        f"{stack}.layernorm_embedding.bias": f"{stack}.embed_norm.bias",
        f"{stack}.version": None,  # fairseq's bookkeeping buffer in old checkpoints
    }
    sublayers = [("self_attn", "attn", "self_attn_layer_norm", "attn_norm")]
    if decoder:
        sublayers.append(("encoder_attn", "cross_attn", "encoder_attn_layer_norm", "cross_attn_norm"))
    for reference, ours, reference_norm, our_norm in sublayers:
        for kind in ("weight", "bias"):
            if ours == "attn":
                table[tuple(f"{layer}.{reference}.{p}_proj.{kind}" for p in "qkv")] = f"{zoo}.attn.qkv.{kind}"
            else:
                table[f"{layer}.{reference}.q_proj.{kind}"] = f"{zoo}.{ours}.q.{kind}"
                table[tuple(f"{layer}.{reference}.{p}_proj.{kind}" for p in "kv")] = f"{zoo}.{ours}.kv.{kind}"
            table[f"{layer}.{reference}.out_proj.{kind}"] = f"{zoo}.{ours}.out.{kind}"
            table[f"{layer}.{reference_norm}.{kind}"] = f"{zoo}.{our_norm}.{kind}"
    for kind in ("weight", "bias"):
        table[f"{layer}.fc1.{kind}"] = f"{zoo}.mlp.up.{kind}"
        table[f"{layer}.fc2.{kind}"] = f"{zoo}.mlp.down.{kind}"
        table[f"{layer}.final_layer_norm.{kind}"] = f"{zoo}.mlp_norm.{kind}"
        table[f"{stack}.layer_norm.{kind}"] = f"{stack}.norm.{kind}"  # mBART's final norm
    return table


BART_BASE = {"shared.weight": "shared.weight", **_stack("encoder", False), **_stack("decoder", True)}

BART_HEADS = {
    "lm_head.weight": "lm_head.weight",  # tied to model.shared.weight
    "final_logits_bias": "final_logits_bias",
    # BartForSequenceClassification's head, named `classifier` here as PEFT's modules_to_save expects
    "classification_head.dense.weight": "classifier.dense.weight",
    "classification_head.dense.bias": "classifier.dense.bias",
    "classification_head.out_proj.weight": "classifier.out_proj.weight",
    "classification_head.out_proj.bias": "classifier.out_proj.bias",
}

BART_WEIGHT_MAP = WeightMap(BART_BASE, BART_HEADS, reference_prefix="model")
