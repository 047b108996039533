"""Shared test configuration: array-API backends as an ``xp`` fixture.

``SCIPY_ARRAY_API=1`` must be set before SciPy is imported, or scikit-learn
refuses ``array_api_dispatch=True``; it is set here, before anything else.
"""

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")

import importlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

BACKENDS = ["numpy", "array_api_strict", "torch"]

# hypothesis profiles (issue 11): "ci" (default) is bounded and derandomized, so
# CI is reproducible; "campaign" (tests/fuzz_campaign.py) runs many examples
# from random seeds.  HYPOTHESIS_PROFILE selects one.
from hypothesis import HealthCheck, settings  # noqa: E402

_SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True,
                          database=None, print_blob=True, suppress_health_check=_SLOW_DATA)
settings.register_profile("campaign", max_examples=int(os.environ.get("FUZZ_EXAMPLES", 1000)),
                          deadline=None, database=None, print_blob=True,
                          suppress_health_check=_SLOW_DATA)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _load(name):
    if name == "numpy":
        return np
    try:
        return importlib.import_module(name)
    except ImportError:
        pytest.skip(f"{name} is not installed")


@pytest.fixture(params=BACKENDS)
def xp(request):
    """The array namespace of one backend (skipped when it is not installed)."""
    return _load(request.param)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def kernel_threads(request, monkeypatch):
    """Run a test with 1 and with 2 OpenMP threads, parallel path forced on."""
    from threadpoolctl import threadpool_limits

    from softmax_core import _threads

    monkeypatch.setattr(_threads, "PARALLEL_MIN_ELEMENTS", 0)
    with threadpool_limits(limits=request.param, user_api="openmp"):
        yield request.param


def run_with_small_stack(func, stack_size=64 * 1024):
    """Run ``func()`` in a thread with a small stack; re-raise what it raised."""
    import threading

    errors = []

    def target():
        try:
            func()
        except BaseException as exc:  # pragma: no cover - re-raised below
            errors.append(exc)

    old = threading.stack_size(stack_size)
    try:
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(old)
    if errors:
        raise errors[0]


def digits_split():
    """scikit-learn's digits, standardized, 75/25 stratified split (the issue's quality bar)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def to_xp(xp, a):
    """A NumPy array (or array-like) as an array of namespace ``xp``."""
    if xp is np:
        return np.asarray(a)
    if xp.__name__ == "torch":
        return xp.asarray(np.asarray(a))
    return xp.asarray(np.asarray(a))


def to_numpy(a):
    """Any array (NumPy, torch, array_api_strict, scalars) as a NumPy array."""
    if type(a).__module__.startswith("torch"):
        return a.detach().cpu().numpy()
    if type(a).__module__.startswith("array_api_strict"):
        return np.asarray(a._array) if hasattr(a, "_array") else np.asarray(a)
    return np.asarray(a)


def namespace_of(a):
    """Name of the top-level package an array comes from."""
    return type(a).__module__.split(".")[0]


# dask (issue 12): a real distributed.LocalCluster of 2 single-threaded worker
# processes, started once for the session by the first test that asks for it
# and closed at the end; each test gets its own Client (the default scheduler
# while the test runs).  Tests skip cleanly where dask is not installed.
@pytest.fixture(scope="session")
def dask_cluster():
    pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    import logging

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  memory_limit="1GiB", dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster:
        yield cluster


@pytest.fixture
def dask_client(dask_cluster):
    import distributed

    with distributed.Client(dask_cluster) as client:
        yield client
