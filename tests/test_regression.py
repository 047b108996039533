"""SoftmaxRegression: quality on real data, the optimizer against independent
oracles (finite differences of a float64 SciPy objective, a torch training
loop, LogisticRegression's optimum), scikit-learn integration, and errors."""

import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import digits_split
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit, logsumexp
from scipy.special import log_softmax as scipy_log_softmax
from scipy.special import softmax as scipy_softmax
from sklearn.base import clone
from sklearn.datasets import load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from softmax_core import SoftmaxRegression

# ---------------------------------------------------------------- helpers


def _digits():
    return digits_split()


@pytest.fixture(scope="module")
def digits():
    return _digits()


@pytest.fixture(scope="module")
def digits_model(digits):
    X_train, _, y_train, _ = digits
    return SoftmaxRegression(random_state=0).fit(X_train, y_train)


def _iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _objective(W, b, X, y, sw, alpha, l1_ratio, label_smoothing):
    """Float64 reference: weighted mean cross-entropy plus elastic net (internal W)."""
    Z = X @ W.T + b
    log_p = Z - logsumexp(Z, axis=1, keepdims=True)
    K = W.shape[0]
    q = (1 - label_smoothing) * np.eye(K)[y] + label_smoothing / K
    per_sample = -(q * log_p).sum(axis=1)
    penalty = alpha * ((1 - l1_ratio) / 2 * (W**2).sum() + l1_ratio * np.abs(W).sum())
    return (sw * per_sample).sum() / sw.sum() + penalty


def _fd_gradient(f, theta, h=1e-6):
    grad = np.zeros_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e.flat[i] = h
        grad.flat[i] = (f(theta + e) - f(theta - e)) / (2 * h)
    return grad


def _internal(clf):
    """The multinomial parameters (one row per class) behind coef_/intercept_."""
    if clf.coef_.shape[0] == 1:
        c, d = clf.coef_, clf.intercept_
        return np.vstack([-c / 2, c / 2]), np.concatenate([-d / 2, d / 2])
    return clf.coef_, clf.intercept_


# ----------------------------------------------------------- quality bars


def test_digits_accuracy(digits, digits_model):
    _, X_test, _, y_test = digits
    assert digits_model.score(X_test, y_test) >= 0.96
    assert digits_model.n_iter_ < digits_model.max_iter  # converged, no warning needed


def test_predict_proba_is_softmax_of_decision_function(digits, digits_model):
    _, X_test, _, _ = digits
    scores = digits_model.decision_function(X_test)
    proba = digits_model.predict_proba(X_test)
    assert scores.shape == proba.shape == (X_test.shape[0], 10)
    assert_allclose(proba, scipy_softmax(scores, axis=1), rtol=1e-12, atol=1e-15)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert_array_equal(digits_model.predict(X_test), digits_model.classes_[proba.argmax(axis=1)])
    log_proba = digits_model.predict_log_proba(X_test)
    assert_allclose(
        log_proba, scores - logsumexp(scores, axis=1, keepdims=True), rtol=1e-12, atol=1e-13
    )


def test_partial_fit_matches_fit(digits, digits_model):
    X_train, X_test, y_train, y_test = digits
    rng = np.random.default_rng(0)
    clf = SoftmaxRegression(random_state=0)
    for _ in range(digits_model.n_iter_ // 3):
        order = rng.permutation(X_train.shape[0])
        for chunk in np.array_split(order, 5):
            clf.partial_fit(X_train[chunk], y_train[chunk], classes=np.arange(10))
    assert clf.n_iter_ == 5 * (digits_model.n_iter_ // 3)
    assert clf.t_ == (digits_model.n_iter_ // 3) * X_train.shape[0]
    acc_fit = digits_model.score(X_test, y_test)
    assert abs(clf.score(X_test, y_test) - acc_fit) <= 0.01


def test_class_weight_balanced_improves_minority_recall():
    X, y = make_classification(
        n_samples=3000, n_features=10, n_informative=4, weights=[0.95, 0.05], flip_y=0.02,
        class_sep=0.6, random_state=0,
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    plain = SoftmaxRegression(random_state=0).fit(X_train, y_train)
    balanced = SoftmaxRegression(random_state=0, class_weight="balanced").fit(X_train, y_train)
    recall_plain = recall_score(y_test, plain.predict(X_test), pos_label=1)
    recall_balanced = recall_score(y_test, balanced.predict(X_test), pos_label=1)
    assert recall_balanced > recall_plain + 0.2


def test_early_stopping_stops_before_max_iter(digits):
    X_train, X_test, y_train, y_test = digits
    clf = SoftmaxRegression(early_stopping=True, random_state=0, max_iter=500)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X_train, y_train)
    assert clf.n_iter_ < 500
    assert len(clf.validation_scores_) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    assert clf.score(X_test, y_test) > 0.9


# ------------------------------------------------- optimizer vs oracles


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize(
    "alpha, l1_ratio, label_smoothing, weighted",
    [(0.0, 0.0, 0.0, False), (0.1, 0.0, 0.2, True), (0.05, 0.0, 0.0, True)],
)
def test_full_batch_step_is_gradient_step(n_classes, alpha, l1_ratio, label_smoothing, weighted):
    """One epoch with one batch is ``theta - lr * grad``, grad from finite differences."""
    rng = np.random.default_rng(n_classes)
    n, p = 40, 3
    X = rng.standard_normal((n, p))
    y = np.arange(n) % n_classes
    sw = rng.uniform(0.2, 3.0, n) if weighted else np.ones(n)
    lr = 0.3
    params = dict(
        batch_size=64, learning_rate=lr, schedule="constant", max_iter=1, tol=None,
        alpha=alpha, l1_ratio=l1_ratio, label_smoothing=label_smoothing, shuffle=False,
        momentum=0.0, precondition=False,
    )
    clf = SoftmaxRegression(**params).fit(X, y, sample_weight=sw if weighted else None)
    W1, b1 = _internal(clf)
    clf.set_params(warm_start=True).fit(X, y, sample_weight=sw if weighted else None)
    W2, b2 = _internal(clf)

    def f(theta):
        W = theta[: n_classes * p].reshape(n_classes, p)
        return _objective(W, theta[n_classes * p:], X, y, sw, alpha, l1_ratio, label_smoothing)

    grad = _fd_gradient(f, np.concatenate([W1.ravel(), b1]))
    expected = np.concatenate([W1.ravel(), b1]) - lr * grad
    assert_allclose(np.concatenate([W2.ravel(), b2]), expected, rtol=1e-6, atol=1e-8)


def test_elastic_net_proximal_step():
    """With l1_ratio > 0 the step is a gradient step on the smooth part then a soft-threshold."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 6))
    y = np.arange(50) % 3
    lr, alpha, l1_ratio = 0.5, 0.2, 0.7
    params = dict(batch_size=64, learning_rate=lr, schedule="constant", max_iter=1, tol=None,
                  alpha=alpha, l1_ratio=l1_ratio, shuffle=False, momentum=0.0,
                  precondition=False)
    clf = SoftmaxRegression(**{**params, "alpha": 0.0}).fit(X, y)
    W1, b1 = clf.coef_.copy(), clf.intercept_.copy()
    clf.set_params(warm_start=True, alpha=alpha).fit(X, y)

    def smooth(theta):
        W = theta[:18].reshape(3, 6)
        return _objective(W, theta[18:], X, y, np.ones(50), alpha, 0.0, 0.0) - alpha / 2 * (
            W**2
        ).sum() + alpha * (1 - l1_ratio) / 2 * (W**2).sum()

    grad = _fd_gradient(smooth, np.concatenate([W1.ravel(), b1]))
    W_half = W1 - lr * grad[:18].reshape(3, 6)
    thr = lr * alpha * l1_ratio
    expected_W = np.sign(W_half) * np.maximum(np.abs(W_half) - thr, 0)
    assert_allclose(clf.coef_, expected_W, rtol=1e-6, atol=1e-8)
    assert_allclose(clf.intercept_, b1 - lr * grad[18:], rtol=1e-6, atol=1e-8)
    assert np.sum(clf.coef_ == 0) > 0  # the proximal step makes exact zeros


def test_l1_gives_sparse_coefficients(digits):
    X_train, X_test, y_train, y_test = digits
    # without momentum: its velocity keeps pushing coefficients off the
    # soft-threshold's zeros (with the default momentum about 16% are zero)
    clf = SoftmaxRegression(alpha=3e-3, l1_ratio=1.0, momentum=0.0, random_state=0)
    clf.fit(X_train, y_train)
    assert np.mean(clf.coef_ == 0) > 0.3
    assert clf.score(X_test, y_test) > 0.9


@pytest.mark.parametrize("schedule", ["constant", "invscaling"])
def test_schedules_follow_their_formula(schedule):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 2))
    y = np.arange(30) % 3
    lr, power_t, epochs = 0.4, 0.7, 3
    kw = dict(batch_size=64, learning_rate=lr, schedule=schedule, power_t=power_t, tol=None,
              alpha=0.0, shuffle=False, momentum=0.0, precondition=False)
    clf = SoftmaxRegression(max_iter=epochs, **kw).fit(X, y)
    # replay with the oracle gradient
    W, b = np.zeros((3, 2)), np.zeros(3)
    for epoch in range(epochs):
        step = lr / (epoch + 1) ** power_t if schedule == "invscaling" else lr

        def f(theta):
            return _objective(theta[:6].reshape(3, 2), theta[6:], X, y, np.ones(30), 0, 0, 0)

        g = _fd_gradient(f, np.concatenate([W.ravel(), b]))
        W, b = W - step * g[:6].reshape(3, 2), b - step * g[6:]
    assert_allclose(clf.coef_, W, rtol=1e-6, atol=1e-9)
    assert_allclose(clf.intercept_, b, rtol=1e-6, atol=1e-9)


def test_adaptive_schedule_lowers_step_and_stops(capsys):
    """Each plateau divides the step by 10, with its epoch in the log; the fit stops
    when the epochs after a division no longer improve, long before max_iter."""
    X, y = _iris()
    clf = SoftmaxRegression(schedule="adaptive", random_state=0, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    lowered = re.findall(r"Epoch (\d+): no relative improvement .*learning rate lowered to "
                         r"([\d.e+-]+)", out)
    assert lowered, out
    epochs = [int(e) for e, _ in lowered]
    assert epochs == sorted(epochs) and epochs[-1] < clf.n_iter_
    rates = [float(r) for _, r in lowered]
    assert_allclose(rates, clf.learning_rate_ / 10.0 ** np.arange(1, len(rates) + 1),
                    rtol=1e-3)
    assert_allclose(clf._optimizer.learning_rate, clf.learning_rate_ / 10 ** len(rates))
    assert re.search(rf"Converged after {clf.n_iter_} epochs .*after the last step reduction",
                     out)
    assert clf.n_iter_ < 200


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_minibatches_match_torch(nesterov):
    """Minibatch SGD with (Nesterov) momentum, L2 and label smoothing equals torch's loop."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    n, p, K, bs = 70, 4, 3, 16
    X = rng.standard_normal((n, p))
    y = rng.integers(0, K, n)
    y[:K] = np.arange(K)
    lr, mu, alpha, eps, epochs = 0.2, 0.8, 0.01, 0.1, 4
    clf = SoftmaxRegression(
        batch_size=bs, learning_rate=lr, schedule="constant", momentum=mu,
        nesterovs_momentum=nesterov, alpha=alpha, label_smoothing=eps, max_iter=epochs,
        tol=None, shuffle=False, precondition=False,
    ).fit(X, y)

    model = torch.nn.Linear(p, K, dtype=torch.float64)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    opt = torch.optim.SGD(
        [{"params": [model.weight], "weight_decay": alpha}, {"params": [model.bias]}],
        lr=lr, momentum=mu, nesterov=nesterov,
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=eps)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(epochs):
        # batches of near-equal size, at most bs (16, 16, 16, 16, 6 would
        # weigh the last 6 rows 2.7 times as much as the others)
        for rows in np.array_split(np.arange(n), -(-n // bs)):
            opt.zero_grad()
            loss_fn(model(Xt[rows]), yt[rows]).backward()
            opt.step()
    assert_allclose(clf.coef_, model.weight.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert_allclose(clf.intercept_, model.bias.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_reaches_logistic_regression_optimum(n_classes):
    """With L2 penalty alpha, the optimum is LogisticRegression's with C = 1/(n alpha)
    (C = 2/(n alpha) for two classes, whose coef_ is w1 - w0)."""
    X, y = _iris()
    if n_classes == 2:
        keep = y > 0
        X, y = X[keep], y[keep]
    n, alpha = X.shape[0], 0.01
    C = (2.0 if n_classes == 2 else 1.0) / (n * alpha)
    ref = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X, y)
    # the fixed point of the minibatch iteration (a decaying step removes the
    # noise) is the optimum: no bias from batch sizes, momentum or preconditioning
    clf = SoftmaxRegression(alpha=alpha, schedule="invscaling", tol=None, max_iter=2000,
                            random_state=0)
    clf.fit(X, y)
    assert clf.coef_.shape == ref.coef_.shape
    assert_allclose(clf.coef_, ref.coef_, atol=5e-3 * np.abs(ref.coef_).max())
    assert_allclose(clf.predict_proba(X), ref.predict_proba(X), atol=2e-3)


def test_sample_weight_equals_repetition_in_one_batch():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    y = np.arange(30) % 3
    counts = rng.integers(0, 4, 30)
    counts[:3] = 1
    kw = dict(batch_size=256, max_iter=20, tol=None, shuffle=False, schedule="constant",
              learning_rate=0.1)
    weighted = SoftmaxRegression(**kw).fit(X, y, sample_weight=counts)
    repeated = SoftmaxRegression(**kw).fit(np.repeat(X, counts, 0), np.repeat(y, counts))
    assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-10, atol=1e-12)
    # scaling every weight changes nothing
    scaled = SoftmaxRegression(**kw).fit(X, y, sample_weight=7.5 * counts)
    assert_allclose(scaled.coef_, weighted.coef_, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------- binary convention


def test_binary_decision_function_and_proba():
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    labels = np.array(["no", "yes"])[y]
    clf = SoftmaxRegression(random_state=0).fit(X, labels)
    d = clf.decision_function(X)
    assert d.shape == (200,) and clf.coef_.shape == (1, 5) and clf.intercept_.shape == (1,)
    assert_array_equal(clf.predict(X), np.where(d > 0, "yes", "no"))
    proba = clf.predict_proba(X)
    assert_allclose(proba[:, 1], expit(d), rtol=1e-12)
    assert_allclose(proba[:, 0], expit(-d), rtol=1e-12)
    # scipy's log_softmax of the logits [0, d], not log(proba): the model is
    # confident enough that log(p) of p close to 1 has lost the precision tested
    log_proba = clf.predict_log_proba(X)
    assert_allclose(log_proba, scipy_log_softmax(np.c_[np.zeros_like(d), d], axis=1),
                    rtol=1e-10, atol=1e-300)
    assert_allclose(d, X @ clf.coef_[0] + clf.intercept_[0], rtol=1e-12)


def test_predict_log_proba_finite_for_extreme_inputs(digits_model):
    X = np.full((2, 64), 1e200)
    X[1] *= -1
    log_proba = digits_model.predict_log_proba(X)
    assert np.isfinite(log_proba).all()
    scores = digits_model.decision_function(X)
    assert_allclose(log_proba, scores - logsumexp(scores, axis=1, keepdims=True), rtol=1e-12)


# ------------------------------------------------------ inputs & dtypes


def test_float32_trains_in_float32(digits):
    X_train, X_test, y_train, y_test = digits
    clf = SoftmaxRegression(random_state=0).fit(X_train.astype(np.float32), y_train)
    assert clf.coef_.dtype == np.float32 and clf.intercept_.dtype == np.float32
    assert clf.predict_proba(X_test.astype(np.float32)).dtype == np.float32
    assert clf.score(X_test.astype(np.float32), y_test) >= 0.96


def test_sparse_csr_matches_dense(digits):
    X_train, X_test, y_train, _ = digits
    X_train = np.where(np.abs(X_train) < 0.5, 0.0, X_train)
    kw = dict(random_state=0, max_iter=20, tol=None, momentum=0.5, precondition=False)
    dense = SoftmaxRegression(**kw).fit(X_train, y_train)
    sparse = SoftmaxRegression(**kw).fit(sp.csr_matrix(X_train), y_train)
    assert_allclose(sparse.coef_, dense.coef_, rtol=1e-8, atol=1e-10)
    assert_allclose(
        sparse.predict_proba(sp.csr_array(X_test)), dense.predict_proba(X_test), atol=1e-10
    )


def test_does_not_modify_inputs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = np.arange(300) % 3
    sw = rng.uniform(0.5, 2, 300)
    copies = X.copy(), y.copy(), sw.copy()
    SoftmaxRegression(random_state=0, class_weight={0: 2.0}).fit(X, y, sample_weight=sw)
    for before, after in zip(copies, (X, y, sw), strict=True):
        assert_array_equal(before, after)


def test_string_and_arbitrary_labels():
    X, y = _iris()
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    clf = SoftmaxRegression(random_state=0).fit(X, labels)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert clf.score(X, labels) > 0.9
    numeric = SoftmaxRegression(random_state=0).fit(X, np.array([-5, 10, 42])[y])
    assert_array_equal(numeric.classes_, [-5, 10, 42])
    assert set(numeric.predict(X)) <= {-5, 10, 42}


def test_pandas_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = _iris()
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = SoftmaxRegression(random_state=0).fit(df, pd.Series(y))
    assert_array_equal(clf.feature_names_in_, ["a", "b", "c", "d"])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        from_numpy = clf.predict(X)
    assert_array_equal(clf.predict(df), from_numpy)
    with pytest.raises(ValueError, match="feature names should match"):
        clf.predict(df.set_axis(["z", "b", "c", "d"], axis=1))


# -------------------------------------------------- scikit-learn tools


def test_pipeline_grid_search_cross_val_clone_pickle():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), SoftmaxRegression(random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.9
    grid = GridSearchCV(pipe, {"softmaxregression__alpha": [1e-4, 1e-2]}, cv=3).fit(X, y)
    assert grid.best_score_ > 0.9
    fitted = grid.best_estimator_
    restored = pickle.loads(pickle.dumps(fitted))
    assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    cloned = clone(fitted[-1])
    assert not hasattr(cloned, "coef_") and cloned.get_params() == fitted[-1].get_params()


def test_warm_start_continues():
    X, y = _iris()
    kw = dict(random_state=0, tol=None, schedule="constant", momentum=0.0, learning_rate=0.1)
    cold = SoftmaxRegression(max_iter=3, **kw).fit(X, y)
    warm = SoftmaxRegression(max_iter=3, warm_start=True, **kw).fit(X, y)
    warm.fit(X, y)
    assert warm.loss_curve_[0] < cold.loss_curve_[-1] + 1e-12
    six = SoftmaxRegression(max_iter=6, shuffle=False, **kw).fit(X, y)
    split = SoftmaxRegression(max_iter=3, shuffle=False, warm_start=True, **kw).fit(X, y)
    split.fit(X, y)
    assert_allclose(split.coef_, six.coef_, rtol=1e-12)  # no momentum: same trajectory


def test_fitted_attributes(digits_model):
    clf = digits_model
    assert clf.coef_.shape == (10, 64) and clf.intercept_.shape == (10,)
    assert clf.n_features_in_ == 64
    assert len(clf.loss_curve_) == clf.n_iter_
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    assert clf.t_ == clf.n_iter_ * 1347


def test_convergence_warning_when_max_iter_reached(digits):
    X_train, _, y_train, _ = digits
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        SoftmaxRegression(max_iter=2).fit(X_train, y_train)


def test_verbose_progress(capsys):
    X, y = _iris()
    SoftmaxRegression(max_iter=3, tol=None, verbose=1, early_stopping=True, random_state=0).fit(
        X, y
    )
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("Epoch")]
    assert len(lines) == 3
    assert re.match(r"Epoch 1/3: objective=\d+\.\d+, validation log loss=\d+\.\d+, "
                    r"validation accuracy=\d\.\d+, learning rate=.*, elapsed=\d+\.\d+s",
                    lines[0])
    elapsed = [float(re.search(r"elapsed=([\d.]+)s", line).group(1)) for line in lines]
    assert elapsed == sorted(elapsed) and elapsed[-1] > 0  # real, cumulative time


def test_threadpool_limits_give_same_model():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    X, y = make_classification(n_samples=2000, n_features=40, n_informative=10, n_classes=4,
                               random_state=0)
    kw = dict(random_state=0, max_iter=3, tol=None)
    free = SoftmaxRegression(**kw).fit(X, y)
    with threadpoolctl.threadpool_limits(limits=1):
        limited = SoftmaxRegression(**kw).fit(X, y)
        assert_allclose(limited.predict_proba(X), free.predict_proba(X), rtol=1e-6)
    assert_allclose(limited.coef_, free.coef_, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------- errors


def test_divergence_raises_and_keeps_coefficients():
    X, y = _iris()
    clf = SoftmaxRegression(random_state=0).fit(X, y)
    coef, intercept, n_iter = clf.coef_.copy(), clf.intercept_.copy(), clf.n_iter_
    X_huge = np.hstack([X, X]) * 1e150
    clf.set_params(learning_rate=1e200, schedule="constant")
    with pytest.raises(ValueError, match="diverged.*smaller learning_rate.*scale the data"):
        clf.fit(X_huge, y)
    assert_array_equal(clf.coef_, coef)
    assert_array_equal(clf.intercept_, intercept)
    assert clf.n_iter_ == n_iter and clf.n_features_in_ == 4
    with pytest.raises(ValueError, match="diverged"):
        clf.partial_fit(X * 1e150, y)
    assert_array_equal(clf.coef_, coef)


def test_failed_partial_fit_with_momentum_leaves_optimizer_usable():
    X, y = _iris()
    X = StandardScaler().fit_transform(X)
    clf = SoftmaxRegression(random_state=0, momentum=0.9, schedule="constant")
    clf.partial_fit(X, y, classes=[0, 1, 2]).partial_fit(X, y)
    coef = clf.coef_.copy()
    with pytest.raises(ValueError, match="diverged"):
        clf.partial_fit(X * 1e200, y)
    assert_array_equal(clf.coef_, coef)
    clf.partial_fit(X, y)  # the momentum of the failed call must not leak into this one
    assert np.all(np.isfinite(clf.coef_)) and clf.score(X, y) > 0.8


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_X(bad):
    X, y = _iris()
    X = X.copy()
    X[3, 1] = bad
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        SoftmaxRegression().fit(X, y)


def test_unseen_label_in_partial_fit():
    X, y = _iris()
    clf = SoftmaxRegression().partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=r"labels not in classes_: \[7\]"):
        clf.partial_fit(X[:3], [0, 7, 1])


def test_partial_fit_needs_classes_first():
    X, y = _iris()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        SoftmaxRegression().partial_fit(X, y)


def test_partial_fit_classes_cannot_change():
    X, y = _iris()
    clf = SoftmaxRegression().partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not the same as on the previous call"):
        clf.partial_fit(X, y, classes=[0, 1, 2, 3])


def test_wrong_feature_count():
    X, y = _iris()
    clf = SoftmaxRegression().fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but SoftmaxRegression is expecting 4"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.partial_fit(X[:, :3], y)


def test_negative_sample_weight():
    X, y = _iris()
    sw = np.ones(len(y))
    sw[5] = -1
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        SoftmaxRegression().fit(X, y, sample_weight=sw)


def test_one_class_and_balanced_partial_fit_errors():
    X, y = _iris()
    clf = SoftmaxRegression()
    with pytest.raises(ValueError, match="at least 2 classes.*only one class"):
        clf.fit(X[:10], y[:10])
    with pytest.raises(NotFittedError):  # a failed fit leaves nothing half-fitted
        check_is_fitted(clf)
    with pytest.raises(ValueError, match="'balanced' is not supported by partial_fit"):
        SoftmaxRegression(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"learning_rate": 0}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"schedule": "optimal"}, "schedule"),
        ({"momentum": 1.0}, "momentum"),
        ({"l1_ratio": 1.5}, "l1_ratio"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
    ],
)
def test_invalid_parameters(params, match):
    X, y = _iris()
    with pytest.raises(ValueError, match=match):
        SoftmaxRegression(**params).fit(X, y)


def test_early_stopping_needs_a_stratifiable_validation_set():
    X, y = _iris()
    with pytest.raises(ValueError, match="validation_fraction"):
        SoftmaxRegression(early_stopping=True, validation_fraction=0.01).fit(X, y)
