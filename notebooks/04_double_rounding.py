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
# # Double rounding: when rounding twice differs from rounding once
#
# A value rounded to float32 and then to float16 is not always the value rounded to float16 directly. The
# difference is rare, it is never more than one unit in the last place at the moment it happens, and it is
# exactly what a kernel that computes in float32 and then rounds to a narrower format does.
#
# What you will learn:
#
# - why rounding to nearest twice can land on the wrong neighbour, and how often it does for random values
#   (float64 to float32 to float16 or bfloat16), shown in bits;
# - that the LAMP authors' float32-staged accumulator is a double rounding, and how often (and by how much)
#   its dot products differ from an accumulator that rounds the exact sum once per step;
# - round to odd, the cure: rounding to odd at p + 2 bits and then to nearest at p bits is the correct
#   rounding, checked on every value of a small format.
#
# Only the public API of lampref is used and nothing is downloaded. Set `LAMPREF_SMALL=1` to run with small
# sizes.

# %%
import math
import os

import matplotlib.pyplot as plt
import numpy as np

import lampref
from lampref import Accumulator, FloatFormat, fp32_mantissa, matmul, round_to, ulp
from lampref.course import check
from lampref.validate import encode

SMALL = os.environ.get("LAMPREF_SMALL", "0") not in ("", "0")
N_VALUES = 400_000 if SMALL else 4_000_000  # random values of section 1
ROWS = 32 if SMALL else 128  # the dot products of section 2: ROWS x ROWS of them
LENGTH = 256  # terms per dot product
SEED = 20_260_404


def bits(value, fmt):
    """The bit pattern of a value of fmt as 'sign exponent significand'."""
    fmt = lampref.get_format(fmt)
    pattern = f"{int(encode(value, fmt)):0{fmt.bits}b}"
    e = fmt.bits - fmt.p  # exponent field width
    return f"{pattern[0]} {pattern[1 : 1 + e]} {pattern[1 + e :]}"


print(f"lampref {lampref.__version__}, small sizes: {SMALL}")

# %% [markdown]
# ## 1. Rounding twice versus rounding once
#
# Take random float64 numbers in [1, 2) and round each one to float16 twice: first to float32, then to
# float16. Compare with rounding it to float16 directly. Both use round to nearest, ties to even.

# %%
rng = np.random.default_rng(SEED)
x = 1.0 + rng.random(N_VALUES)  # [N_VALUES] float64 in [1, 2)
x32 = round_to(x, "fp32")  # [N_VALUES] float32
for name in ("fp16", "bf16"):
    fmt = lampref.get_format(name)
    direct = round_to(x, fmt)
    twice = round_to(x32, fmt)
    differ = direct != twice
    rate = 2.0 ** (fmt.p - 25)  # derived below
    print(
        f"{name} (p = {fmt.p:2d}): {differ.sum():4d} of {N_VALUES:,} values differ "
        f"(rate {differ.mean():.2e}; predicted 2^({fmt.p} - 25) = {rate:.2e})"
    )

# %% [markdown]
# Why, and how often. Let m be a midpoint between two neighbouring float16 numbers. Rounding to float32
# sends every x within half a float32 ulp of m onto m itself (m is a float32 number). The second rounding
# then sees an exact tie and breaks it towards the even neighbour, whichever side of m the original x was on.
# For the x on the other side, the result is the wrong neighbour. That "wrong side" has width half a float32
# ulp, 2^-24 in [1, 2), and the midpoints are one float16 ulp, 2^-10, apart: a fraction 2^-24 / 2^-10 =
# 2^-14 of all values, 2^(p - 25) for a target of p bits.
#
# One of them, in bits (sign, exponent, significand):

# %%
fp16 = lampref.fp16
direct, twice = round_to(x, fp16), round_to(x32, fp16)
i = int(np.flatnonzero(direct != twice)[0])
xi, x32i, direct_i, twice_i = float(x[i]), float(x32[i]), float(direct[i]), float(twice[i])
print(f"x               = {xi!r:22} {bits(xi, 'fp64')}")
print(f"fl32(x)         = {x32i!r:22} {bits(x32i, 'fp32')}")
print(f"fl16(x)         = {direct_i!r:22} {bits(direct_i, 'fp16')}   (direct)")
print(f"fl16(fl32(x))   = {twice_i!r:22} {bits(twice_i, 'fp16')}   (twice)")
midpoint = (direct_i + twice_i) / 2
ulp16 = float(ulp(xi, fp16))
print(f"float16 midpoint between them: {midpoint!r}; fl32(x) == midpoint: {x32i == midpoint}")
print(f"x - midpoint = {xi - midpoint:+.3e} = {(xi - midpoint) / ulp16:+.2e} float16 ulp")
print(f"error of the direct rounding: {abs(direct_i - xi) / ulp16:.6f} ulp")
print(f"error of the double rounding: {abs(twice_i - xi) / ulp16:.6f} ulp")
check(abs(direct_i - twice_i) == ulp16, "the two results are neighbours, one float16 ulp apart")

# %% [markdown]
# x lies just off a float16 midpoint, closer to one neighbour; float32 cannot tell it from the midpoint, and
# ties to even picks the other neighbour. The double-rounded error is just over half an ulp, not the at most
# half an ulp of a correct rounding.
#
# A picture of the trap: x runs over a window of a few float32 ulps around that midpoint. The direct
# rounding switches at the midpoint, the double rounding half a float32 ulp later.

# %%
ulp32 = float(ulp(midpoint, "fp32"))
window = midpoint + np.linspace(-3.0, 3.0, 1_201) * ulp32  # [1201] float64
fig, ax = plt.subplots(figsize=(9, 3.6), layout="tight")
scale = (window - midpoint) / ulp32
ax.plot(scale, (round_to(window, fp16) - midpoint) / ulp16, lw=2.5, color="C0", label="fl16(x), direct")
twice_w = round_to(round_to(window, "fp32"), fp16)
ax.plot(scale, (twice_w - midpoint) / ulp16, lw=1.5, ls="--", color="C3", label="fl16(fl32(x)), twice")
wrong = round_to(window, fp16) != twice_w
ax.fill_between(scale, -0.6, 0.6, where=wrong, color="C3", alpha=0.15, label="the two differ")
ax.set_xlabel("(x - midpoint) / float32 ulp")
ax.set_ylabel("(result - midpoint) / float16 ulp")
ax.set_title("Around a float16 midpoint: where rounding twice picks the wrong neighbour", fontsize=11)
ax.legend(fontsize=8, loc="upper left")
plt.show()

# %% [markdown]
# ## 2. The real case: the LAMP authors' float32-staged accumulator
#
# The LAMP authors emulate an accumulator of m mantissa bits on a GPU: each step adds in float32 and then
# rounds the float32 sum to m bits. In lampref this is `Accumulator.authors(m)`, `staging="fp32"`:
#
# - with `fma=True` (their compiled kernel) the step is fl_m(fl32(s + a b)), the product exact;
# - with `fma=False` it is fl_m(fl32(s + fl32(a b))), the product rounded too.
#
# The reference rounds the exact value once per step: fl_m(s + a b), `Accumulator(fp32_mantissa(m))`. The
# first is a double rounding of the second. How often does it change a dot product, and by how much? The
# inputs are random float32 values uniform in [-1, 1), and each dot product has 256 terms.

# %%
rng = np.random.default_rng(SEED + 1)
A = rng.uniform(-1.0, 1.0, size=(ROWS, LENGTH)).astype(np.float32)  # [R, K]
B = rng.uniform(-1.0, 1.0, size=(LENGTH, ROWS)).astype(np.float32)  # [K, R]
products = A.astype(np.float64)[:, :, None] * B.astype(np.float64)[None, :, :]  # [R, K, R], exact
exact = np.array([[math.fsum(products[i, :, j]) for j in range(ROWS)] for i in range(ROWS)])  # [R, R]
scale_sum = np.abs(products).sum(axis=1)  # [R, R] sum of |a_k b_k|: the scale of the partial sums

ms = list(range(1, 17))
kernels = {"fma=True": {}, "fma=False": {}}
reference = {}
for m in ms:
    reference[m] = matmul(A, B, Accumulator(fp32_mantissa(m))).astype(np.float64)  # [R, R]
    kernels["fma=True"][m] = matmul(A, B, Accumulator.authors(m)).astype(np.float64)
    kernels["fma=False"][m] = matmul(A, B, Accumulator.authors(m, fma=False)).astype(np.float64)

print(f"{ROWS * ROWS} dot products of length {LENGTH}: share that differ from the exact per-step rounding")
print("   m   fma=True   fma=False   largest difference, in ulps of the result / of sum |a_k b_k|")
for m in ms:
    ref = reference[m]
    step = ulp(ref, fp32_mantissa(m)).astype(np.float64)  # [R, R]
    step_scale = ulp(scale_sum, fp32_mantissa(m)).astype(np.float64)  # [R, R]
    shares = [np.mean(k[m] != ref) for k in kernels.values()]
    largest = max(np.max(np.abs(k[m] - ref) / step) for k in kernels.values())
    largest_scale = max(np.max(np.abs(k[m] - ref) / step_scale) for k in kernels.values())
    print(f"  {m:2d}   {shares[0]:8.4f}   {shares[1]:9.4f}   {largest:6.0f} / {largest_scale:g}")

# %% [markdown]
# With few mantissa bits the results almost always agree bit for bit: a float32 sum lands on a midpoint of
# the m-bit grid with probability about 2^(m - 24) per step. Each extra bit makes such a hit about twice as
# likely (compare the shares from m = 10 on), until differences become common. Rounding the product too
# (`fma=False`) adds a few more. A difference starts as one ulp of a partial sum at one step,
# and the accumulator then carries on from a different partial sum. Measured in ulps of the final result
# the difference can look large: the sum cancels, and the result is much smaller than the partial sums
# were. Measured in ulps of the sum of |a_k b_k|, the scale of the partial sums, it is at most one here.
#
# Does it matter for accuracy? The error against the exact dot product (`math.fsum` of exact products),
# at fp16's precision (m = 10):

# %%
m = 10
errors = {"exact per-step rounding": np.abs(reference[m] - exact)}
errors.update({f"authors, {k}": np.abs(v[m] - exact) for k, v in kernels.items()})
for name, err in errors.items():
    print(f"{name:26}: median absolute error {np.median(err):.3e}, largest {err.max():.3e}")
diff = kernels["fma=True"][m] != reference[m]
better = np.sum(errors["authors, fma=True"][diff] < errors["exact per-step rounding"][diff])
print(f"where fma=True differs ({diff.sum()} dot products) it is closer to the exact value in {better}")

fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="tight")
ax = axes[0]
for (name, k), marker in zip(kernels.items(), "os", strict=True):
    share = [np.mean(k[mm] != reference[mm]) for mm in ms]
    ax.semilogy(ms, np.maximum(share, 0.5 / ROWS**2), marker + "-", label=name, ms=4)
ax.semilogy(ms, np.minimum(1.0, LENGTH * 2.0 ** (np.array(ms) - 24)), "k:", label="slope of 2^m")
ax.axhline(0.5 / ROWS**2, color="0.7", lw=0.8)
ax.text(1, 0.6 / ROWS**2, "none differ", fontsize=8, color="0.4")
ax.set_xlabel("mantissa bits m")
ax.set_ylabel("share of dot products that differ")
ax.set_title("Authors' kernel vs exact per-step rounding", fontsize=10)
ax.legend(fontsize=8)
ax = axes[1]
bins = np.geomspace(1e-6, 1e-1, 41)
for name, err in errors.items():
    ax.hist(err.ravel()[err.ravel() > 0], bins=bins, histtype="step", lw=1.3, label=name)
ax.set_xscale("log")
ax.set_xlabel("|computed - exact|")
ax.set_ylabel("dot products")
ax.set_title(f"Error against the exact dot product, m = {m}", fontsize=10)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The error distributions lie on top of each other: double rounding here is a question of bit-for-bit
# reproducibility, not of accuracy. Anyone who validates an emulation of the authors' kernel bit for bit
# must model the float32 stage (and whether the compiler fused the multiply-add), or a share of the outputs
# will not match.
#
# The kernel by hand, as an independent check of the model. Take inputs on a grid of 2^-12 in [-1, 1]:
# the products are multiples of 2^-24 and every float64 sum s + a b below is exact (far fewer than 53
# significant bits), so `round_to` applied to it rounds the exact value. Rounding it to float32 and then
# to m bits, step by step, must reproduce `Accumulator.authors(m)`:

# %%
fmt = fp32_mantissa(m)
a_grid = (rng.integers(-4096, 4097, size=(ROWS, LENGTH)) * 2.0**-12).astype(np.float32)  # [R, K]
b_grid = (rng.integers(-4096, 4097, size=(LENGTH, ROWS)) * 2.0**-12).astype(np.float32)  # [K, R]
s = np.zeros((ROWS, ROWS))  # [R, R] float64 partial sums
for k in range(LENGTH):
    term = np.multiply.outer(a_grid[:, k].astype(np.float64), b_grid[k].astype(np.float64))  # [R, R] exact
    s = round_to(round_to(s + term, "fp32"), fmt).astype(np.float64)
by_hand_differs = np.mean(s != matmul(a_grid, b_grid, Accumulator(fmt)))
print(f"on these inputs too, {by_hand_differs:.2%} of the dot products differ from exact per-step rounding")
check(
    np.array_equal(s, matmul(a_grid, b_grid, Accumulator.authors(m))),
    "fl_m(fl32(s + a b)) step by step equals Accumulator.authors(m)",
)

# %% [markdown]
# ## 3. The cure: round to odd
#
# Round to odd (`mode="odd"`, one of `lampref.MODES`) truncates and, if anything was cut off, sets the last
# significand bit to 1. An inexact result is therefore never a midpoint of the grid one or more bits
# coarser, and it stays on the same side of every such midpoint as the exact value. Boldo and Melquiond
# (2008): if the first rounding is to odd with at least p + 2 bits, rounding its result to nearest at p
# bits gives the correct rounding of the original value.
#
# Check it on every value of a small format: all finite values of a 16-bit format with 12-bit significands
# (its largest values overflow the target) are rounded to a 4-bit target format through intermediate
# formats of p + 1, p + 2 and p + 3 bits with the target's exponent range, first to nearest and then to
# odd.

# %%
target = FloatFormat(p=4, emax=7, name="target")
source = FloatFormat(p=12, emax=7, name="source")
values = source.values()
values = values[np.isfinite(values)].astype(np.float64)  # every finite value of the source
correct = round_to(values, target)

routes = {}
for extra in (1, 2, 3):
    middle = target.replace(p=target.p + extra, name=None)
    for first in ("nearest_even", "odd"):
        route = round_to(round_to(values, middle, first), target)
        routes[f"{first} at p + {extra}"] = route != correct
print(f"{values.size} values of {source.name!r}, rounded to {target!r}")
for name, wrong in routes.items():
    print(f"  {name:20} then nearest_even at p: {wrong.sum():5d} wrong")
check(
    not routes["odd at p + 2"].any() and not routes["odd at p + 3"].any(),
    "to odd at p + 2 or more bits, then to nearest, is the correct rounding for every value",
)

# %%
shown = (values >= 1.0) & (values < 2.0)
fig, ax = plt.subplots(figsize=(10, 3), layout="tight")
for row, (name, wrong) in enumerate(routes.items()):
    hit = values[shown & wrong]
    ax.plot(hit, np.full(hit.size, row), "|", ms=12, color="C3" if name.startswith("nearest") else "C0")
ax.set_yticks(range(len(routes)), [f"{name}, then nearest" for name in routes], fontsize=8)
ax.set_xticks(target.values()[(target.values() >= 1) & (target.values() <= 2)].astype(np.float64))
ax.grid(axis="x", color="0.85")
ax.set_xlim(1.0, 2.0)
ax.invert_yaxis()
ax.set_xlabel("source value in [1, 2) (ticks at the target's values)")
ax.set_title("Source values that end on the wrong target value", fontsize=11)
plt.show()

# %% [markdown]
# Rounding to nearest twice goes wrong next to every midpoint whose even neighbour lies on the other side,
# however many extra bits the intermediate format has (only fewer values are caught). Rounding to odd at p + 1
# bits is not enough: an inexact result gets its last bit set, which at p + 1 bits makes it a midpoint of
# the target, and the tie is then broken blindly. From p + 2 bits on, round to odd never fails.
#
# Back to section 1: float32 has 24 bits, at least 11 + 2 and 8 + 2, so rounding to odd first repairs every
# one of the random values:

# %%
x32_odd = round_to(x, "fp32", "odd")
for name in ("fp16", "bf16"):
    wrong = np.sum(round_to(x32_odd, name) != round_to(x, name))
    print(f"{name}: fl(odd32(x)) differs from fl(x) for {wrong} of {N_VALUES:,} values")
check(np.array_equal(round_to(x32_odd, fp16), round_to(x, fp16)), "odd32 then fp16 is the direct rounding")

# %% [markdown]
# lampref uses the same idea inside its own accumulator: the exact sum of two float64 numbers is rounded to
# odd at 53 bits and then to the accumulator's format (see the documentation of `lampref.accumulate`). A
# GPU float32 adder rounds to nearest, so the authors' kernel cannot do this without extra work; with
# exact per-step rounding, which is what round to odd provides, its results would be those of
# `Accumulator(fp32_mantissa(m))`.
#
# ## Exercises
#
# 1. **The rate of double rounding errors.** Derive the rate 2^(p - 25) of section 1 for a target of p bits,
#    then measure it for every p from 4 to 16 (`FloatFormat(p=p, emax=15)`) with 10^6 random values in
#    [1, 2), rounding through float32. Plot measured against predicted. What happens as p approaches 24?
# 2. **Directed rounding composes.** Repeat the exhaustive check of section 3 with `toward_zero` for both
#    roundings, and with `toward_pos` for both. Count the wrong values. Then round to odd at p + 2 bits and
#    finish with `toward_zero`: is the result the direct rounding toward zero? Observe that double rounding
#    is a problem of rounding to nearest.
# 3. **The efficient kernel.** The authors' "efficient" kernel sums blocks of 32 products exactly, rounds the
#    block sum to float32, adds it to the accumulator in float32 and rounds to m bits:
#    `Accumulator.authors(m, block=32)`. Compare it with `Accumulator(fp32_mantissa(m), block=32)` on the
#    data of section 2 for m = 10 and m = 13. How often do they differ, compared with the strict kernel?
#    Why fewer?
#
# **References.** S. Boldo and G. Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms
# using rounding to odd", IEEE Trans. Computers 57(4), 2008. J.-M. Muller et al., *Handbook of
# Floating-Point Arithmetic*, 2nd ed., Birkhäuser, 2018, section on double rounding. Look-ahead
# mixed-precision inference (LAMP), arXiv:2601.21623.
