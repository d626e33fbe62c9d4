r"""The run: the grid of settings, the token windows, and the runner that measures each setting.

For every corpus and every setting of the grid (mantissa bits ``m`` of the key-query products, LAMP
threshold ``tau``, selection rule, random baseline or not, accumulation model), the runner computes the
next-token distributions of the model with the emulated score site and compares them with the float32
model's: :func:`lampref.metrics.kl_divergence` (KL(P_fp32 || P_test) averaged over positions) and
:func:`lampref.metrics.flip_rate` (share of positions whose argmax changes), plus the recomputed fraction of
the attention scores (per layer and overall). A flip rate counts changed argmaxes over the ``positions`` of a
row, so it moves in steps of ``1 / positions``; :func:`~lampref.experiment.summary_table` states that
resolution.

Each row is appended to the results CSV as soon as it is computed, and a run resumes where an earlier one
stopped (:mod:`lampref.experiment.results`).

The rows can be computed in parallel: ``jobs`` worker processes on this machine, or the workers of a Dask
cluster (``scheduler``, with the ``distributed`` extra). The parent process stays the only writer: it
sends the study (the model, the windows of every corpus, the retrieval sentences) once to each worker,
submits one task per (corpus, setting) row and appends the rows to the CSV as they finish. Each worker
computes the float32 reference of a corpus once and keeps it while its rows come in. A row's numbers depend
only on the model, the windows and the setting (the random draws are seeded by ``seed``, the layer and the
position), so a parallel run writes the same rows as a serial one, in another order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import numbers
import os
import sys
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import mx
from .._validate import check_bool, check_choice, is_int
from ..accumulate import Accumulator
from ..analysis._checks import check_tau
from ..bert import BertModel
from ..errors import ExperimentError, LamprefError, expected_one_of
from ..formats import fp32_mantissa, get_format
from ..gpt2 import PrecisionPlan, ScoreStats
from ..gpt2.plan import SITES
from ..lamp import RULES, LampConfig, recompute_fraction
from ..lamp_sites import GeluLamp, HeadLamp, NormLamp, site_fractions
from ..metrics import kl_from_log_probs, log_softmax
from .encoder import EncoderReference, encoder_reference, measure_encoder, wrap_windows
from .results import (
    BASELINE_KINDS,
    SETTING_DEFAULTS,
    append_row,
    check_identity,
    config_hash,
    digest,
    existing_rows,
    make_row,
    model_digest,
    prepare_output,
    truncate,
    writer_lock,
)

__all__ = [
    "ACCUMULATIONS",
    "AUTHORS_M_BITS",
    "AUTHORS_TAUS",
    "BUNDLED_CORPORA",
    "STUDY_SITES",
    "Setting",
    "bundled_corpora",
    "grid",
    "run_experiment",
    "storage_format",
    "windows",
]

AUTHORS_M_BITS: tuple[int, ...] = (2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22)
AUTHORS_TAUS: tuple[float, ...] = (2.0, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4, 1.3, 1.2, 1.1, 1.08, 1.06, 1.04, 1.02)

_LAMP_BASELINE = {"none": None, "random": "random", "authors": "random_authors"}  # -> LampConfig.baseline


def _strict(m: int) -> Accumulator:
    return Accumulator(fp32_mantissa(m))


def _blocked(m: int) -> Accumulator:
    return Accumulator(fp32_mantissa(m), block=32)


def _authors(m: int) -> Accumulator:
    return Accumulator.authors(m)


ACCUMULATIONS: dict[str, Callable[[int], Accumulator]] = {
    "strict": _strict,
    "blocked": _blocked,
    "authors": _authors,
}
"""How the key-query products are accumulated at ``m`` bits: exact rounding after every product,
exact 32-wide blocks, or the authors' float32-staged kernel after every product."""


REF_CACHE_BYTES = 2 * 2**30
"""The reference log-probabilities of a corpus (float64, sequences x seq_len x vocabulary) are computed
once and kept when they fit in this many bytes; larger runs keep the float32 reference logits instead and
recompute their log-softmax for every setting."""


STUDY_SITES: tuple[str, ...] = ("attn.score", "attn.proj", "mlp.fc", "mlp.proj", "lm_head")
"""The sites where look-ahead recomputation can apply (``lamp_sites``): the attention softmax's scores
(:class:`~lampref.lamp.LampConfig`, threshold ``tau``), GELU's inputs (:class:`~lampref.lamp_sites.GeluLamp`,
``gelu_tau``), the output projections feeding a LayerNorm (:class:`~lampref.lamp_sites.NormLamp`,
``norm_tau``) and the logits feeding the next-token softmax (:class:`~lampref.lamp_sites.HeadLamp`, the
softmax threshold ``tau`` again)."""


def storage_format(name: str) -> Any:
    """The operand storage format a ``storage`` name stands for: None for ``"none"``, a
    :class:`~lampref.formats.FloatFormat` (:func:`~lampref.formats.get_format`), or an MX block format
    (``"mxfp8"``, ``"mx:e4m3:16"``: :func:`lampref.mx.get_spec`).

    >>> storage_format("none") is None, storage_format("bf16").name
    (True, 'bf16')
    """
    if not isinstance(name, str) or not name:
        raise ExperimentError(f"storage={name!r} is not valid; expected 'none', a format name or an MX name")
    if name == "none":
        return None
    if name.startswith("mx"):
        try:
            return mx.get_spec(name)
        except (LamprefError, ValueError) as err:
            raise ExperimentError(f"storage={name!r} is not a valid MX name: {err}") from None
    try:
        return get_format(name)
    except LamprefError as err:
        raise ExperimentError(f"storage={name!r} is not valid: {err}") from None


def _site_list(value: Any, name: str, allowed: Sequence[str]) -> str:
    """Sites given as a comma-separated string (``"all"``: every allowed site; ``""`` or ``"none"``: no
    site) or a sequence, checked against ``allowed`` and written in site order, comma separated."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        raise ExperimentError(f"{name}={value!r} is not valid; expected sites separated by commas")
    if items == ["all"]:
        items = list(allowed)
    if items == ["none"]:
        items = []
    for item in items:
        if item not in allowed:
            raise ExperimentError(expected_one_of(name, item, tuple(allowed)))
    return ",".join(site for site in SITES if site in items)


def _optional_tau(value: Any, name: str) -> float | None:
    """A threshold of a look-ahead site beyond the scores: a number >= 0 (inf allowed), or None."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not float(value) >= 0:
        raise ExperimentError(f"{name}={value!r} is not valid; expected a number >= 0, or None for no LAMP")
    return float(value)


@dataclass(frozen=True)
class Setting:
    """One point of the grid: the low-precision sites at ``m_bits``, LAMP at ``tau`` (2 = nothing recomputed)
    and at the other look-ahead sites, or a random baseline (``baseline``, one of :data:`BASELINE_KINDS`)
    recomputing as many entries per row as LAMP.

    ``sites`` are the GEMM sites under the low-precision accumulator (default: the score site, the paper's
    study; ``"all"``: every site), ``lamp_sites`` where look-ahead recomputation applies
    (:data:`STUDY_SITES`, a subset of ``sites``): ``tau`` at ``attn.score`` and ``lm_head`` (both feed a
    softmax: :class:`~lampref.lamp_sites.HeadLamp` at the logits), ``gelu_tau`` at ``mlp.fc``
    (:class:`~lampref.lamp_sites.GeluLamp`) and ``norm_tau`` at the output projections
    (:class:`~lampref.lamp_sites.NormLamp`); None: no LAMP there. ``storage`` is the operand storage format
    of the low-precision sites (:func:`storage_format`). ``lamp_sites`` is recorded as the sites where
    recomputation applies (``attn.score`` and ``lm_head`` only below ``tau = 2``; a setting that
    recomputes nothing records the score site alone, or nothing without it), so equal plans are equal
    settings. A row of a random
    baseline has ``fake_lamp`` set in the results CSV (the authors' name for it).

    >>> Setting(4, 1.5, "authors")  # doctest: +ELLIPSIS
    Setting(m_bits=4, tau=1.5, baseline='authors', rule='prefix', accumulation='strict', sites=...)
    >>> Setting(4, 1.5, True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lampref.errors.ExperimentError: baseline=True is not valid; expected one of: 'none', 'random', ...
    >>> Setting(8, 2.0, sites="all", lamp_sites="attn.score,mlp.fc", gelu_tau=2.0).lamp_sites
    'mlp.fc'
    """

    m_bits: int
    tau: float
    baseline: str = "none"
    rule: str = "prefix"
    accumulation: str = "strict"
    sites: str = "attn.score"
    lamp_sites: str = "attn.score"
    gelu_tau: float | None = None
    norm_tau: float | None = None
    storage: str = "none"

    def __post_init__(self) -> None:
        if not is_int(self.m_bits) or not 0 <= self.m_bits <= 23:
            raise ExperimentError(f"m_bits={self.m_bits!r} is out of range; expected an integer 0 <= m <= 23")
        tau = check_tau(self.tau, error=ExperimentError)
        check_choice(self.baseline, "baseline", BASELINE_KINDS, ExperimentError)
        check_choice(self.rule, "rule", RULES, ExperimentError)
        check_choice(self.accumulation, "accumulation", tuple(ACCUMULATIONS), ExperimentError)
        object.__setattr__(self, "m_bits", int(self.m_bits))
        object.__setattr__(self, "tau", tau)
        self._check_sites()

    def _check_sites(self) -> None:
        sites = _site_list(self.sites, "sites", SITES)
        if not sites:
            raise ExperimentError("sites is empty; expected at least one GEMM site in low precision")
        lamp = _site_list(self.lamp_sites, "lamp_sites", STUDY_SITES)
        gelu = _optional_tau(self.gelu_tau, "gelu_tau") if "mlp.fc" in lamp else None
        proj = any(s in lamp for s in ("attn.proj", "mlp.proj"))
        norm = _optional_tau(self.norm_tau, "norm_tau") if proj else None
        active = [
            s
            for s in lamp.split(",")
            if (s in ("attn.score", "lm_head") and self.tau < 2.0)
            or (s == "mlp.fc" and gelu is not None)
            or (s in ("attn.proj", "mlp.proj") and norm is not None)
        ]  # the sites where recomputation applies
        lamp = ",".join(active) or ("attn.score" if "attn.score" in sites.split(",") else "")
        outside = [s for s in lamp.split(",") if s and s not in sites.split(",")]
        if outside:
            raise ExperimentError(f"lamp_sites names {outside}, which are not among the sites {sites!r}")
        if not {"attn.score", "lm_head"} & set(lamp.split(",")) and self.tau != 2.0:
            raise ExperimentError(f"tau={self.tau} needs attn.score or lm_head among lamp_sites ({lamp!r})")
        storage_format(self.storage)
        for name, value in (("sites", sites), ("lamp_sites", lamp), ("gelu_tau", gelu), ("norm_tau", norm)):
            object.__setattr__(self, name, value)

    def recomputes(self) -> bool:
        """Whether the setting recomputes anything (LAMP or a baseline below ``tau = 2``, or at a site
        beyond the scores)."""
        return self.tau < 2.0 or self.gelu_tau is not None or self.norm_tau is not None

    def plan(self, seed: int) -> PrecisionPlan:
        """The precision plan of this setting."""
        acc = ACCUMULATIONS[self.accumulation](self.m_bits)
        lamp = self.lamp_sites.split(",")
        base = _LAMP_BASELINE[self.baseline]
        dense_base = None if base is None else "random"
        plan = PrecisionPlan()
        for site in self.sites.split(","):
            spec: Any = acc
            if site == "attn.score" and site in lamp and not (self.tau == 2.0 and base is None):
                spec = LampConfig(acc, self.tau, rule=self.rule, baseline=base, seed=seed)
            elif site == "mlp.fc" and site in lamp and self.gelu_tau is not None:
                spec = GeluLamp(acc, self.gelu_tau, baseline=dense_base, seed=seed)
            elif site in ("attn.proj", "mlp.proj") and site in lamp and self.norm_tau is not None:
                spec = NormLamp(acc, self.norm_tau, baseline=dense_base, seed=seed)
            elif site == "lm_head" and site in lamp and self.tau < 2.0:
                spec = HeadLamp(acc, self.tau, baseline=dense_base, seed=seed)
            plan = plan.set(site, spec)
        fmt = storage_format(self.storage)
        return plan if fmt is None else plan.with_storage(self.sites.split(","), fmt)

    def identity(self) -> dict[str, Any]:
        """The fields that go into a row's ``config_hash``: every field, the sites fields only where they
        differ from :data:`~lampref.experiment.SETTING_DEFAULTS` (a score-site setting keeps its hash)."""
        fields = asdict(self)
        return {k: v for k, v in fields.items() if k not in SETTING_DEFAULTS or v != SETTING_DEFAULTS[k]}


def grid(
    m_bits: Iterable[int],
    taus: Iterable[float],
    *,
    baseline: str | None = "random",
    rule: str = "prefix",
    accumulation: str = "strict",
    sites: str = "attn.score",
    lamp_sites: str = "attn.score",
    gelu_taus: Iterable[float | None] = (None,),
    norm_taus: Iterable[float | None] = (None,),
    storage: str = "none",
) -> list[Setting]:
    """The settings of a study: every ``m`` with every ``tau`` (and, where ``lamp_sites`` holds ``mlp.fc`` or
    a projection, every ``gelu_tau`` and ``norm_tau``), and a random baseline at every setting that
    recomputes something (same number of recomputed entries per row as LAMP, at every site).

    ``baseline`` is ``"random"`` (lampref's: draws among each row's causal entries), ``"authors"`` (the
    authors' "fake LAMP": draws over all positions of the row, masked ones included) or None (``"none"``)
    for no baseline rows. ``lamp_sites`` is cut to ``sites``; ``tau`` only matters where ``lamp_sites``
    holds ``attn.score`` or ``lm_head`` (else only ``tau = 2`` is kept). Settings that come out equal are
    given once.

    >>> [(s.m_bits, s.tau, s.baseline) for s in grid([4], [2.0, 1.5])]
    [(4, 2.0, 'none'), (4, 1.5, 'none'), (4, 1.5, 'random')]
    >>> [s.baseline for s in grid([4], [1.5], baseline="authors")]
    ['none', 'authors']
    >>> [(s.sites, s.gelu_tau) for s in grid([4], [2.0], sites="mlp.fc", lamp_sites="mlp.fc",
    ...                                      gelu_taus=[None, 2.0], baseline=None)]
    [('mlp.fc', None), ('mlp.fc', 2.0)]
    """
    if baseline is None:
        baseline = "none"
    if not isinstance(baseline, str) or baseline not in BASELINE_KINDS:
        raise ExperimentError(expected_one_of("baseline", baseline, ("random", "authors")) + ", or None")
    ms, ts = _grid_values("m_bits", m_bits), _grid_values("taus", taus)
    site_set = _site_list(sites, "sites", SITES).split(",")
    lamp = [s for s in _site_list(lamp_sites, "lamp_sites", STUDY_SITES).split(",") if s in site_set]
    if not {"attn.score", "lm_head"} & set(lamp):
        ts = [t for t in ts if float(t) == 2.0] or [2.0]
    gs = _grid_values("gelu_taus", gelu_taus) if "mlp.fc" in lamp else [None]
    ns = _grid_values("norm_taus", norm_taus) if {"attn.proj", "mlp.proj"} & set(lamp) else [None]
    out: list[Setting] = []
    for m in ms:
        for tau in ts:
            for g in gs:
                for nt in ns:
                    s = Setting(
                        m, tau, "none", rule, accumulation, ",".join(site_set), ",".join(lamp), g, nt, storage
                    )
                    out.append(s)
                    if baseline != "none" and s.recomputes():
                        out.append(dataclasses.replace(s, baseline=baseline))
    return list(dict.fromkeys(out))


def _grid_values(name: str, values: Iterable[Any]) -> list[Any]:
    """The values of one grid axis, checked: at least one, none twice."""
    if isinstance(values, (str, bytes)):
        raise ExperimentError(f"{name}={values!r} is not valid; expected a sequence of numbers")
    try:
        out = list(values)
    except TypeError:
        raise ExperimentError(f"{name}={values!r} is not valid; expected a sequence of numbers") from None
    if not out:
        raise ExperimentError(f"{name} is empty; expected at least one value")
    for i, v in enumerate(out):
        if v in out[:i]:
            raise ExperimentError(f"{name} lists {v!r} twice; expected distinct values")
    return out


def _check_seed(seed: Any) -> int:
    if not is_int(seed) or seed < 0:
        raise ExperimentError(f"seed={seed!r} is not valid; expected a non-negative integer")
    return int(seed)


BUNDLED_CORPORA = Path(__file__).resolve().parents[1] / "data" / "corpora"
"""The folder of the corpora bundled with lampref (provenance and licences in its ``README.md``)."""


def bundled_corpora() -> dict[str, Path]:
    """The bundled corpora, held out from the embedded model's training: name -> text file, by name.

    These are what ``lampref experiment --corpus prose code abstracts`` reads.

    >>> from lampref.experiment import bundled_corpora
    >>> sorted(bundled_corpora())
    ['abstracts', 'code', 'prose']
    """
    return {p.stem: p for p in sorted(BUNDLED_CORPORA.glob("*.txt"))}


def windows(
    tokens: Sequence[int] | NDArray[np.integer[Any]],
    seq_len: int,
    count: int,
    *,
    seed: int,
    shuffle: bool = False,
) -> NDArray[np.int64]:
    """``count`` non-overlapping windows of ``seq_len`` tokens, evenly spread over a tokenised corpus.

    With ``shuffle=True`` the tokens of each window are permuted (the paper's input-agnostic check), with a
    generator seeded by ``seed`` (a non-negative integer).

    >>> windows(list(range(10)), 3, 2, seed=0).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    if not is_int(seq_len) or not is_int(count) or seq_len < 2 or count < 1:
        raise ExperimentError(f"need seq_len >= 2 and count >= 1, got seq_len={seq_len!r}, count={count!r}")
    _check_seed(seed)
    arr = np.asarray(tokens)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ExperimentError(f"tokens have shape {arr.shape} and dtype {arr.dtype}; expected 1-D token ids")
    arr = arr.astype(np.int64)
    n_windows = arr.size // seq_len
    if n_windows < count:
        raise ExperimentError(
            f"the corpus has {arr.size} tokens: {n_windows} windows of {seq_len}, "
            f"fewer than the {count} asked for"
        )
    starts = (np.arange(count) * (n_windows // count)) * seq_len
    out = np.stack([arr[s : s + seq_len] for s in starts])
    if shuffle:
        rng = np.random.default_rng(int(seed))
        out = np.stack([rng.permutation(row) for row in out])
    return out


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # progress bars are optional (extra "progress")
        return None
    return tqdm(total=total, file=sys.stderr, dynamic_ncols=True)


def _check_run(
    model: Any,
    corpora: Mapping[str, Any],
    settings: Sequence[Setting],
    model_name: str,
    seq_len: int,
    sequences: int,
    seed: int,
    shuffle: bool,
) -> None:
    """Validate the arguments of :func:`run_experiment` (ExperimentError naming the one at fault)."""
    for name, value in (("seq_len", seq_len), ("sequences", sequences)):
        low = 2 if name == "seq_len" else 1
        if not is_int(value) or value < low:
            raise ExperimentError(f"{name}={value!r} is not valid; expected an integer >= {low}")
    _check_seed(seed)
    check_bool(shuffle, "shuffle", ExperimentError)
    if isinstance(model, BertModel):
        P = model.config.max_position_embeddings
        if not 3 <= seq_len <= P:
            raise ExperimentError(
                f"seq_len={seq_len} is out of range for an encoder; expected 3..{P} ([CLS], word pieces, "
                f"[SEP]; max_position_embeddings={P})"
            )
    n_positions: Any = getattr(getattr(model, "config", None), "n_positions", None)
    if is_int(n_positions) and seq_len > n_positions:
        raise ExperimentError(f"seq_len={seq_len} exceeds the model's context n_positions={n_positions}")
    if not isinstance(corpora, Mapping) or not corpora:
        raise ExperimentError("corpora is empty; expected at least one named token array")
    for what, label in [("model_name", model_name), *(("corpus name", name) for name in corpora)]:
        if not isinstance(label, str) or not label or any(c < " " or c == "\x7f" for c in label):
            raise ExperimentError(f"{what} {label!r} is not valid; expected a non-empty one-line string")
    if not settings or not all(isinstance(s, Setting) for s in settings):
        raise ExperimentError("settings must be a non-empty sequence of Setting (see grid)")
    if len(set(settings)) != len(settings):
        twice = next(s for i, s in enumerate(settings) if s in settings[:i])
        raise ExperimentError(f"settings holds {twice} twice")


def _check_tokens(batch: NDArray[np.int64], dataset: str, model: Any) -> None:
    vocab: Any = getattr(getattr(model, "config", None), "vocab_size", None)
    if is_int(vocab) and batch.size and (batch.min() < 0 or batch.max() >= vocab):
        bad = int(batch.min()) if batch.min() < 0 else int(batch.max())
        raise ExperimentError(
            f"the corpus {dataset!r} holds the token id {bad}; the model's ids are 0..{vocab - 1}"
        )


def run_experiment(
    model: Any,
    corpora: Mapping[str, NDArray[np.integer[Any]]],
    settings: Sequence[Setting],
    *,
    model_name: str,
    seq_len: int,
    sequences: int,
    seed: int = 42,
    shuffle: bool = False,
    out: str | Path,
    progress: bool = True,
    sentences: Mapping[str, Sequence[Sequence[int]]] | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) a study and return its rows, in grid order.

    Parameters
    ----------
    model : lampref.gpt2.GPT2 or lampref.bert.BertModel
        The model; its float32 forward pass is the reference. Identified by content (``model_digest``).
        A decoder is measured by KL divergence and flip rate, an encoder by the metrics of
        :mod:`lampref.experiment.encoder`.
    corpora : mapping of name to token array
        Tokenised corpora (an encoder's: word pieces without ``[CLS]`` and ``[SEP]``,
        :func:`~lampref.experiment.encoder.corpus_pieces`); ``sequences`` windows of ``seq_len`` tokens are
        taken from each (:func:`windows`; an encoder's windows are ``[CLS]``, ``seq_len - 2`` word pieces
        and ``[SEP]``).
    settings : sequence of Setting
        The grid (:func:`grid`).
    model_name : str
        Recorded in the ``model`` column (a label: the model is identified by ``model_digest``).
    seq_len, sequences : int
        Tokens per window (at least 2; an encoder's 3 to ``max_position_embeddings``) and windows per
        corpus (at least 1).
    seed : int, default 42
        A non-negative integer: seeds the random baselines and the shuffle.
    shuffle : bool, default False
        Permute the tokens of each window (:func:`windows`; an encoder's keep ``[CLS]`` and ``[SEP]`` in
        place). The retrieval sentences are not shuffled.
    out : path
        The results CSV; rows already in it (same configuration hash) are not recomputed. An existing
        file must have been written by a run with the same identity (:mod:`lampref.experiment.results`).
    progress : bool, default True
        A progress bar on stderr (with the ``progress`` extra).
    sentences : mapping of name to lists of token ids, optional
        An encoder's retrieval set for each corpus (at least 2 sentences each, with ``[CLS]`` and
        ``[SEP]``: :func:`~lampref.experiment.encoder.sentences`); part of the corpus's identity
        (``corpus_digest``). Required for an encoder, refused for a decoder.
    jobs : int, default 1
        Worker processes computing rows in parallel on this machine (1: in this process). Each gets
        ``cores // jobs`` BLAS threads. The workers are spawned: a script that passes ``jobs > 1`` keeps
        its main code under ``if __name__ == "__main__":`` (they import the script's main module).
    scheduler : str, optional
        The address of a Dask scheduler (``"tcp://HOST:8786"``, with the ``distributed`` extra): the rows
        are computed by the cluster's workers. Exclusive with ``jobs > 1``.

    Returns
    -------
    list of dict
        One row per (corpus, setting), with the CSV's columns.

    Raises
    ------
    ExperimentError
        Before anything is computed: an invalid argument (``jobs`` not an integer >= 1, ``scheduler``
        not a non-empty string or given with ``jobs > 1``, or given without dask installed), a Dask
        scheduler that cannot be reached, a corpus too short for the windows, an output
        path that is a folder or lies under a file, an output folder or CSV that cannot be written, a CSV
        that is not UTF-8, has a damaged line or another header, or holds rows of another run (other
        weights, seed, sizes, shuffle, or other corpus contents under the same name).
    """
    _check_run(model, corpora, settings, model_name, seq_len, sequences, seed, shuffle)
    _check_parallel(jobs, scheduler)
    study = _study(model, corpora, sentences, seq_len, sequences, seed, shuffle)
    path = Path(out)
    prepare_output(path)
    with writer_lock(path):  # one writer per results file: a second run on it is refused
        existing, cut = existing_rows(path)
        run = {
            "model_digest": model_digest(model),
            "seed": int(seed),
            "nbatches": sequences,
            "seq_len": seq_len,
            "shuffle": bool(shuffle),
        }
        corpus_digests = {name: study.digest(name) for name in corpora}
        check_identity(path, existing, run, corpus_digests)
        if cut is not None:
            truncate(path, cut)
        done = {r["config_hash"]: r for _, r in existing}
        rows: list[dict[str, Any] | None] = []  # grid order, corpus-major: finished rows, None for the others
        todo: list[_Row] = []
        for dataset in corpora:
            for s in settings:
                corpus = {"dataset": dataset, "corpus_digest": corpus_digests[dataset]}
                identity = {**run, **corpus, **s.identity()}
                h = config_hash(identity)
                if h not in done:
                    todo.append(_Row(len(rows), identity, h, s, model_name))
                rows.append(done.get(h))
        bar = _progress(len(todo), progress)
        try:
            with contextlib.closing(_computed(study, todo, jobs, scheduler)) as computed:
                for job, row in computed:  # in the order they finish
                    append_row(path, row)
                    rows[job.index] = row
                    _advance(bar, job.setting, row)
        finally:
            if bar is not None:
                bar.close()
        return [row for row in rows if row is not None]


def _study(
    model: Any,
    corpora: Mapping[str, Any],
    sentences: Mapping[str, Sequence[Sequence[int]]] | None,
    seq_len: int,
    sequences: int,
    seed: int,
    shuffle: bool,
) -> _DecoderStudy | _EncoderStudy:
    """The windows of every corpus (checked against the model's vocabulary) in the study that fits the
    model."""
    encoder = isinstance(model, BertModel)
    if (sentences is not None) != encoder:
        raise ExperimentError(
            "sentences (the retrieval set of each corpus) is required for an encoder and refused for a "
            f"decoder; the model is a {type(model).__name__}"
        )
    length = seq_len - 2 if encoder else seq_len  # an encoder's windows add [CLS] and [SEP]
    batches = {
        name: windows(tok, length, sequences, seed=seed, shuffle=shuffle) for name, tok in corpora.items()
    }
    for name, batch in batches.items():
        _check_tokens(batch, name, model)
    if not isinstance(model, BertModel) or sentences is None:
        return _DecoderStudy(model, batches)
    sents = {name: _retrieval_set(sentences, name, model) for name in corpora}
    return _EncoderStudy(model, {n: wrap_windows(b, model) for n, b in batches.items()}, sents)


def _retrieval_set(sentences: Mapping[str, Any], name: str, model: BertModel) -> list[list[int]]:
    """The retrieval sentences of corpus ``name``: at least 2 token-id lists, checked against the model."""
    if not isinstance(sentences, Mapping) or name not in sentences:
        raise ExperimentError(f"sentences has no retrieval set for the corpus {name!r}")
    try:
        sents = [[int(t) for t in sent] for sent in sentences[name]]
    except (TypeError, ValueError):
        raise ExperimentError(f"sentences[{name!r}] is not a list of token-id lists") from None
    if len(sents) < 2 or not all(sents):
        raise ExperimentError(
            f"sentences[{name!r}] holds {len(sents)} sentences; expected at least 2, none empty"
        )
    for sent in sents:
        _check_tokens(np.asarray(sent, dtype=np.int64), name, model)
    return sents


class _DecoderStudy:
    """A decoder's study: KL divergence and flip rate of the next-token distributions."""

    def __init__(self, model: Any, batches: Mapping[str, NDArray[np.int64]]) -> None:
        self.model, self.batches = model, batches
        self.shape = next(iter(batches.values())).shape  # (sequences, seq_len), the same for every corpus

    def digest(self, name: str) -> str:
        return digest(self.batches[name])

    def reference(self, name: str) -> list[tuple[NDArray[np.floating[Any]], NDArray[np.intp]]]:
        """The float32 model's reference for each window: its log-probabilities (float64) when they fit in
        :data:`REF_CACHE_BYTES` (8 bytes a logit), else its logits, with the argmax of each position."""
        logits = [self.model.logits(seq) for seq in self.batches[name]]  # float32 [T, V] each
        keep = sum(z.size for z in logits) * 8 <= REF_CACHE_BYTES
        return [(log_softmax(z) if keep else z, z.argmax(axis=-1)) for z in logits]

    def measure(
        self,
        name: str,
        refs: Sequence[tuple[NDArray[np.floating[Any]], NDArray[np.intp]]],
        plan: PrecisionPlan,
    ) -> tuple[dict[str, Any], list[tuple[ScoreStats, ...]]]:
        """KL divergence and flip rate against the reference, averaged over positions, and the score
        statistics of each window."""
        batch = self.batches[name]
        kl_sum = flips = 0.0
        stats_all: list[tuple[ScoreStats, ...]] = []
        for seq, (ref, ref_top) in zip(batch, refs, strict=True):
            test, stats = self.model.logits_and_stats(seq, plan)
            ref_logp = np.asarray(ref if ref.dtype == np.float64 else log_softmax(ref), np.float64)
            kl_sum += float(kl_from_log_probs(ref_logp, log_softmax(test), "mean")) * len(seq)
            flips += float(np.count_nonzero(test.argmax(axis=-1) != ref_top))  # as flip_rate
            stats_all.append(stats)
        positions = int(batch.size)
        return {
            "positions": positions,
            "kl_div": kl_sum / positions,
            "flip_rate": flips / positions,
        }, stats_all


class _EncoderStudy:
    """An encoder's study (:mod:`lampref.experiment.encoder`)."""

    def __init__(
        self, model: BertModel, batches: Mapping[str, NDArray[np.int64]], sents: Mapping[str, list[list[int]]]
    ) -> None:
        self.model, self.batches, self.sents = model, batches, sents

    def digest(self, name: str) -> str:
        return digest(self.batches[name], self.sents[name])

    def reference(self, name: str) -> EncoderReference:
        return encoder_reference(self.model, self.batches[name], self.sents[name])

    def measure(
        self, name: str, ref: EncoderReference, plan: PrecisionPlan
    ) -> tuple[dict[str, Any], list[tuple[ScoreStats, ...]]]:
        return measure_encoder(self.model, self.batches[name], self.sents[name], ref, plan)


def _recomputed(
    stats_all: Sequence[tuple[ScoreStats, ...]], setting: Setting, study: _DecoderStudy | _EncoderStudy
) -> dict[str, Any]:
    """The recomputed fraction of the scores, overall and per layer, summed over the windows; the
    recomputed fraction of every site with a rule, and of the low-precision sites' multiply-adds."""
    layer_stats = [ScoreStats.sum_totals(st[layer] for st in stats_all) for layer in range(len(stats_all[0]))]
    out: dict[str, Any] = {"recomputed": 0.0, "recomputed_per_layer": [0.0] * len(layer_stats)}
    if any("selected" in s for s in layer_stats):
        frac = recompute_fraction(layer_stats)
        out = {"recomputed": float(frac.total), "recomputed_per_layer": [float(v) for v in frac.per_layer]}
    sites = site_fractions(layer_stats)
    out["site_sparsity"] = ";".join(f"{site}={f.recomputed:.6g}" for site, f in sites.items())
    if isinstance(study, _DecoderStudy):
        out["recomputed_macs"] = _macs_fraction(layer_stats, setting, study.model.config, study.shape)
    return out


def _macs_fraction(
    layer_stats: Sequence[ScoreStats], setting: Setting, config: Any, shape: tuple[int, int]
) -> float:
    """Recomputed multiply-adds over all multiply-adds of the setting's low-precision sites (causal score and
    value products; the output projections and ``mlp.fc`` by their inner dimensions)."""
    B, T = shape
    C, V, L = config.n_embd, config.vocab_size, config.n_layer
    causal = T * (T + 1) // 2  # score entries per head, summed over the heads: causal * d = causal * C / H
    per_layer = {
        "attn.qkv": T * 3 * C * C,
        "attn.score": causal * C,
        "attn.value": causal * C,
        "attn.proj": T * C * C,
        "mlp.fc": T * 4 * C * C,
        "mlp.proj": T * C * 4 * C,
    }
    sites = setting.sites.split(",")
    total = B * (L * sum(per_layer.get(s, 0) for s in sites) + (T * V * C if "lm_head" in sites else 0))
    inner = {"attn.proj": C, "mlp.fc": C, "mlp.proj": 4 * C, "lm_head": C}
    done = 0.0
    for st in layer_stats:
        done += float(st.get("selected", np.zeros(1)).sum()) * (C // config.n_head)
        done += sum(float(st.get(f"{s}:selected", 0)) * k for s, k in inner.items())
    return done / total if total else 0.0


def _advance(bar: Any, s: Setting, row: Mapping[str, Any]) -> None:
    """Move the progress bar (if any) past one computed row."""
    if bar is None:
        return
    label = "" if s.baseline == "none" else f" {s.baseline} baseline"
    if s.identity().keys() & SETTING_DEFAULTS.keys():  # the sites study
        extra = f"lamp={s.lamp_sites or '-'} gelu={s.gelu_tau} norm={s.norm_tau} {s.storage}"
        label = f" {s.sites} {extra}{label}"
    bar.set_description(f"{row['dataset']} m={s.m_bits} tau={s.tau:g}{label}", refresh=False)
    if row["kl_div"] is None:  # an encoder's row
        bar.set_postfix(err=f"{row['hidden_err']:.2e}", nn_flip=f"{row['retrieval_flip']:.3f}", refresh=False)
    else:
        bar.set_postfix(kl=f"{row['kl_div']:.2e}", flip=f"{row['flip_rate']:.3f}", refresh=False)
    bar.update(1)


# ------------------------------------------------------------------------------------ computing the rows
@dataclass(frozen=True)
class _Row:
    """A row to compute: its place in the grid, its identity columns, config hash, setting and label."""

    index: int
    identity: dict[str, Any]
    config_hash: str
    setting: Setting
    model_name: str


_Study = _DecoderStudy | _EncoderStudy
_References = dict[tuple[str, str, str], Any]  # (model_digest, corpus, corpus_digest) -> the reference
_Computed = Generator[tuple[_Row, dict[str, Any]], None, None]  # each row computed, as it finishes


def _check_parallel(jobs: Any, scheduler: Any) -> None:
    """Validate ``jobs`` and ``scheduler`` of :func:`run_experiment` (and that dask is there for one)."""
    if not is_int(jobs) or jobs < 1:
        raise ExperimentError(f"jobs={jobs!r} is not valid; expected an integer >= 1")
    if scheduler is None:
        return
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ExperimentError(
            f"scheduler={scheduler!r} is not valid; expected the address of a Dask scheduler, e.g. "
            "'tcp://10.0.0.1:8786'"
        )
    if jobs != 1:
        raise ExperimentError(
            f"jobs={jobs} and scheduler={scheduler!r} were both given; expected one of them (the workers of "
            "a Dask cluster are its parallelism)"
        )
    _distributed()


def _distributed() -> Any:
    """The ``dask.distributed`` module, or ExperimentError naming the extra that installs it."""
    try:
        import dask.distributed
    except ImportError:
        raise ExperimentError(
            "scheduler needs dask.distributed: pip install 'lampref[distributed]'"
        ) from None
    return dask.distributed


def _reference(study: _Study, ident: Mapping[str, Any], refs: _References) -> Any:
    """The reference of the corpus of a row (identity columns ``ident``), from ``refs``, where it is
    computed and kept in place of any other corpus's when missing."""
    key = (ident["model_digest"], ident["dataset"], ident["corpus_digest"])
    if key not in refs:  # the reference of one corpus at a time
        refs.clear()
        refs[key] = study.reference(ident["dataset"])
    return refs[key]


def _measure_row(study: _Study, job: _Row, ref: Any) -> dict[str, Any]:
    """The CSV row of ``job``, measured against the reference ``ref`` of its corpus."""
    ident = job.identity
    measured, stats = study.measure(ident["dataset"], ref, job.setting.plan(ident["seed"]))
    return make_row(
        ident,
        model=job.model_name,
        config_hash=job.config_hash,
        **measured,
        **_recomputed(stats, job.setting, study),
    )


def _computed(study: _Study, todo: Sequence[_Row], jobs: int, scheduler: str | None) -> _Computed:
    """Compute the rows of ``todo``: yield each with its row as it finishes."""
    if not todo:
        return
    if scheduler is not None:
        yield from _on_dask(study, todo, scheduler)
    elif jobs > 1:
        yield from _in_processes(study, todo, jobs)
    else:
        refs: _References = {}
        for job in todo:
            yield job, _measure_row(study, job, _reference(study, job.identity, refs))


# Worker processes: the study (sent once, by the initializer) and the reference of the current corpus.
_WORKER: dict[str, Any] = {}
_WORKER_LOCK = threading.Lock()
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _cores() -> int:
    affinity: Any = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


@contextlib.contextmanager
def _blas_environment(threads: int) -> Iterator[None]:
    """Set the thread counts of BLAS and of the compiled kernels (numba) in the environment the worker
    processes inherit (they read it when they import NumPy and numba), and restore it."""
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(_THREAD_VARIABLES, str(threads)))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _start_worker(study: _Study, threads: int) -> None:
    """Initialise a worker process: keep the study, limit BLAS to ``threads`` threads."""
    with contextlib.suppress(ImportError):  # else the environment set by _blas_environment holds
        from threadpoolctl import threadpool_limits

        _WORKER["blas"] = threadpool_limits(limits=threads, user_api="blas")
    _WORKER["study"], _WORKER["refs"] = study, {}


def _worker_row(job: _Row) -> dict[str, Any]:
    study = _WORKER["study"]
    return _measure_row(study, job, _reference(study, job.identity, _WORKER["refs"]))


def _in_processes(study: _Study, todo: Sequence[_Row], jobs: int) -> _Computed:
    """Compute the rows in ``jobs`` worker processes (spawned: nothing of this process is shared but the
    study they are sent), with ``cores // jobs`` BLAS threads each."""
    workers = min(jobs, len(todo))
    threads = max(1, _cores() // jobs)
    context = multiprocessing.get_context("spawn")
    with _blas_environment(threads):  # the workers start as the first tasks are submitted
        pool = ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=(study, threads))
        futures = {pool.submit(_worker_row, job): job for job in todo}
    try:
        for future in as_completed(futures):
            yield futures[future], future.result()
    except BaseException:  # an error, an interrupt, or the caller stopped reading: stop every worker now
        _stop(pool, futures)
        raise
    pool.shutdown()


def _stop(pool: ProcessPoolExecutor, futures: Iterable[Future[Any]]) -> None:
    for future in futures:
        future.cancel()
    terminate: Any = getattr(pool, "terminate_workers", None)  # Python 3.14
    if terminate is not None:
        terminate()
    else:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _dask_row(study: _Study, job: _Row) -> dict[str, Any]:
    """A row computed on a Dask worker (the reference of the current corpus kept per worker process)."""
    with _WORKER_LOCK:  # a worker may run several tasks at once, in threads
        ref = _reference(study, job.identity, _WORKER.setdefault("dask_refs", {}))
    return _measure_row(study, job, ref)


def _on_dask(study: _Study, todo: Sequence[_Row], scheduler: str) -> _Computed:
    """Compute the rows on the workers of the Dask cluster at ``scheduler``: the study is sent to every
    worker once, then one task per row."""
    distributed = _distributed()
    try:
        client = distributed.Client(scheduler, set_as_default=False)
    except (OSError, ValueError, TypeError) as err:
        raise ExperimentError(
            f"cannot connect to the Dask scheduler at scheduler={scheduler!r}: {err}"
        ) from None
    futures: dict[Any, _Row] = {}
    try:
        try:
            shared = client.scatter(study, broadcast=True, hash=False)
        except OSError as err:  # TimeoutError: no worker joined in time
            raise ExperimentError(
                f"cannot send the study to the workers of the Dask cluster at scheduler={scheduler!r} "
                f"({err}); start workers with: dask worker {scheduler}"
            ) from None
        futures = {client.submit(_dask_row, shared, job, pure=False): job for job in todo}
        for future in distributed.as_completed(futures, loop=client.loop):
            yield futures[future], future.result()
    finally:
        if futures:
            client.cancel(list(futures))
        client.close()
