"""Pick the backend for a call: the compiled NumPy kernels, CuPy, or array-API.

``array_api_compat.array_namespace`` is the single source of namespaces.
A plain ``numpy.ndarray`` is recognised first by type, which keeps the
dispatch cost of small NumPy calls to a few hundred nanoseconds; anything that
is not an array of some namespace (lists, scalars) is converted like
``numpy.asarray``.
"""

import array_api_compat
import numpy as np

__all__ = ["NUMPY", "CUPY", "GENERIC", "get_namespace"]

NUMPY = "numpy"
CUPY = "cupy"
GENERIC = "array_api"


def _is_array(a):
    return isinstance(a, np.ndarray) or array_api_compat.is_array_api_obj(a)


def get_namespace(*arrays):
    """Return ``(xp, backend)`` for the given arrays (``None`` entries skipped).

    ``backend`` is ``NUMPY`` for NumPy arrays and array-likes (lists, scalars),
    ``CUPY`` for CuPy arrays and ``GENERIC`` for every other array-API
    namespace.  Mixing namespaces raises ``TypeError``.
    """
    present = [a for a in arrays if a is not None]
    if all(type(a) is np.ndarray or not _is_array(a) for a in present):
        return np, NUMPY
    arrays_only = [a for a in present if _is_array(a)]
    xp = array_api_compat.array_namespace(*arrays_only)
    if array_api_compat.is_numpy_namespace(xp):
        return np, NUMPY
    if array_api_compat.is_cupy_namespace(xp):
        return xp, CUPY
    return xp, GENERIC
