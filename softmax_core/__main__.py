"""``python -m softmax_core``: build information, a kernel self-check, a comparison.

Design: a small argparse program.  By default it prints how the kernels were
built, checks them against the array-API path (``self_check``) and trains
SoftmaxRegression next to two scikit-learn classifiers on the bundled digits
(``_demo.compare`` on ``_demo_data.load_dataset``).  Options choose the data
set (digits, MNIST-1D when the ``mnist1d`` package is installed, a synthetic
problem of a chosen size), the threads, a quick run and ``--json``: then
stdout holds one JSON document (build, self-check, data set, the comparison
table) and every human-readable line goes to stderr.  Exit status: 0, 1 when
the self-check fails, 2 for a usage error (argparse) or an unavailable data
set.
"""

import argparse
import contextlib
import json
import sys

import numpy as np

from ._build_info import build_info, show_config
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


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def build_parser():
    """The command-line options of ``python -m softmax_core``."""
    from ._demo_data import DATASETS, SYNTHETIC_DEFAULT, SYNTHETIC_QUICK

    parser = argparse.ArgumentParser(
        prog="python -m softmax_core",
        description="Show how softmax-core was built, check the compiled kernels "
                    "against the array-API path, and train SoftmaxRegression next to "
                    "scikit-learn's LogisticRegression and SGDClassifier on one data set "
                    "(the bundled digits by default).",
        epilog="Every data set is available offline: MNIST-1D is generated locally by "
               "the mnist1d package (never downloaded). Examples: "
               "python -m softmax_core --quick; "
               "python -m softmax_core --dataset synthetic --samples 50000 --features 200; "
               "python -m softmax_core --json --no-self-check > results.json",
    )
    parser.add_argument("--dataset", choices=DATASETS, default="digits",
                        help="data set of the comparison: scikit-learn's bundled digits "
                             "(default), MNIST-1D (needs the mnist1d package) or a "
                             "synthetic problem (make_classification) of the size given "
                             "by --samples, --features and --classes")
    size = parser.add_argument_group("size of the synthetic problem (--dataset synthetic)")
    d, q = SYNTHETIC_DEFAULT, SYNTHETIC_QUICK
    size.add_argument("--samples", type=_positive_int, metavar="N", default=None,
                      help=f"samples, 75%% for training (default {d['n_samples']}, "
                           f"{q['n_samples']} with --quick; with --dataset mnist1d: "
                           f"how many MNIST-1D samples to generate)")
    size.add_argument("--features", type=_positive_int, metavar="N", default=None,
                      help=f"features (default {d['n_features']}, {q['n_features']} "
                           f"with --quick)")
    size.add_argument("--classes", type=_positive_int, metavar="K", default=None,
                      help=f"classes (default {d['n_classes']}, {q['n_classes']} "
                           f"with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a run of a few seconds: smaller default sizes, no warm-up "
                             "fits, every model stopped after at most 30 epochs "
                             "(accuracies are then not final)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document to stdout (build, self-check, data "
                             "set, the comparison table); progress goes to stderr")
    parser.add_argument("--no-self-check", action="store_true",
                        help="skip the kernel self-check")
    parser.add_argument("--no-demo", action="store_true",
                        help="skip the training comparison")
    parser.add_argument("--threads", type=int, metavar="N", default=None,
                        help="limit the OpenMP (and BLAS) threads to N "
                             "(default: every core available)")
    return parser


def _check_args(parser, args):
    """Usage errors that argparse cannot see by itself (exit status 2)."""
    from ._demo_data import (
        SYNTHETIC_DEFAULT,
        SYNTHETIC_QUICK,
        check_synthetic_size,
        mnist1d_available,
    )

    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.dataset != "synthetic":
        given = [f"--{n}" for n in ("features", "classes") if getattr(args, n) is not None]
        if args.dataset != "mnist1d" and args.samples is not None:
            given.insert(0, "--samples")
        if given:
            parser.error(f"{' and '.join(given)}: only --dataset synthetic takes a size, "
                         f"not --dataset {args.dataset}")
    if args.no_demo:
        return
    if args.dataset == "mnist1d":
        reason = mnist1d_available()
        if reason is not None:
            parser.error(f"--dataset mnist1d is not available: {reason}")
    if args.dataset == "synthetic":
        # only the size check: the data themselves are made later, with progress
        defaults = SYNTHETIC_QUICK if args.quick else SYNTHETIC_DEFAULT
        try:
            check_synthetic_size(args.samples or defaults["n_samples"],
                                 args.features or defaults["n_features"],
                                 args.classes or defaults["n_classes"])
        except ValueError as exc:
            parser.error(f"--dataset synthetic: {exc}")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=args.threads):
            return _run(args)
    return _run(args)


def _run(args):
    if not args.json:
        return _job(args)["exit_status"]
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        report = _job(args)
    json.dump(report, out, indent=2)
    out.write("\n")
    out.flush()
    return report["exit_status"]


def _job(args):
    """Run the job, printing as it goes; return the JSON report."""
    from . import __version__

    show_config()
    report = {"softmax_core": __version__, "build": build_info(), "threads": args.threads,
              "self_check": None, "quick": args.quick, "dataset": None, "results": None}
    ok = True
    if not args.no_self_check:
        print("\nself-check: compiled kernels vs the array-API path")
        ok = self_check()
        print(f"self-check {'passed' if ok else 'FAILED'}")
        report["self_check"] = {"passed": bool(ok)}
    if not args.no_demo:
        from ._demo import QUICK_MAX_ITER, compare, format_table, print_header
        from ._demo_data import load_dataset
        from ._progress import step

        print()
        with step(f"loading the {args.dataset} data set"):
            data = load_dataset(args.dataset, n_samples=args.samples,
                                n_features=args.features, n_classes=args.classes,
                                quick=args.quick)
        print_header(data)
        rows = compare(data, verbose=True, quick=args.quick)
        print()
        if args.quick:
            print(f"--quick: at most {QUICK_MAX_ITER} epochs per model, no warm-up fits")
        print(format_table(rows))
        report["dataset"] = data.summary()
        report["results"] = rows
    report["exit_status"] = 0 if ok else 1
    return report


if __name__ == "__main__":
    sys.exit(main())
