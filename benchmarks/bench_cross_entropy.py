"""Benchmark the fused cross-entropy loss + gradient against its peers.

Run ``python benchmarks/bench_cross_entropy.py`` (options: ``--quick``,
``--dtype float32``).  For each shape and dtype it prints the time of
``softmax_core.cross_entropy_with_grad`` (index targets, ``"mean"``) and, all
measured in the same run:

* ``/softmax``: our time divided by ``softmax_core.softmax`` on the same
  logits (the fused pass also writes an (N, C) array; target <= 1.1x);
* ``torch/ours``: ``torch.nn.functional.cross_entropy`` forward + backward
  (``torch.autograd.grad``) with ``torch.set_num_threads(2)``, divided by
  ours (targets, float32: >= 3x at (4096, 1000), >= 10x at (60000, 10));
  ``--threads N`` gives torch and our OpenMP kernels N threads instead
  (``--threads 1`` is the robust comparison on a machine shared with other
  jobs, where a two-thread barrier waits whenever one thread is preempted);
* ``numpy/ours``: a plain NumPy reference (max, exp, sum, log, gather,
  softmax - onehot) divided by ours.

Times are the best of many short repeats, the four cases interleaved
(``_timing.best_times``).
"""

import argparse
import os
import sys

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import best_times  # noqa: E402

import softmax_core  # noqa: E402
from softmax_core._threads import max_threads  # noqa: E402

SHAPES = [(60000, 10), (4096, 1000), (65536, 1000)]


def numpy_reference(x, y):
    """Mean cross-entropy and its gradient with plain NumPy (the stable formula)."""
    n = x.shape[0]
    rows = np.arange(n)
    m = x.max(axis=1, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(s[:, 0]) + m[:, 0] - x[rows, y])
    grad = e / s
    grad[rows, y] -= 1
    grad /= n
    return loss, grad


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch_fwd_bwd(torch, x, y):
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = torch.from_numpy(y)

    def run():
        loss = torch.nn.functional.cross_entropy(xt, yt)
        return torch.autograd.grad(loss, xt)

    return run


def bench_one(shape, dtype, torch, threads=2):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    y = rng.integers(0, shape[1], size=shape[0])
    row = {"shape": shape, "dtype": np.dtype(dtype).name}
    cases = {
        "ours": lambda: softmax_core.cross_entropy_with_grad(x, y),
        "softmax": lambda: softmax_core.softmax(x),
        "numpy": lambda: numpy_reference(x, y),
    }
    if torch is not None:
        cases["torch"] = (lambda: torch.set_num_threads(threads), _torch_fwd_bwd(torch, x, y))
    row.update(best_times(cases))
    return row


def _fmt_time(s):
    return f"{s * 1e6:9.1f} us" if s < 1e-3 else f"{s * 1e3:9.3f} ms"


def print_table(rows, threads=2):
    head = (f"{'dtype':<9}{'shape':<15}{'fused ours':>13}{'softmax':>13}{'/softmax':>10}"
            f"{f'torch{threads} f+b':>13}{'torch/ours':>12}{'numpy':>13}{'numpy/ours':>12}")
    print(head)
    print("-" * len(head))
    for r in rows:
        torch_cols = (f"{_fmt_time(r['torch']):>13}{r['torch'] / r['ours']:>11.2f}x"
                      if "torch" in r else f"{'n/a':>13}{'n/a':>12}")
        print(f"{r['dtype']:<9}{str(r['shape']):<15}{_fmt_time(r['ours']):>13}"
              f"{_fmt_time(r['softmax']):>13}{r['ours'] / r['softmax']:>9.2f}x{torch_cols}"
              f"{_fmt_time(r['numpy']):>13}{r['numpy'] / r['ours']:>11.2f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the largest shape")
    parser.add_argument("--dtype", choices=["float32", "float64"], action="append")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for torch and for our kernels (default 2)")
    args = parser.parse_args(argv)
    torch = _torch()
    with threadpool_limits(args.threads, user_api="openmp"):
        print(f"softmax-core {softmax_core.__version__}, OpenMP threads {max_threads()}, "
              f"torch {torch.__version__ if torch else 'not installed'} with {args.threads} "
              f"threads, numpy {np.__version__}")
        shapes = SHAPES[:2] if args.quick else SHAPES
        rows = [bench_one(shape, dtype, torch, args.threads)
                for dtype in args.dtype or ["float32", "float64"] for shape in shapes]
    print_table(rows, args.threads)
    return rows


if __name__ == "__main__":
    main()
