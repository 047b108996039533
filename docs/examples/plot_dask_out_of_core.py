"""
=========================================
Out-of-core training on a dask cluster
=========================================

:class:`~softmax_core.SoftmaxRegression` trains on a dask array without ever
holding it: each epoch visits the array's row blocks in a fresh random order,
and on a cluster each block trains on the worker that computed it (the model
moves from worker to worker, a few blocks computed ahead), so no process
holds more than a few blocks.  Predictions on a dask array are
lazy dask arrays.  This example starts a local cluster of two worker
processes with a small memory limit, trains on an array larger than that
limit, predicts lazily, and runs a small grid search on the cluster (see
:ref:`scaling` for the details and for measured figures).

The data are never stored: each row block is generated when a task asks for
it, from a seed of its own, so every pass over the array sees the same
numbers.

.. note::

   The cluster's worker processes are started with ``spawn``, which imports
   the main module: to run this file as a script, put its code under
   ``if __name__ == "__main__":`` (in Jupyter or IPython there is nothing to
   do).
"""

# %%
import logging

import dask
import dask.array as da
import joblib
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster
from sklearn.model_selection import GridSearchCV

from softmax_core import SoftmaxRegression

# %%
# A cluster and a lazily generated data set
# -----------------------------------------
# Two worker processes of one thread each, 400 MiB of memory each (a
# worker that has imported scikit-learn and softmax-core already uses
# about 200 MiB of it).
cluster = LocalCluster(
    n_workers=2,
    threads_per_worker=1,
    memory_limit="400MiB",
    dashboard_address=":0",
    silence_logs=logging.ERROR,
)
client = Client(cluster)

# %%
# 30 blocks of 40,000 rows x 100 float32 features: 480 MB, more than a
# worker's memory limit.  The labels of 5 classes come from a linear
# model, one in twenty replaced by a random one; some features are on
# a scale a thousand times larger than the others, some are centred far
# from zero (no scaler is needed).
N_BLOCKS, ROWS, FEATURES, CLASSES = 30, 40_000, 100, 5
W = np.random.default_rng(0).standard_normal((FEATURES, CLASSES))
W = W.astype(np.float32)
SCALE = np.ones(FEATURES, dtype=np.float32)
SCALE[:10] = 1000.0
SHIFT = np.zeros(FEATURES, dtype=np.float32)
SHIFT[10:20] = 100.0


def make_block(seed):
    """One row block: features and labels, the same for the same seed."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((ROWS, FEATURES), dtype=np.float32)
    y = np.argmax(X @ W, axis=1)
    noisy = rng.random(ROWS) < 0.05
    y[noisy] = rng.integers(0, CLASSES, noisy.sum())
    X *= SCALE
    X += SHIFT
    return X, y


def dataset(seeds):
    """Lazy dask arrays X, y of the blocks of these seeds."""
    blocks = [dask.delayed(make_block, nout=2)(s) for s in seeds]
    X = da.concatenate(
        [
            da.from_delayed(b[0], (ROWS, FEATURES), np.float32)
            for b in blocks
        ]
    )
    y = da.concatenate(
        [da.from_delayed(b[1], (ROWS,), np.int64) for b in blocks]
    )
    return X, y


X, y = dataset(range(N_BLOCKS))
X_test, y_test = dataset(range(N_BLOCKS, N_BLOCKS + 2))  # held out
print(f"X: {X.shape}, {X.nbytes / 1e6:.0f} MB in {X.numblocks[0]} blocks")

# %%
# Out-of-core fit
# ---------------
# ``fit`` makes one pass to survey the data (the classes, the column
# moments for the preconditioner, a sample of rows for the step size),
# then trains epoch after epoch, each a pass over the blocks in a fresh
# random order.  To keep this example short it trains a fixed budget of
# 4 epochs (``tol=None``), with a step that shrinks after every epoch
# (``schedule="invscaling"``); by default the stopping rule decides (about
# 25 epochs on these data, to a held-out accuracy of 0.95).
clf = SoftmaxRegression(
    max_iter=4, tol=None, schedule="invscaling", random_state=0
)
clf.fit(X, y)
print(
    f"{clf.n_iter_} epochs (plus the survey pass), "
    f"final training objective {clf.loss_curve_[-1]:.4f}"
)

# %%
# Lazy predictions
# ----------------
# ``predict_proba`` of a dask array is a dask array: nothing is computed
# until asked for.  ``score`` computes the accuracy in one pass.
proba = clf.predict_proba(X_test)
print(type(proba).__name__, proba.shape, proba.dtype, proba.chunksize)
accuracy = float((proba.argmax(axis=1) == y_test).mean().compute())
print(f"held-out accuracy {accuracy:.3f}")
print(f"the same through score: {clf.score(X_test, y_test):.3f}")

# %%
# A grid search on the cluster
# ----------------------------
# With joblib's dask backend, scikit-learn's ``GridSearchCV`` sends its
# fits to the workers, one per worker thread; each worker runs the
# kernels with one thread.  The search data fit in memory here: a
# sample of one block, sent to every worker once, before the search
# (``scatter=``); every candidate trains 20 epochs.
X_small, y_small = make_block(10_000)
X_small, y_small = X_small[:5000], y_small[:5000]
alphas = np.logspace(-4, -1, 4)
search = GridSearchCV(
    SoftmaxRegression(max_iter=20, tol=None, random_state=0),
    {"alpha": alphas},
    cv=3,
    n_jobs=-1,
)
with joblib.parallel_backend("dask", scatter=[X_small, y_small]):
    search.fit(X_small, y_small)
print("best alpha:", search.best_params_["alpha"])

# %%
# Training objective of the out-of-core fit (one point per epoch) and
# the cross-validated accuracy of the search.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
epochs = range(1, clf.n_iter_ + 1)
ax1.plot(epochs, clf.loss_curve_, marker="o")
ax1.set_xticks(epochs)
ax1.set(
    xlabel="epoch",
    ylabel="training objective",
    title=f"fit on {X.nbytes / 1e6:.0f} MB, out of core",
)
ax2.semilogx(alphas, search.cv_results_["mean_test_score"], marker="o")
ax2.set(
    xlabel="alpha", ylabel="CV accuracy", title="GridSearchCV on 2 workers"
)
fig.tight_layout()
plt.show()

# %%
client.close()
cluster.close()
