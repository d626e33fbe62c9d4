r"""Text that exercises a tokenizer: the characters of every Unicode general category, and seeded random
mixtures of words in many scripts, contractions in mixed case, whitespace runs, numbers, punctuation, emoji
and special-token text.

Letters and digits come only from :func:`stable_characters`: those whose letter/digit/other class is the
same in Unicode 3.2 and in the running Python. A tokenizer's regular-expression engine may follow another
Unicode version than Python's :mod:`unicodedata` (tiktoken 0.14: 16.0; Python 3.11: 14.0, in which 9,392
letters and digits of 16.0 are unassigned); on these characters the versions agree, so the texts split
alike whatever Python runs them.

Examples
--------
>>> from lampref.testing import mixed_texts
>>> texts = mixed_texts(4, seed=0, specials=["<|endoftext|>"])
>>> len(texts), texts == mixed_texts(4, seed=0, specials=["<|endoftext|>"])
(4, True)
"""

from __future__ import annotations

import functools
import random
import unicodedata
from collections.abc import Mapping, Sequence

__all__ = [
    "CONTRACTIONS",
    "SEPARATORS",
    "WHITE_SPACE",
    "mixed_text",
    "mixed_texts",
    "stable_characters",
]

WHITE_SPACE = (  # the 25 characters of Unicode's White_Space property
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
SEPARATORS = "\x1c\x1d\x1e\x1f"  # str.isspace() is True for these, but they are not White_Space
CONTRACTIONS: tuple[str, ...] = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'Re", "'RE",
                                 "'VE", "'Ve", "'M", "'LL", "'lL", "'D", "''s", "'", "\u2019s", "'n'",
                                 "'x")  # fmt: skip
_WORDS = ("the", "The", "THE", "hello", "World", "Turing", "I", "a", "naïve", "café", "ÉCOLE", "ÅNGSTRÖM",
          "straße", "ﬁne", "ﬁ", "ǅ", "Ωμέγα", "Ελλάδα", "Привет", "Москва", "東京", "한국어", "안녕하세요",
          "مرحبا", "עברית", "שלום", "हिन्दी", "नमस्ते", "ไทย", "ქართული")  # fmt: skip
_NUMBERS = ("0", "7", "42", "2024", "3.14", "1e-5", "1,000", "٣٤", "١٢٣", "四", "Ⅻ", "½", "²", "१२",
            "\U0001d7d9")  # fmt: skip
_SYMBOLS = ("!", "?", "?!", "...", "!!!", "--", "—", "(", ")", "()", "[]", "<", ">", "<|", "|>", "::", "#",
            "@", "$", "€", "%", "&", "*", "~", "`", "\\", "/", '"', "«", "»", "«»", "¿", "…", "“", "”",
            "©")  # fmt: skip
_EMOJI = ("\U0001f600", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
          "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466", "\U0001f3f3\ufe0f\u200d\U0001f308",
          "\u2764\ufe0f", "\U0001f1eb\U0001f1f7", "\u2615", "\U0001f916", "1\ufe0f\u20e3")  # fmt: skip
_BLANKS = (*WHITE_SPACE, *SEPARATORS, *[" "] * 10, *["\n"] * 3)  # runs of mostly plain spaces


def _letter_digit_other(category: str) -> str:
    return category[0] if category[0] in "LN" else "O"


@functools.lru_cache(maxsize=1)
def stable_characters() -> Mapping[str, tuple[str, ...]]:
    """Assigned characters by general category (``"Lu"``, ``"Nd"``, ...), ascending, leaving out surrogates,
    private use beyond the Basic Multilingual Plane, and the letters and digits whose class depends on the
    Unicode version (assigned after Unicode 3.2, or reclassified since).

    Examples
    --------
    >>> from lampref.testing import stable_characters
    >>> pools = stable_characters()
    >>> "a" in pools["Ll"], "Cs" in pools, "Cn" in pools
    (True, False, False)
    """
    old = unicodedata.ucd_3_2_0.category
    pools: dict[str, list[str]] = {}
    for cp in range(0x110000):
        c = chr(cp)
        cat = unicodedata.category(c)
        if cat in ("Cn", "Cs") or (cat == "Co" and cp > 0xFFFF):
            continue
        if _letter_digit_other(cat) != _letter_digit_other(old(c)):
            continue
        pools.setdefault(cat, []).append(c)
    return {cat: tuple(chars) for cat, chars in pools.items()}


def mixed_text(rng: random.Random, *, specials: Sequence[str] = ()) -> str:
    """One text of up to 14 pieces, each drawn with ``rng``: a word, a contraction, a whitespace run, a
    number, punctuation, an emoji sequence, one of ``specials``, a separator or a few characters of one
    general category of :func:`stable_characters`."""
    pools = stable_characters()
    cats = sorted(pools)
    parts = []
    for _ in range(rng.randint(0, 14)):
        k = rng.random()
        if k < 0.14:
            parts.append(rng.choice(_WORDS))
        elif k < 0.26:
            parts.append(rng.choice(CONTRACTIONS))
        elif k < 0.46:
            parts.append("".join(rng.choice(_BLANKS) for _ in range(rng.randint(1, 6))))
        elif k < 0.53:
            parts.append(rng.choice(_NUMBERS))
        elif k < 0.60:
            parts.append("".join(rng.choice(_SYMBOLS) for _ in range(rng.randint(1, 3))))
        elif k < 0.65:
            parts.append(rng.choice(_EMOJI))
        elif k < 0.68 and specials:
            parts.append(rng.choice(specials))
        elif k < 0.72:
            parts.append(rng.choice(SEPARATORS))
        else:
            pool = pools[rng.choice(cats)]
            parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 3))))
    return "".join(parts)


def mixed_texts(n: int, *, seed: int, specials: Sequence[str] = ()) -> list[str]:
    """``n`` texts of :func:`mixed_text`, the same for the same ``seed``."""
    rng = random.Random(seed)
    return [mixed_text(rng, specials=specials) for _ in range(n)]
