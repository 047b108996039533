"""The CuPy kernels on a real GPU (skipped without CuPy and an NVIDIA GPU).

Every kernel is compared with SciPy in float64, with the NumPy path of this
package and with torch on the same GPU, over the shapes that reach every
launch shape (sub-warp, warp, block; vector and scalar loads) and the
cross-entropy option matrix of the CPU tests.  The fallbacks (axes that are
not trailing, strided views) must still give CuPy results.
"""

import numpy as np
import pytest
import scipy.special as sp

cupy = pytest.importorskip("cupy")


def _gpu_count():
    try:
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no driver, no device
        return 0


pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(_gpu_count() == 0, reason="no CUDA GPU available")]

from test_cupy_sources import ce_problem, torch_cross_entropy  # noqa: E402

import softmax_core  # noqa: E402
from softmax_core import _cupy  # noqa: E402
from softmax_core._cupy import _kernels  # noqa: E402
from softmax_core._cupy._dispatch import plan_rows  # noqa: E402

DTYPES = [np.float16, np.float32, np.float64]
SHAPES = [(1, 1), (5, 1), (7, 2), (60, 10), (33, 31), (9, 32), (9, 33), (5, 100), (4, 1000),
          (3, 1024), (3, 1025), (2, 4096), (2, 4097), (2, 32000), (2, 32001)]
# same cases as the CPU tests (tests/test_softmax.py), covered or not
CASES = [((7,), -1), ((5, 10), -1), ((5, 10), 0), ((3, 300), 1), ((3, 4, 5), (0, 2)),
         ((2, 3, 4, 5), -3), ((2, 3, 4), None), ((2, 3, 4), (1, 2)), ((3, 70), -1),
         ((2, 5, 300), 1)]
# tolerances against float64 SciPy on the same (rounded) input
TOL = {
    np.float16: {"softmax": dict(rtol=1e-3, atol=1e-7), "log": dict(rtol=1e-3, atol=1e-5)},
    np.float32: {"softmax": dict(rtol=1e-5, atol=1e-12), "log": dict(rtol=1e-5, atol=1e-5)},
    np.float64: {"softmax": dict(rtol=1e-12, atol=1e-300), "log": dict(rtol=1e-12, atol=1e-12)},
}
MODES = {"softmax": (sp.softmax, "softmax"), "log_softmax": (sp.log_softmax, "log"),
         "logsumexp": (sp.logsumexp, "log")}


def _data(shape, dtype, scale=10.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def _hook(mode, x, axes):
    if mode == "logsumexp":
        return _cupy.logsumexp(x, axes)
    return _cupy.softmax(x, axes, log=mode == "log_softmax")


@pytest.fixture(scope="module")
def torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    return torch


def _torch_rows(torch, mode, x):
    t = torch.from_dlpack(x).float() if x.dtype == np.float16 else torch.from_dlpack(x)
    if mode == "softmax":
        r = torch.softmax(t, -1)
    elif mode == "log_softmax":
        r = torch.log_softmax(t, -1)
    else:
        r = torch.logsumexp(t, -1)
    return r.cpu().numpy().astype(x.dtype)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_kernels_match_scipy_numpy_and_torch(mode, dtype, shape, torch_cuda):
    x_np = _data(shape, dtype)
    x = cupy.asarray(x_np)
    res = _hook(mode, x, (1,))
    assert isinstance(res, cupy.ndarray) and res.dtype == dtype
    assert res.shape == (shape if mode != "logsumexp" else shape[:1])
    ref_fn, kind = MODES[mode]
    tol = TOL[dtype][kind]
    got = cupy.asnumpy(res).astype(np.float64)
    np.testing.assert_allclose(got, ref_fn(x_np.astype(np.float64), axis=1), **tol)
    numpy_path = getattr(softmax_core, mode)(x_np, axis=1)
    np.testing.assert_allclose(got, np.asarray(numpy_path, dtype=np.float64), **tol)
    np.testing.assert_allclose(got, _torch_rows(torch_cuda, mode, x).astype(np.float64), **tol)
    np.testing.assert_array_equal(cupy.asnumpy(x), x_np)  # input untouched


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_cols", [5, 40, 2000, 2001])
def test_non_finite_rows_match_numpy_path(dtype, n_cols):
    inf, nan = np.inf, np.nan
    specials = [[-inf, -inf, -inf], [-inf, 0.0, 0.0], [inf, 1.0, 2.0], [nan, 1.0, 2.0],
                [1.0, inf, inf], [1e4, -1e4, 3.0]]
    x_np = np.full((len(specials), n_cols), -inf)
    for i, row in enumerate(specials):
        x_np[i, :3] = row
        x_np[i, 3:] = -inf if i == 0 else -30.0
    x_np = np.roll(x_np, n_cols // 2, axis=1).astype(dtype)  # specials mid-row
    x = cupy.asarray(x_np)
    for mode in MODES:
        got = cupy.asnumpy(_hook(mode, x, (1,)))
        expected = np.asarray(getattr(softmax_core, mode)(x_np, axis=1))
        np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64),
                                   **TOL[dtype][MODES[mode][1]])  # NaN where NumPy has NaN


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_cols", [10, 4096])
def test_unaligned_rows_take_scalar_loads(dtype, n_cols):
    flat = cupy.asarray(_data(3 * n_cols + 1, dtype))
    x = flat[1:].reshape(3, n_cols)  # C-contiguous, 2/4/8 bytes off 16-byte alignment
    assert x.flags.c_contiguous and x.data.ptr % 16 != 0
    plan = plan_rows(x.shape, (1,), x.dtype, c_contiguous=True, aligned=False)
    assert plan.config.vec == 1
    ref = cupy.asnumpy(x).astype(np.float64)
    for mode in MODES:
        tol = TOL[dtype][MODES[mode][1]]
        got = cupy.asnumpy(_hook(mode, x, (1,))).astype(np.float64)
        np.testing.assert_allclose(got, MODES[mode][0](ref, axis=1), **tol)
        aligned = cupy.asnumpy(_hook(mode, x.copy(), (1,))).astype(np.float64)
        np.testing.assert_allclose(got, aligned, **tol)


def test_trailing_axes_are_one_row():
    x_np = _data((2, 3, 40), np.float32)
    x = cupy.asarray(x_np)
    np.testing.assert_allclose(cupy.asnumpy(_cupy.softmax(x, (1, 2), log=False)),
                               sp.softmax(x_np.astype(np.float64), axis=(1, 2)), rtol=1e-5)
    lse = _cupy.logsumexp(x, (0, 1, 2))
    assert lse.shape == ()
    np.testing.assert_allclose(float(lse), sp.logsumexp(x_np.astype(np.float64)), rtol=1e-6)


def test_uncovered_calls_return_none():
    x = cupy.asarray(_data((5, 10), np.float32))
    assert _cupy.softmax(x, (0,), log=False) is None
    assert _cupy.softmax(x[:, ::2], (1,), log=False) is None
    assert _cupy.logsumexp(cupy.asarray(_data((2, 3, 4), np.float32)), (1,)) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", CASES)
def test_public_functions_on_cupy(shape, axis, dtype):
    x_np = _data(shape, dtype)
    x = cupy.asarray(x_np)
    tol = TOL[dtype]
    for fn, ref, kind in [(softmax_core.softmax, sp.softmax, "softmax"),
                          (softmax_core.log_softmax, sp.log_softmax, "log"),
                          (softmax_core.logsumexp, sp.logsumexp, "log")]:
        res = fn(x, axis=axis)
        assert isinstance(res, cupy.ndarray) and res.dtype == dtype
        np.testing.assert_allclose(cupy.asnumpy(res), ref(x_np.astype(np.float64), axis=axis),
                                   **tol[kind])
    res = softmax_core.logsumexp(x, axis=axis, keepdims=True)
    np.testing.assert_allclose(cupy.asnumpy(res),
                               sp.logsumexp(x_np.astype(np.float64), axis=axis, keepdims=True),
                               **tol["log"])


def test_public_functions_use_the_kernels(monkeypatch):
    calls = []
    run_rows = _kernels.run_rows

    def counting(x, plan, mode):
        calls.append(mode)
        return run_rows(x, plan, mode)

    monkeypatch.setattr(_kernels, "run_rows", counting)
    x = cupy.asarray(_data((64, 10), np.float32))
    softmax_core.softmax(x)
    softmax_core.log_softmax(x, axis=1)
    softmax_core.logsumexp(x, axis=-1)
    softmax_core.softmax(x, axis=0)  # falls back
    assert calls == ["softmax", "log_softmax", "logsumexp"]


# ---------------------------------------------------------------- cross-entropy

CE_SHAPES = [(300, 10), (64, 1000), (16, 1025), (8, 4096), (4, 32001)]
CE_TOL = {np.float32: dict(rtol=1e-5, atol=1e-7), np.float64: dict(rtol=1e-11, atol=1e-14)}


def _gpu_ce(z, y, weight, sample_weight, ignore_index, reduction, eps):
    def dev(a):
        return None if a is None else cupy.asarray(a)

    res = _cupy.cross_entropy_with_grad(
        dev(z), cupy.asarray(y, dtype=cupy.int64), weight=dev(weight),
        ignore_index=ignore_index, reduction=reduction, label_smoothing=eps,
        sample_weight=dev(sample_weight))
    assert res is not None
    loss, grad = res
    assert grad.shape == z.shape and grad.dtype == z.dtype and loss.dtype == z.dtype
    assert loss.shape == ((len(y),) if reduction == "none" else ())
    return cupy.asnumpy(loss), cupy.asnumpy(grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", CE_SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("use_weight", [False, True])
@pytest.mark.parametrize("ignore", ["none", "some", "all"])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("use_sample_weight", [False, True])
def test_cross_entropy_matches_torch_and_numpy(dtype, shape, reduction, use_weight, ignore, eps,
                                              use_sample_weight, torch_cuda):
    z, y, weight, sample_weight, ignore_index = ce_problem(shape, ignore, use_weight,
                                                            use_sample_weight, dtype)
    loss, grad = _gpu_ce(z, y, weight, sample_weight, ignore_index, reduction, eps)
    t_loss, t_grad = torch_cross_entropy(torch_cuda, z, y, weight, sample_weight, ignore_index,
                                         reduction, eps, device="cuda")
    np.testing.assert_allclose(loss, t_loss, **CE_TOL[dtype])
    np.testing.assert_allclose(grad, t_grad, **CE_TOL[dtype])
    numpy_fn = getattr(softmax_core, "cross_entropy_with_grad", None)
    if numpy_fn is not None:
        n_loss, n_grad = numpy_fn(z, y, weight=weight, ignore_index=ignore_index,
                                  reduction=reduction, label_smoothing=eps,
                                  sample_weight=sample_weight)
        np.testing.assert_allclose(loss, n_loss, **CE_TOL[dtype])
        np.testing.assert_allclose(grad, n_grad, **CE_TOL[dtype])


@pytest.mark.parametrize("shape", CE_SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("use_weight", [False, True])
def test_cross_entropy_float16(shape, reduction, eps, use_weight, torch_cuda):
    z, y, weight, sample_weight, ignore_index = ce_problem(shape, "some", use_weight, True,
                                                            np.float32)
    z16 = z.astype(np.float16)
    loss, grad = _gpu_ce(z16, y, weight, sample_weight, ignore_index, reduction, eps)
    # oracle: the same rounded logits in float32; only our final rounding differs
    t_loss, t_grad = torch_cross_entropy(torch_cuda, z16.astype(np.float32), y, weight,
                                         sample_weight, ignore_index, reduction, eps,
                                         device="cuda")
    np.testing.assert_allclose(loss.astype(np.float32), t_loss, rtol=2e-3, atol=1e-4)
    np.testing.assert_allclose(grad.astype(np.float32), t_grad, rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize("n_cols", [3, 3000])
def test_cross_entropy_extreme_logits_and_nan_rows(n_cols, torch_cuda):
    z = np.zeros((4, n_cols))
    z[0, :3] = [1e4, -1e4, 0.0]
    z[1, :3] = [-1e4, 1e4, 1e4 - 1.0]
    z[2, 1] = np.nan
    z[3, :] = np.arange(n_cols)
    y = np.array([1, 2, 0, 0])
    for eps in (0.0, 0.2):
        loss, grad = _gpu_ce(z, y, None, None, -100, "none", eps)
        t_loss, t_grad = torch_cross_entropy(torch_cuda, z, y, None, None, -100, "none", eps,
                                             device="cuda")
        assert np.all(np.isfinite(loss[[0, 1, 3]])) and np.isnan(loss[2])
        assert np.all(np.isnan(grad[2])) and np.all(np.isfinite(grad[[0, 1, 3]]))
        np.testing.assert_allclose(loss, t_loss, rtol=1e-12)
        np.testing.assert_allclose(grad, t_grad, rtol=1e-12, atol=1e-15)


def test_cross_entropy_is_deterministic_and_leaves_input_alone():
    z, y, weight, sample_weight, ignore_index = ce_problem((4096, 1000), "some", True, True,
                                                            np.float32)
    zc = cupy.asarray(z)
    args = dict(weight=cupy.asarray(weight), ignore_index=ignore_index, reduction="mean",
                label_smoothing=0.1, sample_weight=cupy.asarray(sample_weight))
    a = _cupy.cross_entropy_with_grad(zc, cupy.asarray(y), **args)
    b = _cupy.cross_entropy_with_grad(zc, cupy.asarray(y), **args)
    assert float(a[0]) == float(b[0])
    assert bool(cupy.all(a[1] == b[1]))
    np.testing.assert_array_equal(cupy.asnumpy(zc), z)


def test_cross_entropy_uncovered_returns_none():
    z = cupy.zeros((6, 4), dtype=cupy.float32)
    y = cupy.zeros(6, dtype=cupy.int64)
    kw = dict(weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0,
              sample_weight=None)
    assert _cupy.cross_entropy_with_grad(z[:, ::2], y, **kw) is None
    assert _cupy.cross_entropy_with_grad(z.reshape(6, 2, 2), y, **kw) is None


# ---------------------------------------------------------------- estimator

def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_tr)
    return (scaler.transform(X_tr).astype(np.float32), scaler.transform(X_te).astype(np.float32),
            y_tr, y_te)


def test_softmax_regression_trains_on_the_device(monkeypatch):
    import sklearn

    SoftmaxRegression = getattr(softmax_core, "SoftmaxRegression", None)
    if SoftmaxRegression is None:
        pytest.skip("SoftmaxRegression is not available")
    calls = []
    run_ce = _kernels.run_cross_entropy

    def counting(*args, **kwargs):
        calls.append(1)
        return run_ce(*args, **kwargs)

    monkeypatch.setattr(_kernels, "run_cross_entropy", counting)
    X_tr, X_te, y_tr, y_te = _digits()
    with sklearn.config_context(array_api_dispatch=True):
        est = SoftmaxRegression(max_iter=30, random_state=0)
        est.fit(cupy.asarray(X_tr), cupy.asarray(y_tr))
        for name in ("coef_", "intercept_"):
            assert isinstance(getattr(est, name), cupy.ndarray), name
        pred = est.predict(cupy.asarray(X_te))
        proba = est.predict_proba(cupy.asarray(X_te))
    assert isinstance(pred, cupy.ndarray) and isinstance(proba, cupy.ndarray)
    assert calls, "the fused cross-entropy kernel was not used during fit"
    accuracy = float((cupy.asnumpy(pred) == y_te).mean())
    cpu = SoftmaxRegression(max_iter=30, random_state=0).fit(X_tr, y_tr)
    assert accuracy >= 0.95
    assert abs(accuracy - cpu.score(X_te, y_te)) <= 0.02


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_sklearn_array_api_checks_with_cupy(dtype_name):
    from sklearn.utils.estimator_checks import (
        check_array_api_input,
        check_array_api_input_and_values,
        check_array_api_same_namespace,
    )

    SoftmaxRegression = getattr(softmax_core, "SoftmaxRegression", None)
    if SoftmaxRegression is None:
        pytest.skip("SoftmaxRegression is not available")
    est = SoftmaxRegression(random_state=0)
    check_array_api_input("SoftmaxRegression", est, array_namespace="cupy",
                          dtype_name=dtype_name)
    check_array_api_input_and_values("SoftmaxRegression", est, array_namespace="cupy",
                                     dtype_name=dtype_name)
    check_array_api_same_namespace("SoftmaxRegression", est, array_namespace="cupy")
