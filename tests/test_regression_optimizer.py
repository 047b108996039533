"""SoftmaxRegression's optimizer: unscaled data, divergence, stopping, early stopping,
warm starts, the lazy sparse step, warnings and parameter names.

Oracles: ``LogisticRegression`` solved tightly (its objective at matched
regularisation), the dense step for the sparse one, and plain NumPy/SciPy
objectives computed here in float64.
"""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from scipy.special import logsumexp
from sklearn.datasets import load_breast_cancer, load_iris, load_wine, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from softmax_core import SoftmaxRegression
from softmax_core._sgd_steps import batch_bounds


def _objective(clf, X, y, alpha):
    """Mean cross-entropy plus alpha / 2 * ||W||^2 of the multinomial parameters."""
    W, b = clf.coef_, clf.intercept_
    if W.shape[0] == 1:
        W, b = np.vstack([-W / 2, W / 2]), np.concatenate([-b / 2, b / 2])
    Z = X @ W.T + b
    idx = np.searchsorted(clf.classes_, y)
    return np.mean(logsumexp(Z, axis=1) - Z[np.arange(len(y)), idx]) + alpha / 2 * (W**2).sum()


def _optimum(X, y, alpha):
    n, k = X.shape[0], len(np.unique(y))
    C = (2.0 if k == 2 else 1.0) / (alpha * n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = LogisticRegression(C=C, tol=1e-10, max_iter=20_000).fit(X, y)
    return _objective(ref, X, y, alpha), ref


# ------------------------------------------------------------ unscaled data


@pytest.mark.parametrize("loader", [load_wine, load_breast_cancer])
def test_raw_features_train_like_logistic_regression(loader):
    """Raw wine / breast_cancer (features from 0.01 to 1000s): no scaler needed."""
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always", ConvergenceWarning)
        clf = SoftmaxRegression(random_state=0).fit(X_train, y_train)
    # at most the optimality check's warning (breast_cancer: a gap of ~5e-3), never
    # divergence, max_iter or "no better than zeros"
    assert all("Newton step" in str(r.message) for r in record), [str(r.message) for r in record]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # lbfgs warns on raw data
        ref = LogisticRegression().fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= ref.score(X_test, y_test) - 0.02
    zero_loss = np.log(len(clf.classes_))
    assert clf.loss_curve_[-1] < 0.2 * zero_loss


def test_preconditioning_makes_the_fit_scale_invariant():
    """Rescaling features changes nothing but the units of coef_: the steps are taken
    in standardized coordinates (with alpha=0 the objective is scale-invariant too)."""
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    scale = np.array([1e-3, 1, 10, 100] * 3 + [1e4])
    kw = dict(alpha=0.0, max_iter=20, tol=None, random_state=0)
    plain = SoftmaxRegression(**kw).fit(X, y)
    scaled = SoftmaxRegression(**kw).fit(X * scale, y)
    assert_allclose(scaled.coef_ * scale, plain.coef_, rtol=1e-6, atol=1e-9)
    assert_allclose(scaled.intercept_, plain.intercept_, rtol=1e-6, atol=1e-9)


def test_unpreconditioned_raw_data_rolls_back_and_recovers(capsys):
    """Plain SGD on raw wine diverges at the derived step of the raw features' scale;
    the epoch is undone and retried with a smaller step, and the log says so."""
    X, y = load_wine(return_X_y=True)
    clf = SoftmaxRegression(precondition=False, learning_rate=0.01, random_state=0,
                            verbose=1, max_iter=50)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        clf.fit(X, y)
    out = capsys.readouterr().out
    assert re.search(r"Epoch \d+: objective .* diverged .*rolled back .*learning rate lowered",
                     out), out
    assert clf.n_divergence_retries_ >= 1
    assert np.isfinite(clf.coef_).all()
    assert clf.loss_curve_[-1] < np.log(3)  # better than zeros after the retries
    assert max(clf.loss_curve_) <= np.log(3) * 1.1 + 1e-12  # no diverged epoch kept


def test_unrecoverable_divergence_raises_and_never_reports_convergence(capsys):
    X, y = load_iris(return_X_y=True)
    clf = SoftmaxRegression(precondition=False, learning_rate=1e12, random_state=0, verbose=1)
    with pytest.raises(ValueError, match="diverged.*6 retries.*scale the data"):
        clf.fit(X * 1e6, y)
    assert "Converged" not in capsys.readouterr().out
    assert not hasattr(clf, "coef_")


def test_no_better_than_zeros_warns():
    """Balanced labels independent of X and a strong penalty: the optimum is about the
    all-zero model; say so instead of reporting convergence in silence."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2001, 5))
    y = rng.permutation(np.arange(2001) % 3)
    with pytest.warns(ConvergenceWarning, match="no better than that of the all-zero model"):
        SoftmaxRegression(alpha=1.0, random_state=0).fit(X, y)


# ----------------------------------------------------------------- stopping


@pytest.mark.parametrize("raw", [False, True], ids=["std", "raw"])
@pytest.mark.parametrize("loader", [load_iris, load_breast_cancer, load_wine])
def test_stopping_on_tiny_data_is_near_the_optimum_or_warns(loader, raw):
    """Tiny, weakly regularized data: the fit stops by itself; its objective is within
    1e-3 of the optimum, or the Newton-decrement check warns.  The check's estimate
    agrees with the true gap (LogisticRegression's optimum) within a factor of 2."""
    X, y = loader(return_X_y=True)
    if not raw:
        X = StandardScaler().fit_transform(X)
    f_opt, _ = _optimum(X, y, 1e-4)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always", ConvergenceWarning)
        clf = SoftmaxRegression(random_state=0).fit(X, y)
    gap = _objective(clf, X, y, 1e-4) - f_opt
    assert clf.n_iter_ < clf.max_iter
    assert 0.5 * gap <= clf.optimality_gap_ <= 2 * gap + 1e-9
    warned = any("Newton step" in str(r.message) for r in record)
    assert warned == (clf.optimality_gap_ > 1e-3 * max(clf.loss_curve_[-1], 1.0))
    # the estimate is within a factor 2, so silence means a gap under 2e-3
    assert gap < 2e-3 or warned


def test_stopping_on_larger_data():
    """20000 x 20, 5 classes: a handful of epochs reach within 1e-3 of the optimum."""
    X, y = make_classification(20_000, 20, n_informative=10, n_classes=5, random_state=0)
    X = StandardScaler().fit_transform(X)
    f_opt, _ = _optimum(X, y, 1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = SoftmaxRegression(random_state=0).fit(X, y)
    assert clf.optimality_gap_ < 1e-3
    assert clf.n_iter_ <= 50
    assert _objective(clf, X, y, 1e-4) - f_opt < 1e-3


def test_batch_bounds_are_near_equal():
    for n, bs in [(100, 32), (70, 16), (5, 256), (256, 256), (1000, 7)]:
        bounds = batch_bounds(n, bs)
        sizes = [stop - start for start, stop in bounds]
        assert sum(sizes) == n and max(sizes) <= bs and max(sizes) - min(sizes) <= 1
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))


# ------------------------------------------------------------ early stopping


def test_early_stopping_does_not_hurt_on_small_data():
    X, y = load_iris(return_X_y=True)
    kw = dict(random_state=0)
    plain = cross_val_score(make_pipeline(StandardScaler(), SoftmaxRegression(**kw)), X, y, cv=5)
    early = cross_val_score(
        make_pipeline(StandardScaler(), SoftmaxRegression(early_stopping=True, **kw)), X, y, cv=5
    )
    assert early.mean() >= plain.mean() - 0.01


def test_early_stopping_keeps_the_best_validation_loss():
    X, y = load_wine(return_X_y=True)
    clf = SoftmaxRegression(early_stopping=True, random_state=0).fit(X, y)
    losses = clf.validation_loss_curve_
    assert len(losses) == len(clf.validation_scores_) == clf.n_iter_
    best = int(np.argmin(losses))
    assert clf.best_validation_score_ == clf.validation_scores_[best]
    assert clf.score(X, y) > 0.9


# ------------------------------------------------------------- warm starts


def test_warm_start_with_other_classes_raises():
    X, y = load_iris(return_X_y=True)
    clf = SoftmaxRegression(warm_start=True, random_state=0).fit(X, y)
    coef = clf.coef_.copy()
    with pytest.raises(ValueError, match="warm_start: the classes of y.*do not match"):
        clf.fit(X[y > 0], y[y > 0])
    assert_allclose(clf.coef_, coef)
    clf.set_params(warm_start=False).fit(X[y > 0], y[y > 0])  # a cold fit is fine
    assert clf.coef_.shape == (1, 4)


# -------------------------------------------------------------- sparse step


@pytest.mark.parametrize("alpha", [0.0, 1e-3, 0.5])
def test_lazy_sparse_step_equals_dense_step(alpha):
    """W = scale * U with updates of the active rows only == the dense update."""
    rng = np.random.default_rng(0)
    n, d = 300, 200
    X = sp.random(n, d, density=0.03, random_state=0, format="csr") * 3
    y = rng.integers(0, 4, n)
    kw = dict(alpha=alpha, momentum=0.0, precondition=False, learning_rate=0.5,
              batch_size=32, max_iter=7, tol=None, random_state=0)
    sparse = SoftmaxRegression(**kw).fit(X, y)
    dense = SoftmaxRegression(**kw).fit(X.toarray(), y)
    assert_allclose(sparse.coef_, dense.coef_, rtol=1e-9, atol=1e-12)
    assert_allclose(sparse.intercept_, dense.intercept_, rtol=1e-9, atol=1e-12)
    assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-10)


def test_lazy_sparse_step_touches_only_active_rows():
    """A feature absent from the data only decays: its coefficients stay exactly zero."""
    X = sp.random(200, 50, density=0.1, random_state=1, format="csr")
    X = X[:, :40]
    X = sp.hstack([X, sp.csr_matrix((200, 10))]).tocsr()
    y = np.arange(200) % 3
    clf = SoftmaxRegression(momentum=0.0, max_iter=5, tol=None, random_state=0).fit(X, y)
    assert np.all(clf.coef_[:, 40:] == 0)
    assert np.any(clf.coef_[:, :40] != 0)


# ------------------------------------------------------ messages and warnings


def test_convergence_warning_points_at_the_caller():
    X, y = load_iris(return_X_y=True)
    with pytest.warns(ConvergenceWarning) as record:
        SoftmaxRegression(max_iter=1).fit(X, y)
    assert record[0].filename == __file__


@pytest.mark.parametrize("name", ["eta0", "n_iter", "penalty", "loss", "learning_rate_init"])
def test_sgd_classifier_names_say_what_to_use(name):
    with pytest.raises(TypeError, match=rf"no parameter '{name}': .*(learning_rate|max_iter|"
                                        r"alpha|cross-entropy)"):
        SoftmaxRegression(**{name: 0.1})


@pytest.mark.parametrize("schedule", ["adaptive", "invscaling", "constant"])
def test_learning_rate_schedule_names_say_use_schedule(schedule):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=rf"use schedule='{schedule}'.*eta0"):
        SoftmaxRegression(learning_rate=schedule).fit(X, y)
    with pytest.raises(ValueError, match=r"'optimal' is SGDClassifier's schedule.*'auto'"):
        SoftmaxRegression(learning_rate="optimal").fit(X, y)


def test_fitted_step_and_batch_size():
    X, y = load_iris(return_X_y=True)
    clf = SoftmaxRegression(random_state=0).fit(X, y)
    assert clf.batch_size_ == 32 and clf.learning_rate_ > 0
    clf = SoftmaxRegression(learning_rate=0.05, batch_size=10, random_state=0).fit(X, y)
    assert clf.batch_size_ == 10 and clf.learning_rate_ == 0.05


# ------------------------------------------------------- L1 and tiny scales


def test_l1_with_momentum_and_centering_reaches_the_l1_optimum():
    """Elastic net at l1_ratio=1 with the default momentum and a centering
    preconditioner (features far from zero mean): the objective of saga's solution."""
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X) + 3.0
    n, alpha = len(y), 0.01

    def objective(W, b):
        Z = X @ W.T + b
        return np.mean(logsumexp(Z, axis=1) - Z[np.arange(n), y]) + alpha * np.abs(W).sum()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = LogisticRegression(penalty="l1", solver="saga", C=1 / (alpha * n), tol=1e-12,
                                 max_iter=100_000).fit(X, y)
    clf = SoftmaxRegression(alpha=alpha, l1_ratio=1.0, random_state=0).fit(X, y)
    f_ref = objective(ref.coef_, ref.intercept_)
    assert objective(clf.coef_, clf.intercept_) - f_ref < 1e-3
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


def test_a_feature_of_tiny_scale_does_not_collapse_the_step():
    """The preconditioner includes the penalty (s**2 + 2 * alpha): a feature with a
    standard deviation of 1e-4 leaves the derived step and the fit as they were."""
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    tiny = X.copy()
    tiny[:, 0] *= 1e-4
    plain = SoftmaxRegression(random_state=0).fit(X, y)
    scaled = SoftmaxRegression(random_state=0).fit(tiny, y)
    assert scaled.learning_rate_ > 0.5 * plain.learning_rate_
    f_opt, _ = _optimum(tiny, y, 1e-4)
    assert _objective(scaled, tiny, y, 1e-4) - f_opt < 1e-2


def test_newton_decrement_matches_the_gap_of_a_quadratic_model():
    """Away from the optimum, on a well-conditioned problem, the estimate is close to the
    true gap; at the optimum it is ~0 (and the gradient, hence the estimate, exact)."""
    from softmax_core._optimality import newton_decrement

    X, y = make_classification(500, 6, n_informative=4, n_classes=3, random_state=0)
    alpha = 0.1
    f_opt, ref = _optimum(X, y, alpha)
    W, b = ref.coef_.T.copy(), ref.intercept_.copy()
    kw = dict(alpha=alpha, fit_intercept=True, label_smoothing=0.0, inv_scale2=None)
    assert newton_decrement(X, y, None, W, b, **kw) < 1e-12
    clf = SoftmaxRegression(alpha=alpha, max_iter=1, tol=None, random_state=0).fit(X, y)
    est = newton_decrement(X, y, None, clf.coef_.T, clf.intercept_, **kw)
    gap = _objective(clf, X, y, alpha) - f_opt
    assert 0.7 * gap <= est <= 1.3 * gap


def test_auto_patience_is_shorter_for_long_epochs(capsys):
    """n_iter_no_change="auto": 5 epochs, or 3 once an epoch has 100 steps or more."""
    X, y = make_classification(30_000, 10, n_informative=5, n_classes=3, random_state=0)
    SoftmaxRegression(random_state=0, verbose=1).fit(X, y)  # 118 steps per epoch
    assert re.search(r"in 3 epochs", capsys.readouterr().out)
    SoftmaxRegression(random_state=0, verbose=1, batch_size=512).fit(X, y)  # 59 steps
    assert re.search(r"in 5 epochs", capsys.readouterr().out)
    SoftmaxRegression(random_state=0, verbose=1, n_iter_no_change=7).fit(X, y)
    assert re.search(r"in 7 epochs", capsys.readouterr().out)
