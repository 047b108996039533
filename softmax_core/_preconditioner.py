"""A fixed diagonal preconditioner from the feature statistics, and the step it allows.

Design: SGD on raw features is as ill-conditioned as the features' scales are
far apart (a feature in the thousands next to one in hundredths), and any
single step size is then either unstable for the first or useless for the
second.  Rather than asking every user to put a ``StandardScaler`` in front,
the optimizer takes its steps in standardized coordinates
``X~ = (X - mu) / s`` (``s**2`` plus twice the L2 penalty, see
`fit_preconditioner`) while it keeps, evaluates and penalises the
coefficients ``W, b`` of the original features.  With ``W = V / s`` and
``b = c - mu @ W`` the objective in ``(V, c)`` is the same function
(an affine change of variables), so its optimum is unchanged; only the path
to it is better conditioned.  The gradient step in ``(V, c)`` mapped back to
``(W, b)`` is a preconditioned step on the ordinary gradient ``(gW, gb)``::

    gW~ = (gW - outer(mu, gb)) / s**2        gb~ = gb - mu @ gW~

(momentum commutes with this fixed linear map, so it runs on ``gW~, gb~``).
Centering needs the intercept to absorb ``mu``; without an intercept, and for
sparse input (whose zeros centering would destroy), ``mu`` is zero.  Sparse
input is not scaled either (``s = 1``): for tf-idf-like data the column scales
of rare terms are tiny, and dividing by them would inflate exactly the rows
that limit the step.  Constant columns keep ``s = 1``.

The step size: the Hessian of the softmax cross-entropy in ``(V, c)`` is
bounded by ``1/2 * A^T diag(w) A / n`` (``A = [X~, 1]``, since
``diag(p) - p p^T <= 1/2 I``) plus the penalty's ``alpha / s**2``.  With
``L`` its largest eigenvalue (a few power iterations on a sample of rows) and
``L_max`` the largest per-sample bound ``1/2 * w_i * (||x~_i||^2 + 1)``, a
minibatch of ``m`` rows drawn without replacement has the expected smoothness
``L(m) = n (m - 1) / (m (n - 1)) L + (n - m) / (m (n - 1)) L_max`` (Gower et
al., 2019), and ``1 / L(m)`` is the classic safe SGD step.
"""

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["Curvature", "Preconditioner", "estimate_curvature", "fit_preconditioner",
           "preconditioner_from_moments"]

# rows sampled for the power iteration, and its iterations
_POWER_ROWS = 4096
_POWER_ITERATIONS = 30
# entries per chunk of rows in the passes over X (the variances, the per-sample
# norms): bounds their scratch memory whatever the width of X; rows per chunk at
# least in other namespaces than NumPy
_CHUNK_ENTRIES = 1 << 16
_CHUNK_ROWS = 8192


@dataclass
class Preconditioner:
    """``offset`` (mu, or None for zero) and ``inv_scale2`` (1/s**2, or None for ones)."""

    offset: object = None  # (n_features,)
    inv_scale2: object = None  # (n_features,)

    @property
    def is_identity(self):
        return self.offset is None and self.inv_scale2 is None

    def inv_scale(self, xp):
        return None if self.inv_scale2 is None else xp.sqrt(self.inv_scale2)


def fit_preconditioner(xp, X, w, fit_intercept, enabled, l2=0.0):
    """The preconditioner of ``X`` (dense: centered and scaled; sparse: identity).

    The scale is ``sqrt(s**2 + 2 * l2)`` rather than the standard deviation
    ``s``: the diagonal of the Hessian bound ``s**2 / 2 + l2`` (Jacobi), so a
    feature of tiny variance cannot make the penalty's curvature ``l2 / s**2``
    dominate the step size of every other direction.
    """
    if not enabled or sp.issparse(X) or X.shape[0] < 2:
        return Preconditioner()
    if w is None:
        mu = xp.mean(X, axis=0)
        var = _chunked_variance(xp, X, mu)
    else:
        total = xp.sum(w)
        mu = (w @ X) / total
        var = _chunked_variance(xp, X, mu, w) / total * X.shape[0]
    return preconditioner_from_moments(xp, mu, var, _np_dtype(X), fit_intercept, l2)


def preconditioner_from_moments(xp, mu, var, dtype, fit_intercept, l2=0.0):
    """The preconditioner of data whose (weighted) column means are ``mu`` and
    variances ``var`` (see `fit_preconditioner`); ``dtype`` is the data's NumPy
    float dtype.  An out-of-core fit gathers the moments block by block."""
    s = xp.sqrt(var)
    # constant (or numerically constant) columns are left as they are
    tiny = 100 * float(np.finfo(dtype).eps) * (1.0 + xp.abs(mu))
    s = xp.where(s > tiny, s, xp.ones_like(s))
    return Preconditioner(offset=mu if fit_intercept else None,
                          inv_scale2=1.0 / (s * s + 2.0 * l2))


def _np_dtype(X):
    return np.float32 if "float32" in str(X.dtype) else np.float64


class _Scratch:
    """Reusable buffers for a chunked pass over NumPy rows.

    ``apply(ufunc, a, b, slot)`` is ``ufunc(a, b)`` written into the buffer
    ``slot`` of its result dtype (which may be ``a`` or ``b`` themselves, an
    elementwise ufunc allows that, but never the caller's data): one
    allocation per slot and dtype for the whole pass.  A fresh array per
    chunk is cheap with glibc's defaults, but where the process sets
    ``MALLOC_TRIM_THRESHOLD_`` (dask's nanny starts every worker with 65536)
    each chunk of a few MB is a fresh ``mmap`` whose pages fault in again.
    """

    def __init__(self):
        self._buffers = {}

    def apply(self, ufunc, a, b, slot):
        dtype = np.result_type(a, b)
        shape = np.broadcast_shapes(a.shape, b.shape)
        key = (slot, dtype.str)
        buf = self._buffers.get(key)
        if buf is None or buf.shape[0] < shape[0] or buf.shape[1:] != shape[1:]:
            buf = self._buffers[key] = np.empty(shape, dtype=dtype)
        return ufunc(a, b, out=buf[:shape[0]])


def _chunks(xp, X):
    """``(start, stop)`` of the chunks of rows of ``X``: ``_CHUNK_ENTRIES`` entries each
    for NumPy (reused scratch), at least ``_CHUNK_ROWS`` rows for other namespaces
    (fresh arrays each, and every operation a kernel launch on a GPU)."""
    n, d = X.shape[0], max(X.shape[1], 1)
    step = max(1, _CHUNK_ENTRIES // d) if xp is np else max(_CHUNK_ROWS, _CHUNK_ENTRIES // d)
    return ((start, min(start + step, n)) for start in range(0, n, step))


def _chunked_variance(xp, X, mu, w=None):
    """Mean (or with ``w``: weighted sum / n) of squared deviations per column, by chunks."""
    acc = None
    scratch = _Scratch() if xp is np else None
    for start, stop in _chunks(xp, X):
        if scratch is None:
            D = X[start:stop, ...] - mu
            part = (D * D) if w is None else (D * D) * w[start:stop, None]
        else:
            D = scratch.apply(np.subtract, X[start:stop], mu, 0)
            part = scratch.apply(np.multiply, D, D, 0)
            if w is not None:
                part = scratch.apply(np.multiply, part, w[start:stop, None], 0)
        part = xp.sum(part, axis=0)
        acc = part if acc is None else acc + part
    return acc / X.shape[0]


def _standardized(xp, X, pre, own=False):
    """``(X - mu) / s`` as a dense array (for a sample of rows), or X itself.

    ``own``: ``X`` is a NumPy array of the caller's own (a sample of rows),
    standardized in place where the dtypes allow it."""
    if sp.issparse(X):
        return X
    inv_scale = pre.inv_scale(xp)
    parts = [p for p in (pre.offset, inv_scale) if p is not None]
    if own and xp is np and all(np.result_type(X, p) == X.dtype for p in parts):
        if pre.offset is not None:
            np.subtract(X, pre.offset, out=X)
        if inv_scale is not None:
            np.multiply(X, inv_scale, out=X)
        return X
    if pre.offset is not None:
        X = X - pre.offset
    if inv_scale is not None:
        X = X * inv_scale
    return X


def _row_norms2(xp, X, pre):
    """Squared norms of the standardized rows, chunk by chunk."""
    if sp.issparse(X):
        return np.asarray(X.multiply(X).sum(axis=1)).ravel()
    if xp is not np:
        parts = []
        for start, stop in _chunks(xp, X):
            A = _standardized(xp, X[start:stop, ...], pre)
            parts.append(xp.sum(A * A, axis=1))
        return parts[0] if len(parts) == 1 else xp.concat(parts)
    scratch, norms = _Scratch(), None
    inv_scale = pre.inv_scale(np)
    for start, stop in _chunks(np, X):
        A = X[start:stop]
        if pre.offset is not None:
            A = scratch.apply(np.subtract, A, pre.offset, 0)
        if inv_scale is not None:
            A = scratch.apply(np.multiply, A, inv_scale, 0)
        A = scratch.apply(np.multiply, A, A, 0)
        if norms is None:
            norms = np.empty(X.shape[0], dtype=A.dtype)
        np.sum(A, axis=1, out=norms[start:stop])
    return norms if norms is not None else np.zeros(0, dtype=X.dtype)


def _top_eigenvalue(xp, A, w, fit_intercept, rng):
    """Largest eigenvalue of ``[A, 1]^T diag(w) [A, 1] / m`` by power iteration."""
    m, d = A.shape
    v = rng.standard_normal(d + 1)
    v /= np.linalg.norm(v)
    if xp is not np:
        v = xp.asarray(v, dtype=A.dtype, device=_device(A))
    else:
        v = v.astype(A.dtype)
    lam = 0.0
    for _ in range(_POWER_ITERATIONS):
        u = A @ v[:d]
        if fit_intercept:
            u = u + v[d]
        if w is not None:
            u = u * w
        z_head = A.T @ u / m
        z_tail = xp.sum(u) / m if fit_intercept else 0.0 * xp.sum(u)
        z = xp.concat([xp.reshape(xp.asarray(z_head), (-1,)), xp.reshape(z_tail, (1,))])
        norm = float(xp.sqrt(xp.sum(z * z)))
        if norm == 0.0 or not math.isfinite(norm):
            return norm
        previous, lam = lam, norm
        v = z / norm
        if abs(lam - previous) <= 1e-3 * lam:
            break
    return lam


@dataclass
class Curvature:
    """Smoothness constants of the objective in the preconditioned coordinates."""

    L: float  # of the mean loss (largest eigenvalue of the Hessian bound)
    L_max: float  # of the worst single sample
    penalty: float  # of the L2 penalty
    n_samples: int

    def step(self, batch_size):
        """``1 / L(m)``, the expected-smoothness step for batches of ``m`` rows."""
        n, m = self.n_samples, min(batch_size, self.n_samples)
        if n > 1:
            L_m = (n * (m - 1)) / (m * (n - 1)) * self.L + (n - m) / (m * (n - 1)) * self.L_max
        else:
            L_m = self.L_max
        L_m += self.penalty
        return 1.0 / L_m if L_m > 0 and math.isfinite(L_m) else 1.0


def estimate_curvature(xp, X, w, pre, alpha, fit_intercept, rng):
    """The `Curvature` of the (weighted) softmax cross-entropy of ``X`` (see the module doc)."""
    n = X.shape[0]
    norms = _row_norms2(xp, X, pre) + (1.0 if fit_intercept else 0.0)
    if w is not None:
        norms = norms * w
    L_max = 0.5 * float(xp.max(norms))
    rows = rng.choice(n, size=_POWER_ROWS, replace=False) if n > _POWER_ROWS else None
    if rows is None:
        sample, w_sample = X, w
    else:
        rows = np.sort(rows)
        if sp.issparse(X):
            sample = X[rows]
        else:
            idx = rows if xp is np else xp.asarray(rows, device=_device(X))
            sample = xp.take(X, idx, axis=0)
        w_sample = None if w is None else (w[rows] if xp is np else xp.take(w, idx, axis=0))
    # a sample of rows is this call's own copy: standardized in place
    A = _standardized(xp, sample, pre, own=rows is not None)
    L = 0.5 * _top_eigenvalue(xp, A, w_sample, fit_intercept, rng)
    L = min(max(L, 0.0), L_max)  # the mean never exceeds the largest term
    penalty = alpha * (1.0 if pre.inv_scale2 is None else float(xp.max(pre.inv_scale2)))
    return Curvature(L=L, L_max=L_max, penalty=penalty, n_samples=n)


def _device(a):
    from sklearn.utils._array_api import device

    return device(a)
