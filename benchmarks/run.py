"""Benchmark softmax / log_softmax against scipy.special and torch.

Run ``python benchmarks/run.py`` (options: ``--quick``, ``--dtype float32``).
Prints one table per dtype: our time (with a fresh output and with ``out=``),
and the ratios ``peer time / our time`` for scipy.special, torch with 1 and 2
threads, and ``np.copyto`` of the same array (the memory-bandwidth floor),
all measured in the same run.  Ratios above 1 mean we are faster.
"""

import argparse
import os
import sys

import numpy as np
import scipy.special as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import best_times  # noqa: E402

import softmax_core  # noqa: E402
from softmax_core._build_info import build_info  # noqa: E402

SHAPES = [(256, 10), (60000, 10), (4096, 1000), (65536, 1000), (1024, 32000)]


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def bench_one(name, shape, dtype, torch):
    ours = getattr(softmax_core, name)
    theirs = getattr(sp, name)
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    out = np.empty_like(x)
    row = {"op": name, "shape": shape, "dtype": np.dtype(dtype).name}
    cases = {
        "ours": lambda: ours(x),
        "ours_out": lambda: ours(x, out=out),
        "scipy": lambda: theirs(x, axis=-1),
        "copyto": lambda: np.copyto(out, x),
    }
    if torch is not None:
        t = torch.from_numpy(x)
        tf = getattr(torch, name)
        for n in (1, 2):
            cases[f"torch{n}"] = ((lambda n=n: torch.set_num_threads(n)), lambda: tf(t, -1))
    row.update(best_times(cases))
    return row


def _fmt_time(s):
    return f"{s * 1e6:9.1f} us" if s < 1e-3 else f"{s * 1e3:9.3f} ms"


def print_table(rows):
    cols = ["scipy", "torch1", "torch2"]
    head = (f"{'op':<12}{'dtype':<9}{'shape':<15}{'ours':>13}{'ours out=':>13}"
            + "".join(f"{c + '/ours':>13}" for c in cols) + f"{'out=/copyto':>13}")
    print(head)
    print("-" * len(head))
    for r in rows:
        ratios = "".join(f"{r[c] / r['ours']:>12.2f}x" if c in r else f"{'n/a':>13}"
                         for c in cols)
        print(f"{r['op']:<12}{r['dtype']:<9}{str(r['shape']):<15}{_fmt_time(r['ours']):>13}"
              f"{_fmt_time(r['ours_out']):>13}{ratios}{r['ours_out'] / r['copyto']:>12.2f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes only")
    parser.add_argument("--dtype", choices=["float32", "float64"], action="append")
    parser.add_argument("--op", choices=["softmax", "log_softmax"], action="append")
    args = parser.parse_args(argv)
    torch = _torch()
    info = build_info()
    print(f"softmax-core {softmax_core.__version__}: kernels {info['kernel_target']}, "
          f"OpenMP threads {info['openmp_threads']}, "
          f"torch {torch.__version__ if torch else 'not installed'}, numpy {np.__version__}")
    shapes = SHAPES[:3] if args.quick else SHAPES
    rows = []
    for dtype in args.dtype or ["float32", "float64"]:
        for op in args.op or ["softmax", "log_softmax"]:
            for shape in shapes:
                rows.append(bench_one(op, shape, dtype, torch))
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
