"""NumPy arrays of the estimator's calls from a bounded cache of blocks.

`cached_allocations` makes the cached allocator of ``src/array_cache.h``
NumPy's current one (NEP 49) for the calls of `SoftmaxRegression`: blocks of
128 KiB to 16 MiB that an array gives back are kept (at most 32 MiB) for the
next array instead of being unmapped.  Where the process sets
``MALLOC_TRIM_THRESHOLD_`` (dask's nanny starts every worker with 65536),
glibc otherwise maps each such array afresh and its pages fault in again:
about 2,400 faults in a fit and score on 40,000 x 100, every task of a
search.  NumPy keeps the current allocator in a context variable: only
arrays the calling thread creates inside the block use it, and each array
gives its block back to the allocator that made it, whenever it is freed.
Without the compiled module (a build without it), the block does nothing.
"""

import functools
from contextlib import contextmanager

try:
    from . import _allocator
except ImportError:  # pragma: no cover - the module is part of every build
    _allocator = None

__all__ = ["cached_allocations", "cached_allocations_in"]


@contextmanager
def cached_allocations():
    """Within the block, new NumPy arrays of this thread come from the cache."""
    if _allocator is None:  # pragma: no cover
        yield
        return
    previous = _allocator.install()
    try:
        yield
    finally:
        _allocator.restore(previous)


def cached_allocations_in(method):
    """Decorator: ``method`` runs inside `cached_allocations`."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with cached_allocations():
            return method(*args, **kwargs)

    return wrapper
