"""NumPy path: reshape any call into the kernels' (outer, n, inner) form.

The reduced axes are merged into the middle axis ``n``.  When they are
adjacent in a C-contiguous array this is a free reshape (``axis=-1`` gives
``inner == 1``, the row kernels; ``axis=-3`` of (N, C, H, W) gives the tiled
kernel).  Otherwise the reduced axes are transposed to the end in one copy,
computed as rows, and transposed back.  ``where=`` is applied by replacing
masked-out entries with ``-inf`` in that same copy; afterwards every masked-out
entry is set to 0 (softmax) or ``-inf`` (log_softmax), which also covers fully
masked rows and rows that are NaN elsewhere.
"""

import math

import numpy as np

from ._native import kernels
from ._threads import n_threads_for
from ._validation import check_where_numpy, normalize_axes, numpy_compute_dtypes

__all__ = ["softmax", "logsumexp", "softmax_backward"]


def _layout(shape, axes):
    """Return ``(perm, (outer, n, inner))`` for computing over ``axes``.

    ``perm`` is None when the reduced axes are already adjacent.
    """
    if not axes:
        return None, (math.prod(shape), 1, 1)
    if axes[-1] - axes[0] + 1 == len(axes):
        lo, hi = axes[0], axes[-1] + 1
        return None, (math.prod(shape[:lo]), math.prod(shape[lo:hi]), math.prod(shape[hi:]))
    keep = [i for i in range(len(shape)) if i not in axes]
    perm = tuple(keep) + axes
    return perm, (math.prod(shape[i] for i in keep), math.prod(shape[i] for i in axes), 1)


def _prepare(x, axis, dtype, where):
    """Validate and return ``(shape, xc, result_dtype, axes, perm, shape3, mask)``.

    ``xc`` is C-contiguous in the compute dtype (and in the ``perm`` order);
    it is ``x`` itself only when no conversion was needed and no mask applies.
    """
    x, compute, result = numpy_compute_dtypes(x, dtype)
    axes = normalize_axes(axis, x.shape)
    perm, shape3 = _layout(x.shape, axes)
    mask = None
    if where is not None:
        mask = check_where_numpy(where, x.shape)
    src = x if perm is None else x.transpose(perm)
    if mask is not None:  # one C-ordered copy, -inf where masked out
        m = mask if perm is None else mask.transpose(perm)
        xc = np.full(src.shape, -np.inf, dtype=compute)
        np.copyto(xc, src, casting="unsafe", where=m)
    else:
        xc = np.ascontiguousarray(src, dtype=compute)
    return x.shape, xc, result, axes, perm, shape3, mask


def _check_out(out, shape, dtype):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, expected {shape}")
    if out.dtype != dtype:
        raise ValueError(f"out has dtype {out.dtype}, expected {dtype}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")


_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def softmax(x, axis, dtype, where, out, use_log):
    """softmax (``use_log=False``) or log_softmax of a NumPy array-like."""
    if (type(axis) is int and axis == -1 and where is None and dtype is None
            and type(x) is np.ndarray and x.dtype in _FAST_DTYPES and x.flags.c_contiguous
            and x.size and x.ndim
            and (out is None or (type(out) is np.ndarray and out.shape == x.shape
                                 and out.dtype == x.dtype and out.flags.c_contiguous
                                 and out.flags.writeable
                                 and (out is x or not np.may_share_memory(out, x))))):
        # the common call, validated by construction: rows along the last axis
        n = x.shape[-1]
        res = np.empty_like(x) if out is None else out
        kernels.softmax_3d(x.reshape(x.size // n, n, 1), res.reshape(x.size // n, n, 1),
                           use_log, n_threads_for(x.size))
        return res
    with np.errstate(all="ignore"):  # casts to a narrower dtype are silent, as in torch
        return _softmax_general(x, axis, dtype, where, out, use_log)


def _softmax_general(x, axis, dtype, where, out, use_log):
    shape, xc, result, axes, perm, shape3, mask = _prepare(x, axis, dtype, where)
    if out is not None:
        _check_out(out, shape, result)
    # the kernels may write into `out` when it is `x` itself or does not overlap it
    direct = (out is not None and perm is None and out.dtype == xc.dtype
              and out.flags.c_contiguous
              and (not np.may_share_memory(out, xc) or _same_buffer(out, xc)))
    res = out if direct else np.empty(xc.shape if perm else shape, dtype=xc.dtype)
    if xc.size:
        kernels.softmax_3d(xc.reshape(shape3), res.reshape(shape3), use_log,
                           n_threads_for(xc.size))
    if perm is not None:
        res = res.transpose(np.argsort(perm))
    if mask is not None:  # masked-out entries are 0 / -inf even in NaN rows
        res[~mask] = -np.inf if use_log else 0
    if direct:
        return out
    if out is not None:
        np.copyto(out, res, casting="unsafe")
        return out
    return res.astype(result, order="C", copy=False)


def _same_buffer(a, b):
    """Whether two C-contiguous arrays of one shape start at the same address."""
    return a.__array_interface__["data"][0] == b.__array_interface__["data"][0]


def logsumexp(x, axis, keepdims, return_sign, where):
    """logsumexp of a NumPy array-like (``b=`` goes through ``_softmax_generic``)."""
    with np.errstate(all="ignore"):
        return _logsumexp(x, axis, keepdims, return_sign, where)


def _logsumexp(x, axis, keepdims, return_sign, where):
    shape, xc, result, axes, perm, (outer, n, inner), _ = _prepare(x, axis, None, where)
    if n == 0:
        res = np.full((outer, inner), -np.inf, dtype=xc.dtype)
    else:
        res = np.empty((outer, inner), dtype=xc.dtype)
        if res.size:
            kernels.logsumexp_3d(xc.reshape(outer, n, inner), res, n_threads_for(xc.size))
    kept = tuple(1 if i in axes else d for i, d in enumerate(shape))
    res = res.reshape(kept if keepdims else tuple(d for i, d in enumerate(shape)
                                                  if i not in axes))
    res = res.astype(result, copy=False)
    if not return_sign:
        return res[()]
    sign = np.where(res > -np.inf, 1, 0).astype(result)
    sign[np.isnan(res)] = np.nan
    return res[()], sign[()]


def softmax_backward(grad_output, output, axis, use_log):
    """VJP of softmax (``use_log=False``) or log_softmax for NumPy array-likes."""
    with np.errstate(all="ignore"):
        return _softmax_backward(grad_output, output, axis, use_log)


def _softmax_backward(grad_output, output, axis, use_log):
    g, g_compute, g_result = numpy_compute_dtypes(grad_output, None)
    y, y_compute, y_result = numpy_compute_dtypes(output, None)
    if g.shape != y.shape:
        raise ValueError(f"grad_output has shape {g.shape} but output has shape {y.shape}; "
                         "they must match")
    result = np.result_type(g_result, y_result)
    compute = np.result_type(g_compute, y_compute)
    axes = normalize_axes(axis, y.shape)
    perm, shape3 = _layout(y.shape, axes)
    if perm is not None:
        g, y = g.transpose(perm), y.transpose(perm)
    gc = np.ascontiguousarray(g, dtype=compute)
    yc = np.ascontiguousarray(y, dtype=compute)
    res = np.empty(gc.shape if perm else y.shape, dtype=compute)
    if res.size:
        kernels.softmax_backward_3d(gc.reshape(shape3), yc.reshape(shape3), res.reshape(shape3),
                                    use_log, n_threads_for(res.size))
    if perm is not None:
        res = res.transpose(np.argsort(perm))
    return res.astype(result, order="C", copy=False)
