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
# # Formats and rounding: solutions to the exercises
#
# The answers to the exercises of `notebooks/01_formats_and_rounding.py`, with code and short prose. The
# setup repeats the notebook's, so this file runs on its own.

# %%
import numpy as np

import lampref
from lampref import round_to
from lampref.course import check
from lampref.validate import bits_dtype, decode, encode

bf16, fp32 = lampref.get_format("bf16"), lampref.get_format("fp32")

# %% [markdown]
# ## Exercise 1: bfloat16 is the top half of float32
#
# bfloat16 has float32's 8-bit exponent field and bias (127) and keeps the first 7 of float32's 23 mantissa
# bits. A bfloat16 value is therefore a float32 value whose low 16 mantissa bits are zero, and its
# bfloat16 code is the top 16 bits of its float32 code.

# %%
values = {
    "1": 1.0,
    "-0": -0.0,
    "1/3 in bf16": float(round_to(1 / 3, bf16)),
    "largest finite": bf16.max,
    "smallest subnormal": bf16.smallest_subnormal,
}
for label, x in values.items():
    code16, code32 = int(encode(x, bf16)), int(encode(x, fp32))
    print(
        f"{label:18} {x!r:>24}   bf16 {code16:#06x}   fp32 {code32:#010x}   fp32 >> 16 = {code32 >> 16:#06x}"
    )
check(
    all(int(encode(x, bf16)) == int(encode(x, fp32)) >> 16 for x in values.values()),
    "the bf16 code of a bf16 value is the top half of its fp32 code",
)

# %% [markdown]
# Dropping the low 16 bits of a float32 code shortens the significand without looking at what is dropped:
# for a positive value it can only make it smaller in magnitude. That is rounding toward zero, as the
# float32 value of 1/3 shows (round to nearest goes up here, because the dropped bits `0xaaab` are more
# than half of `0x10000`).

# %%
third = np.float32(1 / 3)
truncated = int(encode(third, fp32)) >> 16
by_mode = {mode: int(encode(round_to(third, bf16, mode), bf16)) for mode in lampref.DETERMINISTIC_MODES}
print(f"float32 1/3: {int(encode(third, fp32)):#010x}, its top half {truncated:#06x}")
for mode, code in by_mode.items():
    print(f"    {mode:13} {code:#06x}" + ("   <- the truncated code" if code == truncated else ""))
check(by_mode["toward_zero"] == truncated, "truncating the code rounds toward zero")

# %% [markdown]
# ## Exercise 2: where the codes go
#
# Both formats have 8 bits. `e5m2` gives one more bit to the exponent, so its range reaches $57344$ at the
# cost of a mantissa bit (its unit roundoff is twice `e4m3`'s); it is IEEE-like and spends its whole top
# binade (8 codes) on two infinities and six NaNs. `e4m3` (`fn`) has no infinity and only two NaN codes, so
# its top binade holds numbers: 6 more finite codes than `e5m2`, and a largest value of $448$ instead of
# $240$ had it followed IEEE.

# %%
for name in ("e5m2", "e4m3"):
    fmt = lampref.get_format(name)
    vals = decode(np.arange(256).astype(bits_dtype(fmt)), fmt)  # [256]
    finite = np.isfinite(vals)
    sub = finite & (vals != 0) & (np.abs(vals) < fmt.smallest_normal)
    print(
        f"{name}: {finite.sum()} finite ({sub.sum()} subnormal), {np.isinf(vals).sum()} infinities, "
        f"{np.isnan(vals).sum()} NaNs; largest finite {fmt.max}, u = {fmt.unit_roundoff}"
    )
ieee_like = lampref.FloatFormat(p=4, emax=7)  # e4m3 with IEEE's reserved top binade
print(f"an IEEE-style 8-bit format with e4m3's precision would stop at {ieee_like.max}")

# %% [markdown]
# ## Exercise 3: the first integer that is not a value
#
# With $p$ significand bits every integer up to $2^p$ is a value. In the binade $[2^p, 2^{p+1})$ the spacing
# is $2^{p - p + 1} = 2$, so $2^p + 1$ is the first integer missing: it is the midpoint of its neighbours
# $2^p$ and $2^p + 2$, whose codes are adjacent, and the tie goes to the even significand, $2^p$.

# %%
for name in ("fp16", "bf16", "e4m3"):
    fmt = lampref.get_format(name)
    n = np.arange(1, 2 ** (fmt.p + 2))  # [2**(p+2) - 1] integers, more than enough
    first = int(n[round_to(n, fmt) != n][0])
    below, above = first - 1, first + 1
    codes = [int(encode(v, fmt)) for v in (below, above)]
    print(
        f"{name}: p = {fmt.p}, first missing integer {first} (2^p + 1 = {2**fmt.p + 1}) rounds to "
        f"{float(round_to(first, fmt))}; neighbours {below} = {codes[0]:#x} and {above} = {codes[1]:#x}"
    )
    check(first == 2**fmt.p + 1 and codes[1] == codes[0] + 1, f"{name}: 2^p + 1, between adjacent codes")
