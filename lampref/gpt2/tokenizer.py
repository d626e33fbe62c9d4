r"""The GPT-2 tokenizer: byte-level BPE in the standard library only.

GPT-2 turns text into token ids in three steps (Radford et al. 2019, OpenAI's ``encoder.py``):

1. *Pre-tokenisation* splits the text into pieces with the pattern
   ``'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+``
   (leftmost alternative first), so no token ever straddles a word, number, punctuation or
   whitespace boundary.
2. Each piece is encoded in UTF-8 and every byte is mapped to a printable character
   (:func:`bytes_to_unicode`), so the vocabulary never has to hold raw control bytes.
3. *Byte-pair encoding* repeatedly merges the adjacent pair with the lowest rank in ``vocab.bpe``
   (every occurrence of it, left to right) until no ranked pair is left; each resulting symbol is looked
   up in ``encoder.json``.

The pattern is written for the third-party ``regex`` module. Here it is rebuilt without it:
:func:`pretokenize` compiles the same pattern for the standard ``re`` module with explicit character
classes computed from :mod:`unicodedata`, and :func:`pretokenize_reference` is a plain scanner that
transcribes the pattern alternative by alternative; the tests check the two against each other and
against tiktoken.

Character classes, as tiktoken (and the ``regex`` module) define them:

* ``\p{L}``: general category ``L*`` (Lu, Ll, Lt, Lm, Lo); ``\p{N}``: ``N*`` (Nd, Nl, No).
* ``\s``: the Unicode ``White_Space`` property, 25 code points. This is *not* ``str.isspace()``, which
  also accepts the separators ``\x1c``-``\x1f``; for GPT-2 those four are ordinary symbols, so
  ``"a\x1cb"`` is three pieces and ``"\x1c\x1c"`` one.

The categories come from the running Python's :mod:`unicodedata` (``unicodedata.unidata_version``).
A letter or digit assigned in a newer Unicode version than that one is not ``\p{L}``/``\p{N}`` here,
so such text may split differently from a tokenizer built on newer tables.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import operator
import re
import unicodedata
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Literal, SupportsIndex

from ..errors import TokenizerError

__all__ = [
    "ENCODER_JSON_SHA256",
    "ENDOFTEXT",
    "VOCAB_BPE_SHA256",
    "Tokenizer",
    "bytes_to_unicode",
    "pretokenize",
    "pretokenize_reference",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
ENDOFTEXT = "<|endoftext|>"

# Unicode White_Space (PropList.txt); unchanged since Unicode 6.3. regex's and tiktoken's \s.
_WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")  # after an apostrophe; case-sensitive
_CACHE_LIMIT = 1 << 17  # pieces remembered by a Tokenizer before its BPE cache is cleared


def bytes_to_unicode() -> dict[int, str]:
    """Return GPT-2's map from the 256 byte values to printable characters.

    Bytes that are printable Latin-1 characters (``!``-``~``, ``¡``-``¬``, ``®``-``ÿ``) map to themselves;
    the other 68 (controls, space, ``\\xad``) map, in increasing order, to ``chr(256)``, ``chr(257)``, ...

    Returns
    -------
    dict[int, str]
        Byte value -> one character; a bijection onto 256 distinct characters.

    Examples
    --------
    >>> b2u = bytes_to_unicode()
    >>> b2u[ord("A")], b2u[ord(" ")], b2u[ord("\\n")]
    ('A', 'Ġ', 'Ċ')
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return dict(sorted(table.items()))


def _char_class(ch: str) -> str:
    """Classify one character for the pattern: ``"W"`` (``\\s``), ``"L"``, ``"N"`` or ``"O"`` (other)."""
    if ch in _WHITE_SPACE:
        return "W"
    major = unicodedata.category(ch)[0]
    return major if major in "LN" else "O"


def pretokenize_reference(text: str) -> list[str]:
    r"""Split `text` into GPT-2 pieces with a plain scanner (the specification of :func:`pretokenize`).

    At each position the alternatives of the pattern are tried in order and the first that matches is
    taken, exactly as a backtracking regex engine does:

    1. ``'s|'t|'re|'ve|'m|'ll|'d`` (case-sensitive);
    2.-4. an optional single space (U+0020) followed by a maximal run of letters, of digits, or of
       characters that are neither whitespace, letters nor digits;
    5. ``\s+(?!\S)``: a whitespace run that ends the text is taken whole; one followed by a
       non-whitespace character is taken less its last character (which may then prefix the next piece);
    6. ``\s+``: reached only for a single whitespace character before a non-whitespace one.

    Parameters
    ----------
    text : str
        Any string, taken as it is (no normalisation).

    Returns
    -------
    list[str]
        Pieces whose concatenation is `text`.

    Examples
    --------
    >>> pretokenize_reference("It's  2024!\n")
    ['It', "'s", ' ', ' 2024', '!', '\n']
    >>> pretokenize_reference("a\x1cb")
    ['a', '\x1c', 'b']
    """
    classes = [_char_class(ch) for ch in text]
    n = len(text)
    pieces = []
    i = 0
    while i < n:
        j = -1
        if text[i] == "'":  # 1. contractions
            for suffix in _CONTRACTIONS:
                if text.startswith(suffix, i + 1):
                    j = i + 1 + len(suffix)
                    break
        if j < 0:
            # 2.-4. ' ?' then a run of L, of N, or of O (class of the first character after the space)
            start = i + 1 if text[i] == " " and i + 1 < n and classes[i + 1] != "W" else i
            kind = classes[start]
            if kind != "W":
                j = start + 1
                while j < n and classes[j] == kind:
                    j += 1
            else:  # 5.-6. whitespace
                j = i
                while j < n and classes[j] == "W":
                    j += 1
                if j < n:  # followed by \S: give back one character, unless that empties the match
                    j = max(j - 1, i + 1)
        pieces.append(text[i:j])
        i = j
    return pieces


def _ranges(code_points: Iterable[int]) -> str:
    """Write sorted code points as the inside of a regex character class (``\\Uxxxxxxxx-\\Uyyyyyyyy``)."""
    out = []
    first = last = -2
    for cp in code_points:
        if cp != last + 1:
            if first >= 0:
                out.append(f"\\U{first:08x}" if first == last else f"\\U{first:08x}-\\U{last:08x}")
            first = cp
        last = cp
    if first >= 0:
        out.append(f"\\U{first:08x}" if first == last else f"\\U{first:08x}-\\U{last:08x}")
    return "".join(out)


@functools.lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    """GPT-2's pre-tokenisation pattern for the standard ``re`` module (built once, about 0.3 s)."""
    letters, numbers = [], []
    category = unicodedata.category
    for cp in range(0x110000):
        major = category(chr(cp))[0]
        if major == "L":
            letters.append(cp)
        elif major == "N":
            numbers.append(cp)
    L, N, S = _ranges(letters), _ranges(numbers), _ranges(sorted(map(ord, _WHITE_SPACE)))
    return re.compile(rf"'(?:[sdmt]|ll|ve|re)| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+|[{S}]+(?![^{S}])|[{S}]+")


def pretokenize(text: str) -> list[str]:
    r"""Split `text` into GPT-2 pieces (the fast version of :func:`pretokenize_reference`).

    Parameters
    ----------
    text : str
        Any string.

    Returns
    -------
    list[str]
        Pieces whose concatenation is `text`; each is byte-pair encoded on its own.

    Notes
    -----
    The pattern is GPT-2's with ``\p{L}``, ``\p{N}`` and ``\s`` replaced by explicit character classes
    (module docstring), compiled for :mod:`re` on first use.

    Examples
    --------
    >>> pretokenize("Hello world")
    ['Hello', ' world']
    >>> pretokenize("we'LL see   you\t\tthere")
    ['we', "'", 'LL', ' see', '  ', ' you', '\t', '\t', 'there']
    """
    return _pattern().findall(text)


def _fix_surrogates(text: str) -> str:
    """Join surrogate pairs and replace lone surrogates by U+FFFD, as tiktoken does before encoding."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _read_checked(path: Path, expected_sha256: str | None) -> bytes:
    data = path.read_bytes()
    if expected_sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected_sha256:
            raise TokenizerError(
                f"vocabulary file {str(path)!r} has sha256 {digest}, expected {expected_sha256} "
                f"(GPT-2's {path.name}, {len(data):,} bytes read); the file is corrupted or a different "
                "vocabulary; pass check_sha256=False to load it anyway"
            )
    return data


class Tokenizer:
    r"""GPT-2's byte-level BPE tokenizer (50,257 tokens), compatible with tiktoken's ``gpt2`` encoding.

    Parameters
    ----------
    encoder_json, vocab_bpe : str or os.PathLike, optional
        The vocabulary (token -> id) and the ranked merges. Default: the copies shipped in
        ``lampref/gpt2/data`` (see the README there for their provenance).
    check_sha256 : bool, default True
        Check both files against the SHA-256 of OpenAI's GPT-2 files (:data:`ENCODER_JSON_SHA256`,
        :data:`VOCAB_BPE_SHA256`) before using them.

    Raises
    ------
    TokenizerError
        If a file fails its checksum (the message names the file and the expected hash) or is malformed.
    OSError
        If a file cannot be read.

    Notes
    -----
    :meth:`encode` follows tiktoken's ``Encoding.encode``: the text is pre-tokenised
    (:func:`pretokenize`), each piece is byte-pair encoded, and results are cached per piece, so
    natural-language text costs mostly one dictionary lookup per word. A `Tokenizer` holds only
    read-only tables and a cache, and may be shared between threads.

    The merges follow OpenAI's ``encoder.py``: the pair with the lowest rank in ``vocab.bpe`` is merged
    at every occurrence. tiktoken instead merges one occurrence of the pair whose concatenation has the
    lowest token id; the two agree on every string of the test suite (including tiktoken comparisons on
    more than 10,000 generated strings).

    References
    ----------
    A. Radford, J. Wu, R. Child, D. Luan, D. Amodei, I. Sutskever, "Language Models are Unsupervised
    Multitask Learners", OpenAI, 2019 (the ``encoder.py`` of https://github.com/openai/gpt-2).

    Examples
    --------
    >>> tok = Tokenizer()
    >>> tok.encode("Hello world")
    [15496, 995]
    >>> tok.decode([15496, 995])
    'Hello world'
    >>> tok.encode("Hi<|endoftext|>", allowed_special="all")
    [17250, 50256]
    >>> tok.n_vocab, tok.eot_token
    (50257, 50256)
    """

    def __init__(
        self,
        encoder_json: str | Path | None = None,
        vocab_bpe: str | Path | None = None,
        *,
        check_sha256: bool = True,
    ) -> None:
        enc_path = Path(encoder_json) if encoder_json is not None else DATA_DIR / "encoder.json"
        bpe_path = Path(vocab_bpe) if vocab_bpe is not None else DATA_DIR / "vocab.bpe"
        enc_bytes = _read_checked(enc_path, ENCODER_JSON_SHA256 if check_sha256 else None)
        bpe_bytes = _read_checked(bpe_path, VOCAB_BPE_SHA256 if check_sha256 else None)

        try:
            encoder = json.loads(enc_bytes.decode("utf-8"))
        except ValueError as exc:
            raise TokenizerError(f"vocabulary file {str(enc_path)!r} is not UTF-8 JSON: {exc}") from None
        ids = list(encoder.values()) if isinstance(encoder, dict) else []
        n = len(ids)
        if n < 1 or not all(type(i) is int for i in ids) or sorted(ids) != list(range(n)):
            raise TokenizerError(
                f"vocabulary file {str(enc_path)!r} must be a JSON object mapping token strings to the "
                "ids 0, 1, ..., n-1, each once"
            )
        if ENDOFTEXT not in encoder:
            raise TokenizerError(f"vocabulary file {str(enc_path)!r} has no {ENDOFTEXT!r} token")

        byte_encoder = bytes_to_unicode()
        byte_decoder = {c: b for b, c in byte_encoder.items()}
        try:
            lines = bpe_bytes.decode("utf-8").split("\n")
            merges = [tuple(line.split()) for line in lines[1:] if line]
        except UnicodeDecodeError as exc:
            raise TokenizerError(f"merges file {str(bpe_path)!r} is not valid UTF-8: {exc}") from None
        for rank, pair in enumerate(merges):
            if len(pair) != 2 or pair[0] + pair[1] not in encoder:
                raise TokenizerError(
                    f"merges file {str(bpe_path)!r}, merge {rank} ({' '.join(pair)!r}): expected two "
                    "symbols whose concatenation is a token of the vocabulary"
                )

        self._encoder: dict[str, int] = encoder
        self._ranks: dict[tuple[str, ...], int] = {pair: rank for rank, pair in enumerate(merges)}
        self._special: dict[str, int] = {ENDOFTEXT: encoder[ENDOFTEXT]}
        self._id_to_bytes: list[bytes] = [b""] * n
        try:
            for token, i in encoder.items():
                self._id_to_bytes[i] = bytes(byte_decoder[c] for c in token)
        except KeyError as exc:
            raise TokenizerError(
                f"vocabulary file {str(enc_path)!r}: token with character {exc.args[0]!r}, which is not "
                "in GPT-2's byte-to-unicode alphabet"
            ) from None
        # bytes -> mapped characters, in C: latin-1 decoding is the identity on byte values
        self._byte_table = str.maketrans({chr(b): c for b, c in byte_encoder.items()})
        self._cache: dict[str, tuple[int, ...]] = {}

    # ---------------------------------------------------------------- properties
    @property
    def n_vocab(self) -> int:
        """Number of token ids, special tokens included (50,257 for GPT-2)."""
        return len(self._id_to_bytes)

    @property
    def eot_token(self) -> int:
        """Id of ``<|endoftext|>`` (50,256 for GPT-2)."""
        return self._special[ENDOFTEXT]

    @property
    def special_tokens_set(self) -> frozenset[str]:
        """The special tokens' texts: ``frozenset({'<|endoftext|>'})``."""
        return frozenset(self._special)

    def __repr__(self) -> str:
        return f"Tokenizer(n_vocab={self.n_vocab})"

    # ---------------------------------------------------------------- encoding
    def _bpe(self, piece: str) -> tuple[int, ...]:
        """Byte-pair encode one piece of pre-tokenised text (uncached)."""
        word = piece.encode("utf-8").decode("latin-1").translate(self._byte_table)
        token = self._encoder.get(word)
        if token is not None:  # as tiktoken does; each of GPT-2's 50,256 tokens BPE-encodes to itself
            return (token,)
        ranks = self._ranks
        parts = list(word)
        while len(parts) > 1:
            best = None
            best_rank = len(ranks)
            for pair in itertools.pairwise(parts):
                rank = ranks.get(pair, best_rank)
                if rank < best_rank:
                    best, best_rank = pair, rank
            if best is None:
                break
            first, second = best
            merged = first + second
            out = []
            i, n = 0, len(parts)
            while i < n:
                if i + 1 < n and parts[i] == first and parts[i + 1] == second:
                    out.append(merged)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        return tuple(self._encoder[p] for p in parts)

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode `text` ignoring special tokens (``<|endoftext|>`` is encoded as plain text).

        Parameters
        ----------
        text : str
            Any string; lone surrogates become U+FFFD (as in tiktoken).

        Returns
        -------
        list[int]
            Token ids.

        Examples
        --------
        >>> Tokenizer().encode_ordinary("<|endoftext|>")
        [27, 91, 437, 1659, 5239, 91, 29]
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        cache = self._cache
        ids: list[int] = []
        for piece in _pattern().findall(_fix_surrogates(text)):
            tokens = cache.get(piece)
            if tokens is None:
                tokens = self._bpe(piece)
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[piece] = tokens
            ids.extend(tokens)
        return ids

    def encode(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | Collection[str] = frozenset(),
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> list[int]:
        """Encode `text` into token ids, with tiktoken's handling of special tokens.

        Parameters
        ----------
        text : str
            Any string; lone surrogates become U+FFFD and surrogate pairs are joined (as in tiktoken).
        allowed_special : "all" or collection of str, default empty
            Special tokens (here only ``"<|endoftext|>"``) whose text is encoded as the special id.
        disallowed_special : "all" or collection of str, default "all"
            Special tokens whose text raises an error; ``"all"`` means every special token not in
            `allowed_special`. Pass ``()`` to encode such text as ordinary text instead.

        Returns
        -------
        list[int]
            Token ids.

        Raises
        ------
        TokenizerError
            If `text` contains a disallowed special token (a ``ValueError``, as in tiktoken).

        Examples
        --------
        >>> tok = Tokenizer()
        >>> tok.encode("Alan Turing theorized that computers would one day become")
        [36235, 39141, 18765, 1143, 326, 9061, 561, 530, 1110, 1716]
        >>> tok.encode("<|endoftext|>", allowed_special={"<|endoftext|>"})
        [50256]
        >>> tok.encode("<|endoftext|>", disallowed_special=())
        [27, 91, 437, 1659, 5239, 91, 29]
        >>> tok.encode("<|endoftext|>")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lampref.errors.TokenizerError: Encountered text corresponding to disallowed special token ...
        """
        allowed = self.special_tokens_set if allowed_special == "all" else frozenset(allowed_special)
        if disallowed_special == "all":
            disallowed = self.special_tokens_set - allowed
        else:
            disallowed = frozenset(disallowed_special)
        for token in sorted(disallowed):
            if token in text:
                raise TokenizerError(
                    f"Encountered text corresponding to disallowed special token {token!r}.\n"
                    f"If you want this text to be encoded as a special token, pass it to `allowed_special`, "
                    f"e.g. `allowed_special={{{token!r}, ...}}`.\n"
                    f"If you want this text to be encoded as normal text, disable the check for this token "
                    f"by passing `disallowed_special=(tok.special_tokens_set - {{{token!r}}})`.\n"
                    "To disable this check for all special tokens, pass `disallowed_special=()`."
                )
        specials = sorted(allowed & self._special.keys(), key=len, reverse=True)
        if not specials:
            return self.encode_ordinary(text)
        ids: list[int] = []
        splitter = "(" + "|".join(map(re.escape, specials)) + ")"
        for k, chunk in enumerate(re.split(splitter, text)):
            if k % 2:
                ids.append(self._special[chunk])
            elif chunk:
                ids.extend(self.encode_ordinary(chunk))
        return ids

    # ---------------------------------------------------------------- decoding
    def decode_bytes(self, tokens: Iterable[SupportsIndex]) -> bytes:
        """Concatenate the bytes of `tokens`.

        Parameters
        ----------
        tokens : iterable of int
            Token ids (Python or NumPy integers) in ``range(n_vocab)``.

        Returns
        -------
        bytes
            The UTF-8 bytes the tokens stand for; may end inside a character.

        Raises
        ------
        TokenizerError
            If an id is outside ``range(n_vocab)`` (the message gives its position and value).

        Examples
        --------
        >>> Tokenizer().decode_bytes([15496, 995, 50256])
        b'Hello world<|endoftext|>'
        """
        table = self._id_to_bytes
        n = len(table)
        out = []
        for position, t in enumerate(tokens):
            try:
                i = operator.index(t)
            except TypeError:
                i = -1
            if not 0 <= i < n:
                raise TokenizerError(
                    f"tokens[{position}] = {t!r} is not a token id; expected an integer in range(0, {n})"
                )
            out.append(table[i])
        return b"".join(out)

    def decode(self, tokens: Iterable[SupportsIndex], errors: str = "replace") -> str:
        """Decode token ids to text.

        Parameters
        ----------
        tokens : iterable of int
            Token ids in ``range(n_vocab)``.
        errors : str, default "replace"
            How invalid UTF-8 (a token sequence cut inside a character) is handled, as in
            :meth:`bytes.decode`; ``"replace"`` gives U+FFFD, like tiktoken.

        Returns
        -------
        str
            ``decode(encode(s)) == s`` for every string `s` without lone surrogates.

        Examples
        --------
        >>> tok = Tokenizer()
        >>> tok.decode(tok.encode("naïve café ☕"))
        'naïve café ☕'
        >>> tok.decode(tok.encode("☕")[:1])
        '�'
        """
        return self.decode_bytes(tokens).decode("utf-8", errors=errors)
