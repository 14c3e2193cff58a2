"""Outside code extends the zoo at run time: config builders, new families, replaced classes."""

import json

import pytest
import torch
import transformers
from huggingface_hub.dataclasses import strict
from torch import nn

import zoo
from zoo.blocks import PreNormDecoderBlock
from zoo.causal_lm import CausalLMMixin
from zoo.layers import positions_after_cache


def _llama_checkpoint(directory):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    reference = transformers.LlamaForCausalLM(config).eval()
    reference.save_pretrained(directory)
    return reference


def test_config_builder_maps_foreign_config_names(tmp_path):
    reference = _llama_checkpoint(tmp_path)
    # The same weights, described by a config.json that uses other names.
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "acme_lm",
                "dim": 32,
                "ffn_dim": 48,
                "n_layers": 2,
                "n_heads": 4,
                "n_kv_heads": 2,
                "vocab": 97,
                "context": 64,
            }
        )
    )
    with pytest.raises(zoo.UnknownNameError, match="config builders tried: none registered"):
        zoo.load(tmp_path)

    def build(c):
        return zoo.LlamaConfig(
            hidden_size=c["dim"],
            intermediate_size=c["ffn_dim"],
            num_hidden_layers=c["n_layers"],
            num_attention_heads=c["n_heads"],
            num_key_value_heads=c["n_kv_heads"],
            vocab_size=c["vocab"],
            max_position_embeddings=c["context"],
            reference_model_type="llama",
        )

    builder = zoo.register_config_builder(
        "acme",
        lambda c: c.get("model_type") == "acme_lm",
        build,
        weight_layout="llama",
        model_class=zoo.LlamaForCausalLM,
    )
    try:
        model = zoo.load(tmp_path)
        assert type(model) is zoo.LlamaForCausalLM
        ids = torch.randint(0, 97, (2, 9))
        with torch.no_grad():
            assert (model(input_ids=ids).logits - reference(ids).logits).abs().max().item() <= 1e-5
        other = zoo.LlamaForCausalLM.from_pretrained(tmp_path)
        assert torch.equal(other.lm_head.weight, model.lm_head.weight)
    finally:
        zoo.registry._BUILDERS.remove(builder)


@strict
class TinyParallelConfig(zoo.ZooConfig):
    """A family defined outside the package: GPT-2-like, RMSNorm, no positions beyond a learned table."""

    model_type = "acme_tiny"
    zoo_model_types = ("acme_tiny",)
    norm_type: str = "rmsnorm"


class TinyParallelPreTrained(zoo.ZooPreTrainedModel):
    config_class = TinyParallelConfig
    _no_split_modules = ["PreNormDecoderBlock"]


class TinyParallelModel(TinyParallelPreTrained):
    def __init__(self, config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.layers = nn.ModuleList(PreNormDecoderBlock(config, i) for i in range(config.num_hidden_layers))
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        from transformers.modeling_outputs import BaseModelOutputWithPast

        positions = positions_after_cache(input_ids.shape, 0, input_ids.device)
        hidden = self.embed_tokens(input_ids) + self.embed_positions(positions)
        for block in self.layers:
            hidden = block(hidden, None)
        return BaseModelOutputWithPast(last_hidden_state=hidden)


class TinyParallelForCausalLM(CausalLMMixin, TinyParallelPreTrained, transformers.GenerationMixin):
    base_model_class = TinyParallelModel


def test_family_registered_from_outside(tmp_path):
    zoo.register_class(TinyParallelModel, transformers.AutoModel)
    zoo.register_class(TinyParallelForCausalLM, transformers.AutoModelForCausalLM)
    config = TinyParallelConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=16,
        hidden_dropout=0.0,
        attention_dropout=0.0,
    )
    model = TinyParallelForCausalLM(config).eval()
    model.save_pretrained(tmp_path)
    ids = torch.randint(0, 50, (1, 8))
    for loaded in (transformers.AutoModelForCausalLM.from_pretrained(tmp_path), zoo.load(tmp_path)):
        assert type(loaded) is TinyParallelForCausalLM
        assert torch.equal(loaded(input_ids=ids).logits, model(input_ids=ids).logits)
    assert zoo.registered_classes()["TinyParallelForCausalLM"] is TinyParallelForCausalLM
    loss = model(input_ids=ids, labels=ids).loss
    assert loss.item() > 1.0


def test_replacing_the_class_for_an_architecture(tmp_path):
    class CountingGPT2(zoo.GPT2ForCausalLM):
        calls = 0

        def forward(self, *args, **kwargs):
            CountingGPT2.calls += 1
            return super().forward(*args, **kwargs)

    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(
        transformers.GPT2Config(vocab_size=60, n_embd=32, n_layer=1, n_head=2)
    ).save_pretrained(tmp_path)
    zoo.register_class(CountingGPT2)
    try:
        model = zoo.load(tmp_path)
        assert type(model) is CountingGPT2
        model(input_ids=torch.tensor([[1, 2, 3]]))
        assert CountingGPT2.calls == 1
    finally:
        zoo.register_class(zoo.GPT2ForCausalLM)
    assert type(zoo.load(tmp_path)) is zoo.GPT2ForCausalLM
