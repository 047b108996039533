"""Fused CUDA kernels for CuPy arrays: the hooks the public functions call.

Each hook returns the result as a CuPy array, or ``None`` when the kernels
do not cover the call (see :mod:`._dispatch`); the caller then runs the
generic array-API code, which stays on the GPU.  This package never imports
CuPy at import time: :mod:`._kernels` (which does) is imported the first time
a covered call arrives, so ``import softmax_core`` works without CuPy.
"""

from ._dispatch import plan_cross_entropy, plan_rows

__all__ = ["softmax", "logsumexp", "cross_entropy_with_grad"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def _layout(x):
    return {"c_contiguous": bool(x.flags.c_contiguous), "aligned": x.data.ptr % 16 == 0}


def softmax(x, axes, *, log):
    """softmax (``log=False``) or log_softmax (``log=True``) of ``x`` over ``axes``.

    ``x`` is a CuPy array already in its compute dtype (float16/32/64) and
    ``axes`` a tuple of non-negative axes.  Returns a new array of ``x``'s
    shape and dtype, or ``None`` if the kernels do not cover the call.
    """
    plan = plan_rows(tuple(x.shape), tuple(axes), x.dtype, **_layout(x))
    if plan is None:
        return None
    from . import _kernels

    return _kernels.run_rows(x, plan, "log_softmax" if log else "softmax")


def logsumexp(x, axes):
    """logsumexp of ``x`` over ``axes`` (reduced axes dropped), or ``None`` to fall back."""
    plan = plan_rows(tuple(x.shape), tuple(axes), x.dtype, **_layout(x))
    if plan is None:
        return None
    from . import _kernels

    return _kernels.run_rows(x, plan, "logsumexp")


def cross_entropy_with_grad(logits, target, *, weight, ignore_index, reduction,
                            label_smoothing, sample_weight):
    """Fused cross-entropy loss and its gradient for ``(N, C)`` CuPy logits.

    ``target`` holds int64 class indices already validated to lie in
    ``[0, C)`` or equal ``ignore_index``; ``weight`` is ``None`` or ``(C,)``,
    ``sample_weight`` ``None`` or ``(N,)``.  Semantics are those of
    ``torch.nn.functional.cross_entropy`` plus ``sample_weight``, which scales
    each row's loss (and, for ``"mean"``, the denominator becomes
    ``sum(sample_weight[n] * weight[y_n])`` over non-ignored rows).  Returns
    ``(loss, grad)`` -- ``loss`` 0-d for ``"mean"``/``"sum"``, ``(N,)`` for
    ``"none"``, ``grad`` shaped and typed like ``logits`` (the gradient of the
    reduced loss, or of ``loss.sum()`` for ``"none"``) -- or ``None`` if the
    kernels do not cover the call.
    """
    plan = plan_cross_entropy(logits.shape, logits.dtype, **_layout(logits),
                              reduction=reduction, has_weight=weight is not None,
                              label_smoothing=label_smoothing)
    if plan is None:
        return None
    if tuple(target.shape) != (plan.n_rows,):
        return None
    if weight is not None and tuple(weight.shape) != (plan.n_cols,):
        return None
    if sample_weight is not None and tuple(sample_weight.shape) != (plan.n_rows,):
        return None
    ignore_index = int(ignore_index)
    if not _INT64_MIN <= ignore_index <= _INT64_MAX:
        ignore_index = -1  # no int64 target can equal it, and valid targets are >= 0
    from . import _kernels

    return _kernels.run_cross_entropy(logits, target, plan, weight=weight,
                                      sample_weight=sample_weight, ignore_index=ignore_index,
                                      label_smoothing=float(label_smoothing))
