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
# # Summation: how rounding errors grow in a long sum
#
# A sum of $n$ terms is $n - 1$ roundings in a row. How their errors add up depends on the order of the
# additions, on the precision of the accumulator and on the rounding mode, and in low precision a plain loop
# can stop growing altogether. This notebook measures it, against the exact sum and against the classical
# bounds.
#
# **What you will learn**
#
# - why the sum of ones stops at 2048 in fp16 and at 256 in bfloat16 (stagnation);
# - how sequential, pairwise, blocked and Kahan-compensated summation compare, and what each costs;
# - how the measured error grows with $n$ against the worst-case bound $\gamma_n = nu/(1 - nu)$ and the
#   probabilistic bound of order $\sqrt n\, u$;
# - how stochastic rounding avoids stagnation, and why its probabilities must be the right ones.
#
# Sums are computed with `lampref.dot` and `lampref.matmul` and an `Accumulator`, which rounds the exact
# partial sum to the accumulator's format after every addition, or with a loop of `lampref.round_to`
# written here. The reference is exact: `math.fsum` returns the correctly rounded sum of float64 numbers,
# and a relative error of $2^{-53}$ is invisible next to those measured. Set the environment variable
# `LAMPREF_SMALL=1` to run with small sizes (the pictures look the same, only noisier).

# %%
import math
import os

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

import lampref
from lampref import STOCHASTIC_MODES, Accumulator, bf16, dot, fp16, fp32, fp32_mantissa, round_to
from lampref.analysis import gamma, inner_product_error_bound, unit_roundoff
from lampref.course import check, fl

SMALL = os.environ.get("LAMPREF_SMALL", "0") not in ("", "0")
N = 2**13 if SMALL else 2**14  # longest sum of sections 2 to 4
ROWS = 8 if SMALL else 32  # independent sums of each length
RUNS = 8 if SMALL else 32  # independent runs of the stochastic sum of ones
SEED = 20_260_303


print(f"lampref {lampref.__version__}, matplotlib backend {matplotlib.get_backend()}, small sizes: {SMALL}")

# %% [markdown]
# ## 1. The sum of ones stagnates
#
# Add 1 to an accumulator, again and again, rounding to nearest after each addition:
# $s_k = \mathrm{fl}(s_{k-1} + 1)$. In exact arithmetic $s_n = n$. `dot(ones, ones, Accumulator(fmt))`
# computes exactly this:

# %%
n_ones = 4096
ones = np.ones(n_ones, np.float32)
for fmt in (fp16, bf16, fp32):
    total = float(dot(ones, ones, Accumulator(fmt)))
    print(f"{fmt.name}: the sum of {n_ones} ones is {total:g} (p = {fmt.p}, 2^p = {2**fmt.p})")

# %% [markdown]
# A format of precision $p$ holds every integer up to $2^p$. At $s = 2^p$ its spacing becomes 2, so
# $2^p + 1$ lies exactly halfway between $2^p$ and $2^p + 2$; round to nearest even picks $2^p$, whose
# significand is even. From then on every addition of 1 is rounded away: the sum **stagnates** at 2048 in
# fp16 ($p = 11$) and at 256 in bfloat16 ($p = 8$). The same loop written with `round_to`, keeping every
# partial sum:

# %%
partial = {}
for fmt in (fp16, bf16):
    s, trace = 0.0, np.empty(n_ones)
    for k in range(n_ones):
        s = float(round_to(s + 1.0, fmt))
        trace[k] = s
    partial[fmt.name] = trace
    stop = int(np.argmax(trace == trace[-1])) + 1  # the first k at which the sum reaches its final value
    print(f"{fmt.name}: s_k = k up to k = {stop}, then s_k = {trace[-1]:g} for every k up to {n_ones}")

same = all(partial[f.name][-1] == float(dot(ones, ones, Accumulator(f))) for f in (fp16, bf16))
check(same, "the loop gives the same sums as the dot products")

stagnation = {m: float(dot(ones, ones, Accumulator(fp32_mantissa(m)))) for m in range(1, 11)}
print("fp32_mantissa(m), sum of 4096 ones:", ", ".join(f"m={m}: {v:g}" for m, v in stagnation.items()))
check(all(v == 2.0 ** (m + 1) for m, v in stagnation.items()), "with p = m + 1 bits, the sum stops at 2^p")

fig, ax = plt.subplots(figsize=(8, 4), layout="tight")
k = np.arange(1, n_ones + 1)
ax.plot(k, k, color="0.6", lw=1, label="exact: n")
for name, trace in partial.items():
    ax.plot(k, trace, lw=1.5, label=f"{name}, round to nearest")
ax.set_xscale("log", base=2)
ax.set_yscale("log", base=2)
ax.set(xlabel="number of ones added, n", ylabel="computed sum", title="The sum of ones stops at 2^p")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Stagnation is the extreme case of a general fact: a term smaller than half an ulp of the partial sum is
# lost entirely. In a long sum of terms of similar size the partial sum grows and the terms do not, so
# sooner or later each of them is a small fraction of an ulp, and its rounding error is a large fraction of
# the term itself.
#
# ## 2. Four ways to add the same numbers
#
# Take $n$ terms uniform in $[0, 1)$, stored in fp16, and accumulate them in fp16 in four ways:
#
# - **sequential**: $s_k = \mathrm{fl}(s_{k-1} + x_k)$, `Accumulator(fp16)`;
# - **pairwise**: a balanced tree, the first half and the second half summed recursively and then added,
#   `Accumulator(fp16, order="pairwise")`; each term passes through about $\log_2 n$ roundings instead of up
#   to $n$;
# - **blocked**: runs of $b = 32$ terms summed exactly and rounded once to float32, then added to the fp16
#   accumulator, `Accumulator(fp16, block=32)`, the model of a hardware dot-product unit: $n/b$ roundings
#   in fp16;
# - **Kahan's compensated summation**, written below with `round_to`: a second variable $c$ holds the
#   rounding error of the last addition, computed exactly by $(t - s) - y$, and subtracts it from the next
#   term.
#
# All terms are positive, so $\sum |x_k| = s$ and every bound below is a bound on the relative error. Adding
# two fp16 numbers in float64 is exact (their exponents span fewer than 53 bits), so each `round_to` below
# rounds an exact sum.


# %%
def kahan_partial_sums(x, fmt):
    """Kahan's compensated summation along the last axis, every operation rounded to fmt: all partial sums."""
    x = np.asarray(x, np.float64)
    s = np.zeros(x.shape[:-1])  # [rows]
    c = np.zeros(x.shape[:-1])  # [rows] the running compensation
    out = np.empty_like(x)  # [rows, n]
    for k in range(x.shape[-1]):
        y = fl(x[..., k] - c, fmt)  # the next term, corrected
        t = fl(s + y, fmt)
        c = fl(fl(t - s, fmt) - y, fmt)  # (t - s) - y: minus the rounding error of s + y
        s = t
        out[..., k] = s
    return out


u = unit_roundoff(fp16)
rng = np.random.default_rng(SEED)
x = round_to(rng.random((ROWS, N)), fp16)  # [ROWS, N] float32 holding fp16 values
lengths = 2 ** np.arange(4, int(math.log2(N)) + 1)  # n = 16, 32, ..., N
exact = np.array([[math.fsum(row[:n]) for row in x.astype(np.float64)] for n in lengths])  # [lengths, ROWS]

accumulators = {
    "sequential": Accumulator(fp16),
    "pairwise": Accumulator(fp16, order="pairwise"),
    "blocks of 32": Accumulator(fp16, block=32),
}
computed = {
    name: np.array([dot(x[:, :n], np.ones(n, np.float32), acc) for n in lengths], np.float64)
    for name, acc in accumulators.items()
}  # each [lengths, ROWS]
computed["Kahan"] = kahan_partial_sums(x, fp16)[:, lengths - 1].T  # [lengths, ROWS]
rel_err = {name: np.abs(c - exact) / exact for name, c in computed.items()}
for name, err in rel_err.items():
    print(f"{name:12}: median relative error at n = {N}: {np.median(err[-1]):.2e} (u = {u:.2e})")

# %% [markdown]
# ## 3. Error growth against the bounds
#
# Every rounding has a relative error at most $u$, and in sequential summation the first term goes through
# $n - 1$ of them, so (Higham 2002, ch. 3 and 4)
#
# $$ |\hat s - s| \le \gamma_{n-1} \sum_k |x_k|, \qquad \gamma_n = \frac{n u}{1 - n u}
#    \quad (n u < 1), $$
#
# a bound that says nothing once $n u \ge 1$ ($n \ge 2048$ in fp16). If the rounding errors behave like
# independent random variables of mean zero, $\gamma_n$ can be replaced by
# $\tilde\gamma_n \approx \lambda \sqrt n\, u$, valid with probability at least $1 - \delta$ for
# $\lambda = \sqrt{2 \ln(2n/\delta)}$ (Higham and Mary 2019). For the other orders: pairwise,
# $\gamma_{\lceil \log_2 n \rceil}$; blocked, $\gamma_{\lceil n/b \rceil}(1 + u_{32}) + u_{32}$; Kahan,
# $2u + O(n u^2)$, independent of $n$ to first order. `lampref.analysis` has `gamma(n, u)` and
# `inner_product_error_bound(x, y, fmt, kind=...)` (a sum is the inner product with a vector of ones).

# %%
DELTA = 1e-6  # failure probability of the probabilistic bound
u32 = unit_roundoff(fp32)
defined = lengths * u < 1
gamma_n = gamma(lengths[defined] - 1, u)
gamma_pairwise = gamma(np.ceil(np.log2(lengths)).astype(int), u)
gamma_blocked = gamma(-(-lengths // 32), u) * (1 + u32) + u32
prob = (
    np.array(
        [
            inner_product_error_bound(x[:, :n], np.ones(n), fp16, kind="probabilistic", delta=DELTA)
            for n in lengths
        ]
    )
    / exact
)  # [lengths, ROWS], relative to s

check(
    all(np.all(err[defined] <= gamma_n[:, None]) for err in rel_err.values()),
    "gamma_(n-1) bounds every order",
)
check(np.all(rel_err["pairwise"] <= gamma_pairwise[:, None]), "pairwise is within gamma_ceil(log2 n)")
check(np.all(rel_err["blocks of 32"] <= gamma_blocked[:, None]), "blocked is within its bound")
print(f"gamma_n at n = {lengths[defined][-1]}: {gamma_n[-1]:.2f}; undefined from n = 1/u = {round(1 / u)} on")

# %%
fig, ax = plt.subplots(figsize=(9, 5.5), layout="tight")
styles = {
    "sequential": ("C3", "o"),
    "pairwise": ("C2", "s"),
    "blocks of 32": ("C1", "^"),
    "Kahan": ("C0", "D"),
}
for name, err in rel_err.items():
    color, marker = styles[name]
    shown = np.maximum(err, 1e-8)
    ax.fill_between(lengths, shown.min(axis=1), shown.max(axis=1), color=color, alpha=0.12, lw=0)
    ax.loglog(lengths, np.median(shown, axis=1), marker=marker, color=color, ms=5, lw=1.3, label=name)
ax.loglog(lengths[defined], gamma_n, "k-", lw=1.5, label=r"$\gamma_{n-1}$ (defined for $nu < 1$)")
ax.loglog(lengths, np.median(prob, axis=1), "k--", lw=1.2, label=rf"$\tilde\gamma_n$, $\delta = {DELTA:g}$")
ax.loglog(lengths, gamma_pairwise, color="C2", ls=":", lw=1.2, label=r"$\gamma_{\lceil\log_2 n\rceil}$")
ax.axhline(2 * u, color="C0", ls=":", lw=1.2, label="2u (Kahan, first order)")
ax.axvline(1 / u, color="0.7", lw=0.8, ls="-.")
ax.set_xscale("log", base=2)
ax.set_ylim(1e-7, 3)
ax.set_xlabel("number of terms n")
ax.set_ylabel(r"relative error $|\hat s - s| / s$")
ax.set_title(f"Sums of uniform [0, 1) terms in fp16 (median and range of {ROWS} sums)", fontsize=11)
ax.legend(fontsize=8, loc="lower right", ncol=2)
plt.show()

# %% [markdown]
# Reading the picture:
#
# - $\gamma_n$ is a worst case: the measured errors lie far below it, and grow more like $\sqrt n\, u$, as
#   the probabilistic bound $\tilde\gamma_n$ says, as long as the roundings look random.
# - Sequential summation then **stagnates**: the sum reaches 2048 near $n = 4096$, half its ulp is then 1,
#   larger than every term, and all further terms are lost. The computed sum never exceeds 2048 while the
#   exact one keeps growing like $n/2$: the error is now systematic, its absolute value grows linearly in
#   $n$, and the relative error tends to $1 - 4096/n$, far above $\tilde\gamma_n$.
# - Pairwise summation adds numbers of similar size, and each term goes through only $\lceil\log_2 n\rceil$
#   roundings: its error barely grows.
# - Blocked summation rounds in fp16 only $n/32$ times.
# - Kahan's summation keeps the error at about $u$ whatever $n$, for the price of four operations per term
#   instead of one.

# %%
top = computed["sequential"].max()
print(
    f"largest sequential sum: {top:g}; exact sums at n = {N}: {exact[-1].min():.0f} to {exact[-1].max():.0f}"
)
print(
    f"median relative error at n = {N}: {np.median(rel_err['sequential'][-1]):.3f}; "
    f"1 - 2048/s for the median exact sum s: {1 - 2048 / np.median(exact[-1]):.3f}"
)
check(top <= 2048, "the sequential sum never exceeds 2048")
kahan_worst = rel_err["Kahan"].max() / u
check(kahan_worst <= 2, f"Kahan's error is below 2u for every length and row ({kahan_worst:.2f}u)")

# %% [markdown]
# ## 4. Stochastic rounding
#
# Stochastic rounding (`mode="stochastic"`) rounds $x$ up with probability equal to its distance from the
# neighbour below, as a fraction of the gap, so $E[\mathrm{fl}(x)] = x$: no term is lost on average. The sum
# of ones in bfloat16 again, as `RUNS` independent runs of the loop with the accumulator rounded
# stochastically (`round_to(s + 1, bf16, "stochastic", rng=...)`), and with `"stochastic_equal"`, which
# picks either neighbour with probability 1/2, whatever the distance. The modes are listed in
# `lampref.STOCHASTIC_MODES`.

# %%
print("stochastic modes:", STOCHASTIC_MODES)
gen = np.random.default_rng(SEED)
runs = {}
for mode in STOCHASTIC_MODES:
    s, trace = np.zeros(RUNS), np.empty((n_ones, RUNS))
    for k in range(n_ones):
        s = fl(s + 1.0, bf16, mode, rng=gen)  # [RUNS]
        trace[k] = s
    runs[mode] = trace
    final = trace[-1]
    print(
        f"{mode:16}: after {n_ones} ones, mean {final.mean():.1f}, range {final.min():g} to {final.max():g}"
    )
acc_sr = Accumulator(bf16, mode="stochastic")
by_dot = dot(np.ones((RUNS, n_ones), np.float32), ones, acc_sr, rng=SEED + 1)  # RUNS independent sums at once
print(
    f"dot with Accumulator(bf16, mode='stochastic'): mean {by_dot.mean():.1f}, range {by_dot.min():g} to "
    f"{by_dot.max():g}"
)
rel_sr = np.abs(runs["stochastic"][-1] - n_ones) / n_ones
print(
    f"stochastic: relative errors of the {RUNS} runs: median {np.median(rel_sr):.3f}, "
    f"largest {rel_sr.max():.3f}"
)
check(runs["stochastic"][-1].min() > 256, "stochastic rounding passes the stagnation point 256 in every run")

# %% [markdown]
# With `"stochastic"` the sum passes 256 and ends near 4096, with a relative error of a few percent in
# bfloat16 (for comparison, $\sqrt n\, u = 64/256 = 0.25$ for $n = 4096$). With `"stochastic_equal"` it
# runs away: from 512 on the spacing is 4 or more, $s + 1$ is a quarter of the gap or less above $s$, yet it
# goes up half the time, so the expected step is 2, then 4, then 8 ones: the sum grows exponentially. The
# probabilities must be proportional to the distances for the rounding to be unbiased.
#
# The same accumulator on the uniform terms of section 2: the error of the stochastic sum stays within
# $\tilde\gamma_n \propto \sqrt n\, u$ at every length (Connolly, Higham and Mary 2021 prove that the
# probabilistic bound holds for stochastic rounding, with no assumption on the data), where round to
# nearest stagnates.

# %%
sr = np.array(
    [
        dot(x[:, :n], np.ones(n, np.float32), Accumulator(fp16, mode="stochastic"), rng=SEED + n)
        for n in lengths
    ],
    np.float64,
)  # [lengths, ROWS]
rel_err_sr = np.abs(sr - exact) / exact
print(
    f"median relative error at n = {N}: stochastic {np.median(rel_err_sr[-1]):.2e}, "
    f"round to nearest {np.median(rel_err['sequential'][-1]):.2e}"
)
check(np.all(rel_err_sr <= prob), "stochastic rounding stays within the probabilistic bound for every sum")

fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), layout="tight")
ax = axes[0]
k = np.arange(1, n_ones + 1)
ax.plot(k, runs["stochastic_equal"], color="C1", lw=0.6, alpha=0.5)
ax.plot(k, runs["stochastic"], color="C0", lw=0.6, alpha=0.5)
ax.plot([], [], color="C0", label="stochastic")
ax.plot([], [], color="C1", label="stochastic_equal")
ax.plot(k, partial["bf16"], color="C3", lw=1.5, label="round to nearest")
ax.plot(k, k, "k--", lw=1, label="exact")
ax.set_xscale("log", base=2)
ax.set_yscale("log", base=2)
ax.set_xlabel("number of ones added, n")
ax.set_ylabel("computed sum")
ax.set_title(f"Sum of ones in bfloat16, {RUNS} runs per mode", fontsize=10)
ax.legend(fontsize=8)
ax = axes[1]
for err, label, color in [
    (rel_err["sequential"], "round to nearest", "C3"),
    (rel_err_sr, "stochastic", "C0"),
]:
    ax.fill_between(lengths, err.min(axis=1), err.max(axis=1), color=color, alpha=0.12, lw=0)
    ax.loglog(lengths, np.median(err, axis=1), "o-", ms=4, color=color, label=label)
ax.loglog(lengths[defined], gamma_n, "k-", lw=1.5, label=r"$\gamma_{n-1}$")
ax.loglog(lengths, np.median(prob, axis=1), "k--", lw=1.2, label=r"$\tilde\gamma_n$")
ax.set_xscale("log", base=2)
ax.set(xlabel="number of terms n", ylabel="relative error")
ax.set_title("Uniform [0, 1) terms, sequential fp16 accumulator", fontsize=10)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Exercises
#
# 1. **Order matters.** Sum the harmonic series $\sum_{k=1}^n 1/k$ for $n = 5000$ with the terms stored in
#    fp16 and an fp16 accumulator, largest terms first (`Accumulator(fp16)`) and smallest first
#    (`order="reverse"`), and compare both with the exact sum of the stored terms. At which $k$ does the
#    first one stop growing, and why is the second more accurate?
# 2. **Kahan against stagnation.** Run `kahan_partial_sums` on 4096 ones in bfloat16 and in fp16. Does it
#    stagnate? Follow $s$, $y$ and $c$ through the first few additions after $s = 256$ in bfloat16 to see
#    how the lost ones come back.
# 3. **Where does a sum of 0.1 stop?** Predict the value at which the sequential bfloat16 sum of $n = 2000$
#    copies of $\mathrm{fl}(0.1)$ stagnates (a term is lost when it is below half an ulp of the partial
#    sum), then check it with `dot`. Before it stops, does the sum run too slow or too fast? Compare with
#    stochastic rounding (mean and spread over a few seeds).
#
# **References.** N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002,
# ch. 3 and 4. N. J. Higham and T. Mary, "A new approach to probabilistic rounding error analysis",
# SIAM J. Sci. Comput. 41(5), 2019. M. P. Connolly, N. J. Higham and T. Mary, "Stochastic rounding and its
# probabilistic backward error analysis", SIAM J. Sci. Comput. 43(1), 2021. W. Kahan, "Further remarks on
# reducing truncation errors", Comm. ACM 8(1), 1965.
