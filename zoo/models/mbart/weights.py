"""mBART: transformers / Hub names -> zoo names; BART's table, whose ``{encoder,decoder}.layer_norm`` rows
(the final norms) only mBART checkpoints hold."""

from ..bart.weights import BART_WEIGHT_MAP

MBART_WEIGHT_MAP = BART_WEIGHT_MAP
