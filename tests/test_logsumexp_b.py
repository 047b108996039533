"""logsumexp's ``b=`` and ``return_sign=`` against scipy.special.logsumexp."""

import numpy as np
import pytest
import scipy.special as sp
from conftest import to_numpy, to_xp

from softmax_core import logsumexp

inf, nan = np.inf, np.nan

B_CASES = [
    (np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 0.5])),
    (np.array([1.0, 2.0]), np.array([1.0, -1.0])),  # negative sum
    (np.array([2.0, 1.0]), np.array([1.0, -1.0])),
    (np.array([inf, 1.0]), np.array([0.0, 1.0])),  # zero weight on +inf
    (np.array([nan, 1.0]), np.array([0.0, 2.0])),  # zero weight on NaN
    (np.array([inf, 1.0]), np.array([-1.0, 1.0])),
    (np.array([-inf, -inf]), np.array([1.0, 1.0])),
    (np.array([1.0, 1.0]), np.array([1.0, -1.0])),  # exact cancellation
    (np.array([1e3, 1e3 - 1e-3]), np.array([1.0, -1.0])),
]


@pytest.mark.parametrize("a,b", B_CASES)
def test_b_and_sign_match_scipy(xp, a, b):
    with np.errstate(all="ignore"):
        ref, ref_sign = sp.logsumexp(a, b=b, return_sign=True)
        ref_plain = sp.logsumexp(a, b=b)
    res, sign = logsumexp(to_xp(xp, a), b=to_xp(xp, b), return_sign=True)
    np.testing.assert_allclose(to_numpy(res), ref, rtol=1e-12)
    np.testing.assert_array_equal(to_numpy(sign), ref_sign)
    np.testing.assert_allclose(to_numpy(logsumexp(to_xp(xp, a), b=to_xp(xp, b))), ref_plain,
                               rtol=1e-12)


@pytest.mark.parametrize("axis", [0, 1, -1, (0, 1), None])
@pytest.mark.parametrize("keepdims", [False, True])
def test_b_broadcast_axis_keepdims(xp, axis, keepdims):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 5)) * 5
    b = rng.standard_normal((1, 5))
    ref, ref_sign = sp.logsumexp(a, axis=axis, b=b, keepdims=keepdims, return_sign=True)
    res, sign = logsumexp(to_xp(xp, a), axis=axis, b=to_xp(xp, b), keepdims=keepdims,
                          return_sign=True)
    assert tuple(res.shape) == np.shape(ref)
    np.testing.assert_allclose(to_numpy(res), ref, rtol=1e-12)
    np.testing.assert_array_equal(to_numpy(sign), ref_sign)


@pytest.mark.parametrize("axis", [0, -1, (0, 2), None])
def test_keepdims_and_sign_without_b(xp, axis):
    a = np.random.default_rng(1).standard_normal((2, 3, 4))
    a[0, 0, :] = -inf
    ref, ref_sign = sp.logsumexp(a, axis=axis, keepdims=True, return_sign=True)
    res, sign = logsumexp(to_xp(xp, a), axis=axis, keepdims=True, return_sign=True)
    np.testing.assert_allclose(to_numpy(res), ref, rtol=1e-13)
    np.testing.assert_array_equal(to_numpy(sign), ref_sign)


def test_empty_reduction_sign_is_zero():
    # documented difference: scipy returns sign -1 here, we return 0 (as for a row of -inf)
    res, sign = logsumexp(np.zeros((2, 0)), return_sign=True)
    assert np.all(res == -inf) and np.all(sign == 0)


def test_b_shape_error():
    with pytest.raises(ValueError, match="broadcast"):
        logsumexp(np.zeros((2, 3)), b=np.ones((4,)))
