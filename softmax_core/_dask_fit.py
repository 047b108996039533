"""Out-of-core ``fit`` and ``partial_fit`` of ``SoftmaxRegression`` on dask arrays.

Design: the optimizer is the in-memory one (``_sgd.run_epochs``: the same
schedule, stopping rule, divergence rollback and progress output); only the
pass over the data differs.  An epoch visits the row blocks of the dask array
in a fresh random order, each block prepared (`_Blocks`: cast, labels
encoded, its rows permuted, as indices that the fused kernel reads in place
where it applies) and trained on by the usual shuffled minibatch steps, as a
chain of block steps (``_dask_chain``): with a ``distributed`` client, the
steps run on the workers that hold the blocks (the model moves, at most
four blocks are held by the cluster); otherwise the blocks come to this
process, the next two computed while one trains.

``fit`` first makes one survey pass (``_dask_blocks.survey``): the classes,
the class counts (``class_weight="balanced"``), the column moments of the
whole data for the preconditioner (weighted by ``sample_weight``, not by the
class weights, which only changes the conditioning), the checks of the
values, and a uniform sample of rows from which the step size is derived
(its largest row norm stands for that of all rows; a step that is too long
for a rare outlier is caught by the divergence rollback) and on which the
epoch objective is evaluated.  ``partial_fit`` makes no survey: it trains
one pass, and sets the preconditioner and the step from the first block it
computes on its first call (the rule of an in-memory ``partial_fit`` for its
first chunk), checking the values and labels of each block as it arrives.

``early_stopping`` is not offered for dask input (a validation set would be a
second data set to stream every epoch); hold one out and use ``score``.
"""

import math
from dataclasses import replace

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets

from ._dask_block_store import store_enabled
from ._dask_blocks import DaskTrainingSet, survey
from ._dask_chain import Params, Step, chain_for, seceded_in_task
from ._preconditioner import Preconditioner, preconditioner_from_moments
from ._sgd import (
    EVAL_ROWS,
    Evaluation,
    end_epoch,
    epoch_learning_rate,
    normalize_weights,
    run_epochs,
)
from ._sgd_steps import NumpyOps, fused_reads_rows

__all__ = ["fit_dask"]


def _class_weights(est, classes_, counts):
    """Per-class weights (``class_weight`` of the estimator), or None."""
    if est.class_weight is None:
        return None
    if est.class_weight == "balanced":  # fit only: partial_fit rejects it before this
        return counts.sum() / (classes_.shape[0] * counts.astype(np.float64))
    from sklearn.utils import compute_class_weight

    return compute_class_weight(est.class_weight, classes=classes_, y=classes_)


class _Blocks:
    """How computed blocks become training blocks: cast, checked, encoded, weighted, shuffled."""

    def __init__(self, data, classes_, class_weight, weight_scale, shuffle, check_values,
                 weighted=None):
        self.dtype, self.classes_ = data.dtype, classes_
        self.class_weight, self.weight_scale = class_weight, weight_scale
        # fit passes whether the weights differ at all (equal ones train unweighted)
        self.weighted = (data.w is not None or class_weight is not None) if weighted is None \
            else weighted
        self.shuffle, self.check_values = shuffle, check_values

    def encode(self, yb):
        classes_ = self.classes_
        yb = np.asarray(yb)
        idx = np.searchsorted(classes_, yb)
        safe = np.where(idx < classes_.shape[0], idx, 0)
        known = (idx < classes_.shape[0]) & (classes_[safe] == yb)
        if not known.all():
            raise ValueError(f"y contains labels not in classes_: "
                             f"{np.unique(yb[~known]).tolist()}; the known classes are "
                             f"{classes_.tolist()}.")
        return idx.astype(np.int64)

    def weights(self, wb, y_idx):
        if not self.weighted:
            return None
        w = np.ones(y_idx.shape[0]) if wb is None else np.asarray(wb, dtype=np.float64)
        if self.class_weight is not None:
            w = w * self.class_weight[y_idx]
        return w

    def stage(self, i, Xb, yb, wb):
        """``(Xb, y, w)``: a computed block cast, checked, its labels encoded and its
        weights applied (what the block store keeps, ``_dask_block_store``)."""
        Xb = np.asarray(Xb, dtype=self.dtype)
        if self.check_values:
            if not np.isfinite(Xb).all():
                raise ValueError(f"Input X contains NaN or infinity (in row block {i} of the "
                                 "dask array).")
            if wb is not None and (not np.isfinite(wb).all() or (np.asarray(wb) < 0).any()):
                raise ValueError(f"sample_weight contains negative, NaN or infinite values "
                                 f"(in row block {i} of the dask array).")
        if Xb.shape[0] != np.shape(yb)[0] or (wb is not None and wb.shape[0] != Xb.shape[0]):
            raise ValueError(f"Found input variables with inconsistent numbers of samples in "
                             f"row block {i} of the dask arrays.")
        y_idx = self.encode(yb)
        w = self.weights(wb, y_idx)
        if self.weight_scale is None and w is not None:  # partial_fit: per block, like a chunk
            w = normalize_weights(np, w)
        elif w is not None:
            w = w * self.weight_scale
        return Xb, y_idx, None if w is None else w.astype(self.dtype)

    def order(self, staged, rng):
        """``(Xb, y, w, rows)`` of a staged block: its rows are ``Xb[rows]`` (``rows``
        None: ``Xb``), in a random order when shuffling; without a copy of ``Xb`` where
        the fused linear kernel can read the permuted rows in place."""
        Xb, y_idx, w = staged
        rows = None
        if self.shuffle and Xb.shape[0] > 1:
            perm = rng.permutation(Xb.shape[0]).astype(np.int64, copy=False)
            y_idx = y_idx[perm]
            w = None if w is None else w[perm]
            if fused_reads_rows(Xb, self.classes_.shape[0]):
                rows = perm  # the fused kernel reads the permuted rows in place
            else:
                Xb = Xb[perm]
        else:
            Xb = np.ascontiguousarray(Xb)
        return Xb, y_idx, w, rows

    def __call__(self, i, Xb, yb, wb, rng):
        """The block ready to train: ``order(stage(i, Xb, yb, wb), rng)``."""
        return self.order(self.stage(i, Xb, yb, wb), rng)


def fit_dask(est, X, y, sample_weight, classes, incremental):
    """``est.fit`` / ``est.partial_fit`` on dask input; returns ``est``.

    Inside a dask task the fit first leaves the worker's thread pool
    (`_dask_chain.seceded_in_task`), so that its blocks can be computed on
    that worker too."""
    with seceded_in_task():
        return _fit_dask(est, X, y, sample_weight, classes, incremental)


def _fit_dask(est, X, y, sample_weight, classes, incremental):
    if est.early_stopping and not incremental:
        raise ValueError(
            "early_stopping is not supported for dask input: hold out a validation set "
            "(e.g. dask_ml.model_selection.train_test_split) and compare fits with score.")
    data = DaskTrainingSet.from_inputs(X, y, sample_weight)
    first_call = not (incremental and hasattr(est, "classes_"))
    if not first_call and data.n_features != est.n_features_in_:
        raise ValueError(f"X has {data.n_features} features, but {type(est).__name__} is "
                         f"expecting {est.n_features_in_} features as input.")
    if first_call or not hasattr(est, "_random_state"):
        est._random_state = check_random_state(est.random_state)
    rng = est._random_state
    if incremental:
        return _partial_fit(est, data, classes, first_call, rng)
    return _fit(est, data, rng)


def _set_features(est, data):
    est.n_features_in_ = data.n_features
    if data.feature_names is not None:
        est.feature_names_in_ = data.feature_names
    elif hasattr(est, "feature_names_in_"):
        del est.feature_names_in_


def _fit(est, data, rng):
    info = survey(data, EVAL_ROWS, rng)
    check_classification_targets(info.labels)
    classes_ = info.labels
    if classes_.shape[0] < 2:
        raise ValueError(
            f"{type(est).__name__} needs samples of at least 2 classes in the data, "
            f"but the data contains only one class: {classes_[0]!r}.")
    _set_features(est, data)
    cw = _class_weights(est, classes_, info.counts)
    weighted = (data.w is not None and info.w_min != info.w_max) or \
        (cw is not None and np.unique(cw[info.counts > 0]).shape[0] > 1)
    total = float(info.label_weights @ (cw if cw is not None else np.ones(len(classes_))))
    if not total > 0:
        raise ValueError("The sample weights times the class weights are all zero: at least "
                         "one sample needs a non-zero weight.")
    blocks = _Blocks(data, classes_, cw, info.n / total if weighted else None,
                     est.shuffle, check_values=False, weighted=weighted)
    sample_X = info.sample_X
    sample_y = blocks.encode(info.sample_y)
    sample_w = blocks.weights(info.sample_w, sample_y)
    sample_w = None if sample_w is None else (sample_w * blocks.weight_scale).astype(data.dtype)

    state = est._initial_state(np, None, sample_X, classes_, True, False)
    state.batch_size = est._resolved_batch_size(info.n)
    cfg = est._config(state, info.n)
    l2 = cfg.alpha * (1 - cfg.l1_ratio)
    pre = Preconditioner()
    if est.precondition and info.n >= 2:
        pre = preconditioner_from_moments(np, info.mean.astype(data.dtype),
                                          info.var.astype(data.dtype), data.dtype,
                                          est.fit_intercept, l2)
    est._prepare_optimizer(np, state, cfg, sample_X, sample_w, rng, preconditioner=pre,
                           n_samples=info.n)
    cfg.learning_rate = state.initial_learning_rate
    evaluation = Evaluation(np, cfg, sample_X, sample_y, sample_w, rng)
    start_loss = math.log(classes_.shape[0])
    converged = _train(est, data, state, cfg, blocks, evaluation.objective, rng,
                       max_epochs=est.max_iter, can_stop=True, start_loss=start_loss)
    est._store(np, state, classes_, False)
    est._warn_if_poor(state, converged, start_loss, False)
    return est


def _partial_fit(est, data, classes, first_call, rng):
    classes_ = est._encode_targets(np.asarray(classes), classes, True)[0] if first_call \
        else np.asarray(est.classes_)
    if not first_call and classes is not None:
        est._encode_targets(classes_, classes, False)  # the same classes as before
    if first_call:
        check_classification_targets(classes_)
        if classes_.shape[0] < 2:
            raise ValueError(
                f"{type(est).__name__} needs samples of at least 2 classes in the data, "
                f"but the data contains only one class: {classes_[0]!r}.")
        _set_features(est, data)
    cw = _class_weights(est, classes_, None)
    blocks = _Blocks(data, classes_, cw, None, est.shuffle, check_values=True)
    state = est._initial_state(np, None, np.zeros((0, data.n_features), data.dtype), classes_,
                               first_call, True)
    continuing = not first_call and state.batch_size is not None
    cfg = est._config(replace(state, batch_size=state.batch_size or 1), 1)  # see first_block
    evaluation = []

    def first_block(Xb, yb, wb, rows):
        """The preconditioner, the step and the objective's rows, from the first block."""
        if evaluation:
            return
        if rows is not None:  # its rows in the order of yb and wb
            Xb = Xb[rows]
        if not continuing:
            state.batch_size = est._resolved_batch_size(Xb.shape[0])
        cfg.__dict__.update(est._config(state, Xb.shape[0]).__dict__)
        if not continuing:
            est._prepare_optimizer(np, state, cfg, Xb, wb, rng)
        cfg.learning_rate = state.initial_learning_rate
        evaluation.append(Evaluation(np, cfg, Xb, yb, wb, rng))

    _train(est, data, state, cfg, blocks, lambda s: evaluation[0].objective(s), rng,
           max_epochs=1, can_stop=False, start_loss=math.log(classes_.shape[0]),
           first_block=first_block)
    est._store(np, state, classes_, False)
    return est


def _train(est, data, state, cfg, blocks, objective, rng, *, max_epochs, can_stop, start_loss,
           first_block=None):
    """`run_epochs` over passes of the dask blocks; returns whether it converged."""
    ops = NumpyOps()
    # several epochs: the blocks are kept on disk between them (``_dask_block_store``)
    chain = chain_for(data, blocks, store=max_epochs > 1 and store_enabled())
    n_blocks = len(chain)

    def make_step():
        return Step(cfg, state.preconditioner, state.batch_size or cfg.batch_size,
                    epoch_learning_rate(state, cfg))

    def epoch():
        order = rng.permutation(n_blocks) if cfg.shuffle else np.arange(n_blocks)
        seeds = rng.randint(0, 2**31 - 1, size=n_blocks)
        params = chain.epoch(order.tolist(), seeds.tolist(), Params.of(state), make_step,
                             first_block)
        if params.n == 0:
            raise ValueError("Found array with 0 sample(s) while a minimum of 1 is required "
                             f"by {type(est).__name__}.")
        params.store(state)
        return end_epoch(ops, state, cfg, params.total, params.n)

    try:
        return run_epochs(ops, state, cfg, epoch, objective, max_epochs=max_epochs,
                          validation=None, can_stop=can_stop, start_loss=start_loss)
    finally:
        chain.close()
