"""Argument checks shared by the modules of :mod:`lampref.analysis` (private)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import as_array, is_int
from ..errors import AnalysisError, InputTypeError, LamprefError

__all__: list[str] = []


def real_array(x: ArrayLike, name: str, *, dtype: Any = np.float64) -> NDArray[Any]:
    """``x`` as a real float array of ``dtype`` (float64 by default); complex, object, string -> error."""
    arr = as_array(x, name)
    if arr.dtype.kind not in "fiub":
        raise InputTypeError(f"{name} has dtype {arr.dtype}; expected real numbers (float, integer or bool)")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        raise InputTypeError(f"{name} has dtype {arr.dtype}; expected float16, float32 or float64")
    return arr.astype(dtype, copy=False)


def finite_array(x: ArrayLike, name: str) -> NDArray[np.float64]:
    """A float64 array with no NaN and no infinity."""
    arr = real_array(x, name)
    if not np.all(np.isfinite(arr)):
        raise AnalysisError(f"{name} holds NaN or infinite values; expected finite numbers")
    return arr


def finite_vectors(x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``x`` and ``y`` as finite float64 arrays of vectors along their last axes, of equal lengths (the
    operands of inner products; leading axes are left to broadcast)."""
    xa = real_array(x, "x")
    ya = real_array(y, "y")
    if xa.ndim == 0 or ya.ndim == 0:
        raise AnalysisError("x and y must be vectors (at least one axis); got a scalar")
    if xa.shape[-1] != ya.shape[-1]:
        raise AnalysisError(
            f"x and y have last axes of lengths {xa.shape[-1]} and {ya.shape[-1]}; expected equal lengths"
        )
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise AnalysisError("x and y must be finite (no NaN or infinity)")
    return xa, ya


def bool_mask(mask: ArrayLike, name: str, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """A boolean array broadcast to ``shape`` (it must broadcast without changing ``shape``)."""
    arr = as_array(mask, name)
    if arr.dtype != np.bool_:
        raise AnalysisError(f"{name} has dtype {arr.dtype}; expected a boolean array (True/False)")
    try:
        out_shape = np.broadcast_shapes(arr.shape, shape)
    except ValueError:
        out_shape = None
    if out_shape != shape:
        raise AnalysisError(
            f"{name} has shape {arr.shape}, which does not broadcast to the shape {shape} of the data; "
            "expected the same shape (or one that broadcasts to it, such as a (T, T) causal mask)"
        )
    return np.broadcast_to(arr, shape)


def real_scalar(value: object, name: str, *, error: type[LamprefError] = AnalysisError) -> float:
    """A real number (Python or NumPy scalar, or a 0-d array) as a Python float, or ``error``."""
    if isinstance(value, (bool, np.bool_)):
        raise error(f"{name} must be a real number, got {value!r}")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if not isinstance(value, numbers.Real):
        raise error(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    out = float(value)
    if math.isnan(out):
        raise error(f"{name} is NaN; expected a real number")
    return out


def check_tau(tau: object, *, error: type[LamprefError] = AnalysisError) -> float:
    """The LAMP threshold ``tau`` as a Python float in $(0, 2]$, or ``error`` naming it.

    The one check of ``tau`` for :func:`~lampref.analysis.lamp_select` and the modules that pass ``tau`` on
    to it; ``error`` lets a caller raise its own :class:`~lampref.errors.LamprefError` subclass.
    """
    t = real_scalar(tau, "tau", error=error)
    if not 0.0 < t <= 2.0:
        raise error(
            f"tau={tau!r} is out of range; expected 0 < tau <= 2 (tau = 2 recomputes nothing, "
            "tau -> 1 recomputes almost everything)"
        )
    return t


def nonnegative_int(value: object, name: str) -> int:
    """A non-negative Python int (bools rejected)."""
    if not is_int(value):
        raise AnalysisError(f"{name} must be a non-negative integer, got {value!r} ({type(value).__name__})")
    if value < 0:
        raise AnalysisError(f"{name}={value} is negative; expected a non-negative integer")
    return int(value)
