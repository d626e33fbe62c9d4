"""Assertions shared by the tests: lampref's errors on malformed arguments, closeness to a reference (the
model tests), and golden fixtures that match their manifest."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lampref import LamprefError

ROOT = Path(__file__).resolve().parents[1]


def check_error(err: pytest.ExceptionInfo[BaseException], *fragments: str) -> None:
    """The error is lampref's, a ValueError or TypeError, and its message holds every fragment."""
    assert isinstance(err.value, LamprefError)
    assert isinstance(err.value, (ValueError, TypeError))
    message = str(err.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in the message {message!r}"


def assert_close(ours: Any, ref: Any, *, what: str, atol: float, rtol: float) -> None:
    """Element-wise ``|ours - ref| <= atol + rtol |ref|``; on failure print the first values and maxdiff."""
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape}, expected {ref.shape}"
    diff = np.abs(ours - ref)
    bad = diff > atol + rtol * np.abs(ref)
    if bad.any():
        idx = np.unravel_index(int(np.argmax(np.where(bad, diff, -1))), diff.shape)
        lines = [
            f"{what}: {int(bad.sum())} of {bad.size} values out of tolerance "
            f"(atol={atol:.3g}, rtol={rtol:.3g}); "
            f"maxdiff {diff.max():.6g} at {tuple(int(i) for i in idx)}",
            "  first values  ours / reference:",
        ]
        lines += [
            f"    {o: .9g} {r: .9g}" for o, r in zip(ours.reshape(-1)[:5], ref.reshape(-1)[:5], strict=True)
        ]
        pytest.fail("\n".join(lines))


def array_sha256(arr: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and C-order bytes (as the fixture manifests record it)."""
    h = hashlib.sha256()
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def check_fixture_manifest(manifest: Mapping[str, Any], folder: Path) -> None:
    """The fixtures in ``folder`` are the ones ``manifest`` pins (the format scripts/_fixtures.py writes):
    the scripts that generated them unchanged since, every listed file present with its sha256 and no other
    file, every array of every ``.npz`` with its dtype, shape and sha256, and the tools' versions recorded."""
    stale = f"regenerate with `python {manifest['generator']}`"
    assert manifest["generator"] in manifest["sources"], f"the generator's sha256 is not recorded; {stale}"
    for name, digest in manifest["sources"].items():
        path = ROOT / name
        assert path.is_file(), f"{name}, which generated the fixtures, is missing"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, (
            f"STALE FIXTURES: {name} changed since the fixtures were generated; {stale}"
        )
    for name, digest in manifest["files"].items():
        path = folder / name
        assert path.is_file(), f"fixture {name} listed in the manifest is missing; {stale}"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, (
            f"fixture {name} was modified; {stale}"
        )
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert on_disk == set(manifest["files"]) | {"manifest.json"}, f"unlisted fixture files; {stale}"
    for npz, arrays in manifest["arrays"].items():
        with np.load(folder / npz, allow_pickle=False) as f:
            assert set(f.files) == set(arrays), f"{npz}: arrays differ from the manifest; {stale}"
            for key, desc in arrays.items():
                arr = f[key]
                assert [arr.dtype.str, list(arr.shape)] == [desc["dtype"], desc["shape"]], f"{npz}:{key}"
                assert array_sha256(arr) == desc["sha256"], f"{npz}:{key} does not match its sha256; {stale}"
    for tool in ("torch", "transformers", "numpy", "python"):
        assert manifest["versions"].get(tool), f"manifest lacks the {tool} version"
