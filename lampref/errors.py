"""The exceptions lampref raises.

Every error lampref raises on bad input is a :class:`LamprefError`, and also an instance of the built-in
exception that fits (``ValueError``, ``TypeError`` or ``OSError``), so ``except ValueError`` keeps working.
Messages name the parameter, file or key at fault and what was expected.
"""

from __future__ import annotations

__all__ = ["FormatError", "InputTypeError", "InputValueError", "LamprefError", "ModeError"]


class LamprefError(Exception):
    """Base class of every exception lampref raises on purpose."""


class FormatError(LamprefError, ValueError):
    """An invalid floating-point format description or an unknown format name."""


class ModeError(LamprefError, ValueError):
    """An unknown rounding mode, or an argument a mode does not accept."""


class InputTypeError(LamprefError, TypeError):
    """An input of a type lampref cannot use exactly (complex, object, string or extended-precision arrays)."""


class InputValueError(LamprefError, ValueError):
    """An input value lampref cannot use exactly (for example an integer beyond 2**53)."""


def expected_one_of(parameter: str, got: object, accepted: list[str] | tuple[str, ...]) -> str:
    """Format the message for a parameter that must be one of several names."""
    return f"{parameter}={got!r} is not valid; expected one of: {', '.join(map(repr, accepted))}"
