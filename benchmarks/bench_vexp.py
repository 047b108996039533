"""Benchmark the kernel builds against each other and torch in one run.

Run ``python benchmarks/bench_vexp.py`` (options: ``--quick``, ``--threads N``,
``--rounds N``).  The compiled targets this CPU can run (``x86_64_v4`` =
AVX-512, ``x86_64_v3`` = AVX2, ``baseline``) are all imported, and every case
swaps the kernel module the NumPy path calls, so our builds, torch and
``np.copyto`` are measured interleaved in the same process
(``_timing.best_times``: the minimum over rounds, one repeat of each case per
round).  Columns: our time per build (fresh output), ``torch/<build>`` (torch
with the same thread count), ``<build> out=/copyto`` (the memory floor), and
for the fused loss ``ce/softmax`` and ``torch f+b / ce`` per build.
Ratios above 1 for ``torch/...`` mean we are faster.
"""

import argparse
import importlib
import os
import sys

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import best_times  # noqa: E402

import softmax_core  # noqa: E402
from softmax_core import _losses_numpy, _softmax_numpy, _threads  # noqa: E402
from softmax_core._native import available_targets  # noqa: E402

SOFTMAX_CASES = [
    ("softmax", (4096, 1000), "float32"),
    ("softmax", (65536, 1000), "float32"),
    ("softmax", (60000, 10), "float32"),
    ("softmax", (1024, 32000), "float32"),
    ("log_softmax", (4096, 1000), "float32"),
    ("softmax", (4096, 1000), "float64"),
    ("logsumexp", (4096, 1000), "float32"),
]
CE_SHAPES = [(4096, 1000), (60000, 10)]
SHORT = {"x86_64_v4": "v4", "x86_64_v3": "v3", "baseline": "base"}


def _use(module):
    """Make the NumPy path call the kernels of `module`."""
    def setup():
        _softmax_numpy.kernels = module
        _losses_numpy.kernels = module
        _threads.kernels = module
    return setup


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def bench_softmax(op, shape, dtype, mods, torch, threads, rounds, repeat):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    out = np.empty_like(x)
    f = getattr(softmax_core, op)
    cases = {}
    for t, m in mods.items():
        cases[t] = (_use(m), lambda: f(x, axis=-1))
        if op != "logsumexp":
            cases[t + " out="] = (_use(m), lambda: f(x, axis=-1, out=out))
    cases["copyto"] = lambda: np.copyto(out, x)
    if torch is not None:
        xt = torch.from_numpy(x)
        tf = getattr(torch, op)
        cases["torch"] = ((lambda: torch.set_num_threads(threads)), lambda: tf(xt, -1))
    return best_times(cases, rounds=rounds, repeat_seconds=repeat)


def bench_ce(shape, mods, torch, threads, rounds, repeat):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.integers(0, shape[1], size=shape[0])
    cases = {}
    for t, m in mods.items():
        cases["ce " + t] = (_use(m), lambda: softmax_core.cross_entropy_with_grad(x, y))
        cases["sm " + t] = (_use(m), lambda: softmax_core.softmax(x))
    if torch is not None:
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = torch.from_numpy(y)

        def fwd_bwd():
            loss = torch.nn.functional.cross_entropy(xt, yt)
            return torch.autograd.grad(loss, xt)

        cases["torch"] = ((lambda: torch.set_num_threads(threads)), fwd_bwd)
    return best_times(cases, rounds=rounds, repeat_seconds=repeat)


def _fmt(s):
    return f"{s * 1e6:8.1f}us" if s < 1e-3 else f"{s * 1e3:8.3f}ms"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the (4096, 1000) cases only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--repeat", type=float, default=0.005,
                        help="seconds per repeat (short repeats dodge preemption)")
    parser.add_argument("--only", nargs="*",
                        help="op:dtype:rows:cols cases, e.g. softmax:float32:4096:1000")
    args = parser.parse_args(argv)
    torch = _torch()
    mods = {SHORT.get(t, t): importlib.import_module(f"softmax_core._kernels_{t}")
            for t in available_targets()}
    original = _softmax_numpy.kernels
    print(f"torch CPU capability {torch.backends.cpu.get_cpu_capability() if torch else 'n/a'}; "
          f"softmax-core {softmax_core.__version__} from {os.path.dirname(softmax_core.__file__)}; "
          f"builds {list(mods)}; torch {torch.__version__ if torch else 'n/a'}; "
          f"{args.threads} threads for torch and ours")
    cases = [c for c in SOFTMAX_CASES if not args.quick or c[1] == (4096, 1000)]
    if args.only is not None:
        cases = [(op, (int(r), int(c)), dt) for op, dt, r, c in (o.split(":") for o in args.only)]
    try:
        with threadpool_limits(args.threads, user_api="openmp"):
            head = (f"{'op':<12}{'dtype':<8}{'shape':<14}"
                    + "".join(f"{t:>11}" for t in mods)
                    + "".join(f"{'torch/' + t:>12}" for t in mods)
                    + "".join(f"{t + ' out=/cp':>13}" for t in mods))
            print(head)
            print("-" * len(head))
            for op, shape, dtype in cases:
                r = bench_softmax(op, shape, dtype, mods, torch, args.threads, args.rounds,
                                  args.repeat)
                line = f"{op:<12}{dtype:<8}{str(shape):<14}"
                line += "".join(f"{_fmt(r[t]):>11}" for t in mods)
                line += "".join(f"{r['torch'] / r[t]:>11.2f}x" if "torch" in r else f"{'n/a':>12}"
                                for t in mods)
                line += "".join(f"{r[t + ' out='] / r['copyto']:>12.2f}x" if t + " out=" in r
                                else f"{'-':>13}" for t in mods)
                print(line, flush=True)
            print()
            head = (f"{'fused CE f32':<26}" + "".join(f"{'ce ' + t:>11}" for t in mods)
                    + "".join(f"{'ce/sm ' + t:>11}" for t in mods)
                    + "".join(f"{'torch/ce ' + t:>13}" for t in mods))
            print(head)
            print("-" * len(head))
            for shape in CE_SHAPES if not args.quick else CE_SHAPES[:1]:
                if args.only is not None:
                    break
                r = bench_ce(shape, mods, torch, args.threads, args.rounds, args.repeat)
                line = f"{str(shape):<26}" + "".join(f"{_fmt(r['ce ' + t]):>11}" for t in mods)
                line += "".join(f"{r['ce ' + t] / r['sm ' + t]:>10.2f}x" for t in mods)
                line += "".join(f"{r['torch'] / r['ce ' + t]:>12.2f}x" if "torch" in r
                                else f"{'n/a':>13}" for t in mods)
                print(line, flush=True)
    finally:
        _use(original)()


if __name__ == "__main__":
    main()
