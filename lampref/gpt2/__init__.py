"""GPT-2 in NumPy: configuration, weights loaders, tokenizer, and a forward pass whose every matrix-product
site runs under its own accumulation model (:class:`~lampref.gpt2.PrecisionPlan`)."""

from pathlib import Path

from .config import GPT2Config
from .model import GPT2, GPT2Trace
from .plan import SITES, AttentionProbs, PrecisionPlan, ScoreRule, ScoreStats
from .tokenizer import Tokenizer
from .weights import Checkpoint, GPT2Params, load, load_llmc, random_params, save, save_llmc, save_npz

__all__ = [
    "GPT2",
    "SITES",
    "AttentionProbs",
    "GPT2Config",
    "GPT2Trace",
    "PrecisionPlan",
    "ScoreRule",
    "ScoreStats",
    "Tokenizer",
    "default_model",
]
# The checkpoint readers and writers of lampref.gpt2.weights, re-exported.
__all__ += ["Checkpoint", "GPT2Params", "load", "load_llmc", "random_params", "save", "save_llmc", "save_npz"]

DEFAULT_MODEL_DIR = Path(__file__).parent / "data" / "default"
"""Where the embedded default model lives (``config.json``, ``model.safetensors``, ``MODEL_CARD.md``)."""


def default_model() -> GPT2:
    """lampref's embedded model: a small GPT-2 with the real GPT-2 vocabulary, trained on the training split
    of the bundled corpora (see ``MODEL_CARD.md`` in :data:`DEFAULT_MODEL_DIR`), stored in float16 and
    widened exactly to float32.

    Raises
    ------
    WeightsNotFoundError
        If the package was installed without its model data.
    """
    from ..errors import WeightsNotFoundError

    if not (DEFAULT_MODEL_DIR / "model.safetensors").is_file():
        raise WeightsNotFoundError(f"{DEFAULT_MODEL_DIR}: the embedded model is missing from this install")
    return GPT2.load(DEFAULT_MODEL_DIR)
