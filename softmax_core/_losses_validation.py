"""Argument checks for the loss functions, shared by the NumPy and array-API paths.

Everything a kernel relies on is checked here, before any compiled code
runs: the options, the logits' shape, the kind of target (integer class
indices or floating class probabilities) and its shape, every class index
(in ``[0, C)`` or equal to ``ignore_index``), and the lengths and signs of
``weight`` and ``sample_weight``.  The checks use only array-API functions,
so they run in the caller's namespace and on its device.

For dask arrays the checks of values (class indices, the uint64 wrap, the
sign of the sample weights) would each be a compute, so ``_losses_lazy``
moves them into the graph: the call returns at once and computing its result
raises the same exception, built by the same functions (``index_error``,
``wrapped_index_error``, ``sample_weight_error``).  Shapes, dtypes and options
are checked during the call in every namespace; a length that dask does not
know yet (``X[mask]``) matches only an unknown length (``_validation``'s
rule), and the class axis must have a known length.
"""

import math
import operator
from dataclasses import dataclass
from typing import Any

import array_api_compat
import array_api_compat.numpy as np_compat
import numpy as np

from ._dask_graph import is_dask
from ._namespace import NUMPY
from ._native import kernels
from ._softmax_generic import as_float
from ._validation import is_known, numpy_compute_dtypes, shape_of

__all__ = ["REDUCTIONS", "TargetIndexError", "LossInputs", "check_loss_inputs",
           "index_error", "wrapped_index_error", "sample_weight_error"]

REDUCTIONS = ("mean", "sum", "none")


class TargetIndexError(IndexError, ValueError):
    """A class index outside ``[0, C)`` that is not ``ignore_index``.

    It is both an ``IndexError`` (what torch raises) and a ``ValueError``.
    """


@dataclass
class LossInputs:
    """Checked, converted inputs of one loss call.

    ``x`` has the compute dtype; ``result_dtype`` is what the caller gets
    back.  ``target`` is int64 (``kind == "index"``) or has the compute dtype
    (``kind == "prob"``).  ``batch_shape`` is the shape of a ``"none"``
    result.  ``weight`` and ``sample_weight`` are None or arrays of the
    compute dtype; ``sample_weight`` already has ``batch_shape``.
    ``maybe_ignored`` is False when no target can equal ``ignore_index``
    (always True for dask, whose targets are not looked at).
    """

    xp: Any
    backend: str
    x: Any
    target: Any
    kind: str
    n_classes: int
    batch_shape: tuple
    result_dtype: Any
    weight: Any
    sample_weight: Any
    ignore_index: int
    reduction: str
    label_smoothing: float
    maybe_ignored: bool


def check_reduction(reduction):
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def check_ignore_index(ignore_index):
    if isinstance(ignore_index, bool):
        raise TypeError(f"ignore_index must be an int, got {ignore_index!r}")
    try:
        value = operator.index(ignore_index)
    except TypeError:
        raise TypeError(f"ignore_index must be an int, got {ignore_index!r}") from None
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"ignore_index must fit in int64, got {value}")
    return value


def check_label_smoothing(label_smoothing):
    if isinstance(label_smoothing, bool):
        raise TypeError(f"label_smoothing must be a float, got {label_smoothing!r}")
    try:
        value = float(label_smoothing)
    except (TypeError, ValueError):
        raise TypeError(f"label_smoothing must be a float, got {label_smoothing!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    return value


# NumPy's dtype.kind characters of the kinds these checks ask about
_NUMPY_KINDS = {"real floating": "f", "integral": "iu", "bool": "b",
                ("real floating", "integral"): "fiu"}


def _isdtype(xp, dtype, kinds):
    """``xp.isdtype`` with a fast path for NumPy dtypes (small calls are common)."""
    if isinstance(dtype, np.dtype):
        return dtype.kind in _NUMPY_KINDS[kinds]
    return xp.isdtype(dtype, kinds)


_shape = shape_of  # (a length dask does not know is None)


def _as_array(xp, a, like=None):
    """``a`` itself if it is an array, else ``xp.asarray(a)`` on ``like``'s device."""
    if hasattr(a, "shape") and hasattr(a, "dtype"):
        return a
    if like is None:
        return xp.asarray(a)
    return xp.asarray(a, device=array_api_compat.device(like))


def _logits(xp, backend, logits):
    """Return ``(x, result_dtype, n_classes, batch_shape)``."""
    if backend == NUMPY:
        x, compute, result = numpy_compute_dtypes(logits, None)
        x = x.astype(compute, copy=False)
    else:
        x, result = as_float(xp, _as_array(xp, logits))
    shape = _shape(x)
    if len(shape) == 0:
        raise ValueError(
            "input must have shape (C,), (N, C) or (N, C, d1, ..., dk) with the classes "
            "on axis 1 (axis 0 for 1-D input), got a 0-d array"
        )
    axis = 0 if len(shape) == 1 else 1
    if shape[axis] is None:
        raise ValueError(
            f"input of shape {shape} has a class axis (axis {axis}) of unknown length; "
            "the number of classes must be known (dask: select rows only, or call "
            "compute_chunk_sizes() first)"
        )
    if shape[axis] == 0:
        raise ValueError(f"input of shape {shape} has no classes (C = 0 on axis {axis})")
    batch = shape[:axis] + shape[axis + 1:]
    return x, result, shape[axis], batch


def index_error(value, position, n_classes, ignore_index):
    """The error for class index ``value`` at flat (C order) ``position``."""
    return TargetIndexError(
        f"target {value} (at flat position {position}) is out of bounds: class indices "
        f"must be in [0, {n_classes}) for {n_classes} classes, or equal ignore_index="
        f"{ignore_index}"
    )


def wrapped_index_error(value, n_classes, ignore_index):
    """The error for a uint64 class index ``value`` above the int64 range."""
    return TargetIndexError(
        f"target {value} is out of bounds: class indices must be in [0, {n_classes}) or "
        f"equal ignore_index={ignore_index}"
    )


def sample_weight_error(low):
    """The error for sample weights whose minimum ``low`` is negative or NaN."""
    return ValueError(f"sample_weight must be non-negative and not NaN, got minimum {low}")


def check_class_indices(xp, target, n_classes, ignore_index):
    """Raise ``TargetIndexError`` unless every entry is in [0, C) or ignore_index.

    Returns whether some entry may equal ``ignore_index``.  Not for dask
    (``_losses_lazy`` checks those in the graph).
    """
    if math.prod(_shape(target)) == 0:
        return False
    if isinstance(target, np.ndarray):  # one compiled pass: microseconds less per call
        lo, hi = kernels.index_range(np.ascontiguousarray(target, dtype=np.int64).reshape(-1))
    else:
        lo, hi = int(xp.min(target)), int(xp.max(target))
    if lo >= 0 and hi < n_classes:
        return lo <= ignore_index <= hi
    flat = xp.reshape(target, (-1,))
    bad = ((flat < 0) | (flat >= n_classes)) & (flat != ignore_index)
    if bool(xp.any(bad)):
        position = int(xp.argmax(xp.astype(bad, xp.int8)))
        raise index_error(int(flat[position]), position, n_classes, ignore_index)
    return True


def _target(xp, target, x, batch, allow_prob, ignore_index):
    """Return ``(target, kind)``; a uint64 target too large for int64 raises
    here (for dask, in the graph: ``_losses_lazy``)."""
    shape = _shape(x)
    dtype = target.dtype
    if _isdtype(xp, dtype, "real floating"):
        if not allow_prob:
            raise ValueError(
                f"nll_loss needs integer class indices as target (shape {batch}), got a "
                f"floating array ({dtype}) of shape {_shape(target)}"
            )
        if _shape(target) != shape:
            raise ValueError(
                f"a floating target holds class probabilities and must have the input's "
                f"shape {shape}, got shape {_shape(target)}; class indices must be an "
                f"integer array of shape {batch}"
            )
        if ignore_index >= 0:
            raise ValueError(
                f"ignore_index={ignore_index} is not supported with class-probability "
                "targets (as in torch); leave it negative"
            )
        return _cast(xp, target, x.dtype), "prob"
    if _isdtype(xp, dtype, "bool") or not _isdtype(xp, dtype, "integral"):
        raise TypeError(
            "target must hold integer class indices or floating class probabilities, "
            f"got dtype {dtype}"
        )
    if _shape(target) != batch:
        hint = (" (an integer target of the input's shape is not allowed: class "
                "probabilities must be floating)" if _shape(target) == shape else "")
        raise ValueError(
            f"target of class indices must have shape {batch} for input of shape {shape}, "
            f"got shape {_shape(target)}{hint}"
        )
    converted = xp.astype(target, xp.int64, copy=False)
    if _is_uint64(xp, dtype) and not is_dask(xp) and math.prod(_shape(target)):
        # the int64 cast wraps values above 2**63 - 1 to negative numbers (2**64 - 100
        # would pass for ignore_index=-100); a uint64 target is never negative
        lo = int(xp.min(converted))
        if lo < 0:
            n_classes = shape[1] if len(shape) > 1 else shape[0]
            raise wrapped_index_error(lo + 2**64, n_classes, ignore_index)
    return converted, "index"


def _is_uint64(xp, dtype):
    return dtype == getattr(xp, "uint64", None)


def _cast(xp, a, dtype):
    """``a`` in ``dtype``; a NumPy cast that overflows gives inf silently, as in torch."""
    if isinstance(a, np.ndarray):
        if a.dtype == dtype:
            return a
        with np.errstate(over="ignore", invalid="ignore"):
            return a.astype(dtype)
    return xp.astype(a, dtype, copy=False)


def _weight(xp, weight, n_classes, dtype, like):
    if weight is None:
        return None
    weight = _as_array(xp, weight, like)
    if not _isdtype(xp, weight.dtype, ("real floating", "integral")):
        raise TypeError(f"weight must be a real numeric array, got dtype {weight.dtype}")
    if _shape(weight) != (n_classes,):
        raise ValueError(
            f"weight must have shape ({n_classes},), one entry per class, got shape "
            f"{_shape(weight)}"
        )
    return _cast(xp, weight, dtype)


def _sample_weight(xp, sample_weight, batch, dtype, like):
    """The sample weights checked and cast, of their own shape (N,) or ``batch``
    (dask's are checked for their sign in the graph, by ``_losses_lazy``)."""
    if sample_weight is None:
        return None
    sw = _as_array(xp, sample_weight, like)
    if not _isdtype(xp, sw.dtype, ("real floating", "integral")):
        raise TypeError(f"sample_weight must be a real numeric array, got dtype {sw.dtype}")
    shape = _shape(sw)
    allowed = {batch, batch[:1]}  # an unknown length is None: it matches only None
    if shape not in allowed:
        expected = " or ".join(str(s) for s in sorted(allowed, key=len))
        raise ValueError(
            f"sample_weight must have shape {expected} (one weight per sample), got shape "
            f"{shape}"
        )
    sw = _cast(xp, sw, dtype)
    if not is_dask(xp) and math.prod(shape):
        low = float(sw.min() if isinstance(sw, np.ndarray) else xp.min(sw))
        if not low >= 0:  # NaN fails too
            raise sample_weight_error(low)
    return sw


def _batch_sample_weight(xp, sw, batch, x):
    """(N,) sample weights of (N, d1, ..., dk) targets broadcast to ``batch``."""
    if sw is None or _shape(sw) == batch:
        return sw
    sw = sw[(..., *(None,) * (len(batch) - 1))]
    if is_known(batch):
        return xp.broadcast_to(sw, batch)
    return sw + xp.zeros_like(x[:, 0, ...])  # x[:, 0] has the batch shape


def check_loss_inputs(xp, backend, logits, target, *, weight=None, sample_weight=None,
                      ignore_index=-100, reduction="mean", label_smoothing=0.0,
                      allow_prob=True):
    """Check and convert one loss call's arguments; return a ``LossInputs``.

    For NumPy input ``xp`` becomes ``array_api_compat.numpy`` (plain NumPy
    arrays, array-API function names).
    """
    if backend == NUMPY:
        xp = np_compat
    reduction = check_reduction(reduction)
    ignore_index = check_ignore_index(ignore_index)
    label_smoothing = check_label_smoothing(label_smoothing)
    x, result, n_classes, batch = _logits(xp, backend, logits)
    target = np.asarray(target) if backend == NUMPY else _as_array(xp, target, x)
    wrapped = _is_uint64(xp, target.dtype)
    target, kind = _target(xp, target, x, batch, allow_prob, ignore_index)
    lazy = is_dask(xp)
    maybe_ignored = False
    if kind == "index":
        maybe_ignored = lazy or check_class_indices(xp, target, n_classes, ignore_index)
    weight = _weight(xp, weight, n_classes, x.dtype, x)
    sample_weight = _sample_weight(xp, sample_weight, batch, x.dtype, x)
    if lazy:
        from . import _losses_lazy  # (it builds its errors with this module's functions)

        target, sample_weight = _losses_lazy.checked(
            target, kind, sample_weight, n_classes=n_classes, ignore_index=ignore_index,
            wrapped=wrapped)
    sample_weight = _batch_sample_weight(xp, sample_weight, batch, x)
    return LossInputs(xp, backend, x, target, kind, n_classes, batch, result, weight,
                      sample_weight, ignore_index, reduction, label_smoothing, maybe_ignored)
