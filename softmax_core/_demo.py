"""The ``python -m softmax_core`` comparison: SoftmaxRegression and two peers.

Design: on one standardized train/test split (``_demo_data.load_dataset``:
the bundled digits by default) :class:`SoftmaxRegression` trains with its
defaults and per-epoch progress lines, and its test accuracy and training
time are set next to those of scikit-learn's ``LogisticRegression``
(full-batch multinomial, L-BFGS) and ``SGDClassifier(loss="log_loss")``
(one-vs-rest SGD).  Each fit is timed after an untimed warm-up fit on 200
rows (first-call costs are not training time) and runs inside
``_progress.step``, so a fit longer than a second prints a heartbeat.
``quick=True`` skips the warm-up fits and stops every model after at most
``QUICK_MAX_ITER`` epochs (iterations), so its accuracies are not final.
"""

import time
import warnings

from ._progress import step

__all__ = ["compare", "format_table", "run_digits_demo"]

QUICK_MAX_ITER = 30
MODEL_NAMES = ("SoftmaxRegression", "LogisticRegression", "SGDClassifier(log_loss)")


def _models(verbose, quick):
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    from ._regression import SoftmaxRegression

    limit = {"max_iter": QUICK_MAX_ITER} if quick else {}
    return {
        "SoftmaxRegression": SoftmaxRegression(random_state=0, verbose=int(verbose), **limit),
        "LogisticRegression": LogisticRegression(**({"max_iter": 1000} | limit)),
        "SGDClassifier(log_loss)": SGDClassifier(loss="log_loss", random_state=0, **limit),
    }


def _timed_fit(model, X, y, warm_up=True):
    """Seconds to fit ``model``, after an untimed warm-up fit on a small subset
    (first-call costs such as lazy imports are not training time)."""
    from sklearn.base import clone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning from the peers
        if warm_up:
            clone(model).set_params(verbose=0).fit(X[:200], y[:200])
        tic = time.perf_counter()
        model.fit(X, y)
        return time.perf_counter() - tic


def _epochs(name, model):
    if name == "LogisticRegression":
        return int(model.n_iter_[0])
    return int(model.n_iter_)


def compare(data, *, verbose=True, quick=False):
    """Fit the three classifiers on ``data`` and measure them on its test part.

    Parameters
    ----------
    data : DemoData
        A split from ``softmax_core._demo_data.load_dataset``.
    verbose : bool, default=True
        Print progress (start and end of every fit, SoftmaxRegression's
        per-epoch lines) and the step size SoftmaxRegression chose.
    quick : bool, default=False
        No warm-up fits, at most ``QUICK_MAX_ITER`` epochs per model.

    Returns
    -------
    rows : list of dict
        One ``{"model", "accuracy", "seconds", "epochs"}`` per model, in the
        order of ``MODEL_NAMES`` (``epochs`` is the solver's iteration count).

    Examples
    --------
    >>> from softmax_core._demo import compare
    >>> from softmax_core._demo_data import load_dataset
    >>> data = load_dataset("synthetic", n_samples=400, n_features=6, n_classes=3)
    >>> rows = compare(data, verbose=False, quick=True)
    >>> [row["model"] for row in rows]
    ['SoftmaxRegression', 'LogisticRegression', 'SGDClassifier(log_loss)']
    >>> all(0.0 <= row["accuracy"] <= 1.0 for row in rows)
    True
    """
    models = _models(verbose, quick)
    rows = []
    for name, model in models.items():
        if verbose:
            with step(f"fitting {name}"):
                seconds = _timed_fit(model, data.X_train, data.y_train, warm_up=not quick)
        else:
            seconds = _timed_fit(model, data.X_train, data.y_train, warm_up=not quick)
        rows.append({
            "model": name,
            "accuracy": float(model.score(data.X_test, data.y_test)),
            "seconds": seconds,
            "epochs": _epochs(name, model),
        })
    if verbose:
        clf = models["SoftmaxRegression"]
        print(f"SoftmaxRegression chose learning_rate_={clf.learning_rate_:.4g} and "
              f"batch_size_={clf.batch_size_}")
    return rows


def format_table(rows):
    """The comparison as a plain-text table (one line per model)."""
    lines = [f"{'model':<26} {'test accuracy':>13} {'train time':>11} {'epochs/iters':>13}"]
    for r in rows:
        lines.append(f"{r['model']:<26} {r['accuracy']:>13.4f} {r['seconds']:>10.3f}s "
                     f"{r['epochs']:>13d}")
    return "\n".join(lines)


def run_digits_demo(verbose=True):
    """Train SoftmaxRegression on digits and compare it with two scikit-learn peers.

    Parameters
    ----------
    verbose : bool, default=True
        Print the training progress of SoftmaxRegression and the comparison
        table.  With False nothing is printed.

    Returns
    -------
    results : dict
        ``{model name: {"accuracy": float, "seconds": float, "epochs": int}}``
        for ``"SoftmaxRegression"``, ``"LogisticRegression"`` and
        ``"SGDClassifier(log_loss)"`` (``epochs`` is the solver's iteration
        count).

    Examples
    --------
    >>> from softmax_core._demo import run_digits_demo
    >>> results = run_digits_demo(verbose=False)
    >>> sorted(results)
    ['LogisticRegression', 'SGDClassifier(log_loss)', 'SoftmaxRegression']
    >>> bool(results["SoftmaxRegression"]["accuracy"] >= 0.96)
    True
    """
    from ._demo_data import load_dataset

    data = load_dataset("digits")
    if verbose:
        print_header(data)
    rows = compare(data, verbose=verbose)
    if verbose:
        print()
        print(format_table(rows))
    return {r["model"]: {k: r[k] for k in ("accuracy", "seconds", "epochs")} for r in rows}


def print_header(data):
    """One line on the data set, one on SoftmaxRegression's defaults."""
    s = data.summary()
    print(f"{s['name']}: {s['n_train']} training and {s['n_test']} test samples, "
          f"{s['n_features']} standardized features, {s['n_classes']} classes "
          f"({s['description']})")
    print("Training SoftmaxRegression with its defaults (preconditioned minibatch SGD, "
          "step size from the data, Nesterov momentum 0.9, adaptive schedule):")
