"""Argument checks shared by the models of lampref (:mod:`lampref.gpt2`, :mod:`lampref.bert`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from .errors import InputTypeError, InputValueError, WeightsError

if TYPE_CHECKING:
    from .gpt2.plan import PrecisionPlan


class Params(Protocol):
    """The parameters of a model: arrays of one dtype, checked against a configuration."""

    @property
    def dtype(self) -> np.dtype[Any]: ...

    def astype(self: P, dtype: Any) -> P: ...

    def check(self, config: Any, source: str = ...) -> None: ...


P = TypeVar("P", bound=Params)


class ModelParams(Generic[P]):
    """A model's float32 parameters, checked against its configuration, and their float64 copy (made on
    first use) that the reference plan runs on."""

    params: P
    _params64: P | None

    def _set_params(self, params: P, config: object, params_type: type[P], config_type: type) -> None:
        """Check ``config`` and ``params`` (types, float32, shapes) and keep ``params``."""
        if not isinstance(config, config_type):
            raise InputTypeError(f"config must be a {config_type.__name__}, got {type(config).__name__}")
        if not isinstance(params, params_type):
            raise InputTypeError(f"params must be a {params_type.__name__}, got {type(params).__name__}")
        if params.dtype != np.float32:
            raise InputValueError(f"params have dtype {params.dtype}; expected float32")
        params.check(config)
        self.params = params
        self._params64 = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (sent to a worker process) without the float64 copy: it is made again on first use."""
        state = dict(self.__dict__)
        state["_params64"] = None
        return state

    def _weights(self, plan: PrecisionPlan) -> P:
        """The parameters a forward pass under ``plan`` reads: float64 under the reference plan."""
        if not plan.is_reference:
            return self.params
        if self._params64 is None:
            self._params64 = self.params.astype(np.float64)
        return self._params64


def check_shapes(
    named: Iterable[tuple[str, NDArray[Any]]],
    expected: Mapping[str, tuple[int, ...]],
    layers: tuple[int, int, str],
    source: str,
) -> None:
    """Raise :class:`~lampref.errors.WeightsError` naming ``source`` unless the model has the configured
    number of layers (``layers``: found, configured, the configuration field) and every named array has
    its expected shape."""
    found, configured, field = layers
    if found != configured:
        raise WeightsError(f"{source}: {found} layers; config.{field}={configured}")
    for name, arr in named:
        if arr.shape != expected[name]:
            raise WeightsError(f"{source}: {name} has shape {arr.shape}; expected {expected[name]}")


def check_copy_dtype(dtype: Any) -> np.dtype[Any]:
    """The dtype of a parameter copy: float32 or float64 (:class:`~lampref.errors.WeightsError` otherwise)."""
    out: np.dtype[Any] = np.dtype(dtype)
    if out not in (np.float32, np.float64):
        raise WeightsError(f"dtype={dtype!r} is not valid; expected float32 or float64")
    return out


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
