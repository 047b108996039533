"""Pure array-API implementations, for every namespace that is not NumPy.

They run in the caller's namespace and on its device (torch, JAX, CuPy,
array_api_strict, dask.array, ...) and follow the same semantics as the
compiled NumPy kernels: subtract the max before ``exp``, form log_softmax as
``(x - max) - log(sum)``, exclude ``where``-masked entries from the
reduction.  ``logsumexp`` with ``b=`` also runs here for NumPy input.

Nothing here reads a value or reshapes, so dask arrays stay lazy, chunked
reduced axes included, and so do dask arrays of unknown lengths (``X[mask]``):
an added unit axis is ``a[..., None]``, a removed one ``squeeze``, and where
a length is unknown a mask or weight is broadcast by the arithmetic itself
(``xp.broadcast_to`` needs known lengths).  The maximum comes from
``_dask_graph.reduce_max``, which dask blocks of zero rows do not break.
"""

import functools
import math

import array_api_compat
import numpy as np

from ._dask_graph import reduce_max
from ._validation import broadcast_shape, is_known, normalize_axes, shape_of

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


def _broadcast_like(xp, a, like):
    """``a`` broadcast to ``like``'s shape, which has an unknown length (the
    shapes are known to broadcast): by an operation with zeros of that shape."""
    if xp.isdtype(a.dtype, "bool"):
        return xp.logical_or(a, xp.zeros_like(like, dtype=xp.bool))
    return a + xp.zeros_like(like, dtype=a.dtype)


def _mask(xp, x, where):
    if where is None:
        return None
    where = _as_array(xp, where, x)
    if not xp.isdtype(where.dtype, "bool"):
        raise TypeError(f"where must be a boolean array, got dtype {where.dtype}")
    shape, where_shape = shape_of(x), shape_of(where)
    error = ValueError(f"where of shape {where_shape} cannot be broadcast to the input's "
                       f"shape {shape}")
    if not (is_known(shape) and is_known(where_shape)):
        if broadcast_shape(where_shape, shape) != shape:
            raise error
        return where if where_shape == shape else _broadcast_like(xp, where, x)
    try:
        return xp.broadcast_to(where, x.shape)
    except (ValueError, RuntimeError):
        raise error from None


def _reduced_size(shape, axes):
    """The number of entries reduced over, None when a length is unknown."""
    sizes = [shape[i] for i in axes]
    return math.prod(sizes) if is_known(sizes) else None


def _with_unit_axis(arrays):
    """Append a length-1 axis so that "reduce over no axes" becomes a real axis.

    (Reducing with ``axis=()`` means different things in different
    namespaces, e.g. torch reduces over *all* axes.)
    """
    return [None if a is None else a[..., None] for a in arrays]


@_quiet
def softmax(xp, x, axis, dtype, where, use_log):
    """softmax or log_softmax in namespace ``xp``."""
    x, result = as_float(xp, x, dtype)
    shape = shape_of(x)
    axes = normalize_axes(axis, shape)
    mask = _mask(xp, x, where)
    if _reduced_size(shape, axes) == 0:
        return xp.astype(x, result)  # empty input, empty output
    unit = not axes
    if unit:
        x, mask = _with_unit_axis([x, mask])
        axes = (len(shape),)
    if mask is not None:
        x = xp.where(mask, x, _const(xp, -math.inf, x))
    z = x - reduce_max(xp, x, axis=axes, keepdims=True)
    if use_log:
        res = z - xp.log(xp.sum(xp.exp(z), axis=axes, keepdims=True))
    else:
        e = xp.exp(z)
        res = e / xp.sum(e, axis=axes, keepdims=True)
    if mask is not None:  # masked-out entries are 0 / -inf, even in NaN rows
        res = xp.where(mask, res, _const(xp, -math.inf if use_log else 0.0, res))
    if unit:
        res = res[..., 0]
    return xp.astype(res, result)


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
        a, b = _broadcast_pair(xp, a, b)
    shape = shape_of(a)
    axes = normalize_axes(axis, shape)
    mask = _mask(xp, a, where)
    unit = not axes
    if unit:
        a, b, mask = _with_unit_axis([a, b, mask])
        axes = (len(shape),)
    drop = None if b is None else (b == 0)
    if mask is not None:
        masked_out = xp.logical_not(mask)
        drop = masked_out if drop is None else xp.logical_or(drop, masked_out)
    if drop is not None:
        a = xp.where(drop, _const(xp, -math.inf, a), a)
        if b is not None:
            b = xp.where(drop, xp.zeros_like(b), b)
    if _reduced_size(shape_of(a), axes) == 0:
        s = xp.zeros_like(xp.sum(a, axis=axes, keepdims=True))
        shift = s
    else:
        m = reduce_max(xp, a, axis=axes, keepdims=True)
        shift = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
        e = xp.exp(a - shift)
        s = xp.sum(e if b is None else b * e, axis=axes, keepdims=True)
    sign = xp.sign(s)
    out = xp.log(xp.abs(s)) + shift
    if not return_sign:
        out = xp.where(sign < 0, _const(xp, math.nan, out), out)
    removed = axes if unit or not keepdims else ()
    if removed:
        out, sign = xp.squeeze(out, axis=removed), xp.squeeze(sign, axis=removed)
    out = xp.astype(out, result)
    if not return_sign:
        return out
    return out, xp.astype(sign, result)


def _broadcast_pair(xp, a, b):
    """``xp.broadcast_arrays(a, b)`` (logsumexp's ``a`` and ``b``), also where a
    length is unknown."""
    a_shape, b_shape = shape_of(a), shape_of(b)
    error = ValueError(f"b of shape {b_shape} cannot be broadcast to a's shape {a_shape}")
    if not (is_known(a_shape) and is_known(b_shape)):
        shape = broadcast_shape(a_shape, b_shape)
        if shape is None:
            raise error
        return (a if a_shape == shape else _broadcast_like(xp, a, b),
                b if b_shape == shape else _broadcast_like(xp, b, a))
    try:
        return xp.broadcast_arrays(a, b)
    except (ValueError, RuntimeError):
        raise error from None


def _check_pair(xp, grad_output, output):
    if shape_of(grad_output) != shape_of(output):
        raise ValueError(
            f"grad_output has shape {shape_of(grad_output)} but output has shape "
            f"{shape_of(output)}; they must match"
        )
    g, rg = as_float(xp, grad_output)
    y, ry = as_float(xp, output)
    common = xp.result_type(g.dtype, y.dtype)
    return xp.astype(g, common), xp.astype(y, common), xp.result_type(rg, ry)


@_quiet
def softmax_backward(xp, grad_output, output, axis):
    """``y * (g - sum(g * y))``: the VJP of softmax given its output ``y``."""
    g, y, result = _check_pair(xp, grad_output, output)
    axes = normalize_axes(axis, shape_of(y))
    if y.ndim == 0:
        return xp.astype(xp.zeros_like(y), result)
    res = y * (g - xp.sum(g * y, axis=axes, keepdims=True))
    return xp.astype(res, result)


@_quiet
def log_softmax_backward(xp, grad_output, output, axis):
    """``g - exp(y) * sum(g)``: the VJP of log_softmax given its output ``y``."""
    g, y, result = _check_pair(xp, grad_output, output)
    axes = normalize_axes(axis, shape_of(y))
    if y.ndim == 0:
        return xp.astype(xp.zeros_like(y), result)
    res = g - xp.exp(y) * xp.sum(g, axis=axes, keepdims=True)
    return xp.astype(res, result)
