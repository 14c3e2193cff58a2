"""T5's encoder stack alone: the backbone of T5's task heads."""

from .model import T5PreTrainedModel, T5Stack


class T5EncoderModel(T5PreTrainedModel):
    """T5's encoder stack alone (as transformers' ``T5EncoderModel``): the backbone of T5's non-LM heads.

    Its parameters are named ``encoder.*`` like the full model's, so T5 checkpoints load into it and
    their decoder and LM head are ignored.
    """

    def __init__(self, config):
        super().__init__(config)
        self.encoder = T5Stack(config, is_decoder=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.encoder.embed_tokens

    def set_input_embeddings(self, value) -> None:
        self.encoder.embed_tokens = value

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs):
        return self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs
        )
