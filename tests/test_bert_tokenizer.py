"""Tests of lampref.bert.tokenizer: the committed Hugging Face golden ids, hand-checked cases, malformed
vocabularies and arguments, properties (ids in range, [CLS] first and [SEP] last, truncation, round trips
against a regular-expression oracle) and, when the ``tokenizers`` package is installed, agreement with its
BERT pipeline (the one behind ``transformers.BertTokenizer``) on generated text and on every assigned code
point.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lampref.bert.tokenizer import (
    BERT_BASE_UNCASED_VOCAB_SHA256,
    MAX_INPUT_CHARS_PER_WORD,
    WordPieceTokenizer,
    basic_tokenize,
    is_cjk,
    load_vocab,
    wordpiece,
)
from lampref.errors import InputTypeError, InputValueError, LamprefError, TokenizerError

FIXTURES = Path(__file__).parent / "fixtures" / "bert" / "vocab"
VOCAB = FIXTURES / "vocab.txt"
GOLDEN = FIXTURES / "golden.json"
SMALL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##b", "ab", "c", "##c", ",", "中"]


@functools.cache
def bert(**kwargs: Any) -> WordPieceTokenizer:
    return WordPieceTokenizer(VOCAB, **kwargs)


@functools.lru_cache(maxsize=1)
def golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return data


# ---------------------------------------------------------------- the vendored vocabulary and golden file
def test_vendored_vocab_is_bert_base_uncased() -> None:
    assert hashlib.sha256(VOCAB.read_bytes()).hexdigest() == BERT_BASE_UNCASED_VOCAB_SHA256
    tokens = load_vocab(VOCAB, sha256=BERT_BASE_UNCASED_VOCAB_SHA256)
    tok = bert()
    assert len(tokens) == tok.vocab_size == 30522
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id) == (0, 100, 101, 102)
    assert tok.special_ids == {0, 100, 101, 102, 103}
    assert tok.token_to_id("hello") == 7592
    assert tok.id_to_token(7592) == "hello"
    assert tok.token_to_id("no such token") is None


def test_golden_manifest_matches_the_vendored_vocab() -> None:
    manifest = golden()["manifest"]
    assert manifest["vocab_sha256"] == BERT_BASE_UNCASED_VOCAB_SHA256, "golden.json is stale: regenerate it"
    assert manifest["generator"] == "scripts/make_bert_tokenizer_golden.py"
    settings = {case["setting"] for case in golden()["cases"]}
    assert settings == set(manifest["settings"])
    assert len(golden()["cases"]) > 1000


@pytest.mark.parametrize("setting", ["uncased", "cased", "lower_keep_accents", "cased_strip_accents",
                                     "split_special", "truncate16"])  # fmt: skip
def test_golden_ids(setting: str) -> None:
    """Every text of the committed golden file gives Hugging Face's ids (over 512: the error, then the
    truncation)."""
    options = dict(golden()["manifest"]["settings"][setting])
    truncate = options.pop("truncate", False)
    tok = bert(**options)
    failures = []
    got: list[Any]
    for case in (c for c in golden()["cases"] if c["setting"] == setting):
        text, ids = case["text"], case["ids"]
        if len(ids) > tok.max_length:
            with pytest.raises(TokenizerError, match=rf"{len(ids)} tokens long .* max_length=512"):
                tok.encode(text)
            assert tok.encode(text, truncate=True) == case["truncated_ids"]
            got = [tok.cls_id, *map(tok.token_to_id, tok.tokenize(text)), tok.sep_id]
        else:
            got = tok.encode(text, truncate=truncate)
        if got != ids:
            failures.append(f"{text[:60]!r}: expected {ids[:12]}..., got {got[:12]}...")
    assert not failures, f"{len(failures)} mismatches, first: " + "; ".join(failures[:3])


def test_golden_covers_the_hard_cases() -> None:
    texts = {c["text"] for c in golden()["cases"]}
    for needed in ["", "   ", "a" * 101, "中文分词测试", "ΣΑΣ σας ΌΣΟΣ", "x[SEP]y", "😀 👍🏽 ❤️ 🇫🇷 ☕"]:
        assert needed in texts
    corpus_lines = [c for c in golden()["cases"] if c["text"].startswith('"""Find modules used by a script')]
    assert corpus_lines, "the golden file lacks the first lines of the bundled corpora"


# ---------------------------------------------------------------- hand-checked cases (ids from transformers)
@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("", [101, 102]),
        (" \t\n\x00\ufffd\u200b", [101, 102]),
        ("Hello, world!", [101, 7592, 1010, 2088, 999, 102]),
        ("café CAFÉ", [101, 7668, 7668, 102]),
        ("unaffable", [101, 14477, 20961, 3468, 102]),
        ("ΣΑΣ", [101, 1173, 14608, 29733, 102]),  # per-character lower case: σασ, not σας
        ("Hello [SEP] world", [101, 7592, 102, 2088, 102]),  # the literal special token
        ("a[cls]b", [101, 1037, 1031, 18856, 2015, 1033, 1038, 102]),  # case-sensitive
        ("\U0002b830x", [101, 100, 102]),  # 0x2B820-0x2B91F is not split, as in tokenizers
        ("a\u0378b", [101, 100, 102]),  # an unassigned code point is kept
        ("a\ue000b", [101, 11113, 102]),  # a private-use one is removed
        ("a" * 101, [101, 100, 102]),  # over MAX_INPUT_CHARS_PER_WORD
    ],
)
def test_known_ids(text: str, ids: list[int]) -> None:
    assert bert().encode(text) == ids


def test_long_word_limit_is_in_characters() -> None:
    tok = bert()
    assert MAX_INPUT_CHARS_PER_WORD == 100
    assert tok.tokenize("é" * 100) != ["[UNK]"]
    assert tok.tokenize("é" * 101) == ["[UNK]"]
    assert tok.tokenize("a" * 101 + " b") == ["[UNK]", "b"]


def test_wordpiece_reference() -> None:
    vocab = frozenset(SMALL)
    assert wordpiece("abc", vocab) == ["ab", "##c"]  # longest first: "ab", not "a" "##b"
    assert wordpiece("abbc", vocab) == ["ab", "##b", "##c"]
    assert wordpiece("ba", vocab) == ["[UNK]"]  # no "b" to start with
    assert wordpiece("a" * 5, vocab, max_chars=4, unk="?") == ["?"]
    assert basic_tokenize("Ab,C 中中") == ["ab", ",", "c", "中", "中"]
    assert is_cjk("\u4e00")
    assert is_cjk("\U0002b920")
    assert not is_cjk("\U0002b91f")
    assert not is_cjk("가")


def test_truncation_and_limit() -> None:
    tok = WordPieceTokenizer(SMALL, max_length=5)
    assert tok.encode("a c a") == [2, 5, 8, 5, 3]
    with pytest.raises(TokenizerError, match=r"6 tokens long with \[CLS\] and \[SEP\], over max_length=5"):
        tok.encode("a c a c")
    assert tok.encode("a c a c", truncate=True) == [2, 5, 8, 5, 3]
    assert WordPieceTokenizer(SMALL, max_length=2).encode("a c", truncate=True) == [2, 3]
    assert len(bert().encode("word " * 1000, truncate=True)) == 512


def test_decode() -> None:
    tok = WordPieceTokenizer(SMALL)
    ids = tok.encode("AB, abc 中 zz")
    assert tok.decode(ids) == "ab , abc 中"
    assert tok.decode(ids, skip_special_tokens=False) == "[CLS] ab , abc 中 [UNK] [SEP]"
    assert tok.decode(np.array(ids, dtype=np.int64)) == "ab , abc 中"
    assert tok.convert_ids_to_tokens([7, 9]) == ["ab", "##c"]
    assert bert().decode(bert().encode("Héllo, unaffable WORLD!")) == "hello , unaffable world !"


def test_split_special_tokens() -> None:
    assert WordPieceTokenizer(SMALL).tokenize("a[SEP]c") == ["a", "[SEP]", "c"]
    assert WordPieceTokenizer(SMALL, split_special_tokens=True).tokenize("a[SEP]c") == [
        "a", "[UNK]", "[UNK]", "[UNK]", "c"]  # fmt: skip


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "is empty"),
        (b"[PAD]\n[UNK]\n[SEP]\n", r"lacks the special token\(s\) \[CLS\]"),
        (b"[PAD]\n[UNK]\n[CLS]\n[SEP]\na\na\n", "token 'a' on lines 5 and 6"),
        (b"[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n", "line 3: token '' is empty"),
        (b"[PAD]\n[UNK]\n[CLS]\n[SEP]\na b\n", "line 5: token 'a b' is empty or contains whitespace"),
        (b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n\xff\n", "is not valid UTF-8"),
    ],
)
def test_malformed_vocab_file(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "vocab.txt"
    path.write_bytes(content)
    with pytest.raises(TokenizerError, match=match) as info:
        WordPieceTokenizer(path)
    assert str(path) in str(info.value)


def test_vocab_sources_and_checksum(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"\r\n".join(t.encode() for t in SMALL) + b"\r\n")
    assert load_vocab(path) == SMALL == load_vocab([t + "\n" for t in SMALL])
    with pytest.raises(TokenizerError, match=r"'wheel!model/vocab.txt' has sha256 [0-9a-f]{64}, expected 00"):
        load_vocab(SMALL, name="wheel!model/vocab.txt", sha256="00")
    with pytest.raises(TokenizerError, match="<vocabulary lines>"):
        load_vocab([])
    with pytest.raises(InputTypeError, match="line 2 is a int"):
        load_vocab(["[PAD]", 3])  # type: ignore[list-item]
    with pytest.raises(InputTypeError, match="got bytes"):
        load_vocab(b"[PAD]\n")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        load_vocab(tmp_path / "missing.txt")


def test_bad_arguments() -> None:
    with pytest.raises(InputValueError, match="max_length=1 is out of range"):
        WordPieceTokenizer(SMALL, max_length=1)
    with pytest.raises(InputTypeError, match="lower_case"):
        WordPieceTokenizer(SMALL, lower_case=1)  # type: ignore[arg-type]
    with pytest.raises(InputTypeError, match="strip_accents"):
        WordPieceTokenizer(SMALL, strip_accents="yes")  # type: ignore[arg-type]
    tok = WordPieceTokenizer(SMALL)
    with pytest.raises(InputTypeError, match="text must be a str, got bytes"):
        tok.encode(b"a")  # type: ignore[arg-type]
    with pytest.raises(InputTypeError, match="truncate"):
        tok.encode("a", truncate=None)  # type: ignore[arg-type]
    for bad, where in [([2, 12], "ids\\[1\\] = 12"), ([-1], "ids\\[0\\] = -1"), ([1.0], "ids\\[0\\] = 1.0"),
                       ([True], "ids\\[0\\] = True")]:  # fmt: skip
        with pytest.raises(TokenizerError, match=rf"{where} is not a token id; expected .* range\(0, 12\)"):
            tok.decode(bad)  # type: ignore[arg-type]
    with pytest.raises(TokenizerError, match="id = 99"):
        tok.id_to_token(99)
    assert issubclass(TokenizerError, LamprefError)
    assert issubclass(TokenizerError, ValueError)


# ---------------------------------------------------------------- properties
ASCII_WORDS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
ACCENTED = {"é": "e", "È": "e", "ñ": "n", "Ü": "u", "ç": "c", "Å": "a", "ô": "o", "ï": "i"}
SPACE_RUNS = st.sampled_from([" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", " \x00 ", "\u200b "])


@st.composite
def latin_texts(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.one_of(ASCII_WORDS, st.text(st.sampled_from(sorted(ACCENTED)), min_size=1)),
                          max_size=12))  # fmt: skip
    seps = draw(st.lists(SPACE_RUNS, min_size=len(words) + 1, max_size=len(words) + 1))
    return seps[0] + "".join(w + s for w, s in zip(words, seps[1:], strict=True))


def expected_words(text: str) -> list[str]:
    """The oracle: a regular expression on the lower-cased, accent-mapped text (table, not NFD)."""
    text = "".join(ACCENTED.get(ch, ch) for ch in text.replace("[SEP]", " ")).lower()
    return re.findall(r"[a-z0-9]+|[!-/:-@\[-`{-~]", text)


@given(latin_texts())
@example("Héllo,   WORLD!! [SEP] naïve")
@example("")
def test_round_trip_latin(text: str) -> None:
    """Printable ASCII and accented Latin letters always decompose: decode(encode(x)) is the normalised x."""
    tok = bert()
    ids = tok.encode(text, truncate=True)
    if len(ids) < tok.max_length:
        assert tok.unk_id not in ids
        assert tok.decode(ids) == " ".join(expected_words(text))


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=300), st.integers(2, 40))
@example("a" * 101, 2)
@example("[CLS] [SEP]" * 30, 5)
def test_ids_in_range_and_framed(text: str, max_length: int) -> None:
    tok, short = bert(), bert(max_length=max_length)
    ids = tok.encode(text, truncate=True)
    assert ids[0] == tok.cls_id
    assert ids[-1] == tok.sep_id
    assert all(type(i) is int and 0 <= i < tok.vocab_size for i in ids)
    cut = short.encode(text, truncate=True)
    assert len(cut) <= max_length
    assert cut == [*ids[: min(len(ids) - 1, max_length - 1)], tok.sep_id]


@given(st.text(max_size=40), st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=4))
def test_lone_surrogates_are_removed(text: str, surrogates: str) -> None:
    tok = bert()
    assert tok.encode(surrogates + text + surrogates) == tok.encode(text)


# ---------------------------------------------------------------- live comparison with tokenizers
@functools.cache
def hf_pipeline(lower_case: bool, strip_accents: bool | None) -> Any:
    pytest.importorskip("tokenizers")  # in the test extra: skipped only where not installed
    from tokenizers import BertWordPieceTokenizer, decoders

    tok = BertWordPieceTokenizer(
        str(VOCAB), lowercase=lower_case, strip_accents=strip_accents, clean_text=True,
        handle_chinese_chars=True,
    )  # fmt: skip
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return tok


def stable_alphabet() -> st.SearchStrategy[str]:
    """Characters whose class lampref's tables describe: all assigned ones under Unicode 14.0 (the tables'
    version); under another Unicode version, only those whose category is unchanged since Unicode 3.2."""
    chars = st.characters(exclude_categories=["Cs", "Cn"])
    if unicodedata.unidata_version == "14.0.0":
        return chars
    old = unicodedata.ucd_3_2_0
    return chars.filter(lambda c: old.category(c) == unicodedata.category(c))


VOCAB_WORDS = st.sampled_from(["the", "Hello", "unaffable", "CAFÉ", "naïve", "[SEP]", "[MASK]", "中文", "ΣΑΣ",
                               "don't", "3.14", "a" * 101, "İstanbul", "ﬁ", "😀"])  # fmt: skip
MIXED = st.lists(st.one_of(VOCAB_WORDS, st.text(stable_alphabet(), max_size=8), SPACE_RUNS), max_size=30)


@pytest.mark.parametrize(("lower_case", "strip_accents"), [(True, None), (False, None), (True, False)])
@given(parts=MIXED)
@example(parts=["ΣΑΣ", " ", "x[SEP]y", "\U0002b830", "\u1734\u166d\U00011938\U000111c9\u2e43"])
def test_matches_tokenizers(lower_case: bool, strip_accents: bool | None, parts: list[str]) -> None:
    hf = hf_pipeline(lower_case, strip_accents)
    tok = bert(lower_case=lower_case, strip_accents=strip_accents)
    text = "".join(parts)
    expected = hf.encode(text).ids
    assert tok.encode(text, truncate=True) == expected
    assert tok.decode(expected) == hf.decode(expected)


@pytest.mark.parametrize("corpus", ["prose", "code", "abstracts"])
def test_bundled_corpora_match_tokenizers(corpus: str) -> None:
    """The whole of each bundled corpus (about 70,000 word pieces each) gives tokenizers' pieces."""
    hf = hf_pipeline(True, None)
    root = Path(__file__).parent.parent / "lampref" / "data" / "corpora"
    text = (root / f"{corpus}.txt").read_text(encoding="utf-8")
    expected = hf.encode(text, add_special_tokens=False).ids
    got = [bert().token_to_id(t) for t in bert().tokenize(text)]
    n = min(len(got), len(expected))
    first = next((k for k in range(n) if got[k] != expected[k]), n)
    assert got == expected, (
        f"first difference at piece {first}: {got[first : first + 5]} vs {expected[first : first + 5]}"
    )


@pytest.mark.parametrize("lower_case", [True, False])
def test_every_code_point_matches_tokenizers(lower_case: bool) -> None:
    """Each assigned code point c, in "ac bc c": same pieces as tokenizers (punctuation, control, CJK, marks,
    case, decompositions). Compared 2,000 code points a call; a mismatch is narrowed to its code point."""
    hf = hf_pipeline(lower_case, None)
    tok = bert(lower_case=lower_case)
    stable = unicodedata.unidata_version == "14.0.0"
    category, old = unicodedata.category, unicodedata.ucd_3_2_0.category
    cps = [cp for cp in range(0x110000) if category(chr(cp)) not in ("Cs", "Cn")
           and (stable or old(chr(cp)) == category(chr(cp)))]  # fmt: skip

    def text(chunk: list[int]) -> str:
        return " ".join(f"a{chr(cp)} b{chr(cp)} {chr(cp)}" for cp in chunk)

    def differs(chunk: list[int]) -> bool:
        return bool(tok.tokenize(text(chunk)) != hf.encode(text(chunk), add_special_tokens=False).tokens)

    bad = []
    for k in range(0, len(cps), 2000):
        if differs(cps[k : k + 2000]):
            bad += [cp for cp in cps[k : k + 2000] if differs([cp])]
    assert not bad, f"{len(bad)} code points differ, first: {[hex(cp) for cp in bad[:10]]}"


# ---------------------------------------------------------------- tokenizer_config.json
def test_from_config_minilm() -> None:
    """all-MiniLM-L6-v2's tokenizer_config.json (vendored beside the vocabulary): the uncased tokenizer."""
    config = json.loads((FIXTURES / "tokenizer_config.json").read_text(encoding="utf-8"))
    tok = WordPieceTokenizer.from_config(VOCAB, config)
    assert (tok.lower_case, tok.strip_accents, tok.max_length) == (True, None, 512)
    assert tok.encode("Héllo, WORLD!") == [101, 7592, 1010, 2088, 999, 102]
    assert WordPieceTokenizer.from_config(SMALL, {}).max_length == 512
    assert WordPieceTokenizer.from_config(SMALL, {"model_max_length": 10**30}).max_length == 512
    assert WordPieceTokenizer.from_config(SMALL, {"model_max_length": 64}, max_length=32).max_length == 32
    added = {"content": "[MASK]", "lstrip": False}
    assert WordPieceTokenizer.from_config(SMALL, {"mask_token": added, "strip_accents": True}).strip_accents


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"tokenize_chinese_chars": False}, "tokenize_chinese_chars=False is not supported; expected True"),
        ({"do_basic_tokenize": False}, "do_basic_tokenize=False"),
        ({"never_split": ["[X]"]}, r"never_split=\['\[X\]'\]"),
        ({"unk_token": "<unk>"}, r"unk_token='<unk>' is not supported; expected '\[UNK\]'"),
        ({"cls_token": {"content": "<s>"}}, "cls_token="),
        ({"do_lower_case": "yes"}, "do_lower_case='yes' is not supported; expected true or false"),
        ({"strip_accents": 1}, "expected true or false or null"),
    ],
)
def test_from_config_refuses_what_it_does_not_model(config: dict[str, Any], match: str) -> None:
    with pytest.raises(TokenizerError, match=match) as info:
        WordPieceTokenizer.from_config(SMALL, config, config_name="ckpt/tokenizer_config.json")
    assert str(info.value).startswith("ckpt/tokenizer_config.json: ")
