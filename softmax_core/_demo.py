"""The ``python -m softmax_core`` demo: SoftmaxRegression on scikit-learn's digits.

Design: the bundled digits data (1797 8x8 images, 10 classes) is split 75/25
(stratified, fixed seed) and standardized on the training part; then
:class:`SoftmaxRegression` trains with per-epoch progress, and the test
accuracy and training time are printed next to those of scikit-learn's
``LogisticRegression`` (full-batch multinomial, L-BFGS) and
``SGDClassifier(loss="log_loss")`` (one-vs-rest SGD) on the same split.
"""

import time
import warnings

__all__ = ["run_digits_demo"]


def _timed_fit(model, X, y):
    """Seconds to fit ``model``, after an untimed warm-up fit on a small subset
    (first-call costs such as lazy imports are not training time)."""
    from sklearn.base import clone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning from the peers
        clone(model).set_params(verbose=0).fit(X[:200], y[:200])
        tic = time.perf_counter()
        model.fit(X, y)
        return time.perf_counter() - tic


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
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from ._regression import SoftmaxRegression

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

    models = {
        "SoftmaxRegression": SoftmaxRegression(random_state=0, verbose=int(verbose)),
        "LogisticRegression": LogisticRegression(max_iter=1000),
        "SGDClassifier(log_loss)": SGDClassifier(loss="log_loss", random_state=0),
    }
    if verbose:
        print(
            f"digits: {X_train.shape[0]} training and {X_test.shape[0]} test samples, "
            f"{X.shape[1]} standardized features, 10 classes"
        )
        print("Training SoftmaxRegression with its defaults (preconditioned minibatch SGD, "
              "step size from the data, Nesterov momentum 0.9, adaptive schedule):")
    results = {}
    for name, model in models.items():
        seconds = _timed_fit(model, X_train, y_train)
        results[name] = {
            "accuracy": float(model.score(X_test, y_test)),
            "seconds": seconds,
            "epochs": int(getattr(model, "n_iter_", [0])[0] if name == "LogisticRegression"
                          else model.n_iter_),
        }
    if verbose:
        clf = models["SoftmaxRegression"]
        print(f"SoftmaxRegression chose learning_rate_={clf.learning_rate_:.4g} and "
              f"batch_size_={clf.batch_size_}")
        print()
        print(f"{'model':<26} {'test accuracy':>13} {'train time':>11} {'epochs/iters':>13}")
        for name, r in results.items():
            print(f"{name:<26} {r['accuracy']:>13.4f} {r['seconds']:>10.3f}s {r['epochs']:>13d}")
    return results
