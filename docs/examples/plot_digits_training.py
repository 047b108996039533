"""
=========================================================
Training on digits: loss and validation curves
=========================================================

Train :class:`~softmax_core.SoftmaxRegression` on the 8x8 handwritten digits
with early stopping, and follow the training through the attributes the
estimator records: ``loss_curve_`` (training objective of each epoch),
``validation_scores_`` (accuracy on the held-out validation split of each
epoch) and ``best_validation_score_``.  Two runs with the same initial
learning rate compare plain SGD with Nesterov momentum, which takes larger
effective steps along directions where successive gradients agree.
"""

# %%
# Data
# ----
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from softmax_core import SoftmaxRegression

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                    random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

# %%
# Two training runs
# -----------------
# ``early_stopping=True`` holds out 15 % of the training data; training stops
# once its accuracy has not improved for ``n_iter_no_change`` epochs, and the
# coefficients of the best epoch are kept.  A constant step keeps the
# comparison simple.
common = dict(learning_rate=0.01, schedule="constant", batch_size=64, early_stopping=True,
              validation_fraction=0.15, n_iter_no_change=10, max_iter=200, random_state=0)
runs = {
    "plain SGD": SoftmaxRegression(**common),
    "Nesterov momentum 0.9": SoftmaxRegression(momentum=0.9, **common),
}
for name, clf in runs.items():
    clf.fit(X_train, y_train)
    print(f"{name}: {clf.n_iter_} epochs, best validation accuracy "
          f"{clf.best_validation_score_:.3f}, test accuracy {clf.score(X_test, y_test):.3f}")

# %%
# Curves
# ------
# With momentum the loss drops much faster and the validation accuracy
# reaches a higher plateau.  Early stopping ends each run once the validation
# accuracy has not improved for 10 epochs; plain SGD with this small constant
# step is stopped while it is still improving slowly (a larger
# ``learning_rate``, a larger ``n_iter_no_change`` or ``schedule="adaptive"``
# would let it go on).
fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 4))
for name, clf in runs.items():
    epochs = range(1, clf.n_iter_ + 1)
    ax_loss.plot(epochs, clf.loss_curve_, label=name)
    ax_val.plot(epochs, clf.validation_scores_, label=name)
ax_loss.set(xlabel="epoch", ylabel="training loss (cross-entropy + penalty)", yscale="log",
            title="loss_curve_")
ax_val.set(xlabel="epoch", ylabel="validation accuracy", title="validation_scores_")
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
    ax.imshow(clf.coef_[digit].reshape(8, 8), cmap="RdBu_r", vmin=-scale, vmax=scale)
    ax.set_title(f"class {digit}")
    ax.set_axis_off()
fig.tight_layout()
plt.show()
