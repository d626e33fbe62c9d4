r"""OCP Microscaling (MX) block formats: quantise a tensor in blocks that share one power-of-two scale.

An MX block holds $k$ (32 by default) private elements $P_i$ in a narrow format (fp8, fp6, fp4 or int8)
and one shared scale $X$, an E8M0 value (OCP MX v1.0, section 5.4.1): a power of two $2^{c-127}$ stored as
its 8-bit biased exponent $c$ (bias 127, $0 \le c \le 254$; $c = 255$ is NaN; no zero, no sign, no
infinity). The block represents the values $v_i = X \cdot P_i$.

Conversion (OCP MX v1.0, section 6.3), for a block $V_1, \dots, V_k$ and an element format whose largest
normal number lies in the binade $2^{e_{\max}}$:

.. math::

    X = 2^{\lfloor \log_2 \max_i |V_i| \rfloor - e_{\max}}, \qquad
    P_i = \mathrm{fl}_{\mathrm{sat}}(V_i / X),

where $\mathrm{fl}_{\mathrm{sat}}$ rounds to nearest, ties to even, and clamps values beyond the
element's largest magnitude to it (saturation). The details the specification leaves to an implementation
are decided here as its reference code (microsoft/microxcaling) decides them:

* a block of zeros gets the smallest scale $2^{-127}$ (code 0): $\lfloor\log_2 0\rfloor = -\infty$
  clamped to E8M0's range;
* an exponent below $-127$ is clamped to $-127$ (the elements then round as the smaller scale requires);
* an exponent above $127$ (possible only for float64 inputs beyond $2^{128 + e_{\max}}$) cannot be
  stored: E8M0 has no infinity, so the scale is NaN, as for a block holding a NaN or an infinity;
* a block whose scale is NaN decodes to NaN whatever its elements hold (as the specification states for a
  NaN scale); its elements are returned as NaN.

Element types (``element=``): ``"e4m3"`` and ``"e5m2"`` (MXFP8), ``"e3m2"`` and ``"e2m3"`` (MXFP6),
``"e2m1"`` (MXFP4) and ``"int8"`` (MXINT8: the 8-bit two's complement integers $-128 \dots 127$ with an
implicit factor $2^{-6}$, so the values $j/64$ from $-2$ to $127/64$; $e_{\max} = 0$).

Representation: :func:`quantize` returns the element **values** as float32 (each is exactly a value of
the element format) and the scales as **uint8 E8M0 codes**, the bytes a kernel stores;
:func:`decode_scales` and :func:`encode_scales` convert between codes and powers of two. Along the blocked
axis the scales have $\lceil n / k \rceil$ entries: when $n$ is not a multiple of $k$ the last block is
shorter, and is treated as if padded with zeros (which changes no maximum).

Examples
--------
>>> import numpy as np
>>> from lampref import mx
>>> x = np.array([[1.0, 3.0, 300.0, 500.0], [0.0, 0.0, 0.0, 0.0]])
>>> elements, scales = mx.quantize(x, element="e4m3", block=4, axis=-1)
>>> elements  # 300 rounds to 288; 500 saturates to e4m3's largest value, 448
array([[  1.,   3., 288., 448.],
       [  0.,   0.,   0.,   0.]], dtype=float32)
>>> scales  # 2**(8 - 8) = 1 (code 127); a block of zeros gets 2**-127 (code 0)
array([[127],
       [  0]], dtype=uint8)
>>> mx.dequantize(elements, scales, axis=-1, block=4)[0]
array([  1.,   3., 288., 448.])
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import check_int
from .errors import FormatError, InputTypeError, InputValueError, ShapeError, expected_one_of
from .formats import FloatFormat, get_format
from .rounding import as_exact_array, round_to

__all__ = [
    "E8M0_BIAS",
    "E8M0_NAN",
    "ELEMENTS",
    "MXSpec",
    "decode_scales",
    "dequantize",
    "encode_scales",
    "get_spec",
    "quantize",
    "quantize_dequantize",
    "spec_names",
]

#: The element types of OCP MX v1.0, by the names :class:`MXSpec` takes.
ELEMENTS: tuple[str, ...] = ("e4m3", "e5m2", "e3m2", "e2m3", "e2m1", "int8")
#: The E8M0 scale: code ``c`` is ``2**(c - E8M0_BIAS)`` for ``0 <= c <= 254``; ``E8M0_NAN`` is NaN.
E8M0_BIAS = 127
E8M0_NAN = 255
_E8M0_EMIN, _E8M0_EMAX = -127, 127
_INT8_FRACTION_BITS = 6  # MXINT8: two's complement with an implicit factor 2**-6

# The concrete format name of the specification for each element type.
_FAMILY = {"e4m3": "mxfp8", "e5m2": "mxfp8", "e3m2": "mxfp6", "e2m3": "mxfp6", "e2m1": "mxfp4"}
# A family name alone means its first element type (MXFP8 -> e4m3, MXFP6 -> e3m2).
_FAMILY_DEFAULT = {"mxfp8": "e4m3", "mxfp6": "e3m2", "mxfp4": "e2m1", "mxint8": "int8"}
_NAME = re.compile(
    r"(?:mx:(?P<element>[a-z0-9_]+)(?::(?P<block>[0-9]+))?"
    r"|(?P<family>mxfp8|mxfp6|mxfp4|mxint8)(?:_(?P<felement>e[0-9]m[0-9]))?(?:_b(?P<fblock>[0-9]+))?)",
    re.ASCII,
)


def _canonical_element(element: object) -> str:
    """The canonical name of an element type (``ELEMENTS``); float formats also by any format alias."""
    if isinstance(element, str):
        key = element.strip().lower()
        if key in ELEMENTS:
            return key
    if isinstance(element, (str, FloatFormat)):
        try:
            fmt = get_format(element)
        except FormatError:
            fmt = None
        for name in ELEMENTS[:-1]:
            if fmt is not None and fmt == get_format(name):
                return name
    raise FormatError(expected_one_of("element", element, ELEMENTS))


@dataclass(frozen=True, slots=True)
class MXSpec:
    r"""An OCP MX block format: the element type and the block size (elements per shared scale).

    Parameters
    ----------
    element : str, default "e4m3"
        ``"e4m3"``, ``"e5m2"``, ``"e3m2"``, ``"e2m3"``, ``"e2m1"`` or ``"int8"`` (a format alias such
        as ``"float8_e4m3fn"`` is accepted and stored under its canonical name).
    block : int, default 32
        Elements per block, at least 1 (the specification's $k$; its concrete formats use 32).

    Raises
    ------
    FormatError
        An unknown element type.
    InputTypeError, InputValueError
        A block size that is not an integer, or is below 1.

    Examples
    --------
    >>> from lampref.mx import MXSpec
    >>> spec = MXSpec("e2m1")
    >>> spec.name, spec.element_max, spec.emax
    ('mxfp4_e2m1', 6.0, 2)
    >>> MXSpec("e4m3", 16).name
    'mxfp8_e4m3_b16'
    >>> {MXSpec(): 1}[MXSpec("float8_e4m3fn", 32)]
    1
    """

    element: str = "e4m3"
    block: int = 32

    def __post_init__(self) -> None:
        object.__setattr__(self, "element", _canonical_element(self.element))
        object.__setattr__(self, "block", check_int(self.block, "block", minimum=1))

    @property
    def name(self) -> str:
        """The specification's name (``mxfp8_e4m3``, ``mxint8``, ...), with ``_b<k>`` when ``k != 32``."""
        base = "mxint8" if self.element == "int8" else f"{_FAMILY[self.element]}_{self.element}"
        return base if self.block == 32 else f"{base}_b{self.block}"

    @property
    def element_format(self) -> FloatFormat | None:
        """The element's :class:`~lampref.FloatFormat` (None for ``int8``, a fixed-point type)."""
        return None if self.element == "int8" else get_format(self.element)

    @property
    def emax(self) -> int:
        r"""$e_{\max}$ of the element type: the exponent of its largest normal binade (int8: 0)."""
        fmt = self.element_format
        return 0 if fmt is None else fmt.emax

    @property
    def element_max(self) -> float:
        """The element type's largest magnitude (int8: 127/64; its most negative value is -2)."""
        fmt = self.element_format
        return math.ldexp(127, -_INT8_FRACTION_BITS) if fmt is None else fmt.max

    @property
    def element_bits(self) -> int:
        """Bits per element (8, 6 or 4); a block takes ``8 + block * element_bits`` bits."""
        fmt = self.element_format
        return 8 if fmt is None else fmt.bits

    def quantize(self, x: ArrayLike, axis: int = -1) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
        """:func:`quantize` with this spec's element type and block size."""
        return quantize(x, self.element, block=self.block, axis=axis)

    def dequantize(self, elements: ArrayLike, scales: ArrayLike, axis: int = -1) -> NDArray[np.float64]:
        """:func:`dequantize` with this spec's block size."""
        return dequantize(elements, scales, axis=axis, block=self.block)

    def quantize_dequantize(self, x: ArrayLike, axis: int = -1) -> NDArray[np.floating[Any]]:
        """The values ``x`` takes once stored in this MX format: :func:`quantize_dequantize`."""
        return quantize_dequantize(x, self.element, block=self.block, axis=axis)


def spec_names() -> list[str]:
    """The names of the specification's concrete formats (block 32) that :func:`get_spec` accepts."""
    names = [MXSpec(e).name for e in ELEMENTS]
    return names + [family for family in _FAMILY_DEFAULT if family not in names]


def get_spec(name: str | MXSpec) -> MXSpec:
    """Look an MX format up by name; an :class:`MXSpec` is returned unchanged.

    Parameters
    ----------
    name : str or MXSpec
        A concrete format of the specification (``"mxfp8_e4m3"``, ``"mxfp8_e5m2"``, ``"mxfp6_e3m2"``,
        ``"mxfp6_e2m3"``, ``"mxfp4_e2m1"``, ``"mxint8"``), optionally with ``_b<k>`` for a block size
        other than 32; a family alone (``"mxfp8"`` is e4m3, ``"mxfp6"`` is e3m2, ``"mxfp4"``); or
        ``"mx:<element>"`` / ``"mx:<element>:<block>"``. Case-insensitive.

    Raises
    ------
    FormatError
        A name that is none of these, or an element type that does not belong to the named family.
    InputValueError
        A block size below 1.

    Examples
    --------
    >>> from lampref.mx import get_spec
    >>> get_spec("mxfp8")
    MXSpec(element='e4m3', block=32)
    >>> get_spec("mx:e4m3:16") == get_spec("MXFP8_E4M3_B16")
    True
    >>> get_spec("mx:int8").name
    'mxint8'
    """
    if isinstance(name, MXSpec):
        return name
    if not isinstance(name, str):
        raise FormatError(f"name={name!r} is not valid; expected an MX format name or an MXSpec")
    key = name.strip().lower()
    match = _NAME.fullmatch(key)
    if match is None:
        raise FormatError(expected_one_of("name", name, [*spec_names(), "mx:<element>[:<block>]"]))
    if match.group("family"):
        family = match.group("family")
        element = match.group("felement") or _FAMILY_DEFAULT[family]
        if (_FAMILY.get(element) or "mxint8") != family or (family == "mxint8" and match.group("felement")):
            raise FormatError(
                f"MX format {name!r} names element {element!r}, which is not an {family} element"
            )
        block = match.group("fblock")
    else:
        element, block = match.group("element"), match.group("block")
    return MXSpec(element, 32 if block is None else int(block))


# ------------------------------------------------------------------------ scales
def decode_scales(codes: ArrayLike) -> NDArray[np.float32]:
    """The powers of two that E8M0 codes stand for: ``2**(c - 127)``, and NaN for 255.

    Every E8M0 value is a float32 value (``2**-127`` is a float32 subnormal).

    Raises
    ------
    InputTypeError, InputValueError
        Codes that are not integers, or lie outside ``0 .. 255``.

    Examples
    --------
    >>> from lampref.mx import decode_scales
    >>> decode_scales([126, 127, 130, 255])
    array([0.5, 1. , 8. , nan], dtype=float32)
    >>> float(decode_scales(0)) == 2.0**-127
    True
    """
    c = _as_codes(codes)
    nan = c == E8M0_NAN
    exponent = np.where(nan, 0, c.astype(np.int32) - E8M0_BIAS)
    return np.where(nan, np.float32(np.nan), np.ldexp(np.float32(1.0), exponent)).astype(np.float32)


def encode_scales(values: ArrayLike) -> NDArray[np.uint8]:
    """The E8M0 codes of powers of two from ``2**-127`` to ``2**127`` (NaN gives 255).

    Raises
    ------
    InputValueError
        A value that is not NaN and not a power of two in E8M0's range (E8M0 rounds nothing here).

    Examples
    --------
    >>> from lampref.mx import encode_scales
    >>> encode_scales([1.0, 0.25, 2.0**-127, float("nan")])
    array([127, 125,   0, 255], dtype=uint8)
    """
    v = as_exact_array(values, "values").astype(np.float64)
    nan = np.isnan(v)
    with np.errstate(invalid="ignore"):
        mantissa, exponent = np.frexp(np.where(nan, 1.0, v))
    ok = (mantissa == 0.5) & (exponent - 1 >= _E8M0_EMIN) & (exponent - 1 <= _E8M0_EMAX)
    if not ok.all():
        bad = float(v[~ok].reshape(-1)[0])
        raise InputValueError(
            f"values holds {bad!r}, which has no E8M0 code; expected NaN or a power of two "
            "2**e with -127 <= e <= 127"
        )
    return np.where(nan, E8M0_NAN, exponent - 1 + E8M0_BIAS).astype(np.uint8)


def _as_codes(codes: ArrayLike, name: str = "codes") -> NDArray[Any]:
    c = np.asarray(codes)
    if c.dtype.kind not in "iu":
        raise InputTypeError(
            f"{name} has dtype {c.dtype}; expected E8M0 codes as integers 0..255 (uint8); "
            "lampref.mx.encode_scales converts powers of two to codes"
        )
    if c.size and (int(c.min()) < 0 or int(c.max()) > E8M0_NAN):
        raise InputValueError(f"{name} holds values outside 0..255; expected E8M0 codes (uint8)")
    return c


# -------------------------------------------------------------------- the kernel
def _check_axis(axis: object, ndim: int) -> int:
    if ndim == 0:
        raise InputValueError("x is a scalar (0-d); MX quantisation needs an array with an axis to block")
    return check_int(axis, "axis", minimum=-ndim, maximum=ndim - 1) % ndim


def _blocks(a: NDArray[np.float64], block: int) -> NDArray[np.float64]:
    """[..., n] -> [..., ceil(n/block), block], the last block padded with zeros."""
    n = a.shape[-1]
    nb = -(-n // block)
    padded = np.zeros((*a.shape[:-1], nb * block), dtype=np.float64)
    padded[..., :n] = a
    return padded.reshape(*a.shape[:-1], nb, block)


def _shared_exponents(amax: NDArray[np.float64], emax: int) -> NDArray[np.int64]:
    """floor(log2 amax) - emax clamped below at -127, and 128 (NaN) above 127 or for non-finite amax."""
    finite = np.isfinite(amax)
    _, e = np.frexp(np.where(finite, amax, 1.0))  # amax = m * 2**e, 1/2 <= m < 1: floor(log2) = e - 1
    shared = np.where(amax > 0, e.astype(np.int64) - 1 - emax, _E8M0_EMIN)
    shared = np.maximum(shared, _E8M0_EMIN)
    return np.where(finite & (shared <= _E8M0_EMAX), shared, E8M0_NAN - E8M0_BIAS)


def _round_elements(v: NDArray[np.float64], element: str) -> NDArray[np.float32]:
    """Round the scaled values to the element type: nearest, ties to even, saturating."""
    if element == "int8":
        j = np.clip(np.rint(np.ldexp(v, _INT8_FRACTION_BITS)), -128, 127)  # rint: ties to even
        values: NDArray[np.float32] = (np.ldexp(j, -_INT8_FRACTION_BITS) + 0.0).astype(np.float32)
        return values  # + 0.0 above: int8 has no -0
    saturating = get_format(element).replace(saturate=True)
    return np.asarray(round_to(v, saturating), dtype=np.float32)


def _quantize_last(a: NDArray[np.float64], spec: MXSpec) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """quantize along the last axis: [..., n] -> elements [..., n], codes [..., ceil(n/block)]."""
    n = a.shape[-1]
    b = _blocks(a, spec.block)  # [..., nb, block]
    with np.errstate(invalid="ignore"):
        amax = np.max(np.abs(b), axis=-1) if b.size else np.zeros(b.shape[:-1])  # NaN propagates
    shared = _shared_exponents(amax, spec.emax)  # [..., nb]
    nan = shared == E8M0_NAN - E8M0_BIAS
    v = np.ldexp(np.where(nan[..., None], 0.0, b), -np.where(nan, 0, shared)[..., None])
    p = _round_elements(v, spec.element)
    p[np.broadcast_to(nan[..., None], p.shape)] = np.nan
    elements = p.reshape(*a.shape[:-1], b.shape[-2] * spec.block)[..., :n]
    return elements, (shared + E8M0_BIAS).astype(np.uint8)


def _quantize_along(
    x: ArrayLike, spec: MXSpec, axis: object
) -> tuple[NDArray[Any], int, NDArray[np.float32], NDArray[np.uint8]]:
    """``x`` as an exact array, the checked axis, and the elements and scale codes of its blocks along that
    axis, moved last."""
    arr = as_exact_array(x)
    ax = _check_axis(axis, arr.ndim)
    with np.errstate(invalid="ignore"):
        a = np.moveaxis(arr.astype(np.float64), ax, -1)
    elements, codes = _quantize_last(a, spec)
    return arr, ax, elements, codes


def quantize(
    x: ArrayLike, element: str = "e4m3", *, block: int = 32, axis: int = -1
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    r"""Quantise ``x`` to an MX format along one axis: element values and E8M0 scale codes.

    Parameters
    ----------
    x : array_like
        Real numbers of any shape with at least one dimension: float16/32/64, ml_dtypes types, integers
        (``|x| <= 2**53``) or booleans. Each value is used exactly.
    element : str, default "e4m3"
        The element type: ``"e4m3"``, ``"e5m2"``, ``"e3m2"``, ``"e2m3"``, ``"e2m1"`` or ``"int8"``.
    block : int, default 32
        Elements per shared scale, taken consecutively along ``axis``; the last block is shorter when the
        axis length is not a multiple of ``block``.
    axis : int, default -1
        The axis that is cut into blocks.

    Returns
    -------
    elements : numpy.ndarray of float32
        Same shape as ``x``: the element values $P_i$, each a value of the element type (signed zeros
        kept, except int8 which has none); NaN in a block whose scale is NaN.
    scales : numpy.ndarray of uint8
        The E8M0 codes of the scales: ``x``'s shape with ``axis`` of length ``ceil(n / block)``.
        ``decode_scales(scales)`` gives the powers of two.

    Raises
    ------
    FormatError
        An unknown ``element``.
    InputTypeError, InputValueError
        ``block`` or ``axis`` not an integer or out of range (``block >= 1``, ``-ndim <= axis < ndim``),
        a 0-d ``x``, or an ``x`` that is not real numbers (see :func:`~lampref.round_to`).

    Notes
    -----
    For each block $V$, with $e_{\max}$ the element type's largest exponent (:attr:`MXSpec.emax`):

    .. math::

        s = \mathrm{clamp}\left(\lfloor \log_2 \max_i |V_i| \rfloor - e_{\max}, -127\right), \quad
        c = s + 127, \quad
        P_i = \mathrm{RNE}_{\mathrm{sat}}\left(V_i \, 2^{-s}\right).

    A block of zeros has $s = -127$; a block holding NaN or an infinity, or with $s > 127$, has the NaN
    scale $c = 255$. $V_i\,2^{-s}$ is computed exactly and rounded once.

    References
    ----------
    OCP Microscaling Formats (MX) Specification v1.0, 2023, sections 5 and 6.3.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref import mx
    >>> x = np.array([0.1, -0.7, 5.0, 1e-3, 7e-3])
    >>> elements, scales = mx.quantize(x, element="e2m1", block=3)  # blocks of 3 and 2
    >>> elements  # 5 is a tie between 4 and 6: to even; 7e-3 * 2**10 saturates to 6
    array([ 0. , -0.5,  4. ,  1. ,  6. ], dtype=float32)
    >>> scales  # 2**(2 - 2) and 2**(-8 - 2)
    array([127, 117], dtype=uint8)
    >>> mx.quantize(x, "int8", block=3)[0] * 64  # MXINT8: the two's complement integers
    array([  2., -11.,  80.,  16., 115.], dtype=float32)
    """
    spec = MXSpec(element, block)
    _, ax, elements, codes = _quantize_along(x, spec, axis)
    return np.moveaxis(elements, -1, ax), np.moveaxis(codes, -1, ax)


def dequantize(
    elements: ArrayLike, scales: ArrayLike, *, axis: int = -1, block: int = 32
) -> NDArray[np.float64]:
    r"""The values an MX tensor stands for: each element times its block's scale, $X \cdot P_i$.

    Parameters
    ----------
    elements : array_like
        Element values (as :func:`quantize` returns them), with at least one dimension.
    scales : array_like of integers
        E8M0 codes (uint8, ``0..255``): ``elements``' shape with ``axis`` of length
        ``ceil(n / block)``.
    axis : int, default -1
        The blocked axis.
    block : int, default 32
        The block size used to quantise (it cannot be told from the shapes alone when the last block is
        short).

    Returns
    -------
    numpy.ndarray of float64
        Same shape as ``elements``; exact (every $X \cdot P_i$ is a float64 value). NaN throughout a
        block whose scale is NaN.

    Raises
    ------
    ShapeError
        ``scales`` whose shape does not fit ``elements``, ``axis`` and ``block``.
    InputTypeError, InputValueError
        Scales that are not integer codes in ``0..255``; ``axis`` or ``block`` out of range.

    Examples
    --------
    >>> from lampref import mx
    >>> mx.dequantize([[1.5, -6.0, 0.5]], [[120, 255]], axis=-1, block=2)
    array([[ 0.01171875, -0.046875  ,         nan]])
    """
    p = as_exact_array(elements, "elements")
    c = _as_codes(scales, "scales")
    block = check_int(block, "block", minimum=1)
    ax = _check_axis(axis, p.ndim)
    n = p.shape[ax]
    expected = (*p.shape[:ax], -(-n // block), *p.shape[ax + 1 :])
    if c.shape != expected:
        raise ShapeError(
            f"scales has shape {c.shape}; elements of shape {p.shape} in blocks of {block} along "
            f"axis {axis} need scales of shape {expected} (pass the block= used to quantise)"
        )
    x = np.repeat(np.moveaxis(decode_scales(c), ax, -1).astype(np.float64), block, axis=-1)[..., :n]
    with np.errstate(invalid="ignore"):
        return np.moveaxis(x * np.moveaxis(p, ax, -1).astype(np.float64), -1, ax)


def quantize_dequantize(
    x: ArrayLike, element: str = "e4m3", *, block: int = 32, axis: int = -1
) -> NDArray[np.floating[Any]]:
    """The values ``x`` takes once stored in an MX format (:func:`quantize` then :func:`dequantize`).

    Returns
    -------
    numpy.ndarray
        Same shape as ``x``, in ``x``'s dtype when that is float32 or float64 (exact: every stored value
        of a float32 input is a float32 value), float32 for narrower floats (float16 cannot hold every
        stored value, which reach $2^{-143}$) and float64 for integers and booleans.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref import mx
    >>> x = np.array([0.1, -0.7, 5.0, 1e-3, 7e-3], dtype=np.float32)
    >>> mx.quantize_dequantize(x, "e2m1", block=3) * 1024
    array([   0., -512., 4096.,    1.,    6.], dtype=float32)
    """
    spec = MXSpec(element, block)
    arr, ax, elements, codes = _quantize_along(x, spec, axis)
    n = elements.shape[-1]
    scale = np.repeat(decode_scales(codes).astype(np.float64), spec.block, axis=-1)[..., :n]
    out_dtype = np.float64 if arr.dtype == np.float64 else np.float32
    with np.errstate(invalid="ignore"):
        values: NDArray[np.floating[Any]] = (scale * elements.astype(np.float64)).astype(out_dtype)
    return np.moveaxis(values, -1, ax)
