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
# # Solutions: transformers in low precision
#
# The exercises of `notebooks/06_transformers_in_low_precision.py`, answered with code and a few lines each.
# The setup repeats what the exercises need from the notebook: the model, the text window, the float32
# reference.

# %%
import math
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import lampref
from lampref import Accumulator, fp32_mantissa, get_format, round_to
from lampref.gpt2 import PrecisionPlan, Tokenizer, default_model
from lampref.lamp import LampConfig, recompute_fraction
from lampref.metrics import kl_divergence
from lampref.nn import softmax

SMALL = os.environ.get("LAMPREF_SMALL", "0") not in ("", "0")
T = 16 if SMALL else 64  # tokens in the text window

model = default_model()
prose = (Path(lampref.__file__).parent / "data" / "corpora" / "prose.txt").read_text(encoding="utf-8")
document = prose.split("\n<|endoftext|>\n")[0]
tokens = np.array(Tokenizer().encode_ordinary(document)[:T], dtype=np.int64)  # [T]
reference = model.logits(tokens)  # [T, V], float32 everywhere

# %% [markdown]
# ## Exercise 1: range or precision?
#
# The two softmaxes of the notebook, for any format: every operation's result rounded to `fmt`.


# %%
def naive(z, fmt):
    e = np.asarray(round_to(np.exp(z), fmt), dtype=np.float64)  # [n]
    with np.errstate(invalid="ignore"):  # inf / inf: NaN
        return np.asarray(round_to(e / round_to(e.sum(), fmt), fmt), dtype=np.float64)


def stable(z, fmt):
    e = np.asarray(round_to(np.exp(round_to(z - z.max(), fmt)), fmt), dtype=np.float64)  # [n]
    return np.asarray(round_to(e / round_to(e.sum(), fmt), fmt), dtype=np.float64)


z = np.array([0.0, 5.0, 12.0])
exact = softmax(z)  # float64
for name in ("fp16", "bf16"):
    fmt = get_format(name)
    err = np.abs(stable(z, fmt) - exact).max()
    print(f"{name}: e^x overflows for x > {math.log(fmt.max):.2f}; unit roundoff {fmt.unit_roundoff:.1e}")
    print(f"  naive          {naive(z, fmt)}")
    print(f"  max-subtracted {stable(z, fmt)}, max error {err:.1e}")

# %% [markdown]
# bfloat16 has float32's exponent range: $e^x$ overflows only above $\ln(3.4 \cdot 10^{38}) \approx 88.7$,
# so the naive softmax of $[0, 5, 12]$ survives (attention scores and logits rarely reach 88). It pays with
# precision: 8 significant bits instead of fp16's 11, a unit roundoff 8 times larger, and an error of the
# max-subtracted softmax an order of magnitude larger than fp16's here. Max subtraction costs nothing and
# removes the overflow in every format; bfloat16's range does not give back the lost bits.
#
# ## Exercise 2: which layer?

# %%
acc = Accumulator(fp32_mantissa(4))
per_layer = [
    kl_divergence(reference, model.logits(tokens, PrecisionPlan.only("mlp.proj", acc, layers=[layer])))
    for layer in range(model.config.n_layer)
]
every = kl_divergence(reference, model.logits(tokens, PrecisionPlan.only("mlp.proj", acc)))
for layer, v in enumerate(per_layer):
    print(f"mlp.proj in layer {layer} only: KL {v:.2e}")
print(f"sum over the layers {sum(per_layer):.2e}; all layers at once {every:.2e}")

# %% [markdown]
# The layers do not matter equally: the first layer hurts most, then the last, and the middle ones an order
# of magnitude less, so a precision plan can spend its bits where they count. The KL of all layers at once
# is close to the sum of the single-layer ones: the errors of different layers are
# small, largely independent perturbations, and to first order their effects on the logits add (the KL,
# quadratic, adds their squares plus cross terms that average out).
#
# ## Exercise 3: the price of tau

# %%
score = Accumulator(fp32_mantissa(4))
taus = (1.1, 1.2, 1.5, 1.8, 2.0)
rows = []
for tau in taus:
    logits, stats = model.logits_and_stats(
        tokens, PrecisionPlan.only("attn.score", LampConfig(score, tau=tau))
    )
    rand = model.logits(
        tokens, PrecisionPlan.only("attn.score", LampConfig(score, tau=tau, baseline="random"))
    )
    rows.append(
        (
            tau,
            recompute_fraction(stats).total,
            kl_divergence(reference, logits),
            kl_divergence(reference, rand),
        )
    )
uniform = kl_divergence(reference, model.logits(tokens, PrecisionPlan.only("attn.score", score)))
print(f"{'tau':>5}{'recomputed':>12}{'KL LAMP':>11}{'KL random':>11}   (uniform 4-bit scores: {uniform:.2e})")
for tau, frac, kl_lamp, kl_rand in rows:
    print(f"{tau:5.1f}{frac:12.1%}{kl_lamp:11.2e}{kl_rand:11.2e}")

fig, ax = plt.subplots(figsize=(6, 4), layout="tight")
fracs = [r[1] for r in rows]
ax.plot(fracs, [r[2] for r in rows], "o-", label="LAMP")
ax.plot(fracs, [r[3] for r in rows], "s--", label="random, as many scores")
for tau, frac, kl_lamp, _ in rows:
    ax.annotate(f"tau {tau}", (frac, kl_lamp), textcoords="offset points", xytext=(4, 4), fontsize=8)
ax.axhline(uniform, color="gray", lw=1, label="uniform 4-bit scores")
ax.set_yscale("log")
ax.set(xlabel="recomputed fraction of the causal scores", ylabel="KL from float32")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# $\tau = 2$ recomputes nothing (every row's amplification is at most 2 already): LAMP and the random
# baseline are then plain uniform 4-bit scores. As $\tau$ falls toward 1, LAMP recomputes more and its KL
# falls, fastest for the first scores it recomputes, the largest probabilities. The random choice, at the
# same fractions, stays near the uniform KL (on this window even above it): the scores that matter are few,
# and chance rarely picks them.
# On a 64-token window the fractions are large because the early rows have few keys; on long sequences
# LAMP's recomputed fraction is much smaller.
