r"""The LAMP study: the error of a model with LAMP against the float32 model, over a grid of settings.

A decoder (:mod:`lampref.gpt2`) is measured by KL divergence and flip rate of its next-token distributions,
an encoder (:mod:`lampref.bert`) by the errors of its hidden states and sentence embeddings and by a
retrieval flip rate (:mod:`lampref.experiment.encoder`). The study comes in three parts:

* the run (:mod:`lampref.experiment.run`): the grid of settings (:func:`grid`, :class:`Setting`), the
  token windows of each corpus (:func:`windows`) and the runner (:func:`run_experiment`), which measures
  every setting on every corpus against the float32 model;
* the results file (:mod:`lampref.experiment.results`): the CSV the runner appends to, one row per
  (corpus, setting), resumable, with the LAMP authors' columns first (:data:`CSV_COLUMNS`), read back by
  :func:`read_results`;
* the report (:mod:`lampref.experiment.report`): the summary table (:func:`summary_table`) and the
  figures (:func:`plot_results`).
"""

from __future__ import annotations

from ..errors import ExperimentError
from . import results
from .encoder import RETRIEVAL_SENTENCES, corpus_pieces, sentences
from .report import plot_results, sites_table, summary_table
from .results import *  # noqa: F403
from .run import (
    ACCUMULATIONS,
    AUTHORS_M_BITS,
    AUTHORS_TAUS,
    BUNDLED_CORPORA,
    STUDY_SITES,
    Setting,
    bundled_corpora,
    grid,
    run_experiment,
    storage_format,
    windows,
)

__all__ = [
    "ACCUMULATIONS",
    "AUTHORS_M_BITS",
    "AUTHORS_TAUS",
    "BUNDLED_CORPORA",
    "RETRIEVAL_SENTENCES",
    "STUDY_SITES",
    "ExperimentError",
    "Setting",
    "bundled_corpora",
    "corpus_pieces",
    "grid",
    "plot_results",
    "run_experiment",
    "sentences",
    "sites_table",
    "storage_format",
    "summary_table",
    "windows",
]
__all__ += results.__all__  # the results file: its columns and reader
