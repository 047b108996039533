"""Public softmax, log_softmax, logsumexp and their backward functions.

Each function is a thin front: ``_namespace.get_namespace_and_arrays`` picks
the backend once (its docstring has the table; NumPy arrays of a dask call
are promoted to dask there), and the call goes to the compiled NumPy
kernels (``_softmax_numpy``; CPU arrays of other namespaces through the
zero-copy ``_bridge``, torch tensors that require grad through
``_torch_autograd``), to the CuPy kernels (``_softmax_cupy``, when they cover the
case) or to the pure array-API version (``_softmax_generic``).  Results stay
in the caller's namespace and on its device.
"""

from . import _bridge, _softmax_cupy, _softmax_numpy
from . import _softmax_generic as generic
from ._namespace import AUTOGRAD, BRIDGED, CUPY, GENERIC, NUMPY, get_namespace_and_arrays

__all__ = ["softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward"]


def _softmax_dispatch(x, axis, dtype, where, out, use_log):
    xp, backend, (x, where) = get_namespace_and_arrays(x, where)
    if backend == NUMPY:
        return _softmax_numpy.softmax(x, axis, dtype, where, out, use_log)
    if out is not None:
        raise TypeError("out= is only supported for NumPy arrays")
    if backend in (BRIDGED, AUTOGRAD) and not _bridge.dtype_bridgeable(dtype):
        backend = GENERIC  # e.g. dtype=torch.bfloat16: torch computes it
    if backend == BRIDGED:
        return _bridge.back(xp, x, _softmax_numpy.softmax(
            _bridge.to_numpy(x), axis, _bridge.numpy_dtype(xp, dtype), _bridge.to_numpy(where),
            None, use_log))
    if backend == AUTOGRAD:
        from . import _torch_autograd

        return _torch_autograd.softmax(x, axis, dtype, where, use_log)
    if backend == CUPY:
        res = _softmax_cupy.softmax(xp, x, axis, dtype, where, use_log)
        if res is not None:
            return res
    return generic.softmax(xp, x, axis, dtype, where, use_log)


def softmax(x, /, axis=-1, *, dtype=None, where=None, out=None):
    r"""Softmax of `x` along `axis`: ``exp(x) / sum(exp(x))``, computed stably.

    The maximum along `axis` is subtracted before exponentiating, so large
    inputs neither overflow nor underflow to ``0/0``, and the sum of
    exponentials is accumulated in double precision.

    Parameters
    ----------
    x : array_like
        Input array: a NumPy array or array-like (converted like
        :func:`numpy.asarray`), or an array of any array-API namespace
        (torch, CuPy, JAX, array_api_strict, dask, ...).  Integer and bool
        input is promoted to float64; float16 is computed in float32 and
        returned as float16; complex input raises ``TypeError``.
    axis : int, tuple of int or None, default=-1
        Axis or axes along which the result sums to 1.  ``None`` means all
        axes.  Negative values count from the end (``axis=-3`` on an
        (N, C, H, W) array is ``torch.nn.Softmax2d``).
    dtype : dtype, optional
        If given, `x` is cast to this real floating dtype first (like the
        ``dtype`` argument of :func:`torch.softmax`).
    where : array_like of bool, optional
        Mask broadcastable to `x`.  Entries where it is False are left out of
        the normalisation and get 0; a row with no True entry gives all zeros
        (not NaN).
    out : numpy.ndarray, optional
        NumPy only: array of the result's shape and dtype to write into.  It
        may be `x` itself (an in-place softmax).

    Returns
    -------
    ndarray or array
        Same shape as `x`, in the caller's namespace and on its device
        (`out` when given).

    Raises
    ------
    ValueError
        If `axis` is out of range or repeated (``numpy.exceptions.AxisError``),
        if `where` does not broadcast to `x`, or if `out` has the wrong shape or
        dtype.
    TypeError
        For complex or non-numeric input, a non-floating `dtype`, a non-boolean
        `where`, or `out` given for a non-NumPy array.

    See Also
    --------
    log_softmax : The logarithm of softmax, computed without ``log(softmax)``.
    softmax_backward : Its vector-Jacobian product.
    scipy.special.softmax : SciPy's version (default ``axis=None``).

    Notes
    -----
    Differences from the references: the default ``axis=-1`` follows
    :func:`torch.softmax`, not :func:`scipy.special.softmax` (``axis=None``).
    A row whose entries are all ``-inf`` gives NaN, and a ``+inf`` or NaN
    entry makes its own row NaN, as in SciPy and torch.  The result is
    ``exp(x - max) * (1 / sum)``, within one rounding of the division.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_core import softmax
    >>> softmax(np.array([1.0, 2.0, 3.0])).round(4)
    array([0.09  , 0.2447, 0.6652])
    >>> softmax(np.array([1000.0, 1000.0, 1000.0]))
    array([0.33333333, 0.33333333, 0.33333333])
    >>> softmax(np.array([[1.0, 1.0], [0.0, 5.0]]), axis=0).round(4)
    array([[0.7311, 0.018 ],
           [0.2689, 0.982 ]])
    >>> softmax(np.array([1.0, 2.0, 3.0]), where=np.array([True, False, True])).round(4)
    array([0.1192, 0.    , 0.8808])
    """
    return _softmax_dispatch(x, axis, dtype, where, out, use_log=False)


def log_softmax(x, /, axis=-1, *, dtype=None, where=None, out=None):
    r"""Logarithm of the softmax of `x` along `axis`, computed without ``log(softmax)``.

    The result is ``(x - max) - log(sum(exp(x - max)))``, so it stays finite
    and exact where ``log(softmax(x))`` would give ``-inf`` (for example
    ``log_softmax([1000, 1])`` is ``[0, -999]``).

    Parameters
    ----------
    x : array_like
        Input array of any array-API namespace or a NumPy array-like; dtype
        rules as in :func:`softmax`.
    axis : int, tuple of int or None, default=-1
        Axis or axes along which ``exp(result)`` sums to 1; ``None`` means all.
    dtype : dtype, optional
        If given, `x` is cast to this real floating dtype first.
    where : array_like of bool, optional
        Mask broadcastable to `x`; entries where it is False are left out of
        the normalisation and get ``-inf`` (a fully masked row is all
        ``-inf``).
    out : numpy.ndarray, optional
        NumPy only: array of the result's shape and dtype to write into; it
        may be `x` itself.

    Returns
    -------
    ndarray or array
        Same shape as `x`, in the caller's namespace and on its device.

    Raises
    ------
    ValueError
        For an out-of-range or repeated `axis`, a `where` that does not
        broadcast, or an `out` of the wrong shape or dtype.
    TypeError
        For complex or non-numeric input, a non-floating `dtype`, a non-boolean
        `where`, or `out` given for a non-NumPy array.

    See Also
    --------
    softmax : ``exp`` of this function.
    log_softmax_backward : Its vector-Jacobian product.
    scipy.special.log_softmax : SciPy's version (default ``axis=None``).

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_core import log_softmax
    >>> log_softmax(np.array([1000.0, 1.0]))
    array([   0., -999.])
    >>> log_softmax(np.array([[0.0, 0.0]]))
    array([[-0.69314718, -0.69314718]])
    """
    return _softmax_dispatch(x, axis, dtype, where, out, use_log=True)


def logsumexp(x, /, axis=-1, *, b=None, keepdims=False, return_sign=False, where=None):
    r"""``log(sum(b * exp(x)))`` along `axis`, computed without overflow.

    Parameters
    ----------
    x : array_like
        Input array of any array-API namespace or a NumPy array-like; dtype
        rules as in :func:`softmax`.
    axis : int, tuple of int or None, default=-1
        Axis or axes to reduce; ``None`` reduces all axes.
    b : array_like, optional
        Weights broadcastable to `x`, as in :func:`scipy.special.logsumexp`.
        They may be negative; an entry with weight 0 adds nothing even when it
        is ``inf`` or NaN.
    keepdims : bool, default=False
        Keep the reduced axes as axes of length one.
    return_sign : bool, default=False
        If True, return ``(log|sum|, sign(sum))``.  If False, a negative sum
        gives NaN.
    where : array_like of bool, optional
        Mask broadcastable to `x`; entries where it is False are left out.

    Returns
    -------
    res : ndarray or array
        The reduced result (``-inf`` for an empty reduction).
    sign : ndarray or array
        Only when `return_sign` is True: +1, 0 or -1 (NaN where `res` is NaN).

    Raises
    ------
    ValueError
        For an out-of-range or repeated `axis`, or a `b` or `where` that does
        not broadcast to `x`.
    TypeError
        For complex or non-numeric input or a non-boolean `where`.

    See Also
    --------
    scipy.special.logsumexp : The reference semantics for `b` and `return_sign`.

    Notes
    -----
    Differences from SciPy: the default is ``axis=-1`` (SciPy reduces all
    axes by default); the sign of an empty reduction is 0, not -1, the same
    as for a row of ``-inf``; and entries with weight 0 are removed before
    the reduction, so they never matter: ``logsumexp([inf, inf], b=[0, 1])``
    is ``inf`` and ``logsumexp([inf, 1], b=[0, 0])`` is ``-inf``, where SciPy
    1.17 returns NaN in such mixed cases.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_core import logsumexp
    >>> logsumexp(np.array([1000.0, 1000.0])).round(6)
    np.float64(1000.693147)
    >>> logsumexp(np.array([[0.0, 0.0], [1.0, 1.0]]), axis=None).round(6)
    np.float64(2.006409)
    >>> logsumexp(np.array([1.0, 2.0]), b=np.array([1.0, -1.0]), return_sign=True)
    (np.float64(1.5413248546129181), np.float64(-1.0))
    """
    xp, backend, (x, b, where) = get_namespace_and_arrays(x, b, where)
    if backend == NUMPY and b is None:
        return _softmax_numpy.logsumexp(x, axis, keepdims, return_sign, where)
    if backend == BRIDGED:
        return _bridge.back(xp, x, logsumexp(
            _bridge.to_numpy(x), axis, b=_bridge.to_numpy(b), keepdims=keepdims,
            return_sign=return_sign, where=_bridge.to_numpy(where)))
    if backend == AUTOGRAD and b is None and not return_sign:
        from . import _torch_autograd

        return _torch_autograd.logsumexp(x, axis, keepdims, where)
    if backend == NUMPY:
        import numpy as np

        with np.errstate(all="ignore"):  # inf * 0 and friends are handled, and silent
            res = generic.logsumexp(np, np.asarray(x), axis, np.asarray(b), keepdims,
                                    return_sign, None if where is None else np.asarray(where))
        return tuple(r[()] for r in res) if return_sign else res[()]
    if backend == CUPY and b is None and where is None and not return_sign:
        res = _softmax_cupy.logsumexp(xp, x, axis, keepdims)
        if res is not None:
            return res
    return generic.logsumexp(xp, x, axis, b, keepdims, return_sign, where)


def softmax_backward(grad_output, output, /, axis=-1):
    r"""Vector-Jacobian product of :func:`softmax`, given its output.

    For ``y = softmax(x, axis)`` and an upstream gradient ``g``, returns
    ``dL/dx = y * (g - sum(g * y, axis))``.  Use it to wire softmax into any
    autograd system.

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to the softmax output.
    output : array_like
        The forward result ``softmax(x, axis=axis)``; same shape as
        `grad_output`.
    axis : int, tuple of int or None, default=-1
        The axis (or axes) the forward softmax was taken over.

    Returns
    -------
    ndarray or array
        Gradient with respect to the softmax input, same shape as `output`.

    Raises
    ------
    ValueError
        If the shapes differ or `axis` is out of range.
    TypeError
        For complex or non-numeric input.

    See Also
    --------
    log_softmax_backward : The same for :func:`log_softmax`.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_core import softmax, softmax_backward
    >>> y = softmax(np.array([0.0, 0.0]))
    >>> softmax_backward(np.array([1.0, 0.0]), y)
    array([ 0.25, -0.25])
    """
    xp, backend, (grad_output, output) = get_namespace_and_arrays(grad_output, output)
    if backend == NUMPY:
        return _softmax_numpy.softmax_backward(grad_output, output, axis, use_log=False)
    if backend == BRIDGED:
        return _bridge.back(xp, grad_output, _softmax_numpy.softmax_backward(
            _bridge.to_numpy(grad_output), _bridge.to_numpy(output), axis, use_log=False))
    return generic.softmax_backward(xp, grad_output, output, axis)


def log_softmax_backward(grad_output, output, /, axis=-1):
    r"""Vector-Jacobian product of :func:`log_softmax`, given its output.

    For ``y = log_softmax(x, axis)`` and an upstream gradient ``g``, returns
    ``dL/dx = g - exp(y) * sum(g, axis)``.

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to the log_softmax output.
    output : array_like
        The forward result ``log_softmax(x, axis=axis)``; same shape as
        `grad_output`.
    axis : int, tuple of int or None, default=-1
        The axis (or axes) the forward log_softmax was taken over.

    Returns
    -------
    ndarray or array
        Gradient with respect to the log_softmax input, same shape as `output`.

    Raises
    ------
    ValueError
        If the shapes differ or `axis` is out of range.
    TypeError
        For complex or non-numeric input.

    See Also
    --------
    softmax_backward : The same for :func:`softmax`.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_core import log_softmax, log_softmax_backward
    >>> y = log_softmax(np.array([0.0, 0.0]))
    >>> log_softmax_backward(np.array([1.0, 0.0]), y)
    array([ 0.5, -0.5])
    """
    xp, backend, (grad_output, output) = get_namespace_and_arrays(grad_output, output)
    if backend == NUMPY:
        return _softmax_numpy.softmax_backward(grad_output, output, axis, use_log=True)
    if backend == BRIDGED:
        return _bridge.back(xp, grad_output, _softmax_numpy.softmax_backward(
            _bridge.to_numpy(grad_output), _bridge.to_numpy(output), axis, use_log=True))
    return generic.log_softmax_backward(xp, grad_output, output, axis)
