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


def _denominator(inputs, target, sample_weight):
    """sum(w[y] * sample_weight) over rows that are not ignored."""
    if inputs.weight is None and sample_weight is None and not inputs.maybe_ignored:
        return float(target.shape[0])
    return kernels.target_weight_sum(target, _as_double(inputs.weight), sample_weight,
                                     inputs.ignore_index, n_threads_for(target.shape[0]))


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
    n_rows = x.shape[0]
    reduction = inputs.reduction
    denom = _denominator(inputs, target, sample_weight) if reduction == "mean" and n_rows else 0
    grad_scale = 1.0
    if reduction == "mean":
        grad_scale = 1.0 / denom if denom != 0 else math.nan
    grad = np.empty_like(x) if want_grad else None
    losses = np.empty(n_rows, dtype=x.dtype) if reduction == "none" else None
    total = 0.0
    if n_rows:
        total = kernels.cross_entropy_rows(
            x, target, _as_double(inputs.weight), sample_weight, inputs.label_smoothing,
            inputs.ignore_index, grad_scale, grad, losses, n_threads_for(x.size))
    if reduction == "none":
        loss = losses.reshape(inputs.batch_shape)
    elif reduction == "sum":
        loss = np.asarray(total)
    else:  # torch's mean is (1 - eps) * (0/0) + ... when the denominator is 0: NaN
        loss = total / denom if denom != 0 else math.nan
    with np.errstate(over="ignore"):  # a float16/float32 result may overflow, silently
        loss = np.asarray(loss, dtype=inputs.result_dtype)
        if grad is not None:
            if inputs.x.ndim != 2:
                grad = from_rows(npx, grad, inputs.x.shape)
            grad = np.ascontiguousarray(grad, dtype=inputs.result_dtype)
    return loss, grad
