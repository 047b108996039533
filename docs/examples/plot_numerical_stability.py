"""
===================================================
Numerical stability: naive versus stable softmax
===================================================

The textbook formula ``exp(x) / sum(exp(x))`` overflows for logits above about
709 (88 in float32) and divides ``0 / 0`` for logits below about -745.
:func:`softmax_core.softmax` subtracts the row maximum first (see
:ref:`stability`), which keeps every exponent at or below zero and the
normaliser between 1 and the number of classes.

Here we scale random logits up until the naive formula breaks, and compare
both against a float64 reference.
"""

# %%
# Logits of growing magnitude
# ---------------------------
# 2000 rows of 10 classes, multiplied by a scale from 1 to 3000.
import matplotlib.pyplot as plt
import numpy as np
from scipy.special import softmax as scipy_softmax

from softmax_core import log_softmax, softmax

rng = np.random.default_rng(0)
base = rng.standard_normal((2000, 10))
scales = np.logspace(0, 3.5, 25)


def naive_softmax(x):
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        e = np.exp(x)
        return e / e.sum(axis=-1, keepdims=True)


results = {
    name: {"nan": [], "err": []}
    for name in (
        "naive float32",
        "naive float64",
        "stable float32",
        "stable float64",
    )
}
for scale in scales:
    for dtype in (np.float32, np.float64):
        x = (base * scale).astype(dtype)
        # float64 reference (max-shifted) of exactly these inputs,
        # rounded to dtype or not
        reference = scipy_softmax(x.astype(np.float64), axis=-1)
        for kind, y in (
            ("naive", naive_softmax(x)),
            ("stable", softmax(x)),
        ):
            r = results[f"{kind} {np.dtype(dtype).name}"]
            bad_rows = np.isnan(y).any(axis=-1)
            r["nan"].append(bad_rows.mean())
            # a NaN probability is as wrong as a probability can be:
            # error 1
            error = np.where(np.isnan(y), 1.0, np.abs(y - reference))
            r["err"].append(max(error.max(), 1e-18))

# %%
# The naive formula starts returning NaN rows as soon as some logit leaves the
# range of ``exp``: near a scale of 30 in float32 and 250 in float64 for
# these logits.  The stable version never does, and its error stays at the
# rounding level of the dtype.
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
for name, r in results.items():
    style = "--" if name.startswith("naive") else "-"
    ax0.plot(scales, r["nan"], style, label=name)
    ax1.plot(scales, r["err"], style, marker=".", label=name)
ax0.set(
    xscale="log",
    xlabel="logit scale",
    ylabel="fraction of rows that are NaN",
    title="NaN rows",
)
ax1.set(
    xscale="log",
    yscale="log",
    ylim=(1e-18, 3),
    xlabel="logit scale",
    ylabel="max |error| (NaN counts as 1)",
    title="Error against a float64 reference",
)
ax0.legend()
fig.tight_layout()

for name, r in results.items():
    print(
        f"{name:15s} NaN rows at the largest scale: {r['nan'][-1]:.0%}, "
        f"largest error {max(r['err']):.1e}"
    )

# %%
# ``log_softmax`` versus ``log(softmax)``
# ---------------------------------------
# Even the stable softmax underflows to 0 for a class whose logit is far
# below the maximum, and the logarithm of 0 is ``-inf``.  ``log_softmax``
# never forms that probability, so it stays finite and exact.
z = np.array([[0.0, -10.0, -100.0, -800.0]])
with np.errstate(divide="ignore"):
    print("log(softmax(z)):", np.log(softmax(z)))
print("log_softmax(z): ", log_softmax(z))

gaps = np.linspace(0, 1000, 200)
pair = np.stack([np.zeros_like(gaps), -gaps], axis=1)
with np.errstate(divide="ignore"):
    via_log = np.log(softmax(pair))[:, 1]
direct = log_softmax(pair)[:, 1]
exact = -np.logaddexp(0.0, -gaps) - gaps  # log(exp(-g) / (1 + exp(-g)))

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(gaps, exact, "k", linewidth=4, alpha=0.3, label="exact")
ax.plot(gaps, direct, label="log_softmax")
ax.plot(
    gaps,
    np.where(np.isinf(via_log), np.nan, via_log),
    "--",
    label="log(softmax)",
)
ax.axvline(
    gaps[np.isinf(via_log)].min(),
    color="r",
    linestyle=":",
    label="log(softmax) = -inf from here",
)
ax.set(
    xlabel="gap between the two logits",
    ylabel="log-probability of the smaller one",
)
ax.legend()
fig.tight_layout()
plt.show()
