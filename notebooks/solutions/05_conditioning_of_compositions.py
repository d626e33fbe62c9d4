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
# # Conditioning of compositions: solutions to the exercises
#
# The answers to the exercises of `notebooks/05_conditioning_of_compositions.py`, with code and short prose.
# The setup repeats the notebook's, so this file runs on its own.

# %%
import math
import os

import matplotlib.pyplot as plt
import numpy as np

import lampref
from lampref import Accumulator, fp32_mantissa, matmul, round_to
from lampref.analysis import condition_number, lamp_select
from lampref.course import check

SMALL = os.environ.get("LAMPREF_SMALL", "0") not in ("", "0")
GRID = 2_001 if SMALL else 20_001
SEED = 20_260_202


def exact_dots(a, b):
    """Inner products of the rows of a (float32 values) with b, correctly rounded to float64."""
    products = np.asarray(a, np.float64) * np.asarray(b, np.float64)  # [rows, d]
    return np.array([math.fsum(row) for row in products.reshape(-1, products.shape[-1])])


def softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


GELU_C, GELU_A = math.sqrt(2 / math.pi), 0.044715


def gelu_tanh(t):
    """GPT-2's GELU in float64, as t sigmoid(2v): no cancellation for negative t."""
    v = GELU_C * (t + GELU_A * t**3)
    return t * np.exp(-np.logaddexp(0.0, -2 * v))


# %% [markdown]
# ## Exercise 1: log near 1
#
# $\kappa_{\log}(z) = 1 / |\log z|$, about $1/|z - 1|$ near 1. With float16's $u = 2^{-11}$ the bound
# $\kappa u$ reaches 1 where $|\log z| = u$, that is within about $4.9 \cdot 10^{-4}$ of 1, about one
# float16 ulp (2^-10 just above 1, 2^-11 just below): the float16 neighbours of 1 are already there.

# %%
u16 = lampref.fp16.unit_roundoff
z = np.linspace(0.9, 1.1, GRID)
z = z[z != 1.0]
z16 = round_to(z, "fp16").astype(np.float64)
ok = z16 != 1.0  # log(1) = 0: the relative error would be 1 by definition
measured = np.abs(np.log(z16[ok]) - np.log(z[ok])) / np.abs(np.log(z[ok]))
kappa = condition_number("log", z[ok])
print(f"kappa u reaches 1 at |z - 1| = {math.expm1(u16):.2e} above 1 and {-math.expm1(-u16):.2e} below")
print(f"largest measured relative error {measured.max():.2f}, at z = {z[ok][np.argmax(measured)]:.6f}")
first_order = kappa * u16
check(
    np.all(measured <= first_order * (1 + first_order) + u16**2), "measured within kappa u, to second order"
)

fig, ax = plt.subplots(figsize=(8, 4), layout="tight")
ax.semilogy(z[ok], measured, ".", ms=1.5, label="measured, z rounded to float16")
ax.semilogy(z[ok], first_order, "C3-", lw=1, label=r"$\kappa_{\log}(z)\,u$")
ax.axhline(1.0, color="0.5", lw=0.8)
ax.set_xlabel("z")
ax.set_ylabel("relative error of log")
ax.legend(fontsize=8)
ax.set_title("log near 1: the input's rounding error, amplified by 1/|log z|", fontsize=10)
plt.show()

# %% [markdown]
# Where fl(z) = 1 the computed log is 0 and all digits are lost; elsewhere the error follows $\kappa u$,
# which grows like $u / |z - 1|$. The amplification comes from the problem, not from the arithmetic (log
# was evaluated in float64): the information was lost when z was rounded.
#
# ## Exercise 2: temperature and the LAMP selection
#
# The scores of section 4, divided by T, and a flat row:

# %%
d_head, n_keys = 64, 256
rng = np.random.default_rng(SEED + 5)
q = rng.standard_normal(d_head).astype(np.float32)
keys = rng.standard_normal((n_keys, d_head)).astype(np.float32)
keys[rng.choice(n_keys, 6, replace=False)] += np.float32(1.2) * q
z_lo = matmul(keys, q[:, None], Accumulator(fp32_mantissa(7)))[:, 0].astype(np.float64) / 8

counts = {}
print("     T  largest p   entries with p > 0.01   selected at tau = 1.2   at tau = 1.05")
for T in (0.25, 0.5, 1.0, 2.0, 4.0):
    p = softmax(z_lo / T)
    counts[T] = [int(lamp_select(p, tau).sum()) for tau in (1.2, 1.05)]
    print(f"{T:6g}  {p.max():9.3f}   {np.sum(p > 0.01):21d}   {counts[T][0]:21d}   {counts[T][1]:13d}")
flat = np.full(n_keys, 1.0 / n_keys)
flat_counts = [int(lamp_select(flat, tau).sum()) for tau in (1.2, 1.05)]
print(f"flat row: selected at tau = 1.2: {flat_counts[0]}, at tau = 1.05: {flat_counts[1]} (of {n_keys})")

# %% [markdown]
# A sharp row (small T) puts almost all the mass on one or two entries; recomputing them brings $\kappa$
# close to 1. A flatter row spreads the mass, and more entries must be recomputed to remove it from the
# amplification. A flat row is the worst case: every entry carries $1/n$, and reaching $\kappa(S) \le \tau$
# means recomputing a fraction of about $2 - \tau$ of all entries
# ($a_i(S) = 2 - P_S - 2/n$ for the others).

# %%
check(
    counts[0.25][0] <= counts[1.0][0] <= counts[4.0][0] <= flat_counts[0],
    "a sharper row needs no more recomputed entries than a flatter one, and the flat row the most",
)

# %% [markdown]
# ## Exercise 3: a coarser accumulator for the look-ahead
#
# The pre-activations of section 2, accumulated with 7 instead of 10 stored mantissa bits:

# %%
d, n_out = 256, 512
rng = np.random.default_rng(SEED + 2)
W = (rng.standard_normal((n_out, d)) / math.sqrt(d)).astype(np.float32)
xin = rng.standard_normal(d).astype(np.float32)
z = exact_dots(W, xin)
y_exact = gelu_tanh(z)

results = {}
for m in (10, 7):
    z_low = matmul(W, xin[:, None], Accumulator(fp32_mantissa(m)))[:, 0].astype(np.float64)
    per_unit = condition_number("gelu_tanh", z_low) / np.abs(z_low)  # K_ii = |phi'(z) / phi(z)|
    for tau in (16.0, 4.0):
        sel = per_unit > tau
        none = np.max(np.abs(gelu_tanh(z_low) - y_exact) / np.abs(y_exact))
        after = np.max(np.abs(gelu_tanh(np.where(sel, z, z_low)) - y_exact) / np.abs(y_exact))
        eps = np.abs(z_low - z)[~sel].max()
        results[(m, tau)] = (sel, none, after)
        print(
            f"m = {m:2d}, tau = {tau:4g}: {sel.sum():3d} recomputed, largest error {none:.3f} -> {after:.2e} "
            f"(eps {eps:.2e}, tau * eps {tau * eps:.2e})"
        )
same = [np.sum(results[(10, t)][0] != results[(7, t)][0]) for t in (16.0, 4.0)]
print(f"selections that differ between m = 10 and m = 7: {same[0]} at tau = 16, {same[1]} at tau = 4")

# %% [markdown]
# The selection depends only on the computed $\hat z$ through $K_{ii} = |\phi'(\hat z_i)/\phi(\hat z_i)|$,
# so with the same data it changes only where the coarser $\hat z$ crosses the threshold: a few entries
# (printed above). The errors themselves scale with $\epsilon$, several times larger with 3 fewer bits, both
# before and after the recomputation, and the look-ahead removes the worst of them at either precision.
