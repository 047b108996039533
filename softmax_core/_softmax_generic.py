"""Pure array-API implementations, for every namespace that is not NumPy.

They run in the caller's namespace and on its device (torch, JAX, CuPy,
array_api_strict, dask.array, ...) and follow the same semantics as the
compiled NumPy kernels: subtract the max before ``exp``, form log_softmax as
``(x - max) - log(sum)``, exclude ``where``-masked entries from the
reduction.  ``logsumexp`` with ``b=`` also runs here for NumPy input.
"""

import functools
import math

import array_api_compat
import numpy as np

from ._validation import normalize_axes

__all__ = ["as_float", "softmax", "logsumexp", "softmax_backward", "log_softmax_backward"]


def _quiet(func):
    """Silence NumPy's overflow/invalid warnings: inf and NaN are handled on purpose
    (this matters for NumPy-backed namespaces such as array_api_strict)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return func(*args, **kwargs)

    return wrapper


def as_float(xp, x, dtype=None):
    """Return ``(x_compute, result_dtype)`` following the NumPy path's rules."""
    if dtype is not None:
        if not xp.isdtype(dtype, "real floating"):
            raise TypeError(f"dtype must be a real floating dtype, got {dtype}")
        x = xp.astype(x, dtype)
    if xp.isdtype(x.dtype, "complex floating"):
        raise TypeError(
            f"complex input ({x.dtype}) is not supported: softmax-family functions are "
            "defined for real numbers"
        )
    if xp.isdtype(x.dtype, ("integral", "bool")):
        x = xp.astype(x, xp.float64)
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"expected a real numeric array, got dtype {x.dtype}")
    result = x.dtype
    float16 = getattr(xp, "float16", None)
    if float16 is not None and x.dtype == float16:
        x = xp.astype(x, xp.float32)
    return x, result


def _const(xp, value, like):
    """A 0-d array of ``like``'s dtype on ``like``'s device."""
    return xp.asarray(value, dtype=like.dtype, device=array_api_compat.device(like))


def _as_array(xp, a, like):
    """``a`` (an array or an array-like such as a list) on ``like``'s device."""
    if array_api_compat.is_array_api_obj(a):
        return a
    return xp.asarray(a, device=array_api_compat.device(like))


def _mask(xp, x, where):
    if where is None:
        return None
    where = _as_array(xp, where, x)
    if not xp.isdtype(where.dtype, "bool"):
        raise TypeError(f"where must be a boolean array, got dtype {where.dtype}")
    try:
        return xp.broadcast_to(where, x.shape)
    except (ValueError, RuntimeError):
        raise ValueError(
            f"where of shape {tuple(where.shape)} cannot be broadcast to the input's "
            f"shape {tuple(x.shape)}"
        ) from None


def _reduced_size(shape, axes):
    return math.prod(shape[i] for i in axes)


def _with_unit_axis(xp, arrays, shape):
    """Append a length-1 axis so that "reduce over no axes" becomes a real axis.

    (Reducing with ``axis=()`` means different things in different
    namespaces, e.g. torch reduces over *all* axes.)
    """
    return [None if a is None else xp.reshape(a, (*shape, 1)) for a in arrays]


@_quiet
def softmax(xp, x, axis, dtype, where, use_log):
    """softmax or log_softmax in namespace ``xp``."""
    x, result = as_float(xp, x, dtype)
    shape = tuple(x.shape)
    axes = normalize_axes(axis, shape)
    mask = _mask(xp, x, where)
    if _reduced_size(shape, axes) == 0:
        return xp.astype(x, result)  # empty input, empty output
    if not axes:
        x, mask = _with_unit_axis(xp, [x, mask], shape)
        axes = (len(shape),)
    if mask is not None:
        x = xp.where(mask, x, _const(xp, -math.inf, x))
    z = x - xp.max(x, axis=axes, keepdims=True)
    if use_log:
        res = z - xp.log(xp.sum(xp.exp(z), axis=axes, keepdims=True))
    else:
        e = xp.exp(z)
        res = e / xp.sum(e, axis=axes, keepdims=True)
    if mask is not None:  # masked-out entries are 0 / -inf, even in NaN rows
        res = xp.where(mask, res, _const(xp, -math.inf if use_log else 0.0, res))
    return xp.astype(xp.reshape(res, shape), result)


@_quiet
def logsumexp(xp, a, axis, b, keepdims, return_sign, where):
    """logsumexp in namespace ``xp`` with scipy's ``b``/``return_sign`` rules.

    Entries whose weight ``b`` is zero (or that ``where`` masks out) add
    nothing, even when they are infinite or NaN.  The max is shifted out only
    when it is finite; a negative sum gives NaN unless ``return_sign``.  An
    empty reduction gives ``-inf`` (with sign 0).
    """
    a, result = as_float(xp, a)
    if b is not None:
        b, b_result = as_float(xp, _as_array(xp, b, a))
        common = xp.result_type(a.dtype, b.dtype)
        a, b = xp.astype(a, common), xp.astype(b, common)
        result = xp.result_type(result, b_result)
        try:
            a, b = xp.broadcast_arrays(a, b)
        except (ValueError, RuntimeError):
            raise ValueError(
                f"b of shape {tuple(b.shape)} cannot be broadcast to a's shape {tuple(a.shape)}"
            ) from None
    shape = tuple(a.shape)
    axes = normalize_axes(axis, shape)
    mask = _mask(xp, a, where)
    out_shape = tuple(d for i, d in enumerate(shape) if i not in axes)
    kept_shape = tuple(1 if i in axes else d for i, d in enumerate(shape))
    if not axes:
        a, b, mask = _with_unit_axis(xp, [a, b, mask], shape)
        axes = (len(shape),)
    drop = None if b is None else (b == 0)
    if mask is not None:
        masked_out = xp.logical_not(mask)
        drop = masked_out if drop is None else xp.logical_or(drop, masked_out)
    if drop is not None:
        a = xp.where(drop, _const(xp, -math.inf, a), a)
        if b is not None:
            b = xp.where(drop, xp.zeros_like(b), b)
    if _reduced_size(tuple(a.shape), axes) == 0:
        s = xp.zeros(kept_shape, dtype=a.dtype, device=array_api_compat.device(a))
        shift = s
    else:
        m = xp.max(a, axis=axes, keepdims=True)
        shift = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
        e = xp.exp(a - shift)
        s = xp.sum(e if b is None else b * e, axis=axes, keepdims=True)
    sign = xp.sign(s)
    out = xp.log(xp.abs(s)) + shift
    if not return_sign:
        out = xp.where(sign < 0, _const(xp, math.nan, out), out)
    final_shape = kept_shape if keepdims else out_shape
    out = xp.astype(xp.reshape(out, final_shape), result)
    if not return_sign:
        return out
    return out, xp.astype(xp.reshape(sign, final_shape), result)


def _check_pair(xp, grad_output, output):
    if tuple(grad_output.shape) != tuple(output.shape):
        raise ValueError(
            f"grad_output has shape {tuple(grad_output.shape)} but output has shape "
            f"{tuple(output.shape)}; they must match"
        )
    g, rg = as_float(xp, grad_output)
    y, ry = as_float(xp, output)
    common = xp.result_type(g.dtype, y.dtype)
    return xp.astype(g, common), xp.astype(y, common), xp.result_type(rg, ry)


@_quiet
def softmax_backward(xp, grad_output, output, axis):
    """``y * (g - sum(g * y))``: the VJP of softmax given its output ``y``."""
    g, y, result = _check_pair(xp, grad_output, output)
    axes = normalize_axes(axis, y.shape)
    if y.ndim == 0:
        return xp.astype(xp.zeros_like(y), result)
    res = y * (g - xp.sum(g * y, axis=axes, keepdims=True))
    return xp.astype(res, result)


@_quiet
def log_softmax_backward(xp, grad_output, output, axis):
    """``g - exp(y) * sum(g)``: the VJP of log_softmax given its output ``y``."""
    g, y, result = _check_pair(xp, grad_output, output)
    axes = normalize_axes(axis, y.shape)
    if y.ndim == 0:
        return xp.astype(xp.zeros_like(y), result)
    res = g - xp.exp(y) * xp.sum(g, axis=axes, keepdims=True)
    return xp.astype(res, result)
