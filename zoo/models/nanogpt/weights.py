"""nanoGPT checkpoint names -> zoo names.

nanoGPT's module tree is GPT-2's (``transformer.h.{}.attn.c_attn``, ...), but its projections are
``nn.Linear``: the GPT-2 table without the Conv1D transposes.
"""

from ...weights import Transposed, WeightMap
from ..gpt2.weights import GPT2_BASE, GPT2_HEADS

NANOGPT_BASE = {ref: zoo.name if isinstance(zoo, Transposed) else zoo for ref, zoo in GPT2_BASE.items()}

NANOGPT_WEIGHT_MAP = WeightMap(NANOGPT_BASE, GPT2_HEADS, reference_prefix="transformer")
