"""Property-based tests (hypothesis) over shapes, axes, dtypes and magnitudes."""

import mpmath
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softmax_core import log_softmax, logsumexp, softmax

RTOL = {np.float32: 1e-5, np.float64: 1e-12}


@st.composite
def arrays_and_axes(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=7))
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0, 1e3]))
    elems = st.floats(-1, 1, width=32)
    x = draw(hnp.arrays(dtype, shape, elements=elems)) * dtype(scale)
    ndim = len(shape)
    axis = draw(st.one_of(
        st.integers(-ndim, ndim - 1),
        st.none(),
        st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple),
    ))
    return x, axis


def _tol(x):
    # x - max loses |x - max| * eps absolute; softmax inherits it relatively
    eps = np.finfo(x.dtype).eps
    return dict(rtol=RTOL[x.dtype.type], atol=4 * eps * (1 + float(np.ptp(x)) if x.size else 1))


@settings(max_examples=150, deadline=None)
@given(arrays_and_axes())
def test_sums_to_one_and_exp_log_consistent(case):
    x, axis = case
    before = x.copy()
    s = softmax(x, axis=axis)
    ls = log_softmax(x, axis=axis)
    np.testing.assert_array_equal(x, before)  # no write-back
    assert s.dtype == x.dtype and ls.dtype == x.dtype
    total = np.sum(s.astype(np.float64), axis=axis)
    np.testing.assert_allclose(total, 1.0, rtol=0, atol=RTOL[x.dtype.type] * 10)
    np.testing.assert_allclose(np.exp(ls.astype(np.float64)), s, **_tol(x))


@settings(max_examples=100, deadline=None)
@given(arrays_and_axes(), st.floats(-50, 50))
def test_shift_invariance(case, c):
    x, axis = case
    c = x.dtype.type(round(c))  # an integer shift is exact in both dtypes here
    shifted = (x + c).astype(x.dtype)
    if not np.all((shifted - c) == x):  # the shift must be exact for the identity to hold
        return
    np.testing.assert_allclose(softmax(shifted, axis=axis), softmax(x, axis=axis), **_tol(x))
    np.testing.assert_allclose(logsumexp(shifted, axis=axis), logsumexp(x, axis=axis) + c,
                               rtol=RTOL[x.dtype.type], atol=_tol(x)["atol"] * 4)


def _mp_logsumexp(values):
    return float(mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(float(v))) for v in values)))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 40),
                  elements=st.floats(-700, 700, allow_nan=False)))
def test_logsumexp_against_mpmath(x):
    mpmath.mp.dps = 40
    np.testing.assert_allclose(logsumexp(x), _mp_logsumexp(x), rtol=1e-14, atol=1e-14)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(logsumexp(x32), _mp_logsumexp(x32), rtol=2e-6, atol=2e-6)
