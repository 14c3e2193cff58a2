"""Blocks: layers composed into the two residual orders the families use."""

from .decoder import PreNormDecoderBlock
from .encoder import PostNormEncoderBlock
from .seq2seq import PreNormSeq2SeqBlock

__all__ = ["PostNormEncoderBlock", "PreNormDecoderBlock", "PreNormSeq2SeqBlock"]
