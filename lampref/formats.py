r"""Binary floating-point formats as values.

A format is described by the parameters numerical analysts use (Higham & Pranesh's *chop*, CPFloat):

* ``p``: the precision, significand bits **including** the implicit leading bit (binary16: 11, bfloat16: 8);
* ``emax`` and ``emin``: the largest and smallest exponent of a normal number (``emin`` defaults to
  ``1 - emax``, as in IEEE 754);
* ``subnormals``: whether gradual underflow is supported (if not, results below the smallest normal
  number round to zero or to the smallest normal number, as the rounding mode says);
* ``encoding``: ``"ieee"`` (infinities and NaNs), ``"fn"`` (finite and NaN, no infinity, the all-ones
  pattern is NaN: OCP ``float8_e4m3fn``), ``"none"`` (neither infinity nor NaN: the OCP MX element types),
  and two fixed layouts: ``"p3109_extended"`` / ``"p3109_finite"`` (IEEE P3109: one zero, one NaN,
  infinities only in the extended domain; build them with :func:`p3109`) and ``"e8m0"`` (OCP MX scales:
  powers of two only, no zero, no sign);
* ``saturate``: whether an overflow gives the largest finite value instead of infinity (``"ieee"``) or NaN
  (``"fn"``). Formats without infinity and NaN always saturate;
* ``signed``: ``False`` for the unsigned P3109 formats and E8M0 (no negative values).

Every finite value of a format is $\pm m \cdot 2^{e-p+1}$ with $e_{\min} \le e \le e_{\max}$ and
$2^{p-1} \le m < 2^p$ (normal) or $e = e_{\min}$, $0 \le m < 2^{p-1}$ (subnormal), up to the
largest finite value ``max``.

Examples
--------
>>> from lampref import get_format, fp32_mantissa, p3109
>>> fp16 = get_format("fp16")
>>> fp16.max, fp16.smallest_normal, fp16.smallest_subnormal, fp16.unit_roundoff
(65504.0, 6.103515625e-05, 5.960464477539063e-08, 0.00048828125)
>>> fp32_mantissa(10).max == (2 - 2**-10) * 2.0**127
True
>>> get_format("e4m3").max
448.0
>>> p3109(8, 3).max, get_format("p3109_k8p3se") == p3109(8, 3)
(49152.0, True)
>>> get_format("e8m0").smallest_normal == 2.0**-127
True
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
    "ALL_ENCODINGS",
    "ENCODINGS",
    "FloatFormat",
    "bf16",
    "e2m1",
    "e2m3",
    "e3m2",
    "e4m3",
    "e5m2",
    "e8m0",
    "format_names",
    "fp16",
    "fp32",
    "fp32_mantissa",
    "fp64",
    "from_pychop",
    "get_format",
    "p3109",
    "tf32",
    "to_pychop",
]

Encoding = Literal["ieee", "fn", "none", "p3109_extended", "p3109_finite", "e8m0"]
# The encodings any (p, emax, emin) takes; the fixed layouts below derive the exponent range from the width.
ENCODINGS: tuple[str, ...] = ("ieee", "fn", "none")
_P3109_ENCODINGS: tuple[str, ...] = ("p3109_extended", "p3109_finite")
ALL_ENCODINGS: tuple[str, ...] = (*ENCODINGS, *_P3109_ENCODINGS, "e8m0")

# Limits of the float64 container every rounding is carried out in.
_F64_P, _F64_EMAX, _F64_EMIN, _F64_QMIN = 53, 1023, -1022, -1074
_F32_P, _F32_EMAX, _F32_EMIN = 24, 127, -126


def _check_int(name: str, value: object) -> int:
    if not is_int(value):
        raise FormatError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    return int(value)


def _p3109_width(emin: int) -> int | None:
    """The exponent field width ``w`` of a P3109 format from ``emin = 1 - bias``: the bias is ``2**(w-1)``,
    or 0 without an exponent field; None when ``emin`` is no P3109 format's."""
    bias = 1 - emin
    if bias == 0:
        return 0
    return bias.bit_length() if bias > 0 and bias & (bias - 1) == 0 else None


def _reserved_codes(encoding: str, signed: bool) -> int:
    """How many of the highest magnitude codes of a fixed layout hold infinity and NaN (per sign)."""
    if encoding == "p3109_extended":
        return 1 if signed else 2  # +-inf; unsigned: +inf and the NaN above it
    if encoding == "p3109_finite":
        return 0 if signed else 1  # signed: the NaN is the negative-zero code
    return 1  # e8m0: NaN


def _fixed_max(encoding: str, p: int, emin: int, signed: bool) -> float:
    """The largest finite value of a P3109 format: the value of the highest magnitude code left over by
    infinity and NaN (0.0 when none is left)."""
    t = p - 1
    w = _p3109_width(emin)
    assert w is not None
    code = (1 << (w + t)) - 1 - _reserved_codes(encoding, signed)
    E, M = code >> t, code & ((1 << t) - 1)
    if code <= 0:
        return 0.0
    if E == 0:  # subnormal (P3109 formats have subnormals)
        return math.ldexp(M, emin - t)
    return math.ldexp((1 << t) + M, E - (1 - emin) - t)


def _check_layout(encoding: str, p: int, emax: int, emin: int, subnormals: bool, signed: bool) -> None:
    """Check that a fixed layout's parameters are those of one of its formats (see :func:`p3109`)."""
    if encoding in ENCODINGS:
        if not signed:
            raise FormatError(
                f"signed=False needs encoding 'p3109_extended', 'p3109_finite' or 'e8m0'; got {encoding!r}"
            )
        return
    if encoding == "e8m0":
        span = emax - emin + 2  # the binades and the NaN code
        if p != 1 or subnormals or signed or span & (span - 1):
            raise FormatError(
                "encoding='e8m0' needs p=1, subnormals=False, signed=False and emax - emin + 2 a power of "
                f"two (every code a power of two but the all-ones NaN); got p={p}, emax={emax}, emin={emin}, "
                f"subnormals={subnormals}, signed={signed}"
            )
        return
    w = _p3109_width(emin)
    if not subnormals or w is None:
        raise FormatError(
            f"encoding={encoding!r} needs subnormals and emin = 1 - 2**(w-1) for an exponent field of w bits "
            f"(or emin = 1 without one); got emin={emin}, subnormals={subnormals}: build it with "
            "lampref.p3109(k, p, signed=..., domain=...)"
        )
    xmax = _fixed_max(encoding, p, emin, signed)
    expected = max(math.frexp(xmax)[1] - 1, emin) if xmax > 0 else None
    if expected != emax:
        raise FormatError(
            f"emax={emax} is not the P3109 value for p={p}, emin={emin} ({expected}); build the format with "
            "lampref.p3109(k, p, signed=..., domain=...)"
        )


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
    encoding : {"ieee", "fn", "none", "p3109_extended", "p3109_finite", "e8m0"}, default "ieee"
        Which special values exist: IEEE infinities and NaNs; ``"fn"`` NaN only, taking the largest
        significand of the top binade (OCP e4m3fn); ``"none"``: no infinity and no NaN (OCP MX elements).
        The fixed layouts fix the exponent range from the width (build them with :func:`p3109` and
        :func:`get_format`): ``"p3109_extended"`` and ``"p3109_finite"`` (IEEE P3109: one zero, one NaN,
        infinities in the extended domain, exponent bias $2^{w-1}$ for a $w$-bit exponent field) and
        ``"e8m0"`` (OCP MX scale: $p = 1$, no zero, no subnormals, unsigned, the all-ones code is NaN).
    saturate : bool, optional
        Overflow policy. ``False`` (default for ``"ieee"`` and ``"fn"``): an overflow gives infinity, or NaN
        in a format without infinity, following IEEE 754 for each rounding mode. ``True``: every overflow,
        infinite inputs included, gives the signed largest finite value. ``"none"`` formats always saturate.
    name : str, optional
        A label used in ``repr`` and tables; not part of the format's identity (two formats with the same
        parameters compare equal whatever their names). Must be a string or None.
    signed : bool, default True
        ``False`` for unsigned formats (P3109 unsigned, E8M0): no sign bit and no negative values. Rounding a
        negative value into an unsigned format gives NaN, or the smallest value (0, or the smallest power
        of two in E8M0) when the format saturates; a negative value that rounds to zero gives zero.

    Raises
    ------
    FormatError
        If a parameter is out of range; the message names it and the accepted values.

    Notes
    -----
    Every format must fit in the float64 container lampref computes in: ``p <= 53``,
    ``-1022 <= emin <= emax <= 1023`` and, with subnormals, $e_{\min} - p + 1 \ge -1074$.

    In the fixed layouts ``emax`` is the exponent of the binade of the largest finite value (P3109's top
    codes hold infinity and NaN, so it can be below the top exponent field), and in the all-subnormal
    P3109 formats (signed, ``p == k``: no exponent field) ``emax == emin == 1`` while every value lies
    below $2^{e_{\min}}$.

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
    signed: bool = True

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
        check_choice(self.encoding, "encoding", ALL_ENCODINGS, FormatError)
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
        if not isinstance(self.signed, (bool, np.bool_)):
            raise FormatError(f"signed must be True or False, got {self.signed!r}")
        _check_layout(self.encoding, p, emax, emin, bool(self.subnormals), bool(self.signed))
        object.__setattr__(self, "signed", bool(self.signed))
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
        if not self.signed:
            extras += ", signed=False"
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
            "signed": self.signed,
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
        """Width of the exponent field: the smallest encoding of the exponent range, or the fixed layout's."""
        assert self.emin is not None
        if self.encoding in _P3109_ENCODINGS:
            return _p3109_width(self.emin) or 0
        if self.encoding == "e8m0":
            return (self.emax - self.emin + 1).bit_length()  # the binades and the NaN code fill 2**w codes
        codes = self.emax - self.emin + 1 + 1  # the normal binades + the zero/subnormal code
        if self.encoding == "ieee":
            codes += 1  # the all-ones code for infinity and NaN
        return max(1, math.ceil(math.log2(codes)))

    @property
    def bits(self) -> int:
        """Total width of the encoding: sign (signed formats) + exponent field + stored mantissa."""
        return int(self.signed) + self.exponent_bits + self.mantissa_bits

    @property
    def exponent_bias(self) -> int:
        r"""The bias of the exponent field: $1 - e_{\min}$ (the zero/subnormal code sits below the
        smallest normal binade), or $-e_{\min}$ in E8M0, which has no zero code."""
        assert self.emin is not None
        return -self.emin if self.encoding == "e8m0" else 1 - self.emin

    @property
    def has_inf(self) -> bool:
        """Whether the format has infinities."""
        return self.encoding in ("ieee", "p3109_extended")

    @property
    def has_nan(self) -> bool:
        """Whether the format has NaNs."""
        return self.encoding != "none"

    @property
    def has_zero(self) -> bool:
        """Whether the format has a zero (every format but E8M0)."""
        return self.encoding != "e8m0"

    @property
    def has_negative_zero(self) -> bool:
        """Whether zero is signed (IEEE and OCP formats; P3109 has one zero and unsigned formats none)."""
        return self.signed and self.encoding in ENCODINGS

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
        if self.encoding in ("ieee", "none"):
            return math.ldexp(2.0 - math.ldexp(1.0, 1 - self.p), self.emax)
        assert self.emin is not None
        if self.encoding == "e8m0":
            return math.ldexp(1.0, self.emax)
        return _fixed_max(self.encoding, self.p, self.emin, self.signed)

    @property
    def min(self) -> float:
        """Smallest (most negative) finite value: ``-max``, or in an unsigned format its smallest value
        (0, or the smallest power of two in E8M0)."""
        if self.signed:
            return -self.max
        return 0.0 if self.has_zero else self.smallest_normal

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
        if self.max < self.smallest_normal:  # all-subnormal: max in units of the subnormal step
            positives = int(math.ldexp(self.max, self.p - 1 - self.emin))
        else:
            top = int(math.ldexp(self.max, self.p - 1 - self.emax))  # max's integral significand
            positives = (self.emax - self.emin) * per_binade + top - per_binade + 1
            positives += per_binade - 1 if self.subnormals else 0
        return (2 if self.signed else 1) * positives + int(self.has_zero)

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
        zero = [0.0] if self.has_zero else []
        negative = -positive[::-1] if self.signed else positive[:0]
        out = np.concatenate([negative, zero, positive])
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
e8m0 = FloatFormat(p=1, emax=127, emin=-127, subnormals=False, encoding="e8m0", signed=False, name="e8m0")

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
    "e8m0": e8m0,
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
    "float8_e8m0fnu": "e8m0",
    "ocp_e8m0": "e8m0",
}
_MANTISSA_NAME = re.compile(r"fp32_m([0-9]+)", re.ASCII)  # ASCII digits: \d would take any script's
# gfloat's names (p3109_k8p3se) and the standard's (binary8p3se): width, precision, signedness, domain
_P3109_NAME = re.compile(r"(?:p3109_k|binary)([0-9]+)p([0-9]+)([su])([ef])", re.ASCII)
_DOMAINS: tuple[str, ...] = ("extended", "finite")


def p3109(k: int, p: int, signed: bool = True, domain: str = "extended") -> FloatFormat:
    r"""The IEEE P3109 format of ``k`` bits and precision ``p``, signed or not, extended or finite domain.

    A P3109 format has one zero (code 0, no negative zero), one NaN (code $2^{k-1}$, the negative-zero
    code, in a signed format; the all-ones code $2^k - 1$ in an unsigned one), subnormals, and in the
    extended domain infinities at the highest code of each sign ($2^{k-1} - 1$ and $2^k - 1$ signed,
    $2^k - 2$ unsigned). The exponent field has $w = k - p$ bits (signed) or $w = k - p + 1$
    (unsigned) and the bias is $2^{w-1}$, so $e_{\min} = 1 - 2^{w-1}$; a signed format with
    ``p == k`` has no exponent field (bias 0): all its values are subnormal,
    $m \cdot 2^{2-k}$. Named ``p3109_k{k}p{p}{s|u}{e|f}`` (gfloat's names; the standard's
    ``binary{k}p{p}{s|u}{e|f}`` is accepted too) by :func:`get_format`.

    Parameters
    ----------
    k : int
        Width in bits, ``2 <= k <= 16``.
    p : int
        Precision, including the implicit bit: ``1 <= p <= k``.
    signed : bool, default True
        Signed (sign bit, values of both signs) or unsigned (non-negative values only).
    domain : {"extended", "finite"}, default "extended"
        With infinities (``"extended"``) or without (``"finite"``).

    Returns
    -------
    FloatFormat
        Encoding ``"p3109_extended"`` or ``"p3109_finite"``. Overflow gives infinity (extended), NaN
        (finite) or, with ``.replace(saturate=True)``, the largest finite value.

    Raises
    ------
    FormatError
        ``k`` or ``p`` out of range, a format without a positive finite value (``k = 2`` signed,
        extended), ``signed`` not a bool or an unknown ``domain``.

    References
    ----------
    IEEE SA P3109 Working Group, *Interim Report on Binary Floating-point Formats for Machine Learning*,
    v3 (2025).

    Examples
    --------
    >>> from lampref import p3109
    >>> f = p3109(8, 3)
    >>> f.bits, f.emin, f.emax, f.max, f.smallest_subnormal == 2.0**-17
    (8, -15, 15, 49152.0, True)
    >>> p3109(8, 4, signed=False, domain="finite").max
    57344.0
    >>> p3109(8, 8, signed=True, domain="finite").values()[-3:]  # all-subnormal: no exponent field
    array([1.953125, 1.96875 , 1.984375], dtype=float32)
    """
    k = _check_int("k", k)
    p = _check_int("p", p)
    signed = check_bool(signed, "signed", FormatError)
    check_choice(domain, "domain", _DOMAINS, FormatError)
    if not 2 <= k <= 16:
        raise FormatError(f"k={k} is out of range; P3109 formats here have 2 <= k <= 16 bits")
    if not 1 <= p <= k:
        raise FormatError(f"p={p} is out of range; a P3109 format of k={k} bits has 1 <= p <= {k}")
    w = k - p + (0 if signed else 1)
    emin = 1 - (1 << (w - 1)) if w else 1
    encoding = "p3109_extended" if domain == "extended" else "p3109_finite"
    xmax = _fixed_max(encoding, p, emin, signed)
    if xmax <= 0:
        raise FormatError(f"p3109({k}, {p}, signed={signed}, domain={domain!r}) has no positive finite value")
    emax = max(math.frexp(xmax)[1] - 1, emin)
    name = f"p3109_k{k}p{p}{'s' if signed else 'u'}{domain[0]}"
    return FloatFormat(p=p, emax=emax, emin=emin, encoding=encoding, signed=signed, name=name)  # type: ignore[arg-type]


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
    """The preset names :func:`get_format` accepts (aliases, ``fp32_m<m>`` and the P3109 names
    ``p3109_k<k>p<p><s|u><e|f>`` are accepted too)."""
    return list(_PRESETS)


def get_format(name: str | FloatFormat) -> FloatFormat:
    """Look a format up by name; a :class:`FloatFormat` is returned unchanged.

    Parameters
    ----------
    name : str or FloatFormat
        A preset (``fp64, fp32, tf32, bf16, fp16, e4m3, e5m2, e3m2, e2m3, e2m1, e8m0``), an alias
        (``binary16``, ``bfloat16``, ``float8_e4m3fn``, ``float8_e8m0fnu``, ...; case-insensitive),
        ``fp32_m<m>`` for :func:`fp32_mantissa`, or a P3109 format ``p3109_k<k>p<p><s|u><e|f>``
        (signed/unsigned, extended/finite domain; the standard's ``binary<k>p<p><s|u><e|f>`` too) for
        :func:`p3109`.

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
    >>> get_format("p3109_k8p4uf")
    FloatFormat(p3109_k8p4uf: p=4, emax=15, emin=-15, encoding='p3109_finite', signed=False)
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
    match = _P3109_NAME.fullmatch(key)
    if match:
        k, p, s, d = match.groups()
        return p3109(int(k), int(p), signed=s == "s", domain="extended" if d == "e" else "finite")
    raise FormatError(
        expected_one_of("format", name, [*_PRESETS, *_ALIASES, "fp32_m<0..23>", "p3109_k<k>p<p><s|u><e|f>"])
    )


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
