"""Lazy predictions of a fitted ``SoftmaxRegression`` on dask arrays.

Design: ``decision_function``, ``predict``, ``predict_proba`` and
``predict_log_proba`` of a dask array (or dask DataFrame) are
``map_blocks`` over its row blocks (one block across the columns): each
block runs the estimator's own NumPy method, so a block's result is exactly
what the in-memory call gives for those rows, and nothing is computed until
the caller asks (what ``dask_ml.wrappers.ParallelPostFit`` does, without the
wrapper).  The graph carries a light copy of the fitted model: its
parameters, without the optimizer's state.  The shape and dtype of the
result are those of the method on one row of zeros.
"""

import copy
import math

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._bridge import to_numpy

__all__ = ["predict_dask"]

_COLUMN_RESULTS = ("decision_function", "predict_proba", "predict_log_proba")


def _apply(block, model, method):
    return getattr(model, method)(block)


def _light_copy(est):
    """The fitted model without its optimizer state, with NumPy parameters."""
    model = copy.copy(est)
    model.__dict__.pop("_optimizer", None)
    model.__dict__.pop("_random_state", None)
    # the blocks of a dask DataFrame arrive as arrays: names were checked here
    model.__dict__.pop("feature_names_in_", None)
    for name in ("coef_", "intercept_", "classes_"):
        value = getattr(model, name)
        if not isinstance(value, np.ndarray):
            setattr(model, name, np.asarray(to_numpy(value)))
    return model


def predict_dask(est, X, method):
    """``getattr(est, method)(X)`` as a lazy dask array, block by block."""
    from ._dask_blocks import as_dask_array

    check_is_fitted(est)
    X, names = as_dask_array(X, "X")
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D dask array for X, got {X.ndim} dimensions "
                         f"(shape {X.shape}).")
    if X.shape[1] != est.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is "
                         f"expecting {est.n_features_in_} features as input.")
    fitted_names = getattr(est, "feature_names_in_", None)
    if names is not None and fitted_names is not None and list(names) != list(fitted_names):
        raise ValueError("The feature names should match those that were passed during fit.")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must hold real numbers; its dtype is {X.dtype}.")
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    model = _light_copy(est)
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    probe = getattr(model, method)(np.zeros((1, X.shape[1]), dtype=dtype))
    if probe.ndim == 2:
        chunks = (X.chunks[0], (probe.shape[1],))
        return X.map_blocks(_apply, model, method, dtype=probe.dtype, chunks=chunks,
                            meta=probe[:0])
    return X.map_blocks(_apply, model, method, dtype=probe.dtype, drop_axis=1,
                        chunks=(X.chunks[0],), meta=probe[:0])


def score_dask(est, X, y, sample_weight):
    """Mean (weighted) accuracy on dask input, computed in one pass (inside a
    dask task, after leaving the worker's thread pool: `seceded_in_task`)."""
    from ._dask_chain import seceded_in_task

    with seceded_in_task():
        return _score_dask(est, X, y, sample_weight)


def _score_dask(est, X, y, sample_weight):
    import dask
    import dask.array as da

    from ._dask_blocks import as_dask_array

    pred = predict_dask(est, X, "predict")
    y, _ = as_dask_array(y, "y") if dask.is_dask_collection(y) else \
        (da.from_array(np.asarray(y), chunks=pred.chunks), None)
    if not (math.isnan(y.shape[0]) or math.isnan(pred.shape[0])) and y.shape != pred.shape:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: "
                         f"[{pred.shape[0]}, {y.shape[0]}] (X and y).")
    correct = (pred == y).astype(np.float64)
    if sample_weight is None:
        return float(correct.mean().compute())
    w = sample_weight if dask.is_dask_collection(sample_weight) else \
        da.from_array(np.asarray(sample_weight, dtype=np.float64), chunks=pred.chunks)
    num, den = dask.compute((correct * w).sum(), w.sum())
    return float(num / den)
