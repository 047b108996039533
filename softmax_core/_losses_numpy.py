"""NumPy path of the cross-entropy: the fused Cython kernel for index targets.

The kernel (``src/cross_entropy.pxi``) takes C-contiguous (M, C) logits in
float32 or float64 and M int64 targets that ``_losses_validation`` has
already checked.  (N, C, d1, ..., dk) input is moved to (N*d1*...*dk, C)
rows first (one copy) and the gradient moved back.  Class weights and
sample weights travel as float64; the "mean" denominator is computed before
the main pass so that the gradient is scaled while it is written.
"""

import math

import array_api_compat.numpy as npx
import numpy as np

from ._losses_generic import from_rows, to_rows
from ._native import kernels
from ._threads import n_threads_for

__all__ = ["cross_entropy"]


def _as_double(a):
    return None if a is None else np.ascontiguousarray(a, dtype=np.float64)


def _denominator(target, weight, sample_weight, ignore_index, maybe_ignored):
    """sum(w[y] * sample_weight) over rows that are not ignored."""
    if weight is None and sample_weight is None and not maybe_ignored:
        return float(target.shape[0])
    return kernels.target_weight_sum(target, _as_double(weight), sample_weight, ignore_index,
                                     n_threads_for(target.shape[0]))


def _rows(x, target, weight, sample_weight, ignore_index, reduction, label_smoothing,
          maybe_ignored, want_grad):
    """The kernel call on C-contiguous (M, C) rows and M int64 targets, checked.

    Returns ``(loss, grad or None)``: for "mean"/"sum" the loss is a Python
    float (NaN for a mean over no weight, as torch), for "none" the (M,)
    losses in x's dtype.
    """
    n_rows = x.shape[0]
    denom = 0
    grad_scale = 1.0
    if reduction == "mean" and n_rows:
        denom = _denominator(target, weight, sample_weight, ignore_index, maybe_ignored)
        grad_scale = 1.0 / denom if denom != 0 else math.nan
    grad = np.empty_like(x) if want_grad else None
    losses = np.empty(n_rows, dtype=x.dtype) if reduction == "none" else None
    total = 0.0
    if n_rows:
        total = kernels.cross_entropy_rows(
            x, target, _as_double(weight), sample_weight, label_smoothing, ignore_index,
            grad_scale, grad, losses, n_threads_for(x.size))
    if reduction == "none":
        return losses, grad
    if reduction == "sum":
        return total, grad
    # torch's mean is (1 - eps) * (0/0) + ... when the denominator is 0: NaN
    return (total / denom if denom != 0 else math.nan), grad


def cross_entropy(inputs, want_grad):
    """Loss (and gradient) for ``LossInputs`` with NumPy arrays and index targets.

    Returns ``(loss, grad or None)`` with the caller's result dtype: a 0-d
    array for "mean"/"sum", ``inputs.batch_shape`` for "none".
    """
    x = np.ascontiguousarray(to_rows(npx, inputs.x))
    target = np.ascontiguousarray(inputs.target).reshape(-1)
    sample_weight = None
    if inputs.sample_weight is not None:
        sample_weight = _as_double(inputs.sample_weight).reshape(-1)
    loss, grad = _rows(x, target, inputs.weight, sample_weight, inputs.ignore_index,
                       inputs.reduction, inputs.label_smoothing, inputs.maybe_ignored,
                       want_grad)
    if inputs.reduction == "none":
        loss = loss.reshape(inputs.batch_shape)
    with np.errstate(over="ignore"):  # a float16/float32 result may overflow, silently
        loss = np.asarray(loss, dtype=inputs.result_dtype)
        if grad is not None:
            if inputs.x.ndim != 2:
                grad = from_rows(npx, grad, inputs.x.shape)
            grad = np.ascontiguousarray(grad, dtype=inputs.result_dtype)
    return loss, grad


_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_INT64 = np.dtype(np.int64)
_REDUCTIONS = ("mean", "sum", "none")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def common_call(logits, target, ignore_index, reduction, label_smoothing, want_grad):
    """The loss functions' most common NumPy call, or None for any other.

    That call: C-contiguous (N, C) float32/float64 logits (N, C > 0), a
    contiguous int64 (N,) target whose entries are all in ``[0, C)``, no
    class or sample weights, and plain options (a ``str`` reduction, an
    ``int`` ignore_index, a ``float``/``int`` label_smoothing in [0, 1]).
    It is checked by construction here, in a few microseconds, and returns
    what the general path (``_losses_validation.check_loss_inputs`` and
    ``cross_entropy`` above) returns for it: ``(loss, grad or None)``, the
    loss a NumPy scalar of the logits' dtype ("mean"/"sum") or the (N,)
    losses.  Anything else (a target out of range included: the general
    path names it in its error) returns None and takes the general path.
    """
    if not (type(logits) is np.ndarray and type(target) is np.ndarray
            and logits.ndim == 2 and target.ndim == 1
            and logits.dtype in _FAST_DTYPES and target.dtype == _INT64
            and logits.flags.c_contiguous and target.flags.c_contiguous
            and logits.shape[0] == target.shape[0] and logits.size
            and type(reduction) is str and reduction in _REDUCTIONS
            and type(ignore_index) is int and -(2**63) <= ignore_index < 2**63
            and type(label_smoothing) in (float, int) and 0 <= label_smoothing <= 1):
        return None
    lo, hi = kernels.index_range(target)
    if lo < 0 or hi >= logits.shape[1]:
        return None
    loss, grad = _rows(logits, target, None, None, ignore_index, reduction,
                       float(label_smoothing), lo <= ignore_index <= hi, want_grad)
    if reduction == "none":
        return loss, grad
    if logits.dtype == np.float32 and not -_FLOAT32_MAX <= loss <= _FLOAT32_MAX:
        with np.errstate(over="ignore"):  # overflows to inf silently, as the general path
            return np.asarray(loss, dtype=np.float32)[()], grad
    return logits.dtype.type(loss), grad
