# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Formats and rounding, seen on the number line
#
# A visual tour of what `lampref.round_to` computes: pictures of a floating-point number system for
# students, teachers, and researchers who want to check their intuition.
#
# **What you will learn**
#
# - how the values of a format lie on the number line, with and without subnormals;
# - how a value is stored as a bit pattern (sign, exponent field, mantissa), in binary16 and OCP e4m3;
# - how large the rounding error of each mode is, absolutely and relative to the unit roundoff $u$, and how
#   ties are broken;
# - what happens on overflow in each encoding (IEEE, OCP `fn`, MX `none`, saturating);
# - why stochastic rounding is unbiased, and how it avoids the stagnation of a long sum.
#
# Only the public API of lampref is used and nothing is downloaded. Set the environment variable
# `LAMPREF_SMALL=1` to run everything with small sizes in a few seconds (the pictures look the same, only
# noisier). The exact semantics are stated in the user guide page *Formats and rounding*.

# %%
import math
import os

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

import lampref
from lampref import DETERMINISTIC_MODES, STOCHASTIC_MODES, FloatFormat, round_to, ulp
from lampref.course import check
from lampref.validate import bits_dtype, decode, encode

SMALL = os.environ.get("LAMPREF_SMALL", "0") not in ("", "0")
GRID = 2_001 if SMALL else 40_001  # points of the fine grids
DRAWS = 4_000 if SMALL else 200_000  # stochastic draws of one value
TERMS = 2_000 if SMALL else 20_000  # terms of the long sum
RUNS = 20 if SMALL else 100  # independent stochastic runs of the long sum
SEED = 20_260_130


print(f"lampref {lampref.__version__}, matplotlib backend {matplotlib.get_backend()}, small sizes: {SMALL}")

# %% [markdown]
# ## 1. The number line of a tiny format
#
# `FloatFormat(p=3, emax=3)` has a 3-bit significand (two stored bits and the implicit one), exponents
# $e_{\min} = 1 - e_{\max} = -2$ to $e_{\max} = 3$, and subnormals: 6 bits in all. Its positive values are
# $m \cdot 2^{e-2}$ with $4 \le m \le 7$ in each binade $[2^e, 2^{e+1})$, and the subnormals
# $m \cdot 2^{-4}$, $1 \le m \le 3$, below $2^{e_{\min}} = 0.25$.

# %%
tiny = FloatFormat(p=3, emax=3, name="tiny")
tiny_ftz = tiny.replace(subnormals=False)

for f, label in [(tiny, "with subnormals"), (tiny_ftz, "without subnormals")]:
    print(
        f"{label:19}: {f.n_finite} finite values, max = {f.max}, smallest normal = {f.smallest_normal}, "
        f"smallest positive = {f.smallest_subnormal}, u = {f.unit_roundoff}, eps = {f.eps}"
    )

values = tiny.values()
positive = values[values > 0].astype(np.float64)
print()
for v in positive:
    if v < tiny.smallest_normal:
        m = v / 2.0 ** (tiny.emin - tiny.p + 1)
        kind, e = "subnormal", tiny.emin
        bits = f"0.{int(m):0{tiny.p - 1}b}"
    else:
        e = math.frexp(v)[1] - 1
        m = v / 2.0 ** (e - tiny.p + 1)
        kind = "normal"
        bits = f"1.{int(m) - 2 ** (tiny.p - 1):0{tiny.p - 1}b}"
    print(f"{v:7.4f} = {bits}b x 2^{e:<3d} ({kind})")

# %%
fig, axes = plt.subplots(2, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [2, 1]}, layout="tight")
for row, (f, label) in enumerate([(tiny, "with subnormals"), (tiny_ftz, "subnormals=False")]):
    vals = f.values().astype(np.float64)
    normal = np.abs(vals) >= f.smallest_normal
    for col, xlim in enumerate([(-f.max * 1.05, f.max * 1.05), (-0.05, 1.05)]):
        ax = axes[row, col]
        ax.axhline(0, color="0.7", lw=0.8, zorder=0)
        ax.vlines(vals[normal], -1, 1, color="C0", lw=1.4, label="normal")
        ax.vlines(vals[~normal & (vals != 0)], -1, 1, color="C3", lw=1.4, label="subnormal")
        ax.vlines([0.0], -1.3, 1.3, color="k", lw=1.8, label="zero")
        for k in range(f.emin, f.emax + 1):  # binade boundaries 2**e (from 2**0 up on the full line)
            if xlim[0] <= 2.0**k <= xlim[1] and (col == 1 or k >= 0):
                ax.text(2.0**k, 1.45, f"$2^{{{k}}}$", ha="center", va="bottom", fontsize=8)
        ax.set_xlim(*xlim)
        ax.set_ylim(-2, 2.6)
        ax.set_yticks([])
        ax.set_title(
            f"{label}" + (": zoom on [0, 1]" if col else f": all {f.n_finite} finite values"), fontsize=10
        )
    if row == 0:
        axes[row, 0].legend(loc="upper left", fontsize=8, ncol=3, frameon=False)
plt.show()

# %% [markdown]
# The spacing doubles at every power of two: the relative spacing stays between $2^{-p}$ and $2^{1-p}$.
# Without subnormals there is a gap between 0 and $2^{e_{\min}}$ as wide as the whole first binade; with them,
# the step $2^{e_{\min}-p+1}$ of the first binade continues down to zero (gradual underflow).
#
# ## 2. Bit patterns
#
# A value is stored as a sign bit $s$, an exponent field $E$ of $w$ bits and a mantissa field $M$ of
# $t = p - 1$ bits: the leading bit of the significand is implicit. With the bias $1 - e_{\min}$,
#
# $$ x = (-1)^s \, 2^{E - \mathrm{bias}} \, (1 + M / 2^t) \quad (E \ge 1), \qquad
#    x = (-1)^s \, 2^{e_{\min}} \, M / 2^t \quad (E = 0,\ \text{zero and the subnormals}). $$
#
# `lampref.validate.encode` gives the pattern of a value as an unsigned integer, and `decode` is its
# inverse. The codes of a few values in binary16 (`fp16`: $w = 5$, $t = 10$) and in OCP e4m3 (`e4m3`:
# $w = 4$, $t = 3$), split into sign, exponent field and mantissa:

# %%
fp16, e4m3 = lampref.get_format("fp16"), lampref.get_format("e4m3")


def fields(code: int, fmt: FloatFormat) -> str:
    """A bit pattern as 'sign exponent mantissa'."""
    b = f"{code:0{fmt.bits}b}"
    return f"{b[0]} {b[1 : 1 + fmt.exponent_bits]} {b[1 + fmt.exponent_bits :]}"


for fmt in (fp16, e4m3):
    print(f"{fmt!r}: bias {1 - fmt.emin}")
    rows = {
        "1": 1.0,
        "-2": -2.0,
        "0.1, rounded": float(round_to(0.1, fmt)),
        "smallest subnormal": fmt.smallest_subnormal,
        "smallest normal": fmt.smallest_normal,
        "largest finite": fmt.max,
        "+0": 0.0,
        "-0": -0.0,
        "infinity": math.inf,
        "NaN": math.nan,
    }
    for label, v in rows.items():
        if math.isinf(v) and not fmt.has_inf:
            print(f"    {label:18} {v!r:>24}   no code: this format has no infinity")
            continue
        code = int(encode(v, fmt))
        print(f"    {label:18} {v!r:>24}   {code:#0{2 + fmt.bits // 4}x}   {fields(code, fmt)}")
print(f"-0.0 == 0.0 is {-0.0 == 0.0}, yet math.copysign(1, -0.0) = {math.copysign(1, -0.0)}")

# %% [markdown]
# A few things to read off these codes:
#
# - **Signed zeros.** $+0$ and $-0$ differ in the sign bit only. They compare equal as numbers, but the
#   sign survives: `math.copysign` and `np.signbit` read it, and it makes $1/(-0) = -\infty$.
# - **The largest finite value** has the largest exponent field that codes numbers. In binary16 the
#   all-ones exponent field is reserved for infinities ($M = 0$) and NaNs ($M \ne 0$), so the largest
#   value is $(2 - 2^{-10}) \cdot 2^{15} = 65504$. OCP e4m3 (`fn`: finite and NaN) has no infinity and
#   keeps only $M$ all ones in the top binade for NaN: $1.75 \cdot 2^{8} = 448$ is a number.
# - **NaN** is one pattern per sign in e4m3, but $2 \cdot (2^{10} - 1)$ patterns in binary16.
#
# Counting over all the codes of each format, and checking the formula above, written as plain Python,
# against `decode` (and, for binary16, `decode` against NumPy's own `float16`):


# %%
def value_of(code: int, fmt: FloatFormat) -> float:
    """The value of a pattern from the formula above (finite patterns only): a scalar reference."""
    t, bias = fmt.p - 1, 1 - fmt.emin
    s, E, M = code >> (fmt.bits - 1), (code >> t) & ((1 << fmt.exponent_bits) - 1), code & ((1 << t) - 1)
    magnitude = math.ldexp(1 + M / 2**t, E - bias) if E else math.ldexp(M / 2**t, fmt.emin)
    return -magnitude if s else magnitude


for fmt in (fp16, e4m3):
    codes = np.arange(2**fmt.bits).astype(bits_dtype(fmt))  # [2**bits], every pattern
    vals = decode(codes, fmt)  # [2**bits] float32 (a NaN keeps its payload: no cast to float64)
    nan, inf = np.isnan(vals), np.isinf(vals)
    finite = ~nan & ~inf
    sub = finite & (vals != 0) & (np.abs(vals) < fmt.smallest_normal)
    print(
        f"{fmt.name}: {codes.size} codes = {finite.sum()} finite ({sub.sum()} of them subnormal, two zeros) "
        f"+ {inf.sum()} infinities + {nan.sum()} NaNs"
    )
    reference = np.array([value_of(int(c), fmt) for c in codes[finite]])  # [n finite codes]
    check(
        np.array_equal(vals[finite], reference), f"{fmt.name}: decode agrees with the formula on every code"
    )
    check(np.array_equal(encode(vals[finite], fmt), codes[finite]), f"{fmt.name}: encode inverts decode")
    ascending = vals[: codes.size // 2][finite[: codes.size // 2]]  # sign bit 0, in code order
    check(bool(np.all(np.diff(ascending) > 0)), f"{fmt.name}: the next code up is the next value up")

codes16 = np.arange(2**16).astype(np.uint16)  # [65536]
vals16 = decode(codes16, fp16)  # [65536] float32
numpy16 = codes16.view(np.float16)  # [65536], NumPy's reading of the same bits
num = ~np.isnan(numpy16)
same = np.array_equal(np.isnan(vals16), ~num) and np.array_equal(encode(numpy16[num], fp16), codes16[num])
check(same, "fp16: decode and encode read every code as NumPy's float16 does")

# %% [markdown]
# ## 3. The rounding error of each mode
#
# Round a fine grid of $x$ in $[-4, 4]$ in each deterministic mode and plot $\mathrm{fl}(x) - x$ against
# $\pm\,\mathrm{ulp}(x)/2$ and $\pm\,\mathrm{ulp}(x)$. The grid points are float64 numbers, so their exact
# values are rounded.

# %%
x = np.linspace(-4.0, 4.0, GRID)
half_ulp = ulp(x, tiny).astype(np.float64) / 2
fig, axes = plt.subplots(2, 3, figsize=(12, 5.5), sharex=True, sharey=True, layout="tight")
for ax, mode in zip(axes.flat, DETERMINISTIC_MODES, strict=True):
    err = round_to(x, tiny, mode).astype(np.float64) - x
    ax.plot(x, err, lw=0.9, color="C0")
    ax.fill_between(x, -half_ulp, half_ulp, color="C2", alpha=0.15, lw=0, label=r"$\pm\,\mathrm{ulp}/2$")
    ax.plot(x, 2 * half_ulp, color="0.5", lw=0.6, ls="--", label=r"$\pm\,\mathrm{ulp}$")
    ax.plot(x, -2 * half_ulp, color="0.5", lw=0.6, ls="--")
    ax.set_title(mode, fontsize=10)
    ax.axhline(0, color="k", lw=0.5)
axes[0, 0].legend(fontsize=8, loc="lower left")
for ax in axes[1]:
    ax.set_xlabel("x")
for ax in axes[:, 0]:
    ax.set_ylabel(r"$\mathrm{fl}(x) - x$")
fig.suptitle(f"Absolute rounding error in {tiny!r}", fontsize=11)
plt.show()

# %% [markdown]
# Round to nearest stays within half an ulp; the directed modes and round to odd use the whole ulp.
# `toward_zero` and `odd` are odd functions of $x$, `toward_pos` and `toward_neg` mirror each other.
#
# Relative to $|x|$, on a logarithmic grid from deep in the subnormal range to the largest value: in the
# normal range the error of round to nearest is at most $u = 2^{-p}$ and that of the other modes below
# $2u = \varepsilon$; below $2^{e_{\min}}$ only the absolute error is bounded and the relative error grows.

# %%
x = np.geomspace(2.0**-5, tiny.max, GRID)
u = tiny.unit_roundoff
normal_range = x >= tiny.smallest_normal
rel = {mode: np.abs(round_to(x, tiny, mode).astype(np.float64) - x) / x for mode in DETERMINISTIC_MODES}
bounds = {mode: u if mode.startswith("nearest") else 2 * u for mode in DETERMINISTIC_MODES}
for mode, r in rel.items():
    print(
        f"{mode:13} largest relative error in the normal range: {r[normal_range].max():.4f} "
        f"(bound {bounds[mode]})"
    )
check(
    all(r[normal_range].max() <= bounds[mode] for mode, r in rel.items()),
    "every mode within its bound, on every grid point of the normal range",
)

fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True, layout="tight")
panels = [
    ("to nearest", ["nearest_even", "nearest_away"]),
    ("directed and odd", ["toward_zero", "toward_pos", "odd"]),
]
for ax, (title, modes) in zip(axes, panels, strict=True):
    for mode in modes:
        ax.plot(x, rel[mode], lw=0.9, label=mode, alpha=0.8)
    ax.axhline(u, color="k", lw=1.2, ls="--")
    ax.axhline(2 * u, color="k", lw=1.2, ls=":")
    ax.text(tiny.max, u * 1.03, r"$u = 2^{-p}$", va="bottom", ha="right")
    ax.text(tiny.max, 2 * u * 1.03, r"$2u = \varepsilon$", va="bottom", ha="right")
    ax.axvspan(x[0], tiny.smallest_normal, color="C3", alpha=0.08, label="subnormal range")
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 3.5 * u)
    ax.set_xlabel("x")
    ax.legend(fontsize=8, loc="upper center")
    ax.set_title(f"Relative error, {title}", fontsize=11)
axes[0].set_ylabel(r"$|\mathrm{fl}(x) - x| \;/\; |x|$")
plt.show()

# %% [markdown]
# The sawtooth restarts at every power of two: the relative error is largest just above $2^e$ (where the
# spacing is large relative to $x$) and smallest just below $2^{e+1}$.
#
# ## 4. Ties
#
# A tie lies exactly halfway between two neighbours. `nearest_even` picks the neighbour with an even last
# significand bit, `nearest_away` the one larger in magnitude. Every midpoint of the tiny format, with the
# error each rule makes in units of the local ulp:

# %%
mids = (positive[:-1] + positive[1:]) / 2
mids = np.concatenate([[positive[0] / 2], mids])  # half the smallest subnormal: a tie between 0 and it
print(" midpoint  nearest_even  nearest_away")
for t in mids[:12]:
    print(f"{t:9.5f}  {float(round_to(t, tiny)):12.4f}  {float(round_to(t, tiny, 'nearest_away')):12.4f}")
print("...")
for mode in ("nearest_even", "nearest_away"):
    err_in_ulps = (round_to(mids, tiny, mode).astype(np.float64) - mids) / ulp(mids, tiny).astype(np.float64)
    print(f"{mode}: mean error over all {mids.size} ties = {err_in_ulps.mean():+.3f} ulp")

# %%
x = np.linspace(0.9, 2.15, GRID)
ties = mids[(mids > x[0]) & (mids < x[-1])]
fig, ax = plt.subplots(figsize=(9, 3.5), layout="tight")
for mode, style, color in [("nearest_even", "-", "C0"), ("nearest_away", "--", "C1")]:
    ax.plot(x, round_to(x, tiny, mode), style, color=color, lw=1.4, label=mode)
    ax.plot(
        ties,
        round_to(ties, tiny, mode),
        "o",
        color=color,
        ms=7,
        mfc="none" if mode == "nearest_away" else color,
    )
ax.plot(x, x, color="0.6", lw=0.8, label="y = x")
ax.set_xticks(ties, [f"{t:g}" for t in ties], fontsize=8)
ax.grid(axis="x", color="0.9")
ax.set_xlabel("x (ticks at the ties)")
ax.set_ylabel(r"$\mathrm{fl}(x)$")
ax.legend(fontsize=8)
ax.set_title("Ties between 1 and 2: to even alternates, away always goes up", fontsize=11)
plt.show()

# %% [markdown]
# Ties to even is unbiased over the ties (up and down alternate), ties away is biased by half an ulp on
# every tie. Half the smallest subnormal is a tie between 0 and the subnormal: zero counts as even.
#
# ## 5. Overflow, per encoding
#
# The same $p = 3$, $e_{\max} = 3$ parameters in five encodings. An `"fn"` format gives its top code to NaN,
# so its largest value is 12 instead of 14; `"none"` (the MX element types) has neither infinity nor NaN
# and always saturates.

# %%
variants = {
    "ieee": FloatFormat(p=3, emax=3),
    "ieee, saturate": FloatFormat(p=3, emax=3, saturate=True),
    "fn": FloatFormat(p=3, emax=3, encoding="fn"),
    "fn, saturate": FloatFormat(p=3, emax=3, encoding="fn", saturate=True),
    "none": FloatFormat(p=3, emax=3, encoding="none"),
}
for name, f in variants.items():
    step = float(ulp(f.max, f))
    probes = [
        f.max + step / 4,
        f.max + step / 2,
        f.max + step,
        -(f.max + step),
        math.inf,
        -math.inf,
        math.nan,
    ]
    print(f"{name}: max = {f.max}, inputs {[float(p) for p in probes]}")
    for mode in DETERMINISTIC_MODES:
        print(f"    {mode:13}", [float(r) for r in round_to(probes, f, mode)])

# %% [markdown]
# The first probe, $x_{\max} + \mathrm{ulp}/4$, rounds back to $x_{\max}$ to nearest. The tie
# $x_{\max} + \mathrm{ulp}/2$ overflows in the IEEE format (14 has an odd significand, so the tie goes to the
# even neighbour 16, beyond the range) but not in the `fn` format (12 is even, so the tie stays at 12).
# Truncating modes never overflow to infinity. The picture below maps the result category over an input
# range for two modes:

# %%
x = np.linspace(8.0, 20.0, GRID)
category_names = ["finite, below max", "= max", "infinity", "NaN"]
colors = matplotlib.colors.ListedColormap(["#cfe2f3", "#6fa8dc", "#e06666", "#999999"])
rows, labels = [], []
for mode in ("nearest_even", "toward_zero"):
    for name, f in variants.items():
        r = np.abs(round_to(x, f, mode).astype(np.float64))
        cat = np.select([np.isnan(r), np.isinf(r), r == f.max], [3, 2, 1], 0)
        rows.append(cat)
        labels.append(f"{mode}: {name}")
fig, ax = plt.subplots(figsize=(10, 4), layout="tight")
ax.imshow(
    np.array(rows),
    aspect="auto",
    cmap=colors,
    vmin=-0.5,
    vmax=3.5,
    interpolation="nearest",
    extent=(x[0], x[-1], len(rows) - 0.5, -0.5),
)
ax.set_yticks(range(len(rows)), labels, fontsize=8)
ax.set_xlabel("x")
handles = [matplotlib.patches.Patch(color=colors(i), label=n) for i, n in enumerate(category_names)]
ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=4, frameon=False)
ax.set_title("What an input near the top of the range becomes", fontsize=11)
plt.show()

# %% [markdown]
# The presets follow the same rules: `e4m3` is OCP's `float8_e4m3fn` (max 448, overflow to NaN), `e5m2`
# is IEEE-like (overflow to infinity) and `e2m1` saturates.

# %%
for name in ("e4m3", "e5m2", "e2m1"):
    f = lampref.get_format(name)
    print(f"{name}: {f!r}, max = {f.max}: {round_to([f.max * 1.01, f.max * 2, math.inf], f).tolist()}")

# %% [markdown]
# ## 6. Stochastic rounding
#
# `"stochastic"` rounds $x$ to the neighbour above (in magnitude) with probability equal to the distance
# from the neighbour below, as a fraction of the gap, so that $E[\mathrm{fl}(x)] = x$.
# `"stochastic_equal"` picks either neighbour with probability 1/2. In the tiny format 1.1 lies between
# 1 and 1.25, at 40% of the gap: many draws of it:

# %%
rng = np.random.default_rng(SEED)
x0 = 1.1
lo, hi = 1.0, 1.25
p_up = (x0 - lo) / (hi - lo)
draws = {
    mode: round_to(np.full(DRAWS, x0), tiny, mode, rng=rng).astype(np.float64) for mode in STOCHASTIC_MODES
}
for mode, d in draws.items():
    print(
        f"{mode:16}: values {sorted(set(d.tolist()))}, "
        f"share of {hi} = {np.mean(d == hi):.4f}, mean = {d.mean():.5f}"
    )
print(f"expected share of {hi} under 'stochastic': {p_up:.4f}, and E[fl(x)] = x = {x0}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), layout="tight")
ax = axes[0]
width = 0.02
for k, (mode, d) in enumerate(draws.items()):
    shares = [np.mean(d == lo), np.mean(d == hi)]
    ax.bar(np.array([lo, hi]) + (k - 0.5) * width, shares, width=width, label=mode)
ax.hlines(
    [1 - p_up, p_up],
    [lo - 2 * width, hi - 2 * width],
    [lo + 2 * width, hi + 2 * width],
    colors="k",
    lw=2,
    label="expected under 'stochastic'",
)
ax.axvline(x0, color="k", ls="--", lw=1)
ax.text(x0, 0.9, f" x = {x0}", fontsize=9)
ax.set_xticks([lo, x0, hi])
ax.set_ylim(0, 1)
ax.set_ylabel("share of draws")
ax.set_title(f"{DRAWS:,} draws of fl({x0})", fontsize=11)
ax.legend(fontsize=8, loc="upper left")

ax = axes[1]
n = np.arange(1, DRAWS + 1)
for mode, d in draws.items():
    ax.plot(n, np.cumsum(d) / n, lw=1, label=f"running mean, {mode}")
sigma = (hi - lo) * math.sqrt(p_up * (1 - p_up))
ax.fill_between(
    n,
    x0 - 2 * sigma / np.sqrt(n),
    x0 + 2 * sigma / np.sqrt(n),
    color="C0",
    alpha=0.15,
    label=r"$x \pm 2\sigma/\sqrt{n}$",
)
ax.axhline(x0, color="k", lw=1, ls="--")
ax.axhline((lo + hi) / 2, color="C1", lw=0.8, ls=":")
ax.set_xscale("log")
ax.set_ylim(lo, hi)
ax.set_xlabel("number of draws n")
ax.legend(fontsize=8, loc="lower right")
ax.set_title("The mean converges to x (and to the midpoint for 'equal')", fontsize=11)
plt.show()

# %% [markdown]
# ### A long sum: stagnation
#
# Sum many small positive terms into a bfloat16 accumulator ($p = 8$), rounding after every addition:
# $s_k = \mathrm{fl}(s_{k-1} + t_k)$. The terms are multiples of $2^{-14}$ below $2^{-6}$, so each is a
# bfloat16 value and each float64 sum $s_{k-1} + t_k$ is exact: `round_to` then rounds the exact sum, as
# an accumulator of that precision would. With round to nearest the sum **stagnates** once most terms are
# below half the accumulator's ulp: they are all rounded away. Stochastic rounding keeps every term in
# expectation, and its error grows like $\sqrt{n}\,u$ rather than $n u$ (Connolly, Higham and Mary, 2021).

# %%
acc = lampref.bf16
rng = np.random.default_rng(SEED)
terms = rng.integers(1, 256, size=TERMS).astype(np.float64) * 2.0**-14
exact = np.cumsum(terms)  # exact: multiples of 2**-14 far below 2**53 * 2**-14

nearest = np.empty(TERMS)
stochastic = np.empty((TERMS, RUNS))
s_near = np.float64(0.0)
s_sto = np.zeros(RUNS)
for k, t in enumerate(terms):
    s_near = np.float64(round_to(s_near + t, acc))
    s_sto = round_to(s_sto + t, acc, "stochastic", rng=rng).astype(np.float64)
    nearest[k] = s_near
    stochastic[k] = s_sto

print(f"{TERMS:,} terms, exact sum {exact[-1]:.4f}")
print(
    f"round to nearest:     {nearest[-1]:.4f}   "
    f"(relative error {abs(nearest[-1] - exact[-1]) / exact[-1]:.2e})"
)
final = stochastic[-1]
rel = np.abs(final - exact[-1]) / exact[-1]
print(
    f"stochastic, {RUNS} runs: mean {final.mean():.4f}, std {final.std():.4f}   "
    f"(median relative error {np.median(rel):.2e})"
)
print(f"bfloat16 unit roundoff u = {acc.unit_roundoff:.2e}")
check(
    abs(final.mean() - exact[-1]) < abs(nearest[-1] - exact[-1]),
    "the mean of the stochastic sums is closer to the exact sum than round to nearest",
)

# %%
k = np.arange(1, TERMS + 1)
fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="tight")
ax = axes[0]
ax.plot(k, exact, color="k", lw=1.5, label="exact")
ax.plot(k, nearest, color="C3", lw=1.5, label="round to nearest")
ax.fill_between(
    k,
    stochastic.min(axis=1),
    stochastic.max(axis=1),
    color="C0",
    alpha=0.25,
    label=f"stochastic, min-max of {RUNS} runs",
)
ax.plot(k, stochastic[:, 0], color="C0", lw=0.8, label="stochastic, one run")
ax.set_xlabel("terms added k")
ax.set_ylabel("partial sum")
ax.legend(fontsize=8)
ax.set_title(f"Summing {TERMS:,} small terms in bfloat16", fontsize=11)

ax = axes[1]
rel_near = np.abs(nearest - exact) / exact
rel_sto = np.sqrt(np.mean(((stochastic - exact[:, None]) / exact[:, None]) ** 2, axis=1))
ax.loglog(k, rel_near, color="C3", lw=1.2, label="round to nearest")
ax.loglog(k, rel_sto, color="C0", lw=1.2, label="stochastic (rms over runs)")
ax.loglog(k, k * acc.unit_roundoff, color="0.4", ls="--", lw=1, label=r"$k\,u$")
ax.loglog(k, np.sqrt(k) * acc.unit_roundoff, color="0.4", ls=":", lw=1, label=r"$\sqrt{k}\,u$")
ax.set_xlabel("terms added k")
ax.set_ylabel("relative error of the partial sum")
ax.legend(fontsize=8)
ax.set_title("Error growth", fontsize=11)
plt.show()

# %% [markdown]
# Round to nearest is exact for a while, then stalls: from then on the relative error tends to 1. The
# stochastic runs stay around the exact sum, with a spread of the order of $\sqrt{k}\,u$ relative to it.
#
# **References.** N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002.
# M. P. Connolly, N. J. Higham and T. Mary, "Stochastic rounding and its probabilistic backward error
# analysis", SIAM J. Sci. Comput. 43(1), 2021. IEEE 754-2019; OCP 8-bit Floating Point Specification, 2023;
# OCP Microscaling Formats v1.0, 2023.

# %% [markdown]
# ## Exercises
#
# The solutions are in `notebooks/solutions/01_formats_and_rounding.py`.
#
# 1. **bfloat16 is the top half of float32.** For the values 1, $-0$, `round_to(1/3, "bf16")`, the largest
#    finite bfloat16 value and its smallest subnormal, compute `encode(x, "bf16")` and
#    `encode(x, "fp32") >> 16`. What do you observe, and why? Then take the float32 value of $1/3$: which
#    rounding mode to bfloat16 does dropping the low 16 bits of its code implement?
# 2. **Where the codes go.** Decode all 256 codes of `e5m2` and of `e4m3` and count the finite values (and
#    among them the subnormals), the infinities and the NaNs; print each format's largest finite value and
#    its unit roundoff. What does `e5m2` buy with its extra exponent bit, and what does `e4m3` gain by
#    having no infinity?
# 3. **The first integer that is not a value.** For `fp16`, `bf16` and `e4m3`, find the smallest positive
#    integer $n$ with `round_to(n, fmt) != n`, compare it with $2^p$, and print what it rounds to and the
#    codes of its two neighbours. Explain the result with the spacing of the binade $[2^p, 2^{p+1})$ and the
#    rule for ties.
