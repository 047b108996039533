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
# multiply-adds of the fused steps per kernel call (several milliseconds)
CALL_MACS = 1 << 24


def epoch_eligible(ops, state, X, y, blocks):
    """Whether the epoch kernel takes this pass over ``X`` (see the module doc)."""
    return (ENABLED and blocks is None and isinstance(ops, NumpyOps)
            and isinstance(X, np.ndarray) and isinstance(y, np.ndarray)
            and fused_eligible(X, state.W) and state.b.dtype == state.W.dtype)


def _as(a, dtype):
    return None if a is None else np.ascontiguousarray(a, dtype=dtype)


def run_epoch_kernel(state, cfg, X, y, w, bounds, lr, x_rows=None):
    """The steps of `bounds` (``(start, stop)`` in the order taken) on ``(X, y, w)``,
    or on ``X[x_rows]``; updates ``state`` in place, returns the summed batch losses.

    The epoch runs as calls of about `CALL_MACS` multiply-adds; each call checks
    its batches before it writes, and ``state`` holds the parameters and
    velocities of the last completed call if a later one raises."""
    W = state.W
    dtype = W.dtype
    b = np.ascontiguousarray(state.b)
    mu = float(cfg.momentum)
    vW = vb = None
    if mu != 0:
        # the Python step creates a velocity of -lr * grad on its first use: the
        # same as a zero velocity's first update
        vW = np.zeros_like(W) if state.vW is None else _as(state.vW, dtype)
        if cfg.fit_intercept:
            vb = np.zeros_like(b) if state.vb is None else _as(state.vb, dtype)
    pre = state.preconditioner
    offset = _as(pre.offset, dtype) if cfg.fit_intercept else None
    inv_scale2 = _as(pre.inv_scale2, dtype)
    rows, y, w = _as(x_rows, np.int64), _as(y, np.int64), _as(w, np.float64)
    batches = np.asarray(bounds, dtype=np.int64).reshape(-1, 2)
    sizes = batches[:, 1] - batches[:, 0]
    m_max = int(sizes.max()) if sizes.shape[0] else 1
    macs = m_max * X.shape[1] * W.shape[1]
    n_threads = n_threads_for(2 * macs, PARALLEL_MIN_MACS)
    l2 = cfg.alpha * (1.0 - cfg.l1_ratio)
    l1 = cfg.alpha * cfg.l1_ratio
    # the arrays the kernel updates in place are the state's from here on, so
    # that it is consistent between two calls (an interrupted epoch) as well
    state.b, state.vW = b, vW
    if cfg.fit_intercept:
        state.vb = vb  # (as the Python step leaves them: no velocity without momentum)
    total = 0.0
    # calls of about CALL_MACS multiply-adds each: Python gets control back (to
    # raise KeyboardInterrupt, say) every few milliseconds
    per_call = max(1, CALL_MACS // max(macs, 1))
    for first in range(0, max(batches.shape[0], 1), per_call):
        total += kernels.sgd_epoch(
            X, rows, y, w, batches[first:first + per_call], W,
            b if cfg.fit_intercept else None, vW, vb, offset, inv_scale2, float(lr), mu,
            bool(cfg.nesterovs_momentum), float(l2), float(l1), float(cfg.label_smoothing),
            n_threads)
    return total
