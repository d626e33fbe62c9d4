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
# # Validating a kernel against a reference
#
# A kernel author has the output of a matrix product (from a GPU, or from their own code) and three
# questions: how far is it from a reference, which arithmetic does it actually follow, and how can a test pin
# that arithmetic down? Here the "kernels" are the bit-accurate tensor-core models of `lampref.hardware` for
# NVIDIA V100, A100, H100 and B200 (and B200's round-to-nearest variant) and AMD MI300X, all multiplying the
# same fp16 matrices into float32; the reference is the exact result rounded once.
#
# What you will learn:
#
# - to measure a kernel's output against a reference in ulps with `lampref.validate.compare`, and to read its
#   report;
# - which inputs make kernels that all meet the same error bound differ: cancellation, and many small
#   products next to a large one;
# - to read one dot product in bits (`lampref.validate.encode`): alignment to the largest product and
#   truncation, worked by hand and matched against the model;
# - to name the model behind an output with `lampref.validate.explain`, and what a match does not prove;
# - to pin a model down in golden vectors that a test checks without lampref (`write_golden`,
#   `check_golden`).
#
# Only the public API of lampref is used and nothing is downloaded. Set the environment variable
# `LAMPREF_SMALL=1` to run with small sizes in a few seconds. The tensor-core model and each parameter are
# described on the user guide page *GPU tensor cores, bit for bit*; the toolkit on *Validate your kernel*.

# %%
import json
import math
import os
import tempfile
from fractions import Fraction
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

import lampref
from lampref import Accumulator, hardware, matmul, round_to
from lampref.course import check
from lampref.metrics import ulp_distance
from lampref.validate import ExactlyRounded, check_golden, compare, decode, encode, explain, write_golden

SMALL = os.environ.get("LAMPREF_SMALL", "0") not in ("", "0")
M = N = 16 if SMALL else 64  # outputs per product: M x N dot products
K = 128 if SMALL else 256  # length of each dot product
CHECKS = 4 if SMALL else 16  # outputs per input checked against Fractions
SEED = 20_260_314
GPUS = ["V100", "A100", "H100", "B200", "B200-RN", "MI300X"]


def fp16(x):
    """x rounded to fp16 (to nearest even), held in float32: what `hardware.gemm` takes as fp16 input."""
    return np.asarray(round_to(x, "fp16"), dtype=np.float32)


print(f"lampref {lampref.__version__}, matplotlib backend {matplotlib.get_backend()}, small sizes: {SMALL}")
print(f"A ({M} x {K}) @ B ({K} x {N}), fp16 inputs, float32 results")

# %% [markdown]
# ## 1. The presets
#
# A tensor core adds `group` products and the running result (the addend) in one step: it aligns them to
# the largest exponent, keeps `extra_bits` bits below that term's significand, drops the rest, and rounds
# the sum once in the mode `rounding`. A longer $K$ goes group after group. AMD's CDNA3 (MI300X) adds the
# running result after the products' sum (`late_addend`) and rounds to nearest.

# %%
models = {gpu: hardware.preset(gpu, "fp16", "fp32") for gpu in GPUS}
print(f"{'GPU':8} {'group':>5} {'extra_bits':>10}  {'rounding':13} {'late_addend':11}")
for gpu, m in models.items():
    print(f"{gpu:8} {m.group:5d} {m.extra_bits:10d}  {m.rounding:13} {m.late_addend!s:11}")
same = models["H100"] == models["B200"].replace(gpu="H100")
print(f"\nH100 and B200 fp16 -> fp32 models equal but for the name: {same}")

# %% [markdown]
# ## 2. Three inputs and the exact reference
#
# * **random**: entries of $A$ and $B$ drawn from $N(0, 1)$, rounded to fp16;
# * **cancellation**: random, except $a_{i1} = -a_{i0} \in [2^{12}, 2^{13}]$ and $b_{1j} = b_{0j}$, so the
#   first two products cancel exactly in every output and the result is the sum of the other $K - 2$;
# * **small next to large**: $a_{i0} b_{0j} \in [1, 4]$ and every other product in $[2^{-24}, 2^{-22}]$,
#   all positive: each small product is worth at most two float32 ulps of the result, all of them together
#   many ulps.
#
# The reference is `ExactlyRounded("fp32")`: `lampref.matmul` with one block holding all $K$ products,
# summed exactly and rounded once to nearest. A few outputs are checked against `Fraction` sums: the
# reference is a float32 value at least as close to the exact sum as both its float32 neighbours.

# %%
rng = np.random.default_rng(SEED)


def random_inputs():
    return fp16(rng.standard_normal((M, K))), fp16(rng.standard_normal((K, N)))


def cancellation_inputs():
    a, b = random_inputs()
    a[:, 0] = fp16(2.0**12 * rng.uniform(1, 2, M))
    a[:, 1] = -a[:, 0]  # a_i1 b_1j = -a_i0 b_0j exactly
    b[1] = b[0]
    return a, b


def small_next_to_large_inputs():
    a = fp16(2.0**-12 * rng.uniform(1, 2, (M, K)))  # [M, K]
    b = fp16(2.0**-12 * rng.uniform(1, 2, (K, N)))  # [K, N]
    a[:, 0] = fp16(rng.uniform(1, 2, M))
    b[0] = fp16(rng.uniform(1, 2, N))
    return a, b


inputs = {
    "random": random_inputs(),
    "cancellation": cancellation_inputs(),
    "small next to large": small_next_to_large_inputs(),
}
exact = {name: ExactlyRounded("fp32")(a, b) for name, (a, b) in inputs.items()}  # [M, N] each
results = {name: {gpu: m.gemm(a, b) for gpu, m in models.items()} for name, (a, b) in inputs.items()}


def exact_sum(a, b, i, j):
    return sum((Fraction(float(a[i, k])) * Fraction(float(b[k, j])) for k in range(a.shape[1])), Fraction(0))


def is_nearest(r, s):
    """Whether the float32 r is at least as close to the Fraction s as both its float32 neighbours."""
    up, down = np.nextafter(r, np.float32(np.inf)), np.nextafter(r, np.float32(-np.inf))
    return abs(Fraction(float(r)) - s) <= min(abs(Fraction(float(n)) - s) for n in (up, down))


nearest_everywhere = all(
    is_nearest(exact[name][i, j], exact_sum(a, b, i, j))
    for name, (a, b) in inputs.items()
    for i, j in zip(rng.integers(0, M, CHECKS), rng.integers(0, N, CHECKS), strict=True)
)
check(
    nearest_everywhere,
    f"the reference is a nearest float32 to the Fraction sum on {CHECKS} outputs of each input",
)

# %% [markdown]
# ## 3. Distance from the exact result, in ulps
#
# `compare(actual, expected, "fp32")` counts each output once as bit-exact, within one ulp or worse, and
# buckets the ulp distances (0, 1, 2, 3-4, 5-8, ...). One report in full:

# %%
print("V100 on the cancellation input against the exact result:")
print(compare(results["cancellation"]["V100"], exact["cancellation"], "fp32", worst=3))

# %%
reports = {
    name: {gpu: compare(d, exact[name], "fp32") for gpu, d in res.items()} for name, res in results.items()
}
header = ["bit-exact", "<=1 ulp", "median", "max ulp", "below exact"]
print(f"{'input':20} {'GPU':8}" + "".join(f"{h:>12}" for h in header))
for name, res in results.items():
    for gpu, d in res.items():
        r = reports[name][gpu]
        dist = ulp_distance(d, exact[name], "fp32")
        below = np.mean(d.astype(np.float64) < exact[name])  # exact rounded: d below it is below the sum too
        print(
            f"{name:20} {gpu:8}{r.exact / r.size:12.1%}{(r.exact + r.within_one_ulp) / r.size:12.1%}"
            f"{np.median(dist):12.0f}{r.max_ulp:12d}{below:12.1%}"
        )
    print()

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=True, layout="tight")
width = 0.8 / len(GPUS)
for ax, (name, reps) in zip(axes, reports.items(), strict=True):
    buckets = sorted({(lo, hi) for r in reps.values() for lo, hi, _ in r.histogram})
    x = np.arange(len(buckets))
    for g, (gpu, r) in enumerate(reps.items()):
        counts = {(lo, hi): n for lo, hi, n in r.histogram}
        share = [counts.get(bk, 0) / r.size for bk in buckets]
        ax.bar(x + (g - (len(GPUS) - 1) / 2) * width, share, width=width, label=gpu)
    labels = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in buckets]
    ax.set_xticks(x, labels, rotation=90, fontsize=7)
    ax.set_xlabel("ulp distance to the exact result (fp32)")
    ax.set_title(name, fontsize=11)
axes[0].set_ylabel("share of outputs")
axes[0].legend(fontsize=8)
plt.show()

# %% [markdown]
# Read the table and the histograms together. On **random** inputs the two presets that round to nearest
# (B200-RN, MI300X) are bit-exact several times as often as the four that truncate. The largest distances
# belong to outputs near zero, whose ulp is tiny: there a few dropped bits of large products are many ulps (as
# in the worst elements of the report above). On the **cancellation** input every GPU aligns the products that
# share the first group with the large pair, and their low bits are gone before the pair cancels. On **small
# next to large** every NVIDIA preset lands below the exact sum on every output: alignment truncates each
# positive product (B200-RN too; only its final rounding is to nearest), and each extra bit kept roughly
# halves the loss (the medians of V100, A100, H100). From the second group on, MI300X sums the small products
# among themselves before they meet the large running result (the late addend), and rounds to nearest: it
# stays within a few ulps.

# %%
snl = results["small next to large"]
nvidia = ["V100", "A100", "H100", "B200", "B200-RN"]
below_all = all(np.all(snl[g] < exact["small next to large"]) for g in nvidia)  # below fl(sum): below the sum
check(below_all, f"below the exact sum on every 'small next to large' output: {', '.join(nvidia)}")

# %% [markdown]
# ## 4. Agreement between GPUs
#
# The share of outputs on which two GPUs give the same float32 bits, per input:

# %%
columns = [*GPUS, "exact"]
agreement = {}
for name, res in results.items():
    outs = {**res, "exact": exact[name]}
    agreement[name] = np.array([[np.mean(outs[p] == outs[q]) for q in columns] for p in columns])
    print(name)
    print(f"  {'':8}" + "".join(f"{c:>9}" for c in columns))
    for p, row in zip(columns, agreement[name], strict=True):
        print(f"  {p:8}" + "".join(f"{v:9.0%}" for v in row))
    print()

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), layout="constrained")
for ax, (name, table) in zip(axes, agreement.items(), strict=True):
    im = ax.imshow(table, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(columns)), columns, rotation=45, fontsize=8)
    ax.set_yticks(range(len(columns)), columns, fontsize=8)
    for (p, q), v in np.ndenumerate(table):
        ax.text(q, p, f"{v:.0%}", ha="center", va="center", fontsize=7, color="w" if v < 0.6 else "k")
    ax.set_title(name, fontsize=11)
fig.colorbar(im, ax=axes, shrink=0.8, label="share of bit-identical outputs")
plt.show()

# %% [markdown]
# H100 and B200 agree everywhere: their fp16 models are the same. They part with fp8 inputs, where H100's
# tensor cores keep only 14 bits of the aligned sum (`extra_bits = -10`) and B200's keep float32's 24 plus
# two. The same experiment with e4m3 inputs ($N(0, 1)$ rounded to OCP e4m3fn):

# %%
a8 = np.asarray(round_to(rng.standard_normal((M, K)), "e4m3"), dtype=np.float32)
b8 = np.asarray(round_to(rng.standard_normal((K, N)), "e4m3"), dtype=np.float32)
exact8 = ExactlyRounded("fp32")(a8, b8)
out8 = {}
for gpu in ("H100", "B200"):
    m = hardware.preset(gpu, "e4m3", "fp32")
    out8[gpu] = hardware.gemm(a8, b8, gpu=gpu, in_format="e4m3", out_format="fp32")
    dist = ulp_distance(out8[gpu], exact8, "fp32")
    print(
        f"{gpu}, e4m3 -> fp32 (group {m.group}, extra_bits {m.extra_bits:3d}): "
        f"{np.mean(dist == 0):.0%} bit-exact, median {np.median(dist):.0f} ulps"
    )
print(f"H100 and B200 bit-identical on {np.mean(out8['H100'] == out8['B200']):.0%} of the e4m3 outputs")

# %% [markdown]
# H100's median distance is of the order of $2^{10} = 1024$ ulps of float32: its sums keep 10 bits fewer.
# On these inputs B200 returns the exact result.

# %% [markdown]
# ## 5. One dot product in bits
#
# Four products, one group on every GPU here: a large one, $1 \times 1.5$, and three small negative ones
# near $2^{-23}$, float32's ulp at 1.5. Each input is an fp16 value; its bit pattern (`encode`) as sign,
# 5 exponent bits and 10 mantissa bits:

# %%
a1 = np.float32([[1.0, -1.125 * 2**-11, -1.125 * 2**-11, -1.375 * 2**-11]])  # [1, 4]
b1 = np.float32([[1.5], [1.125 * 2**-12], [1.25 * 2**-12], [1.375 * 2**-12]])  # [4, 1]


def fields(x, fmt, w):
    """The bit pattern of x in fmt as 'sign exponent mantissa' (w exponent bits)."""
    bits = f"{int(encode(x, fmt)):0{lampref.get_format(fmt).bits}b}"
    return f"{bits[0]} {bits[1 : 1 + w]} {bits[1 + w :]}"


for k in range(4):
    print(
        f"a{k} = {a1[0, k]!s:>14} [{fields(a1[0, k], 'fp16', 5)}]   "
        f"b{k} = {b1[k, 0]!s:>14} [{fields(b1[k, 0], 'fp16', 5)}]"
    )

# %% [markdown]
# NVIDIA's tensor cores do not renormalise products: the exponent of $a_k b_k$ is $e_{a_k} + e_{b_k}$, and
# the group is aligned to the largest, here $E = 0$. The unit kept is $u = 2^{E - 23 - \text{extra\_bits}}$;
# every magnitude is cut after that bit (`|`), the integers left are summed exactly, and the sum is
# truncated once more to float32. Done by hand with `Fraction`s, per GPU:

# %%
products = [Fraction(float(a1[0, k])) * Fraction(float(b1[k, 0])) for k in range(4)]
exponents = [math.frexp(a1[0, k])[1] + math.frexp(b1[k, 0])[1] - 2 for k in range(4)]
E = max(exponents)
LOW = -29  # the lowest bit of any product here


def digits(x, cut):
    """|x| in binary from 2**(E+1) down to 2**LOW, '.' after the 2**0 bit, '|' after the 2**cut bit."""
    out = ""
    for w in range(E + 1, LOW - 1, -1):
        out += str(int(abs(x) / Fraction(2) ** w) % 2) + ("." if w == 0 else "") + ("|" if w == cut else "")
    return out


s = sum(products)
fp32_ulp = Fraction(2) ** -23  # float32's spacing in [1, 2)
nearest = round(s / fp32_ulp) * fp32_ulp
print(
    f"exact sum = 1.5 - {float((1.5 - s) / fp32_ulp)} * 2**-23; rounded to nearest float32: 1.5 - "
    f"{float((1.5 - nearest) / fp32_ulp):.0f} * 2**-23\n"
)
by_hand = {}
for gpu in ("V100", "A100", "H100"):
    extra = models[gpu].extra_bits
    unit = E - 23 - extra
    kept = [int(p / Fraction(2) ** unit) for p in products]  # int() truncates toward zero
    value = sum(kept) * Fraction(2) ** unit
    d = int(value / fp32_ulp) * fp32_ulp  # toward zero to float32 (value is in [1, 2))
    print(f"{gpu}: extra_bits = {extra}, u = 2**{unit}")
    for k, (p, n) in enumerate(zip(products, kept, strict=True)):
        print(f"  a{k}*b{k} {'-' if p < 0 else '+'} {digits(p, unit)}   kept {n:+d} u")
    print(f"  sum of kept = {sum(kept)} u = 1.5 - {float((1.5 - value) / fp32_ulp)} * 2**-23")
    print(
        f"  to float32 toward zero: 1.5 - {float((1.5 - d) / fp32_ulp):.0f} * 2**-23 "
        f"[{fields(float(d), 'fp32', 8)}], {abs((d - nearest) / fp32_ulp)} ulp from nearest\n"
    )
    by_hand[gpu] = float(d)
same_bits = all(by_hand[gpu] == hardware.gemm(a1, b1, gpu=gpu)[0, 0] for gpu in by_hand)
check(same_bits, "the hand computation gives hardware.gemm's float32 on V100, A100 and H100")

# %% [markdown]
# Dropping the low bits of the negative products makes each of them smaller in magnitude, so the sum
# comes out too large: V100 keeps no extra bit and loses the most. The final truncation toward zero pulls
# the other way: with two extra bits H100's two errors cancel here and it returns the nearest float32.
# The hand computation matches `hardware.gemm` bit for bit on each GPU (the last line above).
#
# ## 6. Which model produced this output?
#
# Given inputs and an output of unknown origin, `explain` runs strict, blocked and exact accumulation models
# and every matrix-unit preset with float32 results whose input format holds the operands, and lists the ones
# that reproduce the output bit for bit. Here the "unknown" output is an A100's on the small-next-to-large
# input:

# %%
a, b = inputs["small next to large"]
mystery = results["small next to large"]["A100"]
found = explain(a, b, mystery)
print(found)
check(
    found.matches == ("matrix unit of A100, A2, A30, Ada, L40S (fp16 -> fp32)",),
    "A100's preset alone matches",
)

# %% [markdown]
# The A100 preset is the only match: on these inputs no other model agrees on every output. Presets
# that share one model are one row (A100, A2, A30, Ada and L40S for fp16). So B200's fp16 output is
# explained by "H100, H200, B200, RTXPRO6000": fp16 inputs cannot tell those GPUs apart. The e4m3 inputs
# of section 4 single out H100's model; B200's e4m3 output there is the exact result, which every model
# that is exact on those inputs reproduces too: a match tells which models the inputs cannot rule out.

# %%
print("B200's output, fp16 inputs:", explain(a, b, snl["B200"]).matches)
print("H100's output, e4m3 inputs:", explain(a8, b8, out8["H100"]).matches)
print("B200's output, e4m3 inputs:", len(explain(a8, b8, out8["B200"]).matches), "models reproduce it")

# %% [markdown]
# ## 7. Pinning the model down: golden vectors
#
# Once a kernel's arithmetic is known, a test should hold it there, in the kernel's own repository and
# without lampref. `write_golden` writes random inputs, the expected output under an accumulation model and
# a manifest that states the semantics field by field; every array holds bit patterns (`encode`). The
# contract here is a common one for an fp16 GEMM: fp16 inputs, float32 accumulation from the first product
# to the last, the result rounded to fp16.

# %%
golden_dir = tempfile.TemporaryDirectory(prefix="golden-")  # removed when the notebook ends
golden = Path(golden_dir.name)
manifest = json.loads(
    write_golden(golden, Accumulator("fp32"), out_format="fp16", shape=(16, 256, 16), seed=1).read_text()
)
print("files:", ", ".join(sorted(f.name for f in golden.iterdir())))
print("semantics:", manifest["semantics"])
ga = decode(np.load(golden / "a.npy"), "fp16")  # [16, 256], the inputs back from their bit patterns
gb = decode(np.load(golden / "b.npy"), "fp16")  # [256, 16]
print(f"a.npy holds {np.load(golden / 'a.npy').dtype} bit patterns, a {ga.shape} and b {gb.shape}")

# %% [markdown]
# The kernels under test: each GPU's matrix unit with its float32 result rounded to fp16 (the kernel's
# epilogue), and a kernel that accumulates in fp16 itself. `check_golden` compares each with the expected
# output, in fp16 ulps:

# %%
kernels = {
    gpu: np.asarray(round_to(hardware.gemm(ga, gb, gpu=gpu), "fp16"), dtype=np.float16) for gpu in GPUS
}
kernels["fp16 accumulator"] = matmul(ga, gb, Accumulator("fp16")).astype(np.float16)
verdicts = {name: check_golden(golden, out) for name, out in kernels.items()}
print(f"{'kernel':18}{'bit-exact':>10}{'<=1 ulp':>9}{'max ulp':>9}")
for name, r in verdicts.items():
    ok = r.exact + r.within_one_ulp
    print(f"{name:18}{r.exact:10d}{ok:9d}{r.max_ulp:9d}   of {r.size}, passes: {r.bit_exact}")
exact32 = ExactlyRounded("fp32")(ga, gb)  # [16, 16]
far32 = max(int(ulp_distance(hardware.gemm(ga, gb, gpu=g), exact32, "fp32").max()) for g in GPUS)
print(f"\nbefore the epilogue, the matrix units are at most {far32} float32 ulps from the exact sums")
print(f"(half an fp16 ulp is 2**12 = {2**12} float32 ulps)\n")
print(verdicts["fp16 accumulator"])

# %% [markdown]
# Every matrix unit is within one fp16 ulp of the golden output: even the worst of their float32 sums
# (an output near zero) is less than half an fp16 ulp from the exact sum, and rounding to fp16 hides the
# difference except near a rounding boundary. The
# fp16 accumulator fails: most of its outputs are more than one ulp off, the worst by hundreds. Where a
# matrix unit is one ulp off, which side is right? The golden output rounds twice (to float32 at every step,
# then to fp16); the exact sum rounded once to fp16 settles it:

# %%
once = ExactlyRounded("fp16")(ga, gb)  # [16, 16], the exact sums rounded once to fp16
expected = decode(np.load(golden / "expected.npy"), "fp16")
print(
    f"golden output vs the exact sum rounded once: {np.sum(expected != once)} of {once.size} outputs differ"
)
for name, out in kernels.items():
    if name != "fp16 accumulator":
        n_golden, n_once = np.sum(out != expected), np.sum(out != once)
        print(
            f"  {name:8} differs from the golden output on {n_golden}, from the exact sum in fp16 on {n_once}"
        )
check(
    far32 < 2**12 and all(verdicts[g].max_ulp <= 1 for g in GPUS),
    "every matrix unit is below half an fp16 ulp from the exact sums, within 1 fp16 ulp of the golden output",
)
check(verdicts["fp16 accumulator"].max_ulp > 10, "the fp16 accumulator is more than 10 ulps off somewhere")
check(
    not verdicts["MI300X"].bit_exact and np.array_equal(kernels["MI300X"], once),
    "MI300X fails the golden test, and its output is the exact sum rounded once to fp16",
)

# %% [markdown]
# A golden test that demands the bits of one model fails a kernel that is more accurate than the model.
# Choose the model the kernel promises (here: "float32 accumulation, in this order"), or state the
# tolerance the contract allows (one ulp) and let `check_golden`'s report show each mismatch.
#
# **References.** F. A. Khattak and M. Mikaitis, "Accurate models of NVIDIA tensor cores",
# arXiv:2512.07004, 2025. M. Fasi, N. J. Higham, M. Mikaitis and S. Pranesh, "Numerical behavior of NVIDIA
# tensor cores", PeerJ Computer Science 7:e330, 2021.

# %% [markdown]
# ## Exercises
#
# 1. **Identify a kernel of your own.** Write `reverse_kernel(a, b)` in NumPy: each output summed in float32
#    from the last product to the first, one product at a time (`acc = acc + np.multiply.outer(a[:, k], b[k])`
#    on float32 arrays). Run `explain` on it with section 2's random fp16 inputs, then with inputs drawn in
#    float32 (not rounded to fp16). Which default candidates reproduce it each time? Add the missing model
#    (`Accumulator("fp32", order="reverse", products="fp32")`) to the candidates and run again. Observe why
#    fp16 inputs cannot tell a fused from an unfused loop.
# 2. **A perturbed output against golden vectors.** Write golden vectors for `Accumulator("fp32")` with fp16
#    output (shape (16, 128, 16)), load `expected.npy` (bit patterns), and make three faulty outputs: the
#    lowest mantissa bit of one element flipped, the lowest exponent bit of one element flipped, and every
#    element's bit pattern increased by one. Check each with `check_golden`. Observe how many ulps each
#    fault is and how the report locates it.
# 3. **How many inputs does a test need?** Take H100's matrix unit as the kernel. For M = N in (1, 4, 16)
#    and K in (8, 32, 256), draw random fp16 inputs, compute its output and count how many models `explain`
#    finds that reproduce it. Observe which sizes single out H100's model and what a passing test on one
#    short dot product proves.
