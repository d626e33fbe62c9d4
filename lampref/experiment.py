r"""The LAMP study: KL divergence and flip rate against the float32 model, over a grid of settings.

For every corpus and every setting of the grid (mantissa bits ``m`` of the key-query products, LAMP
threshold ``tau``, selection rule, random baseline or not, accumulation model), the runner computes the
next-token distributions of the model with the emulated score site and compares them with the float32
model's: :func:`lampref.metrics.kl_divergence` (KL(P_fp32 || P_test) averaged over positions) and
:func:`lampref.metrics.flip_rate` (share of positions whose argmax changes), plus the recomputed fraction of
the attention scores (per layer and overall).

Results are appended to a CSV, one row per (corpus, setting), each row written with a single ``write`` on a
file opened for appending and flushed to disk: an interrupted run loses at most the row being computed, and
running the same command again skips every row whose configuration hash is already in the file.

The CSV has the columns of the LAMP authors' results (``model, seed, nbatches, dataset, shuffle, fake_lamp,
m_bits, tau, kl_div, flip_rate, sparsity``) followed by lampref's (``accumulation, rule, seq_len,
positions, layer_sparsity, config_hash``); ``tau = 2`` with ``fake_lamp = False`` is uniform low precision
(nothing recomputed).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .accumulate import Accumulator
from .errors import LamprefError
from .formats import fp32_mantissa

__all__ = [
    "ACCUMULATIONS",
    "AUTHORS_M_BITS",
    "AUTHORS_TAUS",
    "CSV_COLUMNS",
    "ExperimentError",
    "Setting",
    "grid",
    "plot_results",
    "read_results",
    "run_experiment",
    "summary_table",
    "windows",
]

AUTHORS_M_BITS: tuple[int, ...] = (2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22)
AUTHORS_TAUS: tuple[float, ...] = (2.0, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4, 1.3, 1.2, 1.1, 1.08, 1.06, 1.04, 1.02)

CSV_COLUMNS: tuple[str, ...] = (
    "model",
    "seed",
    "nbatches",
    "dataset",
    "shuffle",
    "fake_lamp",
    "m_bits",
    "tau",
    "kl_div",
    "flip_rate",
    "sparsity",
    "accumulation",
    "rule",
    "seq_len",
    "positions",
    "layer_sparsity",
    "config_hash",
)


class ExperimentError(LamprefError, ValueError):
    """An invalid experiment argument (grid, corpus, sizes) or an unreadable results file."""


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


@dataclass(frozen=True)
class Setting:
    """One point of the grid: the score site at ``m_bits``, LAMP at ``tau`` (2 = nothing recomputed)."""

    m_bits: int
    tau: float
    fake_lamp: bool = False
    rule: str = "prefix"
    accumulation: str = "strict"

    def plan(self, seed: int) -> Any:
        """The precision plan of this setting."""
        from .gpt2 import PrecisionPlan
        from .lamp import LampConfig

        acc = ACCUMULATIONS[self.accumulation](self.m_bits)
        if self.tau == 2.0 and not self.fake_lamp:
            return PrecisionPlan.only("attn.score", acc)
        rule = LampConfig(
            acc, self.tau, rule=self.rule, baseline="random" if self.fake_lamp else None, seed=seed
        )
        return PrecisionPlan.only("attn.score", rule)


def grid(
    m_bits: Iterable[int],
    taus: Iterable[float],
    *,
    baseline: bool = True,
    rule: str = "prefix",
    accumulation: str = "strict",
) -> list[Setting]:
    """The settings of a study: every ``m`` with every ``tau``, and (``baseline=True``) the random baseline
    at every ``tau < 2`` (same number of recomputed scores per row as LAMP).

    >>> [(s.m_bits, s.tau, s.fake_lamp) for s in grid([4], [2.0, 1.5])]
    [(4, 2.0, False), (4, 1.5, False), (4, 1.5, True)]
    """
    if accumulation not in ACCUMULATIONS:
        raise ExperimentError(
            f"accumulation={accumulation!r} is not valid; expected one of {list(ACCUMULATIONS)}"
        )
    out: list[Setting] = []
    for m in m_bits:
        if not 0 <= int(m) <= 23:
            raise ExperimentError(f"m_bits={m} is out of range; expected 0 <= m <= 23")
        for tau in taus:
            if not 0.0 < float(tau) <= 2.0:
                raise ExperimentError(f"tau={tau} is out of range; expected 0 < tau <= 2")
            out.append(Setting(int(m), float(tau), False, rule, accumulation))
            if baseline and float(tau) < 2.0:
                out.append(Setting(int(m), float(tau), True, rule, accumulation))
    return out


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
    generator seeded by ``seed``.

    >>> windows(list(range(10)), 3, 2, seed=0).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    arr = np.asarray(tokens, dtype=np.int64)
    n_windows = arr.size // seq_len
    if seq_len < 2 or count < 1:
        raise ExperimentError(f"need seq_len >= 2 and count >= 1, got seq_len={seq_len}, count={count}")
    if n_windows < count:
        raise ExperimentError(
            f"the corpus has {arr.size} tokens: {n_windows} windows of {seq_len}, "
            f"fewer than the {count} asked for"
        )
    starts = (np.arange(count) * (n_windows // count)) * seq_len
    out = np.stack([arr[s : s + seq_len] for s in starts])
    if shuffle:
        rng = np.random.default_rng(seed)
        out = np.stack([rng.permutation(row) for row in out])
    return out


def _config_hash(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a results CSV (lampref's, or the authors' columns only), values parsed."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ExperimentError(f"cannot read results file {p}: {err.strerror}") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and not {"m_bits", "tau", "kl_div"} <= set(rows[0]):
        raise ExperimentError(f"{p} is not a results CSV: it lacks the columns m_bits, tau, kl_div")
    out = []
    for r in rows:
        row: dict[str, Any] = dict(r)
        for key in ("m_bits", "nbatches", "seed", "seq_len", "positions"):
            if row.get(key) not in (None, ""):
                row[key] = int(float(row[key]))
        for key in ("tau", "kl_div", "flip_rate", "sparsity"):
            if row.get(key) not in (None, ""):
                row[key] = float(row[key])
        for key in ("shuffle", "fake_lamp"):
            if key in row:
                row[key] = str(row[key]).strip().lower() in ("true", "1")
        out.append(row)
    return out


def _append_row(path: Path, row: Mapping[str, Any]) -> None:
    """Append one CSV row (the header first if the file is new) with a single write, flushed to disk."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    new = not path.exists() or path.stat().st_size == 0
    if new:
        writer.writeheader()
    writer.writerow({k: row[k] for k in CSV_COLUMNS})
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, buf.getvalue().encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _drop_partial_row(path: Path) -> None:
    """Cut a results file back to its last complete line (a row cut short by a crash or power loss)."""
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # progress bars are optional (extra "progress")
        return None
    return tqdm(total=total, file=sys.stderr, dynamic_ncols=True)


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
) -> list[dict[str, Any]]:
    """Run (or resume) a study and return its rows, in grid order.

    Parameters
    ----------
    model : lampref.gpt2.GPT2
        The model; its float32 forward pass is the reference.
    corpora : mapping of name to token array
        Tokenised corpora; ``sequences`` windows of ``seq_len`` tokens are taken from each
        (:func:`windows`).
    settings : sequence of Setting
        The grid (:func:`grid`).
    model_name : str
        Recorded in the ``model`` column and in the configuration hash.
    out : path
        The results CSV; rows already in it (same configuration hash) are not recomputed.

    Returns
    -------
    list of dict
        One row per (corpus, setting), with the CSV's columns.
    """
    from .lamp import recompute_fraction
    from .metrics import _kl_from_log_probs, log_softmax

    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        _drop_partial_row(path)
    done = {r.get("config_hash"): r for r in read_results(path)} if path.exists() else {}
    jobs = []
    for dataset, tokens in corpora.items():
        batch = windows(tokens, seq_len, sequences, seed=seed, shuffle=shuffle)
        for s in settings:
            fields = {
                "model": model_name,
                "dataset": dataset,
                "seed": seed,
                "nbatches": sequences,
                "seq_len": seq_len,
                "shuffle": shuffle,
                **asdict(s),
            }
            jobs.append((dataset, batch, s, _config_hash(fields)))
    bar = _progress(sum(1 for j in jobs if j[3] not in done), progress)
    refs: dict[str, list[tuple[NDArray[np.floating[Any]], NDArray[np.intp]]]] = {}
    rows: list[dict[str, Any]] = []
    try:
        for dataset, batch, s, h in jobs:
            if h in done:
                rows.append(done[h])
                continue
            if dataset not in refs:  # the reference of one corpus at a time (jobs are corpus-major)
                refs.clear()
                logits = [model.logits(seq) for seq in batch]  # float32 [T, V] each
                # float64 log-probabilities (8 bytes a logit) are kept when they fit in REF_CACHE_BYTES
                keep = sum(z.size for z in logits) * 8 <= REF_CACHE_BYTES
                refs[dataset] = [(log_softmax(z) if keep else z, z.argmax(axis=-1)) for z in logits]
                del logits
            plan = s.plan(seed)
            kl_sum = flips = 0.0
            stats_all: list[tuple[dict[str, Any], ...]] = []
            for seq, (ref, ref_top) in zip(batch, refs[dataset], strict=True):
                test, stats = model.logits_and_stats(seq, plan)
                ref_logp = ref if ref.dtype == np.float64 else log_softmax(ref)  # float32: logits
                kl_sum += float(_kl_from_log_probs(ref_logp, log_softmax(test), "mean")) * len(seq)
                flips += float(np.count_nonzero(test.argmax(axis=-1) != ref_top))  # as flip_rate
                stats_all.append(stats)
            positions = int(batch.size)
            layer_stats = [_merge([st[layer] for st in stats_all]) for layer in range(len(stats_all[0]))]
            if any(layer_stats):
                frac = recompute_fraction(layer_stats)
                sparsity, per_layer = float(frac.total), [float(v) for v in frac.per_layer]
            else:
                sparsity, per_layer = 0.0, [0.0] * len(layer_stats)
            row = {
                "model": model_name,
                "seed": seed,
                "nbatches": sequences,
                "dataset": dataset,
                "shuffle": shuffle,
                "fake_lamp": s.fake_lamp,
                "m_bits": s.m_bits,
                "tau": s.tau,
                "kl_div": kl_sum / positions,
                "flip_rate": flips / positions,
                "sparsity": sparsity,
                "accumulation": s.accumulation,
                "rule": s.rule,
                "seq_len": seq_len,
                "positions": positions,
                "layer_sparsity": ";".join(f"{v:.6g}" for v in per_layer),
                "config_hash": h,
            }
            _append_row(path, row)
            rows.append(row)
            if bar is not None:
                bar.set_description(
                    f"{dataset} m={s.m_bits} tau={s.tau:g}{' random' if s.fake_lamp else ''}", refresh=False
                )
                bar.set_postfix(kl=f"{row['kl_div']:.2e}", flip=f"{row['flip_rate']:.3f}", refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return rows


def _merge(stats: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum the additive statistics of one layer over sequences (row statistics are dropped)."""
    out: dict[str, Any] = {}
    for st in stats:
        for key, value in st.items():
            if key.startswith("row_"):
                continue
            out[key] = out[key] + value if key in out else value
    return out


def summary_table(
    rows: Sequence[Mapping[str, Any]],
    *,
    max_recomputed: float | None = None,
    markdown: bool = False,
) -> str:
    """For each corpus and ``m``: KL and flip rate with no recomputation, the best LAMP result (lowest KL),
    its recomputed fraction, and the improvement factors over uniform low precision and over random
    recomputation of the same count (the random baseline at the same ``tau``).

    Parameters
    ----------
    rows : sequence of mapping
        Results rows (:func:`run_experiment`, :func:`read_results`).
    max_recomputed : float, optional
        Only LAMP settings that recompute at most this fraction of the causal scores compete for "best"
        (for example 0.1: the best result at a recomputation rate of 10% or less). A corpus and ``m`` with
        no such setting is left out.
    markdown : bool, default False
        A Markdown table instead of aligned text.

    Returns
    -------
    str
        The table, one line per corpus and ``m``.

    Examples
    --------
    >>> row = dict(dataset="prose", m_bits=4)
    >>> rows = [dict(row, tau=2.0, fake_lamp=False, kl_div=1e-2, flip_rate=0.1, sparsity=0),
    ...         dict(row, tau=1.1, fake_lamp=False, kl_div=1e-4, flip_rate=0.01, sparsity=0.05),
    ...         dict(row, tau=1.1, fake_lamp=True, kl_div=5e-3, flip_rate=0.05, sparsity=0.05),
    ...         dict(row, tau=1.02, fake_lamp=False, kl_div=1e-6, flip_rate=0.0, sparsity=0.5)]
    >>> print(summary_table(rows))  # doctest: +NORMALIZE_WHITESPACE
    dataset  m   KL uniform  flip uniform  best tau  KL LAMP   flip LAMP  recomputed  x uniform  x random
    prose    4   1.00e-02    0.1000        1.02      1.00e-06  0.0000     50.00%      10000.0    nan
    >>> print(summary_table(rows, max_recomputed=0.1, markdown=True))
    | dataset | m | KL uniform | flip uniform | best tau | KL LAMP | flip LAMP | recomputed | x uniform | x random |
    |---|---|---|---|---|---|---|---|---|---|
    | prose | 4 | 1.00e-02 | 0.1000 | 1.1 | 1.00e-04 | 0.0100 | 5.00% | 100.0 | 50.0 |
    """  # noqa: E501 (a doctest line of Markdown output)
    header = (
        "dataset",
        "m",
        "KL uniform",
        "flip uniform",
        "best tau",
        "KL LAMP",
        "flip LAMP",
        "recomputed",
        "x uniform",
        "x random",
    )
    lines = [header]
    keys = sorted({(r["dataset"], int(r["m_bits"])) for r in rows})
    for dataset, m in keys:
        sel = [r for r in rows if r["dataset"] == dataset and int(r["m_bits"]) == m]
        uniform = [r for r in sel if float(r["tau"]) == 2.0 and not r["fake_lamp"]]
        lamp = [r for r in sel if float(r["tau"]) < 2.0 and not r["fake_lamp"]]
        if max_recomputed is not None:
            lamp = [r for r in lamp if float(r["sparsity"]) <= max_recomputed]
        if not uniform or not lamp:
            continue
        u = uniform[0]
        best = min(lamp, key=lambda r: (float(r["kl_div"]), float(r["sparsity"])))
        rnd = [r for r in sel if r["fake_lamp"] and float(r["tau"]) == float(best["tau"])]
        kl_best = float(best["kl_div"])
        x_uniform = float(u["kl_div"]) / kl_best if kl_best > 0 else float("inf")
        x_random = float(rnd[0]["kl_div"]) / kl_best if rnd and kl_best > 0 else float("nan")
        lines.append(
            (
                str(dataset),
                str(m),
                f"{float(u['kl_div']):.2e}",
                f"{float(u['flip_rate']):.4f}",
                f"{float(best['tau']):g}",
                f"{kl_best:.2e}",
                f"{float(best['flip_rate']):.4f}",
                f"{100 * float(best['sparsity']):.2f}%",
                f"{x_uniform:.1f}",
                f"{x_random:.1f}",
            )
        )
    if markdown:
        rule = "|" + "---|" * len(header)
        return "\n".join(
            ["| " + " | ".join(lines[0]) + " |", rule, *("| " + " | ".join(r) + " |" for r in lines[1:])]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def plot_results(rows: Sequence[Mapping[str, Any]], out_dir: str | Path) -> list[Path]:
    """Draw the study's figures as PNG files in ``out_dir`` and return their paths.

    * ``kl_vs_m.png`` and ``flip_vs_m.png``: KL divergence and flip rate against ``m`` for each ``tau``
      (``tau = 2``: uniform low precision), one panel per corpus;
    * ``kl_vs_recomputed.png``: KL against the recomputed fraction, LAMP and the random baseline;
    * ``layer_recomputed.png``: the recomputed fraction per layer for each ``tau`` (lampref CSVs only).

    Works on the authors' CSVs too (their columns are a subset of lampref's). Needs matplotlib
    (``pip install 'lampref[plot]'``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - exercised only without the plot extra
        raise ImportError("plotting needs matplotlib: pip install 'lampref[plot]'") from err
    if not rows:
        raise ExperimentError("no rows to plot")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    datasets = sorted({str(r["dataset"]) for r in rows})
    taus = sorted({float(r["tau"]) for r in rows}, reverse=True)
    cmap = plt.get_cmap("viridis")
    paths = []

    def panels(title: str) -> tuple[Any, Any]:
        fig, axes = plt.subplots(
            1, len(datasets), figsize=(max(7.0, 5.0 * len(datasets)), 4.5), squeeze=False
        )
        fig.suptitle(title)
        return fig, axes[0]

    for metric, name, label in (
        ("kl_div", "kl_vs_m.png", "KL(fp32 || test)"),
        ("flip_rate", "flip_vs_m.png", "flip rate"),
    ):
        fig, axes = panels(f"{label} vs mantissa bits of q.k")
        for ax, dataset in zip(axes, datasets, strict=True):
            for i, tau in enumerate(taus):
                sel = sorted(
                    (
                        r
                        for r in rows
                        if r["dataset"] == dataset and float(r["tau"]) == tau and not r["fake_lamp"]
                    ),
                    key=lambda r: int(r["m_bits"]),
                )
                if sel:
                    ys = [max(float(r[metric]), 1e-12) for r in sel]
                    style = (
                        {"color": "black", "lw": 2}
                        if tau == 2.0
                        else {"color": cmap(i / max(len(taus) - 1, 1))}
                    )
                    ax.plot(
                        [int(r["m_bits"]) for r in sel],
                        ys,
                        marker="o",
                        ms=3,
                        label="no recomputation" if tau == 2.0 else f"LAMP tau={tau:g}",
                        **style,
                    )
            ax.set_yscale("log")
            ax.set_xlabel("mantissa bits m")
            ax.set_ylabel(label)
            ax.set_title(dataset)
            ax.grid(True, which="both", alpha=0.3)
        axes[-1].legend(fontsize=7, ncol=2)
        fig.tight_layout()
        paths.append(out / name)
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)

    fig, axes = panels("KL vs recomputed fraction: LAMP and random")
    for ax, dataset in zip(axes, datasets, strict=True):
        ms = sorted({int(r["m_bits"]) for r in rows if r["dataset"] == dataset})
        for j, m in enumerate(ms):
            color = cmap(j / max(len(ms) - 1, 1))
            for fake, marker, ls in ((False, "o", "-"), (True, "x", ":")):
                sel = sorted(
                    (
                        r
                        for r in rows
                        if r["dataset"] == dataset
                        and int(r["m_bits"]) == m
                        and bool(r["fake_lamp"]) == fake
                        and float(r["tau"]) < 2.0
                    ),
                    key=lambda r: float(r["sparsity"]),
                )
                if sel:
                    ax.plot(
                        [100 * float(r["sparsity"]) for r in sel],
                        [max(float(r["kl_div"]), 1e-12) for r in sel],
                        marker=marker,
                        ls=ls,
                        color=color,
                        ms=3,
                        label=f"m={m} {'random' if fake else 'LAMP'}",
                    )
        ax.set_yscale("log")
        ax.set_xlabel("recomputed scores (% of causal entries)")
        ax.set_ylabel("KL(fp32 || test)")
        ax.set_title(dataset)
        ax.grid(True, which="both", alpha=0.3)
    axes[-1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    paths.append(out / "kl_vs_recomputed.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    layered = [r for r in rows if r.get("layer_sparsity") and not r["fake_lamp"] and float(r["tau"]) < 2.0]
    if layered:
        m = min(int(r["m_bits"]) for r in layered)  # the lowest precision recomputes the most
        fig, axes = panels(f"recomputed fraction per layer (m = {m})")
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
            ax.set_xlabel("layer")
            ax.set_ylabel("recomputed (%)")
            ax.set_title(dataset)
            ax.grid(True, alpha=0.3)
        axes[-1].legend(fontsize=7)
        fig.tight_layout()
        paths.append(out / "layer_recomputed.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths
