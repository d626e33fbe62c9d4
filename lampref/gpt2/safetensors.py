r"""A small, strict reader and writer of the safetensors format, written from its specification.

A safetensors file is

1. 8 bytes: $N$, an unsigned 64-bit little-endian integer;
2. $N$ bytes: a UTF-8 JSON object. Each key is a tensor name mapped to
   ``{"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}``; the optional key
   ``"__metadata__"`` maps strings to strings. The header may end with spaces (padding);
3. the data buffer: the tensors' bytes, little-endian, C order. ``data_offsets`` are relative to the start
   of this buffer, and the tensors tile it exactly: no overlaps, no holes, nothing after the last one.

Reading memory-maps the file (:class:`numpy.memmap`) and returns read-only views into it, so a float32
tensor costs no copy. BF16 tensors are widened to float32 (exactly, by shifting the 16 bits into the top of
a float32) and are the only ones copied; a tensor whose offset is not a multiple of its item size is copied
to an aligned array. Every violation of the format raises :class:`~lampref.errors.WeightsError` naming the
file, the tensor and what was expected; nothing is returned from a file that fails a check.

References
----------
Hugging Face, "safetensors" format description, https://github.com/huggingface/safetensors (README,
section "Format").
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import is_int
from ..errors import WeightsError, WeightsNotFoundError, expected_one_of
from ..rounding import round_to
from .config import json_field, parse_json, show

__all__ = [
    "DTYPES",
    "MAX_HEADER_BYTES",
    "MAX_NDIM",
    "TensorInfo",
    "atomic_output",
    "load_file",
    "read_header",
    "save_file",
]

DTYPES: dict[str, np.dtype[Any]] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # stored as raw 16-bit patterns, widened to float32 on reading
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
"""The safetensors dtypes this module reads and writes, with their storage dtype."""

MAX_HEADER_BYTES = 100_000_000
"""Largest JSON header accepted (the reference implementation's limit)."""

MAX_NDIM = 32
"""Most dimensions a tensor may have (NumPy 1's limit)."""

_MAX_ELEMENT_BYTES = 2**62
"""Bound on ``itemsize`` times the product of the non-zero dimensions, so that NumPy can index any shape read
(the dimensions of a zero-size tensor included)."""

_NUMPY_TO_ST: dict[str, str] = {dt.name: st for st, dt in DTYPES.items() if st != "BF16"}
"""The safetensors dtype of each NumPy dtype stored as itself (BF16 has no NumPy dtype: it is written by
conversion only)."""


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One entry of a safetensors header: ``dtype`` name, ``shape``, and byte range in the data buffer."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _fail(path: Path | str, message: str) -> WeightsError:
    return WeightsError(f"{path}: {message}")


def _no_duplicates(path: Path | str) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise _fail(path, f"safetensors header has the key {show(key)} twice")
            out[key] = value
        return out

    return hook


def shape_nbytes(shape: tuple[int, ...] | list[int], itemsize: int) -> int | None:
    """The byte count of an array of this shape, or None if NumPy cannot index such a shape.

    ``shape`` must hold at most :data:`MAX_NDIM` non-negative integers (not bools) whose non-zero entries,
    multiplied together and by ``itemsize``, stay under $2^{62}$; the product is computed with an
    early stop, so a hostile shape costs O(ndim) operations on small integers.
    """
    if len(shape) > MAX_NDIM or not all(type(d) is int and d >= 0 for d in shape):
        return None
    nbytes = itemsize
    for d in shape:
        nbytes *= d or 1
        if nbytes > _MAX_ELEMENT_BYTES:
            return None
    return 0 if 0 in shape else nbytes


def _header_entry(path: Path, key: str, value: object, buffer_len: int) -> TensorInfo:
    """Check one header entry field by field, bounding every size by the data buffer before using it."""
    where = f"{path}: tensor {show(key)}"
    entry: dict[str, Any] = json_field(str(path), f"tensor {show(key)}", value, "object", WeightsError)
    if not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise WeightsError(f"{where}: expected an object with 'dtype', 'shape' and 'data_offsets'")
    extra = set(entry) - {"dtype", "shape", "data_offsets"}
    if extra:
        raise WeightsError(f"{where}: unexpected field(s) {show(sorted(extra))}")
    dtype = json_field(where, "dtype", entry["dtype"], "string", WeightsError)
    if dtype not in DTYPES:
        accepted = ", ".join(map(repr, DTYPES))
        raise WeightsError(f"{where}: dtype={show(dtype)} is not valid; expected one of: {accepted}")
    shape = json_field(where, "shape", entry["shape"], "array", WeightsError)
    offsets = json_field(where, "data_offsets", entry["data_offsets"], "array", WeightsError)
    if len(shape) > MAX_NDIM or not all(type(d) is int and d >= 0 for d in shape):
        raise WeightsError(
            f"{where}: shape={show(shape)}; expected a list of at most {MAX_NDIM} non-negative integers"
        )
    if len(offsets) != 2 or not all(is_int(o) for o in offsets) or not 0 <= offsets[0] <= offsets[1]:
        raise WeightsError(
            f"{where}: data_offsets={show(offsets)}; expected [begin, end] with 0 <= begin <= end"
        )
    begin, end = offsets
    if end > buffer_len:
        raise WeightsError(
            f"{where}: needs bytes {begin}..{end} of the data buffer but the file holds only {buffer_len} "
            "(truncated file?)"
        )
    nbytes = shape_nbytes(shape, DTYPES[dtype].itemsize)
    if nbytes is None:
        raise WeightsError(f"{where}: shape={show(shape)} is too large for NumPy to index")
    if end - begin != nbytes:
        raise WeightsError(
            f"{where}: data_offsets {offsets} span {end - begin} bytes; dtype {dtype} with shape "
            f"{shape} needs {nbytes}"
        )
    return TensorInfo(dtype, tuple(shape), begin, end)


def read_header(path: str | Path) -> tuple[dict[str, TensorInfo], dict[str, str], int]:
    """Read and validate the header of a safetensors file.

    Every size is checked against the file's size before anything is allocated from it, so a small file
    costs little time and memory whatever its header claims.

    Returns
    -------
    tensors : dict of str to TensorInfo
        The entries, in the order of the file's header.
    metadata : dict of str to str
        The ``__metadata__`` object (empty when absent).
    data_start : int
        Byte offset of the data buffer in the file (``8 + N``).

    Raises
    ------
    WeightsNotFoundError
        If the file does not exist.
    WeightsError
        If the header is malformed: a header size beyond the file, invalid UTF-8 or JSON (or JSON nested
        too deeply to parse), a key given twice, an entry without ``dtype``/``shape``/``data_offsets`` or
        with a field of the wrong JSON type, an unknown dtype, more than :data:`MAX_NDIM` dimensions,
        offsets out of the data buffer, overlapping or leaving holes, a byte count that is not
        ``prod(shape) * itemsize``, or a data buffer longer or shorter than the tensors (a truncated file).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"{path}: no such file (expected a safetensors file)")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise _fail(
                path, f"file of {size} bytes is too short for a safetensors header (8-byte size first)"
            )
        n = int.from_bytes(head, "little")
        if n > MAX_HEADER_BYTES:
            raise _fail(path, f"header size {n} bytes exceeds the limit of {MAX_HEADER_BYTES} bytes")
        if 8 + n > size:
            raise _fail(path, f"header size {n} bytes runs beyond the end of the file ({size} bytes)")
        raw = f.read(n)
    header = parse_json(raw, str(path), "the safetensors header", WeightsError, _no_duplicates(path))
    if not isinstance(header, dict):
        raise _fail(path, f"safetensors header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _fail(path, "__metadata__ must be an object mapping strings to strings")

    buffer_len = size - 8 - n
    tensors = {key: _header_entry(path, key, entry, buffer_len) for key, entry in header.items()}
    pos, prev = 0, None
    for key, info in sorted(tensors.items(), key=lambda kv: (kv[1].begin, kv[1].end)):
        if info.begin < pos:
            raise _fail(
                path, f"tensor {show(key)} (bytes {info.begin}..{info.end}) overlaps tensor {show(prev)}"
            )
        if info.begin > pos:
            raise _fail(path, f"hole in the data buffer: bytes {pos}..{info.begin} belong to no tensor")
        pos, prev = info.end, key
    if pos != buffer_len:
        raise _fail(
            path, f"{buffer_len - pos} trailing bytes after the last tensor (the data buffer must be tiled)"
        )
    return tensors, metadata, 8 + n


def bf16_to_float32(bits: NDArray[np.uint16]) -> NDArray[np.float32]:
    """Widen bfloat16 bit patterns to float32 (exact: bf16 is the top half of a float32)."""
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def bf16_bits(values: NDArray[Any]) -> NDArray[np.uint16]:
    """The little-endian bfloat16 bit patterns of ``values``, each rounded to nearest-even."""
    r = np.asarray(round_to(values, "bf16"), dtype=np.float32)
    return (r.view(np.uint32) >> np.uint32(16)).astype("<u2")


def load_file(path: str | Path, *, mmap: bool = True) -> dict[str, NDArray[Any]]:
    """Read every tensor of a safetensors file.

    Parameters
    ----------
    path : str or Path
        The file.
    mmap : bool, default True
        Memory-map the file and return read-only views (no copy for tensors stored in a NumPy dtype and
        aligned to their item size). False: read everything into memory.

    Returns
    -------
    dict of str to numpy.ndarray
        Tensors in NumPy dtypes; BF16 tensors as float32.

    Raises
    ------
    WeightsError, WeightsNotFoundError
        See :func:`read_header`.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from lampref.gpt2.safetensors import load_file, save_file
    >>> path = os.path.join(tempfile.mkdtemp(), "x.safetensors")
    >>> save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, path)
    >>> load_file(path)["w"]
    array([[0., 1., 2.],
           [3., 4., 5.]], dtype=float32)
    """
    path = Path(path)
    tensors, _, start = read_header(path)
    buffer_len = path.stat().st_size - start
    data: NDArray[np.uint8]
    if buffer_len == 0:
        data = np.zeros(0, dtype=np.uint8)
    elif mmap:
        # a plain ndarray view of the map (the view keeps the map alive)
        data = np.asarray(np.memmap(path, dtype=np.uint8, mode="r", offset=start, shape=(buffer_len,)))
    else:
        with path.open("rb") as f:
            f.seek(start)
            data = np.frombuffer(f.read(buffer_len), dtype=np.uint8)
            if data.size != buffer_len:
                raise _fail(path, "file changed while it was read")
    out: dict[str, NDArray[Any]] = {}
    for key, info in tensors.items():
        dt = DTYPES[info.dtype]
        raw = data[info.begin : info.end]
        if info.begin % dt.itemsize:
            raw = np.array(raw)  # an aligned copy (BLAS and fast loops need aligned data)
        arr = raw.view(dt).reshape(info.shape)
        if info.dtype == "BF16":
            arr = bf16_to_float32(arr)
        elif dt.byteorder not in ("=", "|") and not dt.isnative:
            arr = arr.astype(dt.newbyteorder("="))
        out[key] = arr
    return out


def _storage_bytes(arr: NDArray[Any], st: str) -> bytes:
    """The little-endian bytes of a tensor in storage dtype ``st`` (BF16/F16: rounded to nearest-even)."""
    if st == "BF16":
        return bf16_bits(arr).tobytes()
    if st == "F16":
        return np.asarray(round_to(arr, "fp16"), dtype=np.float32).astype("<f2").tobytes()
    return np.ascontiguousarray(arr, dtype=DTYPES[st]).tobytes()


def _storage_dtype(key: object, arr: NDArray[Any], st: str | None) -> str:
    """The safetensors dtype tensor ``key`` is stored in: ``st`` (a conversion) or its own NumPy dtype's."""
    if not isinstance(key, str) or key == "__metadata__":
        raise WeightsError(f"tensor name {key!r} is not valid; expected a string other than '__metadata__'")
    if st is None:
        own = _NUMPY_TO_ST.get(arr.dtype.name)
        if own is None:
            raise WeightsError(
                f"tensor {key!r} has dtype {arr.dtype}; expected one of {sorted(_NUMPY_TO_ST)}"
            )
        return own
    if not isinstance(st, str) or st not in ("BF16", "F16"):
        raise WeightsError(f"tensor {key!r}: {expected_one_of('storage dtype', st, ('BF16', 'F16'))}")
    if arr.dtype.kind != "f":
        raise WeightsError(f"tensor {key!r}: dtype {arr.dtype} cannot be stored as {st}; expected floats")
    return st


def save_file(
    tensors: Mapping[str, ArrayLike],
    path: str | Path,
    *,
    metadata: Mapping[str, str] | None = None,
    dtypes: Mapping[str, str] | None = None,
) -> None:
    """Write tensors to a safetensors file (atomically: a temporary file renamed into place).

    Parameters
    ----------
    tensors : mapping of str to array_like
        The tensors, in NumPy dtypes (float64/32/16, signed and unsigned integers, bool).
    path : str or Path
        Destination file.
    metadata : mapping of str to str, optional
        Written as ``__metadata__``.
    dtypes : mapping of str to str, optional
        A storage dtype per tensor name, for conversions: ``"BF16"`` or ``"F16"`` store a float tensor
        rounded to nearest-even in that format. Other tensors are stored in their own dtype.

    Notes
    -----
    Tensors are laid out by decreasing item size, then by name, so that every tensor starts at a multiple
    of its item size; the header is padded with spaces to a multiple of 8 bytes. The file gets the
    permissions :func:`open` gives (``0o666`` less the umask; see :func:`atomic_output`).
    """
    path = Path(path)
    if metadata is not None and not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise WeightsError("metadata must map strings to strings")
    dtypes = dict(dtypes or {})
    unknown = set(dtypes) - set(tensors)
    if unknown:
        raise WeightsError(f"dtypes names tensors that are not given: {sorted(unknown)}")
    # First pass: storage dtype, shape and size of every tensor (nothing converted yet, so that writing a
    # large checkpoint holds at most one converted tensor in memory).
    entries: list[tuple[str, str, NDArray[Any]]] = []
    for key, value in tensors.items():
        arr = np.asarray(value)
        entries.append((key, _storage_dtype(key, arr, dtypes.get(key)), arr))
    entries.sort(key=lambda entry: (-DTYPES[entry[1]].itemsize, entry[0]))
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for key, st, arr in entries:
        nbytes = arr.size * DTYPES[st].itemsize
        header[key] = {"dtype": st, "shape": list(arr.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)
    directory = path.parent
    if not directory.is_dir():
        raise WeightsNotFoundError(f"{directory}: no such directory (writing {path.name})")
    with atomic_output(path) as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for _, st, arr in entries:
            f.write(_storage_bytes(arr, st))


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[IO[bytes]]:
    """Write a file atomically: yield a new temporary file beside ``path``, renamed onto it on success.

    The temporary file is created as :func:`open` creates files, with the permissions ``0o666`` less the
    process umask, so every file lampref writes gets the same mode. On any exception the temporary file is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:  # pragma: no cover - a 64-bit random name already taken
            continue
        break
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
