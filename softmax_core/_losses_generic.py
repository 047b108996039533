"""Pure array-API cross-entropy and NLL, for every namespace (NumPy included).

The functions work on arrays with the classes on the last axis: (..., C)
logits (or log-probabilities) and targets of the batch shape ``...`` (class
indices) or (..., C) (probabilities).  ``class_last`` makes them from (C,),
(N, C) or (N, C, d1, ..., dk) input by moving the class axis, without a
reshape, so dask arrays of unknown lengths (``X[mask]``) work too; ``to_rows``
(an (M, C) array, one row per sample) is the layout of the compiled kernels.
They follow torch 2.13 term by term:

* index targets: ``l_n = (1 - eps) w[y_n] (lse_n - x[n, y_n])
  + eps/C sum_c w_c (lse_n - x[n, c])``, 0 where ``y_n == ignore_index``;
  ``"mean"`` divides by ``sum(w[y_n])`` over the samples that are not ignored;
* probability targets: ``t' = (1 - eps) t + eps/C`` and
  ``l_n = sum_c w_c t'_c (lse_n - x[n, c])``; ``"mean"`` divides by M;
* ``sample_weight`` multiplies ``l_n`` and enters the mean's denominator
  (``sum(s_n w[y_n])`` or ``sum(s_n)``).

``lse - x`` is formed as ``log(sum(exp(x - max))) - (x - max)``, never as
``log(softmax(x))``, so logits of +-1e4 stay exact.  The gradient is the
analytic one, ``a_n (p (sum of the row's target weights) - target
weights)``, and matches torch autograd.  A 0/0 mean (every row ignored or
of zero weight) is NaN, and so is the gradient of every row that is not
ignored, as in torch.  Nothing reads a value, so dask arrays stay lazy; the
"mean" denominator is itself a lazy sum.
"""

import math

import array_api_compat

from ._dask_graph import reduce_max

__all__ = ["to_rows", "rows_to_batch", "from_rows", "class_last", "from_class_last",
           "nll_loss", "cross_entropy"]


def class_last(xp, x):
    """(C,) and (N, C) -> themselves; (N, C, d1, ...) -> (N, d1, ..., C), a view."""
    if x.ndim <= 2:
        return x
    return xp.permute_dims(x, (0, *range(2, x.ndim), 1))


def from_class_last(xp, a):
    """Inverse of ``class_last``."""
    if a.ndim <= 2:
        return a
    return xp.permute_dims(a, (0, a.ndim - 1, *range(1, a.ndim - 1)))


def to_rows(xp, x):
    """(C,) -> (1, C); (N, C) -> itself; (N, C, d1, ...) -> (N*d1*..., C)."""
    if x.ndim == 1:
        return xp.reshape(x, (1, x.shape[0]))
    if x.ndim == 2:
        return x
    moved = xp.permute_dims(x, (0, *range(2, x.ndim), 1))
    return xp.reshape(moved, (-1, x.shape[1]))


def from_rows(xp, rows, shape):
    """Inverse of ``to_rows`` for an (M, C) array and the input's ``shape``."""
    if len(shape) <= 2:
        return xp.reshape(rows, shape)
    moved = xp.reshape(rows, (shape[0], *shape[2:], shape[1]))
    return xp.permute_dims(moved, (0, moved.ndim - 1, *range(1, moved.ndim - 1)))


def rows_to_batch(xp, a):
    """A batch-shaped array (targets, sample weights) as M rows."""
    return xp.reshape(a, (-1,))


def _zero(xp, like):
    """A 0-d zero of ``like``'s dtype, on its device."""
    return xp.zeros((), dtype=like.dtype, device=array_api_compat.device(like))


def _safe_denominator(xp, denom):
    # 0 -> NaN, so that 0/0 means are NaN without a division warning
    nan = xp.full(denom.shape, math.nan, dtype=denom.dtype,
                  device=array_api_compat.device(denom))
    return xp.where(denom == 0, nan, denom)


def _index_parts(xp, x, target, weight, ignore_index):
    """Return ``(valid, onehot, wy)`` for int64 targets of the batch shape."""
    valid = target != ignore_index
    y = xp.where(valid, target, xp.zeros_like(target))
    classes = xp.arange(x.shape[-1], dtype=target.dtype, device=array_api_compat.device(x))
    onehot = classes == y[..., None]
    if weight is None:
        wy = xp.astype(valid, x.dtype)
    else:
        if y.ndim == 1:
            picked = xp.take(weight, y)
        else:  # take wants 1-d indices: the one nonzero term of each sum is exact
            picked = xp.sum(xp.where(onehot, weight, _zero(xp, x)), axis=-1)
        wy = xp.where(valid, picked, _zero(xp, x))
    return valid, onehot, wy


def _wide_sum(xp, a):
    """``sum(a)`` accumulated in float64 where the namespace and device have it
    (torch's CPU reductions accumulate in double too), else in ``a``'s dtype."""
    if a.dtype == xp.float64:
        return xp.sum(a)
    try:
        return xp.sum(a, dtype=xp.float64)
    except (TypeError, ValueError, RuntimeError):  # no float64 on this device
        return xp.sum(a)


def _reduce(xp, losses, denom, reduction):
    """Reduce per-row losses; ``denom`` comes from ``_wide_sum`` (for "mean")."""
    if reduction == "none":
        return losses
    total = _wide_sum(xp, losses)
    if reduction == "mean":
        total = total / _safe_denominator(xp, xp.astype(denom, total.dtype))
    return xp.astype(total, losses.dtype)


def nll_loss(xp, x, target, *, weight, ignore_index, reduction):
    """NLL of (..., C) log-probabilities: ``-w[y] x[n, y]``, 0 for ignored samples."""
    valid, onehot, wy = _index_parts(xp, x, target, weight, ignore_index)
    zero = _zero(xp, x)
    picked = xp.sum(xp.where(onehot, x, zero), axis=-1)
    losses = xp.where(valid, -(wy * picked), zero)
    return _reduce(xp, losses, _wide_sum(xp, wy), reduction)


def _log_softmax_parts(xp, x):
    """Return ``(log_probs, probs)`` of (..., C) logits via logsumexp."""
    shifted = x - reduce_max(xp, x, axis=-1, keepdims=True)
    e = xp.exp(shifted)
    s = xp.sum(e, axis=-1, keepdims=True)
    return shifted - xp.log(s), e / s


def _index_terms(xp, logp, target, weight, ignore_index, eps):
    """Per-row losses and target weights for index targets.

    Returns ``(losses, valid, twc, wy)``: ``twc[n, c]`` is the weight of class
    c in row n's smoothed target, so that ``l_n = sum_c twc[n, c] (lse_n -
    x[n, c])`` (losses are 0 where ignored), and ``wy = w[y_n]`` (0 where
    ignored), the row's share of the "mean" denominator.
    """
    n_classes = logp.shape[-1]
    valid, onehot, wy = _index_parts(xp, logp, target, weight, ignore_index)
    zero = _zero(xp, logp)
    # nll from the target entry alone: a -inf elsewhere must not give inf * 0
    losses = (1.0 - eps) * wy * -xp.sum(xp.where(onehot, logp, zero), axis=-1)
    twc = (1.0 - eps) * wy[..., None] * xp.astype(onehot, logp.dtype)
    if eps > 0:
        w_row = logp if weight is None else logp * weight
        losses = losses + (eps / n_classes) * -xp.sum(w_row, axis=-1)
        if weight is None:
            twc = twc + eps / n_classes
        else:
            twc = twc + (eps / n_classes) * weight
    losses = xp.where(valid, losses, zero)
    return losses, valid, twc, wy


def _prob_terms(xp, logp, target, weight, eps):
    """Per-row losses and smoothed, weighted targets for probability targets."""
    twc = target if eps == 0 else (1.0 - eps) * target + eps / logp.shape[-1]
    if weight is not None:
        twc = twc * weight
    return -xp.sum(twc * logp, axis=-1), twc


def cross_entropy(xp, x, target, *, kind, weight, ignore_index, reduction, label_smoothing,
                  sample_weight=None, want_grad=False):
    """Cross-entropy of (..., C) logits; returns ``(loss, grad or None)``.

    ``target`` is int64 of the batch shape ``...`` (``kind="index"``) or
    (..., C) probabilities; ``sample_weight`` is None or of the batch shape.
    The gradient has the logits' (..., C) shape.
    """
    logp, probs = _log_softmax_parts(xp, x)
    valid = None
    if kind == "index":
        losses, valid, twc, row_weight = _index_terms(xp, logp, target, weight, ignore_index,
                                                      label_smoothing)
    else:
        losses, twc = _prob_terms(xp, logp, target, weight, label_smoothing)
        row_weight = xp.ones_like(losses)
    if sample_weight is not None:
        losses = losses * sample_weight
        row_weight = row_weight * sample_weight
    denom = _wide_sum(xp, row_weight)
    loss = _reduce(xp, losses, denom, reduction)
    if not want_grad:
        return loss, None
    # d l_n / d x[n, c] = p[n, c] * sum_c twc[n, c] - twc[n, c], times a_n
    scale = None if sample_weight is None else sample_weight[..., None]
    if reduction == "mean":
        scale = (1.0 if scale is None else scale) / xp.astype(_safe_denominator(xp, denom),
                                                              x.dtype)
    grad = probs * xp.sum(twc, axis=-1, keepdims=True) - twc
    if scale is not None:
        grad = scale * grad
    if valid is not None:
        grad = xp.where(valid[..., None], grad, _zero(xp, x))
    return loss, grad
