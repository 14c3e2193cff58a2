"""How a (source, target) pair becomes training features and generation inputs, per family kind
(``Family.seq2seq_format``, from the declaration's ``kind``).

* encoder-decoder (t5, bart): ``input_ids = source + eos`` (``bos + source + eos`` where the tokenizer
  frames texts so, as BART's does), ``labels = target + eos``; generate returns
  the decoder ids, starting with the decoder start token; a config's ``forced_bos_token_id`` (BART's
  ``<s>``) also starts the labels. A tokenizer with language codes (mBART's
  ``src_lang`` / ``tgt_lang``) puts its own language specials around source and target instead, and
  generation is told to start the target with the ``tgt_lang`` code.
* prefix-LM (gpt2, llama, gpt): ``input_ids = source + sep + target + eos`` where ``sep`` is the
  tokenizer's eos token (bos when it has no eos); ``labels`` are -100 on ``source + sep`` (the model
  shifts them). Generation prompts are ``source + sep``, left padded.
* UniLM (bert, roberta ``BertForSeq2Seq``): ``[CLS] source [SEP] target [SEP]`` with token types 0
  on ``[CLS] source [SEP]`` and 1 on ``target [SEP]``; labels are the input ids with -100 on the
  source part (the model predicts token t+1 at position t). Generation prompts are
  ``[CLS] source [SEP]`` (type 0), left padded; generation stops at ``[SEP]``.
* GLM blank infilling: the context ``[CLS] source [gMASK]`` (bidirectional), then ``[sop] target``
  at the mask's position with block positions 1, 2, ... (causal); labels come shifted as FlagAI's
  ``target_ids``: -100 on the context, then ``target + [eop]``. ``sep`` marks the context's end.
  Generation uses :func:`zoo.models.glm.model.blank_infilling_inputs` and stops at ``[eop]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import DataCollatorForSeq2Seq

from zoo.family import get_family
from zoo.models.glm.model import blank_infilling_inputs

from .base import TaskDataError, ensure_pad_token, resolve_family

IGNORE = -100
_GLM_TOKENS = {  # config field -> token strings GLM tokenizers use
    "gmask_token_id": ("[gMASK]",),
    "mask_token_id": ("[MASK]",),
    "sop_token_id": ("<|startofpiece|>", "[sop]", "<sop>"),
    "eop_token_id": ("<|endofpiece|>", "[eop]", "<eop>"),
}


def _left_pad(rows: list[list[int]], fill: int) -> torch.Tensor:
    length = max(map(len, rows))
    return torch.tensor([[fill] * (length - len(row)) + row for row in rows], dtype=torch.long)


def _cut_at(ids: Sequence[int], stop: int | None, pad: int | None) -> list[int]:
    ids = list(ids)
    if stop is not None and stop in ids:
        ids = ids[: ids.index(stop)]
    return [t for t in ids if t != pad] if pad is not None and pad != stop else ids


class Seq2SeqFormat:
    """Base of the formats; ``source_overhead`` is how many tokens the format adds around the source."""

    kind = ""
    source_overhead = 1
    target_overhead = 1

    def __init__(self, tokenizer, config: Any = None):
        self.tokenizer = tokenizer
        self.config = config
        ensure_pad_token(tokenizer)
        self.pad = tokenizer.pad_token_id

    def encode(self, source_ids: Sequence[int], target_ids: Sequence[int]) -> dict[str, list]:
        raise NotImplementedError

    def generation_inputs(self, sources: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def decode_generated(self, output_ids: torch.Tensor, inputs: dict) -> list[list[int]]:
        start = inputs["input_ids"].shape[1]
        return [_cut_at(row, self.stop_token_id, self.pad) for row in output_ids[:, start:].tolist()]

    @property
    def stop_token_id(self) -> int | None:
        return self.tokenizer.eos_token_id

    def generation_kwargs(self) -> dict[str, Any]:
        return {"eos_token_id": self.stop_token_id, "pad_token_id": self.pad}

    def collator(self):
        return DataCollatorForSeq2Seq(self.tokenizer, label_pad_token_id=IGNORE)


class EncoderDecoderFormat(Seq2SeqFormat):
    """``source + eos`` -> ``target + eos``; ``forced_bos + target + eos`` where the model config forces a first
    generated token (BART's ``forced_bos_token_id``). With a language-code tokenizer (mBART's, mBART-50's:
    ``src_lang`` / ``tgt_lang``) the tokenizer's own language specials instead, and generation starts the
    target with the ``tgt_lang`` code (mBART-50: ``forced_bos_token_id``; mBART-cc25: ``decoder_start_token_id``)."""

    kind = "encoder-decoder"

    def __init__(self, tokenizer, config: Any = None):
        super().__init__(tokenizer, config)
        eos = tokenizer.eos_token_id
        if eos is None:
            raise TaskDataError("an encoder-decoder seq2seq needs a tokenizer with an eos token")
        self.source_specials, self.target_specials = ([], [eos]), ([], [eos])
        self.language_kwargs: dict[str, int] = {}
        languages = _language_specials(tokenizer)
        forced_bos = getattr(config, "forced_bos_token_id", None)  # BART: generation starts with bos
        if languages is not None:
            self.source_specials, self.target_specials, code = languages
            in_prefix = code in self.target_specials[0]
            self.language_kwargs = {"forced_bos_token_id" if in_prefix else "decoder_start_token_id": code}
            forced_bos = code if in_prefix else None
        else:
            if _frames_with_bos(tokenizer):  # BART's tokenizer: <s> source </s>, as in pre-training
                self.source_specials = ([tokenizer.bos_token_id], [eos])
            if isinstance(forced_bos, int):  # train the targets as generate will start them
                self.target_specials = ([forced_bos], [eos])
        self.generated_prefix = 2 if isinstance(forced_bos, int) else 1  # start (and forced) token
        self.source_overhead = sum(map(len, self.source_specials))
        self.target_overhead = sum(map(len, self.target_specials))

    def encode(self, source_ids, target_ids):
        source_prefix, source_suffix = self.source_specials
        target_prefix, target_suffix = self.target_specials
        input_ids = [*source_prefix, *source_ids, *source_suffix]
        labels = [*target_prefix, *target_ids, *target_suffix]
        return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}

    def generation_inputs(self, sources):
        prefix, suffix = self.source_specials
        rows = [[*prefix, *s, *suffix] for s in sources]
        length = max(map(len, rows))
        return {
            "input_ids": torch.tensor([r + [self.pad] * (length - len(r)) for r in rows]),
            "attention_mask": torch.tensor([[1] * len(r) + [0] * (length - len(r)) for r in rows]),
        }

    def generation_kwargs(self) -> dict[str, Any]:
        return {**super().generation_kwargs(), **self.language_kwargs}

    def decode_generated(self, output_ids, inputs):
        start = self.generated_prefix
        return [_cut_at(row[start:], self.stop_token_id, self.pad) for row in output_ids.tolist()]


def _frames_with_bos(tokenizer) -> bool:
    """Whether the tokenizer's own encoding frames a text as ``bos text eos`` (BART's, RoBERTa's), with a bos
    distinct from eos; T5's (``text eos``) and tokenizers without a template leave the source as it was."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if bos is None or bos == eos:
        return False
    probe = "a"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    framed = tokenizer(probe)["input_ids"]
    return bool(bare) and framed == [bos, *bare, eos]


def _language_specials(tokenizer) -> tuple[tuple[list, list], tuple[list, list], int] | None:
    """``((source prefix, suffix), (target prefix, suffix), tgt_lang id)`` of a tokenizer with language codes
    (transformers' mBART / mBART-50 tokenizers: ``src_lang``, ``tgt_lang``, ``set_*_lang_special_tokens``);
    None for other tokenizers."""
    if not hasattr(tokenizer, "set_tgt_lang_special_tokens") or getattr(tokenizer, "src_lang", None) is None:
        return None
    if getattr(tokenizer, "tgt_lang", None) is None:
        raise TaskDataError(
            f"{type(tokenizer).__name__} has src_lang={tokenizer.src_lang!r} but no tgt_lang: set the target "
            "language (e.g. AutoTokenizer.from_pretrained(..., src_lang='en_XX', tgt_lang='ro_RO'))"
        )
    tokenizer.set_tgt_lang_special_tokens(tokenizer.tgt_lang)
    target = (list(tokenizer.prefix_tokens), list(tokenizer.suffix_tokens))
    tokenizer.set_src_lang_special_tokens(tokenizer.src_lang)  # back to input mode
    source = (list(tokenizer.prefix_tokens), list(tokenizer.suffix_tokens))
    return source, target, tokenizer.convert_tokens_to_ids(tokenizer.tgt_lang)


class PrefixLMFormat(Seq2SeqFormat):
    kind = "prefix-lm"

    def __init__(self, tokenizer, config: Any = None):
        super().__init__(tokenizer, config)
        self.sep = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.bos_token_id
        if self.sep is None:
            raise TaskDataError("a prefix-LM seq2seq needs a tokenizer with an eos (or bos) token")

    def encode(self, source_ids, target_ids):
        eos = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else self.sep
        input_ids = [*source_ids, self.sep, *target_ids, eos]
        prompt = len(source_ids) + 1
        labels = [IGNORE] * prompt + input_ids[prompt:]
        return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}

    def generation_inputs(self, sources):
        rows = [[*s, self.sep] for s in sources]
        return {
            "input_ids": _left_pad(rows, self.pad),
            "attention_mask": _left_pad([[1] * len(r) for r in rows], 0),
        }


class UniLMFormat(Seq2SeqFormat):
    kind = "unilm"
    source_overhead = 2

    def __init__(self, tokenizer, config: Any = None):
        super().__init__(tokenizer, config)
        self.cls, self.sep = tokenizer.cls_token_id, tokenizer.sep_token_id
        if self.cls is None or self.sep is None:
            raise TaskDataError("a UniLM seq2seq needs a tokenizer with [CLS] and [SEP] tokens")

    def encode(self, source_ids, target_ids):
        prompt = [self.cls, *source_ids, self.sep]
        answer = [*target_ids, self.sep]
        input_ids = prompt + answer
        return {
            "input_ids": input_ids,
            "token_type_ids": [0] * len(prompt) + [1] * len(answer),
            "attention_mask": [1] * len(input_ids),
            "labels": [IGNORE] * len(prompt) + answer,
        }

    def generation_inputs(self, sources):
        rows = [[self.cls, *s, self.sep] for s in sources]
        ones = [[1] * len(r) for r in rows]
        return {
            "input_ids": _left_pad(rows, self.pad),
            "token_type_ids": _left_pad([[0] * len(r) for r in rows], 0),
            "attention_mask": _left_pad(ones, 0),
        }

    @property
    def stop_token_id(self):
        return self.sep


class GLMFormat(Seq2SeqFormat):
    kind = "glm"

    def __init__(self, tokenizer, config: Any = None):
        super().__init__(tokenizer, config)
        ids = {field: self._special_id(field) for field in _GLM_TOKENS}
        self.mask = ids["gmask_token_id"] if ids["gmask_token_id"] is not None else ids["mask_token_id"]
        self.sop, self.eop = ids["sop_token_id"], ids["eop_token_id"]
        if None in (self.mask, self.sop, self.eop):
            raise TaskDataError(
                "GLM seq2seq needs [gMASK] (or [MASK]), <|startofpiece|> and <|endofpiece|> ids: set "
                "gmask_token_id / sop_token_id / eop_token_id in the config or add the tokens to the tokenizer"
            )
        self.cls = tokenizer.cls_token_id
        self.source_overhead = 1 + int(self.cls is not None)

    def _special_id(self, field: str) -> int | None:
        value = getattr(self.config, field, None) if self.config is not None else None
        if value is not None:
            return value
        unk = self.tokenizer.unk_token_id
        for token in _GLM_TOKENS[field]:
            found = self.tokenizer.convert_tokens_to_ids(token)
            if found is not None and found != unk:
                return found
        return None

    def context(self, source_ids) -> list[int]:
        return ([self.cls] if self.cls is not None else []) + [*source_ids, self.mask]

    def encode(self, source_ids, target_ids):
        context = self.context(source_ids)
        blank = context.index(self.mask)
        target = [*target_ids, self.eop]
        input_ids = context + [self.sop, *target[:-1]]
        return {
            "input_ids": input_ids,
            "position_ids": [
                list(range(len(context))) + [blank] * len(target),
                [0] * len(context) + list(range(1, len(target) + 1)),
            ],
            "attention_mask": [1] * len(input_ids),
            "sep": len(context),
            "labels": [IGNORE] * len(context) + target,  # labels[i]: the token predicted at position i
        }

    def generation_inputs(self, sources):
        return blank_infilling_inputs(
            [self.context(s) for s in sources], [self.mask], self.sop, pad_token_id=self.pad
        )

    @property
    def stop_token_id(self):
        return self.eop

    def collator(self):
        return GLMCollator(self.pad)


class GLMCollator:
    """Right-pads GLM features: ids with pad, the (2, seq) positions with 0, labels with -100; keeps sep."""

    def __init__(self, pad_token_id: int):
        self.pad = pad_token_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        length = max(len(f["input_ids"]) for f in features)

        def pad(values, fill):
            values = list(values)
            return values + [fill] * (length - len(values))

        batch = {
            "input_ids": torch.tensor([pad(f["input_ids"], self.pad) for f in features]),
            "attention_mask": torch.tensor([pad(f["attention_mask"], 0) for f in features]),
            "position_ids": torch.tensor([[pad(row, 0) for row in f["position_ids"]] for f in features]),
            "sep": torch.tensor([int(f["sep"]) for f in features]),
        }
        if "labels" in features[0]:
            batch["labels"] = torch.tensor([pad(f["labels"], IGNORE) for f in features])
        return batch


_FORMATS = {
    "encoder-decoder": EncoderDecoderFormat,
    "prefix-lm": PrefixLMFormat,
    "unilm": UniLMFormat,
    "glm": GLMFormat,
}


def seq2seq_format(tokenizer, family_or_model: Any) -> Seq2SeqFormat:
    """The format of a family (a name, a config or a model; the config supplies GLM's special ids)."""
    family, config = resolve_family(family_or_model)
    return _FORMATS[get_family(family).seq2seq_format](tokenizer, config)
