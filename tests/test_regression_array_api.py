"""SoftmaxRegression with ``sklearn.set_config(array_api_dispatch=True)``:
torch (CPU) and array_api_strict inputs train and predict in their own namespace.

``tests/conftest.py`` sets ``SCIPY_ARRAY_API=1`` before SciPy is imported,
which scikit-learn requires for array-API dispatch.
"""

import numpy as np
import pytest
from conftest import digits_split
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import softmax as scipy_softmax
from sklearn import config_context
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler
from sklearn.utils._array_api import get_namespace
from sklearn.utils.estimator_checks import (
    check_array_api_input,
    check_array_api_input_and_values,
    check_array_api_same_namespace,
)

from softmax_core import SoftmaxRegression

# (namespace, device, dtype) as scikit-learn's own array-API tests name them
CASES = [
    ("array_api_strict", "CPU_DEVICE", "float64"),
    ("array_api_strict", "device1", "float32"),
    ("torch", "cpu", "float64"),
    ("torch", "cpu", "float32"),
]


def _skip_missing(namespace):
    pytest.importorskip(namespace)


def _as(namespace, device_name, a, dtype=None):
    """NumPy array -> array of the namespace on the named device."""
    if namespace == "torch":
        import torch

        t = torch.from_numpy(np.ascontiguousarray(a))
        return t.to(getattr(torch, dtype)) if dtype else t
    import array_api_strict as xp

    device = xp.Device(device_name) if device_name != "CPU_DEVICE" else xp.Device("CPU_DEVICE")
    out = xp.asarray(a, device=device)
    return xp.astype(out, getattr(xp, dtype)) if dtype else out


def _np(a):
    if type(a).__module__.startswith("torch"):
        return a.detach().cpu().numpy()
    return np.asarray(a._array) if hasattr(a, "_array") else np.asarray(a)


def _digits():
    return digits_split()


@pytest.mark.parametrize("namespace, device, dtype", CASES)
def test_sklearn_check_array_api_input(namespace, device, dtype):
    _skip_missing(namespace)
    check_array_api_input(
        "SoftmaxRegression", SoftmaxRegression(random_state=0), namespace, device, dtype
    )


@pytest.mark.parametrize("namespace, device", [("array_api_strict", "CPU_DEVICE"),
                                               ("torch", "cpu")])
def test_sklearn_check_array_api_values(namespace, device):
    """Fitted values and predictions equal the NumPy ones (float64, tight tolerance)."""
    _skip_missing(namespace)
    est = SoftmaxRegression(random_state=0, max_iter=30, tol=None)
    check_array_api_input_and_values(
        "SoftmaxRegression", est, namespace, device, "float64", check_sample_weight=True
    )


@pytest.mark.parametrize("namespace, device", [("array_api_strict", None), ("torch", "cpu")])
def test_sklearn_check_array_api_same_namespace(namespace, device):
    _skip_missing(namespace)
    check_array_api_same_namespace(
        "SoftmaxRegression", SoftmaxRegression(random_state=0), namespace, device
    )


@pytest.mark.parametrize("namespace, device, dtype", CASES)
def test_digits_in_namespace(namespace, device, dtype):
    """Training happens in the namespace: fitted arrays and outputs live there."""
    _skip_missing(namespace)
    X_train, X_test, y_train, y_test = _digits()
    kw = dict(random_state=0, max_iter=40, tol=None, momentum=0.9)
    ref = SoftmaxRegression(**kw).fit(X_train.astype(dtype), y_train)
    Xtr, Xte = _as(namespace, device, X_train, dtype), _as(namespace, device, X_test, dtype)
    ytr, yte = _as(namespace, device, y_train), _as(namespace, device, y_test)
    with config_context(array_api_dispatch=True):
        clf = SoftmaxRegression(**kw).fit(Xtr, ytr)
        for name in ("coef_", "intercept_", "classes_"):
            attr = getattr(clf, name)
            assert get_namespace(attr)[0].__name__.endswith(namespace), name
        assert str(clf.coef_.dtype).endswith(dtype)
        proba = clf.predict_proba(Xte)
        scores = clf.decision_function(Xte)
        y_pred = clf.predict(Xte)
        log_proba = clf.predict_log_proba(Xte)
        for out in (proba, scores, y_pred, log_proba):
            assert get_namespace(out)[0].__name__.endswith(namespace)
        accuracy = clf.score(Xte, yte)
    assert accuracy >= 0.96
    rtol = 1e-4 if dtype == "float32" else 1e-9
    assert_allclose(_np(clf.coef_), ref.coef_, rtol=rtol, atol=rtol * np.abs(ref.coef_).max())
    assert_allclose(_np(proba), scipy_softmax(_np(scores).astype(np.float64), axis=1),
                    rtol=10 * rtol, atol=10 * rtol)
    assert_array_equal(_np(y_pred), _np(clf.classes_)[_np(proba).argmax(axis=1)])
    assert_allclose(_np(log_proba), np.log(_np(proba)), rtol=10 * rtol, atol=10 * rtol)


def test_torch_binary_partial_fit_and_class_weight():
    torch = pytest.importorskip("torch")
    X, y = load_iris(return_X_y=True)
    X, y = StandardScaler().fit_transform(X[y > 0]), y[y > 0]
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    kw = dict(random_state=0, class_weight={1: 2.0, 2: 1.0}, tol=None)
    ref = SoftmaxRegression(**kw)
    for start in range(0, 100, 25):
        ref.partial_fit(X[start:start + 25], y[start:start + 25], classes=[1, 2])
    with config_context(array_api_dispatch=True):
        clf = SoftmaxRegression(**kw)
        for start in range(0, 100, 25):
            clf.partial_fit(Xt[start:start + 25], yt[start:start + 25], classes=[1, 2])
        d = clf.decision_function(Xt)
        pred = clf.predict(Xt)
    assert isinstance(clf.coef_, torch.Tensor) and tuple(clf.coef_.shape) == (1, 4)
    assert tuple(d.shape) == (100,)
    assert_allclose(clf.coef_.numpy(), ref.coef_, rtol=1e-9)
    assert_array_equal(pred.numpy(), np.where(d.numpy() > 0, 2, 1))


def test_predict_with_other_namespace_raises():
    torch = pytest.importorskip("torch")
    X, y = load_iris(return_X_y=True)
    with config_context(array_api_dispatch=True):
        clf = SoftmaxRegression(random_state=0, max_iter=5, tol=None).fit(
            torch.from_numpy(X), torch.from_numpy(y)
        )
        for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
            with pytest.raises(ValueError, match=f"SoftmaxRegression.{method}.*same namespace"):
                getattr(clf, method)(X)


def test_without_dispatch_torch_input_trains_in_numpy():
    torch = pytest.importorskip("torch")
    X, y = load_iris(return_X_y=True)
    clf = SoftmaxRegression(random_state=0, max_iter=5, tol=None).fit(
        torch.from_numpy(X), torch.from_numpy(y)
    )
    assert isinstance(clf.coef_, np.ndarray)
    ref = SoftmaxRegression(random_state=0, max_iter=5, tol=None).fit(X, y)
    assert_array_equal(clf.coef_, ref.coef_)
