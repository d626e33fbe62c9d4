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
once; float16 tensors are widened (exactly) one by one.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError, WeightsError, WeightsNotFoundError, expected_one_of
from .config import GPT2Config
from .safetensors import load_file, save_file

__all__ = [
    "LLMC_HEADER_INTS",
    "LLMC_MAGIC",
    "LLMC_VERSIONS",
    "MLP",
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
_IGNORED = re.compile(r"^h\.\d+\.attn\.(bias|masked_bias)$")
_LAYER_KEY = re.compile(r"^h\.(\d+)\.")


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
        if not isinstance(self.h, tuple) or not all(isinstance(b, Block) for b in self.h):
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
        if len(self.h) != config.n_layer:
            raise WeightsError(f"{source}: {len(self.h)} blocks; config.n_layer={config.n_layer}")
        expected = hf_shapes(config)
        for name, arr in self.named_arrays():
            if arr.shape != expected[name]:
                raise WeightsError(f"{source}: {name} has shape {arr.shape}; expected {expected[name]}")

    def astype(self, dtype: Any) -> GPT2Params:
        """A copy with every array in ``dtype``: float64 (exact, for the reference forward) or float32."""
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise WeightsError(f"dtype={dtype!r} is not valid; expected float32 or float64")
        arrays = dict(self.named_arrays())
        return _build(lambda name: np.asarray(arrays[name], dtype=dtype), len(self.h))

    @classmethod
    def from_state_dict(cls, state: Mapping[str, F32], n_layer: int) -> GPT2Params:
        """Build from float32 arrays under Hugging Face names (no prefix), ``n_layer`` blocks."""
        missing = [k for k in _names(n_layer) if k not in state]
        if missing:
            raise WeightsError(f"state dict is missing {missing[:5]}")
        return _build(lambda name: state[name], n_layer)


def _names(n_layer: int) -> list[str]:
    names = ["wte.weight", "wpe.weight"]
    for i in range(n_layer):
        for sub in (
            "ln_1.weight",
            "ln_1.bias",
            "attn.c_attn.weight",
            "attn.c_attn.bias",
            "attn.c_proj.weight",
            "attn.c_proj.bias",
            "ln_2.weight",
            "ln_2.bias",
            "mlp.c_fc.weight",
            "mlp.c_fc.bias",
            "mlp.c_proj.weight",
            "mlp.c_proj.bias",
        ):
            names.append(f"h.{i}.{sub}")
    return [*names, "ln_f.weight", "ln_f.bias"]


def hf_shapes(config: GPT2Config) -> dict[str, tuple[int, ...]]:
    """Hugging Face parameter names (no prefix, in checkpoint order) and their Conv1D-layout shapes."""
    C, V, P = config.n_embd, config.vocab_size, config.n_positions
    per = {
        "ln_1.weight": (C,),
        "ln_1.bias": (C,),
        "attn.c_attn.weight": (C, 3 * C),
        "attn.c_attn.bias": (3 * C,),
        "attn.c_proj.weight": (C, C),
        "attn.c_proj.bias": (C,),
        "ln_2.weight": (C,),
        "ln_2.bias": (C,),
        "mlp.c_fc.weight": (C, 4 * C),
        "mlp.c_fc.bias": (4 * C,),
        "mlp.c_proj.weight": (4 * C, C),
        "mlp.c_proj.bias": (C,),
    }
    out: dict[str, tuple[int, ...]] = {"wte.weight": (V, C), "wpe.weight": (P, C)}
    for i in range(config.n_layer):
        out.update({f"h.{i}.{k}": v for k, v in per.items()})
    out.update({"ln_f.weight": (C,), "ln_f.bias": (C,)})
    return out


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

    Every weight and bias is :math:`\mathcal N(0, \mathrm{std}^2)`; LayerNorm scales are
    :math:`1 + \mathcal N(0, \mathrm{ln\_spread}^2)` and shifts :math:`\mathcal N(0, \mathrm{ln\_spread}^2)`,
    so that a bug in a bias, a LayerNorm shift or the GELU variant shows in the output. Draws are float32
    ``Generator.standard_normal`` in the Hugging Face checkpoint order (:func:`hf_shapes`), one call per
    tensor, scaled by float32 multiplication; this is version :data:`RANDOM_PARAMS_VERSION` of the
    generator, so a seed reproduces the same weights.

    Examples
    --------
    >>> from lampref.gpt2.config import GPT2Config
    >>> from lampref.gpt2.weights import random_params
    >>> p = random_params(GPT2Config(n_layer=1, n_head=1, n_embd=4, n_positions=4, vocab_size=8), rng=1)
    >>> p.ln_f.g.dtype, bool(p.ln_f.b.any())
    (dtype('float32'), True)
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
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
def _as_float32(arr: NDArray[Any], source: str, key: str) -> F32:
    if arr.dtype == np.float32:
        return arr
    if arr.dtype == np.float16:
        return arr.astype(np.float32)  # exact
    raise WeightsError(
        f"{source}: tensor {key!r} has dtype {arr.dtype}; expected float32, float16 or bfloat16 (lampref "
        "does not round weights implicitly: convert the checkpoint explicitly if that is intended)"
    )


def _infer_config(tensors: Mapping[str, NDArray[Any]], source: str, n_head: int | None) -> GPT2Config:
    for key in ("wte.weight", "wpe.weight"):
        if key not in tensors:
            raise WeightsError(f"{source}: missing tensor {key!r} (needed to infer the configuration)")
        if tensors[key].ndim != 2:
            raise WeightsError(
                f"{source}: tensor {key!r} has shape {tensors[key].shape}; expected 2 dimensions"
            )
    V, C = tensors["wte.weight"].shape
    P = tensors["wpe.weight"].shape[0]
    layers = {int(m.group(1)) for k in tensors if (m := _LAYER_KEY.match(k))}
    if not layers:
        raise WeightsError(f"{source}: no transformer blocks (no keys 'h.<i>.*')")
    if n_head is None:
        if C % 64:
            raise WeightsError(
                f"{source}: n_head cannot be inferred from the shapes and n_embd={C} is not a multiple "
                "of GPT-2's head width 64; pass n_head="
            )
        n_head = C // 64
    try:
        return GPT2Config(n_layer=max(layers) + 1, n_head=n_head, n_embd=C, n_positions=P, vocab_size=V)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _from_hf_tensors(
    tensors: Mapping[str, NDArray[Any]], config: GPT2Config | None, source: str, n_head: int | None = None
) -> Checkpoint:
    """Normalise Hugging Face keys, check them against the configuration, and build the parameters."""
    state: dict[str, NDArray[Any]] = {}
    for key, arr in tensors.items():
        name = key[len("transformer.") :] if key.startswith("transformer.") else key
        if name in state:
            raise WeightsError(
                f"{source}: tensor {name!r} appears both with and without the 'transformer.' prefix"
            )
        state[name] = arr
    for key in [k for k in state if _IGNORED.match(k)]:
        del state[key]
    lm_head = state.pop("lm_head.weight", None)
    if config is None:
        config = _infer_config(state, source, n_head)
    expected = hf_shapes(config)
    missing = [k for k in expected if k not in state]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise WeightsError(f"{source}: missing tensor(s) {missing[:5]}{more} (for {config})")
    extra = sorted(set(state) - set(expected))
    if extra:
        more = f" and {len(extra) - 5} more" if len(extra) > 5 else ""
        raise WeightsError(f"{source}: unexpected tensor(s) {extra[:5]}{more} (for {config})")
    for key, shape in expected.items():
        if state[key].shape != shape:
            raise WeightsError(f"{source}: tensor {key!r} has shape {state[key].shape}; expected {shape}")
    converted = {k: _as_float32(state[k], source, k) for k in expected}
    if lm_head is not None:
        lm = _as_float32(lm_head, source, "lm_head.weight")
        if lm.shape != expected["wte.weight"] or not np.array_equal(lm, converted["wte.weight"]):
            raise WeightsError(
                f"{source}: lm_head.weight differs from wte.weight; lampref models GPT-2's tied head only"
            )
    return Checkpoint(_build(converted.__getitem__, config.n_layer), config)


def _check_n_head(config: GPT2Config, n_head: int | None, source: str) -> None:
    if n_head is not None and n_head != config.n_head:
        raise ConfigError(f"{source}: n_head={n_head} contradicts the checkpoint's n_head={config.n_head}")


def _load_hf_dir(path: Path, config: GPT2Config | None, n_head: int | None) -> Checkpoint:
    cfg_path = path / "config.json"
    if config is None:
        if not cfg_path.is_file():
            raise WeightsNotFoundError(f"{path}: no config.json in this Hugging Face model directory")
        config = GPT2Config.from_hf(cfg_path)
    _check_n_head(config, n_head, str(path))
    single = path / "model.safetensors"
    index = path / "model.safetensors.index.json"
    if single.is_file():
        return _from_hf_tensors(load_file(single), config, str(single))
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            if not isinstance(weight_map, dict):
                raise TypeError
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
            raise WeightsError(f"{index}: expected a JSON object with a 'weight_map' object") from None
        tensors: dict[str, NDArray[Any]] = {}
        for shard in sorted(set(weight_map.values())):
            shard_path = path / str(shard)
            part = load_file(shard_path)
            for key, arr in part.items():
                if weight_map.get(key) != shard:
                    raise WeightsError(
                        f"{shard_path}: tensor {key!r} is not mapped to this shard in {index.name}"
                    )
                tensors[key] = arr
        absent = sorted(set(weight_map) - set(tensors))
        if absent:
            raise WeightsError(f"{index}: tensor(s) {absent[:5]} are mapped but absent from their shard")
        return _from_hf_tensors(tensors, config, str(index))
    if any((path / n).exists() for n in ("pytorch_model.bin", "model.bin")):
        raise WeightsError(
            f"{path}: only a pickle-based checkpoint (pytorch_model.bin) is present; lampref never "
            "unpickles. Convert it to model.safetensors (e.g. save_pretrained(..., safe_serialization=True))"
        )
    raise WeightsNotFoundError(
        f"{path}: no model.safetensors (or model.safetensors.index.json) in this directory"
    )


def _load_npz(path: Path, config: GPT2Config | None, n_head: int | None) -> Checkpoint:
    import zipfile

    try:
        # np.load leaves its file open when the archive is corrupt: open (and close) it here
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
            tensors = {k: npz[k] for k in npz.files}
    except zipfile.BadZipFile as exc:
        raise WeightsError(f"{path}: not a valid .npz archive ({exc})") from None
    except ValueError as exc:  # object arrays (which would need pickle), corrupt members
        raise WeightsError(f"{path}: cannot be read without pickle or is corrupt ({exc})") from None
    except (OSError, EOFError) as exc:
        raise WeightsError(f"{path}: cannot be read ({exc})") from None
    if config is not None:
        _check_n_head(config, n_head, str(path))
    return _from_hf_tensors(tensors, config, str(path), n_head)


def _llmc_sizes(V: int, Vp: int, maxT: int, L: int, C: int) -> list[tuple[str, tuple[int, ...]]]:
    return [
        ("wte", (Vp, C)),
        ("wpe", (maxT, C)),
        ("ln1w", (L, C)),
        ("ln1b", (L, C)),
        ("qkvw", (L, 3 * C, C)),
        ("qkvb", (L, 3 * C)),
        ("attprojw", (L, C, C)),
        ("attprojb", (L, C)),
        ("ln2w", (L, C)),
        ("ln2b", (L, C)),
        ("fcw", (L, 4 * C, C)),
        ("fcb", (L, 4 * C)),
        ("fcprojw", (L, C, 4 * C)),
        ("fcprojb", (L, C)),
        ("lnfw", (C,)),
        ("lnfb", (C,)),
    ]


def load_llmc(path: str | Path) -> Checkpoint:
    r"""Read an llm.c checkpoint (``gpt2_124M.bin``, float32 version 3 or bfloat16 version 5).

    The header is 256 little-endian int32: ``[20240326, version, maxT, V, L, NH, C, Vp, 0, ...]``; then the
    16 parameter groups of :func:`save_llmc`. Weights are stored ``(out, in)`` and returned as transposed
    views (Conv1D layout), the token embedding without its padding rows ``V..Vp``. A float32 file is
    memory-mapped (no copy); a bfloat16 file is widened to float32 once.

    Raises
    ------
    WeightsError
        On a bad magic number or version, a nonsensical header, or a file whose size does not match the
        header (truncated or with trailing bytes).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"{path}: no such file (expected an llm.c checkpoint)")
    size = path.stat().st_size
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
    groups = _llmc_sizes(V, Vp, maxT, L, C)
    count = sum(math.prod(s) for _, s in groups)
    item = 4 if version == 3 else 2
    expected = nh + count * item
    if size != expected:
        what = "truncated" if size < expected else f"{size - expected} trailing bytes"
        raise WeightsError(
            f"{path}: {size} bytes, {what}; the header (version {version}, maxT={maxT}, V={V}, L={L}, C={C}, "
            f"Vp={Vp}) needs {expected}"
        )
    flat: F32
    if version == 3:
        flat = np.asarray(np.memmap(path, dtype="<f4", mode="r", offset=nh, shape=(count,)))
        if not flat.dtype.isnative:
            flat = flat.astype(np.float32)
    else:
        bits = np.memmap(path, dtype="<u2", mode="r", offset=nh, shape=(count,))
        flat = (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)
        del bits
    g: dict[str, F32] = {}
    pos = 0
    for name, shape in groups:
        size = math.prod(shape)
        g[name] = flat[pos : pos + size].reshape(shape)
        pos += size
    state: dict[str, F32] = {"wte.weight": g["wte"][:V], "wpe.weight": g["wpe"]}
    for i in range(L):
        state.update(
            {
                f"h.{i}.ln_1.weight": g["ln1w"][i],
                f"h.{i}.ln_1.bias": g["ln1b"][i],
                f"h.{i}.attn.c_attn.weight": g["qkvw"][i].T,
                f"h.{i}.attn.c_attn.bias": g["qkvb"][i],
                f"h.{i}.attn.c_proj.weight": g["attprojw"][i].T,
                f"h.{i}.attn.c_proj.bias": g["attprojb"][i],
                f"h.{i}.ln_2.weight": g["ln2w"][i],
                f"h.{i}.ln_2.bias": g["ln2b"][i],
                f"h.{i}.mlp.c_fc.weight": g["fcw"][i].T,
                f"h.{i}.mlp.c_fc.bias": g["fcb"][i],
                f"h.{i}.mlp.c_proj.weight": g["fcprojw"][i].T,
                f"h.{i}.mlp.c_proj.bias": g["fcprojb"][i],
            }
        )
    state.update({"ln_f.weight": g["lnfw"], "ln_f.bias": g["lnfb"]})
    return Checkpoint(_build(state.__getitem__, L), config)


def load(path: str | Path, *, n_head: int | None = None, config: GPT2Config | None = None) -> Checkpoint:
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

    Returns
    -------
    Checkpoint
        ``(params, config)``.

    Raises
    ------
    WeightsNotFoundError
        If the path, or a file a directory must contain, does not exist.
    WeightsError
        On a malformed or truncated file, missing or unexpected tensors, a wrong shape or dtype, or an
        untied language-model head; the message names the file and the key.
    ConfigError
        On an invalid or unsupported configuration.

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
    path = Path(path)
    if not path.exists():
        raise WeightsNotFoundError(f"{path}: no such file or directory")
    if path.is_dir():
        ckpt = _load_hf_dir(path, config, n_head)
    else:
        suffix = path.suffix.lower()
        if suffix == ".safetensors":
            if config is not None:
                _check_n_head(config, n_head, str(path))
            ckpt = _from_hf_tensors(load_file(path), config, str(path), n_head)
        elif suffix == ".npz":
            ckpt = _load_npz(path, config, n_head)
        elif suffix == ".bin":
            ckpt = load_llmc(path)
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
    path = Path(path)
    if not path.parent.is_dir():
        raise WeightsNotFoundError(f"{path.parent}: no such directory")
    path.mkdir(exist_ok=True)
    if dtype not in ("F32", "F16", "BF16"):
        raise WeightsError(f"dtype={dtype!r} is not valid; expected 'F32', 'F16' or 'BF16'")
    tensors = params.state_dict("transformer.")
    storage = {} if dtype == "F32" else dict.fromkeys(tensors, dtype)
    save_file(tensors, path / "model.safetensors", metadata={"format": "pt"}, dtypes=storage)
    (path / "config.json").write_text(json.dumps(config.to_hf(), indent=2) + "\n", encoding="utf-8")


def save_npz(params: GPT2Params, path: str | Path) -> None:
    """Write the parameters to an uncompressed ``.npz`` archive under Hugging Face names (no pickle)."""
    if not isinstance(params, GPT2Params):
        raise WeightsError(f"params must be a GPT2Params, got {type(params).__name__}")
    arrays = {k: np.ascontiguousarray(v) for k, v in params.state_dict().items()}
    np.savez(Path(path), **arrays)  # type: ignore[arg-type]


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
    if dtype not in LLMC_VERSIONS.values():
        raise WeightsError(expected_one_of("dtype", dtype, tuple(LLMC_VERSIONS.values())))
    if config.gelu != "tanh" or config.layer_norm_epsilon != 1e-5:
        raise ConfigError(
            "llm.c checkpoints always mean tanh GELU and LayerNorm epsilon 1e-5; config has "
            f"gelu={config.gelu!r}, layer_norm_epsilon={config.layer_norm_epsilon}"
        )
    if isinstance(pad_multiple, bool) or not isinstance(pad_multiple, int) or pad_multiple < 1:
        raise WeightsError(f"pad_multiple={pad_multiple!r} is not valid; expected a positive integer")
    version = {v: k for k, v in LLMC_VERSIONS.items()}[dtype]
    V, C, L = config.vocab_size, config.n_embd, config.n_layer
    Vp = -(-V // pad_multiple) * pad_multiple
    header = np.zeros(LLMC_HEADER_INTS, dtype="<i4")
    header[:8] = [LLMC_MAGIC, version, config.n_positions, V, L, config.n_head, C, Vp]

    def encode(a: NDArray[Any]) -> bytes:
        a32 = np.ascontiguousarray(a, dtype=np.float32)
        if version == 3:
            return a32.astype("<f4").tobytes()
        from ..rounding import round_to

        r = np.asarray(round_to(a32, "bf16"), dtype=np.float32)
        return (r.view(np.uint32) >> np.uint32(16)).astype("<u2").tobytes()

    h = params.h
    per_layer: list[Callable[[Block], F32]] = [
        lambda b: b.ln_1.g,
        lambda b: b.ln_1.b,
        lambda b: b.attn.c_attn.w.T,
        lambda b: b.attn.c_attn.b,
        lambda b: b.attn.c_proj.w.T,
        lambda b: b.attn.c_proj.b,
        lambda b: b.ln_2.g,
        lambda b: b.ln_2.b,
        lambda b: b.mlp.c_fc.w.T,
        lambda b: b.mlp.c_fc.b,
        lambda b: b.mlp.c_proj.w.T,
        lambda b: b.mlp.c_proj.b,
    ]
    path = Path(path)
    if not path.parent.is_dir():
        raise WeightsNotFoundError(f"{path.parent}: no such directory")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header.tobytes())
            f.write(encode(params.wte))
            f.write(encode(np.zeros((Vp - V, C), dtype=np.float32)))
            f.write(encode(params.wpe))
            for get in per_layer:
                for block in h:
                    f.write(encode(get(block)))
            f.write(encode(params.ln_f.g))
            f.write(encode(params.ln_f.b))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
