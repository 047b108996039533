"""A/B comparison of two kernel builds and torch, interleaved in one process.

Run ``python benchmarks/bench_kernel_ab.py --before DIR`` where ``DIR`` holds
the kernel modules of another build (e.g. a copy of ``softmax_core/_kernels_*.so``
taken before a kernel change).  The build being compared is the one this
``softmax_core`` imports; each case swaps the kernel module the NumPy path
calls, so "before", "after" and torch are timed one repeat after the other in
every round, and a slow spell of a shared machine hits all three alike.
Reports the median and the minimum per call over the rounds and the ratios
(``torch/after`` above 1: we are faster; ``before/after`` above 1: the change
is faster).  ``--cpu`` times one-thread runs with the thread's CPU time, which
does not count time the thread was descheduled (memory stalls still count).

Options: ``--target x86_64_v3`` (default: the build this CPU runs; set
``ATEN_CPU_CAPABILITY=avx2`` to compare with torch's AVX2 kernels too),
``--threads 1,2``, ``--ops softmax,log_softmax,logsumexp,ce`` (``ce``: the
fused ``cross_entropy_with_grad`` against torch's forward and backward),
``--dtypes``, ``--shape 4096,1000``, ``--rounds``, ``--repeat`` (seconds).
"""

import argparse
import importlib
import importlib.util
import os
import statistics
import time

import numpy as np
from _timing import _calls_per_repeat
from bench_vexp import _use
from threadpoolctl import threadpool_limits

import softmax_core
from softmax_core import _softmax_numpy
from softmax_core._native import KERNEL_TARGET


def _load(folder, target):
    """The kernel module of `target` from `folder`, under a name of its own."""
    names = [f for f in os.listdir(folder) if f.startswith(f"_kernels_{target}.")]
    if not names:
        raise SystemExit(f"no _kernels_{target}.* in {folder}")
    spec = importlib.util.spec_from_file_location(f"before_build._kernels_{target}",
                                                  os.path.join(folder, names[0]))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _functions(op, shape, torch):
    """(ours, torch's) for `op`, each taking (array, tensor)."""
    if op == "ce":
        y = np.random.default_rng(1).integers(0, shape[1], shape[0])
        yt = torch.from_numpy(y)

        def theirs(xt):
            xr = xt.detach().requires_grad_()
            torch.nn.functional.cross_entropy(xr, yt).backward()
            return xr.grad

        return (lambda x: softmax_core.cross_entropy_with_grad(x, y)[1]), theirs
    ours, tf = getattr(softmax_core, op), getattr(torch, op)
    return (lambda x: ours(x, axis=-1)), (lambda xt: tf(xt, -1))


def _time_case(op, dtype, shape, threads, before, after, torch, args):
    """{"before"|"after"|"torch": per-call times over the rounds} for one case."""
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    xt = torch.from_numpy(x)
    ours, theirs = _functions(op, shape, torch)
    cases = {
        "before": (_use(before), lambda: ours(x)),
        "after": (_use(after), lambda: ours(x)),
        "torch": (lambda: torch.set_num_threads(threads), lambda: theirs(xt)),
    }
    calls = {}
    for name, (setup, func) in cases.items():
        setup()
        func()
        calls[name] = _calls_per_repeat(func, args.repeat)
    clock = time.thread_time if args.cpu and threads == 1 else time.perf_counter
    times = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, (setup, func) in cases.items():
            setup()
            t0 = clock()
            for _ in range(calls[name]):
                func()
            times[name].append((clock() - t0) / calls[name])
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="folder with the other build's modules")
    parser.add_argument("--target", default=KERNEL_TARGET)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--ops", default="softmax,log_softmax")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--shape", default="4096,1000")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--repeat", type=float, default=0.005)
    parser.add_argument("--cpu", action="store_true", help="thread CPU time for 1 thread")
    args = parser.parse_args(argv)
    import torch

    after = importlib.import_module(f"softmax_core._kernels_{args.target}")
    # this tree's module first: with the other file loaded first, the import
    # above returned that one (both define the same module init function)
    before = _load(args.before, args.target)
    shape = tuple(int(s) for s in args.shape.split(","))
    original = _softmax_numpy.kernels
    print(f"after: {after.__file__}\nbefore: {before.__file__}\n"
          f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}; "
          f"load average {os.getloadavg()[0]:.2f}")
    cols = f"{'before':>8}{'after':>8}{'torch':>8} ms{'t/b':>7}{'t/a':>7}{'b/a':>7}"
    print(f"{'op':<12}{'dtype':<8}{'thr':>4}  {'':>7} {cols}   {'':>7} {cols}")
    try:
        for threads in (int(t) for t in args.threads.split(",")):
            with threadpool_limits(limits=threads, user_api="openmp"):
                for dtype in args.dtypes.split(","):
                    for op in args.ops.split(","):
                        times = _time_case(op, dtype, shape, threads, before, after,
                                           torch, args)
                        line = f"{op:<12}{dtype:<8}{threads:>4}  "
                        for stat in (statistics.median, min):
                            b, a, t = (stat(times[k]) for k in ("before", "after", "torch"))
                            line += (f"{'median:' if stat is statistics.median else 'min:':>7} "
                                     f"{b * 1e3:8.3f}{a * 1e3:8.3f}{t * 1e3:8.3f}   "
                                     f"{t / b:6.2f}x{t / a:6.2f}x{b / a:6.2f}x  ")
                        print(line.rstrip(), flush=True)
    finally:
        _use(original)()
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
