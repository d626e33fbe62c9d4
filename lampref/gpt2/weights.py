r"""GPT-2 parameters: a typed container, loaders for four checkpoint formats, and writers.

The container mirrors the checkpoint names of Hugging Face's ``GPT2Model`` (``h.3.attn.c_attn.weight`` is
``params.h[3].attn.c_attn.w``). Every array is float32 (a float64 copy, :meth:`GPT2Params.astype`, serves
the reference forward); linear weights are in Conv1D layout ``(in, out)``,
so a linear layer is ``x @ w + b``.

Formats read by :func:`load`:

* a **Hugging Face directory**: ``config.json`` and ``model.safetensors`` (or a sharded
  ``model.safetensors.index.json``). Keys may carry the ``transformer.`` prefix or not; the causal-mask
  buffers ``attn.bias`` / ``attn.masked_bias`` are ignored; ``lm_head.weight`` must be absent or equal to
  ``wte`` (GPT-2 ties them). A pickle-based ``pytorch_model.bin`` is refused (lampref never unpickles);
* a **bare** ``.safetensors`` file or a ``.npz`` archive with Hugging Face key names: the configuration is
  inferred from the shapes (``n_layer`` from the keys, ``n_embd`` and ``vocab_size`` from ``wte``,
  ``n_positions`` from ``wpe``); the head count is not visible in any shape and defaults to
  ``n_embd // 64`` (GPT-2's head width), or pass ``n_head=``;
* an **llm.c checkpoint** (``gpt2_124M.bin``, written by ``train_gpt2.py``): a header of 256 little-endian
  int32 (magic 20240326, version 3 for float32 or 5 for bfloat16, then ``maxT, V, L, NH, C, Vp``) followed
  by the parameters, each group stacked over layers, weights in ``(out, in)`` layout and the token
  embedding padded to ``Vp`` rows.

Memory: safetensors and float32 llm.c files are memory-mapped; the parameters are read-only views into the
map (llm.c weights are transposed views), so loading copies nothing. A bfloat16 file is widened to float32
once; float16 tensors (and, in a ``.npz``, byte-swapped ones) are converted exactly one by one.

Hostile files: every size a file or its configuration declares (a JSON header, an llm.c header, a
``config.json``, a ``.npy`` header, a zip directory) is checked against what the file holds before anything
is allocated from it, so loading costs time and memory in proportion to the real tensors; malformed JSON
of any shape, nesting or type raises a lampref error naming the file and the key; shards stay inside their
model folder; weights holding NaN or infinities are refused unless ``allow_nonfinite=True``.

Writing: every file is written atomically (a temporary file renamed into place), with the permissions
:func:`open` would give it (``0o666`` less the umask).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import warnings
import zipfile
import zlib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path, PurePath
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from .._models import check_copy_dtype, check_shapes
from .._validate import check_bool, check_choice, check_int, check_rng
from ..errors import (
    ConfigError,
    LamprefError,
    WeightsError,
    WeightsNotFoundError,
)
from .config import GPT2Config, json_field, parse_json, show
from .safetensors import (
    MAX_NDIM,
    atomic_output,
    bf16_bits,
    bf16_to_float32,
    load_file,
    save_file,
    shape_nbytes,
)

__all__ = [
    "LLMC_HEADER_INTS",
    "LLMC_MAGIC",
    "LLMC_VERSIONS",
    "MLP",
    "NPZ_FREE_BYTES",
    "NPZ_MAX_RATIO",
    "RANDOM_PARAMS_VERSION",
    "Attention",
    "Block",
    "Checkpoint",
    "GPT2Params",
    "LayerNorm",
    "Linear",
    "hf_shapes",
    "load",
    "load_llmc",
    "random_params",
    "save",
    "save_llmc",
    "save_npz",
]

LLMC_MAGIC = 20240326
LLMC_VERSIONS: dict[int, str] = {3: "float32", 5: "bfloat16"}
LLMC_HEADER_INTS = 256
RANDOM_PARAMS_VERSION = 1
"""Version of the draw order and distributions of :func:`random_params`; bump it on any change."""

F32 = NDArray[np.float32]
_IGNORED = re.compile(r"h\.[0-9]+\.attn\.(bias|masked_bias)")  # full matches only
_BLOCK_INDEX = re.compile(r"^h\.([0-9]+)\.")
_BLOCK_KEY = re.compile(r"h\.(0|[1-9][0-9]{0,17})\.(.+)", re.DOTALL)  # full matches only


def _param(value: Any, name: str) -> F32:
    if not isinstance(value, np.ndarray):
        raise WeightsError(f"{name}: expected a numpy float32 array, got {type(value).__name__}")
    if value.dtype not in (np.float32, np.float64):
        raise WeightsError(
            f"{name}: dtype {value.dtype}; expected float32 (convert explicitly, e.g. with "
            "astype(np.float32), if rounding the weights is intended)"
        )
    return value


class _Params:
    """Shared behaviour of the parameter dataclasses: float32 checks and (name, array) iteration."""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if not isinstance(value, (_Params, tuple)):
                _param(value, f"{type(self).__name__}.{f.name}")

    def named_arrays(self, prefix: str = "") -> Iterator[tuple[str, F32]]:
        """Yield ``(hf_name, array)`` pairs, Hugging Face names relative to ``prefix``."""
        hf = getattr(self, "_HF", {})
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            name = prefix + hf.get(f.name, f.name)
            if isinstance(value, _Params):
                yield from value.named_arrays(name + ".")
            elif isinstance(value, tuple):
                for i, item in enumerate(value):
                    yield from item.named_arrays(f"{name}.{i}.")
            else:
                yield name, value


@dataclass(frozen=True, eq=False)
class LayerNorm(_Params):
    """LayerNorm scale ``g`` (HF ``weight``) and shift ``b`` (HF ``bias``), shapes ``(C,)``."""

    g: F32
    b: F32
    _HF = {"g": "weight", "b": "bias"}  # noqa: RUF012


@dataclass(frozen=True, eq=False)
class Linear(_Params):
    """A linear layer ``x @ w + b``: ``w`` ``(in, out)`` (Conv1D layout), ``b`` ``(out,)``."""

    w: F32
    b: F32
    _HF = {"w": "weight", "b": "bias"}  # noqa: RUF012


@dataclass(frozen=True, eq=False)
class Attention(_Params):
    """Attention: ``c_attn`` ``(C, 3C)`` (query, key, value side by side) and ``c_proj`` ``(C, C)``."""

    c_attn: Linear
    c_proj: Linear


@dataclass(frozen=True, eq=False)
class MLP(_Params):
    """MLP: ``c_fc`` ``(C, 4C)`` and ``c_proj`` ``(4C, C)``."""

    c_fc: Linear
    c_proj: Linear


@dataclass(frozen=True, eq=False)
class Block(_Params):
    """One transformer block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    ln_1: LayerNorm
    attn: Attention
    ln_2: LayerNorm
    mlp: MLP


@dataclass(frozen=True, eq=False)
class GPT2Params(_Params):
    r"""All parameters of a GPT-2 model, named as in Hugging Face's ``GPT2Model``.

    Attributes
    ----------
    wte : ndarray, shape (V, C)
        Token embeddings, also the (tied) language-model head.
    wpe : ndarray, shape (P, C)
        Position embeddings.
    h : tuple of Block
        The transformer blocks.
    ln_f : LayerNorm
        The final LayerNorm.

    Examples
    --------
    >>> from lampref.gpt2.config import GPT2Config
    >>> from lampref.gpt2.weights import random_params
    >>> cfg = GPT2Config(n_layer=2, n_head=2, n_embd=8, n_positions=16, vocab_size=32)
    >>> p = random_params(cfg, rng=0)
    >>> p.h[1].attn.c_attn.w.shape, p.n_params == cfg.n_params
    ((8, 24), True)
    >>> sorted(p.state_dict())[:3]
    ['h.0.attn.c_attn.bias', 'h.0.attn.c_attn.weight', 'h.0.attn.c_proj.bias']
    """

    wte: F32
    wpe: F32
    h: tuple[Block, ...]
    ln_f: LayerNorm
    _HF = {"wte": "wte.weight", "wpe": "wpe.weight"}  # noqa: RUF012

    def __post_init__(self) -> None:
        if not isinstance(self.h, tuple) or not all(isinstance(block, Block) for block in self.h):
            raise WeightsError("GPT2Params.h must be a tuple of Block")
        super().__post_init__()
        dtypes = {a.dtype for _, a in self.named_arrays()}
        if len(dtypes) != 1:
            raise WeightsError(
                f"GPT2Params arrays mix dtypes {sorted(map(str, dtypes))}; expected float32 throughout"
            )

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of every array: float32 (as loaded), or float64 for a copy made by :meth:`astype`."""
        return self.wte.dtype

    @property
    def n_params(self) -> int:
        """Number of parameters."""
        return sum(a.size for _, a in self.named_arrays())

    def state_dict(self, prefix: str = "") -> dict[str, F32]:
        """The parameters under their Hugging Face names (Conv1D layout), each name prefixed by ``prefix``."""
        return {prefix + k: v for k, v in self.named_arrays()}

    def check(self, config: GPT2Config, source: str = "parameters") -> None:
        """Raise :class:`~lampref.errors.WeightsError` unless every shape matches ``config``."""
        check_shapes(self.named_arrays(), hf_shapes(config), (len(self.h), config.n_layer, "n_layer"), source)

    def astype(self, dtype: Any) -> GPT2Params:
        """A copy with every array in ``dtype``: float64 (exact, for the reference forward) or float32."""
        dtype = check_copy_dtype(dtype)
        arrays = dict(self.named_arrays())
        return _build(lambda name: np.asarray(arrays[name], dtype=dtype), len(self.h))

    @classmethod
    def from_state_dict(cls, state: Mapping[str, F32], n_layer: int) -> GPT2Params:
        """Build from float32 arrays under Hugging Face names (no prefix), ``n_layer`` blocks."""
        n_layer = check_int(n_layer, "n_layer", minimum=1, error=WeightsError)
        missing = _first_missing(state, n_layer)
        if missing:
            raise WeightsError(f"state dict is missing {missing}")
        return _build(lambda name: state[name], n_layer)


class _Tensor(NamedTuple):
    """One parameter tensor as both checkpoint layouts store it (a row of :data:`_LAYOUT`).

    ``hf`` is its Hugging Face name (after ``h.<i>.`` for a per-block tensor), ``shape`` its Conv1D-layout
    shape in the letters ``C`` (width), ``3C``, ``4C``, ``V`` (vocabulary) and ``P`` (positions). llm.c
    stores a per-block tensor as one group stacked over the blocks, ``(L, ...)``; a ``transposed`` weight as
    ``(out, in)``; a ``padded`` tensor with its vocabulary rows padded to ``Vp``.
    """

    hf: str
    per_block: bool
    shape: tuple[str, ...]
    transposed: bool = False
    padded: bool = False

    def dims(self, C: int, V: int, P: int) -> tuple[int, ...]:
        """The shape in Conv1D layout for width ``C``, vocabulary ``V`` and ``P`` positions."""
        sizes = {"C": C, "3C": 3 * C, "4C": 4 * C, "V": V, "P": P}
        return tuple(sizes[d] for d in self.shape)

    def names(self, n_layer: int) -> list[str]:
        """Its Hugging Face names in a model of ``n_layer`` blocks: one, or one per block."""
        return [f"h.{i}.{self.hf}" for i in range(n_layer)] if self.per_block else [self.hf]


def _layer_norm(name: str, per_block: bool) -> tuple[_Tensor, _Tensor]:
    """A LayerNorm's scale and shift, ``(C,)`` each."""
    return _Tensor(f"{name}.weight", per_block, ("C",)), _Tensor(f"{name}.bias", per_block, ("C",))


def _conv1d(name: str, n_in: str, n_out: str) -> tuple[_Tensor, _Tensor]:
    """A block's Conv1D layer: its weight ``(n_in, n_out)``, which llm.c stores transposed, and its bias."""
    return (
        _Tensor(f"{name}.weight", True, (n_in, n_out), transposed=True),
        _Tensor(f"{name}.bias", True, (n_out,)),
    )


# Every GPT-2 tensor, in llm.c's file order (its names in the comments), which is also Hugging Face's
# checkpoint order once the per-block run is repeated block by block. Reading, writing and every size
# come from this table.
_LAYOUT: tuple[_Tensor, ...] = (
    _Tensor("wte.weight", False, ("V", "C"), padded=True),  # llm.c: wte
    _Tensor("wpe.weight", False, ("P", "C")),  # llm.c: wpe
    *_layer_norm("ln_1", per_block=True),  # llm.c: ln1w, ln1b
    *_conv1d("attn.c_attn", "C", "3C"),  # llm.c: qkvw, qkvb
    *_conv1d("attn.c_proj", "C", "C"),  # llm.c: attprojw, attprojb
    *_layer_norm("ln_2", per_block=True),  # llm.c: ln2w, ln2b
    *_conv1d("mlp.c_fc", "C", "4C"),  # llm.c: fcw, fcb
    *_conv1d("mlp.c_proj", "4C", "C"),  # llm.c: fcprojw, fcprojb
    *_layer_norm("ln_f", per_block=False),  # llm.c: lnfw, lnfb
)
_BLOCK_SUFFIXES = tuple(t.hf for t in _LAYOUT if t.per_block)
_OUTER_NAMES = tuple(t.hf for t in _LAYOUT if not t.per_block)


def _n_tensors(n_layer: int) -> int:
    """How many tensors a GPT-2 of ``n_layer`` blocks has (12 per block, 4 outside)."""
    return len(_BLOCK_SUFFIXES) * n_layer + len(_OUTER_NAMES)


def _iter_shapes(C: int, V: int, P: int, n_layer: int) -> Iterator[tuple[str, tuple[int, ...]]]:
    """Yield the Hugging Face names and shapes in checkpoint order, lazily (so a caller may stop early)."""
    for per_block, run in itertools.groupby(_LAYOUT, key=lambda t: t.per_block):
        shapes = [(t.hf, t.dims(C, V, P)) for t in run]
        if not per_block:
            yield from shapes
            continue
        for i in range(n_layer):
            yield from ((f"h.{i}.{suffix}", shape) for suffix, shape in shapes)


def _first_missing(state: Collection[str], n_layer: int, most: int = 5) -> list[str]:
    """The first ``most`` parameter names (checkpoint order) absent from ``state``, found lazily, so that a
    huge ``n_layer`` costs only the names enumerated up to them."""
    names = (name for name, _ in _iter_shapes(1, 1, 1, n_layer))
    return list(itertools.islice((name for name in names if name not in state), most))


def _is_param_name(name: str, n_layer: int) -> bool:
    """Whether ``name`` is one of the parameters of a GPT-2 of ``n_layer`` blocks (no enumeration)."""
    if name in _OUTER_NAMES:
        return True
    m = _BLOCK_KEY.fullmatch(name)
    return m is not None and m.group(2) in _BLOCK_SUFFIXES and int(m.group(1)) < n_layer


def hf_shapes(config: GPT2Config) -> dict[str, tuple[int, ...]]:
    """Hugging Face parameter names (no prefix, in checkpoint order) and their Conv1D-layout shapes."""
    return dict(_iter_shapes(config.n_embd, config.vocab_size, config.n_positions, config.n_layer))


def _build(get: Any, n_layer: int) -> GPT2Params:
    def lin(name: str) -> Linear:
        return Linear(get(f"{name}.weight"), get(f"{name}.bias"))

    def ln(name: str) -> LayerNorm:
        return LayerNorm(get(f"{name}.weight"), get(f"{name}.bias"))

    blocks = tuple(
        Block(
            ln_1=ln(f"h.{i}.ln_1"),
            attn=Attention(lin(f"h.{i}.attn.c_attn"), lin(f"h.{i}.attn.c_proj")),
            ln_2=ln(f"h.{i}.ln_2"),
            mlp=MLP(lin(f"h.{i}.mlp.c_fc"), lin(f"h.{i}.mlp.c_proj")),
        )
        for i in range(n_layer)
    )
    return GPT2Params(get("wte.weight"), get("wpe.weight"), blocks, ln("ln_f"))


class Checkpoint(NamedTuple):
    """What :func:`load` returns: the parameters and the configuration (unpack as ``params, config``)."""

    params: GPT2Params
    config: GPT2Config


# ------------------------------------------------------------------------------------------- random
def random_params(
    config: GPT2Config,
    rng: np.random.Generator | int | None = 0,
    *,
    std: float = 0.02,
    ln_spread: float = 0.1,
) -> GPT2Params:
    r"""Random parameters with every tensor randomised (for tests and examples).

    Every weight and bias is $\mathcal N(0, \mathrm{std}^2)$; LayerNorm scales are
    $1 + \mathcal N(0, \mathrm{ln\_spread}^2)$ and shifts $\mathcal N(0, \mathrm{ln\_spread}^2)$,
    so that a bug in a bias, a LayerNorm shift or the GELU variant shows in the output. Draws are float32
    ``Generator.standard_normal`` in the Hugging Face checkpoint order (:func:`hf_shapes`), one call per
    tensor, scaled by float32 multiplication; this is version :data:`RANDOM_PARAMS_VERSION` of the
    generator, so a seed reproduces the same weights.

    ``rng`` is a ``numpy.random.Generator`` (drawn from), a non-negative integer seed, or None (fresh
    entropy); anything else, a negative seed or a bool included, raises :class:`~lampref.errors.ModeError`.

    Examples
    --------
    >>> from lampref.gpt2.config import GPT2Config
    >>> from lampref.gpt2.weights import random_params
    >>> p = random_params(GPT2Config(n_layer=1, n_head=1, n_embd=4, n_positions=4, vocab_size=8), rng=1)
    >>> p.ln_f.g.dtype, bool(p.ln_f.b.any())
    (dtype('float32'), True)
    """
    gen = check_rng(rng)
    gen = np.random.default_rng() if gen is None else gen
    state: dict[str, F32] = {}
    for name, shape in hf_shapes(config).items():
        z = gen.standard_normal(shape, dtype=np.float32)
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            state[name] = np.float32(1) + z * np.float32(ln_spread)
        elif re.search(r"ln_[12f]\.bias$", name):
            state[name] = z * np.float32(ln_spread)
        else:
            state[name] = z * np.float32(std)
    return _build(state.__getitem__, config.n_layer)


# ------------------------------------------------------------------------------------------- loading
# Every loader checks sizes against what the file holds before it allocates anything from them: the
# safetensors header against the file size (safetensors.read_header), the llm.c header against the file
# size, a configuration's tensor count against the tensors present (a config.json claiming 10**7 blocks
# is refused without enumerating 12 * 10**7 names), a .npz member against its declared size.
def _float_dtype_ok(dtype: np.dtype[Any]) -> bool:
    """float32 or float16 in any byte order: the dtypes widened to native float32 exactly."""
    return dtype.kind == "f" and dtype.itemsize in (2, 4)


def _check_dtype(dtype: np.dtype[Any], source: str, key: str) -> None:
    if not _float_dtype_ok(dtype):
        raise WeightsError(
            f"{source}: tensor {key!r} has dtype {dtype}; expected float32, float16 or bfloat16 (lampref "
            "does not round weights implicitly: convert the checkpoint explicitly if that is intended)"
        )


def _as_float32(arr: NDArray[Any], source: str, key: str) -> F32:
    """``arr`` as native float32, exactly: float32 as it is, float16 or another byte order converted."""
    _check_dtype(arr.dtype, source, key)
    if arr.dtype == np.float32 and arr.dtype.isnative:
        return arr
    return arr.astype(np.float32)  # exact: widening float16, or swapping bytes


def _check_finite(params: GPT2Params, source: str) -> None:
    """Raise a WeightsError naming the first tensor that holds a NaN or an infinity."""
    for name, arr in params.named_arrays():
        finite = np.isfinite(arr)
        if not finite.all():
            where = tuple(int(i) for i in np.unravel_index(int(np.argmin(finite)), arr.shape))
            count = arr.size - int(np.count_nonzero(finite))
            raise WeightsError(
                f"{source}: tensor {name!r} holds {arr[where]} at index {where} ({count} non-finite "
                "values); pass allow_nonfinite=True to load such a checkpoint anyway"
            )


def _block_count(names: Collection[str], source: str) -> int:
    """The number of blocks the ``h.<i>.`` keys name, bounded by how many blocks the keys can hold."""
    most = max(0, (len(names) - len(_OUTER_NAMES)) // len(_BLOCK_SUFFIXES))
    top = -1
    for key in names:
        m = _BLOCK_INDEX.match(key)
        if m is None:
            continue
        digits = m.group(1)
        index = int(digits) if len(digits) <= 18 else most  # (bounded: int() of a huge string is slow)
        if index >= most:
            raise WeightsError(
                f"{source}: tensor {show(key)} names block {show(digits)}, but the file's {len(names)} "
                f"tensors hold at most {most} complete blocks ({len(_BLOCK_SUFFIXES)} tensors per block)"
            )
        top = max(top, index)
    if top < 0:
        raise WeightsError(f"{source}: no transformer blocks (no keys 'h.<i>.*')")
    return top + 1


def _infer_config(tensors: Mapping[str, Any], source: str, n_head: int | None) -> GPT2Config:
    for key in ("wte.weight", "wpe.weight"):
        if key not in tensors:
            raise WeightsError(f"{source}: missing tensor {key!r} (needed to infer the configuration)")
        if len(tensors[key].shape) != 2:
            raise WeightsError(
                f"{source}: tensor {key!r} has shape {tensors[key].shape}; expected 2 dimensions"
            )
    V, C = tensors["wte.weight"].shape
    P = tensors["wpe.weight"].shape[0]
    n_layer = _block_count(tensors.keys(), source)
    if n_head is None:
        if C % 64:
            raise WeightsError(
                f"{source}: n_head cannot be inferred from the shapes and n_embd={C} is not a multiple "
                "of GPT-2's head width 64; pass n_head="
            )
        n_head = C // 64
    try:
        return GPT2Config(n_layer=n_layer, n_head=n_head, n_embd=C, n_positions=P, vocab_size=V)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _check_names(state: Mapping[str, Any], config: GPT2Config, source: str) -> None:
    """Missing or unexpected tensors, found in time proportional to the tensors present."""
    L = config.n_layer
    n_missing = _n_tensors(L) - sum(1 for k in state if _is_param_name(k, L))
    if n_missing:
        missing = _first_missing(state, L)
        more = f" and {n_missing - 5} more" if n_missing > 5 else ""
        raise WeightsError(f"{source}: missing tensor(s) {missing}{more} (for {config})")
    extra = sorted(k for k in state if not _is_param_name(k, L))
    if extra:
        more = f" and {len(extra) - 5} more" if len(extra) > 5 else ""
        shown = [show(k) for k in extra[:5]]
        raise WeightsError(f"{source}: unexpected tensor(s) {shown}{more} (for {config})")


def _from_hf_tensors(
    tensors: Mapping[str, Any],
    config: GPT2Config | None,
    source: str,
    n_head: int | None = None,
    *,
    allow_nonfinite: bool = False,
) -> Checkpoint:
    """Normalise Hugging Face keys, check them against the configuration, and build the parameters.

    ``tensors`` maps names to arrays, or to :class:`_NpyMember` (read only once every name, shape and dtype
    has been checked).
    """
    state: dict[str, Any] = {}
    for key, arr in tensors.items():
        name = key[len("transformer.") :] if key.startswith("transformer.") else key
        if name in state:
            raise WeightsError(
                f"{source}: tensor {show(name)} appears both with and without the 'transformer.' prefix"
            )
        if not _IGNORED.fullmatch(name):
            state[name] = arr
    lm_head = state.pop("lm_head.weight", None)
    if config is None:
        config = _infer_config(state, source, n_head)
    _check_names(state, config, source)
    expected = hf_shapes(config)  # as many entries as the file holds tensors (checked just above)
    for key, shape in expected.items():
        if state[key].shape != shape:
            raise WeightsError(f"{source}: tensor {key!r} has shape {state[key].shape}; expected {shape}")
        _check_dtype(state[key].dtype, source, key)
    if lm_head is not None:
        _check_dtype(lm_head.dtype, source, "lm_head.weight")
    _reserve([state[k] for k in expected] + ([] if lm_head is None else [lm_head]))
    converted = {k: _as_float32(_read(state[k]), source, k) for k in expected}
    if lm_head is not None:
        lm = _as_float32(_read(lm_head), source, "lm_head.weight")
        if lm.shape != expected["wte.weight"] or not np.array_equal(lm, converted["wte.weight"]):
            raise WeightsError(
                f"{source}: lm_head.weight differs from wte.weight; lampref models GPT-2's tied head only"
            )
    params = _build(converted.__getitem__, config.n_layer)
    if not allow_nonfinite:
        _check_finite(params, source)
    return Checkpoint(params, config)


def _check_n_head(config: GPT2Config, n_head: int | None, source: str) -> None:
    if n_head is not None and n_head != config.n_head:
        raise ConfigError(f"{source}: n_head={n_head} contradicts the checkpoint's n_head={config.n_head}")


def _shard_path(folder: Path, index: Path, key: str, shard: object) -> Path:
    """The file of one shard: a relative path that stays inside the model folder."""
    name: str = json_field(f"{index}: weight_map", show(key), shard, "string", WeightsError)
    if not name or "\0" in name or PurePath(name).anchor or ".." in PurePath(name).parts:
        raise WeightsError(
            f"{index}: weight_map[{show(key)}]={show(name)} is not valid; expected a file name relative to "
            f"the model folder {folder}, inside it"
        )
    return folder / name


def _load_sharded(path: Path, index: Path, config: GPT2Config, allow_nonfinite: bool) -> Checkpoint:
    data = parse_json(index.read_bytes(), str(index), "the shard index", WeightsError)
    if not isinstance(data, dict) or "weight_map" not in data:
        raise WeightsError(f"{index}: expected a JSON object with a 'weight_map' object")
    weight_map = json_field(str(index), "weight_map", data["weight_map"], "object", WeightsError)
    shards = {key: _shard_path(path, index, key, shard) for key, shard in weight_map.items()}
    tensors: dict[str, NDArray[Any]] = {}
    for shard_path in sorted(set(shards.values())):
        part = load_file(shard_path)
        for key, arr in part.items():
            if shards.get(key) != shard_path:
                raise WeightsError(
                    f"{shard_path}: tensor {show(key)} is not mapped to this shard in {index.name}"
                )
            tensors[key] = arr
    absent = sorted(set(weight_map) - set(tensors))
    if absent:
        raise WeightsError(
            f"{index}: tensor(s) {[show(k) for k in absent[:5]]} are mapped but absent from their shard"
        )
    return _from_hf_tensors(tensors, config, str(index), allow_nonfinite=allow_nonfinite)


def _load_hf_dir(
    path: Path, config: GPT2Config | None, n_head: int | None, allow_nonfinite: bool
) -> Checkpoint:
    cfg_path = path / "config.json"
    if config is None:
        if not cfg_path.is_file():
            raise WeightsNotFoundError(f"{path}: no config.json in this Hugging Face model directory")
        config = GPT2Config.from_hf(cfg_path)
    _check_n_head(config, n_head, str(path))
    single = path / "model.safetensors"
    index = path / "model.safetensors.index.json"
    if single.is_file():
        return _from_hf_tensors(load_file(single), config, str(single), allow_nonfinite=allow_nonfinite)
    if index.is_file():
        return _load_sharded(path, index, config, allow_nonfinite)
    if any((path / n).exists() for n in ("pytorch_model.bin", "model.bin")):
        raise WeightsError(
            f"{path}: only a pickle-based checkpoint (pytorch_model.bin) is present; lampref never "
            "unpickles. Convert it to model.safetensors (e.g. save_pretrained(..., safe_serialization=True))"
        )
    raise WeightsNotFoundError(
        f"{path}: no model.safetensors (or model.safetensors.index.json) in this directory"
    )


NPZ_MAX_RATIO = 100
"""A ``.npz`` archive may decompress to at most this many times its size (or :data:`NPZ_FREE_BYTES`)."""
NPZ_FREE_BYTES = 2**26
"""Bytes any ``.npz`` archive may decompress to, whatever its size (64 MiB)."""
_NPY_HEADER_MAX = 10_000  # numpy's own bound on a .npy header
_CHUNK = 2**20


class _NpyMember:
    """One ``<name>.npy`` member of a ``.npz`` archive: its header is read on demand (a few bytes
    decompressed), its data only by :meth:`read`, after the declared sizes have been checked."""

    def __init__(self, archive: _NpzArchive, key: str, info: zipfile.ZipInfo) -> None:
        self.archive, self.key, self.info = archive, key, info
        self._header: tuple[tuple[int, ...], bool, np.dtype[Any], int] | None = None

    def _fail(self, message: str) -> WeightsError:
        return WeightsError(f"{self.archive.path}: member {show(self.info.filename)}: {message}")

    @property
    def header(self) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
        """``(shape, fortran_order, dtype, data_offset)``, each checked against the member's size."""
        if self._header is None:
            self._header = self._read_header()
        return self._header

    def _read_header(self) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
        fmt = np.lib.format
        try:
            with self.archive.zf.open(self.info) as f, warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # a header written by Python 2, still parsed
                version = fmt.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise self._fail(f".npy format version {version}; expected 1.0 or 2.0")
                read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                shape, fortran, dtype = read(f, max_header_size=_NPY_HEADER_MAX)
                offset = f.tell()
        except LamprefError:
            raise
        except (zipfile.BadZipFile, zlib.error, OSError, NotImplementedError) as exc:
            raise self._fail(f"cannot be read ({exc})") from None
        except Exception as exc:  # numpy parses the header text with ast and tokenize: any of their errors
            raise self._fail(f"not a valid .npy header ({type(exc).__name__}: {show(str(exc))})") from None
        if dtype.hasobject:
            raise self._fail(f"dtype {dtype} holds Python objects, which would need pickle (never used)")
        nbytes = shape_nbytes(shape, dtype.itemsize)
        if nbytes is None:
            raise self._fail(f"shape={show(shape)}; expected at most {MAX_NDIM} non-negative integers")
        if offset + nbytes != self.info.file_size:
            raise self._fail(
                f"the zip directory declares {self.info.file_size} bytes, but the .npy header ({offset} "
                f"bytes, shape {show(shape)}, dtype {dtype}) means {offset + nbytes}"
            )
        return tuple(shape), bool(fortran), dtype, offset

    @property
    def shape(self) -> tuple[int, ...]:
        return self.header[0]

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.header[2]

    def read(self) -> NDArray[Any]:
        """The array, decompressed in chunks into one buffer of exactly the declared size."""
        shape, fortran, dtype, offset = self.header
        buf = np.empty(self.info.file_size - offset, dtype=np.uint8)
        try:
            with self.archive.zf.open(self.info) as f:
                f.seek(offset)
                pos = 0
                while pos < buf.size:
                    chunk = f.read(min(_CHUNK, buf.size - pos))
                    if not chunk:
                        raise self._fail(f"ends after {pos} of its {buf.size} data bytes")
                    buf[pos : pos + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
                    pos += len(chunk)
                f.read(1)  # at the end of the member: zipfile checks the CRC
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
            raise self._fail(f"cannot be read ({exc})") from None
        arr = buf.view(dtype)
        return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


class _NpzArchive:
    """The ``.npy`` members of a ``.npz`` (zip) archive, listed from its central directory alone."""

    def __init__(self, path: Path, zf: zipfile.ZipFile) -> None:
        self.path, self.zf = path, zf
        self.size = path.stat().st_size
        self.budget = max(NPZ_FREE_BYTES, NPZ_MAX_RATIO * self.size)
        self.members: dict[str, _NpyMember] = {}
        for info in zf.infolist():
            name = info.filename
            if not name.endswith(".npy"):
                raise WeightsError(f"{path}: member {show(name)} is not a '<name>.npy' array")
            if name[:-4] in self.members:
                raise WeightsError(f"{path}: member {show(name)} appears twice")
            if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
                raise WeightsError(
                    f"{path}: member {show(name)} is stored uncompressed but declares {info.file_size} "
                    f"bytes for {info.compress_size} stored bytes"
                )
            self.members[name[:-4]] = _NpyMember(self, name[:-4], info)

    def reserve(self, members: list[_NpyMember]) -> None:
        """Refuse, before decompressing anything, members that would inflate far beyond the archive."""
        total = sum(m.info.file_size for m in members)
        if total > self.budget:
            big = max(members, key=lambda m: m.info.file_size).info
            raise WeightsError(
                f"{self.path}: the members needed decompress to {total} bytes ({show(big.filename)}: "
                f"{big.file_size}), more than {NPZ_MAX_RATIO} times the archive's {self.size} bytes "
                f"and more than {NPZ_FREE_BYTES}; store the weights uncompressed (numpy.savez) to load them"
            )


def _reserve(tensors: list[Any]) -> None:
    members = [t for t in tensors if isinstance(t, _NpyMember)]
    if members:
        members[0].archive.reserve(members)


def _read(tensor: Any) -> NDArray[Any]:
    return tensor.read() if isinstance(tensor, _NpyMember) else np.asarray(tensor)


def _load_npz(path: Path, config: GPT2Config | None, n_head: int | None, allow_nonfinite: bool) -> Checkpoint:
    if config is not None:
        _check_n_head(config, n_head, str(path))
    try:
        with path.open("rb") as fh, zipfile.ZipFile(fh) as zf:
            members = _NpzArchive(path, zf).members
            return _from_hf_tensors(members, config, str(path), n_head, allow_nonfinite=allow_nonfinite)
    except LamprefError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise WeightsError(f"{path}: not a valid .npz archive ({exc})") from None
    except OSError as exc:
        raise WeightsError(f"{path}: cannot be read ({exc})") from None


def _llmc_groups(config: GPT2Config, Vp: int) -> list[tuple[_Tensor, tuple[int, ...]]]:
    """llm.c's parameter groups in file order, each with its stored shape."""
    C, L = config.n_embd, config.n_layer
    groups = []
    for t in _LAYOUT:
        shape = t.dims(C, Vp, config.n_positions)
        shape = shape[::-1] if t.transposed else shape
        groups.append((t, (L, *shape) if t.per_block else shape))
    return groups


def load_llmc(path: str | Path, *, allow_nonfinite: bool = False) -> Checkpoint:
    r"""Read an llm.c checkpoint (``gpt2_124M.bin``, float32 version 3 or bfloat16 version 5).

    The header is 256 little-endian int32: ``[20240326, version, maxT, V, L, NH, C, Vp, 0, ...]``; then the
    16 parameter groups of :func:`save_llmc`. Weights are stored ``(out, in)`` and returned as transposed
    views (Conv1D layout), the token embedding without its padding rows ``V..Vp``. A float32 file is
    memory-mapped (no copy); a bfloat16 file is widened to float32 once. The header's sizes are checked
    against the file's size before anything is read or allocated from them.

    :func:`load` reads a ``.bin`` path with this function, then checks its ``n_head=`` and ``config=``
    against the header; call ``load_llmc`` directly for an llm.c file named otherwise, or to state that the
    file must be an llm.c checkpoint.

    Parameters
    ----------
    path : str or Path
        The checkpoint.
    allow_nonfinite : bool, default False
        Load parameters that hold NaN or infinities (for studying such files) instead of raising.

    Raises
    ------
    WeightsError
        On a bad magic number or version, a nonsensical header, a file whose size does not match the
        header (truncated or with trailing bytes), or (unless ``allow_nonfinite``) a NaN or an infinity
        in a parameter, naming the tensor.
    InputTypeError
        If ``allow_nonfinite`` is not a bool.
    """
    check_bool(allow_nonfinite, "allow_nonfinite")
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"{path}: no such file (expected an llm.c checkpoint)")
    size = path.stat().st_size
    version, config, Vp = _llmc_header(path, size)
    count = sum(math.prod(shape) for _, shape in _llmc_groups(config, Vp))
    expected = LLMC_HEADER_INTS * 4 + count * (4 if version == 3 else 2)
    if size != expected:
        what = "truncated" if size < expected else f"{size - expected} trailing bytes"
        raise WeightsError(
            f"{path}: {size} bytes, {what}; the header (version {version}, maxT={config.n_positions}, "
            f"V={config.vocab_size}, L={config.n_layer}, C={config.n_embd}, Vp={Vp}) needs {expected}"
        )
    state = _llmc_state(_llmc_data(path, version, count), config, Vp)
    params = _build(state.__getitem__, config.n_layer)
    if not allow_nonfinite:
        _check_finite(params, str(path))
    return Checkpoint(params, config)


def _llmc_header(path: Path, size: int) -> tuple[int, GPT2Config, int]:
    """The version, configuration and padded vocabulary ``Vp`` of an llm.c header, every field checked."""
    nh = LLMC_HEADER_INTS * 4
    if size < nh:
        raise WeightsError(f"{path}: {size} bytes is shorter than the llm.c header ({nh} bytes)")
    header = np.fromfile(path, dtype="<i4", count=LLMC_HEADER_INTS).astype(np.int64)
    if header[0] != LLMC_MAGIC:
        hint = ""
        raw = header[:1].astype("<i4").tobytes()
        if raw[:2] == b"PK" or raw[:1] == b"\x80":
            hint = " (this looks like a PyTorch pickle/zip checkpoint, which lampref never unpickles)"
        raise WeightsError(
            f"{path}: bad magic {int(header[0])} in the llm.c header; expected {LLMC_MAGIC}{hint}"
        )
    version = int(header[1])
    if version not in LLMC_VERSIONS:
        raise WeightsError(
            f"{path}: llm.c checkpoint version {version}; expected one of {sorted(LLMC_VERSIONS)} "
            "(3: float32, 5: bfloat16)"
        )
    maxT, V, L, NH, C, Vp = (int(v) for v in header[2:8])
    names = ("maxT", "V", "L", "NH", "C", "Vp")
    for n, v in zip(names, (maxT, V, L, NH, C, Vp), strict=True):
        if v < 1:
            raise WeightsError(f"{path}: llm.c header field {n}={v}; expected a positive integer")
    if Vp < V:
        raise WeightsError(f"{path}: llm.c header has padded vocabulary Vp={Vp} < V={V}")
    try:
        config = GPT2Config(n_layer=L, n_head=NH, n_embd=C, n_positions=maxT, vocab_size=V)
    except ConfigError as exc:
        raise WeightsError(f"{path}: llm.c header does not describe a valid model ({exc})") from None
    return version, config, Vp


def _llmc_data(path: Path, version: int, count: int) -> F32:
    """The ``count`` parameters after the header, as float32: a map of a float32 file, a widened bfloat16."""
    offset = LLMC_HEADER_INTS * 4
    if version == 3:
        flat: F32 = np.asarray(np.memmap(path, dtype="<f4", mode="r", offset=offset, shape=(count,)))
        return flat if flat.dtype.isnative else flat.astype(np.float32)
    return bf16_to_float32(np.memmap(path, dtype="<u2", mode="r", offset=offset, shape=(count,)))


def _llmc_state(flat: F32, config: GPT2Config, Vp: int) -> dict[str, F32]:
    """Views of llm.c's parameter groups under Hugging Face names: weights transposed, ``wte`` unpadded."""
    state: dict[str, F32] = {}
    pos = 0
    for t, shape in _llmc_groups(config, Vp):
        end = pos + math.prod(shape)
        group, pos = flat[pos:end].reshape(shape), end
        for i, name in enumerate(t.names(config.n_layer)):
            view = group[i] if t.per_block else group
            view = view.T if t.transposed else view
            state[name] = view[: config.vocab_size] if t.padded else view
    return state


def load(
    path: str | Path,
    *,
    n_head: int | None = None,
    config: GPT2Config | None = None,
    allow_nonfinite: bool = False,
) -> Checkpoint:
    r"""Load GPT-2 parameters and configuration from a checkpoint, never unpickling.

    Parameters
    ----------
    path : str or Path
        A Hugging Face model directory, a ``.safetensors`` file, an llm.c ``.bin`` checkpoint or a ``.npz``
        archive (see the module notes).
    n_head : int, optional
        Number of heads, for formats that do not record it (bare safetensors, npz; default
        ``n_embd // 64``). For the others it must agree with the checkpoint.
    config : GPT2Config, optional
        Use this configuration instead of reading or inferring one (for example to choose the erf GELU for a
        bare file); the tensors must match it.
    allow_nonfinite : bool, default False
        Load parameters that hold NaN or infinities (for studying such files) instead of raising.

    Returns
    -------
    Checkpoint
        ``(params, config)``.

    Raises
    ------
    WeightsNotFoundError
        If the path, or a file a directory must contain, does not exist.
    WeightsError
        On a malformed or truncated file, sizes the file cannot hold, missing or unexpected tensors, a wrong
        shape or dtype, an untied language-model head, or (unless ``allow_nonfinite``) a NaN or an infinity
        in a parameter; the message names the file and the key.
    ConfigError
        On an invalid or unsupported configuration.
    InputTypeError
        If ``allow_nonfinite`` is not a bool.

    Notes
    -----
    Time and memory stay proportional to the tensors the file really holds: every size a header or a
    configuration declares is checked against the file before anything is allocated from it. A ``.npz``
    archive is read member by member, only the members needed, each after its declared size has been
    checked against its ``.npy`` header; an archive whose needed members would decompress to more than 100
    times its size (and more than 64 MiB) is refused before any is decompressed. float16 and byte-swapped
    float32 tensors are converted exactly; other dtypes are refused rather than rounded.

    Examples
    --------
    >>> import os, tempfile
    >>> from lampref.gpt2.config import GPT2Config
    >>> from lampref.gpt2.weights import load, random_params, save, save_llmc
    >>> cfg = GPT2Config(n_layer=2, n_head=2, n_embd=8, n_positions=16, vocab_size=32)
    >>> params = random_params(cfg, rng=0)
    >>> tmp = tempfile.mkdtemp()
    >>> save_llmc(params, cfg, os.path.join(tmp, "model.bin"))
    >>> p2, cfg2 = load(os.path.join(tmp, "model.bin"))
    >>> save(p2, cfg2, os.path.join(tmp, "hf"))  # llm.c -> Hugging Face
    >>> p3, cfg3 = load(os.path.join(tmp, "hf"))
    >>> cfg3 == cfg, bool((p3.h[1].mlp.c_fc.w == params.h[1].mlp.c_fc.w).all())
    (True, True)
    """
    check_bool(allow_nonfinite, "allow_nonfinite")
    path = Path(path)
    if not path.exists():
        raise WeightsNotFoundError(f"{path}: no such file or directory")
    if path.is_dir():
        ckpt = _load_hf_dir(path, config, n_head, allow_nonfinite)
    else:
        suffix = path.suffix.lower()
        if suffix == ".safetensors":
            if config is not None:
                _check_n_head(config, n_head, str(path))
            tensors = load_file(path)
            ckpt = _from_hf_tensors(tensors, config, str(path), n_head, allow_nonfinite=allow_nonfinite)
        elif suffix == ".npz":
            ckpt = _load_npz(path, config, n_head, allow_nonfinite)
        elif suffix == ".bin":
            ckpt = load_llmc(path, allow_nonfinite=allow_nonfinite)
            _check_n_head(ckpt.config, n_head, str(path))
            if config is not None:
                _check_n_head(ckpt.config, config.n_head, str(path))
                ckpt.params.check(config, str(path))
                ckpt = Checkpoint(ckpt.params, config)
        else:
            raise WeightsError(
                f"{path}: unknown checkpoint type {suffix!r}; expected a directory, '.safetensors', '.bin' "
                "(llm.c) or '.npz'"
            )
    ckpt.params.check(ckpt.config, str(path))
    return ckpt


# ------------------------------------------------------------------------------------------- writing
def _check_writable(params: GPT2Params, config: GPT2Config) -> None:
    if not isinstance(params, GPT2Params):
        raise WeightsError(f"params must be a GPT2Params, got {type(params).__name__}")
    if not isinstance(config, GPT2Config):
        raise ConfigError(f"config must be a GPT2Config, got {type(config).__name__}")
    params.check(config)


def save(params: GPT2Params, config: GPT2Config, path: str | Path, *, dtype: str = "F32") -> None:
    """Write a Hugging Face model directory: ``config.json`` and ``model.safetensors``.

    ``dtype="F16"`` or ``"BF16"`` stores every tensor rounded to nearest-even in that format (half the
    size; :func:`load` widens it back to float32 exactly).

    Keys carry the ``transformer.`` prefix and weights are stored in Conv1D layout, as
    ``GPT2LMHeadModel.save_pretrained`` writes them (the tied ``lm_head.weight`` is omitted, and the
    metadata says ``{"format": "pt"}``), so ``GPT2LMHeadModel.from_pretrained(path)`` reads the directory.
    The directory is created if needed (its parent must exist).
    """
    _check_writable(params, config)
    check_choice(dtype, "dtype", ("F32", "F16", "BF16"), error=WeightsError)
    path = Path(path)
    if not path.parent.is_dir():
        raise WeightsNotFoundError(f"{path.parent}: no such directory")
    path.mkdir(exist_ok=True)
    tensors = params.state_dict("transformer.")
    storage = {} if dtype == "F32" else dict.fromkeys(tensors, dtype)
    save_file(tensors, path / "model.safetensors", metadata={"format": "pt"}, dtypes=storage)
    with atomic_output(path / "config.json") as f:
        f.write((json.dumps(config.to_hf(), indent=2) + "\n").encode("utf-8"))


def save_npz(params: GPT2Params, path: str | Path) -> None:
    """Write the parameters to an uncompressed ``.npz`` archive under Hugging Face names (no pickle).

    As :func:`numpy.savez`, ``.npz`` is appended to a file name without it. The file is written atomically,
    with the permissions :func:`open` gives (``0o666`` less the umask), as every lampref writer does.
    """
    if not isinstance(params, GPT2Params):
        raise WeightsError(f"params must be a GPT2Params, got {type(params).__name__}")
    path = Path(path)
    if not path.name.endswith(".npz"):
        path = path.with_name(path.name + ".npz")
    if not path.parent.is_dir():
        raise WeightsNotFoundError(f"{path.parent}: no such directory")
    arrays = {k: np.ascontiguousarray(v) for k, v in params.state_dict().items()}
    with atomic_output(path) as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]


def save_llmc(
    params: GPT2Params,
    config: GPT2Config,
    path: str | Path,
    *,
    dtype: str = "float32",
    pad_multiple: int = 128,
) -> None:
    r"""Write an llm.c checkpoint, as llm.c's ``train_gpt2.py`` does (``write_model``).

    Parameters
    ----------
    params, config
        The model. llm.c has no GELU or epsilon field: ``config.gelu`` must be ``"tanh"`` and the epsilon
        1e-5.
    path : str or Path
        Destination file (written atomically).
    dtype : {"float32", "bfloat16"}, default "float32"
        Version 3 (float32) or version 5 (bfloat16, each weight rounded to nearest-even).
    pad_multiple : int, default 128
        The token embedding is padded with zero rows to ``Vp``, the next multiple of this.

    Notes
    -----
    Layout: header ``int32[256] = [20240326, version, maxT, V, L, NH, C, Vp, 0, ...]``, then wte ``(Vp, C)``,
    wpe ``(maxT, C)``, ln1w ``(L, C)``, ln1b ``(L, C)``, qkvw ``(L, 3C, C)``, qkvb ``(L, 3C)``, attprojw
    ``(L, C, C)``, attprojb ``(L, C)``, ln2w, ln2b ``(L, C)``, fcw ``(L, 4C, C)``, fcb ``(L, 4C)``, fcprojw
    ``(L, C, 4C)``, fcprojb ``(L, C)``, lnfw ``(C,)``, lnfb ``(C,)``; weights ``(out, in)``, little-endian.
    """
    _check_writable(params, config)
    check_choice(dtype, "dtype", tuple(LLMC_VERSIONS.values()), error=WeightsError)
    if config.gelu != "tanh" or config.layer_norm_epsilon != 1e-5:
        raise ConfigError(
            "llm.c checkpoints always mean tanh GELU and LayerNorm epsilon 1e-5; config has "
            f"gelu={config.gelu!r}, layer_norm_epsilon={config.layer_norm_epsilon}"
        )
    pad_multiple = check_int(pad_multiple, "pad_multiple", minimum=1, error=WeightsError)
    version = {v: k for k, v in LLMC_VERSIONS.items()}[dtype]
    V, C, L = config.vocab_size, config.n_embd, config.n_layer
    Vp = -(-V // pad_multiple) * pad_multiple
    header = np.zeros(LLMC_HEADER_INTS, dtype="<i4")
    header[:8] = [LLMC_MAGIC, version, config.n_positions, V, L, config.n_head, C, Vp]

    def encode(a: NDArray[Any]) -> bytes:
        a32 = np.ascontiguousarray(a, dtype=np.float32)
        if version == 3:
            return a32.astype("<f4").tobytes()
        return bf16_bits(a32).tobytes()

    path = Path(path)
    if not path.parent.is_dir():
        raise WeightsNotFoundError(f"{path.parent}: no such directory")
    state = params.state_dict()
    with atomic_output(path) as f:
        f.write(header.tobytes())
        for t, shape in _llmc_groups(config, Vp):
            for name in t.names(L):
                f.write(encode(state[name].T if t.transposed else state[name]))
            if t.padded:
                f.write(encode(np.zeros((Vp - V, *shape[1:]), dtype=np.float32)))
