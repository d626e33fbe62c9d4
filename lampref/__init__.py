"""lampref: exact floating-point emulation in NumPy, and a reference implementation of LAMP.

The public API is re-exported here; see the documentation for a tour.
"""

from __future__ import annotations

from .accumulate import Accumulator, dot, linear, matmul
from .errors import (
    AnalysisError,
    ConfigError,
    FormatError,
    InputTypeError,
    InputValueError,
    LamprefError,
    ModeError,
    PlanError,
    ShapeError,
    TokenizerError,
    WeightsError,
    WeightsNotFoundError,
)
from .formats import (
    FloatFormat,
    bf16,
    e2m1,
    e2m3,
    e3m2,
    e4m3,
    e5m2,
    format_names,
    fp16,
    fp32,
    fp32_mantissa,
    fp64,
    from_pychop,
    get_format,
    tf32,
    to_pychop,
)
from .rounding import (
    DETERMINISTIC_MODES,
    MODES,
    STOCHASTIC_MODES,
    is_representable,
    next_down,
    next_up,
    round_to,
    ulp,
)

__version__ = "0.1.0"

__all__ = [
    "DETERMINISTIC_MODES",
    "MODES",
    "STOCHASTIC_MODES",
    "Accumulator",
    "AnalysisError",
    "ConfigError",
    "FloatFormat",
    "FormatError",
    "InputTypeError",
    "InputValueError",
    "LamprefError",
    "ModeError",
    "PlanError",
    "ShapeError",
    "TokenizerError",
    "WeightsError",
    "WeightsNotFoundError",
    "__version__",
    "bf16",
    "dot",
    "e2m1",
    "e2m3",
    "e3m2",
    "e4m3",
    "e5m2",
    "format_names",
    "fp16",
    "fp32",
    "fp32_mantissa",
    "fp64",
    "from_pychop",
    "get_format",
    "is_representable",
    "linear",
    "matmul",
    "next_down",
    "next_up",
    "round_to",
    "tf32",
    "to_pychop",
    "ulp",
]
