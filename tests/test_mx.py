"""lampref.mx against the OCP MX v1.0 rules, written out again here in rational arithmetic.

Oracles:

* an independent decoding of every element code and every E8M0 code from the specification's formulas
  (sign, exponent field, bias, mantissa field; two's complement for INT8), in ``fractions.Fraction``;
* an independent MX conversion of a block in ``Fraction``: $X = 2^{\\lfloor\\log_2 \\max|V_i|\\rfloor -
  e_{\\max}}$ (clamped at $2^{-127}$, NaN above $2^{127}$ or for a non-finite block), then each $V_i/X$
  rounded to the nearest element value, ties to the even code, saturating;
* ml_dtypes' float8/float6/float4 casts for the element rounding (float32 inputs);
* gfloat's ``quantize_block`` as a peer (a test dependency), on float32 inputs (see the regression test for
  the one difference on float64 inputs).

The specification states the conversion as an algorithm, without numerical examples; its tables of element
and scale properties are checked (``test_spec_tables``), and the hand-worked examples of docs/mx.md run
with the documentation tests.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from _helpers import check_error
from hypothesis import example, given
from hypothesis import strategies as st

import lampref
from lampref import mx
from lampref.mx import ELEMENTS, MXSpec
from lampref.testing.mx_strategies import mx_arrays, mx_specs

NAN = math.nan

# ---------------------------------------------------------------- the specification's element types
# (exponent bits, mantissa bits, bias, special codes) for the floating-point elements (OCP MX v1.0 5.3,
# OFP8 for the fp8 ones); None for INT8 (two's complement, implicit factor 2**-6).
FLOAT_LAYOUT: dict[str, tuple[int, int, int]] = {
    "e4m3": (4, 3, 7),
    "e5m2": (5, 2, 15),
    "e3m2": (3, 2, 3),
    "e2m3": (2, 3, 1),
    "e2m1": (2, 1, 1),
}
# emax_elem: the exponent of the largest normal binade (OCP MX v1.0, table of element types).
EMAX = {"e4m3": 8, "e5m2": 15, "e3m2": 4, "e2m3": 2, "e2m1": 2, "int8": 0}
BITS = {"e4m3": 8, "e5m2": 8, "e3m2": 6, "e2m3": 6, "e2m1": 4, "int8": 8}
ML_DTYPES = {
    "e4m3": ml_dtypes.float8_e4m3fn,
    "e5m2": ml_dtypes.float8_e5m2,
    "e3m2": ml_dtypes.float6_e3m2fn,
    "e2m3": ml_dtypes.float6_e2m3fn,
    "e2m1": ml_dtypes.float4_e2m1fn,
}


def decode_element(element: str, code: int) -> Fraction | float:
    """The value of an element code: a Fraction, or NaN / +-inf for the fp8 special codes."""
    if element == "int8":
        return Fraction(code - 256 if code >= 128 else code, 64)
    ebits, mbits, bias = FLOAT_LAYOUT[element]
    sign = -1 if code >> (ebits + mbits) else 1
    e, m = (code >> mbits) & ((1 << ebits) - 1), code & ((1 << mbits) - 1)
    if element == "e4m3" and e == 15 and m == 7:
        return NAN
    if element == "e5m2" and e == 31:
        return NAN if m else sign * math.inf
    if e == 0:
        return sign * Fraction(m, 1 << mbits) * Fraction(2) ** (1 - bias)
    return sign * (1 + Fraction(m, 1 << mbits)) * Fraction(2) ** (e - bias)


def decode_scale(code: int) -> Fraction | float:
    """E8M0: 2**(code - 127); 255 is NaN."""
    return NAN if code == 255 else Fraction(2) ** (code - 127)


def element_codes(element: str) -> range:
    return range(1 << BITS[element])


def finite_table(element: str) -> list[tuple[Fraction, int]]:
    """Every finite element value with its code, ascending, zero once (code 0)."""
    table = {}
    for code in element_codes(element):
        v = decode_element(element, code)
        if isinstance(v, Fraction) and (v not in table or code < table[v]):
            table[v] = code
    return sorted(table.items())


TABLES = {element: finite_table(element) for element in ELEMENTS}


def floor_log2(q: Fraction) -> int:
    e = q.numerator.bit_length() - q.denominator.bit_length()
    while Fraction(2) ** e > q:
        e -= 1
    while Fraction(2) ** (e + 1) <= q:
        e += 1
    return e


def round_element(v: Fraction, element: str) -> Fraction:
    """Round to nearest, ties to the even code, saturating at both ends."""
    table = TABLES[element]
    values = [t[0] for t in table]
    if v >= values[-1]:
        return values[-1]
    if v <= values[0]:
        return values[0]
    hi = next(i for i, t in enumerate(values) if t >= v)
    if values[hi] == v:
        return v
    (lo_v, lo_c), (hi_v, _) = table[hi - 1], table[hi]
    if v - lo_v != hi_v - v:
        return lo_v if v - lo_v < hi_v - v else hi_v
    return lo_v if lo_c % 2 == 0 else hi_v


def oracle_block(block: list[float], element: str) -> tuple[list[float], int]:
    """The MX conversion of one block, in rational arithmetic: element values (floats) and the scale code."""
    if any(not math.isfinite(v) for v in block):
        return [NAN] * len(block), 255
    amax = max(abs(Fraction(v)) for v in block)
    s = -127 if amax == 0 else max(floor_log2(amax) - EMAX[element], -127)
    if s > 127:
        return [NAN] * len(block), 255
    out = []
    for v in block:
        p = float(round_element(Fraction(v) / Fraction(2) ** s, element))
        if p == 0 and element != "int8":
            p = math.copysign(0.0, v)  # the float elements keep the sign of zero; int8 has one zero
        out.append(p)
    return out, s + 127


def oracle_quantize(x: np.ndarray, element: str, block: int) -> tuple[np.ndarray, np.ndarray]:
    """The oracle along the last axis of a 1-D array."""
    values = [float(v) for v in x]
    elements: list[float] = []
    codes: list[int] = []
    for start in range(0, len(values), block):
        p, c = oracle_block(values[start : start + block], element)
        elements += p
        codes.append(c)
    return np.array(elements, dtype=np.float64), np.array(codes, dtype=np.int64)


def same_bits(ours: Any, ref: Any) -> bool:
    """Equal values, equal signs of zero, NaN where the other is NaN."""
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(ref, dtype=np.float64)
    if a.shape != b.shape:
        return False
    nan = np.isnan(a)
    return bool(
        (nan == np.isnan(b)).all()
        and (a[~nan] == b[~nan]).all()
        and (np.signbit(a[~nan]) == np.signbit(b[~nan])).all()
    )


def check_against_oracle(spec: MXSpec, x: np.ndarray) -> None:
    elements, scales = spec.quantize(x)
    ref_p, ref_c = oracle_quantize(x, spec.element, spec.block)
    assert elements.dtype == np.float32
    assert scales.dtype == np.uint8
    assert scales.tolist() == ref_c.tolist(), (x.tolist(), scales.tolist(), ref_c.tolist())
    assert same_bits(elements, ref_p), (x.tolist(), elements.tolist(), ref_p.tolist())
    # dequantize: X * P_i, from the independent decodings
    ref_v = [
        NAN if c == 255 or math.isnan(p) else math.copysign(float(Fraction(p) * decode_scale(c)), p)
        for p, c in zip(ref_p.tolist(), np.repeat(ref_c, spec.block)[: len(x)].tolist(), strict=True)
    ]
    assert same_bits(spec.dequantize(elements, scales), ref_v)
    out = spec.quantize_dequantize(x)
    assert out.dtype == x.dtype
    assert same_bits(out, ref_v)


# ------------------------------------------------------------------------ the specification's tables
@pytest.mark.parametrize(
    ("element", "max_normal", "min_normal", "max_subnormal", "min_subnormal"),
    [
        ("e5m2", 57344.0, 2.0**-14, 0.75 * 2.0**-14, 2.0**-16),
        ("e4m3", 448.0, 2.0**-6, 0.875 * 2.0**-6, 2.0**-9),
        ("e3m2", 28.0, 0.25, 0.1875, 0.0625),
        ("e2m3", 7.5, 1.0, 0.875, 0.125),
        ("e2m1", 6.0, 1.0, 0.5, 0.5),
    ],
)
def test_spec_tables(
    element: str, max_normal: float, min_normal: float, max_subnormal: float, min_subnormal: float
) -> None:
    spec = MXSpec(element)
    values = [float(v) for v, _ in TABLES[element]]
    assert spec.element_max == max_normal == values[-1] == -values[0]
    assert min_subnormal == min(v for v in values if v > 0)
    assert max_subnormal == max(v for v in values if v < min_normal)
    assert spec.emax == EMAX[element] == math.floor(math.log2(max_normal))
    assert spec.element_bits == BITS[element]
    fmt = spec.element_format
    assert fmt is not None
    assert fmt.smallest_normal == min_normal
    assert fmt.smallest_subnormal == min_subnormal


def test_spec_tables_int8_and_e8m0() -> None:
    spec = MXSpec("int8")
    values = [v for v, _ in TABLES["int8"]]
    assert values[0] == -2
    assert values[-1] == Fraction(127, 64) == Fraction(spec.element_max)
    assert spec.emax == 0
    assert spec.element_bits == 8
    assert spec.element_format is None
    assert len(values) == 256  # two's complement: every code a distinct value, one zero
    # E8M0: 2**-127 .. 2**127, 255 is NaN
    codes = np.arange(256, dtype=np.uint8)
    decoded = mx.decode_scales(codes)
    assert decoded.dtype == np.float32
    assert same_bits(decoded[:255], [float(decode_scale(c)) for c in range(255)])
    assert np.isnan(decoded[255])
    assert (mx.encode_scales(decoded) == codes).all()
    assert (
        mx.decode_scales(codes).view(np.uint32)
        == codes.view(ml_dtypes.float8_e8m0fnu).astype(np.float32).view(np.uint32)
    ).all()


def test_scales_are_lampref_e8m0_values() -> None:
    """The scale codes decode to the values of lampref's E8M0 format, in code order."""
    e8m0 = lampref.get_format("e8m0")
    assert same_bits(mx.decode_scales(np.arange(255)), e8m0.values())


def test_spec_names() -> None:
    assert [MXSpec(e).name for e in ELEMENTS] == [
        "mxfp8_e4m3",
        "mxfp8_e5m2",
        "mxfp6_e3m2",
        "mxfp6_e2m3",
        "mxfp4_e2m1",
        "mxint8",
    ]
    assert mx.get_spec("mxfp8") == MXSpec("e4m3", 32)
    assert mx.get_spec("MXFP6") == MXSpec("e3m2")
    assert mx.get_spec("mxfp4") == MXSpec("e2m1")
    assert mx.get_spec("mxint8") == MXSpec("int8")
    assert mx.get_spec("mx:e2m1") == MXSpec("e2m1", 32)
    assert mx.get_spec("mx:e4m3:16") == MXSpec("e4m3", 16)
    assert mx.get_spec(" mxfp8_e5m2_b64 ") == MXSpec("e5m2", 64)
    spec = MXSpec("e2m3", 7)
    assert mx.get_spec(spec) is spec
    for element in ELEMENTS:
        for block in (1, 16, 32, 33):
            spec = MXSpec(element, block)
            assert mx.get_spec(spec.name) == spec
            assert mx.get_spec(f"mx:{element}:{block}") == spec
    assert set(mx.spec_names()) >= {"mxfp8", "mxfp6", "mxfp4", "mxint8", "mxfp8_e5m2"}


def test_mxspec_is_a_value() -> None:
    a, b = MXSpec(), MXSpec("float8_e4m3fn", 32)
    assert a == b
    assert hash(a) == hash(b)
    assert {a: 1}[b] == 1
    assert a.element == "e4m3"
    assert a.block == 32
    assert MXSpec("E2M1").element == "e2m1"
    assert MXSpec("e4m3", 16) != a
    with pytest.raises(AttributeError):
        a.block = 16  # type: ignore[misc]
    assert lampref.mx is mx


# ----------------------------------------------------------------------- exhaustive: every code
@pytest.mark.parametrize("element", ELEMENTS)
def test_every_code_at_every_scale(element: str) -> None:
    """Every finite element code under every E8M0 code (and NaN), decoded by dequantize, against the
    Fraction decoding; and a block holding the element's largest value next to each code quantises back
    to the same element and scale."""
    codes = [c for c in element_codes(element) if isinstance(decode_element(element, c), Fraction)]
    p = np.array([float(decode_element(element, c)) for c in codes])
    negative = np.array([element != "int8" and c >> (BITS[element] - 1) == 1 for c in codes])
    p = np.where(negative & (p == 0), -0.0, p)  # the negative-zero code
    scale_codes = np.arange(256, dtype=np.uint8)
    elements = np.broadcast_to(p, (256, len(p)))
    got = mx.dequantize(elements, scale_codes[:, None], axis=-1, block=len(p))
    for c in (0, 1, 100, 127, 128, 200, 253, 254):
        ref = [math.copysign(float(Fraction(v) * decode_scale(c)), v) for v in p.tolist()]
        assert same_bits(got[c], ref), c
    assert np.isnan(got[255]).all()
    # all 255 finite scales at once: X * P_i == ldexp(P_i, c - 127), checked against Fraction above
    assert same_bits(got[:255], np.ldexp(p[None, :], (scale_codes[:255, None].astype(int) - 127)))

    # quantise [max, P] * 2**s for every code and every s: the elements and the scale come back (not
    # int8's -2: a block holding -2 * 2**s has the scale 2**(s + 1); -2 only ever comes from rounding)
    top = float(TABLES[element][-1][0])
    p = p[p != -2.0] if element == "int8" else p
    s = np.arange(-127, 128)
    x = np.stack(np.broadcast_arrays(top, p[None, :]), axis=-1)  # [1, n, 2] -> [n, 2]
    x = np.ldexp(x[None], s[:, None, None])  # [255, n, 2]
    q, sc = mx.quantize(x, element, block=2, axis=-1)
    assert (sc[..., 0] == (s + 127)[:, None]).all()
    assert same_bits(q[..., 1], np.broadcast_to(p, q[..., 1].shape))
    assert (q[..., 0] == top).all()


# -------------------------------------------------------------------- property tests against the oracle
@given(mx_specs(max_block=40).flatmap(lambda s: mx_arrays(s).map(lambda x: (s, x))))
@example((MXSpec("e4m3", 4), np.zeros(4)))  # all-zero block: scale 2**-127
@example((MXSpec("e2m1", 3), np.array([-0.0, 0.0, -0.0], dtype=np.float32)))
@example((MXSpec("e4m3", 2), np.array([448.0, -448.0])))  # the element's largest value exactly
@example((MXSpec("e4m3", 2), np.array([480.0, 464.0])))  # past it: saturation (464 is the tie)
@example((MXSpec("e2m1", 4), np.array([5.0, 2.5, 0.75, 0.25])))  # ties: to the even code
@example((MXSpec("e2m1", 4), np.array([-5.0, -2.5, -0.75, -0.25])))
@example((MXSpec("int8", 3), np.array([1.0, 1.0 + 2**-7, 1.0 + 3 * 2**-7])))  # int8 ties
@example((MXSpec("int8", 2), np.array([-1.99, 1.99])))  # -2 exists, +2 does not
@example((MXSpec("int8", 2), np.array([-1.9921875, 1.9921875])))  # ties at the ends: -2, and 127/64
@example((MXSpec("e5m2", 2), np.array([57344.0, 2.0**-16 * 1.5])))  # subnormal tie
@example((MXSpec("e4m3", 3), np.array([1.0, NAN, 2.0])))  # NaN in a block: NaN scale
@example((MXSpec("e4m3", 2), np.array([1.0, -math.inf, 2.0, 3.0])))  # inf in the first block only
@example((MXSpec("e3m2", 2), np.array([2.0**-131, 2.0**-140])))  # amax below E8M0's range: clamped
@example((MXSpec("e3m2", 2), np.array([2.0**-123, 2.0**-130])))  # s = -127 exactly
@example((MXSpec("e2m3", 2), np.array([2.0**129, 1.0])))  # s = 127 exactly
@example((MXSpec("e2m3", 2), np.array([2.0**130, 1.0])))  # s = 128: no E8M0 code, NaN
@example((MXSpec("e4m3", 2), np.array([1.0, -(2.0**300)])))  # s = 292, far beyond: NaN
@example((MXSpec("int8", 2), np.array([2.0**127 * 1.5, -(2.0**-149)], dtype=np.float32)))
@example((MXSpec("e5m2", 33), np.arange(40, dtype=np.float64)))  # short last block
def test_quantize_matches_the_rational_oracle(case: tuple[MXSpec, np.ndarray]) -> None:
    spec, x = case
    check_against_oracle(spec, x)


@pytest.mark.parametrize("element", [e for e in ELEMENTS if e != "int8"])
@given(data=st.data())
def test_element_rounding_matches_ml_dtypes(element: str, data: st.DataObject) -> None:
    """ml_dtypes' casts (round to nearest even) of V_i / X, saturated first, are the elements."""
    spec = MXSpec(element, 8)
    x = data.draw(mx_arrays(spec, dtype=np.float32, allow_nan=False, min_exponent=-120))
    elements, scales = spec.quantize(x)
    scale = np.repeat(mx.decode_scales(scales), spec.block)[: x.size]
    with np.errstate(under="ignore"):
        v = (x / scale).astype(np.float32)  # exact, except values that flush far below any element
    top = np.float32(spec.element_max)
    ref = np.clip(v, -top, top).astype(ML_DTYPES[element]).astype(np.float32)
    assert same_bits(elements, ref), (x.tolist(), elements.tolist(), ref.tolist())


@given(
    mx_specs(max_block=32).flatmap(
        lambda s: mx_arrays(s, dtype=np.float32, allow_nan=False, max_exponent=120).map(lambda x: (s, x))
    )
)
def test_agrees_with_gfloat(case: tuple[MXSpec, np.ndarray]) -> None:
    """gfloat's quantize_block (scale from floor(log2 amax), elements rounded ties-to-even and saturated):
    the same values on float32 inputs."""
    import gfloat  # the test extra installs it
    import gfloat.formats as gf

    spec, x = case
    fi = {
        "e4m3": gf.format_info_mxfp8_e4m3,
        "e5m2": gf.format_info_mxfp8_e5m2,
        "e3m2": gf.format_info_mxfp6_e3m2,
        "e2m3": gf.format_info_mxfp6_e2m3,
        "e2m1": gf.format_info_mxfp4_e2m1,
        "int8": gf.format_info_mxint8,
    }[spec.element]
    ours = spec.quantize_dequantize(x.astype(np.float64))
    for start in range(0, x.size, spec.block):
        vals = x[start : start + spec.block].astype(np.float64)
        ref = gfloat.quantize_block(fi, vals, gfloat.compute_scale_amax)
        np.testing.assert_array_equal(ours[start : start + spec.block], ref)


def test_gfloat_difference_floor_log2_in_floating_point() -> None:
    """gfloat computes floor(log2(amax)) with a floating-point log2, which rounds up to the next integer
    for a float64 amax a few ulps below a power of two: its scale is then twice the specification's.
    lampref reads the exponent exactly (frexp)."""
    amax = math.ldexp(2.0 - 2.0**-52, 10)  # 2**11 - 2**-41: floor(log2) = 10
    assert np.log2(amax) == 11.0  # the rounding gfloat inherits
    elements, scales = mx.quantize(np.array([amax, 0.1]), "e4m3", block=2)
    assert scales.tolist() == [127 + 10 - 8]  # X = 2**2
    assert elements[0] == 448.0  # amax / 4 = 512 - 2**-43 saturates
    ref, code = oracle_block([amax, 0.1], "e4m3")
    assert code == 129
    assert ref[0] == 448.0
    assert same_bits(elements, ref)


# ------------------------------------------------------------------------- axes, shapes and dtypes
@given(
    spec=mx_specs(max_block=8),
    shape=st.lists(st.integers(1, 7), min_size=1, max_size=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_axis_matches_the_oracle(spec: MXSpec, shape: list[int], seed: int) -> None:
    """Blocks run along the chosen axis: every 1-D line of an n-d array against the rational oracle."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2.0 ** rng.integers(-20, 20, size=shape)
    for axis in range(-len(shape), len(shape)):
        elements, scales = spec.quantize(x, axis=axis)
        assert scales.shape[axis] == -(-shape[axis] // spec.block)
        lines_x = np.moveaxis(x, axis, -1).reshape(-1, shape[axis])
        lines_p = np.moveaxis(elements, axis, -1).reshape(lines_x.shape)
        lines_c = np.moveaxis(scales, axis, -1).reshape(lines_x.shape[0], -1)
        for line, p, c in zip(lines_x, lines_p, lines_c, strict=True):
            ref_p, ref_c = oracle_quantize(line, spec.element, spec.block)
            assert c.tolist() == ref_c.tolist()
            assert same_bits(p, ref_p)
        back = spec.dequantize(elements, scales, axis=axis)
        assert same_bits(back, spec.quantize_dequantize(x, axis=axis))
    # the short last block behaves as the zero-padded block, cropped
    n = shape[-1]
    padded = np.concatenate([x, np.zeros((*x.shape[:-1], -n % spec.block))], axis=-1)
    e_pad, s_pad = spec.quantize(padded)
    elements, scales = spec.quantize(x)
    assert same_bits(elements, e_pad[..., :n])
    assert (scales == s_pad).all()


def test_dtypes() -> None:
    x32 = np.array([[0.3, -1.7, 5.0, 1e-30]], dtype=np.float32)
    assert mx.quantize_dequantize(x32, "e4m3", block=2).dtype == np.float32
    assert mx.quantize_dequantize(x32.astype(np.float64), "e4m3", block=2).dtype == np.float64
    half = mx.quantize_dequantize(x32.astype(np.float16), "e4m3", block=2)
    assert half.dtype == np.float32  # float16 cannot hold every stored value
    assert same_bits(half, mx.quantize_dequantize(x32.astype(np.float16).astype(np.float32), "e4m3", block=2))
    assert mx.quantize_dequantize(np.array([3, -200, 7]), "int8", block=2).dtype == np.float64
    bf = mx.quantize_dequantize(x32.astype(ml_dtypes.bfloat16), "e2m1", block=4)
    assert bf.dtype == np.float32
    elements, scales = mx.quantize([1, 2, 3], "e2m1", block=2)
    assert elements.dtype == np.float32
    assert scales.dtype == np.uint8
    assert mx.dequantize(elements, scales, block=2).dtype == np.float64
    # a float32 block at the top of float32's range and one at the bottom stay exact in float32
    edge = np.array([np.finfo(np.float32).max, 1.0, 2.0**-149, 0.0], dtype=np.float32)
    for element in ELEMENTS:
        check_against_oracle(MXSpec(element, 2), edge)  # float32 in, float32 out, every bit the oracle's


def test_empty_and_one_block() -> None:
    e, s = mx.quantize(np.zeros((3, 0)), block=2, axis=0)
    assert e.shape == (3, 0)
    assert s.shape == (2, 0)
    e, s = mx.quantize(np.zeros((0, 5)), block=2)
    assert e.shape == (0, 5)
    assert s.shape == (0, 3)
    e, s = mx.quantize(np.ones(5), "e2m1", block=64)
    assert s.shape == (1,)
    assert (e == 4.0).all()
    assert s[0] == 127 - 2


def test_nan_block_elements() -> None:
    elements, scales = mx.quantize(np.array([1.0, NAN, 3.0, 4.0]), block=2)
    assert scales.tolist() == [255, 127 + 2 - 8]
    assert np.isnan(elements[:2]).all()
    assert elements[2:].tolist() == [192.0, 256.0]
    back = mx.dequantize(elements, scales, block=2)
    assert np.isnan(back[:2]).all()
    assert back[2:].tolist() == [3.0, 4.0]
    # a NaN scale makes the whole block NaN, whatever its elements hold
    assert np.isnan(mx.dequantize([1.0, 2.0], np.array([255], dtype=np.uint8), block=2)).all()


# ------------------------------------------------------------------------------------------- errors
def test_errors_name_the_parameter() -> None:
    with pytest.raises(lampref.FormatError) as err:
        mx.quantize([1.0], element="e9m9")
    check_error(err, "element='e9m9'", "'e4m3'", "'int8'")
    with pytest.raises(lampref.FormatError) as err:
        MXSpec("bf16")
    check_error(err, "element=")
    with pytest.raises(lampref.InputValueError) as err:
        mx.quantize([1.0], block=0)
    check_error(err, "block=0", ">= 1")
    with pytest.raises(lampref.InputTypeError) as err:
        MXSpec("e4m3", 2.0)  # type: ignore[arg-type]
    check_error(err, "block=2.0", "integer")
    with pytest.raises(lampref.InputValueError) as err:
        mx.quantize(np.ones((2, 3)), axis=2)
    check_error(err, "axis=2", "-2 <= axis <= 1")
    with pytest.raises(lampref.InputValueError) as err:
        mx.quantize(1.0)
    check_error(err, "x is a scalar")
    with pytest.raises(lampref.InputTypeError) as err:
        mx.quantize(np.array([1 + 2j]))
    check_error(err, "x has dtype complex128")
    with pytest.raises(lampref.ShapeError) as err:
        mx.dequantize(np.ones(33), np.ones(1, dtype=np.uint8))
    check_error(err, "scales has shape (1,)", "(2,)", "block=")
    with pytest.raises(lampref.ShapeError) as err:
        mx.dequantize(np.ones((2, 4)), np.ones((3, 1), dtype=np.uint8), axis=1, block=4)
    check_error(err, "scales has shape (3, 1)", "(2, 1)")
    with pytest.raises(lampref.InputTypeError) as err:
        mx.dequantize(np.ones(4), np.ones(1), block=4)
    check_error(err, "scales has dtype float64", "encode_scales")
    with pytest.raises(lampref.InputValueError) as err:
        mx.dequantize(np.ones(4), np.array([256]), block=4)
    check_error(err, "scales holds values outside 0..255")
    with pytest.raises(lampref.InputValueError) as err:
        mx.encode_scales([3.0])
    check_error(err, "values holds 3.0", "power of two")
    with pytest.raises(lampref.InputValueError):
        mx.encode_scales([2.0**128])
    with pytest.raises(lampref.FormatError) as err:
        mx.get_spec("fp8")
    check_error(err, "name='fp8'", "'mxfp8'", "mx:<element>")
    with pytest.raises(lampref.FormatError) as err:
        mx.get_spec("mxfp6_e4m3")
    check_error(err, "'e4m3'", "mxfp6")
    with pytest.raises(lampref.FormatError):
        mx.get_spec(32)  # type: ignore[arg-type]
