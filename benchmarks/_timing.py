"""Timing helper shared by the benchmark scripts: best of several repeats."""

import time

__all__ = ["best_time"]


def best_time(func, min_total=0.2, repeats=5):
    """Best per-call wall time of ``func()`` in seconds.

    Each repeat runs ``func`` enough times to last about ``min_total / repeats``
    seconds; the minimum over repeats is the least noisy estimate on a shared
    machine.
    """
    func()  # warm-up (page faults, lazy imports, thread-pool start)
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            func()
        dt = time.perf_counter() - t0
        if dt > min_total / repeats or n >= 1 << 20:
            break
        n *= 4
    best = dt / n
    for _ in range(repeats - 1):
        t0 = time.perf_counter()
        for _ in range(n):
            func()
        best = min(best, (time.perf_counter() - t0) / n)
    return best
