r"""BERT's WordPiece tokenizer in the standard library only.

BERT turns text into token ids in two stages (Devlin et al. 2019, Google's ``tokenization.py``), here as
Hugging Face ``tokenizers`` runs them (``BertNormalizer``, ``BertPreTokenizer``, ``WordPiece``): the
pipeline that ``transformers.BertTokenizer`` and sentence-transformers use for all-MiniLM-L6-v2.

1. *Basic tokenisation* (:func:`basic_tokenize`):

   * cleaning: NUL, U+FFFD and every control character (general category ``Cc``, ``Cf``, ``Cs``, ``Co``;
     unassigned code points, ``Cn``, are kept) are removed, except tab, newline and carriage return,
     which become spaces like every other whitespace character (category ``Zs``, U+2028, U+2029);
   * every CJK ideograph (:func:`is_cjk`) gets a space on either side, so each is a word of its own;
   * for uncased models, accents are stripped (NFD, then the non-spacing marks ``Mn`` dropped) and then
     each character is lower-cased on its own (``"ΣΑΣ"`` gives ``"σασ"``: no final-sigma rule);
   * the text is split on whitespace, and every punctuation character (:func:`is_punctuation`: all ASCII
     symbols that are not letters or digits, and Unicode category ``P*``) becomes a word of its own.

2. *WordPiece* (:func:`wordpiece`): each word is cut greedily, longest match first, into vocabulary
   entries, every piece after the first spelled with the ``##`` prefix; a word with more than
   :data:`MAX_INPUT_CHARS_PER_WORD` characters, or one that cannot be cut, is the single token ``[UNK]``.

:meth:`WordPieceTokenizer.encode` adds ``[CLS]`` in front and ``[SEP]`` at the end. As in Hugging Face, the
literal texts of the special tokens (``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``, exactly so
written) are matched in the raw text first and encoded as their ids.

Deliberate agreement with the Rust pipeline where Google's and the pure-Python ``BertTokenizerLegacy``
differ (each case is in the committed golden file): lower-casing is per character (no final sigma);
no NFC normalisation before the split; the CJK range U+2B820-U+2B91F is not split (``tokenizers`` checks
``0x2B920..=0x2CEAF`` where Google's code has ``0x2B820``).

The character classes come from the running Python's :mod:`unicodedata` (``unicodedata.unidata_version``),
less the characters of Unicode 9.0 to 14.0 that tokenizers' older tables do not classify (they are listed
in this module, and behave as ordinary characters, as in tokenizers). A Python with a Unicode newer than
14.0 classifies the punctuation, format characters and marks added since, which tokenizers does not.
"""

from __future__ import annotations

import hashlib
import operator
import os
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, SupportsIndex

from .._validate import check_bool, check_int
from ..errors import InputTypeError, TokenizerError

__all__ = [
    "BERT_BASE_UNCASED_VOCAB_SHA256",
    "MAX_INPUT_CHARS_PER_WORD",
    "SPECIAL_TOKENS",
    "WordPieceTokenizer",
    "basic_tokenize",
    "clean_text",
    "is_cjk",
    "is_control",
    "is_punctuation",
    "is_whitespace",
    "load_vocab",
    "wordpiece",
]

BERT_BASE_UNCASED_VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
MAX_INPUT_CHARS_PER_WORD = 100
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_REQUIRED = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
_PREFIX = "##"
# The CJK Unified Ideographs blocks and extensions, and the compatibility ideographs, as tokenizers' Rust
# BertNormalizer lists them (its extension-E range starts at 0x2B920, not 0x2B820).
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B920, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
_CACHE_LIMIT = 1 << 17  # words remembered by a tokenizer before its WordPiece cache is cleared
_CONFIG_TOKENS = {"unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                  "mask_token": "[MASK]"}  # fmt: skip
_CONFIG_MODELLED = {"tokenize_chinese_chars": True, "do_basic_tokenize": True}


def _code_points(spec: str) -> frozenset[int]:
    """Parse ``"061D 2E43-2E4F ..."`` (hexadecimal code points and inclusive ranges) into a set."""
    out: set[int] = set()
    for item in spec.split():
        lo, _, hi = item.partition("-")
        out.update(range(int(lo, 16), int(hi or lo, 16) + 1))
    return frozenset(out)


# Characters that Unicode 14.0 (Python 3.11's unicodedata) puts in category P*, Cf or Mn but that the
# character tables of tokenizers' Rust BertNormalizer and BertPreTokenizer (Unicode 8.0) do not know:
# tokenizers treats them as ordinary characters (not punctuation, not removed, not stripped), and so does
# this module; the few characters whose category changed since are listed after them. Found by
# scripts/make_bert_tokenizer_golden.py --unicode-tables (every code point, against tokenizers 0.23).
_LATE_PUNCTUATION = _code_points("""
061D 09FD 0A76 0C77 0C84 1B7D-1B7E 2E43-2E4F 2E52-2E5D 10EAD 10F55-10F59 10F86-10F89 1144B-1144F
1145A-1145B 1145D 11660-1166C 116B9 1183B 11944-11946 119E2 11A3F-11A46 11A9A-11A9C 11A9E-11AA2
11C41-11C45 11C70-11C71 11EF7-11EF8 11FFF 12FF1-12FF2 16E97-16E9A 16FE2 1E95E-1E95F
""")
_EARLY_PUNCTUATION = _code_points("166D 111C9")  # Po in Unicode 8.0, So and Mn now
_EARLY_NONSPACING_MARKS = _code_points("1734")  # Mn in Unicode 8.0, Mc now
_LATE_DECOMPOSITION = "\U00011938"  # its canonical decomposition (Unicode 13.0) is not in tokenizers' NFD
_LATE_FORMAT = _code_points("0890-0891 08E2 110CD 13430-13438")
_LATE_NONSPACING_MARKS = _code_points("""
07FD 0898-089F 08CA-08E1 09FE 0AFA-0AFF 0B55 0C04 0C3C 0D00 0D3B-0D3C 0D81 0EBA 180F 1885-1886
1ABF-1ACE 1DF6-1DFB A82C A8C5 A8FF A9BD 10D24-10D27 10EAB-10EAC 10F46-10F50 10F82-10F85 11070
11073-11074 110C2 111C9 111CF 1123E 1133B 11438-1143F 11442-11444 11446 1145E 1182F-11837
11839-1183A 1193B-1193C 1193E 11943 119D4-119D7 119DA-119DB 119E0 11A01-11A0A 11A33-11A38
11A3B-11A3E 11A47 11A51-11A56 11A59-11A5B 11A8A-11A96 11A98-11A99 11C30-11C36 11C38-11C3D 11C3F
11C92-11CA7 11CAA-11CB0 11CB2-11CB3 11CB5-11CB6 11D31-11D36 11D3A 11D3C-11D3D 11D3F-11D45 11D47
11D90-11D91 11D95 11D97 11EF3-11EF4 16F4F 16FE4 1CF00-1CF2D 1CF30-1CF46 1E000-1E006 1E008-1E018
1E01B-1E021 1E023-1E024 1E026-1E02A 1E130-1E136 1E2AE 1E2EC-1E2EF 1E944-1E94A
""")


# ---------------------------------------------------------------- character classes
def is_whitespace(ch: str) -> bool:
    """Whether `ch` separates words: space, tab, newline, carriage return, category ``Zs``, U+2028, U+2029.

    >>> is_whitespace("\\u3000"), is_whitespace("\\x0b"), is_whitespace("a")
    (True, False, False)
    """
    return ch in " \t\n\r\u2028\u2029" or unicodedata.category(ch) == "Zs"


def is_control(ch: str) -> bool:
    """Whether `ch` is removed by cleaning: category ``Cc``, ``Cf``, ``Cs`` or ``Co``, except ``\\t\\n\\r``.

    >>> is_control("\\x00"), is_control("\\u200b"), is_control("\\n")
    (True, True, False)
    """
    category = unicodedata.category(ch)
    if category == "Cf":
        return ord(ch) not in _LATE_FORMAT
    return category[0] == "C" and category != "Cn" and ch not in "\t\n\r"


def is_punctuation(ch: str) -> bool:
    """Whether `ch` is a word of its own: ASCII ``!``-``/``, ``:``-``@``, ``[``-`````, ``{``-``~``, or ``P*``.

    >>> is_punctuation("$"), is_punctuation("\\u00bf"), is_punctuation("\\u20ac")
    (True, True, False)
    """
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    if cp in _EARLY_PUNCTUATION:
        return True
    return unicodedata.category(ch)[0] == "P" and cp not in _LATE_PUNCTUATION


def is_cjk(ch: str) -> bool:
    """Whether `ch` is a CJK ideograph, a word of its own for BERT (hiragana, katakana, hangul are not).

    >>> is_cjk("中"), is_cjk("の"), is_cjk("\\U0002b820")
    (True, False, False)
    """
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


# ---------------------------------------------------------------- basic tokenisation
def clean_text(text: str) -> str:
    """Remove NUL, U+FFFD and control characters; turn every whitespace character into a space.

    >>> clean_text("a\\tb\\x00c\\ufffd\\u200bd\\u3000e")
    'a bcd e'
    """
    out = []
    for ch in text:
        if ch == "\x00" or ch == "\ufffd" or is_control(ch):
            continue
        out.append(" " if is_whitespace(ch) else ch)
    return "".join(out)


def _is_nonspacing_mark(ch: str) -> bool:
    """Whether accent stripping drops `ch`: category ``Mn``."""
    cp = ord(ch)
    if cp in _EARLY_NONSPACING_MARKS:
        return True
    return unicodedata.category(ch) == "Mn" and cp not in _LATE_NONSPACING_MARKS


def _normalize(text: str, lower_case: bool, strip_accents: bool) -> str:
    """BertNormalizer: clean, space out CJK ideographs, strip accents, lower-case (in that order)."""
    text = "".join(f" {ch} " if is_cjk(ch) else ch for ch in clean_text(text))
    if strip_accents:
        parts = (unicodedata.normalize("NFD", part) for part in text.split(_LATE_DECOMPOSITION))
        text = "".join(ch for ch in _LATE_DECOMPOSITION.join(parts) if not _is_nonspacing_mark(ch))
    if lower_case:
        text = "".join(ch.lower() for ch in text)  # per character, as Rust's char::to_lowercase
    return text


def _split_words(text: str) -> list[str]:
    """BertPreTokenizer: split on whitespace, and make every punctuation character a word of its own."""
    words: list[str] = []
    current: list[str] = []
    for ch in text:
        space = is_whitespace(ch)
        if space or is_punctuation(ch):
            if current:
                words.append("".join(current))
                current = []
            if not space:
                words.append(ch)
        else:
            current.append(ch)
    if current:
        words.append("".join(current))
    return words


def basic_tokenize(text: str, *, lower_case: bool = True, strip_accents: bool | None = None) -> list[str]:
    """Split `text` into BERT's words: cleaned, CJK and punctuation split, optionally lower-cased.

    Parameters
    ----------
    text : str
        Any string (lone surrogates, category ``Cs``, are removed with the other control characters).
    lower_case : bool, default True
        Lower-case every character (uncased models).
    strip_accents : bool or None, default None
        Decompose (NFD) and drop non-spacing marks; None means the value of `lower_case`, as in BERT.

    Returns
    -------
    list[str]
        The words, each cut into pieces by :func:`wordpiece`; empty for empty or whitespace-only text.

    Examples
    --------
    >>> basic_tokenize("Héllo, 世界!  It's")
    ['hello', ',', '世', '界', '!', 'it', "'", 's']
    >>> basic_tokenize("Héllo", lower_case=False)
    ['Héllo']
    """
    strip = lower_case if strip_accents is None else strip_accents
    return _split_words(_normalize(text, lower_case, strip))


def wordpiece(
    word: str, vocab: dict[str, int] | frozenset[str], *, unk: str = "[UNK]", max_chars: int = 100
) -> list[str]:
    """Cut one word into vocabulary entries, greedily, longest match first (the specification).

    Parameters
    ----------
    word : str
        One word of :func:`basic_tokenize`.
    vocab : dict or frozenset of str
        The vocabulary (membership is all that is used).
    unk : str, default "[UNK]"
        The token for a word that cannot be cut or is too long.
    max_chars : int, default 100
        Longest word cut; a longer one is `unk` (:data:`MAX_INPUT_CHARS_PER_WORD`).

    Returns
    -------
    list[str]
        Pieces whose concatenation, without the ``##`` prefixes, is `word`; or ``[unk]``.

    Examples
    --------
    >>> wordpiece("unaffable", {"un", "##aff", "##able", "##a"})
    ['un', '##aff', '##able']
    >>> wordpiece("xyz", {"x", "##y"})
    ['[UNK]']
    """
    if len(word) > max_chars:
        return [unk]
    pieces = []
    start = 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else _PREFIX + word[start:end]
            if piece in vocab:
                break
            end -= 1
        else:
            return [unk]
        pieces.append(piece)
        start = end
    return pieces


# ---------------------------------------------------------------- vocabulary
def _vocab_lines(source: str | os.PathLike[str] | Iterable[str], name: str | None) -> tuple[list[str], str]:
    """The lines of a vocabulary (file or iterable of str), without line ends, and the name to report."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name if name is not None else str(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TokenizerError(f"vocabulary file {label!r} is not valid UTF-8: {exc}") from None
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return [line.removesuffix("\r") for line in lines], label
    if isinstance(source, (bytes, bytearray)):
        raise InputTypeError("vocab must be a path or an iterable of str lines, got bytes; decode it first")
    label = name if name is not None else "<vocabulary lines>"
    lines = []
    for k, line in enumerate(source):
        if not isinstance(line, str):
            raise InputTypeError(f"vocabulary {label!r}: line {k + 1} is a {type(line).__name__}, not a str")
        lines.append(line.removesuffix("\n").removesuffix("\r"))
    return lines, label


def load_vocab(
    source: str | os.PathLike[str] | Iterable[str], *, name: str | None = None, sha256: str | None = None
) -> list[str]:
    r"""Read and check a BERT vocabulary: one token a line, the line number (from 0) being its id.

    Parameters
    ----------
    source : str, os.PathLike or iterable of str
        A ``vocab.txt`` file (UTF-8, ``\n`` or ``\r\n`` line ends), or its lines (line ends optional).
    name : str, optional
        What error messages call the vocabulary (default: the path, or ``"<vocabulary lines>"``).
    sha256 : str, optional
        Expected SHA-256 of the tokens written one a line, each followed by ``\n`` (for a file in that
        form, the file's hash), e.g. :data:`BERT_BASE_UNCASED_VOCAB_SHA256`.

    Returns
    -------
    list[str]
        The tokens, in id order.

    Raises
    ------
    TokenizerError
        If the vocabulary is not UTF-8, is empty, has an empty token, a token with whitespace, a token
        twice, lacks one of ``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]``, or fails `sha256`; the message names
        the vocabulary (and the line).
    OSError
        If the file cannot be read.

    Examples
    --------
    >>> load_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "##b"])[4:]
    ['a', '##b']
    """
    lines, label = _vocab_lines(source, name)
    if not lines:
        raise TokenizerError(f"vocabulary {label!r} is empty; expected one token a line")
    seen: dict[str, int] = {}
    for k, token in enumerate(lines):
        if not token or any(is_whitespace(ch) or ch in "\x0b\x0c\x85" for ch in token):
            raise TokenizerError(
                f"vocabulary {label!r}, line {k + 1}: token {token!r} is empty or contains whitespace"
            )
        if token in seen:
            raise TokenizerError(
                f"vocabulary {label!r}: token {token!r} on lines {seen[token] + 1} and {k + 1}; "
                "each token must appear once"
            )
        seen[token] = k
    missing = [t for t in _REQUIRED if t not in seen]
    if missing:
        raise TokenizerError(f"vocabulary {label!r} lacks the special token(s) {', '.join(missing)}")
    if sha256 is not None:
        digest = hashlib.sha256("".join(t + "\n" for t in lines).encode("utf-8")).hexdigest()
        if digest != sha256:
            raise TokenizerError(
                f"vocabulary {label!r} has sha256 {digest}, expected {sha256} ({len(lines):,} tokens read); "
                "it is a different vocabulary or a corrupted copy"
            )
    return lines


# ---------------------------------------------------------------- the tokenizer
class WordPieceTokenizer:
    r"""BERT's WordPiece tokenizer, as Hugging Face's ``BertTokenizer`` (``tokenizers`` pipeline) runs it.

    Parameters
    ----------
    vocab : str, os.PathLike or iterable of str
        The vocabulary (``vocab.txt``, or its lines); see :func:`load_vocab`.
    lower_case : bool, default True
        Lower-case the text (uncased models such as bert-base-uncased and all-MiniLM-L6-v2).
    strip_accents : bool or None, default None
        Strip accents (NFD, non-spacing marks dropped); None means the value of `lower_case`.
    max_length : int, default 512
        Most ids :meth:`encode` returns, ``[CLS]`` and ``[SEP]`` included (BERT's position table).
    split_special_tokens : bool, default False
        Encode the literal texts ``[CLS]``, ``[SEP]``, ... as ordinary text (Hugging Face's option of the
        same name) instead of as the special ids.
    name, sha256 : str, optional
        Passed to :func:`load_vocab`.

    Raises
    ------
    TokenizerError
        If the vocabulary is malformed (the message names it) or fails `sha256`.
    InputTypeError, InputValueError
        If a flag is not a bool, or `max_length` is not an integer >= 2.

    Notes
    -----
    :meth:`tokenize` matches the special tokens' texts, then runs :func:`basic_tokenize` and
    :func:`wordpiece` on the text between them (module docstring). Word pieces are cached per word.

    References
    ----------
    J. Devlin, M.-W. Chang, K. Lee, K. Toutanova, "BERT: Pre-training of Deep Bidirectional Transformers for
    Language Understanding", NAACL 2019 (the ``tokenization.py`` of https://github.com/google-research/bert).
    Y. Wu et al., "Google's Neural Machine Translation System", arXiv:1609.08144, 2016 (WordPiece).

    Examples
    --------
    >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "!", "un", "##aff"])
    >>> tok.tokenize("Hello, WORLD! unaff")
    ['hello', '[UNK]', 'world', '!', 'un', '##aff']
    >>> tok.encode("Hello world!")
    [2, 4, 5, 6, 3]
    >>> tok.decode(tok.encode("Hello world! unaff"))
    'hello world ! unaff'
    >>> tok.vocab_size, tok.cls_id, tok.sep_id, tok.pad_id, tok.unk_id
    (9, 2, 3, 0, 1)
    """

    def __init__(
        self,
        vocab: str | os.PathLike[str] | Iterable[str],
        *,
        lower_case: bool = True,
        strip_accents: bool | None = None,
        max_length: int = 512,
        split_special_tokens: bool = False,
        name: str | None = None,
        sha256: str | None = None,
    ) -> None:
        self.lower_case = check_bool(lower_case, "lower_case")
        self.strip_accents = None if strip_accents is None else check_bool(strip_accents, "strip_accents")
        self.max_length = check_int(max_length, "max_length", minimum=2)
        self.split_special_tokens = check_bool(split_special_tokens, "split_special_tokens")
        self._tokens: list[str] = load_vocab(vocab, name=name, sha256=sha256)
        self._ids: dict[str, int] = {t: i for i, t in enumerate(self._tokens)}
        self._special: dict[str, int] = {t: self._ids[t] for t in SPECIAL_TOKENS if t in self._ids}
        self._cache: dict[str, tuple[int, ...]] = {}

    @classmethod
    def from_config(
        cls,
        vocab: str | os.PathLike[str] | Iterable[str],
        config: Mapping[str, Any],
        *,
        name: str | None = None,
        config_name: str = "tokenizer_config.json",
        max_length: int | None = None,
    ) -> WordPieceTokenizer:
        """Build the tokenizer a Hugging Face ``tokenizer_config.json`` describes.

        Parameters
        ----------
        vocab : str, os.PathLike or iterable of str
            The vocabulary (see :func:`load_vocab`); `name` names it in errors.
        config : mapping
            The parsed ``tokenizer_config.json`` (``{}`` when the checkpoint has none). Read:
            ``do_lower_case`` (default True), ``strip_accents`` (None), ``model_max_length`` (512),
            ``split_special_tokens`` (False); checked: ``tokenize_chinese_chars`` and
            ``do_basic_tokenize`` must not be false, ``never_split`` must be empty, and the special tokens
            (``unk_token``, ``cls_token``, ...; strings or ``{"content": ...}``) must have BERT's names.
            Other keys are ignored.
        config_name : str, default "tokenizer_config.json"
            What error messages call `config`.
        max_length : int, optional
            Overrides ``model_max_length`` (a model passes its position table's size).

        Raises
        ------
        TokenizerError
            If a key holds a value this tokenizer does not model (the message names the key and file).

        Examples
        --------
        >>> cfg = {"do_lower_case": False, "model_max_length": 128, "cls_token": {"content": "[CLS]"}}
        >>> WordPieceTokenizer.from_config(["[PAD]", "[UNK]", "[CLS]", "[SEP]"], cfg)
        WordPieceTokenizer(vocab_size=4, lower_case=False, strip_accents=None, max_length=128)
        """

        def bad(key: str, expected: str) -> TokenizerError:
            return TokenizerError(
                f"{config_name}: {key}={config[key]!r} is not supported; expected {expected}"
            )

        for key, value in _CONFIG_MODELLED.items():
            if key in config and config[key] is not value:
                raise bad(key, f"{value} (the only setting lampref models)")
        if config.get("never_split") not in (None, [], ()):
            raise bad("never_split", "null or an empty list")
        for key, token in _CONFIG_TOKENS.items():
            value = config.get(key, token)
            if (value.get("content") if isinstance(value, Mapping) else value) != token:
                raise bad(key, repr(token))
        opts: dict[str, Any] = {}
        for key, option in (("do_lower_case", "lower_case"), ("strip_accents", "strip_accents"),
                            ("split_special_tokens", "split_special_tokens")):  # fmt: skip
            if key not in config:
                continue
            nullable = key == "strip_accents"
            if not isinstance(config[key], bool) and not (nullable and config[key] is None):
                raise bad(key, "true or false" + (" or null" if nullable else ""))
            opts[option] = config[key]
        if max_length is None:
            limit = config.get("model_max_length", 512)
            # transformers writes a huge number (1e30) for "no limit": BERT's 512 then
            max_length = limit if type(limit) is int and 2 <= limit <= 1_000_000 else 512
        return cls(vocab, max_length=max_length, name=name, **opts)

    # ---------------------------------------------------------------- properties
    @property
    def vocab_size(self) -> int:
        """Number of token ids (30,522 for bert-base-uncased)."""
        return len(self._tokens)

    @property
    def cls_id(self) -> int:
        """Id of ``[CLS]`` (101 in bert-base-uncased)."""
        return self._special["[CLS]"]

    @property
    def sep_id(self) -> int:
        """Id of ``[SEP]`` (102)."""
        return self._special["[SEP]"]

    @property
    def pad_id(self) -> int:
        """Id of ``[PAD]`` (0)."""
        return self._special["[PAD]"]

    @property
    def unk_id(self) -> int:
        """Id of ``[UNK]`` (100)."""
        return self._special["[UNK]"]

    @property
    def special_ids(self) -> frozenset[int]:
        """Ids of the special tokens present: ``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]`` and ``[MASK]``."""
        return frozenset(self._special.values())

    def __repr__(self) -> str:
        return (
            f"WordPieceTokenizer(vocab_size={self.vocab_size}, lower_case={self.lower_case}, "
            f"strip_accents={self.strip_accents}, max_length={self.max_length})"
        )

    def token_to_id(self, token: str) -> int | None:
        """Id of `token` (with its ``##`` prefix if any), or None if it is not in the vocabulary."""
        return self._ids.get(token)

    def id_to_token(self, i: SupportsIndex) -> str:
        """Token of id `i`; a :class:`TokenizerError` if `i` is not in ``range(vocab_size)``."""
        return self._tokens[self._check_id(i, "id")]

    def _check_id(self, t: object, where: str) -> int:
        try:
            i = operator.index(t)  # type: ignore[arg-type]
        except TypeError:
            i = -1
        if isinstance(t, bool) or not 0 <= i < len(self._tokens):
            raise TokenizerError(
                f"{where} = {t!r} is not a token id; expected an integer in range(0, {len(self._tokens)})"
            )
        return i

    # ---------------------------------------------------------------- encoding
    def _segments(self, text: str) -> list[tuple[str, bool]]:
        """`text` cut at the special tokens' literal texts: (segment, is_special) pairs, in order."""
        if not isinstance(text, str):
            raise InputTypeError(f"text must be a str, got {type(text).__name__}")
        if self.split_special_tokens or "[" not in text:
            return [(text, False)]
        out: list[tuple[str, bool]] = []
        start = i = 0
        while True:
            i = text.find("[", i)
            if i < 0:
                break
            hit = next((t for t in self._special if text.startswith(t, i)), None)
            if hit is None:
                i += 1
                continue
            out += [(text[start:i], False), (hit, True)]
            start = i = i + len(hit)
        out.append((text[start:], False))
        return out

    def _word_ids(self, word: str) -> tuple[int, ...]:
        ids = self._cache.get(word)
        if ids is None:
            pieces = wordpiece(word, self._ids, unk="[UNK]", max_chars=MAX_INPUT_CHARS_PER_WORD)
            ids = tuple(self._ids[p] for p in pieces)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[word] = ids
        return ids

    def _encode_body(self, text: str) -> list[int]:
        ids: list[int] = []
        for segment, special in self._segments(text):
            if special:
                ids.append(self._special[segment])
                continue
            for word in basic_tokenize(segment, lower_case=self.lower_case, strip_accents=self.strip_accents):
                ids.extend(self._word_ids(word))
        return ids

    def tokenize(self, text: str) -> list[str]:
        """Split `text` into word pieces, without ``[CLS]`` and ``[SEP]``.

        Parameters
        ----------
        text : str
            Any string; it is cleaned, split and (if the model is uncased) lower-cased as
            :func:`basic_tokenize` says.

        Returns
        -------
        list[str]
            Vocabulary entries (``##`` marks a piece that continues a word; ``[UNK]`` a word not cut), as
            many as the text needs: `max_length` applies only to :meth:`encode`.

        Examples
        --------
        >>> WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "##b"]).tokenize("AB [SEP] c")
        ['a', '##b', '[SEP]', '[UNK]']
        """
        return [self._tokens[i] for i in self._encode_body(text)]

    def encode(self, text: str, *, truncate: bool = False) -> list[int]:
        """Encode `text` as ``[CLS]`` + its word pieces + ``[SEP]``.

        Parameters
        ----------
        text : str
            Any string.
        truncate : bool, default False
            If the ids would be more than `max_length`, keep ``[CLS]``, the first ``max_length - 2`` word
            pieces and ``[SEP]`` (Hugging Face's ``truncation=True``) instead of raising.

        Returns
        -------
        list[int]
            Token ids; at least ``[cls_id, sep_id]`` (empty text), at most `max_length` of them.

        Raises
        ------
        TokenizerError
            If the ids are more than `max_length` and `truncate` is False (the message gives both numbers).
        InputTypeError
            If `text` is not a str or `truncate` not a bool.

        Examples
        --------
        >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"], max_length=4)
        >>> tok.encode(""), tok.encode("a a a a", truncate=True)
        ([2, 3], [2, 4, 4, 3])
        >>> tok.encode("a a a a")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lampref.errors.TokenizerError: text is 6 tokens long with [CLS] and [SEP], over max_length=4; ...
        """
        truncate = check_bool(truncate, "truncate")
        body = self._encode_body(text)
        if len(body) + 2 > self.max_length:
            if not truncate:
                raise TokenizerError(
                    f"text is {len(body) + 2} tokens long with [CLS] and [SEP], over max_length="
                    f"{self.max_length}; shorten it, or pass truncate=True to keep the first "
                    f"{self.max_length - 2} word pieces"
                )
            body = body[: self.max_length - 2]
        return [self.cls_id, *body, self.sep_id]

    # ---------------------------------------------------------------- decoding
    def decode(self, ids: Iterable[SupportsIndex], *, skip_special_tokens: bool = True) -> str:
        """Join the tokens of `ids` with spaces, gluing each ``##`` piece to the one before.

        This is Hugging Face's ``decode(ids, skip_special_tokens=..., clean_up_tokenization_spaces=False)``:
        text as the model saw it (lower-cased, accents stripped, punctuation spaced), ``[UNK]`` for what
        it could not cut.

        Parameters
        ----------
        ids : iterable of int
            Token ids (Python or NumPy integers) in ``range(vocab_size)``.
        skip_special_tokens : bool, default True
            Leave out ``[PAD]``, ``[CLS]``, ``[SEP]``, ``[MASK]`` and ``[UNK]``.

        Returns
        -------
        str

        Raises
        ------
        TokenizerError
            If an id is out of range (the message gives its position and value).

        Examples
        --------
        >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "##b"])
        >>> tok.decode([2, 4, 5, 4, 3]), tok.decode([2, 4, 5, 4, 3], skip_special_tokens=False)
        ('ab a', '[CLS] ab a [SEP]')
        """
        skip = check_bool(skip_special_tokens, "skip_special_tokens")
        tokens = [self._tokens[self._check_id(t, f"ids[{k}]")] for k, t in enumerate(ids)]
        if skip:
            tokens = [t for t in tokens if t not in self._special]
        return " ".join(tokens).replace(" " + _PREFIX, "")

    def convert_ids_to_tokens(self, ids: Sequence[SupportsIndex]) -> list[str]:
        """The tokens of `ids` (a :class:`TokenizerError` for an id out of range)."""
        return [self._tokens[self._check_id(t, f"ids[{k}]")] for k, t in enumerate(ids)]
