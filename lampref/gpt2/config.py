r"""The shape and hyperparameters of a GPT-2 model, and their Hugging Face ``config.json`` form.

:class:`GPT2Config` holds what the forward pass needs and nothing else: the number of layers, heads,
the embedding width, the context length, the vocabulary size, the LayerNorm epsilon and the GELU variant.
Hugging Face settings that would change the computation in a way lampref does not model (cross attention,
attention scaling by layer index, reordered upcast attention, no attention scaling) are rejected when a
``config.json`` is read, rather than silently ignored.
"""

from __future__ import annotations

import json
import math
import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._validate import is_int
from ..errors import ConfigError, LamprefError, WeightsNotFoundError, expected_one_of

__all__ = ["GELU_KINDS", "HF_ACTIVATIONS", "MAX_SIZE", "GPT2Config"]

MAX_SIZE = 2**31 - 1
"""Largest value of any size of a :class:`GPT2Config` (llm.c stores them as int32)."""

GELU_KINDS: tuple[str, ...] = ("tanh", "erf")
"""The GELU variants: ``"tanh"`` (GPT-2's ``gelu_new``) and ``"erf"`` (the exact GELU)."""

HF_ACTIVATIONS: dict[str, str] = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "erf"}
"""Hugging Face ``activation_function`` names lampref reads, and the GELU variant each one is."""

# Hugging Face settings that change the forward pass, with the only value lampref models.
_HF_FIXED: dict[str, Any] = {
    "scale_attn_weights": True,
    "scale_attn_by_inverse_layer_idx": False,
    "reorder_and_upcast_attn": False,
    "add_cross_attention": False,
}


# ------------------------------------------------------------------------------------- JSON fields
# One validation layer for every JSON document the checkpoint loaders read (config.json, the safetensors
# header, model.safetensors.index.json): parse errors and nesting too deep for the parser become lampref
# errors, and each field is checked for its JSON type before it is used.
_SHORT = reprlib.Repr()
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict = 80, 40, 2, 4, 4

_JSON_KINDS: dict[str, tuple[str, Callable[[object], bool]]] = {
    "string": ("a string", lambda v: isinstance(v, str)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "int": ("an integer", is_int),
    "number": ("a number", lambda v: is_int(v) or isinstance(v, float)),
    "object": ("an object", lambda v: isinstance(v, dict)),
    "array": ("an array", lambda v: isinstance(v, list)),
}


def show(value: object) -> str:
    """A repr of ``value`` short enough for an error message, whatever its size or nesting."""
    return _SHORT.repr(value)


_JSON_NOUNS = {str: "a string", bool: "a boolean", int: "an integer", float: "a number", dict: "an object"}
_JSON_NOUNS.update({list: "an array", type(None): "null"})


def _json_type(value: object) -> str:
    return _JSON_NOUNS.get(type(value), type(value).__name__)


def json_field(
    where: str, key: str, value: object, kind: str, error: type[LamprefError] = ConfigError
) -> Any:
    """Return ``value`` if it has the JSON type ``kind``, else raise ``error`` naming ``where`` and ``key``.

    ``kind`` is one of ``"string"``, ``"bool"``, ``"int"``, ``"number"``, ``"object"``, ``"array"``; a bool
    is never an integer or a number, and a number in a string is not a number.
    """
    expected, test = _JSON_KINDS[kind]
    if not test(value):
        got = _json_type(value)
        raise error(f"{where}: {key}={show(value)} is not valid; expected {expected}, got {got}")
    return value


def parse_json(
    raw: bytes | str,
    where: str,
    what: str,
    error: type[LamprefError] = ConfigError,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """Parse a JSON document; invalid UTF-8 or JSON, or nesting too deep to parse, raise ``error``."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, object_pairs_hook=object_pairs_hook)
    except UnicodeDecodeError as exc:
        raise error(f"{where}: {what} is not valid UTF-8 ({exc})") from None
    except RecursionError:
        raise error(f"{where}: {what} is nested too deeply to be a valid document") from None
    except ValueError as exc:  # JSONDecodeError, and integers beyond Python's digit limit
        raise error(f"{where}: {what} is not valid JSON ({exc})") from None


def _positive_int(name: str, value: Any) -> int:
    """``value`` as a Python int when it is an integer (NumPy's included) in ``[1, MAX_SIZE]``."""
    if not is_int(value) or not 1 <= value <= MAX_SIZE:
        raise ConfigError(
            f"{name}={show(value)} is not valid; expected a positive integer (at most {MAX_SIZE})"
        )
    return int(value)


def read_hf_config(source: Mapping[str, Any] | str | Path) -> tuple[Mapping[str, Any], str]:
    """The fields of a Hugging Face ``config.json`` given as a mapping, the file or its folder, and the name
    that error messages give it (the file's path, or ``"config"`` for a mapping).

    Raises :class:`~lampref.errors.WeightsNotFoundError` for a missing file and
    :class:`~lampref.errors.ConfigError` for a file that is not a UTF-8 JSON object.
    """
    if not isinstance(source, (str, Path)):
        data: object = source
        where = "config"
    else:
        path = Path(source)
        if path.is_dir():
            path = path / "config.json"
        where = str(path)
        if not path.is_file():
            raise WeightsNotFoundError(f"{where}: no such file (expected a Hugging Face config.json)")
        data = parse_json(path.read_bytes(), where, "the configuration")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a JSON object, got {_json_type(data)}")
    return data, where


@dataclass(frozen=True, slots=True)
class GPT2Config:
    r"""Hyperparameters of a GPT-2 model.

    Parameters
    ----------
    n_layer : int
        Number of transformer blocks $L$.
    n_head : int
        Number of attention heads $H$; must divide ``n_embd``.
    n_embd : int
        Width of the residual stream $C$.
    n_positions : int
        Context length (number of learned position embeddings).
    vocab_size : int
        Number of token embeddings $V$.
    layer_norm_epsilon : float, default 1e-5
        The $\epsilon$ of every LayerNorm.
    gelu : {"tanh", "erf"}, default "tanh"
        GELU variant of the MLP: the tanh approximation GPT-2 uses (Hugging Face ``gelu_new``) or the exact
        erf form (Hugging Face ``gelu``).

    Raises
    ------
    ConfigError
        For a non-positive size, a head count that does not divide ``n_embd``, a non-positive epsilon or an
        unknown GELU variant.

    Examples
    --------
    >>> from lampref.gpt2.config import GPT2Config
    >>> cfg = GPT2Config.gpt2_124m()
    >>> cfg.head_dim, cfg.n_params
    (64, 124439808)
    >>> GPT2Config.from_hf({"n_layer": 2, "n_head": 2, "n_embd": 8, "n_ctx": 16, "vocab_size": 32,
    ...                     "activation_function": "gelu"}).gelu
    'erf'
    """

    n_layer: int
    n_head: int
    n_embd: int
    n_positions: int
    vocab_size: int
    layer_norm_epsilon: float = 1e-5
    gelu: str = "tanh"

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_head", "n_embd", "n_positions", "vocab_size"):
            object.__setattr__(self, name, _positive_int(name, getattr(self, name)))
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"n_head={self.n_head} does not divide n_embd={self.n_embd}; expected n_embd % n_head == 0"
            )
        eps = self.layer_norm_epsilon
        as_float = float(eps) if isinstance(eps, float) or (is_int(eps) and abs(eps) < 2**1024) else math.nan
        if not (math.isfinite(as_float) and as_float > 0):
            raise ConfigError(
                f"layer_norm_epsilon={show(eps)} is not valid; expected a positive finite number"
            )
        object.__setattr__(self, "layer_norm_epsilon", as_float)
        if self.gelu not in GELU_KINDS:
            raise ConfigError(expected_one_of("gelu", self.gelu, GELU_KINDS))

    @property
    def head_dim(self) -> int:
        """Width of one attention head, ``n_embd // n_head``."""
        return self.n_embd // self.n_head

    @property
    def n_params(self) -> int:
        """Number of parameters (the tied language-model head counted once)."""
        C, L = self.n_embd, self.n_layer
        per_block = 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + 2 * C + (C * 4 * C + 4 * C) + (4 * C * C + C)
        return self.vocab_size * C + self.n_positions * C + L * per_block + 2 * C

    @classmethod
    def gpt2_124m(cls) -> GPT2Config:
        """The shape of OpenAI's smallest GPT-2 (124M parameters): 12 layers, 12 heads, width 768."""
        return cls(n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab_size=50257)

    @classmethod
    def from_hf(cls, source: Mapping[str, Any] | str | Path) -> GPT2Config:
        """Read a Hugging Face GPT-2 configuration (a ``config.json`` path, its directory, or its dict).

        Reads ``n_layer``, ``n_head``, ``n_embd``, ``n_positions`` (or ``n_ctx``), ``vocab_size``,
        ``layer_norm_epsilon`` (default 1e-5) and ``activation_function`` (``gelu_new`` or
        ``gelu_pytorch_tanh``: tanh; ``gelu``: erf; default ``gelu_new``). Settings that change the forward
        pass in a way lampref does not model (cross attention, attention scaling by layer index or none at
        all, reordered upcast attention, an MLP width ``n_inner`` other than ``4 * n_embd``) raise
        :class:`~lampref.errors.ConfigError`.

        Raises
        ------
        WeightsNotFoundError
            If the file does not exist.
        ConfigError
            On a file that is not UTF-8 JSON (or is nested too deeply to parse), a field of the wrong JSON
            type (a string, an array or a boolean where a number belongs, ...), a missing field, or a value
            out of range or not modelled; the message names the file and the key.
        """
        return cls._from_hf_fields(*read_hf_config(source))

    @classmethod
    def _from_hf_fields(cls, data: Mapping[str, Any], where: str) -> GPT2Config:
        def get(key: str, kind: str, default: Any = None) -> Any:
            return default if key not in data else json_field(where, key, data[key], kind)

        model_type = get("model_type", "string", "gpt2")
        if model_type != "gpt2":
            raise ConfigError(f"{where}: model_type={show(model_type)}; expected 'gpt2'")
        for key, value in _HF_FIXED.items():
            if get(key, "bool", value) != value:
                raise ConfigError(
                    f"{where}: {key}={data[key]!r} changes the forward pass in a way lampref does not model; "
                    f"expected {value!r}"
                )
        missing = [k for k in ("n_layer", "n_head", "n_embd", "vocab_size") if k not in data]
        if "n_positions" not in data and "n_ctx" not in data:
            missing.append("n_positions")
        if missing:
            raise ConfigError(f"{where}: missing key(s) {', '.join(map(repr, missing))}")
        position_key = "n_positions" if "n_positions" in data else "n_ctx"
        sizes = {k: get(k, "int") for k in ("n_layer", "n_head", "n_embd", "vocab_size", position_key)}
        n_inner = None if data.get("n_inner") is None else get("n_inner", "int")
        if n_inner is not None and n_inner != 4 * sizes["n_embd"]:
            raise ConfigError(
                f"{where}: n_inner={n_inner}; lampref models GPT-2's MLP width 4 * n_embd "
                f"(= {4 * sizes['n_embd']}) or null"
            )
        act = get("activation_function", "string", "gelu_new")
        if act not in HF_ACTIVATIONS:
            accepted = ", ".join(map(repr, HF_ACTIVATIONS))
            raise ConfigError(
                f"{where}: activation_function={show(act)} is not valid; expected one of: {accepted}"
            )
        try:
            return cls(
                n_layer=sizes["n_layer"],
                n_head=sizes["n_head"],
                n_embd=sizes["n_embd"],
                n_positions=sizes[position_key],
                vocab_size=sizes["vocab_size"],
                layer_norm_epsilon=get("layer_norm_epsilon", "number", 1e-5),
                gelu=HF_ACTIVATIONS[act],
            )
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def to_hf(self) -> dict[str, Any]:
        """The Hugging Face ``config.json`` of this configuration (``GPT2LMHeadModel``, tied head)."""
        return {
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "n_embd": self.n_embd,
            "n_positions": self.n_positions,
            "n_ctx": self.n_positions,
            "vocab_size": self.vocab_size,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "activation_function": "gelu_new" if self.gelu == "tanh" else "gelu",
            "tie_word_embeddings": True,
            "scale_attn_weights": True,
            "scale_attn_by_inverse_layer_idx": False,
            "reorder_and_upcast_attn": False,
        }
