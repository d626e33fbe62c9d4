"""Hypothesis strategies for probability rows, masks and thresholds (tests of :mod:`lampref.analysis`).

Rows come in two kinds. *Dyadic* rows hold multiples of $2^{-k}$ ($k \\le 20$) that sum to exactly 1, so
every prefix sum, in float32 or float64 and in any order, is exact: rules that agree in exact arithmetic
must then agree bit for bit. *Softmax* rows are the softmax of drawn logits, computed in float64 (or
float32), with the realistic spread of magnitudes and a row sum within a few units of roundoff of 1.

Examples
--------
>>> import numpy as np
>>> from hypothesis import given
>>> from lampref.testing.analysis_strategies import probability_rows
>>> @given(probability_rows(dyadic=True, max_n=6))
... def test_rows_sum_to_one(row):
...     assert row.sum() == 1.0 and (row >= 0).all()
>>> test_rows_sum_to_one()
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

__all__ = ["dyadic_taus", "lamp_taus", "masked_probability_rows", "probability_rows"]


def _dyadic_row(draw: st.DrawFn, n: int, allow_zeros: bool) -> NDArray[np.float64]:
    k = draw(st.integers(max(1, math.ceil(math.log2(n)) + 1), 20))
    total = 1 << k
    lo = 0 if allow_zeros else 1
    weights = draw(st.lists(st.integers(lo, 1 << 12), min_size=n, max_size=n))
    if sum(weights) == 0:
        weights[0] = 1
    # scale the weights to sum to 2**k exactly: floor, then give the remainder to the largest
    raw = [w * total // sum(weights) for w in weights]
    if not allow_zeros:
        raw = [max(1, r) for r in raw]
    big = max(range(n), key=lambda i: raw[i])
    raw[big] += total - sum(raw)
    if raw[big] < lo:  # only when every other entry was raised to 1: rebalance from the others
        raw = [1] * n
        raw[0] += total - n
    return np.array(raw, dtype=np.float64) / total


def _edge_row(draw: st.DrawFn, n: int, allow_zeros: bool) -> NDArray[np.float64]:
    kind = draw(st.sampled_from(["equal", "onehot", "pair"] if allow_zeros and n > 1 else ["equal"]))
    if kind == "equal":
        return np.full(n, 1.0 / n)
    row = np.zeros(n)
    i = draw(st.integers(0, n - 1))
    if kind == "onehot":
        row[i] = 1.0
    else:
        j = (i + 1) % n
        row[i] = row[j] = 0.5
    return row


@st.composite
def probability_rows(
    draw: st.DrawFn,
    *,
    min_n: int = 1,
    max_n: int = 10,
    dyadic: bool | None = None,
    allow_zeros: bool = True,
    dtype: Any = np.float64,
    max_logit_range: float = 30.0,
) -> NDArray[Any]:
    r"""One probability row (a 1-d array that sums to 1 up to rounding).

    Parameters
    ----------
    min_n, max_n : int
        Range of the row length.
    dyadic : bool, optional
        True: multiples of $2^{-k}$ summing to exactly 1. False: softmax of drawn logits (with, now and then,
        an edge case: all equal, one-hot, two halves). None: either.
    allow_zeros : bool
        Whether entries may be exactly 0 (dyadic rows, one-hot rows).
    dtype : numpy dtype
        float64 or float32 (softmax rows are then computed in float32, so that they sum to 1 only to
        float32 accuracy, as real attention probabilities do).
    max_logit_range : float
        Largest spread of the logits of softmax rows.
    """
    n = draw(st.integers(min_n, max_n))
    exact = draw(st.booleans()) if dyadic is None else dyadic
    if exact:
        return _dyadic_row(draw, n, allow_zeros).astype(dtype)
    if draw(st.integers(0, 9)) == 0:
        return _edge_row(draw, n, allow_zeros).astype(dtype)
    spread = draw(st.floats(0.0, max_logit_range))
    unit = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)
    logits = np.array(draw(st.lists(unit, min_size=n, max_size=n))) * spread
    z = logits.astype(dtype)
    e = np.exp(z - z.max())
    row: NDArray[Any] = (e / e.sum()).astype(dtype)
    return row


@st.composite
def masked_probability_rows(
    draw: st.DrawFn,
    *,
    min_n: int = 1,
    max_n: int = 10,
    dyadic: bool | None = None,
    causal: bool | None = None,
    dtype: Any = np.float64,
) -> tuple[NDArray[Any], NDArray[np.bool_]]:
    """A row with some entries masked out: ``(probs, valid)``, probs exactly 0 where not valid.

    ``causal=True`` makes the valid entries a leading block (a row of a causal attention matrix);
    ``False`` scatters them; None draws either. At least one entry is valid.
    """
    n = draw(st.integers(max(min_n, 1), max_n))
    is_causal = draw(st.booleans()) if causal is None else causal
    if is_causal:
        t = draw(st.integers(1, n))
        valid = np.arange(n) < t
    else:
        valid = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        if not valid.any():
            valid[draw(st.integers(0, n - 1))] = True
    k = int(valid.sum())
    inner = draw(probability_rows(min_n=k, max_n=k, dyadic=dyadic, dtype=dtype))
    probs = np.zeros(n, dtype=dtype)
    probs[valid] = inner
    return probs, valid


def dyadic_taus() -> st.SearchStrategy[float]:
    """Thresholds in (0, 2] that are multiples of 2**-20 (so 2 - tau is exact in float32)."""
    return st.integers(1, 1 << 21).map(lambda k: k / float(1 << 20))


def lamp_taus(*, min_tau: float = 0.0) -> st.SearchStrategy[float]:
    """Thresholds in (max(0, min_tau), 2]: the authors' grid, values near 1 and 2, and arbitrary floats."""
    grid = [2.0, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4, 1.3, 1.2, 1.1, 1.08, 1.06, 1.04, 1.02, 1.0 + 2**-20, 1.0, 0.5]
    parts = st.one_of(
        st.sampled_from(grid),
        st.floats(min_value=1e-3, max_value=2.0),
        dyadic_taus(),
    )
    return parts.filter(lambda t: t > min_tau)
