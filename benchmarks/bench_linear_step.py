"""The fused linear step against the BLAS products it replaces, per minibatch.

Run ``python benchmarks/bench_linear_step.py`` (options: ``--threads 1,2``,
``--batch 256``, ``--features 784``, ``--classes 2,10,32,100,128``,
``--dtype float32``).  For each case it times one SoftmaxRegression step's
loss and gradients on a batch of a (60000, K) array, two ways, interleaved:

* ``fused``: ``kernels.linear_cross_entropy`` (src/linear_step.pxi: the
  logits, the cross-entropy and both gradients in one call);
* ``blas``: what the dense step did before it (and still does above
  ``FUSED_MAX_CLASSES`` classes): ``np.matmul(Xb, W)`` plus the bias, the
  fused cross-entropy kernel (on one thread below 2^15 logits, as the
  estimator called it: OpenBLAS's spinning threads and two OpenMP threads
  on two cores made every product wait for a time slice), ``np.matmul(Xb.T,
  G)`` and ``ones @ G``, with OpenBLAS limited to the same thread count.

Each repeat is one pass over the 60000 rows in batches, so the batches come
from memory as in a fit; times are the best of ``--rounds`` interleaved
repeats, printed per epoch (ms) with ``blas/fused`` (above 1: the fused
step is faster).  The CPU, the kernel build and the load average are
printed with the table.
"""

import argparse
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from softmax_core._native import KERNEL_TARGET, kernels
from softmax_core._threads import n_threads_for

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import cpu_model  # noqa: E402

N_ROWS = 60_000


def _epochs(M, K, C, dtype, n_threads, seed=0):
    """``(fused, blas)``: functions that each run one pass of batches."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N_ROWS, K)).astype(dtype)
    W = (rng.standard_normal((K, C)) * 0.1).astype(dtype)
    b = np.zeros(C, dtype)
    y = rng.integers(0, C, N_ROWS)
    Z, G = np.empty((M, C), dtype), np.empty((M, C), dtype)
    gW, gb, ones = np.empty((K, C), dtype), np.empty(C, dtype), np.ones(M, dtype)
    starts = range(0, N_ROWS - M + 1, M)
    # as the estimator called it: (M, C) logits below 2^15 entries on one thread
    ce_threads = min(n_threads, n_threads_for(M * C))

    def fused():
        for s in starts:
            kernels.linear_cross_entropy(X[s:s + M], W, b, y[s:s + M], None, 0.0, 1.0 / M,
                                         Z, G, gW, gb, n_threads)

    def blas():
        for s in starts:
            Xb = X[s:s + M]
            np.add(np.matmul(Xb, W, out=Z), b, out=Z)
            kernels.cross_entropy_rows(Z, y[s:s + M], None, None, 0.0, -100, 1.0 / M, G, None,
                                       ce_threads)
            np.matmul(Xb.T, G, out=gW)
            np.matmul(ones, G, out=gb)

    return fused, blas


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--features", type=int, default=784)
    parser.add_argument("--classes", default="2,10,32,100,128")
    parser.add_argument("--dtype", default="float32,float64")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_model()}; kernel build {KERNEL_TARGET}; batch {args.batch}, "
          f"K = {args.features}, {N_ROWS} rows per epoch, best of {args.rounds}")
    print("load average before: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"{'dtype':<8} {'classes':>7} {'threads':>7} {'fused ms':>9} {'blas ms':>8} "
          f"{'blas/fused':>10}")
    for dtype in args.dtype.split(","):
        for C in (int(c) for c in args.classes.split(",")):
            for n_threads in (int(t) for t in args.threads.split(",")):
                fused, blas = _epochs(args.batch, args.features, C, np.dtype(dtype), n_threads)
                best = {"fused": np.inf, "blas": np.inf}
                with threadpool_limits(n_threads, user_api="blas"):
                    fused(), blas()  # warm-up
                    for _ in range(args.rounds):
                        for name, run in (("fused", fused), ("blas", blas)):
                            tic = time.perf_counter()
                            run()
                            best[name] = min(best[name], time.perf_counter() - tic)
                print(f"{dtype:<8} {C:>7} {n_threads:>7} {best['fused'] * 1e3:>9.1f} "
                      f"{best['blas'] * 1e3:>8.1f} {best['blas'] / best['fused']:>10.2f}")
    print("load average after: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
