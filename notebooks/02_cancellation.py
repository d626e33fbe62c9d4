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
# # The cost of a single rounding: catastrophic cancellation
#
# One rounding has a relative error of at most the unit roundoff $u = 2^{-p}$. Subtracting two nearby
# numbers is exact, yet it can turn that tiny error into a large one: the difference is small, the error it
# inherits is not. This notebook measures the effect in formats of decreasing precision, always against
# the exact value.
#
# **What you will learn**
#
# - why $(1 + x) - 1$ loses about $\log_2(1/x)$ of its $p$ bits, although the subtraction itself is exact;
# - how the relative error of a difference is the error of its operands times the condition number
#   $(|a| + |b|) / |a - b|$, and how to read it off a plot of error against precision;
# - how to rewrite a formula so that nothing cancels: the stable quadratic formula;
# - why the one-pass variance formula fails on data with a large mean, and how the two-pass formula and
#   Welford's updates avoid it.
#
# Each operation is emulated by computing it in float64 and rounding the result to the format with
# `lampref.round_to`. For $+, -, \times, \div$ and $\sqrt{\ }$ on $p$-bit numbers with $2p + 2 \le 53$
# (every format here) this gives exactly the correctly rounded result of the exact operation: the double
# rounding is innocuous (Figueroa 1995). Set the environment variable `LAMPREF_SMALL=1` to run with small
# sizes.

# %%
import math
import os
from fractions import Fraction

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

import lampref
from lampref import Accumulator, bf16, dot, fp16, fp32, fp32_mantissa
from lampref.course import check, fl

SMALL = os.environ.get("LAMPREF_SMALL", "0") not in ("", "0")
GRID = 301 if SMALL else 2_001  # values of x in section 1
SAMPLES = 8 if SMALL else 24  # data sets per mean in section 3
LENGTH = 200 if SMALL else 1_000  # length of each data set in section 3
SEED = 20_260_214


print(f"lampref {lampref.__version__}, matplotlib backend {matplotlib.get_backend()}, small sizes: {SMALL}")

# %% [markdown]
# ## 1. Adding a small number to 1 and taking 1 away
#
# In exact arithmetic $(1 + x) - 1 = x$. In a format of precision $p$, with $x$ stored as a value
# $\hat x$ of the format, two roundings happen: $s = \mathrm{fl}(1 + \hat x)$ and $d = \mathrm{fl}(s - 1)$.
# For $0 < \hat x < 1$ the subtraction is exact (Sterbenz's lemma: $s/2 \le 1 \le 2s$), so the whole
# error is the one made when $1 + \hat x$ was rounded. That error is at most $u(1 + \hat x)$: tiny next to
# $1 + \hat x$, but not next to $\hat x$:
#
# $$ \frac{|d - \hat x|}{\hat x} \le u \, \frac{1 + \hat x}{\hat x} \approx \frac{u}{\hat x}. $$
#
# For $x = 10^{-3}$ in three formats, with the errors computed exactly in rational arithmetic:

# %%
FORMATS = {"fp32": fp32, "fp16": fp16, "bf16": bf16}


def one_plus_minus_one(x, fmt):
    """(1 + x) - 1 with x stored in fmt and each operation rounded to fmt: (x stored, 1 + x, result)."""
    xh = fl(x, fmt)
    s = fl(1.0 + xh, fmt)
    return xh, s, fl(s - 1.0, fmt)


def relative_error(computed, exact):
    """|computed - exact| / |exact|, computed exactly with Fractions and returned as a float."""
    exact = Fraction(float(exact))
    return float(abs(Fraction(float(computed)) - exact) / abs(exact))


x = 1e-3
print(f"x = {x}")
for name, fmt in FORMATS.items():
    xh, s, d = one_plus_minus_one(x, fmt)
    print(
        f"{name}: stored x = {float(xh):.10g} (relative error {relative_error(xh, x):.1e}), "
        f"1 + x -> {float(s):.10g}, (1 + x) - 1 = {float(d):.10g}: relative error "
        f"{relative_error(d, xh):.1e} (u = {fmt.unit_roundoff:.1e}, u/x = {fmt.unit_roundoff / x:.1e})"
    )

# %% [markdown]
# Storing $x$ costs at most $u$; the round trip through $1 + x$ costs up to $u / x$, a thousand times more
# here. In fp16 the bound $u/x \approx 0.5$ leaves almost nothing guaranteed, and the measured 2.4% is
# about 5 correct bits of 11; in bf16, where $x < u$, $1 + x$ rounds to 1 and nothing is left.
#
# Now over a range of $x$: the measured relative error (against the exact $\hat x$) and the bound
# $u(1 + \hat x)/\hat x$. Once $\hat x \le u$, $1 + \hat x$ rounds to 1 and the result is 0: a relative
# error of exactly 1. (fp16 is shown down to its smallest normal number $2^{-14}$; below it $x$ itself
# loses bits when it is stored.)

# %%
xs = np.geomspace(2.0**-26, 0.5, GRID)
errors, bounds, stored, claims = {}, {}, {}, {"exact": [], "bound": [], "zero": []}
for name, fmt in FORMATS.items():
    xh, s, d = one_plus_minus_one(xs, fmt)
    keep = xh >= fmt.smallest_normal
    exact_sub = all(Fraction(float(di)) == Fraction(float(si)) - 1 for si, di in zip(s, d, strict=True))
    errors[name] = np.array([relative_error(di, xi) for xi, di in zip(xh[keep], d[keep], strict=True)])
    bounds[name] = fmt.unit_roundoff * (1 + xh[keep]) / xh[keep]
    stored[name] = xh[keep]
    u = fmt.unit_roundoff
    claims["exact"].append(exact_sub)
    claims["bound"].append(np.all(errors[name] <= bounds[name]))
    claims["zero"].append(np.array_equal(d[keep] == 0, xh[keep] <= u))
check(all(claims["exact"]), "in every format, the subtraction s - 1 is exact at every x")
check(all(claims["bound"]), "in every format, the relative error is below u(1 + x)/x at every x")
check(all(claims["zero"]), "in every format, the result is 0 exactly when x <= u")

fig, ax = plt.subplots(figsize=(9, 4.8), layout="tight")
for k, name in enumerate(FORMATS):
    ax.loglog(stored[name], errors[name], ".", ms=2.5, color=f"C{k}", label=f"{name}, measured")
    ax.loglog(stored[name], np.minimum(bounds[name], 1.5), "-", lw=1, color=f"C{k}", alpha=0.7)
    u = FORMATS[name].unit_roundoff
    ax.axvline(u, color=f"C{k}", lw=0.7, ls=":")
    ax.text(u, 3e-9, f" u ({name})", color=f"C{k}", fontsize=8, rotation=90, va="bottom")
ax.plot([], [], "k-", lw=1, label=r"bound $u(1+\hat x)/\hat x$")
ax.set_xscale("log", base=2)
ax.set_ylim(1e-9, 3)
ax.set_xlabel(r"$\hat x$ (x stored in the format)")
ax.set_ylabel(r"$|d - \hat x| / \hat x$")
ax.set_title(
    r"Relative error of $(1 + x) - 1$: the bound $u/x$ and its plateau at 1 for $x \leq u$", fontsize=11
)
ax.legend(fontsize=8, loc="lower left")
plt.show()

# %% [markdown]
# On the log-log plot each format gives a band of slope $-1$: halving $x$ doubles the error. The band lies
# below the bound $u/x$, and where $x$ is a power of two times a short binary fraction the error is 0 (those
# points are not drawn). The bands of fp16 and bf16 are $2^{13}$ and $2^{16}$ times higher than fp32's: the
# ratios of their unit roundoffs.
#
# ### The same thing, against precision
#
# Fix $x$ and lower the precision instead: `fp32_mantissa(m)` keeps $m$ stored mantissa bits
# ($p = m + 1$) with float32's exponent range. The number of correct bits, $-\log_2$ of the relative
# error, falls one for one with $p$: the bound guarantees $p - \log_2((1 + x)/x)$ of them, and the
# measurement often gives a few more. The $\log_2(1/x)$ bits are what the cancellation costs.

# %%
mantissas = np.arange(23, -1, -1)  # m = 23 (float32) down to 0
precisions = mantissas + 1
x_values = [0.3, 1e-2, 1e-4]
by_precision = {}
for x in x_values:
    errs = []
    for m in mantissas:
        xh, s, d = one_plus_minus_one(x, fp32_mantissa(int(m)))
        errs.append(relative_error(d, xh))
    by_precision[x] = np.array(errs)

print(" p   correct bits (guaranteed by the bound) for x = " + ", ".join(f"{x:g}" for x in x_values))
for i in range(0, precisions.size, 4):
    p = precisions[i]
    cells = []
    for x in x_values:
        e = by_precision[x][i]
        bits = 0.0 - math.log2(e) if e > 0 else math.inf
        cells.append(f"{bits:5.1f} ({max(p - math.log2((1 + x) / x), 0.0):4.1f})")
    print(f"{p:2d}   " + "      ".join(cells))

fig, ax = plt.subplots(figsize=(8, 4.5), layout="tight")
for k, x in enumerate(x_values):
    err = by_precision[x]
    shown = err > 0
    ax.semilogy(precisions[shown], err[shown], "o", ms=4, color=f"C{k}", label=f"x = {x:g}")
    ax.semilogy(precisions, np.minimum(2.0**-precisions * (1 + x) / x, 1.0), "-", lw=1, color=f"C{k}")
ax.semilogy(precisions, 2.0**-precisions, "k--", lw=1, label="u (one rounding, no cancellation)")
ax.plot([], [], "k-", lw=1, label=r"$\min(1, u(1+x)/x)$")
ax.invert_xaxis()
ax.set_xlabel("precision p (fp32_mantissa(p - 1)), decreasing")
ax.set_ylabel("relative error of (1 + x) - 1")
ax.set_title("Each bit of precision lost is a factor 2 in the error", fontsize=11)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# This is the general rule for a sum $a + b$ of two numbers carrying relative errors up to $\epsilon$: the
# computed sum has a relative error up to
#
# $$ \epsilon \, \frac{|a| + |b|}{|a + b|}, $$
#
# the condition number of the sum. For $(1 + \hat x) + (-1)$ it is $(2 + \hat x)/\hat x$. The addition
# does nothing wrong; it reveals an error made earlier. The cure is never "more careful subtraction" but a
# formula in which nothing large cancels.
#
# ## 2. The quadratic formula
#
# The roots of $a t^2 + b t + c = 0$ are $t_{1,2} = (-b \mp \sqrt{b^2 - 4ac}) / (2a)$. When
# $b^2 \gg 4|ac|$, $\sqrt{b^2 - 4ac} \approx |b|$ and the root with the $+$ sign (for $b > 0$) is a
# difference of two nearly equal numbers. Its condition number is
# $\kappa = (|b| + \sqrt{D}) / (|b| - \sqrt{D})$, $D = b^2 - 4ac$, about $b^2 / |ac|$, and the rounding
# errors made in $D$ and $\sqrt D$ are amplified by it.
#
# The stable form computes the root without cancellation first and the other from the product of the roots,
# $t_1 t_2 = c/a$:
#
# $$ q = -\tfrac12\big(b + \operatorname{sign}(b)\sqrt{D}\big), \qquad t_1 = q / a, \qquad t_2 = c / q. $$
#
# Both are evaluated with every operation rounded, for $a = c = 1$ and $b$ from 3 to 240 (so that $b^2$ stays
# below fp16's largest value, 65504), and compared with the exact roots of the stored equation: $D$ is an
# exact rational number, $\sqrt D$ is computed to 200 bits with integer arithmetic, and the small root is
# formed as $2c / (-b - \sqrt D)$, which does not cancel.


# %%
def sqrt_fraction(q, bits=200):
    """The square root of a non-negative Fraction q, rounded down to a multiple of 2**-bits."""
    return Fraction(math.isqrt(q.numerator * 4**bits // q.denominator), 2**bits)


def small_root_exact(a, b, c):
    """The root of smaller magnitude of a t^2 + b t + c (b > 0, b^2 > 4ac), to about 200 bits."""
    a, b, c = Fraction(a), Fraction(b), Fraction(c)
    return 2 * c / (-b - sqrt_fraction(b * b - 4 * a * c))


def roots_textbook(a, b, c, fmt):
    """(-b - sqrt(D)) / 2a and (-b + sqrt(D)) / 2a, every operation rounded to fmt."""
    r = fl(np.sqrt(fl(fl(b * b, fmt) - fl(fl(4 * a, fmt) * c, fmt), fmt)), fmt)
    two_a = fl(2 * a, fmt)
    return fl(fl(-b - r, fmt) / two_a, fmt), fl(fl(-b + r, fmt) / two_a, fmt)


def roots_stable(a, b, c, fmt):
    """q = -(b + sign(b) sqrt(D)) / 2, then q / a and c / q, every operation rounded to fmt."""
    r = fl(np.sqrt(fl(fl(b * b, fmt) - fl(fl(4 * a, fmt) * c, fmt), fmt)), fmt)
    q = fl(-fl(b + np.copysign(r, b), fmt) / 2, fmt)
    return fl(q / a, fmt), fl(c / q, fmt)


b_grid = np.geomspace(3.0, 240.0, 60 if SMALL else 200)
quad = {}
for name, fmt in FORMATS.items():
    b = fl(b_grid, fmt)  # the coefficients as stored; a = c = 1 are exact
    exact = [small_root_exact(1.0, bi, 1.0) for bi in b]
    naive = [relative_error(t, e) for t, e in zip(roots_textbook(1.0, b, 1.0, fmt)[1], exact, strict=True)]
    stable = [relative_error(t, e) for t, e in zip(roots_stable(1.0, b, 1.0, fmt)[1], exact, strict=True)]
    sqrt_d = np.array([float(sqrt_fraction(Fraction(bi) ** 2 - 4)) for bi in b])
    quad[name] = (b, np.array(naive), np.array(stable), (b + sqrt_d) / (b - sqrt_d))
    u = fmt.unit_roundoff
    print(
        f"{name}: at b = {b[-1]:g} the textbook small root has relative error {naive[-1]:.1e}, "
        f"the stable one {stable[-1]:.1e} (u = {u:.1e}, kappa = {quad[name][3][-1]:.0f})"
    )
    zero = b[roots_textbook(1.0, b, 1.0, fmt)[1] == 0]
    if zero.size:
        print(
            f"   the textbook small root is first exactly 0 at b = {zero.min():g}; "
            f"sqrt(2/u) = {math.sqrt(2 / u):.0f}"
        )

worst = max(quad[name][2].max() / FORMATS[name].unit_roundoff for name in FORMATS)
check(worst <= 4, f"in every format the stable small root is within 4u at every b (largest {worst:.2f}u)")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True, layout="tight")
ax = axes[0]
for k, (name, (b, naive, stable, kappa)) in enumerate(quad.items()):
    u = FORMATS[name].unit_roundoff
    ax.loglog(b, np.maximum(naive, 1e-10), "-", lw=0.9, color=f"C{k}", label=f"{name}, textbook")
    ax.loglog(b, np.maximum(stable, 1e-10), "x", ms=3, color=f"C{k}", label=f"{name}, stable")
    ax.loglog(b, np.minimum(u * kappa, 1.0), "--", lw=1.2, color=f"C{k}", alpha=0.8)
ax.plot([], [], "k--", lw=1.2, label=r"$u\,\kappa$ (textbook)")
ax.set_xlabel("b  (a = c = 1)")
ax.set_ylabel("relative error of the small root")
ax.set_ylim(1e-10, 3)
ax.set_title("The textbook error stays below about u times the condition number", fontsize=10)
ax.legend(fontsize=7, ncol=2, loc="lower right")

b_fixed = 100.0
ax = axes[1]
naive_p, stable_p = [], []
for m in mantissas:
    fmt = fp32_mantissa(int(m))
    b = fl(b_fixed, fmt)
    exact = small_root_exact(1.0, float(b), 1.0)
    naive_p.append(relative_error(roots_textbook(1.0, b, 1.0, fmt)[1], exact))
    stable_p.append(relative_error(roots_stable(1.0, b, 1.0, fmt)[1], exact))
naive_p, stable_p = np.array(naive_p), np.array(stable_p)
ax.semilogy(precisions, np.maximum(naive_p, 1e-10), "o-", ms=4, color="C3", label="textbook")
ax.semilogy(precisions, np.maximum(stable_p, 1e-10), "s-", ms=4, color="C2", label="stable")
ax.semilogy(precisions, 2.0**-precisions, "k--", lw=1, label="u")
ax.invert_xaxis()
ax.set_xlabel("precision p (fp32_mantissa(p - 1)), decreasing")
ax.set_title(
    f"b = {b_fixed:g}: the textbook root is lost below about {math.log2(b_fixed**2):.0f} bits", fontsize=10
)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The textbook small root loses up to $\log_2 \kappa \approx \log_2 b^2$ bits: at $b = 100$ about 13 of
# them, so fp16 and bf16 return garbage. Since $\sqrt{b^2 - 4} \approx b - 2/b$, once $2/b$ is below half
# an ulp of $b$ (about $u b$), that is from $b \approx \sqrt{2/u}$ on, the computed $\sqrt D$ equals $b$
# and the root comes out as exactly 0, a relative error of 1. The stable form stays within a few $u$ in
# every format. (Zeros are drawn at $10^{-10}$.)
#
# ## 3. The variance of data with a large mean
#
# Three ways to compute the sample variance $V = \frac{1}{n-1} \sum_i (x_i - \bar x)^2$:
#
# - **one pass** ("textbook"): $V = \big(\sum x_i^2 - (\sum x_i)^2 / n\big) / (n - 1)$, one sweep over the
#   data;
# - **two passes**: the mean $\bar x = \sum x_i / n$ first, then $\sum (x_i - \bar x)^2$;
# - **Welford's updates**, one pass: $\delta = x_k - M_{k-1}$, $M_k = M_{k-1} + \delta / k$,
#   $S_k = S_{k-1} + \delta\,(x_k - M_k)$, $V = S_n / (n - 1)$.
#
# The one-pass formula subtracts two numbers of size $n(\mu^2 + \sigma^2)$ to get one of size
# $n \sigma^2$: a cancellation with condition number about $1 + \mu^2/\sigma^2$. Chan, Golub and LeVeque
# (1983) give error estimates in terms of $\kappa = \sqrt{1 + \mu^2/\sigma^2}$ (Higham 2002, section 1.9):
# about $n u \kappa^2$ for one pass, $n u + n^2 u^2 \kappa^2$ for two passes and $n u \kappa$ for Welford,
# where the $n u$ of a sum falls to about $u \log_2 n$ when it is summed pairwise.
#
# The data: $n$ normal samples of mean $\mu$ and standard deviation $\sigma = 1$, stored in the format.
# The sums are lampref dot products with the format as accumulator, summed pairwise
# (`Accumulator(fmt, order="pairwise")`, the squares rounded with `products=fmt`) so that what we see is
# cancellation, not the growth of summation errors (the subject of the next notebook). Welford's updates
# are a loop of rounded operations; the counter $k$ is rounded to the format too, as it would be stored.
# The exact variance of the stored data is computed with Python integers.


# %%
def exact_variance(x):
    """The exact sample variance of the rows of x (float32 values), as floats: x * 2**149 is an integer."""
    out = []
    for row in np.asarray(x, np.float64):
        ints = [int(v * 2.0**149) for v in row]
        n, s1, s2 = len(ints), sum(ints), sum(i * i for i in ints)
        out.append(float(Fraction(n * s2 - s1 * s1, n * (n - 1)) / 4**149))
    return np.array(out)


def variance_one_pass(x, fmt):
    """(sum x^2 - (sum x)^2 / n) / (n - 1), every operation rounded to fmt, sums pairwise."""
    n = x.shape[-1]
    acc = Accumulator(fmt, order="pairwise", products=fmt)
    s1 = np.asarray(dot(x, np.ones_like(x), acc), np.float64)
    s2 = np.asarray(dot(x, x, acc), np.float64)
    return fl(fl(s2 - fl(fl(s1 * s1, fmt) / n, fmt), fmt) / (n - 1), fmt)


def variance_two_pass(x, fmt):
    """sum (x - mean)^2 / (n - 1), every operation rounded to fmt, sums pairwise."""
    n = x.shape[-1]
    acc = Accumulator(fmt, order="pairwise", products=fmt)
    mean = fl(np.asarray(dot(x, np.ones_like(x), acc), np.float64) / n, fmt)  # [rows]
    dev = fl(x - mean[..., None], fmt).astype(np.float32)  # [rows, n]
    return fl(np.asarray(dot(dev, dev, acc), np.float64) / (n - 1), fmt)


def variance_welford(x, fmt):
    """Welford's updates along the last axis, every operation rounded to fmt."""
    x = np.asarray(x, np.float64)
    mean = np.zeros(x.shape[:-1])
    s = np.zeros(x.shape[:-1])
    for k in range(x.shape[-1]):
        kf = float(fl(k + 1, fmt))
        delta = fl(x[..., k] - mean, fmt)
        mean = fl(mean + fl(delta / kf, fmt), fmt)
        s = fl(s + fl(delta * fl(x[..., k] - mean, fmt), fmt), fmt)
    return fl(s / float(fl(x.shape[-1] - 1, fmt)), fmt)


ALGORITHMS = {"one pass": variance_one_pass, "two passes": variance_two_pass, "Welford": variance_welford}
rng = np.random.default_rng(SEED)
noise = rng.standard_normal((SAMPLES, LENGTH))
shifts = {"fp32": 2.0 ** np.arange(0, 15), "bf16": 2.0 ** np.arange(0, 8)}  # mu / sigma
var_err, negative = {}, {}
for name, mus in shifts.items():
    fmt = FORMATS[name]
    data = fl(mus[:, None, None] + noise, fmt).astype(np.float32)  # [shifts, SAMPLES, LENGTH]
    exact = exact_variance(data.reshape(-1, LENGTH)).reshape(mus.size, SAMPLES)
    for alg, f in ALGORITHMS.items():
        v = f(data, fmt)  # [shifts, SAMPLES]
        var_err[name, alg] = np.abs(v - exact) / exact
        negative[name, alg] = int(np.sum(v < 0))
    print(f"{name}: exact variances of the stored data from {exact.min():.3f} to {exact.max():.3f}")
    for alg in ALGORITHMS:
        med = np.median(var_err[name, alg], axis=1)
        print(
            f"   {alg:10}: median relative error {med[0]:.1e} at mu = 1, {med[-1]:.1e} at mu = "
            f"{mus[-1]:g}; negative variances: {negative[name, alg]}"
        )

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True, layout="tight")
styles = {"one pass": ("C3", "o"), "two passes": ("C2", "s"), "Welford": ("C0", "^")}
for ax, (name, mus) in zip(axes, shifts.items(), strict=True):
    u = FORMATS[name].unit_roundoff
    kappa = np.sqrt(1 + mus**2)
    for alg in ALGORITHMS:
        color, marker = styles[alg]
        err = np.maximum(var_err[name, alg], 1e-10)
        ax.fill_between(mus, err.min(axis=1), err.max(axis=1), color=color, alpha=0.12, lw=0)
        ax.loglog(mus, np.median(err, axis=1), marker=marker, ms=4, color=color, label=alg)
    ax.loglog(mus, u * kappa**2, "k--", lw=0.9, label=r"$u\,\kappa^2$")
    ax.loglog(mus, u * kappa, "k:", lw=0.9, label=r"$u\,\kappa$")
    ax.axhline(1.0, color="0.6", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_ylim(1e-9, 1e3)
    ax.set_xlabel(r"$\mu / \sigma$")
    ax.set_title(f"{name}, n = {LENGTH} (median and range of {SAMPLES} data sets)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
axes[0].set_ylabel("relative error of the variance")
plt.show()

# %% [markdown]
# The one-pass error grows like $u\kappa^2 \approx u \mu^2 / \sigma^2$ and reaches 100% once
# $\mu/\sigma \approx u^{-1/2}$: about $2^{12}$ in float32, $2^4$ in bfloat16. Beyond it the computed
# variance is anything: 0 (the two sums round to the same number) or even negative. Two passes subtract the
# mean from each value before squaring: the differences $x_i - \bar x$ are small and computed almost
# exactly, and the error of the computed mean, about $u\mu$, enters only squared, as
# $(u \mu / \sigma)^2$; the error stays within a few $u$ over the whole range, and starts to grow only at
# the largest means. Welford's error grows like
# $u\kappa$: the running mean drifts by a few $u\mu$, and the deviations $x_k - M_k$ inherit that drift.
#
# In bfloat16 Welford's error is about 20% whatever the mean. This is not cancellation: its $S_k$ is a
# sequential sum of $n = 1000$ terms of size about $\sigma^2$, with $n u \approx 4$, and once $S_k$ is a
# few hundred, half its ulp exceeds most terms, which are rounded away. The next notebook is about this
# stagnation; the pairwise sums of the two other methods do not suffer from it.

# %%
fp32_top = np.median(var_err["fp32", "one pass"][-1])
check(fp32_top > 0.1, f"float32 one pass at mu/sigma = 2^14: median error {fp32_top:.2f} > 10%")
check(negative["bf16", "one pass"] > 0, "bfloat16 one pass returns negative variances")
two_pass_worst = max(
    np.median(var_err[name, "two passes"], axis=1).max() / FORMATS[name].unit_roundoff for name in shifts
)
check(two_pass_worst < 5, f"two passes: every median error is below 5u (largest {two_pass_worst:.2f}u)")
ratio = min(
    np.median(var_err[name, "one pass"][-1]) / np.median(var_err[name, "two passes"][-1]) for name in shifts
)
check(ratio > 100, f"at the largest mean, two passes are at least {ratio:.0f} times more accurate than one")

# %% [markdown]
# ## Exercises
#
# 1. **Rewriting $\log(1 + x)$.** In fp16, for $x$ from $2^{-14}$ to 1, compare the naive
#    $\mathrm{fl}(\log(\mathrm{fl}(1 + x)))$ with the rewrite $w = \mathrm{fl}(1 + x)$,
#    $\log(1 + x) \approx x \log(w) / (w - 1)$ (and $x$ itself when $w = 1$), every operation rounded to
#    fp16 (evaluate $\log$ in float64 and round). Plot both relative errors against `math.log1p`. What do you
#    observe for small $x$, and why does the rewrite work although $w - 1$ cancels just as badly?
# 2. **When is $(1 + x) - 1$ exact?** Enumerate every positive bfloat16 value $x < 1$
#    (`bf16.values()`) and find the smallest for which $\mathrm{fl}(\mathrm{fl}(1 + x) - 1) = x$. How does it
#    relate to $u$ and $\varepsilon = 2u$? How many $x$ in $(0, 1)$ pass, and which ones?
# 3. **A cancellation-free form.** For $x$ from 1 to $10^6$, compute $f(x) = \sqrt{x + 1} - \sqrt{x}$ in
#    bfloat16 as written and in a form without cancellation (multiply and divide by
#    $\sqrt{x + 1} + \sqrt{x}$). Compare both with an exact reference and plot the relative errors. From
#    which $x$ on is the direct form exactly 0, and why?
#
# **References.** N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002,
# ch. 1 (sections 1.7-1.9) and 2. T. F. Chan, G. H. Golub and R. J. LeVeque, "Algorithms for computing the
# sample variance: analysis and recommendations", Amer. Statist. 37(3), 1983. S. A. Figueroa, "When is double
# rounding innocuous?", ACM SIGNUM Newsletter 30(3), 1995. D. Goldberg, "What every computer scientist should
# know about floating-point arithmetic", ACM Comput. Surv. 23(1), 1991.
