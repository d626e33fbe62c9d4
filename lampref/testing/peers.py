r"""Run pychop, a peer emulator, in a separate Python process, for cross-checks against lampref.

pychop (https://github.com/nla-group/pychop; ``pychop.Chop``) rounds arrays to IEEE-like formats given
by an exponent width and a number of stored significand bits. lampref never imports it, because pychop
changes the state of the process that imports it: ``import pychop`` writes ``chop_backend`` into
``os.environ``, ``pychop.np.blas_np`` sets the root logger to ``INFO`` and ``pychop.np.mx_formats`` inserts
pychop's folder into ``sys.path``. Here pychop runs in a child process started with the same Python
interpreter, with ``chop_backend=numpy``; arrays travel through temporary ``.npy`` files written and read
with ``allow_pickle=False``, and the request through a JSON file.

pychop is a peer, not an oracle: it disagrees with correct rounding on some inputs (see the documentation
page "Cross-check with pychop"); use ``lampref.testing.mpfr_round`` to decide who is right.

Mode and format mapping
-----------------------
The lampref modes map to pychop's ``rmode`` codes as in :data:`PYCHOP_RMODES` (pychop's 7, ties to zero,
and 10, CADNA random directed rounding, have no lampref mode). A format maps through
:func:`lampref.to_pychop`: only IEEE-like formats have a pychop equivalent, with
$e_{\max} = 2^{w-1} - 1$, $e_{\min} = 1 - e_{\max}$, infinities and no saturation.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import is_int
from ..errors import ModeError, PychopError, PychopUnavailableError
from ..formats import FloatFormat, get_format, to_pychop
from ..rounding import as_exact_array, check_mode

__all__ = [
    "PYCHOP_RMODES",
    "PychopError",
    "PychopUnavailableError",
    "pychop_available",
    "pychop_round",
    "pychop_round_many",
    "pychop_version",
]

PYCHOP_RMODES: dict[str, int] = {
    "nearest_even": 1,
    "toward_pos": 2,
    "toward_neg": 3,
    "toward_zero": 4,
    "stochastic": 5,
    "stochastic_equal": 6,
    "nearest_away": 8,
    "odd": 9,
}
"""pychop ``rmode`` code of each lampref rounding mode."""

_TIMEOUT_S = 600.0

# The child process: reads the request, rounds every job with pychop.Chop, writes the results.
# chunk_size >= x.size keeps pychop's NumPy backend off its dask path; the values are the same (each element
# is rounded independently), only the speed differs.
_CHILD = r"""
import json, os, sys
from pathlib import Path
os.environ["chop_backend"] = "numpy"
import numpy as np
import pychop
folder = Path(sys.argv[1])
request = json.loads((folder / "request.json").read_text())
for i, job in enumerate(request["jobs"]):
    x = np.load(folder / job["input"], allow_pickle=False)
    chop = pychop.Chop(
        exp_bits=job["exp_bits"], sig_bits=job["sig_bits"], rmode=job["rmode"], subnormal=job["subnormal"],
        chunk_size=max(int(x.size), 1), random_state=job["random_state"],
    )
    y = np.asarray(chop(x))
    np.save(folder / f"output_{i}.npy", y, allow_pickle=False)
(folder / "done.json").write_text(json.dumps({"version": pychop.__version__}))
"""


def pychop_available() -> bool:
    """Whether pychop can be imported by this Python interpreter (checked without importing it).

    Examples
    --------
    >>> from lampref.testing.peers import pychop_available
    >>> isinstance(pychop_available(), bool)
    True
    """
    return importlib.util.find_spec("pychop") is not None


def pychop_version() -> str | None:
    """The installed pychop version (from the package metadata, without importing it), or None."""
    try:
        return importlib.metadata.version("pychop")
    except importlib.metadata.PackageNotFoundError:
        return None


def _pychop_input(x: ArrayLike) -> NDArray[Any]:
    """float32 arrays as they are, everything else as float64 (exact for every input lampref accepts)."""
    arr = as_exact_array(x)
    return np.asarray(arr, dtype=np.float32 if arr.dtype == np.float32 else np.float64)


def _job(x: ArrayLike, fmt: FloatFormat | str, mode: str, rng_seed: int) -> dict[str, Any]:
    fmt = get_format(fmt)
    check_mode(mode)
    if mode not in PYCHOP_RMODES:  # pragma: no cover - every lampref mode has a pychop code today
        raise ModeError(f"mode={mode!r} has no pychop equivalent; expected one of {list(PYCHOP_RMODES)}")
    if not is_int(rng_seed) or rng_seed < 0:
        raise ModeError(f"rng_seed must be a non-negative integer, got {rng_seed!r}")
    kwargs = to_pychop(fmt)  # FormatError for formats pychop cannot express
    return {
        "x": _pychop_input(x),
        "exp_bits": int(kwargs["exp_bits"]),
        "sig_bits": int(kwargs["sig_bits"]),
        "subnormal": bool(kwargs["subnormal"]),
        "rmode": PYCHOP_RMODES[mode],
        "random_state": int(rng_seed),
    }


def pychop_round_many(
    jobs: Iterable[tuple[ArrayLike, FloatFormat | str, str]], *, rng_seed: int = 0
) -> list[NDArray[np.float64]]:
    """Round several ``(x, fmt, mode)`` jobs with ``pychop.Chop`` in one child process.

    Starting the child and importing pychop costs about half a second, so batch the jobs of a test.

    Parameters
    ----------
    jobs : iterable of (array_like, FloatFormat or str, str)
        Input values, target format and lampref rounding mode of each job.
    rng_seed : int, default 0
        ``random_state`` of every ``pychop.Chop`` (used by the stochastic modes only).

    Returns
    -------
    list of numpy.ndarray
        pychop's results as float64 (exactly the values pychop returned, which are not always values of
        the format), in the order of ``jobs``, each with the shape of its input.

    Raises
    ------
    FormatError
        A format with no pychop equivalent (see :func:`lampref.to_pychop`).
    ModeError
        An unknown rounding mode, or a bad ``rng_seed``.
    PychopUnavailableError
        pychop is not installed.
    PychopError
        The child process failed.

    Examples
    --------
    >>> from lampref.testing.peers import pychop_available, pychop_round_many
    >>> if not pychop_available():
    ...     import pytest; pytest.skip("pychop is not installed")
    >>> up, down = pychop_round_many([([0.1], "bf16", "toward_pos"), ([0.1], "bf16", "toward_neg")])
    >>> up.tolist(), down.tolist()
    ([0.10009765625], [0.099609375])
    """
    specs = [_job(x, fmt, mode, rng_seed) for x, fmt, mode in jobs]
    if not specs:
        return []
    if not pychop_available():
        raise PychopUnavailableError(
            "pychop is not installed in this Python environment; install it with "
            "pip install 'lampref[test]' (which pins pychop==0.6.2)"
        )
    with tempfile.TemporaryDirectory(prefix="lampref-pychop-") as tmp:
        folder = Path(tmp)
        request = []
        for i, spec in enumerate(specs):
            name = f"input_{i}.npy"
            np.save(folder / name, spec["x"], allow_pickle=False)
            request.append({k: v for k, v in spec.items() if k != "x"} | {"input": name})
        (folder / "request.json").write_text(json.dumps({"jobs": request}))
        env = dict(os.environ, chop_backend="numpy", PYTHONWARNINGS="ignore")
        try:
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, str(folder)],
                env=env,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise PychopError(f"the pychop child process took more than {_TIMEOUT_S:.0f} s") from err
        if done.returncode != 0 or not (folder / "done.json").exists():
            tail = done.stderr.strip()[-2000:]
            if "No module named 'pychop'" in tail:
                raise PychopUnavailableError(f"the child Python could not import pychop:\n{tail}")
            raise PychopError(f"the pychop child process failed (exit status {done.returncode}):\n{tail}")
        results = []
        for i, spec in enumerate(specs):
            y = np.load(folder / f"output_{i}.npy", allow_pickle=False)
            results.append(np.asarray(y, dtype=np.float64).reshape(spec["x"].shape))
    return results


def pychop_round(
    x: ArrayLike, fmt: FloatFormat | str, mode: str = "nearest_even", *, rng_seed: int = 0
) -> NDArray[np.float64]:
    r"""Round ``x`` to ``fmt`` with ``pychop.Chop``, run in a separate Python process.

    Parameters
    ----------
    x : array_like
        Values as :func:`lampref.round_to` accepts them. float32 arrays are given to pychop as float32 and
        everything else as float64 (pychop computes in the dtype of its input).
    fmt : FloatFormat or str
        Target format; it must have a pychop equivalent (:func:`lampref.to_pychop`).
    mode : str, default "nearest_even"
        A lampref rounding mode; it is passed as pychop's ``rmode`` (:data:`PYCHOP_RMODES`).
    rng_seed : int, default 0
        pychop's ``random_state`` for the stochastic modes. pychop draws its own random numbers, so the
        results are not the bits :func:`lampref.round_to` gives with the same seed: compare distributions.

    Returns
    -------
    numpy.ndarray
        pychop's results as float64 with the shape of ``x``, exactly as pychop computed them.

    Raises
    ------
    FormatError
        ``fmt`` has no pychop equivalent (not IEEE-like, saturating, or an exponent range pychop cannot
        express, such as OCP ``e4m3``, whose largest value is 448 where pychop's e4m3 stops at 240).
    ModeError
        Unknown mode or bad ``rng_seed``.
    PychopUnavailableError
        pychop is not installed (``pip install 'lampref[test]'``).
    PychopError
        The child process failed.

    See Also
    --------
    pychop_round_many : many jobs in one child process.
    lampref.testing.oracles.mpfr_round : the exact oracle that settles disagreements.

    Notes
    -----
    The child process sets ``chop_backend=numpy`` and a ``chunk_size`` covering the whole input, so that
    pychop's NumPy implementation runs without dask; every element is rounded independently, so this
    changes the speed, not the values.

    Examples
    --------
    pychop agrees with lampref on ordinary values, and returns 0 for binary16 values in $[2^{16}, 2^{17})$,
    which overflow to infinity:

    >>> from lampref import round_to
    >>> from lampref.testing.peers import pychop_available, pychop_round
    >>> if not pychop_available():
    ...     import pytest; pytest.skip("pychop is not installed")
    >>> pychop_round([1/3, 70000.0], "fp16").tolist()
    [0.333251953125, 0.0]
    >>> round_to([1/3, 70000.0], "fp16").tolist()
    [0.333251953125, inf]
    """
    (result,) = pychop_round_many([(x, fmt, mode)], rng_seed=rng_seed)
    return result
