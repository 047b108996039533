"""Progress lines for ``python -m softmax_core``.

Design: :func:`step` wraps one piece of work that may take more than a
second (generating a data set, fitting a model).  It prints ``label ...``
when the work starts and ``label: done in 1.23 s`` when it ends; while the
work runs, a daemon thread prints ``  label: 3.0 s ...`` once a second for the
first five seconds and every five seconds after that, so a long fit never
looks hung.  Work that produces its own per-epoch lines (SoftmaxRegression's
``verbose``) prints them in between.  Lines go to the stream that
``sys.stdout`` is when the step starts (``--json`` sends them to stderr).
"""

import sys
import threading
import time
from contextlib import contextmanager

__all__ = ["step"]


def _next_beat(elapsed, interval):
    """Seconds of the next progress line: every ``interval`` up to 5 of them, then 5x."""
    period = interval if elapsed < 5 * interval else 5 * interval
    return (elapsed // period + 1) * period


@contextmanager
def step(label, *, interval=1.0, stream=None):
    """Print start, heartbeat and end lines around the work in the ``with`` block.

    Parameters
    ----------
    label : str
        What is being done, e.g. ``"fitting LogisticRegression"``.
    interval : float, default=1.0
        Seconds between heartbeat lines (five times that after five lines).
    stream : file-like, optional
        Where to print; the current ``sys.stdout`` by default.

    Yields
    ------
    None
        The block runs while the heartbeat thread watches it.

    Examples
    --------
    >>> from softmax_core._progress import step
    >>> with step("counting"):  # doctest: +ELLIPSIS
    ...     total = sum(range(10))
    counting ...
    counting: done in ... s
    """
    stream = sys.stdout if stream is None else stream
    print(f"{label} ...", file=stream, flush=True)
    start = time.perf_counter()
    done = threading.Event()

    def heartbeat():
        beat = _next_beat(0.0, interval)
        while not done.wait(max(0.0, beat - (time.perf_counter() - start))):
            elapsed = time.perf_counter() - start
            print(f"  {label}: {elapsed:.1f} s ...", file=stream, flush=True)
            beat = _next_beat(elapsed, interval)

    thread = threading.Thread(target=heartbeat, name="softmax-core progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
    print(f"{label}: done in {time.perf_counter() - start:.2f} s", file=stream, flush=True)
