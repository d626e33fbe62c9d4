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
# # Double rounding: solutions to the exercises
#
# The answers to the exercises of `notebooks/04_double_rounding.py`, with code and short prose. The setup
# repeats the notebook's, so this file runs on its own.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from lampref import Accumulator, FloatFormat, fp32_mantissa, matmul, round_to
from lampref.course import check

SMALL = os.environ.get("LAMPREF_SMALL", "0") not in ("", "0")
N_VALUES = 200_000 if SMALL else 1_000_000
ROWS = 32 if SMALL else 128
LENGTH = 256
SEED = 20_260_404


# %% [markdown]
# ## Exercise 1: the rate of double rounding errors
#
# For x uniform in [1, 2), the p-bit midpoints are 2^(1-p) apart. Rounding to float32 (ulp 2^-23) maps
# onto a midpoint m every x within 2^-24 of it; the tie is then broken to the even neighbour, which is on
# one side of m, so only the x on the other side, an interval of width 2^-24, end wrong. The rate is
# 2^-24 / 2^(1-p) = 2^(p - 25). For p close to 24 the formula breaks down: at p = 23 float32 has only one
# extra bit, and at p = 24 the second rounding does nothing.

# %%
rng = np.random.default_rng(SEED)
x = 1.0 + rng.random(N_VALUES)  # [N] float64 in [1, 2)
x32 = round_to(x, "fp32")
ps = np.arange(4, 25)
measured = []
for p in ps:
    fmt = FloatFormat(p=int(p), emax=15)
    measured.append(np.mean(round_to(x, fmt) != round_to(x32, fmt)))
measured = np.array(measured)
predicted = 2.0 ** (ps - 25.0)
for p, m_, q in zip(ps, measured, predicted, strict=True):
    print(f"p = {p:2d}: measured {m_:.2e}, predicted {q:.2e}")

fig, ax = plt.subplots(figsize=(7, 4), layout="tight")
shown = measured > 0
ax.semilogy(ps[shown], measured[shown], "o", label="measured")
ax.semilogy(ps, predicted, "k-", lw=1, label="2^(p - 25)")
ax.set_xlabel("target precision p")
ax.set_ylabel("share of values rounded wrongly")
ax.legend(fontsize=8)
ax.set_title(f"Rounding through float32, {N_VALUES:,} values in [1, 2)", fontsize=10)
plt.show()

# %% [markdown]
# The measured rate doubles with each bit, as predicted, as long as it is large enough to count (for small
# p the sample holds only a handful of cases). At p = 24 nothing differs, and at p = 23 the count follows
# the same formula (float32 is then one bit wider, and every midpoint still catches half a float32 ulp).

# %%
check(measured[ps == 24][0] == 0, "rounding a float32 value to 24 bits changes nothing")

# %% [markdown]
# ## Exercise 2: directed rounding composes
#
# Truncation toward zero at p + 2 bits followed by truncation at p bits is truncation at p bits: both cut
# off bits, the first one only fewer of them. The same holds for rounding up (or down) twice. Round to odd
# followed by a directed rounding is also correct, since the odd result lies strictly between the same two
# p-bit neighbours as the exact value whenever that value is not a p-bit number.

# %%
target = FloatFormat(p=4, emax=7, name="target")
source = FloatFormat(p=12, emax=7, name="source")
values = source.values()
values = values[np.isfinite(values)].astype(np.float64)
middle = target.replace(p=target.p + 2, name=None)
results = {}
for first, second in [
    ("toward_zero", "toward_zero"),
    ("toward_pos", "toward_pos"),
    ("toward_neg", "toward_neg"),
    ("odd", "toward_zero"),
    ("odd", "toward_pos"),
    ("nearest_even", "nearest_even"),
]:
    twice = round_to(round_to(values, middle, first), target, second)
    results[(first, second)] = int(np.sum(twice != round_to(values, target, second)))
    print(f"{first:12} at p + 2, then {second:12} at p: {results[(first, second)]:5d} of {values.size} wrong")
check(
    all(v == 0 for k, v in results.items() if k[1] != "nearest_even"),
    "directed twice, or odd then directed, is the direct rounding for every value",
)

# %% [markdown]
# Only rounding to nearest twice goes wrong: it is the one mode whose decision depends on where the value
# lies between the two neighbours (below or above the midpoint), which the first rounding can move.
#
# ## Exercise 3: the efficient kernel
#
# With `block=32` the float32 stage is visited only once per 32 products: there are 8 roundings per dot
# product of 256 terms instead of 256, and so far fewer chances to hit a midpoint.

# %%
rng = np.random.default_rng(SEED + 1)
A = rng.uniform(-1.0, 1.0, size=(ROWS, LENGTH)).astype(np.float32)  # [R, K]
B = rng.uniform(-1.0, 1.0, size=(LENGTH, ROWS)).astype(np.float32)  # [K, R]
shares = {}
for m in (10, 13):
    strict = np.mean(matmul(A, B, Accumulator.authors(m)) != matmul(A, B, Accumulator(fp32_mantissa(m))))
    efficient = np.mean(
        matmul(A, B, Accumulator.authors(m, block=32))
        != matmul(A, B, Accumulator(fp32_mantissa(m), block=32))
    )
    shares[m] = (strict, efficient)
    print(f"m = {m}: strict kernel differs in {strict:.4f} of the dot products, efficient in {efficient:.4f}")
print(
    f"roundings per dot product: strict {LENGTH}, efficient {LENGTH // 32}, ratio {LENGTH // (LENGTH // 32)}"
)
for m, (strict, efficient) in shares.items():
    if efficient > 0:
        print(f"m = {m}: the strict kernel differs {strict / efficient:.0f} times as often")

# %% [markdown]
# The efficient kernel differs from its exact counterpart far less often: the share scales with the number
# of roundings (compare the ratios printed with 32; the counts are small, so they are noisy). The remaining
# differences are again double roundings of the float32 addition of a block sum to the accumulator.
