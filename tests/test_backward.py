"""softmax_backward and log_softmax_backward: finite differences and torch autograd."""

import numpy as np
import pytest
from conftest import namespace_of, to_numpy, to_xp

from softmax_core import log_softmax, log_softmax_backward, softmax, softmax_backward

pytestmark = pytest.mark.usefixtures("kernel_threads")

CASES = [((4, 6), -1), ((3, 5), 0), ((2, 3, 4), (0, 2)), ((2, 3, 2, 2), -3), ((5,), None)]


def _fd_vjp(f, x, g, axis, h=1e-6):
    """Central finite-difference vector-Jacobian product of f at x (float64)."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        xp_, xm = x.copy(), x.copy()
        xp_[i] += h
        xm[i] -= h
        grad[i] = np.sum(g * (f(xp_, axis=axis) - f(xm, axis=axis))) / (2 * h)
    return grad


@pytest.mark.parametrize("shape,axis", CASES)
@pytest.mark.parametrize("use_log", [False, True])
def test_backward_matches_finite_differences(xp, shape, axis, use_log):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * 2
    g = rng.standard_normal(shape)
    f, back = (log_softmax, log_softmax_backward) if use_log else (softmax, softmax_backward)
    y = f(to_xp(xp, x), axis=axis)
    grad = back(to_xp(xp, g), y, axis=axis)
    assert namespace_of(grad) == namespace_of(y)
    np.testing.assert_allclose(to_numpy(grad), _fd_vjp(f, x, g, axis), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape,axis", [((4, 6), -1), ((3, 5), 0), ((2, 3, 2, 2), 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("use_log", [False, True])
def test_backward_matches_torch_autograd(shape, axis, dtype, use_log):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    t = torch.from_numpy(x).requires_grad_()
    tf = torch.log_softmax if use_log else torch.softmax
    tf(t, axis).backward(torch.from_numpy(g))
    f, back = (log_softmax, log_softmax_backward) if use_log else (softmax, softmax_backward)
    ours = back(g, f(x, axis=axis), axis=axis)
    assert ours.dtype == dtype
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours, t.grad.numpy(), **tol)


def test_backward_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        softmax_backward(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="axis"):
        log_softmax_backward(np.zeros((2, 3)), np.zeros((2, 3)), axis=4)


def test_backward_dtypes_and_zero_dim():
    for back in (softmax_backward, log_softmax_backward):
        assert np.shape(back(np.float64(1.0), np.float64(0.0))) == ()
        out = back(np.ones(3, np.float16), np.full(3, 1 / 3, np.float16))
        assert out.dtype == np.float16
        assert back(np.ones(3, np.int64), np.full(3, 0.5)).dtype == np.float64
