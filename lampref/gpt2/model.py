r"""The GPT-2 forward pass in NumPy, with a precision plan for every matrix product.

The forward pass is OpenAI's and Hugging Face's GPT-2, written as small pure functions (in the style of
picoGPT) with the shape of every intermediate in a comment::

    x = wte[tokens] + wpe[positions]                  # [T] -> [T, C]
    for each transformer block:                       # pre-norm residual blocks
        x = x + attn(ln_1(x))                         # causal multi-head attention
        x = x + mlp(ln_2(x))                          # c_fc, GELU, c_proj
    logits = ln_f(x) @ wte.T                          # [T, C] -> [T, V]  (tied head)

Every matrix product is a *site* (:data:`~lampref.gpt2.plan.SITES`) run under the
:class:`~lampref.accumulate.Accumulator` that the :class:`~lampref.gpt2.plan.PrecisionPlan` gives it, or
in float32 BLAS (``None``). Everything else runs in float32, with every constant pinned to float32 so that
nothing is silently promoted to float64; under :meth:`~lampref.gpt2.plan.PrecisionPlan.reference` every
operation runs in float64.

The operations themselves (LayerNorm, GELU, the masked softmax, the score site) are those of
:mod:`lampref.nn`; this module wires them into GPT-2 with the plan passed explicitly. The score site follows
the LAMP authors: ``s = matmul(q, k^T, acc)`` (accumulated and rounded by the accumulator), then
``s / sqrt(d)`` in float32, then ``s`` rounded again to the accumulator's format and mode
(:func:`lampref.nn.attention_scores`). The causal mask sets the scores of future positions to $-\infty$
before a max-subtracted softmax. A dense (linear-layer) site adds its bias to the accumulated product and
rounds once more (:func:`lampref.linear`). Site results are float32 activations: an accumulator whose
format is wider than float32 has its results rounded to float32.

Bit-for-bit generation with a KV cache
--------------------------------------
A BLAS library does not promise that row ``t`` of ``A @ B`` has the same bits when ``A`` has a different
number of rows (OpenBLAS changes its blocking, its thread split and its kernel with the shape). So every
float32 (and float64) BLAS product here is computed in fixed-shape row blocks: the rows of a sequence are
grouped by absolute position into blocks of ``row_block`` rows (``positions [kR, (k+1)R)``), a partial
block is padded with zero rows, and row ``t`` always sits in slot ``t mod R`` of a ``[R, K] @ [K, N]``
product. In attention, the rows of row block ``c`` attend over exactly ``(c+1)R`` keys (zero keys beyond the
sequence, masked), so that the score and value products of a row do not depend on the length of the
sequence either. The cached path computes the new token's row in the same slot of the same-shaped
products, and element-wise NumPy operations do not depend on the other rows; the accumulators of
:mod:`lampref.accumulate` compute every element independently by construction. Hence the logits of
:meth:`GPT2.generate` equal those of a full recomputation bit for bit (stochastic rounding excepted: it
draws a different number of random words). The price is padding: a sequence shorter than ``row_block``
costs a full row block in the dense layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._models import ModelParams, check_token_ids
from .._validate import check_rng, is_int
from ..accumulate import ProductModel, linear
from ..errors import InputValueError, PlanError
from ..nn import (
    Product,
    causal_mask,
    causal_softmax,
    gelu,
    layer_norm,
    log_softmax,
    mask_scores,
    masked_softmax,
    site_product,
    softmax,
    store_operand,
)
from ..nn import attention_scores as _score_site
from ..special import erf, erfc
from .config import GPT2Config
from .plan import (
    After,
    AttentionProbs,
    DenseRule,
    PrecisionPlan,
    ScoreRule,
    ScoreStats,
    SiteSpec,
    resolve_plan,
)
from .weights import MLP, Attention, Block, GPT2Params, LayerNorm, Linear, load

__all__ = [
    "GPT2",
    "ROW_BLOCK",
    "ForwardContext",
    "GPT2Trace",
    "attention",
    "attention_probs",
    "attention_scores",
    "causal_softmax",
    "dense",
    "dense_site",
    "erf",
    "erfc",
    "gelu",
    "layer_norm",
    "mha",
    "mlp",
    "softmax",
    "transformer_block",
]

ROW_BLOCK = 128
"""Default number of rows of every BLAS product (see "Bit-for-bit generation" above)."""

Array = NDArray[Any]


# ------------------------------------------------------------------------------------- products
@dataclass(frozen=True)
class ForwardContext:
    """What every site function needs besides its operands.

    Attributes
    ----------
    plan : PrecisionPlan
    config : GPT2Config
    start : int
        Absolute position of the first row the function receives.
    row_block : int
        Rows per BLAS product (module notes).
    rng : numpy.random.Generator or None
        Randomness for stochastic rounding modes.
    """

    plan: PrecisionPlan
    config: GPT2Config
    start: int  # absolute position of the first row
    row_block: int
    rng: np.random.Generator | None


def _blas_rows(a: Array, b: Array, start: int, row_block: int) -> Array:
    """``a @ b`` in BLAS, the rows of ``a`` (absolute positions ``start..``) in fixed-shape row blocks.

    ``a`` is ``[..., n, K]``, ``b`` is ``[..., K, N]``. Row ``t`` is computed in slot ``t % R`` of a
    ``[..., R, K] @ [..., K, N]`` product, whatever ``n`` and ``start`` are (module notes).
    """
    n, K = a.shape[-2:]
    R = row_block
    out = np.empty((*a.shape[:-1], b.shape[-1]), dtype=np.result_type(a.dtype, b.dtype))
    pos, stop = start, start + n
    while pos < stop:
        c0 = pos - pos % R
        hi = min(c0 + R, stop)
        rows = slice(pos - start, hi - start)
        if pos == c0 and hi == c0 + R:  # a full row block: straight into its rows of the output
            np.matmul(np.ascontiguousarray(a[..., rows, :]), b, out=out[..., rows, :])
        else:
            chunk = np.zeros((*a.shape[:-2], R, K), dtype=a.dtype)
            chunk[..., pos - c0 : hi - c0, :] = a[..., rows, :]
            out[..., rows, :] = np.matmul(chunk, b)[..., pos - c0 : hi - c0, :]
        pos = hi
    return out


def _blas(ctx: ForwardContext) -> Product:
    """The BLAS product of a site without an accumulator: fixed-shape row blocks from ``ctx.start``."""
    return lambda a, b: _blas_rows(a, b, ctx.start, ctx.row_block)


def _site_matmul(a: Array, b: Array, acc: ProductModel | None, ctx: ForwardContext) -> Array:
    """A product at a site: BLAS in row blocks, or :func:`lampref.matmul` under the accumulator."""
    return site_product(a, b, acc, rng=ctx.rng, blas=_blas(ctx))


def dense(x: Array, p: Linear, acc: ProductModel | None, ctx: ForwardContext) -> Array:
    """A dense (fully connected) layer ``x @ w + b`` (``[n, in] -> [n, out]``); under an accumulator the bias
    is added to the accumulated product and the sum rounded again (:func:`lampref.linear`)."""
    return _dense_wb(x, p.w, p.b, acc, ctx)


def _dense_wb(x: Array, w: Array, b: Array, acc: ProductModel | None, ctx: ForwardContext) -> Array:
    if acc is None:
        return _blas_rows(x, w, ctx.start, ctx.row_block) + b  # [n, in] @ [in, out] + [out]
    return np.asarray(linear(x, w, b, acc, rng=ctx.rng), dtype=np.float32)


def _stored(x: Array, site: str, axis: int, ctx: ForwardContext) -> Array:
    """An operand of ``site`` as the plan stores it (:meth:`~lampref.gpt2.plan.PrecisionPlan.with_storage`),
    blocks along ``axis`` (the reduction axis); unchanged without a storage format."""
    fmt = ctx.plan.storage_of(site)
    return x if fmt is None else store_operand(x, fmt, axis)


def dense_site(
    x: Array, p: Linear, site: str, layer: int, ctx: ForwardContext, after: After | None = None
) -> tuple[Array, ScoreStats]:
    """The dense layer at ``site`` of ``layer`` under the plan: the operands in their storage format, then
    the site's accumulator, BLAS, or its :class:`~lampref.gpt2.plan.DenseRule` (which looks ahead at
    ``after``). Returns the output ``[n, out]`` and the rule's statistics (empty without a rule)."""
    xs, w = _stored(x, site, -1, ctx), _stored(p.w, site, 0, ctx)  # [n, in], [in, out]
    spec = ctx.plan.get(site, layer)
    if isinstance(spec, DenseRule):
        res = spec.dense_output(
            xs, w, p.b, site=site, layer=layer, start=ctx.start, rng=ctx.rng, blas=_blas(ctx),
            after=after or After(),
        )  # fmt: skip
        return np.asarray(res.out, dtype=np.float32), ScoreStats.from_mapping(res.stats)
    return _dense_wb(xs, w, p.b, ctx.plan.accumulator(site, layer), ctx), ScoreStats.empty()


def attention_scores(q: Array, k: Array, acc: ProductModel | None, ctx: ForwardContext) -> Array:
    """Scaled attention scores ``q k^T / sqrt(d)`` before the mask: ``[H, n, d], [H, L, d] -> [H, n, L]``.

    The score site of :func:`lampref.nn.attention_scores`, its BLAS products in row blocks.
    """
    return _score_site(q, k, acc, rng=ctx.rng, blas=_blas(ctx))  # [H, n, L]


def attention_probs(q: Array, k: Array, spec: SiteSpec, layer: int, ctx: ForwardContext) -> AttentionProbs:
    """The score step of attention for one chunk of query rows: scores, causal mask, softmax.

    ``q`` ``[H, n, d]`` holds the rows at positions ``ctx.start .. ctx.start + n - 1``, ``k`` ``[H, N, d]``
    the keys of positions ``0 .. N - 1`` (``N`` may exceed the sequence: zero keys, masked). ``spec`` is the
    ``attn.score`` entry of the plan: an Accumulator, None, or a :class:`~lampref.gpt2.plan.ScoreRule`,
    which then computes the probabilities itself. Returns scores and probabilities ``[H, n, N]``.
    """
    if isinstance(spec, ScoreRule):
        return spec.attention_probs(q, k, start=ctx.start, layer=layer, rng=ctx.rng)
    if isinstance(spec, DenseRule):  # a PrecisionPlan refuses one at attn.score
        raise PlanError(f"attn.score holds the dense rule {spec!r}; expected a ScoreRule or an accumulator")
    scores = attention_scores(q, k, spec, ctx)  # [H, n, d], [H, N, d] -> [H, n, N]
    n, N = scores.shape[-2:]
    return AttentionProbs(scores, masked_softmax(scores, causal_mask(ctx.start, n, N)), ScoreStats.empty())


def _keys_upto(k: Array, N: int) -> Array:
    """The first ``N`` keys (or values) ``[H, N, d]``, padded with zeros beyond the ones that exist."""
    if k.shape[1] >= N:
        return np.ascontiguousarray(k[:, :N])
    out = np.zeros((k.shape[0], N, k.shape[2]), dtype=k.dtype)
    out[:, : k.shape[1]] = k
    return out


RowChunks = list[tuple[int, AttentionProbs]]
"""The score step of each chunk of query rows of a layer: its first position and its AttentionProbs."""


def attention(q: Array, k: Array, v: Array, layer: int, ctx: ForwardContext) -> tuple[Array, RowChunks]:
    """Causal attention: ``[H, n, d], [H, L, d], [H, L, d] -> [H, n, d]`` (query rows at positions
    ``ctx.start ..``, keys and values of positions ``0 .. L - 1``).

    Query rows go in chunks of ``row_block`` positions, and the rows of chunk ``c`` (positions
    ``[cR, (c+1)R)``) attend over exactly ``(c+1)R`` keys, the missing ones zero (and masked): so the products
    of a row have the same shapes whatever the length of the sequence, and a cached generation step gives
    the bits of a full recomputation. Returns the output and, per chunk, its first position and its
    :class:`~lampref.gpt2.plan.AttentionProbs`.
    """
    R = ctx.row_block
    n = q.shape[1]
    score_spec = ctx.plan.get("attn.score", layer)
    value_acc = ctx.plan.accumulator("attn.value", layer)
    q, k = _stored(q, "attn.score", -1, ctx), _stored(k, "attn.score", -1, ctx)  # along d
    out = np.empty_like(q)  # [H, n, d]
    chunks: RowChunks = []
    pos, stop = ctx.start, ctx.start + n
    while pos < stop:
        hi = min(pos - pos % R + R, stop)
        N = pos - pos % R + R  # keys seen by this chunk of rows
        sub = replace(ctx, start=pos)
        rows = slice(pos - ctx.start, hi - ctx.start)
        ap = attention_probs(np.ascontiguousarray(q[:, rows]), _keys_upto(k, N), score_spec, layer, sub)
        probs = _stored(ap.probs, "attn.value", -1, sub)  # [H, r, N], blocks along N
        vals = _stored(_keys_upto(v, N), "attn.value", -2, sub)  # [H, N, d], blocks along N
        out[:, rows] = _site_matmul(probs, vals, value_acc, sub)  # [H, r, N] @ [H, N, d]
        chunks.append((pos, ap))
        pos = hi
    return out, chunks


@dataclass
class _KVCache:
    """Keys and values of the positions seen so far, per layer: ``[H, L, d]`` each."""

    k: list[Array | None]
    v: list[Array | None]


def mha(
    x: Array,
    p: Attention,
    layer: int,
    ctx: ForwardContext,
    cache: _KVCache | None = None,
    after: After | None = None,
) -> tuple[Array, RowChunks, ScoreStats]:
    """Multi-head causal self-attention, ``[n, C] -> [n, C]``; with a cache, the rows are new positions that
    also attend over the cached keys and values (which the call extends). Returns the output, the
    row chunks of :func:`attention` and the statistics of a rule at ``attn.proj`` (which looks ahead at
    ``after``)."""
    n, C = x.shape
    H = ctx.config.n_head
    d = C // H
    qkv, _ = dense_site(x, p.c_attn, "attn.qkv", layer, ctx)  # [n, C] -> [n, 3C]
    q, k, v = (
        np.ascontiguousarray(qkv[:, i * C : (i + 1) * C].reshape(n, H, d).transpose(1, 0, 2))
        for i in range(3)
    )  # [n, 3C] -> 3 x [H, n, d]
    if cache is not None:
        if cache.k[layer] is not None:
            k = np.concatenate([cache.k[layer], k], axis=1)  # [H, L, d]
            v = np.concatenate([cache.v[layer], v], axis=1)  # [H, L, d]
        cache.k[layer], cache.v[layer] = k, v
    out, chunks = attention(q, k, v, layer, ctx)  # [H, n, d]
    merged = np.ascontiguousarray(out.transpose(1, 0, 2)).reshape(n, C)  # [H, n, d] -> [n, C]
    y, stats = dense_site(merged, p.c_proj, "attn.proj", layer, ctx, after)  # [n, C]
    return y, chunks, stats


def mlp(
    x: Array, p: MLP, layer: int, ctx: ForwardContext, after: After | None = None
) -> tuple[Array, ScoreStats]:
    """The MLP: ``c_proj(gelu(c_fc(x)))``, ``[n, C] -> [n, 4C] -> [n, C]``; also returns the statistics of
    the rules at ``mlp.fc`` (which looks ahead at GELU) and ``mlp.proj`` (at ``after``)."""
    gelu_kind = ctx.config.gelu
    h, fc_stats = dense_site(x, p.c_fc, "mlp.fc", layer, ctx, After(gelu=gelu_kind))  # [n, C] -> [n, 4C]
    y, proj_stats = dense_site(gelu(h, gelu_kind), p.c_proj, "mlp.proj", layer, ctx, after)  # [n, C]
    return y, ScoreStats.merge_chunks([fc_stats, proj_stats])


def transformer_block(
    x: Array,
    p: Block,
    layer: int,
    ctx: ForwardContext,
    cache: _KVCache | None = None,
    next_ln: LayerNorm | None = None,
) -> tuple[Array, Array, RowChunks, ScoreStats]:
    """One pre-norm transformer block, ``[n, C] -> [n, C]``; returns the block output, the residual stream
    after attention, the row chunks of :func:`attention`, and the statistics of the dense sites' rules.
    ``next_ln`` is the LayerNorm the block's output enters (the next block's ``ln_1``, or ``ln_f``): what a
    rule at ``mlp.proj`` looks ahead at."""
    eps = ctx.config.layer_norm_epsilon
    look = After(residual=x, ln_g=p.ln_2.g, ln_b=p.ln_2.b, ln_eps=eps)
    a, chunks, attn_stats = mha(layer_norm(x, p.ln_1.g, p.ln_1.b, eps), p.attn, layer, ctx, cache, look)
    mid = x + a  # [n, C]
    look = After(residual=mid, ln_eps=eps)
    if next_ln is not None:
        look = look._replace(ln_g=next_ln.g, ln_b=next_ln.b)
    m, mlp_stats = mlp(layer_norm(mid, p.ln_2.g, p.ln_2.b, eps), p.mlp, layer, ctx, look)  # [n, C]
    return mid + m, mid, chunks, ScoreStats.merge_chunks([attn_stats, mlp_stats])


# ------------------------------------------------------------------------------------------ model
@dataclass(frozen=True, eq=False)
class GPT2Trace:
    r"""Intermediates of one forward pass (one sequence of ``T`` tokens), from :meth:`GPT2.trace`.

    Attributes
    ----------
    tokens : ndarray, shape (T,)
    embedding : ndarray, shape (T, C)
        ``wte[tokens] + wpe[:T]``, the input of block 0.
    scores : tuple of ndarray, shape (H, T, T), one per layer
        The scaled attention scores that enter the softmax: at and below the diagonal the scores as the
        score site computed them, above it (future positions) $-\infty$.
    probs : tuple of ndarray, shape (H, T, T), one per layer
        Attention probabilities (zero above the diagonal).
    attn_residual : tuple of ndarray, shape (T, C), one per layer
        The residual stream after the attention of each block: ``x + attn(ln_1(x))``.
    hidden : tuple of ndarray, shape (T, C), one per layer
        The residual stream after each block (the block outputs).
    final : ndarray, shape (T, C)
        ``ln_f`` of the last block's output (Hugging Face's last hidden state).
    logits : ndarray, shape (T, V)
    stats : tuple of ScoreStats, one per layer
        What a :class:`~lampref.gpt2.plan.ScoreRule` reports per layer, merged over the chunks of query
        rows (:meth:`~lampref.gpt2.plan.ScoreStats.merge_chunks`; empty otherwise).
    """

    tokens: NDArray[np.int64]
    embedding: Array
    scores: tuple[Array, ...]
    probs: tuple[Array, ...]
    attn_residual: tuple[Array, ...]
    hidden: tuple[Array, ...]
    final: Array
    logits: Array
    stats: tuple[ScoreStats, ...]


def _layer_stats(chunks: RowChunks) -> ScoreStats:
    """The statistics of a layer from those of its row chunks (totals summed, row statistics concatenated
    in position order)."""
    return ScoreStats.merge_chunks(ap.stats for _, ap in sorted(chunks, key=lambda c: c[0]))


def _assemble(chunks: RowChunks, T: int) -> tuple[Array, Array]:
    """Square ``[H, T, T]`` masked scores and probabilities of a sequence from its row chunks."""
    H = chunks[0][1].scores.shape[0]
    scores = np.full((H, T, T), -np.inf, dtype=chunks[0][1].scores.dtype)
    probs = np.zeros((H, T, T), dtype=chunks[0][1].probs.dtype)
    for pos, ap in chunks:
        r = ap.scores.shape[1]
        N = min(ap.scores.shape[2], T)
        scores[:, pos : pos + r, :N] = mask_scores(ap.scores[:, :, :N], causal_mask(pos, r, N))
        probs[:, pos : pos + r, :N] = ap.probs[:, :, :N]
    return scores, probs


@dataclass
class _Record:
    """What a forward pass keeps: the score rules' statistics of every layer, and, unless ``stats_only``,
    every intermediate of :class:`GPT2Trace`."""

    stats_only: bool
    stats: list[ScoreStats] = field(default_factory=list)
    embedding: list[Array] = field(default_factory=list)
    scores: list[Array] = field(default_factory=list)
    probs: list[Array] = field(default_factory=list)
    attn_residual: list[Array] = field(default_factory=list)
    hidden: list[Array] = field(default_factory=list)
    final: list[Array] = field(default_factory=list)

    def add_head(self, stats: ScoreStats) -> None:
        """Keep the statistics of a rule at ``lm_head`` with those of the last layer."""
        if stats and self.stats:
            self.stats[-1] = ScoreStats.merge_chunks([self.stats[-1], stats])

    def add_layer(self, chunks: RowChunks, mid: Array, x: Array, sites: ScoreStats) -> None:
        """Keep a block's results: its attention chunks, the residual after attention, its output, and the
        statistics of its dense sites' rules."""
        layer = _layer_stats(chunks)
        self.stats.append(ScoreStats.merge_chunks([layer, sites]) if sites else layer)
        if not self.stats_only:
            scores, probs = _assemble(chunks, x.shape[0])
            self.scores.append(scores)
            self.probs.append(probs)
            self.attn_residual.append(mid)
            self.hidden.append(x)


def _lm_head(x: Array, wte: Array, ctx: ForwardContext, record: _Record | None) -> Array:
    """The logits ``[n, C] @ [C, V]`` at ``lm_head``: its operands in their storage format, then its
    accumulator, BLAS, or its :class:`~lampref.gpt2.plan.DenseRule` (which looks ahead at the softmax; its
    statistics join the last layer's)."""
    x, wT = _stored(x, "lm_head", -1, ctx), _stored(wte.T, "lm_head", 0, ctx)  # [n, C], [C, V]
    spec = ctx.plan.get("lm_head")
    if not isinstance(spec, DenseRule):
        return _site_matmul(x, wT, ctx.plan.accumulator("lm_head"), ctx)
    zero = np.zeros(wT.shape[1], dtype=wT.dtype)  # [V]: the tied head has no bias
    res = spec.dense_output(
        x, wT, zero, site="lm_head", layer=ctx.config.n_layer, start=ctx.start, rng=ctx.rng, blas=_blas(ctx),
        after=After(softmax=True),
    )  # fmt: skip
    if record is not None:
        record.add_head(ScoreStats.from_mapping(res.stats))
    return np.asarray(res.out, dtype=np.float32)


class GPT2(ModelParams[GPT2Params]):
    r"""A GPT-2 model: parameters, configuration, and the forward pass under a precision plan.

    Parameters
    ----------
    params : GPT2Params
        Float32 parameters matching ``config`` (from :func:`~lampref.gpt2.weights.load` or
        :func:`~lampref.gpt2.weights.random_params`).
    config : GPT2Config
    row_block : int, default :data:`ROW_BLOCK`
        Rows per BLAS product (the module notes explain why products run in fixed-shape row blocks).

    Examples
    --------
    >>> import numpy as np
    >>> from lampref import Accumulator, fp32_mantissa
    >>> from lampref.gpt2.config import GPT2Config
    >>> from lampref.gpt2.model import GPT2
    >>> from lampref.gpt2.plan import PrecisionPlan
    >>> from lampref.gpt2.weights import random_params
    >>> cfg = GPT2Config(n_layer=2, n_head=2, n_embd=16, n_positions=32, vocab_size=64)
    >>> model = GPT2(random_params(cfg, rng=0, std=0.2), cfg)
    >>> tokens = np.array([3, 14, 15, 9, 26])
    >>> logits = model.logits(tokens)
    >>> logits.shape, logits.dtype
    ((5, 64), dtype('float32'))
    >>> low = model.logits(tokens, PrecisionPlan.only("attn.score", Accumulator(fp32_mantissa(4))))
    >>> bool(np.abs(low - logits).max() > 0)
    True
    >>> new, steps = model.generate(tokens, 3, return_logits=True)
    >>> bool((steps[0] == logits[-1]).all())
    True
    """

    def __init__(self, params: GPT2Params, config: GPT2Config, *, row_block: int = ROW_BLOCK) -> None:
        self._set_params(params, config, GPT2Params, GPT2Config)
        if not is_int(row_block) or row_block < 1:
            raise InputValueError(f"row_block={row_block!r} is not valid; expected a positive integer")
        self.config = config
        self.row_block = int(row_block)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        n_head: int | None = None,
        config: GPT2Config | None = None,
        row_block: int = ROW_BLOCK,
        allow_nonfinite: bool = False,
    ) -> GPT2:
        """A model from a checkpoint (any format :func:`~lampref.gpt2.weights.load` reads).

        ``n_head``, ``config`` and ``allow_nonfinite`` (load NaN or infinite weights instead of raising
        :class:`~lampref.errors.WeightsError`) are passed to :func:`~lampref.gpt2.weights.load`.
        """
        params, cfg = load(path, n_head=n_head, config=config, allow_nonfinite=allow_nonfinite)
        return cls(params, cfg, row_block=row_block)

    def __repr__(self) -> str:
        return f"GPT2({self.config!r}, row_block={self.row_block})"

    # ------------------------------------------------------------------ arguments
    def _tokens(
        self, tokens: ArrayLike, name: str = "tokens", ndims: Sequence[int] = (1, 2)
    ) -> NDArray[np.int64]:
        arr = np.asarray(tokens)
        V, P = self.config.vocab_size, self.config.n_positions
        check_token_ids(arr, name, ndims, P, f"the model's context is n_positions={P}")
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= V:
            bad = lo if lo < 0 else hi
            raise InputValueError(f"{name} holds the id {bad}; expected ids in 0..{V - 1} (vocab_size={V})")
        return arr.astype(np.int64)

    def _plan(self, plan: PrecisionPlan | None) -> PrecisionPlan:
        return resolve_plan(plan, self.config.n_layer)

    # ------------------------------------------------------------------ forward
    def _forward(
        self,
        tokens: NDArray[np.int64],
        plan: PrecisionPlan,
        rng: np.random.Generator | None,
        *,
        start: int = 0,
        cache: _KVCache | None = None,
        last_only: bool = False,
        record: _Record | None = None,
    ) -> Array:
        """Logits of the rows at positions ``start .. start + len(tokens) - 1`` of one sequence."""
        p = self._weights(plan)
        ctx = ForwardContext(plan, self.config, start, self.row_block, rng)
        n = tokens.shape[0]
        x = p.wte[tokens] + p.wpe[start : start + n]  # [n] -> [n, C]
        if record is not None and not record.stats_only:
            record.embedding.append(x)
        for layer, params in enumerate(p.h):
            next_ln = p.h[layer + 1].ln_1 if layer + 1 < len(p.h) else p.ln_f
            x, mid, chunks, sites = transformer_block(x, params, layer, ctx, cache, next_ln)  # [n, C]
            if record is not None:
                record.add_layer(chunks, mid, x, sites)
        x = layer_norm(x, p.ln_f.g, p.ln_f.b, self.config.layer_norm_epsilon)  # [n, C]
        if record is not None and not record.stats_only:
            record.final.append(x)
        if last_only:
            x = x[-1:]
            ctx = ForwardContext(plan, self.config, start + n - 1, self.row_block, rng)
        return _lm_head(x, p.wte, ctx, record)  # [n, C] @ [C, V] -> [n, V]

    def logits(self, tokens: ArrayLike, plan: PrecisionPlan | None = None, *, rng: Any = None) -> Array:
        """Next-token logits of every position.

        Parameters
        ----------
        tokens : array_like of int, shape (T,) or (B, T)
            Token ids, ``T <= n_positions``.
        plan : PrecisionPlan, optional
            Accumulation model of each GEMM site (default: float32 BLAS everywhere).
        rng : numpy.random.Generator or int, optional
            Randomness for stochastic rounding modes in the plan.

        Returns
        -------
        ndarray, shape (T, V) or (B, T, V)
            float32 (float64 under :meth:`~lampref.gpt2.plan.PrecisionPlan.reference`). Each sequence of a
            batch is computed exactly as it would be alone.

        Raises
        ------
        InputValueError, InputTypeError
            Token ids out of range, too many positions, an empty or non-integer ``tokens``.
        PlanError
            A plan that sets a layer the model does not have.
        """
        toks = self._tokens(tokens)
        pl = self._plan(plan)
        gen = check_rng(rng)
        if toks.ndim == 1:
            return self._forward(toks, pl, gen)
        return np.stack([self._forward(row, pl, gen) for row in toks])

    def logits_and_stats(
        self, tokens: ArrayLike, plan: PrecisionPlan | None = None, *, rng: Any = None
    ) -> tuple[Array, tuple[ScoreStats, ...]]:
        """Logits of one sequence and the per-layer statistics its score rules report (for example LAMP's
        recompute counts, :func:`lampref.lamp.recompute_fraction`), without keeping the attention matrices
        that :meth:`trace` stores.

        Returns
        -------
        logits : ndarray, shape (T, V)
            As :meth:`logits`.
        stats : tuple of ScoreStats
            One per layer (empty where the ``attn.score`` site holds no score rule).
        """
        toks = self._tokens(tokens, ndims=(1,))
        record = _Record(stats_only=True)
        logits = self._forward(toks, self._plan(plan), check_rng(rng), record=record)
        return logits, tuple(record.stats)

    def trace(self, tokens: ArrayLike, plan: PrecisionPlan | None = None, *, rng: Any = None) -> GPT2Trace:
        """The forward pass of one sequence with its intermediates (see :class:`GPT2Trace`).

        The attention matrices take ``2 * n_layer * n_head * T**2`` values: about 1.2 GB in float32 for
        the 124M model on 1024 tokens.
        """
        toks = self._tokens(tokens, ndims=(1,))
        pl = self._plan(plan)
        record = _Record(stats_only=False)
        logits = self._forward(toks, pl, check_rng(rng), record=record)
        return GPT2Trace(
            tokens=toks,
            embedding=record.embedding[0],
            scores=tuple(record.scores),
            probs=tuple(record.probs),
            attn_residual=tuple(record.attn_residual),
            hidden=tuple(record.hidden),
            final=record.final[0],
            logits=logits,
            stats=tuple(record.stats),
        )

    @overload
    def generate(
        self,
        tokens: ArrayLike,
        n: int,
        plan: PrecisionPlan | None = ...,
        *,
        rng: Any = ...,
        return_logits: Literal[False] = ...,
    ) -> NDArray[np.int64]: ...

    @overload
    def generate(
        self,
        tokens: ArrayLike,
        n: int,
        plan: PrecisionPlan | None = ...,
        *,
        rng: Any = ...,
        return_logits: Literal[True],
    ) -> tuple[NDArray[np.int64], Array]: ...

    def generate(
        self,
        tokens: ArrayLike,
        n: int,
        plan: PrecisionPlan | None = None,
        *,
        rng: Any = None,
        return_logits: bool = False,
    ) -> NDArray[np.int64] | tuple[NDArray[np.int64], Array]:
        """Greedy decoding of ``n`` tokens with a KV cache.

        The logits of each step equal, bit for bit, ``logits(sequence so far)[-1]`` computed from scratch
        (module notes). Ties go to the lowest token id.

        Parameters
        ----------
        tokens : array_like of int, shape (T,) or (B, T)
            The prompt(s).
        n : int
            Number of tokens to generate; ``T + n - 1 <= n_positions``.
        plan, rng
            As for :meth:`logits`.
        return_logits : bool, default False
            Also return the logits each new token was chosen from.

        Returns
        -------
        new : ndarray of int64, shape (n,) or (B, n)
        logits : ndarray, shape (n, V) or (B, n, V)
            Only with ``return_logits=True``.
        """
        toks = self._tokens(tokens)
        if not is_int(n) or n < 0:
            raise InputValueError(f"n={n!r} is not valid; expected a non-negative integer")
        n = int(n)
        T = toks.shape[-1]
        if n and T + n - 1 > self.config.n_positions:
            raise InputValueError(
                f"n={n}: a prompt of {T} tokens plus {n} new ones needs {T + n - 1} positions; the model's "
                f"context is n_positions={self.config.n_positions}"
            )
        pl = self._plan(plan)
        gen = check_rng(rng)
        if toks.ndim == 2:
            outs = [self._generate(row, n, pl, gen) for row in toks]
            new = np.stack([o[0] for o in outs])
            return (new, np.stack([o[1] for o in outs])) if return_logits else new
        new, steps = self._generate(toks, n, pl, gen)
        return (new, steps) if return_logits else new

    def _generate(
        self, toks: NDArray[np.int64], n: int, plan: PrecisionPlan, rng: np.random.Generator | None
    ) -> tuple[NDArray[np.int64], Array]:
        V = self.config.vocab_size
        dtype = np.float64 if plan.is_reference else np.float32
        new = np.zeros(n, dtype=np.int64)
        steps = np.zeros((n, V), dtype=dtype)
        if n == 0:
            return new, steps
        cache = _KVCache([None] * self.config.n_layer, [None] * self.config.n_layer)
        last = self._forward(toks, plan, rng, cache=cache, last_only=True)[-1]  # [V]
        T = toks.shape[0]
        for i in range(n):
            steps[i] = last
            new[i] = int(np.argmax(last))
            if i + 1 < n:
                last = self._forward(new[i : i + 1], plan, rng, start=T + i, cache=cache, last_only=True)[-1]
        return new, steps

    def loss(self, tokens: ArrayLike, plan: PrecisionPlan | None = None, *, rng: Any = None) -> float:
        r"""Mean next-token cross-entropy (nats), in float64 from the logits.

        .. math:: \mathcal L = -\frac{1}{B(T-1)} \sum_{b,t} \log \operatorname{softmax}(z_{b,t})_{x_{b,t+1}}

        Examples
        --------
        >>> import numpy as np
        >>> from lampref.gpt2.config import GPT2Config
        >>> from lampref.gpt2.model import GPT2
        >>> from lampref.gpt2.weights import random_params
        >>> cfg = GPT2Config(n_layer=1, n_head=1, n_embd=8, n_positions=8, vocab_size=16)
        >>> m = GPT2(random_params(cfg, rng=0, std=0.0, ln_spread=0.0), cfg)  # uniform predictions
        >>> bool(np.isclose(m.loss([1, 2, 3]), np.log(16))), bool(np.isclose(m.perplexity([1, 2, 3]), 16))
        (True, True)
        """
        toks = self._tokens(tokens)
        if toks.shape[-1] < 2:
            raise InputValueError("tokens needs at least 2 positions for a next-token loss")
        z = np.asarray(self.logits(toks, plan, rng=rng), dtype=np.float64)[..., :-1, :]  # [..., T-1, V]
        logp = log_softmax(z)  # [..., T-1, V]
        return float(-np.mean(np.take_along_axis(logp, toks[..., 1:, None], axis=-1)))

    def perplexity(self, tokens: ArrayLike, plan: PrecisionPlan | None = None, *, rng: Any = None) -> float:
        """``exp(loss(tokens))``."""
        return math.exp(self.loss(tokens, plan, rng=rng))
