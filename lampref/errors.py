"""The exceptions lampref raises.

Every error lampref raises on bad input is a :class:`LamprefError`, and also an instance of the built-in
exception that fits (``ValueError``, ``TypeError`` or ``OSError``), so ``except ValueError`` keeps working.
Messages name the parameter, file or key at fault and what was expected.
"""

from __future__ import annotations

__all__ = [
    "AnalysisError",
    "ConfigError",
    "ExperimentError",
    "FetchError",
    "FormatError",
    "GoldenError",
    "HardwareError",
    "InputTypeError",
    "InputValueError",
    "LamprefError",
    "ModeError",
    "PlanError",
    "PychopError",
    "PychopUnavailableError",
    "ShapeError",
    "TokenizerError",
    "WeightsError",
    "WeightsNotFoundError",
]


class LamprefError(Exception):
    """Base class of every exception lampref raises on purpose."""


class FormatError(LamprefError, ValueError):
    """An invalid floating-point format description or an unknown format name."""


class ModeError(LamprefError, ValueError):
    """An unknown rounding mode, or an argument a mode does not accept."""


class InputTypeError(LamprefError, TypeError):
    """An input of a type lampref cannot use exactly (complex, object, string, extended precision)."""


class InputValueError(LamprefError, ValueError):
    """An input value lampref cannot use exactly (for example an integer beyond 2**53)."""


class ShapeError(LamprefError, ValueError):
    """Operands whose shapes do not fit together (the message gives both shapes)."""


class TokenizerError(LamprefError, ValueError):
    """A vocabulary file that fails its checksum or is malformed, or a token id outside the vocabulary."""


class AnalysisError(LamprefError, ValueError):
    """An invalid argument to :mod:`lampref.analysis`: probabilities that are not a distribution, a threshold
    out of range, mismatched shapes, an unknown rule or function name, a problem too large to solve
    exactly."""


class ConfigError(LamprefError, ValueError):
    """An invalid GPT-2 configuration: a missing or out-of-range field, or a setting not modelled."""


class PlanError(LamprefError, ValueError):
    """An invalid precision plan: an unknown GEMM site, a layer out of range, a spec a site cannot take."""


class WeightsError(LamprefError, ValueError):
    """A checkpoint lampref cannot read as stated: a malformed or truncated file, a missing, extra or
    misshapen tensor, a dtype that cannot be converted exactly. The message names the file and the key."""


class WeightsNotFoundError(LamprefError, FileNotFoundError):
    """A checkpoint path, or a file a checkpoint directory must contain, that does not exist."""


class ExperimentError(LamprefError, ValueError):
    """An invalid experiment argument (grid, corpus, sizes) or an unreadable results file."""


class FetchError(LamprefError, OSError):
    """A download that failed: pip exited with an error, saved no file, or saved one whose size or hash
    is not the pinned one; or a cache directory that cannot be written. The message says which."""


class PychopUnavailableError(LamprefError, ImportError):
    """pychop is not installed in the running Python environment."""


class PychopError(LamprefError, RuntimeError):
    """The pychop child process failed; the message carries the end of its error output."""


def expected_one_of(parameter: str, got: object, accepted: list[str] | tuple[str, ...]) -> str:
    """Format the message for a parameter that must be one of several names."""
    return f"{parameter}={got!r} is not valid; expected one of: {', '.join(map(repr, accepted))}"


class HardwareError(LamprefError, ValueError):
    """An invalid argument to :mod:`lampref.hardware`: an unknown GPU or format, a combination of formats a
    GPU does not offer, an input value its input format cannot hold, or a model parameter out of range."""


class GoldenError(InputValueError):
    """A golden-vector folder (``lampref golden`` / :func:`lampref.validate.check_golden`) that cannot be
    used: a missing or malformed manifest, a missing or unreadable array, or a file whose sha256 does not
    match the manifest."""
