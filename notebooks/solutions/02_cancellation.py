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
# # Catastrophic cancellation: solutions to the exercises
#
# The answers to the exercises of `notebooks/02_cancellation.py`, with code and short prose. The setup
# repeats the notebook's, so this file runs on its own. As there, each operation is computed in float64 and
# rounded to the format, which is the correctly rounded operation for the formats used here.

# %%
import math
import os
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np

from lampref import bf16, fp16
from lampref.course import check, fl

SMALL = os.environ.get("LAMPREF_SMALL", "0") not in ("", "0")
GRID = 301 if SMALL else 2_001  # values of x in exercises 1 and 3


def relative_error(computed, exact):
    """|computed - exact| / |exact|, computed exactly with Fractions and returned as a float."""
    exact = Fraction(exact) if isinstance(exact, Fraction) else Fraction(float(exact))
    return float(abs(Fraction(float(computed)) - exact) / abs(exact))


# %% [markdown]
# ## Exercise 1: rewriting log(1 + x)
#
# The naive $\mathrm{fl}(\log(\mathrm{fl}(1 + x)))$ inherits the rounding error of $w = \mathrm{fl}(1 + x)$,
# up to $u$ in absolute terms, and $\log(1 + x) \approx x$ is small: a relative error up to about $u/x$, as
# for $(1 + x) - 1$. The rewrite $x \log(w) / (w - 1)$ uses the same rounded $w$, but the function
# $g(w) = \log(w)/(w - 1)$ varies slowly near 1 ($g(w) \approx 1 - (w - 1)/2$): evaluating it at the wrong
# $w$ costs only about $u/2$ relative, and the exact factor $x$ carries the magnitude. The subtraction
# $w - 1$ is exact; its cancellation hurts neither because $\log(w)$ is computed from the same $w$, so the
# two errors cancel in the quotient.

# %%
u = fp16.unit_roundoff
xs = fl(np.geomspace(2.0**-14, 1.0, GRID), fp16)  # x as stored in fp16
w = fl(1.0 + xs, fp16)
naive = fl(np.log(w), fp16)
ratio = fl(fl(np.log(w), fp16) / np.where(w == 1.0, 1.0, fl(w - 1.0, fp16)), fp16)
rewrite = np.where(w == 1.0, xs, fl(xs * ratio, fp16))
reference = np.array([math.log1p(x) for x in xs])  # float64, accurate to about 1e-16
err_naive = np.abs(naive - reference) / reference
err_rewrite = np.abs(rewrite - reference) / reference
print(
    f"fp16, u = {u:.2e}: largest relative error, naive {err_naive.max():.2f}, rewrite {err_rewrite.max():.2e}"
)
print(f"at x = {xs[0]:.2e}: naive {err_naive[0]:.2f}, rewrite {err_rewrite[0]:.2e}")
check(err_rewrite.max() <= 3 * u, f"the rewrite is within 3u at every x ({err_rewrite.max() / u:.2f}u)")
check(err_naive[xs < u].max() == 1.0, "the naive form returns 0 for every x < u")

fig, ax = plt.subplots(figsize=(8, 4.5), layout="tight")
ax.loglog(xs, np.maximum(err_naive, 1e-6), ".", ms=3, color="C3", label=r"naive $\log(\mathrm{fl}(1+x))$")
ax.loglog(xs, np.maximum(err_rewrite, 1e-6), ".", ms=3, color="C2", label=r"rewrite $x\log(w)/(w-1)$")
ax.loglog(xs, np.minimum(u / xs, 1.0), "k-", lw=1, label=r"$u/x$")
ax.axhline(u, color="k", ls="--", lw=1, label="u")
ax.set_xscale("log", base=2)
ax.set_xlabel("x (stored in fp16)")
ax.set_ylabel("relative error against math.log1p")
ax.set_title("log(1 + x) in fp16 (zeros drawn at 1e-6)", fontsize=11)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The naive error follows $u/x$ and is 100% below $x = u$, where $w = 1$. The rewrite stays within a few
# $u$ everywhere. `numpy.log1p` and `numpy.expm1` exist for exactly this reason (Higham 2002, section 1.14.1).
#
# ## Exercise 2: when is (1 + x) - 1 exact in bfloat16?

# %%
values = bf16.values().astype(np.float64)
x = values[(values > 0) & (values < 1)]  # every positive bfloat16 value below 1
d = fl(fl(1.0 + x, bf16) - 1.0, bf16)
exact = x[d == x]
print(f"{x.size} positive bfloat16 values below 1; (1 + x) - 1 == x for {exact.size} of them")
print(f"smallest: {exact.min()} = 2^{math.log2(exact.min()):.0f}; u = {bf16.unit_roundoff}, eps = {bf16.eps}")
print(
    f"(1 + u) - 1 = {fl(fl(1.0 + bf16.unit_roundoff, bf16) - 1.0, bf16)} (1 + u is a tie, rounded to even 1)"
)
check(exact.min() == bf16.eps, "the smallest x is eps = 2u = 2^-7")
check(np.array_equal(exact, np.arange(1, 128) / 128.0), "the x that pass are exactly the multiples k/128")

# %% [markdown]
# $1 + x$ is representable exactly when $x$ is a multiple of the spacing of bfloat16 in $[1, 2)$,
# $\varepsilon = 2^{-7} = 2u$. The smallest such $x$ is $\varepsilon$ itself; $x = u$ is a tie between 1
# and $1 + \varepsilon$ and rounds to 1. Only the 127 multiples $k/128$ pass, out of 16 thousand bfloat16
# values in $(0, 1)$: less than 1%.
#
# ## Exercise 3: a cancellation-free form of sqrt(x + 1) - sqrt(x)
#
# Multiplying and dividing by $\sqrt{x+1} + \sqrt x$ gives $1 / (\sqrt{x+1} + \sqrt x)$: a sum of two
# positive numbers, with condition number 1. The reference is computed from the exact stored $x$ with
# square roots to 200 bits.


# %%
def sqrt_fraction(q, bits=200):
    """The square root of a non-negative Fraction q, rounded down to a multiple of 2**-bits."""
    return Fraction(math.isqrt(q.numerator * 4**bits // q.denominator), 2**bits)


ub = bf16.unit_roundoff
xs = fl(np.geomspace(1.0, 1e6, GRID), bf16)
r1 = fl(np.sqrt(fl(xs + 1.0, bf16)), bf16)
r0 = fl(np.sqrt(xs), bf16)
direct = fl(r1 - r0, bf16)
stable = fl(1.0 / fl(r1 + r0, bf16), bf16)
reference = [1 / (sqrt_fraction(Fraction(v) + 1) + sqrt_fraction(Fraction(v))) for v in xs]
err_direct = np.array([relative_error(c, e) for c, e in zip(direct, reference, strict=True)])
err_stable = np.array([relative_error(c, e) for c, e in zip(stable, reference, strict=True)])
nonzero = xs[direct != 0]
print(f"largest relative error: direct {err_direct.max():.2f}, stable {err_stable.max():.2e} (u = {ub:.2e})")
first_zero = xs[xs > nonzero.max()].min()
print(f"the direct form is last nonzero at x = {nonzero.max():g}, and 0 from x = {first_zero:g} on")
tie = (xs >= 256) & (xs < 512)
up = fl(xs[tie] + 1.0, bf16) - xs[tie]
print(f"in [256, 512): x + 1 rounds to x for {np.sum(up == 0)} grid points, to x + 2 for {np.sum(up == 2)}")
check(err_stable.max() <= 3 * ub, f"the stable form is within 3u at every x ({err_stable.max() / ub:.2f}u)")
check(np.all(direct[xs >= 512] == 0), "the direct form is 0 for every x >= 512")

fig, ax = plt.subplots(figsize=(8, 4.5), layout="tight")
ax.loglog(xs, np.maximum(err_direct, 1e-5), ".", ms=3, color="C3", label=r"$\sqrt{x+1} - \sqrt{x}$")
ax.loglog(xs, np.maximum(err_stable, 1e-5), ".", ms=3, color="C2", label=r"$1/(\sqrt{x+1} + \sqrt{x})$")
ax.axhline(ub, color="k", ls="--", lw=1, label="u")
ax.axvline(512, color="0.5", lw=0.8, ls=":")
ax.set_xlabel("x (stored in bfloat16)")
ax.set_ylabel("relative error")
ax.set_title("sqrt(x + 1) - sqrt(x) in bfloat16 (zeros drawn at 1e-5)", fontsize=11)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The direct form has relative error about $u \sqrt x \cdot 2\sqrt x = 2ux$ (the rounding errors of the
# square roots, of size $u\sqrt x$, divided by the result $\approx 1/(2\sqrt x)$), so it is useless long
# before it vanishes. It is 0 for every $x \ge 512 = 2^9$: from there the spacing of bfloat16 is 4 or more,
# so $x + 1$ rounds back to $x$. Between 256 and 512 the spacing is 2 and $x + 1$ is a tie, rounded to the
# neighbour with an even significand: back to $x$ for half the values and up to $x + 2$ for the other half,
# where the result is not 0 but, at best, twice the true value. Below 256, the two rounded square roots often
# coincide already, since $\sqrt{x+1} - \sqrt x \approx 1/(2\sqrt x)$ drops below half the spacing near
# $\sqrt x$ once $x$ exceeds about $2^7$. The stable form keeps a few $u$ throughout.
