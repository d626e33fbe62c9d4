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
# # Error growth and error amplification in compositions $f(g(x))$
#
# Pictures for teachers and students of numerical analysis: how rounding errors arise in a long
# computation, how they grow with its length, and how a second function applied to the result amplifies
# them.
#
# 1. A long dot product accumulated in low precision: the measured error against the deterministic bound
#    $\gamma_n$ and the probabilistic $\sqrt n$-type bound; sequential, pairwise and blocked summation;
#    stagnation under round to nearest and stochastic rounding.
# 2. Compositions: the condition number $\kappa_\phi$ of an element-wise function, then a dot product
#    followed by GELU, where the error of $g$ is amplified both by cancellation in $g$ and by $f$; the
#    amplification matrix, and a look-ahead that recomputes the few inputs that matter.
# 3. softmax of attention scores: the per-entry amplification, the entries the LAMP rule selects for
#    several thresholds $\tau$, and what recomputing them in float32 does to the probabilities.
#
# Every statement that the text makes about a measurement is checked by an `assert` against an
# independent reference (exact float64 products, `math.fsum`, float64 evaluations). Only the public API of
# lampref is used and nothing is downloaded. Set the environment variable `LAMPREF_SMALL=1` to run with
# small sizes (the pictures look the same, only noisier). The formulas are those of the user guide pages
# *Accumulation-aware dot products* and *Composition error analysis*.

# %%
import itertools
import math
import os

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

import lampref
from lampref import Accumulator, fp32_mantissa, matmul, round_to
from lampref.analysis import (
    amplification_matrix,
    condition_number,
    dot_condition_number,
    gamma,
    inner_product_error_bound,
    lamp_select,
    relative_error_bound,
    select_greedy,
    softmax_amplification,
    softmax_kappa,
    unit_roundoff,
)

SMALL = os.environ.get("LAMPREF_SMALL", "0") not in ("", "0")
ROWS = 4 if SMALL else 32  # independent dot products per length in section 1
GRID = 2_001 if SMALL else 20_001  # points of the grids of section 2
DRAWS = 20 if SMALL else 200  # random selections in sections 2 and 3
SEED = 20_260_202


def exact_dots(a, b):
    """Inner products of the rows of a (float32 values) with b: every float64 product of two float32 values is
    exact, and math.fsum returns the correctly rounded sum of the products."""
    products = np.asarray(a, np.float64) * np.asarray(b, np.float64)
    return np.array([math.fsum(row) for row in products.reshape(-1, products.shape[-1])])


print(f"lampref {lampref.__version__}, matplotlib backend {matplotlib.get_backend()}, small sizes: {SMALL}")

# %% [markdown]
# ## 1. Error growth of a long dot product
#
# An accumulator of precision $p$ computes $s = \sum_{k=1}^n x_k y_k$ as
# $s_1 = \mathrm{fl}(x_1 y_1)$, $s_k = \mathrm{fl}(s_{k-1} + x_k y_k)$, each product exact (as in a fused
# multiply-add) and each partial sum rounded to nearest. Every rounding has a relative error at most the
# unit roundoff $u = 2^{-p}$, and the first term goes through $n$ roundings, so (Higham 2002, ch. 3)
#
# $$ |\hat s - s| \le \gamma_n \sum_k |x_k y_k|, \qquad \gamma_n = \frac{n u}{1 - n u}
#    \quad (n u < 1). $$
#
# If the rounding errors behave like independent random variables of mean zero, $\gamma_n$ can be
# replaced by $\tilde\gamma_n \approx \lambda \sqrt n\, u$, valid with probability at least $1 - \delta$
# for $\lambda = \sqrt{2 \ln(2n/\delta)}/(1-u)$ (Higham and Mary 2019): `inner_product_error_bound(x, y,
# fmt, kind="probabilistic", delta=...)`.
#
# The accumulator here keeps 10 stored mantissa bits, the precision of fp16 ($p = 11$, $u = 2^{-11}$), with
# the exponent range of float32, so nothing underflows or overflows. The data are float32 numbers uniform in
# $[0, 1)$: all terms are positive, so $\sum |x_k y_k| = s$ and the bounds are bounds on the relative
# error. The reference is exact: products of float32 numbers are exact in float64 and `math.fsum` rounds
# their sum correctly.

# %%
fmt = fp32_mantissa(10)
u = unit_roundoff(fmt)
u32 = unit_roundoff("fp32")
N = 2**14
lengths = 2 ** np.arange(4, 15)  # n = 16, 32, ..., N
DELTA = 1e-6  # failure probability of the probabilistic bound

rng = np.random.default_rng(SEED)
x = rng.random((ROWS, N)).astype(np.float32)
y = rng.random(N).astype(np.float32)

# every prefix length at once: row (g, r) holds x[r, :n_g] followed by zeros
padded = np.zeros((lengths.size, ROWS, N), np.float32)
for g, n in enumerate(lengths):
    padded[g, :, :n] = x[:, :n]
padded = padded.reshape(-1, N)
exact = np.array([exact_dots(x[:, :n], y[:n]) for n in lengths])  # (lengths, ROWS)

accumulators = {
    "sequential, to nearest": Accumulator(fmt),
    "pairwise, to nearest": Accumulator(fmt, order="pairwise"),
    "blocks of 32, to nearest": Accumulator(fmt, block=32),
    "sequential, stochastic": Accumulator(fmt, mode="stochastic"),
}
computed, rel_err = {}, {}
for name, acc in accumulators.items():
    computed[name] = matmul(padded, y[:, None], acc, rng=SEED)[:, 0].astype(np.float64).reshape(exact.shape)
    rel_err[name] = np.abs(computed[name] - exact) / exact
    print(f"{name:25}: median relative error at n = {N}: {np.median(rel_err[name][-1]):.2e}")
print(f"u = {u:.2e}")

# %% [markdown]
# Appending zeros to a sum does not change it: $\mathrm{fl}(s + 0) = s$ for a representable $s$, and in the
# balanced tree of pairwise summation the zeros fill whole subtrees when the lengths are powers of two. So one
# product with zero-padded rows gives the dot products of every length at once. A direct check for one
# length:

# %%
n_check = int(lengths[5])
for name in ("sequential, to nearest", "pairwise, to nearest", "blocks of 32, to nearest"):
    direct = matmul(x[:, :n_check], y[:n_check, None], accumulators[name])[:, 0].astype(np.float64)
    got = matmul(padded.reshape(lengths.size, ROWS, N)[5], y[:, None], accumulators[name])[:, 0]
    assert np.array_equal(direct, got.astype(np.float64)), name
print(f"zero padding reproduces the direct dot products of length {n_check} bit for bit")

# %% [markdown]
# The bounds of each order, all relative to $s = \sum_k x_k y_k$:
#
# * sequential (either rounding mode): $\gamma_n$, defined only while $n u < 1$, that is $n < 2048$ here;
# * pairwise: each product goes through $\lceil \log_2 n \rceil$ additions, so $\gamma_{\lceil \log_2 n
#   \rceil}$;
# * blocks of $b = 32$ products summed exactly and rounded once to float32 (unit roundoff $u_{32}$), then
#   accumulated: $\gamma_{\lceil n/b \rceil}(1 + u_{32}) + u_{32}$;
# * stochastic rounding: its errors have mean zero and are mean independent, and the probabilistic bound
#   $\tilde\gamma_n$ then holds with probability at least $1 - \delta$ (Connolly, Higham and Mary 2021).
#
# They are checked on every dot product of every length:

# %%
det_ok = lengths * u < 1
gamma_n = gamma(lengths[det_ok], u)
gamma_pairwise = gamma(np.ceil(np.log2(lengths)).astype(int), u)
blocks = -(-lengths // 32)  # ceil(n / 32); here every blocks * u < 1
gamma_blocked = gamma(blocks, u) * (1 + u32) + u32
prob = (
    np.array(
        [inner_product_error_bound(x[:, :n], y[:n], fmt, kind="probabilistic", delta=DELTA) for n in lengths]
    )
    / exact
)  # relative to s: (lengths, ROWS)

for name, err in rel_err.items():
    assert np.all(err[det_ok] <= gamma_n[:, None]), name  # gamma_n bounds every order and mode
    ratio = np.median(gamma_n[:, None] / err[det_ok], axis=1)  # how far below it, per length
    assert np.all(ratio > 10), name
    assert ratio[-1] > 100, name
assert np.all(rel_err["pairwise, to nearest"] <= gamma_pairwise[:, None])
assert np.all(rel_err["blocks of 32, to nearest"] <= gamma_blocked[:, None])
assert np.all(rel_err["sequential, stochastic"] <= prob)
assert gamma(1024, u) == 1.0  # n u = 1/2: the deterministic bound says nothing any more
print("all bounds hold on every dot product")
print(f"gamma_n = {gamma_n[-1]:.3f} at n = {lengths[det_ok][-1]}, undefined from n = 1/u = {round(1 / u)} on")
print(f"probabilistic bound at n = {N}: {np.median(prob[-1]):.3f}")

# %%
fig, ax = plt.subplots(figsize=(9, 5), layout="tight")
styles = {
    "sequential, to nearest": ("C3", "o"),
    "pairwise, to nearest": ("C2", "s"),
    "blocks of 32, to nearest": ("C1", "^"),
    "sequential, stochastic": ("C0", "D"),
}
for name, err in rel_err.items():
    color, marker = styles[name]
    ax.fill_between(lengths, err.min(axis=1), err.max(axis=1), color=color, alpha=0.12, lw=0)
    ax.loglog(lengths, np.median(err, axis=1), marker=marker, color=color, ms=5, lw=1.3, label=name)
ax.loglog(lengths[det_ok], gamma_n, "k-", lw=1.5, label=r"$\gamma_n$ (defined for $nu < 1$)")
ax.loglog(lengths, np.median(prob, axis=1), "k--", lw=1.2, label=rf"$\tilde\gamma_n$, $\delta = {DELTA:g}$")
pairwise_label = r"$\gamma_{\lceil\log_2 n\rceil}$ (pairwise)"
ax.loglog(lengths, gamma_pairwise, color="C2", ls=":", lw=1.2, label=pairwise_label)
ax.axhline(u, color="0.5", lw=0.8)
ax.text(N, u * 1.15, "$u$", color="0.4", ha="right")
ax.axvline(1 / u, color="0.7", lw=0.8, ls="-.")
ax.set_xscale("log", base=2)
ax.set_xlabel("length n")
ax.set_ylabel(r"relative error $|\hat s - s| / s$")
ax.set_title(
    f"Dot products of uniform [0, 1) data, 11-bit accumulator (median and range of {ROWS})", fontsize=11
)
ax.set_ylim(1e-7, 3)
ax.legend(fontsize=8, loc="lower right", ncol=2)
plt.show()

# %% [markdown]
# Reading the picture:
#
# * $\gamma_n \approx nu$ is a worst case: the median errors are more than 10 times below it, more than 100
#   times at $n = 1024$, where it reaches 1 and says nothing any more ($n = 1/(2u)$).
# * Before stagnation (below), even round to nearest stays within the probabilistic bound
#   $\tilde\gamma_n \propto \sqrt n\, u$: the roundings look random.
# * Sequential round to nearest **stagnates**: once the partial sum reaches $2^{10}$, half its ulp ($1/2$)
#   exceeds most of the terms, which are then rounded away; from $2^{11}$ on, half an ulp is 1 and every
#   term (all are below 1) is lost, so the computed sum never exceeds $2^{11}$ while the exact one keeps
#   growing like $n/4$. The error is then systematic and grows at least linearly in $n$.
# * Stochastic rounding rounds each partial sum up or down at random, with the right probabilities: no term
#   is lost on average, the sum goes past $2^{11}$, and the error stays within
#   $\tilde\gamma_n \propto \sqrt n\, u$.
# * Pairwise summation adds numbers of similar size: at most $\log_2 n$ roundings per term.
# * Blocked accumulation rounds in the low precision only once per block: $n/32$ roundings.

# %%
last = -1
seq = np.median(rel_err["sequential, to nearest"], axis=1)
sto = np.median(rel_err["sequential, stochastic"], axis=1)
i8 = int(np.flatnonzero(lengths == N // 8)[0])
print(
    f"n = {N}: sequential to nearest {seq[last]:.3f}, stochastic {sto[last]:.4f}, "
    f"pairwise {np.median(rel_err['pairwise, to nearest'][last]):.1e}"
)
print(
    f"growth of the sequential error from n = {N // 8} to n = {N}: x{seq[last] / seq[i8]:.1f} "
    f"(sqrt(8) = {math.sqrt(8):.2f}, 8 for linear growth)"
)
before = lengths <= 2048
assert np.all(rel_err["sequential, to nearest"][before] <= prob[before])  # random-looking before stagnation
assert computed["sequential, to nearest"].max() <= 2.0**11  # stagnation: never beyond 2**11
print(
    f"largest computed sum (to nearest): {computed['sequential, to nearest'].max():g}, "
    f"exact sums at n = {N}: {exact[-1].min():.0f} to {exact[-1].max():.0f}"
)
assert computed["sequential, stochastic"][last].min() > 2.0**11  # stochastic rounding passes 2**11
assert seq[last] > 10 * sto[last]  # stagnation: round to nearest is an order of magnitude worse
assert seq[last] / seq[i8] > 8  # at least linear growth once the sum stagnates
assert np.all(rel_err["pairwise, to nearest"][last] < rel_err["sequential, to nearest"][last])
assert np.all(rel_err["blocks of 32, to nearest"][last] < rel_err["sequential, to nearest"][last])

# %% [markdown]
# ### The block size
#
# Hardware dot-product units sum a block of $b$ products in a wider format and round once. At fixed
# $n = 2^{14}$, the number of roundings in the 11-bit accumulator is $n/b$, and the bound
# $\gamma_{n/b}(1 + u_{32}) + u_{32}$ exists once $n/b < 1/u$:

# %%
block_sizes = 2 ** np.arange(0, 12, 2)  # 1, 4, 16, ..., 1024
s_full = exact[-1]  # n = N
block_err = np.array(
    [
        np.abs(matmul(x, y[:, None], Accumulator(fmt, block=int(b)))[:, 0].astype(np.float64) - s_full)
        / s_full
        for b in block_sizes
    ]
)  # (block sizes, ROWS)
n_blocks = N // block_sizes
has_bound = n_blocks * u < 1
block_bound = gamma(n_blocks[has_bound], u) * (1 + u32) + u32
assert np.all(block_err[has_bound] <= block_bound[:, None])
assert np.all(np.diff(np.median(block_err, axis=1)) < 0)  # every larger block is more accurate here
for b, e in zip(block_sizes, np.median(block_err, axis=1), strict=True):
    print(f"block {int(b):5d}: {N // int(b):5d} roundings in 11 bits, median relative error {e:.2e}")

fig, ax = plt.subplots(figsize=(7, 4), layout="tight")
ax.fill_between(block_sizes, block_err.min(axis=1), block_err.max(axis=1), color="C1", alpha=0.15, lw=0)
ax.loglog(block_sizes, np.median(block_err, axis=1), "^-", color="C1", label="measured (median and range)")
ax.loglog(block_sizes[has_bound], block_bound, "k-", label=r"$\gamma_{n/b}(1 + u_{32}) + u_{32}$")
ax.set_xscale("log", base=2)
ax.set_xlabel("block size b")
ax.set_ylabel("relative error")
ax.set_title(f"n = {N}: fewer low-precision roundings, smaller error", fontsize=11)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 2. Composition: how $f$ amplifies the error of $g$
#
# ### 2.1 One variable
#
# If $\hat z = z(1 + \rho)$, then to first order
#
# $$ \frac{\phi(\hat z) - \phi(z)}{\phi(z)} \approx \kappa_\phi(z)\,\rho, \qquad
#    \kappa_\phi(z) = \left| \frac{z \phi'(z)}{\phi(z)} \right|, $$
#
# the relative condition number of $\phi$ (`condition_number(name, z)`). Round a fine grid of $z$ to
# bfloat16 ($|\rho| \le u = 2^{-8}$) and evaluate $\phi$ in float64 on both: the measured relative error
# follows $\kappa_\phi(z)\, u$. GELU (tanh form, as in GPT-2) and SiLU amplify for negative $z$; the
# sigmoid behaves like $\exp$ for negative $z$ and damps for large positive $z$; tanh damps for large
# $|z|$; $\exp$ amplifies by exactly $|z|$; $\log$ blows up near $z = 1$, where $\log z$ vanishes.
#
# First, the condition numbers against an independent float64 central difference of $\log|\phi|$
# ($\kappa_\phi = |z\, (\log|\phi|)'|$):

# %%
GELU_C, GELU_A = math.sqrt(2 / math.pi), 0.044715


def sigmoid(t):
    """1 / (1 + exp(-t)), without overflow."""
    return np.exp(-np.logaddexp(0.0, -t))


def gelu_tanh(t):
    """GPT-2's GELU, z (1 + tanh v) / 2 = z sigmoid(2 v), without the cancellation of 1 + tanh v."""
    return t * sigmoid(2 * GELU_C * (t + GELU_A * t**3))


def gelu_tanh_prime(t):
    s2v = sigmoid(2 * GELU_C * (t + GELU_A * t**3))
    return s2v + 2 * t * s2v * (1 - s2v) * GELU_C * (1 + 3 * GELU_A * t * t)


FUNCTIONS = {
    "gelu_tanh": (gelu_tanh, (-6.0, 6.0)),
    "silu": (lambda t: t * sigmoid(t), (-6.0, 6.0)),
    "tanh": (np.tanh, (-6.0, 6.0)),
    "sigmoid": (sigmoid, (-6.0, 6.0)),
    "exp": (np.exp, (-6.0, 6.0)),
    "log": (np.log, (0.05, 4.0)),
}

for name, (phi, (lo, hi)) in FUNCTIONS.items():
    z = np.linspace(lo, hi, 241)
    z = z[(np.abs(z) > 0.05) & (np.abs(z - 1) > 0.05)]  # away from the zeros of phi
    h = 1e-6 * np.maximum(1.0, np.abs(z))
    fd = np.abs(z * (np.log(np.abs(phi(z + h))) - np.log(np.abs(phi(z - h)))) / (2 * h))
    assert np.allclose(condition_number(name, z), fd, rtol=1e-6, atol=1e-7), name
print("condition_number agrees with float64 central differences for", ", ".join(FUNCTIONS))

# the statements above, in numbers
assert condition_number("gelu_tanh", -4.0) > 10  # amplification for negative z
assert condition_number("silu", -4.0) > 2
assert condition_number("sigmoid", -6.0) > 5 > 0.02 > condition_number("sigmoid", 6.0)
assert np.all(condition_number("tanh", [-3.0, 3.0]) < 0.05)
assert np.array_equal(condition_number("exp", [-3.0, 2.0, 5.0]), [3.0, 2.0, 5.0])
assert condition_number("log", 1.01) > 50
assert condition_number("gelu_tanh", -0.752) < 1e-3  # the minima
assert condition_number("silu", -1.278) < 1e-3

# %% [markdown]
# The measured errors. The first-order estimate $\kappa_\phi u$ can be exceeded, but only by a
# second-order amount: the check allows $\kappa u (1 + \kappa u) + u^2$. The second-order term is all that
# is left where $\phi' = 0$: at the minima of GELU ($z \approx -0.752$) and SiLU ($z \approx -1.278$)
# $\kappa_\phi$ vanishes.

# %%
bf16_u = lampref.bf16.unit_roundoff
fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), layout="tight")
for ax, (name, (phi, (lo, hi))) in zip(axes.flat, FUNCTIONS.items(), strict=True):
    z = np.linspace(lo, hi, GRID)
    z = z[(z != 0) & (z != 1)]
    z_low = round_to(z, lampref.bf16).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        measured = np.abs(phi(z_low) - phi(z)) / np.abs(phi(z))
    kappa = condition_number(name, z)
    first_order = kappa * bf16_u
    assert np.all(measured <= first_order * (1 + first_order) + bf16_u**2), name
    shown = measured > 0
    ax.semilogy(z[shown], measured[shown], ".", ms=1.5, color="C0", alpha=0.5, label="measured")
    ax.semilogy(z, first_order, color="C3", lw=1.3, label=r"$\kappa_\phi(z)\,u$")
    ax.set_title(name, fontsize=10)
    ax.set_xlabel("z")
    ax.set_ylim(1e-7, 3)
axes[0, 0].set_ylabel(r"$|\phi(\mathrm{fl}(z)) - \phi(z)| / |\phi(z)|$")
axes[1, 0].set_ylabel(r"$|\phi(\mathrm{fl}(z)) - \phi(z)| / |\phi(z)|$")
axes[0, 0].legend(fontsize=8, loc="lower left")
fig.suptitle("Relative error of $\\phi(z)$ after rounding $z$ to bfloat16", fontsize=11)
plt.show()

# %% [markdown]
# ### 2.2 A dot product, then GELU
#
# A pre-activation $z_i = w_i^T x$ computed in low precision has, by section 1, an absolute error
# $|\delta_i| \le \epsilon_i = \gamma_d\, |w_i|^T |x|$, hence a relative error up to
# $\gamma_d\, \kappa_{\mathrm{dot},i}$ with $\kappa_{\mathrm{dot},i} = |w_i|^T |x| / |w_i^T x|$
# (`dot_condition_number`): cancellation in $g$ amplifies too. GELU then multiplies by $\kappa_\phi(z_i)$.
# For a vector function the general tool is the **amplification matrix**
#
# $$ K_{ij} = \frac{|\partial_j f_i(z)|\, \epsilon_j}{|f_i(z)|}, \qquad
#    \frac{|f_i(\hat z) - f_i(z)|}{|f_i(z)|} \lesssim \sum_j K_{ij} $$
#
# (`amplification_matrix`, `relative_error_bound`). For an element-wise $f$ the Jacobian is diagonal and
# $K_{ii} = \kappa_\phi(z_i)\, \epsilon_i / |z_i|$. Like a look-ahead, the code evaluates $K$ at the
# computed $\hat z$, the only values available without the exact result. Here $d = 256$, the weights are
# scaled by $1/\sqrt d$, and the pre-activations are accumulated with 10 stored mantissa bits.

# %%
d, n_out = 256, 512
rng = np.random.default_rng(SEED + 2)
W = (rng.standard_normal((n_out, d)) / math.sqrt(d)).astype(np.float32)
xin = rng.standard_normal(d).astype(np.float32)
low = Accumulator(fp32_mantissa(10))

z = exact_dots(W, xin)  # exact pre-activations (correctly rounded to float64)
z_low = matmul(W, xin[:, None], low)[:, 0].astype(np.float64)
delta = z_low - z
eps_det = inner_product_error_bound(W, xin, low.fmt)
eps_prob = inner_product_error_bound(W, xin, low.fmt, kind="probabilistic", delta=DELTA)
assert np.all(np.abs(delta) <= eps_det)
assert np.all(np.abs(delta) <= eps_prob)

K = amplification_matrix(np.diag(gelu_tanh_prime(z_low)), gelu_tanh(z_low), eps_det)
bound = relative_error_bound(K).componentwise
kappa_dot = dot_condition_number(W, xin)
assert np.allclose(np.diag(K), condition_number("gelu_tanh", z_low) * eps_det / np.abs(z_low), rtol=1e-9)
assert np.all(kappa_dot >= 1)

y_exact, y_low = gelu_tanh(z), gelu_tanh(z_low)
measured = np.abs(y_low - y_exact) / np.abs(y_exact)
assert np.all(measured <= bound)  # every output satisfies its first-order bound
assert np.median(bound / measured) > 100  # ... with a wide margin
worst = np.argsort(-measured)[: n_out // 20]  # the 5% largest errors
assert np.all((np.abs(z[worst]) < 0.25) | (z[worst] < -1.5))  # near zero, or very negative
assert np.all(np.isin(np.argsort(-measured)[:10], np.argsort(-bound)[: n_out // 10]))
print(
    f"largest score error {np.abs(delta).max():.2e}; a priori eps: deterministic {np.median(eps_det):.2f}, "
    f"probabilistic {np.median(eps_prob):.2f} (medians)"
)
print(f"kappa_dot: median {np.median(kappa_dot):.1f}, largest {kappa_dot.max():.0f}")
print(
    f"relative error of GELU(z): median {np.median(measured):.1e}, largest {measured.max():.2f}; "
    f"median bound / measured = {np.median(bound / measured):.0f}"
)

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), layout="tight")
ax = axes[0]
bound_label = r"first-order bound $\sum_j K_{ij}$, $\epsilon_j = \gamma_d|w_j|^T|x|$"
ax.semilogy(z, bound, ".", ms=3, color="0.6", label=bound_label)
ax.semilogy(z, measured, ".", ms=3, color="C0", label="measured")
ax.set_xlabel("pre-activation z")
ax.set_ylabel("relative error of GELU(z)")
ax.legend(fontsize=8)
ax.set_title("Large errors where z is near 0 (cancellation) or very negative", fontsize=10)
ax = axes[1]
sc = ax.scatter(bound, measured, c=np.log10(kappa_dot), s=6, cmap="viridis")
lim = [min(measured.min(), bound.min()) / 2, bound.max() * 2]
ax.loglog(lim, lim, "k-", lw=0.8, label="measured = bound")
ax.set_xlabel("first-order bound")
ax.set_ylabel("measured")
ax.legend(fontsize=8, loc="upper left")
fig.colorbar(sc, ax=ax, label=r"$\log_{10} \kappa_{\mathrm{dot}}$")
ax.set_title("Every output below its bound", fontsize=10)
plt.show()

# %% [markdown]
# The deterministic bound is pessimistic by two to three orders of magnitude (it allows every rounding to
# be of the worst size and sign, and $\gamma_d |w_i|^T|x|$ ignores all cancellation), yet it points at the
# right outputs: the 10 largest errors all belong to the 10% largest bounds. The largest errors occur where
# $z$ is close to zero, so that the dot product cancels ($\kappa_{\mathrm{dot}}$ is large), or very
# negative, where GELU's $\kappa_\phi$ is large.
#
# ### 2.3 Look-ahead: recompute the few inputs that matter
#
# Suppose every pre-activation that is not recomputed has an absolute error at most $\epsilon$. With
# $\epsilon = 1$ in `amplification_matrix`, $K_{ii} = |\phi'(\hat z_i) / \phi(\hat z_i)|$ is the relative
# error of output $i$ per unit of that error. Recomputing the set $S$ exactly leaves the bound
# $\max_{i \notin S} K_{ii}\, \epsilon$, so the smallest set that meets a target $\tau\epsilon$ is
# $\{i : K_{ii} > \tau\}$; `select_greedy` (a heuristic for general $K$) finds it. Compare with recomputing
# the same number of pre-activations chosen at random:

# %%
K_unit = amplification_matrix(np.diag(gelu_tanh_prime(z_low)), gelu_tanh(z_low), 1.0)
per_unit = np.diag(K_unit)
assert np.array_equal(select_greedy(K_unit[:64, :64], 4.0), per_unit[:64] > 4.0)


def gelu_error(selected):
    """Largest relative error of GELU(z) with the selected pre-activations recomputed exactly."""
    return float(np.max(np.abs(gelu_tanh(np.where(selected, z, z_low)) - y_exact) / np.abs(y_exact)))


rng = np.random.default_rng(SEED + 3)
taus_gelu = [16.0, 8.0, 4.0, 2.0]
err_none = gelu_error(np.zeros(n_out, bool))
print("  tau  recomputed   eps      tau*eps   max relative error (look-ahead, random)")
for tau in taus_gelu:
    sel = per_unit > tau
    eps = np.abs(delta[~sel]).max()
    err = gelu_error(sel)
    rand = np.median(
        [
            gelu_error(np.isin(np.arange(n_out), rng.choice(n_out, sel.sum(), replace=False)))
            for _ in range(DRAWS)
        ]
    )
    assert relative_error_bound(K_unit, sel).bound <= tau
    assert err <= tau * eps * (1 + tau * eps)  # first order, with a second-order allowance
    assert err < rand
    if tau == taus_gelu[0]:
        assert sel.mean() < 0.05
        assert err < err_none / 10
        assert np.all(np.abs(z_low[sel]) < 0.1)
    print(f"{tau:5.0f}  {sel.sum():4d} ({sel.mean():5.1%})  {eps:.2e}  {tau * eps:.2e} {err:.2e}, {rand:.2e}")
print(f"nothing recomputed: {err_none:.2f}")

# %% [markdown]
# A few percent of the pre-activations carry almost all of the error: at $\tau = 16$ fewer than 5% are
# recomputed, all of them within 0.1 of zero, and the largest error falls more than tenfold. Random
# recomputation of as many pre-activations leaves the worst ones in place.
#
# ## 3. softmax of attention scores and the LAMP selection
#
# Attention computes scores $z_j = q^T k_j / \sqrt d$ and probabilities $s = \operatorname{softmax}(z)$.
# Since $\partial s_i / \partial z_j = s_i(1[i = j] - s_j)$, an error $\delta_j$ in the scores gives, to
# first order, $\hat s_i / s_i - 1 \approx (1 - s_i)\delta_i - \sum_{j \ne i} s_j \delta_j$. If the scores
# in $S$ are recomputed and all others have errors at most $\epsilon$, the relative error of $s_i$ is at
# most $a_i(S)\,\epsilon$ with
#
# $$ a_i(S) = \begin{cases} 2 - P_S - 2 s_i, & i \notin S,\\ 1 - P_S, & i \in S, \end{cases} \qquad
#    P_S = \sum_{j \in S} s_j, \qquad \kappa(S) = \max_i a_i(S) $$
#
# (`softmax_amplification`, `softmax_kappa`). With nothing recomputed, $\kappa = 2(1 - \min_i s_i)$ is
# almost 2. LAMP recomputes a smallest set with $\kappa(S) \le \tau$ (`lamp_select`): the largest
# probabilities, because recomputing $s_j$ removes $s_j$ from everyone's amplification.
#
# One row of 256 scores with $d = 64$; six keys are correlated with the query, so the row is peaked, as in a
# trained model. The scores are accumulated with 7 stored mantissa bits (bfloat16's precision), with
# $1/\sqrt d = 1/8$ applied exactly.

# %%
d_head, n_keys = 64, 256
rng = np.random.default_rng(SEED + 5)
q = rng.standard_normal(d_head).astype(np.float32)
keys = rng.standard_normal((n_keys, d_head)).astype(np.float32)
keys[rng.choice(n_keys, 6, replace=False)] += np.float32(1.2) * q

score_low = Accumulator(fp32_mantissa(7))
score_high = Accumulator(lampref.fp32)
scale = 1 / math.sqrt(d_head)  # 1/8: exact
z_ref = exact_dots(keys, q) * scale
z_lo = matmul(keys, q[:, None], score_low)[:, 0].astype(np.float64) * scale
z_32 = matmul(keys, q[:, None], score_high)[:, 0].astype(np.float64) * scale


def softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


p_ref, p_lo = softmax(z_ref), softmax(z_lo)
order = np.argsort(-p_ref, kind="stable")  # exact probabilities, decreasing
order_lo = np.argsort(-p_lo, kind="stable")  # the computed ones, as the selection sees them
print("largest probabilities:", np.round(p_ref[order[:8]], 4))
assert p_ref[order[:6]].sum() > 0.99  # a peaked row: six entries hold almost all the mass
print(f"largest score error: 7 bits {np.abs(z_lo - z_ref).max():.3f}, ", end="")
print(f"float32 {np.abs(z_32 - z_ref).max():.1e}")

# the structured formula is the general amplification matrix of softmax's Jacobian, row sums per unit eps
jac = np.diag(p_ref) - np.outer(p_ref, p_ref)
for sel in (np.zeros(n_keys, bool), np.isin(np.arange(n_keys), order[:3])):
    general = relative_error_bound(amplification_matrix(jac, p_ref, 1.0), sel).componentwise
    assert np.allclose(general, softmax_amplification(p_ref, sel), rtol=1e-12, atol=1e-15)
print(f"kappa with nothing recomputed: {softmax_kappa(p_lo):.6f}")
assert softmax_kappa(p_lo) > 1.99

# %% [markdown]
# The selection for several thresholds. Each row of the strip is one $\tau$; the columns are the entries
# in order of decreasing probability (only the first 16 are shown, none further is ever selected here):

# %%
taus = [2.0, 1.8, 1.5, 1.3, 1.2, 1.1, 1.05, 1.02]
selections = {tau: lamp_select(p_lo, tau) for tau in taus}
counts = [int(selections[tau].sum()) for tau in taus]
assert counts[0] == 0  # tau = 2 recomputes nothing
assert all(a <= b for a, b in itertools.pairwise(counts))  # a smaller tau never selects fewer
for tau, sel in selections.items():
    assert softmax_kappa(p_lo, sel) <= tau
    assert lamp_select(p_lo, tau, rule="optimal").sum() <= sel.sum()
    assert not sel[order_lo[16:]].any()
    assert sel[order_lo[: sel.sum()]].all()  # the selection is the largest probabilities

shown = 16
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1.2, 1]}, layout="tight")
ax = axes[0]
ax.bar(np.arange(shown), p_lo[order_lo[:shown]], color="C0", label=r"$\hat s_j$ (7-bit scores)")
ax.set_yscale("log")
ax.set_xlabel("entry, by decreasing probability")
ax.set_ylabel("probability")
ax2 = ax.twinx()
ax2.plot(
    np.arange(shown),
    softmax_amplification(p_lo)[order_lo[:shown]],
    "o-",
    color="C3",
    ms=4,
    label=r"$a_j(\emptyset)$",
)
ax2.plot(
    np.arange(shown),
    softmax_amplification(p_lo, selections[1.2])[order_lo[:shown]],
    "s--",
    color="C1",
    ms=4,
    label=r"$a_j(S)$, $\tau = 1.2$",
)
ax2.set_ylim(0, 2.1)
ax2.set_ylabel("amplification")
handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
ax2.legend(handles=handles, fontsize=8, loc="center left", bbox_to_anchor=(0.4, 0.3))
ax.set_title("Probabilities and per-entry amplification", fontsize=10)
ax = axes[1]
strip = np.array([selections[tau][order_lo[:shown]] for tau in taus])
ax.imshow(strip, cmap="Blues", aspect="auto", vmin=0, vmax=1.3, interpolation="nearest")
ax.set_yticks(range(len(taus)), [f"τ = {t:g} ({c})" for t, c in zip(taus, counts, strict=True)], fontsize=8)
ax.set_xticks(range(shown))
ax.set_xlabel("entry, by decreasing probability")
ax.set_title("Selected entries (number in brackets)", fontsize=10)
plt.show()

# %% [markdown]
# Now recompute the selected scores in float32 and measure. A bound that needs no "first order": the
# log-sum-exp is convex with Hessian $\operatorname{diag}(s) - s s^T$, whose quadratic form is a variance
# and at most $\max_j \delta_j^2$, so $\log(\hat s_i / s_i)$ differs from its linear part by at most
# $\epsilon^2/2$. With $\epsilon$ the largest error of an unselected score and $\epsilon_{32}$ that of a
# recomputed one ($\le \epsilon$), and since the coefficients of the recomputed errors add up to at most 2,
#
# $$ \max_i \frac{|\hat s_i - s_i|}{s_i} \le \exp\!\big(\kappa(S)\,\epsilon + 2\epsilon_{32} +
#    \epsilon^2/2\big) - 1 = \kappa(S)\,\epsilon + O(\epsilon^2), $$
#
# with $\kappa(S)$ at the exact probabilities. Two measures of the error: the largest relative error of a
# probability, which the bound controls, and the total-variation distance
# $\tfrac12 \sum_i |\hat s_i - s_i|$, which weighs each entry by its probability, as the attention output
# does. The baseline recomputes the same number of scores chosen at random.


# %%
def probs_after(selected):
    return softmax(np.where(selected, z_32, z_lo))


def errors(p):
    return float(np.max(np.abs(p - p_ref) / p_ref)), 0.5 * float(np.abs(p - p_ref).sum())


rng = np.random.default_rng(SEED + 7)
rows = []
for tau in taus:
    sel = selections[tau]
    eps = np.abs(z_lo - z_ref)[~sel].max()
    eps32 = np.abs(z_32 - z_ref)[sel].max() if sel.any() else 0.0
    kappa_true = softmax_kappa(p_ref, sel)
    bound_tau = math.expm1(kappa_true * eps + 2 * eps32 + eps**2 / 2)
    max_rel, tv = errors(probs_after(sel))
    rand = [
        errors(probs_after(np.isin(np.arange(n_keys), rng.choice(n_keys, sel.sum(), replace=False))))
        for _ in range(DRAWS)
    ]
    rand_max_rel, rand_tv = np.median(rand, axis=0)
    assert eps32 <= eps
    assert max_rel <= bound_tau
    rows.append((tau, int(sel.sum()), eps, bound_tau, max_rel, tv, rand_max_rel, rand_tv))

print("  tau  sel   eps    bound   max rel  TV       random: max rel  TV")
for tau, c, eps, b, mr, tv, rmr, rtv in rows:
    print(f"{tau:5.2f}  {c:3d}  {eps:.3f}  {b:.3f}   {mr:.4f}   {tv:.1e}          {rmr:.4f}   {rtv:.1e}")

tv_none, tv_last = rows[0][5], rows[-1][5]
max_rel_none, max_rel_last = rows[0][4], rows[-1][4]
assert tv_last < tv_none / 10  # recomputing a handful of scores: total variation down tenfold
assert max_rel_last < max_rel_none / 2  # and the worst relative error halved
assert rows[-1][2] < rows[0][2] / 2  # eps shrinks as the large scores are recomputed
score_err = np.abs(z_lo - z_ref)
assert np.all(np.isin(np.argsort(-score_err)[:5], order[:6]))  # the largest errors are in the largest scores
assert all(abs(r[7] - tv_none) < 0.1 * tv_none for r in rows)  # random recomputation: no change
assert rows[1][5] > tv_none  # one recomputed score: the measured error can even grow
assert all(r[5] < r[7] for r in rows if r[1] >= 2)  # from two on, LAMP beats random recomputation

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="tight")
c = np.array([r[1] for r in rows])
ax = axes[0]
ax.plot(c, [r[4] for r in rows], "o-", color="C0", label="LAMP")
ax.plot(c, [r[6] for r in rows], "s--", color="0.5", label=f"random, median of {DRAWS}")
exp_bound_label = r"bound $e^{\kappa(S)\epsilon + 2\epsilon_{32} + \epsilon^2/2} - 1$"
ax.plot(c, [r[3] for r in rows], "k:", label=exp_bound_label)
ax.set_xlabel(f"scores recomputed in float32 (of {n_keys})")
ax.set_ylabel(r"$\max_i |\hat s_i - s_i| / s_i$")
ax.set_ylim(0, None)
ax.legend(fontsize=8)
ax.set_title("Largest relative error of a probability", fontsize=10)
ax = axes[1]
ax.semilogy(c, [r[5] for r in rows], "o-", color="C0", label="LAMP")
ax.semilogy(c, [r[7] for r in rows], "s--", color="0.5", label=f"random, median of {DRAWS}")
for count in sorted(set(c)):
    same = [r for r in rows if r[1] == count]  # thresholds that select the same entries
    label = "τ = " + ", ".join(f"{r[0]:g}" for r in same)
    ax.annotate(label, (count, same[0][5]), textcoords="offset points", xytext=(4, 4), fontsize=7)
ax.set_xlabel(f"scores recomputed in float32 (of {n_keys})")
ax.set_ylabel(r"$\frac{1}{2}\sum_i |\hat s_i - s_i|$")
ax.legend(fontsize=8)
ax.set_title("Total-variation distance to the exact probabilities", fontsize=10)
plt.show()

# %% [markdown]
# The measured error stays below the bound at every $\tau$. For a fixed $\epsilon$ the bound on the largest
# relative error can only fall from about $2\epsilon$ to about $\epsilon$, since the unselected scores keep
# their errors; here it falls further because the largest scores also have the largest absolute errors (the
# five largest errors are in the six largest scores), so $\epsilon$ itself shrinks as they are recomputed.
# The probability-weighted error falls by more than an order of magnitude once the six large scores are
# recomputed, while recomputing as many scores at random changes almost nothing: the scores that matter are
# the large ones, and the analysis finds them from the cheap scores alone.
#
# The analysis bounds the error; it does not promise that each recomputation lowers the measured error.
# With a single recomputed score the total-variation distance even grows here: errors of the scores that
# happened to cancel no longer do. From two recomputed scores on, LAMP beats random recomputation.
#
# **References.** N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002,
# ch. 3. N. J. Higham and T. Mary, "A new approach to probabilistic rounding error analysis", SIAM J. Sci.
# Comput. 41(5), 2019. M. P. Connolly, N. J. Higham and T. Mary, "Stochastic rounding and its probabilistic
# backward error analysis", SIAM J. Sci. Comput. 43(1), 2021. P. Blanchard, D. J. Higham and N. J. Higham,
# "Accurately computing the log-sum-exp and softmax functions", IMA J. Numer. Anal. 41(4), 2021.
# Look-ahead mixed-precision inference (LAMP), arXiv:2601.21623.
