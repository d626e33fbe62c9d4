"""lampref.validate, the validator's toolkit: bit patterns against NumPy and ml_dtypes (every code point of
every 8- and 16-bit format they cover) and against the enumeration of a format's values; compare reports
counted by hand and by position in the enumeration; explain against hand-written scalar kernels; golden
vectors written, checked and refused, through the library and the command line; ml_dtypes inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from _helpers import check_error
from dtype_oracles import DTYPE_OF
from hypothesis import example, given
from hypothesis import strategies as st

import lampref as L  # noqa: N812
import lampref.hardware
from lampref.cli import main
from lampref.validate import (
    AccumulationModel,
    ExactlyRounded,
    accumulator_spec,
    bits_dtype,
    check_golden,
    compare,
    decode,
    default_candidates,
    encode,
    explain,
    parse_accumulator,
    write_golden,
)

# The formats ml_dtypes implements (bf16, fp8, fp6, fp4) and numpy's float16, each with all its codes.
CODE_FORMATS = ["fp16", "bf16", "e4m3", "e5m2", "e3m2", "e2m3", "e2m1"]


def _all_codes(fmt: L.FloatFormat) -> np.ndarray:
    return np.arange(1 << fmt.bits, dtype=np.uint64).astype(bits_dtype(fmt))


def _same_bits(x: np.ndarray, y: np.ndarray) -> bool:
    """Equal values with equal signs (zeros included), NaN where NaN with the same sign."""
    with np.errstate(invalid="ignore"):  # signalling NaNs
        x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
    nan = np.isnan(x64)
    return bool(
        (nan == np.isnan(y64)).all()
        and (np.signbit(x64) == np.signbit(y64)).all()
        and (x64[~nan] == y64[~nan]).all()
    )


# ----------------------------------------------------------------------------- bit patterns
@pytest.mark.parametrize("name", CODE_FORMATS)
def test_decode_every_code_point_matches_numpy_and_ml_dtypes(name: str) -> None:
    fmt = L.get_format(name)
    codes = _all_codes(fmt)
    ref = codes.view(DTYPE_OF[name]).astype(np.float32)  # the oracle's value of each pattern
    ours = decode(codes, fmt)
    assert ours.dtype == np.float32
    assert _same_bits(ours, ref)


@pytest.mark.parametrize("name", CODE_FORMATS)
def test_encode_every_value_matches_numpy_and_ml_dtypes(name: str) -> None:
    fmt = L.get_format(name)
    codes = _all_codes(fmt)
    ref = codes.view(DTYPE_OF[name])  # the oracle's arrays, NaNs included
    nan = np.isnan(ref.astype(np.float32))
    np.testing.assert_array_equal(encode(ref, fmt)[~nan], codes[~nan])
    np.testing.assert_array_equal(encode(decode(codes, fmt), fmt), codes)  # NaN payloads included
    assert encode(ref, fmt).dtype == bits_dtype(fmt)


def test_fp16_nan_payloads_round_trip_through_float16() -> None:
    codes = _all_codes(L.fp16)
    np.testing.assert_array_equal(encode(codes.view(np.float16), "fp16"), codes)


def test_tf32_codes_are_float32s_top_19_bits() -> None:
    codes = np.arange(1 << 19, dtype=np.uint32)
    ref = (codes << np.uint32(13)).view(np.float32)
    assert _same_bits(decode(codes, "tf32"), ref)
    np.testing.assert_array_equal(encode(decode(codes, "tf32"), "tf32"), codes)


@pytest.mark.parametrize(
    ("name", "udt", "fdt"), [("fp32", np.uint32, np.float32), ("fp64", np.uint64, np.float64)]
)
def test_fp32_and_fp64_random_codes_match_the_view(name: str, udt: Any, fdt: Any) -> None:
    rng = np.random.default_rng(7)
    width = 8 * np.dtype(udt).itemsize
    codes = rng.integers(0, 1 << width, size=50_000, dtype=np.uint64, endpoint=False).astype(udt)
    ones = (1 << (width - 1)) - 1
    codes[:6] = [0, 1 << (width - 1), 1, ones, ones - 1, 1 << (width - 2)]  # zeros, subnormal, NaN, inf...
    assert _same_bits(decode(codes, name), codes.view(fdt))
    np.testing.assert_array_equal(encode(codes.view(fdt), name), codes)


@st.composite
def small_formats(draw: st.DrawFn) -> L.FloatFormat:
    encoding = draw(st.sampled_from(["ieee", "fn", "none"]))
    p = draw(st.integers(2 if encoding == "fn" else 1, 5))
    emax = draw(st.integers(0, 6))
    emin = draw(st.integers(-6, emax))
    fmt = L.FloatFormat(p=p, emax=emax, emin=emin, subnormals=draw(st.booleans()), encoding=encoding)
    return fmt


@given(small_formats())
@example(L.e4m3)
@example(L.e2m1)
@example(L.FloatFormat(p=3, emax=5, emin=-2))  # unused exponent codes between emax and the all-ones field
@example(L.FloatFormat(p=1, emax=3))  # no mantissa bit: no NaN pattern
def test_codes_count_the_values_of_any_format(fmt: L.FloatFormat) -> None:
    """The k-th positive value of the enumeration is code k (with subnormals) or 2**t - 1 + k (without),
    negatives set the sign bit, and every code that is not a value, infinity or NaN is refused."""
    values = fmt.values().astype(np.float64)
    positive = values[values > 0]
    t = fmt.p - 1
    first = 1 if fmt.subnormals else 1 << t
    np.testing.assert_array_equal(encode(positive, fmt), first + np.arange(positive.size))
    sign = 1 << (fmt.bits - 1)
    np.testing.assert_array_equal(encode(-positive, fmt), sign + first + np.arange(positive.size))
    assert _same_bits(decode(encode(values, fmt), fmt), values)
    specials = [np.inf, -np.inf] if fmt.has_inf else []
    specials += [np.nan, -np.nan] if fmt.has_nan and (t > 0 or fmt.encoding == "fn") else []
    known = set(encode(np.array([*values, -0.0, *specials]), fmt).tolist())
    for code in range(1 << fmt.bits):
        if code in known:
            continue
        nan_code = (
            fmt.encoding == "ieee"
            and (code >> t) & ((1 << fmt.exponent_bits) - 1) == (1 << fmt.exponent_bits) - 1
        )
        if nan_code:
            assert np.isnan(decode([code], fmt)[0])
        else:
            with pytest.raises(L.InputValueError, match="is not a code of"):
                decode([code], fmt)


@given(st.floats(width=16), st.floats(width=32), st.floats(width=64))
@example(-0.0, -0.0, -0.0)
def test_ieee_round_trips(x16: float, x32: float, x64: float) -> None:
    for x, name, dt in ((x16, "fp16", np.float16), (x32, "fp32", np.float32), (x64, "fp64", np.float64)):
        arr = np.array([x], dtype=dt)
        bits = encode(arr, name)
        np.testing.assert_array_equal(bits, arr.view(bits_dtype(name)))
        assert _same_bits(decode(bits, name), arr)


def test_encode_and_decode_refuse_what_is_not_a_code() -> None:
    with pytest.raises(L.InputValueError) as err:
        encode([1.0, 0.1], "fp16")
    check_error(err, "x[1] = 0.1", "round_to")
    with pytest.raises(L.InputValueError, match="inf"):
        encode([np.inf], "e4m3")
    with pytest.raises(L.InputValueError, match="nan"):
        encode([np.nan], "e2m1")
    with pytest.raises(L.InputValueError) as err:
        decode(np.uint16([1, 1 << 8]), "e4m3")
    check_error(err, "bits[1] = 256", "8-bit pattern")
    with pytest.raises(L.InputValueError):
        decode([-1], "fp16")
    with pytest.raises(L.InputTypeError) as err:
        decode(np.float32([1.0]), "fp16")
    check_error(err, "bits has dtype float32", "unsigned integers")
    with pytest.raises(L.InputValueError, match="not a code"):  # a subnormal pattern of an FTZ format
        decode([1], L.fp16.replace(subnormals=False))


# ----------------------------------------------------------------------------- ml_dtypes inputs
@pytest.mark.parametrize("name", ["bf16", "e4m3", "e5m2", "e3m2", "e2m3", "e2m1"])
def test_round_to_and_matmul_accept_ml_dtypes_arrays(name: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 5)).astype(np.float32).astype(DTYPE_OF[name])  # [6, 5]
    y = rng.standard_normal((5, 4)).astype(np.float32).astype(DTYPE_OF[name])  # [5, 4]
    x32, y32 = x.astype(np.float32), y.astype(np.float32)  # ml_dtypes' own widening: the oracle
    np.testing.assert_array_equal(L.round_to(x, "e5m2"), L.round_to(x32, "e5m2"))
    acc = L.Accumulator("fp16")
    np.testing.assert_array_equal(L.matmul(x, y, acc), L.matmul(x32, y32, acc))


# ----------------------------------------------------------------------------- compare
def test_compare_counts_by_hand() -> None:
    actual = [1.0, 1.0009765625, 2.0, -0.0, np.nan, np.inf, 65504.0, np.nan, 3.0]
    expected = [1.0, 1.0, 2.00390625, 0.0, 3.0, 65504.0, 65504.0, np.nan, -3.0]
    r = compare(actual, expected, "fp16")
    assert (r.size, r.exact, r.within_one_ulp, r.worse) == (9, 3, 3, 3)
    assert (r.nan_mismatches, r.inf_mismatches, r.signed_zero_mismatches) == (1, 1, 1)
    assert r.max_ulp == 2 * int(L.metrics.ulp_distance(0.0, 3.0, "fp16"))
    assert not r.bit_exact
    assert r.histogram[:3] == ((0, 0, 3), (1, 1, 2), (2, 2, 1))  # +-0: distance 0
    assert r.worst[0].index == (4,)
    assert r.worst[0].ulps is None
    assert r.worst[1].index == (8,)
    assert r.worst[1].ulps == r.max_ulp
    text = str(r)
    for fragment in ("bit-exact", "within 1 ulp", "worse", "NaN mismatches", "histogram", "0x4200", "0xc200"):
        assert fragment in text


def test_compare_matches_positions_in_the_enumeration() -> None:
    """ulps counted as the difference of positions in fmt.values() (one zero), for random e4m3 pairs."""
    fmt = L.e4m3
    values = fmt.values().astype(np.float64)
    rng = np.random.default_rng(3)
    i, j = rng.integers(0, values.size, size=(2, 5000))
    r = compare(values[i], values[j], fmt, worst=3)
    d = np.abs(i - j)
    assert (r.exact, r.within_one_ulp, r.worse) == (
        int((d == 0).sum()),
        int((d == 1).sum()),
        int((d > 1).sum()),
    )
    assert r.max_ulp == int(d.max())
    assert sum(n for _, _, n in r.histogram) == d.size
    assert [w.ulps for w in r.worst] == sorted(d, reverse=True)[:3]


def test_compare_bad_input() -> None:
    with pytest.raises(L.ShapeError) as err:
        compare([1.0, 2.0], [1.0], "fp16")
    check_error(err, "(2,)", "(1,)")
    with pytest.raises(L.InputValueError) as err:
        compare([[1.0, 0.1]], [[1.0, 1.0]], "fp16")
    check_error(err, "actual[0, 1] = 0.1", "fp16")
    assert compare(np.array([1.5], ml_dtypes.bfloat16), [1.5], "bf16").bit_exact


# ----------------------------------------------------------------------------- explain
def _operands(seed: int, M: int = 6, K: int = 48, N: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K)) * np.ldexp(1.0, rng.integers(-4, 5, size=(M, K)))
    b = rng.standard_normal((K, N)) * np.ldexp(1.0, rng.integers(-4, 5, size=(K, N)))
    return L.round_to(a, "fp16").astype(np.float16), L.round_to(b, "fp16").astype(np.float16)


def _loop_fp16(a: np.ndarray, b: np.ndarray, c: np.ndarray | None, *, fma: bool) -> np.ndarray:
    """An fp16 kernel written as a scalar loop: fl16(s + a*b) with the product exact (fma; float64 holds
    it, and float64 -> float16 after a float64 sum is a correct rounding as 53 >= 2*11 + 2) or rounded to
    fp16 first (NumPy's float16 arithmetic, correctly rounded for the same reason)."""
    M, N = a.shape[0], b.shape[1]
    out = np.zeros((M, N), dtype=np.float16)
    for i in range(M):
        for j in range(N):
            s = np.float16(0.0) if c is None else np.float16(c[i, j])
            for k in range(a.shape[1]):
                if fma:
                    s = np.float16(np.float64(s) + np.float64(a[i, k]) * np.float64(b[k, j]))
                else:
                    s = np.float16(s + a[i, k] * b[k, j])
            out[i, j] = s
    return out


def _pairwise_fp32(p: np.ndarray) -> np.ndarray:
    """Float32 pairwise sum over the last axis: the first floor(n/2) terms, then the rest."""
    n = p.shape[-1]
    if n == 1:
        return p[..., 0]
    return (_pairwise_fp32(p[..., : n // 2]) + _pairwise_fp32(p[..., n // 2 :])).astype(np.float32)


def test_explain_names_the_scalar_kernels() -> None:
    a, b = _operands(0)
    fused = explain(a, b, _loop_fp16(a, b, None, fma=True))
    assert "fp16 sequential" in fused.matches
    assert "fp16 reverse" not in fused.matches
    unfused = explain(a, b, _loop_fp16(a, b, None, fma=False))
    assert "fp16 sequential, products rounded to fp16" in unfused.matches
    assert "fp16 sequential" not in unfused.matches
    products = a.astype(np.float32)[:, None, :] * b.T.astype(np.float32)[None, :, :]  # [M, N, K], exact
    pairwise = explain(a, b, _pairwise_fp32(products))
    assert "fp32 pairwise" in pairwise.matches
    assert "fp32 sequential" not in pairwise.matches
    assert "reproduced bit for bit by:" in str(pairwise)


def test_explain_with_an_addend_first_and_last() -> None:
    a, b = _operands(1)
    c = L.round_to(np.random.default_rng(2).standard_normal((6, 5)) * 8, "fp16").astype(np.float16)
    first = explain(a, b, _loop_fp16(a, b, c, fma=True), c=c)
    assert "fp16 sequential, c first" in first.matches
    assert "fp16 sequential" not in first.matches
    last_kernel = (_loop_fp16(a, b, None, fma=True).astype(np.float64) + c).astype(np.float16)
    last = explain(a, b, last_kernel, c=c)
    assert "fp16 sequential" in last.matches
    assert "fp16 sequential, c first" not in last.matches
    exact_bits = explain(a, b, ExactlyRounded("fp16")(a, b, c), c=c, fmt="fp16")
    assert "exact, rounded once to fp16" in exact_bits.matches


def test_exactly_rounded_against_fractions() -> None:
    from fractions import Fraction

    a, b = _operands(4, M=3, K=40, N=3)
    ours = ExactlyRounded("bf16")(a, b)
    for i in range(3):
        for j in range(3):
            s = sum(Fraction(float(a[i, k])) * Fraction(float(b[k, j])) for k in range(40))
            # the float64 nearest the exact sum, then bf16 via round_to (53 >= 2*8 + 2: a correct rounding)
            assert float(ours[i, j]) == float(L.round_to(float(s), "bf16"))


def test_explain_candidates_inputs_and_summary() -> None:
    a, b = _operands(5)
    actual = L.matmul(a, b, L.Accumulator("bf16", order="reverse"))  # float32 holding bf16 values

    def wrong_format(a: Any, b: Any, c: Any) -> Any:
        return L.round_to(np.float64(a) @ np.float64(b), "fp16")

    def refuses(a: Any, b: Any, c: Any) -> Any:
        raise L.InputValueError("these inputs are not fp8 values")

    cands = [L.Accumulator("bf16"), L.Accumulator("bf16", order="reverse"), wrong_format, refuses]
    e = explain(a, b, actual, cands, fmt="bf16")
    assert e.matches == ("bf16 reverse",)
    assert e.results[2].report is not None or "not a value of" in str(e.results[2].error)
    assert e.results[3].error == "these inputs are not fp8 values"
    assert "not applicable: these inputs are not fp8 values" in str(e)
    assert e.closest is not None
    assert e.closest.name == "bf16 reverse"
    inferred = explain(a, b, actual.astype(ml_dtypes.bfloat16), cands[:2])
    assert inferred.fmt == L.bf16
    assert inferred.matches == ("bf16 reverse",)
    none = explain(a, b, actual, cands[:1], fmt="bf16")
    assert "no candidate reproduces actual; closest: bf16 sequential" in str(none)


def test_explain_bad_input() -> None:
    a, b = _operands(6)
    good = np.zeros((6, 5), np.float16)
    with pytest.raises(L.ShapeError) as err:
        explain(a, b.T, good)
    check_error(err, "(M, K)", "(K, N)")
    with pytest.raises(L.ShapeError) as err:
        explain(a, b, good[:, :4])
    check_error(err, "(6, 4)", "(6, 5)")
    with pytest.raises(L.ShapeError) as err:
        explain(a, b, good, c=np.zeros(3))
    check_error(err, "c has shape (3,)")
    with pytest.raises(L.FormatError) as err:
        explain(a, b, good.astype(np.int32))
    check_error(err, "int32", "fmt=")
    with pytest.raises(L.ModeError) as err:
        explain(a, b, good, ["fp16"])
    check_error(err, "'fp16'", "callable")
    with pytest.raises(L.ModeError) as err:
        AccumulationModel(L.Accumulator("fp16", order="pairwise"), addend="first")
    check_error(err, "addend='first'")
    with pytest.raises(L.ModeError) as err:
        AccumulationModel(L.Accumulator("fp16", mode="stochastic"))
    check_error(err, "stochastic", "deterministic")


def test_explain_names_the_tensor_core_preset() -> None:
    """The matrix-unit models are default candidates for inputs they hold: a V100 product is told apart
    from the Hopper one and from every software model."""
    a, b = _operands(8, M=8, K=64, N=8)
    actual = L.hardware.gemm(a, b, gpu="V100", in_format="fp16", out_format="fp32")
    e = explain(a, b, actual)
    assert "matrix unit of V100 (fp16 -> fp32)" in e.matches
    assert not any("H100" in name for name in e.matches)
    assert not any(name.startswith("fp32 ") for name in e.matches)
    assert "matrix unit of V100 (fp16 -> fp32)" in str(e)
    assert not any("e4m3" in r.name for r in e.results)  # fp16 inputs: no fp8 mode is tried


def test_default_candidates_names_are_unique() -> None:
    for fmt in ("fp16", "bf16", "fp32", "e4m3", "fp64"):
        names = [m.name for m in default_candidates(fmt, addend=True)]
        assert len(names) == len(set(names)), fmt


# ----------------------------------------------------------------------------- accumulator specs
@pytest.mark.parametrize(
    "acc",
    [
        L.Accumulator("fp16"),
        L.Accumulator("fp32", order="pairwise", block=32, block_fmt="bf16"),
        L.Accumulator.authors(10),
        L.Accumulator("bf16", products="fp16", mode="toward_zero"),
    ],
)
def test_accumulator_spec_round_trips(acc: L.Accumulator) -> None:
    spec = accumulator_spec(acc)
    assert spec is not None
    assert parse_accumulator(spec) == acc


def test_accumulator_spec_errors() -> None:
    assert accumulator_spec(L.Accumulator(L.FloatFormat(p=5, emax=9))) is None
    for spec, fragment in [("", "FORMAT"), ("fp16,block", "FIELD=VALUE"), ("fp16,order=x", "order")]:
        with pytest.raises(L.LamprefError, match=re.escape(fragment)):
            parse_accumulator(spec)
    with pytest.raises(L.ModeError, match="repeats"):
        parse_accumulator("fp16,block=2,block=3")
    with pytest.raises(L.ModeError, match="fma='yes'"):
        parse_accumulator("fp32_m4,staging=fp32,fma=yes")


# ----------------------------------------------------------------------------- golden vectors
def _golden(tmp_path: Path, *argv: str) -> Path:
    folder = tmp_path / "golden"
    assert main(["golden", str(folder), *argv]) == 0
    return folder


def test_golden_round_trip_through_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _golden(tmp_path, "--format", "fp16", "--accumulator", "fp16", "--shape", "3", "40", "4")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["shapes"] == {"a": [3, 40], "b": [40, 4], "expected": [3, 4]}
    assert manifest["accumulator_spec"] == "fp16"
    assert manifest["accumulator"]["order"] == "sequential"
    assert manifest["input_format"]["p"] == 11
    assert manifest["versions"]["lampref"] == L.__version__
    a = decode(np.load(folder / "a.npy"), "fp16").astype(np.float16)
    b = decode(np.load(folder / "b.npy"), "fp16").astype(np.float16)
    expected = np.load(folder / "expected.npy")
    assert expected.dtype == np.uint16
    np.testing.assert_array_equal(_loop_fp16(a, b, None, fma=True).view(np.uint16), expected)  # the oracle
    capsys.readouterr()
    assert main(["check", str(folder), str(folder / "expected.npy")]) == 0
    assert "bit-exact: yes" in capsys.readouterr().out
    perturbed = expected.copy()
    perturbed[1, 2] += 1  # one ulp (same sign, no carry into the exponent here)
    perturbed[2, 3] += 3
    np.save(tmp_path / "actual.npy", perturbed)
    assert main(["check", str(folder), str(tmp_path / "actual.npy")]) == 1
    out = capsys.readouterr().out
    assert "bit-exact: no" in out
    assert "(2, 3)" in out
    assert "(1, 2)" in out
    report = check_golden(folder, tmp_path / "actual.npy")
    assert (report.exact, report.within_one_ulp, report.worse, report.max_ulp) == (10, 1, 1, 3)


def test_golden_check_accepts_values_and_arrays(tmp_path: Path) -> None:
    folder = tmp_path / "g"
    write_golden(folder, L.Accumulator("fp32"), in_format="e4m3", out_format="bf16", shape=(2, 64, 3), seed=5)
    bits = np.load(folder / "expected.npy")
    values = bits.view(ml_dtypes.bfloat16)
    assert check_golden(folder, values).bit_exact
    np.save(tmp_path / "values.npy", values.astype(np.float32))
    assert check_golden(folder, tmp_path / "values.npy").bit_exact
    a = np.load(folder / "a.npy")
    assert a.dtype == np.uint8
    oracle = a.view(ml_dtypes.float8_e4m3fn).astype(np.float64) @ decode(np.load(folder / "b.npy"), "e4m3")
    # K = 64 products of e4m3 values are exact in float64 and so is their sum: fp32 accumulation of exact
    # float32 products rounds nothing here, and bf16 of float64 is ml_dtypes' float32 route (exact values).
    np.testing.assert_array_equal(oracle.astype(np.float32).astype(ml_dtypes.bfloat16).view(np.uint16), bits)


def test_golden_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _golden(tmp_path, "--accumulator", "fp32", "--out-format", "fp16", "--shape", "2", "8", "2")
    cases: list[tuple[Any, type[Exception], list[str]]] = []
    np.save(tmp_path / "wrong_shape.npy", np.zeros((2, 3), np.uint16))
    cases.append((tmp_path / "wrong_shape.npy", L.ShapeError, ["wrong_shape.npy", "(2, 3)", "(2, 2)"]))
    np.save(tmp_path / "wrong_dtype.npy", np.zeros((2, 2), np.int8))
    cases.append((tmp_path / "wrong_dtype.npy", L.InputTypeError, ["wrong_dtype.npy", "int8", "uint16"]))
    np.save(tmp_path / "not_fp16.npy", np.full((2, 2), 0.1, np.float32))
    cases.append((tmp_path / "not_fp16.npy", L.InputValueError, ["not_fp16.npy[0, 0]", "fp16"]))
    cases.append((tmp_path / "missing.npy", L.InputValueError, ["missing.npy", "does not exist"]))
    for actual, error, fragments in cases:
        with pytest.raises(error) as err:
            check_golden(folder, actual)
        check_error(err, *fragments)
        capsys.readouterr()
        assert main(["check", str(folder), str(actual)]) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("lampref check: ")
        assert fragments[0] in lines[0]

    expected = folder / "expected.npy"
    np.save(expected, np.load(expected) + np.uint16(1))
    with pytest.raises(L.GoldenError) as err:
        check_golden(folder, expected)
    check_error(err, "expected.npy", "sha256")
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(L.GoldenError) as err:
        check_golden(folder, expected)
    check_error(err, "manifest.json", "not valid JSON")
    (folder / "manifest.json").unlink()
    with pytest.raises(L.GoldenError) as err:
        check_golden(folder, expected)
    check_error(err, "manifest.json", "does not exist")
    with pytest.raises(L.GoldenError) as err:
        check_golden(tmp_path / "nowhere", expected)
    check_error(err, "nowhere", "does not exist")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--accumulator", "fp16,blocks=2"], "--accumulator"),
        (["--accumulator", "fp16,mode=stochastic"], "deterministic"),
        (["--accumulator", "fp16", "--format", "fp64"], "--format"),
        (["--accumulator", "fp16", "--out-format", "fp12"], "--out-format"),
        (["--accumulator", "fp16", "--shape", "2", "0", "2"], "--shape"),
    ],
)
def test_golden_refuses_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["golden", str(tmp_path / "g"), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("lampref golden: ")
    assert fragment in err[0]
    assert not (tmp_path / "g").exists()


def test_write_golden_refuses(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(L.InputValueError) as err:
        write_golden(tmp_path / "file", L.Accumulator("fp16"))
    check_error(err, "file", "is a file")
    with pytest.raises(L.FormatError) as err:
        write_golden(tmp_path / "g", L.Accumulator("fp16"), in_format="fp64")
    check_error(err, "in_format", "float32")
    with pytest.raises(L.InputValueError) as err:
        write_golden(tmp_path / "g", L.Accumulator("fp16"), shape=(2, 2))  # type: ignore[arg-type]
    check_error(err, "shape", "(M, K, N)")
