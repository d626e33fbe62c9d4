"""GPT-2 in NumPy: the byte-level BPE tokenizer (standard library only)."""

from __future__ import annotations

from .tokenizer import Tokenizer

__all__ = ["Tokenizer"]
