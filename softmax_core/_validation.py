"""Argument checks shared by every backend: axes, floating dtypes and shapes.

Shapes may have dimensions of unknown length (dask's ``NaN`` after a boolean
selection, ``None`` in the array-API standard).  ``shape_of`` writes them as
``None``, so that ``==`` of two such shapes treats two unknown lengths as
equal (they can only be compared when computed, where the library itself
checks them) and an unknown length as different from every known one;
``broadcast_shape`` follows the same rule, an unknown length broadcasting
with 1.
"""

import math
import operator

import numpy as np

__all__ = ["normalize_axes", "numpy_compute_dtypes", "check_where_numpy", "shape_of",
           "is_known", "broadcast_shape"]


def shape_of(a):
    """``a.shape`` as a tuple of Python ints, with None for an unknown length."""
    if type(a) is np.ndarray:  # already a tuple of Python ints
        return a.shape
    return tuple(None if d is None or math.isnan(d) else int(d) for d in a.shape)


def is_known(shape):
    """Whether every length of ``shape`` (as ``shape_of`` gives it) is known."""
    return None not in shape


def broadcast_shape(a, b):
    """The broadcast of shapes ``a`` and ``b`` (``shape_of``'s), or None when they
    do not broadcast; an unknown length broadcasts with 1 and with an unknown one."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if da == 1 or da == db:
            out.append(db)
        elif db == 1:
            out.append(da)
        else:
            return None
    return tuple(reversed(out))


def normalize_axes(axis, shape):
    """Return ``axis`` as a sorted tuple of non-negative ints for ``shape``.

    ``None`` means every axis; an int or a tuple of ints may be negative.  A
    0-d array is treated like a 1-element vector (as ``torch.softmax`` does),
    so ``axis`` may be 0, -1, ``()`` or ``None`` there.  Raises
    ``numpy.exceptions.AxisError`` (a ``ValueError``) naming the axis and the
    shape, or ``TypeError`` for an axis that is not an integer.
    """
    ndim = max(len(shape), 1)
    if axis is None:
        return tuple(range(len(shape)))
    axes = axis if isinstance(axis, tuple) else (axis,)
    normalized = []
    for a in axes:
        if isinstance(a, bool):
            raise TypeError(f"axis must be an int, a tuple of ints or None, got {axis!r}")
        try:
            a = operator.index(a)
        except TypeError:
            raise TypeError(
                f"axis must be an int, a tuple of ints or None, got {axis!r}"
            ) from None
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(
                f"axis {a} is out of bounds for an array of shape {tuple(shape)} "
                f"(dimension {len(shape)})"
            )
        normalized.append(a % ndim)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"repeated axis in axis={axis!r} for shape {tuple(shape)}")
    if len(shape) == 0:
        return ()
    return tuple(sorted(normalized))


def _check_real_float(dtype, what):
    if dtype.kind != "f":
        raise TypeError(f"{what} must be a real floating dtype, got {dtype}")


def _reject_dtype(dtype):
    if dtype.kind == "c":
        raise TypeError(
            f"complex input ({dtype}) is not supported: softmax-family functions are "
            "defined for real numbers"
        )
    raise TypeError(f"expected a real numeric array, got dtype {dtype}")


def numpy_compute_dtypes(x, dtype):
    """Convert ``x`` like ``np.asarray`` and return ``(x, compute, result)``.

    ``dtype=`` casts first (like torch); float32/float64 stay themselves;
    float16 computes in float32 and returns float16; integers and bools become
    float64 (as in scipy); complex and non-numeric input raise ``TypeError``.
    """
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        _reject_dtype(x.dtype)
    if dtype is not None:
        target = np.dtype(dtype)
        _check_real_float(target, "dtype")
        result = target
        if target.itemsize < 4 and x.dtype != target:
            # round to float16 first, as torch does (computing in float32
            # alone would keep values float16 cannot hold); silent like torch
            with np.errstate(over="ignore", invalid="ignore"):
                x = x.astype(target)
    elif x.dtype.kind in "biu":
        result = np.dtype(np.float64)
    else:
        result = x.dtype
    if result not in (np.float32, np.float64, np.float16):
        # long double and friends: compute in float64
        compute = np.dtype(np.float64)
    else:
        compute = np.dtype(np.float32) if result == np.float16 else result
    return x, compute, result


def check_where_numpy(where, shape):
    """Return ``where`` as a boolean array broadcast to ``shape``."""
    where = np.asarray(where)
    if where.dtype != np.bool_:
        raise TypeError(f"where must be a boolean array, got dtype {where.dtype}")
    try:
        return np.broadcast_to(where, shape)
    except ValueError:
        raise ValueError(
            f"where of shape {where.shape} cannot be broadcast to the input's shape {shape}"
        ) from None
