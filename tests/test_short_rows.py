"""Short rows on every compiled kernel target.

Rows of fewer than 16 elements (float32: also 17..23) go through a transposed
block; the x86-64-v3/v4 builds do that with SIMD register blocks (8x8 float,
4x4 double) and scalar edges, the baseline build with scalar loops; the other
rows up to 64 (float32: 128) take blocks of rows with per-row loops, longer
ones one row per task.  Every row length from 1 to 25, the lengths around 32,
64 and 128, and row counts around the register-block and task-block edges are
compared with float64 references (scipy, and a NumPy cross-entropy), on each
target this CPU can run.
"""

import importlib

import numpy as np
import pytest
import scipy.special as sp

from softmax_core._native import available_targets

TARGETS = available_targets()
N_ROWS = [1, 3, 4, 5, 7, 8, 9, 17, 205, 1000]
TOL = {np.float32: dict(rtol=2e-6, atol=1e-7), np.float64: dict(rtol=1e-13, atol=1e-15)}
# The gradient is a difference of O(1) terms (weights up to 2, sample weights
# up to 2), each rounded to the working dtype: a few ulp of 4 absolute.
GRAD_TOL = {np.float32: dict(rtol=2e-6, atol=2e-6), np.float64: dict(rtol=1e-13, atol=4e-15)}


def _kernels(target):
    return importlib.import_module(f"softmax_core._kernels_{target}")


def _data(n_rows, n, dtype, seed):
    return (np.random.default_rng(seed).standard_normal((n_rows, n)) * 5).astype(dtype)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [*range(1, 26), 31, 33, 64, 65, 100, 128, 129])
def test_softmax_and_logsumexp(target, dtype, n):
    k = _kernels(target)
    for n_rows in N_ROWS:
        x = _data(n_rows, n, dtype, seed=n_rows * 31 + n)
        ref = x.astype(np.float64)
        for use_log, func in ((False, sp.softmax), (True, sp.log_softmax)):
            out = np.full_like(x, np.nan)
            k.softmax_3d(x.reshape(n_rows, n, 1), out.reshape(n_rows, n, 1), use_log, 2)
            np.testing.assert_allclose(out, func(ref, axis=1), **TOL[dtype],
                                       err_msg=f"{target} use_log={use_log} rows={n_rows}")
        lse = np.full((n_rows, 1), np.nan, dtype)
        k.logsumexp_3d(x.reshape(n_rows, n, 1), lse, 2)
        np.testing.assert_allclose(lse[:, 0], sp.logsumexp(ref, axis=1), **TOL[dtype],
                                   err_msg=f"{target} logsumexp rows={n_rows}")


def _cross_entropy_reference(x, y, weight, sw, smoothing, ignore_index):
    """Per-row weighted loss and gradient (sum reduction) in float64 NumPy."""
    x = x.astype(np.float64)
    n_rows, n = x.shape
    keep = y != ignore_index
    yy = np.where(keep, y, 0)
    w = np.ones(n) if weight is None else weight
    lse = sp.logsumexp(x, axis=1)
    logp = x - lse[:, None]
    q = np.zeros((n_rows, n))
    q[np.arange(n_rows), yy] = 1 - smoothing
    q += smoothing / n
    loss = -(q * w * logp).sum(axis=1)
    grad = np.exp(logp) * (q * w).sum(axis=1, keepdims=True) - q * w
    sw = np.ones(n_rows) if sw is None else sw
    loss = np.where(keep, sw * loss, 0.0)
    grad = np.where(keep[:, None], sw[:, None] * grad, 0.0)
    return loss, grad


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [*range(1, 26), 31, 33, 64, 65, 100, 128, 129])
def test_fused_cross_entropy(target, dtype, n):
    k = _kernels(target)
    rng = np.random.default_rng(n)
    for n_rows in N_ROWS:
        x = _data(n_rows, n, dtype, seed=n_rows + 7 * n)
        y = rng.integers(0, n, n_rows)
        y[::5] = -100
        for weight, sw, smoothing in ((None, None, 0.0),
                                      (rng.uniform(0.5, 2, n), rng.uniform(0, 2, n_rows), 0.3)):
            loss_ref, grad_ref = _cross_entropy_reference(x, y, weight, sw, smoothing, -100)
            grad = np.full_like(x, np.nan)
            losses = np.full(n_rows, np.nan, dtype)
            total = k.cross_entropy_rows(x, y, weight, sw, smoothing, -100, 1.0, grad,
                                         losses, 2)
            msg = f"{target} rows={n_rows} weighted={weight is not None}"
            # loss = log(s) + (m - x_y): its rounding is a few ulp of the logits
            loss_atol = 4 * np.finfo(dtype).eps * np.abs(x).max() * (1 if sw is None else 2)
            np.testing.assert_allclose(losses, loss_ref, rtol=TOL[dtype]["rtol"],
                                       atol=loss_atol, err_msg=msg)
            np.testing.assert_allclose(grad, grad_ref, **GRAD_TOL[dtype], err_msg=msg)
            np.testing.assert_allclose(total, loss_ref.sum(), rtol=1e-6 if dtype == np.float32
                                       else 1e-12, err_msg=msg)


def _special_rows(n, dtype):
    """Rows of length n with non-finite entries, next to ordinary rows."""
    inf, nan = np.inf, np.nan
    rows = [np.full(n, -inf), np.linspace(-3, 3, n)]
    for value in (inf, nan, -inf):
        row = np.linspace(-3, 3, n)
        row[n // 2] = value
        rows.append(row)
    row = np.full(n, 1e30)
    row[0] = -inf
    rows.append(row)
    return np.array(rows * 3, dtype=dtype)  # several of each, to fill a block


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 9, 16, 17, 20, 23, 24, 31, 33, 64, 65, 100, 128, 129])
def test_non_finite_rows_on_every_path(target, dtype, n):
    """-inf entries give 0 / -inf, +inf and NaN poison only their own row, an
    all -inf row gives NaN (logsumexp: -inf), on every row path: scipy's
    values, except that a +inf makes the whole log_softmax row NaN (torch's
    rule, documented; scipy gives -inf and NaN there)."""
    k = _kernels(target)
    x = _special_rows(n, dtype)
    ref = x.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        expected = {False: sp.softmax(ref, axis=1), True: sp.log_softmax(ref, axis=1)}
        expected_lse = sp.logsumexp(ref, axis=1)
    expected[True][np.isposinf(ref).any(axis=1)] = np.nan
    for use_log in (False, True):
        out = np.empty_like(x)
        k.softmax_3d(x.reshape(*x.shape, 1), out.reshape(*x.shape, 1), use_log, 2)
        np.testing.assert_allclose(out, expected[use_log], **TOL[dtype],
                                   err_msg=f"{target} use_log={use_log}")
    lse = np.empty((x.shape[0], 1), dtype)
    k.logsumexp_3d(x.reshape(*x.shape, 1), lse, 2)
    np.testing.assert_allclose(lse[:, 0], expected_lse.astype(dtype), **TOL[dtype],
                               err_msg=f"{target} logsumexp")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 10, 15, 16, 17, 33])
def test_backward(target, dtype, n):
    """Both VJPs against their float64 formulas (the float32 log_softmax VJP
    of rows under 16 goes through transposed blocks)."""
    k = _kernels(target)
    for n_rows in N_ROWS:
        x = _data(n_rows, n, np.float64, seed=n_rows + n)
        g = _data(n_rows, n, np.float64, seed=n_rows + n + 1) / 5
        for use_log in (False, True):
            y = sp.log_softmax(x, axis=1) if use_log else sp.softmax(x, axis=1)
            if use_log:
                ref = g - np.exp(y) * g.sum(axis=1, keepdims=True)
            else:
                ref = y * (g - (g * y).sum(axis=1, keepdims=True))
            yd, gd = y.astype(dtype), g.astype(dtype)
            out = np.full_like(yd, np.nan)
            k.softmax_backward_3d(gd.reshape(n_rows, n, 1), yd.reshape(n_rows, n, 1),
                                  out.reshape(n_rows, n, 1), use_log, 2)
            # y and g rounded to the dtype: a few ulp of |g| (up to ~4) absolute
            np.testing.assert_allclose(out, ref, rtol=TOL[dtype]["rtol"],
                                       atol=8 * np.finfo(dtype).eps * np.abs(g).max(),
                                       err_msg=f"{target} use_log={use_log} rows={n_rows}")
