"""The kernels follow threadpoolctl limits and give the same results on 1 or 2 threads."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from softmax_core import _threads, log_softmax, logsumexp, softmax
from softmax_core._native import kernels


def test_openmp_runtime_is_visible_to_threadpoolctl():
    if not kernels.have_openmp():
        pytest.skip("serial build")
    assert any(info["user_api"] == "openmp" for info in threadpool_info())


def test_threadpool_limits_are_followed():
    if not kernels.have_openmp():
        pytest.skip("serial build")
    with threadpool_limits(limits=1):
        assert _threads.max_threads() == 1
        assert _threads.n_threads_for(10**8) == 1
    with threadpool_limits(limits=2, user_api="openmp"):
        assert _threads.max_threads() == 2


def test_small_problems_stay_serial():
    assert _threads.n_threads_for(100) == 1


@pytest.mark.parametrize("shape,axis", [((20000, 10), -1), ((300, 1000), -1),
                                        ((8, 16, 300), 1)])
def test_one_and_two_threads_agree(shape, axis):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 5
    results = []
    for n in (1, 2):
        with threadpool_limits(limits=n, user_api="openmp"):
            results.append((softmax(x, axis=axis), log_softmax(x, axis=axis),
                            logsumexp(x, axis=axis)))
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)
