"""
==============================================
Decision regions of a three-class problem
==============================================

:class:`~softmax_core.SoftmaxRegression` on a two-dimensional problem with
three classes.  The decision boundaries of a multinomial linear model are
straight lines that meet at a point (where the three logits are equal); the
shading shows the probability of the predicted class, highest far from the
boundaries.  For comparison, one-vs-rest logistic regression fits three
independent binary models, whose boundaries need not meet and whose
probabilities are only renormalised afterwards.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from softmax_core import SoftmaxRegression

X, y = make_blobs(
    n_samples=450,
    centers=[[-2, -1], [2, -1], [0, 2.5]],
    cluster_std=1.3,
    random_state=0,
)

models = {
    "SoftmaxRegression (multinomial)": SoftmaxRegression(
        learning_rate=0.1, max_iter=200, random_state=0
    ),
    "one-vs-rest logistic regression": OneVsRestClassifier(
        LogisticRegression()
    ),
}

fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
xx, yy = np.meshgrid(np.linspace(-6, 6, 300), np.linspace(-5, 7, 300))
grid = np.c_[xx.ravel(), yy.ravel()]
for ax, (name, model) in zip(axes, models.items(), strict=True):
    model.fit(X, y)
    # decision regions, coloured by the predicted class like the points
    predicted = model.predict(grid).reshape(xx.shape)
    ax.contourf(
        xx,
        yy,
        predicted,
        levels=[-0.5, 0.5, 1.5, 2.5],
        cmap="viridis",
        alpha=0.3,
    )
    # probability of the most likely class as contour lines
    confidence = model.predict_proba(grid).max(axis=1).reshape(xx.shape)
    lines = ax.contour(
        xx,
        yy,
        confidence,
        levels=[0.5, 0.8, 0.95],
        colors="k",
        linewidths=0.8,
        linestyles=["dotted", "dashed", "solid"],
    )
    ax.clabel(lines, fontsize="small")
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="viridis", edgecolor="k", s=20)
    ax.set(
        title=f"{name}\ntraining accuracy {model.score(X, y):.3f}",
        xlim=(-6, 6),
        ylim=(-5, 7),
        xlabel="feature 0",
    )
axes[0].set_ylabel("feature 1")
fig.tight_layout()

# %%
# The three boundaries of the softmax model are the lines where two logits
# are equal, :math:`(w_i - w_j)^\top x + (b_i - b_j) = 0`; they meet in the
# single point where all three logits are equal.
clf = models["SoftmaxRegression (multinomial)"]
W, b = clf.coef_, clf.intercept_
A = np.array([W[0] - W[1], W[0] - W[2]])
point = np.linalg.solve(A, -np.array([b[0] - b[1], b[0] - b[2]]))
print("the three boundaries meet at", point.round(3))
print("logits there:", (W @ point + b).round(3))
plt.show()
