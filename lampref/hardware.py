r"""Bit-accurate models of GPU matrix units (NVIDIA tensor cores, AMD matrix cores).

A matrix unit computes $D = AB + C$ in *fused groups*: a group of ``group`` products $a_k b_k$ and the
addend $c$ (the result of the previous group) are combined in one step and rounded once. The step is not an
exact sum: NVIDIA tensor cores align every significand to the largest exponent of the group, keep a few extra
bits, drop the rest (truncation), add the aligned integers exactly, and round the sum once to the output
format, in a fixed mode. :class:`TensorCoreModel` holds the published parameters of that step (the
generalised block fused multiply-add of Khattak and Mikaitis), and :func:`gemm` evaluates it for whole
matrices, vectorised over all outputs and group after group along $K$.

The model of one group (``summation="global"``)
-----------------------------------------------
Each input is $x = m_x 2^{e_x - p + 1}$ with $e_x = \max(\lfloor \log_2 |x| \rfloor, e_{\min})$ (the input
format's ``emin``), so a product $a_k b_k$ carries the exponent $e_k = e_{a_k} + e_{b_k}$ (one more when
``normalized_products`` and its significand product is at least 2). The addend's exponent is
$e_c = \max(\lfloor \log_2 |c| \rfloor, -126)$. With $E = \max(\max_k e_k, e_c, \text{min\_exponent})$ over
the nonzero terms, and $u = 2^{E - 23 - \text{extra\_bits}}$ the weight of the last kept bit,

.. math::

    S = \sum_k \operatorname{trunc}(a_k b_k / u) + \operatorname{trunc}(c / u), \qquad
    d = \mathrm{fl}(S u),

where trunc drops the bits below $u$ from each magnitude (the sticky bit, when on, keeps one more bit that
says whether anything was dropped) and fl is the final rounding (``rounding``) to the output format. With
``extra_bits < 0`` (Ada fp8, Hopper fp8 with float32 output) the kept bits are fewer than float32's and
the result has $24 + \text{extra\_bits}$ significant bits. A value that reaches $2^{e_{\max}+1}$ is an
infinity, in every rounding mode (the models' rule; the truncating mode of IEEE 754 would saturate). A group
takes ``group`` consecutive products of $K$, or with ``interleave`` alternating runs of one instruction's
products (Hopper fp8 with fp16 output).

Special values are settled before the arithmetic, over the whole row and column: a NaN, an infinity times
zero, or infinities of both signs among the products and $c$ give NaN, else an infinity gives that infinity.
An infinity produced by overflow in one group stays in the later groups.

References
----------
F. A. Khattak and M. Mikaitis, "Accurate models of NVIDIA tensor cores", arXiv:2512.07004, 2025; models and
real-GPU vectors at github.com/north-numerical-computing/MATLAB-tensor-core (BSD-2-Clause).
M. Fasi, N. J. Higham, M. Mikaitis and S. Pranesh, "Numerical behavior of NVIDIA tensor cores", PeerJ
Computer Science 7:e330, 2021.

Examples
--------
>>> import numpy as np
>>> from lampref import hardware
>>> a = np.float32([[1.0, 2.0**-12, 2.0**-12]]); b = np.float32([[1.0], [2.0**-12], [2.0**-12]])
>>> hardware.gemm(a, b, gpu="V100") - 1  # each 2**-24 is below V100's kept bits: dropped
array([[0.]], dtype=float32)
>>> hardware.gemm(a, b, gpu="H100") - 1  # two extra bits keep them: the exact 1 + 2**-23
array([[1.1920929e-07]], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import as_array, check_rng, widen_ml_dtypes
from .accumulate import Accumulator, _block_sum_exact, _Context
from .errors import HardwareError, ShapeError, expected_one_of
from .formats import FloatFormat, get_format
from .rounding import RngLike, is_representable, round_to

__all__ = [
    "IN_FORMATS",
    "OUT_FORMATS",
    "SUMMATIONS",
    "TensorCoreModel",
    "gemm",
    "gpus",
    "preset",
    "presets",
    "tensor_core",
]

IN_FORMATS: tuple[str, ...] = ("fp16", "bf16", "tf32", "e4m3", "e5m2")
OUT_FORMATS: tuple[str, ...] = ("fp32", "fp16")
SUMMATIONS: tuple[str, ...] = ("global", "odd_even", "pairwise", "exact")
_ALIGN_MODES: tuple[str, ...] = ("toward_zero", "toward_neg", "toward_pos", "nearest_even")
_FINAL_MODES: tuple[str, ...] = ("toward_zero", "nearest_even", "toward_neg", "toward_pos")

# AMD CDNA3 fp8 inputs are the "fnuz" variants: one exponent more below, no infinity, no negative zero.
_FNUZ: dict[str, FloatFormat] = {
    "e4m3": FloatFormat(p=4, emax=7, emin=-7, encoding="none", name="e4m3fnuz"),
    "e5m2": FloatFormat(p=3, emax=15, emin=-15, encoding="none", name="e5m2fnuz"),
}
_NO_EXP = -(1 << 20)  # the exponent of a zero term: below every real one, and safe to add twice in int32
_ADDEND_EMIN = -126  # the addend is held as a float32: its exponent is at least float32's emin
_GRID = 23  # significands are integers on a 2**-23 grid: float32's, which every product fits (p <= 11)
_TILE = 1 << 18  # products per tile: the [rows, N, group] temporaries stay a few MB


@dataclass(frozen=True, slots=True)
class TensorCoreModel:
    r"""One matrix unit's arithmetic for one input and output format (see the module notes for the model).

    Parameters
    ----------
    gpu, in_format, out_format : str
        Labels: the device and the formats of $A, B$ (``fp16, bf16, tf32, e4m3, e5m2``) and of $C, D$
        (``fp32`` or ``fp16``).
    group : int
        Products per fused group: V100 4; A100/Ada 8 (tf32: 4); H100/B200 16 (tf32: 8, fp8: 32; H100 fp8
        with fp16 output: 16, see ``interleave``); Ada fp8 16. Longer sums go group after group, the
        previous result as the next addend.
    extra_bits : int
        Bits kept below the significand of the largest term during alignment: V100 0, A100/Ada 1,
        H100/B200 2. Negative (-10: Ada with fp8 inputs, H100 with fp8 inputs and float32 output): the sum
        keeps only ``24 + extra_bits`` bits, and so does the result. H100 with fp8 inputs and fp16 output
        has its fp16 path's 2.
    rounding : str
        Final rounding of the group's sum to the output format: ``"toward_zero"`` (NVIDIA with float32
        outputs: truncation), ``"nearest_even"`` (fp16 outputs, B200's round-to-nearest variant, AMD).
    summation : {"global", "odd_even", "pairwise", "exact"}
        ``"global"``: all products (and the addend, unless ``late_addend``) aligned to one exponent and
        truncated (NVIDIA, AMD CDNA3). ``"odd_even"``: the even- and odd-indexed products aligned and summed
        separately, the two sums then added with ``align_rounding`` (CDNA3 fp8). ``"pairwise"``: each
        product rounded to float32, then added in a balanced tree of float32 additions, the addend last
        (CDNA2). ``"exact"``: the exact sum of the products and the addend, rounded once (CDNA1).
    late_addend : bool
        The addend is not aligned with the products: the products' sum is formed first (its exponent, its
        extra bits) and the addend added to it afterwards, the smaller of the two rounded with
        ``align_rounding`` at 7 more bits (CDNA3's late partial sum). Required by ``"odd_even"`` and
        ``"pairwise"``; not with ``"exact"``.
    align_rounding : str
        How the smaller of two partial sums loses its low bits when they are added (``late_addend`` and
        ``"odd_even"``): CDNA3 rounds toward $-\infty$ (``"toward_neg"``). Multi-term alignment always
        truncates.
    sticky_bit : bool
        Keep one more bit per aligned term that records whether any bit was dropped (no measured GPU does).
    normalized_products : bool
        Whether a product whose significand reaches 2 is renormalised before alignment (its exponent one
        higher). NVIDIA keeps products unnormalised: $e_k = e_{a_k} + e_{b_k}$.
    min_exponent : int or None
        The alignment exponent $E$ is at least this: terms far below it lose their bits even when nothing
        larger is present. A100/Ada -132, H100/B200 -133 with float32 outputs; with fp16 outputs -19 (V100),
        -20 (A100/Ada; Ada fp8: -132), -21 (H100, B200), -15 (B200 round-to-nearest). None: no limit.
    zero_addend_exponent : int or None
        With ``late_addend``: the exponent a zero addend takes in the final alignment (CDNA3: -126, so tiny
        product sums lose bits even with $c = 0$). None: a zero addend takes no part.
    product_limit : bool
        A product at or beyond $2^{e_{\max}+1}$ of the output format makes the group's result infinite
        (NaN with both signs) before any alignment (AMD CDNA2 and CDNA3).
    in_subnormals, out_subnormals : bool
        Whether subnormal inputs are used (else flushed to zero) and subnormal results and addends kept
        (else flushed to zero). Only AMD CDNA2 flushes.
    fp8_fnuz : bool
        fp8 inputs in the "fnuz" encodings (AMD CDNA3): e4m3 with emin -7 and largest value 240, e5m2 with
        emin -15; no infinity, no negative zero.
    interleave : int
        0: each fused group takes ``group`` consecutive products of $K$. $r > 0$: $K$ is taken in
        instructions of ``2 * group`` products (zero-padded), each executed as two fused groups that take
        alternating runs of $r$ products: the first group the runs at even positions, then the second group
        the runs at odd positions. H100/H200 with fp8 inputs and fp16 output: 2 (of the 32 products of one
        instruction, the first group of 16 takes $k = 0, 1, 4, 5, 8, 9, \dots$, the second
        $k = 2, 3, 6, 7, \dots$). ``group`` must be a multiple of $r$.

    Raises
    ------
    HardwareError
        A parameter out of range or a combination the model does not have; the message names it.

    Examples
    --------
    >>> from lampref.hardware import preset
    >>> m = preset("H100", "fp16", "fp32")
    >>> m.group, m.extra_bits, m.rounding
    (16, 2, 'toward_zero')
    >>> m.replace(extra_bits=3).extra_bits
    3
    """

    gpu: str
    in_format: str
    out_format: str
    group: int
    extra_bits: int
    rounding: str = "toward_zero"
    summation: str = "global"
    late_addend: bool = False
    align_rounding: str = "toward_zero"
    sticky_bit: bool = False
    normalized_products: bool = False
    min_exponent: int | None = None
    zero_addend_exponent: int | None = None
    product_limit: bool = False
    in_subnormals: bool = True
    out_subnormals: bool = True
    fp8_fnuz: bool = False
    interleave: int = 0

    def __post_init__(self) -> None:
        _check_name("in_format", self.in_format, IN_FORMATS)
        _check_name("out_format", self.out_format, OUT_FORMATS)
        _check_name("rounding", self.rounding, _FINAL_MODES)
        _check_name("align_rounding", self.align_rounding, _ALIGN_MODES)
        _check_name("summation", self.summation, SUMMATIONS)
        if not isinstance(self.group, int) or self.group < 1:
            raise HardwareError(f"group={self.group!r} is not valid; expected an integer >= 1")
        if not isinstance(self.extra_bits, int) or not -20 <= self.extra_bits <= 8:
            raise HardwareError(
                f"extra_bits={self.extra_bits!r} is not valid; expected an integer in [-20, 8]"
            )
        if (
            not isinstance(self.interleave, int)
            or self.interleave < 0
            or (self.interleave and self.group % self.interleave)
        ):
            raise HardwareError(
                f"interleave={self.interleave!r} is not valid; expected 0 or a positive divisor of "
                f"group={self.group}"
            )
        if self.summation in ("odd_even", "pairwise") and not self.late_addend:
            raise HardwareError(
                f"summation={self.summation!r} adds the addend last; expected late_addend=True"
            )
        if self.summation == "exact" and self.late_addend:
            raise HardwareError(
                "summation='exact' sums products and addend at once; expected late_addend=False"
            )
        if self.summation == "pairwise" and self.group & (self.group - 1):
            raise HardwareError(f"summation='pairwise' needs a power-of-two group, got group={self.group}")

    def replace(self, **changes: Any) -> TensorCoreModel:
        """A copy with some parameters changed (validated again)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = sorted(set(changes) - set(values))
        if unknown:
            raise HardwareError(expected_one_of("parameter", unknown[0], list(values)))
        return TensorCoreModel(**{**values, **changes})

    @property
    def input_format(self) -> FloatFormat:
        """The format of $A$ and $B$ (the fnuz variant with ``fp8_fnuz``)."""
        if self.fp8_fnuz and self.in_format in _FNUZ:
            return _FNUZ[self.in_format]
        return get_format(self.in_format)

    @property
    def fmt(self) -> FloatFormat:
        """The format of $C$ and $D$ (what a model site's results are rounded to)."""
        return get_format(self.out_format)

    @property
    def mode(self) -> str:
        """Round to nearest even: how a value derived from a result (a scaled score) is stored in ``fmt``."""
        return "nearest_even"

    def gemm(self, a: ArrayLike, b: ArrayLike, c: ArrayLike | None = None) -> NDArray[np.float32]:
        """$D = AB + C$ under this model (see :func:`gemm`); ``c=None`` is $C = 0$."""
        return _gemm(self, a, b, c)

    def matmul(
        self, a: ArrayLike, b: ArrayLike, c: ArrayLike | None = None, *, rng: RngLike = None
    ) -> NDArray[np.float32]:
        """``a @ b + c`` at a model site: ``a`` and ``b`` (float32 activations) rounded to the input format
        to nearest even, ``c`` (None: zero; a bias) to the output format, then :meth:`gemm`. ``rng`` is
        accepted for the accumulation-model interface and not used: the hardware is deterministic."""
        check_rng(rng)
        fin = self.input_format
        a_in = np.asarray(round_to(_float_array(a, "a"), fin), dtype=np.float32)
        b_in = np.asarray(round_to(_float_array(b, "b"), fin), dtype=np.float32)
        c_in = None if c is None else np.asarray(round_to(_float_array(c, "c"), self.fmt), dtype=np.float32)
        return _gemm(self, a_in, b_in, c_in)


def _check_name(name: str, value: object, accepted: tuple[str, ...]) -> None:
    if value not in accepted:
        raise HardwareError(expected_one_of(name, value, accepted))


# ------------------------------------------------------------------------------------------ presets
def _nvidia(gpu: str, group: dict[str, int], extra: int, fp8_extra: int, fp16_out: dict[str, int | None],
            rounding: str = "toward_zero", min_exp: int | None = None) -> list[TensorCoreModel]:  # fmt: skip
    """The presets of one NVIDIA GPU: ``group`` per input format it has, float32 outputs for each, fp16
    outputs (round to nearest even) for the formats in ``fp16_out``, with their min_exponent."""
    out = []
    for fin, g in group.items():
        extra_bits = fp8_extra if fin in ("e4m3", "e5m2") else extra
        base = TensorCoreModel(gpu, fin, "fp32", g, extra_bits, rounding, min_exponent=min_exp)
        out.append(base)
        if fin in fp16_out:
            out.append(base.replace(out_format="fp16", rounding="nearest_even", min_exponent=fp16_out[fin]))
    return out


def _build_presets() -> dict[tuple[str, str, str], TensorCoreModel]:
    ampere = {"fp16": 8, "bf16": 8, "tf32": 4}
    ada = {**ampere, "e4m3": 16, "e5m2": 16}
    hopper = {"fp16": 16, "bf16": 16, "tf32": 8, "e4m3": 32, "e5m2": 32}
    models = _nvidia("V100", {"fp16": 4}, 0, 0, {"fp16": -19})
    for gpu in ("A100", "A2", "A30"):
        models += _nvidia(gpu, ampere, 1, 1, {"fp16": -20}, min_exp=-132)
    for gpu in ("Ada", "L40S"):
        models += _nvidia(gpu, ada, 1, -10, {"fp16": -20, "e4m3": -132, "e5m2": -132}, min_exp=-132)
    for gpu in ("H100", "H200"):
        models += _nvidia(gpu, hopper, 2, -10, {"fp16": -21}, min_exp=-133)
        fp16_path = TensorCoreModel(
            gpu, "e4m3", "fp16", 16, 2, "nearest_even", min_exponent=-21, interleave=2
        )
        models += [fp16_path, fp16_path.replace(in_format="e5m2")]  # fp8 with fp16 output: two groups of 16
    for gpu in ("B200", "RTXPRO6000"):
        models += _nvidia(gpu, hopper, 2, 2, {"fp16": -21}, min_exp=-133)
    models += _nvidia("B200-RN", hopper, 2, 2, {"fp16": -15}, "nearest_even", min_exp=-133)
    amd: dict[str, Any] = {"rounding": "nearest_even", "normalized_products": True}
    for fin, g in (("fp16", 4), ("bf16", 2)):
        models.append(TensorCoreModel("MI100", fin, "fp32", g, 0, summation="exact", **amd))
    for gpu in ("MI210", "MI250"):
        for fin in ("fp16", "bf16"):
            models.append(
                TensorCoreModel(gpu, fin, "fp32", 4, 0, summation="pairwise", late_addend=True,
                                product_limit=True, in_subnormals=False, out_subnormals=False, **amd)
            )  # fmt: skip
    for gpu in ("MI300A", "MI300X"):
        cdna3 = TensorCoreModel(gpu, "fp16", "fp32", 8, 1, "nearest_even", late_addend=True,
                                align_rounding="toward_neg", zero_addend_exponent=-126,
                                product_limit=True)  # fmt: skip
        models += [cdna3, cdna3.replace(in_format="bf16"), cdna3.replace(in_format="tf32", group=4)]
        models += [
            cdna3.replace(in_format=f, group=16, summation="odd_even", fp8_fnuz=True)
            for f in ("e4m3", "e5m2")
        ]
    return {(m.gpu, m.in_format, m.out_format): m for m in models}


_PRESETS = _build_presets()
_GPUS: tuple[str, ...] = tuple(dict.fromkeys(g for g, _, _ in _PRESETS))


def gpus() -> list[str]:
    """The GPU names :func:`preset` knows (NVIDIA, then AMD)."""
    return list(_GPUS)


def presets() -> list[TensorCoreModel]:
    """Every preset, one per GPU, input format and output format.

    Examples
    --------
    >>> from lampref.hardware import presets
    >>> modes = {(m.in_format, m.out_format) for m in presets() if m.gpu == "H100"}
    >>> sorted(modes)  # doctest: +NORMALIZE_WHITESPACE
    [('bf16', 'fp32'), ('e4m3', 'fp16'), ('e4m3', 'fp32'), ('e5m2', 'fp16'), ('e5m2', 'fp32'),
     ('fp16', 'fp16'), ('fp16', 'fp32'), ('tf32', 'fp32')]
    """
    return list(_PRESETS.values())


def preset(gpu: str, in_format: str = "fp16", out_format: str = "fp32") -> TensorCoreModel:
    """The model of ``gpu``'s matrix unit with ``in_format`` inputs and ``out_format`` results.

    Names are case-insensitive; format aliases (``binary16``, ``bfloat16``, ``float8_e4m3fn``, ...) are
    accepted. H200 has H100's model, L40S Ada's, A2 and A30 A100's, RTX PRO 6000 B200's, MI250 MI210's,
    MI300A and MI300X one CDNA3 model.

    Raises
    ------
    HardwareError
        An unknown GPU or format (the message lists the valid ones), or a combination the GPU does not
        offer (the message lists the ones it does).
    """
    by_lower = {g.lower(): g for g in _GPUS}
    key = str(gpu).strip().lower() if isinstance(gpu, str) else None
    if key not in by_lower:
        raise HardwareError(expected_one_of("gpu", gpu, _GPUS))
    name = by_lower[key]
    fin, fout = (
        _format_name("in_format", in_format, IN_FORMATS),
        _format_name("out_format", out_format, OUT_FORMATS),
    )
    if (name, fin, fout) not in _PRESETS:
        offered = [f"{i}->{o}" for g, i, o in _PRESETS if g == name]
        raise HardwareError(f"{name} has no {fin} -> {fout} mode; it offers: {', '.join(offered)}")
    return _PRESETS[name, fin, fout]


def tensor_core(gpu: str, in_format: str = "fp16", out_format: str = "fp32") -> TensorCoreModel:
    """The preset of :func:`preset`, to put at a GEMM site of a :class:`~lampref.gpt2.plan.PrecisionPlan`.

    At a site the operands (float32 activations and weights) are rounded to ``in_format`` to nearest even
    and multiplied with $C = 0$; a dense layer's bias is the addend $C$ (rounded to ``out_format``), as in a
    GEMM with $\\beta = 1$. Results are float32 (fp16 results as float32 values).

    Examples
    --------
    >>> from lampref.gpt2 import PrecisionPlan
    >>> from lampref.hardware import tensor_core
    >>> plan = PrecisionPlan.uniform(tensor_core("H100", "fp16", "fp32"))
    >>> plan.get("mlp.fc").gpu
    'H100'
    """
    return preset(gpu, in_format, out_format)


def _format_name(what: str, name: object, accepted: tuple[str, ...]) -> str:
    try:
        fmt = get_format(name)  # type: ignore[arg-type]  # anything else is reported below
    except Exception:
        raise HardwareError(expected_one_of(what, name, accepted)) from None
    for n in accepted:
        if get_format(n) == fmt:
            return n
    raise HardwareError(expected_one_of(what, name, accepted))


# ------------------------------------------------------------------------------------------ entry point
def gemm(
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike | None = None,
    *,
    gpu: str = "H100",
    in_format: str = "fp16",
    out_format: str = "fp32",
) -> NDArray[np.float32]:
    r"""$D = AB + C$ computed the way ``gpu``'s matrix unit does (see :mod:`lampref.hardware`).

    Parameters
    ----------
    a, b : array_like
        Shapes ``(..., M, K)`` and ``(..., K, N)``, broadcast like ``numpy.matmul``; every value must be a
        value of ``in_format`` (float32 arrays holding them, or ml_dtypes arrays).
    c : array_like, optional
        The addend, broadcastable to ``(..., M, N)``, holding ``out_format`` values; None is zero.
    gpu, in_format, out_format : str
        The preset (:func:`preset`).

    Returns
    -------
    numpy.ndarray
        float32, shape ``(..., M, N)`` (fp16 results as float32 values).

    Raises
    ------
    HardwareError
        Unknown GPU or format, a combination the GPU does not offer, or an input value the format cannot
        hold (the message gives the first one: operand, index, value).
    ShapeError
        Operands whose shapes do not fit.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.hardware import gemm
    >>> a = np.float32([[1.0, -1.0, 2.0**-20]]); b = np.ones((3, 1), np.float32)
    >>> gemm(a, b, np.float32([[2.0**-30]]), gpu="A100", in_format="fp16")  # the addend is dropped too
    array([[9.536743e-07]], dtype=float32)
    """
    return _gemm(preset(gpu, in_format, out_format), a, b, c)


def _float_array(x: ArrayLike, name: str) -> NDArray[Any]:
    arr = widen_ml_dtypes(as_array(x, name))
    if arr.dtype.kind not in "fiub":
        raise HardwareError(f"{name} has dtype {arr.dtype}; expected a real floating-point array")
    return arr


def _check_values(x: NDArray[Any], fmt: FloatFormat, name: str, what: str) -> NDArray[np.float64]:
    """``x`` as float64 after checking that every element is a value of ``fmt``."""
    ok = np.asarray(is_representable(x, fmt))
    if not ok.all():
        idx = tuple(int(i) for i in np.argwhere(~ok)[0])
        raise HardwareError(
            f"{name}{list(idx)} = {x[idx]!r} is not a value of {what} format {fmt.name}; round it first "
            f"(lampref.round_to(x, {fmt.name!r}))"
        )
    return x.astype(np.float64)


def _operands(
    model: TensorCoreModel, a: ArrayLike, b: ArrayLike, c: ArrayLike | None
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], tuple[int, ...]]:
    """Checked operands as stacks ``[B, M, K]``, ``[B, K, N]``, ``[B, M, N]`` and the output shape."""
    A = _check_values(_float_array(a, "a"), model.input_format, "a", "the input")
    B = _check_values(_float_array(b, "b"), model.input_format, "b", "the input")
    if A.ndim < 2 or B.ndim < 2 or A.shape[-1] != B.shape[-2]:
        raise ShapeError(
            f"gemm: a has shape {A.shape} and b has shape {B.shape}; expected (..., M, K) and (..., K, N)"
        )
    try:
        batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    except ValueError:
        raise ShapeError(f"gemm: batch dimensions of a {A.shape} and b {B.shape} do not broadcast") from None
    (M, K), N = A.shape[-2:], B.shape[-1]
    shape = (*batch, M, N)
    C = np.zeros(shape) if c is None else _check_values(_float_array(c, "c"), model.fmt, "c", "the output")
    try:
        C = np.broadcast_to(C, shape)
    except ValueError:
        raise ShapeError(
            f"gemm: c has shape {np.shape(C)}; expected one that broadcasts to {shape}"
        ) from None
    A3 = np.broadcast_to(A, (*batch, M, K)).reshape(-1, M, K)
    B3 = np.broadcast_to(B, (*batch, K, N)).reshape(-1, K, N)
    return A3, B3, C.reshape(-1, M, N), shape


def _gemm(model: TensorCoreModel, a: ArrayLike, b: ArrayLike, c: ArrayLike | None) -> NDArray[np.float32]:
    A, B, C, shape = _operands(model, a, b, c)
    nan, inf = _special_values(A, B, C)  # [Bt, M, N]: NaN results, and the infinite ones (signed)
    A, B, C = (np.where(np.isfinite(x), x, 0.0) for x in (A, B, C))
    if not model.in_subnormals:
        tiny = model.input_format.smallest_normal
        A, B = (np.where(np.abs(x) < tiny, 0.0, x) for x in (A, B))
    out = np.empty(C.shape, dtype=np.float32)
    N = B.shape[2]
    rows = max(1, _TILE // max(N * model.group, 1))
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for r0 in range(0, A.shape[1], rows):
            r1 = min(r0 + rows, A.shape[1])
            out[:, r0:r1] = _accumulate(model, A[:, r0:r1], B, C[:, r0:r1])
    out = np.where(inf != 0, inf, out)
    out = np.where(nan, np.float32(np.nan), out).astype(np.float32)
    return out.reshape(shape)


def _special_values(
    A: NDArray[np.float64], B: NDArray[np.float64], C: NDArray[np.float64]
) -> tuple[NDArray[np.bool_], NDArray[np.float32]]:
    """NaN where a NaN, an infinity times zero or infinities of both signs meet; else +-inf where an
    infinity is (``[Bt, M, N]``). A loop over K, taken only when an operand is not finite."""
    nan = np.isnan(C)
    pos, neg = C == np.inf, C == -np.inf
    if not (np.isfinite(A).all() and np.isfinite(B).all()):
        with np.errstate(invalid="ignore"):
            for k in range(A.shape[2]):
                p = A[:, :, k, None] * B[:, None, k, :]  # [Bt, M, 1] * [Bt, 1, N]
                nan |= np.isnan(p)
                pos |= p == np.inf
                neg |= p == -np.inf
    nan |= pos & neg
    inf = np.where(pos, np.inf, np.where(neg, -np.inf, 0.0)).astype(np.float32)
    return nan, inf


def _accumulate(
    model: TensorCoreModel, A: NDArray[np.float64], B: NDArray[np.float64], C: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Group after group along K (zero-padded to whole groups); each result is the next addend. An infinity
    or NaN from one group (overflow, the product limit) is kept to the end."""
    if model.interleave:
        A, B = _interleaved(A, B, model.group, model.interleave)
    K, G = A.shape[2], model.group
    emin = model.input_format.emin
    assert emin is not None
    ea, eb = _exponents(A, emin), _exponents(B, emin)
    d = C if model.out_subnormals else _flush(C, model.fmt)
    stuck = np.zeros(C.shape)
    step = _STEPS[model.summation]
    for k0 in range(0, max(K, 1), G):
        k1 = min(k0 + G, K)
        pad = G - (k1 - k0)
        ag = np.pad(A[:, :, k0:k1], ((0, 0), (0, 0), (0, pad)))  # [Bt, R, G]
        bg = np.pad(np.swapaxes(B[:, k0:k1, :], 1, 2), ((0, 0), (0, 0), (0, pad)))  # [Bt, N, G]
        e = (
            _pad_exp(ea[:, :, k0:k1], pad)[:, :, None, :]
            + _pad_exp(np.swapaxes(eb[:, k0:k1, :], 1, 2), pad)[:, None]
        )
        p = ag[:, :, None, :] * bg[:, None, :, :]  # [Bt, R, 1, G] * [Bt, 1, N, G] -> [Bt, R, N, G]
        r = step(model, p, e, d)
        if model.product_limit:
            r = _product_limit(model, p, r)
        stuck = np.where((stuck == 0) & ~np.isfinite(r), r, stuck)
        d = np.where(np.isfinite(r), r, 0.0)
    return np.where(stuck != 0, stuck, d)  # NaN != 0 holds: a NaN is kept too


def _interleaved(
    A: NDArray[np.float64], B: NDArray[np.float64], G: int, r: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``A [Bt, R, K]`` and ``B [Bt, K, N]`` with K zero-padded to whole instructions of ``2 * G`` products
    and reordered so that consecutive groups of ``G`` are the ones the hardware fuses: in each instruction,
    the runs of ``r`` products at even positions, then those at odd positions."""
    K, width = A.shape[2], 2 * G
    n = -(-K // width) * width
    k = np.arange(n)
    order = np.lexsort((k, (k % width // r) % 2, k // width))  # by instruction, then group, then k
    A = np.pad(A, ((0, 0), (0, 0), (0, n - K)))[:, :, order]  # [Bt, R, n]
    B = np.pad(B, ((0, 0), (0, n - K), (0, 0)))[:, order, :]  # [Bt, n, N]
    return A, B


def _exponents(x: NDArray[np.float64], emin: int) -> NDArray[np.int32]:
    """$\\max(\\lfloor\\log_2|x|\\rfloor, e_{\\min})$, and a very small exponent where ``x`` is zero."""
    _, e = np.frexp(x)
    out: NDArray[np.int32] = np.where(x == 0, _NO_EXP, np.maximum(e - 1, emin)).astype(np.int32)
    return out


def _pad_exp(e: NDArray[np.int32], pad: int) -> NDArray[np.int32]:
    return np.pad(e, ((0, 0), (0, 0), (0, pad)), constant_values=_NO_EXP)


def _flush(x: NDArray[np.float64], fmt: FloatFormat) -> NDArray[np.float64]:
    return np.where(np.abs(x) < fmt.smallest_normal, 0.0, x)


def _product_limit(
    model: TensorCoreModel, p: NDArray[np.float64], r: NDArray[np.float64]
) -> NDArray[np.float64]:
    thr = 2.0 ** (model.fmt.emax + 1)
    pos, neg = (p >= thr).any(axis=-1), (p <= -thr).any(axis=-1)
    return np.where(pos & neg, np.nan, np.where(pos, np.inf, np.where(neg, -np.inf, r)))


# ------------------------------------------------------------------------------------------ one group
def _aligned_sum(
    model: TensorCoreModel, terms: NDArray[np.float64], E: NDArray[np.int32]
) -> tuple[NDArray[np.float64], NDArray[np.int32]]:
    """The terms (last axis) aligned to exponent ``E``, each truncated below its last kept bit and summed
    exactly: the sum ``S`` (an integer, float64) and the exponent of its unit, so the value is S * 2**unit."""
    unit = E - _GRID - model.extra_bits  # [..]
    x = terms * np.ldexp(1.0, -unit)[..., None]  # exact: a power-of-two scaling
    t = np.trunc(x)
    if model.sticky_bit:
        t = 2.0 * t + np.sign(x) * (x != t)
        unit = unit - 1
    return t.sum(axis=-1) + 0.0, unit  # integers below 2**40: exact in any order; + 0.0 makes -0 into +0


def _alignment_exponent(
    model: TensorCoreModel, e: NDArray[np.int32], floor: int | None
) -> tuple[NDArray[np.int32], NDArray[np.bool_]]:
    """The largest exponent (last axis), at least ``floor``; and where any term was present (elsewhere the
    exponent is 0, so scalings stay finite)."""
    E = e.max(axis=-1)
    present = E > _NO_EXP // 2
    if floor is not None:
        E = np.maximum(E, floor)
    return np.where(present, E, 0).astype(np.int32), present


def _term_exponents(
    model: TensorCoreModel, p: NDArray[np.float64], e: NDArray[np.int32]
) -> NDArray[np.int32]:
    """Product exponents ``e_a + e_b``; with normalised products, one more where the significand reached 2."""
    if not model.normalized_products:
        return e
    up = (np.abs(p) >= np.ldexp(1.0, np.maximum(e, -1060) + 1)) & (p != 0)
    out: NDArray[np.int32] = (e + up).astype(np.int32)
    return out


def _addend_exponent(c: NDArray[np.float64], zero: int | None) -> NDArray[np.int32]:
    e = _exponents(c, _ADDEND_EMIN)
    if zero is not None:
        e = np.where(c == 0, zero, e).astype(np.int32)
    return e


def _global_step(
    model: TensorCoreModel, p: NDArray[np.float64], e: NDArray[np.int32], c: NDArray[np.float64]
) -> NDArray[np.float64]:
    """One fused group with all terms aligned together (the addend too unless ``late_addend``)."""
    e = _term_exponents(model, p, e)
    if model.late_addend:
        v, E = _partial_sum(model, p, e)
        v = _add_late(model, v, E, c, exp_check=False)
        return _round_out(model, v)
    terms = np.concatenate([p, c[..., None]], axis=-1)  # [.., G + 1]
    ec = np.where(c == 0, _NO_EXP, _exponents(c, _ADDEND_EMIN))
    E, _ = _alignment_exponent(model, np.concatenate([e, ec[..., None]], axis=-1), model.min_exponent)
    S, unit = _aligned_sum(model, terms, E)
    return _round_out(model, np.ldexp(S, unit))


def _partial_sum(
    model: TensorCoreModel, p: NDArray[np.float64], e: NDArray[np.int32]
) -> tuple[NDArray[np.float64], NDArray[np.int32]]:
    """The products aligned and summed alone: the value and its alignment exponent (``_NO_EXP`` if none)."""
    E, present = _alignment_exponent(model, e, model.min_exponent)
    S, unit = _aligned_sum(model, p, E)
    return np.ldexp(S, unit), np.where(present, E, _NO_EXP).astype(np.int32)


_SIGNED_ROUND: dict[str, Callable[[Any], Any]] = {
    "toward_zero": np.trunc,
    "toward_neg": np.floor,
    "toward_pos": np.ceil,
    "nearest_even": np.rint,
}


def _add_two(
    model: TensorCoreModel,
    v1: NDArray[np.float64],
    e1: NDArray[np.int32],
    v2: NDArray[np.float64],
    e2: NDArray[np.int32],
    extra: tuple[int, int],
    exp_check: bool,
) -> tuple[NDArray[np.float64], NDArray[np.int32]]:
    """Two partial sums with exponents ``e1``, ``e2`` added: the one with the smaller exponent keeps
    ``extra_bits + extra[i]`` bits below the larger exponent, rounded with ``align_rounding`` (truncated
    instead when ``exp_check`` and it lies more than 25 binades below). Returns the exact sum and exponent."""
    E = np.maximum(e1, e2)
    rnd = _SIGNED_ROUND[model.align_rounding]

    def align(v: NDArray[np.float64], e: NDArray[np.int32], eab: int, check: bool) -> NDArray[np.float64]:
        unit = np.where(e < E, E, 0) - _GRID - model.extra_bits - eab
        x = v * np.ldexp(1.0, -unit)
        r = rnd(x)
        if check:
            r = np.where(e < E - 25, np.trunc(x), r)
        return np.where(e < E, np.ldexp(r, unit), v)

    return align(v1, e1, extra[0], False) + align(v2, e2, extra[1], exp_check), E


def _add_late(
    model: TensorCoreModel,
    v: NDArray[np.float64],
    E: NDArray[np.int32],
    c: NDArray[np.float64],
    exp_check: bool,
) -> NDArray[np.float64]:
    """The addend added to a products' partial sum (CDNA3's late partial sum): 7 extra bits on the
    products' side when they are the smaller."""
    ec = _addend_exponent(c, model.zero_addend_exponent)
    ec = np.where((c == 0) & (model.zero_addend_exponent is None), _NO_EXP, ec).astype(np.int32)
    out, _ = _add_two(model, v, E, c, ec, (7, 0), exp_check)
    return np.where(E == _NO_EXP, c, out)


def _odd_even_step(
    model: TensorCoreModel, p: NDArray[np.float64], e: NDArray[np.int32], c: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Even- and odd-indexed products summed apart, then together (``align_rounding``), then the addend."""
    e = _term_exponents(model, p, e)
    v0, E0 = _partial_sum(model, p[..., 0::2], e[..., 0::2])
    v1, E1 = _partial_sum(model, p[..., 1::2], e[..., 1::2])
    v, E = _add_two(model, v0, E0, v1, E1, (0, 0), False)
    return _round_out(model, _add_late(model, v, E, c, exp_check=True))


def _pairwise_step(
    model: TensorCoreModel, p: NDArray[np.float64], e: NDArray[np.int32], c: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Products rounded to float32, a balanced tree of float32 additions, then the addend (CDNA2)."""
    fmt = model.fmt
    s = np.asarray(round_to(p, fmt), dtype=np.float32)  # float32 products, to nearest even

    def keep(x: NDArray[np.float32]) -> NDArray[np.float32]:
        return x if model.out_subnormals else np.where(np.abs(x) < fmt.smallest_normal, np.float32(0), x)

    s = keep(s)  # [.., G]
    while s.shape[-1] > 1:
        s = keep(s[..., 0::2] + s[..., 1::2])  # one tree level: float32 additions, correctly rounded
    out = keep(c.astype(np.float32) + s[..., 0])  # the addend last
    return _round_out(model, out.astype(np.float64))


def _exact_step(
    model: TensorCoreModel, p: NDArray[np.float64], e: NDArray[np.int32], c: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The exact sum of the products and the addend, rounded once (CDNA1)."""
    terms = np.concatenate([p, c[..., None]], axis=-1)  # [.., G + 1]
    flat = terms.reshape(-1, terms.shape[-1])
    acc = Accumulator(model.fmt, block=terms.shape[-1], block_fmt=model.fmt, block_mode=model.rounding)
    v = _block_sum_exact(_Context(acc, None), flat, np.ones_like(flat)).reshape(c.shape)
    return _round_out(model, v)


_STEPS: dict[str, Callable[..., NDArray[np.float64]]] = {
    "global": _global_step,
    "odd_even": _odd_even_step,
    "pairwise": _pairwise_step,
    "exact": _exact_step,
}


def _round_out(model: TensorCoreModel, v: NDArray[np.float64]) -> NDArray[np.float64]:
    """The final rounding of a group's exact value to the output format (``24 + extra_bits`` bits when
    ``extra_bits < 0``); a value at or beyond ``2**(emax + 1)`` is an infinity in every mode."""
    fmt = model.fmt
    if fmt.p > _GRID + 1 + model.extra_bits:
        fmt = fmt.replace(p=_GRID + 1 + model.extra_bits)
    r = np.asarray(round_to(v, fmt, model.rounding), dtype=np.float64)
    r = np.where(np.abs(v) >= 2.0 ** (fmt.emax + 1), np.copysign(np.inf, v), r)
    if not model.out_subnormals:
        r = np.where(np.abs(r) < fmt.smallest_normal, 0.0, r)
    return r
