"""Collection of the package's doctests: the compiled kernels' module needs numba (the ``fast`` extra)."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("numba") else ["lampref/_numba_kernels.py"]
