"""``python -m softmax_core``: build information, a kernel self-check, a demo."""

import argparse
import sys

import numpy as np

from ._build_info import show_config
from ._softmax import log_softmax, logsumexp, softmax


def self_check():
    """Compare the compiled kernels with the array-API path; return True if all agree."""
    import array_api_compat.numpy as xp_compat

    from . import _softmax_generic as generic

    rng = np.random.default_rng(0)
    ok = True
    cases = [((512, 10), -1), ((64, 1000), -1), ((4, 3, 8, 8), -3), ((6, 5, 7), (0, 2))]
    for dtype, rtol in ((np.float32, 2e-5), (np.float64, 1e-12)):
        for shape, axis in cases:
            x = (rng.standard_normal(shape) * 30).astype(dtype)
            for name, fast, slow in (
                ("softmax", softmax(x, axis=axis),
                 generic.softmax(xp_compat, x, axis, None, None, False)),
                ("log_softmax", log_softmax(x, axis=axis),
                 generic.softmax(xp_compat, x, axis, None, None, True)),
                ("logsumexp", logsumexp(x, axis=axis),
                 generic.logsumexp(xp_compat, x, axis, None, False, False, None)),
            ):
                # absolute tolerance scaled to the magnitudes involved (log_softmax
                # of float32 logits ~30 is only good to ~1e-5 absolute)
                good = np.allclose(fast, slow, rtol=rtol, atol=rtol * np.abs(x).max())
                ok &= good
                print(f"  {name:<12} {np.dtype(dtype).name:<8} shape={shape!s:<14} "
                      f"axis={axis!s:<7} {'ok' if good else 'MISMATCH'}")
    return ok


def build_parser():
    """The command-line options of ``python -m softmax_core``."""
    parser = argparse.ArgumentParser(
        prog="python -m softmax_core",
        description="Show how softmax-core was built, check the compiled kernels "
                    "against the array-API path, and train SoftmaxRegression on the "
                    "bundled digits data set next to two scikit-learn classifiers.",
    )
    parser.add_argument("--no-self-check", action="store_true",
                        help="skip the kernel self-check")
    parser.add_argument("--no-demo", action="store_true",
                        help="skip the training demo on the digits data set")
    parser.add_argument("--threads", type=int, metavar="N", default=None,
                        help="limit the OpenMP (and BLAS) threads to N "
                             "(default: every core available)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.threads is not None and args.threads < 1:
        build_parser().error("--threads must be at least 1")
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=args.threads):
            return _run(args)
    return _run(args)


def _run(args):
    show_config()
    ok = True
    if not args.no_self_check:
        print("\nself-check: compiled kernels vs the array-API path")
        ok = self_check()
        print(f"self-check {'passed' if ok else 'FAILED'}")
    if not args.no_demo:
        try:
            from ._demo import run_digits_demo
        except ImportError:
            run_digits_demo = None
        if run_digits_demo is not None:
            print()
            run_digits_demo(verbose=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
