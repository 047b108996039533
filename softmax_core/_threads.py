"""How many OpenMP threads a kernel call uses.

The kernels ask OpenMP (``omp_get_max_threads``) at every call, so
``threadpoolctl.threadpool_limits(n)`` (which sets the limit in the OpenMP
runtime the kernels link) and ``OMP_NUM_THREADS`` are honoured; the default is
the number of cores available.  Small problems run on one thread: waking a
thread team costs more than the work.
"""

from ._native import kernels

__all__ = ["PARALLEL_MIN_MACS", "max_threads", "n_threads_for"]

# below this many elements a call stays on the calling thread
PARALLEL_MIN_ELEMENTS = 1 << 15

# the fused linear step (kernels.linear_cross_entropy) below this many
# multiply-adds per call (about 2 ms on one core at 10 classes) stays on one
# thread: a minibatch step of ~0.1 ms whose barrier waits for a thread the OS
# has descheduled loses a whole time slice.  On a 2-core machine with one
# other busy process, 1% of the two-thread steps took 4-24 ms and the
# per-epoch objective 13 ms instead of 0.5 ms; one thread per step is 1.5x
# slower than two on an idle machine (batch 256 x 784, 10 classes).
PARALLEL_MIN_MACS = 1 << 26


def max_threads():
    """Threads an OpenMP kernel may use now (threadpoolctl limits included)."""
    return max(1, int(kernels.omp_max_threads()))


def n_threads_for(n_elements, min_elements=PARALLEL_MIN_ELEMENTS):
    """Threads to use for a kernel that touches ``n_elements`` elements (or does
    that much work, against a threshold ``min_elements`` of the same unit)."""
    if n_elements < min_elements:
        return 1
    return max_threads()
