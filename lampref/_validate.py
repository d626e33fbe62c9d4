"""Argument checks shared by every public entry point: one vocabulary for what is accepted.

Each check takes the value, the name of the parameter it came from, and (where the module has its own
exception) the :class:`~lampref.errors.LamprefError` subclass to raise; every message names the parameter and
states what was expected. None of them touches global state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeGuard

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InputTypeError, InputValueError, LamprefError, ModeError, ShapeError, expected_one_of

__all__ = ["as_array", "check_bool", "check_choice", "check_int", "check_rng", "is_int", "widen_ml_dtypes"]


def as_array(x: ArrayLike, name: str) -> NDArray[Any]:
    """``numpy.asarray(x)``, with ragged nesting reported as a :class:`~lampref.errors.ShapeError`.

    Nested sequences of unequal lengths (``[[1, 2], [3]]``) have no array shape: NumPy refuses them (or,
    with ``dtype=object``, keeps the inner lists as elements). Both are reported here, naming ``name``.

    Examples
    --------
    >>> from lampref._validate import as_array
    >>> as_array([[1, 2], [3, 4]], "x").shape
    (2, 2)
    >>> as_array([[1, 2], [3]], "x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lampref.errors.ShapeError: x is a ragged nested sequence (inner lengths differ); expected a ...
    """
    if isinstance(x, np.ndarray):
        arr: NDArray[Any] = x
    else:
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as err:
            raise ShapeError(
                f"{name} is a ragged nested sequence (inner lengths differ); expected a rectangular array "
                f"({err})"
            ) from None
    if arr.dtype == object and any(isinstance(v, (list, tuple, np.ndarray)) for v in arr.reshape(-1)):
        raise ShapeError(
            f"{name} is a ragged nested sequence (inner lengths differ); expected a rectangular array"
        )
    return arr


def widen_ml_dtypes(arr: NDArray[Any]) -> NDArray[Any]:
    """``arr`` as float32 when its dtype is one of ml_dtypes' (``bfloat16``, ``float8_*``, ``float6_*``,
    ``float4_*``, ``int4``, ...), else ``arr`` unchanged.

    Every value of those 16-bit and narrower types is a float32 value (NaN kept as NaN), so the conversion
    is exact; ml_dtypes itself is never imported (the dtype's scalar type names its module).

    Examples
    --------
    >>> import ml_dtypes, numpy as np
    >>> from lampref._validate import widen_ml_dtypes
    >>> widen_ml_dtypes(np.array([1.5, -3.0], dtype=ml_dtypes.bfloat16))
    array([ 1.5, -3. ], dtype=float32)
    >>> widen_ml_dtypes(np.array([1.5], dtype=np.float16)).dtype
    dtype('float16')
    """
    if arr.dtype.type.__module__.split(".")[0] == "ml_dtypes" and arr.dtype.itemsize <= 2:
        with np.errstate(invalid="ignore"):  # signalling NaNs stay NaN
            return arr.astype(np.float32)
    return arr


def check_rng(rng: Any, name: str = "rng") -> np.random.Generator | None:
    """The random generator of one call: a Generator (used as is), a seed, or None.

    A non-negative integer seed ``s`` becomes ``numpy.random.default_rng(s)``, once: a function that draws
    in several steps must call this once and pass the Generator on, so that a seed and
    ``default_rng(seed)`` give the same bits. Booleans, negative integers and anything else raise
    :class:`~lampref.errors.ModeError`.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref._validate import check_rng
    >>> check_rng(None) is None, isinstance(check_rng(3), np.random.Generator)
    (True, True)
    >>> check_rng(-1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lampref.errors.ModeError: rng=-1 is not valid; expected None, a non-negative integer seed or a ...
    """
    if rng is None or isinstance(rng, np.random.Generator):
        return rng
    if not isinstance(rng, (bool, np.bool_)) and isinstance(rng, (int, np.integer)) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ModeError(
        f"{name}={rng!r} is not valid; expected None, a non-negative integer seed or a numpy.random.Generator"
    )


def check_bool(value: Any, name: str, error: type[LamprefError] = InputTypeError) -> bool:
    """``value`` as a bool when it is ``True`` or ``False`` (Python or NumPy), else ``error``.

    Truthy stand-ins (``"yes"``, ``1``, ``None``) are refused: a flag is stated, never guessed.

    >>> from lampref._validate import check_bool
    >>> check_bool(True, "fma")
    True
    >>> check_bool("yes", "fma")
    Traceback (most recent call last):
    ...
    lampref.errors.InputTypeError: fma='yes' is not valid; expected True or False
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise error(f"{name}={value!r} is not valid; expected True or False")


def check_choice(
    value: Any, name: str, choices: Sequence[str | None], error: type[LamprefError] = ModeError
) -> Any:
    """``value`` when it is one of ``choices`` (strings, and None where listed), else ``error``.

    The comparison is by type first, so arrays and other objects with an elementwise ``==`` give the
    error, never NumPy's "truth value of an array is ambiguous".

    >>> from lampref._validate import check_choice
    >>> check_choice("pairwise", "order", ("sequential", "pairwise"))
    'pairwise'
    >>> check_choice(["pairwise"], "order", ("sequential", "pairwise"))
    Traceback (most recent call last):
    ...
    lampref.errors.ModeError: order=['pairwise'] is not valid; expected one of: 'sequential', 'pairwise'
    """
    if value is None and None in choices:
        return None
    if isinstance(value, str) and value in choices:
        return value
    named = [c for c in choices if c is not None]
    message = expected_one_of(name, value, named)
    raise error(message + (", or None" if None in choices else ""))


def is_int(value: object) -> TypeGuard[int | np.integer[Any]]:
    """Whether ``value`` is an integer (Python's or NumPy's), booleans excluded.

    >>> import numpy as np
    >>> from lampref._validate import is_int
    >>> is_int(3), is_int(np.int64(3)), is_int(True), is_int(3.0)
    (True, True, False, False)
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(
    value: Any,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    error: type[LamprefError] = InputValueError,
) -> int:
    """``value`` as a Python int when it is an integer (see :func:`is_int`) in ``[minimum, maximum]``.

    A non-integer raises :class:`~lampref.errors.InputTypeError`; an integer out of range raises ``error``.

    >>> from lampref._validate import check_int
    >>> check_int(4, "block", minimum=1)
    4
    >>> check_int(0, "block", minimum=1)
    Traceback (most recent call last):
    ...
    lampref.errors.InputValueError: block=0 is out of range; expected an integer >= 1
    """
    if not is_int(value):
        raise InputTypeError(f"{name}={value!r} is not valid; expected an integer")
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        if minimum is not None and maximum is not None:
            expected = f"{minimum} <= {name} <= {maximum}"
        else:
            expected = f"an integer >= {minimum}" if minimum is not None else f"an integer <= {maximum}"
        raise error(f"{name}={v} is out of range; expected {expected}")
    return v
