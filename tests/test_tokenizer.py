"""Tests of lampref.gpt2.tokenizer: golden ids, the committed tiktoken fixture, round trips, the
pre-tokeniser against its plain-scanner specification, checksums, special tokens and, when tiktoken is
installed, agreement with tiktoken's ``gpt2`` encoding on more than 10,000 varied strings.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import lampref.gpt2.tokenizer as tokmod
from lampref.errors import LamprefError, TokenizerError
from lampref.gpt2 import Tokenizer
from lampref.gpt2.tokenizer import (
    DATA_DIR,
    ENCODER_JSON_SHA256,
    ENDOFTEXT,
    VOCAB_BPE_SHA256,
    bytes_to_unicode,
    pretokenize,
    pretokenize_reference,
)
from lampref.testing.texts import CONTRACTIONS, SEPARATORS, WHITE_SPACE, mixed_texts, stable_characters

FIXTURE = Path(__file__).parent / "fixtures" / "tokenizer_golden.json"
# tiktoken_ext/openai_public.py, gpt2(): tiktoken caches each file under sha1(url)
TIKTOKEN_GPT2_URLS = {
    "vocab.bpe": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
    "encoder.json": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
}


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer()


def without_surrogates(text: str) -> str:
    """What tiktoken (and lampref) encode in place of `text`: surrogate pairs joined, lone ones U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


# ------------------------------------------------------------------------------------------ golden ids
def test_golden_ids(tok: Tokenizer) -> None:
    assert tok.encode("Hello world") == [15496, 995]
    alan = "Alan Turing theorized that computers would one day become"
    assert tok.encode(alan) == [36235, 39141, 18765, 1143, 326, 9061, 561, 530, 1110, 1716]
    assert tok.decode([36235, 39141, 18765, 1143, 326, 9061, 561, 530, 1110, 1716]) == alan
    assert tok.n_vocab == 50257
    assert tok.eot_token == 50256
    assert tok.special_tokens_set == frozenset({ENDOFTEXT})


def test_isspace_pitfall_regression(tok: Tokenizer) -> None:
    # \x1c-\x1f are str.isspace() but not \s for GPT-2: a scanner using isspace() splits "\x1c's" as
    # "\x1c" + "'s" and gives [216, 338]; tiktoken and GPT-2 give "\x1c'" + "s".
    assert tok.encode("\x1c's") == [216, 6, 82]
    assert pretokenize("a\x1cb") == ["a", "\x1c", "b"]
    assert pretokenize("\x1c\x1c x") == ["\x1c\x1c", " x"]
    assert pretokenize("\x1c\x1d\x1e\x1f") == ["\x1c\x1d\x1e\x1f"]


def test_golden_fixture(tok: Tokenizer) -> None:
    fixture = json.loads(FIXTURE.read_text(encoding="ascii"))
    manifest = fixture["manifest"]
    assert (manifest["encoder_json_sha256"], manifest["vocab_bpe_sha256"]) == (
        ENCODER_JSON_SHA256,
        VOCAB_BPE_SHA256,
    ), f"{FIXTURE} was made for another vocabulary; rerun {manifest['generator']}"
    cases = fixture["cases"]
    assert len(cases) == manifest["n_cases"] >= 300
    failures = []
    for case in cases:
        text = case["text"]
        if case["allowed_special"] == "all":
            ids = tok.encode(text, allowed_special="all")
        else:
            ids = tok.encode(text, disallowed_special=())
        if ids != case["ids"]:
            failures.append(f"{text!r}: got {ids}, tiktoken {case['ids']}")
        assert tok.decode(ids) == without_surrogates(text)
    assert not failures, f"{len(failures)} of {len(cases)} differ from {manifest['oracle']}:\n" + "\n".join(
        failures[:10]
    )


# ------------------------------------------------------------------------------------------ vendored files
def test_vendored_files_match_openai_gpt2() -> None:
    for name, size, digest in [
        ("encoder.json", 1_042_301, ENCODER_JSON_SHA256),
        ("vocab.bpe", 456_318, VOCAB_BPE_SHA256),
    ]:
        data = (DATA_DIR / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, digest), name
    assert (DATA_DIR / "README.md").is_file()


@pytest.mark.parametrize(
    ("name", "expected"), [("encoder.json", ENCODER_JSON_SHA256), ("vocab.bpe", VOCAB_BPE_SHA256)]
)
def test_checksum_mismatch_is_a_clear_error(tmp_path: Path, name: str, expected: str) -> None:
    bad = tmp_path / name
    bad.write_bytes((DATA_DIR / name).read_bytes() + b"\n")  # still loadable, different hash
    kwargs = {"encoder_json" if name == "encoder.json" else "vocab_bpe": bad}
    with pytest.raises(TokenizerError) as info:
        Tokenizer(**kwargs)
    message = str(info.value)
    assert str(bad) in message
    assert expected in message
    assert hashlib.sha256(bad.read_bytes()).hexdigest() in message
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, LamprefError)
    # the check can be switched off for files known to be equivalent
    assert Tokenizer(**kwargs, check_sha256=False).encode("Hello world") == [15496, 995]


@pytest.mark.parametrize(
    ("encoder_text", "bpe_text", "match"),
    [
        ("not json", None, "not UTF-8 JSON"),
        ("[1, 2]", None, "JSON object mapping"),
        ('{"a": 0, "b": 2}', None, "ids 0, 1, ..., n-1"),
        ('{"a": 0, "b": 1}', None, "no '<|endoftext|>'"),
        ('{"a": 0, "<|endoftext|>": 1}', "#version: 0.2\na b\n", "merge 0"),
        ('{"a": 0, "\\u0001": 1, "<|endoftext|>": 2}', "#version: 0.2\n", "byte-to-unicode"),
    ],
)
def test_malformed_vocabulary(tmp_path: Path, encoder_text: str, bpe_text: str | None, match: str) -> None:
    enc = tmp_path / "encoder.json"
    enc.write_text(encoder_text, encoding="utf-8")
    bpe = tmp_path / "vocab.bpe"
    bpe.write_text(bpe_text or "#version: 0.2\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match=match):
        Tokenizer(enc, bpe, check_sha256=False)


def test_missing_file_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError, match=r"nope\.json"):
        Tokenizer(tmp_path / "nope.json")


# ------------------------------------------------------------------------------------------ pieces
def test_bytes_to_unicode_is_a_printable_bijection() -> None:
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert all(c.isprintable() and not c.isspace() for c in table.values())
    assert table[ord(" ")] == "\u0120"
    assert table[0x1C] == "\u011c"


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("", []),
        ("it's", ["it", "'s"]),
        ("IT'S", ["IT", "'", "S"]),  # contractions are case-sensitive
        ("''s", ["''", "s"]),  # a punctuation run swallows the apostrophe
        ("x'll've", ["x", "'ll", "'ve"]),
        ("a  b", ["a", " ", " b"]),  # \s+(?!\S) gives back one space
        ("a\t\tb", ["a", "\t", "\t", "b"]),  # ... and the last tab is a piece of its own
        ("a   ", ["a", "   "]),  # trailing whitespace is one piece
        (" \n x", [" \n", " x"]),
        ("x 2024!!", ["x", " 2024", "!!"]),
        (" \u00a0x", [" ", "\u00a0", "x"]),  # only U+0020 prefixes a word
        ("e\u0301t\u00e9", ["e", "\u0301", "t\u00e9"]),  # combining marks are not letters
        ("x\u00b2\u2167", ["x", "\u00b2\u2167"]),  # No and Nl are numbers
        ("\x1c\x1cx", ["\x1c\x1c", "x"]),
    ],
)
def test_pretokenize_examples(text: str, pieces: list[str]) -> None:
    assert pretokenize(text) == pieces
    assert pretokenize_reference(text) == pieces


# Strings mixing arbitrary unicode (every category but surrogates), whitespace runs, the \x1c-\x1f
# separators, contractions in mixed case and special-token text.
fragments = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=8),
    st.text(st.sampled_from(WHITE_SPACE + SEPARATORS + "  "), min_size=1, max_size=6),
    st.sampled_from(CONTRACTIONS),
    st.text(st.sampled_from("'sStTrReEvVmMlLdD x1!"), min_size=1, max_size=6),
    st.text(st.characters(categories=["Nd", "Nl", "No", "Mn", "Mc", "So", "Sk", "Lm", "Lo"]), max_size=4),
    st.sampled_from([ENDOFTEXT, "<|", "|>", "endoftext", "\U0001f468\u200d\U0001f469", "\u2764\ufe0f"]),
)
texts = st.lists(fragments, max_size=10).map("".join)


@given(texts)
@example("\x1c's")
@example(" \x1c")
@example("\t\t a")
@example("'S'LL'll")
@example("x" + " " * 9)
@example(ENDOFTEXT + " " + ENDOFTEXT)
def test_roundtrip_and_reference_scanner(text: str) -> None:
    tok = _shared_tokenizer()
    pieces = pretokenize(text)
    assert pieces == pretokenize_reference(text)
    assert "".join(pieces) == text
    assert all(pieces)
    assert tok.decode(tok.encode(text, disallowed_special=())) == text
    assert tok.decode(tok.encode(text, allowed_special="all")) == text
    assert tok.decode(tok.encode_ordinary(text)) == text


@given(st.text())  # lone surrogates included
def test_roundtrip_of_any_python_string(text: str) -> None:
    tok = _shared_tokenizer()
    assert tok.decode(tok.encode(text, disallowed_special=())) == without_surrogates(text)


_TOKENIZER: list[Tokenizer] = []


def _shared_tokenizer() -> Tokenizer:
    # hypothesis tests cannot take function-scoped fixtures; build the tokenizer once per session
    if not _TOKENIZER:
        _TOKENIZER.append(Tokenizer())
    return _TOKENIZER[0]


def test_surrogates_are_handled_like_tiktoken(tok: Tokenizer) -> None:
    assert tok.encode("a\ud800b") == tok.encode("a\ufffdb")
    assert tok.encode("\ud83d\ude00") == tok.encode("\U0001f600") == [47249, 222]


def test_cache_limit_keeps_results(tok: Tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    text = " ".join(f"w{i}x" for i in range(50))
    expected = tok.encode(text)
    fresh = Tokenizer()
    monkeypatch.setattr(tokmod, "_CACHE_LIMIT", 7)
    assert fresh.encode(text) == expected
    assert len(fresh._cache) <= 7


def test_one_megabyte_encodes_quickly(tok: Tokenizer) -> None:
    rng = random.Random(1)
    words = [
        "the", "of", "and", "floating-point", "rounding", "error", "Higham", "1e-5", "x_i", "(",
        ")", ".", ",", "\n", "naïve", "über", "日本語", "It's", "we'll", "2024", "π",
    ]  # fmt: skip
    text = " ".join(rng.choice(words) for _ in range(140_000))[:1_000_000]
    start = time.perf_counter()
    ids = Tokenizer().encode(text)
    elapsed = time.perf_counter() - start
    assert tok.decode(ids) == text
    assert elapsed < 30, f"encoding 1 MB took {elapsed:.1f} s"  # about 0.5 s on one core


# ------------------------------------------------------------------------------------------ special tokens
def test_special_tokens_follow_tiktoken(tok: Tokenizer) -> None:
    plain = [27, 91, 437, 1659, 5239, 91, 29]
    assert tok.encode(ENDOFTEXT, allowed_special={ENDOFTEXT}) == [50256]
    assert tok.encode(ENDOFTEXT, allowed_special="all") == [50256]
    assert tok.encode(ENDOFTEXT, disallowed_special=()) == plain
    assert tok.encode(ENDOFTEXT, allowed_special=set(), disallowed_special=set()) == plain
    assert tok.encode_ordinary(ENDOFTEXT) == plain
    assert tok.encode("a<|endoftext|>b", allowed_special="all") == [64, 50256, 65]
    assert tok.encode("a " + ENDOFTEXT + ENDOFTEXT, allowed_special="all") == [64, 220, 50256, 50256]
    assert tok.encode("<|endoftext", allowed_special=()) == tok.encode_ordinary("<|endoftext")
    with pytest.raises(ValueError, match="disallowed special token '<\\|endoftext\\|>'") as info:
        tok.encode("x<|endoftext|>")
    assert isinstance(info.value, TokenizerError)
    assert "disallowed_special=()" in str(info.value)
    with pytest.raises(TokenizerError):  # explicitly disallowed wins over allowed, as in tiktoken
        tok.encode(ENDOFTEXT, allowed_special="all", disallowed_special={ENDOFTEXT})
    with pytest.raises(TypeError, match="str"):
        tok.encode(b"bytes")  # type: ignore[arg-type]


def test_decode(tok: Tokenizer) -> None:
    assert tok.decode(np.array([15496, 995], dtype=np.int64)) == "Hello world"
    assert tok.decode_bytes([15496, 995, 50256]) == b"Hello world<|endoftext|>"
    cut = tok.encode("\u2615")[:1]
    assert tok.decode(cut) == "\ufffd"
    with pytest.raises(UnicodeDecodeError):
        tok.decode(cut, errors="strict")
    for bad in (-1, 50257, 1.0, "1", None):
        with pytest.raises(TokenizerError, match=r"tokens\[1\] = .* range\(0, 50257\)"):
            tok.decode([0, bad])  # type: ignore[list-item]
    assert tok.decode([]) == ""
    assert repr(tok) == "Tokenizer(n_vocab=50257)"


# ------------------------------------------------------------------------------------------ tiktoken
@pytest.fixture(scope="module")
def tiktoken_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """tiktoken's ``gpt2`` encoding, loaded offline from a cache seeded with the vendored files."""
    tiktoken = pytest.importorskip("tiktoken")  # in the test extra: skipped only where not installed
    import tiktoken.load as tiktoken_load

    cache = tmp_path_factory.mktemp("tiktoken-cache")
    for name, url in TIKTOKEN_GPT2_URLS.items():
        shutil.copyfile(DATA_DIR / name, cache / hashlib.sha1(url.encode()).hexdigest())

    def no_network(blobpath: str) -> bytes:
        raise AssertionError(
            f"tiktoken tried to download {blobpath}: the seeded cache in {cache} does not match this "
            f"tiktoken ({tiktoken.__file__}); update TIKTOKEN_GPT2_URLS in {__file__}"
        )

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIKTOKEN_CACHE_DIR", str(cache))
        mp.setattr(tiktoken_load, "read_file", no_network)
        enc = tiktoken.get_encoding("gpt2")
    assert enc.encode("Hello world") == [15496, 995]
    return enc


def test_agrees_with_tiktoken_on_fuzzed_text(tok: Tokenizer, tiktoken_gpt2: Any) -> None:
    texts = mixed_texts(12_000, seed=21623, specials=[ENDOFTEXT])
    failures = []
    for i, text in enumerate(texts):
        kwargs = [{"allowed_special": "all"}, {"disallowed_special": ()}][i % 2]
        ours, theirs = tok.encode(text, **kwargs), tiktoken_gpt2.encode(text, **kwargs)
        if ours != theirs:
            failures.append(f"{text!r} ({kwargs}): lampref {ours}, tiktoken {theirs}")
    assert not failures, f"{len(failures)} of {len(texts)} differ:\n" + "\n".join(failures[:10])


def test_agrees_with_tiktoken_on_every_code_point(tok: Tokenizer, tiktoken_gpt2: Any) -> None:
    # every assigned character of stable class, next to letters, digits, spaces, apostrophes, separators
    contexts = ["a", " ", "1", "'s", "\x1c", "  ", "\n", "x ", "!"]
    code_points = sorted(ord(c) for pool in stable_characters().values() for c in pool)
    failures = []
    for start in range(0, len(code_points), 48):
        block = code_points[start : start + 48]
        text = "".join(chr(cp) + sep for cp, sep in zip(block, itertools.cycle(contexts)))
        ours, theirs = tok.encode_ordinary(text), tiktoken_gpt2.encode_ordinary(text)
        if ours != theirs:
            failures.append(f"U+{block[0]:04X}..U+{block[-1]:04X}: lampref {ours}, tiktoken {theirs}")
    assert not failures, f"{len(failures)} blocks differ:\n" + "\n".join(failures[:5])


def test_special_token_handling_agrees_with_tiktoken(tok: Tokenizer, tiktoken_gpt2: Any) -> None:
    texts = ["", ENDOFTEXT, "a" + ENDOFTEXT, ENDOFTEXT + " b\n", "<|endoftext", f" {ENDOFTEXT}{ENDOFTEXT}x"]
    options = [
        {},
        {"allowed_special": "all"},
        {"allowed_special": {ENDOFTEXT}},
        {"disallowed_special": ()},
        {"allowed_special": set(), "disallowed_special": set()},
        {"allowed_special": "all", "disallowed_special": {ENDOFTEXT}},
    ]
    for text, kwargs in itertools.product(texts, options):
        try:
            expected: list[int] | type[Exception] = tiktoken_gpt2.encode(text, **kwargs)
        except ValueError:
            expected = ValueError
        if expected is ValueError:
            with pytest.raises(ValueError, match="disallowed special token"):
                tok.encode(text, **kwargs)
        else:
            assert tok.encode(text, **kwargs) == expected, (text, kwargs)
        assert tok.n_vocab == tiktoken_gpt2.n_vocab
        assert tok.eot_token == tiktoken_gpt2.eot_token
