"""The epoch kernel of dense SGD (src/sgd_epoch.pxi, softmax_core/_sgd_epoch.py).

Oracle: the same steps written out here in float64 NumPy (logits, the
label-smoothed weighted cross-entropy and its gradients, the L2 term, the
preconditioner, plain or Nesterov momentum, the elastic net's proximal step
with its intercept shift), for every kernel build this CPU runs.  The
estimator is then checked to train the same model with the kernel as with
the Python step it replaces (``_sgd_epoch.ENABLED = False``).
"""

import importlib
import itertools
import warnings

import numpy as np
import pytest

from softmax_core import SoftmaxRegression, _sgd_epoch
from softmax_core._native import available_targets
from softmax_core._native import kernels as native

TARGETS = available_targets()
# relative to the largest weight, after EPOCH_BATCHES steps: each step's
# gradient carries the fused kernel's error (3e-5 and 1e-12 in
# test_linear_step.py) into the weights, scaled by the step
TOL = {np.float32: 5e-5, np.float64: 1e-12}
EPOCH_BATCHES = 6


@pytest.fixture(params=TARGETS)
def mod(request):
    return importlib.import_module(f"softmax_core._kernels_{request.param}")


def _reference(X, rows, y, sw, batches, W, b, vW, vb, offset, inv2, lr, mu, nesterov, l2, l1,
               eps):
    """The epoch in float64: returns (summed loss, W, b, vW, vb)."""
    f = np.float64
    W, X = W.astype(f), X.astype(f)
    b = None if b is None else b.astype(f)
    vW = None if vW is None else vW.astype(f)
    vb = None if vb is None else vb.astype(f)
    offset = None if offset is None else offset.astype(f)
    inv2 = None if inv2 is None else inv2.astype(f)
    C = W.shape[1]
    total = 0.0

    def momentum_step(p, v, g):
        if mu == 0:
            return p - lr * g, v
        v = mu * v - lr * g
        return (p + mu * v - lr * g if nesterov else p + v), v

    for start, stop in batches:
        idx = np.arange(start, stop) if rows is None else rows[start:stop]
        Xb, yb, m = X[idx], y[start:stop], stop - start
        wb = np.ones(m) if sw is None else sw[start:stop]
        Z = Xb @ W + (0.0 if b is None else b)
        lse = np.logaddexp.reduce(Z, axis=1)
        T = (1 - eps) * np.eye(C)[yb] + eps / C
        total += float(np.sum(wb * (lse - np.sum(T * Z, axis=1))))
        G = wb[:, None] * (np.exp(Z - lse[:, None]) - T) / m
        gW, gb = Xb.T @ G + l2 * W, G.sum(axis=0)
        if offset is not None:
            gW = gW - np.outer(offset, gb)
        if inv2 is not None:
            gW = gW * inv2[:, None]
        if offset is not None:
            gb = gb - offset @ gW
        W, vW = momentum_step(W, vW, gW)
        if b is not None:
            b, vb = momentum_step(b, vb, gb)
        if l1 > 0:
            t = lr * l1 * (1.0 if inv2 is None else inv2[:, None])
            new = np.sign(W) * np.maximum(np.abs(W) - t, 0.0)
            moved = new - W
            W = new
            if vW is not None:
                vW = vW + moved
            if offset is not None:
                b = b - offset @ moved
                if vb is not None:
                    vb = vb - offset @ moved
    return total, W, b, vW, vb


def _problem(rng, dtype, n=203, K=13, C=5, *, with_rows, with_sw, intercept, mu, precondition):
    N = n + 17 if with_rows else n
    X = rng.standard_normal((N, K)).astype(dtype)
    rows = rng.integers(0, N, n).astype(np.int64) if with_rows else None
    y = rng.integers(0, C, n).astype(np.int64)
    sw = rng.uniform(0.2, 2.0, n) if with_sw else None
    W = (rng.standard_normal((K, C)) / np.sqrt(K)).astype(dtype)
    b = rng.standard_normal(C).astype(dtype) if intercept else None
    vW = (0.1 * rng.standard_normal((K, C))).astype(dtype) if mu else None
    vb = (0.1 * rng.standard_normal(C)).astype(dtype) if mu and intercept else None
    offset = rng.standard_normal(K).astype(dtype) if precondition and intercept else None
    inv2 = rng.uniform(0.5, 2.0, K).astype(dtype) if precondition else None
    # uneven batches in a shuffled order, one of a single row
    stops = np.sort(rng.choice(np.arange(1, n), EPOCH_BATCHES - 1, replace=False))
    bounds = list(zip([0, *stops], [*stops, n], strict=True))
    bounds = [bounds[i] for i in rng.permutation(len(bounds))] + [(n - 1, n)]
    return X, rows, y, sw, np.asarray(bounds, dtype=np.int64), W, b, vW, vb, offset, inv2


def _close(got, want, dtype, factor=1):
    scale = max(float(np.max(np.abs(want))), 1e-30)
    return float(np.max(np.abs(got.astype(np.float64) - want))) <= factor * TOL[dtype] * scale


CASES = list(itertools.product(
    [False, True],  # rows
    [False, True],  # sample weights
    [False, True],  # intercept
    [(0.0, False), (0.9, False), (0.9, True)],  # momentum, nesterov
    [False, True],  # preconditioner
))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_rows, with_sw, intercept, momentum, precondition", CASES)
@pytest.mark.parametrize("l1", [0.0, 0.1])
def test_epoch_matches_float64_steps(mod, dtype, with_rows, with_sw, intercept, momentum,
                                     precondition, l1):
    mu, nesterov = momentum
    rng = np.random.default_rng(abs(hash((with_rows, with_sw, intercept, momentum,
                                          precondition, l1))) % 2**32)
    X, rows, y, sw, batches, W, b, vW, vb, offset, inv2 = _problem(
        rng, dtype, with_rows=with_rows, with_sw=with_sw, intercept=intercept, mu=mu,
        precondition=precondition)
    lr, l2, eps = 0.4, 0.05, 0.1
    want = _reference(X, rows, y, sw, batches, W, b, vW, vb, offset, inv2, lr, mu, nesterov,
                      l2, l1, eps)
    X0 = X.copy()
    loss = mod.sgd_epoch(X, rows, y, sw, batches, W, b, vW, vb, offset, inv2, lr, mu,
                         nesterov, l2, l1, eps, 1)
    np.testing.assert_array_equal(X, X0)
    assert loss == pytest.approx(want[0], rel=TOL[dtype] * 10)
    assert _close(W, want[1], dtype)
    if intercept:
        assert _close(b, want[2], dtype)
    if mu:
        assert _close(vW, want[3], dtype)
        if intercept:
            assert _close(vb, want[4], dtype)
    if l1:
        # the prox makes weights exactly zero where the reference does (up to
        # the weights within rounding of the threshold)
        slack = TOL[dtype] * float(np.max(np.abs(want[1])))
        assert np.count_nonzero(W == 0) > 0
        assert np.all(np.abs(want[1][W == 0]) <= slack)
        assert np.all(np.abs(W[want[1] == 0]) <= slack)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_epoch_same_bits_for_any_thread_count(mod, dtype):
    rng = np.random.default_rng(3)
    X, rows, y, sw, _, W, b, vW, vb, offset, inv2 = _problem(
        rng, dtype, n=4000, K=40, C=10, with_rows=True, with_sw=True, intercept=True, mu=0.9,
        precondition=True)
    # batches of 1 to 8 tasks (64 rows a task at least), and a single row
    cuts = [0, 1, 65, 200, 456, 968, 1992, 4000]
    batches = np.array(list(zip(cuts[:-1], cuts[1:], strict=True)), np.int64)[::-1].copy()
    results = []
    for n_threads in (1, 2, 4, 64):
        arrays = [a.copy() for a in (W, b, vW, vb)]
        loss = mod.sgd_epoch(X, rows, y, sw, batches, *arrays, offset, inv2, 0.1, 0.9, True,
                             1e-3, 1e-3, 0.0, n_threads)
        results.append((loss, arrays))
    for loss, arrays in results[1:]:
        assert loss == results[0][0]
        for a, a0 in zip(arrays, results[0][1], strict=True):
            np.testing.assert_array_equal(a, a0)


def _args(dtype=np.float64, n=50, K=4, C=3):
    rng = np.random.default_rng(0)
    return dict(X=rng.standard_normal((n, K)).astype(dtype), rows=None,
                y=rng.integers(0, C, n).astype(np.int64), sw=None,
                batches=np.array([(0, 25), (25, 50)], np.int64),
                W=np.zeros((K, C), dtype), b=np.zeros(C, dtype), vW=None, vb=None,
                offset=None, inv2=None)


def _run(mod, a, mu=0.0):
    return mod.sgd_epoch(a["X"], a["rows"], a["y"], a["sw"], a["batches"], a["W"], a["b"],
                         a["vW"], a["vb"], a["offset"], a["inv2"], 0.1, mu, False, 0.0, 0.0,
                         0.0, 1)


@pytest.mark.parametrize("change, match", [
    (dict(y=np.array([0, 1, 3] + [0] * 47, np.int64)), "target 3 at row 2 is out of bounds"),
    (dict(y=np.array([0, -1] + [0] * 48, np.int64)), "target -1 at row 1 is out of bounds"),
    (dict(rows=np.array([0] * 49 + [50], np.int64)), "row index 50 at position 49"),
    (dict(rows=np.array([-2] + [0] * 49, np.int64)), "row index -2 at position 0"),
    (dict(batches=np.array([(0, 25), (25, 51)], np.int64)), r"batch 1 is \[25, 51\)"),
    (dict(batches=np.array([(3, 3)], np.int64)), r"batch 0 is \[3, 3\)"),
    (dict(batches=np.array([(-1, 4)], np.int64)), r"batch 0 is \[-1, 4\)"),
])
def test_bad_indices_raise_before_any_write(mod, change, match):
    a = {**_args(), **change}
    with pytest.raises(ValueError, match=match):
        _run(mod, a)
    np.testing.assert_array_equal(a["W"], 0.0)
    np.testing.assert_array_equal(a["b"], 0.0)


def test_bad_target_in_a_later_batch_raises_before_the_first_step(mod):
    a = _args()
    a["y"][49] = 3  # in the second batch
    a["vW"], a["vb"] = np.full((4, 3), 0.5), np.full(3, 0.5)
    with pytest.raises(ValueError, match="target 3 at row 49 is out of bounds"):
        _run(mod, a, mu=0.9)
    for name, want in (("W", 0.0), ("b", 0.0), ("vW", 0.5), ("vb", 0.5)):
        np.testing.assert_array_equal(a[name], want)


def test_rows_outside_every_batch_are_not_read(mod):
    # the checks cover the rows the batches use: an epoch may run in several calls
    a = _args()
    a["y"][30:] = 7
    a["batches"] = np.array([(0, 30)], np.int64)
    assert np.isfinite(_run(mod, a))


def test_batches_sharing_memory_with_the_weights(mod):
    # the kernel reads a copy of the checked batches: a step that overwrites
    # them (here they are the bits of W) changes nothing about the steps taken
    a = _args()
    W = np.zeros((4, 3))
    bits = W.view(np.int64).reshape(6, 2)
    bits[:] = [(0, 10), (10, 20), (20, 30), (30, 40), (40, 50), (0, 50)]
    b_copy = bits.copy()
    expect = {**a, "W": W.copy(), "b": a["b"].copy(), "batches": b_copy}
    want = _run(mod, expect)
    got = _run(mod, {**a, "W": W, "batches": bits})
    assert got == want
    np.testing.assert_array_equal(W, expect["W"])


@pytest.mark.parametrize("change, mu", [
    (dict(W=np.zeros((5, 3))), 0.0),  # K mismatch
    (dict(b=np.zeros(4)), 0.0),
    (dict(sw=np.ones(49)), 0.0),
    (dict(y=np.zeros(49, np.int64)), 0.0),  # n != N without rows
    (dict(rows=np.zeros(49, np.int64)), 0.0),  # rows not of n
    (dict(batches=np.zeros((2, 3), np.int64)), 0.0),
    (dict(), 0.9),  # momentum without velocities
    (dict(vW=np.zeros((4, 3)), vb=np.zeros(3)), 0.0),  # velocities without momentum
    (dict(vW=np.zeros((4, 3))), 0.9),  # vb missing with a bias
    (dict(vW=np.zeros((4, 2)), vb=np.zeros(3)), 0.9),
    (dict(b=None, offset=np.zeros(4)), 0.0),  # an offset needs a bias
    (dict(inv2=np.ones(3)), 0.0),
    (dict(offset=np.ones(5)), 0.0),  # wrong length, with a bias
    (dict(b=None, vW=np.zeros((4, 3)), vb=np.zeros(3)), 0.9),  # vb without a bias
    (dict(X=np.zeros((0, 4))), 0.0),
])
def test_bad_shapes_raise(mod, change, mu):
    a = {**_args(), **change}
    with pytest.raises(ValueError, match="sgd_epoch needs"):
        _run(mod, a, mu)


def test_no_batches_is_a_no_op(mod):
    a = _args()
    a["batches"] = np.zeros((0, 2), np.int64)
    assert _run(mod, a) == 0.0
    np.testing.assert_array_equal(a["W"], 0.0)


def test_wrong_dtypes_raise_type_errors(mod):
    a = _args()
    a["W"] = np.zeros((4, 3), np.float32)  # X float64
    with pytest.raises((TypeError, ValueError)):
        _run(mod, a)


def _spy(monkeypatch, record=lambda args: args[4].shape[0], interrupt_at=None):
    """Route the glue's kernel calls through a recorder; returns the list of
    ``record(args)`` of each call (by default its number of batches).  With
    `interrupt_at`, that call (0-based) raises KeyboardInterrupt instead."""
    calls = []

    class Spy:
        def sgd_epoch(self, *args):
            if interrupt_at is not None and len(calls) == interrupt_at:
                raise KeyboardInterrupt
            calls.append(record(args))
            return native.sgd_epoch(*args)

    monkeypatch.setattr(_sgd_epoch, "kernels", Spy())
    return calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_rows, with_sw, intercept, momentum, precondition", CASES)
@pytest.mark.parametrize("l1_ratio", [0.0, 0.5])
def test_epoch_matches_the_python_steps(monkeypatch, dtype, with_rows, with_sw, intercept,
                                        momentum, precondition, l1_ratio):
    # run_batches with the kernel against the same pass of `batch_step` calls
    from softmax_core._preconditioner import Preconditioner
    from softmax_core._sgd import SGDConfig, SGDState, run_batches
    from softmax_core._sgd_steps import NumpyOps

    mu, nesterov = momentum
    rng = np.random.default_rng(11)
    X, rows, y, sw, _, W, b, _, _, offset, inv2 = _problem(
        rng, dtype, n=300, with_rows=with_rows, with_sw=with_sw, intercept=True, mu=0.0,
        precondition=precondition)
    cfg = SGDConfig(batch_size=32, momentum=mu, nesterovs_momentum=nesterov, alpha=0.02,
                    l1_ratio=l1_ratio, fit_intercept=intercept, label_smoothing=0.1)
    results = []
    calls = _spy(monkeypatch)
    for enabled in (True, False):
        monkeypatch.setattr(_sgd_epoch, "ENABLED", enabled)
        state = SGDState(W=W.copy(), b=b.copy(), batch_size=32,
                         preconditioner=Preconditioner(offset=offset if intercept else None,
                                                       inv_scale2=inv2))
        losses = [run_batches(NumpyOps(), state, cfg, X, y, sw, np.random.default_rng(0), None,
                              0.3, rows) for _ in range(2)]  # the velocity carries over
        results.append((losses, state))
    (losses, kernel), (want, python) = results
    assert sum(calls) == 2 * 10  # the kernel ran both epochs (and only for the first state)

    def close(a, b):  # each path is within TOL of the exact steps: 2 TOL apart at most
        return _close(a, b.astype(np.float64), dtype, factor=2)

    np.testing.assert_allclose(losses, want, rtol=TOL[dtype] * 10)
    assert close(kernel.W, python.W)
    assert close(kernel.b, python.b)
    assert (kernel.vW is None) == (python.vW is None)
    assert (kernel.vb is None) == (python.vb is None)
    if mu:
        assert close(kernel.vW, python.vW)
    if mu and intercept:
        assert close(kernel.vb, python.vb)
    assert kernel.W.dtype == python.W.dtype == dtype


def test_an_epoch_runs_in_calls_of_bounded_work(monkeypatch):
    # Python gets control back between calls (KeyboardInterrupt); the result is
    # the one of a single call
    rng = np.random.default_rng(12)
    X = rng.standard_normal((2000, 8))
    y = (X[:, :3] + rng.gumbel(size=(2000, 3))).argmax(axis=1)
    fits = {}
    for call_macs in (1 << 24, 1):  # one call per epoch; one call per batch
        monkeypatch.setattr(_sgd_epoch, "CALL_MACS", call_macs)
        calls = _spy(monkeypatch)
        fits[call_macs] = SoftmaxRegression(batch_size=100, max_iter=3, tol=None,
                                            random_state=0).fit(X, y)
        assert sum(calls) == 3 * 20
        assert set(calls) == ({20} if call_macs > 1 else {1})
    np.testing.assert_array_equal(fits[1].coef_, fits[1 << 24].coef_)
    np.testing.assert_array_equal(fits[1].intercept_, fits[1 << 24].intercept_)


def test_uneven_calls_and_an_interrupted_epoch(monkeypatch):
    from softmax_core._preconditioner import Preconditioner
    from softmax_core._sgd import SGDConfig, SGDState
    from softmax_core._sgd_epoch import run_epoch_kernel

    rng = np.random.default_rng(14)
    X = rng.standard_normal((2000, 8))
    y = rng.integers(0, 3, 2000).astype(np.int64)
    bounds = [(s, s + 100) for s in range(0, 2000, 100)]
    cfg = SGDConfig(momentum=0.9, alpha=1e-3)

    def fresh():
        return SGDState(W=np.zeros((8, 3)), b=np.zeros(3), batch_size=100,
                        preconditioner=Preconditioner(offset=X.mean(axis=0),
                                                      inv_scale2=1 / X.var(axis=0)))

    whole = fresh()
    want = run_epoch_kernel(whole, cfg, X, y, None, bounds, 0.1)
    monkeypatch.setattr(_sgd_epoch, "CALL_MACS", 7 * 100 * 8 * 3)  # calls of 7, 7 and 6 batches
    sizes = _spy(monkeypatch)
    split = fresh()
    got = run_epoch_kernel(split, cfg, X, y, None, bounds, 0.1)
    assert sizes == [7, 7, 6]
    assert got == pytest.approx(want, rel=1e-14)  # the sums of three calls added
    for name in ("W", "b", "vW", "vb"):
        np.testing.assert_array_equal(getattr(split, name), getattr(whole, name))

    # a KeyboardInterrupt between two calls leaves the state of the first call's end:
    # the parameters and velocities that 7 steps make
    sizes = _spy(monkeypatch, interrupt_at=1)
    cut = fresh()
    with pytest.raises(KeyboardInterrupt):
        run_epoch_kernel(cut, cfg, X, y, None, bounds, 0.1)
    assert sizes == [7]
    monkeypatch.setattr(_sgd_epoch, "kernels", native)
    seven = fresh()
    run_epoch_kernel(seven, cfg, X, y, None, bounds[:7], 0.1)
    for name in ("W", "b", "vW", "vb"):
        np.testing.assert_array_equal(getattr(cut, name), getattr(seven, name))


def _fit_both(monkeypatch, X, y, **params):
    model = SoftmaxRegression(random_state=0, **params).fit(X, y)
    monkeypatch.setattr(_sgd_epoch, "ENABLED", False)
    reference = SoftmaxRegression(random_state=0, **params).fit(X, y)
    monkeypatch.setattr(_sgd_epoch, "ENABLED", True)
    return model, reference


@pytest.mark.parametrize("params", [
    dict(),
    dict(momentum=0.0, batch_size=32),
    dict(nesterovs_momentum=False, alpha=1e-3, l1_ratio=0.5),
    dict(fit_intercept=False, label_smoothing=0.1, schedule="invscaling"),
    dict(shuffle=False, batch_size=100),
    dict(early_stopping=True, n_iter_no_change=2),
    dict(class_weight="balanced", nesterovs_momentum=False, l1_ratio=1.0, alpha=1e-3),
])
def test_estimator_fits_the_same_model(monkeypatch, params):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((1500, 12)) * rng.uniform(0.1, 10, 12) + rng.normal(0, 3, 12)
    y = (X[:, :3] @ rng.standard_normal((3, 4)) + rng.gumbel(size=(1500, 4))).argmax(axis=1)
    calls = _spy(monkeypatch)
    sw = rng.uniform(0.5, 2.0, X.shape[0])
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        model = SoftmaxRegression(random_state=0, **params).fit(X, y, sample_weight=sw)
    assert calls and sum(calls) > 0  # the kernel ran the epochs
    monkeypatch.setattr(_sgd_epoch, "ENABLED", False)
    n_calls = len(calls)
    with warnings.catch_warnings(record=True) as warned_reference:
        warnings.simplefilter("always")
        reference = SoftmaxRegression(random_state=0, **params).fit(X, y, sample_weight=sw)
    assert len(calls) == n_calls  # ... and not the reference's
    # the same warnings too (a fit here may stop short of the optimum: a
    # ConvergenceWarning then, from both paths alike)
    assert [(w.category, str(w.message)) for w in warned] == \
        [(w.category, str(w.message)) for w in warned_reference]
    assert model.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(model.intercept_, reference.intercept_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(model.loss_curve_, reference.loss_curve_, rtol=1e-10)


def test_partial_fit_and_float32_take_the_kernel(monkeypatch):
    rng = np.random.default_rng(6)
    X = rng.standard_normal((800, 6)).astype(np.float32)
    y = rng.integers(0, 3, 800)
    model, reference = _fit_both(monkeypatch, X, y, max_iter=5, tol=None)
    assert model.coef_.dtype == np.float32
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=2e-4, atol=2e-5)
    calls = _spy(monkeypatch, record=lambda args: args[0].dtype)
    models = {}
    for enabled in (True, False):
        monkeypatch.setattr(_sgd_epoch, "ENABLED", enabled)
        n_calls = len(calls)
        model = SoftmaxRegression(random_state=0, l1_ratio=0.5, alpha=1e-3)
        for part in np.array_split(np.arange(800), 4):  # the velocity carries over
            model.partial_fit(X[part], y[part], classes=[0, 1, 2])
        assert (len(calls) > n_calls) == enabled
        models[enabled] = model
    assert set(calls) == {np.dtype(np.float32)}
    np.testing.assert_allclose(models[True].coef_, models[False].coef_, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("enabled", [True, False])
def test_a_float32_call_after_a_float64_one_trains_in_float32(monkeypatch, enabled):
    # the saved velocities and preconditioner take the dtype of the new call's
    # data on both paths (the Python step promoted W to float64 through them)
    monkeypatch.setattr(_sgd_epoch, "ENABLED", enabled)
    rng = np.random.default_rng(13)
    X = rng.standard_normal((600, 5)) * 3 + 1
    y = (X[:, :3] + rng.gumbel(size=(600, 3))).argmax(axis=1)
    model = SoftmaxRegression(random_state=0, l1_ratio=0.5, alpha=1e-3)
    model.partial_fit(X[:300], y[:300], classes=[0, 1, 2])
    assert model.coef_.dtype == np.float64
    model.partial_fit(X[300:].astype(np.float32), y[300:])
    assert model.coef_.dtype == model.intercept_.dtype == np.float32
    state = model._optimizer
    pre = state.preconditioner
    dtypes = {a.dtype for a in (state.W, state.b, state.vW, state.vb, pre.offset,
                                pre.inv_scale2)}
    assert dtypes == {np.dtype(np.float32)}
