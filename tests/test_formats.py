"""Tests of :mod:`lampref.formats`: the format parameters, derived constants, enumeration and presets.

Oracles, one per group:

* identities and constants: ``numpy.finfo`` (float16/32/64) and ``ml_dtypes.finfo`` (bfloat16, the OCP
  8-bit formats and the MX 6- and 4-bit element types);
* ``values()``: every bit pattern of the corresponding NumPy / ml_dtypes type decoded to float, and for
  random small formats the definition ``m * 2**(e - p + 1)`` enumerated with Python integers;
* presets, aliases, ``replace`` and the pychop bridge: literal tables written here;
* malformed arguments: the exception class (a :class:`~lampref.LamprefError` that is also a ``ValueError`` or
  ``TypeError``) and a message naming the parameter and the accepted values.
"""

from __future__ import annotations

import dataclasses
import math
import types

import ml_dtypes
import numpy as np
import pytest
from _helpers import check_error
from dtype_oracles import DTYPE_OF
from hypothesis import given
from hypothesis import strategies as st

import lampref
from lampref import (
    FloatFormat,
    FormatError,
    bf16,
    e2m1,
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
    p3109,
    tf32,
    to_pychop,
)
from lampref.testing import formats

SMALL = ["fp16", "bf16", "e4m3", "e5m2", "e3m2", "e2m3", "e2m1"]  # at most 16 bits: values() enumerates

# (p, emax, emin, subnormals, encoding, saturate): the parameters every preset must have.
PRESET_PARAMETERS = {
    "fp64": (53, 1023, -1022, True, "ieee", False),
    "fp32": (24, 127, -126, True, "ieee", False),
    "tf32": (11, 127, -126, True, "ieee", False),
    "bf16": (8, 127, -126, True, "ieee", False),
    "fp16": (11, 15, -14, True, "ieee", False),
    "e4m3": (4, 8, -6, True, "fn", False),
    "e5m2": (3, 15, -14, True, "ieee", False),
    "e3m2": (3, 4, -2, True, "none", True),
    "e2m3": (4, 2, 0, True, "none", True),
    "e2m1": (2, 2, 0, True, "none", True),
    "e8m0": (1, 127, -127, False, "e8m0", False),
}

ALIASES = {
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


def finfo(name: str) -> np.finfo | ml_dtypes.finfo:
    dtype = DTYPE_OF[name]
    return np.finfo(dtype) if dtype in (np.float16, np.float32, np.float64) else ml_dtypes.finfo(dtype)


def finite_values_of_dtype(dtype: type) -> np.ndarray:
    """Every finite value of a NumPy / ml_dtypes type, from all its bit patterns, ascending, zero once."""
    width = ml_dtypes.finfo(dtype).bits  # 4 and 6-bit types are stored one per byte
    patterns = np.arange(1 << width, dtype=np.uint16 if np.dtype(dtype).itemsize == 2 else np.uint8)
    with np.errstate(invalid="ignore"):  # ml_dtypes warns when it widens its NaN patterns
        decoded = patterns.view(dtype).astype(np.float64)
    return np.unique(decoded[np.isfinite(decoded)])  # unique() keeps one of -0.0 / +0.0


def enumerate_by_definition(fmt: FloatFormat) -> list[float]:
    """The finite values of a format from its definition, with Python integers and ldexp (exact)."""
    positive = set()
    for e in range(fmt.emin, fmt.emax + 1):
        for m in range(1 << (fmt.p - 1), 1 << fmt.p):
            positive.add(math.ldexp(m, e - fmt.p + 1))
    if fmt.subnormals:
        for m in range(1, 1 << (fmt.p - 1)):
            positive.add(math.ldexp(m, fmt.emin - fmt.p + 1))
    if fmt.encoding == "fn":  # the largest significand of the top binade encodes NaN
        positive.discard(math.ldexp((1 << fmt.p) - 1, fmt.emax - fmt.p + 1))
    return sorted({0.0} | positive | {-v for v in positive})


def small_formats() -> st.SearchStrategy[FloatFormat]:
    """Random formats of at most 12 bits (so that the definition can be enumerated quickly)."""
    return formats(max_p=6, max_emax=12).filter(lambda f: f.bits <= 12)


# ================================================================== identities and constants
@pytest.mark.parametrize("name", list(PRESET_PARAMETERS))
def test_preset_parameters(name: str) -> None:
    fmt = get_format(name)
    p, emax, emin, subnormals, encoding, saturate = PRESET_PARAMETERS[name]
    assert (fmt.p, fmt.emax, fmt.emin, fmt.subnormals, fmt.encoding, fmt.saturate) == (
        p,
        emax,
        emin,
        subnormals,
        encoding,
        saturate,
    )
    assert fmt is getattr(lampref, name)
    assert fmt.name == name


@pytest.mark.parametrize("name", list(DTYPE_OF))
def test_constants_match_finfo(name: str) -> None:
    fmt, fi = get_format(name), finfo(name)
    assert fmt.max == float(fi.max)
    assert fmt.smallest_normal == float(fi.smallest_normal)
    assert fmt.smallest_subnormal == float(fi.smallest_subnormal)
    assert fmt.eps == float(fi.eps)
    assert fmt.bits == fi.bits
    assert fmt.mantissa_bits == fi.nmant
    assert fmt.exponent_bits == fi.nexp
    assert fmt.emax == fi.maxexp - 1
    assert fmt.emin == fi.minexp


@pytest.mark.parametrize("name", list(PRESET_PARAMETERS))
def test_layout_identities(name: str) -> None:
    fmt = get_format(name)
    assert fmt.bits == int(fmt.signed) + fmt.exponent_bits + fmt.p - 1
    assert fmt.mantissa_bits == fmt.p - 1
    assert fmt.unit_roundoff == fmt.eps / 2 == math.ldexp(1.0, -fmt.p)
    assert fmt.has_inf == (fmt.encoding in ("ieee", "p3109_extended"))
    assert fmt.has_nan == (fmt.encoding != "none")


def test_tf32_constants() -> None:
    # no NumPy type: the values of NVIDIA's TF32 written out (19 bits, fp32's exponent, fp16's precision)
    assert tf32.bits == 19
    assert tf32.max == float.fromhex("0x1.ffcp127")
    assert tf32.smallest_normal == float.fromhex("0x1p-126")
    assert tf32.smallest_subnormal == float.fromhex("0x1p-136")
    assert tf32.eps == float.fromhex("0x1p-10")


@pytest.mark.parametrize(
    ("fmt", "dtype"),
    [
        (fp64, np.float64),
        (fp32, np.float32),
        (tf32, np.float32),
        (bf16, np.float32),
        (fp16, np.float32),
        (e4m3, np.float32),
        (e2m1, np.float32),
        (fp32_mantissa(0), np.float32),
        (FloatFormat(p=25, emax=127), np.float64),
        (FloatFormat(p=11, emax=128), np.float64),
        (FloatFormat(p=24, emax=127, emin=-127, subnormals=False), np.float64),
        (FloatFormat(p=20, emax=127), np.float32),  # subnormals down to 2**-145 >= 2**-149
    ],
)
def test_result_dtype(fmt: FloatFormat, dtype: type) -> None:
    assert fmt.dtype == np.dtype(dtype)
    assert fmt.fits_float32 == (dtype is np.float32)


@given(small_formats())
def test_fits_float32_means_every_value_is_a_float32(fmt: FloatFormat) -> None:
    values = fmt.values().astype(np.float64)
    if fmt.fits_float32:
        assert np.array_equal(values.astype(np.float32).astype(np.float64), values)


# ================================================================== values()
@pytest.mark.parametrize("name", SMALL)
def test_values_are_the_finite_values_of_every_bit_pattern(name: str) -> None:
    fmt = get_format(name)
    want = finite_values_of_dtype(DTYPE_OF[name])
    got = fmt.values()
    assert got.dtype == fmt.dtype
    assert len(got) == fmt.n_finite == len(want)
    np.testing.assert_array_equal(got.astype(np.float64), want)


@given(small_formats())
def test_values_follow_the_definition(fmt: FloatFormat) -> None:
    got = fmt.values()
    want = enumerate_by_definition(fmt)
    assert got.dtype == fmt.dtype
    assert len(got) == fmt.n_finite
    assert got.astype(np.float64).tolist() == want
    assert want[-1] == fmt.max
    assert min(v for v in want if v > 0) == fmt.smallest_subnormal
    assert min(v for v in want if v >= fmt.smallest_normal) == fmt.smallest_normal
    assert not np.signbit(got[len(got) // 2])  # the single zero is +0


@pytest.mark.parametrize("name", ["fp32", "tf32", "fp64", "fp32_m16"])
def test_values_refuse_wide_formats(name: str) -> None:
    with pytest.raises(FormatError, match="16 bits"):
        get_format(name).values()


def test_n_finite_of_wide_formats() -> None:
    # all bit patterns minus the NaNs (nonzero fraction, top exponent), the 2 infinities and one zero
    assert fp32.n_finite == 2**32 - 2 * (2**23 - 1) - 2 - 1
    assert fp64.n_finite == 2**64 - 2 * (2**52 - 1) - 2 - 1
    assert fp16.n_finite == 2**16 - 2 * (2**10 - 1) - 2 - 1


# ================================================================== presets and aliases
def test_format_names_are_the_presets() -> None:
    assert format_names() == list(PRESET_PARAMETERS)


@pytest.mark.parametrize(("alias", "name"), list(ALIASES.items()))
def test_aliases(alias: str, name: str) -> None:
    assert get_format(alias) is get_format(name)
    assert get_format(f"  {alias.upper()} ") is get_format(name)


def test_get_format_returns_formats_unchanged() -> None:
    custom = FloatFormat(p=5, emax=6, name="custom")
    assert get_format(custom) is custom


@pytest.mark.parametrize("m", [0, 1, 7, 10, 22, 23])
def test_fp32_mantissa(m: int) -> None:
    fmt = fp32_mantissa(m)
    assert (fmt.p, fmt.emax, fmt.emin, fmt.subnormals, fmt.encoding, fmt.saturate) == (
        m + 1,
        127,
        -126,
        True,
        "ieee",
        False,
    )
    assert fmt.max == math.ldexp(2.0 - math.ldexp(1.0, -m), 127)
    assert fmt.smallest_subnormal == math.ldexp(1.0, -126 - m)
    assert fmt.fits_float32
    assert get_format(f"fp32_m{m}") == fmt
    assert get_format(f"FP32_M{m}").name == f"fp32_m{m}"


def test_fp32_mantissa_special_cases() -> None:
    assert fp32_mantissa(7) == bf16
    assert fp32_mantissa(23) == fp32
    assert fp32_mantissa(10) != fp16
    assert fp32_mantissa(10).p == fp16.p
    assert fp32_mantissa(10) == tf32


# ================================================================== values semantics
def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        fp16.p = 12  # type: ignore[misc]
    with pytest.raises((dataclasses.FrozenInstanceError, AttributeError, TypeError)):
        fp16.extra = 1  # type: ignore[attr-defined]
    assert fp16.p == 11


def test_hashable_and_equal_ignoring_name() -> None:
    twin = FloatFormat(p=11, emax=15, emin=-14, name="another name")
    assert twin == fp16
    assert hash(twin) == hash(fp16)
    table = {fp16: "half"}
    assert table[twin] == "half"
    assert len({fp16, twin, FloatFormat(p=11, emax=15)}) == 1
    assert fp32_mantissa(7) in {bf16}
    assert fp16 != "fp16"
    assert fp16 != 11


def test_defaults_are_normalised() -> None:
    assert FloatFormat(p=3, emax=4) == FloatFormat(p=3, emax=4, emin=-3, subnormals=True, encoding="ieee")
    assert FloatFormat(p=3, emax=4, saturate=None) == FloatFormat(p=3, emax=4, saturate=False)
    assert FloatFormat(p=3, emax=4, emin=-2, encoding="none") == e3m2
    assert FloatFormat(p=3, emax=4, emin=-2, encoding="none", saturate=True) == e3m2
    assert FloatFormat(p=np.int64(3), emax=np.int32(4)).p == 3


@pytest.mark.parametrize(
    "changes",
    [
        {"p": 12},
        {"emax": 16},
        {"emin": -13},
        {"subnormals": False},
        {"encoding": "fn"},
        {"saturate": True},
    ],
)
def test_every_parameter_takes_part_in_equality(changes: dict[str, object]) -> None:
    assert fp16.replace(**changes) != fp16


def test_replace() -> None:
    flush = fp16.replace(subnormals=False)
    assert (flush.p, flush.emax, flush.emin, flush.subnormals) == (11, 15, -14, False)
    assert flush.name is None
    assert fp16.subnormals  # the original is untouched
    assert fp16.replace(emax=7).emin == -14  # emin kept unless given
    assert fp16.replace(emax=7, emin=-6) == FloatFormat(p=11, emax=7)
    assert e2m1.replace(p=3) == FloatFormat(p=3, emax=2, emin=0, encoding="none")
    assert e2m1.replace(p=3).saturate
    assert e4m3.replace(saturate=True).saturate
    assert e4m3.replace(saturate=True).max == 448.0
    assert fp16.replace(name="mine").name == "mine"
    assert fp16.replace() == fp16
    with pytest.raises(FormatError, match="emin"):
        fp16.replace(emin=16)


def test_repr_names_the_parameters() -> None:
    assert repr(fp16) == "FloatFormat(fp16: p=11, emax=15, emin=-14)"
    text = repr(e4m3.replace(saturate=True, subnormals=False))
    assert "subnormals=False" in text
    assert "encoding='fn'" in text
    assert "saturate=True" in text


# ================================================================== pychop bridge (no pychop import)
@pytest.mark.parametrize(
    ("desc", "fmt"),
    [
        ("h", fp16),
        ("half", fp16),
        ("b", bf16),
        ("bfloat16", bf16),
        ("s", fp32),
        ("single", fp32),
        ("d", fp64),
        ("double", fp64),
        ("q52", e5m2),
        ("fp8-e5m2", e5m2),
        ("q43", FloatFormat(p=4, emax=7)),
        ("FP8-E4M3", FloatFormat(p=4, emax=7)),
        ({"exp_bits": 5, "sig_bits": 10}, fp16),
        ({"exp_bits": 5, "sig_bits": 10, "subnormal": False}, fp16.replace(subnormals=False)),
        ({"exp_bits": 8, "sig_bits": 0}, fp32_mantissa(0)),
        (types.SimpleNamespace(exp_bits=8, sig_bits=7), bf16),
        (types.SimpleNamespace(exp_bits=5, sig_bits=10, subnormal=False), fp16.replace(subnormals=False)),
    ],
)
def test_from_pychop(desc: object, fmt: FloatFormat) -> None:
    assert from_pychop(desc) == fmt


def test_pychop_e4m3_is_ieee_like() -> None:
    q43 = from_pychop("q43")
    assert q43.max == 240.0
    assert q43.has_inf
    assert q43 != e4m3


@pytest.mark.parametrize(
    ("fmt", "kwargs"),
    [
        (fp16, {"exp_bits": 5, "sig_bits": 10, "subnormal": True}),
        ("bf16", {"exp_bits": 8, "sig_bits": 7, "subnormal": True}),
        (fp32, {"exp_bits": 8, "sig_bits": 23, "subnormal": True}),
        (fp64, {"exp_bits": 11, "sig_bits": 52, "subnormal": True}),
        (e5m2, {"exp_bits": 5, "sig_bits": 2, "subnormal": True}),
        (fp16.replace(subnormals=False), {"exp_bits": 5, "sig_bits": 10, "subnormal": False}),
        (fp32_mantissa(3), {"exp_bits": 8, "sig_bits": 3, "subnormal": True}),
    ],
)
def test_to_pychop(fmt: FloatFormat | str, kwargs: dict[str, object]) -> None:
    assert to_pychop(fmt) == kwargs


@pytest.mark.parametrize(
    "fmt",
    [e4m3, e2m1, e3m2, fp16.replace(saturate=True), fp16.replace(emin=-10), FloatFormat(p=11, emax=14)],
)
def test_to_pychop_refuses_formats_pychop_lacks(fmt: FloatFormat) -> None:
    with pytest.raises(FormatError, match="pychop"):
        to_pychop(fmt)


@given(exp_bits=st.integers(2, 11), sig_bits=st.integers(0, 52), subnormal=st.booleans())
def test_pychop_round_trip(exp_bits: int, sig_bits: int, subnormal: bool) -> None:
    desc = {"exp_bits": exp_bits, "sig_bits": sig_bits, "subnormal": subnormal}
    fmt = from_pychop(desc)
    assert fmt.emax == 2 ** (exp_bits - 1) - 1
    assert fmt.emin == 1 - fmt.emax
    assert fmt.p == sig_bits + 1
    assert to_pychop(fmt) == desc
    assert from_pychop(to_pychop(fmt)) == fmt


# ================================================================== malformed arguments
@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"p": 0, "emax": 15}, ["p=0", "1 <= p <= 53"]),
        ({"p": -3, "emax": 15}, ["p=-3", "1 <= p <= 53"]),
        ({"p": 54, "emax": 15}, ["p=54", "1 <= p <= 53"]),
        ({"p": 11.0, "emax": 15}, ["p must be an integer", "11.0"]),
        ({"p": "11", "emax": 15}, ["p must be an integer"]),
        ({"p": True, "emax": 15}, ["p must be an integer"]),
        ({"p": 11, "emax": 15.5}, ["emax must be an integer"]),
        ({"p": 11, "emax": 15, "emin": -14.0}, ["emin must be an integer"]),
        ({"p": 11, "emax": 2, "emin": 3}, ["emin=3 > emax=2", "emin <= emax"]),
        ({"p": 11, "emax": 1024}, ["emax=1024", "emax <= 1023"]),
        ({"p": 11, "emax": 15, "emin": -1023}, ["emin=-1023", "emin >= -1022"]),
        ({"p": 11, "emax": 15, "encoding": "ocp"}, ["encoding='ocp'", "'ieee'", "'fn'", "'none'"]),
        ({"p": 11, "emax": 15, "encoding": "IEEE"}, ["encoding='IEEE'", "'ieee'", "'fn'", "'none'"]),
        ({"p": 3, "emax": 4, "encoding": "none", "saturate": False}, ["encoding='none'", "saturate"]),
        ({"p": 1, "emax": 4, "encoding": "fn"}, ["p=1", "'fn'", "p >= 2"]),
        ({"p": 11, "emax": 15, "subnormals": "yes"}, ["subnormals", "True or False"]),
        ({"p": 11, "emax": 15, "saturate": 1}, ["saturate", "True, False or None"]),
    ],
)
def test_malformed_format(kwargs: dict[str, object], fragments: list[str]) -> None:
    with pytest.raises(FormatError) as err:
        FloatFormat(**kwargs)  # type: ignore[arg-type]
    check_error(err, *fragments)


def test_the_extremes_of_the_container_are_accepted() -> None:
    assert FloatFormat(p=53, emax=1023, emin=-1022) == fp64
    assert FloatFormat(p=1, emax=1, emin=1).n_finite == 3
    assert FloatFormat(p=1, emax=-5, emin=-7).max == 2.0**-5


@pytest.mark.parametrize(
    ("name", "fragments"),
    [("fp17", ["format='fp17'", "'fp16'", "'bf16'", "'e4m3'", "fp32_m<0..23>"]), ("", ["format=''"])],
)
def test_unknown_format_name(name: str, fragments: list[str]) -> None:
    with pytest.raises(FormatError) as err:
        get_format(name)
    check_error(err, *fragments)


@pytest.mark.parametrize("bad", [16, None, 3.5, ("p", 11)])
def test_get_format_of_a_non_name(bad: object) -> None:
    with pytest.raises(FormatError) as err:
        get_format(bad)  # type: ignore[arg-type]
    check_error(err, "format must be a FloatFormat or a name")


@pytest.mark.parametrize(("m", "fragments"), [(24, ["m=24", "0 <= m <= 23"]), (-1, ["m=-1", "0 <= m <= 23"])])
def test_fp32_mantissa_out_of_range(m: int, fragments: list[str]) -> None:
    with pytest.raises(FormatError) as err:
        fp32_mantissa(m)
    check_error(err, *fragments)
    with pytest.raises(FormatError):
        get_format(f"fp32_m{m}")


def test_fp32_mantissa_needs_an_integer() -> None:
    with pytest.raises(FormatError) as err:
        fp32_mantissa(7.0)  # type: ignore[arg-type]
    check_error(err, "m must be an integer")


@pytest.mark.parametrize(
    ("desc", "fragments"),
    [
        ("e4m3fn", ["pychop precision='e4m3fn'", "'h'", "'q43'"]),
        ({"exp_bits": 5}, ["exp_bits", "sig_bits", "missing"]),
        ({"exp_bits": 1, "sig_bits": 3}, ["exp_bits=1", "exp_bits >= 2"]),
        ({"exp_bits": 5, "sig_bits": 2.0}, ["sig_bits must be an integer"]),
        ({"exp_bits": 12, "sig_bits": 10}, ["emax=2047"]),
        ({"exp_bits": 5, "sig_bits": 53}, ["p=54"]),
        (42, ["cannot read a pychop format", "exp_bits and sig_bits"]),
    ],
)
def test_malformed_pychop_description(desc: object, fragments: list[str]) -> None:
    with pytest.raises(FormatError) as err:
        from_pychop(desc)
    check_error(err, *fragments)


@given(small_formats())
def test_random_formats_have_consistent_layout(fmt: FloatFormat) -> None:
    assert fmt.bits == 1 + fmt.exponent_bits + fmt.p - 1
    # the exponent field holds the normal binades, the zero/subnormal code and (IEEE) the inf/NaN code
    codes = fmt.emax - fmt.emin + 2 + (fmt.encoding == "ieee")
    assert codes <= 2**fmt.exponent_bits
    assert fmt.exponent_bits == 1 or codes > 2 ** (fmt.exponent_bits - 1)
    assert 0 < fmt.smallest_subnormal <= fmt.smallest_normal <= fmt.max


def test_fixed_layouts_are_values() -> None:
    # P3109 and E8M0 formats are hashable values like any other, and replace() keeps the layout
    p8 = p3109(8, 3, signed=False, domain="finite")
    assert {p8: 1}[p3109(8, 3, signed=False, domain="finite")] == 1
    assert p8 != p3109(8, 3, domain="finite")
    expected = "FloatFormat(p3109_k8p3uf: p=3, emax=31, emin=-31, encoding='p3109_finite', signed=False)"
    assert repr(p8) == expected
    sat = p8.replace(saturate=True)
    assert (sat.signed, sat.encoding, sat.saturate, sat.max) == (False, "p3109_finite", True, p8.max)
    assert get_format("float8_e8m0fnu") is get_format("e8m0")
    assert (p8.bits, p8.exponent_bits, p8.exponent_bias) == (8, 6, 32)
