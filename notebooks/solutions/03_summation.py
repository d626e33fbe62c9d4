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
# # Summation: solutions to the exercises
#
# The answers to the exercises of `notebooks/03_summation.py`, with code and short prose. The setup
# repeats the notebook's, so this file runs on its own.

# %%
import math
import os

import matplotlib.pyplot as plt
import numpy as np

from lampref import Accumulator, bf16, dot, fp16, round_to
from lampref.course import check, fl

SMALL = os.environ.get("LAMPREF_SMALL", "0") not in ("", "0")
RUNS = 8 if SMALL else 32  # independent stochastic sums in exercise 3
SEED = 20_260_303


def kahan_sum(values, fmt):
    """Kahan's compensated sum, every operation rounded to fmt: the notebook's loop, on scalars."""
    s = c = 0.0
    for v in values:
        y = float(fl(v - c, fmt))  # the next term, corrected
        t = float(fl(s + y, fmt))
        s, c = t, float(fl(fl(t - s, fmt) - y, fmt))
    return s


# %% [markdown]
# ## Exercise 1: the order of the terms
#
# The partial sums of the harmonic series in fp16, largest terms first, follow from a loop of `round_to`;
# `dot` gives the final sums of the three orders, and `math.fsum` the exact sum of the stored terms.

# %%
n = 5000
k = np.arange(1, n + 1)
terms = round_to(1.0 / k, fp16)  # [n] float32 holding fp16 values
ones = np.ones(n, np.float32)
exact = math.fsum(terms.astype(np.float64))
sums = {
    order: float(dot(terms, ones, Accumulator(fp16, order=order)))
    for order in ("sequential", "reverse", "pairwise")
}
for order, total in sums.items():
    print(f"{order:10}: {total:.4f}, relative error {abs(total - exact) / exact:.2e}")
print(f"exact sum of the stored terms: {exact:.4f}")

s, trace = 0.0, np.empty(n)
for i, t in enumerate(terms.astype(np.float64)):
    s = float(round_to(s + t, fp16))
    trace[i] = s
last = int(np.flatnonzero(np.diff(trace))[-1]) + 2  # the last k at which the partial sum changed
half_ulp = 2.0 ** (math.floor(math.log2(trace[-1])) - fp16.p)
print(f"largest first: the sum grows for the last time at k = {last}, to {trace[-1]}")
print(f"from k = {last + 1} on every term is at most {terms[last]:.3e}")
print(f"half an ulp of the partial sum in [4, 8): 2^-9 = {half_ulp:.3e}; 1/{last} = {1 / last:.3e}")
check(trace[-1] == sums["sequential"], "the loop ends at the sum computed by dot")
check(abs(sums["reverse"] - exact) < abs(sums["sequential"] - exact), "smallest first is more accurate")

# %% [markdown]
# Largest first, the sum passes 4 early and grows for the last time at $k = 512$, where $1/512 = 2^{-9}$ is
# exactly half the ulp of the partial sum in $[4, 8)$: a tie, rounded to the even neighbour, here upwards.
# From $k = 513$ on, $1/k$ is below half an ulp and every term is rounded away: the sum stays at 7.0859.
# Smallest first, the partial sum is small while the small terms are added, so each of them is a fair
# fraction of its ulp and survives; the sum reaches the large terms with the small ones already inside. Its
# error, a few percent, is what $n$ roundings of relative size up to $u$ leave, of order $\sqrt n\,u$;
# pairwise summation, which adds numbers of similar size throughout, does better still.
#
# ## Exercise 2: Kahan against stagnation

# %%
n_ones = 4096
for fmt in (bf16, fp16):
    total = kahan_sum(np.ones(n_ones), fmt)
    print(f"{fmt.name}: Kahan's sum of {n_ones} ones is {total:g}")
    check(total == n_ones, f"{fmt.name}: Kahan's sum of ones is exact")

s, c = 256.0, 0.0  # bfloat16, the moment plain summation stagnates
print("\n     s      y      t      c   (bfloat16, from s = 256 on)")
for _ in range(8):
    y = float(fl(1.0 - c, bf16))
    t = float(fl(s + y, bf16))
    c = float(fl(fl(t - s, bf16) - y, bf16))
    print(f"{s:6g} {y:6g} {t:6g} {c:6g}")
    s = t

# %% [markdown]
# Kahan's sum does not stagnate: it is exact in both formats. At $s = 256$ the first 1 is lost ($t = s$),
# but $c = (t - s) - y = -1$ records the loss exactly, and the next corrected term is $y = 1 - c = 2$, which
# is representable next to 256. A tie can also round up ($258 + 1 \to 260$): then $c = +1$ records the
# excess and the next term becomes $y = 0$. The compensation works because $t - s$ and $(t - s) - y$ are
# computed exactly (the Fast2Sum property of round to nearest, with $|s| \ge |y|$): whatever is lost or added
# too much in one step is given back in the next.
#
# ## Exercise 3: where a sum of 0.1 stops
#
# The term is $t = \mathrm{fl}(0.1) = 0.10009765625$ in bfloat16 ($p = 8$). In $[2^e, 2^{e+1})$ the spacing
# is $2^{e-7}$. For $e = 3$ (spacing 0.0625) and $e = 4$ (spacing 0.125), $t$ lies closer to 0.125 than to
# the multiple below, so every addition rounds up to $s + 0.125$: the sum runs 25% too fast. At $e = 5$
# the spacing is 0.25 and half of it, 0.125, exceeds $t$: every term is lost and the sum stops at
# $2^5 = 32$.

# %%
t = float(fl(0.1, bf16))
n = 2000
copies = np.full(n, t, np.float32)
total = float(dot(copies, np.ones(n, np.float32), Accumulator(bf16)))
print(f"t = {t}; the sequential bfloat16 sum of {n} copies is {total:g}, exact {n * t:g}")
check(total == 32.0, "the sum stops at 32")

s, trace = 0.0, np.empty(n)
for i in range(n):
    s = float(round_to(s + t, bf16))
    trace[i] = s
reach = int(np.argmax(trace == 32.0)) + 1
print(f"it reaches 32 after {reach} terms, where the exact partial sum is {reach * t:.2f}: too fast")
check(reach * t < 32, "before stopping, the sum runs ahead of the exact one")

sr = dot(np.tile(copies, (RUNS, 1)), np.ones(n, np.float32), Accumulator(bf16, mode="stochastic"), rng=SEED)
print(f"stochastic rounding, {RUNS} runs: mean {sr.mean():.1f}, standard deviation {sr.std():.1f}")

fig, ax = plt.subplots(figsize=(8, 4), layout="tight")
steps = np.arange(1, n + 1)
ax.plot(steps, steps * t, "k--", lw=1, label="exact")
ax.plot(steps, trace, color="C3", lw=1.5, label="round to nearest")
ax.axhline(32, color="0.6", lw=0.8, ls=":")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("number of terms")
ax.set_ylabel("partial sum")
ax.set_title("Sum of fl(0.1) in bfloat16: too fast, then stuck at 32", fontsize=11)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Round to nearest first overshoots (each term counts as 0.125 from 8 on), reaches 32 after 276 terms
# instead of 320, and then stops, ending 84% below the exact 200.2. Stochastic rounding has no preferred
# direction: its runs end around the exact sum, with a spread of a few percent.
