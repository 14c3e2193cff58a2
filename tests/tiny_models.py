"""Tiny models and tokenizers that work offline, shared by the task and AutoLoader tests.

``wordpiece_tokenizer()`` is a BERT-style WordPiece over a few English words and Chinese characters
(with GLM's special tokens); ``bpe_tokenizer()`` a byte-level BPE trained on the same words.
``save_tiny_checkpoint(family, directory)`` writes what a user downloads: a pre-trained model of the
family (masked LM, causal LM, T5, GLM) in the zoo layout, with its tokenizer.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

import zoo

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[gMASK]", "<|startofpiece|>", "<|endofpiece|>"]
_WORD_TEXT = (
    "the a cat dog sat on mat ran in park john lives paris london works at acme is good bad movie film"
)
WORDS = [
    *_WORD_TEXT.split(),
    *["i", "love", "hate", "it", "this", "was", ".", ",", "!", "?", "and", "of", "to"],
]
CHARS = list("我爱北京上海张三住在天安门今很好坏电影")


def wordpiece_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {
        token: i for i, token in enumerate([*SPECIALS, *WORDS, *CHARS, "##s", "##ing", "##ed", "x", "##x"])
    }
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        eos_token="[SEP]",
        additional_special_tokens=SPECIALS[5:],
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )
    tokenizer.model_max_length = 512
    return tokenizer


@cache
def _bpe_files() -> Path:
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="zoo-tiny-bpe-"))
    tokenizer = zoo.train_bpe_tokenizer(
        [" ".join(WORDS)] * 5 + ["the cat sat on the mat"], vocab_size=300, min_frequency=1
    )
    tokenizer.save_pretrained(directory)
    return directory


def bpe_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE (trained once per process, then loaded: training is the slow part)."""
    return zoo.load_tokenizer(_bpe_files())


SMALL = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, hidden_dropout=0.0, attention_dropout=0.0
)


def tokenizer_for(family: str) -> PreTrainedTokenizerFast:
    """The tokenizer the family's kind is trained with (``Family.tokenizer_kind``)."""
    return wordpiece_tokenizer() if zoo.get_family(family).tokenizer_kind == "wordpiece" else bpe_tokenizer()


def tiny_pretrained_model(family: str, tokenizer) -> torch.nn.Module:
    """A randomly initialised pre-training model of ``family`` sized for ``tokenizer``."""
    torch.manual_seed(0)
    vocab = len(tokenizer)
    ids = tokenizer.convert_tokens_to_ids
    if family in ("bert", "roberta", "xlm-roberta"):
        config_class = zoo.get_family(family).config_class
        model_class = zoo.get_family(family).lm_heads["masked-lm"]
        config = config_class(
            vocab_size=vocab, intermediate_size=64, max_position_embeddings=128,
            pad_token_id=tokenizer.pad_token_id, **SMALL,
        )  # fmt: skip
        return model_class(config)
    if family == "t5":
        config = zoo.T5Config(
            vocab_size=vocab, head_dim=8, intermediate_size=64, relative_attention_num_buckets=8,
            relative_attention_max_distance=16, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id, **SMALL,
        )  # fmt: skip
        return zoo.T5ForConditionalGeneration(config)
    if family == "glm":
        config = zoo.GLMConfig(
            vocab_size=vocab, max_position_embeddings=128, embedding_dropout=0.0,
            pad_token_id=tokenizer.pad_token_id, mask_token_id=ids("[MASK]"), gmask_token_id=ids("[gMASK]"),
            sop_token_id=ids("<|startofpiece|>"), eop_token_id=ids("<|endofpiece|>"), **SMALL,
        )  # fmt: skip
        return zoo.GLMForSeq2Seq(config)
    special = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    if family == "gpt2":
        config = zoo.GPT2Config(
            vocab_size=vocab, max_position_embeddings=128, embedding_dropout=0.0, **special, **SMALL
        )
        return zoo.GPT2ForCausalLM(config)
    if family == "llama":
        config = zoo.LlamaConfig(
            vocab_size=vocab, intermediate_size=64, max_position_embeddings=128, num_key_value_heads=2,
            **special, **SMALL,
        )  # fmt: skip
        return zoo.LlamaForCausalLM(config)
    if family == "gpt":
        config = zoo.GPTConfig(
            vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=128, **special,
        )  # fmt: skip
        return zoo.GPT(config)
    declaration = zoo.get_family(family)  # any other family: its declared tiny config and LM class
    if not declaration.tiny_config:
        raise ValueError(f"no tiny model for family {family!r}")
    lm_class = next(
        declaration.lm_heads[k] for k in ("causal-lm", "masked-lm", "seq2seq") if k in declaration.lm_heads
    )
    config = declaration.config_class(
        **{**declaration.tiny_config, "vocab_size": vocab, "pad_token_id": tokenizer.pad_token_id, **special}
    )
    return lm_class(config)


def save_tiny_checkpoint(family: str, directory: str | Path) -> Path:
    """A pre-trained checkpoint of ``family`` with its tokenizer, as a model directory."""
    directory = Path(directory)
    tokenizer = tokenizer_for(family)
    tiny_pretrained_model(family, tokenizer).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def fit_full_batch(model, collator, dataset, steps: int = 20, lr: float = 3e-3) -> list[float]:
    """Train on the whole (tiny) dataset as one batch; the loss of every step."""
    batch = collator([dataset[i] for i in range(len(dataset))])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
