"""torch tensors that require grad: autograd Functions over the NumPy kernels.

Design: each Function's ``forward`` views its CPU tensors as NumPy arrays
(zero copy, ``_bridge``), runs the NumPy path and views the result back; its
``backward`` does the same with the kernels' backward passes
(``softmax_backward`` for softmax and log_softmax, the gradient that
``cross_entropy_with_grad`` computes in the forward pass for the
cross-entropy, one scatter for the NLL).  Only the logits are
differentiated: a call whose target or weight requires grad takes the
array-API path instead, where torch's own autograd records every operation.

The backward passes are first order: a backward pass that would record a
graph for a second derivative (``create_graph=True``, double backward)
raises a ``RuntimeError`` that says so, rather than returning a gradient
that silently lacks its own graph.
"""

import functools

import numpy as np
import torch

from . import _losses, _softmax_numpy
from ._bridge import numpy_dtype, to_numpy
from ._validation import normalize_axes

__all__ = ["softmax", "logsumexp", "cross_entropy", "nll_loss"]


def _first_order(backward):
    """Run a kernel-backed backward pass; refuse to build a graph of it."""

    @functools.wraps(backward)
    def wrapper(ctx, *grad_outputs):
        if torch.is_grad_enabled():
            raise RuntimeError(
                "softmax_core: the gradients of its kernel-backed functions are first order "
                "only; double backward (create_graph=True) is not supported. Use "
                "torch.nn.functional for higher derivatives."
            )
        return backward(ctx, *grad_outputs)

    return wrapper


class _Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, axis, dtype, where, use_log):
        mask = to_numpy(where)
        y = _softmax_numpy.softmax(to_numpy(x), axis, numpy_dtype(torch, dtype), mask, None,
                                   use_log)
        y = torch.from_numpy(y)
        ctx.save_for_backward(y)
        ctx.axis, ctx.use_log, ctx.x_dtype = axis, use_log, x.dtype
        ctx.mask = None if mask is None else np.broadcast_to(mask, x.shape)
        return y

    @staticmethod
    @_first_order
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        g = grad_output.numpy()
        if ctx.mask is not None:  # masked-out entries are constants of the forward pass
            g = np.where(ctx.mask, g, 0)
        gx = _softmax_numpy.softmax_backward(g, y.numpy(), ctx.axis, ctx.use_log)
        if ctx.mask is not None:
            gx = np.where(ctx.mask, gx, 0)
        return torch.from_numpy(np.ascontiguousarray(gx)).to(ctx.x_dtype), None, None, None, None


class _LogSumExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, axis, keepdims, where):
        mask = to_numpy(where)
        r = _softmax_numpy.logsumexp(to_numpy(x), axis, True, False, mask)
        ctx.save_for_backward(x)
        ctx.r, ctx.mask = r, None if mask is None else np.broadcast_to(mask, x.shape)
        axes = normalize_axes(axis, tuple(x.shape))
        ctx.kept = r.shape
        out = r if keepdims else r.reshape(tuple(d for i, d in enumerate(x.shape)
                                                 if i not in axes))
        return torch.from_numpy(np.array(out, dtype=r.dtype, ndmin=0, copy=True))

    @staticmethod
    @_first_order
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        g = grad_output.numpy().reshape(ctx.kept)
        with np.errstate(all="ignore"):
            # d lse / d x = exp(x - lse) (NaN in a row whose lse is +-inf, as torch)
            p = np.exp(x.detach().numpy() - ctx.r)
            gx = g * p
        if ctx.mask is not None:
            gx = np.where(ctx.mask, gx, 0)
        return torch.from_numpy(np.ascontiguousarray(gx, dtype=p.dtype)), None, None, None


class _CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target, weight, ignore_index, reduction, label_smoothing,
                sample_weight):
        loss, grad = _losses.cross_entropy_with_grad(
            to_numpy(logits), to_numpy(target), weight=to_numpy(weight), ignore_index=ignore_index,
            reduction=reduction, label_smoothing=label_smoothing,
            sample_weight=to_numpy(sample_weight))
        ctx.grad, ctx.reduction, ctx.ndim = grad, reduction, logits.ndim
        return torch.from_numpy(np.array(loss, copy=True))

    @staticmethod
    @_first_order
    def backward(ctx, grad_output):
        g = grad_output
        if ctx.reduction == "none" and ctx.ndim > 1:  # per-sample factors, along the classes
            g = g.unsqueeze(1)
        return torch.from_numpy(ctx.grad) * g, None, None, None, None, None, None


class _NLLLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, log_probs, target, weight, ignore_index, reduction):
        x, t, w = to_numpy(log_probs), to_numpy(target), to_numpy(weight)
        loss = _losses.nll_loss(x, t, weight=w, ignore_index=ignore_index, reduction=reduction)
        ctx.shape, ctx.dtype = x.shape, x.dtype
        ctx.t, ctx.w, ctx.ignore_index, ctx.reduction = t, w, ignore_index, reduction
        return torch.from_numpy(np.array(loss, copy=True))

    @staticmethod
    @_first_order
    def backward(ctx, grad_output):
        # d l_n / d x[n, y_n] = -w[y_n] (divided by sum(w[y_n]) for "mean"), else 0
        axis = 1 if len(ctx.shape) > 1 else 0
        t = np.asarray(ctx.t, dtype=np.int64)
        valid = t != ctx.ignore_index
        y = np.where(valid, t, 0)
        wy = np.where(valid, 1.0 if ctx.w is None else np.asarray(ctx.w, np.float64)[y], 0.0)
        coef = -wy * grad_output.numpy()
        if ctx.reduction == "mean":
            denom = wy.sum()
            coef = coef / denom if denom != 0 else np.full_like(coef, np.nan)
        coef = np.where(valid, coef, 0.0)  # ignored samples: zero, even for a 0/0 mean
        gx = np.zeros(ctx.shape, dtype=ctx.dtype)
        np.put_along_axis(gx, np.expand_dims(y, axis), np.expand_dims(coef, axis).astype(gx.dtype),
                          axis=axis)
        return torch.from_numpy(gx), None, None, None, None


def softmax(x, axis, dtype, where, use_log):
    return _Softmax.apply(x, axis, dtype, where, use_log)


def logsumexp(x, axis, keepdims, where):
    return _LogSumExp.apply(x, axis, keepdims, where)


def cross_entropy(logits, target, weight, ignore_index, reduction, label_smoothing,
                  sample_weight=None):
    return _CrossEntropy.apply(logits, target, weight, ignore_index, reduction, label_smoothing,
                               sample_weight)


def nll_loss(log_probs, target, weight, ignore_index, reduction):
    return _NLLLoss.apply(log_probs, target, weight, ignore_index, reduction)
