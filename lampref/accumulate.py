r"""Dot products and matrix products that round the accumulator after every step, exactly.

An :class:`Accumulator` states how a sum of products is computed: the accumulator's format and rounding
mode, the order of the terms, whether products are exact (as in a fused multiply-add) or rounded first,
whether runs of ``block`` products are summed exactly and rounded once (the model of a hardware dot-product
unit), and whether the arithmetic is staged through float32 as in the LAMP authors' GPU kernel.

Semantics (``staging="exact"``)
-------------------------------
For each output element, with terms $t_k$ (the products $a_k b_k$, or the block sums) taken in
the stated order:

$$ s_1 = \mathrm{fl}(t_1), \qquad s_k = \mathrm{fl}(s_{k-1} + t_k), \quad k = 2, \dots, n, $$

where $\mathrm{fl}$ is the correct rounding of the **exact** real value into ``fmt`` with ``mode``.
With ``order="pairwise"`` the terms are summed as a balanced tree (the first $\lfloor n/2 \rfloor$
terms, then the rest), rounding at every addition. With ``block=b`` each run of ``b`` products is summed
exactly and rounded once to ``block_fmt`` (with ``block_mode``) before it is added. With
``products=F`` (a format) each product is first rounded to ``F`` (with ``products_mode``). An empty sum
(K = 0) is +0.

Semantics (``staging="fp32"``, the authors' kernel)
---------------------------------------------------
The accumulator starts at +0 and each step is carried out in float32 arithmetic and then rounded to
``fmt``: $s \leftarrow \mathrm{fl}(\mathrm{fl}_{32}(s + \mathrm{fl}_{32}(a_k b_k)))$ (with ``fma=True``:
$\mathrm{fl}(\mathrm{fl}_{32}(s + a_k b_k))$). This is a double rounding, by design.

How exactness is achieved
-------------------------
Inputs are float32 values, so every product is exact in float64. A partial sum and a term are added with
Knuth's TwoSum, which gives the float64 sum $h$ and its exact error $l$; $h + l$ is
then rounded to odd at 53 bits ($h$, or its odd neighbour towards $l$), and rounding to odd at
$p + 2$ or more bits followed by the final rounding to $p \le 51$ bits is a correct rounding
(Boldo and Melquiond, 2008). Block sums are computed by a certified fast path: a float64 BLAS product and a
rigorous bound on its error decide the rounding of almost every element; the few elements the bound cannot
decide (and every element under stochastic rounding) are summed exactly with error-free transformations,
falling back to rational arithmetic in the rare case those are not enough.

Formats may reach float64's exponent range (``FloatFormat(p=24, emax=1023)``), and with ``products=fmt`` the
operands may be any float64 values, so a sum or a product can leave float64's range, where these
transformations are not exact. Such elements are detected (a non-finite error term from finite operands, a
product beyond the range where Dekker's product is exact) and recomputed with rational arithmetic; a value
at or beyond $2^{1024}$ is handed to the final rounding as an overflow of the same kind (the largest float64
for the truncating modes, infinity otherwise), so the result is always the rounding of the exact value.
With ``p = 53`` (round to nearest even only) the float64 sum is the rounding itself, except below the normal
range of a narrower format, where it is recomputed too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol, TypeAlias, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._backend import compiled_matmul
from ._validate import check_bool, check_choice, check_rng, is_int
from .errors import FormatError, InputValueError, ModeError, ShapeError
from .formats import FloatFormat, fp32, fp32_mantissa, get_format
from .rounding import (
    STOCHASTIC_MODES,
    RngLike,
    Rounder,
    as_exact_array,
    as_generator,
    check_mode,
)

__all__ = ["ORDERS", "STAGINGS", "Accumulator", "MatmulModel", "ProductModel", "dot", "linear", "matmul"]

ORDERS: tuple[str, ...] = ("sequential", "reverse", "pairwise")
STAGINGS: tuple[str, ...] = ("exact", "fp32")

_TILE = 1 << 14  # output elements per tile: the working set of one accumulation stays in cache


def _check_exact_target(fmt: FloatFormat, mode: str, what: str) -> None:
    assert fmt.emin is not None
    if fmt.p <= 51 and fmt.emin - fmt.p + 1 >= -1072:
        return
    if fmt.p == 53 and mode == "nearest_even":
        return
    raise FormatError(
        f"{what}={fmt!r} with mode={mode!r} cannot be emulated exactly through float64; expected p <= 51 "
        "(and emin - p + 1 >= -1072), or p = 53 with mode='nearest_even'"
    )


@dataclass(frozen=True, slots=True)
class Accumulator:
    r"""How a sum of products is accumulated and rounded (see the module notes for the exact model).

    Parameters
    ----------
    fmt : FloatFormat or str
        Format of the accumulator: every partial sum is rounded to it.
    mode : str, default "nearest_even"
        Rounding mode of the accumulator (any mode of :func:`~lampref.round_to`; stochastic modes need
        ``rng=`` at call time).
    block : int, default 1
        1: round after every product. ``b > 1``: each run of ``b`` products is summed exactly, rounded once to
        ``block_fmt``, then added to the accumulator and rounded. This is an idealised dot-product unit
        (exact block sums, correctly rounded), not a GPU tensor core: tensor cores align the products to the
        largest exponent, truncate, and round in a fixed mode, with the accumulator inside the block; for
        those, use the bit-accurate models of :mod:`lampref.hardware`.
    block_fmt : FloatFormat or str, default fp32
        Format of the block sums.
    block_mode : str, default "nearest_even"
        Rounding mode of the block sums.
    order : {"sequential", "reverse", "pairwise"}, default "sequential"
        Order of the terms: left to right, right to left, or a balanced tree rounding at every addition.
    products : "exact" or FloatFormat, default "exact"
        Exact products (as a fused multiply-add), or a format each product is rounded to first.
    products_mode : str, default "nearest_even"
        Rounding mode of the products when they are rounded.
    staging : {"exact", "fp32"}, default "exact"
        ``"exact"``: every rounding is of the exact real value. ``"fp32"``: the authors' kernel, each step in
        float32 arithmetic, then the float32 accumulator rounded to ``fmt``.
    fma : bool, default False
        With ``staging="fp32"`` and ``block=1``: the float32 step is ``fl32(acc + a*b)`` (a fused
        multiply-add) instead of ``fl32(acc + fl32(a*b))``. :meth:`authors` sets it, as the authors' Triton
        kernel fuses.

    Raises
    ------
    FormatError
        A format that is unknown, or that cannot be emulated exactly (the message names ``fmt``,
        ``block_fmt`` or ``products``).
    ModeError
        An unknown mode, order or staging, a block that is not an integer >= 1, an ``fma`` that is not a
        bool, or a combination the model does not have; the message names the parameter.

    Examples
    --------
    >>> from lampref import Accumulator, fp32_mantissa
    >>> Accumulator(fp32_mantissa(10))
    Accumulator(fmt=FloatFormat(fp32_m10: p=11, emax=127, emin=-126))
    >>> Accumulator.authors(4, block=32).staging
    'fp32'
    """

    fmt: FloatFormat
    mode: str = "nearest_even"
    block: int = 1
    block_fmt: FloatFormat = fp32
    block_mode: str = "nearest_even"
    order: str = "sequential"
    products: str | FloatFormat = "exact"
    products_mode: str = "nearest_even"
    staging: str = "exact"
    fma: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "fmt", get_format(self.fmt))
        object.__setattr__(self, "block_fmt", get_format(self.block_fmt))
        check_mode(self.mode)
        check_mode(self.block_mode, "block_mode")
        check_mode(self.products_mode, "products_mode")
        if not is_int(self.block) or self.block < 1:
            raise ModeError(f"block={self.block!r} is not valid; expected an integer >= 1")
        object.__setattr__(self, "block", int(self.block))
        check_choice(self.order, "order", ORDERS)
        check_choice(self.staging, "staging", STAGINGS)
        object.__setattr__(self, "fma", check_bool(self.fma, "fma", ModeError))
        if isinstance(self.products, str) and self.products != "exact":
            try:
                object.__setattr__(self, "products", get_format(self.products))
            except FormatError:
                raise ModeError(
                    f"products={self.products!r} is not valid; expected 'exact' or a FloatFormat"
                ) from None
        elif not isinstance(self.products, (str, FloatFormat)):
            raise ModeError(f"products={self.products!r} is not valid; expected 'exact' or a FloatFormat")
        if self.fma and (self.staging != "fp32" or self.block != 1):
            raise ModeError(
                "fma=True only applies to staging='fp32' with block=1 (the exact path and the block sums "
                "always use exact products)"
            )
        if self.staging == "fp32":
            if not self.fmt.fits_float32:
                raise FormatError(
                    f"staging='fp32' rounds a float32 accumulator; fmt={self.fmt!r} must fit in float32"
                )
            if self.block > 1 and not self.block_fmt.fits_float32:
                raise FormatError(
                    f"staging='fp32' adds the block sums in float32; block_fmt={self.block_fmt!r} must fit "
                    "in float32"
                )
            if self.products != "exact" or self.order != "sequential":
                raise ModeError(
                    "staging='fp32' models the authors' kernel: products='exact', order='sequential'"
                )
        else:
            _check_exact_target(self.fmt, self.mode, "fmt")
        if self.block > 1:
            _check_exact_target(self.block_fmt, self.block_mode, "block_fmt")
        if isinstance(self.products, FloatFormat):
            _check_exact_target(self.products, self.products_mode, "products")

    def __repr__(self) -> str:
        defaults = Accumulator.__dataclass_fields__
        parts = [f"fmt={self.fmt!r}"]
        for name in (
            "mode",
            "block",
            "block_fmt",
            "block_mode",
            "order",
            "products",
            "products_mode",
            "staging",
            "fma",
        ):
            value = getattr(self, name)
            if value != defaults[name].default:
                parts.append(f"{name}={value!r}")
        return f"Accumulator({', '.join(parts)})"

    @classmethod
    def authors(cls, m: int, block: int = 1, *, fma: bool | None = None) -> Accumulator:
        """The LAMP authors' kernel for ``m`` mantissa bits: float32 staging, nearest-even rounding of the
        float32 accumulator to ``fp32_mantissa(m)`` after every product (``block=1``, their "strict") or
        after every 32-wide block (``block=32``, their "efficient"). For ``m = 0`` their bit trick's tie
        rule is reproduced: a tie goes to the neighbour whose float32 exponent field is even (3 -> 2), where
        correct rounding to 1 significand bit takes the larger (3 -> 4).

        ``fma`` (``block=1`` only) defaults to True: their strict step ``acc += a * b`` is compiled by
        Triton, which contracts a multiply and an add into one fused multiply-add unless the kernel is
        compiled with ``enable_fp_fusion=False`` (see the accumulation page of the documentation), so the
        float32 step is ``fl32(acc + a*b)`` with the product exact. ``fma=False`` gives the unfused
        ``fl32(acc + fl32(a*b))``.

        >>> from lampref import Accumulator
        >>> Accumulator.authors(10).fmt.p, Accumulator.authors(10).fma, Accumulator.authors(10, 32).fma
        (11, True, False)
        """
        if fma is None:
            fma = is_int(block) and block == 1
        return cls(fp32_mantissa(m), block=block, staging="fp32", fma=fma)


# ---------------------------------------------------------------------------------- helpers
@runtime_checkable
class MatmulModel(Protocol):
    """An accumulation model that computes a whole matrix product itself, accepted wherever an
    :class:`Accumulator` is (:func:`matmul`, :func:`linear`, a precision plan's GEMM sites).

    :class:`lampref.hardware.TensorCoreModel` is one. ``matmul(a, b, c, rng=...)`` returns ``a @ b + c``
    (``c`` None: no addend) as float32 values of ``fmt``, with NumPy ``matmul`` broadcasting; ``fmt`` and
    ``mode`` say how a site stores a value derived from a result (the scaled attention scores).
    """

    @property
    def fmt(self) -> FloatFormat: ...

    @property
    def mode(self) -> str: ...

    def matmul(
        self, a: ArrayLike, b: ArrayLike, c: ArrayLike | None = None, *, rng: RngLike = None
    ) -> Any: ...


ProductModel: TypeAlias = "Accumulator | MatmulModel"
"""What a product site runs under: an :class:`Accumulator` or a :class:`MatmulModel` (a tensor core)."""


def _two_sum(
    a: NDArray[np.float64], b: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Knuth's TwoSum: h = fl(a + b) and the exact error err = a + b - h (finite inputs, no overflow)."""
    h = a + b
    bp = h - a
    err = (a - (h - bp)) + (b - bp)
    return h, err


def _split(a: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Veltkamp's splitting: a = hi + lo with hi and lo of at most 26 significant bits each."""
    c = a * 134217729.0  # 2**27 + 1
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(
    a: NDArray[np.float64], b: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Dekker's TwoProduct: p = fl(a * b) and the exact error e = a * b - p (no overflow or underflow)."""
    p = a * b
    a1, a2 = _split(a)
    b1, b2 = _split(b)
    e = ((a1 * b1 - p) + a1 * b2 + a2 * b1) + a2 * b2
    return p, e


def _odd53(h: NDArray[np.float64], err: NDArray[np.float64]) -> NDArray[np.float64]:
    """Round h + err (h = fl(h + err), err its exact error) to odd at 53 bits.

    If err == 0 the sum is h. Otherwise it lies strictly between h and h's neighbour towards err, and the
    result is whichever of the two has an odd last bit. On the bit pattern (sign-magnitude, so +-1 moves
    the magnitude): ``(bits(h) - [err != 0 and err points to smaller |h|]) | [err != 0]``. A NaN err
    (h infinite) counts as zero.
    """
    hb = h.view(np.uint64)
    with np.errstate(invalid="ignore"):
        nz = (np.abs(err) > 0).view(np.uint8).astype(np.uint64)
    down = (hb ^ err.view(np.uint64)) >> np.uint64(63)
    down &= nz
    out = hb - down
    out |= nz
    return out.view(np.float64)


_F64_MAX = float(np.finfo(np.float64).max)  # (2 - 2**-52) * 2**1023, an odd significand
_F64_OVERFLOW = Fraction(2) ** 1024


def _fraction_odd53(v: Fraction) -> float:
    """Round a rational of magnitude below 2**1024 to odd at 53 bits (a float)."""
    if abs(v) > _F64_MAX:  # between the largest float64 and 2**1024: truncation gives it, and it is odd
        return -_F64_MAX if v < 0 else _F64_MAX
    f = float(v)  # correctly rounded to nearest
    if Fraction(f) == v:
        return f
    if int.from_bytes(np.float64(f).tobytes(), "little") & 1:
        return f
    return float(np.nextafter(f, math.inf if Fraction(f) < v else -math.inf))


def _truncating(mode: str, negative: bool) -> bool:
    """Whether an overflow in ``mode`` gives the largest finite value (IEEE 754, clause 7.4)."""
    return mode in ("toward_zero", "odd") or mode == ("toward_pos" if negative else "toward_neg")


def _proxy(v: Fraction, fmt: FloatFormat, mode: str) -> float:
    """A float64 value whose rounding to ``fmt`` with ``mode`` is the rounding of the exact rational ``v``.

    For the elements whose exact value left float64's range (or, with p = 53, lies below ``fmt``'s normal
    range). Below 2**1024 in magnitude: ``v`` rounded to odd at 53 bits, which the final rounding to
    p <= 51 bits turns into the correct rounding; at or beyond 2**1024 (above every format's largest value):
    the largest float64, which truncating modes round to ``fmt.max``, or an infinity, which every other mode
    rounds as it rounds an overflow (to infinity, to NaN without infinity, to ``fmt.max`` when saturating).
    With p = 53 (round to nearest even) the value is rounded here, exactly, into ``fmt``. For the stochastic
    modes it is ``v`` rounded to the nearest float64, so that the probabilities stay those of ``v`` to
    float64's resolution (a value far below ``fmt``'s smallest step is not pulled up to float64's).
    """
    negative = v < 0
    if abs(v) >= _F64_OVERFLOW:
        big = _F64_MAX if _truncating(mode, negative) and fmt.p <= 51 else math.inf
        return -big if negative else big
    if mode in STOCHASTIC_MODES:  # the nearest float64 keeps the probabilities to float64's resolution
        return (-_F64_MAX if negative else _F64_MAX) if abs(v) > _F64_MAX else float(v)
    if fmt.p <= 51:
        return _fraction_odd53(v)
    assert fmt.emin is not None  # p = 53, nearest even
    if abs(v) >= fmt.smallest_normal or (fmt.emin == -1022 and fmt.subnormals):
        try:
            return float(v)  # correctly rounded, ties to even
        except OverflowError:
            return -math.inf if negative else math.inf
    if not fmt.subnormals:
        return _fraction_odd53(v)  # keeps the comparison with half the smallest normal
    q = fmt.emin - 52  # the subnormal step of fmt
    n = round(v / Fraction(2) ** q)  # to nearest, ties to even
    return math.copysign(math.ldexp(float(n), q), -1.0 if negative else 1.0)


def _rounding_input(
    h: NDArray[np.float64], err: NDArray[np.float64], fmt: FloatFormat
) -> tuple[NDArray[np.float64], NDArray[np.bool_] | None]:
    """The float64 input of the rounding to ``fmt`` for the exact value ``h + err`` (``h = fl(h + err)``).

    For p <= 51: ``h + err`` rounded to odd at 53 bits. For p = 53 (round to nearest even): ``h`` itself,
    which is the rounding into ``fmt`` except below ``fmt``'s normal range when that range is narrower
    than float64's (there it would be a double rounding): those elements are returned flagged, for
    :func:`_recompute`. A NaN ``err`` (``h`` infinite) counts as zero.
    """
    if fmt.p <= 51:
        return _odd53(h, err), None
    if fmt.emin == -1022 and fmt.subnormals:
        return h, None
    with np.errstate(invalid="ignore"):
        return h, (err != 0) & (np.abs(h) <= fmt.smallest_normal)


def _recompute(
    out: NDArray[np.float64], bad: NDArray[np.bool_], exact: Any, fmt: FloatFormat, mode: str
) -> NDArray[np.float64]:
    """Replace ``out`` at ``bad`` by the proxy (:func:`_proxy`) of ``exact(index)``, a rational."""
    for index in zip(*np.nonzero(bad), strict=True):
        out[index] = _proxy(exact(index), fmt, mode)
    return out


class _Context:
    """Per-call state: the roundings of the accumulation, and the random generator."""

    def __init__(self, acc: Accumulator, gen: np.random.Generator | None) -> None:
        self.acc = acc
        self.gen = gen
        self.round_acc = Rounder(acc.fmt, acc.mode)
        self.round_block = Rounder(acc.block_fmt, acc.block_mode) if acc.block > 1 else None
        self.round_prod = (
            Rounder(acc.products, acc.products_mode) if isinstance(acc.products, FloatFormat) else None
        )
        self.exact_products = True  # every product of the operands is exact in float64

    def add(self, s: NDArray[np.float64], t: NDArray[np.float64]) -> NDArray[np.float64]:
        """fl(s + t) rounded into the accumulator format, exactly.

        TwoSum is exact unless float64 overflows; then (finite s and t, a NaN error term) the exact sum is
        formed with rationals for those elements only, and so is every element :func:`_rounding_input`
        flags.
        """
        h, err = _two_sum(s, t)
        if self.acc.mode == "toward_neg":
            h = _negative_zero_sums(h, s, t)
        x, bad = _rounding_input(h, err, self.acc.fmt)
        if not np.isfinite(err).all():
            over = ~np.isfinite(err) & np.isfinite(s) & np.isfinite(t)
            bad = over if bad is None else bad | over
        if bad is not None and bad.any():
            x = _recompute(
                x, bad, lambda i: Fraction(float(s[i])) + Fraction(float(t[i])), self.acc.fmt, self.acc.mode
            )
        return self.round_acc(x, self.gen)


def _negative_zero_sums(h: NDArray[np.float64], *terms: NDArray[np.float64]) -> NDArray[np.float64]:
    """IEEE 754 (6.3): an exact zero sum is -0 when rounding toward -inf, unless every term is +0."""
    all_pos_zero = np.ones(h.shape, dtype=bool)
    for t in terms:
        all_pos_zero &= (t == 0) & ~np.signbit(t)
    return np.where((h == 0) & ~all_pos_zero, -0.0, h)


# ------------------------------------------------------------------------------- the kernels
def _terms_order(n: int, order: str) -> list[int]:
    return list(range(n - 1, -1, -1)) if order == "reverse" else list(range(n))


def _product(ctx: _Context, a_col: NDArray[np.float64], b_row: NDArray[np.float64]) -> NDArray[np.float64]:
    """The products ``a_col[..., i] * b_row[..., j]``: ``[..., M], [..., N] -> [..., M, N]``."""
    if ctx.exact_products:
        p = a_col[..., :, None] * b_row[..., None, :]  # exact: float32 values
        return p if ctx.round_prod is None else ctx.round_prod(p, ctx.gen)
    assert ctx.round_prod is not None
    aa, bb = np.broadcast_arrays(a_col[..., :, None], b_row[..., None, :])
    return ctx.round_prod(_rounded_product_input(ctx, aa, bb), ctx.gen)


def _rounded_product_input(
    ctx: _Context, a: NDArray[np.float64], b: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The exact product a * b rounded to odd at 53 bits: a correct input for the product rounding.

    Dekker's product is exact when no step overflows or underflows: operands and product between 2**-960
    and 2**990 in magnitude (with margin). The other products of finite nonzero operands, those beyond
    float64's range included, are formed with rationals (:func:`_proxy`).
    """
    fmt = ctx.acc.products
    assert isinstance(fmt, FloatFormat)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        p, e = _two_prod(a, b)
        finite = np.isfinite(p)
        x, flagged = _rounding_input(p, np.where(finite, e, 0.0), fmt)
        out = np.where(finite, x, p)
        ap, aa, ab = np.abs(p), np.abs(a), np.abs(b)
        safe = (ap <= 2.0**990) & (ap >= 2.0**-960) & (aa <= 2.0**990) & (ab <= 2.0**990)
        nonzero = (aa > 0) & (ab > 0) & (aa < np.inf) & (ab < np.inf)  # a zero product keeps its sign
        bad = ~safe & nonzero
        if flagged is not None:
            bad |= flagged & nonzero
    if bad.any():
        out = _recompute(
            out,
            bad,
            lambda i: Fraction(float(a[i])) * Fraction(float(b[i])),
            fmt,
            ctx.acc.products_mode,
        )
    return out


def _fold(ctx: _Context, terms: list[Any], term: Any) -> NDArray[np.float64]:
    """Sum terms (callables producing exact float64 arrays) in the accumulator's order."""
    acc = ctx.acc
    if acc.order == "pairwise":
        return _pairwise(ctx, terms, term, 0, len(terms), top=True)
    s: NDArray[np.float64] | None = None
    for i in _terms_order(len(terms), acc.order):
        t = term(terms[i])
        s = ctx.round_acc(t, ctx.gen) if s is None else ctx.add(s, t)
    assert s is not None
    return s


def _pairwise(
    ctx: _Context, terms: list[Any], term: Any, lo: int, hi: int, *, top: bool
) -> NDArray[np.float64]:
    n = hi - lo
    if n == 1:
        t = term(terms[lo])
        return ctx.round_acc(t, ctx.gen) if top else t
    mid = lo + n // 2
    left = _pairwise(ctx, terms, term, lo, mid, top=False)
    right = _pairwise(ctx, terms, term, mid, hi, top=False)
    return ctx.add(left, right)


def _block_sum(
    ctx: _Context, A: NDArray[np.float64], B: NDArray[np.float64], k0: int, k1: int
) -> NDArray[np.float64]:
    """The exact sum of the products of columns k0..k1-1, rounded once to the block format."""
    assert ctx.round_block is not None
    a, b = np.ascontiguousarray(A[:, k0:k1]), B[k0:k1, :]
    n = k1 - k0
    if ctx.round_prod is None and not ctx.round_block.stochastic:
        # certified fast path: float64 BLAS and a rigorous bound on its error
        t = a @ b
        bound = (np.abs(a) @ np.abs(b)) * (n * 2.0**-53 / (1 - (n + 2) * 2.0**-53) * (1 + 2.0**-50))
        with np.errstate(invalid="ignore", over="ignore"):
            lo = np.nextafter(t - bound, -np.inf)
            hi = np.nextafter(t + bound, np.inf)
            r_lo = ctx.round_block(lo)
            r_hi = ctx.round_block(hi)
            decided = (r_lo.view(np.uint64) == r_hi.view(np.uint64)) & np.isfinite(bound)
        if decided.all():
            return r_lo
        out = r_lo
        rows, cols = np.nonzero(~decided)
        out[rows, cols] = _block_sum_exact(ctx, a[rows, :], b[:, cols].T)
        return out
    ar = np.repeat(a[:, None, :], b.shape[1], axis=1).reshape(-1, n)
    br = np.repeat(b.T[None, :, :], a.shape[0], axis=0).reshape(-1, n)
    return _block_sum_exact(ctx, ar, br).reshape(a.shape[0], b.shape[1])


def _block_sum_exact(ctx: _Context, a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row-wise exact sums of a * b (shape (r, n)) rounded to the block format.

    Products are accumulated into a double-double with TwoSum, the errors of the low part tracked; where
    those errors vanish the double-double is exact and is rounded through round-to-odd, elsewhere the sum
    is recomputed with rational arithmetic.
    """
    assert ctx.round_block is not None
    with np.errstate(invalid="ignore", over="ignore"):
        if ctx.exact_products:
            p = a * b
            if ctx.round_prod is not None:
                p = ctx.round_prod(p, ctx.gen)
        else:
            assert ctx.round_prod is not None
            p = ctx.round_prod(_rounded_product_input(ctx, a, b), ctx.gen)
        hi = p[:, 0].copy()
        lo = np.zeros_like(hi)
        inexact = np.zeros(hi.shape, dtype=bool)  # also where float64 overflowed (a NaN error term)
        for j in range(1, p.shape[1]):
            hi, e = _two_sum(hi, p[:, j])
            lo, e2 = _two_sum(lo, e)
            inexact |= e2 != 0
        h2, l2 = _two_sum(hi, lo)
        hi, lo = np.where(lo == 0, hi, h2), np.where(lo == 0, lo, l2)  # keeps the sign of a zero hi
        inexact |= ~np.isfinite(hi)  # float64 overflowed: with finite products, the exact sum is finite
        finite = np.isfinite(p).all(axis=1)
        hi = np.where(finite, hi, p.sum(axis=1))
        lo = np.where(finite, lo, 0.0)
        if ctx.acc.block_mode == "toward_neg":
            hi = _negative_zero_sums(hi, *p.T)
        block_fmt, block_mode = ctx.acc.block_fmt, ctx.acc.block_mode
        v, flagged = _rounding_input(hi, lo, block_fmt)
        v = v.copy()
        if flagged is not None:
            inexact |= flagged
    bad = np.nonzero(inexact & finite)[0]
    for i in bad:
        exact = sum((Fraction(float(x)) for x in p[i]), Fraction(0))
        if exact == 0:  # nonzero terms cancelling exactly: +0, or -0 rounding toward -inf (IEEE 754, 6.3)
            v[i] = -0.0 if block_mode == "toward_neg" else 0.0
        else:
            v[i] = _proxy(exact, block_fmt, block_mode)
    return ctx.round_block(v, ctx.gen)


def _matmul_exact_2d(A: NDArray[np.float64], B: NDArray[np.float64], ctx: _Context) -> NDArray[np.float64]:
    """``A @ B`` under the accumulator, ``[M, K] @ [K, N]``; with ``block == 1`` also a stack of them,
    ``[G, M, K] @ [G, K, N]`` (every step is elementwise, so each product gets the same bits as alone)."""
    K, N = A.shape[-1], B.shape[-1]
    acc = ctx.acc
    if K == 0:
        return np.zeros((*A.shape[:-1], N))
    if acc.block == 1:
        return _fold(ctx, list(range(K)), lambda k: _product(ctx, A[..., k], B[..., k, :]))
    blocks = [(k0, min(k0 + acc.block, K)) for k0 in range(0, K, acc.block)]
    return _fold(ctx, blocks, lambda kk: _block_sum(ctx, A, B, kk[0], kk[1]))


def _authors_round_m0(s: NDArray[np.float32], gen: Any = None) -> NDArray[np.float32]:
    """The authors' mantissa rounding for m = 0, reproduced with its quirk.

    Their bit trick adds ``2**(22-m) - 1`` plus the bit at position ``23 - m`` and masks; with m = 0 that
    bit is the exponent's last bit, so a tie goes to the neighbour whose *exponent field* is even (3 -> 2,
    6 -> 8), where correct rounding to 1 significand bit takes the larger (3 -> 4). For m >= 1 the trick is
    round-to-nearest-even.
    """
    u = s.view(np.uint32)
    r = u + np.uint32(0x3FFFFF)
    r += (u >> np.uint32(23)) & np.uint32(1)
    r &= np.uint32(0xFF800000)
    special = (u & np.uint32(0x7F800000)) == np.uint32(0x7F800000)
    out: NDArray[np.float32] = np.where(special, u, r).view(np.float32)
    return out


def _fp32_stage_rounder(acc: Accumulator) -> Any:
    """The rounding of the float32 accumulator to fmt in the authors' kernel."""
    if acc.fmt == fp32_mantissa(0) and acc.mode == "nearest_even":
        return _authors_round_m0
    return Rounder(acc.fmt, acc.mode, np.float32)


def _matmul_fp32_2d(A: NDArray[np.float32], B: NDArray[np.float32], ctx: _Context) -> NDArray[np.float32]:
    """The authors' kernel: float32 arithmetic, the float32 accumulator rounded to fmt after each step."""
    M, K = A.shape
    N = B.shape[1]
    acc = ctx.acc
    rnd = _fp32_stage_rounder(acc)
    s = np.zeros((M, N), dtype=np.float32)
    if acc.block == 1:
        A64, B64 = A.astype(np.float64), B.astype(np.float64)
        for k in range(K):
            if acc.fma:
                h, err = _two_sum(s.astype(np.float64), np.multiply.outer(A64[:, k], B64[k, :]))
                s32 = _odd53(h, err).astype(np.float32)  # to odd at 53 bits, then to nearest: correct
            else:
                s32 = s + np.multiply.outer(A[:, k], B[k, :])  # float32 product and sum
            s = rnd(s32, ctx.gen)
        return s
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    for k0 in range(0, K, acc.block):
        k1 = min(k0 + acc.block, K)
        blk = _block_sum(ctx, A64, B64, k0, k1).astype(np.float32)  # exact sum rounded to block_fmt
        s = rnd(s + blk, ctx.gen)
    return s


def _tiles(rows: int, cols: int) -> list[tuple[int, int]]:
    step = max(1, _TILE // max(cols, 1))
    return [(r0, min(r0 + step, rows)) for r0 in range(0, rows, step)]


def _float32_mismatch(x: NDArray[Any]) -> NDArray[np.bool_]:
    with np.errstate(over="ignore", invalid="ignore"):
        same: NDArray[np.bool_] = (x.astype(np.float32).astype(x.dtype) == x) | np.isnan(x)
    return ~same


def _are_float32_values(x: NDArray[Any]) -> bool:
    return x.dtype in (np.float32, np.float16) or not _float32_mismatch(x).any()


def _check_float32_values(x: NDArray[Any], name: str) -> None:
    if x.dtype == np.float32 or x.dtype == np.float16:
        return
    same = ~_float32_mismatch(x)
    if not same.all():
        bad = x[~same].reshape(-1)[0]
        raise InputValueError(
            f"{name} holds values that are not float32 values (e.g. {bad!r}); the exact accumulation "
            "needs float32 operands (round them explicitly with lampref.round_to(x, 'fp32')) or a "
            "products format (Accumulator(..., products=fmt)) when the products cannot be exact"
        )


def matmul(
    a: ArrayLike, b: ArrayLike, acc: Accumulator | MatmulModel | None = None, *, rng: RngLike = None
) -> Any:
    r"""Matrix product with an explicit accumulation model (NumPy ``matmul`` broadcasting).

    Parameters
    ----------
    a, b : array_like
        Operands of shapes ``(..., M, K)`` and ``(..., K, N)`` (1-D operands as in ``numpy.matmul``), holding
        float32 values (any float dtype; values are used as given, never rounded to a storage format).
        With ``products=fmt`` they may hold any float64 values.
    acc : Accumulator or MatmulModel, optional
        The accumulation model. None: plain float32 BLAS (``numpy.matmul`` in float32). A
        :class:`MatmulModel` (a tensor core of :mod:`lampref.hardware`) computes the product itself.
    rng : numpy.random.Generator or int, optional
        Randomness for stochastic modes (required then): a Generator, or a non-negative seed that gives
        the same bits as ``numpy.random.default_rng(seed)``.

    Returns
    -------
    numpy.ndarray
        The product, in the accumulator format's dtype (float32 when it fits in float32).

    Raises
    ------
    ShapeError
        If the inner dimensions differ, the batch dimensions do not broadcast, or an operand is ragged.
    InputValueError
        If the operands are not float32 values and the products are meant to be exact.
    ModeError
        If ``acc`` is not an Accumulator, or ``rng`` is not None, a non-negative integer or a Generator (or
        is None where the accumulation is stochastic).

    Notes
    -----
    Each output element is the sequence of roundings described in :mod:`lampref.accumulate`, in the stated
    order; all output elements are computed together, tile by tile.

    Examples
    --------
    The order matters when every step is rounded: in fp16, adding $2^{-11}$ to 1 is lost each time,
    while adding the two small terms first keeps them.

    >>> import numpy as np, lampref as L
    >>> a = np.float32([[1, 2**-11, 2**-11]]); b = np.ones((3, 1), np.float32)
    >>> L.matmul(a, b, L.Accumulator(L.get_format("fp16")))
    array([[1.]], dtype=float32)
    >>> L.matmul(a, b, L.Accumulator(L.get_format("fp16"), order="reverse"))
    array([[1.0009766]], dtype=float32)
    """
    gen = check_rng(rng)
    a_arr = as_exact_array(a, "a")
    b_arr = as_exact_array(b, "b")
    if a_arr.ndim == 0 or b_arr.ndim == 0:
        raise ShapeError("matmul operands must have at least one dimension (use * for scalars)")
    a2 = a_arr[None, :] if a_arr.ndim == 1 else a_arr
    b2 = b_arr[:, None] if b_arr.ndim == 1 else b_arr
    if a2.shape[-1] != b2.shape[-2]:
        raise ShapeError(
            f"matmul: a has shape {a_arr.shape} and b has shape {b_arr.shape}; expected a.shape[-1] == "
            f"b.shape[-2] (got {a2.shape[-1]} and {b2.shape[-2]})"
        )
    try:
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ShapeError(
            f"matmul: batch dimensions of a {a_arr.shape} and b {b_arr.shape} do not broadcast"
        ) from None
    M, K = a2.shape[-2:]
    N = b2.shape[-1]
    squeeze = ([-2] if a_arr.ndim == 1 else []) + ([-1] if b_arr.ndim == 1 else [])

    if acc is None:
        out = np.matmul(a2.astype(np.float32), b2.astype(np.float32))
        return out.squeeze(axis=tuple(squeeze)) if squeeze else out
    if not isinstance(acc, Accumulator):
        if isinstance(acc, MatmulModel):
            out = np.asarray(acc.matmul(a2, b2, rng=gen))
            return out.squeeze(axis=tuple(squeeze)) if squeeze else out
        raise ModeError(f"acc must be an Accumulator, a MatmulModel or None, got {acc!r}")
    stochastic = (
        acc.mode in STOCHASTIC_MODES
        or (acc.block > 1 and acc.block_mode in STOCHASTIC_MODES)
        or (isinstance(acc.products, FloatFormat) and acc.products_mode in STOCHASTIC_MODES)
    )
    ctx = _Context(acc, as_generator(gen) if stochastic else None)
    fp32_staging = acc.staging == "fp32"
    if acc.products == "exact" or fp32_staging:
        _check_float32_values(a2, "a")
        _check_float32_values(b2, "b")
    else:
        ctx.exact_products = _are_float32_values(a2) and _are_float32_values(b2)
    work_dtype = np.float32 if fp32_staging else np.float64

    if b2.ndim == 2:  # fold a's batch dimensions into its rows (sizes explicit: any of them may be 0)
        A3 = a2.reshape(1, int(np.prod(a2.shape[:-1])), K).astype(work_dtype)
        B3 = b2.reshape(1, K, N).astype(work_dtype)
    else:
        n_batch = int(np.prod(batch))
        A3 = np.broadcast_to(a2, (*batch, M, K)).reshape(n_batch, M, K).astype(work_dtype)
        B3 = np.broadcast_to(b2, (*batch, K, N)).reshape(n_batch, K, N).astype(work_dtype)
    kernel = _matmul_fp32_2d if fp32_staging else _matmul_exact_2d
    # small deterministic products of a stack run a group at a time (same bits: no random stream to order)
    group = (
        _TILE // max(A3.shape[1] * N, 1)
        if kernel is _matmul_exact_2d and acc.block == 1 and ctx.gen is None
        else 0
    )
    compiled = compiled_matmul(acc, ctx.gen is not None) if K > 0 else None
    # the compiled kernels write float32 (every format they cover fits in it)
    res = np.empty((A3.shape[0], A3.shape[1], N), dtype=work_dtype if compiled is None else np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        if compiled is not None:  # the same bits, from a compiled loop (lampref._backend)
            redo = compiled(A3, B3, res)
            for g, i, j in zip(*np.nonzero(redo), strict=True) if redo is not None else ():
                res[g, i, j] = kernel(A3[g, i : i + 1], B3[g, :, j : j + 1], ctx)[0, 0]  # type: ignore[arg-type]
        elif group > 1 and A3.shape[0] > 1:
            for i0 in range(0, A3.shape[0], group):
                res[i0 : i0 + group] = kernel(A3[i0 : i0 + group], B3[i0 : i0 + group], ctx)  # type: ignore[arg-type]
        else:
            for i in range(A3.shape[0]):
                for r0, r1 in _tiles(A3.shape[1], N):
                    res[i, r0:r1] = kernel(A3[i, r0:r1], B3[i], ctx)  # type: ignore[arg-type]
    out = res.reshape((*batch, M, N)).astype(acc.fmt.dtype, copy=False)
    return out.squeeze(axis=tuple(squeeze)) if squeeze else out


def dot(x: ArrayLike, y: ArrayLike, acc: Accumulator | None = None, *, rng: RngLike = None) -> Any:
    """Inner product of two vectors (or batches of vectors along the last axis) with an accumulation model.

    Examples
    --------
    >>> import numpy as np, lampref as L
    >>> float(L.dot(np.float32([1, 2**-11, 2**-11]), np.ones(3, np.float32), L.Accumulator("fp16")))
    1.0
    """
    gen = check_rng(rng)
    x_arr = as_exact_array(x, "x")
    y_arr = as_exact_array(y, "y")
    if x_arr.ndim == 0 or y_arr.ndim == 0:
        raise ShapeError("dot operands must be vectors (or batches of vectors)")
    if x_arr.shape[-1] != y_arr.shape[-1]:
        raise ShapeError(f"dot: x has shape {x_arr.shape} and y has shape {y_arr.shape}; lengths differ")
    out = matmul(x_arr[..., None, :], y_arr[..., :, None], acc, rng=gen)[..., 0, 0]
    return out[()] if np.ndim(out) == 0 else out


def linear(
    x: ArrayLike,
    w: ArrayLike,
    bias: ArrayLike | None = None,
    acc: Accumulator | MatmulModel | None = None,
    *,
    rng: RngLike = None,
) -> Any:
    r"""A linear layer ``x @ w + bias`` (weights in ``(in, out)`` layout) with an accumulation model.

    The bias is added to the accumulated product and the sum is rounded once more, as in the LAMP
    authors' linear layer: exactly (``staging="exact"``), or in float32 arithmetic followed by the rounding
    to the accumulator format (``staging="fp32"``). ``acc=None`` is float32 BLAS plus a float32 bias.

    The bias has shape ``(out,)`` or any shape that broadcasts to the output's (else
    :class:`~lampref.errors.ShapeError`). Under a :class:`MatmulModel` (a tensor core) the bias is the
    product's addend ``c``, as in a GEMM with $\beta = 1$: ``acc.matmul(x, w, bias)``.

    Under stochastic rounding one call draws from one stream: the
    product's roundings first, then the bias step's, whether ``rng`` is a seed or a Generator.

    Examples
    --------
    >>> import numpy as np, lampref as L
    >>> x, w, bias = np.float32([[1, 1]]), np.float32([[1], [2**-12]]), np.float32([2**-12])
    >>> L.linear(x, w, bias, L.Accumulator("fp16"))
    array([[1.]], dtype=float32)
    """
    gen = check_rng(rng)  # one generator for the product and the bias step
    w_arr = as_exact_array(w, "w")
    b_arr = None if bias is None else as_exact_array(bias, "bias")
    if b_arr is not None and b_arr.ndim and w_arr.ndim >= 2 and b_arr.shape[-1] not in (1, w_arr.shape[-1]):
        raise ShapeError(
            f"linear: bias has shape {b_arr.shape}; expected ({w_arr.shape[-1]},) (w has shape {w_arr.shape})"
        )
    if acc is not None and not isinstance(acc, Accumulator):
        if b_arr is None or not isinstance(acc, MatmulModel):
            return matmul(x, w_arr, acc, rng=gen)
        return np.asarray(acc.matmul(x, w_arr, b_arr, rng=gen))  # the bias is the addend C
    y = matmul(x, w_arr, acc, rng=gen)
    if b_arr is None:
        return y
    try:
        fits = np.broadcast_shapes(b_arr.shape, np.shape(y)) == np.shape(y)
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(
            f"linear: bias has shape {b_arr.shape}; expected a shape that broadcasts to the output's "
            f"{np.shape(y)}"
        )
    if acc is None:
        return (y + b_arr.astype(np.float32)).astype(np.float32)
    if acc.mode in STOCHASTIC_MODES:
        gen = as_generator(gen)
    if acc.staging == "fp32":
        _check_float32_values(b_arr, "bias")
        s32 = np.asarray(y, dtype=np.float32) + b_arr.astype(np.float32)
        return _fp32_stage_rounder(acc)(s32, gen)
    yy, bb = np.broadcast_arrays(np.asarray(y, dtype=np.float64), b_arr.astype(np.float64))
    ctx = _Context(acc, gen)
    with np.errstate(over="ignore", invalid="ignore"):
        out = ctx.add(np.ascontiguousarray(yy), np.ascontiguousarray(bb))
    return out.astype(acc.fmt.dtype, copy=False)
