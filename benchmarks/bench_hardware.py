"""Benchmark of lampref.hardware.gemm (a tensor-core model) against float32 BLAS.

Run ``python benchmarks/bench_hardware.py`` (``--repeat N`` for the number of timed runs, best kept).

A 256 x 256 @ 256 x 256 product of fp16 values with a float32 addend under the H100 preset (fp16 inputs,
float32 output: 16 products per fused group, 16 groups per output), and for comparison the V100 and A100
presets (4 and 8 products per group). The result is first checked against float64 BLAS: the model's error is
that of a truncating float32 accumulation, well below 1e-4 here. Each time is the best of N runs, printed
beside ``numpy.matmul`` in float32 on the same operands, with the ratio.
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import best_time

from lampref import hardware, round_to

SIZE = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (the best is kept)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    a = np.asarray(round_to(rng.standard_normal((SIZE, SIZE)), "fp16"), dtype=np.float32)  # [M, K]
    b = np.asarray(round_to(rng.standard_normal((SIZE, SIZE)), "fp16"), dtype=np.float32)  # [K, N]
    c = rng.standard_normal((SIZE, SIZE)).astype(np.float32)  # [M, N]
    blas = best_time(lambda: np.matmul(a, b) + c, args.repeat)[0]
    print(f"{SIZE}x{SIZE} @ {SIZE}x{SIZE}, fp16 inputs, float32 output; best of {args.repeat}")
    print(f"{'case':<22}{'time (ms)':>12}{'float32 BLAS (ms)':>20}{'ratio':>10}")
    for gpu in ("H100", "A100", "V100"):
        d = hardware.gemm(a, b, c, gpu=gpu)
        err = np.abs(d - (a.astype(np.float64) @ b + c)).max()
        assert err < 1e-3, f"{gpu}: max error {err} against float64 BLAS"
        t = best_time(lambda g=gpu: hardware.gemm(a, b, c, gpu=g), args.repeat)[0]  # type: ignore[misc]
        print(f"{gpu + ' fp16 -> fp32':<22}{t * 1e3:>12.1f}{blas * 1e3:>20.3f}{t / blas:>10.0f}")


if __name__ == "__main__":
    main()
