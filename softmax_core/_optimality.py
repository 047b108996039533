"""How far a fit is from the optimum of its objective: the Newton decrement.

Design: a stopping rule that watches the objective cannot tell a slow descent
(flat directions of a weakly regularized problem) from convergence, so after
``fit`` stops, the estimator checks the end point once.  At coefficients
``theta`` with gradient ``g`` and Hessian ``H`` the quadratic model predicts
that a Newton step lowers the objective by ``g^T H^{-1} g / 2`` (the Newton
decrement; exact for a quadratic, and the gap itself near the optimum).
``H^{-1} g`` comes from conjugate gradients on Hessian-vector products (two
products with ``X`` each), preconditioned as the optimizer is (centering and
``1 / s**2``).  CG's estimates of ``g^T H^{-1} g`` increase with every
iteration, so a truncated run under-estimates the gap: a warning based on it
is never a false alarm of the quadratic model.

The softmax Hessian along ``U = X D_W + d_b`` is ``P * U - P * sum(P * U)``
row by row (``P`` the probabilities), independent of the targets, so label
smoothing changes the gradient only.  The check runs for NumPy input (dense
or CSR) and a smooth penalty (``l1_ratio == 0``).
"""

import numpy as np
import scipy.sparse as sp
from scipy.special import softmax as _softmax

__all__ = ["newton_decrement"]


def newton_decrement(X, y, w, W, b, *, alpha, fit_intercept, label_smoothing, inv_scale2,
                     offset=None, max_iter=100):
    """``g^T H^{-1} g / 2`` at ``(W, b)`` (W of shape (n_features, n_classes)), by PCG.

    The preconditioner is the optimizer's (``offset`` the feature means it
    centers by, ``inv_scale2`` its ``1 / s**2``): symmetric positive definite,
    and on raw, uncentered features far better than the diagonal alone.
    """
    n, K = X.shape[0], W.shape[1]
    if not sp.issparse(X) and X.dtype != np.float64:
        X = X.astype(np.float64)  # once, not in every product
    W, b = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
    omega = np.full(n, 1.0 / n) if w is None else np.asarray(w, dtype=np.float64) / np.sum(w)
    Z = np.asarray(X @ W, dtype=np.float64) + (b if fit_intercept else 0.0)
    P = _softmax(Z, axis=1)
    Y = np.full((n, K), label_smoothing / K)
    Y[np.arange(n), y] += 1.0 - label_smoothing
    G = (P - Y) * omega[:, None]
    g_W = np.asarray(X.T @ G) + alpha * W
    g_b = G.sum(axis=0) if fit_intercept else np.zeros(K)

    def hvp(D_W, d_b):
        U = np.asarray(X @ D_W) + (d_b if fit_intercept else 0.0)
        R = P * U
        R -= P * R.sum(axis=1, keepdims=True)
        R *= omega[:, None]
        return np.asarray(X.T @ R) + alpha * D_W, (R.sum(axis=0) if fit_intercept
                                                   else np.zeros(K))

    m_W = np.ones((W.shape[0], 1)) if inv_scale2 is None else \
        np.asarray(inv_scale2, dtype=np.float64)[:, None]
    mu = None if offset is None or not fit_intercept else np.asarray(offset, np.float64)

    def precondition(r_W, r_b):
        if mu is None:
            return m_W * r_W, r_b.copy()
        z_W = m_W * (r_W - np.multiply.outer(mu, r_b))
        return z_W, r_b - mu @ z_W

    # solve H d = g from d = 0: residual r = g
    r_W, r_b = g_W.copy(), g_b.copy()
    z_W, z_b = precondition(r_W, r_b)
    p_W, p_b = z_W.copy(), z_b.copy()
    d_W, d_b = np.zeros_like(g_W), np.zeros_like(g_b)
    rz = np.sum(r_W * z_W) + np.sum(r_b * z_b)
    g_norm2 = np.sum(g_W * g_W) + np.sum(g_b * g_b)
    if rz <= 0 or not np.isfinite(rz):
        return 0.0
    for _ in range(max_iter):
        q_W, q_b = hvp(p_W, p_b)
        curvature = np.sum(p_W * q_W) + np.sum(p_b * q_b)
        if curvature <= 0 or not np.isfinite(curvature):
            break
        step = rz / curvature
        d_W += step * p_W
        d_b += step * p_b
        r_W -= step * q_W
        r_b -= step * q_b
        if np.sum(r_W * r_W) + np.sum(r_b * r_b) <= 1e-20 * g_norm2:
            break
        z_W, z_b = precondition(r_W, r_b)
        rz_new = np.sum(r_W * z_W) + np.sum(r_b * z_b)
        p_W = z_W + (rz_new / rz) * p_W
        p_b = z_b + (rz_new / rz) * p_b
        rz = rz_new
    return 0.5 * float(np.sum(g_W * d_W) + np.sum(g_b * d_b))
