"""Hypothesis strategies and exact oracles for testing code against lampref (and lampref itself).

Everything here is usable from your own test suite::

    from hypothesis import given
    from lampref.testing import formats, values_in, mpfr_round

The strategies need ``hypothesis`` and the oracles need ``gmpy2`` (both in the ``test`` extra); they are
imported only when used.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "exact_value",
    "floats_near",
    "formats",
    "mpfr_neighbours",
    "mpfr_round",
    "mpfr_round_fraction",
    "near_overflow",
    "reference_matmul",
    "reference_round",
    "subnormals_of",
    "ties_of",
    "values_in",
]

_STRATEGIES = {"formats", "values_in", "ties_of", "near_overflow", "subnormals_of", "floats_near"}
_ORACLES = {
    "mpfr_round",
    "mpfr_neighbours",
    "reference_round",
    "exact_value",
    "mpfr_round_fraction",
    "reference_matmul",
}


def __getattr__(name: str) -> Any:
    if name in _STRATEGIES:
        from . import strategies

        return getattr(strategies, name)
    if name in _ORACLES:
        from . import oracles

        return getattr(oracles, name)
    raise AttributeError(f"module 'lampref.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
