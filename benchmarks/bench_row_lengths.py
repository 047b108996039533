"""Sweep of row lengths: softmax, logsumexp and the fused loss against torch.

Run ``python benchmarks/bench_row_lengths.py`` (options: ``--dtype float64``,
``--threads 1``).  The kernels switch layout with the row length (transposed
blocks below 16 elements, and in float32 also at 17..23; blocks of rows up to
64, or 128 in float32; one row per task beyond), so this table shows every
regime on about 1.2 million elements per call.  Each row reports our time per
element and ``torch time / our time`` (above 1: we are faster) for
``softmax``, ``logsumexp`` and ``cross_entropy_with_grad`` against
``torch.softmax``, ``torch.logsumexp`` and ``F.cross_entropy`` forward +
backward, with the same number of threads, all timed interleaved
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

LENGTHS = [10, 16, 20, 24, 32, 50, 64, 65, 100, 128, 200, 1000]
ELEMENTS = 1_200_000


def bench_one(n, dtype, torch, threads):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ELEMENTS // n, n)).astype(dtype)
    y = rng.integers(0, n, size=x.shape[0])
    out = np.empty_like(x)
    cases = {
        "softmax": lambda: softmax_core.softmax(x, out=out),
        "logsumexp": lambda: softmax_core.logsumexp(x),
        "loss": lambda: softmax_core.cross_entropy_with_grad(x, y),
    }
    if torch is not None:
        xt = torch.from_numpy(x)
        xg = torch.from_numpy(x).requires_grad_(True)
        yt = torch.from_numpy(y)

        def torch_loss():
            loss = torch.nn.functional.cross_entropy(xg, yt)
            return torch.autograd.grad(loss, xg)

        def set_threads():
            torch.set_num_threads(threads)

        cases["torch softmax"] = (set_threads, lambda: torch.softmax(xt, -1))
        cases["torch logsumexp"] = (set_threads, lambda: torch.logsumexp(xt, -1))
        cases["torch loss"] = (set_threads, torch_loss)
    times = best_times(cases)
    return {"n": n, "size": x.size, **times}


def print_table(rows, dtype, threads):
    ops = ["softmax", "logsumexp", "loss"]
    head = f"{'n':>6}" + "".join(f"{op + ' ns/el':>18}{'torch/ours':>12}" for op in ops)
    print(f"{dtype}, {threads} thread(s), about {ELEMENTS} elements per call")
    print(head)
    print("-" * len(head))
    for r in rows:
        cells = []
        for op in ops:
            ours = r[op] / r["size"] * 1e9
            ratio = (f"{r['torch ' + op] / r[op]:>11.2f}x" if f"torch {op}" in r
                     else f"{'n/a':>12}")
            cells.append(f"{ours:>18.2f}{ratio}")
        print(f"{r['n']:>6}" + "".join(cells))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        torch = None
    with threadpool_limits(args.threads, user_api="openmp"):
        rows = [bench_one(n, np.dtype(args.dtype), torch, args.threads) for n in LENGTHS]
    print_table(rows, args.dtype, args.threads)
    return rows


if __name__ == "__main__":
    main()
