# ruff: noqa: RUF001  (the corpus holds look-alike characters on purpose)
"""Regenerate tests/fixtures/bert/vocab/golden.json: WordPiece ids computed by Hugging Face transformers.

Usage (from the repository root, with transformers installed; torch is not needed)::

    python scripts/make_bert_tokenizer_golden.py
    python scripts/make_bert_tokenizer_golden.py --unicode-tables

The first form writes the fixture: for every text of a varied corpus (hand-picked edge cases, seeded
random mixtures of words, accents, CJK, punctuation, code, emoji, control characters and whitespace, and
the first lines of the bundled corpora lampref/data/corpora/*.txt) and several tokenizer settings, the ids
of ``transformers.BertTokenizer`` (the ``tokenizers`` Rust pipeline, the one sentence-transformers uses)
on the vendored bert-base-uncased vocabulary. Where the pure-Python ``BertTokenizerLegacy`` (Google's
algorithm) gives other ids, they are recorded as ``legacy_ids``, for reference; for a text over 512 ids,
``truncated_ids`` holds Hugging Face's ``truncation=True, max_length=512``. The manifest records the
versions, the vocabulary hash, the seed and this script's name.

The second form prints the code points whose class (punctuation, format character, non-spacing mark, a
canonical decomposition) differs between the running Python's unicodedata and tokenizers' tables, found by
trying every code point: the tables lampref/bert/tokenizer.py carries.

Random texts use only characters assigned in Unicode 3.2 whose general category is the same there and in
the running Python, so the fixture does not depend on the Unicode version of the Python that runs the tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import sys
import textwrap
import unicodedata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VOCAB = ROOT / "tests" / "fixtures" / "bert" / "vocab" / "vocab.txt"
OUT = VOCAB.parent / "golden.json"
CORPORA = ROOT / "lampref" / "data" / "corpora"
SEED = 20261207
N_RANDOM = 300
# name -> (lampref WordPieceTokenizer keywords, encode keywords)
SETTINGS: dict[str, dict[str, Any]] = {
    "uncased": {},
    "cased": {"lower_case": False},
    "lower_keep_accents": {"lower_case": True, "strip_accents": False},
    "cased_strip_accents": {"lower_case": False, "strip_accents": True},
    "split_special": {"split_special_tokens": True},
    "truncate16": {"max_length": 16, "truncate": True},
}

WORDS = ["the", "The", "THE", "hello", "Turing", "naïve", "café", "CAFÉ", "straße", "Москва", "東京", "中文",
         "안녕하세요", "こんにちは", "カタカナ", "مرحبا", "שלום", "नमस्ते", "Ελλάδα", "ΣΑΣ", "ÅNGSTRÖM", "ﬁne",
         "İstanbul", "unaffable", "tokenization", "embeddings", "x", "I", "a", "1,000", "3.14", "2024",
         "e-mail", "don't", "U.S.A.", "[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]", "[cls]",
         "##ing"]  # fmt: skip
PUNCT = [*"!?.,;:-_()[]{}<>#@$%^&*~`\\/|\"'+=", "...", "—", "–", "«", "»", "¿", "¡", "…", "“", "”", "‘",
         "’", "·", "§", "¶", "€", "£", "°", "±", "×"]  # fmt: skip
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2009", "\u2028", "\u2029", "\x0b", "\x0c"]
CONTROLS = ["\x00", "\x01", "\x7f", "\x85", "\x1c", "\u200b", "\u200d", "\u00ad", "\ufeff", "\ufffd",
            "\ue000"]  # fmt: skip
EMOJI = ["\U0001f600", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\u2764\ufe0f",
         "\U0001f1eb\U0001f1f7", "\u2615", "\U0001f916", "1\ufe0f\u20e3"]  # fmt: skip

EDGE_CASES = [
    "", " ", "   ", "\n", "\t\r\n", "\x00", "\ufffd", "\u200b\u200b", "\x00\x01\x02 \x7f",
    "Hello, world!", "HELLO WORLD", "hello world", "Héllo wörld", "naïve café résumé", "Crème Brûlée",
    "ÀÁÂÃÄÅ àáâãäå ÇçÑñ", "e\u0301", "A\u030a", "ﬁ ﬂ ﬀ", "① ② ³ ½ Ⅻ", "㎏ ㍿ ℃", "ß ẞ", "ΣΑΣ σας ΌΣΟΣ",
    "İIıi", "Ǆǅǆ", "中文分词测试", "東京タワー", "日本語のテキスト", "한국어 텍스트", "中a文b", "𠀀𪜀𫝀",
    "\U0002b820\U0002b91f\U0002b920", "\uf900\ufa0e", "\u3400\u4dbf", "a\u2028b\u2029c", "a\x1cb\x1dc",
    "don't can't won't", "I'm 42 years old.", "$100.00 or €85,50 (15% off!)", "e-mail: a.b@c.org",
    "https://example.com/path?q=1&r=2#frag", "C:\\Users\\me\\file.txt", "[CLS] [SEP] [MASK] [PAD] [UNK]",
    "x[SEP]y", "[SEP][SEP]", "[[SEP]]", "[sep] [Sep]", "[MASK]ed", "##ing", "# ## ###", "unaffable",
    "def f(x):\n    return x ** 2  # square", "for (int i = 0; i < n; ++i) { a[i] += b[i]; }",
    "SELECT * FROM t WHERE a <> 'b';", "x = {'a': [1, 2.5e-3], \"b\": None}", "<html><body>hi</body></html>",
    "😀 👍🏽 ❤️ 🇫🇷 ☕", "emoji😀inside", "a" * 100, "a" * 101, "ab" * 60, "x" * 300 + " y",
    "supercalifragilisticexpialidocious " * 3, "Pneumonoultramicroscopicsilicovolcanoconiosis",
    "tab\tseparated\tvalues", "multiple   spaces    here", "   leading and trailing   ",
    "mixed\u00a0no-break\u3000ideographic space", "zero\u200bwidth", "soft\u00adhyphen", "bom\ufeffhere",
    "ａｂｃ ＡＢＣ １２３ ！", "ʻOkina ʼapostrophe", "a\u0345b \u0345", "\u1734 \u166d \U00011938",
    "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "Привет, мир!", "Γειά σου Κόσμε", "Xin chào thế giới",
    " ".join(["word"] * 600), "A long sentence. " * 200,
]  # fmt: skip


def stable_chars() -> list[str]:
    """Characters assigned in Unicode 3.2 whose general category has not changed since (BMP and beyond)."""
    old = unicodedata.ucd_3_2_0
    out = []
    for cp in range(0x20, 0x30000):
        ch = chr(cp)
        if 0xD800 <= cp < 0xE000 or old.category(ch) == "Cn" or old.category(ch) != unicodedata.category(ch):
            continue
        out.append(ch)
    return out


def random_texts(rng: random.Random, n: int) -> list[str]:
    """Seeded mixtures of words, punctuation, whitespace, control characters, emoji and random characters."""
    chars = stable_chars()
    pools = [WORDS, PUNCT, SPACES, CONTROLS, EMOJI, chars]
    weights = [8, 4, 4, 1, 1, 3]
    texts = []
    for _ in range(n):
        parts = [rng.choice(rng.choices(pools, weights)[0]) for _ in range(rng.randint(1, 24))]
        glue = rng.choice(["", " ", " "])
        texts.append(glue.join(parts))
    return texts


def corpus_lines(per_file: int = 5) -> list[str]:
    """The first non-empty lines of each bundled corpus."""
    out = []
    for path in sorted(CORPORA.glob("*.txt")):
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        out += lines[:per_file]
    return out


def hf_tokenizers(name: str) -> tuple[Any, Any, dict[str, Any]]:
    """(BertTokenizer, BertTokenizerLegacy, encode keywords) for one setting of SETTINGS."""
    from transformers import BertTokenizer
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    opts = dict(SETTINGS[name])
    max_length = opts.pop("max_length", 512)
    truncate = opts.pop("truncate", False)
    kwargs = {"do_lower_case": opts.get("lower_case", True), "strip_accents": opts.get("strip_accents")}
    kwargs["split_special_tokens"] = opts.get("split_special_tokens", False)
    call = {"truncation": truncate, "max_length": max_length} if truncate else {}
    fast = BertTokenizer(str(VOCAB), **kwargs)
    slow = BertTokenizerLegacy(str(VOCAB), **kwargs)  # type: ignore[no-untyped-call]
    return fast, slow, call


def build_cases() -> list[dict[str, Any]]:
    """Every (setting, text) case with Hugging Face's ids (and the legacy ids where they differ)."""
    rng = random.Random(SEED)
    texts = EDGE_CASES + corpus_lines() + random_texts(rng, N_RANDOM)
    cases = []
    for name in SETTINGS:
        fast, slow, call = hf_tokenizers(name)
        subset = texts if name == "uncased" else EDGE_CASES + texts[-60:]
        for text in subset:
            ids = fast(text, **call)["input_ids"]
            case: dict[str, Any] = {"setting": name, "text": text, "ids": ids}
            if len(ids) > 512:  # lampref refuses it unless truncate=True: record Hugging Face's truncation
                case["truncated_ids"] = fast(text, truncation=True, max_length=512)["input_ids"]
            legacy = slow(text, **call)["input_ids"]
            if legacy != ids:
                case["legacy_ids"] = legacy
            cases.append(case)
    return cases


def manifest() -> dict[str, Any]:
    import tokenizers
    import transformers

    return {
        "generator": "scripts/make_bert_tokenizer_golden.py",
        "oracle": "transformers.BertTokenizer (tokenizers BertNormalizer + BertPreTokenizer + WordPiece)",
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "python": platform.python_version(),
        "unidata_version": unicodedata.unidata_version,
        "vocab_sha256": hashlib.sha256(VOCAB.read_bytes()).hexdigest(),
        "seed": SEED,
        "settings": SETTINGS,
    }


def _ranges(cps: list[int]) -> str:
    runs: list[list[int]] = []
    for cp in cps:
        if runs and runs[-1][1] == cp - 1:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp])
    return " ".join(f"{a:04X}" if a == b else f"{a:04X}-{b:04X}" for a, b in runs)


def unicode_tables() -> dict[str, list[int]]:
    """Code points whose class differs between unicodedata and tokenizers (every assigned code point)."""
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer

    def normalizer(clean: bool, strip: bool) -> Any:
        return BertNormalizer(
            clean_text=clean, handle_chinese_chars=False, strip_accents=strip, lowercase=False
        )

    clean, strip, split = normalizer(True, False), normalizer(False, True), BertPreTokenizer()
    names = ("late P", "early P", "late Cf", "late Mn", "early Mn", "NFD")
    out: dict[str, list[int]] = {name: [] for name in names}
    for cp in range(0x110000):
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if 0xD800 <= cp < 0xE000 or cat == "Cn" or ch.isspace():
            continue
        is_p = (33 <= cp <= 126 and not ch.isalnum()) or cat[0] == "P"
        rust_p = len(split.pre_tokenize_str(f"a{ch}b")) == 3
        if is_p != rust_p:
            out["late P" if is_p else "early P"].append(cp)
        if cat == "Cf" and clean.normalize_str(f"a{ch}b") != "ab":
            out["late Cf"].append(cp)
        stripped = strip.normalize_str(ch)
        nfd = "".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) != "Mn")
        if cat == "Mn" and stripped == ch:
            out["late Mn"].append(cp)
        elif cat != "Mn" and stripped == "":
            out["early Mn"].append(cp)
        elif cat != "Mn" and stripped == ch and nfd != ch:
            out["NFD"].append(cp)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unicode-tables", action="store_true", help="print the tables, write nothing")
    args = parser.parse_args()
    if args.unicode_tables:
        for name, cps in unicode_tables().items():
            print(f"{name} ({len(cps)}):")
            print(textwrap.fill(_ranges(cps), 100) or "-")
        return 0
    cases = build_cases()
    lines = ",\n".join(json.dumps(case) for case in cases)  # one case a line: readable diffs
    text = f'{{"manifest": {json.dumps(manifest(), indent=1)},\n"cases": [\n{lines}\n]}}\n'
    OUT.write_text(text, encoding="utf-8")
    n_legacy = sum("legacy_ids" in c for c in cases)
    print(f"wrote {OUT.relative_to(ROOT)}: {len(cases)} cases, {n_legacy} where the legacy tokenizer differs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
