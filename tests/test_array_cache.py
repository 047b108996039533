"""The cached NumPy allocator of the estimator's calls (src/array_cache.h).

Oracles: NumPy's default allocator (the same values, the same fits), the
process's own page-fault counter, and the cache's bounds as documented.
"""

import ctypes
import gc
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from softmax_core import SoftmaxRegression
from softmax_core._array_cache import _allocator, cached_allocations
from softmax_core._native import kernels

try:
    from numpy._core.multiarray import get_handler_name
except ImportError:  # NumPy < 2
    from numpy.core.multiarray import get_handler_name

KIB, MIB = 1 << 10, 1 << 20
NAME = "softmax_core_cache"


@pytest.fixture(autouse=True)
def empty_cache():
    # The cache's counts are asserted exactly: no collection may free an
    # earlier test's arrays into it mid-test.
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    _allocator.release()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect()
        _allocator.release()


def _buffer(nbytes, fill=None):
    a = np.empty(nbytes, dtype=np.uint8)
    if fill is not None:
        a.fill(fill)
    return a


def test_handler_only_inside_the_block_and_restored_after_an_error():
    before = get_handler_name()
    with cached_allocations():
        assert get_handler_name() == NAME
        assert get_handler_name(np.ones(10)) == NAME
        with cached_allocations():  # nested
            assert get_handler_name() == NAME
        assert get_handler_name() == NAME
    assert get_handler_name() == before
    assert get_handler_name(np.ones(10)) == before
    with pytest.raises(RuntimeError, match="boom"):
        with cached_allocations():
            raise RuntimeError("boom")
    assert get_handler_name() == before


def test_other_threads_keep_their_allocator():
    seen = {}
    started, release = threading.Event(), threading.Event()

    def other():
        started.wait()
        seen["name"] = get_handler_name(np.ones(10))
        release.set()

    t = threading.Thread(target=other)
    t.start()
    with cached_allocations():
        started.set()
        release.wait(30)
    t.join()
    assert seen["name"] != NAME


def test_a_freed_block_serves_the_next_request_it_fits():
    with cached_allocations():
        a = _buffer(MIB)
        address = a.ctypes.data
        del a
        assert _allocator.stats() == (1, MIB)
        b = _buffer(600 * KIB)  # within [size, 2 x size] of the cached MiB
        assert b.ctypes.data == address
        assert _allocator.stats() == (0, 0)
        del b
        assert _allocator.stats() == (1, MIB)  # given back at its true size
        c = _buffer(400 * KIB)  # the MiB is more than twice this: not taken
        assert c.ctypes.data != address
        d = _buffer(MIB + 1)  # larger than the block: not taken
        assert d.ctypes.data != address
        assert _allocator.stats() == (1, MIB)
        del c, d


def test_the_smallest_fitting_block_is_taken():
    with cached_allocations():
        big, small = _buffer(2 * MIB), _buffer(MIB)
        small_address = small.ctypes.data
        del big, small
        assert _allocator.stats() == (2, 3 * MIB)
        e = _buffer(MIB)
        assert e.ctypes.data == small_address
        del e


def test_calloc_from_the_cache_is_zeroed():
    with cached_allocations():
        a = _buffer(MIB, fill=0xAB)
        address = a.ctypes.data
        del a
        z = np.zeros(MIB // 8)
        assert z.ctypes.data == address
        assert not z.any()


def test_realloc_keeps_the_data():
    rng = np.random.default_rng(0)
    data = rng.standard_normal(40_000)
    with cached_allocations():
        a = data.copy()
        a.resize(100_000, refcheck=False)  # grows: a new block, the old one cached
        assert _allocator.stats() == (1, data.nbytes)
        np.testing.assert_array_equal(a[:40_000], data)
        a.resize(20_000, refcheck=False)  # to under half its block: moves
        np.testing.assert_array_equal(a, data[:20_000])


def test_realloc_in_place_within_the_block_and_copies_the_bytes_in_use():
    rng = np.random.default_rng(1)
    data = rng.standard_normal(MIB // 8)  # one MiB
    with cached_allocations():
        a = data.copy()
        address = a.ctypes.data
        a.resize(90_000, refcheck=False)  # 720,000 bytes: over half, in place
        assert a.ctypes.data == address
        assert _allocator.stats() == (0, 0)
        a.resize(MIB // 8, refcheck=False)  # grows back within its block: in place
        assert a.ctypes.data == address
        np.testing.assert_array_equal(a[:90_000], data[:90_000])
        b = data.copy()
        b.resize(90_000, refcheck=False)  # in place: 720,000 bytes in use
        b.resize(200_000, refcheck=False)  # beyond the block: copies the bytes in use
        # only (in the sanitize build a copy of the poisoned slack would be reported)
        np.testing.assert_array_equal(b[:90_000], data[:90_000])
        del b
        _allocator.release()  # the comparisons' temporaries
        a.resize(40_000, refcheck=False)  # 320,000 bytes: under half, moves
        assert _allocator.stats() == (1, MIB)  # the MiB went back to the cache
        assert a.ctypes.data != address
        np.testing.assert_array_equal(a, data[:40_000])
        del a


class _AllocatorFunctions(ctypes.Structure):
    _fields_ = [("ctx", ctypes.c_void_p), ("malloc", ctypes.c_void_p),
                ("calloc", ctypes.c_void_p), ("realloc", ctypes.c_void_p),
                ("free", ctypes.c_void_p)]


class _Handler(ctypes.Structure):  # NumPy's PyDataMem_Handler (NEP 49)
    _fields_ = [("name", ctypes.c_char * 127), ("version", ctypes.c_uint8),
                ("allocator", _AllocatorFunctions)]


def _user_handler(calls):
    """A handler of the user's (libc's functions, counted) as a capsule."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype = libc.calloc.restype = libc.realloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
    libc.realloc.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    vp, sz = ctypes.c_void_p, ctypes.c_size_t

    def count(name, result):
        calls[name] = calls.get(name, 0) + 1
        return result

    functions = [
        ctypes.CFUNCTYPE(vp, vp, sz)(lambda c, n: count("malloc", libc.malloc(n))),
        ctypes.CFUNCTYPE(vp, vp, sz, sz)(lambda c, n, k: count("calloc", libc.calloc(n, k))),
        ctypes.CFUNCTYPE(vp, vp, vp, sz)(lambda c, p, n: count("realloc", libc.realloc(p, n))),
        ctypes.CFUNCTYPE(None, vp, vp, sz)(lambda c, p, n: count("free", libc.free(p))),
    ]
    handler = _Handler(b"user_allocator", 1, _AllocatorFunctions(
        None, *[ctypes.cast(f, ctypes.c_void_p) for f in functions]))
    new_capsule = ctypes.pythonapi.PyCapsule_New
    new_capsule.restype = ctypes.py_object
    new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    capsule = new_capsule(ctypes.addressof(handler), b"mem_handler", None)
    return capsule, (handler, functions, libc)


_KEEP_ALIVE = []


def _set_handler(capsule):
    """NumPy's PyDataMem_SetHandler, slot 304 of its (stable) C API table."""
    from numpy._core import _multiarray_umath

    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    table = ctypes.cast(get_pointer(_multiarray_umath._ARRAY_API, None),
                        ctypes.POINTER(ctypes.c_void_p))
    set_handler = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.py_object)(table[304])
    return set_handler(capsule)


@pytest.mark.skipif(not hasattr(np, "_core"), reason="NumPy 2's module layout")
def test_a_handler_the_user_installed_stays_in_place():
    calls = {}
    capsule, keep_alive = _user_handler(calls)
    _KEEP_ALIVE.append(keep_alive)  # its functions outlive any array made with them
    previous = _set_handler(capsule)
    names = []
    try:
        names.append(get_handler_name())
        with cached_allocations():
            names.append(get_handler_name())
            a = _buffer(MIB, fill=3)
            names.append(get_handler_name(a))
            total = int(a.sum())
            del a
        names.append(get_handler_name())
    finally:
        _set_handler(previous)
        gc.collect()
    assert names == ["user_allocator"] * 4
    assert total == 3 * MIB
    assert calls.get("malloc", 0) >= 1 and calls.get("free", 0) >= 1
    assert _allocator.stats() == (0, 0)
    assert get_handler_name() == "default_allocator"


def test_bounds_of_the_cache():
    with cached_allocations():
        blocks = [_buffer(MIB) for _ in range(_allocator.MAX_COUNT + 8)]
        del blocks
        count, nbytes = _allocator.stats()
        assert count == _allocator.MAX_COUNT and nbytes == _allocator.MAX_COUNT * MIB
        assert nbytes <= _allocator.MAX_BYTES
        blocks = [_buffer(8 * MIB) for _ in range(6)]
        del blocks
        count, nbytes = _allocator.stats()
        assert nbytes <= _allocator.MAX_BYTES and count == 4
        _allocator.release()
        small = _buffer(_allocator.MIN_BLOCK - 64)  # under the minimum
        large = _buffer(_allocator.MAX_BLOCK + 1)
        del small, large
        assert _allocator.stats() == (0, 0)


def test_arrays_made_inside_give_their_block_back_after_the_block():
    with cached_allocations():
        kept = _buffer(MIB)
    outside = _buffer(MIB)
    del outside  # NumPy's own allocator: not cached
    assert _allocator.stats() == (0, 0)
    del kept  # made under the cache: back to it, though freed outside
    assert _allocator.stats() == (1, MIB)


def test_threads_never_share_a_block():
    errors = []

    def work(tag):
        rng = np.random.default_rng(tag)
        try:
            with cached_allocations():
                for _ in range(150):
                    arrays = [np.full(int(n), tag, dtype=np.int32)
                              for n in rng.integers(32 * KIB, 600 * KIB, size=3)]
                    for a in arrays:
                        if not (a == tag).all():
                            errors.append(tag)
                    del arrays
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    count, nbytes = _allocator.stats()
    assert count <= _allocator.MAX_COUNT and nbytes <= _allocator.MAX_BYTES


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_can_allocate():
    with cached_allocations():
        _buffer(MIB)  # freed at once: one cached block
        pid = os.fork()
        if pid == 0:  # the child: the cache's lock must not be held
            try:
                a = _buffer(MIB, fill=7)
                ok = bool((a == 7).all())
                del a
                os._exit(0 if ok else 1)
            except BaseException:
                os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _data(n=6000, k=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, k)).astype(np.float32)
    y = np.argmax(X[:, :5] + 0.5 * rng.standard_normal((n, 5)), axis=1)
    return X, y


def test_the_estimator_allocates_from_the_cache_and_fits_the_same(monkeypatch):
    from contextlib import nullcontext

    import softmax_core._regression as regression

    X, y = _data()
    clf = SoftmaxRegression(random_state=0, max_iter=5, tol=None).fit(X, y)
    proba = clf.predict_proba(X)
    assert get_handler_name(proba) == NAME
    assert get_handler_name(clf.coef_) == NAME
    assert get_handler_name(clf.decision_function(X)) == NAME
    assert get_handler_name(np.ones(3)) != NAME  # restored after the calls
    # the same numbers as with NumPy's own allocator
    monkeypatch.setattr(regression, "cached_allocations", nullcontext)
    plain = SoftmaxRegression(random_state=0, max_iter=5, tol=None).fit(X, y)
    assert get_handler_name(plain.coef_) != NAME
    np.testing.assert_array_equal(plain.coef_, clf.coef_)
    np.testing.assert_array_equal(plain.intercept_, clf.intercept_)


_FAULTS = textwrap.dedent("""
    import resource, sys
    from contextlib import nullcontext
    import numpy as np
    import softmax_core._regression as regression
    from softmax_core import SoftmaxRegression
    if sys.argv[1] == "off":
        regression.cached_allocations = nullcontext
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40_000, 100)).astype(np.float32)
    y = np.argmax(X[:, :10], axis=1)
    def fit():
        clf = SoftmaxRegression(random_state=0, max_iter=1, tol=None, batch_size=1024)
        clf.fit(X, y).score(X[:20_000], y[:20_000])
    fit()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fit()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's MALLOC_TRIM_THRESHOLD_")
@pytest.mark.skipif(kernels.BUILD_MODE == "sanitize", reason="ASan's allocator replaces glibc's")
def test_no_fresh_pages_in_a_fit_under_dasks_malloc_setting():
    # dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536: glibc then
    # maps every block of 128 KiB or more afresh; the cache keeps them
    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="65536", OMP_NUM_THREADS="1")

    def faults(mode):
        out = subprocess.run([sys.executable, "-c", _FAULTS, mode], env=env, check=True,
                             capture_output=True, text=True, timeout=300)
        return int(out.stdout.split()[-1])

    off, on = faults("off"), faults("on")
    assert off > 1000  # the setting's cost without the cache (about 2,300 here)
    assert on < off / 10


_POISON_CHILD = """
import ctypes
import numpy as np
from softmax_core._array_cache import cached_allocations
with cached_allocations():
    a = np.empty(1 << 20, dtype=np.uint8)
    address = a.ctypes.data
    del a  # cached, not freed: poisoned while it waits
    if {slack}:
        b = np.empty(600 << 10, dtype=np.uint8)  # served by the cached MiB
        assert b.ctypes.data == address
        ctypes.memset(address + (700 << 10), 0, 8)  # beyond the bytes asked for
    else:
        ctypes.memset(address, 0, 8)  # a use after free
print("no report")
"""


@pytest.mark.skipif(kernels.BUILD_MODE != "sanitize", reason="needs the sanitize build (ASan)")
@pytest.mark.parametrize("slack", [False, True], ids=["after-free", "into-the-slack"])
def test_asan_reports_a_use_of_a_cached_block(slack):
    assert _allocator.ASAN_POISONING  # the sanitize build poisons cached blocks
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:halt_on_error=1")
    proc = subprocess.run([sys.executable, "-c", _POISON_CHILD.format(slack=slack)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "use-after-poison" in proc.stderr
    assert "no report" not in proc.stdout
