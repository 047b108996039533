"""Timing helpers shared by the benchmark scripts.

The machines these run on are shared: another tenant can slow a run down
several times for a few hundred milliseconds, and a two-thread call then waits
at its barrier.  Two defences: every time is the *minimum* over many short
repeats, and `best_times` interleaves the functions it compares (one repeat of
each per round), so a slow period hits ours and the peers alike instead of
one of them.
"""

import math
import time

__all__ = ["best_times"]


def _calls_per_repeat(func, target):
    """How many back-to-back calls of ``func`` last at least ``target`` seconds."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            func()
        if time.perf_counter() - t0 >= target or n >= 1 << 20:
            return n
        n *= 4


def best_times(cases, rounds=15, repeat_seconds=0.015):
    """Best per-call wall time, in seconds, of each case, measured interleaved.

    ``cases`` maps a name to a function, or to ``(setup, function)`` where
    ``setup()`` runs (untimed) before each of that case's repeats, e.g. to set
    a library's thread count.  Each round times one repeat of every case in
    turn; a repeat runs the function enough times to last ``repeat_seconds``.
    Returns ``{name: minimum over rounds of the per-call time}``.
    """
    cases = {name: case if isinstance(case, tuple) else (lambda: None, case)
             for name, case in cases.items()}
    calls = {}
    for name, (setup, func) in cases.items():
        setup()
        func()  # warm-up: page faults, lazy imports, thread-pool start
        calls[name] = _calls_per_repeat(func, repeat_seconds)
    best = dict.fromkeys(cases, math.inf)
    for _ in range(rounds):
        for name, (setup, func) in cases.items():
            setup()
            n = calls[name]
            t0 = time.perf_counter()
            for _ in range(n):
                func()
            best[name] = min(best[name], (time.perf_counter() - t0) / n)
    return best

