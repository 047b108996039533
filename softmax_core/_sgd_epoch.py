"""A whole epoch of dense NumPy SGD steps in one kernel call (``kernels.sgd_epoch``).

Design: `run_batches` (``_sgd.py``) hands an epoch here when every step would
take the fused linear kernel (dense C-contiguous NumPy rows of the weights'
dtype, up to ``FUSED_MAX_CLASSES`` classes, the NumPy ops): the kernel
(src/sgd_epoch.pxi) runs the same steps as `batch_step` -- the fused
loss and gradients, the L2 term, the preconditioner, (Nesterov) momentum
and the elastic net's proximal step -- without returning to Python between
batches.  In Python each batch cost about 25 us around the kernel, more
than the fused step itself at 100 features and batch 256.  Everything else
(sparse rows, other namespaces, wider models) keeps the step of
``_sgd_steps.py``, which stays the reference of these semantics.

``ENABLED`` turns the kernel off (the tests compare the two paths).
"""

import numpy as np

from ._native import kernels
from ._sgd_steps import NumpyOps, fused_eligible
from ._threads import PARALLEL_MIN_MACS, n_threads_for

__all__ = ["ENABLED", "epoch_eligible", "run_epoch_kernel"]

ENABLED = True


def epoch_eligible(ops, state, X, y, blocks):
    """Whether the epoch kernel takes this pass over ``X`` (see the module doc)."""
    return (ENABLED and blocks is None and isinstance(ops, NumpyOps)
            and isinstance(X, np.ndarray) and isinstance(y, np.ndarray)
            and fused_eligible(X, state.W) and state.b.dtype == state.W.dtype)


def _as(a, dtype):
    return None if a is None else np.ascontiguousarray(a, dtype=dtype)


def run_epoch_kernel(state, cfg, X, y, w, bounds, lr, x_rows=None):
    """The steps of `bounds` (``(start, stop)`` in the order taken) on ``(X, y, w)``,
    or on ``X[x_rows]``; updates ``state`` in place, returns the summed batch losses."""
    W = state.W
    dtype = W.dtype
    if not state.b.flags.c_contiguous:
        state.b = np.ascontiguousarray(state.b)
    mu = float(cfg.momentum)
    bias = state.b if cfg.fit_intercept else None
    vW = vb = None
    if mu == 0:
        state.vW = state.vb = None  # as the Python step leaves them
    else:
        # the Python step creates a velocity of -lr * grad on its first use: the
        # same as a zero velocity's first update
        state.vW = vW = np.zeros_like(W) if state.vW is None else _as(state.vW, dtype)
        if cfg.fit_intercept:
            state.vb = vb = (np.zeros_like(state.b) if state.vb is None
                             else _as(state.vb, dtype))
    pre = state.preconditioner
    offset = _as(pre.offset, dtype) if cfg.fit_intercept else None
    batches = np.asarray(bounds, dtype=np.int64).reshape(-1, 2)
    m_max = int((batches[:, 1] - batches[:, 0]).max()) if batches.shape[0] else 1
    l2 = cfg.alpha * (1.0 - cfg.l1_ratio)
    l1 = cfg.alpha * cfg.l1_ratio
    return kernels.sgd_epoch(
        X, _as(x_rows, np.int64), _as(y, np.int64), _as(w, np.float64), batches,
        W, bias, vW, vb, offset, _as(pre.inv_scale2, dtype), float(lr), mu,
        bool(cfg.nesterovs_momentum), float(l2), float(l1), float(cfg.label_smoothing),
        n_threads_for(2 * m_max * X.shape[1] * W.shape[1], PARALLEL_MIN_MACS))
