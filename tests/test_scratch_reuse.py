"""Scratch memory that a fit reuses instead of allocating again.

Where a process sets ``MALLOC_TRIM_THRESHOLD_`` (dask's nanny starts every
worker with 65536), glibc maps every block of 128 KiB or more afresh, and a
fit that allocates such blocks per epoch or per chunk pays their page faults
again each time.  Checked here: the kernels' per-thread workspace keeps its
largest block whatever the order of the calls (src/workspace_cache.h), and the
chunked passes of the preconditioner, which now write into reused buffers,
still give the moments and row norms of the data (oracle: NumPy on the whole
array in float64) without touching it.
"""

import importlib
import threading

import numpy as np
import pytest

from softmax_core import _preconditioner
from softmax_core._native import available_targets


@pytest.fixture(params=available_targets())
def mod(request):
    return importlib.import_module(f"softmax_core._kernels_{request.param}")


def _step(mod, m, k=100, c=10, with_grad=True, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, k)).astype(np.float32)
    W = rng.standard_normal((k, c)).astype(np.float32) * 0.1
    b = np.zeros(c, np.float32)
    y = rng.integers(0, c, m).astype(np.int64)
    Z = np.empty((m, c), np.float32)
    grads = (np.empty((m, c), np.float32), np.empty((k, c), np.float32),
             np.empty(c, np.float32)) if with_grad else (None, None, None)
    return mod.linear_cross_entropy(X, W, b, y, None, 0.0, 1.0 / m, Z, *grads, 1)


def _in_new_thread(fn):
    box = []
    t = threading.Thread(target=lambda: box.append(fn()))
    t.start()
    t.join()
    return box[0]


def test_workspace_keeps_its_largest_block(mod):
    def sequence():
        _step(mod, 1024)  # a minibatch step with its partial gradients
        big = mod.workspace_cached_bytes()
        _step(mod, 4096, with_grad=False)  # the epoch objective: less scratch
        after_small = mod.workspace_cached_bytes()
        _step(mod, 1024)
        return big, after_small, mod.workspace_cached_bytes()

    def small_alone():
        _step(mod, 4096, with_grad=False)
        return mod.workspace_cached_bytes()

    big, after_small, after_big = _in_new_thread(sequence)
    small = _in_new_thread(small_alone)
    assert 0 < small < big  # the loss-only call needs less, so the order matters
    # the small request was served from the big block and gave it back as big
    assert after_small == big
    assert after_big == big


def test_workspace_is_per_thread(mod):
    assert _in_new_thread(mod.workspace_cached_bytes) == 0
    assert _in_new_thread(lambda: (_step(mod, 256), mod.workspace_cached_bytes())[1]) > 0


def _data(dtype, n=1000, d=7, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.array([1e-3, 1.0, 10.0, 1e3, 1.0, 5.0, 0.1])[:d]
    X = (rng.standard_normal((n, d)) * scales + rng.standard_normal(d) * 3).astype(dtype)
    w = rng.uniform(0.2, 3.0, n)
    return X, w


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("chunk_entries", [1 << 16, 50, 7])
def test_chunked_moments_and_norms(monkeypatch, dtype, weighted, chunk_entries):
    monkeypatch.setattr(_preconditioner, "_CHUNK_ENTRIES", chunk_entries)
    X, w = _data(dtype)
    w = w / w.mean() if weighted else None
    before = X.copy()
    pre = _preconditioner.fit_preconditioner(np, X, w, True, True)
    X64 = X.astype(np.float64)
    ww = np.ones(X.shape[0]) if w is None else w
    mu = ww @ X64 / ww.sum()
    var = ww @ (X64 - mu) ** 2 / ww.sum()
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(pre.offset, mu, rtol=rtol, atol=rtol * np.abs(mu).max())
    np.testing.assert_allclose(1.0 / pre.inv_scale2, var, rtol=10 * rtol)
    norms = _preconditioner._row_norms2(np, X, pre)
    Xs = (X64 - pre.offset.astype(np.float64)) * np.sqrt(pre.inv_scale2.astype(np.float64))
    np.testing.assert_allclose(norms, np.sum(Xs * Xs, axis=1), rtol=10 * rtol)
    assert norms.shape == (X.shape[0],)
    np.testing.assert_array_equal(X, before)


def test_row_norms_without_centering_leave_x_alone():
    # no offset and no scale: the chunks are views of X, and A * A must go to scratch
    X, _ = _data(np.float64)
    before = X.copy()
    norms = _preconditioner._row_norms2(np, X, _preconditioner.Preconditioner())
    np.testing.assert_allclose(norms, np.sum(before * before, axis=1), rtol=1e-13)
    np.testing.assert_array_equal(X, before)


def test_chunked_passes_match_the_generic_namespace(monkeypatch):
    xp = pytest.importorskip("array_api_strict")
    monkeypatch.setattr(_preconditioner, "_CHUNK_ENTRIES", 50)
    X, w = _data(np.float64)
    w = w / w.mean()
    pre_np = _preconditioner.fit_preconditioner(np, X, w, True, True)
    pre_xp = _preconditioner.fit_preconditioner(xp, xp.asarray(X), xp.asarray(w), True, True)
    np.testing.assert_allclose(np.asarray(pre_xp.offset), pre_np.offset, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(pre_xp.inv_scale2), pre_np.inv_scale2, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(_preconditioner._row_norms2(xp, xp.asarray(X), pre_xp)),
                               _preconditioner._row_norms2(np, X, pre_np), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_curvature_sample_standardized_in_place_leaves_x_alone(monkeypatch, dtype):
    # more rows than the power iteration's sample: the sample is a copy, standardized in place
    X, _ = _data(dtype, n=_preconditioner._POWER_ROWS + 500)
    before = X.copy()
    pre = _preconditioner.fit_preconditioner(np, X, None, True, True)
    curvature = _preconditioner.estimate_curvature(np, X, None, pre, 1e-4, True,
                                                   np.random.RandomState(0))
    np.testing.assert_array_equal(X, before)
    # the same as standardizing a new array
    standardized = _preconditioner._standardized
    monkeypatch.setattr(_preconditioner, "_standardized",
                        lambda xp, X, pre, own=False: standardized(xp, X, pre))
    assert _preconditioner.estimate_curvature(np, X, None, pre, 1e-4, True,
                                              np.random.RandomState(0)) == curvature
    # oracle: the largest eigenvalue of the Hessian bound on the same sample, in float64;
    # the power iteration stops at a relative change of 1e-3, from below
    rows = np.sort(np.random.RandomState(0).choice(X.shape[0], _preconditioner._POWER_ROWS,
                                                   replace=False))
    A = (before[rows].astype(np.float64) - pre.offset) * np.sqrt(pre.inv_scale2.astype(np.float64))
    A1 = np.hstack([A, np.ones((A.shape[0], 1))])
    top = 0.5 * np.linalg.eigvalsh(A1.T @ A1 / A1.shape[0])[-1]
    assert 0.9 * top <= curvature.L <= top * (1 + 1e-5)


@pytest.mark.parametrize("fit_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_dtype", [np.float32, np.float64])
def test_decision_function_against_numpy(fit_dtype, x_dtype):
    from softmax_core import SoftmaxRegression

    X, _ = _data(fit_dtype, n=600)
    y = np.arange(600) % 3
    model = SoftmaxRegression(random_state=0, max_iter=5, tol=None).fit(X, y)
    Xp = X.astype(x_dtype)
    before = Xp.copy()
    scores = model.decision_function(Xp)
    expected = Xp @ model.coef_.T + model.intercept_
    assert scores.dtype == expected.dtype
    np.testing.assert_array_equal(scores, expected)
    np.testing.assert_array_equal(Xp, before)
