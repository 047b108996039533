"""Public loss functions: nll_loss, cross_entropy and cross_entropy_with_grad.

Each function is a thin front: ``_namespace.get_namespace_and_arrays`` picks
the backend once (its docstring has the table) and promotes NumPy arrays of a
dask call to dask.  CPU arrays of other namespaces are
viewed as NumPy arrays (``_bridge``) and the call is made again with them;
torch tensors that require grad go through ``_torch_autograd``.  Otherwise
``_losses_validation`` checks and converts the arguments, then NumPy input
with class-index targets goes to the fused Cython kernel (``_losses_numpy``)
and everything else (probability targets, CuPy, GPU tensors, dask, ...) to
the array-API code (``_losses_generic``), which keeps results in the
caller's namespace and on its device.  The semantics are those of
``torch.nn.functional.nll_loss`` and ``torch.nn.functional.cross_entropy``
(torch 2.13), with the classes on axis 1 (axis 0 for 1-D input).
"""

import numpy as np

from . import _bridge, _losses_cupy, _losses_numpy
from . import _losses_generic as generic
from ._losses_validation import check_loss_inputs
from ._namespace import AUTOGRAD, BRIDGED, CUPY, NUMPY, get_namespace_and_arrays
from ._validation import is_known

__all__ = ["nll_loss", "cross_entropy", "cross_entropy_with_grad"]


def _inputs(xp, backend, logits, target, weight, sample_weight, ignore_index, reduction,
            label_smoothing, allow_prob=True):
    return check_loss_inputs(xp, backend, logits, target, weight=weight,
                             sample_weight=sample_weight, ignore_index=ignore_index,
                             reduction=reduction, label_smoothing=label_smoothing,
                             allow_prob=allow_prob)


def _requires_grad(*arrays):
    """Whether a torch tensor other than the logits requires grad (the autograd
    Functions differentiate with respect to the logits only; such calls take
    the array-API path, where torch's own autograd sees every operation)."""
    return any(a is not None and getattr(a, "requires_grad", False) for a in arrays)


def _finish(inputs, loss, grad, rows):
    """Results in the caller's shapes and result dtype: from (M, C) rows (``rows``,
    the CuPy kernels) or from the class-last layout of ``_losses_generic``."""
    xp = inputs.xp
    if inputs.reduction == "none" and is_known(inputs.batch_shape):
        # rows to the batch shape; a NumPy scalar of a () batch to a 0-d array
        loss = xp.reshape(xp.asarray(loss), inputs.batch_shape)
    loss = xp.astype(loss, inputs.result_dtype, copy=False)
    if grad is not None:
        if rows:
            grad = generic.from_rows(xp, grad, inputs.x.shape)
        else:
            grad = generic.from_class_last(xp, grad)
        grad = xp.astype(grad, inputs.result_dtype, copy=False)
    return loss, grad


def _quiet():
    """NumPy's floating-point warnings off (for NumPy input and NumPy-backed
    namespaces such as array_api_strict): inf and NaN logits are part of the
    semantics, and torch computes them silently."""
    return np.errstate(all="ignore")


def _kernel_covers(inputs):
    """Whether the fused NumPy kernel serves the call.

    It takes class indices; with label smoothing it needs finite class
    weights (it forms ``sum_c w_c (lse - x_c)`` as ``W lse - sum_c w_c x_c``,
    which is ``inf - inf`` for an infinite weight where torch's term by term
    sum is ``inf``), so that rare case takes the array-API path.
    """
    if inputs.backend != NUMPY or inputs.kind != "index":
        return False
    return (inputs.label_smoothing == 0 or inputs.weight is None
            or bool(np.isfinite(inputs.weight).all()))


def _numpy_scalar(inputs, loss):
    """A full reduction of NumPy input as a NumPy scalar (as ``np.sum`` returns), not 0-d."""
    if inputs.backend == NUMPY and inputs.reduction != "none":
        return loss[()]
    return loss


def _cross_entropy(inputs, want_grad):
    if _kernel_covers(inputs):
        return _losses_numpy.cross_entropy(inputs, want_grad)
    if inputs.backend == CUPY and want_grad:
        res = _losses_cupy.cross_entropy_with_grad(inputs)
        if res is not None:
            return _finish(inputs, *res, rows=True)
    with _quiet():
        return _cross_entropy_generic(inputs, want_grad)


def _cross_entropy_generic(inputs, want_grad):
    xp = inputs.xp
    target = inputs.target
    if inputs.kind == "prob":
        target = generic.class_last(xp, target)
    loss, grad = generic.cross_entropy(
        xp, generic.class_last(xp, inputs.x), target, kind=inputs.kind, weight=inputs.weight,
        ignore_index=inputs.ignore_index, reduction=inputs.reduction,
        label_smoothing=inputs.label_smoothing, sample_weight=inputs.sample_weight,
        want_grad=want_grad)
    return _finish(inputs, loss, grad, rows=False)


def nll_loss(log_probs, target, /, *, weight=None, ignore_index=-100, reduction="mean"):
    r"""Negative log-likelihood loss of log-probabilities and class indices.

    For each sample ``n`` the loss is ``l_n = -weight[y_n] * log_probs[n, y_n]``
    (0 where ``y_n == ignore_index``), exactly as
    :func:`torch.nn.functional.nll_loss`.

    Parameters
    ----------
    log_probs : array_like
        Log-probabilities of shape (C,), (N, C) or (N, C, d1, ..., dk): the
        classes are on axis 1 (axis 0 for 1-D input), e.g. the output of
        ``log_softmax(x, axis=1)``.  NumPy arrays and array-likes, or arrays of
        any array-API namespace (torch, CuPy, array_api_strict, ...).
        Integer input is promoted to float64.
    target : array_like of int
        Class indices of shape (), (N,) or (N, d1, ..., dk): the input's shape
        without its class axis.  Each is in ``[0, C)`` or equals
        `ignore_index`.
    weight : array_like, optional
        Weight of each class, shape (C,).  Default: all ones.
    ignore_index : int, default=-100
        Target value whose samples contribute neither to the loss nor to the
        "mean" denominator.  It may be a valid class index.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"none"``: the per-sample losses, of `target`'s shape; ``"sum"``:
        their sum; ``"mean"``: ``sum(l_n) / sum(weight[y_n])`` over the
        samples that are not ignored (NaN when there are none, as torch).

    Returns
    -------
    array or NumPy scalar
        For ``"mean"`` and ``"sum"`` a NumPy scalar (``np.float64``,
        ``np.float32``, ... as :func:`numpy.sum` returns) for NumPy input and a
        0-d array in the input's namespace otherwise; for ``"none"`` an array
        of `target`'s shape.  Always in the input's floating dtype.

    Raises
    ------
    IndexError
        A target outside ``[0, C)`` that is not `ignore_index` (the error is
        also a ``ValueError``; the message names the value and C).
    ValueError
        A floating target, a target whose shape is not the input's batch
        shape, a `weight` not of shape (C,), an unknown `reduction`, or an
        input with no class axis.
    TypeError
        A target that is neither integer nor floating, complex input, or a
        non-integer `ignore_index`.

    See Also
    --------
    cross_entropy : ``nll_loss(log_softmax(x, axis=1), y)`` in one stable step.
    log_softmax : Log-probabilities from logits.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_core import log_softmax, nll_loss
    >>> x = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
    >>> y = np.array([2, 1])
    >>> print(np.round(nll_loss(log_softmax(x, axis=1), y), 6))
    1.560914
    >>> print(np.round(nll_loss(log_softmax(x, axis=1), y, reduction="none"), 6))
    [0.022155 3.099674]
    >>> print(nll_loss(log_softmax(x, axis=1), np.array([-100, -100])))
    nan
    """
    xp, backend, (log_probs, target, weight) = get_namespace_and_arrays(
        log_probs, target, weight)
    if backend == BRIDGED:
        return _bridge.back(xp, log_probs, nll_loss(
            _bridge.to_numpy(log_probs), _bridge.to_numpy(target),
            weight=_bridge.to_numpy(weight), ignore_index=ignore_index, reduction=reduction))
    if backend == AUTOGRAD and not _requires_grad(target, weight):
        from . import _torch_autograd

        return _torch_autograd.nll_loss(log_probs, target, weight, ignore_index, reduction)
    inputs = _inputs(xp, backend, log_probs, target, weight, None, ignore_index, reduction,
                     0.0, allow_prob=False)
    xp = inputs.xp
    with _quiet():
        loss = generic.nll_loss(
            xp, generic.class_last(xp, inputs.x), inputs.target, weight=inputs.weight,
            ignore_index=inputs.ignore_index, reduction=inputs.reduction)
        loss = _finish(inputs, loss, None, rows=False)[0]
    return _numpy_scalar(inputs, loss)


_SHARED_PARAMETERS = r"""
    logits : array_like
        Unnormalised scores of shape (C,), (N, C) or (N, C, d1, ..., dk): the
        classes are on axis 1 (axis 0 for 1-D input).  NumPy arrays and
        array-likes run the compiled kernel; arrays of any other array-API
        namespace (torch, CuPy, array_api_strict, ...) stay in it.  Integer
        input is promoted to float64; float16 is computed in float32.
    target : array_like
        Either integer class indices of shape (), (N,) or (N, d1, ..., dk)
        (the input's shape without its class axis), each in ``[0, C)`` or
        equal to `ignore_index`; or floating class probabilities ("soft
        labels") of exactly the input's shape.
    weight : array_like, optional
        Weight of each class, shape (C,).  Default: all ones.
    ignore_index : int, default=-100
        Class-index target whose samples contribute nothing (loss 0, zero
        gradient) and leave the "mean" denominator.  It may be a valid class.
        With probability targets it must be negative (as in torch).
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"none"``: per-sample losses of `target`'s batch shape; ``"sum"``:
        their sum; ``"mean"``: with class indices ``sum(l_n) /
        sum(weight[y_n])`` over the samples not ignored (NaN when that sum is
        0, as torch); with probabilities the sum divided by the number of
        samples ``N * d1 * ... * dk``, whatever `weight` is (torch's rule).
    label_smoothing : float in [0, 1], default=0.0
        Mix the target with the uniform distribution, ``(1 - eps) * target +
        eps / C``, exactly as torch does: with class indices and `weight`,
        ``l_n = (1 - eps) w[y_n] (-log p[n, y_n]) + eps / C * sum_c w_c
        (-log p[n, c])``; ignored samples stay at 0 and the "mean"
        denominator stays ``sum(w[y_n])``."""


def cross_entropy(logits, target, /, *, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, sample_weight=None):
    if weight is None and sample_weight is None:
        res = _losses_numpy.common_call(logits, target, ignore_index, reduction,
                                        label_smoothing, want_grad=False)
        if res is not None:
            return res[0]
    xp, backend, (logits, target, weight, sample_weight) = get_namespace_and_arrays(
        logits, target, weight, sample_weight)
    if backend == BRIDGED:
        return _bridge.back(xp, logits, cross_entropy(
            _bridge.to_numpy(logits), _bridge.to_numpy(target), weight=_bridge.to_numpy(weight),
            ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing,
            sample_weight=_bridge.to_numpy(sample_weight)))
    if backend == AUTOGRAD and not _requires_grad(target, weight, sample_weight):
        from . import _torch_autograd

        return _torch_autograd.cross_entropy(logits, target, weight, ignore_index, reduction,
                                             label_smoothing, sample_weight)
    inputs = _inputs(xp, backend, logits, target, weight, sample_weight, ignore_index,
                     reduction, label_smoothing)
    return _numpy_scalar(inputs, _cross_entropy(inputs, want_grad=False)[0])


_SAMPLE_WEIGHT_PARAMETER = "\n" + """    sample_weight : array_like, optional
        Non-negative weight of each sample, of the batch shape (N,) (or (N,)
        for (N, d1, ..., dk) targets, applied to every position of sample n;
        shape () for 1-D input).  torch has no such argument; here it is
        defined as a multiplier of each per-sample loss ``l_n`` (``l_n``
        already includes ``weight[y_n]`` and label smoothing): ``"none"``
        gives ``s_n * l_n``, ``"sum"`` gives ``sum(s_n * l_n)``, and
        ``"mean"`` normalises by the total weight, ``sum(s_n * l_n) /
        sum(s_n * weight[y_n])`` over the samples not ignored with class
        indices, and ``sum(s_n * l_n) / sum(s_n)`` with probabilities.  With
        all ``s_n == 1`` this is the torch result; with integer ``s_n`` it
        equals repeating sample n ``s_n`` times.  The gradient is that of
        this loss."""


cross_entropy.__doc__ = r"""Cross-entropy between logits and class indices or probabilities.

    The loss of sample ``n`` is ``logsumexp(x_n) - x[n, y_n]`` for a class
    index (``-sum_c t[n, c] log p[n, c]`` for probabilities), with torch's
    `weight`, `ignore_index`, `reduction` and `label_smoothing` semantics
    (:func:`torch.nn.functional.cross_entropy`, torch 2.13).  It is computed
    from ``x - max(x)`` and a logsumexp, never as ``log(softmax(x))``, so
    logits of +-1e4 give exact, finite losses; NaN logits give NaN losses for
    their own samples.

    Parameters
    ----------""" + _SHARED_PARAMETERS + _SAMPLE_WEIGHT_PARAMETER + r"""

    Returns
    -------
    array or NumPy scalar
        For ``"mean"`` and ``"sum"`` a NumPy scalar (``np.float64``,
        ``np.float32``, ... as :func:`numpy.sum` returns) for NumPy input and a
        0-d array in the input's namespace otherwise; for ``"none"`` an array
        of the batch shape.  Always in the input's floating dtype.

    Raises
    ------
    IndexError
        A class index outside ``[0, C)`` that is not `ignore_index` (the
        error is also a ``ValueError``; the message names the value and C).
    ValueError
        A floating target whose shape is not the input's, an integer target
        whose shape is not the input's batch shape, a `weight` not of shape
        (C,), `label_smoothing` outside [0, 1], an unknown `reduction`, or a
        non-negative `ignore_index` with probability targets.
    TypeError
        A target that is neither integer nor floating, complex input, or a
        non-integer `ignore_index`.

    See Also
    --------
    cross_entropy_with_grad : The same loss and its gradient in one pass.
    nll_loss : The loss from log-probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_core import cross_entropy
    >>> x = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
    >>> y = np.array([2, 1])
    >>> print(np.round(cross_entropy(x, y), 6))
    1.560914
    >>> type(cross_entropy(x, y)), type(cross_entropy(x.astype(np.float32), y))
    (<class 'numpy.float64'>, <class 'numpy.float32'>)
    >>> print(np.round(cross_entropy(x, y, weight=np.array([1.0, 2.0, 1.0])), 6))
    2.073834
    >>> print(np.round(cross_entropy(x, y, label_smoothing=0.1, reduction="none"), 6))
    [0.338822 2.99634 ]

    Probability targets ("soft labels") have the input's shape:

    >>> t = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    >>> print(np.round(cross_entropy(x, t), 6))
    1.560914

    Large logits stay finite and exact:

    >>> print(cross_entropy(np.array([[1e4, -1e4, 0.0]]), np.array([1])))
    20000.0
    """


def cross_entropy_with_grad(logits, target, /, *, weight=None, ignore_index=-100,
                            reduction="mean", label_smoothing=0.0, sample_weight=None):
    if weight is None and sample_weight is None:
        res = _losses_numpy.common_call(logits, target, ignore_index, reduction,
                                        label_smoothing, want_grad=True)
        if res is not None:
            return res
    xp, backend, (logits, target, weight, sample_weight) = get_namespace_and_arrays(
        logits, target, weight, sample_weight)
    if backend in (BRIDGED, AUTOGRAD):  # the gradient is returned, not taken
        return _bridge.back(xp, logits, cross_entropy_with_grad(
            _bridge.to_numpy(logits), _bridge.to_numpy(target), weight=_bridge.to_numpy(weight),
            ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing,
            sample_weight=_bridge.to_numpy(sample_weight)))
    inputs = _inputs(xp, backend, logits, target, weight, sample_weight, ignore_index,
                     reduction, label_smoothing)
    loss, grad = _cross_entropy(inputs, want_grad=True)
    return _numpy_scalar(inputs, loss), grad


cross_entropy_with_grad.__doc__ = r"""Cross-entropy and its gradient with respect to the logits.

    The loss is :func:`cross_entropy`'s (same options) and the gradient is
    what torch autograd gives for it: for class index ``y`` and no options,
    ``softmax(x) - onehot(y)`` per sample, divided by N for ``"mean"``.  For
    NumPy input with class indices both come from one fused pass of a
    compiled kernel per row (max, exp-sum, loss, gradient), the kernel a
    training loop needs.

    Parameters
    ----------""" + _SHARED_PARAMETERS + _SAMPLE_WEIGHT_PARAMETER + r"""

    Returns
    -------
    loss : array
        As :func:`cross_entropy` returns (times `sample_weight`).
    grad : array
        Gradient d loss / d logits (of the sum of the losses for ``"none"``): the
        logits' shape and floating dtype.  Ignored samples get zeros.  When
        the "mean" denominator is 0 the loss is NaN and so is the gradient of
        every sample that is not ignored, as torch's autograd gives.

    Raises
    ------
    IndexError
        A class index outside ``[0, C)`` that is not `ignore_index` (the
        error is also a ``ValueError``; the message names the value and C).
    ValueError
        As :func:`cross_entropy`, and a `sample_weight` of the wrong shape,
        negative or NaN.
    TypeError
        As :func:`cross_entropy`.

    See Also
    --------
    cross_entropy : The loss alone.
    softmax : ``softmax(x) - onehot(y)`` is the unweighted gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_core import cross_entropy_with_grad, softmax
    >>> x = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
    >>> y = np.array([2, 1])
    >>> loss, grad = cross_entropy_with_grad(x, y, reduction="sum")
    >>> print(np.round(loss, 6))
    3.121829
    >>> print(np.round(grad, 4))
    [[ 0.0179  0.004  -0.0219]
     [ 0.0498 -0.9549  0.9051]]
    >>> bool(np.allclose(grad, softmax(x, axis=1) - np.eye(3)[y]))
    True

    `sample_weight` scales each sample; "mean" divides by the total weight:

    >>> loss, grad = cross_entropy_with_grad(x, y, sample_weight=np.array([3.0, 1.0]))
    >>> print(np.round(loss, 6))
    0.791535
    """
