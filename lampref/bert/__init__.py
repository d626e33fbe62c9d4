"""A BERT encoder in NumPy: configuration, parameters from a Hugging Face state dict, and a forward pass
whose every matrix-product site runs under the accumulation model a
:class:`~lampref.gpt2.plan.PrecisionPlan` gives it."""

from .config import BertConfig
from .model import BertModel, BertParams, BertTrace

__all__ = ["BertConfig", "BertModel", "BertParams", "BertTrace"]
