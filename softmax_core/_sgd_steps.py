"""One minibatch step of SGD on the softmax cross-entropy: dense, and lazy for sparse rows.

Design: the optimizer works on ``W`` of shape (n_features, n_classes) (the
transposed coefficients, so that both products and the update run on
row-major arrays) and ``b`` of shape (n_classes,), in the namespace of ``X``.
One dense step on a batch ``Xb`` of ``m`` rows is

* ``Z = Xb @ W + b``,
* ``loss, G = cross_entropy_rows(Z, yb, ...)`` (the fused kernel, gradient
  scaled by ``1/m`` while written),
* ``gW = Xb.T @ G + l2 * W``, ``gb = sum(G)``,
* the fixed diagonal preconditioner of ``_preconditioner.py`` on ``(gW, gb)``,
* a (Nesterov) momentum step ``v = mu * v - lr * g`` and, for the elastic net,
  the proximal soft-threshold (per row ``lr * l1 / s**2`` when preconditioned).

For C-contiguous NumPy batches of the weights' dtype with up to
``FUSED_MAX_CLASSES`` classes (and ``FUSED_MAX_WEIGHTS`` weights) the first three
lines are one kernel call (``kernels.linear_cross_entropy``,
src/linear_step.pxi): both products run on blocks of 8 rows while they are in
L1, with the classes in vector lanes.  At 10 classes, batch 256 and 784
features it is 1.8x faster than two BLAS products and the loss kernel (one
thread; benchmarks/bench_linear_step.py), and a dense fit then calls no BLAS
at all (the epoch objective, `linear_loss`, takes the same kernel without
its gradient).  Wider models (and sparse or non-contiguous batches) keep
the BLAS products.  Where every batch of an epoch takes the fused kernel,
``_sgd_epoch.py`` runs the whole epoch of these steps in one kernel call
(src/sgd_epoch.pxi); `batch_step` stays the reference of their semantics.

The arithmetic is written once against a small set of array operations:
``ArrayOps`` (functional array-API code, any namespace) and ``NumpyOps`` (the
same in place, with the products written into reused buffers), so NumPy
allocates almost nothing per batch and every backend runs the same steps.

Sparse CSR batches without momentum or L1 take the lazy step of
scikit-learn's ``SGDClassifier``: ``W = scale * U``, the L2 decay of every row
is one multiplication of the scalar ``scale``, and only the rows of the
features present in the batch are written (``U[active] -= lr * gA / scale``).
The active columns of each block and the block re-indexed onto them are
computed once per call (``SparseBlocks``), so a step costs O(nnz * n_classes).
"""

import math

import numpy as np
import scipy.sparse as sp

from ._losses import cross_entropy_with_grad
from ._native import kernels
from ._threads import PARALLEL_MIN_MACS, n_threads_for

__all__ = ["NO_IGNORE", "ArrayOps", "NumpyOps", "SparseBlocks", "batch_bounds", "batch_step",
           "fused_eligible", "fused_reads_rows", "lazy_sparse_step", "lazy_eligible",
           "linear_loss"]

# an ignore_index that no encoded class index (0 <= y < C) can equal
NO_IGNORE = -100

# dense batches with at most this many classes take the fused linear step;
# measured against the BLAS products at K = 784, batch 256, one thread: 1.7x
# faster at 10 classes, 1.5x at 100 (benchmarks/README.md)
FUSED_MAX_CLASSES = 128
# ... and at most this many weights (n_features * n_classes): each task of a step
# zeroes and adds a partial gradient of that size (a BLAS product writes one)
FUSED_MAX_WEIGHTS = 1 << 20

# fold the lazy scale into U before it underflows
_MIN_SCALE = 1e-6


def batch_bounds(n, batch_size):
    """``(start, stop)`` of ``ceil(n / batch_size)`` batches whose sizes differ by at most 1.

    Equal sizes matter: each step averages its batch, so a short last batch
    (say 4 rows after batches of 32) would weigh each of its rows 8 times as
    much, and SGD would converge to the optimum of that reweighted objective.
    """
    n_batches = -(-n // batch_size)
    sizes = np.full(n_batches, n // n_batches)
    sizes[: n % n_batches] += 1
    stops = np.cumsum(sizes)
    return list(zip((stops - sizes).tolist(), stops.tolist(), strict=True))


class ArrayOps:
    """Array arithmetic of one step for any namespace; every call returns a new array."""

    def __init__(self, xp):
        self.xp = xp

    def forward(self, Xb, W, b):
        Z = Xb @ W
        return Z if b is None else Z + b

    def backward(self, Xb, G):
        return Xb.T @ G

    def column_sums(self, G):
        return self.xp.sum(G, axis=0)

    def loss_and_grad(self, Z, yb, wb, label_smoothing, grad_scale):
        """Summed (weighted) cross-entropy of a batch and ``grad_scale`` times its gradient."""
        loss, G = cross_entropy_with_grad(Z, yb, reduction="sum", sample_weight=wb,
                                          label_smoothing=label_smoothing)
        return loss, G * grad_scale

    def loss_and_grads(self, Xb, W, b, yb, wb, label_smoothing, grad_scale, rows=None):
        """Summed loss of the linear model on a batch, and ``grad_scale`` times its
        gradients ``(grad_W, grad_b)`` (``grad_b`` None where ``b`` is None).

        The batch is ``Xb``, or ``Xb[rows]`` where ``rows`` (row indices) is given."""
        if rows is not None:
            Xb = Xb[rows] if sp.issparse(Xb) else self.xp.take(Xb, rows, axis=0)
        Z = self.forward(Xb, W, b)
        loss, G = self.loss_and_grad(Z, yb, wb, label_smoothing, grad_scale)
        return loss, self.backward(Xb, G), None if b is None else self.column_sums(G)

    def scale(self, a, c):
        return a * c

    def axpy(self, c, x, y):
        """``y + c * x``."""
        return y + c * x

    def precondition(self, gW, gb, pre):
        """``gW~ = (gW - outer(mu, gb)) / s**2``, ``gb~ = gb - mu @ gW~``."""
        if pre.offset is not None and gb is not None:
            gW = gW - pre.offset[:, None] * gb[None, :]
        if pre.inv_scale2 is not None:
            gW = gW * pre.inv_scale2[:, None]
        if pre.offset is not None and gb is not None:
            gb = gb - pre.offset @ gW
        return gW, gb

    def copy(self, a):
        return self.xp.asarray(a, copy=True)


class NumpyOps(ArrayOps):
    """The same for NumPy, in place: products go into reused buffers and ``scale``
    and ``axpy`` overwrite their array argument (a scratch array or a parameter
    that the optimizer owns), so a step allocates almost nothing."""

    def __init__(self):
        super().__init__(np)
        self._buffers = {}

    def _buffer(self, name, shape, dtype):
        buf = self._buffers.get(name)
        if buf is None or buf.shape[1:] != shape[1:] or buf.shape[0] < shape[0] \
                or buf.dtype != dtype:
            buf = self._buffers[name] = np.empty(shape, dtype=dtype)
        return buf[: shape[0]]

    def forward(self, Xb, W, b):
        if sp.issparse(Xb):
            Z = np.asarray(Xb @ W)
        else:
            Z = np.matmul(Xb, W, out=self._buffer("Z", (Xb.shape[0], W.shape[1]), W.dtype))
        if b is not None:
            Z += b
        return Z

    def backward(self, Xb, G):
        if sp.issparse(Xb):
            return np.asarray(Xb.T @ G)
        # the buffer is consumed by the update before the next batch
        return np.matmul(Xb.T, G, out=self._buffer("grad", (Xb.shape[1], G.shape[1]), G.dtype))

    def loss_and_grad(self, Z, yb, wb, label_smoothing, grad_scale):
        # The fused kernel, called directly: the targets are class indices that
        # the estimator encoded itself (always in [0, C)), so the public
        # function's per-call validation (~40 us on a 256 x 10 batch) is skipped,
        # the gradient goes into a reused buffer and is scaled while written.
        G = self._buffer("G", Z.shape, Z.dtype)
        if wb is not None:
            wb = np.ascontiguousarray(wb, dtype=np.float64)
        loss = kernels.cross_entropy_rows(
            Z, yb, None, wb, label_smoothing, NO_IGNORE, grad_scale, G, None,
            n_threads_for(Z.size))
        return loss, G

    def loss_and_grads(self, Xb, W, b, yb, wb, label_smoothing, grad_scale, rows=None):
        # dense C-contiguous batches of up to FUSED_MAX_CLASSES classes: the
        # fused kernel (src/linear_step.pxi) in place of two BLAS products and
        # the loss kernel; it reads the rows `rows` of Xb in place
        if not fused_eligible(Xb, W):
            return super().loss_and_grads(Xb, W, b, yb, wb, label_smoothing, grad_scale, rows)
        m, c = (Xb.shape[0] if rows is None else rows.shape[0]), W.shape[1]
        Z = self._buffer("Z", (m, c), W.dtype)
        G = self._buffer("G", (m, c), W.dtype)
        grad_W = self._buffer("grad", W.shape, W.dtype)
        grad_b = None if b is None else self._buffer("grad_b", (1, c), W.dtype)[0]
        if wb is not None:
            wb = np.ascontiguousarray(wb, dtype=np.float64)
        loss = kernels.linear_cross_entropy(
            Xb, W, b, yb, wb, label_smoothing, grad_scale, Z, G, grad_W, grad_b,
            n_threads_for(2 * m * Xb.shape[1] * c, PARALLEL_MIN_MACS), rows=rows)
        return loss, grad_W, grad_b

    def _ones(self, n, dtype):
        ones = self._buffers.get("ones")
        if ones is None or ones.shape[0] < n or ones.dtype != dtype:
            ones = self._buffers["ones"] = np.ones(max(n, 256), dtype=dtype)
        return ones[:n]

    def column_sums(self, G):
        # a BLAS product: several times faster than np.sum(G, axis=0) for a (256, 10) G
        return self._ones(G.shape[0], G.dtype) @ G

    def scale(self, a, c):
        a *= c
        return a

    def axpy(self, c, x, y):
        # no temporary per call: where glibc returns freed memory at once (dask
        # workers start with MALLOC_TRIM_THRESHOLD_=65536), each one would be
        # faulted in again (bench_dask.py measured fits 1.5-2.5x slower)
        tmp = self._buffer(f"axpy{x.ndim}", x.shape, y.dtype)
        np.multiply(x, c, out=tmp)
        y += tmp
        return y

    def precondition(self, gW, gb, pre):
        centered = pre.offset is not None and gb is not None
        if centered:
            gW -= np.multiply.outer(pre.offset, gb,
                                    out=self._buffer("outer", gW.shape, gW.dtype))
        if pre.inv_scale2 is not None:
            gW *= pre.inv_scale2[:, None]
        if centered:
            gb -= np.matmul(pre.offset, gW, out=self._buffer("shift", gb.shape, gb.dtype))
        return gW, gb

    def copy(self, a):
        return a.copy()


def fused_reads_rows(X, n_classes):
    """Whether the fused linear kernel takes the NumPy rows ``X`` with ``n_classes``
    classes (dense, C-contiguous, a model of at most ``FUSED_MAX_WEIGHTS`` weights)."""
    return (not sp.issparse(X) and X.ndim == 2 and n_classes <= FUSED_MAX_CLASSES
            and X.shape[1] * n_classes <= FUSED_MAX_WEIGHTS and X.flags.c_contiguous)


def fused_eligible(X, W):
    """Whether the fused linear kernel takes NumPy rows ``X`` and weights ``W``."""
    return fused_reads_rows(X, W.shape[1]) and X.dtype == W.dtype and W.flags.c_contiguous


def linear_loss(X, W, b, y, w, label_smoothing, scratch=None):
    """Summed (``w``-weighted) cross-entropy of ``X @ W + b`` on NumPy rows (dense
    or sparse), or inf where a logit is not finite.

    ``scratch`` (a dict, or None): buffers kept between calls on the same
    rows, so that on the fused kernel's path the objective of every epoch
    allocates no logits (the BLAS path still does).

    Dense rows take the fused kernel without its gradient, so that a fit on
    them calls no BLAS at all: OpenBLAS's worker threads spin for about
    0.1 s after each multi-threaded product, and one product per epoch (this
    objective) kept the second core busy for a whole fit of 40 ms epochs.
    """
    if fused_eligible(X, W):
        shape = (X.shape[0], W.shape[1])
        scratch = {} if scratch is None else scratch
        Z = scratch.get("Z")
        if Z is None or Z.shape != shape or Z.dtype != W.dtype:
            Z = scratch["Z"] = np.empty(shape, dtype=W.dtype)
            scratch["finite"] = np.empty(shape, dtype=bool)
        total = kernels.linear_cross_entropy(
            X, W, b, y, w, label_smoothing, 1.0, Z, None, None, None,
            n_threads_for(X.size * W.shape[1], PARALLEL_MIN_MACS))
        return total if np.isfinite(Z, out=scratch["finite"]).all() else math.inf
    Z = X @ W
    if b is not None:
        Z = Z + b
    Z = np.ascontiguousarray(Z)
    if not np.isfinite(Z).all():
        return math.inf
    return kernels.cross_entropy_rows(Z, y, None, w, label_smoothing, NO_IGNORE, 1.0, None, None,
                                      n_threads_for(Z.size))


def _momentum_step(ops, param, velocity, grad, lr, mu, nesterov):
    """SGD step (scikit-learn's MLP formulation); ``grad`` may be overwritten."""
    if mu == 0:
        return ops.axpy(-lr, grad, param), None
    if velocity is None:
        velocity = ops.scale(ops.copy(grad), -lr)
    else:
        velocity = ops.axpy(-lr, grad, ops.scale(velocity, mu))
    if nesterov:  # param + mu * v - lr * g
        return ops.axpy(-lr, grad, ops.axpy(mu, velocity, param)), velocity
    return ops.axpy(1.0, velocity, param), velocity


def _soft_threshold(xp, W, threshold):
    shrunk = xp.abs(W) - threshold
    return xp.where(shrunk > 0, xp.sign(W) * shrunk, xp.zeros_like(W))


def batch_step(ops, state, cfg, pre, Xb, yb, wb, lr, rows=None):
    """One SGD step on the batch ``Xb`` (or ``Xb[rows]``); returns its summed (weighted) loss."""
    m = Xb.shape[0] if rows is None else rows.shape[0]
    loss, grad_W, grad_b = ops.loss_and_grads(Xb, state.W,
                                              state.b if cfg.fit_intercept else None, yb, wb,
                                              cfg.label_smoothing, 1.0 / m, rows)
    l2 = cfg.alpha * (1.0 - cfg.l1_ratio)
    if l2 > 0:
        grad_W = ops.axpy(l2, state.W, grad_W)
    if not pre.is_identity:
        grad_W, grad_b = ops.precondition(grad_W, grad_b, pre)
    mu, nesterov = cfg.momentum, cfg.nesterovs_momentum
    state.W, state.vW = _momentum_step(ops, state.W, state.vW, grad_W, lr, mu, nesterov)
    if cfg.fit_intercept:
        state.b, state.vb = _momentum_step(ops, state.b, state.vb, grad_b, lr, mu, nesterov)
    l1 = cfg.alpha * cfg.l1_ratio
    if l1 > 0:
        threshold = lr * l1 if pre.inv_scale2 is None else (lr * l1) * pre.inv_scale2[:, None]
        before = state.W
        state.W = _soft_threshold(ops.xp, before, threshold)
        moved = state.W - before
        if pre.offset is not None and cfg.fit_intercept:
            # the prox acts on the standardized coefficients with their intercept
            # fixed: b = c - mu @ W moves with W
            shift = pre.offset @ moved
            state.b = state.b - shift
            if state.vb is not None:
                state.vb = state.vb - shift
        if state.vW is not None:
            # the velocity is the displacement of the parameters, the prox's included;
            # else the fixed point is the optimum for l1 * (1 - momentum)
            state.vW = state.vW + moved
    return loss


def lazy_eligible(xp, X, cfg, pre):
    """Whether the lazy sparse step applies (NumPy CSR, no momentum, no L1, identity)."""
    return (xp is np and sp.issparse(X) and cfg.momentum == 0 and cfg.l1_ratio == 0
            and pre.is_identity)


class SparseBlocks:
    """Per block of ``batch_size`` rows of a CSR ``X``: its rows and its active columns.

    ``block(start)`` returns ``(Xb, active, Xc_T)``: the CSR rows, the sorted
    indices of the columns with a stored entry, and the block re-indexed onto
    those columns, transposed (``Xc_T @ G`` is the gradient of the active rows).
    """

    def __init__(self, X, batch_size):
        self._blocks = {}
        n = X.shape[0]
        for start, stop in batch_bounds(n, batch_size):
            Xb = X[start:stop]
            active, inverse = np.unique(Xb.indices, return_inverse=True)
            Xc = sp.csr_matrix((Xb.data, inverse.astype(Xb.indices.dtype), Xb.indptr),
                               shape=(Xb.shape[0], active.shape[0]))
            self._blocks[start] = (Xb, active, Xc.T.tocsr())

    def block(self, start):
        return self._blocks[start]


class LazyScale:
    """``W = scale * U`` during an epoch of lazy sparse steps (U is ``state.W``)."""

    def __init__(self):
        self.scale = 1.0

    def fold(self, state):
        if self.scale != 1.0:
            state.W *= self.scale
            self.scale = 1.0


def lazy_sparse_step(ops, state, cfg, lazy, block, yb, wb, lr):
    """The sparse step of the module doc; numerically the dense step without momentum."""
    Xb, active, Xc_T = block
    U = state.W
    Z = np.asarray(Xb @ U)
    if lazy.scale != 1.0:
        Z *= lazy.scale
    if cfg.fit_intercept:
        Z += state.b
    loss, G = ops.loss_and_grad(np.ascontiguousarray(Z), yb, wb, cfg.label_smoothing,
                                1.0 / Xb.shape[0])
    l2 = cfg.alpha
    decay = 1.0 - lr * l2
    if decay <= 0:  # the decay alone flips the sign: not representable by a scale
        lazy.fold(state)
        U *= decay
    else:
        lazy.scale *= decay
    if active.shape[0]:
        gA = np.asarray(Xc_T @ G)
        U[active] -= (lr / lazy.scale) * gA
    if cfg.fit_intercept:
        state.b -= lr * ops.column_sums(G)
    if lazy.scale < _MIN_SCALE:
        lazy.fold(state)
    return loss
