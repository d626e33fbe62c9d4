"""Bad arguments at the public entry points: always a lampref error that names the parameter.

Each class of bad argument (ragged nesting, an invalid ``rng``, a non-bool flag, a non-string name or choice,
an empty set of positions, a bias that does not fit) is drawn by hypothesis and sent to every entry point that
takes it; the oracle is the contract itself: a :class:`~lampref.errors.LamprefError` (never a bare NumPy or
Python error) whose message names the parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import lampref
from lampref import (
    Accumulator,
    FloatFormat,
    analysis,
    dot,
    fp16,
    fp32_mantissa,
    get_format,
    linear,
    matmul,
    metrics,
    round_to,
)
from lampref.errors import AnalysisError, FormatError, LamprefError, ModeError, ShapeError
from lampref.lamp import LampConfig

F = np.float32


def raises_naming(error: type[Exception], name: str, call: Callable[[], object]) -> None:
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, LamprefError), type(info.value)
    assert name in str(info.value), (name, str(info.value))


# ----------------------------------------------------------------------------------- ragged input
@st.composite
def ragged(draw: st.DrawFn) -> list[Any]:
    """Nested lists with no array shape: sibling lists of different lengths, or a list beside a number."""
    number = st.floats(-4, 4, width=32)
    rows = draw(st.integers(2, 4))
    lengths = draw(
        st.lists(st.integers(1, 4), min_size=rows, max_size=rows).filter(lambda n: len(set(n)) > 1)
    )
    out: list[Any] = [draw(st.lists(number, min_size=n, max_size=n)) for n in lengths]
    if draw(st.booleans()):
        out[draw(st.integers(0, rows - 1))] = draw(number)  # a scalar among rows
    if draw(st.booleans()):
        out = [out, out]  # nested one level deeper
    return out


GOOD = [[1.0, 2.0], [3.0, 4.0]]
RAGGED_CALLS: dict[str, tuple[str, Callable[[Any], object]]] = {
    "round_to": ("x", lambda r: round_to(r, "bf16")),
    "next_up": ("x", lambda r: lampref.next_up(r, "bf16")),
    "matmul a": ("a", lambda r: matmul(r, GOOD, Accumulator(fp16))),
    "matmul b": ("b", lambda r: matmul(GOOD, r, Accumulator(fp16))),
    "dot": ("x", lambda r: dot(r, GOOD, Accumulator(fp16))),
    "linear x": ("x", lambda r: linear(r, GOOD, [0.0, 0.0], Accumulator(fp16))),
    "linear w": ("w", lambda r: linear(GOOD, r, None, Accumulator(fp16))),
    "linear bias": ("bias", lambda r: linear(GOOD, GOOD, r, Accumulator(fp16))),
    "kl_divergence": ("test_logits", lambda r: metrics.kl_divergence(GOOD, r)),
    "flip_rate": ("ref_logits", lambda r: metrics.flip_rate(r, GOOD)),
    "max_abs_diff": ("b", lambda r: metrics.max_abs_diff(GOOD, r)),
    "relative_error": ("test", lambda r: metrics.relative_error(GOOD, r)),
    "ulp_distance": ("a", lambda r: metrics.ulp_distance(r, GOOD)),
    "log_softmax": ("logits", lambda r: metrics.log_softmax(r)),
    "lamp_select": ("probs", lambda r: analysis.lamp_select(r, 1.5)),
    "softmax_kappa": ("probs", lambda r: analysis.softmax_kappa(r, [[True, False]])),
    "gamma": ("n", lambda r: analysis.gamma(r, "fp16")),
    "inner_product_error_bound": ("x", lambda r: analysis.inner_product_error_bound(r, GOOD, "fp16")),
    "amplification_matrix": ("jacobian", lambda r: analysis.amplification_matrix(r, [1.0, 1.0], [1.0, 1.0])),
    "condition_number": ("z", lambda r: analysis.condition_number("exp", r)),
}


@given(x=ragged(), call=st.sampled_from(sorted(RAGGED_CALLS)))
@example(x=[[1.0, 2.0], [3.0]], call="matmul a")
@example(x=[1.0, [2.0]], call="round_to")
def test_issue11_item12_ragged_input_is_a_shape_error(x: list[Any], call: str) -> None:
    """Ragged nested lists must raise ShapeError naming the argument, not NumPy's ValueError."""
    name, f = RAGGED_CALLS[call]
    raises_naming(ShapeError, name, lambda: f(x))


# ----------------------------------------------------------------------------------------- rng
BAD_RNG = st.one_of(
    st.integers(max_value=-1),
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.lists(st.integers(0, 3), max_size=2),
    st.sampled_from([np.int64(-1), np.bool_(True), np.random.RandomState(0), np.array(3)]),
)
SR = Accumulator(fp32_mantissa(4), mode="stochastic")
A2 = np.float32([[1.0, 0.1], [0.3, 0.7]])
RNG_CALLS: dict[str, Callable[[Any], object]] = {
    "round_to stochastic": lambda r: round_to([0.1], "bf16", "stochastic", rng=r),
    "round_to deterministic": lambda r: round_to([0.1], "bf16", rng=r),
    "matmul": lambda r: matmul(A2, A2, SR, rng=r),
    "matmul without acc": lambda r: matmul(A2, A2, rng=r),
    "dot": lambda r: dot(A2, A2, SR, rng=r),
    "linear": lambda r: linear(A2, A2, F([0.5, 0.25]), SR, rng=r),
    "lamp": lambda r: LampConfig(SR, 1.5, baseline="random").select(A2[None], A2[None], start=0, rng=r),
}


@given(rng=BAD_RNG, call=st.sampled_from(sorted(RNG_CALLS)))
@example(rng=-1, call="linear")
@example(rng=-1, call="round_to stochastic")
def test_issue11_item12_invalid_rng_is_named(rng: Any, call: str) -> None:
    """rng must be None, a non-negative integer or a Generator; anything else is a ModeError naming rng."""
    raises_naming(ModeError, "rng=", lambda: RNG_CALLS[call](rng))


def test_valid_rng_values() -> None:
    """None, non-negative integers (Python or NumPy) and Generators are accepted."""
    from lampref._validate import check_rng

    g = np.random.default_rng(0)
    assert check_rng(g) is g
    assert check_rng(None) is None
    for seed in (0, 2**70, np.uint64(2**63), np.int8(3)):
        assert isinstance(check_rng(seed), np.random.Generator)
    assert np.array_equal(
        round_to([0.1] * 8, "bf16", "stochastic", rng=2**70),
        round_to([0.1] * 8, "bf16", "stochastic", rng=np.random.default_rng(2**70)),
    )


# ------------------------------------------------------------------------------- flags and names
NOT_BOOL = st.one_of(
    st.text(max_size=4),
    st.integers(),
    st.floats(),
    st.none(),
    st.lists(st.booleans(), max_size=2),
    st.sampled_from([np.array(True), np.array([True])]),
)


@given(value=NOT_BOOL)
@example(value="yes")
@example(value=1)
def test_issue11_item12_fma_must_be_a_bool(value: Any) -> None:
    """fma='yes' (or any non-bool) is a ModeError naming fma, never silently truthy."""
    raises_naming(ModeError, "fma=", lambda: Accumulator(fp16, staging="fp32", fma=value))
    if value is not None:  # authors(m, fma=None) is the default: fused for block=1
        raises_naming(ModeError, "fma=", lambda: Accumulator.authors(4, fma=value))


BOOL_FLAGS: dict[str, tuple[type[LamprefError], Callable[[Any], object]]] = {
    "subnormal": (FormatError, lambda v: lampref.from_pychop({"exp_bits": 5, "sig_bits": 3, "subnormal": v})),
    "subnormals": (FormatError, lambda v: FloatFormat(p=3, emax=3, subnormals=v)),
    "saturate": (FormatError, lambda v: FloatFormat(p=3, emax=3, saturate=v)),
}


@given(value=NOT_BOOL, flag=st.sampled_from(sorted(BOOL_FLAGS)))
@example(value="no", flag="subnormal")
def test_issue11_item12_format_flags_must_be_bools(value: Any, flag: str) -> None:
    """A truthy stand-in for a flag of a format (pychop's subnormal included) is refused, naming the flag."""
    if flag == "saturate" and value is None:  # None is saturate's documented default
        return
    error, f = BOOL_FLAGS[flag]
    raises_naming(error, flag, lambda: f(value))


@given(
    key=st.text(min_size=1, max_size=8).filter(
        lambda k: (
            k.isidentifier() and k not in {"p", "emax", "emin", "subnormals", "encoding", "saturate", "name"}
        )
    )
)
@example(key="precision")
def test_issue11_item12_replace_names_unknown_parameters(key: str) -> None:
    """FloatFormat.replace with an unknown parameter is a FormatError naming it, not a TypeError."""
    raises_naming(FormatError, repr(key), lambda: fp16.replace(**{key: 1}))


def test_numpy_bools_are_bools() -> None:
    """NumPy booleans count as booleans."""
    from lampref._validate import check_bool

    assert Accumulator(fp16, staging="fp32", fma=np.bool_(True)).fma is True
    assert check_bool(np.bool_(False), "flag") is False


@given(
    name=st.one_of(
        st.integers(), st.floats(), st.binary(max_size=3), st.lists(st.text(max_size=2), max_size=2)
    )
)
@example(name=123)
def test_issue11_item12_format_name_must_be_a_string(name: Any) -> None:
    """FloatFormat(name=123) is a FormatError naming name."""
    raises_naming(FormatError, "name=", lambda: FloatFormat(p=3, emax=3, name=name))


NON_ASCII_DIGITS = st.characters(categories=["Nd"]).filter(lambda c: c not in "0123456789")


@given(
    prefix=st.text("0123456789", max_size=1),
    digit=NON_ASCII_DIGITS,
    suffix=st.text("0123456789", max_size=1),
)
@example(prefix="", digit="\u0663", suffix="")  # ARABIC-INDIC DIGIT THREE
@example(prefix="1", digit="\uff10", suffix="")  # FULLWIDTH DIGIT ZERO
def test_issue11_item12_format_names_use_ascii_digits(prefix: str, digit: str, suffix: str) -> None:
    """get_format accepts fp32_m<digits> with ASCII digits only (int() reads other scripts' digits too)."""
    raises_naming(FormatError, "format=", lambda: get_format(f"fp32_m{prefix}{digit}{suffix}"))


def test_ascii_mantissa_names_still_work() -> None:
    """The ASCII spellings keep working."""
    assert get_format("fp32_m3") == fp32_mantissa(3)
    assert get_format(" FP32_M10 ") == fp32_mantissa(10)


# --------------------------------------------------------------------------------------- choices
NOT_A_NAME = st.one_of(
    st.integers(),
    st.floats(),
    st.binary(max_size=3),
    st.lists(st.sampled_from(["prefix", "sequential", "ieee", "mean", "random"]), min_size=1, max_size=2),
    st.sampled_from(
        [np.array("prefix"), np.array(["prefix"]), np.array(["sequential", "pairwise"]), ("ieee",), {"mean"}]
    ),
)
CHOICES: dict[str, tuple[type[LamprefError], Callable[[Any], object]]] = {
    "rule": (AnalysisError, lambda v: LampConfig(SR, 1.5, rule=v)),
    "baseline": (AnalysisError, lambda v: LampConfig(SR, 1.5, baseline=v)),
    "order": (ModeError, lambda v: Accumulator(fp16, order=v)),
    "staging": (ModeError, lambda v: Accumulator(fp16, staging=v)),
    "products": (ModeError, lambda v: Accumulator(fp16, products=v)),
    "encoding": (FormatError, lambda v: FloatFormat(p=3, emax=3, encoding=v)),
    "reduction": (LamprefError, lambda v: metrics.kl_divergence(GOOD, GOOD, reduction=v)),
    "mode": (ModeError, lambda v: round_to(0.1, "bf16", v)),
    "lamp_select rule": (AnalysisError, lambda v: analysis.lamp_select([0.5, 0.5], 1.5, rule=v)),
    "kind": (AnalysisError, lambda v: analysis.inner_product_error_bound([1.0], [1.0], "fp16", kind=v)),
}


@given(value=NOT_A_NAME, param=st.sampled_from(sorted(CHOICES)))
@example(value=np.array(["prefix"]), param="rule")
@example(value=np.array(["sequential", "pairwise"]), param="order")
def test_issue11_item12_choices_must_be_names(value: Any, param: str) -> None:
    """A numpy array (or any non-string) where a name belongs is a lampref error naming the parameter."""
    error, f = CHOICES[param]
    raises_naming(error, f"{param.split()[-1]}=", lambda: f(value))


def test_check_choice_accepts_the_names() -> None:
    """The checks return what they accept."""
    from lampref._validate import as_array, check_choice

    assert check_choice("fn", "encoding", ("ieee", "fn")) == "fn"
    assert check_choice(None, "baseline", (None, "random")) is None
    assert as_array([[1, 2]], "x").shape == (1, 2)


# ------------------------------------------------------------------------------- empty positions
@given(
    lead=st.lists(st.integers(0, 3), min_size=1, max_size=3).filter(lambda s: 0 in s),
    V=st.integers(1, 5),
    metric=st.sampled_from(["kl_divergence", "flip_rate", "topk_agreement", "max_abs_diff"]),
)
@example(lead=[0], V=5, metric="kl_divergence")
@example(lead=[0], V=5, metric="flip_rate")
def test_issue11_item12_no_positions_is_a_shape_error(lead: list[int], V: int, metric: str) -> None:
    """kl_divergence / flip_rate on shape (0, V) must raise ShapeError (as max_abs_diff does), not NaN."""
    z = np.zeros((*lead, V), F)
    f: Callable[[], object] = {
        "kl_divergence": lambda: metrics.kl_divergence(z, z),
        "flip_rate": lambda: metrics.flip_rate(z, z),
        "topk_agreement": lambda: metrics.topk_agreement(z, z, k=1),
        "max_abs_diff": lambda: metrics.max_abs_diff(z, z),
    }[metric]
    with pytest.raises(ShapeError, match=r"\(" + ", ".join(map(str, (*lead, V)))):
        f()


# --------------------------------------------------------------------------------------- bias shape
@given(
    shape=st.lists(st.integers(0, 4), max_size=3).filter(lambda s: not _broadcasts_to(tuple(s), (2, 3))),
    staging=st.sampled_from(["exact", "fp32", None]),
)
@example(shape=[2], staging="exact")
@example(shape=[4, 2, 3], staging="exact")
def test_issue11_item12_bias_of_the_wrong_shape(shape: list[int], staging: str | None) -> None:
    """A bias that does not broadcast to linear's output (2, 3) is a ShapeError naming bias."""
    acc = None if staging is None else Accumulator(fp16, staging=staging)
    x, w = np.ones((2, 4), F), np.ones((4, 3), F)
    raises_naming(ShapeError, "bias", lambda: linear(x, w, np.zeros(shape, F), acc))


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def test_bias_shapes_that_fit() -> None:
    """Bias shapes that broadcast to the output are accepted and added as NumPy broadcasts them."""
    x, w = np.ones((2, 4), F), np.ones((4, 3), F)
    for shape in [(), (3,), (1, 3), (2, 1), (2, 3)]:
        out = linear(x, w, np.full(shape, 0.5, F), Accumulator(fp16))
        assert out.shape == (2, 3)
        assert np.all(out == 4.5)
