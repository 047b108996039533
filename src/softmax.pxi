# Design: softmax, log_softmax and logsumexp over the middle axis of a
# C-contiguous (outer, n, inner) array.
#
# The Python layer reshapes every call to this form: the reduced axes are made
# adjacent and merged into `n`, the axes before them into `outer` and the axes
# after them into `inner`.  Three layouts then get three loops:
#
# * long rows (inner == 1, n > SHORT_ROW, in float32 n > SHORT_ROW_F32):
#   one row per task, three passes (max; exp(x - max) and its sum; scale).
#   The row sits in L1/L2 between passes, which beats the one-pass "online"
#   softmax on CPU.  While the exp runs, the next row is prefetched
#   (`_next_row`), so that its max pass, the first read of that row, finds it
#   in cache; see vexp.h for the passes themselves.
# * short rows (inner == 1, the others, see `_blocked_rows`): a per-row SIMD
#   loop would never fill a vector, so a task takes a block of rows (~BLOCK
#   elements).  Rows of
#   fewer than TRANSPOSE_BELOW elements (e.g. 10 classes) are transposed into
#   a local (n, rows) buffer (read in source order, which the prefetcher
#   follows, and written back in output order; the logs of the row sums are
#   one vectorized call) and reduced with the column kernels, which
#   vectorize across rows; longer short rows write x - max row by row and
#   run one flat vectorized exp over the whole block.  (Measured on AVX2 at
#   n = 10: the transposed block is 1.8x faster than per-row loops, whose
#   remainder handling dominates; from n = 16 on, the per-row loops win,
#   except in float32 at 17..23, where two 8-wide vectors and a scalar tail
#   per row are 1.3-1.7x slower than the transposed block: see
#   `_transposed_block`.)
# * inner > 1 (e.g. axis=-3 of (N, C, H, W)): tiles of TILE columns; the
#   passes run across the contiguous inner axis, so they vectorize too.
#
# Every kernel computes `x - max` first (no overflow), sums exponentials in
# double, and forms log_softmax as (x - max) - log(sum), never as
# log(softmax).  A row whose max is -inf (all -inf) yields NaN, and a +inf or
# NaN entry turns its own row into NaN, as scipy and torch do; logsumexp
# follows scipy (shift by 0 when the max is not finite).  `out` may alias `x`:
# each pass reads an element before it writes the same element.
# Inputs are `const` views so read-only arrays (memmaps) work.  The blocked
# paths use a per-thread heap workspace of WORKSPACE doubles (allocated before
# the parallel region), not the stack, so they also run in threads with small
# stacks.  The callers
# guarantee non-empty arrays and valid shapes; nothing here raises.
from cython.parallel cimport prange, threadid
from libc.stdlib cimport free, malloc

cdef extern from "<stdlib.h>" nogil:
    int posix_memalign(void **memptr, size_t alignment, size_t size)

cdef extern from "workspace_cache.h" nogil:
    void *sc_ws_take(size_t bytes)
    void sc_ws_give(void *p)
    size_t sc_ws_cached_bytes()

import numpy as np

cdef enum:
    SHORT_ROW = 64  # float64 rows up to this length take the blocked path
    SHORT_ROW_F32 = 128  # float32 rows up to this length take the blocked path
    BLOCK = 2048  # elements per block of short rows
    TILE = 256  # columns per tile when inner > 1
    TRANSPOSE_BELOW = 16  # short rows below this length use the transposed block
    WORKSPACE = 4 * BLOCK  # doubles of scratch per thread for the blocked paths
    PREFETCH_ROW_BYTES = 8192  # long rows up to this size prefetch the next row


cdef inline bint _blocked_rows(Py_ssize_t n, bint single) noexcept nogil:
    # whether rows of length n (inner == 1) are computed in blocks of rows
    # rather than one row per task: float64 rows up to SHORT_ROW, float32 rows
    # up to SHORT_ROW_F32.  In float32 the blocked path's lean flat exp (no
    # sum in the loop) beats the per-row three passes, measured on AVX2 with
    # 2 threads by 1.3-1.5x at 65..100 elements per row; from about 200 on,
    # once the arrays stream from memory, it is even (softmax) or up to 10%
    # slower (fused loss).  In float64 it loses from 65 on.
    return n <= (SHORT_ROW_F32 if single else SHORT_ROW)


cdef inline bint _transposed_block(Py_ssize_t n, bint single) noexcept nogil:
    # whether short rows of length n (inner == 1) take the transposed block;
    # `single` for float32 (8 lanes per AVX2 vector), see the design note
    return n < TRANSPOSE_BELOW or (single and n < 24 and n % 8 != 0)


cdef double *_workspace(int n_threads, Py_ssize_t per_thread=WORKSPACE) except NULL:
    """Scratch of `per_thread` doubles for every thread of a blocked kernel;
    the caller gives it back with `_release`."""
    # 64-byte aligned, so that a vectorized sum over scratch splits the same
    # way in every call and every thread (reproducible reductions); cached per
    # calling thread (workspace_cache.h)
    cdef void *ws = sc_ws_take(max(n_threads, 1) * per_thread * sizeof(double))
    if ws == NULL:
        raise MemoryError("softmax_core: cannot allocate the kernel workspace")
    return <double *>ws


cdef inline void _release(double *ws) noexcept nogil:
    """Give back a `_workspace` (NULL is ignored)."""
    sc_ws_give(ws)


def workspace_cached_bytes():
    """Bytes of the kernel workspace the calling thread keeps for its next call
    (0 if none); for the tests of workspace_cache.h."""
    return sc_ws_cached_bytes()


cdef inline const floating *_next_row(const floating *x, Py_ssize_t t, Py_ssize_t outer,
                                     Py_ssize_t n) noexcept nogil:
    # the row after row t (x points at row 0) for the prefetch of the long-row
    # kernels, or NULL: after the last row, and for rows longer than
    # PREFETCH_ROW_BYTES, which the hardware prefetcher streams by itself
    # and which would only push the current row out of cache
    if t + 1 < outer and n * <Py_ssize_t>sizeof(floating) <= PREFETCH_ROW_BYTES:
        return x + (t + 1) * n
    return NULL


cdef void _rows_long(const floating *x, floating *out, Py_ssize_t n,
                     bint use_log, const floating *next) noexcept nogil:
    # next: the next row (prefetched during the exp pass), or NULL
    cdef floating m = _max(x, n)
    cdef double s
    if use_log:
        s = _sum_exp_shift_pf(x, m, n, next)
        _sub2(x, m, <floating>log(s), out, n)
    else:
        s = _exp_shift_sum_pf(x, m, out, n, next)
        _scale(out, <floating>(1.0 / s), out, n)


cdef void _rows_short(const floating *x, floating *out, Py_ssize_t n_rows,
                      Py_ssize_t n, bint use_log, double *ws) noexcept nogil:
    # x and out point at n_rows consecutive rows of length n, n_rows * n <= BLOCK
    cdef floating *buf = <floating *>ws
    cdef double *logs = ws + BLOCK
    cdef Py_ssize_t r
    cdef Py_ssize_t total = n_rows * n
    for r in range(n_rows):
        _sub2(x + r * n, _max(x + r * n, n), 0, out + r * n, n)
    if use_log:
        _exp(out, buf, total)
        for r in range(n_rows):
            logs[r] = _sum(buf + r * n, n)
        _log_inplace(logs, n_rows)
        for r in range(n_rows):
            _sub2(out + r * n, 0, <floating>logs[r], out + r * n, n)
    else:
        _exp_inplace(out, total)
        for r in range(n_rows):
            _scale(out + r * n, <floating>(1.0 / _sum(out + r * n, n)),
                   out + r * n, n)


cdef void _rows_transposed(const floating *x, floating *out, Py_ssize_t n_rows,
                           Py_ssize_t n, bint use_log, double *ws) noexcept nogil:
    # n_rows consecutive rows of length n (n_rows * n <= BLOCK), computed in a
    # local (n, n_rows) transposed copy with the column kernels
    cdef double *s = ws
    cdef floating *t = <floating *>(ws + BLOCK)
    cdef floating *m = <floating *>(ws + 2 * BLOCK)
    cdef floating *c = <floating *>(ws + 3 * BLOCK)
    cdef Py_ssize_t r, j
    _transpose_in(x, t, n_rows, n)
    for r in range(n_rows):
        m[r] = -INFINITY
        s[r] = 0.0
    for j in range(n):
        _vmax(m, t + j * n_rows, n_rows)
    for j in range(n):
        _vexp_shift_acc(t + j * n_rows, m, NULL if use_log else t + j * n_rows, s, n_rows)
    if use_log:
        _log_inplace(s, n_rows)
        for r in range(n_rows):
            c[r] = <floating>s[r]
        for j in range(n):
            _vsub2(t + j * n_rows, m, c, t + j * n_rows, n_rows)
    else:
        for r in range(n_rows):
            c[r] = <floating>(1.0 / s[r])
        for j in range(n):
            _vscale(t + j * n_rows, c, t + j * n_rows, n_rows)
    _transpose(t, out, n, n_rows)


cdef void _tile(const floating *x, floating *out, Py_ssize_t n,
                Py_ssize_t ld, Py_ssize_t w, bint use_log) noexcept nogil:
    # a (n, w) tile whose rows are `ld` elements apart
    cdef floating m[TILE]
    cdef floating c[TILE]
    cdef double s[TILE]
    cdef Py_ssize_t k, j
    for j in range(w):
        m[j] = -INFINITY
        s[j] = 0.0
    for k in range(n):
        _vmax(m, x + k * ld, w)
    for k in range(n):
        _vexp_shift_acc(x + k * ld, m, NULL if use_log else out + k * ld, s, w)
    if use_log:
        _log_inplace(s, w)
        for j in range(w):
            c[j] = <floating>s[j]
        for k in range(n):
            _vsub2(x + k * ld, m, c, out + k * ld, w)
    else:
        for j in range(w):
            c[j] = <floating>(1.0 / s[j])
        for k in range(n):
            _vscale(out + k * ld, c, out + k * ld, w)


def softmax_3d(x, out, bint use_log, int n_threads):
    """softmax (use_log=False) or log_softmax over axis 1 of a non-empty
    C-contiguous (outer, n, inner) float32 or float64 array, written into
    `out` (same shape and dtype)."""
    # an explicit branch instead of a fused `def`: Cython's fused-signature
    # dispatch costs more than the whole kernel on a (256, 10) input
    if not (isinstance(x, np.ndarray) and isinstance(out, np.ndarray)):
        raise TypeError(f"softmax_core kernel: softmax_3d needs numpy.ndarray x and out, "
                        f"got {type(x).__name__} and {type(out).__name__}")
    _require(x.ndim == 3 and x.size > 0 and out.shape == x.shape,
             "x and out must be non-empty (outer, n, inner) arrays of one shape")
    if x.dtype == np.float32:
        _softmax_3d[float](x, out, use_log, n_threads)
    else:
        _softmax_3d[double](x, out, use_log, n_threads)


cdef void _softmax_3d(const floating[:, :, ::1] x, floating[:, :, ::1] out,
                      bint use_log, int n_threads):
    cdef Py_ssize_t outer = x.shape[0], n = x.shape[1], inner = x.shape[2]
    cdef Py_ssize_t t, n_tasks, rows_per_task, r0, o, j0, n_tiles
    cdef double *pws
    cdef const floating *px = &x[0, 0, 0]
    cdef floating *po = &out[0, 0, 0]
    cdef bint parallel = n_threads > 1
    if inner == 1 and not _blocked_rows(n, floating is float):
        with nogil:
            for t in prange(outer, schedule="static", num_threads=n_threads,
                            use_threads_if=parallel):
                _rows_long(px + t * n, po + t * n, n, use_log, _next_row(px, t, outer, n))
    elif inner == 1:
        rows_per_task = BLOCK // n
        n_tasks = (outer + rows_per_task - 1) // rows_per_task
        pws = _workspace(n_threads)
        with nogil:
            for t in prange(n_tasks, schedule="static", num_threads=n_threads,
                            use_threads_if=parallel):
                r0 = t * rows_per_task
                if _transposed_block(n, floating is float):
                    _rows_transposed(px + r0 * n, po + r0 * n,
                                     min(rows_per_task, outer - r0), n, use_log,
                                     pws + threadid() * WORKSPACE)
                else:
                    _rows_short(px + r0 * n, po + r0 * n,
                                min(rows_per_task, outer - r0), n, use_log,
                                pws + threadid() * WORKSPACE)
        _release(pws)
    else:
        n_tiles = (inner + TILE - 1) // TILE
        n_tasks = outer * n_tiles
        with nogil:
            for t in prange(n_tasks, schedule="static", num_threads=n_threads,
                            use_threads_if=parallel):
                o = t // n_tiles
                j0 = (t % n_tiles) * TILE
                _tile(px + o * n * inner + j0, po + o * n * inner + j0,
                      n, inner, min(TILE, inner - j0), use_log)


cdef floating _lse_row(const floating *x, Py_ssize_t n,
                       const floating *next) noexcept nogil:
    cdef floating m = _max(x, n)
    if not isfinite(m):
        m = 0
    return <floating>(log(_sum_exp_shift_pf(x, m, n, next)) + m)


cdef void _lse_tile(const floating *x, floating *out, Py_ssize_t n,
                    Py_ssize_t ld, Py_ssize_t w) noexcept nogil:
    cdef floating m[TILE]
    cdef double s[TILE]
    cdef Py_ssize_t k, j
    for j in range(w):
        m[j] = -INFINITY
        s[j] = 0.0
    for k in range(n):
        _vmax(m, x + k * ld, w)
    for j in range(w):
        if not isfinite(m[j]):
            m[j] = 0
    for k in range(n):
        _vexp_shift_acc(x + k * ld, m, NULL, s, w)
    _log_inplace(s, w)
    for j in range(w):
        out[j] = <floating>(s[j] + m[j])


cdef void _lse_transposed(const floating *x, floating *out, Py_ssize_t n_rows,
                          Py_ssize_t n, double *ws) noexcept nogil:
    # logsumexp of n_rows short rows (n_rows * n <= BLOCK) via a transposed copy
    cdef double *s = ws
    cdef floating *t = <floating *>(ws + BLOCK)
    cdef floating *m = <floating *>(ws + 2 * BLOCK)
    cdef Py_ssize_t r, j
    _transpose_in(x, t, n_rows, n)
    for r in range(n_rows):
        m[r] = -INFINITY
        s[r] = 0.0
    for j in range(n):
        _vmax(m, t + j * n_rows, n_rows)
    for r in range(n_rows):
        if not isfinite(m[r]):
            m[r] = 0
    for j in range(n):
        _vexp_shift_acc(t + j * n_rows, m, NULL, s, n_rows)
    _log_inplace(s, n_rows)
    for r in range(n_rows):
        out[r] = <floating>(s[r] + m[r])


cdef void _lse_short(const floating *x, floating *out, Py_ssize_t n_rows,
                     Py_ssize_t n, double *ws) noexcept nogil:
    # logsumexp of n_rows short rows (n_rows * n <= BLOCK) like _rows_short:
    # x - max row by row, one flat exp over the block, one vectorized log
    cdef floating *buf = <floating *>ws
    cdef double *s = ws + BLOCK
    cdef floating *m = <floating *>(ws + 2 * BLOCK)
    cdef Py_ssize_t r
    for r in range(n_rows):
        m[r] = _max(x + r * n, n)
        if not isfinite(m[r]):
            m[r] = 0
        _sub2(x + r * n, m[r], 0, buf + r * n, n)
    _exp_inplace(buf, n_rows * n)
    for r in range(n_rows):
        s[r] = _sum(buf + r * n, n)
    _log_inplace(s, n_rows)
    for r in range(n_rows):
        out[r] = <floating>(s[r] + m[r])


def logsumexp_3d(const floating[:, :, ::1] x, floating[:, ::1] out,
                 int n_threads):
    """logsumexp over axis 1 of a non-empty C-contiguous (outer, n, inner)
    array, written into `out` of shape (outer, inner)."""
    cdef Py_ssize_t outer = x.shape[0], n = x.shape[1], inner = x.shape[2]
    cdef Py_ssize_t t, n_tasks, o, j0, n_tiles, r0, rows_per_task
    cdef double *pws
    cdef const floating *px
    cdef floating *po
    cdef bint parallel = n_threads > 1
    _require(outer * n * inner > 0 and out.shape[0] == outer and out.shape[1] == inner,
             "x must be a non-empty (outer, n, inner) array and out (outer, inner)")
    px = &x[0, 0, 0]
    po = &out[0, 0]
    # float64 rows of 33..64 keep one row per task: blocked is 0-10% slower
    # there (measured on AVX2), 1.1-1.5x faster at 16..32
    if inner == 1 and _blocked_rows(n, floating is float) and (floating is float or n <= 32):
        rows_per_task = BLOCK // n
        n_tasks = (outer + rows_per_task - 1) // rows_per_task
        pws = _workspace(n_threads)
        with nogil:
            for t in prange(n_tasks, schedule="static", num_threads=n_threads,
                            use_threads_if=parallel):
                r0 = t * rows_per_task
                if _transposed_block(n, floating is float):
                    _lse_transposed(px + r0 * n, po + r0, min(rows_per_task, outer - r0), n,
                                    pws + threadid() * WORKSPACE)
                else:
                    _lse_short(px + r0 * n, po + r0, min(rows_per_task, outer - r0), n,
                               pws + threadid() * WORKSPACE)
        _release(pws)
    elif inner == 1:
        with nogil:
            for t in prange(outer, schedule="static", num_threads=n_threads,
                            use_threads_if=parallel):
                po[t] = _lse_row(px + t * n, n, _next_row(px, t, outer, n))
    else:
        n_tiles = (inner + TILE - 1) // TILE
        n_tasks = outer * n_tiles
        with nogil:
            for t in prange(n_tasks, schedule="static", num_threads=n_threads,
                            use_threads_if=parallel):
                o = t // n_tiles
                j0 = (t % n_tiles) * TILE
                _lse_tile(px + o * n * inner + j0, po + o * inner + j0,
                          n, inner, min(TILE, inner - j0))
