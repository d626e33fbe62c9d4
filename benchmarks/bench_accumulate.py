"""Benchmark of lampref.matmul against float32 BLAS and against the naive rounding loop.

Run ``python benchmarks/bench_accumulate.py`` (``--quick`` for a smaller attention shape).

Shapes: a square 256 x 256 @ 256 x 256 product, and GPT-2's attention scores, a batch of 12 heads of
(1024, 64) @ (64, 1024) (``--quick``: 4 heads and 256 positions). Configurations:

* strict exact: ``Accumulator(fp32_mantissa(10))``, every partial sum correctly rounded (nearest-even);
* strict authors: ``Accumulator.authors(10)``, a fused float32 multiply-add then the mantissa rounding;
* strict authors nf: ``Accumulator.authors(10, fma=False)``, the same with the product rounded to float32;
* blocked b=32, exact: ``Accumulator(fp32_mantissa(10), block=32)``;
* blocked b=32, authors: ``Accumulator.authors(10, block=32)``.

Every configuration's output is first checked, on a small corner of the timed result, against an
independent oracle: ``lampref.testing.reference_matmul`` (Fractions and MPFR) for exact staging, a float32
loop with the authors' bit-pattern rounding written here for float32 staging. Each time is the best of a few
runs (one run for the slow configurations on the attention shape). The ratios are to ``numpy.matmul`` in
float32 on the same operands and to the loop a user would write,
``acc = round_to(acc + np.outer(a[:, k], b[k]), fmt)`` in float64, which rounds each step twice (to float64,
then to the format); the number of elements where that loop differs from lampref's strict exact result is
printed too. Each configuration runs on each backend (NumPy, and the compiled numba kernels when numba is
installed, which fall back to NumPy where they do not cover the configuration); the compilation on the
first call, cached on disk, is kept out of the times.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
from fractions import Fraction

import numpy as np
from _timing import best_time

import lampref
from lampref import Accumulator, fp32_mantissa, matmul, round_to
from lampref.testing import mpfr_round_fraction, reference_matmul

M_BITS = 10
# allowed ratio to float32 BLAS, per kind of configuration, backend and staging
TARGETS = {
    ("strict", "numpy"): {"exact": 100.0},
    ("blocked", "numpy"): {"exact": 5.0, "fp32": 5.0},
    ("strict", "numba"): {"exact": 50.0, "fp32": 15.0},
    ("blocked", "numba"): {"exact": 10.0, "fp32": 10.0},
}


# ------------------------------------------------------------------------------------- machine info
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def blas_info() -> str:
    try:
        cfg = np.show_config(mode="dicts")  # type: ignore[call-arg]
        blas = cfg["Build Dependencies"]["blas"]
        extra = blas.get("openblas configuration", "")
        return f"{blas.get('name', '?')} {blas.get('version', '')} {extra}".strip()
    except Exception:  # older NumPy: no dict mode
        return "unknown (numpy.show_config has no dict mode)"


def available_backends() -> list[str]:
    previous = lampref.set_backend(None)
    try:
        lampref.set_backend("numba")
        return ["numpy", "numba"]
    except lampref.ModeError:
        return ["numpy"]
    finally:
        lampref.set_backend(previous)


# --------------------------------------------------------------------------------- independent oracles
def authors_round(x: np.ndarray, m: int) -> np.ndarray:
    """Nearest-even keeping m of fp32's 23 mantissa bits, on the uint32 pattern (inf and NaN kept)."""
    x = np.asarray(x, dtype=np.float32)
    if m >= 23:
        return x.copy()
    k = 23 - m
    bits = x.view(np.uint32)
    sign = bits & np.uint32(0x80000000)
    mag = bits & np.uint32(0x7FFFFFFF)
    special = (mag & np.uint32(0x7F800000)) == np.uint32(0x7F800000)
    lsb = (mag >> np.uint32(k)) & np.uint32(1)
    rounded = (mag + np.uint32((1 << (k - 1)) - 1) + lsb) & np.uint32(~((1 << k) - 1) & 0xFFFFFFFF)
    return (np.where(special, mag, rounded) | sign).view(np.float32)


def authors_loop(a: np.ndarray, b: np.ndarray, m: int, block: int, fma: bool) -> np.ndarray:
    """The authors' kernel on finite float32 operands: float32 steps, then the mantissa rounding. A fused
    step rounds the exact ``acc + a*b`` to float32 once (Fractions and MPFR); an unfused one is NumPy's
    float32 ``acc + a*b``."""
    M, K = a.shape
    N = b.shape[1]
    acc = np.zeros((M, N), np.float32)
    if block == 1:
        for k in range(K):
            if fma:
                exact = [
                    [
                        Fraction(float(acc[i, j])) + Fraction(float(a[i, k])) * Fraction(float(b[k, j]))
                        for j in range(N)
                    ]
                    for i in range(M)
                ]
                step = np.array(
                    [[mpfr_round_fraction(v, lampref.fp32) for v in row] for row in exact], np.float32
                )
            else:
                step = acc + a[:, k, None] * b[None, k, :]
            acc = authors_round(step, m)
        return acc
    for k0 in range(0, K, block):
        blk = np.zeros((M, N), np.float32)
        for i in range(M):
            for j in range(N):
                s = sum(
                    (
                        Fraction(float(a[i, k])) * Fraction(float(b[k, j]))
                        for k in range(k0, min(k0 + block, K))
                    ),
                    Fraction(0),
                )
                blk[i, j] = mpfr_round_fraction(s, lampref.fp32)
        acc = authors_round(acc + blk, m)
    return acc


def verify(name: str, acc: Accumulator, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """Check the top-left corner of a timed result (batch element 0) against an independent oracle."""
    a2 = a.reshape(-1, *a.shape[-2:])[0][:3]
    b2 = b.reshape(-1, *b.shape[-2:])[0][:, :3]
    got = out.reshape(-1, *out.shape[-2:])[0][:3, :3].astype(np.float64)
    if acc.staging == "exact":
        want = reference_matmul(a2, b2, acc)
    else:
        want = authors_loop(a2, b2, M_BITS, acc.block, acc.fma).astype(np.float64)
    if not np.array_equal(got, want):
        sys.exit(f"WRONG RESULT for {name} ({acc!r}): corner\n{got}\nexpected\n{want}")


# ------------------------------------------------------------------------------------------- timing
def naive_loop(a: np.ndarray, b: np.ndarray, fmt: lampref.FloatFormat) -> np.ndarray:
    """What a user would write: round the whole accumulator after each k (float64 sums: double rounding)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    acc = np.zeros((*np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), a.shape[-2], b.shape[-1]))
    for k in range(a.shape[-1]):
        acc = round_to(acc + a64[..., :, k, None] * b64[..., None, k, :], fmt).astype(np.float64)
    return acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="attention shape with 4 heads and 256 positions")
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per timing (best of); one on the full attention shape"
    )
    args = parser.parse_args()

    heads, T = (4, 256) if args.quick else (12, 1024)
    rng = np.random.default_rng(0)
    shapes = {
        "256x256 @ 256x256": (
            rng.standard_normal((256, 256)).astype(np.float32),
            rng.standard_normal((256, 256)).astype(np.float32),
        ),
        f"attention {heads}x{T}x64 @ {heads}x64x{T}": (
            rng.standard_normal((heads, T, 64)).astype(np.float32),
            (rng.standard_normal((heads, 64, T)) / 8).astype(np.float32),
        ),
    }
    fmt = fp32_mantissa(M_BITS)
    configs = {
        "strict exact": ("strict", Accumulator(fmt)),
        "strict authors": ("strict", Accumulator.authors(M_BITS)),
        "strict authors nf": ("strict", Accumulator.authors(M_BITS, fma=False)),
        "blocked32 exact": ("blocked", Accumulator(fmt, block=32)),
        "blocked32 authors": ("blocked", Accumulator.authors(M_BITS, block=32)),
    }

    print(
        f"machine : {cpu_model()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}"
    )
    print(f"numpy   : {np.__version__}; BLAS: {blas_info()}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    busy = (
        "  (busy machine: timings, multithreaded BLAS first, are inflated)"
        if load > 0.5 * (os.cpu_count() or 1)
        else ""
    )
    print(f"load    : {load:.2f} (1-minute average before the run){busy}")
    print(f"lampref : {lampref.__version__}; format {fmt!r}")
    backends = ["numpy", "numba"] if "numba" in available_backends() else ["numpy"]
    threads = f", {lampref._backend._load_kernels().threads()} threads" if len(backends) == 2 else ""  # type: ignore[union-attr]
    print(f"backends: {', '.join(backends)}{threads} (numba absent: pip install 'lampref[fast]')")
    print(f"targets : ratio to float32 BLAS per configuration, backend and staging: {TARGETS}")
    print()

    def line(
        shape: str, name: str, backend: str, t: float, vs_blas: float, vs_naive: float, mark: str = ""
    ) -> str:
        return (
            f"{shape:<34} {name:<18} {backend:<7} {t:>10.5f} {vs_blas:>11.1f}x {vs_naive:>12.3f}x  {mark}"
        ).rstrip()

    cols = ("shape", "configuration", "backend", "time [s]", "/ BLAS fp32", "/ naive loop")
    header = f"{cols[0]:<34} {cols[1]:<18} {cols[2]:<7} {cols[3]:>10} {cols[4]:>12} {cols[5]:>13}  target"
    print(header)
    print("-" * len(header))
    for shape_name, (a, b) in shapes.items():
        slow_runs = 1 if a.size * b.shape[-1] > 1e8 else args.runs
        blas = lambda a=a, b=b: np.matmul(a, b)  # noqa: E731
        t_blas, _ = best_time(blas, 20, min_total=0.5)
        t_naive, naive = best_time(lambda a=a, b=b: naive_loop(a, b, fmt), slow_runs)
        strict_exact = None
        times: dict[tuple[str, str], float] = {}
        for backend in backends:
            lampref.set_backend(backend)
            for name, (_, acc) in configs.items():
                matmul(a[..., :2, :], b, acc)  # a first small call: compilation (cached on disk) is not timed
                t, out = best_time(lambda a=a, b=b, acc=acc: matmul(a, b, acc), slow_runs)
                times[name, backend] = t
                assert isinstance(out, np.ndarray)
                verify(f"{name} [{backend}]", acc, a, b, out)
                if name == "strict exact":
                    strict_exact = out
        lampref.set_backend(None)
        # BLAS again: on a shared machine a multithreaded BLAS call can wait for a core; keep the best
        t_blas = min(t_blas, best_time(blas, 20, min_total=0.5)[0])
        rows = [
            line(shape_name, "numpy fp32 BLAS", "", t_blas, 1.0, t_blas / t_naive),
            line(shape_name, "naive round_to", "", t_naive, t_naive / t_blas, 1.0),
        ]
        for name, (kind, acc) in configs.items():
            for backend in backends:
                t = times[name, backend]
                ratio = t / t_blas
                target = TARGETS[kind, backend].get(acc.staging)
                mark = (
                    "" if target is None else f"{'met' if ratio <= target else 'MISSED'} (<= {target:.0f}x)"
                )
                rows.append(line(shape_name, name, backend, t, ratio, t / t_naive, mark))
        print("\n".join(rows))
        assert strict_exact is not None
        diff = int(np.count_nonzero(naive.astype(np.float32) != strict_exact))
        print(
            f"{'':<34} naive loop differs from strict exact in {diff} of {strict_exact.size} elements "
            "(double rounding through float64)"
        )
        print()


if __name__ == "__main__":
    main()
