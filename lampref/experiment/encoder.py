r"""The encoder study: LAMP in a BERT encoder (:mod:`lampref.bert`), measured on hidden states, sentence
embeddings and retrieval.

An encoder has no next-token distribution, so the study measures what an encoder is used for, against the
float32 model, for every setting of the grid:

* on ``sequences`` windows of ``seq_len`` tokens of each corpus (``[CLS]``, ``seq_len - 2`` word pieces,
  ``[SEP]``, as the model saw in training): the relative error of the last hidden states
  (``hidden_err``), and of the window's sentence embedding (mean pooling, then L2 normalisation:
  ``embedding_err``), and ``1 - cos`` of the embeddings (``cosine_err``), each averaged over the windows;
  the recomputed fraction of the visible scores (``sparsity``; every row sees every token);
* on a fixed retrieval set of sentences of the corpus (:func:`sentences`): the share whose nearest
  neighbour by cosine similarity changes (``retrieval_flip``, :func:`lampref.metrics.retrieval_flip_rate`),
  the encoder's analogue of the decoder's flip rate.

:func:`~lampref.experiment.run_experiment` runs this study when its model is a
:class:`~lampref.bert.BertModel`; the rows go to the same CSV as a decoder's
(:mod:`lampref.experiment.results`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from .._validate import is_int
from ..bert import BertModel
from ..bert.model import mean_pool
from ..bert.tokenizer import WordPieceTokenizer
from ..errors import ExperimentError
from ..gpt2 import PrecisionPlan, ScoreStats
from ..metrics import cosine_distance, nearest_neighbours, relative_error

__all__ = ["RETRIEVAL_SENTENCES", "corpus_pieces", "sentences"]

RETRIEVAL_SENTENCES = 32
"""Sentences in the retrieval set of a corpus (:func:`sentences`)."""

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")  # after . ! ? and at blank lines
_PIECES = (8, 62)  # word pieces a retrieval sentence may have (then [CLS] and [SEP])

Array = NDArray[Any]


def corpus_pieces(text: str, tokenizer: WordPieceTokenizer) -> NDArray[np.int64]:
    """The word-piece ids of a whole corpus, without ``[CLS]`` and ``[SEP]`` (windows add them).

    >>> from lampref.bert.tokenizer import WordPieceTokenizer
    >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "##s", "."])
    >>> corpus_pieces("The cats.", tok).tolist()
    [4, 5, 6, 7]
    """
    ids = [tokenizer.token_to_id(t) for t in tokenizer.tokenize(text)]
    return np.asarray([tokenizer.unk_id if i is None else i for i in ids], dtype=np.int64)


def sentences(text: str, tokenizer: WordPieceTokenizer, count: int = RETRIEVAL_SENTENCES) -> list[list[int]]:
    """A fixed retrieval set: ``count`` sentences of ``text``, evenly spread over it, each of 8 to 62 word
    pieces, as token ids with ``[CLS]`` and ``[SEP]``.

    Sentences end after ``.``, ``!`` or ``?`` followed by white space, or at a blank line; shorter or longer
    ones are passed over.

    Raises
    ------
    ExperimentError
        The text holds fewer than ``count`` such sentences, or ``count < 2``.

    Examples
    --------
    >>> from lampref.bert.tokenizer import WordPieceTokenizer
    >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "."])
    >>> text = "a b a b a b a b. Too short. b a b a b a b a!"
    >>> [len(ids) for ids in sentences(text, tok, 2)]  # [CLS], 9 pieces, [SEP]; the short one passed over
    [11, 11]
    """
    if not is_int(count) or count < 2:
        raise ExperimentError(f"count={count!r} is not valid; expected an integer >= 2")
    found = []
    for sentence in _SENTENCE_END.split(text):
        ids = tokenizer.encode(sentence, truncate=True)
        if _PIECES[0] <= len(ids) - 2 <= _PIECES[1]:
            found.append(ids)
    if len(found) < count:
        raise ExperimentError(
            f"the corpus holds {len(found)} sentences of {_PIECES[0]} to {_PIECES[1]} word pieces; the "
            f"retrieval set needs {count}"
        )
    step = len(found) // count
    return [found[i * step] for i in range(count)]


def wrap_windows(batch: NDArray[np.int64], model: BertModel) -> NDArray[np.int64]:
    """Windows of word pieces ``[n, T - 2]`` framed as the model reads a text: ``[CLS] ... [SEP]``."""
    tok = model.tokenizer
    if tok is None:
        raise ExperimentError("the encoder study needs a model with a tokenizer (BertModel.load)")
    n = batch.shape[0]
    cls = np.full((n, 1), tok.cls_id, dtype=np.int64)
    sep = np.full((n, 1), tok.sep_id, dtype=np.int64)
    return np.concatenate([cls, batch, sep], axis=1)  # [n, T]


class EncoderReference(NamedTuple):
    """The float32 model's outputs the settings are compared with."""

    hidden: list[Array]  # per window [T, C]
    embeddings: Array  # [windows, C]
    neighbours: NDArray[np.intp]  # [sentences], nearest neighbour of each retrieval sentence


def _embed_window(h: Array) -> Array:
    """The sentence embedding of a window (no padding): mean pooling, L2 normalisation, ``[T, C] -> [C]``."""
    return mean_pool(h, np.ones(h.shape[0], dtype=bool))


def encoder_reference(
    model: BertModel, batch: NDArray[np.int64], sents: Sequence[Sequence[int]]
) -> EncoderReference:
    """The float32 reference of one corpus: hidden states and embeddings of its windows, and the nearest
    neighbours of its retrieval sentences."""
    hidden = [model.hidden_states(seq) for seq in batch]  # float32 [T, C] each
    emb = np.stack([_embed_window(h) for h in hidden])  # [n, C]
    return EncoderReference(hidden, emb, nearest_neighbours(model.embed(list(sents))))


def measure_encoder(
    model: BertModel,
    batch: NDArray[np.int64],
    sents: Sequence[Sequence[int]],
    ref: EncoderReference,
    plan: PrecisionPlan,
) -> tuple[dict[str, Any], list[tuple[ScoreStats, ...]]]:
    """The encoder metrics of one setting on one corpus (module notes) and the score statistics of each
    window."""
    hidden_err = 0.0
    embs, stats_all = [], []
    for seq, h_ref in zip(batch, ref.hidden, strict=True):
        h, stats = model.hidden_states_and_stats(seq, plan)  # [T, C]
        hidden_err += relative_error(h_ref, h)
        embs.append(_embed_window(h))
        stats_all.append(stats)
    emb = np.stack(embs)  # [n, C]
    emb_err = [relative_error(r, e) for r, e in zip(ref.embeddings, emb, strict=True)]  # per window
    neighbours = nearest_neighbours(model.embed(list(sents), plan))  # [sentences]
    n = len(batch)
    metrics = {
        "positions": int(batch.size),
        "hidden_err": hidden_err / n,
        "embedding_err": float(np.mean(emb_err)),
        "cosine_err": float(cosine_distance(ref.embeddings, emb).mean()),
        "retrieval_flip": float(np.mean(neighbours != ref.neighbours)),
        "sentences": len(sents),
    }
    return metrics, stats_all
