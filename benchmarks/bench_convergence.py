"""Convergence and accuracy of SoftmaxRegression's defaults against its peers.

For every data set (split 75/25, stratified, ``random_state=0``) each model is
fitted once on the training split with its default settings:

* ``SoftmaxRegression(random_state=0)`` ("SR default");
* ``LogisticRegression()`` (L-BFGS, ``max_iter=100``);
* ``SGDClassifier(loss="log_loss", random_state=0)`` (one-vs-rest SGD);
* a minimal PyTorch loop (``nn.Linear`` + ``CrossEntropyLoss`` + ``optim.SGD``,
  learning rate 0.1, batch 256, 10 epochs, no penalty, 2 threads; dense data
  only, skipped when torch is missing).

The table gives the test accuracy, the test log loss
(``sklearn.metrics.log_loss`` of ``predict_proba``), the wall time of the fit,
the epochs or iterations run (``n_iter_``, its maximum when it is an array),
``W`` when the fit raised a warning (ConvergenceWarning or any other; the
messages follow the table) and, for SoftmaxRegression, the gap to the optimum
of its training objective

    f(W, b) = mean_i CE(softmax(X_i W^T + b), y_i) + alpha / 2 * ||W||_F^2

on the training split, W the multinomial (n_classes, n_features) weights (for
two classes ``W = [-coef_ / 2, coef_ / 2]``, ``b`` likewise).  The optimum is
``LogisticRegression(C=C, tol=1e-10, max_iter=10000)`` with the matching
``C = 1 / (alpha * n_train)`` (multinomial: sklearn minimizes ``C * sum CE +
||W||^2 / 2``), or ``C = 2 / (alpha * n_train)`` for two classes (sklearn then
penalizes the single row ``c = w1 - w0`` by ``||c||^2 / 2``, and SR's penalty
is ``alpha / 4 * ||c||^2``); both objectives are evaluated by the same float64
function.  ``--check-objective`` verifies that matching by finite differences:
the gradient of ``f`` at that optimum must vanish.

Data sets: iris, wine, breast_cancer and digits, each "raw" and "std"
(StandardScaler fitted on the training split); MNIST-1D (package ``mnist1d``,
default arguments, generated locally: no download), standardized;
``make_classification(200000, 200, n_informative=50, n_classes=10)``,
standardized ("classif-200k"); and a synthetic tf-idf problem ("tfidf-50k",
CSR 50000 x 20000, 20 classes, documents of about 100 tokens drawn from
class-specific mixtures of one shared Zipf vocabulary distribution).

Extra experiments: ``--early-stopping`` (5-fold CV accuracy of SR with and
without ``early_stopping=True``), ``--partial-fit`` (``fit`` against 30 passes
of ``partial_fit`` over 10 shuffled chunks, digits), ``--check-objective``.
Given alone they run without the main table; ``--all`` runs everything.

Run: ``python benchmarks/bench_convergence.py`` (options: ``--quick``,
``--only iris,digits-std``, ``--models sr,lr``, ``--repeats 3`` for the fit
times on a shared machine, ``--all``).
"""

import argparse
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import logsumexp

MODELS = {
    "sr": "SR default",
    "lr": "LogisticRegression()",
    "sgd": "SGDClassifier(log_loss)",
    "torch": "torch loop (2 threads)",
}
SMALL = ["iris", "wine", "breast_cancer", "digits"]
LARGE = ["mnist1d", "classif-200k", "tfidf-50k"]
TORCH_LR, TORCH_BATCH, TORCH_EPOCHS = 0.1, 256, 10


def progress(msg):
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------- header


def cpu_description():
    """``Model name`` from lscpu and which of avx2 / avx512f the CPU flags list."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        text = ""
    model, flags = platform.processor() or "unknown", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            model = value.strip()
        elif key.strip() == "Flags":
            flags = set(value.split())
    if not flags:
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("flags"):
                        flags = set(line.partition(":")[2].split())
                        break
        except OSError:
            pass
    has = ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in ("avx2", "avx512f"))
    return f"{model} ({has})"


def print_header():
    import scipy
    import sklearn

    import softmax_core

    print(f"CPU: {cpu_description()}")
    versions = [f"Python {platform.python_version()}", f"numpy {np.__version__}",
                f"scipy {scipy.__version__}", f"scikit-learn {sklearn.__version__}"]
    torch = _torch()
    versions.append(f"torch {torch.__version__}" if torch is not None else "torch: not installed")
    print(", ".join(versions))
    softmax_core.show_config()
    print()


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# ------------------------------------------------------------------- data


def split(X, y, standardize):
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    if standardize:
        scaler = StandardScaler(with_mean=not sp.issparse(X)).fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    return X_train, X_test, y_train, y_test


def load_small(name):
    from sklearn import datasets

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    return X.astype(np.float64), y


def load_mnist1d():
    """MNIST-1D from its default arguments, generated here (``get_dataset`` downloads)."""
    from mnist1d.data import get_dataset_args, make_dataset

    data = make_dataset(get_dataset_args())  # seeds the global NumPy RNG with args.seed
    X = np.concatenate([data["x"], data["x_test"]]).astype(np.float64)
    y = np.concatenate([data["y"], data["y_test"]])
    return X, y


def load_classif():
    from sklearn.datasets import make_classification

    X, y = make_classification(200_000, 200, n_informative=50, n_classes=10, random_state=0)
    return X.astype(np.float64), y


def make_tfidf(n_docs=50_000, n_words=20_000, n_classes=20, tokens=100, mix=0.05, zipf_s=1.1,
               seed=0):
    """Synthetic bag of words -> L2-normalized tf-idf CSR matrix.

    One Zipf distribution ``p_j ~ 1 / (j + 1) ** zipf_s`` over the vocabulary is
    shared; class ``c`` draws its tokens from ``(1 - mix) * p + mix * p[perm_c]``,
    ``perm_c`` a random permutation of the vocabulary of its own (so each class
    over-uses its own random words, most of them rare overall).  Documents have
    ``Poisson(tokens)`` tokens (at least one); the counts go through
    ``TfidfTransformer()``.  ``mix=0.05`` leaves a linear model about 90% accuracy.
    """
    from sklearn.feature_extraction.text import TfidfTransformer

    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, n_words + 1) ** zipf_s
    zipf /= zipf.sum()
    y = rng.integers(0, n_classes, n_docs)
    lengths = np.maximum(rng.poisson(tokens, n_docs), 1)
    rows, cols = [], []
    for c in range(n_classes):
        docs = np.flatnonzero(y == c)
        q = (1 - mix) * zipf
        q[rng.permutation(n_words)] += mix * zipf
        cdf = np.cumsum(q)
        cdf /= cdf[-1]
        n_tokens = lengths[docs]
        rows.append(np.repeat(docs, n_tokens))
        words = np.searchsorted(cdf, rng.random(n_tokens.sum()), side="right")
        cols.append(np.minimum(words, n_words - 1))
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    counts = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_docs, n_words))
    counts.sum_duplicates()
    return TfidfTransformer().fit_transform(counts).tocsr(), y


def dataset_specs(names):
    """``[(row name, loader, standardize)]`` for the selected base names."""
    specs = []
    for name in names:
        if name in SMALL:
            specs += [(f"{name}-raw", lambda n=name: load_small(n), False),
                      (f"{name}-std", lambda n=name: load_small(n), True)]
        elif name == "mnist1d":
            specs.append(("mnist1d-std", load_mnist1d, True))
        elif name == "classif-200k":
            specs.append(("classif-200k", load_classif, True))
        elif name == "tfidf-50k":
            specs.append(("tfidf-50k", make_tfidf, False))  # rows already L2-normalized
    return specs


def select_specs(only, quick):
    everything = dataset_specs(SMALL + LARGE)
    if only is None:
        return dataset_specs(SMALL) if quick else everything
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    known = {name for name, _, _ in everything} | set(SMALL + LARGE) | {"mnist1d-std"}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise SystemExit(f"unknown data set(s) {unknown}; known: {sorted(known)}")
    return [spec for spec in everything
            if spec[0] in wanted or spec[0].rsplit("-", 1)[0] in wanted]


# -------------------------------------------------------------- objective


def multinomial_params(coef, intercept, n_classes):
    """(W, b) in float64 of the multinomial model; two classes: W = [-c/2, c/2]."""
    coef = np.asarray(coef, dtype=np.float64)
    intercept = np.asarray(intercept, dtype=np.float64).reshape(-1)
    if n_classes == 2 and coef.shape[0] == 1:
        return np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    return coef, intercept


def objective(W, b, X, y_index, alpha):
    """mean_i CE(softmax(X_i W^T + b), y_i) + alpha / 2 ||W||_F^2, in float64."""
    Z = np.asarray(X @ W.T) + b
    ce = logsumexp(Z, axis=1) - Z[np.arange(Z.shape[0]), y_index]
    return float(np.mean(ce) + 0.5 * alpha * np.sum(W * W))


def model_objective(model, X, y, alpha):
    classes = model.classes_
    W, b = multinomial_params(model.coef_, model.intercept_, len(classes))
    return objective(W, b, X, np.searchsorted(classes, y), alpha)


def _fit_optimum(X, y, C, solver):
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LogisticRegression(C=C, tol=1e-10, max_iter=10_000, solver=solver).fit(X, y)
    return model, [f"{w.category.__name__}: {w.message}" for w in caught]


def matched_optimum(X, y, alpha):
    """LogisticRegression solving SR's objective: ``(model, C, seconds, solver, warnings)``.

    L-BFGS first; where it stops on ``max_iter`` (badly scaled raw features)
    ``newton-cg`` solves the same problem again and the lower objective is kept.
    """
    n = X.shape[0]
    C = (2.0 if len(np.unique(y)) == 2 else 1.0) / (alpha * n)
    tic = time.perf_counter()
    model, messages = _fit_optimum(X, y, C, "lbfgs")
    solver = "lbfgs"
    if messages:
        other, other_messages = _fit_optimum(X, y, C, "newton-cg")
        if model_objective(other, X, y, alpha) < model_objective(model, X, y, alpha):
            model, solver = other, "newton-cg"
            messages = [f"lbfgs: {m} (replaced by newton-cg)" for m in messages]
            messages += [f"newton-cg: {m}" for m in other_messages]
    return model, C, time.perf_counter() - tic, solver, messages


def fd_gradient(theta, W_shape, X, y_index, alpha, h):
    """Central differences of ``objective`` at ``theta = [W.ravel(), b]``."""
    size = W_shape[0] * W_shape[1]

    def f(t):
        return objective(t[:size].reshape(W_shape), t[size:], X, y_index, alpha)

    grad = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        grad[i] = (f(theta + e) - f(theta - e)) / (2 * h)
    return grad


def check_objective(alpha=1e-4, h=1e-5):
    """Central-difference gradient of ``objective`` at the matched LR optimum."""
    rows = []
    for name, standardize in [("iris", True), ("breast_cancer", True), ("wine", True)]:
        X_train, _, y_train, _ = split(*load_small(name), standardize)
        model, C, _, _, _ = matched_optimum(X_train, y_train, alpha)
        n_classes = len(model.classes_)
        y_index = np.searchsorted(model.classes_, y_train)
        W, b = multinomial_params(model.coef_, model.intercept_, n_classes)
        theta = np.concatenate([W.ravel(), b])
        grad = fd_gradient(theta, W.shape, X_train, y_index, alpha, h)
        # the other C (multiclass rule on two classes, or binary rule on more):
        # its optimum must show a clearly non-zero gradient of the same objective
        wrong_C = C / 2 if n_classes == 2 else 2 * C
        wrong, _ = _fit_optimum(X_train, y_train, wrong_C, "lbfgs")
        Ww, bw = multinomial_params(wrong.coef_, wrong.intercept_, n_classes)
        grad_wrong = fd_gradient(np.concatenate([Ww.ravel(), bw]), W.shape, X_train, y_index,
                                 alpha, h)
        rows.append((f"{name}-std", n_classes, X_train.shape[0], C,
                     np.max(np.abs(grad)), np.max(np.abs(grad_wrong))))
    print("Objective matching check: max |finite-difference gradient| of f at the "
          f"LogisticRegression optimum (alpha={alpha:g}, h={h:g}); 'other C' uses the "
          "rule of the other case")
    print(f"{'data set':<18} {'classes':>7} {'n_train':>7} {'C':>10} {'max|grad|':>10} "
          f"{'other C':>10}  verdict")
    for name, k, n, C, g, g_wrong in rows:
        verdict = "ok" if g < 1e-6 else "MATCHING WRONG"
        print(f"{name:<18} {k:>7d} {n:>7d} {C:>10.4g} {g:>10.2e} {g_wrong:>10.2e}  {verdict}")
    print()
    return rows


# ----------------------------------------------------------------- models


def fit_sr(X, y):
    from softmax_core import SoftmaxRegression

    return SoftmaxRegression(random_state=0).fit(X, y)


def fit_lr(X, y):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(X, y)


def fit_sgd(X, y):
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(loss="log_loss", random_state=0).fit(X, y)


class TorchLinear:
    """The minimal PyTorch loop, with the scikit-learn bits the table reads."""

    def __init__(self, torch):
        self.torch = torch
        self.n_iter_ = TORCH_EPOCHS

    def fit(self, X, y):
        torch = self.torch
        torch.set_num_threads(2)
        torch.manual_seed(0)
        self.classes_ = np.unique(y)
        Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        yt = torch.from_numpy(np.searchsorted(self.classes_, y).astype(np.int64))
        self.model = torch.nn.Linear(X.shape[1], len(self.classes_))
        loss_fn = torch.nn.CrossEntropyLoss()
        opt = torch.optim.SGD(self.model.parameters(), lr=TORCH_LR)
        for _ in range(TORCH_EPOCHS):
            perm = torch.randperm(Xt.shape[0])
            for start in range(0, Xt.shape[0], TORCH_BATCH):
                idx = perm[start:start + TORCH_BATCH]
                opt.zero_grad()
                loss_fn(self.model(Xt[idx]), yt[idx]).backward()
                opt.step()
        return self

    def predict_proba(self, X):
        with self.torch.no_grad():
            logits = self.model(self.torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)))
            return self.torch.softmax(logits.double(), dim=1).numpy()


def fit_torch(X, y):
    return TorchLinear(_torch()).fit(X, y)


FITS = {"sr": fit_sr, "lr": fit_lr, "sgd": fit_sgd, "torch": fit_torch}


def evaluate(model, X_test, y_test):
    from sklearn.metrics import log_loss

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proba = model.predict_proba(X_test)
        accuracy = float(np.mean(model.classes_[np.argmax(proba, axis=1)] == y_test))
        try:
            loss = log_loss(y_test, proba, labels=model.classes_)
        except ValueError:  # NaN probabilities (a diverged fit)
            loss = float("nan")
    n_iter = int(np.max(model.n_iter_))
    return accuracy, loss, n_iter


# ------------------------------------------------------------ main table


def run_main(specs, models, repeats=1):
    torch = _torch()
    if "torch" in models and torch is None:
        print("torch not installed: skipping the PyTorch loop")
        models = [m for m in models if m != "torch"]
    if "torch" in models:  # first use of torch: thread pool, lazy imports, not timed
        rng = np.random.default_rng(0)
        fit_torch(rng.standard_normal((512, 4)), np.arange(512) % 2)
    data_rows, rows, notes, optima = [], [], [], []
    for name, loader, standardize in specs:
        progress(f"[{name}] generating")
        tic = time.perf_counter()
        try:
            X, y = loader()
        except Exception as exc:  # noqa: BLE001 -- e.g. mnist1d missing or failing offline
            print(f"note: skipping {name}: {type(exc).__name__}: {exc}")
            continue
        X_train, X_test, y_train, y_test = split(X, y, standardize)
        gen_seconds = time.perf_counter() - tic
        sparse = sp.issparse(X_train)
        data_rows.append((name, X.shape, "CSR" if sparse else "dense", len(np.unique(y)),
                          X_train.shape[0], X_test.shape[0], gen_seconds))
        progress(f"[{name}] {X.shape} in {gen_seconds:.2f} s")
        for key in models:
            label = MODELS[key]
            if key == "torch" and sparse:
                rows.append((name, label, None, "skipped: sparse input"))
                continue
            progress(f"[{name}] fitting {label}")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                tic = time.perf_counter()
                try:
                    model = FITS[key](X_train, y_train)
                except Exception as exc:  # noqa: BLE001 -- report, keep going
                    rows.append((name, label, None, f"error: {type(exc).__name__}"))
                    notes.append((name, label, f"{type(exc).__name__}: {exc}"))
                    continue
                seconds = time.perf_counter() - tic
            messages = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
            notes += [(name, label, m) for m in messages]
            accuracy, loss, n_iter = evaluate(model, X_test, y_test)
            gap = None
            if key == "sr":
                alpha = model.alpha
                cached = next((o for o in optima if o[0] == name and o[1] == alpha), None)
                if cached is None:
                    progress(f"[{name}] optimum: LogisticRegression(C=matched, tol=1e-10)")
                    opt, C, opt_seconds, solver, opt_warnings = matched_optimum(
                        X_train, y_train, alpha)
                    f_opt = model_objective(opt, X_train, y_train, alpha)
                    cached = (name, alpha, C, f_opt, solver, int(np.max(opt.n_iter_)),
                              opt_seconds)
                    optima.append(cached)
                    notes += [(name, "optimum", m) for m in dict.fromkeys(opt_warnings)]
                gap = model_objective(model, X_train, y_train, alpha) - cached[3]
            rows.append((name, label, (accuracy, loss, seconds, n_iter, bool(messages), gap), ""))
        _retime(rows, name, models, X_train, y_train, repeats)

    print(f"{'data set':<18} {'shape':>15} {'format':>6} {'classes':>7} {'train':>7} "
          f"{'test':>6} {'gen s':>7}")
    for name, shape, fmt, k, n_train, n_test, gen_seconds in data_rows:
        shape = f"{shape[0]}x{shape[1]}"
        print(f"{name:<18} {shape:>15} {fmt:>6} {k:>7d} {n_train:>7d} {n_test:>6d} "
              f"{gen_seconds:>7.2f}")
    print()
    print(f"{'data set':<18} {'model':<24} {'test acc':>8} {'log loss':>9} {'fit s':>8} "
          f"{'iters':>6} {'W':>1} {'gap':>10}")
    bad_gaps = []
    previous = None
    for name, label, result, remark in rows:
        if previous is not None and name != previous:
            print()
        previous = name
        if result is None:
            print(f"{name:<18} {label:<24} {remark}")
            continue
        accuracy, loss, seconds, n_iter, warned, gap = result
        gap_text = "-" if gap is None else f"{gap:.2e}"
        print(f"{name:<18} {label:<24} {accuracy:>8.4f} {loss:>9.4f} {seconds:>8.3f} "
              f"{n_iter:>6d} {'W' if warned else ' '} {gap_text:>10}")
        if gap is not None and gap < -1e-6:
            bad_gaps.append((name, gap))
    for name, gap in bad_gaps:
        print(f"WARNING: {name}: gap {gap:.3e} < -1e-6, SR below the 'optimum': the C "
              f"matching is wrong or the optimum did not converge")
    if optima:
        print()
        print("gap = f(SR) - f(optimum) on the training split; optimum = "
              "LogisticRegression(C, tol=1e-10, max_iter=10000, solver):")
        print(f"{'data set':<18} {'alpha':>8} {'C':>10} {'f(optimum)':>14} {'solver':>10} "
              f"{'iters':>6} {'fit s':>8}")
        for name, alpha, C, f_opt, solver, n_iter, seconds in optima:
            print(f"{name:<18} {alpha:>8.1e} {C:>10.4g} {f_opt:>14.10f} {solver:>10} "
                  f"{n_iter:>6d} {seconds:>8.2f}")
    if notes:
        print()
        print("warnings and errors raised by the fits:")
        for name, label, message in notes:
            message = " ".join(str(message).split())
            print(f"  {name} / {label}: {message[:300]}")
    print()
    return rows


def _retime(rows, name, models, X_train, y_train, repeats):
    """``repeats - 1`` more rounds of fits of the models of data set ``name``,
    interleaved (one fit of each model per round, after a pause that lets idle
    thread pools stop spinning); each row keeps its fastest time."""
    fitted = {label: i for i, (row_name, label, result, _) in enumerate(rows)
              if row_name == name and result is not None}
    for _ in range(repeats - 1):
        for key in models:
            i = fitted.get(MODELS[key])
            if i is None:
                continue
            time.sleep(0.5)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tic = time.perf_counter()
                FITS[key](X_train, y_train)
                seconds = time.perf_counter() - tic
            row_name, label, result, remark = rows[i]
            result = (result[0], result[1], min(result[2], seconds), *result[3:])
            rows[i] = (row_name, label, result, remark)


# ----------------------------------------------------------------- extras


def run_early_stopping():
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from softmax_core import SoftmaxRegression

    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    print("early_stopping: 5-fold stratified CV accuracy (%), StandardScaler + SoftmaxRegression")
    print(f"{'data set':<10} {'default':>8} {'early_stopping':>15} {'diff (points)':>14} "
          f"{'warnings':>9}")
    for name in ["iris", "wine", "digits"]:
        X, y = load_small(name)
        scores, n_warnings = [], 0
        for early in (False, True):
            pipe = make_pipeline(StandardScaler(),
                                 SoftmaxRegression(random_state=0, early_stopping=early))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                scores.append(100 * cross_val_score(pipe, X, y, cv=cv).mean())
            n_warnings += len(caught)
        print(f"{name:<10} {scores[0]:>8.2f} {scores[1]:>15.2f} {scores[1] - scores[0]:>+14.2f} "
              f"{n_warnings:>9d}")
    print()


def run_partial_fit(passes=30, chunks=10):
    from softmax_core import SoftmaxRegression

    X_train, X_test, y_train, y_test = split(*load_small("digits"), True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tic = time.perf_counter()
        fitted = SoftmaxRegression(random_state=0).fit(X_train, y_train)
        fit_seconds = time.perf_counter() - tic
        rng = np.random.default_rng(0)
        online = SoftmaxRegression(random_state=0)
        tic = time.perf_counter()
        for _ in range(passes):
            for chunk in np.array_split(rng.permutation(X_train.shape[0]), chunks):
                online.partial_fit(X_train[chunk], y_train[chunk], classes=np.arange(10))
        online_seconds = time.perf_counter() - tic
    fit_acc, online_acc = fitted.score(X_test, y_test), online.score(X_test, y_test)
    print(f"partial_fit: digits-std, fit vs {passes} passes of partial_fit over {chunks} "
          "shuffled chunks")
    print(f"{'method':<22} {'test acc':>8} {'n_iter_':>7} {'s':>7}")
    print(f"{'fit':<22} {fit_acc:>8.4f} {int(np.max(fitted.n_iter_)):>7d} {fit_seconds:>7.2f}")
    print(f"{'partial_fit':<22} {online_acc:>8.4f} {int(np.max(online.n_iter_)):>7d} "
          f"{online_seconds:>7.2f}")
    print(f"difference (partial_fit - fit): {100 * (online_acc - fit_acc):+.2f} points")
    print()


def main(argv=None):
    """Print the header, then the main table and/or the extra experiments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="only the small data sets (iris, wine, breast_cancer, digits)")
    parser.add_argument("--only", metavar="NAME[,NAME]",
                        help="data sets to run: a row name (digits-std) or a base name (digits)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--early-stopping", action="store_true",
                        help="CV accuracy of SR with and without early_stopping")
    parser.add_argument("--partial-fit", action="store_true",
                        help="digits: fit against 30 passes of partial_fit")
    parser.add_argument("--check-objective", action="store_true",
                        help="verify the C matching of the optimum by finite differences")
    parser.add_argument("--all", action="store_true", help="main table and every extra")
    parser.add_argument("--repeats", type=int, default=1,
                        help="fit time: the fastest of this many interleaved fits per model "
                             "(the other columns are from the first)")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; known: {','.join(MODELS)}")
    extras = args.early_stopping or args.partial_fit or args.check_objective
    main_table = args.all or not extras or args.quick or args.only is not None

    print_header()
    if args.all or args.check_objective:
        check_objective()
    if main_table:
        load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
        print(f"load average (1, 5, 15 min) before the table: {load}")
        run_main(select_specs(args.only, args.quick), models, max(1, args.repeats))
        load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
        print(f"load average (1, 5, 15 min) after the table: {load}")
    if args.all or args.early_stopping:
        run_early_stopping()
    if args.all or args.partial_fit:
        run_partial_fit()


if __name__ == "__main__":
    main()
