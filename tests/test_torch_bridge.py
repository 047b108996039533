"""CPU arrays of other namespaces run the compiled kernels (zero copy), and torch
tensors that require grad get kernel-backed autograd Functions (issue 14).

Oracles: the NumPy path on the same data (bitwise), torch.nn.functional
(values and autograd gradients), torch.autograd.gradcheck in float64.
"""

import numpy as np
import pytest
from sklearn import config_context

from softmax_core import (
    SoftmaxRegression,
    cross_entropy,
    cross_entropy_with_grad,
    log_softmax,
    log_softmax_backward,
    logsumexp,
    nll_loss,
    softmax,
    softmax_backward,
)
from softmax_core._namespace import AUTOGRAD, BRIDGED, GENERIC, get_namespace

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.torch


def _rand(*shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g) * 3).to(dtype)


# the dispatch table --------------------------------------------------------------------------

def test_backend_of_a_call():
    x = _rand(4, 5)
    assert get_namespace(x)[1] == BRIDGED
    assert get_namespace(x.float(), torch.zeros(4, dtype=torch.int64))[1] == BRIDGED
    assert get_namespace(x.requires_grad_())[1] == AUTOGRAD
    with torch.no_grad():
        assert get_namespace(x)[1] == BRIDGED
    assert get_namespace(x.detach().to(torch.bfloat16))[1] == GENERIC
    assert get_namespace(torch.zeros(3, dtype=torch.int64))[1] == GENERIC
    assert get_namespace(torch.zeros(3, device="meta"))[1] == GENERIC


def test_array_api_strict_is_bridged():
    xps = pytest.importorskip("array_api_strict")
    x = xps.asarray(np.random.default_rng(0).standard_normal((6, 4)))
    assert get_namespace(x)[1] == BRIDGED
    got = softmax(x, axis=0)
    assert type(got) is type(x) and got.dtype == xps.float64
    np.testing.assert_array_equal(np.from_dlpack(got), softmax(np.from_dlpack(x), axis=0))
    loss = cross_entropy(x, xps.asarray([0, 1, 2, 3, 0, 1]))
    assert type(loss) is type(x) and loss.shape == ()


# bridged results equal the NumPy path's, bit for bit ----------------------------------------

@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced", "expanded"])
def test_bridged_functions_equal_the_numpy_path(dtype, layout):
    x = _rand(40, 12, dtype=dtype)
    if layout == "transposed":
        x = x.T
    elif layout == "sliced":
        x = x[::3, 1::2]
    elif layout == "expanded":
        x = x[:1].expand(30, 12)
    before = x.clone()
    a = x.numpy()
    b = torch.full_like(x, 2)  # of x's layout, as its NumPy twin
    for got, ref in [
        (softmax(x), softmax(a)),
        (log_softmax(x, axis=0), log_softmax(a, axis=0)),
        (logsumexp(x, axis=(0, 1)), logsumexp(a, axis=(0, 1))),
        (logsumexp(x, axis=1, b=b), logsumexp(a, axis=1, b=b.numpy())),
        (softmax(x, where=x > 0), softmax(a, where=a > 0)),
        (softmax_backward(x, softmax(x)), softmax_backward(a, softmax(a))),
        (log_softmax_backward(x, log_softmax(x)), log_softmax_backward(a, log_softmax(a))),
    ]:
        assert isinstance(got, torch.Tensor) and got.device.type == "cpu"
        np.testing.assert_array_equal(got.numpy(), np.asarray(ref))
    assert torch.equal(x, before)


def test_bridged_results_match_torch():
    x = _rand(64, 10, dtype=torch.float32)
    torch.testing.assert_close(softmax(x), torch.softmax(x, -1))
    torch.testing.assert_close(log_softmax(x, axis=0), torch.log_softmax(x, 0))
    torch.testing.assert_close(logsumexp(x, axis=1), torch.logsumexp(x, 1))
    torch.testing.assert_close(softmax(x.double(), dtype=torch.float16),
                               torch.softmax(x.double(), -1, dtype=torch.float16))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bridged_losses_equal_the_numpy_path_and_torch(reduction):
    x = _rand(50, 7, 3)
    y = torch.randint(0, 7, (50, 3), generator=torch.Generator().manual_seed(1))
    y[0, 0] = -100
    w = torch.rand(7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    loss = cross_entropy(x, y, weight=w, reduction=reduction, label_smoothing=0.1)
    assert isinstance(loss, torch.Tensor)
    np.testing.assert_array_equal(loss.numpy(), cross_entropy(
        x.numpy(), y.numpy(), weight=w.numpy(), reduction=reduction, label_smoothing=0.1))
    torch.testing.assert_close(loss, F.cross_entropy(x, y, weight=w, reduction=reduction,
                                                     label_smoothing=0.1))
    lp = torch.log_softmax(x, 1)
    torch.testing.assert_close(nll_loss(lp, y, weight=w, reduction=reduction),
                               F.nll_loss(lp, y, weight=w, reduction=reduction))
    loss, grad = cross_entropy_with_grad(x, y, reduction=reduction,
                                         sample_weight=torch.ones(50, dtype=torch.float64))
    assert isinstance(grad, torch.Tensor) and grad.shape == x.shape


def test_bridged_errors_keep_their_messages():
    with pytest.raises(ValueError, match="target 9"):
        cross_entropy(_rand(3, 4), torch.tensor([0, 9, 1]))
    with pytest.raises(TypeError, match="out= is only supported for NumPy"):
        softmax(_rand(3, 4), out=np.empty((3, 4)))


# autograd ------------------------------------------------------------------------------------

def _compare_grads(ours, theirs, x, seed=3):
    a = x.detach().clone().requires_grad_()
    b = x.detach().clone().requires_grad_()
    out_a, out_b = ours(a), theirs(b)
    torch.testing.assert_close(out_a, out_b)
    assert out_a.grad_fn is not None
    w = torch.randn(out_a.shape, dtype=out_a.dtype, generator=torch.Generator().manual_seed(seed))
    (out_a * w).sum().backward()
    (out_b * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_autograd(axis):
    x = _rand(6, 5)
    _compare_grads(lambda a: softmax(a, axis=axis), lambda a: torch.softmax(a, axis), x)
    _compare_grads(lambda a: log_softmax(a, axis=axis), lambda a: torch.log_softmax(a, axis), x)
    assert torch.autograd.gradcheck(lambda a: softmax(a, axis=axis), (x.requires_grad_(),))
    assert torch.autograd.gradcheck(lambda a: log_softmax(a, axis=axis), (x,))


def test_softmax_autograd_with_dtype_and_where():
    x = _rand(5, 6)
    mask = torch.tensor([True, False, True, True, False, True])
    # where=: the masked-out entries are constants, the rest a softmax of the kept ones
    for func, ref in [(softmax, torch.softmax), (log_softmax, torch.log_softmax)]:
        a = x.detach().clone().requires_grad_()
        b = x.detach().clone().requires_grad_()
        out = func(a, where=mask)
        kept = ref(b[:, mask], -1)
        w = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
        (out[:, mask] * w).sum().backward()
        (kept * w).sum().backward()
        torch.testing.assert_close(a.grad, b.grad)
        assert (a.grad[:, ~mask] == 0).all()
    a = x.float().requires_grad_()
    out = softmax(a, dtype=torch.float64)
    assert out.dtype == torch.float64
    out.sum().backward()
    assert a.grad.dtype == torch.float32


@pytest.mark.parametrize("axis,keepdims", [(1, False), ((0, 2), True), (None, False)])
def test_logsumexp_autograd(axis, keepdims):
    x = _rand(3, 4, 5)
    dims = tuple(range(3)) if axis is None else axis
    _compare_grads(lambda a: logsumexp(a, axis=axis, keepdims=keepdims),
                   lambda a: torch.logsumexp(a, dims, keepdim=keepdims), x)
    assert torch.autograd.gradcheck(lambda a: logsumexp(a, axis=axis, keepdims=keepdims),
                                    (x.requires_grad_(),))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.2}, {"weight": True},
                                     {"weight": True, "label_smoothing": 0.1}])
@pytest.mark.parametrize("shape", [(8, 5), (4, 5, 3), (5,)])
def test_cross_entropy_autograd(reduction, options, shape):
    x = _rand(*shape)
    g = torch.Generator().manual_seed(5)
    batch = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    y = torch.randint(0, 5, batch, generator=g)
    if y.ndim:
        y.view(-1)[0] = -100
    kwargs = dict(options, reduction=reduction)
    if kwargs.get("weight"):
        kwargs["weight"] = torch.rand(5, dtype=torch.float64, generator=g) + 0.2
    else:
        kwargs.pop("weight", None)
    _compare_grads(lambda a: cross_entropy(a, y, **kwargs),
                   lambda a: F.cross_entropy(a, y, **kwargs), x)
    assert torch.autograd.gradcheck(lambda a: cross_entropy(a, y, **kwargs),
                                    (x.requires_grad_(),))


def test_cross_entropy_autograd_with_probability_targets():
    x = _rand(6, 4)
    t = torch.softmax(_rand(6, 4, seed=7), 1)
    _compare_grads(lambda a: cross_entropy(a, t, label_smoothing=0.1),
                   lambda a: F.cross_entropy(a, t, label_smoothing=0.1), x)
    # a target that requires grad is differentiated too (by torch's own autograd)
    tt = t.clone().requires_grad_()
    tr = t.clone().requires_grad_()
    cross_entropy(x, tt).backward()
    F.cross_entropy(x, tr).backward()
    torch.testing.assert_close(tt.grad, tr.grad)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_autograd(reduction):
    x = torch.log_softmax(_rand(7, 4), 1)
    y = torch.tensor([0, 3, -100, 1, 1, 2, 0])
    w = torch.tensor([0.5, 1.0, 2.0, 0.1], dtype=torch.float64)
    _compare_grads(lambda a: nll_loss(a, y, weight=w, reduction=reduction),
                   lambda a: F.nll_loss(a, y, weight=w, reduction=reduction), x)
    assert torch.autograd.gradcheck(lambda a: nll_loss(a, y, weight=w, reduction=reduction),
                                    (x.requires_grad_(),))
    # every sample ignored: a NaN mean, zero gradient, as torch
    a = x.detach().clone().requires_grad_()
    b = x.detach().clone().requires_grad_()
    none = torch.full((7,), -100)
    nll_loss(a, none, reduction=reduction).sum().backward()
    F.nll_loss(b, none, reduction=reduction).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, equal_nan=True)


def test_autograd_under_no_grad_and_inference_mode():
    x = _rand(3, 4).requires_grad_()
    with torch.no_grad():
        out = softmax(x)
        assert not out.requires_grad
    with torch.inference_mode():
        y = _rand(3, 4)
        torch.testing.assert_close(softmax(y), torch.softmax(y, -1))
        torch.testing.assert_close(cross_entropy(y, torch.tensor([0, 1, 2])),
                                   F.cross_entropy(y, torch.tensor([0, 1, 2])))


def test_double_backward_raises_a_clear_error():
    x = _rand(3, 4).requires_grad_()
    for func in (softmax, log_softmax, lambda a: logsumexp(a, axis=1),
                 lambda a: cross_entropy(a, torch.tensor([0, 1, 2]))):
        out = func(x)
        with pytest.raises(RuntimeError, match="double backward"):
            torch.autograd.grad(out.sum(), x, create_graph=True)


# the estimator -------------------------------------------------------------------------------

@pytest.fixture
def iris_with_dispatch():
    """Standardized iris, where scikit-learn's array-API dispatch can be switched on."""
    from sklearn.datasets import load_iris
    from sklearn.utils._array_api import _check_array_api_dispatch

    try:
        _check_array_api_dispatch(True)
    except (RuntimeError, ImportError) as exc:
        pytest.skip(str(exc))
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def test_regression_on_torch_tensors_uses_the_numpy_kernels(iris_with_dispatch):
    X, y = iris_with_dispatch
    ref = SoftmaxRegression(random_state=0).fit(X, y)
    with config_context(array_api_dispatch=True):
        model = SoftmaxRegression(random_state=0).fit(torch.from_numpy(X), torch.from_numpy(y))
        assert isinstance(model.coef_, torch.Tensor) and isinstance(model.intercept_, torch.Tensor)
        assert isinstance(model.classes_, torch.Tensor)
        proba = model.predict_proba(torch.from_numpy(X))
        assert isinstance(proba, torch.Tensor)
    # the same kernels and BLAS on the same data: the same model, bit for bit
    np.testing.assert_array_equal(model.coef_.numpy(), ref.coef_)
    np.testing.assert_array_equal(model.intercept_.numpy(), ref.intercept_)
    assert model.n_iter_ == ref.n_iter_


def test_array_like_arguments_keep_autograd():
    x = _rand(4, 3).requires_grad_()
    for out in (cross_entropy(x, [0, 1, 2, 0]),
                cross_entropy(x, torch.tensor([0, 1, 2, 0]), weight=[1.0, 2.0, 3.0]),
                logsumexp(x, b=2.0).sum(),
                softmax(x, where=[True, True, False]).sum()):
        assert out.grad_fn is not None
        (grad,) = torch.autograd.grad(out, x)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    ref = F.cross_entropy(x, torch.tensor([0, 1, 2, 0]), weight=torch.tensor([1.0, 2.0, 3.0],
                                                                              dtype=x.dtype))
    torch.testing.assert_close(cross_entropy(x, [0, 1, 2, 0], weight=[1.0, 2.0, 3.0]), ref)


def test_dtype_the_kernels_do_not_produce_takes_torch():
    x = _rand(3, 4, dtype=torch.float32)
    got = softmax(x, axis=1, dtype=torch.bfloat16)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got, torch.softmax(x, 1, dtype=torch.bfloat16))
    xg = x.clone().requires_grad_()
    log_softmax(xg, dtype=torch.bfloat16).sum().backward()
    assert xg.grad is not None


def test_regression_partial_fit_and_warm_start_with_tensors(iris_with_dispatch):
    X, y = iris_with_dispatch
    ref = SoftmaxRegression(random_state=0, warm_start=True, max_iter=5, tol=None)
    ref.fit(X, y).fit(X, y)
    inc = SoftmaxRegression(random_state=0)
    for _ in range(3):
        inc.partial_fit(X, y, classes=np.unique(y))
    with config_context(array_api_dispatch=True):
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        model = SoftmaxRegression(random_state=0, warm_start=True, max_iter=5, tol=None)
        model.fit(Xt, yt).fit(Xt, yt)
        part = SoftmaxRegression(random_state=0)
        for _ in range(3):
            part.partial_fit(Xt, yt, classes=torch.unique(yt))
    assert isinstance(model.coef_, torch.Tensor) and isinstance(part.coef_, torch.Tensor)
    np.testing.assert_array_equal(model.coef_.numpy(), ref.coef_)
    np.testing.assert_array_equal(part.coef_.numpy(), inc.coef_)
