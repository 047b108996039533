"""torch CPU tensors through softmax-core's kernels (the zero-copy bridge and the
autograd Functions) against torch itself, float32, measured interleaved.

    python benchmarks/bench_torch_bridge.py [--threads 2] [--quick]

Prints one table: per-call time of softmax-core on torch tensors, of torch, of
softmax-core on the same data as NumPy arrays (the bridge's cost is the
difference), and the ratio torch / ours; then a SoftmaxRegression epoch on torch
tensors under ``sklearn.set_config(array_api_dispatch=True)`` against NumPy
input.  Times are minima over interleaved repeats (``_timing.best_times``).
"""

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_times  # noqa: E402

import softmax_core  # noqa: E402
from softmax_core import cross_entropy, log_softmax, softmax  # noqa: E402


def _cases(shape, rng):
    """The timed calls for one shape: ours on torch tensors, torch, ours on NumPy."""
    a = (rng.standard_normal(shape) * 3).astype(np.float32)
    t = torch.from_numpy(a)
    y = torch.from_numpy(rng.integers(0, shape[1], shape[0]))
    y_np = y.numpy()
    tg = t.clone().requires_grad_()

    def ours_ce():
        tg.grad = None
        cross_entropy(tg, y).backward()

    def torch_ce():
        tg.grad = None
        F.cross_entropy(tg, y).backward()

    return {
        ("softmax", "ours"): lambda: softmax(t),
        ("softmax", "torch"): lambda: torch.softmax(t, -1),
        ("softmax", "numpy"): lambda: softmax(a),
        ("log_softmax", "ours"): lambda: log_softmax(t),
        ("log_softmax", "torch"): lambda: torch.log_softmax(t, -1),
        ("log_softmax", "numpy"): lambda: log_softmax(a),
        ("cross_entropy fwd+bwd", "ours"): ours_ce,
        ("cross_entropy fwd+bwd", "torch"): torch_ce,
        ("cross_entropy fwd+bwd", "numpy"):
            lambda: softmax_core.cross_entropy_with_grad(a, y_np),
    }


def _function_rows(shapes, rounds):
    rows = []
    rng = np.random.default_rng(0)
    for shape in shapes:
        best = best_times(_cases(shape, rng), rounds=rounds)
        for op in ("softmax", "log_softmax", "cross_entropy fwd+bwd"):
            ours, ref, npy = best[(op, "ours")], best[(op, "torch")], best[(op, "numpy")]
            rows.append((op, shape, ours, ref, npy, ref / ours))
    return rows


def _epoch_rows(quick):
    """Per-epoch time and fixed cost of a fit, NumPy input against torch tensors.

    The epoch is the difference between fits of 10 and of 5 epochs, divided by
    5; the fixed cost (validation, the step-size estimate, ...) is what remains.
    """
    import sklearn
    from sklearn.datasets import make_classification

    n = 20000 if quick else 60000
    X, y = make_classification(n, 100, n_informative=30, n_classes=10, random_state=0)
    X = X.astype(np.float32)
    inputs = {"numpy": (X, y), "torch": (torch.from_numpy(X), torch.from_numpy(y))}
    best = {(kind, epochs): np.inf for kind in inputs for epochs in (5, 10)}
    for _ in range(3):  # interleaved, the minimum of each
        for (kind, epochs) in best:
            model = softmax_core.SoftmaxRegression(max_iter=epochs, tol=None, random_state=0)
            with sklearn.config_context(array_api_dispatch=kind == "torch"):
                t0 = time.perf_counter()
                model.fit(*inputs[kind])
                best[kind, epochs] = min(best[kind, epochs], time.perf_counter() - t0)
    epoch = {kind: (best[kind, 10] - best[kind, 5]) / 5 for kind in inputs}
    fixed = {kind: best[kind, 5] - 5 * epoch[kind] for kind in inputs}
    return n, epoch, fixed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {platform.processor() or platform.machine()}; torch {torch.__version__}, "
          f"{args.threads} thread(s)")
    softmax_core.show_config()
    shapes = [(256, 10), (60000, 10), (4096, 1000)]
    with threadpool_limits(limits=args.threads, user_api="openmp"):
        rows = _function_rows(shapes, rounds=5 if args.quick else 15)
        n, epoch, fixed = _epoch_rows(args.quick)
    print(f"\n{'function':<24}{'shape':>14}{'ours (torch in)':>17}{'torch':>12}"
          f"{'ours (numpy in)':>17}{'torch/ours':>12}")
    for op, shape, ours, ref, npy, ratio in rows:
        print(f"{op:<24}{str(shape):>14}{ours * 1e6:>14.1f} us{ref * 1e6:>9.1f} us"
              f"{npy * 1e6:>14.1f} us{ratio:>11.2f}x")
    print(f"\nSoftmaxRegression, ({n}, 100) float32, 10 classes, per epoch (fixed cost of a "
          f"fit): NumPy input {epoch['numpy'] * 1e3:.1f} ms ({fixed['numpy'] * 1e3:.0f} ms), "
          f"torch tensors under array_api_dispatch {epoch['torch'] * 1e3:.1f} ms "
          f"({fixed['torch'] * 1e3:.0f} ms); epoch ratio {epoch['torch'] / epoch['numpy']:.2f}")

if __name__ == "__main__":
    main()
