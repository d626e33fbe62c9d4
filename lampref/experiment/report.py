r"""The report: the summary table and the figures of a study's rows.

Both read rows by their CSV column names (:mod:`lampref.experiment.results`), so they work on the rows
:func:`~lampref.experiment.run_experiment` returns and on any results CSV read back, the LAMP authors'
included: ``sparsity`` is the recomputed fraction of the causal scores, and a row's baseline is its
``baseline`` column, or ``fake_lamp`` where there is none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .._validate import is_int
from ..errors import ExperimentError
from .results import baseline_of

__all__ = ["plot_results", "summary_table"]

_GROUP_FIELDS = (
    "model",
    "seed",
    "nbatches",
    "seq_len",
    "positions",
    "shuffle",
    "accumulation",
    "rule",
)
"""Rows that differ in one of these fields are never summarised together (the model by its digest where the
rows have one, its label otherwise)."""


class _Metrics(NamedTuple):
    """The columns a study's rows are judged by, and how the table and figures name them."""

    error: str  # the error column: the lower the better
    error_name: str  # in table headers
    error_axis: str  # on figure axes
    flip: str  # the flip-rate column
    flip_name: str
    flip_axis: str
    files: tuple[str, str, str]  # error vs m, flip vs m, error vs recomputed


_DECODER = _Metrics(
    "kl_div", "KL", "KL(fp32 || test)", "flip_rate", "flip", "flip rate",
    ("kl_vs_m.png", "flip_vs_m.png", "kl_vs_recomputed.png"),
)  # fmt: skip
_ENCODER = _Metrics(
    "hidden_err", "err", "relative error of the hidden states", "retrieval_flip", "NN flip",
    "retrieval flip rate", ("error_vs_m.png", "retrieval_flip_vs_m.png", "error_vs_recomputed.png"),
)  # fmt: skip


def _metrics(row: Mapping[str, Any]) -> _Metrics:
    """An encoder's row leaves ``kl_div`` empty and holds ``hidden_err``; every other row is a decoder's."""
    return _ENCODER if row.get("kl_div") is None and row.get("hidden_err") is not None else _DECODER


def _group_value(row: Mapping[str, Any], field: str) -> Any:
    if field == "model" and row.get("model_digest"):
        return str(row["model_digest"])
    return row.get(field)


def summary_table(
    rows: Sequence[Mapping[str, Any]],
    *,
    max_recomputed: float | None = None,
    markdown: bool = False,
) -> str:
    r"""For each corpus and ``m``: KL and flip rate with no recomputation, the best LAMP result (lowest KL),
    its recomputed fraction, and the improvement factors over uniform low precision and over random
    recomputation of the same count (the random baseline at the same ``tau``; a column per baseline, "x
    random" for lampref's and "x random (authors)" for the authors').

    Each table is followed by the number of positions per row and the flip-rate resolution it implies (a
    flip rate moves in steps of ``1 / positions``). Rows that differ in model (its weights' digest where
    the rows record one, its label otherwise), seed, sizes, shuffle, accumulation or rule are never
    summarised together: they get one table each, under a line that names what differs. Within a table,
    two corpora under one name (different ``corpus_digest``) get one line each. Only rows of the paper's
    study (low precision and LAMP at the score site alone, no storage format) are summarised here; the
    others are :func:`sites_table`'s (an empty string when no row is the paper's study).

    Parameters
    ----------
    rows : sequence of mapping
        Results rows (:func:`~lampref.experiment.run_experiment`,
        :func:`~lampref.experiment.read_results`).
    max_recomputed : float, optional
        Only LAMP settings that recompute at most this fraction of the causal scores compete for "best"
        (for example 0.1: the best result at a recomputation rate of 10% or less). A corpus and ``m`` with
        no such setting is left out.
    markdown : bool, default False
        Markdown tables instead of aligned text.

    Returns
    -------
    str
        The tables (one line per corpus and ``m``) and their notes, separated by blank lines.

    Examples
    --------
    >>> row = dict(dataset="prose", m_bits=4, positions=1024)
    >>> rows = [dict(row, tau=2.0, fake_lamp=False, kl_div=1e-2, flip_rate=0.1, sparsity=0),
    ...         dict(row, tau=1.1, fake_lamp=False, kl_div=1e-4, flip_rate=0.01, sparsity=0.05),
    ...         dict(row, tau=1.1, fake_lamp=True, kl_div=5e-3, flip_rate=0.05, sparsity=0.05),
    ...         dict(row, tau=1.02, fake_lamp=False, kl_div=1e-6, flip_rate=0.0, sparsity=0.5)]
    >>> print(summary_table(rows))  # doctest: +NORMALIZE_WHITESPACE
    dataset  m   KL uniform  flip uniform  best tau  KL LAMP   flip LAMP  recomputed  x uniform  x random
    prose    4   1.00e-02    0.1000        1.02      1.00e-06  0.0000     50.00%      10000.0    nan
    <BLANKLINE>
    1024 positions per row: a flip rate moves in steps of 1/1024 = 9.8e-04 (one changed argmax)
    >>> print(summary_table(rows, max_recomputed=0.1, markdown=True))
    | dataset | m | KL uniform | flip uniform | best tau | KL LAMP | flip LAMP | recomputed | x uniform | x random |
    |---|---|---|---|---|---|---|---|---|---|
    | prose | 4 | 1.00e-02 | 0.1000 | 1.1 | 1.00e-04 | 0.0100 | 5.00% | 100.0 | 50.0 |
    <BLANKLINE>
    1024 positions per row: a flip rate moves in steps of 1/1024 = 9.8e-04 (one changed argmax)
    >>> mixed = summary_table([dict(r, seed=7) for r in rows] + [dict(r, seed=42) for r in rows])
    >>> print("\n".join(mixed.splitlines()[:3]))
    these rows come from 2 runs that differ in seed: one table each, never averaged
    <BLANKLINE>
    seed=7:
    """  # noqa: E501 (a doctest line of Markdown output)
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in (r for r in rows if _is_score_study(r)):  # the sites study: sites_table
        groups.setdefault(tuple(_group_value(r, k) for k in _GROUP_FIELDS), []).append(r)
    differ = [k for i, k in enumerate(_GROUP_FIELDS) if len({key[i] for key in groups}) > 1]
    parts = []
    if len(groups) > 1:
        parts.append(
            f"these rows come from {len(groups)} runs that differ in {', '.join(differ)}: one table each, "
            "never averaged"
        )
    for key, sel in groups.items():
        if len(groups) > 1:
            named = {**dict(zip(_GROUP_FIELDS, key, strict=True)), "model": sel[0].get("model")}
            if "model_digest" in sel[0]:
                named["model"] = f"{named['model']} (digest {sel[0]['model_digest']})"
            parts.append(", ".join(f"{k}={named[k]}" for k in differ) + ":")
        parts.append(_table(sel, max_recomputed, markdown))
        parts.append(_resolution(sel[0]))
    return "\n\n".join(parts)


_RESOLUTION = {
    "kl_div": "{n} positions per row: a flip rate moves in steps of 1/{n} = {step:.1e} (one changed argmax)",
    "hidden_err": "err: relative error of the last hidden states; NN flip: retrieval flip rate over {n} "
    "sentences, in steps of 1/{n} = {step:.1e} (one changed nearest neighbour)",
}


def _resolution(row: Mapping[str, Any]) -> str:
    """The note under a table: the flip-rate step of its rows (``1 / positions``; an encoder's retrieval
    flip rate: ``1 / sentences``)."""
    met = _metrics(row)
    count = row.get("sentences" if met is _ENCODER else "positions")
    if is_int(count) and count > 0:
        return _RESOLUTION[met.error].format(n=count, step=1 / count)
    return "the rows do not record their number of positions: the flip-rate resolution is unknown"


def _table(rows: Sequence[Mapping[str, Any]], max_recomputed: float | None, markdown: bool) -> str:
    """The summary table of rows of one run (:func:`summary_table`)."""
    kinds = [k for k in ("random", "authors") if any(baseline_of(r) == k for r in rows)] or ["random"]
    met = _metrics(rows[0])
    header = (
        "dataset",
        "m",
        f"{met.error_name} uniform",
        f"{met.flip_name} uniform",
        "best tau",
        f"{met.error_name} LAMP",
        f"{met.flip_name} LAMP",
        "recomputed",
        "x uniform",
        *("x random" if k == "random" else "x random (authors)" for k in kinds),
    )
    digests: dict[str, set[Any]] = {}
    for r in rows:
        digests.setdefault(str(r["dataset"]), set()).add(r.get("corpus_digest"))

    def label(r: Mapping[str, Any]) -> str:  # two corpora under one name are told apart by their digest
        name = str(r["dataset"])
        return name if len(digests[name]) == 1 else f"{name}@{str(r.get('corpus_digest'))[:8]}"

    lines = [header]
    for dataset, m in sorted({(label(r), int(r["m_bits"])) for r in rows}):
        sel = [r for r in rows if label(r) == dataset and int(r["m_bits"]) == m]
        line = _table_line(sel, kinds, max_recomputed, met)
        if line is not None:
            lines.append((dataset, str(m), *line))
    if markdown:
        rule = "|" + "---|" * len(header)
        return "\n".join(
            ["| " + " | ".join(lines[0]) + " |", rule, *("| " + " | ".join(r) + " |" for r in lines[1:])]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _table_line(
    sel: Sequence[Mapping[str, Any]], kinds: Sequence[str], max_recomputed: float | None, met: _Metrics
) -> tuple[str, ...] | None:
    """The cells after corpus and ``m`` of one table line, from the rows of that corpus and ``m`` (None when
    they hold no uniform row or no competing LAMP row)."""
    uniform = [r for r in sel if float(r["tau"]) == 2.0 and baseline_of(r) == "none"]
    lamp = [r for r in sel if float(r["tau"]) < 2.0 and baseline_of(r) == "none"]
    if max_recomputed is not None:
        lamp = [r for r in lamp if float(r["sparsity"]) <= max_recomputed]
    if not uniform or not lamp:
        return None
    u = uniform[0]
    err, flip = met.error, met.flip
    best = min(lamp, key=lambda r: (float(r[err]), float(r["sparsity"])))
    err_best = float(best[err])
    x_uniform = float(u[err]) / err_best if err_best > 0 else float("inf")
    x_random = []
    for kind in kinds:
        rnd = [r for r in sel if baseline_of(r) == kind and float(r["tau"]) == float(best["tau"])]
        x_random.append(float(rnd[0][err]) / err_best if rnd and err_best > 0 else float("nan"))
    return (
        f"{float(u[err]):.2e}",
        f"{float(u[flip]):.4f}",
        f"{float(best['tau']):g}",
        f"{err_best:.2e}",
        f"{float(best[flip]):.4f}",
        f"{100 * float(best['sparsity']):.2f}%",
        f"{x_uniform:.1f}",
        *(f"{x:.1f}" for x in x_random),
    )


# ------------------------------------------------------------------------------------ figures
_PLOT_KINDS = (
    ("none", "o", "-", "LAMP"),
    ("random", "x", ":", "random"),
    ("authors", "+", "--", "random (authors)"),
)
_FIX = "choose another output folder"


def plot_results(rows: Sequence[Mapping[str, Any]], out_dir: str | Path) -> list[Path]:
    """Draw the study's figures as PNG files in ``out_dir`` and return their paths.

    * ``kl_vs_m.png`` and ``flip_vs_m.png``: KL divergence and flip rate against ``m`` for each ``tau``
      (``tau = 2``: uniform low precision), one panel per corpus;
    * ``kl_vs_recomputed.png``: KL against the recomputed fraction, LAMP and the random baseline;
    * for an encoder's rows (:mod:`lampref.experiment.encoder`) the same three with the relative error of
      the hidden states and the retrieval flip rate: ``error_vs_m.png``, ``retrieval_flip_vs_m.png``,
      ``error_vs_recomputed.png``;
    * ``layer_recomputed.png``: the recomputed fraction per layer for each ``tau`` (lampref CSVs only);
    * for the sites study (:func:`sites_table`): ``kl_vs_m_sites.png``, the error of uniform low precision
      against ``m`` for each set of sites, and ``kl_vs_macs.png``, the error against the recomputed
      multiply-adds for each variant (where LAMP applies, and its random baseline), at every ``m`` (rows
      without a storage format; those are in the tables).

    The first five figures show the rows of the paper's study (the score site alone) only.

    Works on the authors' CSVs too (their columns are a subset of lampref's). Needs matplotlib
    (``pip install 'lampref[plot]'``).

    Raises
    ------
    ExperimentError
        No rows, or ``out_dir`` cannot be created or written (the message names the path).
    """
    plt = _pyplot()
    if not rows:
        raise ExperimentError("no rows to plot")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExperimentError(
            f"cannot create the figures folder {out}: {err.strerror or err}; {_FIX}"
        ) from None
    paths = _sites_figures(plt, rows, out)
    rows = [r for r in rows if _is_score_study(r)]
    datasets = sorted({str(r["dataset"]) for r in rows})
    for met in (_DECODER, _ENCODER):
        sel = [r for r in rows if _metrics(r) is met]
        if not sel:
            continue
        names = sorted({str(r["dataset"]) for r in sel})
        errors, flips, recomputed = met.files
        paths += [
            _save(plt, _metric_vs_m(plt, sel, names, met.error, met.error_axis), out / errors),
            _save(plt, _metric_vs_m(plt, sel, names, met.flip, met.flip_axis), out / flips),
            _save(plt, _error_vs_recomputed(plt, sel, names, met), out / recomputed),
        ]
    layered = [
        r for r in rows if r.get("layer_sparsity") and baseline_of(r) == "none" and float(r["tau"]) < 2.0
    ]
    if layered:
        paths.append(_save(plt, _layer_recomputed(plt, layered, datasets), out / "layer_recomputed.png"))
    return paths


def _pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (the ``plot`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - exercised only without the plot extra
        raise ImportError("plotting needs matplotlib: pip install 'lampref[plot]'") from err
    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` as PNG and close it; ExperimentError naming the path when it cannot."""
    try:
        fig.savefig(path, dpi=120)
    except OSError as err:
        raise ExperimentError(f"cannot write the figure {path}: {err.strerror or err}; {_FIX}") from None
    finally:
        plt.close(fig)
    return path


def _panels(plt: Any, datasets: Sequence[str], title: str) -> tuple[Any, Any]:
    """A figure with one panel per corpus, side by side, and its axes."""
    fig, axes = plt.subplots(1, len(datasets), figsize=(max(7.0, 5.0 * len(datasets)), 4.5), squeeze=False)
    fig.suptitle(title)
    return fig, axes[0]


def _finish(
    fig: Any, axes: Any, datasets: Sequence[str], xlabel: str, ylabel: str, *, log: bool, **legend: Any
) -> Any:
    """Label the panels (one per corpus; a log-scale y axis where ``log``), put the legend (``legend``:
    its options) on the last one when it has labelled lines, and lay the figure out."""
    for ax, dataset in zip(axes, datasets, strict=True):
        if log:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(dataset)
        ax.grid(True, which="both" if log else "major", alpha=0.3)
    if axes[-1].get_legend_handles_labels()[0]:  # a grid with nothing to draw leaves the panel bare
        axes[-1].legend(**legend)
    fig.tight_layout()
    return fig


def _metric_vs_m(
    plt: Any, rows: Sequence[Mapping[str, Any]], datasets: Sequence[str], metric: str, label: str
) -> Any:
    """``metric`` against ``m``, a line per ``tau`` of LAMP (``tau = 2``: no recomputation)."""
    taus = sorted({float(r["tau"]) for r in rows}, reverse=True)
    cmap = plt.get_cmap("viridis")
    fig, axes = _panels(plt, datasets, f"{label} vs mantissa bits of q.k")
    for ax, dataset in zip(axes, datasets, strict=True):
        for i, tau in enumerate(taus):
            sel = sorted(
                (
                    r
                    for r in rows
                    if r["dataset"] == dataset and float(r["tau"]) == tau and baseline_of(r) == "none"
                ),
                key=lambda r: int(r["m_bits"]),
            )
            if sel:
                style = (
                    {"color": "black", "lw": 2} if tau == 2.0 else {"color": cmap(i / max(len(taus) - 1, 1))}
                )
                ax.plot(
                    [int(r["m_bits"]) for r in sel],
                    [max(float(r[metric]), 1e-12) for r in sel],
                    marker="o",
                    ms=3,
                    label="no recomputation" if tau == 2.0 else f"LAMP tau={tau:g}",
                    **style,
                )
    return _finish(fig, axes, datasets, "mantissa bits m", label, log=True, fontsize=7, ncol=2)


def _error_vs_recomputed(
    plt: Any, rows: Sequence[Mapping[str, Any]], datasets: Sequence[str], met: _Metrics
) -> Any:
    """The error against the recomputed fraction (the ``sparsity`` column), LAMP and each random baseline."""
    cmap = plt.get_cmap("viridis")
    fig, axes = _panels(plt, datasets, f"{met.error_name} vs recomputed fraction: LAMP and random")
    for ax, dataset in zip(axes, datasets, strict=True):
        ms = sorted({int(r["m_bits"]) for r in rows if r["dataset"] == dataset})
        for j, m in enumerate(ms):
            color = cmap(j / max(len(ms) - 1, 1))
            for kind, marker, ls, name in _PLOT_KINDS:
                sel = sorted(
                    (
                        r
                        for r in rows
                        if r["dataset"] == dataset
                        and int(r["m_bits"]) == m
                        and baseline_of(r) == kind
                        and float(r["tau"]) < 2.0
                    ),
                    key=lambda r: float(r["sparsity"]),
                )
                if sel:
                    ax.plot(
                        [100 * float(r["sparsity"]) for r in sel],
                        [max(float(r[met.error]), 1e-12) for r in sel],
                        marker=marker,
                        ls=ls,
                        color=color,
                        ms=3,
                        label=f"m={m} {name}",
                    )
    xlabel = "recomputed scores (% of valid entries)"
    return _finish(fig, axes, datasets, xlabel, met.error_axis, log=True, fontsize=6, ncol=2)


def _layer_recomputed(plt: Any, layered: Sequence[Mapping[str, Any]], datasets: Sequence[str]) -> Any:
    """The recomputed fraction per layer (the ``layer_sparsity`` column) of the LAMP rows at the lowest
    ``m`` (it recomputes the most), a line per ``tau``."""
    cmap = plt.get_cmap("viridis")
    m = min(int(r["m_bits"]) for r in layered)
    fig, axes = _panels(plt, datasets, f"recomputed fraction per layer (m = {m})")
    for ax, dataset in zip(axes, datasets, strict=True):
        sel = [r for r in layered if r["dataset"] == dataset and int(r["m_bits"]) == m]
        for i, r in enumerate(sorted(sel, key=lambda r: -float(r["tau"]))):
            per_layer = [float(v) for v in str(r["layer_sparsity"]).split(";")]
            ax.plot(
                range(len(per_layer)),
                [100 * v for v in per_layer],
                marker="o",
                ms=3,
                color=cmap(i / max(len(sel) - 1, 1)),
                label=f"tau={float(r['tau']):g}",
            )
    return _finish(fig, axes, datasets, "layer", "recomputed (%)", log=False, fontsize=7)


# ------------------------------------------------------------------------------------ the sites study
BUDGETS: tuple[float, ...] = (0.005, 0.01, 0.02, 0.05, 0.1)
"""The recompute budgets of :func:`sites_table` (recomputed multiply-adds over those of the low-precision
sites)."""


def _num(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    return None if value is None or value == "" else float(value)


def _recomputes(row: Mapping[str, Any]) -> bool:
    """Whether a row recomputes anything: LAMP (or a baseline) below ``tau = 2`` or at a site beyond the
    scores."""
    return float(row["tau"]) < 2.0 or _num(row, "gelu_tau") is not None or _num(row, "norm_tau") is not None


def _is_score_study(row: Mapping[str, Any]) -> bool:
    """A row of the paper's study: low precision and LAMP at the score site only, no storage format."""
    return (
        row.get("sites", "attn.score") == "attn.score"
        and row.get("storage", "none") == "none"
        and _num(row, "gelu_tau") is None
        and _num(row, "norm_tau") is None
    )


def _sites_label(row: Mapping[str, Any]) -> str:
    from ..gpt2.plan import SITES

    sites = str(row.get("sites", "attn.score"))
    name = "all" if sites == ",".join(SITES) else sites
    storage = row.get("storage", "none")
    return name if storage == "none" else f"{name} [{storage}]"


def _site_order(row: Mapping[str, Any]) -> tuple[int, int, str]:
    """Single sites first, in execution order, then larger sets; storage formats after."""
    from ..gpt2.plan import SITES

    sites = str(row.get("sites", "attn.score")).split(",")
    first = SITES.index(sites[0]) if sites[0] in SITES else len(SITES)
    return (len(sites), first, (str(row.get("storage", "none")) != "none" and str(row.get("storage"))) or "")


def _variant(row: Mapping[str, Any]) -> str:
    lamp = str(row.get("lamp_sites") or "-")
    return lamp if baseline_of(row) == "none" else f"random at {lamp}"


def _render(lines: Sequence[Sequence[str]], markdown: bool) -> str:
    if markdown:
        rule = "|" + "---|" * len(lines[0])
        return "\n".join(
            ["| " + " | ".join(lines[0]) + " |", rule, *("| " + " | ".join(r) + " |" for r in lines[1:])]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _sensitivity(rows: Sequence[Mapping[str, Any]], markdown: bool) -> str | None:
    """KL (or the encoder's error) of uniform low precision by ``m`` (lines) and site set (columns)."""
    uniform = [r for r in rows if not _recomputes(r) and baseline_of(r) == "none"]
    labels = list(dict.fromkeys(_sites_label(r) for r in sorted(uniform, key=_site_order)))
    if len(labels) < 2 and all(r.get("storage", "none") == "none" for r in uniform):
        return None
    met = _metrics(uniform[0])
    lines = [("dataset", "m", *labels)]
    for dataset, m in sorted({(str(r["dataset"]), int(r["m_bits"])) for r in uniform}):
        cells = []
        for label in labels:
            hit = [
                r
                for r in uniform
                if (str(r["dataset"]), int(r["m_bits"]), _sites_label(r)) == (dataset, m, label)
            ]
            cells.append(f"{float(hit[0][met.error]):.2e}" if hit else "")
        lines.append((dataset, str(m), *cells))
    head = f"{met.error_name} of uniform low precision at each set of sites (columns), by m:"
    return head + "\n\n" + _render(lines, markdown)


def _lamp_lines(rows: Sequence[Mapping[str, Any]], markdown: bool) -> str | None:
    """Every LAMP row of the sites study, with its random baseline and its uniform reference."""
    lamp = [r for r in rows if _recomputes(r) and baseline_of(r) == "none" and not _is_score_study(r)]
    if not lamp:
        return None
    met = _metrics(lamp[0])
    err = met.error

    def key(r: Mapping[str, Any]) -> tuple[Any, ...]:
        return (r["dataset"], r.get("sites"), r.get("storage"), int(r["m_bits"]))

    lines = [("dataset", "sites", "m", "LAMP at", "tau", "gelu tau", "norm tau", "recomputed MACs",
              "per site", met.error_name, f"{met.error_name} random", "x uniform", "x random")]  # fmt: skip
    for r in sorted(lamp, key=lambda r: (*key(r), str(r.get("lamp_sites")), _num(r, "recomputed_macs") or 0)):
        uni = [u for u in rows if key(u) == key(r) and not _recomputes(u) and baseline_of(u) == "none"]
        same = ("tau", "gelu_tau", "norm_tau", "lamp_sites")
        rnd = [
            u
            for u in rows
            if key(u) == key(r) and baseline_of(u) != "none" and all(u.get(k) == r.get(k) for k in same)
        ]
        e = float(r[err])
        x_uni = float(uni[0][err]) / e if uni and e > 0 else float("nan")
        x_rnd = float(rnd[0][err]) / e if rnd and e > 0 else float("nan")
        macs = _num(r, "recomputed_macs")
        lines.append((
            str(r["dataset"]), _sites_label(r), str(r["m_bits"]), str(r.get("lamp_sites")),
            f"{float(r['tau']):g}", _opt(r, "gelu_tau"), _opt(r, "norm_tau"),
            "" if macs is None else f"{100 * macs:.2f}%",
            str(r.get("site_sparsity") or ""), f"{e:.2e}", f"{float(rnd[0][err]):.2e}" if rnd else "",
            f"{x_uni:.1f}", f"{x_rnd:.1f}",
        ))  # fmt: skip
    return (
        "LAMP at several sites (recomputed MACs: of the low-precision sites' multiply-adds):\n\n"
        + _render(lines, markdown)
    )


def _opt(row: Mapping[str, Any], key: str) -> str:
    value = _num(row, key)
    return "" if value is None else f"{value:g}"


def _budget_lines(rows: Sequence[Mapping[str, Any]], markdown: bool) -> str | None:
    """The lowest error of each variant (LAMP sites, or a random baseline) within each recompute budget."""
    cand = [r for r in rows if _recomputes(r) and _num(r, "recomputed_macs") is not None]
    cand = [r for r in cand if not _is_score_study(r)]
    if not cand:
        return None
    err = _metrics(cand[0]).error
    variants = sorted({_variant(r) for r in cand}, key=lambda v: (v.startswith("random"), v))
    lines = [("dataset", "sites", "m", "budget", *variants)]
    groups = sorted({(str(r["dataset"]), _sites_label(r), int(r["m_bits"])) for r in cand})
    for dataset, label, m in groups:
        sel = [
            r for r in cand if (str(r["dataset"]), _sites_label(r), int(r["m_bits"])) == (dataset, label, m)
        ]
        for budget in BUDGETS:
            cells = []
            for v in variants:
                fit = [
                    float(r[err])
                    for r in sel
                    if _variant(r) == v and (_num(r, "recomputed_macs") or 0) <= budget
                ]
                cells.append(f"{min(fit):.2e}" if fit else "")
            if any(cells):
                lines.append((dataset, label, str(m), f"{100 * budget:g}%", *cells))
    if len(lines) == 1:
        return None  # no row within the largest budget
    head = "lowest error within each recompute budget (recomputed MACs of the low-precision sites):"
    return head + "\n\n" + _render(lines, markdown)


def sites_table(rows: Sequence[Mapping[str, Any]], *, markdown: bool = False) -> str:
    """The tables of the sites study (look-ahead recomputation beyond softmax, :mod:`lampref.lamp_sites`).

    * the per-site sensitivity: the error of uniform low precision at each set of sites (``sites``, with
      its storage format), by ``m``;
    * every LAMP row with sites or storage beyond the paper's study: its recomputed multiply-adds, the
      recomputed fraction per site, the error, its random baseline's (the same number of entries per row
      at random positions, at every site) and the gains over uniform low precision and over random;
    * matched budgets: for each variant (where LAMP applies, or the random baseline there) the lowest
      error among its rows that recompute at most 0.5%, 1%, 2%, 5%, 10% of the multiply-adds.

    Rows of the paper's score-site study alone give only the sensitivity line of ``attn.score``; their
    summary is :func:`summary_table`. Returns an empty string when the rows hold nothing for these tables.

    Examples
    --------
    >>> base = dict(dataset="prose", m_bits=4, fake_lamp=False, baseline="none", storage="none")
    >>> rows = [dict(base, sites="attn.score", tau=2.0, kl_div=1e-3),
    ...         dict(base, sites="mlp.fc", lamp_sites="", tau=2.0, kl_div=4e-3)]
    >>> print(sites_table(rows))
    KL of uniform low precision at each set of sites (columns), by m:
    <BLANKLINE>
    dataset  m  attn.score  mlp.fc
    prose    4  1.00e-03    4.00e-03
    """
    parts = [
        p
        for p in (_sensitivity(rows, markdown), _lamp_lines(rows, markdown), _budget_lines(rows, markdown))
        if p
    ]
    return "\n\n".join(parts)


def _sites_figures(plt: Any, rows: Sequence[Mapping[str, Any]], out: Path) -> list[Path]:
    """The figures of the sites study (:func:`plot_results`), where its rows hold them."""
    decoder = [r for r in rows if _metrics(r) is _DECODER]
    uniform = [r for r in decoder if not _recomputes(r) and baseline_of(r) == "none"]
    lamp = [r for r in decoder if _recomputes(r) and not _is_score_study(r)]
    lamp = [r for r in lamp if _num(r, "recomputed_macs") is not None and r.get("storage", "none") == "none"]
    paths = []
    if len({_sites_label(r) for r in uniform}) > 1:
        paths.append(_save(plt, _kl_vs_m_sites(plt, uniform), out / "kl_vs_m_sites.png"))
    if lamp:
        paths.append(_save(plt, _kl_vs_macs(plt, lamp), out / "kl_vs_macs.png"))
    return paths


def _kl_vs_m_sites(plt: Any, uniform: Sequence[Mapping[str, Any]]) -> Any:
    """KL of uniform low precision against ``m``, a line per set of sites."""
    datasets = sorted({str(r["dataset"]) for r in uniform})
    labels = list(dict.fromkeys(_sites_label(r) for r in sorted(uniform, key=_site_order)))
    cmap = plt.get_cmap("tab20")
    fig, axes = _panels(plt, datasets, "KL of uniform low precision, by site")
    for ax, dataset in zip(axes, datasets, strict=True):
        for i, label in enumerate(labels):
            sel = [r for r in uniform if r["dataset"] == dataset and _sites_label(r) == label]
            sel.sort(key=lambda r: int(r["m_bits"]))
            if sel:
                single = "," not in label or label == "all"  # one site, or every site: solid
                ax.plot(
                    [int(r["m_bits"]) for r in sel],
                    [max(float(r["kl_div"]), 1e-12) for r in sel],
                    marker="o", ms=3, color=cmap(i % 20), ls="-" if single else "--", label=label,
                )  # fmt: skip
    return _finish(fig, axes, datasets, "mantissa bits m", "KL(fp32 || test)", log=True, fontsize=7)


def _frontier(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The lowest error reached within each recompute budget: the lower-left frontier of the points."""
    out: list[tuple[float, float]] = []
    for x, y in sorted(points):
        if not out or y < out[-1][1]:
            out.append((x, y))
    return out


def _kl_vs_macs(plt: Any, lamp: Sequence[Mapping[str, Any]]) -> Any:
    """KL against the recomputed multiply-adds: for each set of sites, variant (LAMP's sites, or the random
    baseline there, dotted in LAMP's colour) and ``m``, the frontier of its rows."""
    datasets = sorted({str(r["dataset"]) for r in lamp})
    keys = sorted(
        {(_sites_label(r), _variant(r)) for r in lamp}, key=lambda k: (k[1].startswith("random"), k)
    )
    lamps = sorted({k for k in keys if not k[1].startswith("random")})
    ms = sorted({int(r["m_bits"]) for r in lamp})
    cmap = plt.get_cmap("tab10")
    fig, axes = _panels(plt, datasets, "KL vs recomputed multiply-adds: LAMP at several sites and random")
    for ax, dataset in zip(axes, datasets, strict=True):
        for label, v in keys:
            rnd = v.startswith("random")
            base = v[len("random at ") :] if rnd else v
            i = lamps.index((label, base)) if (label, base) in lamps else 0
            for j, m in enumerate(ms):
                pts = [
                    (100 * (_num(r, "recomputed_macs") or 0.0), max(float(r["kl_div"]), 1e-12))
                    for r in lamp
                    if r["dataset"] == dataset and (_sites_label(r), _variant(r)) == (label, v)
                    and int(r["m_bits"]) == m
                ]  # fmt: skip
                front = _frontier(pts)
                if front:
                    ax.plot(
                        *zip(*front, strict=True), marker="x" if rnd else "o", ls=":" if rnd else "-",
                        color=cmap(i % 10), ms=3, alpha=1.0 - 0.5 * j / max(len(ms) - 1, 1),
                        label=f"{label}: {v} m={m}",
                    )  # fmt: skip
        ax.set_xscale("symlog", linthresh=0.1)
    xlabel = "recomputed multiply-adds (% of the low-precision sites')"
    _finish(fig, axes, datasets, xlabel, "KL(fp32 || test)", log=True)
    handles, labels = axes[-1].get_legend_handles_labels()
    if axes[-1].get_legend() is not None:
        axes[-1].get_legend().remove()
        rows = (len(labels) + 2) // 3
        fig.set_size_inches(fig.get_size_inches()[0], 4.5 + 0.16 * rows)
        fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=6, frameon=False)
        fig.tight_layout(rect=(0.0, 0.16 * rows / (4.5 + 0.16 * rows) + 0.02, 1.0, 1.0))
    return fig
