"""CuPy backend of softmax, log_softmax and logsumexp: the CUDA kernels of
``_cupy`` where they cover a call, else None (the caller then takes the
array-API path).  Nothing here runs without CuPy."""

from . import _softmax_generic as generic
from ._validation import normalize_axes

__all__ = ["softmax", "logsumexp"]


def _kernels():
    try:
        from . import _cupy
    except ImportError:  # pragma: no cover - CuPy path not built
        return None
    return _cupy


def softmax(xp, x, axis, dtype, where, use_log):
    """softmax or log_softmax by the CUDA kernels, or None (``where=`` is not covered)."""
    cupy_kernels = _kernels()
    if where is not None or cupy_kernels is None:
        return None
    xc, result = generic.as_float(xp, x, dtype)
    res = cupy_kernels.softmax(xc, normalize_axes(axis, xc.shape), log=use_log)
    if res is None:
        return None
    return xp.astype(res, result) if res.dtype != result else res


def logsumexp(xp, x, axis, keepdims):
    """logsumexp by the CUDA kernels (no ``b``, ``where`` or ``return_sign``), or None."""
    cupy_kernels = _kernels()
    if cupy_kernels is None:
        return None
    xc, result = generic.as_float(xp, x)
    axes = normalize_axes(axis, xc.shape)
    res = cupy_kernels.logsumexp(xc, axes)
    if res is None:
        return None
    if keepdims:
        res = xp.reshape(res, tuple(1 if i in axes else d for i, d in enumerate(xc.shape)))
    return xp.astype(res, result)
