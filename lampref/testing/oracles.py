r"""Exact oracles: rounding by MPFR (through gmpy2) and by rational arithmetic.

These are deliberately slow, scalar and obviously correct; they share no code with
:func:`lampref.round_to`. Both follow the semantics documented in :mod:`lampref.rounding`:

* the candidates are computed with MPFR at precision ``p`` and the format's exponent range, with an
  unbounded largest exponent so that overflow can be decided afterwards by the IEEE rule;
* ``nearest_away`` and ``odd``, which MPFR lacks, are decided from MPFR's two directed neighbours and exact
  rational comparisons.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import ModeError, expected_one_of
from ..formats import FloatFormat, get_format

__all__ = [
    "exact_value",
    "mpfr_neighbours",
    "mpfr_round",
    "mpfr_round_fraction",
    "reference_matmul",
    "reference_round",
]

_UNBOUNDED_EMAX = 1 << 16
_DETERMINISTIC = ("nearest_even", "nearest_away", "toward_zero", "toward_pos", "toward_neg", "odd")


def _gmpy2() -> Any:
    try:
        import gmpy2
    except ImportError as err:  # pragma: no cover - exercised only without the test extra
        raise ImportError("the MPFR oracle needs gmpy2: pip install 'lampref[test]'") from err
    return gmpy2


def exact_value(x: float) -> Fraction:
    """The exact rational value of a finite float."""
    return Fraction(float(x))


def _context(fmt: FloatFormat, rounding: Any) -> Any:
    gmpy2 = _gmpy2()
    assert fmt.emin is not None
    # MPFR writes x = 0.1b...b * 2**E, so E = e + 1 for x = 1.b...b * 2**e.
    emin = fmt.emin - fmt.p + 2 if fmt.subnormals else fmt.emin + 1
    return gmpy2.context(
        precision=fmt.p,
        emin=emin,
        emax=_UNBOUNDED_EMAX,
        subnormalize=fmt.subnormals,
        round=rounding,
    )


def mpfr_neighbours(x: float, fmt: FloatFormat | str) -> tuple[Fraction, Fraction]:
    """The largest value <= x and the smallest value >= x among p-bit numbers with the format's lower
    exponent range and an unbounded upper one (finite nonzero x), as exact fractions."""
    gmpy2 = _gmpy2()
    fmt = get_format(fmt)
    v = gmpy2.mpfr(float(x))  # exact: 53 bits
    lo = _context(fmt, gmpy2.RoundDown).plus(v)
    hi = _context(fmt, gmpy2.RoundUp).plus(v)
    return Fraction(*lo.as_integer_ratio()), Fraction(*hi.as_integer_ratio())


def _last_bit(v: Fraction, fmt: FloatFormat) -> int:
    """The last significand bit of a nonzero p-bit value in the format's lower exponent range (its upper
    range unbounded: the neighbour above the largest value, 2**(emax + 1), is one)."""
    assert fmt.emin is not None
    a = abs(v)
    e = a.numerator.bit_length() - a.denominator.bit_length()  # floor(log2 a) is e or e - 1
    if Fraction(2) ** e > a:
        e -= 1
    m = a / Fraction(2) ** (max(e, fmt.emin) - fmt.p + 1)
    assert m.denominator == 1, "not a value of the format"
    return int(m) & 1


def mpfr_round(x: ArrayLike, fmt: FloatFormat | str, mode: str = "nearest_even") -> Any:
    """Round with MPFR: the oracle for every deterministic mode of :func:`lampref.round_to`.

    Parameters
    ----------
    x : array_like of float
        Values (exactly representable in float64).
    fmt : FloatFormat or str
        Target format.
    mode : str
        One of the deterministic modes of :func:`lampref.round_to`.

    Returns
    -------
    numpy.ndarray or float
        The rounded values as float64 (a Python float for a scalar input).

    Examples
    --------
    >>> from lampref.testing import mpfr_round
    >>> mpfr_round(1/3, "bf16")
    0.333984375
    >>> mpfr_round([2.5, -2.5], "fp16", "nearest_away").tolist()
    [2.5, -2.5]
    """
    fmt = get_format(fmt)
    if mode not in _DETERMINISTIC:
        raise ModeError(expected_one_of("mode", mode, _DETERMINISTIC))
    arr = np.asarray(x, dtype=np.float64)
    out = np.array([_mpfr_round_scalar(float(v), fmt, mode) for v in arr.reshape(-1)], dtype=np.float64)
    if arr.ndim == 0:
        return float(out[0])
    return out.reshape(arr.shape)


def _mpfr_round_scalar(x: float, fmt: FloatFormat, mode: str) -> float:
    if math.isnan(x) or math.isinf(x) or x == 0.0:
        return _special(x, fmt)
    return mpfr_round_fraction(Fraction(x), fmt, mode)


def _special(x: float, fmt: FloatFormat) -> float:
    """NaN, infinities and zeros."""
    if math.isinf(x):
        if fmt.saturate:
            return math.copysign(fmt.max, x)
        return x if fmt.has_inf else math.nan
    return x  # NaN stays NaN, zeros keep their sign


def _apply_overflow(r: Fraction, x: float, fmt: FloatFormat, mode: str) -> float:
    if abs(r) <= Fraction(fmt.max):
        out = float(r)
        return math.copysign(out, x) if out == 0 else out
    truncating = (
        mode in ("toward_zero", "odd") or (mode == "toward_pos" and x < 0) or (mode == "toward_neg" and x > 0)
    )
    if truncating or fmt.saturate:
        return math.copysign(fmt.max, x)
    return math.copysign(math.inf, x) if fmt.has_inf else math.nan


def reference_round(x: float, fmt: FloatFormat | str, mode: str = "nearest_even") -> float:
    """Round one float with rational arithmetic only (no MPFR): a second, independent oracle.

    Takes the quantum of ``x`` in the format from the definition
    $q = \\max(\\lfloor\\log_2|x|\\rfloor, e_{\\min}) - p + 1$ ($e_{\\min}$ below the normal range
    without subnormals) and picks one of the two neighbouring multiples of $2^q$.

    >>> from lampref.testing import reference_round
    >>> reference_round(1/3, "bf16")
    0.333984375
    """
    fmt = get_format(fmt)
    assert fmt.emin is not None
    if mode not in _DETERMINISTIC:
        raise ModeError(expected_one_of("mode", mode, _DETERMINISTIC))
    if math.isnan(x) or math.isinf(x) or x == 0.0:
        return _special(x, fmt)
    a = abs(Fraction(x))
    e = math.frexp(abs(x))[1] - 1  # exact floor(log2|x|) for a float
    q = fmt.emin if (e < fmt.emin and not fmt.subnormals) else max(e, fmt.emin) - fmt.p + 1
    step = Fraction(2) ** q
    n = a // step
    lo, hi = n * step, (n + 1) * step
    rem, half = a - lo, step / 2
    lo_odd = lo != 0 and _last_bit(lo, fmt) == 1
    if rem == 0:
        r = lo
    elif mode == "nearest_even":
        # on a tie, the even neighbour (zero is even); with p = 1 both are odd and the larger is taken
        r = lo if rem < half or (rem == half and not lo_odd) else hi
    elif mode == "nearest_away":
        r = lo if rem < half else hi
    elif mode == "toward_zero":
        r = lo
    elif mode == "toward_pos":
        r = hi if x > 0 else lo
    elif mode == "toward_neg":
        r = lo if x > 0 else hi
    else:  # odd
        r = lo if lo_odd else hi
    return _apply_overflow(r if x > 0 else -r, x, fmt, mode)


# ------------------------------------------------------------------ exact accumulation oracle
def mpfr_round_fraction(
    v: Fraction, fmt: FloatFormat | str, mode: str = "nearest_even", *, negative_zero: bool = False
) -> float:
    """Round an exact rational with MPFR (deterministic modes); ``negative_zero`` gives the sign of an
    exact zero."""
    gmpy2 = _gmpy2()
    fmt = get_format(fmt)
    if mode not in _DETERMINISTIC:
        raise ModeError(expected_one_of("mode", mode, _DETERMINISTIC))
    if v == 0:
        return -0.0 if negative_zero else 0.0
    q = gmpy2.mpq(v.numerator, v.denominator)
    sign = 1.0 if v > 0 else -1.0
    if mode in ("nearest_even", "toward_zero", "toward_pos", "toward_neg"):
        rounding = {
            "nearest_even": gmpy2.RoundToNearest,
            "toward_zero": gmpy2.RoundToZero,
            "toward_pos": gmpy2.RoundUp,
            "toward_neg": gmpy2.RoundDown,
        }[mode]
        r = Fraction(*gmpy2.mpfr(q, 0, context=_context(fmt, rounding)).as_integer_ratio())
    else:
        lo = Fraction(*gmpy2.mpfr(q, 0, context=_context(fmt, gmpy2.RoundDown)).as_integer_ratio())
        hi = Fraction(*gmpy2.mpfr(q, 0, context=_context(fmt, gmpy2.RoundUp)).as_integer_ratio())
        if lo == hi:
            r = lo
        elif mode == "nearest_away":
            below, above = v - lo, hi - v
            r = lo if below < above else hi if above < below else (hi if v > 0 else lo)
        else:
            trunc, away = (lo, hi) if v > 0 else (hi, lo)
            r = trunc if trunc != 0 and _last_bit(trunc, fmt) == 1 else away
    return _apply_overflow(r, sign, fmt, mode)


def _ref_sum(values: list[float], fmt: FloatFormat, mode: str) -> float:
    """Round the exact sum of float values (IEEE rules for infinities, NaN and the sign of zero)."""
    if any(math.isnan(v) for v in values):
        return math.nan
    infs = {math.copysign(1.0, v) for v in values if math.isinf(v)}
    if len(infs) == 2:
        return math.nan
    if infs:
        return _special(infs.pop() * math.inf, fmt)
    exact = sum((Fraction(v) for v in values), Fraction(0))
    if exact == 0:
        all_neg_zero = all(v == 0 and math.copysign(1.0, v) < 0 for v in values)
        all_pos_zero = all(v == 0 and math.copysign(1.0, v) > 0 for v in values)
        negative = all_neg_zero or (mode == "toward_neg" and not all_pos_zero)
        return mpfr_round_fraction(exact, fmt, mode, negative_zero=negative)
    return mpfr_round_fraction(exact, fmt, mode)


def reference_matmul(a: ArrayLike, b: ArrayLike, acc: Any) -> Any:
    """Slow, obviously correct oracle for :func:`lampref.matmul` (deterministic modes, 2-D, tiny shapes).

    Every product and sum is an exact ``fractions.Fraction``; every rounding is MPFR's (through
    :func:`mpfr_round_fraction`), step by step, in the order the :class:`~lampref.Accumulator` states.

    >>> import numpy as np, lampref as L
    >>> from lampref.testing import reference_matmul
    >>> a = np.float32([[1, 2**-11, 2**-11]]); b = np.ones((3, 1), np.float32)
    >>> reference_matmul(a, b, L.Accumulator("fp16")).tolist()
    [[1.0]]
    """
    A = np.asarray(a, dtype=np.float64)
    B = np.asarray(b, dtype=np.float64)
    M, N = A.shape[0], B.shape[1]
    out = np.zeros((M, N), dtype=np.float64)
    for i in range(M):
        for j in range(N):
            out[i, j] = _reference_element(A[i, :], B[:, j], acc)
    return out


def _reference_element(x: NDArray[np.float64], y: NDArray[np.float64], acc: Any) -> float:
    fmt, mode = acc.fmt, acc.mode
    K = len(x)
    if K == 0:
        return 0.0

    def product(k: int) -> float | Fraction:
        xv, yv = float(x[k]), float(y[k])
        if not (math.isfinite(xv) and math.isfinite(yv)):
            return xv * yv  # IEEE: inf * 0 = NaN, inf * finite = inf
        p = Fraction(xv) * Fraction(yv)
        if p == 0:
            return math.copysign(0.0, xv) * math.copysign(1.0, yv)
        if isinstance(acc.products, FloatFormat):
            return mpfr_round_fraction(p, acc.products, acc.products_mode)
        return p

    def rnd(terms: list[float | Fraction], f: FloatFormat, m: str) -> float:
        # exact sum of terms that are floats or exact fractions (products)
        fl: list[float] = []
        frac = Fraction(0)
        has_frac = False
        for t in terms:
            if isinstance(t, Fraction):
                frac += t
                has_frac = True
            else:
                fl.append(t)
        if has_frac:
            if any(not math.isfinite(v) for v in fl):
                return _ref_sum(fl, f, m)
            total = frac + sum((Fraction(v) for v in fl), Fraction(0))
            if total == 0:
                return mpfr_round_fraction(total, f, m, negative_zero=(m == "toward_neg"))
            return mpfr_round_fraction(total, f, m)
        return _ref_sum(fl, f, m)

    if acc.block > 1:
        terms: list[float | Fraction] = []
        for k0 in range(0, K, acc.block):
            block = [product(k) for k in range(k0, min(k0 + acc.block, K))]
            terms.append(rnd(block, acc.block_fmt, acc.block_mode))
    else:
        terms = [product(k) for k in range(K)]

    if acc.order == "pairwise":

        def tree(lo: int, hi: int, top: bool) -> float | Fraction:
            if hi - lo == 1:
                return rnd([terms[lo]], fmt, mode) if top else terms[lo]
            mid = lo + (hi - lo) // 2
            return rnd([tree(lo, mid, False), tree(mid, hi, False)], fmt, mode)

        return float(tree(0, len(terms), True))
    order = range(len(terms) - 1, -1, -1) if acc.order == "reverse" else range(len(terms))
    s: float | None = None
    for k in order:
        s = rnd([terms[k]], fmt, mode) if s is None else rnd([s, terms[k]], fmt, mode)
    assert s is not None
    return s
