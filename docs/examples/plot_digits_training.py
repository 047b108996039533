"""
=========================================================
Training on digits: loss and validation curves
=========================================================

Train :class:`~softmax_core.SoftmaxRegression` on the 8x8 handwritten digits
with early stopping, and follow the training through the attributes the
estimator records: ``loss_curve_`` (training objective of each epoch),
``validation_loss_curve_`` and ``validation_scores_`` (log loss and accuracy
on the held-out validation split of each epoch) and ``best_validation_score_``.
Two runs with the same small constant step compare plain SGD with Nesterov
momentum, which takes larger effective steps along directions where
successive gradients agree; a third uses the defaults (a step derived from
the data, momentum, the adaptive schedule).
"""

# %%
# Data
# ----
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from softmax_core import SoftmaxRegression

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

# %%
# Two training runs
# -----------------
# ``early_stopping=True`` holds out 15 % of the training data; training stops
# once its log loss has not improved for ``n_iter_no_change`` epochs, and the
# coefficients of the best epoch are kept.
common = dict(
    early_stopping=True,
    validation_fraction=0.15,
    n_iter_no_change=10,
    max_iter=200,
    random_state=0,
)
small_step = dict(
    learning_rate=0.01, schedule="constant", batch_size=64, **common
)
runs = {
    "plain SGD": SoftmaxRegression(momentum=0.0, **small_step),
    "Nesterov momentum 0.9": SoftmaxRegression(momentum=0.9, **small_step),
    "defaults": SoftmaxRegression(**common),
}
for name, clf in runs.items():
    with warnings.catch_warnings():
        # the small constant step is still improving after max_iter epochs
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train, y_train)
    print(
        f"{name}: {clf.n_iter_} epochs, best validation accuracy "
        f"{clf.best_validation_score_:.3f}, "
        f"test accuracy {clf.score(X_test, y_test):.3f}"
    )

# %%
# Curves
# ------
# With momentum the loss drops much faster than with plain SGD at the same
# small step; the defaults, whose step is derived from the data, are faster
# still.  Early stopping ends each run once the validation log loss has not
# improved for 10 epochs.
fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 4))
for name, clf in runs.items():
    epochs = range(1, clf.n_iter_ + 1)
    ax_loss.plot(epochs, clf.loss_curve_, label=name)
    ax_val.plot(epochs, clf.validation_loss_curve_, label=name)
ax_loss.set(
    xlabel="epoch",
    ylabel="training loss (cross-entropy + penalty)",
    yscale="log",
    title="loss_curve_",
)
ax_val.set(
    xlabel="epoch",
    ylabel="validation log loss",
    title="validation_loss_curve_",
)
ax_loss.legend()
fig.tight_layout()

# %%
# The learned weights
# -------------------
# Each row of ``coef_`` is an 8x8 template: pixels that raise the logit of a
# digit in red, pixels that lower it in blue.
clf = runs["Nesterov momentum 0.9"]
fig, axes = plt.subplots(2, 5, figsize=(10, 4.4))
scale = abs(clf.coef_).max()
for digit, ax in zip(clf.classes_, axes.ravel(), strict=True):
    ax.imshow(
        clf.coef_[digit].reshape(8, 8),
        cmap="RdBu_r",
        vmin=-scale,
        vmax=scale,
    )
    ax.set_title(f"class {digit}")
    ax.set_axis_off()
fig.tight_layout()
plt.show()
