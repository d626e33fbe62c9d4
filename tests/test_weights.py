"""Hostile and malformed checkpoints, and the files the writers create.

Every loader must refuse a file it cannot read as stated with a lampref error naming the file and the key,
in time and memory proportional to what the file really holds: the hostile files here are a few kilobytes
on disk (the compressed ones a few hundred) whatever sizes they declare, and the peak of the memory Python
and NumPy allocate while loading them (``tracemalloc``) must stay under a few megabytes. Weights that hold
NaN or infinities are refused unless asked for, byte-swapped and float16 tensors are converted exactly
(oracle: NumPy's own float16 and byte-order conversions of the source arrays), and every writer creates
its files with the mode ``open()`` would give them under the current umask.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import struct
import tempfile
import tracemalloc
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lampref.errors import ConfigError, LamprefError, WeightsError
from lampref.gpt2 import GPT2, default_model
from lampref.gpt2.config import GPT2Config
from lampref.gpt2.safetensors import load_file, save_file
from lampref.gpt2.weights import (
    RANDOM_PARAMS_VERSION,
    GPT2Params,
    hf_shapes,
    load,
    load_llmc,
    random_params,
    save,
    save_llmc,
    save_npz,
)

TINY_CFG = GPT2Config(n_layer=2, n_head=2, n_embd=16, n_positions=32, vocab_size=64)
PEAK_LIMIT = 4 * 2**20  # bytes: the tiny model's tensors are 20 KB, every hostile file a few KB
TINY = random_params(TINY_CFG, rng=11, std=0.3, ln_spread=0.2)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


# ------------------------------------------------------------------------------------------ helpers
@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh temporary folder (hypothesis examples cannot share pytest's function-scoped tmp_path)."""
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@contextmanager
def small_peak(limit: int = PEAK_LIMIT) -> Iterator[None]:
    """Fail if the memory allocated inside the block (Python objects and NumPy buffers) peaks above limit."""
    tracemalloc.start()
    try:
        yield
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak <= limit, f"peak allocation {peak} bytes > {limit}"


def refuses(call: Any, *names: str, kinds: tuple[type[Exception], ...] = (WeightsError,)) -> str:
    """Run ``call`` (in small memory); it must raise one of ``kinds`` whose message holds every name."""
    with small_peak(), pytest.raises(kinds) as info:
        call()
    message = str(info.value)
    for name in names:
        assert name in message, f"{name!r} not in {message!r}"
    return message


def attempt(call: Any) -> tuple[Any, LamprefError | None]:
    """``(result, None)``, or ``(None, error)`` for a lampref error; any other exception propagates."""
    try:
        return call(), None
    except LamprefError as exc:
        return None, exc


def st_bytes(header: Any, data: bytes = b"") -> bytes:
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(blob)) + blob + data


def st_header(tensors: dict[str, np.ndarray]) -> tuple[dict[str, Any], bytes]:
    """A safetensors header and data buffer, written here from the format description (F32 only)."""
    header: dict[str, Any] = {}
    chunks, pos = [], 0
    for key, arr in tensors.items():
        raw = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[key] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [pos, pos + len(raw)]}
        chunks.append(raw)
        pos += len(raw)
    return header, b"".join(chunks)


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


def npy_raw(descr: Any, fortran: bool, shape: Any, data: bytes) -> bytes:
    """A .npy file with any header fields (version 1.0), written from the format description."""
    text = f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape}, }}"
    text += " " * (-(10 + len(text) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1") + data


def write_npz(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)
    return path


def tiny_members(**replace: bytes) -> dict[str, bytes]:
    members = {f"{k}.npy": npy_bytes(v) for k, v in TINY.state_dict().items()}
    members.update({f"{k}.npy": v for k, v in replace.items()})
    return members


def hf_dir(root: Path, config: Any = None, tensors: dict[str, np.ndarray] | None = None) -> Path:
    d = root / "hf"
    d.mkdir(exist_ok=True)
    cfg = TINY_CFG.to_hf() if config is None else config
    (d / "config.json").write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    save_file(TINY.state_dict() if tensors is None else tensors, d / "model.safetensors")
    return d


# ----------------------------------------------------------------- sizes checked against the file
@given(index=st.integers(min_value=2, max_value=10**60), fmt=st.sampled_from(["safetensors", "npz"]))
@example(index=99_999_999_999, fmt="safetensors")
@example(index=99_999_999_999, fmt="npz")
@example(index=2, fmt="safetensors")
def test_issue11_item04_block_index_beyond_the_file(index: int, fmt: str) -> None:
    """A key h.<huge>.x in a small file made the loader enumerate 12 x <huge> names before any check."""
    key = f"h.{index}.ln_1.weight"
    with scratch() as root:
        path = root / f"m.{fmt}"
        extra = {key: np.zeros(16, np.float32)}
        if fmt == "safetensors":
            path.write_bytes(st_bytes(*st_header({**TINY.state_dict(), **extra})))
        else:
            write_npz(path, tiny_members(**{key: npy_bytes(extra[key])}))
        refuses(lambda: load(path, n_head=2), str(path), key)


@given(
    field=st.sampled_from(["n_layer", "n_embd", "n_head", "vocab_size", "n_positions"]),
    value=st.integers(min_value=1, max_value=2**40),
    via=st.sampled_from(["config.json", "config="]),
)
@example(field="n_layer", value=10**7, via="config.json")
@example(field="n_layer", value=10**7, via="config=")
@example(field="n_layer", value=2**31 - 1, via="config.json")
def test_issue11_item04_config_sizes_beyond_the_file(field: str, value: int, via: str) -> None:
    """A config declaring 10**7 blocks beside a 20 KB file made the loader build 12 x 10**7 names first."""
    hf = {**TINY_CFG.to_hf(), field: value}
    if field == "n_embd":
        hf["n_head"] = 1
    with scratch() as root:
        d = hf_dir(root, hf)
        try:
            cfg = GPT2Config.from_hf(hf)
        except ConfigError:
            cfg = None
        if via == "config=" and cfg is None:
            return  # the caller's configuration cannot even be built
        sizes = (cfg.n_layer, cfg.n_embd, cfg.n_positions, cfg.vocab_size) if cfg else None
        if sizes == (2, 16, 32, 64):  # the tensors' shapes: any head count that divides 16 loads
            assert load(d).config == cfg
            return
        given_config = cfg if via == "config=" else None
        refuses(lambda: load(d, config=given_config), str(d), kinds=(WeightsError, ConfigError))


@given(n_layer=st.integers(min_value=3, max_value=2**62))
@example(n_layer=10**9)
def test_issue11_item04_state_dict_block_count_beyond_the_tensors(n_layer: int) -> None:
    """from_state_dict(state, 10**9) listed 12 x 10**9 names before finding the first missing one."""
    refuses(lambda: GPT2Params.from_state_dict(TINY.state_dict(), n_layer), "'h.2.ln_1.weight'")


@given(shape=st.lists(st.one_of(st.just(0), st.integers(min_value=0, max_value=2**70)), max_size=70))
@example(shape=[10**30, 0])
@example(shape=[2**62, 2**62, 0])
@example(shape=[0] + [1] * 40)
@example(shape=[0, 2**58])
def test_issue11_item04_safetensors_shape_numpy_cannot_index(shape: list[int]) -> None:
    """A zero-size tensor whose other dimensions overflow (or of 40 dimensions) raised NumPy's ValueError."""
    nbytes = 4 * math.prod(shape)
    if nbytes > 64:
        shape = [*shape, 0]
        nbytes = 0
    header = {"t": {"dtype": "F32", "shape": shape, "data_offsets": [0, nbytes]}}
    with scratch() as root:
        path = root / "t.safetensors"
        path.write_bytes(st_bytes(header, bytes(nbytes)))
        with small_peak():
            out, error = attempt(lambda: load_file(path))
    if error is None:
        assert out["t"].shape == tuple(shape)
    else:
        assert isinstance(error, WeightsError)
        assert str(path) in str(error)
        assert "'t'" in str(error)


@pytest.fixture(scope="module")
def npz_bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Archives of a few hundred KB whose members inflate to 128 MB of zeros (written once per module)."""
    root = tmp_path_factory.mktemp("bombs")
    big = 2**27  # bytes: 128 MiB, beyond the 64 MiB any archive may inflate to

    def bomb(path: Path, members: dict[str, bytes], name: str, header: bytes) -> Path:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for key, raw in members.items():
                zf.writestr(key, raw)
            with zf.open(name, "w", force_zip64=True) as f:
                f.write(header)
                zeros = bytes(2**22)
                for _ in range(big // len(zeros)):
                    f.write(zeros)
        return path

    def header(shape: tuple[int, ...]) -> bytes:
        return npy_raw("<f4", False, shape, b"")

    V, C = big // (4 * 64), 64  # wte alone inflates to 128 MiB
    cfg = GPT2Config(n_layer=1, n_head=1, n_embd=C, n_positions=4, vocab_size=V)
    zero_model = {f"{k}.npy": npy_bytes(np.zeros(s, np.float32)) for k, s in hf_shapes(cfg).items()}
    del zero_model["wte.weight.npy"]
    return {
        "junk.npy": bomb(root / "unexpected.npz", tiny_members(), "junk.npy", header((big // 4,))),
        "wte.weight.npy": bomb(root / "needed.npz", zero_model, "wte.weight.npy", header((V, C))),
    }


@pytest.mark.parametrize("member", ["junk.npy", "wte.weight.npy"])
def test_issue11_item04_npz_bomb_refused_before_decompressing(
    npz_bombs: dict[str, Path], member: str
) -> None:
    """A small .npz holding a member that inflates to 128 MB was decompressed whole before any check."""
    path = npz_bombs[member]
    assert path.stat().st_size < 2**20
    refuses(lambda: load(path, n_head=1), str(path), member.removesuffix(".npy"))


DESCRS = ["<f4", ">f4", "<f2", "|b1", "<f8", ">i4", "|O", "|V4", "<c8", "|S3", "<U2", [("a", "<f4")]]


@given(
    name=st.sampled_from(sorted(TINY.state_dict())),
    descr=st.sampled_from(DESCRS),
    fortran=st.booleans(),
    shape=st.one_of(
        st.lists(st.integers(min_value=-3, max_value=2**64), max_size=40).map(tuple),
        st.sampled_from([(16,), (16, 48), (48, 16), (64, 16), (0,), ()]),
    ),
    data_len=st.integers(min_value=0, max_value=200),
    compression=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
)
@example(name="ln_f.bias", descr="<f4", fortran=False, shape=(2**40,), data_len=64, compression=8)
@example(name="ln_f.bias", descr="<f4", fortran=False, shape=(-1,), data_len=64, compression=0)
@example(name="ln_f.bias", descr="|O", fortran=False, shape=(16,), data_len=64, compression=0)
@example(name="ln_f.bias", descr="<f4", fortran=False, shape=(10**30, 0), data_len=0, compression=0)
@example(name="wpe.weight", descr="<f4", fortran=False, shape=(0, 0), data_len=0, compression=0)
@example(name="ln_f.bias", descr="<f4", fortran=False, shape="(16, \xab", data_len=64, compression=0)  # type: ignore[arg-type]
def test_issue11_item04_npz_member_sizes_must_match_their_header(
    name: str, descr: Any, fortran: bool, shape: tuple[int, ...], data_len: int, compression: int
) -> None:
    """Every .npy header field, however hostile, gives a correct load or a WeightsError naming the member."""
    raw = npy_raw(descr, fortran, shape, bytes(range(256))[:data_len])
    with scratch() as root:
        path = write_npz(root / "m.npz", tiny_members(**{name: raw}), compression)
        with small_peak():
            ckpt, error = attempt(lambda: load(path, n_head=2))
    if error is None:  # the header happened to describe the right shape: the tensor is what the bytes say
        arr = np.frombuffer(raw[-data_len:] if data_len else b"", dtype=np.dtype(descr))
        got = ckpt.params.state_dict()[name]
        np.testing.assert_array_equal(got.ravel(order="F" if fortran else "C"), arr.astype(np.float32))
    else:  # a ConfigError where the shapes infer an invalid configuration (a wpe of 0 rows)
        assert isinstance(error, (WeightsError, ConfigError))
        assert str(path) in str(error)


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_issue11_item04_npz_lying_zip_directory_or_corrupt_data(tmp_path: Path, compression: int) -> None:
    """A zip directory whose size or checksum disagrees with the member's bytes gives a WeightsError."""
    good = write_npz(tmp_path / "m.npz", tiny_members(), compression).read_bytes()
    with zipfile.ZipFile(tmp_path / "m.npz") as zf:
        info = zf.getinfo("wte.weight.npy")
    # the central directory entry of wte.weight.npy: its name at +46, its CRC at +16, its size at +24
    name_at = good.index(b"wte.weight.npy", good.index(b"PK\x01\x02"))
    crc_at, size_at = name_at - 46 + 16, name_at - 46 + 24
    assert good[size_at : size_at + 4] == struct.pack("<I", info.file_size)
    for label, at, value in (
        ("crc", crc_at, info.CRC ^ 1),
        ("larger", size_at, info.file_size + 2**30),
        ("smaller", size_at, info.file_size - 4),
    ):
        bad = tmp_path / f"{label}.npz"
        bad.write_bytes(good[:at] + struct.pack("<I", value) + good[at + 4 :])
        refuses(lambda bad=bad: load(bad, n_head=2), str(bad), "wte.weight")


@given(
    fields=st.fixed_dictionaries(
        {k: st.integers(min_value=-(2**31), max_value=2**31 - 1) for k in ("maxT", "V", "L", "NH", "C", "Vp")}
    ),
    version=st.sampled_from([3, 5]),
    tail=st.integers(min_value=0, max_value=4096),
)
@example(fields={"maxT": 1, "V": 1, "L": 2**31 - 1, "NH": 1, "C": 1, "Vp": 1}, version=3, tail=4096)
def test_llmc_header_fields_checked_against_the_file_size(
    fields: dict[str, int], version: int, tail: int
) -> None:
    """llm.c header fields of any value are checked against the file's size before anything is read."""
    header = np.zeros(256, "<i4")
    header[:8] = [20240326, version, *fields.values()]
    with scratch() as root:
        path = root / "m.bin"
        path.write_bytes(header.tobytes() + bytes(tail))
        with small_peak():
            ckpt, error = attempt(lambda: load_llmc(path))
    if error is None:  # only a file of exactly the declared size loads (all zeros here)
        assert 1024 + ckpt.config.n_params * (4 if version == 3 else 2) <= path.stat().st_size
        assert all(not a.any() for _, a in ckpt.params.named_arrays())
    else:
        assert isinstance(error, (WeightsError, ConfigError))
        assert str(path) in str(error)


# ----------------------------------------------------------------------------------- JSON documents
def _nested(depth: int, bracket: str) -> str:
    """A valid JSON document nested ``depth`` levels deep."""
    if bracket == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("bracket", ["[", "{"])
@pytest.mark.parametrize("document", ["safetensors header", "config.json", "index.json"])
def test_issue11_item05_deeply_nested_json(tmp_path: Path, document: str, bracket: str, depth: int) -> None:
    """JSON nested 100k levels deep raised RecursionError instead of a lampref error naming the file."""
    text = _nested(depth, bracket)
    if document == "safetensors header":
        path = tmp_path / "m.safetensors"
        path.write_bytes(st_bytes(text.encode()))
        target = path
    elif document == "config.json":
        target = hf_dir(tmp_path, text)
        path = target / "config.json"
    else:
        target = tmp_path / "sharded"
        target.mkdir()
        (target / "config.json").write_text(json.dumps(TINY_CFG.to_hf()))
        path = target / "model.safetensors.index.json"
        path.write_text('{"weight_map": ' + text + "}")
    message = refuses(lambda: load(target, n_head=2), str(path), kinds=(WeightsError, ConfigError))
    assert len(message) < 1000


CONFIG_KEYS = [
    "n_layer", "n_head", "n_embd", "n_positions", "n_ctx", "vocab_size", "layer_norm_epsilon",
    "activation_function", "n_inner", "model_type", "scale_attn_weights", "scale_attn_by_inverse_layer_idx",
    "reorder_and_upcast_attn", "add_cross_attention", "tie_word_embeddings",
]  # fmt: skip


@given(key=st.sampled_from(CONFIG_KEYS), value=json_values | st.integers(min_value=-5, max_value=200))
@example(key="activation_function", value=["gelu"])
@example(key="n_embd", value=None)
@example(key="n_layer", value="2")
@example(key="n_layer", value=True)
@example(key="n_layer", value=2.0)
@example(key="model_type", value={"gpt2": 1})
@example(key="scale_attn_weights", value=1)
@example(key="n_inner", value=64)
@example(key="layer_norm_epsilon", value=10**400)
@example(key="n_layer", value=10**4000)
def test_issue11_item05_any_json_value_in_config_json(key: str, value: Any) -> None:
    """A JSON value of any type at any config.json key gives a correct load or a ConfigError naming both."""
    data = {**TINY_CFG.to_hf(), key: value}
    with scratch() as root:
        d = hf_dir(root, data)
        ckpt, error = attempt(lambda: load(d))
    if error is None:
        assert (ckpt.config.n_layer, ckpt.config.n_embd, ckpt.config.vocab_size) == (2, 16, 64)
        np.testing.assert_array_equal(ckpt.params.wte, TINY.wte)
    else:
        assert isinstance(error, (ConfigError, WeightsError)), error
        assert str(d) in str(error)


def test_config_sizes_accept_numpy_integers() -> None:
    """A size given as a NumPy integer was a ConfigError where every other integer argument takes one; it is
    stored as a Python int, so the configuration still writes to JSON. Bools and out-of-range values stay
    refused."""
    sizes = {"n_layer": np.int64(2), "n_head": np.int32(2), "n_embd": np.uint16(16), "n_positions": 32}
    cfg = GPT2Config(**sizes, vocab_size=64, layer_norm_epsilon=np.int64(1))  # type: ignore[arg-type]
    assert cfg == GPT2Config(2, 2, 16, 32, 64, layer_norm_epsilon=1.0)
    types = [type(v) for v in (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.layer_norm_epsilon)]
    assert types == [int, int, int, float]
    assert json.loads(json.dumps(cfg.to_hf()))["n_embd"] == 16
    for bad in (np.bool_(True), np.int64(0), np.int64(2**31)):
        with pytest.raises(ConfigError, match="n_layer"):
            GPT2Config(n_layer=bad, n_head=2, n_embd=16, n_positions=32, vocab_size=64)  # type: ignore[arg-type]


@pytest.mark.parametrize("document", ["safetensors header", "config.json", "index.json"])
def test_issue11_item05_integer_beyond_the_parser_digit_limit(tmp_path: Path, document: str) -> None:
    """An integer of 5000 digits made json.loads raise a plain ValueError (Python's digit limit)."""
    huge = "1" * 5000
    if document == "safetensors header":
        path = target = tmp_path / "m.safetensors"
        entry = f'{{"dtype": "F32", "shape": [{huge}], "data_offsets": [0, 0]}}'
        path.write_bytes(st_bytes(f'{{"a": {entry}}}'.encode()))
    elif document == "config.json":
        target = hf_dir(tmp_path, json.dumps(TINY_CFG.to_hf())[:-1] + f', "n_inner": {huge}}}')
        path = target / "config.json"
    else:
        target, _ = _sharded(tmp_path)
        path = target / "model.safetensors.index.json"
        path.write_text(f'{{"metadata": {{"total_size": {huge}}}, "weight_map": {{}}}}')
    refuses(lambda: load(target, n_head=2), str(path), kinds=(WeightsError, ConfigError))


def test_issue11_item05_n_inner_with_null_n_embd(tmp_path: Path) -> None:
    """n_inner given with n_embd null raised TypeError (4 * None) instead of a ConfigError naming n_embd."""
    d = hf_dir(tmp_path, {**TINY_CFG.to_hf(), "n_inner": 64, "n_embd": None})
    refuses(lambda: load(d), str(d / "config.json"), "n_embd", kinds=(ConfigError,))


@given(
    field=st.sampled_from(["dtype", "shape", "data_offsets", "<entry>", "__metadata__"]),
    tensor=st.sampled_from(["wte.weight", "h.1.mlp.c_fc.bias"]),
    value=json_values,
)
@example(field="dtype", tensor="wte.weight", value=["F32"])
@example(field="dtype", tensor="wte.weight", value={"F32": 1})
@example(field="shape", tensor="wte.weight", value=[64.0, 16])
@example(field="shape", tensor="wte.weight", value=[True, 16])
@example(field="data_offsets", tensor="wte.weight", value=["0", 4096])
@example(field="<entry>", tensor="wte.weight", value=["F32", [64, 16], [0, 4096]])
def test_issue11_item05_any_json_value_in_safetensors_header(field: str, tensor: str, value: Any) -> None:
    """A JSON value of any type in any safetensors header field gives a correct load or a WeightsError."""
    header, data = st_header(TINY.state_dict())
    if field == "__metadata__":
        header["__metadata__"] = value
    elif field == "<entry>":
        header[tensor] = value
    else:
        header[tensor][field] = value
    with scratch() as root:
        path = root / "m.safetensors"
        path.write_bytes(st_bytes(header, data))
        ckpt, error = attempt(lambda: load(path, n_head=2))
    if error is None:
        np.testing.assert_array_equal(ckpt.params.state_dict()[tensor], TINY.state_dict()[tensor])
    else:
        assert isinstance(error, WeightsError), error
        assert str(path) in str(error)


def _sharded(root: Path) -> tuple[Path, dict[str, str]]:
    d = root / "sharded"
    d.mkdir()
    state = TINY.state_dict()
    keys = sorted(state)
    shards = {"a.safetensors": keys[: len(keys) // 2], "b.safetensors": keys[len(keys) // 2 :]}
    for name, ks in shards.items():
        save_file({k: state[k] for k in ks}, d / name)
    (d / "config.json").write_text(json.dumps(TINY_CFG.to_hf()))
    return d, {k: name for name, ks in shards.items() for k in ks}


@given(where=st.sampled_from(["<document>", "weight_map", "wte.weight", "ln_f.bias"]), value=json_values)
@example(where="wte.weight", value=["a.safetensors"])
@example(where="weight_map", value=[["wte.weight", "a.safetensors"]])
@example(where="<document>", value=[])
def test_issue11_item05_any_json_value_in_shard_index(where: str, value: Any) -> None:
    """A JSON value of any type in model.safetensors.index.json gives a correct load or a WeightsError."""
    with scratch() as root:
        d, weight_map = _sharded(root)
        doc: Any = {"metadata": {"total_size": 0}, "weight_map": weight_map}
        if where == "<document>":
            doc = value
        elif where == "weight_map":
            doc["weight_map"] = value
        else:
            weight_map[where] = value
        index = d / "model.safetensors.index.json"
        index.write_text(json.dumps(doc))
        ckpt, error = attempt(lambda: load(d))
    if error is None:
        np.testing.assert_array_equal(ckpt.params.wte, TINY.wte)
    else:
        assert isinstance(error, (WeightsError, FileNotFoundError)), error
        assert str(d) in str(error)


@pytest.mark.parametrize(
    "shard",
    ["../outside.safetensors", "<absolute>", "sub/../../outside.safetensors", "", "a\0b.safetensors", ".."],
)
def test_issue11_item05_shard_paths_stay_inside_the_folder(tmp_path: Path, shard: str) -> None:
    """A shard named '../x' or '/abs/x' in index.json was read from outside the model folder."""
    d, weight_map = _sharded(tmp_path)
    (d / "a.safetensors").rename(tmp_path / "outside.safetensors")  # a valid shard, outside the folder
    name = str(tmp_path / "outside.safetensors") if shard == "<absolute>" else shard
    moved = [k for k, v in weight_map.items() if v == "a.safetensors"]
    weight_map.update(dict.fromkeys(moved, name))
    index = d / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": weight_map}))
    refuses(lambda: load(d), str(index), repr(moved[0]) if len(moved) else "")


def test_shard_symlinks_as_in_the_hugging_face_cache_still_load(tmp_path: Path) -> None:
    """Shard names are checked as written, not resolved: the Hugging Face cache links snapshots/<rev>/x to
    ../../blobs/<hash>, outside the snapshot folder, and such a folder must keep loading."""
    d, weight_map = _sharded(tmp_path)
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    for name in ("a.safetensors", "b.safetensors"):
        (d / name).rename(blobs / name)
        (d / name).symlink_to(Path("..") / "blobs" / name)
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    np.testing.assert_array_equal(load(d).params.wte, TINY.wte)


# ------------------------------------------------------------------------------------ NaN and inf
def _write(fmt: str, state: dict[str, np.ndarray], root: Path) -> tuple[Path, dict[str, Any]]:
    params = GPT2Params.from_state_dict(state, TINY_CFG.n_layer)
    if fmt == "hf":
        save(params, TINY_CFG, root / "hf")
        return root / "hf", {}
    if fmt == "hf_f16":
        save(params, TINY_CFG, root / "hf", dtype="F16")
        return root / "hf", {}
    if fmt == "bare":
        save_file(state, root / "m.safetensors")
        return root / "m.safetensors", {"n_head": 2}
    if fmt == "npz":
        save_npz(params, root / "m.npz")
        return root / "m.npz", {"n_head": 2}
    save_llmc(params, TINY_CFG, root / "m.bin", dtype="bfloat16" if fmt == "llmc_bf16" else "float32")
    return root / "m.bin", {}


@given(
    fmt=st.sampled_from(["hf", "hf_f16", "bare", "npz", "llmc", "llmc_bf16"]),
    name=st.sampled_from(sorted(hf_shapes(TINY_CFG))),
    where=st.floats(min_value=0, max_value=1, exclude_max=True),
    value=st.sampled_from([math.nan, math.inf, -math.inf]),
)
@example(fmt="hf", name="h.1.mlp.c_fc.weight", where=0.5, value=math.nan)
@example(fmt="llmc", name="wte.weight", where=0.99, value=math.inf)
def test_issue11_item06_nonfinite_weights_refused_at_load(
    fmt: str, name: str, where: float, value: float
) -> None:
    """NaN or inf weights loaded silently (NaN logits): a WeightsError naming the tensor, unless opted out."""
    state = {k: v.copy() for k, v in TINY.state_dict().items()}
    flat = state[name].reshape(-1)
    i = int(where * flat.size)
    flat[i] = value
    with scratch() as root:
        path, kw = _write(fmt, state, root)
        refuses(lambda: load(path, **kw), repr(name), str(path))
        refuses(lambda: GPT2.load(path, **kw), repr(name))
        params, _ = load(path, allow_nonfinite=True, **kw)
        got = params.state_dict()[name].reshape(-1)
        np.testing.assert_array_equal(got[i], np.float32(value))
        assert np.isfinite(np.delete(got, i)).all()
        assert GPT2.load(path, allow_nonfinite=True, **kw).config == TINY_CFG


def test_issue11_item06_allow_nonfinite_is_a_flag(tmp_path: Path) -> None:
    """allow_nonfinite takes True or False only (a string such as 'no' is not silently truthy)."""
    save(TINY, TINY_CFG, tmp_path / "hf")
    for bad in ("no", 1, None):
        with pytest.raises(LamprefError, match="allow_nonfinite"):
            load(tmp_path / "hf", allow_nonfinite=bad)  # type: ignore[arg-type]
    save_llmc(TINY, TINY_CFG, tmp_path / "m.bin")
    with pytest.raises(LamprefError, match="allow_nonfinite"):
        load_llmc(tmp_path / "m.bin", allow_nonfinite="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("rng", [-1, True, 1.5, "7", np.array([3])])
def test_random_params_rng_is_checked_like_every_other_rng(rng: Any) -> None:
    """random_params passed rng to numpy's default_rng, so a negative seed gave numpy's plain ValueError and
    a bool or an array was taken as a seed; it refuses them now with a lampref error naming rng."""
    with pytest.raises(LamprefError, match="rng"):
        random_params(TINY_CFG, rng=rng)


def test_random_params_seed_is_the_generator_of_that_seed() -> None:
    """A seed (Python's or NumPy's int) draws from numpy's default_rng of that seed, the token embedding first
    (version 1 of the draw order), as the Generator itself does."""
    assert RANDOM_PARAMS_VERSION == 1
    expected = np.random.default_rng(11).standard_normal((64, 16), dtype=np.float32) * np.float32(0.3)
    for rng in (11, np.int64(11), np.random.default_rng(11)):
        np.testing.assert_array_equal(random_params(TINY_CFG, rng=rng, std=0.3).wte, expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "kind"), [(0, WeightsError), (-3, WeightsError), (True, TypeError), ("8", TypeError)]
)
def test_integer_arguments_of_the_writers_are_checked(tmp_path: Path, value: Any, kind: type) -> None:
    """pad_multiple and from_state_dict's n_layer: an integer >= 1 (NumPy's included), never a bool."""
    with pytest.raises(kind, match="pad_multiple"):
        save_llmc(TINY, TINY_CFG, tmp_path / "m.bin", pad_multiple=value)
    with pytest.raises(kind, match="n_layer"):
        GPT2Params.from_state_dict(TINY.state_dict(), value)
    assert not (tmp_path / "m.bin").exists()
    save_llmc(TINY, TINY_CFG, tmp_path / "m.bin", pad_multiple=np.int64(48))  # type: ignore[arg-type]
    assert (tmp_path / "m.bin").stat().st_size == 4 * (256 + TINY.n_params + (96 - 64) * 16)  # Vp = 96
    assert GPT2Params.from_state_dict(TINY.state_dict(), np.int64(2)).n_params == TINY.n_params  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", ["F8", "f32", ["F32"], np.array(["F32", "F16"]), None])
def test_writers_check_the_storage_dtype_first(tmp_path: Path, dtype: Any) -> None:
    """save created the model folder before refusing its dtype (and an array dtype met an ambiguous truth
    value); the storage dtype of save and save_llmc is checked before anything is written."""
    with pytest.raises(WeightsError, match="dtype"):
        save(TINY, TINY_CFG, tmp_path / "hf", dtype=dtype)
    with pytest.raises(WeightsError, match="dtype"):
        save_llmc(TINY, TINY_CFG, tmp_path / "m.bin", dtype=dtype)
    assert list(tmp_path.iterdir()) == []


def test_embedded_model_passes_the_finite_check() -> None:
    """The embedded float16 model passes the load-time check (every weight finite)."""
    model = default_model()
    assert all(np.isfinite(a).all() for _, a in model.params.named_arrays())


# ------------------------------------------------------------------------------------- byte orders
@given(dtypes=st.lists(st.sampled_from(["<f4", ">f4", "<f2", ">f2", "=f4"]), min_size=28, max_size=28))
@example(dtypes=[">f4"] * 28)
def test_issue11_item12_npz_byte_orders_converted_exactly(dtypes: list[str]) -> None:
    """A big-endian >f4 (or >f2) tensor in a .npz was refused although its conversion is exact."""
    state = TINY.state_dict()
    stored = {k: v.astype(dt) for (k, v), dt in zip(state.items(), dtypes, strict=True)}
    with scratch() as root:
        np.savez(root / "m.npz", **stored)  # type: ignore[arg-type]
        params, cfg = load(root / "m.npz", n_head=2)
    assert cfg == TINY_CFG
    for (name, got), (_, src) in zip(params.named_arrays(), stored.items(), strict=True):
        assert got.dtype == np.float32, name
        assert got.dtype.isnative, name
        # oracle: NumPy's own float16 rounding of the source, compared as float64 values
        np.testing.assert_array_equal(got.astype(np.float64), src.astype(np.float64), err_msg=name)


def test_issue11_item12_npz_accepts_exactly_the_exact_conversions(tmp_path: Path) -> None:
    """>f4 and >f2 (exact conversions) were refused in a .npz; dtypes that may round must stay refused."""
    for dtype in (">f4", ">f2", "<f2", "<f4"):
        stored = {**TINY.state_dict(), "wpe.weight": TINY.wpe.astype(dtype)}
        np.savez(tmp_path / "m.npz", **stored)  # type: ignore[arg-type]
        got = load(tmp_path / "m.npz", n_head=2).params.wpe
        np.testing.assert_array_equal(got.astype(np.float64), stored["wpe.weight"].astype(np.float64), dtype)
    for dtype in ("<f8", ">f8", ">i4", "<i2", ">c8"):
        stored = {**TINY.state_dict(), "wpe.weight": TINY.wpe.astype(dtype)}
        np.savez(tmp_path / "m.npz", **stored)  # type: ignore[arg-type]
        message = refuses(lambda: load(tmp_path / "m.npz", n_head=2), "'wpe.weight'", "m.npz")
        assert re.search(r"has dtype .*; expected float32", message), dtype


# ---------------------------------------------------------------------------------------- file modes
def write_with(writer: str, d: Path) -> list[Path]:
    """Write with one of lampref's writers; return the files it wrote."""
    if writer.startswith("save "):
        save(TINY, TINY_CFG, d / "hf", dtype=writer.split()[1])
        return [d / "hf" / "model.safetensors", d / "hf" / "config.json"]
    if writer == "save_llmc":
        save_llmc(TINY, TINY_CFG, d / "m.bin")
        return [d / "m.bin"]
    if writer == "save_file":
        save_file({"x": np.zeros(3, np.float32)}, d / "x.safetensors")
        return [d / "x.safetensors"]
    save_npz(TINY, d / "m")  # ".npz" appended, as numpy.savez does
    return [d / "m.npz"]


WRITERS = ["save F32", "save F16", "save_llmc", "save_file", "save_npz"]


def test_issue11_item13_written_files_follow_the_umask(tmp_path: Path) -> None:
    """save, save_llmc and save_file created 0600 files (mkstemp) where open() gives 0666 & ~umask."""
    wrong = []
    for umask in (0o022, 0o077, 0o002, 0o027):
        for writer in WRITERS:
            folder = tmp_path / f"{writer}-{umask:o}".replace(" ", "_")
            folder.mkdir()
            old = os.umask(umask)
            try:
                paths = write_with(writer, folder)
                assert write_with(writer, folder) == paths  # overwriting keeps the rule
            finally:
                os.umask(old)
            modes = {p.name: p.stat().st_mode & 0o777 for p in paths}
            wrong += [(writer, oct(umask), n, oct(m)) for n, m in modes.items() if m != 0o666 & ~umask]
    assert wrong == [], "files whose mode is not 0o666 & ~umask: " + repr(wrong)
    leftovers = [p.name for p in tmp_path.rglob(".*")]
    assert leftovers == [], leftovers


def test_atomic_output_leaves_no_trace_on_failure(tmp_path: Path) -> None:
    """A write that fails midway leaves the destination as it was and no temporary file behind."""
    from lampref.gpt2.safetensors import atomic_output

    target = tmp_path / "m.bin"
    target.write_bytes(b"old")

    def interrupted_write() -> None:
        with atomic_output(target) as f:
            f.write(b"new, partial")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_write()
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin"]
