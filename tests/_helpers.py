"""Assertions shared by the model tests (GPT-2, BERT)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest


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
