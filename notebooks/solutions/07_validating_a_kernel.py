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
# # Solutions: validating a kernel against a reference
#
# The exercises of `notebooks/07_validating_a_kernel.py`, answered with code and a few lines each. The setup
# repeats what the exercises need from the notebook.

# %%
import os
import tempfile
from pathlib import Path

import numpy as np

from lampref import Accumulator, hardware, round_to
from lampref.validate import check_golden, default_candidates, explain, write_golden

SMALL = os.environ.get("LAMPREF_SMALL", "0") not in ("", "0")
M = N = 16 if SMALL else 64
K = 128 if SMALL else 256
rng = np.random.default_rng(20_260_314)


def fp16(x):
    """x rounded to fp16 (to nearest even), held in float32."""
    return np.asarray(round_to(x, "fp16"), dtype=np.float32)


# %% [markdown]
# ## Exercise 1: identify a kernel of your own
#
# The kernel: one float32 addition per product, from the last product to the first. `np.multiply.outer` of
# two float32 vectors rounds each product to float32, and `acc + ...` rounds each partial sum.


# %%
def reverse_kernel(a, b):
    """a @ b summed in float32 from k = K - 1 down to 0, products rounded to float32 (not fused)."""
    acc = np.zeros((a.shape[0], b.shape[1]), dtype=np.float32)  # [M, N]
    for k in reversed(range(a.shape[1])):
        acc = acc + np.multiply.outer(a[:, k], b[k])  # [M, N], float32
    return acc


a16, b16 = fp16(rng.standard_normal((M, K))), fp16(rng.standard_normal((K, N)))
print("fp16 inputs:   ", explain(a16, b16, reverse_kernel(a16, b16)).matches)

a32 = rng.standard_normal((M, K)).astype(np.float32)  # [M, K], float32 values, not fp16
b32 = rng.standard_normal((K, N)).astype(np.float32)  # [K, N]
found = explain(a32, b32, reverse_kernel(a32, b32))
print("float32 inputs:", found.matches, "- closest:", found.closest.name)
own = Accumulator("fp32", order="reverse", products="fp32")
found = explain(a32, b32, reverse_kernel(a32, b32), candidates=[*default_candidates("fp32"), own])
print("with the unfused reverse model added:", found.matches)

# %% [markdown]
# With fp16 inputs the default candidate "fp32 reverse" (exact products, one rounding per addition: a fused
# multiply-add) reproduces the kernel. A product of two fp16 values has at most 11 + 11 = 22 significant
# bits, so it is exact in float32: rounding it first changes nothing, and no fp16 input can tell a fused
# loop from an unfused one. Products of float32 values have up to 48 bits; rounded to float32 they differ,
# no default candidate matches (the fused reverse loop is only the closest), and the unfused reverse model
# added to the candidates matches alone.
#
# ## Exercise 2: a perturbed output against golden vectors

# %%
work = tempfile.TemporaryDirectory(prefix="golden-")
golden = Path(work.name)
write_golden(golden, Accumulator("fp32"), out_format="fp16", shape=(16, 128, 16))
bits = np.load(golden / "expected.npy")  # [16, 16], uint16 bit patterns of fp16
print(f"expected.npy: {bits.dtype} {bits.shape}; as it is: bit-exact {check_golden(golden, bits).bit_exact}")

mantissa = bits.copy()
mantissa[3, 5] ^= np.uint16(1)  # the lowest of the 10 mantissa bits
exponent = bits.copy()
exponent[7, 2] ^= np.uint16(1 << 10)  # the lowest of the 5 exponent bits
plus_one = (bits + np.uint16(1)).astype(np.uint16)  # every pattern one up
faults = {"lowest mantissa bit of [3, 5]": mantissa, "lowest exponent bit of [7, 2]": exponent}
faults["every pattern + 1"] = plus_one
for name, out in faults.items():
    r = check_golden(golden, out, worst=2)
    where = ", ".join(f"{w.index}: {w.ulps} ulps" for w in r.worst)
    print(f"{name:30} bit-exact {r.exact:3d} of {r.size}, max {r.max_ulp:4d} ulps; worst {where}")
print()
print(check_golden(golden, exponent, worst=1))

# %% [markdown]
# The lowest mantissa bit is one ulp: the report finds one element at one ulp and names its index. The
# lowest exponent bit halves or doubles the value: 2**10 = 1024 fp16 values lie between, so it is 1024 ulps
# off, at the index the report names. Adding one to every bit pattern moves every element to its neighbour
# away from zero (the patterns of negative values count up too, away from zero): no element is bit-exact and
# every one is at one ulp. The ulp distance counts the representable values between two numbers, which is
# why a one-bit fault can be one ulp or a thousand.
#
# ## Exercise 3: how many inputs does a test need?

# %%
print(f"{'M = N':>5} {'K':>4}  models that reproduce H100's output")
for size in (1, 4, 16):
    for k in (8, 32, 256):
        a, b = fp16(rng.standard_normal((size, k))), fp16(rng.standard_normal((k, size)))
        found = explain(a, b, hardware.gemm(a, b, gpu="H100"))
        print(f"{size:5d} {k:4d}  {len(found.matches):2d} of {len(found.results)}")

# %% [markdown]
# One short dot product (M = N = 1, K = 8) is reproduced by most of the 18 models: a test on it proves
# almost nothing about the accumulation. A longer one rules some out, more outputs rule out the rest: from
# 4 x 4 outputs of K = 32 on, H100's model is left alone in this draw (which models survive at the small
# sizes depends on the draw). A validation test wants many outputs of long dot products, plus inputs built
# to separate models: cancellation, small products next to a large one.
