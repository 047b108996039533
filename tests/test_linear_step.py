"""The fused linear step kernel (src/linear_step.pxi, src/linear_kernels.h).

Oracle: the logits, the label-smoothed, sample-weighted cross-entropy and its
three gradients computed in float64 with NumPy (``X @ W + b``, ``logaddexp``),
for every kernel build this CPU runs (scalar baseline, AVX2, AVX-512), over
class counts on both sides of each vector width and row counts on both sides
of the 8-row blocks and the task split.  The estimator's dense step is then
checked against the BLAS path it replaces.
"""

import importlib

import numpy as np
import pytest

from softmax_core import SoftmaxRegression, _sgd_epoch, _sgd_steps
from softmax_core._native import available_targets

TARGETS = available_targets()
# accumulation in the input precision over K (forward) and M (backward) terms
TOL = {np.float32: 3e-5, np.float64: 1e-12}


@pytest.fixture(params=TARGETS)
def mod(request):
    return importlib.import_module(f"softmax_core._kernels_{request.param}")


def _oracle(X, W, b, y, sw, eps, scale):
    X, W = X.astype(np.float64), W.astype(np.float64)
    C = W.shape[1]
    Z = X @ W + (0.0 if b is None else b.astype(np.float64))
    lse = np.logaddexp.reduce(Z, axis=1)
    T = (1 - eps) * np.eye(C)[y] + eps / C
    w = np.ones(len(y)) if sw is None else sw
    loss = float(np.sum(w * (lse - np.sum(T * Z, axis=1))))
    G = scale * w[:, None] * (np.exp(Z - lse[:, None]) - T)
    return loss, Z, G, X.T @ G, G.sum(axis=0)


def _call(mod, X, W, b, y, sw=None, eps=0.0, scale=1.0, n_threads=1, with_bias_grad=True):
    M, C = X.shape[0], W.shape[1]
    out = dict(logits=np.full((M, C), np.nan, X.dtype), grad=np.full((M, C), np.nan, X.dtype),
               grad_W=np.full(W.shape, np.nan, X.dtype),
               grad_b=np.full(C, np.nan, X.dtype) if with_bias_grad else None)
    loss = mod.linear_cross_entropy(X, W, b, y, sw, eps, scale, out["logits"], out["grad"],
                                    out["grad_W"], out["grad_b"], n_threads)
    return loss, out


def _data(rng, M, K, C, dtype, scale=1.0):
    X = rng.standard_normal((M, K)).astype(dtype)
    W = (scale * rng.standard_normal((K, C)) / np.sqrt(K)).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    y = rng.integers(0, C, M)
    return X, W, b, y


def _close(got, want, dtype, floor=1e-30):
    # relative to the largest entry (or `floor`, the size of one row's
    # gradient, where every entry is 0: a single class)
    scale = max(float(np.max(np.abs(want))), floor)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL[dtype] * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17, 31, 33, 64, 65, 100, 128,
                               129, 200])
def test_matches_float64_oracle_over_class_counts(mod, dtype, C):
    rng = np.random.default_rng(C)
    X, W, b, y = _data(rng, 77, 29, C, dtype, scale=3.0)
    sw = rng.random(77) + 0.5
    loss, out = _call(mod, X, W, b, y, sw, eps=0.1, scale=1 / 77, n_threads=2)
    want = _oracle(X, W, b, y, sw, 0.1, 1 / 77)
    assert abs(loss - want[0]) <= TOL[dtype] * abs(want[0])
    for name, w in zip(("logits", "grad", "grad_W", "grad_b"), want[1:], strict=True):
        _close(out[name], w, dtype, floor=1 / 77)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M", [1, 7, 8, 9, 63, 64, 65, 129, 256, 513, 1031])
def test_matches_float64_oracle_over_row_counts(mod, dtype, M):
    rng = np.random.default_rng(M)
    X, W, b, y = _data(rng, M, 50, 10, dtype)
    loss, out = _call(mod, X, W, None, y, n_threads=2, with_bias_grad=False)
    want = _oracle(X, W, None, y, None, 0.0, 1.0)
    assert abs(loss - want[0]) <= TOL[dtype] * abs(want[0])
    _close(out["logits"], want[1], dtype)
    _close(out["grad"], want[2], dtype)
    _close(out["grad_W"], want[3], dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_only(mod, dtype):
    rng = np.random.default_rng(2)
    X, W, b, y = _data(rng, 300, 20, 12, dtype)
    sw = rng.random(300)
    Z = np.empty((300, 12), dtype)
    loss = mod.linear_cross_entropy(X, W, b, y, sw, 0.2, 1.0, Z, None, None, None, 2)
    want = _oracle(X, W, b, y, sw, 0.2, 1.0)
    assert abs(loss - want[0]) <= TOL[dtype] * abs(want[0])
    _close(Z, want[1], dtype)
    with pytest.raises(ValueError, match="or all three None"):
        mod.linear_cross_entropy(X, W, b, y, sw, 0.2, 1.0, Z, None, np.empty_like(W), None, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(256, 784, 10), (300, 3, 130), (1000, 17, 5)])
def test_same_bits_for_any_thread_count(mod, dtype, shape):
    rng = np.random.default_rng(1)
    X, W, b, y = _data(rng, *shape, dtype)
    sw = rng.random(shape[0])
    ref_loss, ref = _call(mod, X, W, b, y, sw, eps=0.05, scale=0.01, n_threads=1)
    for n_threads in (2, 3, 4, 7):
        loss, out = _call(mod, X, W, b, y, sw, eps=0.05, scale=0.01, n_threads=n_threads)
        assert loss == ref_loss
        for name in ref:
            np.testing.assert_array_equal(out[name], ref[name])


def test_large_logits_are_exact_and_inputs_untouched(mod):
    # logits of +-1e4 (a unit-free model far from the optimum): finite loss,
    # the log-sum-exp never overflows; no input is written
    rng = np.random.default_rng(3)
    X, W, b, y = _data(rng, 40, 6, 4, np.float64, scale=1e4)
    before = [a.copy() for a in (X, W, b, y)]
    loss, out = _call(mod, X, W, b, y)
    want = _oracle(X, W, b, y, None, 0.0, 1.0)
    assert np.isfinite(loss) and abs(loss - want[0]) <= 1e-12 * abs(want[0])
    _close(out["grad_W"], want[3], np.float64)
    for a, a0 in zip((X, W, b, y), before, strict=True):
        np.testing.assert_array_equal(a, a0)


def test_nan_feature_poisons_only_its_row_and_the_sums(mod):
    rng = np.random.default_rng(4)
    X, W, b, y = _data(rng, 20, 5, 3, np.float32)
    X[7, 2] = np.nan
    loss, out = _call(mod, X, W, b, y)
    assert np.isnan(loss)
    assert np.all(np.isnan(out["grad"][7])) and np.all(np.isfinite(np.delete(out["grad"], 7, 0)))
    assert np.all(np.isnan(out["grad_W"][2]))


@pytest.mark.parametrize("bad", [-1, 3, 2**40])
def test_out_of_range_target_raises(mod, bad):
    rng = np.random.default_rng(5)
    X, W, b, y = _data(rng, 300, 4, 3, np.float32)
    y[211] = bad
    with pytest.raises(ValueError, match=f"target {bad} at row 211 is out of bounds for 3"):
        _call(mod, X, W, b, y, n_threads=2)


def test_bad_shapes_and_types_raise(mod):
    rng = np.random.default_rng(6)
    X, W, b, y = _data(rng, 10, 4, 3, np.float32)
    with pytest.raises(ValueError, match="linear_cross_entropy needs"):
        _call(mod, X, W[:3], b, y)
    with pytest.raises(ValueError, match="linear_cross_entropy needs"):
        _call(mod, X, W, b, y[:9])
    with pytest.raises(ValueError, match="linear_cross_entropy needs"):
        _call(mod, X, W, b[:2], y)
    with pytest.raises(ValueError, match="linear_cross_entropy needs"):
        _call(mod, X[:0], W, b, y[:0])
    with pytest.raises(ValueError, match="contiguous"):
        _call(mod, np.asfortranarray(X), W, b, y)
    with pytest.raises(ValueError, match="dtype mismatch"):
        _call(mod, X.astype(np.float64), W, b, y)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("sparse_like", [False, True])
def test_estimator_dense_step_matches_blas_path(monkeypatch, sparse_like, shuffle):
    # the same fit (same batches, same steps) through the fused kernel, which
    # reads the shuffled rows from X in place, and through the BLAS products
    # on a permuted copy agrees to float32 rounding
    rng = np.random.default_rng(7)
    X = rng.standard_normal((3000, 40)).astype(np.float32)
    if sparse_like:
        X[rng.random(X.shape) < 0.8] = 0.0
    y = rng.integers(0, 7, 3000)
    sw = rng.random(3000) + 0.5
    params = dict(max_iter=5, tol=None, random_state=0, label_smoothing=0.1, alpha=1e-3,
                  shuffle=shuffle)
    fused = SoftmaxRegression(**params).fit(X, y, sample_weight=sw)
    monkeypatch.setattr(_sgd_steps, "FUSED_MAX_CLASSES", 0)
    blas = SoftmaxRegression(**params).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(fused.coef_, blas.coef_, rtol=0,
                               atol=1e-4 * np.abs(blas.coef_).max())
    np.testing.assert_allclose(fused.intercept_, blas.intercept_, rtol=0,
                               atol=1e-4 * np.abs(blas.coef_).max())


def _spy_on_fused_calls(monkeypatch):
    """The estimator's calls of the fused kernel, as ``(X, rows, is_a_step)``; an
    epoch of the epoch kernel (src/sgd_epoch.pxi) counts as its batches' steps."""
    calls = []
    real = _sgd_steps.kernels

    class Spy:
        def __getattr__(self, name):
            return getattr(real, name)

        def linear_cross_entropy(self, X, *args, rows=None):
            calls.append((X, None if rows is None else rows.copy(), args[7] is not None))
            return real.linear_cross_entropy(X, *args, rows=rows)

        def sgd_epoch(self, X, rows, *args):
            for start, stop in args[2]:
                if rows is None:
                    calls.append((X[start:stop], None, True))
                else:
                    calls.append((X, rows[start:stop].copy(), True))
            return real.sgd_epoch(X, rows, *args)

    monkeypatch.setattr(_sgd_steps, "kernels", Spy())
    monkeypatch.setattr(_sgd_epoch, "kernels", Spy())
    return calls


def test_estimator_uses_the_fused_kernel_for_dense_batches(monkeypatch):
    spied = _spy_on_fused_calls(monkeypatch)
    rng = np.random.default_rng(8)
    X = rng.standard_normal((1000, 6))
    y = np.argmax(X[:, :3], axis=1)
    SoftmaxRegression(max_iter=2, tol=None, batch_size=100, random_state=0).fit(X, y)
    calls = [(A.shape if rows is None else (rows.shape[0], A.shape[1]), step)
             for A, rows, step in spied]
    # every step, and the objective after each epoch (loss only): no BLAS
    steps = [shape for shape, with_grad in calls if with_grad]
    objectives = [shape for shape, with_grad in calls if not with_grad]
    assert steps == [(100, 6)] * 20
    assert objectives and set(objectives) == {(1000, 6)}


def test_shuffled_epochs_read_every_row_once_in_place(monkeypatch):
    # with shuffling, each epoch visits every row once, in blocks of the fit's
    # permutation in a fresh order, passed to the kernel as indices into X
    # itself (no permuted copy)
    spied = _spy_on_fused_calls(monkeypatch)
    rng = np.random.default_rng(9)
    data = rng.standard_normal((1000, 6))
    y = np.argmax(data[:, :3], axis=1)
    SoftmaxRegression(max_iter=3, tol=None, batch_size=100, random_state=0).fit(data, y)
    steps = [(X, rows) for X, rows, step in spied if step]  # not the objective
    assert all(X is data and rows is not None for X, rows in steps)
    epochs = [rows for _, rows in steps]
    assert len(epochs) == 30
    perms = [np.concatenate(epochs[i:i + 10]) for i in range(0, 30, 10)]
    for perm in perms:
        np.testing.assert_array_equal(np.sort(perm), np.arange(1000))
    assert not np.array_equal(perms[0], perms[1])  # the blocks in a fresh order


def test_shuffled_fit_does_not_copy_X():
    import tracemalloc

    rng = np.random.default_rng(10)
    X = rng.standard_normal((40000, 50)).astype(np.float32)
    y = np.argmax(X[:, :4], axis=1)
    # a fixed step and no preconditioner: their set-up passes over X take
    # temporaries of their own (chunks of rows)
    model = SoftmaxRegression(max_iter=2, tol=None, random_state=0, learning_rate=0.1,
                              precondition=False)
    tracemalloc.start()
    try:
        model.fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 2
    assert model.score(X, y) > 0.8


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [3, 10, 17, 200])
def test_rows_read_in_place_equal_the_gathered_batch(mod, dtype, C):
    rng = np.random.default_rng(C + 11)
    X, W, b, y_all = _data(rng, 500, 23, C, dtype)
    rows = rng.integers(0, 500, 300)  # a batch of 300, with repeated rows
    y, sw = y_all[rows], rng.random(300)
    ref_loss, ref = _call(mod, X[rows], W, b, y, sw, eps=0.1, scale=0.5, n_threads=1)
    M = rows.shape[0]
    out = dict(logits=np.empty((M, C), dtype), grad=np.empty((M, C), dtype),
               grad_W=np.empty(W.shape, dtype), grad_b=np.empty(C, dtype))
    loss = mod.linear_cross_entropy(X, W, b, y, sw, 0.1, 0.5, out["logits"], out["grad"],
                                    out["grad_W"], out["grad_b"], 3, rows=rows)
    assert loss == ref_loss
    for name in ref:
        np.testing.assert_array_equal(out[name], ref[name])


@pytest.mark.parametrize("bad", [-1, 500, 2**40])
def test_out_of_range_row_index_raises(mod, bad):
    rng = np.random.default_rng(12)
    X, W, b, y = _data(rng, 500, 4, 3, np.float32)
    rows = rng.integers(0, 500, 200)
    rows[123] = bad
    Z, G = np.empty((200, 3), np.float32), np.empty((200, 3), np.float32)
    with pytest.raises(ValueError, match=f"row index {bad} at position 123 is out of bounds "
                                         "for X with 500 rows"):
        mod.linear_cross_entropy(X, W, b, y[:200], None, 0.0, 1.0, Z, G, np.empty_like(W),
                                 None, 2, rows=rows)


@pytest.mark.parametrize("n_threads", [0, -3, 64])
def test_any_thread_count_argument(mod, n_threads):
    # non-positive counts run on one thread; more threads than tasks are capped
    rng = np.random.default_rng(13)
    X, W, b, y = _data(rng, 300, 9, 5, np.float64)
    ref_loss, ref = _call(mod, X, W, b, y, n_threads=1)
    loss, out = _call(mod, X, W, b, y, n_threads=n_threads)
    assert loss == ref_loss
    for name in ref:
        np.testing.assert_array_equal(out[name], ref[name])


def test_very_long_rows_and_loss_only_with_rows(mod):
    # 2100 classes: one row per cross-entropy sub-block; loss-only mode on rows
    rng = np.random.default_rng(14)
    X, W, b, y_all = _data(rng, 40, 3, 2100, np.float64)
    loss, out = _call(mod, X, W, b, y_all, n_threads=2)
    want = _oracle(X, W, b, y_all, None, 0.0, 1.0)
    assert abs(loss - want[0]) <= 1e-12 * abs(want[0])
    _close(out["grad_W"], want[3], np.float64)
    rows = rng.integers(0, 40, 25)
    Z = np.empty((25, 2100))
    loss = mod.linear_cross_entropy(X, W, b, y_all[rows], None, 0.0, 1.0, Z, None, None, None,
                                    2, rows=rows)
    want = _oracle(X[rows], W, b, y_all[rows], None, 0.0, 1.0)
    assert abs(loss - want[0]) <= 1e-12 * abs(want[0])
    _close(Z, want[1], np.float64)


def test_array_ops_fallback_gathers_rows():
    from softmax_core._sgd_steps import ArrayOps

    rng = np.random.default_rng(15)
    X, W, b, y_all = _data(rng, 50, 4, 3, np.float64)
    rows = rng.permutation(50)[:20]
    got = ArrayOps(np).loss_and_grads(X, W, b, y_all[rows], None, 0.0, 0.05, rows)
    want = _oracle(X, W, b, y_all, None, 0.0, 0.05)
    want_rows = _oracle(X[rows], W, b, y_all[rows], None, 0.0, 0.05)
    assert abs(got[0] - want_rows[0]) <= 1e-12 * want_rows[0]
    _close(got[1], want_rows[3], np.float64)
    _close(got[2], want_rows[4], np.float64)
    assert not np.allclose(want[3], want_rows[3])  # the rows were taken


def test_wide_models_keep_the_blas_path():
    X = np.zeros((10, (1 << 20) // 4 + 1))
    W = np.zeros((X.shape[1], 4))
    assert not _sgd_steps.fused_eligible(X, W)
    narrow = np.zeros((10, 1000))
    assert _sgd_steps.fused_eligible(narrow, W[:1000])
    assert not _sgd_steps.fused_eligible(np.asfortranarray(narrow), W[:1000])
    assert not _sgd_steps.fused_eligible(narrow[:, :999], W[:999])  # a strided view
