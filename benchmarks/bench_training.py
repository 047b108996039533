"""Training speed of SoftmaxRegression against a PyTorch loop and scikit-learn.

Data: X of shape (60000, 784) float32 (MNIST-sized), 10 classes drawn from a
multinomial logistic model with random weights (so a linear model can reach a
known, non-trivial accuracy), plus 10000 held-out samples for the accuracy.
Every SGD contender trains 10 epochs with batch size 256 and learning rate
0.1 (no momentum, no penalty):

* ``SoftmaxRegression`` (this package: one fused kernel call per batch for
  the logits, the loss and both gradients, src/linear_step.pxi; shuffled
  blocks of permuted rows, read from X in place);
* a minimal PyTorch loop: ``nn.Linear`` + ``nn.CrossEntropyLoss`` +
  ``optim.SGD``, ``torch.set_num_threads(2)``, a fresh permutation per epoch
  (the design target's reference); the same loop on one thread as well,
  since on a 2-core machine shared with other jobs torch's two threads can
  be several times slower than one (each small product waits at a barrier
  for a descheduled thread; SoftmaxRegression runs steps this small on one
  thread for that reason, see ``_threads.PARALLEL_MIN_MACS``);
* ``SGDClassifier(loss="log_loss", max_iter=10)`` (one-vs-rest, per-sample SGD);
* ``LogisticRegression()`` (full-batch L-BFGS; its "epochs" are iterations).

Per-epoch time is the fastest of ``--repeats`` (5) interleaved runs of the
whole fit, each after a pause of 0.5 s (data preparation such as
SoftmaxRegression's input validation included), divided by its epoch count; the
load average of the machine is printed before and after.
Run: ``python benchmarks/bench_training.py``.
"""

import argparse
import os
import time
import warnings

import numpy as np

N_TRAIN, N_TEST, N_FEATURES, N_CLASSES = 60_000, 10_000, 784, 10
BATCH_SIZE, LEARNING_RATE, EPOCHS = 256, 0.1, 10
PAUSE_SECONDS = 0.5


def make_data(seed=0):
    """Standardized float32 features and labels sampled from a softmax model."""
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    X = rng.standard_normal((n, N_FEATURES), dtype=np.float32)
    W = rng.standard_normal((N_FEATURES, N_CLASSES)).astype(np.float32) * 0.1
    logits = X @ W
    y = np.argmax(logits + rng.gumbel(size=logits.shape).astype(np.float32), axis=1)
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


def softmax_regression(X, y):
    """Returns ``(fit, evaluate)`` closures; ``evaluate(model, X, y) -> (epochs, acc)``."""
    from softmax_core import SoftmaxRegression

    def fit():
        return SoftmaxRegression(
            batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE, schedule="constant",
            momentum=0.0, precondition=False,  # plain SGD, like the other contenders
            alpha=0.0, max_iter=EPOCHS, tol=None, random_state=0,
        ).fit(X, y)

    return fit, lambda model, X_test, y_test: (model.n_iter_, model.score(X_test, y_test))


def torch_loop(X, y, threads=2):
    import torch

    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))

    def fit():
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = torch.nn.Linear(N_FEATURES, N_CLASSES)
        loss_fn = torch.nn.CrossEntropyLoss()
        opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
        for _ in range(EPOCHS):
            perm = torch.randperm(Xt.shape[0])
            for start in range(0, Xt.shape[0], BATCH_SIZE):
                idx = perm[start:start + BATCH_SIZE]
                opt.zero_grad()
                loss_fn(model(Xt[idx]), yt[idx]).backward()
                opt.step()
        return model

    def evaluate(model, X_test, y_test):
        with torch.no_grad():
            pred = model(torch.from_numpy(X_test)).argmax(dim=1).numpy()
        return EPOCHS, float(np.mean(pred == y_test))

    return fit, evaluate


def sgd_classifier(X, y):
    from sklearn.linear_model import SGDClassifier

    def fit():
        return SGDClassifier(loss="log_loss", max_iter=EPOCHS, random_state=0).fit(X, y)

    return fit, lambda model, X_test, y_test: (model.n_iter_, model.score(X_test, y_test))


def logistic_regression(X, y):
    from sklearn.linear_model import LogisticRegression

    def fit():
        return LogisticRegression().fit(X, y)

    return fit, lambda model, X_test, y_test: (int(np.max(model.n_iter_)),
                                                model.score(X_test, y_test))


def main(argv=None):
    """Run every contender and print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="best of this many fits")
    parser.add_argument("--skip-slow", action="store_true",
                        help="skip SGDClassifier and LogisticRegression")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # ConvergenceWarning: fixed epoch budgets on purpose

    X, y, X_test, y_test = make_data()
    print(f"X: {X.shape} {X.dtype}, {N_CLASSES} classes, batch {BATCH_SIZE}, "
          f"learning rate {LEARNING_RATE}, {EPOCHS} epochs, best of {args.repeats}")
    print("load average (1, 5, 15 min) before: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    contenders = [("SoftmaxRegression", softmax_regression)]
    try:
        import torch  # noqa: F401

        contenders.append(("torch loop (2 threads)", torch_loop))
        contenders.append(("torch loop (1 thread)",
                           lambda X, y: torch_loop(X, y, threads=1)))
    except ImportError:
        print("torch not installed: skipping the PyTorch loop")
    if not args.skip_slow:
        contenders += [("SGDClassifier(log_loss)", sgd_classifier),
                       ("LogisticRegression()", logistic_regression)]

    # rounds interleave the contenders, so that a burst of load elsewhere on
    # the machine hits all of them; each keeps its fastest round
    closures = [(name, *make(X, y)) for name, make in contenders]
    best = {name: (np.inf, None) for name, _, _ in closures}
    for round_ in range(args.repeats):
        for name, fit, _ in closures:
            if name == "LogisticRegression()" and round_ > 0:
                continue  # minutes per fit: once is enough
            # idle thread pools stop spinning within ~0.1 s (OpenBLAS's workers,
            # the OpenMP runtimes of torch and of our kernels): a pause keeps the
            # previous contender's spinning threads from taking this one's cores
            time.sleep(PAUSE_SECONDS)
            tic = time.perf_counter()
            model = fit()
            seconds = time.perf_counter() - tic
            if seconds < best[name][0]:
                best[name] = (seconds, model)
    rows = []
    for name, _, evaluate in closures:
        seconds, model = best[name]
        epochs, accuracy = evaluate(model, X_test, y_test)
        rows.append((name, seconds, epochs, seconds / max(epochs, 1), accuracy))

    ours = rows[0][3]
    print()
    print(f"{'model':<26} {'total s':>8} {'epochs':>7} {'ms/epoch':>9} "
          f"{'x ours/epoch':>13} {'test acc':>9}")
    for name, seconds, epochs, per_epoch, accuracy in rows:
        print(f"{name:<26} {seconds:>8.3f} {epochs:>7d} {per_epoch * 1e3:>9.1f} "
              f"{per_epoch / ours:>13.2f} {accuracy:>9.4f}")
    print("load average (1, 5, 15 min) after: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    return rows


if __name__ == "__main__":
    main()
