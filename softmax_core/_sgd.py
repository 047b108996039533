"""The epoch driver of minibatch SGD: schedules, stopping, divergence, early stopping, progress.

Design: one epoch is a pass over ``X`` in shuffled blocks (``_sgd_steps.py``
takes each step, or ``_sgd_epoch.py`` the whole epoch in one kernel call for
dense NumPy rows that the fused linear kernel takes).  The rows are permuted
once per call to :func:`run_sgd` and every epoch visits the blocks of
consecutive permuted rows in a fresh random order.  Dense NumPy rows that
the fused linear kernel takes (up to
``FUSED_MAX_CLASSES`` classes, C-contiguous) are never copied: the kernel
reads each block's rows from ``X`` in place through their indices (measured
at 784 features: 7% slower per epoch than contiguous slices, where the copy
that slices need cost 30 ms to 0.5 s per fit, the upper end when the memory
came fresh from the host of this virtual machine; and a fit no longer holds
a second copy of X).  Other input (sparse, wider models, other namespaces)
is permuted in one copy, so each batch is a slice (a view for dense arrays)
that stays in cache between the two products.  Both give the same batches.

The epoch objective is the training objective (mean cross-entropy plus
penalty) at the end of the epoch, on all rows or a fixed sample of up to
``EVAL_ROWS`` (``Evaluation``).  Around it:

* Stopping measures relative progress: an epoch improves when it lowers the
  best objective so far by more than ``tol * max(best, 1e-3)``.  After
  ``n_iter_no_change`` epochs without improvement the ``"adaptive"`` schedule
  divides the step by 10 -- unless no epoch improved since the previous
  division, which means a smaller step changes nothing measurable: then the
  fit has converged.  Other schedules stop at the first plateau.
* Divergence is not "no improvement": an epoch whose objective is not finite
  or (in ``fit``) rises clearly above the all-zero model's ``log(n_classes)``
  or gives back more than half of the progress made so far is undone (the coefficients and
  momentum of the last good epoch are restored, or those of the start of
  the call if the retry diverges too) and retried with a step ten times
  smaller.  After ``MAX_RETRIES`` such retries the fit raises.
* Early stopping watches the validation log loss (not the accuracy, which
  is flat on small validation sets) with the same relative rule and patience,
  and keeps the coefficients of the best epoch.  It only decides when to
  stop; the step follows the training objective as without early stopping.
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.utils._array_api import device as array_device

from ._losses import cross_entropy
from ._preconditioner import Preconditioner
from ._sgd_epoch import epoch_eligible, run_epoch_kernel
from ._sgd_steps import (
    ArrayOps,
    LazyScale,
    NumpyOps,
    SparseBlocks,
    batch_bounds,
    batch_step,
    fused_eligible,
    lazy_eligible,
    lazy_sparse_step,
    linear_loss,
)

__all__ = [
    "SGDConfig", "SGDState", "DivergenceError", "run_sgd", "run_epochs", "run_batches",
    "end_epoch", "epoch_learning_rate", "Evaluation", "penalty", "normalize_weights",
    "MAX_RETRIES", "STEP_DIVISOR",
]

# the "adaptive" schedule divides the step by this on a plateau
STEP_DIVISOR = 10.0
# and never goes below the initial step times this
MIN_STEP_FRACTION = 1e-6
# divergence: retries with a 10x smaller step before giving up
MAX_RETRIES = 6
# the objective that the stopping rule watches is evaluated on at most EVAL_ROWS
# rows, fewer for wide data (about EVAL_ENTRIES entries of X, at least 1024 rows)
EVAL_ROWS = 4096
EVAL_ENTRIES = 1 << 20
# a step keeps descending (no plateau) while the extrapolated remaining descent
# exceeds this many times the tolerance
REMAINING_FACTOR = 10.0
# relative improvements are measured against max(best objective, this)
_OBJECTIVE_FLOOR = 1e-3


class DivergenceError(ValueError):
    """The training loss diverged and could not be recovered with smaller steps."""


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
    n_iter_no_change: int = 3
    shuffle: bool = True
    verbose: int = 0


@dataclass
class SGDState:
    """Parameters plus everything the optimizer carries between calls."""

    W: object  # (n_features, n_classes): coef_.T; owned (updated in place for NumPy)
    b: object  # (n_classes,)
    vW: object = None  # momentum buffers, created on first use
    vb: object = None
    learning_rate: float = 0.1  # current rate (before the divergence factor)
    initial_learning_rate: float = 0.1  # the rate the fit started with
    batch_size: int | None = None  # resolved on the first call
    step_factor: float = 1.0  # divergence retries divide it by 10
    preconditioner: Preconditioner = field(default_factory=Preconditioner)
    epochs: int = 0  # epochs run by this optimizer (drives "invscaling")
    t: int = 0  # training samples seen
    no_improvement_count: int = 0
    improved_since_change: bool = True
    best_loss: float = math.inf
    best_validation_loss: float = math.inf
    best_validation_score: float = -math.inf
    validation_no_improvement: int = 0
    retries: int = 0
    level_losses: list = field(default_factory=list)  # objectives since the last step change
    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    validation_losses: list = field(default_factory=list)


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


def normalize_weights(xp, w):
    """``w / mean(w)``, or ``None`` when every weight is equal (the unweighted case)."""
    if w is None:
        return None
    mean = xp.mean(w)
    if bool(xp.all(w == w[0])):
        return None
    return w / mean


def _take_rows(xp, X, idx):
    if sp.issparse(X):
        return X[idx]
    return xp.take(X, idx, axis=0)


def epoch_learning_rate(state, cfg):
    if cfg.schedule == "invscaling":
        rate = cfg.learning_rate / (state.epochs + 1) ** cfg.power_t
    else:
        rate = state.learning_rate
    return rate * state.step_factor


def run_batches(ops, state, cfg, X, y, w, rng, blocks, lr, x_rows=None):
    """Steps over ``(X, y, w)`` in shuffled batch order; returns the summed batch losses.

    ``blocks`` (a `SparseBlocks`, or None) selects the lazy sparse update.
    ``x_rows`` (dense NumPy ``X`` only) says that row ``i`` of the data is
    ``X[x_rows[i]]`` (``y`` and ``w`` are in that order already): the fused
    kernel reads each batch's rows from ``X`` in place.  The epoch counters
    are not advanced: a pass over several in-memory blocks (an out-of-core
    epoch) calls this once per block.
    """
    bounds = batch_bounds(y.shape[0], state.batch_size or cfg.batch_size)
    if cfg.shuffle:
        bounds = [bounds[i] for i in rng.permutation(len(bounds)).tolist()]
    if epoch_eligible(ops, state, X, y, blocks):
        return run_epoch_kernel(state, cfg, X, y, w, bounds, lr, x_rows)
    pre = state.preconditioner
    total = 0.0
    lazy = LazyScale() if blocks is not None else None
    for start, stop in bounds:
        wb = None if w is None else w[start:stop]
        if x_rows is not None:
            total += batch_step(ops, state, cfg, pre, X, y[start:stop], wb, lr,
                                x_rows[start:stop])
            continue
        if blocks is not None:
            total += lazy_sparse_step(ops, state, cfg, lazy, blocks.block(start),
                                      y[start:stop], wb, lr)
            continue
        Xb = X[start:stop] if sp.issparse(X) else X[start:stop, ...]
        total = total + batch_step(ops, state, cfg, pre, Xb, y[start:stop], wb, lr)
    if lazy is not None:
        lazy.fold(state)
    return total


def end_epoch(ops, state, cfg, total, n):
    """Count the epoch of ``n`` rows; returns its running objective from the summed losses."""
    state.epochs += 1
    state.t += n
    # the weights were normalised to mean 1, so the weighted mean divides by n
    return float(total) / n + penalty(ops.xp, state.W, cfg.alpha, cfg.l1_ratio)


def _validation_metrics(xp, X, y, w, W, b, label_smoothing):
    """(log loss, accuracy) of the model on the validation set, weighted by ``w``."""
    Z = X @ W + b
    if xp is np:
        Z = np.ascontiguousarray(Z)
    losses = cross_entropy(Z, y, reduction="none", label_smoothing=label_smoothing)
    correct = xp.astype(xp.argmax(Z, axis=1) == y, Z.dtype)
    if w is None:
        return float(xp.mean(losses)), float(xp.mean(correct))
    total = xp.sum(w)
    return float(xp.sum(losses * w) / total), float(xp.sum(correct * w) / total)


def _diverged_error(loss, lr):
    return DivergenceError(
        f"The training loss diverged (loss={loss:.6g}, or non-finite coefficients) and did not "
        f"recover after {MAX_RETRIES} retries with smaller steps (down to "
        f"learning_rate={lr:g}): use a smaller learning_rate, or scale the data (e.g. with "
        "sklearn.preprocessing.StandardScaler). The previously fitted coefficients were left "
        "unchanged."
    )


def _is_divergent(loss, state, start_loss, can_stop):
    """Non-finite; in `fit` also clearly worse than zeros, or much of the progress lost.

    The margins (a tenth of ``log(n_classes)``) keep the noise of an epoch's
    running mean on a hard problem, whose optimum is close to the all-zero
    model, from being taken for divergence.  ``partial_fit`` only checks
    finiteness: a chunk may legitimately score worse than zeros on a model
    trained on other chunks (non-stationary streams, sorted data).
    """
    if not math.isfinite(loss):
        return True
    if not can_stop:
        return False
    margin = 0.1 * start_loss
    if loss > start_loss + margin:
        return True
    if math.isfinite(state.best_loss):
        return loss > state.best_loss + max(0.5 * (start_loss - state.best_loss), margin)
    return False


def _still_descending(losses, cfg):
    """Whether the objectives of this step size still descend by more than the
    tolerance in total: a geometric fit of the last ``2k + 1`` epochs (k =
    ``n_iter_no_change``) extrapolated to its limit.

    The mean descent per epoch over the last ``k`` epochs, ``d_b``, and over
    the ``k`` before, ``d_a``, give the rate ``r = (d_b / d_a) ** (1 / k)``
    and the descent still to come, ``d_b * r / (1 - r)`` (unbounded when
    the descent does not slow down).  Averages over ``k`` epochs see through
    the epoch-to-epoch noise that the comparison with the best epoch trips on.
    """
    k = cfg.n_iter_no_change
    if len(losses) < 2 * k + 1:
        return False
    first, middle, last = losses[-2 * k - 1], losses[-k - 1], losses[-1]
    d_a, d_b = (first - middle) / k, (middle - last) / k
    threshold = cfg.tol * max(abs(last), _OBJECTIVE_FLOOR)
    if d_b <= threshold / k:
        return False
    if d_a <= d_b:
        return True
    r = (d_b / d_a) ** (1.0 / k)
    return d_b * r / (1.0 - r) > REMAINING_FACTOR * threshold


def _improves(loss, best, tol):
    return loss < best - tol * max(abs(best), _OBJECTIVE_FLOOR) if math.isfinite(best) \
        else math.isfinite(loss)


class Evaluation:
    """The training objective at the current coefficients, on a fixed set of rows.

    All rows up to ``EVAL_ROWS`` (fewer for wide data, see ``EVAL_ENTRIES``),
    else a fixed random sample of that many: the same rows every epoch, so
    two epochs compare without sampling noise.  The running mean of the
    batch losses would be free, but on small data its noise (batch to batch)
    hides the slow, steady progress of the last epochs, and it describes the
    path through the epoch, not its end point.
    """

    def __init__(self, xp, cfg, X, y, w, rng, x_rows=None):
        # x_rows (dense NumPy X): row i of the data is X[x_rows[i]] (see run_batches)
        n = y.shape[0]
        self.xp, self.cfg = xp, cfg
        budget = min(EVAL_ROWS, max(1024, EVAL_ENTRIES // max(X.shape[1], 1)))
        if x_rows is not None and n <= budget:
            X = np.take(X, x_rows, axis=0)
        if n > budget:
            rows = np.sort(rng.choice(n, size=budget, replace=False))
            if x_rows is not None:
                X = np.take(X, x_rows[rows], axis=0)
            elif sp.issparse(X):
                X = X[rows]
            else:
                idx = rows if xp is np else xp.asarray(rows, device=array_device(y))
                X = xp.take(X, idx, axis=0)
            idx = rows if xp is np else xp.asarray(rows, device=array_device(y))
            y = xp.take(y, idx, axis=0)
            w = None if w is None else xp.take(w, idx, axis=0)
        self.X, self.y, self.w = X, y, w
        self._scratch = {}
        self.total_weight = float(xp.sum(w)) if w is not None else float(y.shape[0])
        if xp is np and w is not None:
            self.w = np.ascontiguousarray(w, dtype=np.float64)

    def objective(self, state):
        xp, cfg = self.xp, self.cfg
        if xp is np:
            total = linear_loss(self.X, state.W, state.b if cfg.fit_intercept else None,
                                self.y, self.w, cfg.label_smoothing, self._scratch)
            if not math.isfinite(total):
                return math.inf
        else:
            Z = self.X @ state.W
            if cfg.fit_intercept:
                Z = Z + state.b
            losses = cross_entropy(Z, self.y, reduction="none",
                                   label_smoothing=cfg.label_smoothing)
            total = xp.sum(losses if self.w is None else losses * self.w)
        value = float(total) / self.total_weight
        return value + penalty(xp, state.W, cfg.alpha, cfg.l1_ratio)


class _Snapshot:
    """The parameters and momentum of the last good epoch (for the divergence rollback)."""

    def __init__(self, ops, state):
        self.W, self.b = ops.copy(state.W), ops.copy(state.b)
        self.vW = None if state.vW is None else ops.copy(state.vW)
        self.vb = None if state.vb is None else ops.copy(state.vb)
        self.epochs, self.t = state.epochs, state.t

    def restore(self, ops, state):
        state.W, state.b = ops.copy(self.W), ops.copy(self.b)
        state.vW = None if self.vW is None else ops.copy(self.vW)
        state.vb = None if self.vb is None else ops.copy(self.vb)
        state.epochs, state.t = self.epochs, self.t


class _Progress:
    """Verbose output: epochs, step changes and the end, with real elapsed time."""

    def __init__(self, verbose, max_epochs):
        self.verbose, self.max_epochs = verbose, max_epochs
        self.start = time.perf_counter()
        self.last_printed = None

    def elapsed(self):
        return time.perf_counter() - self.start

    def wants(self, epoch):
        """verbose=1: epochs 1-5, every 10th to 100, every 100th, the last; 2: every epoch."""
        if self.verbose >= 2:
            return True
        every = 10 if epoch <= 100 else 100
        return bool(self.verbose) and (epoch <= 5 or epoch % every == 0
                                       or epoch == self.max_epochs)

    def epoch(self, epoch, loss, validation, lr, force=False):
        if epoch == self.last_printed or not (self.wants(epoch) or (force and self.verbose)):
            return
        self.last_printed = epoch
        text = f"Epoch {epoch}/{self.max_epochs}: objective={loss:.6f}"
        if validation is not None:
            text += (f", validation log loss={validation[0]:.6f}, "
                     f"validation accuracy={validation[1]:.4f}")
        print(text + f", learning rate={lr:.4g}, elapsed={self.elapsed():.4f}s", flush=True)

    def say(self, text):
        if self.verbose:
            print(text, flush=True)


def run_sgd(xp, state, cfg, X, y, w, *, max_epochs, rng, validation=None, can_stop=True,
            start_loss):
    """Train ``state`` in place for up to ``max_epochs`` epochs.

    Parameters
    ----------
    xp : namespace
        Namespace of ``X`` (NumPy for NumPy arrays and scipy.sparse CSR).
    state : SGDState
        Parameters and optimizer state; updated in place.
    cfg : SGDConfig
    X : array of shape (n_samples, n_features)
    y : integer array of shape (n_samples,)
        Class indices.
    w : array of shape (n_samples,) or None
        Sample weights already divided by their mean (see `normalize_weights`).
    max_epochs : int
        Epochs to run at most (rolled-back epochs do not count).
    rng : numpy.random.RandomState
    validation : tuple (X_val, y_val, w_val) or None
        With early stopping: stop on the validation log loss and end with the
        parameters of the best epoch.
    can_stop : bool
        False for ``partial_fit``: no stopping, and the ``"adaptive"`` schedule
        keeps its step (losses of different chunks are not comparable).
    start_loss : float
        Objective of the all-zero model, ``log(n_classes)``: the divergence line.

    Returns
    -------
    converged : bool
        Whether the stopping rule ended training before ``max_epochs``.
    """
    n = X.shape[0]
    x_rows = None
    if cfg.shuffle and n > cfg.batch_size:
        perm = rng.permutation(n).astype(np.int64, copy=False)  # int32 on some platforms
        if xp is np and fused_eligible(X, state.W):
            # the fused kernel reads the permuted rows from X in place: no copy
            x_rows = perm
        else:
            if xp is not np:
                perm = xp.asarray(perm, device=array_device(y))
            X = _take_rows(xp, X, perm)
        y = xp.take(y, perm, axis=0)
        w = None if w is None else xp.take(w, perm, axis=0)
    ops = NumpyOps() if xp is np else ArrayOps(xp)
    blocks = SparseBlocks(X, cfg.batch_size) if lazy_eligible(xp, X, cfg,
                                                              state.preconditioner) else None
    evaluation = Evaluation(xp, cfg, X, y, w, rng, x_rows=x_rows)

    def epoch():
        lr = epoch_learning_rate(state, cfg)
        return end_epoch(ops, state, cfg,
                         run_batches(ops, state, cfg, X, y, w, rng, blocks, lr, x_rows), n)

    return run_epochs(ops, state, cfg, epoch, evaluation.objective, max_epochs=max_epochs,
                      validation=validation, can_stop=can_stop, start_loss=start_loss)


def run_epochs(ops, state, cfg, epoch, objective, *, max_epochs, validation, can_stop,
               start_loss):
    """The epoch loop of `run_sgd` around any pass over the data.

    ``epoch()`` runs one pass (advancing ``state`` with `end_epoch`) and
    returns its running objective; ``objective(state)`` evaluates the training
    objective at the current coefficients.  The other arguments are those of
    `run_sgd`.  An out-of-core fit passes its own ``epoch`` (``_dask_fit.py``).
    """
    if ops.xp is np:
        # overflow is handled as divergence, not reported as RuntimeWarnings
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return _run_epochs(ops, state, cfg, epoch, objective, max_epochs, validation,
                               can_stop, start_loss)
    return _run_epochs(ops, state, cfg, epoch, objective, max_epochs, validation, can_stop,
                       start_loss)


def _run_epochs(ops, state, cfg, epoch_fn, objective, max_epochs, validation, can_stop,
                start_loss):
    xp = ops.xp
    progress = _Progress(cfg.verbose, max_epochs)
    first_epoch = state.epochs
    initial_rate = state.initial_learning_rate
    snapshot = initial = _Snapshot(ops, state)
    initial_curve, initial_best, failed_in_a_row = len(state.loss_curve), state.best_loss, 0
    best = None
    while state.epochs - first_epoch < max_epochs:
        epoch = state.epochs - first_epoch + 1
        lr = epoch_learning_rate(state, cfg)
        running = epoch_fn()
        loss = objective(state) if math.isfinite(running) else running
        if _is_divergent(loss, state, start_loss, can_stop) or not _all_finite(xp, state):
            if state.retries >= MAX_RETRIES:
                raise _diverged_error(loss, lr)
            # first back to the last good epoch; if that diverges again (its
            # running-mean objective hid a bad end point), back to the start
            again = failed_in_a_row > 0
            (initial if again else snapshot).restore(ops, state)
            if again:
                del state.loss_curve[initial_curve:]
                del state.validation_losses[initial_curve:]
                del state.validation_scores[initial_curve:]
                state.best_loss, best = initial_best, None
                state.best_validation_loss = math.inf
                state.best_validation_score = -math.inf
                state.validation_no_improvement = state.no_improvement_count = 0
                state.level_losses = []
                snapshot = initial
            failed_in_a_row += 1
            state.retries += 1
            state.step_factor /= 10.0
            progress.say(
                f"Epoch {epoch}: objective {loss:.6g} diverged (all-zero model: "
                f"{start_loss:.6g}); rolled back to "
                f"{'the start of this fit' if again else 'the last good epoch'}, learning "
                f"rate lowered to {epoch_learning_rate(state, cfg):.4g}")
            continue
        failed_in_a_row = 0
        snapshot = _Snapshot(ops, state)
        state.loss_curve.append(loss)
        metrics = None
        if validation is not None:
            metrics = _validation_metrics(xp, *validation, state.W, state.b,
                                          cfg.label_smoothing)
            state.validation_losses.append(metrics[0])
            state.validation_scores.append(metrics[1])
        progress.epoch(epoch, loss, metrics, lr)
        if metrics is not None and metrics[0] < state.best_validation_loss and can_stop:
            best = (ops.copy(state.W), ops.copy(state.b))
        if cfg.tol is None or not can_stop:
            state.best_loss = min(state.best_loss, loss)
            if metrics is not None and metrics[0] < state.best_validation_loss:
                state.best_validation_loss, state.best_validation_score = metrics
            continue
        if metrics is not None:
            if _improves(metrics[0], state.best_validation_loss, cfg.tol):
                state.validation_no_improvement = 0
            else:
                state.validation_no_improvement += 1
            if metrics[0] < state.best_validation_loss:
                state.best_validation_loss, state.best_validation_score = metrics
        state.level_losses.append(loss)
        if _improves(loss, state.best_loss, cfg.tol):
            state.no_improvement_count = 0
            state.improved_since_change = True
        elif _still_descending(state.level_losses, cfg):
            # noise hid a steady descent: not a plateau (and not converged)
            state.improved_since_change = True
        else:
            state.no_improvement_count += 1
        state.best_loss = min(state.best_loss, loss)
        stop_reason = None
        if metrics is not None and state.validation_no_improvement >= cfg.n_iter_no_change:
            stop_reason = (f"the validation log loss did not improve by tol={cfg.tol:g} "
                           f"(relative) in {cfg.n_iter_no_change} epochs")
        elif state.no_improvement_count >= cfg.n_iter_no_change:
            change = _reduce_noise(state, cfg, initial_rate) \
                if cfg.schedule == "adaptive" and state.improved_since_change else None
            if change is not None:
                state.no_improvement_count = 0
                state.improved_since_change = False
                state.level_losses = []
                progress.epoch(epoch, loss, metrics, lr, force=True)
                progress.say(f"Epoch {epoch}: no relative improvement above tol={cfg.tol:g} "
                             f"in {cfg.n_iter_no_change} epochs; {change}")
                continue
            stop_reason = (f"the objective did not improve by tol={cfg.tol:g} (relative) in "
                           f"{cfg.n_iter_no_change} epochs"
                           + (" after the last step reduction" if cfg.schedule == "adaptive"
                              else ""))
        if stop_reason is None:
            continue
        progress.epoch(epoch, loss, metrics, lr, force=True)
        if best is not None:
            state.W, state.b = best
        progress.say(f"Converged after {epoch} epochs ({progress.elapsed():.3f}s): "
                     f"{stop_reason}")
        return True
    if best is not None:
        state.W, state.b = best
    return False


def _reduce_noise(state, cfg, initial_rate):
    """The next, smaller step of the "adaptive" schedule, described; None when none is left."""
    if state.learning_rate / STEP_DIVISOR < initial_rate * MIN_STEP_FRACTION:
        return None
    state.learning_rate /= STEP_DIVISOR
    return f"learning rate lowered to {epoch_learning_rate(state, cfg):.4g}"


def _all_finite(xp, state):
    return bool(xp.all(xp.isfinite(state.W))) and bool(xp.all(xp.isfinite(state.b)))
