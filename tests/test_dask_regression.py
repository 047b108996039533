"""SoftmaxRegression on dask arrays (issue 12): out-of-core fit, partial_fit, lazy predictions.

The oracle of a fit is the NumPy fit of the same data: both must reach the
same training objective (evaluated here on all rows, independently of the
estimators' own bookkeeping) and accuracy.  The objective of
``LogisticRegression`` solved tightly bounds both from below.
"""

import re
import threading
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from sklearn.datasets import make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from softmax_core import SoftmaxRegression  # noqa: E402
from softmax_core._dask_blocks import BlockStream, DaskTrainingSet  # noqa: E402


def _data(n=6000, d=12, k=4, seed=0, unscaled=True):
    X, y = make_classification(n, d, n_informative=8, n_classes=k, n_clusters_per_class=1,
                               class_sep=0.8, random_state=seed)
    if unscaled:  # features in the thousands next to ones in hundredths, offsets
        X[:, 0] = X[:, 0] * 1000.0 + 5000.0
        X[:, 1] *= 0.01
    return X, y


def _objective(X, y, coef, intercept, alpha, w=None):
    """Mean (weighted) cross-entropy of the multinomial model plus the L2 penalty, in
    float64 with scipy's logsumexp (the estimators' own loss code is not used)."""
    from scipy.special import logsumexp

    coef = np.asarray(coef, dtype=np.float64)
    intercept = np.asarray(intercept, dtype=np.float64)
    if coef.shape[0] == 1:  # two classes: W = [-c/2, c/2]
        coef = np.concatenate([-coef / 2, coef / 2])
        intercept = np.concatenate([-intercept / 2, intercept / 2])
    Z = X.astype(np.float64) @ coef.T + intercept
    losses = logsumexp(Z, axis=1) - Z[np.arange(len(y)), y]
    w = np.ones(len(y)) if w is None else w
    return float(np.sum(losses * w) / np.sum(w)) + 0.5 * alpha * float(np.sum(coef * coef))


class _NoCompute:
    """A dask scheduler that fails: proves that a call builds a graph and computes nothing."""

    calls = 0

    def __call__(self, *args, **kwargs):
        type(self).calls += 1
        raise AssertionError("a dask compute ran during the call")


# ---------------------------------------------------------------- fit

@pytest.mark.parametrize("chunks", [750, (1000, 5)], ids=["row-blocks", "row-and-column-blocks"])
def test_fit_reaches_the_numpy_optimum(chunks):
    X, y = _data()
    alpha = 1e-3
    ref = SoftmaxRegression(alpha=alpha, random_state=0).fit(X, y)
    model = SoftmaxRegression(alpha=alpha, random_state=0).fit(
        da.from_array(X, chunks=chunks), da.from_array(y, chunks=750))
    lr = LogisticRegression(C=1 / (alpha * len(y)), tol=1e-10, max_iter=10_000).fit(
        (X - X.mean(0)) / X.std(0), y)
    optimum = _objective((X - X.mean(0)) / X.std(0), y, lr.coef_, lr.intercept_, alpha)
    f_ref = _objective(X, y, ref.coef_, ref.intercept_, alpha)
    f_dask = _objective(X, y, model.coef_, model.intercept_, alpha)
    assert isinstance(model.coef_, np.ndarray) and model.coef_.shape == ref.coef_.shape
    assert model.n_features_in_ == X.shape[1] and model.t_ == model.n_iter_ * len(y)
    # the standardized problem has the same optimum value only without the penalty's
    # change of scale; so both fits are held to the NumPy fit, and to LR loosely
    assert f_dask <= f_ref + 1e-3 * f_ref
    assert f_ref >= optimum - 0.05
    assert abs(model.score(X, y) - ref.score(X, y)) < 0.01


def test_fit_float32_unknown_chunks_and_class_labels():
    X, y = _data(seed=1)
    labels = np.array(["ant", "bee", "cat", "dog"])[y]
    Xd = da.from_array(X.astype(np.float32), chunks=800)
    keep = Xd[:, 2] > -0.5  # unknown chunk sizes: shape (nan, 12)
    Xk, yk = Xd[keep], da.from_array(labels, chunks=800)[keep]
    assert np.isnan(Xk.shape[0])
    model = SoftmaxRegression(alpha=1e-3, random_state=0).fit(Xk, yk)
    mask = X[:, 2].astype(np.float32) > -0.5
    ref = SoftmaxRegression(alpha=1e-3, random_state=0).fit(X[mask].astype(np.float32),
                                                             labels[mask])
    assert model.coef_.dtype == np.float32 and model.classes_.tolist() == sorted(set(labels))
    y_idx = np.searchsorted(model.classes_, labels[mask])
    f_ref = _objective(X[mask], y_idx, ref.coef_, ref.intercept_, 1e-3)
    f_dask = _objective(X[mask], y_idx, model.coef_, model.intercept_, 1e-3)
    assert f_dask <= f_ref * (1 + 2e-3)
    assert model.t_ == model.n_iter_ * int(mask.sum())


def test_fit_weights_and_balanced_classes():
    X, y = _data(seed=2)
    y = np.where(np.arange(len(y)) % 5 == 0, 0, y)  # class 0 over-represented
    w = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    kw = dict(alpha=1e-3, class_weight="balanced", random_state=0)
    ref = SoftmaxRegression(**kw).fit(X, y, sample_weight=w)
    for weights in (da.from_array(w, chunks=1100), w):  # dask weights (other chunks), NumPy
        model = SoftmaxRegression(**kw).fit(da.from_array(X, chunks=750),
                                            da.from_array(y, chunks=750),
                                            sample_weight=weights)
        counts = np.bincount(y)
        cw = len(y) / (len(counts) * counts)
        full_w = w * cw[y]
        f_ref = _objective(X, y, ref.coef_, ref.intercept_, 1e-3, full_w)
        f_dask = _objective(X, y, model.coef_, model.intercept_, 1e-3, full_w)
        assert f_dask <= f_ref * (1 + 1e-3)


def test_fit_warm_start_and_two_classes():
    X, y = _data(k=2, seed=3)
    Xd, yd = da.from_array(X, chunks=1000), da.from_array(y, chunks=1000)
    model = SoftmaxRegression(alpha=1e-3, random_state=0, warm_start=True).fit(Xd, yd)
    assert model.coef_.shape == (1, X.shape[1])
    ref = SoftmaxRegression(alpha=1e-3, random_state=0).fit(X, y)
    f1 = _objective(X, y, model.coef_, model.intercept_, 1e-3)
    assert f1 <= _objective(X, y, ref.coef_, ref.intercept_, 1e-3) * (1 + 1e-3)
    model.fit(Xd, yd)  # from the optimum, it stays there
    assert _objective(X, y, model.coef_, model.intercept_, 1e-3) <= f1 * (1 + 1e-3)


@pytest.mark.parametrize("ahead", [1, 2])
def test_stream_keeps_a_few_blocks_and_visits_each_once_per_epoch(ahead):
    """The stream computes blocks k + 1 .. k + ahead while block k trains, never further."""
    X, y = _data(n=4000)
    data = DaskTrainingSet.from_inputs(da.from_array(X, chunks=500),
                                       da.from_array(y, chunks=500), None)
    started, lock = [], threading.Lock()

    def prepare(i, Xb, yb, wb, rng):
        with lock:
            started.append(i)
        return i, Xb

    stream = BlockStream(data, prepare, ahead=ahead)
    orders = []
    for seed in range(3):
        order = np.random.RandomState(seed).permutation(len(stream)).tolist()
        seen = []
        for k, (i, Xb) in enumerate(stream.epoch(order, [0] * len(order))):
            np.testing.assert_array_equal(Xb, X[500 * i:500 * (i + 1)])
            with lock:
                # blocks started so far in this epoch: this one and at most `ahead` more
                assert len(started) - len(orders) * len(order) <= k + 1 + ahead
            seen.append(i)
        assert seen == order
        orders.append(order)
    stream.close()
    assert sorted(orders[0]) == list(range(8)) and len({tuple(o) for o in orders}) == 3


def test_fit_shuffles_blocks_each_epoch():
    """Data sorted by class, one class per block: only a per-epoch random block order and
    row permutation make the minibatches mixed; the fit must still match the NumPy one."""
    X, y = _data(seed=4)
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    model = SoftmaxRegression(alpha=1e-3, random_state=0).fit(
        da.from_array(X, chunks=500), da.from_array(y, chunks=500))
    ref = SoftmaxRegression(alpha=1e-3, random_state=0).fit(X, y)
    assert _objective(X, y, model.coef_, model.intercept_, 1e-3) <= \
        _objective(X, y, ref.coef_, ref.intercept_, 1e-3) * (1 + 2e-3)


# --------------------------------------------------------- partial_fit

def test_partial_fit_is_one_pass_over_the_blocks():
    X, y = _data(seed=5, unscaled=False)
    Xd, yd = da.from_array(X, chunks=1500), da.from_array(y, chunks=1500)
    model = SoftmaxRegression(random_state=0, schedule="invscaling")
    for _ in range(3):
        model.partial_fit(Xd, yd, classes=np.arange(4))
    assert model.n_iter_ == 3 and model.t_ == 3 * len(y)
    ref = SoftmaxRegression(random_state=0, schedule="invscaling")
    for _ in range(3):
        for start in range(0, len(y), 1500):
            ref.partial_fit(X[start:start + 1500], y[start:start + 1500], classes=np.arange(4))
    # one pass over the same blocks is as good as the in-memory chunk loop
    assert model.score(X, y) > ref.score(X, y) - 0.03
    assert model.score(X, y) > 0.6


def test_partial_fit_checks_labels_and_values_of_each_block():
    X, y = _data(n=3000)
    model = SoftmaxRegression(random_state=0)
    model.partial_fit(da.from_array(X, chunks=1000), da.from_array(y, chunks=1000),
                      classes=np.arange(4))
    before = model.coef_.copy()
    y_bad = y.copy()
    y_bad[2500] = 7
    with pytest.raises(ValueError, match=re.escape("y contains labels not in classes_: [7]")):
        model.partial_fit(da.from_array(X, chunks=1000), da.from_array(y_bad, chunks=1000))
    X_bad = X.copy()
    X_bad[1200, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity .*row block 1"):
        model.partial_fit(da.from_array(X_bad, chunks=1000), da.from_array(y, chunks=1000))
    np.testing.assert_array_equal(model.coef_, before)  # a failed call leaves it unchanged
    assert model.n_iter_ == 1
    with pytest.raises(ValueError, match="X has 11 features, but SoftmaxRegression is "
                                         "expecting 12"):
        model.partial_fit(da.from_array(X[:, 1:], chunks=1000), da.from_array(y, chunks=1000))


# ------------------------------------------------------------- errors

@pytest.mark.parametrize("case, match", [
    ("nan", r"Input X contains NaN or infinity \(in row block\(s\) \[2\]"),
    ("inf_weight", r"Input X or sample_weight contains NaN or infinity"),
    ("negative_weight", "Negative values in data passed to `sample_weight`"),
    ("one_class", "at least 2 classes"),
    ("continuous", "Unknown label type"),
    ("lengths", r"inconsistent numbers of samples: \[3000, 2999\]"),
    ("unknown_lengths", "inconsistent numbers of samples in row block"),
    ("numpy_y_unknown_X", "unknown chunk sizes, so y must be a dask array"),
    ("early_stopping", "early_stopping is not supported for dask input"),
    ("sparse_blocks", "dask arrays of NumPy blocks"),
    ("strings", "X must hold real numbers"),
])
def test_fit_errors(case, match):
    X, y = _data(n=3000)
    w = None
    kw = {}
    if case == "nan":
        X[2100, 0] = np.nan
    elif case == "inf_weight":
        w = np.ones(len(y))
        w[5] = np.inf
    elif case == "negative_weight":
        w = np.ones(len(y))
        w[5] = -1
    elif case == "one_class":
        y = np.zeros_like(y)
    elif case == "continuous":
        y = y + 0.5
    elif case == "early_stopping":
        kw = {"early_stopping": True}
    Xd, yd = da.from_array(X, chunks=1000), da.from_array(y, chunks=1000)
    if case == "lengths":
        yd = yd[1:]
    elif case == "unknown_lengths":
        Xd, yd = Xd[Xd[:, 2] > 0], yd[yd >= 0]
    elif case == "numpy_y_unknown_X":
        Xd, yd = Xd[Xd[:, 2] > 0], y
    elif case == "sparse_blocks":
        sparse = pytest.importorskip("scipy.sparse")
        Xd = Xd.map_blocks(sparse.csr_matrix, meta=sparse.csr_matrix((0, 0)))
    elif case == "strings":
        Xd = da.from_array(X.astype(str), chunks=1000)
    model = SoftmaxRegression(random_state=0, **kw)
    with pytest.raises((ValueError, TypeError), match=match):
        model.fit(Xd, yd, sample_weight=w)
    assert not hasattr(model, "coef_")


def _check_diverging_fit_is_rolled_back():
    X, y = _data(n=3000, unscaled=False)
    Xd, yd = da.from_array(X, chunks=1000), da.from_array(y, chunks=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = SoftmaxRegression(learning_rate=1e4, momentum=0.0, random_state=0,
                                  max_iter=30).fit(Xd, yd)
    assert model.n_divergence_retries_ > 0
    assert np.isfinite(model.coef_).all() and model.score(X, y) > 0.5


def test_diverging_fit_is_rolled_back_or_raises():
    """A far too large step diverges: the epoch is undone and retried with a smaller one
    (as in memory), never a silent garbage model."""
    _check_diverging_fit_is_rolled_back()


# -------------------------------------------------------- predictions

@pytest.mark.parametrize("k", [2, 4])
def test_predictions_are_lazy_and_equal_the_numpy_ones(k):
    X, y = _data(n=3000, k=k)
    labels = np.array(["a", "b", "c", "d"])[y]
    model = SoftmaxRegression(random_state=0).fit(X, labels)
    Xd = da.from_array(X, chunks=(700, 5))
    with dask.config.set(scheduler=_NoCompute()):
        results = {m: getattr(model, m)(Xd) for m in
                   ("decision_function", "predict", "predict_proba", "predict_log_proba")}
    for method, lazy in results.items():
        assert isinstance(lazy, da.Array)
        expected = getattr(model, method)(X)
        got = lazy.compute(scheduler="sync")
        assert got.dtype == expected.dtype and got.shape == expected.shape
        if method == "predict":
            np.testing.assert_array_equal(got, expected)
        else:  # the same kernels on each block; BLAS may round a block's product differently
            np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    # unknown chunk sizes stay lazy too
    lazy = model.predict_proba(Xd[Xd[:, 2] > 0])
    assert np.isnan(lazy.shape[0])
    np.testing.assert_allclose(lazy.compute(), model.predict_proba(X[X[:, 2] > 0]),
                               rtol=1e-13, atol=1e-13)
    assert model.score(Xd, da.from_array(labels, chunks=500)) == model.score(X, labels)
    w = np.linspace(0.5, 2, len(y))
    assert model.score(Xd, labels, sample_weight=w) == pytest.approx(
        model.score(X, labels, sample_weight=w), rel=1e-12)


def test_prediction_checks():
    X, y = _data(n=2000)
    model = SoftmaxRegression(random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 11 features, but SoftmaxRegression is "
                                         "expecting 12"):
        model.predict(da.from_array(X[:, 1:], chunks=500))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SoftmaxRegression().predict(da.from_array(X, chunks=500))


def test_dask_dataframe_input():
    pd = pytest.importorskip("pandas")  # first: dask.dataframe fails to import without it
    dd = pytest.importorskip("dask.dataframe")
    X, y = _data(n=3000)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    ddf = dd.from_pandas(frame, npartitions=3)
    model = SoftmaxRegression(alpha=1e-3, random_state=0).fit(
        ddf, dd.from_pandas(pd.Series(y), npartitions=3))
    assert model.feature_names_in_.tolist() == list(frame.columns)
    ref = SoftmaxRegression(alpha=1e-3, random_state=0).fit(X, y)
    assert _objective(X, y, model.coef_, model.intercept_, 1e-3) <= \
        _objective(X, y, ref.coef_, ref.intercept_, 1e-3) * (1 + 1e-3)
    proba = model.predict_proba(ddf)
    assert isinstance(proba, da.Array)
    np.testing.assert_allclose(proba.compute(), model.predict_proba(frame), rtol=1e-12,
                               atol=1e-13)


# ------------------------------------------------ on a distributed cluster

def test_fit_and_predict_on_a_cluster(dask_client):
    X, y = _data(n=4000, seed=6)
    Xd, yd = da.from_array(X, chunks=1000), da.from_array(y, chunks=1000)
    model = SoftmaxRegression(alpha=1e-3, random_state=0).fit(Xd, yd)
    ref = SoftmaxRegression(alpha=1e-3, random_state=0).fit(X, y)
    assert _objective(X, y, model.coef_, model.intercept_, 1e-3) <= \
        _objective(X, y, ref.coef_, ref.intercept_, 1e-3) * (1 + 1e-3)
    lazy = model.predict_proba(Xd)
    np.testing.assert_allclose(lazy.compute(), model.predict_proba(X), rtol=1e-13, atol=1e-13)


def test_workers_run_the_kernels_on_one_thread(dask_client):
    """The nanny sets OMP_NUM_THREADS=1 (distributed.nanny.pre-spawn-environ): our kernels
    ask OpenMP at each call, so a worker task runs them on one thread (no
    oversubscription of n_workers x cores)."""
    from softmax_core._threads import max_threads

    counts = dask_client.run(max_threads)
    assert set(counts.values()) == {1}
    X, y = _data(n=3000)
    model = SoftmaxRegression(random_state=0).fit(X, y)
    # inside a prediction task too
    lazy = da.from_array(X, chunks=1000).map_blocks(
        lambda b: np.full((b.shape[0],), max_threads()), drop_axis=1, dtype=int)
    assert set(lazy.compute().tolist()) == {1}
    assert model.predict(da.from_array(X, chunks=1000)).compute().shape == (3000,)


def test_dask_ml_incremental_and_parallel_post_fit(dask_client):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, y = _data(n=4000, seed=7, unscaled=False)
    Xd, yd = da.from_array(X, chunks=1000), da.from_array(y, chunks=1000)
    inc = wrappers.Incremental(SoftmaxRegression(random_state=0, schedule="invscaling"))
    inc.fit(Xd, yd, classes=np.arange(4))
    assert inc.estimator_.t_ == len(y)  # one pass over the blocks
    ours = SoftmaxRegression(random_state=0, schedule="invscaling").partial_fit(
        Xd, yd, classes=np.arange(4))
    assert abs(inc.score(Xd, yd) - ours.score(Xd, yd)) < 0.05
    post = wrappers.ParallelPostFit(SoftmaxRegression(random_state=0)).fit(X, y)
    proba = post.predict_proba(Xd)
    assert isinstance(proba, da.Array)
    np.testing.assert_allclose(proba.compute(), post.estimator.predict_proba(X), rtol=1e-13,
                               atol=1e-13)


@pytest.mark.parametrize("scatter", [False, True], ids=["sent-with-tasks", "scattered"])
def test_grid_search_under_the_dask_joblib_backend(dask_client, scatter):
    """The search on the cluster scores as the serial one, with X and y scattered by joblib
    with the first task or to every worker before it (as the user guide shows)."""
    joblib = pytest.importorskip("joblib")
    from sklearn.model_selection import GridSearchCV

    X, y = _data(n=1500, unscaled=False)
    grid = {"alpha": [1e-4, 1e-2], "batch_size": [32, 128]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with joblib.parallel_backend("dask", scatter=[X, y] if scatter else None):
            backend = joblib.parallel.get_active_backend()[0]
            if scatter:  # the very objects passed to fit, on both workers
                futures = [backend.data_futures[id(a)] for a in (X, y)]
                held = dask_client.who_has(futures)
                assert all(len(held[f.key]) == 2 for f in futures)
            else:
                assert not backend.data_futures
            search = GridSearchCV(SoftmaxRegression(random_state=0), grid, cv=3,
                                  n_jobs=-1).fit(X, y)
        serial = GridSearchCV(SoftmaxRegression(random_state=0), grid, cv=3).fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               serial.cv_results_["mean_test_score"], rtol=0, atol=1e-12)
    assert search.best_params_ == serial.best_params_


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("known", [True, False], ids=["known-chunks", "unknown-chunks"])
def test_survey_moments_labels_and_sample(weighted, known):
    """The one-pass survey: pooled moments equal NumPy's on all rows (large offsets too),
    label counts, and a sample of distinct rows of the data of the requested size."""
    from softmax_core._dask_blocks import survey

    X, y = _data(n=5000, seed=8)
    X[:, 2] += 1e6  # a large offset: the pooled update must not cancel
    w = np.random.default_rng(1).uniform(0.0, 2.0, len(y)) if weighted else None
    Xd = da.from_array(X, chunks=(600, 7))
    yd = da.from_array(y, chunks=600)
    wd = None if w is None else da.from_array(w, chunks=600)
    if not known:
        keep = Xd[:, 3] > -1.0
        Xd, yd = Xd[keep], yd[keep]
        wd = None if wd is None else wd[keep]
        mask = X[:, 3] > -1.0
        X, y, w = X[mask], y[mask], (None if w is None else w[mask])
    data = DaskTrainingSet.from_inputs(Xd, yd, wd)
    info = survey(data, 700, np.random.RandomState(0))
    weights = np.ones(len(y)) if w is None else w
    mean = weights @ X / weights.sum()
    var = weights @ (X - mean) ** 2 / weights.sum()
    np.testing.assert_allclose(info.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(info.var, var, rtol=1e-9)
    assert info.n == len(y) and info.labels.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(info.counts, np.bincount(y))
    np.testing.assert_allclose(info.label_weights, np.bincount(y, weights=weights), rtol=1e-12)
    assert info.sample_X.shape == (700, X.shape[1])
    rows = {tuple(r) for r in info.sample_X.tolist()}
    assert len(rows) == 700 and rows <= {tuple(r) for r in X.tolist()}


def test_fit_is_reproducible_with_a_random_state():
    """The background thread's timing never enters the result: the block order and the
    row permutations come from seeds drawn by the fit itself."""
    X, y = _data(n=3000, seed=9)
    fits = [SoftmaxRegression(random_state=3).fit(da.from_array(X, chunks=700),
                                                  da.from_array(y, chunks=700))
            for _ in range(2)]
    np.testing.assert_array_equal(fits[0].coef_, fits[1].coef_)
    assert fits[0].loss_curve_ == fits[1].loss_curve_
    other = SoftmaxRegression(random_state=4).fit(da.from_array(X, chunks=700),
                                                  da.from_array(y, chunks=700))
    assert not np.array_equal(other.coef_, fits[0].coef_)


# ------------------------------------------ the chain of block steps on the workers

def _chain_fit(X, y, scheduler=None, **kw):
    Xd, yd = da.from_array(X, chunks=700), da.from_array(y, chunks=700)
    model = SoftmaxRegression(random_state=2, **kw)
    with dask.config.set({} if scheduler is None else {"scheduler": scheduler}):
        return model.fit(Xd, yd)


@pytest.mark.parametrize("kw", [{}, {"momentum": 0.9, "class_weight": "balanced"}])
def test_fit_on_the_workers_equals_the_local_fit(dask_client, kw):
    """With a client, the blocks train on the workers (the model travels, not the blocks);
    the same seeds make it the fit under the threaded scheduler, to the bit."""
    from softmax_core._dask_chain import WorkerChain, chain_for

    X, y = _data(n=5000, seed=10)
    data = DaskTrainingSet.from_inputs(da.from_array(X, chunks=700), da.from_array(y, 700), None)
    assert isinstance(chain_for(data, None), WorkerChain)
    with pytest.MonkeyPatch.context() as mp:  # no block comes to this process
        mp.setattr(BlockStream, "epoch", lambda *a, **k: pytest.fail("BlockStream used"))
        on_workers = _chain_fit(X, y, **kw)
    local = _chain_fit(X, y, scheduler="threads", **kw)
    assert on_workers.n_iter_ == local.n_iter_ > 1
    np.testing.assert_array_equal(on_workers.coef_, local.coef_)
    np.testing.assert_array_equal(on_workers.intercept_, local.intercept_)
    assert on_workers.loss_curve_ == local.loss_curve_
    ref = SoftmaxRegression(random_state=2, **kw).fit(X, y)
    assert _objective(X, y, on_workers.coef_, on_workers.intercept_, 1e-4) <= \
        _objective(X, y, ref.coef_, ref.intercept_, 1e-4) * (1 + 2e-3)


def test_partial_fit_on_the_workers_equals_the_local_one_and_checks_each_block(dask_client):
    X, y = _data(n=3000, seed=11)
    Xd, yd = da.from_array(X, chunks=1000), da.from_array(y, chunks=1000)
    models = []
    for scheduler in (None, "threads"):
        model = SoftmaxRegression(random_state=0, schedule="invscaling")
        with dask.config.set({} if scheduler is None else {"scheduler": scheduler}):
            for _ in range(2):
                model.partial_fit(Xd, yd, classes=np.arange(4))
        models.append(model)
    np.testing.assert_array_equal(models[0].coef_, models[1].coef_)
    assert models[0].t_ == models[1].t_ == 2 * len(y)
    model = models[0]
    before = model.coef_.copy()
    y_bad = y.copy()
    y_bad[2500] = 7  # in the last block: the earlier steps ran on the workers
    with pytest.raises(ValueError, match=re.escape("y contains labels not in classes_: [7]")):
        model.partial_fit(Xd, da.from_array(y_bad, chunks=1000))
    X_bad = X.copy()
    X_bad[1200, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity .*row block 1"):
        model.partial_fit(da.from_array(X_bad, chunks=1000), yd)
    np.testing.assert_array_equal(model.coef_, before)
    assert model.n_iter_ == 2


def test_diverging_fit_on_the_workers_is_rolled_back(dask_client):
    _check_diverging_fit_is_rolled_back()


@pytest.mark.parametrize("ahead", [1, 2, 3])
def test_worker_chain_computes_at_most_ahead_blocks_beyond_the_one_training(
        dask_client, monkeypatch, ahead):
    """Block j is submitted only once the steps of blocks ..., j - ahead - 1 have returned:
    the cluster holds at most ahead + 1 prepared blocks; each block once per epoch, in the
    given order, and the chain's result is the local chain's."""
    import distributed

    from softmax_core._dask_chain import LocalChain, Params, Step, WorkerChain
    from softmax_core._sgd import SGDConfig

    X, y = _data(n=4000, seed=12)
    data = DaskTrainingSet.from_inputs(da.from_array(X.astype(np.float64), chunks=500),
                                       da.from_array(y, chunks=500), None)
    prepare = _BlocksForTest()
    events = []
    chain = WorkerChain(dask_client, data, prepare, ahead=ahead)
    load = chain._load

    def logged_load(i, seed):
        events.append(("load", i))
        return load(i, seed)

    monkeypatch.setattr(chain, "_load", logged_load)
    result = distributed.Future.result

    def logged_result(self, *args, **kwargs):
        value = result(self, *args, **kwargs)
        if isinstance(value, Params):
            events.append(("step", None))
        return value

    monkeypatch.setattr(distributed.Future, "result", logged_result)
    order = np.random.RandomState(0).permutation(len(chain)).tolist()
    seeds = list(range(100, 100 + len(order)))
    W0 = np.zeros((12, 4))
    step = Step(SGDConfig(batch_size=50), _identity(), 50, 0.05)
    params = chain.epoch(order, seeds, Params(W0.copy(), np.zeros(4), None, None),
                         lambda: step)
    loads = [i for kind, i in events if kind == "load"]
    assert loads == order
    done, furthest = 0, 0
    for kind, i in events:
        if kind == "step":
            done += 1
        else:
            furthest = max(furthest, order.index(i) - done)
    assert furthest == ahead  # while block `done` trains, blocks up to done + ahead are computed
    assert done == len(order) and params.n == len(y)
    local = LocalChain(data, prepare, ahead=ahead)
    expected = local.epoch(order, seeds, Params(W0.copy(), np.zeros(4), None, None),
                           lambda: step)
    local.close()
    np.testing.assert_array_equal(params.W, expected.W)
    assert params.total == expected.total


class _BlocksForTest:
    """A prepare step (as `_dask_fit._Blocks`): the block as float64, labels as int64."""

    def __call__(self, i, Xb, yb, wb, rng):
        perm = rng.permutation(Xb.shape[0]).astype(np.int64)
        return np.ascontiguousarray(Xb), np.asarray(yb, dtype=np.int64)[perm], None, perm


def _identity():
    from softmax_core._preconditioner import Preconditioner

    return Preconditioner()


def test_worker_chain_of_a_large_model_and_its_futures_after_an_error(dask_client, monkeypatch):
    """A model above FOLLOW_BYTES comes back at the end of the pass only (the same fit);
    an error in a block leaves no future of the chain on the cluster."""
    import gc

    from softmax_core import _dask_chain

    X, y = _data(n=3000, seed=13)
    local = _chain_fit(X, y, scheduler="threads", momentum=0.9)
    monkeypatch.setattr(_dask_chain, "FOLLOW_BYTES", 0)
    large = _chain_fit(X, y, momentum=0.9)
    np.testing.assert_array_equal(large.coef_, local.coef_)
    assert large.loss_curve_ == local.loss_curve_
    y_bad = y.copy()
    y_bad[2900] = 9
    model = SoftmaxRegression(random_state=0)
    model.partial_fit(da.from_array(X, chunks=700), da.from_array(y, chunks=700),
                      classes=np.arange(4))
    for follow in (0, 1 << 20):
        monkeypatch.setattr(_dask_chain, "FOLLOW_BYTES", follow)
        with pytest.raises(ValueError, match=re.escape("labels not in classes_: [9]")):
            model.partial_fit(da.from_array(X, chunks=700), da.from_array(y_bad, chunks=700))
    import time

    # a dropped Future leaves client.futures only when the client's event-loop thread
    # runs its release (Future.release -> loop.add_callback(_dec_ref)): wait up to 10 s
    deadline = time.monotonic() + 10
    while True:
        gc.collect()
        left = [k for k in dask_client.futures
                if any(name in str(k) for name in ("train_block", "prepare_block", "Step",
                                                    "Params"))]
        if left == [] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert left == []


def _fit_in_a_task(X, y, incremental, scheduler=None):
    """Run in a dask task: a fit (or two partial_fit calls) on dask arrays made in the task,
    then its score on them; returns the model, the chains it trained with and the score."""
    from softmax_core import _dask_fit

    Xd, yd = da.from_array(X, chunks=700), da.from_array(y, chunks=700)
    model = SoftmaxRegression(random_state=2)
    chains, original = [], _dask_fit.chain_for

    def spy(*args, **kwargs):
        chain = original(*args, **kwargs)
        chains.append(type(chain).__name__)
        return chain

    _dask_fit.chain_for = spy
    try:
        with dask.config.set({} if scheduler is None else {"scheduler": scheduler}):
            if incremental:
                model.partial_fit(Xd, yd, classes=np.unique(y))
                model.partial_fit(Xd, yd)
            else:
                model.fit(Xd, yd)
            score = model.score(Xd, yd)
    finally:
        _dask_fit.chain_for = original
    return model, chains, score


def _in_a_task(n_workers, *args):
    """``_fit_in_a_task(*args)`` as a task on a fresh in-process cluster of ``n_workers``
    workers of one thread (cancelled after 120 s, so a deadlock fails the test alone)."""
    distributed = pytest.importorskip("distributed")
    import logging

    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=False,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        future = client.submit(_fit_in_a_task, *args, pure=False)
        try:
            return future.result(timeout=120)
        finally:
            future.cancel()


@pytest.mark.parametrize("incremental", [False, True])
def test_fit_inside_a_dask_task(incremental):
    """A fit on dask arrays inside a task on workers of one thread: it leaves the worker's
    thread pool (else its blocks wait for the thread it holds: it never finished) and
    trains with the worker's client, the same model as the threaded scheduler's; its score
    on the dask arrays is computed there too."""
    X, y = _data(n=3000, seed=14)
    model, chains, score = _in_a_task(2, X, y, incremental)
    assert chains == ["WorkerChain"] * (2 if incremental else 1)
    with dask.config.set(scheduler="threads"):
        expected, local_chains, _ = _fit_in_a_task(X, y, incremental)
    assert local_chains == ["LocalChain"] * len(chains)
    np.testing.assert_array_equal(model.coef_, expected.coef_)
    np.testing.assert_array_equal(model.intercept_, expected.intercept_)
    assert model.n_iter_ == expected.n_iter_
    assert score == pytest.approx(float(np.mean(expected.predict(X) == y)), abs=1e-12)


def test_fit_inside_a_task_on_a_single_thread_cluster():
    X, y = _data(n=2000, seed=15)
    model, chains, score = _in_a_task(1, X, y, False)
    assert chains == ["WorkerChain"]
    assert score == pytest.approx(float(np.mean(model.predict(X) == y)), abs=1e-12)
    assert score > 0.6


def test_fit_inside_a_task_keeps_a_configured_local_scheduler():
    # dask.config.set(scheduler="threads") inside the task: the blocks come to the task
    X, y = _data(n=2000, seed=15)
    model, chains, _ = _in_a_task(1, X, y, False, "threads")
    assert chains == ["LocalChain"]
    with dask.config.set(scheduler="threads"):
        expected, _, _ = _fit_in_a_task(X, y, False)
    np.testing.assert_array_equal(model.coef_, expected.coef_)


def test_warnings_of_a_dask_fit_point_at_the_caller():
    """The same attribution as a NumPy fit's (warnings.warn's stacklevel), though the
    dask path reaches its warnings through more frames."""
    from sklearn.exceptions import DataConversionWarning

    X, y = _data(n=2000, seed=5)
    Xd, yd = da.from_array(X, chunks=500), da.from_array(y, chunks=500)
    with pytest.warns(ConvergenceWarning) as record:
        SoftmaxRegression(max_iter=1, random_state=0).fit(Xd, yd)
    assert [r.filename for r in record] == [__file__]
    column = da.from_array(y[:, None], chunks=500)
    with pytest.warns(DataConversionWarning) as record:
        SoftmaxRegression(max_iter=3, tol=None, random_state=0).fit(Xd, column)
    assert [r.filename for r in record] == [__file__]
    with pytest.warns(DataConversionWarning) as record:
        SoftmaxRegression(random_state=0).partial_fit(Xd, column, classes=np.unique(y))
    assert [r.filename for r in record] == [__file__]
