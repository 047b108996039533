"""
==========================================
Streaming training with ``partial_fit``
==========================================

When the data do not fit in memory, or arrive over time, train
:class:`~softmax_core.SoftmaxRegression` chunk by chunk with ``partial_fit``.
Each call runs one epoch of minibatch SGD on the chunk and keeps the
coefficients and the optimizer state (momentum, learning-rate schedule) for
the next one.  The first call must list all the classes, since a chunk may not
contain them all.

Here a generator yields chunks of a 5-class problem; we track the accuracy on
a fixed held-out set after every chunk and compare with a model fitted on all
the data at once.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler

from softmax_core import SoftmaxRegression

X_all, y_all = make_classification(
    n_samples=24_000,
    n_features=30,
    n_informative=12,
    n_classes=5,
    n_clusters_per_class=1,
    class_sep=1.2,
    random_state=0,
)
X_test, y_test = X_all[-4000:], y_all[-4000:]
X_stream, y_stream = X_all[:-4000], y_all[:-4000]
classes = np.unique(y_all)

# The scaler is fitted on the first chunk only: in a real stream the
# rest is not known yet.
chunk_size = 1000
scaler = StandardScaler().fit(X_stream[:chunk_size])


def chunks():
    """Yield the training data chunk by chunk, as a stream would."""
    for start in range(0, len(X_stream), chunk_size):
        stop = start + chunk_size
        yield scaler.transform(X_stream[start:stop]), y_stream[start:stop]


# %%
# Train on the stream
# -------------------
clf = SoftmaxRegression(
    learning_rate=0.05, momentum=0.9, batch_size=100, random_state=0
)
seen, accuracy = [], []
for X_chunk, y_chunk in chunks():
    clf.partial_fit(X_chunk, y_chunk, classes=classes)
    seen.append(clf.t_)
    accuracy.append(clf.score(scaler.transform(X_test), y_test))
print(
    f"after {len(seen)} chunks ({clf.t_} samples): "
    f"test accuracy {accuracy[-1]:.3f}"
)

# %%
# Compare with fitting all the data at once, for 30 epochs (``tol=None`` runs
# exactly ``max_iter`` epochs).
full = SoftmaxRegression(
    learning_rate=0.05,
    momentum=0.9,
    batch_size=100,
    max_iter=30,
    tol=None,
    random_state=0,
)
full.fit(scaler.transform(X_stream), y_stream)
full_accuracy = full.score(scaler.transform(X_test), y_test)
print(
    f"fit on everything ({full.n_iter_} epochs): "
    f"test accuracy {full_accuracy:.3f}"
)

fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(
    seen, accuracy, marker="o", label="partial_fit, one chunk at a time"
)
ax.axhline(
    full_accuracy, color="k", linestyle="--", label="fit on all data"
)
ax.set(
    xlabel="training samples seen",
    ylabel="held-out accuracy",
    title="Streaming training with partial_fit",
)
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()
