"""How many OpenMP threads a kernel call uses.

The kernels ask OpenMP (``omp_get_max_threads``) at every call, so
``threadpoolctl.threadpool_limits(n)`` (which sets the limit in the OpenMP
runtime the kernels link) and ``OMP_NUM_THREADS`` are honoured; the default is
the number of cores available.  Small problems run on one thread: waking a
thread team costs more than the work.
"""

from ._native import kernels

__all__ = ["max_threads", "n_threads_for"]

# below this many elements a call stays on the calling thread
PARALLEL_MIN_ELEMENTS = 1 << 15


def max_threads():
    """Threads an OpenMP kernel may use now (threadpoolctl limits included)."""
    return max(1, int(kernels.omp_max_threads()))


def n_threads_for(n_elements):
    """Threads to use for a kernel that touches ``n_elements`` elements."""
    if n_elements < PARALLEL_MIN_ELEMENTS:
        return 1
    return max_threads()
