# Design: the loss and gradients of a linear softmax model on one batch, in
# one call: the logits Z = X @ W + b, the fused cross-entropy of
# cross_entropy.pxi on them (loss and G = dloss/dZ), and the gradients
# gW = X.T @ G and gb = sum_r G[r].  It is the dense minibatch step of
# SoftmaxRegression (softmax_core/_sgd_steps.py), where at 10 classes the
# two BLAS products took two thirds of an epoch.
#
# The batch is cut into tasks of a fixed number of rows that depends only on
# the batch size (at most MAX_TASKS tasks of at least MIN_TASK_ROWS rows).
# A task runs all three stages on its rows while they are in cache: the
# forward product (linear_kernels.h), the cross-entropy in sub-blocks of the
# row layouts of cross_entropy.pxi, and the backward product into its own
# partial gradient in the workspace.  After the parallel region the partials
# are added into grad_W in task order, in parallel over rows of grad_W, and
# the task losses in task order: the results have the same bits for any
# thread count.
#
# Semantics are those of cross_entropy_rows with no class weights and no
# ignore_index: every target must be in [0, C) (checked by the kernel, block
# by block, before use; a bad one raises ValueError after the parallel
# region, with the outputs partly written); sample weights (double) and
# label smoothing as there; the gradient is scaled by grad_scale while
# written.  Z and G receive the batch's logits and the gradient with respect
# to them.  The products accumulate in the input precision (like BLAS),
# the loss in double.
from libc.string cimport memset

cdef extern from "linear_kernels.h" nogil:
    void sc_lin_forward_f(const float *X, const int64_t *rows, Py_ssize_t n_rows,
                          Py_ssize_t K, const float *W, Py_ssize_t C, const float *b,
                          float *Z) noexcept
    void sc_lin_forward_d(const double *X, const int64_t *rows, Py_ssize_t n_rows,
                          Py_ssize_t K, const double *W, Py_ssize_t C, const double *b,
                          double *Z) noexcept
    void sc_lin_backward_f(const float *X, const int64_t *rows, Py_ssize_t n_rows,
                           Py_ssize_t K, const float *G, Py_ssize_t C, float *gW,
                           Py_ssize_t ldg, float *gb) noexcept
    void sc_lin_backward_d(const double *X, const int64_t *rows, Py_ssize_t n_rows,
                           Py_ssize_t K, const double *G, Py_ssize_t C, double *gW,
                           Py_ssize_t ldg, double *gb) noexcept
    Py_ssize_t sc_lin_padded_f(Py_ssize_t C) noexcept
    Py_ssize_t sc_lin_padded_d(Py_ssize_t C) noexcept

cdef enum:
    MAX_TASKS = 8  # tasks per batch, at most
    MIN_TASK_ROWS = 64  # rows per task, at least (where the batch has them)
    REDUCE_ROWS = 64  # rows of grad_W per task of the final reduction


cdef inline void _lin_forward(const floating *X, const int64_t *rows, Py_ssize_t n_rows,
                              Py_ssize_t K, const floating *W, Py_ssize_t C,
                              const floating *b, floating *Z) noexcept nogil:
    if floating is float:
        sc_lin_forward_f(X, rows, n_rows, K, W, C, b, Z)
    else:
        sc_lin_forward_d(X, rows, n_rows, K, W, C, b, Z)


cdef inline void _lin_backward(const floating *X, const int64_t *rows, Py_ssize_t n_rows,
                               Py_ssize_t K, const floating *G, Py_ssize_t C, floating *gW,
                               Py_ssize_t ldg, floating *gb) noexcept nogil:
    if floating is float:
        sc_lin_backward_f(X, rows, n_rows, K, G, C, gW, ldg, gb)
    else:
        sc_lin_backward_d(X, rows, n_rows, K, G, C, gW, ldg, gb)


cdef inline void _add_partials(floating *dst, const floating *src, Py_ssize_t n_parts,
                               Py_ssize_t stride, Py_ssize_t n) noexcept nogil:
    # dst[j] = src[j] + src[stride + j] + ... (n_parts terms, in order)
    cdef Py_ssize_t i, j
    for j in range(n):
        dst[j] = src[j]
    for i in range(1, n_parts):
        for j in range(n):
            dst[j] = dst[j] + src[i * stride + j]


cdef inline Py_ssize_t _out_of_range(const int64_t *y, Py_ssize_t n_rows,
                                     Py_ssize_t n) noexcept nogil:
    # how many of y[0:n_rows] are outside [0, n)
    cdef Py_ssize_t r, bad = 0
    for r in range(n_rows):
        bad += (y[r] < 0) | (y[r] >= n)
    return bad


cdef double _lin_task(const floating *px, const int64_t *prows, Py_ssize_t N,
                      const floating *pw, const floating *pb,
                      const int64_t *py, const double *psw, floating *pz, floating *pg,
                      floating *gW, Py_ssize_t ldg, floating *gb, Py_ssize_t r0,
                      Py_ssize_t n_rows, Py_ssize_t M, Py_ssize_t K, Py_ssize_t C,
                      const _CEParams *p,
                      double *ws, bint *bad) noexcept nogil:
    # batch rows r0 .. r0 + n_rows - 1 (rows prows[r] of the N rows of X, or
    # rows r of X where prows is NULL): logits into pz, loss gradient into pg,
    # and X.T @ G (and the column sums of G) added to gW (gb), padded to rows
    # of ldg; returns the rows' summed loss, added in row order
    cdef Py_ssize_t s0, k, ce_rows = max(BLOCK // C, 1)
    cdef bint blocked = _blocked_rows(C, floating is float)
    cdef bint transposed = blocked and _transposed_block(C, floating is float)
    cdef double total = 0.0
    cdef double part
    cdef const floating *x0 = px + r0 * K
    cdef const int64_t *rows = NULL
    if prows != NULL:
        x0 = px
        rows = prows + r0
        if _out_of_range(rows, n_rows, N):
            bad[0] = True
            return 0.0
    if _out_of_range(py + r0, n_rows, C):
        bad[0] = True
        return 0.0
    _lin_forward(x0, rows, n_rows, K, pw, C, pb, pz + r0 * C)
    if not blocked:  # long rows: one group (_ce_group_long) of up to LOG_GROUP_MAX rows
        ce_rows = min(ce_rows, <Py_ssize_t>LOG_GROUP_MAX)
    s0 = r0
    while s0 < r0 + n_rows:
        k = min(ce_rows, r0 + n_rows - s0)
        if not blocked:
            _ce_group_long(pz + s0 * C, NULL if pg == NULL else pg + s0 * C, NULL, py + s0,
                           NULL if psw == NULL else psw + s0, 0, 1, k, C, k, p, &part)
            total += part
        elif transposed:
            total += _ce_rows_transposed(pz, pg, NULL, py, psw, s0, k, C, p, ws)
        else:
            total += _ce_rows_short(pz, pg, NULL, py, psw, s0, k, C, p, ws)
        s0 += k
    if pg != NULL:
        _lin_backward(x0, rows, n_rows, K, pg + r0 * C, C, gW, ldg, gb)
    return total


cdef inline Py_ssize_t _lin_n_tasks(Py_ssize_t M, Py_ssize_t *rows_per_task) noexcept nogil:
    # tasks of a number of rows fixed by M alone, whatever the thread count
    cdef Py_ssize_t n_tasks = max(min(<Py_ssize_t>MAX_TASKS, M // MIN_TASK_ROWS), 1)
    rows_per_task[0] = (M + n_tasks - 1) // n_tasks
    return (M + rows_per_task[0] - 1) // rows_per_task[0]


cdef inline Py_ssize_t _lin_workspace(const floating *like, Py_ssize_t n_tasks, int n_threads,
                                      Py_ssize_t K, Py_ssize_t C, bint with_grad) noexcept nogil:
    # doubles of workspace for a batch of n_tasks tasks on n_threads threads
    # (both already clamped as in _linear_ce): the cross-entropy scratch of each
    # thread, the task losses, then each task's partial gradient (gW, then gb),
    # with rows padded to whole vectors (ldg): the backward product then adds to
    # its rows with plain vector loads and stores (a masked store followed by a
    # load of the next row's overlapping bytes stalls store forwarding: at 10
    # float32 classes the product was 5x slower)
    cdef Py_ssize_t ldg = sc_lin_padded_f(C) if floating is float else sc_lin_padded_d(C)
    cdef Py_ssize_t part = (K + 1) * ldg if with_grad else 0
    return (n_threads * CE_WORKSPACE + (n_tasks + 7) // 8 * 8
            + (n_tasks * part * <Py_ssize_t>sizeof(floating) + 63) // 64 * 8)


cdef double _linear_ce(const floating *px, const int64_t *prows, Py_ssize_t N, Py_ssize_t M,
                       Py_ssize_t K, Py_ssize_t C, const floating *pw, const floating *pb,
                       const int64_t *py, const double *psw, const _CEParams *p,
                       floating *pz, floating *pg, floating *pgw, floating *pgb,
                       int n_threads, double *ws, bint *bad) noexcept nogil:
    # the body of linear_cross_entropy on checked pointers (pg, pgw NULL: the
    # loss only); ws holds at least _lin_workspace(...) doubles for this M and
    # n_threads; sets bad[0] where a row index or target is out of range
    cdef Py_ssize_t n_tasks, rows_per_task, t, r0, k, i, n_reduce, part, ce_doubles, ldg
    cdef double *losses
    cdef floating *parts
    cdef floating *gW_t
    cdef floating *gb_t
    cdef bint parallel
    n_tasks = _lin_n_tasks(M, &rows_per_task)
    # no more threads (and per-thread scratch) than tasks
    n_threads = <int>max(min(<Py_ssize_t>n_threads, n_tasks), 1)
    parallel = n_threads > 1
    ldg = sc_lin_padded_f(C) if floating is float else sc_lin_padded_d(C)
    ce_doubles = n_threads * CE_WORKSPACE
    part = (K + 1) * ldg if pg != NULL else 0  # elements of one partial
    losses = ws + ce_doubles
    parts = <floating *>(losses + (n_tasks + 7) // 8 * 8)
    memset(parts, 0, n_tasks * part * sizeof(floating))
    for t in prange(n_tasks, schedule="static", num_threads=n_threads,
                    use_threads_if=parallel):
        r0 = t * rows_per_task
        k = min(rows_per_task, M - r0)
        gW_t = parts + t * part
        gb_t = NULL if pgb == NULL else gW_t + K * ldg
        losses[t] = _lin_task(px, prows, N, pw, pb, py, psw, pz, pg, gW_t, ldg, gb_t,
                              r0, k, M, K, C, p, ws + threadid() * CE_WORKSPACE, bad)
    # the partials added in task order into grad_W, in parallel over its rows
    n_reduce = (K + REDUCE_ROWS - 1) // REDUCE_ROWS if pg != NULL else 0
    for t in prange(n_reduce, schedule="static", num_threads=n_threads,
                    use_threads_if=parallel and n_reduce > 1):
        r0 = t * REDUCE_ROWS
        k = min(<Py_ssize_t>REDUCE_ROWS, K - r0)
        for i in range(r0, r0 + k):
            _add_partials(pgw + i * C, parts + i * ldg, n_tasks, part, C)
    if pgb != NULL and pg != NULL:
        _add_partials(pgb, parts + K * ldg, n_tasks, part, C)
    return _ordered_sum(losses, n_tasks)


cdef inline void _ce_params(_CEParams *p, double label_smoothing, double grad_scale,
                            Py_ssize_t C) noexcept nogil:
    p.w = NULL
    p.keep = 1.0 - label_smoothing
    p.eps_c = label_smoothing / C
    p.eps_w = p.eps_c * C if p.eps_c != 0.0 else 0.0
    p.grad_scale = grad_scale
    p.ignore_index = -1  # never a target: every one is checked to be in [0, C)


def linear_cross_entropy(const floating[:, ::1] X, const floating[:, ::1] W,
                         const floating[::1] bias, const int64_t[::1] target,
                         const double[::1] sample_weight, double label_smoothing,
                         double grad_scale, floating[:, ::1] logits, floating[:, ::1] grad,
                         floating[:, ::1] grad_W, floating[::1] grad_b, int n_threads,
                         const int64_t[::1] rows=None):
    """Cross-entropy of the linear model ``X @ W + bias`` on a batch, and its gradients.

    X (M, K), or with `rows` (M,) int64 the batch ``X[rows]`` of X (N, K),
    read in place (every index in [0, N), else ValueError; repeats allowed);
    W (K, C), bias (C,) or None, target (M,) int64 in [0, C),
    sample_weight (M,) float64 or None.  Writes the logits into `logits`
    (M, C), ``grad_scale`` times the gradient of the loss with respect to
    them into `grad` (M, C), ``X.T @ grad`` into `grad_W` (K, C) and the
    column sums of `grad` into `grad_b` (C,) (which may be None).  With
    `grad`, `grad_W` and `grad_b` all None only the loss is computed (and
    the logits written).  Returns
    the sum over rows of ``sample_weight * loss`` (double), with the same
    bits for any `n_threads`.  A target outside [0, C) raises ValueError
    (the outputs are then partly written).  The outputs must not overlap
    the inputs or each other.
    """
    cdef Py_ssize_t N = X.shape[0], K = X.shape[1], C = W.shape[1]
    cdef Py_ssize_t M = N if rows is None else rows.shape[0]
    cdef const int64_t *prows = NULL
    cdef Py_ssize_t n_tasks, rows_per_task, i
    cdef double *ws
    cdef const floating *px
    cdef const floating *pb = NULL
    cdef const double *psw = NULL
    cdef floating *pgb = NULL
    cdef floating *pz
    cdef floating *pg
    cdef floating *pgw
    cdef bint bad = False
    cdef double total
    cdef _CEParams p
    _require(M > 0 and N > 0 and K > 0 and C > 0 and W.shape[0] == K
             and target.shape[0] == M
             and (bias is None or bias.shape[0] == C)
             and (sample_weight is None or sample_weight.shape[0] == M)
             and logits.shape[0] == M and logits.shape[1] == C
             and ((grad is None and grad_W is None and grad_b is None)
                  or (grad is not None and grad.shape[0] == M and grad.shape[1] == C
                      and grad_W is not None and grad_W.shape[0] == K
                      and grad_W.shape[1] == C
                      and (grad_b is None or grad_b.shape[0] == C))),
             "linear_cross_entropy needs non-empty X (M, K) (or X (N, K) and rows (M,)), "
             "W (K, C), M targets, logits "
             "(M, C), and bias (C,), sample_weight (M,) or None, and grad (M, C) with "
             "grad_W (K, C) and grad_b (C,) or None, or all three None")
    px = &X[0, 0]
    if rows is not None:
        prows = &rows[0]
    pz = &logits[0, 0]
    pg = NULL
    pgw = NULL
    if grad is not None:
        pg = &grad[0, 0]
        pgw = &grad_W[0, 0]
    if bias is not None:
        pb = &bias[0]
    if sample_weight is not None:
        psw = &sample_weight[0]
    if grad_b is not None:
        pgb = &grad_b[0]
    _ce_params(&p, label_smoothing, grad_scale, C)
    n_tasks = _lin_n_tasks(M, &rows_per_task)
    n_threads = <int>max(min(<Py_ssize_t>n_threads, n_tasks), 1)
    ws = _workspace(1, _lin_workspace(px, n_tasks, n_threads, K, C, pg != NULL))
    with nogil:
        total = _linear_ce(px, prows, N, M, K, C, &W[0, 0], pb, &target[0], psw, &p,
                           pz, pg, pgw, pgb, n_threads, ws, &bad)
    _release(ws)
    if bad:
        if rows is not None:
            for i in range(M):
                if not 0 <= rows[i] < N:
                    raise ValueError(f"softmax_core kernel: row index {rows[i]} at position {i} "
                                     f"is out of bounds for X with {N} rows")
        for i in range(M):
            if not 0 <= target[i] < C:
                raise ValueError(f"softmax_core kernel: target {target[i]} at row {i} is out "
                                 f"of bounds for {C} classes")
    return total
