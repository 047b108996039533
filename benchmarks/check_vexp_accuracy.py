"""Exhaustive float32 (and sampled float64) accuracy of each build's exp loop.

Run ``python benchmarks/check_vexp_accuracy.py`` (``--f64-samples N``,
``--targets x86_64_v4 ...``).  For float32 every one of the 2^32 inputs is
exponentiated by the build's ``exp_loop`` (the loop of softmax's short-row and
logsumexp paths; the other loops share its vector exp) and compared with
NumPy's float64 exp; errors are in ulp of the correctly rounded float32
result (2^-149 for subnormals).  For float64, random inputs on [-746, 710]
are compared with ``np.longdouble`` exp (x87 extended precision).  Prints the
largest error per region and the share of results that are correctly rounded.
"""

import argparse
import importlib
import time

import numpy as np

from softmax_core._native import available_targets

REGIONS32 = [("x <= -87.34 (subnormal/0)", -np.inf, -87.336), ("-87.34 < x <= 0", -87.336, 0.0),
             ("x > 0", 0.0, np.inf)]


def _exp(mod, x):
    out = np.empty_like(x)
    mod.exp_loop(0, x, np.zeros_like(x), out, np.zeros(x.size))
    return out


def check_f32(mod, chunk=1 << 24):
    worst = {name: (0.0, None) for name, _, _ in REGIONS32}
    exact = total = 0
    for start in range(0, 1 << 32, chunk):
        x = np.arange(start, start + chunk, dtype=np.uint64).astype(np.uint32).view(np.float32)
        x = x[~np.isnan(x)]
        y = _exp(mod, x)
        ref = np.exp(x.astype(np.float64))
        with np.errstate(over="ignore"):
            ref32 = ref.astype(np.float32)
        over = np.isinf(ref32)
        bad = over & ~np.isinf(y)
        if bad.any():
            raise AssertionError(f"no overflow at {x[bad][:5]}")
        keep = ~over
        x, y, ref, ref32 = x[keep], y[keep], ref[keep], ref32[keep]
        ulp = np.ldexp(1.0, np.maximum(np.frexp(np.maximum(ref, 2.0 ** -126))[1] - 24, -149))
        err = np.abs(y.astype(np.float64) - ref) / ulp
        exact += int(np.sum(y == ref32))
        total += x.size
        for name, lo, hi in REGIONS32:
            m = (x > lo) & (x <= hi)
            if m.any():
                i = int(np.argmax(np.where(m, err, -1)))
                if err[i] > worst[name][0]:
                    worst[name] = (float(err[i]), float(x[i]))
    return worst, exact / total


def check_f64(mod, n):
    rng = np.random.default_rng(0)
    out = {}
    for name, lo, hi in [("subnormal outputs", -745.2, -708.4), ("-708.4 < x <= 0", -708.4, 0),
                         ("x > 0", 0, 709.78)]:
        x = rng.uniform(lo, hi, n)
        y = _exp(mod, x)
        ref = np.exp(x.astype(np.longdouble))
        ulp = np.ldexp(np.longdouble(1), np.maximum(
            np.frexp(np.maximum(ref, np.longdouble(2) ** -1022))[1] - 53, -1074))
        err = np.abs(y.astype(np.longdouble) - ref) / ulp
        i = int(np.argmax(err))
        out[name] = (float(err[i]), float(x[i]), float(np.mean(y == ref.astype(np.float64))))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--f64-samples", type=int, default=2_000_000)
    parser.add_argument("--targets", nargs="*", default=None)
    args = parser.parse_args(argv)
    for target in args.targets or available_targets():
        mod = importlib.import_module(f"softmax_core._kernels_{target}")
        t0 = time.perf_counter()
        worst, share = check_f32(mod)
        print(f"{target}: float32, all 2^32 inputs ({time.perf_counter() - t0:.0f} s), "
              f"correctly rounded {share:.4%}")
        for name, (e, x) in worst.items():
            print(f"    {name:<28} max {e:.3f} ulp at x = {x!r}")
        if np.finfo(np.longdouble).nmant >= 63:
            for name, (e, x, share) in check_f64(mod, args.f64_samples).items():
                print(f"    float64 {name:<20} max {e:.3f} ulp at x = {x!r}, "
                      f"correctly rounded {share:.4%} ({args.f64_samples} samples)")


if __name__ == "__main__":
    main()
