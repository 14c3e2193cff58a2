"""Blocks: layers composed into the two residual orders the families use."""

from .decoder import PreNormDecoderBlock
from .encoder import PostNormEncoderBlock

__all__ = ["PostNormEncoderBlock", "PreNormDecoderBlock"]
