"""Helpers the course notebooks share (``notebooks/``, rendered in the documentation's Course section).

Each notebook states a claim in prose, computes it, and checks it with :func:`check`, which prints a short
"checked:" line instead of interrupting the reading; :func:`fl` is the textbook's $\\mathrm{fl}(x)$: one
operation's exact result rounded once to a format.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .rounding import round_to

__all__ = ["check", "fl"]


def check(condition: Any, claim: str) -> None:
    """Print ``checked: <claim>`` when ``condition`` holds; raise :class:`AssertionError` naming the claim
    otherwise.

    >>> from lampref.course import check
    >>> check(0.1 + 0.2 != 0.3, "0.1 + 0.2 is not 0.3 in float64")
    checked: 0.1 + 0.2 is not 0.3 in float64
    """
    if not condition:
        raise AssertionError(claim)
    print(f"checked: {claim}")


def fl(v: ArrayLike, fmt: Any, mode: str = "nearest_even", rng: Any = None) -> NDArray[np.float64]:
    """The exact result ``v`` of one operation (float64 values) rounded once to ``fmt`` with ``mode``
    (:func:`lampref.round_to`), returned as float64.

    >>> from lampref.course import fl
    >>> float(fl(1.0 + 2.0**-11, "fp16"))  # a tie: to even
    1.0
    """
    return np.asarray(round_to(v, fmt, mode, rng=rng), dtype=np.float64)
