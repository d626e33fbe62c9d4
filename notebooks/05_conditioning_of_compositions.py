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
# # Conditioning of compositions f(g(x))
#
# A rounding error made in g is passed on to f, which may amplify it or damp it. How much is a property of
# the exact problem, its condition number, not of the arithmetic: these pictures measure it and compare it
# with the bounds of the analysis.
#
# What you will learn:
#
# - the relative condition number of an element-wise function, and how well it predicts the error of
#   phi(fl(z)) after z is rounded;
# - the amplification matrix of a composition f(g(x)): the error of a dot product, amplified both by
#   cancellation in the dot product and by the conditioning of GELU;
# - look-ahead: recomputing the few inputs that matter, against recomputing as many at random;
# - why softmax amplifies the errors of the large scores and hardly those of the small ones, and which
#   entries the LAMP rule recomputes.
#
# Only the public API of lampref is used and nothing is downloaded. Set `LAMPREF_SMALL=1` to run with small
# sizes (the pictures look the same, only noisier). The formulas are those of the user guide page
# *Composition error analysis*.

# %%
import math
import os

import matplotlib.pyplot as plt
import numpy as np

import lampref
from lampref import Accumulator, fp32_mantissa, matmul, round_to
from lampref.analysis import (
    amplification_matrix,
    condition_number,
    dot_condition_number,
    inner_product_error_bound,
    lamp_select,
    relative_error_bound,
    select_greedy,
    softmax_amplification,
    softmax_kappa,
)
from lampref.course import check

SMALL = os.environ.get("LAMPREF_SMALL", "0") not in ("", "0")
GRID = 2_001 if SMALL else 20_001  # points of the grids of section 1
DRAWS = 20 if SMALL else 200  # random selections in sections 3 and 4
SEED = 20_260_202


def exact_dots(a, b):
    """Inner products of the rows of a (float32 values) with b: every float64 product of two float32 values is
    exact, and math.fsum returns the correctly rounded sum of the products."""
    products = np.asarray(a, np.float64) * np.asarray(b, np.float64)  # [rows, d]
    return np.array([math.fsum(row) for row in products.reshape(-1, products.shape[-1])])


print(f"lampref {lampref.__version__}, small sizes: {SMALL}")

# %% [markdown]
# ## 1. The condition number of an element-wise function
#
# If $\hat z = z(1 + \rho)$, then to first order
#
# $$ \frac{\phi(\hat z) - \phi(z)}{\phi(z)} \approx \kappa_\phi(z)\,\rho, \qquad
#    \kappa_\phi(z) = \left| \frac{z \phi'(z)}{\phi(z)} \right|, $$
#
# the relative condition number of $\phi$ (`condition_number(name, z)`). Round a fine grid of $z$ to
# bfloat16 ($|\rho| \le u = 2^{-8}$) and evaluate $\phi$ in float64 on both: the measured relative error
# follows $\kappa_\phi(z)\, u$.
#
# The functions are GELU (tanh form, as in GPT-2), SiLU, tanh, the sigmoid, $\exp$ and $\log$. First their
# condition numbers, checked against an independent float64 central difference of $\log|\phi|$
# ($\kappa_\phi = |z\, (\log|\phi|)'|$), and their values at a few points:

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

agrees = []
for name, (phi, (lo, hi)) in FUNCTIONS.items():
    z = np.linspace(lo, hi, 241)
    z = z[(np.abs(z) > 0.05) & (np.abs(z - 1) > 0.05)]  # away from the zeros of phi
    h = 1e-6 * np.maximum(1.0, np.abs(z))
    fd = np.abs(z * (np.log(np.abs(phi(z + h))) - np.log(np.abs(phi(z - h)))) / (2 * h))
    agrees.append(np.allclose(condition_number(name, z), fd, rtol=1e-6, atol=1e-7))
check(all(agrees), "condition_number agrees with float64 central differences for every function")

points = [-6.0, -4.0, -1.0, 1.0, 4.0, 6.0]
print("kappa_phi(z) at z =" + "".join(f"{p:>9g}" for p in points))
for name in FUNCTIONS:
    zs = [0.05, 0.5, 0.99, 1.01, 2.0, 4.0] if name == "log" else points
    row = "".join(f"{k:9.3g}" for k in condition_number(name, zs))
    note = f"  (log: at z = {', '.join(f'{p:g}' for p in zs)})" if name == "log" else ""
    print(f"{name:>19} {row}{note}")
z_fine = np.linspace(-3.0, 0.0, 30_001)
for name in ("gelu_tanh", "silu"):
    k = condition_number(name, z_fine)
    print(f"{name}: smallest kappa {k.min():.1e} at z = {z_fine[np.argmin(k)]:.3f} (where phi' = 0)")

# %% [markdown]
# Reading the table: GELU and SiLU amplify errors for negative $z$ (their output is a small difference
# there) and pass them on unchanged for large positive $z$; the sigmoid behaves like $\exp$ for negative
# $z$ and damps for large positive $z$; tanh damps for large $|z|$; $\exp$ amplifies by exactly $|z|$;
# $\log$ blows up near $z = 1$, where $\log z$ vanishes.
#
# The measured errors. The first-order estimate $\kappa_\phi u$ can be exceeded, but only by a
# second-order amount: the check allows $\kappa u (1 + \kappa u) + u^2$. The second-order term is all that
# is left where $\phi' = 0$, at the minima of GELU and SiLU found above, where $\kappa_\phi$ vanishes.

# %%
bf16_u = lampref.bf16.unit_roundoff
within = []
fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), layout="tight")
for ax, (name, (phi, (lo, hi))) in zip(axes.flat, FUNCTIONS.items(), strict=True):
    z = np.linspace(lo, hi, GRID)
    z = z[(z != 0) & (z != 1)]
    z_low = round_to(z, lampref.bf16).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        measured = np.abs(phi(z_low) - phi(z)) / np.abs(phi(z))
    kappa = condition_number(name, z)
    first_order = kappa * bf16_u
    within.append(np.all(measured <= first_order * (1 + first_order) + bf16_u**2))
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
check(all(within), "every measured error is within its first-order estimate, up to second order")

# %% [markdown]
# ## 2. A dot product, then GELU: the amplification matrix
#
# A pre-activation $z_i = w_i^T x$ accumulated in $d$ steps with unit roundoff $u$ has an absolute error
# $|\delta_i| \le \epsilon_i = \gamma_d\, |w_i|^T |x|$, $\gamma_d = d u / (1 - d u)$ (Higham 2002, ch. 3;
# `inner_product_error_bound`; the summation notebook measures how pessimistic this is), hence a relative
# error up to $\gamma_d\, \kappa_{\mathrm{dot},i}$ with $\kappa_{\mathrm{dot},i} = |w_i|^T |x| / |w_i^T x|$
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
DELTA = 1e-6  # failure probability of the probabilistic bound
rng = np.random.default_rng(SEED + 2)
W = (rng.standard_normal((n_out, d)) / math.sqrt(d)).astype(np.float32)
xin = rng.standard_normal(d).astype(np.float32)
low = Accumulator(fp32_mantissa(10))

z = exact_dots(W, xin)  # exact pre-activations (correctly rounded to float64)
z_low = matmul(W, xin[:, None], low)[:, 0].astype(np.float64)
delta = z_low - z
eps_det = inner_product_error_bound(W, xin, low.fmt)  # [n_out]
eps_prob = inner_product_error_bound(W, xin, low.fmt, kind="probabilistic", delta=DELTA)  # [n_out]

K = amplification_matrix(np.diag(gelu_tanh_prime(z_low)), gelu_tanh(z_low), eps_det)  # [n_out, n_out]
bound = relative_error_bound(K).componentwise  # [n_out]
kappa_dot = dot_condition_number(W, xin)  # [n_out]
diag_formula = condition_number("gelu_tanh", z_low) * eps_det / np.abs(z_low)
diag_gap = np.max(np.abs(np.diag(K) - diag_formula) / np.diag(K))
print(f"K_ii against kappa_phi(z_i) eps_i / |z_i|: largest relative difference {diag_gap:.1e}")

y_exact, y_low = gelu_tanh(z), gelu_tanh(z_low)
measured = np.abs(y_low - y_exact) / np.abs(y_exact)  # [n_out]
print(
    f"largest pre-activation error {np.abs(delta).max():.2e}; a priori eps: deterministic "
    f"{np.median(eps_det):.2f}, probabilistic {np.median(eps_prob):.2f} (medians)"
)
print(f"kappa_dot: median {np.median(kappa_dot):.1f}, largest {kappa_dot.max():.0f}")
print(
    f"relative error of GELU(z): median {np.median(measured):.1e}, largest {measured.max():.2f}; "
    f"median bound / measured = {np.median(bound / measured):.0f}"
)
worst = np.argsort(-measured)[: n_out // 20]  # the 5% largest errors
near_zero = np.abs(z[worst]) < 0.25
print(
    f"the {worst.size} largest errors: {near_zero.sum()} with |z| < 0.25, {np.sum(z[worst] < -1.5)} with "
    f"z < -1.5, {np.sum(~near_zero & (z[worst] >= -1.5))} elsewhere"
)
top10_in_top_bounds = np.isin(np.argsort(-measured)[:10], np.argsort(-bound)[: n_out // 10]).sum()
print(f"of the 10 largest errors, {top10_in_top_bounds} belong to the 10% largest bounds")
check(
    np.all(np.abs(delta) <= eps_det) and np.all(measured <= bound),
    "every pre-activation error is within eps_i and every GELU output within its first-order bound",
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
# The deterministic bound is pessimistic, by the median ratio printed above (it allows every rounding to be
# of the worst size and sign, and $\gamma_d |w_i|^T|x|$ ignores all cancellation), yet it points at the
# right outputs: the largest errors belong to the largest bounds. They occur where $z$ is close to zero,
# so that the dot product cancels ($\kappa_{\mathrm{dot}}$ is large), or very negative, where GELU's
# $\kappa_\phi$ is large.
#
# ## 3. Look-ahead: recompute the few inputs that matter
#
# Suppose every pre-activation that is not recomputed has an absolute error at most $\epsilon$. With
# $\epsilon = 1$ in `amplification_matrix`, $K_{ii} = |\phi'(\hat z_i) / \phi(\hat z_i)|$ is the relative
# error of output $i$ per unit of that error. Recomputing the set $S$ exactly leaves the bound
# $\max_{i \notin S} K_{ii}\, \epsilon$, so the smallest set that meets a target $\tau\epsilon$ is
# $\{i : K_{ii} > \tau\}$; `select_greedy` (a heuristic for general $K$) finds it. Compare with recomputing
# the same number of pre-activations chosen at random:

# %%
K_unit = amplification_matrix(np.diag(gelu_tanh_prime(z_low)), gelu_tanh(z_low), 1.0)
per_unit = np.diag(K_unit)  # [n_out]
greedy_same = np.array_equal(select_greedy(K_unit[:64, :64], 4.0), per_unit[:64] > 4.0)
print(f"select_greedy on the first 64 outputs, tau = 4, picks exactly the K_ii > 4: {greedy_same}")


def gelu_error(selected):
    """Largest relative error of GELU(z) with the selected pre-activations recomputed exactly."""
    return float(np.max(np.abs(gelu_tanh(np.where(selected, z, z_low)) - y_exact) / np.abs(y_exact)))


rng = np.random.default_rng(SEED + 3)
taus_gelu = [16.0, 8.0, 4.0, 2.0]
err_none = gelu_error(np.zeros(n_out, bool))
bounds_hold = []
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
    # the selection meets its target, and the error its first-order bound (with a second-order allowance)
    bounds_hold.append(relative_error_bound(K_unit, sel).bound <= tau and err <= tau * eps * (1 + tau * eps))
    print(f"{tau:5.0f}  {sel.sum():4d} ({sel.mean():5.1%})  {eps:.2e}  {tau * eps:.2e} {err:.2e}, {rand:.2e}")
    if tau == taus_gelu[0]:
        first = (sel, err)
print(f"nothing recomputed: {err_none:.2f}")
sel16, err16 = first
print(
    f"tau = {taus_gelu[0]:g}: the recomputed pre-activations lie within {np.abs(z_low[sel16]).max():.3f} of "
    f"zero; the largest error falls {err_none / err16:.0f}-fold"
)
check(all(bounds_hold), "at every tau, the error of GELU stays within tau * eps (to second order)")

# %% [markdown]
# A few percent of the pre-activations carry almost all of the error: at $\tau = 16$ only those closest to
# zero are recomputed, and the largest error falls by the factor printed. Random recomputation of as many
# pre-activations leaves the worst ones in place.
#
# ## 4. softmax of attention scores and the LAMP selection
#
# Attention computes scores $z_j = q^T k_j / \sqrt d$ and probabilities $s = \operatorname{softmax}(z)$.
# Since $\partial s_i / \partial z_j = s_i(1[i = j] - s_j)$, an error $\delta_j$ in the scores gives, to
# first order, $\hat s_i / s_i - 1 \approx (1 - s_i)\delta_i - \sum_{j \ne i} s_j \delta_j$. This is why
# softmax amplifies the errors of some scores and not others: the error $\delta_j$ of score $j$ reaches
# every other probability with the weight $s_j$. An error in a score with a tiny probability touches only
# its own entry; an error in a large score moves every probability. If the scores
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
print(f"the six largest hold {p_ref[order[:6]].sum():.4f} of the mass")
print(f"largest score error: 7 bits {np.abs(z_lo - z_ref).max():.3f}, ", end="")
print(f"float32 {np.abs(z_32 - z_ref).max():.1e}")

# the structured formula is the general amplification matrix of softmax's Jacobian, row sums per unit eps
jac = np.diag(p_ref) - np.outer(p_ref, p_ref)  # [n_keys, n_keys]
same = []
for sel in (np.zeros(n_keys, bool), np.isin(np.arange(n_keys), order[:3])):
    general = relative_error_bound(amplification_matrix(jac, p_ref, 1.0), sel).componentwise
    same.append(np.allclose(general, softmax_amplification(p_ref, sel), rtol=1e-12, atol=1e-15))
check(all(same), "a_i(S) equals the row sums of the general amplification matrix of softmax's Jacobian")
print(f"kappa with nothing recomputed: {softmax_kappa(p_lo):.6f}")

# %% [markdown]
# The selection for several thresholds. Each row of the strip is one $\tau$; the columns are the entries
# in order of decreasing probability (only the first 16 are shown):

# %%
taus = [2.0, 1.8, 1.5, 1.3, 1.2, 1.1, 1.05, 1.02]
selections = {tau: lamp_select(p_lo, tau) for tau in taus}
counts = [int(selections[tau].sum()) for tau in taus]
print("  tau  selected  kappa(S)  optimal rule selects  beyond the 16 largest")
for tau, sel in selections.items():
    n_opt = int(lamp_select(p_lo, tau, rule="optimal").sum())
    beyond = int(sel[order_lo[16:]].sum())
    print(f"{tau:5.2f}  {sel.sum():8d}  {softmax_kappa(p_lo, sel):8.4f}  {n_opt:20d}  {beyond:8d}")
check(
    all(softmax_kappa(p_lo, s) <= tau and s[order_lo[: s.sum()]].all() for tau, s in selections.items()),
    "every selection meets kappa(S) <= tau and consists of the largest probabilities",
)

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
    rows.append((tau, int(sel.sum()), eps, bound_tau, max_rel, tv, rand_max_rel, rand_tv))

print("  tau  sel   eps    bound   max rel  TV       random: max rel  TV")
for tau, c, eps, b, mr, tv, rmr, rtv in rows:
    print(f"{tau:5.2f}  {c:3d}  {eps:.3f}  {b:.3f}   {mr:.4f}   {tv:.1e}          {rmr:.4f}   {rtv:.1e}")

check(all(r[4] <= r[3] for r in rows), "at every tau the largest relative error is within the bound")
tv_none, tv_last = rows[0][5], rows[-1][5]
print(
    f"from tau = {rows[0][0]:g} to tau = {rows[-1][0]:g} ({rows[-1][1]} scores recomputed): total variation "
    f"down {tv_none / tv_last:.0f}-fold, largest relative error down {rows[0][4] / rows[-1][4]:.1f}-fold, "
    f"eps down {rows[0][2] / rows[-1][2]:.1f}-fold"
)
random_change = max(abs(r[7] - tv_none) / tv_none for r in rows)
print(f"random recomputation changes the total variation by at most {random_change:.1%} (median of draws)")
score_err = np.abs(z_lo - z_ref)
in_top = np.isin(np.argsort(-score_err)[:5], order[:6]).sum()
print(f"of the 5 largest score errors, {in_top} are in the 6 largest scores")
tau1, count1, tv1 = rows[1][0], rows[1][1], rows[1][5]
print(f"tau = {tau1:g}, {count1} recomputed: total variation {tv1:.2e}, {tv_none:.2e} with none")
beats = all(r[5] < r[7] for r in rows if r[1] >= 2)
print(f"with two or more recomputed, LAMP beats random recomputation at every tau: {beats}")

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
# their errors; here it falls further because the largest scores also have the largest absolute errors (see
# the count of the largest score errors among the largest scores), so $\epsilon$ itself shrinks as they
# are recomputed. The probability-weighted error falls by the factor printed once the large scores are
# recomputed, while recomputing as many scores at random hardly changes it: the scores that matter are the
# large ones, and the analysis finds them from the cheap scores alone.
#
# The analysis bounds the error; it does not promise that each recomputation lowers the measured error.
# Compare the total variation with one recomputed score and with none: errors of scores that happened to
# cancel may no longer do.
#
# ## Exercises
#
# 1. **log near 1.** Round a fine grid of z in [0.9, 1.1] to float16 and measure the relative error of
#    log(fl(z)) in float64, against $\kappa_{\log}(z)\,u$. Where does the bound reach 1 (no correct digit
#    left)? Observe that the error is that of the rounded input, amplified: log itself was evaluated in
#    float64.
# 2. **Temperature and the LAMP selection.** Divide the scores of section 4 by a temperature T in
#    (0.25, 0.5, 1, 2, 4) (T < 1 sharpens the row, T > 1 flattens it), and count the entries `lamp_select`
#    recomputes at $\tau = 1.2$ and at $\tau = 1.05$. Also try a flat row (all scores equal). Observe how
#    the count follows the number of large probabilities, not the number of keys.
# 3. **A coarser accumulator for the look-ahead.** Redo section 3 with the pre-activations accumulated with
#    7 stored mantissa bits (bfloat16's precision). For $\tau = 16$ and $\tau = 4$, how many
#    pre-activations are recomputed, and by how much does the largest error of GELU fall? Observe that the
#    selection depends only on the computed $\hat z$, not on the precision, while the error it removes
#    scales with $\epsilon$.
#
# **References.** N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002,
# ch. 3. P. Blanchard, D. J. Higham and N. J. Higham, "Accurately computing the log-sum-exp and softmax
# functions", IMA J. Numer. Anal. 41(4), 2021. Look-ahead mixed-precision inference (LAMP), arXiv:2601.21623.
