"""The choice of accumulation backend: compiled kernels (numba) or the NumPy reference.

The NumPy implementation of :mod:`lampref.accumulate` is the specification; the compiled kernels of
:mod:`lampref._numba_kernels` reproduce it bit for bit for the accumulations they cover and are used when
numba is importable, unless the environment variable ``LAMPREF_BACKEND=numpy`` or
:func:`set_backend` says otherwise. :func:`compiled_matmul` decides, per call and from the accumulator
alone, whether a kernel covers the call; anything it does not cover runs on NumPy.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import ModeError, expected_one_of
from .formats import fp32_mantissa

__all__ = ["BACKENDS", "backend", "set_backend"]

BACKENDS: tuple[str, ...] = ("numba", "numpy")
ENV_VAR = "LAMPREF_BACKEND"

_chosen: list[str] = []  # the backend set by set_backend (empty: the environment or the default)
_kernels: list[ModuleType | None] = []  # the imported kernel module, or None when numba is not importable


def _load_kernels() -> ModuleType | None:
    """The compiled kernel module (imported once), or None when numba cannot be imported."""
    if not _kernels:
        try:
            from . import _numba_kernels
        except ImportError:  # numba absent, or not importable with this NumPy
            _kernels.append(None)
        else:
            _kernels.append(_numba_kernels)
    return _kernels[0]


def _unavailable(source: str) -> ModeError:
    return ModeError(
        f"{source} asks for the 'numba' backend, but numba cannot be imported; install it with "
        "pip install 'lampref[fast]', or choose 'numpy'"
    )


def backend() -> str:
    """The active accumulation backend: ``"numba"`` or ``"numpy"``.

    :func:`set_backend` decides when it was called; otherwise the environment variable
    ``LAMPREF_BACKEND`` (``numba`` or ``numpy``); otherwise ``"numba"`` when numba can be imported.

    Raises
    ------
    ModeError
        ``LAMPREF_BACKEND`` holds another value, or asks for numba where numba cannot be imported.

    Examples
    --------
    >>> import lampref
    >>> lampref.backend() in ("numba", "numpy")
    True
    """
    if _chosen:
        return _chosen[-1]
    env = os.environ.get(ENV_VAR, "").strip().lower()
    if env:
        if env not in BACKENDS:
            raise ModeError(expected_one_of(ENV_VAR, env, BACKENDS))
        if env == "numba" and _load_kernels() is None:
            raise _unavailable(f"{ENV_VAR}=numba")
        return env
    return "numba" if _load_kernels() is not None else "numpy"


def set_backend(name: str | None) -> str | None:
    """Choose the accumulation backend for this process; return the previous choice (None: the default),
    so that ``set_backend(previous)`` restores it.

    Parameters
    ----------
    name : {"numba", "numpy"} or None
        ``"numba"``: compiled kernels where they cover the accumulation (NumPy elsewhere); ``"numpy"``: the
        NumPy reference everywhere; None: back to the default (``LAMPREF_BACKEND``, else numba when
        importable). Both give the same bits.

    Raises
    ------
    ModeError
        An unknown name, or ``"numba"`` where numba cannot be imported (the message names the extra).

    Examples
    --------
    >>> import lampref
    >>> previous = lampref.set_backend("numpy")
    >>> lampref.backend()
    'numpy'
    >>> _ = lampref.set_backend(previous)
    """
    if name is not None:
        if not isinstance(name, str) or name not in BACKENDS:
            raise ModeError(expected_one_of("backend", name, BACKENDS))
        if name == "numba" and _load_kernels() is None:
            raise _unavailable("set_backend('numba')")
    previous = _chosen[-1] if _chosen else None
    _chosen.clear()
    if name is not None:
        _chosen.append(name)
    return previous


Kernel = Callable[[NDArray[Any], NDArray[Any], NDArray[Any]], "NDArray[np.bool_] | None"]


def compiled_matmul(acc: Any, stochastic: bool) -> Kernel | None:
    """The compiled kernel for ``acc`` (an :class:`~lampref.Accumulator`), or None where the NumPy path runs.

    Covered, with products exact and deterministic modes: ``staging="exact"`` with ``order="sequential"``
    or ``"reverse"``, any ``block``; ``staging="fp32"`` (the authors' kernel), fused or not, any ``block``.
    The accumulator's format (and the block format) must be IEEE-encoded, non-saturating and fit in
    float32. The kernel takes ``A [G, M, K]``, ``B [G, K, N]`` (float32 values, K >= 1), fills the float32
    ``out [G, M, N]`` and returns None, or a boolean mask of the elements it left to the NumPy path (a
    block sum that needs rational arithmetic).
    """
    if stochastic or acc.products != "exact" or backend() != "numba":
        return None
    nk = _load_kernels()
    if nk is None or acc.mode not in nk.MODE_CODES:
        return None
    rc = nk.rounding_constants(acc.fmt)
    if rc is None:
        return None
    mode = nk.MODE_CODES[acc.mode]
    if acc.staging == "fp32":
        if acc.fmt == fp32_mantissa(0) and acc.mode == "nearest_even":
            mode = nk.AUTHORS_M0  # fp32_mantissa(0): the authors' tie rule
        elif acc.mode == "nearest_even" and _only_precision_differs(acc.fmt):
            mode = nk.NEAREST_EVEN_F32
    elif acc.order not in ("sequential", "reverse"):
        return None
    reverse = acc.order == "reverse"
    if acc.block > 1:
        return _blocked(nk, acc, rc, mode, reverse)
    if acc.staging == "fp32":
        fma = bool(acc.fma)
        return lambda A, B, out: nk.authors(_c(A, np.float32), _c(B, np.float32), out, rc, mode, fma)
    fc = nk.fast_constants(acc.fmt, acc.mode)
    return lambda A, B, out: nk.strict_exact(_c(A, np.float64), _c(B, np.float64), out, fc, rc, mode, reverse)


def _blocked(nk: ModuleType, acc: Any, rc: Any, mode: int, reverse: bool) -> Kernel | None:
    """The compiled blocked kernel for ``acc``, or None where the block format or mode is not covered."""
    rcb = nk.rounding_constants(acc.block_fmt)
    if rcb is None or acc.block_mode not in nk.MODE_CODES:
        return None
    bmode, block, fp32 = nk.MODE_CODES[acc.block_mode], acc.block, acc.staging == "fp32"
    fc = nk.fast_constants(acc.fmt, acc.mode if not fp32 else "nearest_even")  # unused with fp32 staging
    consts = (fc, rc, nk.fast_constants(acc.block_fmt, acc.block_mode), rcb)

    def kernel(A: NDArray[Any], B: NDArray[Any], out: NDArray[Any]) -> NDArray[np.bool_] | None:
        A64, B64 = _c(A, np.float64), _c(B, np.float64)
        K = B64.shape[1]
        starts = np.arange(0, K, block)
        absB = np.abs(B64)
        sB = np.add.reduceat(absB, starts, axis=1)  # [G, blocks, N]
        mB = np.maximum.reduceat(absB, starts, axis=1)  # [G, blocks, N]
        redo = np.zeros(out.shape, dtype=np.uint8)
        nk.blocked(A64, B64, out, redo, sB, mB, block, consts, mode, bmode, reverse, fp32)
        flagged = redo.view(np.bool_)
        return flagged if flagged.any() else None

    return kernel


def _only_precision_differs(fmt: Any) -> bool:
    """Whether ``fmt`` has float32's exponent range and subnormals and 2 <= p <= 23."""
    return bool(2 <= fmt.p <= 23 and fmt.emax == 127 and fmt.emin == -126 and fmt.subnormals)


def _c(x: NDArray[Any], dtype: Any) -> NDArray[Any]:
    return np.ascontiguousarray(x, dtype=dtype)


def f32_scores_where(
    q: NDArray[Any], k: NDArray[Any], sel: NDArray[np.bool_], low: NDArray[Any]
) -> NDArray[np.float32] | None:
    """LAMP's recomputation in float32, compiled: the scores ``low [H, n, N]`` with the entries where
    ``sel`` replaced by ``q[h, i] . k[h, j] / sqrt(d)`` as :func:`lampref.nn.attention_scores` computes
    them one entry at a time under ``blas=lampref.lamp._f32_dots`` (float32 products, NumPy's float32
    pairwise sum, a float32 division), so the same bits. ``q [H, n, d]``, ``k [H, N, d]`` float32. None
    where the NumPy path runs (the numpy backend, or ``d > 128``).
    """
    d = q.shape[-1]
    if backend() != "numba" or not 1 <= d <= 128 or q.ndim != 3 or k.ndim != 3:
        return None
    nk = _load_kernels()
    assert nk is not None
    out = np.empty(low.shape, dtype=np.float32)
    q32, k32 = _c(q, np.float32), _c(k, np.float32)
    nk.f32_scores_where(q32, k32, _c(sel, np.bool_), _c(low, np.float32), np.sqrt(np.float32(d)), out)
    return out
