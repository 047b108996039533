"""
=======================================================================
Tuning ``alpha`` and ``learning_rate`` with a Pipeline and GridSearchCV
=======================================================================

:class:`~softmax_core.SoftmaxRegression` is a regular scikit-learn estimator,
so it can sit at the end of a :class:`~sklearn.pipeline.Pipeline` and be tuned
by :class:`~sklearn.model_selection.GridSearchCV`.  We search the penalty
strength ``alpha`` and the initial step size ``learning_rate`` on the digits
data and draw the cross-validated accuracy of every combination.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from softmax_core import SoftmaxRegression

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, stratify=y, random_state=0
)

pipe = Pipeline(
    [
        ("scale", StandardScaler()),
        (
            "clf",
            SoftmaxRegression(
                batch_size=128, max_iter=30, tol=None, random_state=0
            ),
        ),
    ]
)
param_grid = {
    "clf__alpha": np.logspace(-5, -1, 5),
    "clf__learning_rate": [0.003, 0.03, 0.3, 3.0],
}
search = GridSearchCV(pipe, param_grid, cv=3, n_jobs=1, error_score=np.nan)
search.fit(X_train, y_train)
print("best parameters:", search.best_params_)
print(
    f"cross-validated accuracy {search.best_score_:.3f}, "
    f"test accuracy {search.score(X_test, y_test):.3f}"
)

# %%
# The grid of results
# -------------------
# Small steps have not converged within the 30 epochs (the left columns), and
# the strongest penalty (the bottom row) underfits.  A fit whose loss diverges
# raises an error; ``error_score=np.nan`` scores it NaN, drawn as a blank cell.
alphas, rates = param_grid["clf__alpha"], param_grid["clf__learning_rate"]
table = np.full((len(alphas), len(rates)), np.nan)
for params, score in zip(
    search.cv_results_["params"],
    search.cv_results_["mean_test_score"],
    strict=True,
):
    i = list(alphas).index(params["clf__alpha"])
    j = rates.index(params["clf__learning_rate"])
    table[i, j] = score

fig, ax = plt.subplots(figsize=(7, 4.5))
im = ax.imshow(table, cmap="viridis", vmin=np.nanmin(table), vmax=1)
ax.set_xticks(range(len(rates)), [f"{v:g}" for v in rates])
ax.set_yticks(range(len(alphas)), [f"{v:.0e}" for v in alphas])
ax.set(
    xlabel="learning_rate",
    ylabel="alpha",
    title="mean cross-validated accuracy",
)
for (i, j), value in np.ndenumerate(table):
    if np.isfinite(value):
        ax.text(
            j,
            i,
            f"{value:.3f}",
            ha="center",
            va="center",
            color="w" if value < np.nanmax(table) - 0.05 else "k",
        )
fig.colorbar(im, ax=ax)
fig.tight_layout()
plt.show()
