"""Regenerate tests/fixtures/tokenizer_golden.json: GPT-2 token ids computed by tiktoken.

Usage (from the repository root, with tiktoken installed)::

    python scripts/make_tokenizer_golden.py

tiktoken downloads the GPT-2 vocabulary on first use; this script needs no network: it seeds a temporary
tiktoken cache with lampref's vendored copies (lampref/gpt2/data), which have the same SHA-256 that
tiktoken checks. The fixture records the tiktoken version, the vocabulary hashes and this script's
name; tests/test_tokenizer.py refuses a fixture whose hashes differ from lampref's.

The strings are hand-picked edge cases plus seeded random mixtures (``lampref.testing.mixed_texts``) of
words, contractions in mixed case, whitespace runs (all 25 Unicode White_Space characters and the
\\x1c-\\x1f separators), digits, punctuation, emoji, ``<|endoftext|>`` and characters of every general
category. Letters and digits are drawn only from characters whose letter/digit/other class is the same in
Unicode 3.2 and in the running Python, so the fixture does not depend on the Unicode version of the Python
that runs the tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lampref.testing.texts import mixed_texts  # noqa: E402

DATA = ROOT / "lampref" / "gpt2" / "data"
OUT = ROOT / "tests" / "fixtures" / "tokenizer_golden.json"
# tiktoken_ext/openai_public.py, gpt2(): the files are cached under sha1(url)
GPT2_URLS = {
    "vocab.bpe": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
    "encoder.json": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
}
SEED = 20240326
N_RANDOM = 300

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # ZWJ sequence
EDGE_CASES = [
    "", " ", "  ", "\n", "\n\n", " \n", "\t\t a", "x" + " " * 20, " " * 20 + "x", "\r\n\r\n",
    "Hello world", "hello world", "Alan Turing theorized that computers would one day become",
    "don't", "DON'T", "I'LL", "it'S", "we've'll", "''s", "'s'", " 's", "rock 'n' roll", "'re're",
    "a\x1cb", "\x1c\x1d\x1e\x1f", " \x1c", "\x1c ", "\x1c's", "x\x1c'll", "\x1f\n\x1f", "a\xa0b", "a\u3000b",
    "x\x85y", "\u2028\u2029", "12345678901234567890", "3.14159", "1,000,000", "٣٤٥", "x²³", "e\u0301",
    "ǅemal", "\U0001f916 robots!", FAMILY + " family", "<|endoftext|>", "a<|endoftext|>b",
    "<|endoftext|><|endoftext|>", " <|endoftext|> ", "<|endoftext", "endoftext|>",
    "<|endoftext|>\n\nNext document", "\ud83d\ude00", "a\ud800b",
    "a" * 48, "!" * 16, "\t\t\t\t\tdef f():",
]  # fmt: skip


def seed_tiktoken_cache(cache_dir: Path) -> None:
    for name, url in GPT2_URLS.items():
        shutil.copyfile(DATA / name, cache_dir / hashlib.sha1(url.encode()).hexdigest())


def main() -> int:
    import tiktoken  # imported here so that --help-like inspection of this file needs nothing

    with tempfile.TemporaryDirectory() as tmp:
        seed_tiktoken_cache(Path(tmp))
        os.environ["TIKTOKEN_CACHE_DIR"] = tmp
        enc = tiktoken.get_encoding("gpt2")

    texts = EDGE_CASES + mixed_texts(N_RANDOM, seed=SEED, specials=["<|endoftext|>"])
    cases = []
    for i, text in enumerate(texts):
        allowed = "all" if i % 2 == 0 else "none"
        if allowed == "all":
            ids = enc.encode(text, allowed_special="all")
        else:
            ids = enc.encode(text, disallowed_special=())
        cases.append({"text": text, "allowed_special": allowed, "ids": ids})

    fixture = {
        "manifest": {
            "generator": "scripts/make_tokenizer_golden.py",
            "oracle": f"tiktoken {tiktoken.__version__}, encoding 'gpt2'",
            "python": platform.python_version(),
            "unicodedata": unicodedata.unidata_version,
            "seed": SEED,
            "encoder_json_sha256": hashlib.sha256((DATA / "encoder.json").read_bytes()).hexdigest(),
            "vocab_bpe_sha256": hashlib.sha256((DATA / "vocab.bpe").read_bytes()).hexdigest(),
            "allowed_special": "'all': encode(text, allowed_special='all'); "
            "'none': encode(text, disallowed_special=())",
            "n_cases": len(cases),
        },
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="ascii") as f:
        f.write("{\n")
        f.write(f' "manifest": {json.dumps(fixture["manifest"], indent=2)},\n "cases": [\n')
        f.write(",\n".join("  " + json.dumps(case) for case in cases))
        f.write("\n ]\n}\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(cases)} cases, tiktoken {tiktoken.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
