# Design: one epoch of minibatch SGD on the dense linear softmax model in one
# call.  Each batch is the fused step of linear_step.pxi (logits, loss and
# gradients of its rows, read in place through their indices) followed by
# the update of softmax_core/_sgd_steps.py `batch_step`, element by element:
#
#   gW += l2 * W                                     (the L2 part of the penalty)
#   gW -= outer(offset, gb); gW *= inv_scale2[:, None]; gb -= offset @ gW
#                                                    (the diagonal preconditioner)
#   v = momentum * v - lr * g; p += momentum * v - lr * g  (Nesterov), or p += v,
#   or p -= lr * g without momentum                  (for W and b alike)
#   W = soft_threshold(W, lr * l1 * inv_scale2[:, None]), the moved amount
#   added to vW and, through offset @ moved, taken from b and vb (elastic net).
#
# In Python each batch cost about 25 us of interpreter and NumPy call overhead
# around the kernel (ten or more small array operations), more than the fused
# step itself at 100 features and batch 256; here the whole epoch runs without
# the GIL.  The arithmetic is the Python step's, in the weights' precision,
# except that the preconditioner's dot product and the prox's intercept shift
# are accumulated in double and the compiler may fuse a multiply and an add:
# the two paths agree to rounding, not to the bit (tests/test_sgd_epoch.py).
# A call returns the sum of its batches' losses in visiting order (double);
# an epoch of several calls adds those sums.
#
# Every batch, and every row index and target of its rows, is checked before
# anything is written (a bad one raises ValueError with the weights
# untouched); batches must lie in [0, n) and hold at least one row.  The
# checks cost a pass over the rows that the batches cover, so an epoch may
# be run in several calls (``_sgd_epoch.py`` does, to stay interruptible).
from libc.math cimport fabs


cdef inline void _sgd_axpy(floating *y, floating a, const floating *x,
                           Py_ssize_t n) noexcept nogil:
    # y += a * x
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = y[i] + a * x[i]


cdef void _sgd_momentum(floating *param, floating *velocity, floating *grad, Py_ssize_t n,
                        floating lr, floating mu, bint nesterov) noexcept nogil:
    # the momentum step of _sgd_steps._momentum_step (velocity NULL: no momentum)
    cdef Py_ssize_t i
    if velocity == NULL:
        _sgd_axpy(param, -lr, grad, n)
        return
    for i in range(n):
        velocity[i] = velocity[i] * mu + (-lr) * grad[i]
    if nesterov:
        _sgd_axpy(param, mu, velocity, n)
        _sgd_axpy(param, -lr, grad, n)
    else:
        _sgd_axpy(param, 1, velocity, n)


cdef void _sgd_precondition(floating *gW, floating *gb, const floating *offset,
                            const floating *inv_scale2, Py_ssize_t K,
                            Py_ssize_t C) noexcept nogil:
    # gW~ = (gW - outer(offset, gb)) * inv_scale2[:, None], gb~ = gb - offset @ gW~
    # (offset only with gb, as in _sgd_steps.NumpyOps.precondition)
    cdef Py_ssize_t k, c
    cdef bint centered = offset != NULL and gb != NULL
    cdef double acc
    for k in range(K):
        if centered:
            for c in range(C):
                gW[k * C + c] = gW[k * C + c] - offset[k] * gb[c]
        if inv_scale2 != NULL:
            for c in range(C):
                gW[k * C + c] = gW[k * C + c] * inv_scale2[k]
    if centered:
        for c in range(C):
            acc = 0.0
            for k in range(K):
                acc += <double>offset[k] * gW[k * C + c]
            gb[c] = <floating>(gb[c] - acc)


cdef void _sgd_soft_threshold(floating *W, floating *vW, floating *b, floating *vb,
                              const floating *offset, const floating *inv_scale2,
                              double threshold, Py_ssize_t K, Py_ssize_t C,
                              double *shift) noexcept nogil:
    # the proximal step of the L1 part (see _sgd_steps.batch_step); shift: C doubles
    cdef Py_ssize_t k, c
    cdef floating t, w, a, moved, new
    cdef bint shifts = offset != NULL and b != NULL
    for c in range(C):
        shift[c] = 0.0
    for k in range(K):
        # as NumPy does it: the scalar lr * l1 in the weights' precision, times 1 / s**2
        t = <floating>threshold
        if inv_scale2 != NULL:
            t = t * inv_scale2[k]
        for c in range(C):
            w = W[k * C + c]
            a = fabs(w) - t
            # NaN weights become 0, as with NumPy's where(shrunk > 0, ...)
            new = (a if w > 0 else -a) if a > 0 else 0
            moved = new - w
            W[k * C + c] = new
            if vW != NULL:
                vW[k * C + c] = vW[k * C + c] + moved
            if shifts:
                shift[c] += <double>offset[k] * moved
    if shifts:
        for c in range(C):
            b[c] = <floating>(b[c] - shift[c])
            if vb != NULL:
                vb[c] = <floating>(vb[c] - shift[c])


def sgd_epoch(const floating[:, ::1] X, const int64_t[::1] rows, const int64_t[::1] target,
              const double[::1] sample_weight, const int64_t[:, ::1] batches,
              floating[:, ::1] W, floating[::1] bias, floating[:, ::1] velocity_W,
              floating[::1] velocity_b, const floating[::1] offset,
              const floating[::1] inv_scale2, double learning_rate, double momentum,
              bint nesterov, double l2, double l1, double label_smoothing, int n_threads):
    """One epoch of minibatch SGD steps on the linear softmax model; returns its summed loss.

    The data are ``n = target.shape[0]`` rows: row ``i`` is ``X[rows[i]]``
    (`rows` (n,) int64, every index in [0, N) for X (N, K)), or ``X[i]``
    where `rows` is None (then N == n).  `target` (n,) int64 in [0, C),
    `sample_weight` (n,) float64 or None.  `batches` (B, 2) int64: the
    ``[start, stop)`` ranges of data rows of the B steps, in the order they
    are taken, each non-empty and within [0, n).

    Each step is that of ``_sgd_steps.batch_step`` with the batch loss
    averaged over its rows: `W` (K, C), `bias` (C,) or None (no intercept),
    the velocities `velocity_W` (K, C) and `velocity_b` (C,) (None without
    momentum, else both given, `velocity_b` None where `bias` is) are updated
    in place; `offset` and `inv_scale2` (K,) or None are the preconditioner
    (`offset` only with `bias`), ``l2`` and ``l1`` the two parts of the
    penalty.  Returns the sum over the steps of each batch's summed
    (weighted) loss before its step, in double.  The updated arrays must
    not overlap each other or the inputs.  A bad batch, or a bad row index
    or target in a batch's rows, raises ValueError before anything is written
    (rows outside every batch are not read).
    """
    cdef Py_ssize_t N = X.shape[0], K = X.shape[1], C = W.shape[1]
    cdef Py_ssize_t n = target.shape[0], B = batches.shape[0]
    cdef Py_ssize_t i, j, start, stop, m, m_max = 0
    cdef bint has_momentum = momentum != 0.0
    cdef bint bad = False
    cdef double total = 0.0
    cdef double *ws = NULL
    cdef double *shift = NULL
    cdef int64_t *bounds
    cdef Py_ssize_t lin, grads, zg, kc
    cdef floating *pz
    cdef floating *pg
    cdef floating *pgw
    cdef floating *pgb = NULL
    cdef const floating *px = &X[0, 0] if N > 0 and K > 0 else NULL
    cdef const int64_t *prows = NULL
    cdef const double *psw = NULL
    cdef const floating *x_b
    cdef const int64_t *rows_b
    cdef const double *sw_b
    cdef Py_ssize_t n_b
    cdef floating *pb = NULL
    cdef floating *pvw = NULL
    cdef floating *pvb = NULL
    cdef const floating *poff = NULL
    cdef const floating *pinv = NULL
    cdef floating lr = <floating>learning_rate
    cdef floating mu = <floating>momentum
    cdef floating l2f = <floating>l2
    cdef _CEParams p
    _require(N > 0 and K > 0 and C > 0 and W.shape[0] == K and batches.shape[1] == 2
             and ((rows is None and n == N) or (rows is not None and rows.shape[0] == n))
             and (sample_weight is None or sample_weight.shape[0] == n)
             and (bias is None or bias.shape[0] == C)
             and ((not has_momentum and velocity_W is None and velocity_b is None)
                  or (has_momentum and velocity_W is not None
                      and velocity_W.shape[0] == K and velocity_W.shape[1] == C
                      and (velocity_b is None) == (bias is None)
                      and (velocity_b is None or velocity_b.shape[0] == C)))
             and (offset is None or (bias is not None and offset.shape[0] == K))
             and (inv_scale2 is None or inv_scale2.shape[0] == K),
             "sgd_epoch needs non-empty X (N, K), W (K, C), n targets with rows (n,) or "
             "n == N, sample_weight (n,) or None, batches (B, 2), bias (C,) or None, "
             "velocities (K, C) and (C,) (or None with bias None) given exactly when "
             "momentum != 0, offset (K,) only with bias, and inv_scale2 (K,) or None")
    # every batch, and the row indices and targets of its rows, before any write
    for j in range(B):
        start, stop = batches[j, 0], batches[j, 1]
        if not 0 <= start < stop <= n:
            raise ValueError(f"softmax_core kernel: batch {j} is [{start}, {stop}), not a "
                             f"non-empty range of the {n} rows")
        m_max = max(m_max, stop - start)
        for i in range(start, stop):
            if rows is not None and not 0 <= rows[i] < N:
                raise ValueError(f"softmax_core kernel: row index {rows[i]} at position {i} "
                                 f"is out of bounds for X with {N} rows")
            if not 0 <= target[i] < C:
                raise ValueError(f"softmax_core kernel: target {target[i]} at row {i} is out "
                                 f"of bounds for {C} classes")
    if B == 0:
        return 0.0
    if rows is not None:
        prows = &rows[0]
    if sample_weight is not None:
        psw = &sample_weight[0]
    if bias is not None:
        pb = &bias[0]
    if velocity_W is not None:
        pvw = &velocity_W[0, 0]
    if velocity_b is not None:
        pvb = &velocity_b[0]
    if offset is not None:
        poff = &offset[0]
    if inv_scale2 is not None:
        pinv = &inv_scale2[0]
    n_threads = <int>max(min(<Py_ssize_t>n_threads, <Py_ssize_t>MAX_TASKS), 1)
    # one cached workspace (no allocation per call): the fused step's, enough for
    # any batch of at most m_max rows (at most MAX_TASKS tasks); then the
    # batch's logits and gradient (m_max, C) each, grad_W (K, C) and grad_b (C,);
    # the prox's shift (C doubles); and a copy of the checked batches, so that
    # the loop reads no range that a step could have overwritten (were
    # `batches` to share memory with an output)
    lin = (_lin_workspace(px, MAX_TASKS, n_threads, K, C, True) + 7) // 8 * 8
    # (each of the four buffers starts on a 64-byte boundary)
    zg = (m_max * C * <Py_ssize_t>sizeof(floating) + 63) // 64 * 8
    kc = (K * C * <Py_ssize_t>sizeof(floating) + 63) // 64 * 8
    grads = 2 * zg + kc + (C * <Py_ssize_t>sizeof(floating) + 63) // 64 * 8
    ws = _workspace(1, lin + grads + (C + 7) // 8 * 8 + 2 * B)
    pz = <floating *>(ws + lin)
    pg = <floating *>(ws + lin + zg)
    pgw = <floating *>(ws + lin + 2 * zg)
    if pb != NULL:
        pgb = <floating *>(ws + lin + 2 * zg + kc)
    shift = ws + lin + grads
    bounds = <int64_t *>(shift + (C + 7) // 8 * 8)
    for j in range(B):
        bounds[2 * j], bounds[2 * j + 1] = batches[j, 0], batches[j, 1]
    with nogil:
        for j in range(B):
            start, stop = bounds[2 * j], bounds[2 * j + 1]
            m = stop - start
            _ce_params(&p, label_smoothing, 1.0 / m, C)
            # the batch: rows prows[start:stop] of X, or the slice X[start:stop]
            x_b, rows_b, n_b, sw_b = px, NULL, N, psw
            if prows != NULL:
                rows_b = prows + start
            else:
                x_b, n_b = px + start * K, m
            if psw != NULL:
                sw_b = psw + start
            total += _linear_ce(x_b, rows_b, n_b, m, K, C, &W[0, 0], pb, &target[start],
                                sw_b, &p, pz, pg, pgw, pgb, n_threads, ws, &bad)
            if bad:
                break
            if l2 > 0:
                _sgd_axpy(pgw, l2f, &W[0, 0], K * C)
            if poff != NULL or pinv != NULL:
                _sgd_precondition(pgw, pgb, poff, pinv, K, C)
            _sgd_momentum(&W[0, 0], pvw, pgw, K * C, lr, mu, nesterov)
            if pb != NULL:
                _sgd_momentum(pb, pvb, pgb, C, lr, mu, nesterov)
            if l1 > 0:
                _sgd_soft_threshold(&W[0, 0], pvw, pb, pvb, poff, pinv,
                                    learning_rate * l1, K, C, shift)
    _release(ws)
    if bad:  # an index checked above changed during the call
        raise ValueError("softmax_core kernel: a row index or target of sgd_epoch changed "
                         "during the call: the updated arrays overlap its inputs")
    return total
