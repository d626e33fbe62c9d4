"""Hypothesis strategies, exact oracles and tokenizer test text for testing code against lampref (and
lampref itself).

Everything here is usable from your own test suite::

    from hypothesis import given
    from lampref.testing import formats, values_in, mpfr_round

The strategies need ``hypothesis`` and the oracles need ``gmpy2`` (both in the ``test`` extra); they are
imported only when used. The texts (:mod:`lampref.testing.texts`) need nothing.
"""

from __future__ import annotations

from typing import Any

# public name -> submodule that defines it (imported on first use: hypothesis and gmpy2 are test extras)
_WHERE = {
    **dict.fromkeys(
        ["formats", "p3109_formats", "values_in", "ties_of", "near_overflow", "subnormals_of", "floats_near"],
        "strategies",
    ),
    **dict.fromkeys(
        ["probability_rows", "masked_probability_rows", "dyadic_taus", "lamp_taus"], "analysis_strategies"
    ),
    **dict.fromkeys(
        [
            "mpfr_round",
            "mpfr_neighbours",
            "mpfr_round_fraction",
            "reference_round",
            "reference_matmul",
            "exact_value",
        ],
        "oracles",
    ),
    **dict.fromkeys(["mx_specs", "mx_arrays"], "mx_strategies"),
    **dict.fromkeys(["preactivations", "element_taus", "layernorm_rows"], "site_strategies"),
    **dict.fromkeys(["pychop_round", "pychop_round_many", "pychop_available"], "peers"),
    **dict.fromkeys(["stable_characters", "mixed_text", "mixed_texts"], "texts"),
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        module = importlib.import_module(f"{__name__}.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'lampref.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
