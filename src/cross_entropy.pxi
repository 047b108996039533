# Design: fused cross-entropy loss and its gradient with respect to the logits,
# for a C-contiguous (M, C) array of logits and int64 class indices, with
# torch's semantics (class weights, ignore_index, label smoothing).
#
# The Python layer (softmax_core/_losses_numpy.py) moves the class axis of
# (N, C, d1, ...) input last and merges the rest into M rows, checks every
# target (each is in [0, C) or equals ignore_index, with a message naming
# the value) and every shape, and computes the "mean" denominator
# (`target_weight_sum`).  The kernels check again what they index with,
# since they can be called directly: every shape at entry, and every target
# of a block just before the block uses it (`_bad_targets`, on data already
# in cache); a bad one skips its block and raises ValueError after the
# parallel region.
#
# Reductions are reproducible: the rows are cut into tasks of a fixed number
# of rows (BLOCK elements, at least one row), each task sums its own rows in
# order into its slot of `partial`, and the slots are added in task order
# (`_ordered_sum`), so the total has the same bits for any thread count.
#
# For one row with max m, s = sum_j exp(x_j - m), eps = label_smoothing,
# weights w (all ones without `weight`), W = sum_j w_j and target y:
#   loss = (1 - eps) w_y (log s - (x_y - m))
#          + eps/C (W log s - sum_j w_j (x_j - m))
#   grad_j = a (p_j ((1 - eps) w_y + eps W / C) - (1 - eps) w_y [j == y]
#               - eps w_j / C),     p_j = exp(x_j - m) / s,
# where a is the row's sample weight times `grad_scale` (1 / denominator for
# "mean", 1 otherwise, NaN for a 0/0 mean as torch).  The loss is always
# logsumexp(x) - x_y with x - m formed first, never log(softmax(x)), so
# logits of +-1e4 give exact, finite results; it is accumulated in double.
# W enters only through eps/C * W and is taken as exactly 0 without
# smoothing, so an inf or NaN weight of a class that no target uses leaves
# the loss finite, as in torch.  Ignored rows get loss 0 and a zero gradient.  A NaN logit makes its own
# row's loss and gradient NaN (exp(NaN - m) poisons s), as torch.
#
# Each row is read once from memory: the gradient buffer receives exp(x - m)
# (the softmax numerator) and is then rescaled and its target entry corrected
# while it is in cache.  The layouts follow softmax.pxi (whose BLOCK,
# `_blocked_rows` and `_transposed_block` are used here; setup.py includes it
# first):
# * long rows (C > 64, in float32 C > 128): row by row (max; exp and sum;
#   scale), in groups of whole tasks of at least LOG_GROUP rows
#   (`_ce_group_long`): each row's sum is kept and the logs of a group's sums
#   are one vector call after its last row, then its losses (the loss needs
#   nothing else of the row but x_y - m and, with smoothing, one sum taken
#   while the row is in cache).  A scalar `log` per row cost 4-5% of a
#   (4096, 1000) float32 call.  The tasks and their partial sums stay as they
#   are, so the totals add the same values in the same order (float64 losses
#   may differ in the last bit from the scalar log's);
# * short rows: a task takes a block of about BLOCK elements.  Rows shorter
#   than 16 (e.g. 10 classes; float32 also 17..23) are transposed into a local
#   (C, rows) buffer (read in source order, so the prefetcher follows the
#   logits) and computed with column kernels, vectorized across rows: even
#   the target logit is picked, and the target entry of the gradient
#   corrected, column by column with a select on each row's target class,
#   and the per-row factors are one branch-free loop (`sc_ce_factors`);
#   ignored rows are patched afterwards (the C loops are in
#   cross_entropy_kernels.h).  The other short rows (up to 64 classes, 128
#   in float32) run per-row loops and one flat exp over the block.  In both,
#   the logs of the row sums are one vectorized call per block
#   (`_log_inplace`), not a scalar log per row, which would cost more than
#   the rest of a 10-class row.  Their scratch arrays live in a per-thread
#   heap workspace allocated before the parallel region (not on the stack),
#   so the kernel also runs in threads with small stacks.
from libc.stdint cimport int32_t, int64_t
from libc.math cimport signbit
from libc.string cimport memset

cdef extern from "cross_entropy_kernels.h":
    void sc_ce_pick_f(float *xy, const float *col, const int32_t *yi, int32_t j,
                      Py_ssize_t n) noexcept nogil
    void sc_ce_pick_d(double *xy, const double *col, const int32_t *yi, int32_t j,
                      Py_ssize_t n) noexcept nogil
    void sc_ce_grad_col_f(float *col, const float *c, const float *b, float wj,
                          const float *d, const int32_t *yi, int32_t j,
                          Py_ssize_t n) noexcept nogil
    void sc_ce_grad_col_d(double *col, const double *c, const double *b, double wj,
                          const double *d, const int32_t *yi, int32_t j,
                          Py_ssize_t n) noexcept nogil
    void sc_ce_index_range(const int64_t *x, Py_ssize_t n, int64_t *lo,
                           int64_t *hi) noexcept nogil
    void sc_ce_factors_f(const double *s, const double *ls, double *acc, const float *xy,
                         const float *m, const int32_t *yi, const double *w,
                         const double *sw, double keep, double eps_c, double eps_w,
                         double grad_scale, float *c, float *b, float *d,
                         Py_ssize_t n) noexcept nogil
    void sc_ce_factors_d(const double *s, const double *ls, double *acc, const double *xy,
                         const double *m, const int32_t *yi, const double *w,
                         const double *sw, double keep, double eps_c, double eps_w,
                         double grad_scale, double *c, double *b, double *d,
                         Py_ssize_t n) noexcept nogil


cdef inline void _pick(floating *xy, const floating *col, const int32_t *yi, int32_t j,
                       Py_ssize_t n) noexcept nogil:
    if floating is float:
        sc_ce_pick_f(xy, col, yi, j, n)
    else:
        sc_ce_pick_d(xy, col, yi, j, n)


cdef inline void _grad_col(floating *col, const floating *c, const floating *b, floating wj,
                           const floating *d, const int32_t *yi, int32_t j,
                           Py_ssize_t n) noexcept nogil:
    if floating is float:
        sc_ce_grad_col_f(col, c, b, wj, d, yi, j, n)
    else:
        sc_ce_grad_col_d(col, c, b, wj, d, yi, j, n)


cdef enum:
    CE_WORKSPACE = 10 * BLOCK  # doubles of scratch per thread for the blocked paths
    LOG_GROUP = 8  # long rows at least whose row sums' logs are one vector call
    LOG_GROUP_MAX = 32  # the most rows a group of long-row tasks can hold


cdef struct _CEParams:
    const double *w  # class weights, NULL for all ones
    double keep  # 1 - label_smoothing
    double eps_c  # label_smoothing / C
    double eps_w  # eps_c * (sum of the class weights), exactly 0 without smoothing
    double grad_scale  # 1 / denominator for "mean", else 1
    int64_t ignore_index


cdef inline double _ce_smooth_sum(const floating *x, Py_ssize_t n, floating m,
                                  const _CEParams *p) noexcept nogil:
    # sum_j w_j (x_j - m), the smoothing term's sum; 0 without smoothing
    cdef double acc = 0.0
    cdef Py_ssize_t j
    if p.eps_c != 0.0:
        if p.w != NULL:
            for j in range(n):
                acc += p.w[j] * (<double>x[j] - <double>m)
        else:
            acc = _sum(x, n) - n * <double>m
    return acc


cdef inline double _ce_loss_kw(double log_s, double d, double acc, double kw,
                               const _CEParams *p) noexcept nogil:
    # unweighted-by-sample loss of one row from log(sum(exp(x - m))), d = x_y - m,
    # the smoothing sum `acc` (_ce_smooth_sum) and kw = keep * (the target's
    # class weight)
    cdef double loss = kw * (log_s - d)
    if p.eps_c != 0.0:
        loss += p.eps_w * log_s - p.eps_c * acc
    return loss


cdef inline double _ce_loss(const floating *x, Py_ssize_t n, int64_t y, floating m,
                            double log_s, const _CEParams *p) noexcept nogil:
    # unweighted-by-sample loss of one row, from its max and log(sum(exp(x - m)))
    return _ce_loss_kw(log_s, <double>x[y] - <double>m, _ce_smooth_sum(x, n, m, p),
                       p.keep * (p.w[y] if p.w != NULL else 1.0), p)


cdef inline void _ce_grad_kw(floating *g, Py_ssize_t n, int64_t y, double s, double a,
                             double kw, const _CEParams *p) noexcept nogil:
    # _ce_grad with kw = keep * w_y computed (and rounded) by the caller
    cdef double wy = p.w[y] if p.w != NULL else 1.0
    cdef floating c = <floating>(a * (kw + p.eps_w) / s)
    cdef floating b = <floating>(a * p.eps_c)
    cdef Py_ssize_t j
    if p.w != NULL and p.eps_c != 0.0:
        for j in range(n):
            g[j] = g[j] * c - b * <floating>p.w[j]
    elif b == 0 and not signbit(b):  # g * c - (+0) is g * c, in every case
        _scale(g, c, g, n)
    else:
        for j in range(n):
            g[j] = g[j] * c - b
    g[y] -= <floating>(a * p.keep * wy)


cdef inline void _ce_grad(floating *g, Py_ssize_t n, int64_t y, double s, double a,
                          const _CEParams *p) noexcept nogil:
    # g holds exp(x - m) on entry and the gradient on exit; a = sample weight * scale
    _ce_grad_kw(g, n, y, s, a, p.keep * (p.w[y] if p.w != NULL else 1.0), p)


cdef inline Py_ssize_t _tasks_per_log_group(Py_ssize_t rows_per_task) noexcept nogil:
    # tasks of long rows taken together, so that a group holds at least LOG_GROUP
    # rows (at most LOG_GROUP_MAX: float64 rows of 65 make tasks of 31 rows)
    return (LOG_GROUP + rows_per_task - 1) // rows_per_task


cdef Py_ssize_t _ce_group_long(const floating *px, floating *pg, floating *pl,
                               const int64_t *py, const double *psw, Py_ssize_t t0,
                               Py_ssize_t t1, Py_ssize_t rows_per_task, Py_ssize_t n,
                               Py_ssize_t outer, const _CEParams *p,
                               double *partial) noexcept nogil:
    # tasks t0 .. t1 - 1 of long rows (rows t0 * rows_per_task up to the end of
    # task t1 - 1 or of `outer`), checked first (_bad_targets: returns 1 and
    # writes nothing if a target is bad).  Each row in turn: max; exp and sum
    # (into the gradient, with `g` NULL without one), the next row prefetched;
    # the gradient and the loss's other terms while the row is in cache.  Then
    # the logs of the group's row sums in one vector call, and the losses:
    # partial[t] = sum of sw * loss over task t's rows, added in row order.
    cdef double s[LOG_GROUP_MAX]
    cdef double d[LOG_GROUP_MAX]
    cdef double acc[LOG_GROUP_MAX]
    cdef double kw[LOG_GROUP_MAX]
    cdef Py_ssize_t r0 = t0 * rows_per_task
    cdef Py_ssize_t r1 = min(t1 * rows_per_task, outer)
    cdef Py_ssize_t r, t, i
    cdef const floating *x
    cdef floating *g = NULL
    cdef floating m
    cdef int64_t y
    cdef double loss, total
    if _bad_targets(py + r0, r1 - r0, n, p.ignore_index):
        for t in range(t0, t1):
            partial[t] = 0.0
        return 1
    for r in range(r0, r1):
        i = r - r0
        y = py[r]
        if pg != NULL:
            g = pg + r * n
        if y == p.ignore_index:
            if g != NULL:
                memset(g, 0, n * sizeof(floating))
            s[i] = 1.0  # its loss is 0 whatever the logits
            continue
        x = px + r * n
        m = _max(x, n)
        # keep * w_y, one rounded product stored for the loss and passed to the
        # gradient (so never fused into an FMA with + eps_w): the same bits as
        # the row-at-a-time kernel had
        kw[i] = p.keep * (p.w[y] if p.w != NULL else 1.0)
        if g != NULL:
            s[i] = _exp_shift_sum_pf(x, m, g, n, _next_row(px, r, outer, n))
            _ce_grad_kw(g, n, y, s[i], (1.0 if psw == NULL else psw[r]) * p.grad_scale,
                        kw[i], p)
        else:
            s[i] = _sum_exp_shift_pf(x, m, n, _next_row(px, r, outer, n))
        d[i] = <double>x[y] - <double>m
        acc[i] = _ce_smooth_sum(x, n, m, p)
    _log_inplace(s, r1 - r0)
    for t in range(t0, t1):
        total = 0.0
        for r in range(t * rows_per_task, min((t + 1) * rows_per_task, outer)):
            i = r - r0
            y = py[r]
            if y == p.ignore_index:
                loss = 0.0
            else:
                loss = (1.0 if psw == NULL else psw[r]) * _ce_loss_kw(s[i], d[i], acc[i],
                                                                      kw[i], p)
            if pl != NULL:
                pl[r] = <floating>loss
            total += loss
        partial[t] = total
    return 0


cdef double _ce_rows_short(const floating *px, floating *pg, floating *pl,
                           const int64_t *py, const double *psw, Py_ssize_t r0,
                           Py_ssize_t n_rows, Py_ssize_t n,
                           const _CEParams *p, double *ws) noexcept nogil:
    # rows r0 .. r0 + n_rows - 1 of length n, n_rows * n <= BLOCK; pg, pl and
    # psw may be NULL; ws is this thread's workspace (CE_WORKSPACE doubles).
    # Returns the sum of sw * loss over the block.
    cdef double *sums = ws
    cdef double *logs = ws + BLOCK
    cdef floating *buf = <floating *>(ws + 2 * BLOCK)
    cdef floating *m = <floating *>(ws + 3 * BLOCK)
    cdef const floating *x = px + r0 * n
    cdef const int64_t *y = py + r0
    cdef const double *sw = NULL
    cdef floating *g = NULL
    cdef floating *losses = NULL
    cdef floating *e = buf
    cdef Py_ssize_t r
    cdef double loss, wr, total = 0.0
    if pg != NULL:
        g = pg + r0 * n
        e = g
    if pl != NULL:
        losses = pl + r0
    if psw != NULL:
        sw = psw + r0
    for r in range(n_rows):
        m[r] = _max(x + r * n, n)
        _sub2(x + r * n, m[r], 0, e + r * n, n)
    _exp_inplace(e, n_rows * n)
    for r in range(n_rows):
        sums[r] = _sum(e + r * n, n)
        logs[r] = sums[r]
    _log_inplace(logs, n_rows)
    for r in range(n_rows):
        if y[r] == p.ignore_index:
            if g != NULL:
                memset(g + r * n, 0, n * sizeof(floating))
            loss = 0.0
        else:
            wr = sw[r] if sw != NULL else 1.0
            loss = wr * _ce_loss(x + r * n, n, y[r], m[r], logs[r], p)
            if g != NULL:
                _ce_grad(g + r * n, n, y[r], sums[r], wr * p.grad_scale, p)
        if losses != NULL:
            losses[r] = <floating>loss
        total += loss
    return total


cdef double _ce_rows_transposed(const floating *px, floating *pg, floating *pl,
                                const int64_t *py, const double *psw, Py_ssize_t r0,
                                Py_ssize_t n_rows, Py_ssize_t n,
                                const _CEParams *p, double *ws) noexcept nogil:
    # rows r0 .. r0 + n_rows - 1 of length n (`_transposed_block`), n_rows * n <=
    # BLOCK, computed in a local (n, n_rows) transposed copy with column
    # kernels that vectorize across rows: the target logits are picked and
    # the target entries of the gradient corrected column by column, and the
    # per-row loss and gradient factors are one branch-free loop.  Ignored
    # rows are fixed up at the end.  Same contract as _ce_rows_short.
    cdef double *s = ws
    cdef double *ls = ws + BLOCK
    cdef double *acc = ws + 2 * BLOCK
    cdef floating *t = <floating *>(ws + 3 * BLOCK)
    cdef floating *m = <floating *>(ws + 4 * BLOCK)
    cdef floating *c = <floating *>(ws + 5 * BLOCK)
    cdef floating *b = <floating *>(ws + 6 * BLOCK)
    cdef floating *d = <floating *>(ws + 7 * BLOCK)
    cdef floating *xy = <floating *>(ws + 8 * BLOCK)
    cdef int32_t *yi = <int32_t *>(ws + 9 * BLOCK)
    cdef const int64_t *y = py + r0
    cdef floating *g = NULL
    cdef floating *col
    cdef Py_ssize_t r, j, k = n_rows
    cdef const double *sw = NULL
    cdef bint any_ignored = False
    cdef double wj
    if pg != NULL:
        g = pg + r0 * n
    _transpose_in(px + r0 * n, t, k, n)
    for r in range(k):
        yi[r] = -1 if y[r] == p.ignore_index else <int32_t>y[r]
        any_ignored |= yi[r] < 0
        m[r] = -INFINITY
        s[r] = 0.0
        acc[r] = 0.0
        xy[r] = 0
    for j in range(n):
        _vmax(m, t + j * k, k)
    for j in range(n):
        _pick(xy, t + j * k, yi, <int32_t>j, k)
    if p.eps_c != 0.0:  # sum_j w_j (x_j - m), for the smoothing term
        for j in range(n):
            wj = p.w[j] if p.w != NULL else 1.0
            col = t + j * k
            for r in range(k):
                acc[r] += wj * (<double>col[r] - <double>m[r])
    for j in range(n):
        _vexp_shift_acc(t + j * k, m, NULL if g == NULL else t + j * k, s, k)
    for r in range(k):
        ls[r] = s[r]
    _log_inplace(ls, k)
    if psw != NULL:
        sw = psw + r0
    if floating is float:
        sc_ce_factors_f(s, ls, acc, xy, m, yi, p.w, sw, p.keep, p.eps_c, p.eps_w,
                        p.grad_scale, c, b, d, k)
    else:
        sc_ce_factors_d(s, ls, acc, xy, m, yi, p.w, sw, p.keep, p.eps_c, p.eps_w,
                        p.grad_scale, c, b, d, k)
    if any_ignored:
        for r in range(k):
            if yi[r] < 0:
                acc[r] = 0.0  # even when the row's logits are NaN
    if pl != NULL:
        for r in range(k):
            pl[r0 + r] = <floating>acc[r]
    if g != NULL:
        for j in range(n):
            _grad_col(t + j * k, c, b if p.eps_c != 0.0 else NULL,
                      <floating>(p.w[j] if p.w != NULL else 1.0), d, yi, <int32_t>j, k)
        _transpose(t, g, n, k)
        if any_ignored:
            for r in range(k):
                if yi[r] < 0:  # zero even when the row's logits are NaN
                    memset(g + r * n, 0, n * sizeof(floating))
    return sc_sum_d(acc, k)


cdef inline Py_ssize_t _bad_targets(const int64_t *y, Py_ssize_t n_rows, Py_ssize_t n,
                                    int64_t ignore_index) noexcept nogil:
    # how many of y[0:n_rows] are neither in [0, n) nor ignore_index: checked
    # by the kernel itself, block by block just before the block is used (the
    # targets are then in cache), so that no call can index out of bounds
    cdef Py_ssize_t r, bad = 0
    for r in range(n_rows):
        bad += (y[r] != ignore_index) & ((y[r] < 0) | (y[r] >= n))
    return bad


cdef inline double _ordered_sum(const double *partial, Py_ssize_t n) noexcept nogil:
    # the tasks' partial sums added in task order, never in thread order: with
    # tasks of a fixed size the total is bitwise the same for any thread count
    cdef double total = 0.0
    cdef Py_ssize_t t
    for t in range(n):
        total += partial[t]
    return total


def cross_entropy_rows(const floating[:, ::1] x, const int64_t[::1] target,
                       const double[::1] weight, const double[::1] sample_weight,
                       double label_smoothing, int64_t ignore_index, double grad_scale,
                       floating[:, ::1] grad, floating[::1] losses, int n_threads):
    """Cross-entropy of the rows of a non-empty C-contiguous (M, C) array.

    Returns the sum over rows of ``sample_weight * loss`` (double), added
    in a fixed order (the same bits for any `n_threads`).  `weight` (C,),
    `sample_weight` (M,), `grad` (M, C) and `losses` (M,) may be None; the
    gradient is scaled by ``sample_weight * grad_scale``.  Every target must
    be in [0, C) or equal `ignore_index`: the kernel checks each one before
    it uses it and raises ``ValueError`` otherwise (`grad` and `losses` are
    then partly written).
    """
    cdef Py_ssize_t n_rows = x.shape[0], n = x.shape[1]
    cdef Py_ssize_t t, r0, k, rows_per_task, n_tasks, j, group, n_groups, bad = 0
    cdef double *pws = NULL
    cdef double *partial
    cdef const floating *px
    cdef const int64_t *py
    cdef const double *psw = NULL
    cdef floating *pg = NULL
    cdef floating *pl = NULL
    cdef double total, w_sum
    cdef bint parallel = n_threads > 1
    cdef bint blocked, transposed
    cdef _CEParams p
    _require(n_rows > 0 and n > 0 and target.shape[0] == n_rows
             and (weight is None or weight.shape[0] == n)
             and (sample_weight is None or sample_weight.shape[0] == n_rows)
             and (grad is None or (grad.shape[0] == n_rows and grad.shape[1] == n))
             and (losses is None or losses.shape[0] == n_rows),
             "cross_entropy_rows needs non-empty (M, C) logits, M targets, and "
             "weight (C,), sample_weight (M,), grad (M, C), losses (M,) or None")
    px = &x[0, 0]
    py = &target[0]
    p.w = NULL
    w_sum = n
    if weight is not None:
        p.w = &weight[0]
        w_sum = 0.0
        for j in range(n):
            w_sum += weight[j]
    p.keep = 1.0 - label_smoothing
    p.eps_c = label_smoothing / n
    # without smoothing the weight sum never enters (an inf weight of a class
    # no target uses must not turn 0 * inf into NaN, as torch)
    p.eps_w = p.eps_c * w_sum if p.eps_c != 0.0 else 0.0
    p.grad_scale = grad_scale
    p.ignore_index = ignore_index
    if sample_weight is not None:
        psw = &sample_weight[0]
    if grad is not None:
        pg = &grad[0, 0]
    if losses is not None:
        pl = &losses[0]
    blocked = _blocked_rows(n, floating is float)
    transposed = blocked and _transposed_block(n, floating is float)
    # tasks of a fixed number of rows, whatever the thread count
    rows_per_task = max(BLOCK // n, 1)
    n_tasks = (n_rows + rows_per_task - 1) // rows_per_task
    # long rows: groups of whole tasks, for the vector log (_ce_group_long)
    group = _tasks_per_log_group(rows_per_task)
    n_groups = (n_tasks + group - 1) // group
    _require(blocked or group * rows_per_task <= LOG_GROUP_MAX,
             "cross_entropy_rows: a group of long rows exceeds LOG_GROUP_MAX")
    if blocked:
        pws = _workspace(n_threads, CE_WORKSPACE)
    partial = <double *>malloc(n_tasks * sizeof(double))
    if partial == NULL:
        _release(pws)
        raise MemoryError("softmax_core: cannot allocate the kernel's partial sums")
    with nogil:
        if not blocked:
            for t in prange(n_groups, schedule="static", num_threads=n_threads,
                            use_threads_if=parallel):
                bad += _ce_group_long(px, pg, pl, py, psw, t * group,
                                      min((t + 1) * group, n_tasks), rows_per_task, n,
                                      n_rows, &p, partial)
        else:
            for t in prange(n_tasks, schedule="static", num_threads=n_threads,
                            use_threads_if=parallel):
                r0 = t * rows_per_task
                k = min(rows_per_task, n_rows - r0)
                partial[t] = 0.0
                if _bad_targets(py + r0, k, n, ignore_index):
                    bad += 1
                elif transposed:
                    partial[t] = _ce_rows_transposed(px, pg, pl, py, psw, r0, k, n, &p,
                                                     pws + threadid() * CE_WORKSPACE)
                else:
                    partial[t] = _ce_rows_short(px, pg, pl, py, psw, r0, k, n, &p,
                                                pws + threadid() * CE_WORKSPACE)
        total = _ordered_sum(partial, n_tasks)
    _release(pws)
    free(partial)
    if bad:
        _raise_bad_target(target, n, ignore_index)
    return total


cdef int _raise_bad_target(const int64_t[::1] target, Py_ssize_t n,
                           int64_t ignore_index) except -1:
    # the first target outside [0, n) that is not ignore_index, named
    cdef Py_ssize_t i
    for i in range(target.shape[0]):
        if target[i] != ignore_index and not 0 <= target[i] < n:
            raise ValueError(f"softmax_core kernel: target {target[i]} at row {i} is out "
                             f"of bounds for {n} classes (ignore_index={ignore_index})")
    return 0


cdef inline double _weight_sum_block(const int64_t *py, const double *pw, const double *psw,
                                     Py_ssize_t r0, Py_ssize_t r1,
                                     int64_t ignore_index) noexcept nogil:
    # sum of w[y] * sw over rows r0 .. r1 - 1 that are not ignored, in order
    cdef double acc = 0.0
    cdef Py_ssize_t i
    for i in range(r0, r1):
        if py[i] != ignore_index:
            acc += (1.0 if pw == NULL else pw[py[i]]) * (1.0 if psw == NULL else psw[i])
    return acc


def target_weight_sum(const int64_t[::1] target, const double[::1] weight,
                      const double[::1] sample_weight, int64_t ignore_index,
                      int n_threads):
    """Sum of ``weight[y] * sample_weight`` over targets y != ignore_index:
    the denominator of a "mean" cross-entropy (weight/sample_weight may be
    None for all ones), added in a fixed order (the same bits for any
    `n_threads`).  With `weight`, every target must be in [0, len(weight))
    or equal `ignore_index`, else ``ValueError``."""
    cdef Py_ssize_t t, r0, r1, n_tasks, n_rows = target.shape[0], bad = 0
    cdef Py_ssize_t n_classes = 0
    cdef const int64_t *py
    cdef const double *pw = NULL
    cdef const double *psw = NULL
    cdef double *partial
    cdef double total
    _require(n_rows > 0 and (sample_weight is None or sample_weight.shape[0] == n_rows),
             "target_weight_sum needs non-empty targets and sample_weight of their length")
    py = &target[0]
    if weight is not None:
        pw = &weight[0]
        n_classes = weight.shape[0]
    if sample_weight is not None:
        psw = &sample_weight[0]
    n_tasks = (n_rows + BLOCK - 1) // BLOCK
    partial = <double *>malloc(n_tasks * sizeof(double))
    if partial == NULL:
        raise MemoryError("softmax_core: cannot allocate the kernel's partial sums")
    with nogil:
        for t in prange(n_tasks, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            r0 = t * BLOCK
            r1 = min(r0 + BLOCK, n_rows)
            partial[t] = 0.0
            if pw != NULL and _bad_targets(py + r0, r1 - r0, n_classes, ignore_index):
                bad += 1
            else:
                partial[t] = _weight_sum_block(py, pw, psw, r0, r1, ignore_index)
        total = _ordered_sum(partial, n_tasks)
    free(partial)
    if bad:
        _raise_bad_target(target, n_classes, ignore_index)
    return total


def index_range(const int64_t[::1] target):
    """``(min, max)`` of a non-empty int64 array in one vectorized pass (the
    class-index check of the loss functions; two NumPy reductions cost twice
    as much)."""
    cdef int64_t lo, hi
    _require(target.shape[0] > 0, "index_range needs a non-empty array")
    with nogil:
        sc_ce_index_range(&target[0], target.shape[0], &lo, &hi)
    return lo, hi
