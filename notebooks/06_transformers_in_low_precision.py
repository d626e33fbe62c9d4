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
# # Transformers in low precision
#
# A transformer is a chain of matrix products and softmaxes. This notebook runs one in low precision: first
# the softmax on its own, then GPT-2 (the small model embedded in lampref) with one matrix product at a time
# computed with fewer mantissa bits, then LAMP, which recomputes only the attention scores that matter.
#
# What you will learn:
#
# - why $e^x$ overflows in fp16 for $x > 11.09$, why that makes a softmax return NaN, and how subtracting
#   the row's maximum first avoids it;
# - how to measure the damage of a low-precision forward pass: the KL divergence of the next-token
#   distributions from those of float32;
# - which GEMM site of GPT-2 hurts most when it alone runs with 4 or 8 mantissa bits;
# - how LAMP picks the attention scores to recompute in one head, and how much error that removes compared
#   with uniform low precision and with a random choice of as many scores.
#
# Only the public API of lampref is used and nothing is downloaded: the model and the text ship with the
# package. Set the environment variable `LAMPREF_SMALL=1` to run with a shorter text window in a few seconds.
# Precision plans and LAMP are described on the user guide page *LAMP attention*, the softmax's error
# amplification in notebook 05.

# %%
import math
import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

import lampref
from lampref import Accumulator, fp32_mantissa, get_format, round_to
from lampref.analysis import lamp_select
from lampref.course import check
from lampref.gpt2 import SITES, PrecisionPlan, Tokenizer, default_model
from lampref.lamp import LampConfig, recompute_fraction
from lampref.metrics import kl_divergence
from lampref.nn import causal_mask, softmax

SMALL = os.environ.get("LAMPREF_SMALL", "0") not in ("", "0")
T = 16 if SMALL else 64  # tokens in the text window
MANTISSAS = (4, 8)  # explicit mantissa bits of the low-precision sites (fp16 has 10, bfloat16 7)
LAMP_M, TAU = 4, 1.5  # LAMP: score precision and target amplification
LAYER, HEAD = 0, 0  # the attention head shown in section 4
FP16 = get_format("fp16")


def fp16(x):
    """x rounded to fp16 (to nearest even), as float64 values: one fp16 operation's result."""
    return np.asarray(round_to(x, FP16), dtype=np.float64)


print(f"lampref {lampref.__version__}, matplotlib backend {matplotlib.get_backend()}, small sizes: {SMALL}")

# %% [markdown]
# ## 1. Softmax in fp16: overflow, and the max-subtraction fix
#
# The largest fp16 value is 65504, so $e^x$ rounded to fp16 is infinite as soon as $x > \ln 65504$. At the
# other end, $e^x$ is below half the smallest subnormal, $2^{-25}$, and rounds to zero, for $x < -25 \ln 2$:

# %%
over, under = math.log(FP16.max), math.log(FP16.smallest_subnormal / 2)
print(f"fp16 max = {FP16.max}, e^x overflows for x > ln(max) = {over:.4f}")
print(f"fp16 smallest subnormal = 2**-24, e^x rounds to 0 for x < ln(2**-25) = {under:.4f}")
for x in (10.0, 11.0, 11.08, 11.1, 12.0):
    print(f"  fl16(e^{x:<5}) = {fp16(np.exp(x))}")

# %% [markdown]
# A softmax computed as written, $p_j = e^{z_j} / \sum_k e^{z_k}$, with every operation rounded to fp16,
# turns one score above 11.09 into $\infty / \infty$, which is NaN (the `errstate` line only silences
# NumPy's warning about it). Subtracting the row's maximum first changes nothing in exact arithmetic
# ($e^{z_j - m} / \sum_k e^{z_k - m}$) but every exponent is now at most 0: no term exceeds 1, the sum is
# at least 1, and nothing overflows. `lampref.nn.softmax` computes it that way, in the dtype of its input.

# %%
z = np.array([0.0, 5.0, 12.0])  # one row of scores


def naive_fp16(z):
    e = fp16(np.exp(z))  # [n], e^12 -> inf
    with np.errstate(invalid="ignore"):  # inf / inf: NaN
        return fp16(e / fp16(e.sum()))


def stable_fp16(z):
    e = fp16(np.exp(fp16(z - z.max())))  # [n], every exponent <= 0
    return fp16(e / fp16(e.sum()))


exact = softmax(z)  # float64, max-subtracted
print("naive, fp16:         ", naive_fp16(z))
print("max-subtracted, fp16:", stable_fp16(z))
print("lampref.nn.softmax on float16 input:", softmax(z.astype(np.float16)))
print("float64 reference:   ", exact)
err16 = np.abs(softmax(z.astype(np.float16)) - exact).max()
check(
    np.isnan(naive_fp16(z)).any() and np.abs(stable_fp16(z) - exact).max() <= FP16.unit_roundoff * 4,
    "the naive fp16 softmax gives NaN, the max-subtracted one is within 4 units of fp16 roundoff",
)
print(
    f"lampref.nn.softmax in float16: max error {err16:.1e} (fp16's unit roundoff is {FP16.unit_roundoff:.1e})"
)

# %% [markdown]
# The same for a row of two scores $[0, x]$ as $x$ grows, on the right: the probability of the first score,
# $1 / (1 + e^x)$, on a log scale. The naive fp16 softmax loses it at $x = 11.09$ (the curve stops: NaN);
# the max-subtracted one follows float64 until the probability falls below fp16's smallest subnormal.
# On the left, $e^x$ in fp16 and the two ends of its range; after max subtraction only $x \le 0$ occurs.

# %%
xs = np.linspace(-20.0, 20.0, 801)  # [X]
rows = np.stack([np.zeros_like(xs), xs], axis=-1)  # [X, 2]
naive = np.array([naive_fp16(r)[0] for r in rows])  # [X], NaN beyond 11.09
stable = np.array([stable_fp16(r)[0] for r in rows])  # [X], 0 once below 2**-25
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4), layout="tight")
with np.errstate(divide="ignore"):  # log2(0) = -inf where e^x rounds to zero: not drawn
    ax1.plot(xs, np.log2(fp16(np.exp(xs))), label="log2 fl16(e^x)")
    ax2.plot(xs, np.log2(softmax(rows)[:, 0]), color="k", lw=4, alpha=0.25, label="float64")
    ax2.plot(xs, np.log2(naive), label="naive, fp16")
    ax2.plot(xs, np.log2(stable), ls=":", lw=2, label="max-subtracted, fp16")
ax1.axvline(over, color="C3", ls="--", label=f"inf: x > {over:.2f}")
ax1.axvline(under, color="C2", ls="--", label=f"zero: x < {under:.2f}")
ax1.axvspan(xs[0], 0, color="C0", alpha=0.08, label="x after max subtraction")
ax1.set(xlabel="x", ylabel="log2 of e^x in fp16", title="e^x in fp16")
ax1.legend(fontsize=8)
ax2.axvline(over, color="C3", ls="--", lw=1)
ax2.set(xlabel="x", ylabel="log2 of p", title="softmax of [0, x]: p of the first score")
ax2.legend(fontsize=8)
plt.show()

# %% [markdown]
# Max subtraction trades overflow, which is fatal, for underflow, which is harmless: after it, an $e^{z_j-m}$
# rounds to zero only when its probability is below $2^{-25}$ anyway.
#
# ## 2. GPT-2, its seven matrix-product sites, and how to measure their damage
#
# `lampref.gpt2.default_model()` is a 6-layer GPT-2 (3 heads, 192 channels) with GPT-2's vocabulary. Its
# forward pass has seven GEMM sites (`lampref.gpt2.SITES`); a `PrecisionPlan` says which accumulation
# model each runs under, all others in float32. The text: the first tokens of the bundled prose corpus.
# `GPT2.trace` runs the forward pass and keeps its intermediates; without a plan everything is float32.

# %%
model = default_model()
tokenizer = Tokenizer()
prose = (Path(lampref.__file__).parent / "data" / "corpora" / "prose.txt").read_text(encoding="utf-8")
document = prose.split("\n<|endoftext|>\n")[0]  # the first document of the held-out prose corpus
tokens = np.array(tokenizer.encode_ordinary(document)[:T], dtype=np.int64)  # [T]
reference = model.trace(tokens)  # float32 everywhere
print(model)
print(f"{T} tokens: {tokenizer.decode(tokens)!r}")
print("sites:", ", ".join(SITES))

# %% [markdown]
# Does section 1's overflow happen in this model? Its output softmax runs over the 50257 logits of each
# position:

# %%
logits = reference.logits.astype(np.float64)  # [T, V]
sums = np.exp(logits).sum(axis=-1)  # [T], sum of e^z over the vocabulary, in float64
shifted = fp16(np.exp(fp16(logits - logits.max(axis=-1, keepdims=True))))  # [T, V]
lost = softmax(logits)[shifted == 0].sum() / T  # probability per position that rounds to zero
print(f"largest logit {logits.max():.2f} (overflow above {over:.2f}); largest sum of e^z {sums.max():.0f}")
print(f"the naive softmax's largest sum is a factor {FP16.max / sums.max():.1f} below fp16's max")
print(f"after max subtraction, {np.mean(shifted == 0):.1%} of the e^(z-m) round to 0 in fp16,")
print(f"holding {lost:.1e} of a position's probability on average")
check(sums.max() < FP16.max, "neither e^z nor its sum over the vocabulary overflows fp16 on this text")

# %% [markdown]
# Not on this text: this small model's logits stay below the threshold, but the sum of their exponentials
# comes within a small factor of fp16's largest value, and one sharper prediction would make the naive
# softmax return NaN. After max subtraction a share of the vocabulary's exponentials underflow to zero,
# and they held almost no probability.
#
# The damage of a plan is measured on what the model outputs, the next-token distributions: the KL
# divergence $\mathrm{KL}(p_{32} \,\|\, p_{\text{plan}})$ of the softmax of the plan's logits from that of
# float32, averaged over the positions (`lampref.metrics.kl_divergence`). It is 0 for identical logits.
#
# ## 3. Per-site sensitivity
#
# One site at a time runs with `Accumulator(fp32_mantissa(m))`: every partial sum of its dot products is
# rounded to $m$ explicit mantissa bits (float32's exponent range), the six other sites stay in float32.
# Fourteen forward passes; the language-model head, a $[T, 192] \times [192, 50257]$ product, takes most
# of the time.

# %%
kl = {
    m: {
        site: kl_divergence(
            reference.logits, model.logits(tokens, PrecisionPlan.only(site, Accumulator(fp32_mantissa(m))))
        )
        for site in SITES
    }
    for m in MANTISSAS
}
print(f"{'site':12}" + "".join(f"{'m = ' + str(m):>12}" for m in MANTISSAS) + f"{'ratio':>10}")
for site in SITES:
    ratio = kl[MANTISSAS[0]][site] / kl[MANTISSAS[1]][site]
    print(f"{site:12}" + "".join(f"{kl[m][site]:12.2e}" for m in MANTISSAS) + f"{ratio:10.0f}")
worst = {m: max(SITES, key=kl[m].get) for m in MANTISSAS}
least = {m: min(SITES, key=kl[m].get) for m in MANTISSAS}
for m in MANTISSAS:
    print(f"m = {m}: hurts most {worst[m]} ({kl[m][worst[m]]:.1e}), least {least[m]} ({kl[m][least[m]]:.1e})")

# %%
fig, ax = plt.subplots(figsize=(10, 4), layout="tight")
x = np.arange(len(SITES))
for i, m in enumerate(MANTISSAS):
    ax.bar(x + (i - 0.5) * 0.4, [kl[m][s] for s in SITES], width=0.4, label=f"m = {m}")
ax.set_xticks(x, SITES)
ax.set_yscale("log")
ax.set(ylabel="KL from float32 (nats per position)", title="one site in low precision, the others in float32")
ax.legend()
plt.show()

# %% [markdown]
# The site that hurts most is the same at both precisions: the language-model head, whose output *is* the
# logits, so its rounding errors reach the distributions undiluted (no residual stream, no LayerNorm after
# it). Among the sites inside the blocks, the MLP's output projection, a sum of $4C = 768$ products, hurts
# most. Four bits fewer multiply the KL by a factor of the order of $2^{2 \cdot 4} = 256$ (the last column):
# the errors in the logits scale as $2^{-m}$, and the KL, like any smooth divergence at its minimum, is
# quadratic in small perturbations.

# %%
ratios = [kl[4][s] / kl[8][s] for s in SITES]
inner = {m: max(SITES[:-1], key=kl[m].get) for m in MANTISSAS}  # the worst site inside the blocks
check(
    worst[4] == worst[8] == "lm_head" and inner[4] == inner[8] == "mlp.proj",
    "lm_head hurts most at m = 4 and at m = 8, mlp.proj most inside the blocks",
)
check(
    all(2**5 < r < 2**11 for r in ratios), "every ratio of KL at m = 4 to m = 8 lies between 2**5 and 2**11"
)

# %% [markdown]
# ## 4. LAMP on one attention head
#
# LAMP computes the attention scores $q k^T / \sqrt d$ in low precision, takes their softmax, and picks in
# each row the smallest set of scores to recompute in float32 such that the softmax's error amplification
# $\kappa$ of the remaining scores is at most $\tau$ (`lampref.analysis.lamp_select`); then the row's
# softmax is taken again. `LampConfig` does this at the `attn.score` site. Here the scores have 4 mantissa
# bits and $\tau = 1.5$; the comparisons are uniform 4-bit scores (nothing recomputed) and a random choice
# of as many scores per row (`baseline="random"`). `GPT2.trace` returns every layer's attention
# probabilities and LAMP's statistics.

# %%
score = Accumulator(fp32_mantissa(LAMP_M))
plans = {
    "uniform": PrecisionPlan.only("attn.score", score),
    "LAMP": PrecisionPlan.only("attn.score", LampConfig(score, tau=TAU)),
    "random": PrecisionPlan.only("attn.score", LampConfig(score, tau=TAU, baseline="random")),
}
traces = {name: model.trace(tokens, plan) for name, plan in plans.items()}
fraction = recompute_fraction(traces["LAMP"].stats)
print(
    f"LAMP recomputes {fraction.total:.1%} of the causal scores; per layer:", np.round(fraction.per_layer, 3)
)

# %% [markdown]
# Which scores? In layer 0 every plan sees the same input (the embeddings), so the selection can be
# redone from the uniform plan's probabilities with `lamp_select` and the causal mask, and compared with
# LAMP's own count:

# %%
probs_low = traces["uniform"].probs[LAYER]  # [H, T, T], the softmax of the 4-bit scores
visible = causal_mask(0, T, T)  # [T, T]
selected = lamp_select(probs_low, TAU, valid=visible)  # [H, T, T]
counts = selected.sum(axis=(1, 2))  # [H]
check(
    np.array_equal(counts, traces["LAMP"].stats[LAYER]["selected"]),
    f"lamp_select picks LAMP's {counts} scores per head",
)


def row_error(trace):
    """Per row of the shown head: sum_j |p_ij - p32_ij|, the L1 distance of the attention row from float32."""
    p = trace.probs[LAYER][HEAD].astype(np.float64)  # [T, T]
    return np.abs(p - reference.probs[LAYER][HEAD]).sum(axis=-1)  # [T]


errors = {name: row_error(tr) for name, tr in traces.items()}
for name, e in errors.items():
    print(f"layer {LAYER}, head {HEAD}, {name:8}: mean L1 error of a row {e.mean():.2e}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), layout="tight")
p32 = np.where(visible, reference.probs[LAYER][HEAD], np.nan)  # [T, T], NaN above the diagonal
im = axes[0].imshow(np.log10(np.maximum(p32, 1e-8)), cmap="viridis")
fig.colorbar(im, ax=axes[0], shrink=0.8, label="log10 p")
axes[0].set(title=f"float32 attention, layer {LAYER}, head {HEAD}", xlabel="key", ylabel="query")
axes[1].imshow(np.where(visible, selected[HEAD], np.nan), cmap="coolwarm", vmin=0, vmax=1)
axes[1].set(
    title=f"recomputed by LAMP (red): {counts[HEAD]} of {visible.sum()}", xlabel="key", ylabel="query"
)
for name, e in errors.items():
    axes[2].plot(e, label=f"{name} (mean {e.mean():.1e})")
axes[2].set_yscale("log")
axes[2].set(title="error of each attention row", xlabel="query", ylabel="L1 distance from float32")
axes[2].legend(fontsize=8)
plt.show()

# %% [markdown]
# LAMP recomputes the large probabilities of each row, the keys a query attends to: in the first rows,
# which see few keys, almost all of them. Its rows are closer to float32 than those of uniform 4-bit
# scores, and than those of a random choice of as many scores, which spends its recomputations on keys
# that hardly matter (the mean errors above). At the output of the whole model (LAMP in every layer):

# %%
kl_lamp = {name: kl_divergence(reference.logits, tr.logits) for name, tr in traces.items()}
for name, v in kl_lamp.items():
    print(f"{name:8} KL from float32 {v:.2e}")
gain_uniform, gain_random = kl_lamp["uniform"] / kl_lamp["LAMP"], kl_lamp["random"] / kl_lamp["LAMP"]
print(f"LAMP divides the KL by {gain_uniform:.1f} (against uniform) and {gain_random:.1f} (against random)")
check(
    errors["LAMP"].mean() < errors["random"].mean() < errors["uniform"].mean()
    and kl_lamp["LAMP"] < min(kl_lamp["uniform"], kl_lamp["random"]),
    "LAMP's head is closer to float32 than random's, random's than uniform's, and LAMP's KL is the smallest",
)

# %% [markdown]
# LAMP's output is closer to float32 than both. The random choice, though closer to float32 than uniform
# scores in the head above, is no better at the output: on this window its KL is even larger than theirs.
#
# **References.** P. Blanchard, D. J. Higham and N. J. Higham, "Accurately computing the log-sum-exp and
# softmax functions", IMA J. Numer. Anal. 41 (2021). Look-ahead mixed-precision inference (LAMP),
# arXiv:2601.21623.
#
# ## Exercises
#
# 1. **Range or precision?** Repeat section 1's naive and max-subtracted softmax of $[0, 5, 12]$ with
#    bfloat16 instead of fp16 (`get_format("bf16")`). Where does $e^x$ overflow in bfloat16? Does the
#    naive softmax survive? Compare the errors of the max-subtracted softmax in the two formats with the
#    float64 reference, and observe what bfloat16 pays for its range.
# 2. **Which layer?** Section 3 ran a site in low precision in every layer at once. Run `mlp.proj` with
#    $m = 4$ in one layer at a time (`PrecisionPlan.only(site, acc, layers=[l])`) and compute the KL for
#    each of the six layers. Observe whether the layers matter equally, and compare their sum with the KL
#    of all layers at once.
# 3. **The price of $\tau$.** For $\tau$ in (1.1, 1.2, 1.5, 1.8, 2.0), run LAMP with 4-bit scores and its
#    random baseline, and plot the KL from float32 against the recomputed fraction
#    (`recompute_fraction(trace.stats).total`). Observe what $\tau = 2$ recomputes, and how the KL of LAMP
#    and of the random choice fall as more scores are recomputed.
