"""Cross-check of :func:`lampref.round_to` against pychop 0.6.2, with MPFR as the referee.

pychop is a peer, not an oracle. Every input on which the two disagree must

(a) belong to one of the named classes of pychop errors below (each a precise predicate on the input, the
    format, the mode and pychop's answer), and
(b) be decided by the MPFR oracle in lampref's favour.

pychop runs in a child process (:mod:`lampref.testing.peers`): this process never imports it, so its side
effects (root logger, ``sys.path``, ``os.environ``) cannot leak into the other tests. Stochastic modes are
compared as distributions. The classes and examples are documented in ``docs/pychop.md``.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Any

import numpy as np
import pytest

from lampref import MODES, FloatFormat, FormatError, LamprefError, ModeError, from_pychop, round_to
from lampref.rounding import DETERMINISTIC_MODES, STOCHASTIC_MODES
from lampref.testing import mpfr_neighbours, mpfr_round, peers
from lampref.testing.peers import (
    PYCHOP_RMODES,
    PychopUnavailableError,
    pychop_available,
    pychop_round,
    pychop_round_many,
)

needs_pychop = pytest.mark.skipif(
    not pychop_available(), reason="pychop is not installed: pip install 'lampref[test]' (pins pychop==0.6.2)"
)

# The formats both libraries support, by pychop's own description (exp_bits, sig_bits, subnormal).
FORMATS: dict[str, FloatFormat] = {
    "fp16": from_pychop("h"),
    "bf16": from_pychop("b"),
    "fp32": from_pychop("s"),
    "q43": from_pychop("q43"),  # pychop's IEEE-like fp8 e4m3 (max 240)
    "q52": from_pychop("q52"),  # fp8 e5m2
    "e3m2": from_pychop({"exp_bits": 3, "sig_bits": 2}),
    "e6m5": from_pychop({"exp_bits": 6, "sig_bits": 5}),
    "e9m12": from_pychop({"exp_bits": 9, "sig_bits": 12}),  # exponent range beyond float32's
    "q43_nosub": from_pychop({"exp_bits": 4, "sig_bits": 3, "subnormal": False}),
    "fp16_nosub": from_pychop({"exp_bits": 5, "sig_bits": 10, "subnormal": False}),
}
# Input dtypes pychop computes in; float32 only where the format's values are float32 values.
CASES = [
    (name, dt)
    for name, fmt in FORMATS.items()
    for dt in ("float64", "float32")
    if dt == "float64" or fmt.fits_float32
]
STOCHASTIC_FORMATS = ["fp16", "bf16", "q43", "q52", "e3m2", "e6m5"]


# ----------------------------------------------------------------------------------------- inputs
def _pow2(e: Any) -> Any:
    return np.ldexp(1.0, np.asarray(e))


def _adjacent(v: np.ndarray, dt: np.dtype[Any]) -> list[np.ndarray]:
    """The values of ``dt`` just above and just below each value of ``v`` that ``dt`` holds exactly."""
    with np.errstate(over="ignore", under="ignore"):
        c = v.astype(dt)
    c = c[c.astype(np.float64) == v]
    return [
        np.nextafter(c, dt.type(np.inf)).astype(np.float64),
        np.nextafter(c, dt.type(0)).astype(np.float64),
    ]


def _some(e: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """All of ``e`` if there are at most 64, else the 16 lowest, the 16 highest and 32 others."""
    if e.size <= 64:
        return e
    return np.concatenate([e[:16], np.sort(rng.choice(e[16:-16], size=32, replace=False)), e[-16:]])


def edge_values(fmt: FloatFormat, dtype: str, seed: int) -> np.ndarray:
    """Edge-heavy inputs for ``fmt``: random normals over the whole range, every kind of tie and near tie,
    values near powers of two, subnormals and subnormal near ties, values at and beyond overflow, signed
    zeros, infinities and NaN; both signs. Values not exactly representable in ``dtype`` are dropped."""
    assert fmt.emin is not None
    rng = np.random.default_rng(seed)
    p, emax, emin = fmt.p, fmt.emax, fmt.emin
    dt = np.dtype(dtype)
    eps_in = float(np.finfo(dt).eps)  # relative spacing of the input dtype at 1
    parts: list[np.ndarray] = []

    n = 400
    parts.append(rng.standard_normal(n) * _pow2(rng.integers(emin - p - 2, emax + 3, size=n)))
    # representable values, ties, near ties and quarter points in every binade (of a narrow range)
    e = _some(np.arange(emin, emax + 1), rng)
    m = rng.integers(1 << (p - 1), 1 << p, size=(e.size, 3)).astype(np.float64)
    step = np.broadcast_to(_pow2(e - p + 1)[:, None], m.shape)
    rep = (m * step).ravel()
    step = step.ravel()
    tie = rep + step / 2
    parts += [rep, tie, tie + step * 2.0**-21, tie - step * 2.0**-21, tie + step * 2.0**-30, rep + step / 4]
    parts += _adjacent(tie, dt)  # near ties as close as the input dtype allows
    # powers of two and their neighbourhoods (the spacing below 2**k is half the spacing above)
    k = _some(np.arange(emin, emax + 2), rng)
    pw, below = _pow2(k), _pow2(k - p)
    parts += [pw, pw * (1 - eps_in / 2), pw * (1 + eps_in), pw - below / 2, pw - below / 4, pw - below]
    parts += [pw - below / 2 - below * 2.0**-30, pw * (1 - 2.0**-30)]
    # the subnormal range (or the gap below the smallest normal without subnormals)
    q = math.ldexp(1.0, emin - p + 1)
    if fmt.subnormals:
        j = np.arange(1 << (p - 1)) if p <= 11 else rng.integers(0, 1 << (p - 1), size=100)
        sub = j * q
        parts += [sub, sub + q / 2, *_adjacent(sub + q / 2, dt), *_adjacent(sub, dt)]
        parts += [sub + q / 4, sub + q * 2.0**-20]
        parts.append(q * np.array([0.5, 0.25, 0.75, 2.0**-10, 0.5 + 2.0**-30, 0.5 - 2.0**-30]))
    else:
        sn = math.ldexp(1.0, emin)
        parts.append(sn * np.array([0.5, 0.25, 0.75, 2.0**-10, 1 - 2.0**-30, 0.5 + 2.0**-30, 0.5 - 2.0**-30]))
        parts.append(sn * rng.uniform(0.0, 1.0, size=40))
    # at and beyond overflow
    top = math.ldexp(1.0, emax - p + 1)
    xmax = fmt.max
    parts.append(
        np.array(
            [
                xmax,
                xmax + top / 4,
                xmax + top / 2,
                xmax + top * 0.75,
                math.ldexp(1.0, emax + 1) * (1 - eps_in / 2),
                math.ldexp(1.0, emax + 1),
                math.ldexp(1.5, emax + 1),
                math.ldexp(1.0, emax + 2) * (1 - eps_in / 2),
                math.ldexp(1.0, emax + 2),
                math.ldexp(1.0, emax + 5),
                float(np.finfo(dt).max),
                0.0,
                math.inf,
                math.nan,
            ]
        )
    )
    parts += _adjacent(np.array([xmax + top / 2]), dt)
    v = np.concatenate([np.ravel(a) for a in parts])
    v = np.concatenate([v, -v])
    with np.errstate(over="ignore", under="ignore"):
        cast = v.astype(dt)
    keep = (cast.astype(np.float64) == v) | np.isnan(v)
    return cast[keep]


# ------------------------------------------------------------------------- the classes of errors
@dataclass(frozen=True)
class Case:
    """One input on which pychop and lampref disagree."""

    x: float  # the input (exact in float64)
    dtype: np.dtype[Any]  # the dtype pychop computed in
    fmt: FloatFormat
    mode: str
    lampref: float
    pychop: float
    mpfr: float

    @property
    def a(self) -> float:
        return abs(self.x)

    @cached_property
    def neighbours(self) -> tuple[Fraction, Fraction]:
        """The p-bit numbers around |x| (MPFR, unbounded above)."""
        return mpfr_neighbours(self.a, self.fmt)

    @property
    def position(self) -> Fraction | None:
        """Where |x| lies between its neighbours: 0 at the lower, 1/2 at a tie (None if representable)."""
        lo, hi = self.neighbours
        return None if lo == hi else (Fraction(self.a) - lo) / (hi - lo)

    @cached_property
    def pychop_exponent(self) -> int:
        """floor(log2|x|) as pychop evaluates it: in the input dtype, with |x| clamped below at 1e-38."""
        arr = np.abs(np.array([self.x], dtype=self.dtype))
        return int(np.floor(np.log2(np.maximum(arr, 1e-38)))[0])

    @property
    def exponent(self) -> int:
        """The true floor(log2|x|)."""
        return math.frexp(self.a)[1] - 1


def _on_grid_near(c: Case, q: int) -> bool:
    """pychop's result is a multiple of 2**q less than two steps 2**q away from x."""
    step = Fraction(2) ** q
    return (Fraction(c.pychop) / step).denominator == 1 and abs(Fraction(c.pychop) - Fraction(c.x)) < 2 * step


def _is_negative_zero(c: Case) -> bool:
    return c.x == 0 and math.copysign(1, c.x) < 0 and c.pychop == 0 and math.copysign(1, c.pychop) > 0


def _is_top_binade_to_zero(c: Case) -> bool:
    # pychop's exponent is emax + 1: |x| in [2**(emax+1), 2**(emax+2)), or just below 2**(emax+1)
    return math.isfinite(c.x) and c.pychop == 0 and c.pychop_exponent == c.fmt.emax + 1


def _is_overflow_to_power_of_two(c: Case) -> bool:
    return c.a > c.fmt.max and abs(c.pychop) == math.ldexp(1.0, c.fmt.emax + 1)


def _is_truncating_overflow_to_inf(c: Case) -> bool:
    # the IEEE result is the signed largest finite value (toward zero, odd, a directed mode pointing inward)
    return math.isfinite(c.x) and abs(c.mpfr) == c.fmt.max < c.a and math.isinf(c.pychop)


def _is_flush_to_zero(c: Case) -> bool:
    return (
        not c.fmt.subnormals
        and 0 < c.a < c.fmt.smallest_normal
        and c.pychop == 0
        and abs(c.mpfr) == c.fmt.smallest_normal
    )


def _is_odd_below_normal_range(c: Case) -> bool:
    return (
        not c.fmt.subnormals
        and c.mode == "odd"
        and 0 < c.a < c.fmt.smallest_normal
        and abs(c.pychop) == math.ldexp(1.0, 1 - c.fmt.p)
    )


def _is_tiny_exponent_clamp(c: Case) -> bool:
    # |x| < 1e-38 is given the exponent -127 and rounded on that binade's grid (the error stays below two of
    # its steps), instead of the format's finer grid down to 2**(emin - p + 1)
    assert c.fmt.emin is not None
    return (
        c.fmt.emin < -127
        and 0 < c.a < 1e-38
        and c.pychop_exponent == -127
        and _on_grid_near(c, -127 - c.fmt.p + 1)
    )


def _is_below_power_of_two(c: Case) -> bool:
    # |x| just below 2**k: floor(log2|x|) evaluates to k, so pychop rounds on the grid of the binade above
    if not (math.isfinite(c.x) and c.a > 0 and math.isfinite(c.pychop)):
        return False
    e = c.pychop_exponent
    return c.fmt.emin <= e == c.exponent + 1 and _on_grid_near(c, e - c.fmt.p + 1)


def _is_subnormal_precision_loss(c: Case) -> bool:
    # below 2**emin pychop rounds f = |x|/2**emin - 1, evaluated in the input dtype: the low bits of x are
    # lost, and pychop rounds the perturbed input x' = 2**emin * (1 + f) instead, correctly or as the other
    # classes say (x' is often a representable value or a tie)
    assert c.fmt.emin is not None
    if not (c.fmt.subnormals and 0 < c.a < c.fmt.smallest_normal and c.pychop_exponent < c.fmt.emin):
        return False
    t = c.dtype.type
    f = t(t(c.a) * t(math.ldexp(1.0, -c.fmt.emin))) - t(1.0)
    x2 = math.copysign(math.ldexp(1.0 + float(f), c.fmt.emin), c.x)
    if x2 == c.x:
        return False
    twin = Case(x2, c.dtype, c.fmt, c.mode, math.nan, c.pychop, mpfr_round(x2, c.fmt, c.mode))
    return twin.mpfr == c.pychop or any(
        rule(twin) for rule in (_is_odd_moves_exact, _is_ties_away_negative, _is_tie_tolerance)
    )


def _is_odd_moves_exact(c: Case) -> bool:
    # a representable x with an even last bit is moved one step up in magnitude
    if c.mode != "odd" or not (math.isfinite(c.x) and 0 < c.a <= c.fmt.max):
        return False
    lo, hi = c.neighbours
    assert c.fmt.emin is not None
    step = math.ldexp(1.0, max(c.exponent, c.fmt.emin) - c.fmt.p + 1)
    return lo == hi and c.pychop == math.copysign(c.a + step, c.x)


def _is_ties_away_negative(c: Case) -> bool:
    if c.mode != "nearest_away" or not (math.isfinite(c.x) and c.x < 0):
        return False
    lo, _ = c.neighbours
    return c.position == Fraction(1, 2) and abs(c.pychop) == lo


def _is_tie_tolerance(c: Case) -> bool:
    # |x| within 1e-6 of a gap's midpoint (in units of the gap) is rounded as a tie: away from zero for
    # positive x, toward zero for negative x (see ties_away_negative)
    if c.mode != "nearest_away" or not (math.isfinite(c.x) and c.x != 0):
        return False
    d = c.position
    if d is None or d == Fraction(1, 2) or abs(d - Fraction(1, 2)) >= Fraction(1, 10**6):
        return False
    lo, hi = c.neighbours
    return abs(c.pychop) == (hi if c.x > 0 else lo)


# In the order they are tried: the first class whose predicate holds names the disagreement.
CLASSES: dict[str, Callable[[Case], bool]] = {
    "negative_zero": _is_negative_zero,
    "top_binade_to_zero": _is_top_binade_to_zero,
    "overflow_to_power_of_two": _is_overflow_to_power_of_two,
    "truncating_overflow_to_inf": _is_truncating_overflow_to_inf,
    "flush_to_zero": _is_flush_to_zero,
    "odd_below_normal_range": _is_odd_below_normal_range,
    "tiny_exponent_clamp": _is_tiny_exponent_clamp,
    "below_power_of_two": _is_below_power_of_two,
    "subnormal_precision_loss": _is_subnormal_precision_loss,
    "odd_moves_exact": _is_odd_moves_exact,
    "ties_away_negative": _is_ties_away_negative,
    "tie_tolerance": _is_tie_tolerance,
}


def classify(case: Case) -> str | None:
    """The name of the first class that explains a disagreement, or None."""
    for name, predicate in CLASSES.items():
        if predicate(case):
            return name
    return None


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise-equal values: equal with the same sign (zeros included), or both NaN."""
    with np.errstate(invalid="ignore"):
        return ((a == b) & (np.signbit(a) == np.signbit(b))) | (np.isnan(a) & np.isnan(b))


# -------------------------------------------------------------------------------- the runs
@dataclass
class Run:
    x: np.ndarray
    lampref: np.ndarray
    pychop: np.ndarray
    mpfr: np.ndarray  # on the disagreements only
    cases: list[tuple[Case, str | None]]


@pytest.fixture(scope="module")
def deterministic_runs() -> dict[tuple[str, str, str], Run]:
    """Every (format, dtype, deterministic mode) run through pychop (one child process) and lampref."""
    jobs, keys = [], []
    for i, (name, dt) in enumerate(CASES):
        x = edge_values(FORMATS[name], dt, seed=i)
        for mode in DETERMINISTIC_MODES:
            jobs.append((x, FORMATS[name], mode))
            keys.append((name, dt, mode))
    results = pychop_round_many(jobs)
    runs = {}
    for key, (x, fmt, mode), theirs in zip(keys, jobs, results, strict=True):
        ours = np.asarray(round_to(x, fmt, mode), dtype=np.float64)
        bad = ~_same(ours, theirs)
        x64 = x.astype(np.float64)
        mp = np.asarray(mpfr_round(x64[bad], fmt, mode), dtype=np.float64)
        cases = []
        for xi, li, ci, mi in zip(x64[bad], ours[bad], theirs[bad], mp, strict=True):
            case = Case(float(xi), x.dtype, fmt, mode, float(li), float(ci), float(mi))
            cases.append((case, classify(case)))
        runs[key] = Run(x, ours, theirs, mp, cases)
    return runs


def _describe(cases: list[Case]) -> str:
    return "\n".join(
        f"  x={c.x!r} ({c.x.hex()}): lampref={c.lampref!r} pychop={c.pychop!r} mpfr={c.mpfr!r}"
        for c in cases[:8]
    )


@pytest.fixture(params=[(*case, mode) for case in CASES for mode in DETERMINISTIC_MODES], ids="/".join)
def deterministic_run(
    request: pytest.FixtureRequest, deterministic_runs: dict[tuple[str, str, str], Run]
) -> tuple[str, Run]:
    """One (format, dtype, deterministic mode) run, with its label ``format/dtype/mode``."""
    return "/".join(request.param), deterministic_runs[request.param]


@needs_pychop
def test_every_disagreement_is_a_known_pychop_error(deterministic_run: tuple[str, Run]) -> None:
    label, run = deterministic_run
    unexplained = [case for case, cls in run.cases if cls is None]
    assert not unexplained, (
        f"{len(unexplained)} disagreements with pychop on {label} fit no known class:\n"
        + _describe(unexplained)
    )


@needs_pychop
def test_mpfr_sides_with_lampref_on_every_disagreement(deterministic_run: tuple[str, Run]) -> None:
    label, run = deterministic_run
    sided_with_pychop = [
        case for case, _ in run.cases if not _same(np.array(case.mpfr), np.array(case.lampref))
    ]
    assert not sided_with_pychop, (
        f"lampref differs from MPFR on {len(sided_with_pychop)} inputs ({label}):\n"
        + _describe(sided_with_pychop)
    )


@needs_pychop
def test_the_known_classes_all_occur(deterministic_runs: dict[tuple[str, str, str], Run]) -> None:
    """Every documented class is seen (the list in docs/pychop.md stays exact); agreement is the rule."""
    counts = Counter(cls for run in deterministic_runs.values() for _, cls in run.cases)
    assert set(counts) == set(CLASSES), f"classes seen: {dict(counts)}"
    total = sum(run.x.size for run in deterministic_runs.values())
    assert sum(counts.values()) < total / 4
    # round to nearest even agrees bit for bit on every binary16 input in the normal range
    for dtype in ("float64", "float32"):
        run = deterministic_runs[("fp16", dtype, "nearest_even")]
        ordinary = np.isfinite(run.x) & (np.abs(run.x) >= 2.0**-14) & (np.abs(run.x) <= 65504.0)
        assert _same(run.lampref[ordinary], run.pychop[ordinary]).all()


# ----------------------------------------------------------------------------------- stochastic
def stochastic_values(fmt: FloatFormat, seed: int) -> np.ndarray:
    """Distinct values away from pychop's known trouble spots: inside the normal range (not next to a power
    of two, far below overflow), in the subnormal range, ties, and representable values."""
    assert fmt.emin is not None
    rng = np.random.default_rng(seed)
    e = rng.integers(fmt.emin, fmt.emax - 1, size=24)
    m = rng.integers(1 << (fmt.p - 1), (1 << fmt.p) - 1, size=24).astype(np.float64)
    frac = np.concatenate([rng.uniform(0.02, 0.98, size=16), [0.5, 0.5, 0.25, 0.75, 0.1, 0.9, 0.0, 0.0]])
    normal = (m + frac) * _pow2(e - fmt.p + 1)
    j = rng.integers(1, 1 << (fmt.p - 1), size=6).astype(np.float64)
    sub = (j + np.array([0.5, 0.25, 0.75, 0.1, 0.0, 0.6])) * math.ldexp(1.0, fmt.emin - fmt.p + 1)
    v = np.concatenate([normal, sub])
    return np.concatenate([v, -v])


REPEATS = 3000


@pytest.fixture(scope="module")
def stochastic_runs() -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    jobs, keys, distinct = [], [], []
    for i, name in enumerate(STOCHASTIC_FORMATS):
        v = stochastic_values(FORMATS[name], seed=100 + i)
        for mode in STOCHASTIC_MODES:
            jobs.append((np.repeat(v[:, None], REPEATS, axis=1), FORMATS[name], mode))
            keys.append((name, mode))
            distinct.append(v)
    results = pychop_round_many(jobs, rng_seed=7)
    out = {}
    for i, (key, (x, fmt, mode), theirs) in enumerate(zip(keys, jobs, results, strict=True)):
        ours = np.asarray(round_to(x, fmt, mode, rng=1000 + i), dtype=np.float64)
        out[key] = (distinct[i], ours, theirs)
    return out


@needs_pychop
@pytest.mark.parametrize("mode", STOCHASTIC_MODES)
@pytest.mark.parametrize("name", STOCHASTIC_FORMATS)
def test_stochastic_rounding_distributions_agree(
    stochastic_runs: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]], name: str, mode: str
) -> None:
    """Both pick one of the two neighbours, and the share of rounding up (in magnitude) matches the mode's
    probability within 5 standard deviations, for each library; hence their means agree too."""
    values, ours, theirs = stochastic_runs[(name, mode)]
    fmt = FORMATS[name]
    for v, row_ours, row_theirs in zip(values, ours, theirs, strict=True):
        lo, hi = mpfr_neighbours(abs(v), fmt)
        lo_v, hi_v = math.copysign(float(lo), v), math.copysign(float(hi), v)
        if lo == hi:
            assert (row_ours == v).all(), f"lampref {name}/{mode}: x={v!r} was moved"
            assert (row_theirs == v).all(), f"pychop {name}/{mode}: x={v!r} was moved"
            continue
        p_up = (Fraction(abs(float(v))) - lo) / (hi - lo) if mode == "stochastic" else Fraction(1, 2)
        sigma = math.sqrt(float(p_up * (1 - p_up)) / REPEATS)
        for who, row in (("lampref", row_ours), ("pychop", row_theirs)):
            up = row == hi_v
            assert (up | (row == lo_v)).all(), f"{who} {name}/{mode}: x={v!r} gave {set(row.tolist())}"
            assert abs(up.mean() - float(p_up)) <= 5 * sigma, (
                f"{who} {name}/{mode}: x={v!r} rounds up with frequency {up.mean():.4f}, "
                f"expected {float(p_up):.4f}"
            )
        gap = float(hi - lo)
        diff = abs(row_ours.mean() - row_theirs.mean())
        assert diff <= 5 * math.sqrt(2) * sigma * gap, f"{name}/{mode}: x={v!r}: means differ by {diff}"


# ------------------------------------------------------------------------- the peers module
def test_every_lampref_mode_has_a_pychop_code() -> None:
    assert set(PYCHOP_RMODES) == set(MODES)
    assert sorted(PYCHOP_RMODES.values()) == [1, 2, 3, 4, 5, 6, 8, 9]


@pytest.mark.parametrize(
    "fmt",
    [
        "e4m3",  # OCP e4m3fn: no infinity, max 448
        "e2m1",  # no infinity and no NaN
        FloatFormat(p=11, emax=15, saturate=True),
        FloatFormat(p=11, emax=15, emin=-10),
        FloatFormat(p=8, emax=100),  # emax is not 2**(w-1) - 1
    ],
)
def test_formats_without_pychop_equivalent_are_refused(fmt: Any) -> None:
    with pytest.raises(FormatError, match="no pychop equivalent"):
        pychop_round([1.0], fmt)


def test_unknown_mode_and_bad_seed_are_refused() -> None:
    with pytest.raises(ModeError, match="mode"):
        pychop_round([1.0], "fp16", "ties_to_zero")
    with pytest.raises(ModeError, match="rng_seed"):
        pychop_round([1.0], "fp16", "stochastic", rng_seed=-1)


def test_missing_pychop_is_a_clear_lampref_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peers, "pychop_available", lambda: False)
    with pytest.raises(PychopUnavailableError, match=r"pip install 'lampref\[test\]'") as info:
        pychop_round([1.0], "fp16")
    assert isinstance(info.value, LamprefError)
    assert isinstance(info.value, ImportError)
    assert pychop_round_many([]) == []  # nothing to run needs no pychop


@needs_pychop
def test_pychop_runs_isolated_and_keeps_shape() -> None:
    path, modules = list(sys.path), set(sys.modules)
    level = logging.getLogger().level
    x = np.array([[1 / 3, -2.5], [70000.0, np.nan]], dtype=np.float64)
    y, scalar = pychop_round_many([(x, "fp16", "nearest_even"), (1 / 3, "bf16", "nearest_even")])
    assert scalar.shape == ()
    assert float(scalar) == 0.333984375
    assert y.shape == (2, 2)
    assert y.dtype == np.float64
    assert y[:1].tolist() == [[0.333251953125, -2.5]]
    assert y[1, 0] == 0.0  # pychop's top-binade error: 70000 overflows binary16
    assert np.isnan(y[1, 1])
    assert not {m for m in set(sys.modules) - modules if m.startswith("pychop")}
    assert sys.path == path
    assert logging.getLogger().level == level


def test_importing_lampref_does_not_import_pychop() -> None:
    code = "import sys, lampref, lampref.testing, lampref.testing.peers; sys.exit('pychop' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
