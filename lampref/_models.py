"""Argument checks shared by the models of lampref (:mod:`lampref.gpt2`, :mod:`lampref.bert`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from numpy.typing import NDArray

from .errors import InputTypeError, InputValueError


def check_token_ids(arr: NDArray[Any], name: str, ndims: Sequence[int], positions: int, limit: str) -> None:
    """Raise unless ``arr`` is a non-empty integer array of a dimension in ``ndims`` whose sequences (its
    last axis) are at most ``positions`` long.

    ``limit`` ends the message of a sequence that is too long (``"{name} has {n} positions; {limit}"``) and
    names the configuration field of ``positions``. The range of the ids is each model's own check.

    Raises
    ------
    InputValueError
        An empty array, a dimension not in ``ndims``, a sequence longer than ``positions``.
    InputTypeError
        An array that does not hold integers.
    """
    if arr.size == 0:
        raise InputValueError(f"{name} is empty (shape {arr.shape}); expected at least one token")
    if arr.dtype.kind not in "iu":
        raise InputTypeError(f"{name} has dtype {arr.dtype}; expected integer token ids")
    if arr.ndim not in ndims:
        dims = " or ".join(f"{d}-D" for d in ndims)
        raise InputValueError(f"{name} has shape {arr.shape}; expected {dims}")
    if arr.shape[-1] > positions:
        raise InputValueError(f"{name} has {arr.shape[-1]} positions; {limit}")
