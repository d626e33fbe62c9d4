"""lampref: exact floating-point emulation in NumPy, and a reference implementation of LAMP.

The public API is re-exported here; see the documentation for a tour.
"""

from __future__ import annotations

from . import accumulate, errors, formats, rounding
from . import mx as mx  # lampref.mx: MX block formats (names kept in their module)
from ._backend import backend, set_backend
from .accumulate import *  # noqa: F403
from .errors import *  # noqa: F403
from .formats import *  # noqa: F403
from .rounding import *  # noqa: F403

__version__ = "0.1.0"

# The public API: every public name of the four core modules (each module's ``__all__`` is its one list).
__all__ = ["__version__", "backend", "set_backend"]
__all__ += accumulate.__all__
__all__ += errors.__all__
__all__ += formats.__all__
__all__ += rounding.__all__
