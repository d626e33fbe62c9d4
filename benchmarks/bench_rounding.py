"""Benchmark of lampref.round_to against native casts and against pychop, measured side by side in one run.

Run from the repository root::

    python benchmarks/bench_rounding.py            # 10**7 float32 values
    python benchmarks/bench_rounding.py --n 100000 # a quick check

Compared on the same float32 input (a standard normal sample with a share of edge values: ties, subnormals,
values beyond overflow, signed zeros, infinities, NaN):

* binary16, round to nearest even: lampref vs ``x.astype(np.float16).astype(np.float32)``;
* bfloat16, round to nearest even: lampref vs the ml_dtypes ``bfloat16`` round trip;
* lampref vs pychop ``Chop`` for binary16, bfloat16 and the custom format p=5, emax=7 (pychop's
  ``exp_bits=4, sig_bits=4``), in every rounding mode both support: pychop as shipped (backend ``auto``,
  dask in chunks of 800 elements for the deterministic modes) and pychop's NumPy backend without dask.

Each time is the best of several repeats. The native casts are checked to give bit-identical results (a
benchmark of a wrong result is worthless); pychop's results are compared with lampref's and the number of
differing elements is printed (pychop's known errors, see docs/pychop.md). pychop as shipped is slow, so it
is timed on at most ``--pychop-cap`` elements in the deterministic modes (those that go through dask) and
its time is scaled linearly to ``n`` (marked with ``*``).
Targets: lampref within 3x of the native casts, and faster than pychop for every shared format and mode.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import math
import os
import platform
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from _timing import best_time

import lampref
from lampref import FloatFormat, bf16, fp16, round_to, to_pychop
from lampref.rounding import MODES, STOCHASTIC_MODES
from lampref.testing.peers import PYCHOP_RMODES

CUSTOM = FloatFormat(p=5, emax=7, name="p5_emax7")
SHARED_FORMATS = (fp16, bf16, CUSTOM)
NATIVE_TARGET = 3.0  # lampref may take at most this many times the native cast


# ------------------------------------------------------------------------------------------ input
def make_input(n: int, edge_share: float, seed: int) -> np.ndarray:
    """n float32 values: standard normal, with ``edge_share`` of them replaced by edge values."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n, dtype=np.float32)
    edges = np.array(
        [
            1 + 2.0**-11,  # binary16 tie (to even: 1)
            1 + 3 * 2.0**-11,  # binary16 tie (to even: up)
            1 + 2.0**-8,  # bfloat16 tie
            1 + 2.0**-5,  # p=5 tie
            np.nextafter(np.float32(1 + 2.0**-11), np.float32(2)),  # just above a tie
            np.nextafter(np.float32(2), np.float32(0)),  # just below a power of two
            2.0**-24,  # binary16's smallest subnormal
            3 * 2.0**-25,  # a binary16 subnormal tie
            2.0**-126 * 0.75,  # a float32 subnormal
            1e-3,
            2.0**-9,  # p=5 subnormals start below 2**-6
            65504.0,
            65520.0,  # binary16 overflow threshold
            70000.0,
            240.0,
            250.0,
            1e30,
            3.0e38,
            0.0,
            -0.0,
            np.inf,
            -np.inf,
            np.nan,
        ],
        dtype=np.float32,
    )
    k = round(n * edge_share)
    where = rng.choice(n, size=k, replace=False)
    signs = np.where(rng.random(k) < 0.5, np.float32(-1), np.float32(1))
    x[where] = edges[rng.integers(0, edges.size, size=k)] * signs
    return x


# ---------------------------------------------------------------------------------------- timing
def same_bits(a: np.ndarray, b: np.ndarray) -> int:
    """Number of elements whose values differ (NaNs count as equal to NaNs; -0 differs from +0)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        equal = ((a == b) & (np.signbit(a) == np.signbit(b))) | (np.isnan(a) & np.isnan(b))
    return int(a.size - np.count_nonzero(equal))


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -------------------------------------------------------------------------------------- reporting
def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class Row:
    fmt: str
    mode: str
    lampref_s: float
    other_s: dict[str, float]
    notes: list[str]
    scaled: bool = False


def fmt_s(t: float) -> str:
    return "-" if math.isnan(t) else f"{t:8.3f}"


def fmt_ratio(r: float) -> str:
    return "-" if math.isnan(r) else f"{r:7.2f}"


# ------------------------------------------------------------------------------------------- runs
def lampref_runner(x: np.ndarray, fmt: FloatFormat, mode: str) -> Callable[[], Any]:
    if mode in STOCHASTIC_MODES:
        return lambda: round_to(x, fmt, mode, rng=np.random.default_rng(0))
    return lambda: round_to(x, fmt, mode)


def bench_native(x: np.ndarray, repeats: int) -> tuple[list[Row], bool]:
    rows, ok = [], True
    t_l, ours = best_time(lampref_runner(x, fp16, "nearest_even"), repeats, warmup=True)
    with np.errstate(over="ignore"):  # values beyond 65504 become inf, as intended
        t_n, theirs = best_time(lambda: x.astype(np.float16).astype(np.float32), repeats, warmup=True)
    bad = same_bits(ours, theirs)
    ok &= bad == 0
    rows.append(Row("fp16", "nearest_even", t_l, {"numpy float16 cast": t_n}, [f"{bad} differ"]))
    try:
        import ml_dtypes
    except ImportError:
        print("ml_dtypes is not installed: the bfloat16 comparison is skipped")
        return rows, ok
    t_l, ours = best_time(lampref_runner(x, bf16, "nearest_even"), repeats, warmup=True)
    t_n, theirs = best_time(lambda: x.astype(ml_dtypes.bfloat16).astype(np.float32), repeats, warmup=True)
    bad = same_bits(ours, theirs)
    ok &= bad == 0
    rows.append(Row("bf16", "nearest_even", t_l, {"ml_dtypes bfloat16 cast": t_n}, [f"{bad} differ"]))
    return rows, ok


def bench_pychop(x: np.ndarray, repeats: int, pychop_repeats: int, cap: int) -> list[Row] | None:
    if version("pychop") == "not installed":
        print("pychop is not installed: the pychop comparison is skipped")
        return None
    import pychop  # imported here only: it changes process state (logging, sys.path, os.environ)

    n = x.size
    x_cap = x[:cap]
    scale = n / x_cap.size
    rows = []
    for fmt in SHARED_FORMATS:
        kw = to_pychop(fmt)
        for mode in MODES:
            rmode = PYCHOP_RMODES[mode]
            t_l, ours = best_time(lampref_runner(x, fmt, mode), repeats, warmup=True)
            # pychop's NumPy backend without dask: one chunk covering the whole input
            # (pychop's own floating-point warnings on inf and NaN inputs are silenced)
            nodask = pychop.Chop(**kw, rmode=rmode, chunk_size=n, random_state=0)
            with environ(chop_backend="numpy"), np.errstate(all="ignore"):
                t_np, theirs = best_time(lambda c=nodask: c(x), pychop_repeats, warmup=True)
            # pychop as shipped: backend "auto", chunk_size=800 (dask for the deterministic modes)
            # (the stochastic modes bypass dask and are timed on the whole input)
            shipped = pychop.Chop(**kw, rmode=rmode, random_state=0)
            part, factor = (x, 1.0) if mode in STOCHASTIC_MODES else (x_cap, scale)
            with environ(chop_backend="auto"), np.errstate(all="ignore"):
                t_sh, theirs_sh = best_time(lambda c=shipped, part=part: c(part), pychop_repeats, warmup=True)
            notes = []
            if mode not in STOCHASTIC_MODES:
                notes.append(f"{same_bits(ours, theirs)} differ from lampref")
                if same_bits(theirs[:cap], theirs_sh):
                    notes.append("shipped != no-dask!")
            rows.append(
                Row(
                    fmt.name or repr(fmt),
                    mode,
                    t_l,
                    {"pychop numpy, no dask": t_np, "pychop as shipped": t_sh * factor},
                    notes,
                    scaled=factor != 1.0,
                )
            )
    return rows


# ------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10**7, help="number of float32 values (default 10**7)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats for lampref and native casts")
    parser.add_argument("--pychop-repeats", type=int, default=2, help="repeats for pychop")
    parser.add_argument(
        "--pychop-cap", type=int, default=10**6, help="most elements given to pychop as shipped (time scaled)"
    )
    parser.add_argument("--edge-share", type=float, default=0.01, help="share of edge values in the input")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-pychop", action="store_true", help="skip the pychop comparison")
    args = parser.parse_args(argv)

    x = make_input(args.n, args.edge_share, args.seed)
    cap = min(args.pychop_cap, args.n)
    print("lampref rounding benchmark")
    cores = f"{usable_cores()} usable cores ({os.cpu_count()} logical)"
    print(f"  machine : {cpu_model()}, {cores}, {platform.system()} {platform.machine()}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    if load:
        print(f"  load    : {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min averages at start)")
    print(
        f"  versions: python {platform.python_version()}, numpy {np.__version__}, "
        f"lampref {lampref.__version__}, ml_dtypes {version('ml_dtypes')}, pychop {version('pychop')}, "
        f"dask {version('dask')}"
    )
    print(
        f"  input   : {args.n:,} float32 values, standard normal with {args.edge_share:.1%} edge values; "
        f"best of {args.repeats} (pychop: best of {args.pychop_repeats})"
    )
    if args.n > cap:
        print(f"  pychop as shipped (deterministic modes, dask) is timed on the first {cap:,} values;")
        print(f"  these times are scaled x{args.n / cap:g} to the whole input and marked *")
    print()

    native, identical = bench_native(x, args.repeats)
    print("1. lampref vs native casts (round to nearest even), seconds for the whole input")
    print(f"  {'format':8s} {'native':26s} {'lampref':>8s} {'native':>8s} {'lampref/native':>15s}  check")
    for r in native:
        ((name, t_n),) = r.other_s.items()
        ratio = fmt_ratio(r.lampref_s / t_n)
        print(f"  {r.fmt:8s} {name:26s} {fmt_s(r.lampref_s)} {fmt_s(t_n)} {ratio:>15s}  {r.notes[0]}")
    print()

    pyrows = None if args.no_pychop else bench_pychop(x, args.repeats, args.pychop_repeats, cap)
    if pyrows:
        print("2. lampref vs pychop Chop, seconds for the whole input; ratios are pychop/lampref")
        head = (
            f"  {'format':9s} {'mode':17s} {'lampref':>8s} {'no dask':>8s} {'shipped':>10s} "
            f"{'nodask/l':>9s} {'shipped/l':>10s}  pychop vs lampref"
        )
        print(head)
        for r in pyrows:
            t_np = r.other_s["pychop numpy, no dask"]
            t_sh = r.other_s["pychop as shipped"]
            shipped = fmt_s(t_sh) + ("*" if r.scaled else " ")
            print(
                f"  {r.fmt:9s} {r.mode:17s} {fmt_s(r.lampref_s)} {fmt_s(t_np)} {shipped:>10s} "
                f"{fmt_ratio(t_np / r.lampref_s):>9s} {fmt_ratio(t_sh / r.lampref_s):>10s}  "
                + ("; ".join(r.notes) if r.notes else "(stochastic: not compared bitwise)")
            )
        print(
            "  'differ from lampref': elements where pychop's result differs (docs/pychop.md explains them)"
        )
        print("  lampref's custom format p=5, emax=7 is in the rows 'p5_emax7' (every mode).")
        print()

    print("Targets")
    for r in native:
        ((name, t_n),) = r.other_s.items()
        ratio = r.lampref_s / t_n
        verdict = "met" if ratio <= NATIVE_TARGET else "NOT met"
        print(f"  lampref {r.fmt} within {NATIVE_TARGET:g}x of the {name}: {verdict} ({ratio:.2f}x)")
    if pyrows:
        for variant in ("pychop numpy, no dask", "pychop as shipped"):
            ratios = [(r.other_s[variant] / r.lampref_s, r) for r in pyrows]
            worst, wr = min(ratios, key=lambda t: t[0])
            verdict = "met" if worst > 1 else "NOT met"
            print(
                f"  lampref faster than {variant} for every shared format and mode: {verdict} "
                f"(smallest speed-up {worst:.2f}x, {wr.fmt} {wr.mode})"
            )
    print(f"  native casts bit-identical to lampref: {'yes' if identical else 'NO'}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
