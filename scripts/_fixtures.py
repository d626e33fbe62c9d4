"""What the golden-fixture generators (``scripts/make_*_fixtures.py``) share: the manifest that pins a
fixture folder, and the two pieces of the transformers reference they all run.

A manifest (``manifest.json`` beside the fixtures) records:

``generator``
    The script to rerun, relative to the repository root.
``sources``
    The sha256 of every script file that shaped the fixtures: the generator and this module.
``reference``, ``versions``
    What computed the reference outputs, and the versions of torch, transformers, NumPy and Python.
``arrays``
    Per ``.npz`` file, the dtype, shape and sha256 (:func:`array_sha256`) of each array in it.
``files``
    The sha256 of every fixture file, the manifest excepted; the folder holds nothing else.

plus the generator's own fields (seeds, configurations, texts). The tests refuse fixtures that disagree
with their manifest, or whose sources changed since.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------ the manifest
def array_sha256(arr: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and C-order bytes."""
    h = hashlib.sha256()
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def new_manifest(generator: str, reference: str, **fields: Any) -> dict[str, Any]:
    """A manifest for the fixtures that the script ``generator`` (its ``__file__``) writes, with no arrays
    or files yet; ``fields`` are the generator's own entries."""
    import torch
    import transformers

    script = Path(generator).resolve().relative_to(ROOT).as_posix()
    return {
        "generator": script,
        "sources": {name: file_sha256(ROOT / name) for name in (script, "scripts/_fixtures.py")},
        "reference": reference,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        **fields,
        "arrays": {},
        "files": {},
    }


def save_arrays(manifest: dict[str, Any], folder: Path, name: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``folder / name`` (an ``.npz``) and pin each array and the file in ``manifest``."""
    np.savez(folder / name, **arrays)
    manifest["arrays"][name] = {
        k: {"dtype": v.dtype.str, "shape": list(v.shape), "sha256": array_sha256(v)}
        for k, v in arrays.items()
    }
    pin_files(manifest, folder, [name])


def pin_files(manifest: dict[str, Any], folder: Path, names: Iterable[str]) -> None:
    """Record the sha256 of the files ``names`` (relative to ``folder``) in ``manifest``."""
    manifest["files"].update({name: file_sha256(folder / name) for name in names})


def write_manifest(manifest: dict[str, Any], folder: Path) -> None:
    """Write ``manifest`` as ``folder / "manifest.json"`` (sorted keys, UTF-8)."""
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False)
    (folder / "manifest.json").write_text(text + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------- the torch reference
@contextmanager
def captured_outputs(modules: Sequence[Any]) -> Iterator[list[Any]]:
    """While the block runs, record in the yielded list what each torch module returns (the first element
    of a tuple); the forward hooks are removed on leaving."""
    found: list[Any] = [None] * len(modules)
    hooks = []
    for i, module in enumerate(modules):

        def hook(mod: Any, args: Any, out: Any, i: int = i) -> None:
            found[i] = out[0] if isinstance(out, tuple) else out

        hooks.append(module.register_forward_hook(hook))
    try:
        yield found
    finally:
        for h in hooks:
            h.remove()


def sentence_embeddings(hidden: Any, attention_mask: Any) -> Any:
    """The sentence-transformers pipeline of all-MiniLM-L6-v2 on torch tensors: mean pooling of the hidden
    states ``[B, T, C]`` over the tokens the mask ``[B, T]`` keeps, then L2 normalisation."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
    pooled = (hidden * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)  # [B, C]
    return torch.nn.functional.normalize(pooled, p=2, dim=1)  # [B, C]: sentence-transformers' Normalize
