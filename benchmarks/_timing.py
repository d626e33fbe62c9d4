"""Wall-clock timing shared by the benchmarks (run as scripts: ``python benchmarks/bench_*.py``)."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from typing import Any


def best_time(
    fn: Callable[[], Any], runs: int, *, min_total: float = 0.0, warmup: bool = False
) -> tuple[float, Any]:
    """The best wall time of ``runs`` calls of ``fn``, and of more until ``min_total`` seconds are spent
    (fast calls on a busy machine need many tries to show their real cost), with the last call's result.

    The garbage collector runs before each timed call, outside the timing; ``warmup`` makes one untimed
    call first.
    """
    out = fn() if warmup else None
    best, spent, n = math.inf, 0.0, 0
    while n < runs or spent < min_total:
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best, spent, n = min(best, dt), spent + dt, n + 1
    return best, out
