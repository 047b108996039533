"""
=====================================
Speed against SciPy and torch
=====================================

A live measurement, taken while this page was built, of
:func:`softmax_core.softmax` and :func:`softmax_core.log_softmax` against
:func:`scipy.special.softmax` / :func:`scipy.special.log_softmax` and, when it
is installed, ``torch.softmax`` / ``torch.log_softmax`` on CPU tensors.

The problems are kept small so that the page builds in seconds; the
benchmark scripts in ``benchmarks/`` measure more shapes and report the
table reproduced in :ref:`performance`.  Timings on a shared CI machine are
noisy: read the bars as orders of magnitude.  On a busy machine the multi-threaded bars
(ours and torch's alike) can come out far slower than the one-thread bars, because a thread
waits at every barrier while its partner is preempted.
"""

# %%
# Setup
# -----
# :func:`softmax_core.show_config` reports the kernel build and the threads
# that this measurement used.
import os
import timeit

import matplotlib.pyplot as plt
import numpy as np
from scipy import special
from threadpoolctl import threadpool_limits

import softmax_core

try:
    import torch
except ImportError:  # the comparison simply leaves torch out
    torch = None

softmax_core.show_config()
if torch is not None:
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )

rng = np.random.default_rng(0)
shapes = [(4096, 10), (512, 1000), (16, 50_000)]


def best_time(func, min_time=0.01, repeat=3):
    """Best time per call in s, over `repeat` runs of `min_time` s."""
    timer = timeit.Timer(func)
    once = timer.timeit(1)  # also a warm-up
    number = max(1, int(min_time / max(once, 1e-7)))
    return min(timer.repeat(repeat=repeat, number=number)) / number


def candidates(x):
    """name -> (softmax, log_softmax) callables on `x`, thread limit."""
    n = max(1, os.cpu_count() or 1)
    funcs = {
        "scipy": (
            lambda: special.softmax(x, axis=-1),
            lambda: special.log_softmax(x, axis=-1),
            1,
        ),
    }
    for threads in sorted({1, n}):
        funcs[f"softmax-core, {threads} thr"] = (
            lambda: softmax_core.softmax(x),
            lambda: softmax_core.log_softmax(x),
            threads,
        )
    if torch is not None:
        t = torch.from_numpy(x)
        for threads in sorted({1, n}):
            funcs[f"torch, {threads} thr"] = (
                lambda: torch.softmax(t, dim=-1),
                lambda: torch.log_softmax(t, dim=-1),
                threads,
            )
    return funcs


def limited(threads):
    """Limit OpenMP (softmax-core) and torch's intra-op pool."""
    if torch is not None:
        torch.set_num_threads(threads)
    return threadpool_limits(limits=threads, user_api="openmp")


# %%
# Measure
# -------
# float32 logits, softmax over the last axis.  SciPy runs on one thread;
# softmax-core and torch are measured on one thread and on all cores.
timings = {}  # (function, shape) -> {library: seconds}
default_torch_threads = (
    torch.get_num_threads() if torch is not None else None
)
for shape in shapes:
    x = rng.standard_normal(shape).astype(np.float32)
    for name, (soft, log_soft, threads) in candidates(x).items():
        with limited(threads):
            for fname, f in (("softmax", soft), ("log_softmax", log_soft)):
                timings.setdefault((fname, shape), {})[name] = best_time(f)
if torch is not None:
    torch.set_num_threads(default_torch_threads)

libraries = list(next(iter(timings.values())))
reference = "softmax-core, 1 thr"
print(
    f"{'function':12s} {'shape':>12s} "
    + " ".join(f"{lib:>20s}" for lib in libraries)
)
for (fname, shape), row in timings.items():
    cells = " ".join(f"{row[lib] * 1e6:17.1f} us" for lib in libraries)
    print(f"{fname:12s} {str(shape):>12s} {cells}")
print("\nscipy time / softmax-core time, both on one thread:")
for (fname, shape), row in timings.items():
    print(
        f"  {fname:12s} {str(shape):>12s} "
        f"{row['scipy'] / row[reference]:6.1f}x"
    )

# %%
# Plot
# ----
# Time per call (log scale, lower is better) for each problem.
labels = [f"{fname}\n{shape[0]}x{shape[1]}" for fname, shape in timings]
pos = np.arange(len(labels))
width = 0.8 / len(libraries)
fig, ax = plt.subplots(figsize=(10, 4.5))
for k, lib in enumerate(libraries):
    values = [row[lib] * 1e6 for row in timings.values()]
    ax.bar(
        pos + (k - (len(libraries) - 1) / 2) * width,
        values,
        width,
        label=lib,
    )
ax.set_xticks(pos, labels)
ax.set(
    yscale="log",
    ylabel="time per call (microseconds)",
    title="float32, softmax over the last axis (lower is better)",
)
ax.legend(fontsize="small", ncols=2)
fig.tight_layout()
plt.show()
