"""GPT-2 in NumPy: configuration, weights loaders, tokenizer, and a forward pass whose every matrix-product
site runs under its own accumulation model (:class:`~lampref.gpt2.PrecisionPlan`)."""

from .config import GPT2Config
from .model import GPT2, GPT2Trace
from .plan import SITES, AttentionProbs, PrecisionPlan, ScoreRule
from .tokenizer import Tokenizer
from .weights import Checkpoint, GPT2Params, load, load_llmc, random_params, save, save_llmc, save_npz

__all__ = [
    "GPT2",
    "SITES",
    "AttentionProbs",
    "Checkpoint",
    "GPT2Config",
    "GPT2Params",
    "GPT2Trace",
    "PrecisionPlan",
    "ScoreRule",
    "Tokenizer",
    "load",
    "load_llmc",
    "random_params",
    "save",
    "save_llmc",
    "save_npz",
]
