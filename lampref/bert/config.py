r"""The shape and hyperparameters of a BERT encoder, and their Hugging Face ``config.json`` form.

:class:`BertConfig` holds what the forward pass of :mod:`lampref.bert.model` needs and nothing else, under
Hugging Face's names. Settings of a Hugging Face ``BertConfig`` that would change the computation in a way
lampref does not model (relative position embeddings, a decoder, cross attention, an activation other than
the exact GELU) are rejected when a ``config.json`` is read, rather than silently ignored; settings that do
not change the inference forward pass (dropout rates, ``pad_token_id``, ``use_cache``) are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._validate import is_int
from ..errors import ConfigError, expected_one_of
from ..gpt2.config import MAX_SIZE, json_field, read_hf_config, show

__all__ = ["HIDDEN_ACTS", "BertConfig"]

HIDDEN_ACTS: tuple[str, ...] = ("gelu",)
"""The Hugging Face ``hidden_act`` values lampref models: ``"gelu"``, the exact (erf) GELU."""

_SIZES: tuple[str, ...] = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
)
"""The sizes a ``config.json`` must state (Hugging Face's defaults are those of bert-base, not a guess
lampref makes for a file that omits them)."""

# Hugging Face settings that change the forward pass, with the only value lampref models.
_HF_FIXED: dict[str, tuple[str, Any]] = {
    "position_embedding_type": ("string", "absolute"),
    "is_decoder": ("bool", False),
    "add_cross_attention": ("bool", False),
}


def _size(name: str, value: Any) -> int:
    """``value`` as a Python int when it is an integer (NumPy's included) in ``[1, MAX_SIZE]``."""
    if not is_int(value) or not 1 <= value <= MAX_SIZE:
        raise ConfigError(
            f"{name}={show(value)} is not valid; expected a positive integer (at most {MAX_SIZE})"
        )
    return int(value)


@dataclass(frozen=True, slots=True)
class BertConfig:
    r"""Hyperparameters of a BERT encoder (Hugging Face ``BertModel``), under Hugging Face's names.

    Parameters
    ----------
    vocab_size : int
        Number of token embeddings $V$.
    hidden_size : int
        Width of the hidden states $C$.
    num_hidden_layers : int
        Number of encoder layers $L$.
    num_attention_heads : int
        Number of attention heads $H$; must divide ``hidden_size``.
    intermediate_size : int
        Width of the feed-forward layer.
    max_position_embeddings : int
        Number of learned position embeddings: the longest sequence the model reads.
    type_vocab_size : int, default 2
        Number of token type (segment) embeddings.
    layer_norm_eps : float, default 1e-12
        The $\epsilon$ of every LayerNorm.
    hidden_act : {"gelu"}, default "gelu"
        Activation of the feed-forward layer: Hugging Face's ``"gelu"``, the exact erf form
        $\tfrac12 x (1 + \operatorname{erf}(x/\sqrt2))$.

    Raises
    ------
    ConfigError
        For a size that is not a positive integer, a head count that does not divide ``hidden_size``, an
        epsilon that is not a positive finite number, or an activation lampref does not model.

    Examples
    --------
    >>> from lampref.bert.config import BertConfig
    >>> cfg = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
    ...                  intermediate_size=1536, max_position_embeddings=512)
    >>> cfg.head_dim, cfg.n_params
    (32, 22565376)
    >>> BertConfig.from_hf({"model_type": "bert", "vocab_size": 100, "hidden_size": 32,
    ...                     "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
    ...                     "max_position_embeddings": 64, "hidden_act": "gelu"}).layer_norm_eps
    1e-12
    """

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"

    def __post_init__(self) -> None:
        for name in (*_SIZES, "type_vocab_size"):
            object.__setattr__(self, name, _size(name, getattr(self, name)))
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"num_attention_heads={self.num_attention_heads} does not divide hidden_size="
                f"{self.hidden_size}; expected hidden_size % num_attention_heads == 0"
            )
        eps = self.layer_norm_eps
        as_float = float(eps) if isinstance(eps, float) or (is_int(eps) and abs(eps) < 2**1024) else math.nan
        if not (math.isfinite(as_float) and as_float > 0):
            raise ConfigError(f"layer_norm_eps={show(eps)} is not valid; expected a positive finite number")
        object.__setattr__(self, "layer_norm_eps", as_float)
        if not isinstance(self.hidden_act, str) or self.hidden_act not in HIDDEN_ACTS:
            raise ConfigError(expected_one_of("hidden_act", self.hidden_act, HIDDEN_ACTS))

    @property
    def head_dim(self) -> int:
        """Width of one attention head, ``hidden_size // num_attention_heads``."""
        return self.hidden_size // self.num_attention_heads

    @property
    def n_params(self) -> int:
        """Number of parameters of the encoder (embeddings and layers; no pooler)."""
        C, F = self.hidden_size, self.intermediate_size
        embeddings = (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * C + 2 * C
        per_layer = 4 * (C * C + C) + 2 * C + (C * F + F) + (F * C + C) + 2 * C
        return embeddings + self.num_hidden_layers * per_layer

    @classmethod
    def from_hf(cls, source: Mapping[str, Any] | str | Path, *, where: str | None = None) -> BertConfig:
        """Read a Hugging Face BERT configuration (a ``config.json`` path, its directory, or its dict).

        ``where`` names the configuration in error messages (default: the file's path, or ``"config"``
        for a dict), for example ``"model.whl!model/config.json"`` for one read from an archive.

        Reads the six sizes (required), ``type_vocab_size`` (default 2), ``layer_norm_eps`` (default
        1e-12) and ``hidden_act`` (default ``"gelu"``). ``model_type``, when present, must be ``"bert"``;
        ``position_embedding_type`` must be ``"absolute"``, ``is_decoder`` and ``add_cross_attention``
        false.

        Raises
        ------
        WeightsNotFoundError
            If the file does not exist.
        ConfigError
            On a file that is not UTF-8 JSON, a field of the wrong JSON type, a missing field, or a value out
            of range or not modelled; the message names the file and the key.
        """
        data, name = read_hf_config(source)
        return cls._from_hf_fields(data, name if where is None else where)

    @classmethod
    def _from_hf_fields(cls, data: Mapping[str, Any], where: str) -> BertConfig:
        def get(key: str, kind: str, default: Any = None) -> Any:
            return default if key not in data else json_field(where, key, data[key], kind)

        model_type = get("model_type", "string", "bert")
        if model_type != "bert":
            raise ConfigError(f"{where}: model_type={show(model_type)}; expected 'bert'")
        for key, (kind, value) in _HF_FIXED.items():
            if get(key, kind, value) != value:
                raise ConfigError(
                    f"{where}: {key}={show(data[key])} changes the forward pass in a way lampref does not "
                    f"model; expected {value!r}"
                )
        missing = [k for k in _SIZES if k not in data]
        if missing:
            raise ConfigError(f"{where}: missing key(s) {', '.join(map(repr, missing))}")
        fields: dict[str, Any] = {k: get(k, "int") for k in _SIZES}
        fields["type_vocab_size"] = get("type_vocab_size", "int", 2)
        fields["layer_norm_eps"] = get("layer_norm_eps", "number", 1e-12)
        fields["hidden_act"] = get("hidden_act", "string", "gelu")
        try:
            return cls(**fields)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def to_hf(self) -> dict[str, Any]:
        """The Hugging Face ``config.json`` fields of this configuration (``BertModel``)."""
        return {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "type_vocab_size": self.type_vocab_size,
            "layer_norm_eps": self.layer_norm_eps,
            "hidden_act": self.hidden_act,
            "position_embedding_type": "absolute",
        }
