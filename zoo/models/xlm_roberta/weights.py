"""XLM-RoBERTa: transformers / Hub names -> zoo names.

transformers' XLM-RoBERTa classes are RoBERTa's under other names: the same base prefix (``roberta.``),
the same encoder and masked-LM head names, the same token classifier. The map is RoBERTa's.
"""

from ..bert.weights import ROBERTA_WEIGHT_MAP

XLM_ROBERTA_WEIGHT_MAP = ROBERTA_WEIGHT_MAP
