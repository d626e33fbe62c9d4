r"""Hypothesis strategies for the look-ahead selections beyond softmax (tests of :mod:`lampref.lamp_sites`).

* :func:`preactivations`: float32 inputs of an element-wise function as a low-precision linear layer
  computes them, mixed with the edge cases of GELU (0, its minimum near $-0.75$, the far negative tail where
  GELU underflows, large positive values, subnormals);
* :func:`element_taus`: thresholds of an element-wise selection, $0 \le \tau \le \infty$, with both
  boundaries;
* :func:`layernorm_rows`: short non-constant rows of LayerNorm inputs with their absolute error bounds.

Examples
--------
>>> import numpy as np
>>> from hypothesis import given
>>> from lampref.testing.site_strategies import preactivations
>>> @given(preactivations(max_n=5))
... def test_float32(z):
...     assert z.dtype == np.float32 and np.isfinite(z).all()
>>> test_float32()
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

__all__ = ["element_taus", "layernorm_rows", "preactivations"]

_EDGES: tuple[float, ...] = (
    0.0,
    -0.0,
    -0.7517916,  # near the minimum of GELU, where its condition number vanishes
    -1.0,
    -2.0,
    -4.0,
    -9.5,  # the float32 tanh form underflows below about -9
    -30.0,
    1.0,
    30.0,
    1e-30,
    -1e-30,
    float.fromhex("0x1p-149"),  # the smallest float32 subnormal
)


@st.composite
def preactivations(draw: st.DrawFn, *, max_n: int = 16) -> NDArray[np.float32]:
    """A float32 vector of 1 to ``max_n`` finite values: draws from [-12, 12] and the edge cases above."""
    n = draw(st.integers(1, max_n))
    values = st.one_of(
        st.sampled_from(_EDGES),
        st.floats(-12.0, 12.0, width=32),
    )
    return np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=np.float32)


def element_taus() -> st.SearchStrategy[float]:
    """Thresholds of an element-wise selection: 0, infinity, and values in [0, 64]."""
    return st.one_of(st.sampled_from((0.0, math.inf, 1.0, 2.0)), st.floats(0.0, 64.0))


@st.composite
def layernorm_rows(draw: st.DrawFn, *, max_n: int = 7) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A LayerNorm input row of 2 to ``max_n`` values in [-8, 8] (not all equal), and absolute error bounds
    in [1e-9, 1e-6] for its entries."""
    n = draw(st.integers(2, max_n))
    row: list[Any] = draw(st.lists(st.floats(-8.0, 8.0), min_size=n, max_size=n))
    if max(row) - min(row) < 1e-3:
        row[0] = row[0] + 1.0
    eps = draw(st.lists(st.floats(1e-9, 1e-6), min_size=n, max_size=n))
    return np.array(row, dtype=np.float64), np.array(eps, dtype=np.float64)
