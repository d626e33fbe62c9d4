r"""Composition error analysis of $f(g(x))$: condition numbers, amplification, bounds and selection.

The first-order analysis behind LAMP (look-ahead mixed precision, arXiv:2601.21623), in plain NumPy and
float64. It depends only on NumPy and :mod:`lampref.formats`.

* Rounding error bounds: :func:`unit_roundoff`, :func:`gamma`, :func:`inner_product_error_bound`,
  :func:`dot_condition_number`.
* A general composition: :func:`amplification_matrix` ($K_{ij} = |\partial_j f_i|\,\epsilon_j / |f_i|$),
  :func:`relative_error_bound`, and the selection problem solved by :func:`select_greedy` and
  :func:`select_exact`.
* softmax of attention scores: :func:`softmax_amplification`, :func:`softmax_kappa` and the LAMP rule
  :func:`lamp_select` (prefix, exact optimum, and the authors' code bit for bit).
* Element-wise functions and LayerNorm: :func:`condition_number`, :func:`layernorm_jacobian`,
  :func:`layernorm_amplification`, and their look-ahead selections :func:`elementwise_select` and
  :func:`layernorm_select`.
"""

from __future__ import annotations

from .bounds import dot_condition_number, gamma, inner_product_error_bound, unit_roundoff
from .composition import (
    RelativeErrorBound,
    amplification_matrix,
    relative_error_bound,
    select_exact,
    select_greedy,
)
from .elementwise import CONDITION_FUNCTIONS, condition_number, elementwise_select
from .layernorm import layernorm_amplification, layernorm_jacobian, layernorm_select
from .softmax import RULES, lamp_select, softmax_amplification, softmax_kappa

__all__ = [
    "CONDITION_FUNCTIONS",
    "RULES",
    "RelativeErrorBound",
    "amplification_matrix",
    "condition_number",
    "dot_condition_number",
    "elementwise_select",
    "gamma",
    "inner_product_error_bound",
    "lamp_select",
    "layernorm_amplification",
    "layernorm_jacobian",
    "layernorm_select",
    "relative_error_bound",
    "select_exact",
    "select_greedy",
    "softmax_amplification",
    "softmax_kappa",
    "unit_roundoff",
]
