r"""Binary floating-point formats as values.

A format is described by the parameters numerical analysts use (Higham & Pranesh's *chop*, CPFloat):

* ``p``: the precision, significand bits **including** the implicit leading bit (binary16: 11, bfloat16: 8);
* ``emax`` and ``emin``: the largest and smallest exponent of a normal number (``emin`` defaults to
  ``1 - emax``, as in IEEE 754);
* ``subnormals``: whether gradual underflow is supported (if not, results below the smallest normal
  number round to zero or to the smallest normal number, as the rounding mode says);
* ``encoding``: ``"ieee"`` (infinities and NaNs), ``"fn"`` (finite and NaN, no infinity, the all-ones
  pattern is NaN: OCP ``float8_e4m3fn``), ``"none"`` (neither infinity nor NaN: the OCP MX element types);
* ``saturate``: whether an overflow gives the largest finite value instead of infinity (``"ieee"``) or NaN
  (``"fn"``). Formats without infinity and NaN always saturate.

Every finite value of a format is $\pm m \cdot 2^{e-p+1}$ with $e_{\min} \le e \le e_{\max}$ and
$2^{p-1} \le m < 2^p$ (normal) or $e = e_{\min}$, $0 \le m < 2^{p-1}$ (subnormal), up to the
largest finite value ``max``.

Examples
--------
>>> from lampref import get_format, fp32_mantissa
>>> fp16 = get_format("fp16")
>>> fp16.max, fp16.smallest_normal, fp16.smallest_subnormal, fp16.unit_roundoff
(65504.0, 6.103515625e-05, 5.960464477539063e-08, 0.00048828125)
>>> fp32_mantissa(10).max == (2 - 2**-10) * 2.0**127
True
>>> get_format("e4m3").max
448.0
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ._validate import check_bool, check_choice, is_int
from .errors import FormatError, expected_one_of

__all__ = [
    "ENCODINGS",
    "FloatFormat",
    "bf16",
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
    "tf32",
    "to_pychop",
]

Encoding = Literal["ieee", "fn", "none"]
ENCODINGS: tuple[str, ...] = ("ieee", "fn", "none")

# Limits of the float64 container every rounding is carried out in.
_F64_P, _F64_EMAX, _F64_EMIN, _F64_QMIN = 53, 1023, -1022, -1074
_F32_P, _F32_EMAX, _F32_EMIN = 24, 127, -126


def _check_int(name: str, value: object) -> int:
    if not is_int(value):
        raise FormatError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    return int(value)


@dataclass(frozen=True, slots=True)
class FloatFormat:
    r"""A binary floating-point format (precision, exponent range, subnormals, special values).

    Parameters
    ----------
    p : int
        Precision: significand bits including the implicit bit, ``1 <= p <= 53``.
    emax : int
        Exponent of the largest binade of finite numbers, at most 1023.
    emin : int, optional
        Exponent of the smallest normal number, at least -1022; defaults to ``1 - emax``.
    subnormals : bool, default True
        Gradual underflow. With ``False`` the representable values are zero and the normal numbers.
    encoding : {"ieee", "fn", "none"}, default "ieee"
        Which special values exist: IEEE infinities and NaNs; ``"fn"`` NaN only, taking the largest
        significand of the top binade (OCP e4m3fn); ``"none"``: no infinity and no NaN (OCP MX elements).
    saturate : bool, optional
        Overflow policy. ``False`` (default for ``"ieee"`` and ``"fn"``): an overflow gives infinity, or NaN
        in a format without infinity, following IEEE 754 for each rounding mode. ``True``: every overflow,
        infinite inputs included, gives the signed largest finite value. ``"none"`` formats always saturate.
    name : str, optional
        A label used in ``repr`` and tables; not part of the format's identity (two formats with the same
        parameters compare equal whatever their names). Must be a string or None.

    Raises
    ------
    FormatError
        If a parameter is out of range; the message names it and the accepted values.

    Notes
    -----
    Every format must fit in the float64 container lampref computes in: ``p <= 53``,
    ``-1022 <= emin <= emax <= 1023`` and, with subnormals, $e_{\min} - p + 1 \ge -1074$.

    Examples
    --------
    >>> from lampref import FloatFormat
    >>> f = FloatFormat(p=3, emax=3)
    >>> f.max, f.smallest_normal, f.smallest_subnormal, f.bits
    (14.0, 0.25, 0.0625, 6)
    >>> f == FloatFormat(p=3, emax=3, emin=-2, name="tiny")
    True
    """

    p: int
    emax: int
    emin: int | None = None
    subnormals: bool = True
    encoding: Encoding = "ieee"
    saturate: bool | None = None
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        p = _check_int("p", self.p)
        emax = _check_int("emax", self.emax)
        emin = 1 - emax if self.emin is None else _check_int("emin", self.emin)
        if not 1 <= p <= _F64_P:
            raise FormatError(f"p={p} is out of range; the precision must satisfy 1 <= p <= 53")
        if emax > _F64_EMAX:
            raise FormatError(f"emax={emax} is out of range; expected emax <= 1023 (float64's)")
        if emin < _F64_EMIN:
            raise FormatError(f"emin={emin} is out of range; expected emin >= -1022 (float64's)")
        if emin > emax:
            raise FormatError(f"emin={emin} > emax={emax}; expected emin <= emax")
        if not isinstance(self.subnormals, (bool, np.bool_)):
            raise FormatError(f"subnormals must be True or False, got {self.subnormals!r}")
        if self.subnormals and emin - p + 1 < _F64_QMIN:
            raise FormatError(
                f"emin={emin} with p={p} has subnormals down to 2**{emin - p + 1}, below float64's "
                f"2**-1074; expected emin - p + 1 >= -1074 (or subnormals=False)"
            )
        check_choice(self.encoding, "encoding", ENCODINGS, FormatError)
        if self.name is not None and not isinstance(self.name, str):
            raise FormatError(f"name={self.name!r} is not valid; expected a string or None")
        if self.encoding == "fn" and p < 2:
            raise FormatError(
                "p=1 leaves no finite value in the top binade of an 'fn' format; expected p >= 2"
            )
        saturate = self.saturate
        if saturate is None:
            saturate = self.encoding == "none"
        elif not isinstance(saturate, (bool, np.bool_)):
            raise FormatError(f"saturate must be True, False or None, got {saturate!r}")
        if self.encoding == "none" and not saturate:
            raise FormatError("a format with encoding='none' has no infinity and no NaN and must saturate")
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "emax", emax)
        object.__setattr__(self, "emin", emin)
        object.__setattr__(self, "subnormals", bool(self.subnormals))
        object.__setattr__(self, "saturate", bool(saturate))

    # ----------------------------------------------------------------- identity
    def __repr__(self) -> str:
        label = f"{self.name}: " if self.name else ""
        extras = ""
        if not self.subnormals:
            extras += ", subnormals=False"
        if self.encoding != "ieee":
            extras += f", encoding={self.encoding!r}"
        if self.saturate and self.encoding != "none":
            extras += ", saturate=True"
        return f"FloatFormat({label}p={self.p}, emax={self.emax}, emin={self.emin}{extras})"

    def replace(self, **changes: Any) -> FloatFormat:
        """Return a copy with some parameters changed (``emin`` is kept unless given).

        >>> from lampref import fp16
        >>> fp16.replace(subnormals=False).subnormals
        False
        """
        params: dict[str, Any] = {
            "p": self.p,
            "emax": self.emax,
            "emin": self.emin,
            "subnormals": self.subnormals,
            "encoding": self.encoding,
            "saturate": None if self.encoding == "none" else self.saturate,
            "name": None,
        }
        unknown = sorted(set(changes) - set(params))
        if unknown:
            raise FormatError(
                f"replace() got {', '.join(map(repr, unknown))}; expected parameters among: "
                f"{', '.join(map(repr, params))}"
            )
        params.update(changes)
        return FloatFormat(**params)

    # ------------------------------------------------------------ bit layout
    @property
    def mantissa_bits(self) -> int:
        """Stored (explicit) significand bits, ``p - 1``."""
        return self.p - 1

    @property
    def exponent_bits(self) -> int:
        """Width of the exponent field of the smallest encoding of this exponent range."""
        assert self.emin is not None
        codes = self.emax - self.emin + 1 + 1  # the normal binades + the zero/subnormal code
        if self.encoding == "ieee":
            codes += 1  # the all-ones code for infinity and NaN
        return max(1, math.ceil(math.log2(codes)))

    @property
    def bits(self) -> int:
        """Total width of the encoding: sign + exponent field + stored mantissa."""
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def has_inf(self) -> bool:
        """Whether the format has infinities."""
        return self.encoding == "ieee"

    @property
    def has_nan(self) -> bool:
        """Whether the format has NaNs."""
        return self.encoding != "none"

    # ------------------------------------------------------------- constants
    @property
    def unit_roundoff(self) -> float:
        r"""Unit roundoff $u = 2^{-p}$: the relative error bound of round-to-nearest."""
        return math.ldexp(1.0, -self.p)

    @property
    def eps(self) -> float:
        r"""Machine epsilon $2^{1-p}$: the distance from 1 to the next larger value."""
        return math.ldexp(1.0, 1 - self.p)

    @property
    def max(self) -> float:
        """Largest finite value."""
        if self.encoding == "fn":
            return math.ldexp(2.0 - math.ldexp(1.0, 2 - self.p), self.emax)
        return math.ldexp(2.0 - math.ldexp(1.0, 1 - self.p), self.emax)

    @property
    def smallest_normal(self) -> float:
        r"""Smallest positive normal value $2^{e_{\min}}$."""
        assert self.emin is not None
        return math.ldexp(1.0, self.emin)

    @property
    def smallest_subnormal(self) -> float:
        r"""Smallest positive value: $2^{e_{\min}-p+1}$, or the smallest normal without subnormals."""
        assert self.emin is not None
        if not self.subnormals:
            return self.smallest_normal
        return math.ldexp(1.0, self.emin - self.p + 1)

    @property
    def fits_float32(self) -> bool:
        """Whether the format lies inside float32: ``p <= 24`` and its exponent range (subnormals
        included) within float32's. Results are then float32 (every value of such a format is a float32
        value)."""
        assert self.emin is not None
        return (
            self.p <= _F32_P
            and self.emax <= _F32_EMAX
            and self.emin >= _F32_EMIN
            and (not self.subnormals or self.emin - self.p + 1 >= _F32_EMIN - _F32_P + 1)
        )

    @property
    def dtype(self) -> np.dtype[Any]:
        """The NumPy dtype results are returned in: float32 when the format fits in it, else float64."""
        return np.dtype(np.float32) if self.fits_float32 else np.dtype(np.float64)

    @property
    def n_finite(self) -> int:
        """Number of distinct finite values (zero counted once)."""
        assert self.emin is not None
        per_binade = 1 << (self.p - 1)
        positives = (self.emax - self.emin + 1) * per_binade
        if self.subnormals:
            positives += per_binade - 1
        if self.encoding == "fn":
            positives -= 1
        return 2 * positives + 1

    def values(self) -> NDArray[np.floating[Any]]:
        """Every finite value of the format, ascending, zero once (formats of at most 16 bits).

        Returns
        -------
        numpy.ndarray
            The values in the format's dtype (see :attr:`dtype`).

        Raises
        ------
        FormatError
            If the format is wider than 16 bits.

        Examples
        --------
        >>> from lampref import get_format
        >>> get_format("e2m1").values()
        array([-6. , -4. , -3. , -2. , -1.5, -1. , -0.5,  0. ,  0.5,  1. ,  1.5,
                2. ,  3. ,  4. ,  6. ], dtype=float32)
        """
        if self.bits > 16:
            raise FormatError(f"values() enumerates formats of at most 16 bits; {self!r} has {self.bits}")
        assert self.emin is not None
        per_binade = 1 << (self.p - 1)
        m = np.arange(per_binade, 2 * per_binade, dtype=np.float64)  # normal significands
        e = np.arange(self.emin, self.emax + 1, dtype=np.int64)
        positive = np.ldexp(m[None, :], (e - self.p + 1)[:, None]).ravel()
        if self.subnormals:
            sub = np.ldexp(np.arange(1, per_binade, dtype=np.float64), self.emin - self.p + 1)
            positive = np.concatenate([sub, positive])
        positive = positive[positive <= self.max]
        out = np.concatenate([-positive[::-1], [0.0], positive])
        return out.astype(self.dtype)


# ------------------------------------------------------------------------ presets
fp64 = FloatFormat(p=53, emax=1023, name="fp64")
fp32 = FloatFormat(p=24, emax=127, name="fp32")
tf32 = FloatFormat(p=11, emax=127, name="tf32")
bf16 = FloatFormat(p=8, emax=127, name="bf16")
fp16 = FloatFormat(p=11, emax=15, name="fp16")
e4m3 = FloatFormat(p=4, emax=8, emin=-6, encoding="fn", name="e4m3")
e5m2 = FloatFormat(p=3, emax=15, name="e5m2")
e3m2 = FloatFormat(p=3, emax=4, emin=-2, encoding="none", name="e3m2")
e2m3 = FloatFormat(p=4, emax=2, emin=0, encoding="none", name="e2m3")
e2m1 = FloatFormat(p=2, emax=2, emin=0, encoding="none", name="e2m1")

_PRESETS: dict[str, FloatFormat] = {
    "fp64": fp64,
    "fp32": fp32,
    "tf32": tf32,
    "bf16": bf16,
    "fp16": fp16,
    "e4m3": e4m3,
    "e5m2": e5m2,
    "e3m2": e3m2,
    "e2m3": e2m3,
    "e2m1": e2m1,
}
_ALIASES: dict[str, str] = {
    "binary64": "fp64",
    "float64": "fp64",
    "double": "fp64",
    "binary32": "fp32",
    "float32": "fp32",
    "single": "fp32",
    "tensorfloat32": "tf32",
    "bfloat16": "bf16",
    "binary16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "e4m3fn": "e4m3",
    "float8_e4m3fn": "e4m3",
    "float8_e5m2": "e5m2",
    "fp6_e3m2": "e3m2",
    "float6_e3m2fn": "e3m2",
    "fp6_e2m3": "e2m3",
    "float6_e2m3fn": "e2m3",
    "fp4_e2m1": "e2m1",
    "float4_e2m1fn": "e2m1",
}
_MANTISSA_NAME = re.compile(r"fp32_m([0-9]+)", re.ASCII)  # ASCII digits: \d would take any script's


def fp32_mantissa(m: int) -> FloatFormat:
    r"""The paper's "m mantissa bits" format: ``p = m + 1`` with float32's exponent range and subnormals.

    ``fp32_mantissa(23)`` is float32, ``fp32_mantissa(10)`` has float16's precision and float32's range,
    ``fp32_mantissa(7)`` is bfloat16.

    Parameters
    ----------
    m : int
        Explicit mantissa bits, ``0 <= m <= 23``.

    Examples
    --------
    >>> from lampref import fp32_mantissa, bf16
    >>> fp32_mantissa(7) == bf16
    True
    """
    m = _check_int("m", m)
    if not 0 <= m <= 23:
        raise FormatError(f"m={m} is out of range; fp32_mantissa expects 0 <= m <= 23")
    return FloatFormat(p=m + 1, emax=127, name=f"fp32_m{m}")


def format_names() -> list[str]:
    """The preset names :func:`get_format` accepts (aliases and ``fp32_m<m>`` are accepted too)."""
    return list(_PRESETS)


def get_format(name: str | FloatFormat) -> FloatFormat:
    """Look a format up by name; a :class:`FloatFormat` is returned unchanged.

    Parameters
    ----------
    name : str or FloatFormat
        A preset (``fp64, fp32, tf32, bf16, fp16, e4m3, e5m2, e3m2, e2m3, e2m1``), an alias
        (``binary16``, ``bfloat16``, ``float8_e4m3fn``, ...; case-insensitive) or ``fp32_m<m>`` for
        :func:`fp32_mantissa`.

    Raises
    ------
    FormatError
        For an unknown name; the message lists the accepted names.

    Examples
    --------
    >>> from lampref import get_format
    >>> get_format("bfloat16")
    FloatFormat(bf16: p=8, emax=127, emin=-126)
    >>> get_format("fp32_m4").p
    5
    """
    if isinstance(name, FloatFormat):
        return name
    if not isinstance(name, str):
        raise FormatError(f"format must be a FloatFormat or a name, got {name!r} ({type(name).__name__})")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key in _PRESETS:
        return _PRESETS[key]
    match = _MANTISSA_NAME.fullmatch(key)
    if match:
        return fp32_mantissa(int(match.group(1)))
    raise FormatError(expected_one_of("format", name, [*_PRESETS, *_ALIASES, "fp32_m<0..23>"]))


# ------------------------------------------------------------------- pychop bridge
# pychop's named precisions as (exp_bits, sig_bits), each under its short and its long name; its fp8
# formats are IEEE-like.
_PYCHOP_PRECISIONS: dict[str, tuple[int, int]] = {
    name: bits
    for names, bits in [
        (("h", "half"), (5, 10)),
        (("b", "bfloat16"), (8, 7)),
        (("s", "single"), (8, 23)),
        (("d", "double"), (11, 52)),
        (("q43", "fp8-e4m3"), (4, 3)),
        (("q52", "fp8-e5m2"), (5, 2)),
    ]
    for name in names
}


def from_pychop(desc: str | Mapping[str, Any] | Any) -> FloatFormat:
    """Build the format a pychop description denotes.

    Parameters
    ----------
    desc : str, mapping or pychop object
        A pychop precision name (``"h"``, ``"b"``, ``"s"``, ``"d"``, ``"q43"``, ``"q52"``), a mapping with
        ``exp_bits``, ``sig_bits`` and optionally ``subnormal`` (the arguments of ``pychop.Chop``), or any
        object with those attributes (a ``pychop.Chop``). pychop formats are IEEE-like:
        ``emax = 2**(exp_bits-1) - 1``, ``emin = 1 - emax``, with infinities and NaNs.

    Examples
    --------
    >>> from lampref import from_pychop, fp16
    >>> from_pychop({"exp_bits": 5, "sig_bits": 10}) == fp16
    True
    >>> from_pychop("q43").max  # pychop's e4m3 is IEEE-like, not OCP e4m3fn
    240.0
    """
    subnormal: Any = True
    if isinstance(desc, str):
        key = desc.strip().lower()
        if key not in _PYCHOP_PRECISIONS:
            raise FormatError(expected_one_of("pychop precision", desc, list(_PYCHOP_PRECISIONS)))
        exp_bits, sig_bits = _PYCHOP_PRECISIONS[key]
    elif isinstance(desc, Mapping):
        try:
            exp_bits, sig_bits = desc["exp_bits"], desc["sig_bits"]
        except KeyError as err:
            raise FormatError(
                f"a pychop description needs 'exp_bits' and 'sig_bits'; missing {err}"
            ) from None
        subnormal = desc.get("subnormal", True)
    elif hasattr(desc, "exp_bits") and hasattr(desc, "sig_bits"):
        exp_bits, sig_bits = desc.exp_bits, desc.sig_bits
        subnormal = getattr(desc, "subnormal", True)
    else:
        raise FormatError(
            f"cannot read a pychop format from {desc!r}; expected a precision name, a mapping or an object "
            "with exp_bits and sig_bits"
        )
    exp_bits = _check_int("exp_bits", exp_bits)
    sig_bits = _check_int("sig_bits", sig_bits)
    subnormal = check_bool(subnormal, "subnormal", FormatError)
    if exp_bits < 2:
        raise FormatError(f"exp_bits={exp_bits} is out of range; expected exp_bits >= 2")
    return FloatFormat(p=sig_bits + 1, emax=(1 << (exp_bits - 1)) - 1, subnormals=subnormal)


def to_pychop(fmt: FloatFormat | str) -> dict[str, Any]:
    """The keyword arguments of ``pychop.Chop`` for a format (pychop itself is not imported).

    Only IEEE-like formats have a pychop equivalent: ``encoding="ieee"``, no saturation,
    ``emin = 1 - emax`` and ``emax = 2**(w-1) - 1`` for some exponent width ``w``.

    Examples
    --------
    >>> from lampref import to_pychop
    >>> to_pychop("bf16")
    {'exp_bits': 8, 'sig_bits': 7, 'subnormal': True}
    """
    fmt = get_format(fmt)
    w = fmt.emax.bit_length() + 1
    if fmt.encoding != "ieee" or fmt.saturate or fmt.emin != 1 - fmt.emax or fmt.emax != (1 << (w - 1)) - 1:
        raise FormatError(
            f"{fmt!r} has no pychop equivalent; pychop formats are IEEE-like with emax = 2**(w-1) - 1, "
            "emin = 1 - emax and no saturation"
        )
    return {"exp_bits": w, "sig_bits": fmt.p - 1, "subnormal": fmt.subnormals}
