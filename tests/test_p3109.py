"""Tests of the fixed layouts: IEEE P3109 formats, OCP E8M0 and unsigned formats.

Nothing here compares lampref with itself; each group names its oracle.

1. Value sets and code points, exhaustively: every code of every P3109 format of k <= 8 bits (every
   precision 1 <= p <= k, signed and unsigned, extended and finite) and of E8M0, decoded by
   :func:`spec_value` (the interim report's formulas in exact rational arithmetic, written here), by
   gfloat's ``decode_float`` and, for E8M0, by ml_dtypes' ``float8_e8m0fnu``; ``encode`` inverts them.
2. Rounding into every P3109 format of k <= 8 bits against gfloat's ``round_ndarray`` in every
   deterministic mode both have (ties to even, ties away, the three directed modes), saturating or not,
   on an edge-heavy set of float64 inputs (every value, every midpoint, their float64 neighbours, values
   beyond the range; about 10**6 comparisons), and against a brute-force nearest-value search over
   :func:`spec_value`'s value set (hypothesis). Documented differences are excluded and tested apart:
   negative inputs to unsigned formats (gfloat leaves them negative), gfloat's ``max`` of p3109_k2p2ue.
3. E8M0 rounding against ml_dtypes' ``float8_e8m0fnu`` cast from float32 (random float32 bit patterns and
   the ties and neighbours of every binade), and p3109_k8p3sf / p3109_k8p4sf against ml_dtypes'
   ``float8_e5m2fnuz`` / ``float8_e4m3fnuz``, which are the same formats (codes and rounding).
4. The conventions: ties at p = 1 (P3109's even code point against the larger value), round to odd at the
   top of a format, unsigned and zero-less results, by hand-checked values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pytest
from _helpers import check_error
from hypothesis import given
from hypothesis import strategies as st

from lampref import FloatFormat, FormatError, ModeError, get_format, next_down, next_up, p3109, round_to
from lampref.testing import p3109_formats
from lampref.validate import decode, encode

gfloat = pytest.importorskip("gfloat")
from gfloat import Domain, RoundMode, Signedness, decode_float, round_ndarray  # noqa: E402
from gfloat.formats import format_info_ocp_e8m0, format_info_p3109  # noqa: E402

NAN = math.nan
INF = math.inf


def _fails(call: Callable[[], object], error: type[Exception], *fragments: str) -> None:
    with pytest.raises(error) as err:
        call()
    check_error(err, *fragments)


def _all_p3109(max_k: int = 8) -> list[tuple[int, int, bool, str]]:
    """Every (k, p, signed, domain) of the P3109 family up to ``max_k`` bits that has a positive finite
    value (the signed extended 2-bit formats have none)."""
    return [
        (k, p, s, d)
        for k in range(2, max_k + 1)
        for p in range(1, k + 1)
        for s in (True, False)
        for d in ("extended", "finite")
        if not (s and k == 2 and d == "extended")
    ]


ALL_P3109 = _all_p3109()


def _id(case: tuple[int, int, bool, str]) -> str:
    k, p, s, d = case
    return f"k{k}p{p}{'s' if s else 'u'}{d[0]}"


# ----------------------------------------------------------------------------- the specification
def spec_value(code: int, k: int, p: int, signed: bool, domain: str) -> Fraction | float:
    r"""The value of a P3109 code point, from the interim report's formulas (exact; NaN and infinities as
    floats).

    Signed: sign bit, $w = k - p$ exponent bits, $t = p - 1$ trailing bits, bias $2^{k-p-1}$ (0 when
    $k = p$). Unsigned: no sign bit, $w = k - p + 1$, bias $2^{k-p}$. The one NaN is the negative-zero
    code $2^{k-1}$ (signed) or $2^k - 1$ (unsigned); in the extended domain the highest code of each sign
    is infinity ($2^{k-1} - 1$ and $2^k - 1$ signed, $2^k - 2$ unsigned). Otherwise, with exponent field
    $E$ and trailing significand $T$: $T/2^t \cdot 2^{1-\mathrm{bias}}$ when $E = 0$, else
    $(1 + T/2^t) 2^{E - \mathrm{bias}}$.
    """
    t = p - 1
    if signed:
        bias = 2 ** (k - p - 1) if k > p else 0
        if code == 1 << (k - 1):
            return NAN
        negative, magnitude = code >> (k - 1), code & ((1 << (k - 1)) - 1)
        if domain == "extended" and magnitude == (1 << (k - 1)) - 1:
            return -INF if negative else INF
    else:
        bias = 2 ** (k - p)
        if code == (1 << k) - 1:
            return NAN
        if domain == "extended" and code == (1 << k) - 2:
            return INF
        negative, magnitude = 0, code
    E, T = magnitude >> t, magnitude & ((1 << t) - 1)
    if E == 0:
        value = Fraction(T, 2**t) * Fraction(2) ** (1 - bias)
    else:
        value = (1 + Fraction(T, 2**t)) * Fraction(2) ** (E - bias)
    return -value if negative else value


def spec_e8m0(code: int) -> Fraction | float:
    """OCP MX v1.0 E8M0: $2^{E - 127}$ for $E \\le 254$, code 255 is NaN (no zero, no sign)."""
    return NAN if code == 255 else Fraction(2) ** (code - 127)


def _as_float(v: Fraction | float) -> float:
    return v if isinstance(v, float) else float(v)  # exact: every value here is a float64 value


def _gfloat_info(k: int, p: int, signed: bool, domain: str) -> object:
    return format_info_p3109(
        k,
        p,
        Signedness.Signed if signed else Signedness.Unsigned,
        Domain.Extended if domain == "extended" else Domain.Finite,
    )


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise: equal values with equal signs (zeros), or both NaN."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return ((a == b) & (np.signbit(a) == np.signbit(b))) | (np.isnan(a) & np.isnan(b))


def _first_diffs(x: np.ndarray, got: np.ndarray, want: np.ndarray) -> str:
    bad = np.flatnonzero(~_same(got, want))
    return ", ".join(f"x={x[i].hex()}: got {got[i]!r}, expected {want[i]!r}" for i in bad[:5])


# ----------------------------------------------------------------------------- 1. value sets and codes
@pytest.mark.parametrize("case", ALL_P3109, ids=_id)
def test_decode_every_code_against_the_specification_and_gfloat(case: tuple[int, int, bool, str]) -> None:
    k, p, signed, domain = case
    fmt = p3109(k, p, signed=signed, domain=domain)
    codes = np.arange(1 << k, dtype=np.uint64)
    spec = np.array([_as_float(spec_value(int(c), *case)) for c in codes])
    info = _gfloat_info(*case)
    peer = np.array([decode_float(info, int(c)).fval for c in codes])  # type: ignore[arg-type]
    got = decode(codes, fmt)
    assert got.dtype == fmt.dtype
    assert _same(got, spec).all(), _first_diffs(codes.astype(np.float64), got, spec)
    assert _same(spec, peer).all()
    assert fmt.bits == k
    assert fmt.signed == signed
    assert fmt.has_inf == (domain == "extended")
    # one zero, one NaN; the value set, its size, its extremes
    finite = spec[np.isfinite(spec)]
    assert np.count_nonzero(np.isnan(spec)) == 1
    assert np.count_nonzero(finite == 0) == 1
    assert np.array_equal(fmt.values(), np.sort(finite))
    assert fmt.n_finite == finite.size
    assert fmt.max == finite.max()
    assert fmt.min == finite.min()
    assert fmt.smallest_subnormal == finite[finite > 0].min()
    assert np.count_nonzero(np.isinf(spec)) == (0 if domain == "finite" else 1 + signed)


@pytest.mark.parametrize("case", ALL_P3109, ids=_id)
def test_encode_inverts_decode(case: tuple[int, int, bool, str]) -> None:
    fmt = p3109(*case[:2], signed=case[2], domain=case[3])
    codes = np.arange(1 << case[0], dtype=np.uint64)
    values = np.array([_as_float(spec_value(int(c), *case)) for c in codes])
    assert np.array_equal(encode(values, fmt), codes)  # the one NaN included
    assert encode(np.float64(-0.0), fmt) == 0  # the one zero
    assert encode(values, fmt).dtype == np.uint8


def test_e8m0_every_code_against_the_specification_gfloat_and_ml_dtypes() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    fmt = get_format("e8m0")
    codes = np.arange(256, dtype=np.uint64)
    spec = np.array([_as_float(spec_e8m0(int(c))) for c in codes])
    peer = np.array([decode_float(format_info_ocp_e8m0, int(c)).fval for c in codes])
    ml = codes.astype(np.uint8).view(ml_dtypes.float8_e8m0fnu).astype(np.float64)
    got = decode(codes, fmt)
    assert _same(got, spec).all()
    assert _same(spec, peer).all()
    assert _same(spec, ml).all()
    assert np.array_equal(encode(spec, fmt), codes)
    assert (fmt.bits, fmt.p, fmt.emin, fmt.emax, fmt.signed, fmt.has_zero) == (8, 1, -127, 127, False, False)
    assert np.array_equal(fmt.values(), spec[:255])
    assert fmt.n_finite == 255
    assert fmt.max == 2.0**127
    assert fmt.min == fmt.smallest_subnormal == 2.0**-127


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("p3109_k8p3se", (8, 3, True, "extended")),
        ("binary8p3se", (8, 3, True, "extended")),
        ("P3109_K8P4UF", (8, 4, False, "finite")),
        ("p3109_k6p6sf", (6, 6, True, "finite")),
        ("binary8p1ue", (8, 1, False, "extended")),
    ],
)
def test_names(name: str, args: tuple[int, int, bool, str]) -> None:
    fmt = get_format(name)
    assert fmt == p3109(args[0], args[1], signed=args[2], domain=args[3])
    assert fmt.name == name.lower().replace("binary", "p3109_k")


def test_all_subnormal_format() -> None:
    # signed, p == k: no exponent field, bias 0, every value m * 2**(2 - k)
    fmt = p3109(5, 5, domain="finite")
    assert (fmt.exponent_bits, fmt.exponent_bias, fmt.emin, fmt.emax) == (0, 0, 1, 1)
    assert fmt.values().tolist() == [m / 8 for m in range(-15, 16)]
    assert fmt.max < fmt.smallest_normal


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((8, 0), "p=0 is out of range"),
        ((8, 9), "p=9 is out of range"),
        ((1, 1), "k=1 is out of range"),
        ((2, 1, True, "extended"), "no positive finite value"),
        ((8, 3, True, "infinite"), "domain"),
        ((8, 3, 1), "signed"),
    ],
)
def test_p3109_rejects(args: tuple[object, ...], match: str) -> None:
    _fails(lambda: p3109(*args), FormatError, match)  # type: ignore[arg-type]


def test_fixed_layouts_are_validated() -> None:
    _fails(lambda: FloatFormat(p=3, emax=15, emin=-14, encoding="p3109_extended"), FormatError, "p3109")
    _fails(lambda: FloatFormat(p=3, emax=14, emin=-15, encoding="p3109_extended"), FormatError, "emax")
    _fails(lambda: FloatFormat(p=2, emax=127, emin=-127, encoding="e8m0", signed=False), FormatError, "e8m0")
    _fails(lambda: FloatFormat(p=3, emax=15, signed=False), FormatError, "signed=False")


@pytest.mark.parametrize("case", [c for c in ALL_P3109 if c[0] <= 6], ids=_id)
def test_next_up_and_next_down_against_the_value_set(case: tuple[int, int, bool, str]) -> None:
    fmt = p3109(case[0], case[1], signed=case[2], domain=case[3])
    values = sorted(
        {v for v in (spec_value(c, *case) for c in range(1 << case[0])) if isinstance(v, Fraction)}
    )
    grid = [float(v) for v in values]
    x = np.unique(grid + [float((a + b) / 2) for a, b in itertools.pairwise(values)])
    x = np.concatenate([x, [-1.0, 2 * fmt.max]])
    up = [next((v for v in grid if v > t), INF) for t in x]
    down = [next((v for v in reversed(grid) if v < t), -INF) for t in x]
    assert np.asarray(next_up(x, fmt), dtype=np.float64).tolist() == up
    assert np.asarray(next_down(x, fmt), dtype=np.float64).tolist() == down


# ----------------------------------------------------------------------------- 2. rounding vs gfloat
_GFLOAT_MODES = {
    "nearest_even": RoundMode.TiesToEven,
    "nearest_away": RoundMode.TiesToAway,
    "toward_zero": RoundMode.TowardZero,
    "toward_pos": RoundMode.TowardPositive,
    "toward_neg": RoundMode.TowardNegative,
}


def edge_inputs(fmt: FloatFormat, rng: np.random.Generator, n_random: int = 0) -> np.ndarray:
    """Every value and every midpoint of ``fmt`` (both signs in a signed format), their float64 neighbours,
    values beyond the range and below the smallest, the special values, and ``n_random`` log-uniform
    values over the range."""
    v = np.abs(fmt.values().astype(np.float64))
    beyond = [fmt.max * 1.25, fmt.max * 1.5, fmt.max * 2, 2.0 ** (fmt.emax + 1), 1e300]
    v = np.unique(np.concatenate([v, beyond, [fmt.smallest_subnormal / 2, fmt.smallest_subnormal / 3]]))
    base = np.concatenate([v, (v[1:] + v[:-1]) / 2])
    near = np.concatenate([np.nextafter(base, INF), np.nextafter(base, -INF)])
    lo, hi = math.log2(fmt.smallest_subnormal) - 2, math.log2(fmt.max) + 2
    rand = np.exp2(rng.uniform(lo, hi, n_random))
    x = np.concatenate([base, near, rand, [INF, NAN, 0.0]])
    x = x[x >= 0]
    return np.concatenate([x, -x]) if fmt.signed else x


# p3109_k2p2ue is left out: gfloat's max for it is 0.75, not a value of the format
# (test_gfloat_max_of_k2p2ue); its rounding is checked against the brute-force nearest-code search below.
GFLOAT_ROUNDING_CASES = [case for case in ALL_P3109 if case != (2, 2, False, "extended")]


@pytest.mark.parametrize("case", GFLOAT_ROUNDING_CASES, ids=_id)
def test_rounding_agrees_with_gfloat(case: tuple[int, int, bool, str]) -> None:
    k, p, signed, domain = case
    fmt = p3109(k, p, signed=signed, domain=domain)
    info = _gfloat_info(*case)
    x = edge_inputs(fmt, np.random.default_rng(k * 100 + p), n_random=400)
    for saturate in (False, True):
        target = fmt.replace(saturate=True) if saturate else fmt
        for mode, peer_mode in _GFLOAT_MODES.items():
            got = np.asarray(round_to(x, target, mode), dtype=np.float64)
            want = round_ndarray(info, x, peer_mode, saturate)  # type: ignore[arg-type]
            assert _same(got, want).all(), (
                f"{fmt.name} {mode} saturate={saturate}: {_first_diffs(x, got, want)}"
            )


def test_gfloat_comparison_size() -> None:
    # the comparison above covers about 10**6 (input, format, mode, saturation) cases
    total = 0
    for case in ALL_P3109:
        if case != (2, 2, False, "extended"):
            fmt = p3109(case[0], case[1], signed=case[2], domain=case[3])
            total += 10 * edge_inputs(fmt, np.random.default_rng(0), n_random=400).size
    assert total > 10**6


def test_gfloat_max_of_k2p2ue() -> None:
    # unsigned, extended, k = p = 2: codes 0, 0.5, +inf, NaN. gfloat's FormatInfo.max says 0.75 (it takes
    # code 1 for a normal number) while its own decode_float gives 0.5.
    info = _gfloat_info(2, 2, False, "extended")
    assert decode_float(info, 1).fval == 0.5  # type: ignore[arg-type]
    assert p3109(2, 2, signed=False).max == 0.5 == _as_float(spec_value(1, 2, 2, False, "extended"))


def _nearest_even_code(x: float, case: tuple[int, int, bool, str]) -> float:
    """Round to nearest, ties to the even code point, by search over the magnitudes of the value set
    (exact), then overflow to infinity or NaN beyond max + half a step of max's binade, or at that tie when
    max's code is odd (P3109's rule: round with an unbounded exponent, then overflow); a negative input
    of an unsigned format gives NaN unless its magnitude rounds to zero."""
    k = case[0]
    table = [(spec_value(c, *case), c) for c in range(1 << k)]
    finite = [(v, c) for v, c in table if isinstance(v, Fraction) and v >= 0]  # magnitudes
    fx = Fraction(x)
    best = min(abs(v - abs(fx)) for v, _ in finite)
    near = [(v, c) for v, c in finite if abs(v - abs(fx)) == best]
    value, _ = min(near, key=lambda vc: vc[1] & 1) if len(near) == 2 else near[0]
    fmt = p3109(*case[:2], signed=case[2], domain=case[3])
    e = max(math.frexp(fmt.max)[1] - 1, fmt.emin)
    step = Fraction(2) ** (e - fmt.p + 1)
    limit = Fraction(fmt.max) + step / 2  # a tie there goes to max exactly when max's code is even
    over = abs(fx) > limit or (abs(fx) == limit and int(encode(np.float64(fmt.max), fmt)) & 1)
    if x < 0 and not case[2]:
        return 0.0 if value == 0 and not over else NAN  # below the range of an unsigned format
    if over:
        return (INF if fmt.has_inf else NAN) * (-1 if x < 0 else 1)
    return float(-value if x < 0 and case[2] else value)


def _check_against_search(fmt: FloatFormat, x: float) -> None:
    case = (fmt.bits, fmt.p, fmt.signed, "extended" if fmt.has_inf else "finite")
    got = float(round_to(x, fmt))
    want = _nearest_even_code(x, case)
    assert got == want or (math.isnan(got) and math.isnan(want)), (fmt, x.hex(), got, want)


@pytest.mark.parametrize(
    ("fmt", "x"),
    [
        (p3109(8, 1), 1.5),  # ties at p = 1: the even code (code 64 is 1.0)
        (p3109(8, 1), 3.0),
        (p3109(8, 1), 1.5 * 2.0**62),  # the tie above max: code 126 (max) is even
        (p3109(8, 3), 49152.0 + 4096.0),  # the tie above max: code 0x7E (max) is even
        (p3109(8, 4, signed=False), -1.0),
        (p3109(6, 6, domain="finite"), 0.5 + 2**-6),  # all-subnormal
    ],
)
def test_nearest_even_search_examples(fmt: FloatFormat, x: float) -> None:
    _check_against_search(fmt, x)


@given(p3109_formats(max_k=6, saturate=False), st.data())
def test_nearest_even_against_a_search_of_the_value_set(fmt: FloatFormat, data: st.DataObject) -> None:
    values = fmt.values().astype(np.float64)
    pick = st.sampled_from(values.tolist())
    x = data.draw(
        st.one_of(
            pick,
            st.tuples(pick, pick).map(lambda ab: (ab[0] + ab[1]) / 2),
            st.floats(-2 * fmt.max, 2 * fmt.max),
        )
    )
    _check_against_search(fmt, x)


# ----------------------------------------------------------------------------- 3. E8M0 vs ml_dtypes
def test_e8m0_rounding_agrees_with_ml_dtypes() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(8)
    random = rng.integers(0, 1 << 32, 300_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    one_half = np.float32(1.5)
    significands = np.array(
        [1.0, 1.5, np.nextafter(one_half, 0), np.nextafter(one_half, 2), np.nextafter(np.float32(2), 0)]
    )
    edge = (significands[None, :] * np.ldexp(1.0, np.arange(-149, 128))[:, None]).ravel().astype(np.float32)
    specials = np.float32([0.0, -0.0, INF, -INF, NAN, 1e-45, -1e-45])
    x = np.concatenate([random, edge, -edge, specials])
    want = x.astype(ml_dtypes.float8_e8m0fnu).astype(np.float64)
    got = np.asarray(round_to(x, "e8m0"), dtype=np.float64)
    assert _same(got, want).all(), _first_diffs(x.astype(np.float64), got, want)


@pytest.mark.parametrize(("name", "p"), [("float8_e5m2fnuz", 3), ("float8_e4m3fnuz", 4)])
def test_fnuz_types_of_ml_dtypes_are_p3109_finite_formats(name: str, p: int) -> None:
    # ml_dtypes' "fnuz" types (finite, NaN at 0x80, unsigned zero) are P3109's signed finite k = 8 formats
    ml_dtypes = pytest.importorskip("ml_dtypes")
    dtype = getattr(ml_dtypes, name)
    fmt = p3109(8, p, domain="finite")
    codes = np.arange(256, dtype=np.uint8)
    assert _same(decode(codes, fmt), codes.view(dtype).astype(np.float64)).all()
    v = np.unique(np.abs(fmt.values().astype(np.float64)))
    base = np.concatenate([v, (v[1:] + v[:-1]) / 2, [fmt.max * 1.5, 1e30, INF, NAN]]).astype(np.float32)
    near = np.concatenate([np.nextafter(base, np.float32(INF)), np.nextafter(base, np.float32(-INF))])
    random = np.random.default_rng(p).integers(0, 1 << 32, 200_000, dtype=np.uint64).astype(np.uint32)
    x = np.concatenate([base, near, -base, -near, random.view(np.float32)])
    with np.errstate(invalid="ignore"):  # signalling NaNs among the random patterns
        want = x.astype(dtype).astype(np.float64)  # correctly rounded from float32, to nearest even
        got = np.asarray(round_to(x, fmt), dtype=np.float64)
    assert _same(got, want).all(), _first_diffs(x.astype(np.float64), got, want)


# ----------------------------------------------------------------------------- 4. conventions
def test_p1_ties() -> None:
    f = p3109(8, 1)  # bias 64: 1.0 is code 64 (even), 2.0 code 65, 4.0 code 66, 8.0 code 67
    x = [1.5, 3.0, 6.0, 12.0, -3.0]
    assert round_to(x, f).tolist() == [1.0, 4.0, 4.0, 16.0, -4.0]  # the even code point
    assert round_to(x, f, p1_ties="larger").tolist() == [2.0, 4.0, 8.0, 16.0, -4.0]  # MPFR at p = 1
    assert round_to(x, "fp32_m0").tolist() == [2.0, 4.0, 8.0, 16.0, -4.0]  # other formats: larger
    # fp32_m0 has float32's bias 127: 1.0 is code 127 (odd), 2.0 code 128 (even)
    assert round_to(x, "fp32_m0", p1_ties="even_code").tolist() == [2.0, 2.0, 8.0, 8.0, -2.0]
    # the top: max is 2**62 (code 126, since 127 is +inf); the tie 1.5 * 2**62 goes to max (even code)
    # with P3109's convention, and to the larger value 2**63, which overflows, with MPFR's
    assert round_to([1.5 * 2.0**62], f).tolist() == [2.0**62]
    assert round_to([1.5 * 2.0**62], f, p1_ties="larger").tolist() == [INF]
    # E8M0 keeps the larger value (as ml_dtypes), and takes the even code on request
    assert round_to([3.0], "e8m0").tolist() == [4.0]
    assert round_to([3.0], "e8m0", p1_ties="even_code").tolist() == [2.0]  # 2.0 is code 128


def test_round_to_odd_at_the_top() -> None:
    f = p3109(8, 3)  # max 1.5 * 2**15 = 49152 (significand 10, even): the next code is +inf
    x = [49153.0, 57344.0, -1e9]
    assert round_to(x, f, "odd").tolist() == [49152.0, 49152.0, -49152.0]
    assert round_to(x, f, "odd", odd_overflow="overflow").tolist() == [INF, INF, -INF]
    sat = f.replace(saturate=True)
    assert round_to(x, sat, "odd", odd_overflow="overflow").tolist() == [49152.0, 49152.0, -49152.0]
    # IEEE fp16: max 65504 is odd, so only 2**16 and beyond overflow
    assert round_to([65505.0, 65536.0], "fp16", "odd", odd_overflow="overflow").tolist() == [65504.0, INF]
    assert round_to([65505.0, 65536.0], "fp16", "odd").tolist() == [65504.0, 65504.0]
    # OCP e4m3fn: max 448 has an even significand, so the odd neighbour above is the NaN code
    assert math.isnan(float(round_to(449.0, "e4m3", "odd", odd_overflow="overflow")))


def test_unsigned_and_zeroless_results() -> None:
    u = p3109(8, 4, signed=False, domain="finite")
    x = [-1.0, -1e-30, -0.0, 0.0, -INF, INF, NAN]
    got = round_to(x, u)
    assert np.isnan(got[[0, 4, 5, 6]]).all()
    assert got[1:4].tolist() == [0.0, 0.0, 0.0]
    assert not np.signbit(got[1:4]).any()
    sat = round_to(x, u.replace(saturate=True))
    assert sat[:6].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0, u.max]
    assert np.isnan(sat[6])
    e8 = get_format("e8m0")
    got = round_to([0.0, -0.0, 1e-300, -1e-300, 2.0**-130, -2.0], e8, "toward_zero")
    assert np.isnan(got[[0, 1, 3, 5]]).all()
    assert got[[2, 4]].tolist() == [2.0**-127, 2.0**-127]
    assert round_to([0.0, -2.0], e8.replace(saturate=True)).tolist() == [2.0**-127, 2.0**-127]


def test_signed_p3109_has_one_zero() -> None:
    f = p3109(8, 3)
    got = round_to([-0.0, -1e-30, -(2.0**-18)], f)
    assert got.tolist() == [0.0, 0.0, 0.0]
    assert not np.signbit(got).any()
    assert round_to([-(2.0**-18)], f, "toward_neg").tolist() == [-(2.0**-17)]


def test_convention_arguments_are_checked() -> None:
    _fails(lambda: round_to(1.0, "fp16", p1_ties="odd"), ModeError, "p1_ties")
    _fails(lambda: round_to(1.0, "fp16", "odd", odd_overflow="inf"), ModeError, "odd_overflow")
