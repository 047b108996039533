"""Fit time of SoftmaxRegression with the epoch kernel against the Python step.

The epoch kernel (src/sgd_epoch.pxi, ``softmax_core/_sgd_epoch.py``) runs a
whole epoch of dense NumPy steps in one call; without it (``_sgd_epoch.ENABLED
= False``) every batch is a fused-kernel call plus a dozen small NumPy
operations in Python (``_sgd_steps.batch_step``).  Data: float32 rows of
``--features`` columns drawn from a 10-class multinomial logistic model with
noise; each fit runs ``--epochs`` epochs at a fixed step (``tol=None``), the
default momentum and preconditioner, one thread.  Each time is the fastest of
``--repeats`` interleaved fits (set-up included: validation, preconditioner,
step size), so the table shows what a user's ``fit`` gains, not only the
epochs.

Run: ``python benchmarks/bench_sgd_epoch.py [--rows 40000] [--repeats 5]``.
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from softmax_core import SoftmaxRegression, _sgd_epoch
from softmax_core._native import KERNEL_TARGET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import cpu_flags, cpu_model  # noqa: E402

N_CLASSES = 10


def _data(n, k, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, k), dtype=np.float32)
    W = rng.standard_normal((k, N_CLASSES)) * (2.0 / np.sqrt(k))
    y = (X @ W + rng.gumbel(size=(n, N_CLASSES))).argmax(axis=1)
    return X, y


def _fit_time(X, y, batch_size, epochs, enabled):
    _sgd_epoch.ENABLED = enabled
    try:
        model = SoftmaxRegression(batch_size=batch_size, max_iter=epochs, tol=None,
                                  random_state=0)
        tic = time.perf_counter()
        model.fit(X, y)
        return time.perf_counter() - tic, model
    finally:
        _sgd_epoch.ENABLED = True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--features", type=int, nargs="+", default=[20, 100, 784])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 256, 1024])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs, flags: {cpu_flags()}; kernel build "
          f"{KERNEL_TARGET}; one thread; {args.rows} rows float32, {N_CLASSES} classes, "
          f"{args.epochs} epochs per fit, fastest of {args.repeats}")
    print(f"{'features':>8} {'batch':>6} {'Python step':>12} {'epoch kernel':>13} {'speed-up':>9}"
          f" {'max |coef diff|':>16}")
    warnings.simplefilter("ignore")  # ConvergenceWarning of the fixed epoch count
    with threadpool_limits(1):
        for k in args.features:
            X, y = _data(args.rows, k)
            for bs in args.batch_sizes:
                best = {True: np.inf, False: np.inf}
                models = {}
                for _ in range(args.repeats):
                    for enabled in (False, True):  # interleaved
                        t, models[enabled] = _fit_time(X, y, bs, args.epochs, enabled)
                        best[enabled] = min(best[enabled], t)
                diff = float(np.max(np.abs(models[True].coef_ - models[False].coef_)))
                print(f"{k:>8} {bs:>6} {best[False]:>10.3f} s {best[True]:>11.3f} s "
                      f"{best[False] / best[True]:>8.2f}x {diff:>16.2e}", flush=True)


if __name__ == "__main__":
    main()
