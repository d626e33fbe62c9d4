"""Hypothesis strategies for MX block formats (tests of :mod:`lampref.mx`).

Random floats rarely land where MX quantisation is delicate: on a tie between two element values at the
block's scale, just above the element type's largest value (saturation), among its subnormals, at the ends
of E8M0's range, or beside a NaN. :func:`mx_arrays` builds blocks around a drawn shared exponent $s$: each
block holds an *anchor* in the top binade $[2^{s + e_{\\max}}, 2^{s + e_{\\max} + 1})$, so that its scale
is $2^s$ (unless clamped), and its other values are drawn from element values times $2^s$, their midpoints,
their float neighbours, values past the element's largest magnitude, zeros, tiny values and (optionally)
NaN and infinities.

Examples
--------
>>> import numpy as np
>>> from hypothesis import given
>>> from lampref import mx
>>> from lampref.testing.mx_strategies import mx_arrays, mx_specs
>>> @given(mx_specs(max_block=8).flatmap(lambda s: mx_arrays(s, allow_nan=False).map(lambda x: (s, x))))
... def test_scales_are_finite(case):
...     spec, x = case
...     _, scales = spec.quantize(x)
...     assert scales.dtype == np.uint8
>>> test_scales_are_finite()
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

from ..mx import ELEMENTS, MXSpec

__all__ = ["MX_KINDS", "mx_arrays", "mx_specs"]

#: The kinds of value :func:`mx_arrays` draws for the non-anchor entries of a block.
MX_KINDS: tuple[str, ...] = ("grid", "tie", "neighbour", "over", "zero", "tiny", "random", "special")


@st.composite
def mx_specs(
    draw: st.DrawFn, *, elements: Sequence[str] = ELEMENTS, min_block: int = 1, max_block: int = 64
) -> MXSpec:
    """:class:`~lampref.mx.MXSpec` values: an element type and a block size (32 drawn often)."""
    element = draw(st.sampled_from(list(elements)))
    blocks = st.integers(min_block, max_block)
    if min_block <= 32 <= max_block:
        blocks = st.just(32) | blocks
    return MXSpec(element, draw(blocks))


def _grid(spec: MXSpec) -> NDArray[np.float64]:
    """The non-negative element values, ascending."""
    fmt = spec.element_format
    if fmt is None:
        return np.arange(128, dtype=np.float64) / 64.0
    values = fmt.values().astype(np.float64)
    return values[values >= 0]


def _value(draw: st.DrawFn, spec: MXSpec, kind: str, s: int, allow_nan: bool) -> float:
    grid = _grid(spec)
    sign = draw(st.sampled_from([1.0, -1.0]))
    scale = 2.0**s
    if kind == "grid":
        return sign * float(draw(st.sampled_from(grid.tolist()))) * scale
    if kind == "tie":
        i = draw(st.integers(0, len(grid) - 2))
        return sign * float(grid[i] + grid[i + 1]) / 2 * scale
    if kind == "neighbour":
        v = float(draw(st.sampled_from(grid.tolist()))) * scale
        return sign * math.nextafter(v, draw(st.sampled_from([math.inf, 0.0])))
    if kind == "over":
        top = 2.0 ** (spec.emax + 1)
        return sign * draw(st.floats(spec.element_max, top, exclude_max=True)) * scale
    if kind == "zero":
        return sign * 0.0
    if kind == "tiny":
        return sign * draw(st.sampled_from([5e-324, 2.0**-149, 2.0**-126, 1e-40, 2.0**-130 * 3]))
    if kind == "special" and allow_nan:
        return draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    return sign * draw(st.floats(0.0, 2.0 ** (spec.emax + 1), exclude_max=True)) * scale


def _anchor(draw: st.DrawFn, spec: MXSpec, s: int) -> float:
    """A value whose binade is the top one of the scale 2**s."""
    lo = 2.0 ** (spec.emax + s)
    choice = draw(st.sampled_from(["max", "low", "high", "any"]))
    if choice == "max":
        v = spec.element_max * 2.0**s
    elif choice == "low":
        v = lo
    elif choice == "high":
        v = math.nextafter(2 * lo, 0.0)
    else:
        v = draw(st.floats(lo, 2 * lo, exclude_max=True))
    return draw(st.sampled_from([1.0, -1.0])) * v


@st.composite
def mx_arrays(
    draw: st.DrawFn,
    spec: MXSpec,
    *,
    dtype: Any = None,
    max_blocks: int = 3,
    allow_nan: bool = True,
    min_exponent: int = -160,
    max_exponent: int = 130,
) -> NDArray[np.floating[Any]]:
    """1-D arrays of ``spec.block * k`` values or fewer (a short last block), blocks built around a drawn
    shared exponent each (see the module notes).

    Parameters
    ----------
    spec : MXSpec
        The format the array is meant for (its element type and block size).
    dtype : numpy dtype, optional
        float32 or float64; drawn when None. float32 arrays keep their exponents inside float32's range
        (values that do not fit are rounded by the cast, or flushed).
    max_blocks : int
        Largest number of blocks.
    allow_nan : bool
        Whether NaN and infinities may appear (then a block's scale is NaN).
    min_exponent, max_exponent : int
        Range of the shared exponents $s$ drawn (E8M0 holds $-127 \\le s \\le 127$; outside it the
        scale is clamped, or NaN for float64 inputs beyond $2^{128 + e_{\\max}}$).
    """
    if dtype is None:
        dtype = draw(st.sampled_from([np.float32, np.float64]))
    dtype = np.dtype(dtype)
    hi = max_exponent if dtype == np.float64 else min(max_exponent, 126 - spec.emax)
    n_blocks = draw(st.integers(1, max_blocks))
    values: list[float] = []
    for b in range(n_blocks):
        s = draw(st.integers(min_exponent, hi) | st.sampled_from([-127, -128, 0, min(127, hi)]))
        size = spec.block if b < n_blocks - 1 else draw(st.integers(1, spec.block))
        kinds = draw(st.lists(st.sampled_from(MX_KINDS), min_size=size - 1, max_size=size - 1))
        block = [_anchor(draw, spec, s)] + [_value(draw, spec, k, s, allow_nan) for k in kinds]
        if draw(st.integers(0, 7)) == 0:
            block = [draw(st.sampled_from([0.0, -0.0]))] * size
        values += draw(st.permutations(block))
    with np.errstate(over="ignore", under="ignore"):
        return np.asarray(values, dtype=np.float64).astype(dtype)
