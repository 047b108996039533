"""Minibatch SGD for the multinomial (softmax) cross-entropy of a linear model.

Design: the optimizer works on ``W`` of shape (n_features, n_classes) (the
transposed coefficients, so that both products and the update run on
row-major arrays) and ``b`` of shape (n_classes,), in the namespace of ``X``
(NumPy with scipy.sparse CSR, torch, CuPy, array_api_strict, ...).  One step
on a batch ``Xb`` of ``m`` rows is

* ``Z = Xb @ W + b`` (one BLAS product),
* ``loss, G = cross_entropy_with_grad(Z, yb, reduction="sum", sample_weight=wb)``
  (the fused kernel: softmax and its gradient in one pass),
* ``grad_W = Xb.T @ G / m + l2 * W`` (the second BLAS product), ``grad_b = sum(G) / m``,
* a (Nesterov) momentum step ``v = mu * v - lr * g`` and, for the elastic net,
  the proximal soft-threshold ``W = sign(W) * max(|W| - lr * alpha * l1_ratio, 0)``.

The step is written once against a small set of array operations: ``_ArrayOps``
(functional array-API code, any namespace) and ``_NumpyOps`` (the same in
place, with the products written into reused buffers), so NumPy allocates
almost nothing per batch and every backend runs the same arithmetic.

Sample weights are divided by their mean once, so a batch gradient
``sum_i w_i g_i / m`` is an unbiased estimate of the gradient of the weighted
mean loss ``sum_i w_i l_i / sum_i w_i``, whatever the scale of the weights.

Shuffling never gathers rows per batch: ``X`` is permuted once per call to
:func:`run_sgd` (one copy) and every epoch visits the contiguous blocks of that
copy in a fresh random order, so each batch is a slice (a view for dense
arrays) that stays in cache between the forward and the backward product.

The epoch driver handles the learning-rate schedules (``"constant"``,
``"invscaling"``: ``lr / (epoch + 1) ** power_t``, ``"adaptive"``: divide by 5
after ``n_iter_no_change`` epochs without improvement, stop below 1e-6), the
stopping rule of scikit-learn's SGD estimators (``n_iter_no_change`` epochs
without an improvement of ``tol`` in the training loss, or in the validation
accuracy with early stopping), per-epoch progress, and the divergence check.
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.utils._array_api import device as array_device

from ._losses import cross_entropy_with_grad
from ._native import kernels
from ._threads import n_threads_for

__all__ = [
    "SGDConfig", "SGDState", "DivergenceError", "run_sgd", "penalty", "normalize_weights",
    "weighted_accuracy",
]

# an ignore_index that no encoded class index (0 <= y < C) can equal
_NO_IGNORE = -100

# the "adaptive" schedule stops once the learning rate falls below this
MIN_ADAPTIVE_LEARNING_RATE = 1e-6


class DivergenceError(ValueError):
    """The training loss became NaN or infinite."""


@dataclass
class SGDConfig:
    """Hyper-parameters of the optimizer (validated by the estimator)."""

    batch_size: int = 256
    learning_rate: float = 0.1
    schedule: str = "constant"
    power_t: float = 0.5
    momentum: float = 0.0
    nesterovs_momentum: bool = True
    alpha: float = 1e-4
    l1_ratio: float = 0.0
    fit_intercept: bool = True
    label_smoothing: float = 0.0
    tol: float | None = 1e-4
    n_iter_no_change: int = 5
    shuffle: bool = True
    verbose: int = 0


@dataclass
class SGDState:
    """Parameters plus everything the optimizer carries between calls."""

    W: object  # (n_features, n_classes): coef_.T; owned (updated in place for NumPy)
    b: object  # (n_classes,)
    vW: object = None  # momentum buffers, created on first use
    vb: object = None
    learning_rate: float = 0.1  # current rate (the "adaptive" schedule lowers it)
    epochs: int = 0  # epochs run by this optimizer (drives "invscaling")
    t: int = 0  # training samples seen
    no_improvement_count: int = 0
    best_loss: float = math.inf
    best_validation_score: float = -math.inf
    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)


def penalty(xp, W, alpha, l1_ratio):
    """``alpha * ((1 - l1_ratio) / 2 * ||W||_2^2 + l1_ratio * ||W||_1)``."""
    if alpha == 0:
        return 0.0
    value = 0.0
    if l1_ratio < 1:
        value += 0.5 * alpha * (1 - l1_ratio) * float(xp.sum(W * W))
    if l1_ratio > 0:
        value += alpha * l1_ratio * float(xp.sum(xp.abs(W)))
    return value


def _take_rows(xp, X, idx):
    if sp.issparse(X):
        return X[idx]
    return xp.take(X, idx, axis=0)


class _ArrayOps:
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

    def scale(self, a, c):
        return a * c

    def axpy(self, c, x, y):
        """``y + c * x``."""
        return y + c * x

    def copy(self, a):
        return self.xp.asarray(a, copy=True)


class _NumpyOps(_ArrayOps):
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
            Z, yb, None, wb, label_smoothing, _NO_IGNORE, grad_scale, G, None,
            n_threads_for(Z.size))
        return loss, G

    def column_sums(self, G):
        # a BLAS product: several times faster than np.sum(G, axis=0) for a (256, 10) G
        return np.ones(G.shape[0], dtype=G.dtype) @ G

    def scale(self, a, c):
        a *= c
        return a

    def axpy(self, c, x, y):
        y += c * x
        return y

    def copy(self, a):
        return a.copy()


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


def _batch_step(ops, state, cfg, Xb, yb, wb, lr):
    """One SGD step on a batch; returns the batch's summed (weighted) loss."""
    Z = ops.forward(Xb, state.W, state.b if cfg.fit_intercept else None)
    loss, G = ops.loss_and_grad(Z, yb, wb, cfg.label_smoothing, 1.0 / Xb.shape[0])
    grad_W = ops.backward(Xb, G)
    l2 = cfg.alpha * (1.0 - cfg.l1_ratio)
    if l2 > 0:
        grad_W = ops.axpy(l2, state.W, grad_W)
    mu, nesterov = cfg.momentum, cfg.nesterovs_momentum
    state.W, state.vW = _momentum_step(ops, state.W, state.vW, grad_W, lr, mu, nesterov)
    if cfg.fit_intercept:
        grad_b = ops.column_sums(G)
        state.b, state.vb = _momentum_step(ops, state.b, state.vb, grad_b, lr, mu, nesterov)
    l1 = cfg.alpha * cfg.l1_ratio
    if l1 > 0:
        state.W = _soft_threshold(ops.xp, state.W, lr * l1)
    return loss


def _epoch_learning_rate(state, cfg):
    if cfg.schedule == "invscaling":
        return cfg.learning_rate / (state.epochs + 1) ** cfg.power_t
    return state.learning_rate


def _run_epoch(ops, state, cfg, X, y, w, rng):
    """One pass over ``(X, y, w)`` in shuffled block order; returns the mean loss."""
    n = X.shape[0]
    bs = cfg.batch_size
    starts = np.arange(0, n, bs)
    if cfg.shuffle:
        starts = rng.permutation(starts)
    lr = _epoch_learning_rate(state, cfg)
    total = 0.0
    for start in starts.tolist():
        stop = min(start + bs, n)
        wb = None if w is None else w[start:stop]
        Xb = X[start:stop] if sp.issparse(X) else X[start:stop, ...]
        total = total + _batch_step(ops, state, cfg, Xb, y[start:stop], wb, lr)
    state.epochs += 1
    state.t += n
    # the weights were normalised to mean 1, so the weighted mean divides by n
    return float(total) / n + penalty(ops.xp, state.W, cfg.alpha, cfg.l1_ratio)


def weighted_accuracy(xp, X, y, w, W, b):
    """Accuracy (weighted by ``w`` when given) of ``argmax(X @ W + b)`` on ``(X, y)``."""
    Z = X @ W + b
    correct = xp.astype(xp.argmax(Z, axis=1) == y, W.dtype)
    if w is None:
        return float(xp.mean(correct))
    return float(xp.sum(correct * w) / xp.sum(w))


def normalize_weights(xp, w):
    """``w / mean(w)``, or ``None`` when every weight is equal (the unweighted case)."""
    if w is None:
        return None
    mean = xp.mean(w)
    if bool(xp.all(w == w[0])):
        return None
    return w / mean


def _diverged(loss, lr):
    return DivergenceError(
        f"The training loss diverged (loss={loss}, or non-finite coefficients) with "
        f"learning_rate={lr:g}: use a smaller "
        "learning_rate, or scale the data (e.g. with sklearn.preprocessing.StandardScaler). "
        "The previously fitted coefficients were left unchanged."
    )


def _update_no_improvement(state, cfg, loss, score):
    """Record the epoch; return True when ``n_iter_no_change`` epochs did not improve."""
    if score is not None:
        improved = cfg.tol is not None and score >= state.best_validation_score + cfg.tol
        state.best_validation_score = max(state.best_validation_score, score)
    else:
        improved = cfg.tol is not None and loss <= state.best_loss - cfg.tol
    state.best_loss = min(state.best_loss, loss)
    if cfg.tol is None:
        return False
    state.no_improvement_count = 0 if improved else state.no_improvement_count + 1
    return state.no_improvement_count >= cfg.n_iter_no_change


def _should_report(verbose, epoch, max_epochs):
    """verbose=1: epochs 1-5, every 25th and the last; verbose>=2: every epoch."""
    if verbose >= 2:
        return True
    return bool(verbose) and (epoch <= 5 or epoch % 25 == 0 or epoch == max_epochs)


def _report(epoch, max_epochs, loss, score, lr, seconds):
    text = f"Epoch {epoch}/{max_epochs}: loss={loss:.6f}"
    if score is not None:
        text += f", validation score={score:.4f}"
    print(text + f", learning rate={lr:.3g}, time={seconds:.3f}s", flush=True)


def run_sgd(xp, state, cfg, X, y, w, *, max_epochs, rng, validation=None, can_stop=True):
    """Train ``state`` in place for up to ``max_epochs`` epochs.

    Parameters
    ----------
    xp : namespace
        Namespace of ``X`` (NumPy for NumPy arrays and scipy.sparse CSR).
    state : SGDState
        Parameters and optimizer state; updated in place.  On error the
        caller's previous parameters are untouched because every update makes
        new arrays.
    cfg : SGDConfig
    X : array of shape (n_samples, n_features)
    y : integer array of shape (n_samples,)
        Class indices.
    w : array of shape (n_samples,) or None
        Sample weights already divided by their mean (see `normalize_weights`).
    max_epochs : int
    rng : numpy.random.RandomState
    validation : tuple (X_val, y_val, w_val) or None
        With early stopping: stop on the validation accuracy and end with the
        parameters of the best epoch.
    can_stop : bool
        False for ``partial_fit``: no stopping, and the ``"adaptive"`` schedule
        keeps its step (losses of different chunks are not comparable).

    Returns
    -------
    converged : bool
        Whether the stopping rule ended training before ``max_epochs``.
    """
    if xp is np:
        # overflow is reported as a DivergenceError, not as RuntimeWarnings
        with np.errstate(over="ignore", invalid="ignore"):
            return _run_epochs(xp, state, cfg, X, y, w, max_epochs, rng, validation, can_stop)
    return _run_epochs(xp, state, cfg, X, y, w, max_epochs, rng, validation, can_stop)


def _run_epochs(xp, state, cfg, X, y, w, max_epochs, rng, validation, can_stop):
    n = X.shape[0]
    if cfg.shuffle and n > cfg.batch_size:
        perm = rng.permutation(n)
        if xp is not np:
            perm = xp.asarray(perm, device=array_device(y))
        X, y = _take_rows(xp, X, perm), xp.take(y, perm, axis=0)
        w = None if w is None else xp.take(w, perm, axis=0)
    ops = _NumpyOps() if xp is np else _ArrayOps(xp)
    best = None
    for epoch in range(1, max_epochs + 1):
        tic = time.perf_counter()
        lr = _epoch_learning_rate(state, cfg)
        loss = _run_epoch(ops, state, cfg, X, y, w, rng)
        if not (math.isfinite(loss) and _all_finite(xp, state)):
            raise _diverged(loss, lr)
        score = None
        if validation is not None:
            score = weighted_accuracy(xp, *validation, state.W, state.b)
            state.validation_scores.append(score)
            if score > state.best_validation_score:
                best = (ops.copy(state.W), ops.copy(state.b))
        state.loss_curve.append(loss)
        if _should_report(cfg.verbose, epoch, max_epochs):
            _report(epoch, max_epochs, loss, score, lr, time.perf_counter() - tic)
        if not _update_no_improvement(state, cfg, loss, score) or not can_stop:
            continue
        if cfg.schedule == "adaptive" and state.learning_rate / 5 >= MIN_ADAPTIVE_LEARNING_RATE:
            state.learning_rate /= 5
            state.no_improvement_count = 0
            if cfg.verbose:
                print(f"Learning rate lowered to {state.learning_rate:.3g}", flush=True)
            continue
        if cfg.verbose:
            if not _should_report(cfg.verbose, epoch, max_epochs):
                _report(epoch, max_epochs, loss, score, lr, time.perf_counter() - tic)
            print(f"Converged after {epoch} epochs", flush=True)
        if best is not None:
            state.W, state.b = best
        return True
    if best is not None:
        state.W, state.b = best
    return False


def _all_finite(xp, state):
    return bool(xp.all(xp.isfinite(state.W))) and bool(xp.all(xp.isfinite(state.b)))
