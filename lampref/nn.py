r"""Transformer operations written once, for every model in lampref.

The models (:mod:`lampref.gpt2` today) and the metrics call these kernels; each takes arrays of a stated
dtype and returns the same dtype, with no validation of its own (the public entry points validate).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["log_softmax"]


def log_softmax(z: NDArray[np.float64]) -> NDArray[np.float64]:
    r"""The logarithm of the softmax over the last axis of float64 values, by the log-sum-exp trick.

    With $m = \max_j z_j$, $\log p_i = (z_i - m) - \log \sum_j e^{z_j - m}$: every exponent is at most 0 and
    the largest is exactly 1, so nothing overflows and the sum is at least 1 (Blanchard, Higham & Higham
    2021). Each row needs one finite value; ``-inf`` entries give ``-inf``.

    >>> import numpy as np
    >>> from lampref.nn import log_softmax
    >>> np.exp(log_softmax(np.log([1.0, 3.0]))).round(6).tolist()
    [0.25, 0.75]
    """
    m = z.max(axis=-1, keepdims=True)  # [..., 1], finite (each row has a finite entry)
    with np.errstate(over="ignore"):  # a gap beyond float64's range is -inf: a probability below 2**-1074
        s = z - m  # [..., V], <= 0, -inf stays -inf
        lse = np.log(np.exp(s).sum(axis=-1, keepdims=True))  # [..., 1], in [0, log V]
        return np.asarray(s - lse, dtype=np.float64)
