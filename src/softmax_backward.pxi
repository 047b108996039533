# Design: vector-Jacobian products of softmax and log_softmax, given the
# forward output y and the upstream gradient g, over axis 1 of C-contiguous
# (outer, n, inner) arrays (the same layout as softmax.pxi):
#
#   softmax:      dx = y * (g - sum(g * y))
#   log_softmax:  dx = g - exp(y) * sum(g)
#
# Two passes per row (the reduction in double, then the elementwise update),
# tiles of TILE columns when inner > 1 so both passes vectorize along the
# contiguous axis.  log_softmax's VJP of float32 rows under TRANSPOSE_BELOW
# (e.g. 10 classes) transposes blocks of rows and runs the tile kernel across
# rows, as the forward kernels do: its exp then fills whole vectors (1.3-2.3x
# faster on AVX2).  softmax's VJP has no exp, and there the transposes cost
# more than they save (up to 2x slower, measured), so it stays per row.
# `out` may alias g or y: the second pass reads each element before writing
# it, and a transposed block is read whole before it is written.  The entry
# point checks the shapes.
from cython.parallel cimport prange


cdef void _vjp_row(const floating *g, const floating *y, floating *out,
                   Py_ssize_t n, bint use_log) noexcept nogil:
    cdef double c = _sum(g, n) if use_log else _dot(g, y, n)
    _vjp(g, y, <floating>c, out, n, use_log)


cdef void _vjp_tile(const floating *g, const floating *y, floating *out,
                    Py_ssize_t n, Py_ssize_t ld, Py_ssize_t w, bint use_log) noexcept nogil:
    cdef double s[TILE]
    cdef floating c[TILE]
    cdef Py_ssize_t k, j
    for j in range(w):
        s[j] = 0.0
    for k in range(n):
        if use_log:
            _vdot_acc(g + k * ld, <const floating *>NULL, s, w)
        else:
            _vdot_acc(g + k * ld, y + k * ld, s, w)
    for j in range(w):
        c[j] = <floating>s[j]
    for k in range(n):
        _vvjp(g + k * ld, y + k * ld, c, out + k * ld, w, use_log)


cdef void _vjp_transposed(const floating *g, const floating *y, floating *out,
                          Py_ssize_t n_rows, Py_ssize_t n, bint use_log,
                          double *ws) noexcept nogil:
    # n_rows short rows (n_rows <= TILE, n_rows * n <= BLOCK) through
    # transposed (n, n_rows) copies of g and y in the workspace
    cdef floating *tg = <floating *>ws
    cdef floating *ty = <floating *>(ws + BLOCK)
    _transpose_in(g, tg, n_rows, n)
    _transpose_in(y, ty, n_rows, n)
    _vjp_tile(tg, ty, tg, n, n_rows, n_rows, use_log)
    _transpose(tg, out, n, n_rows)


def softmax_backward_3d(const floating[:, :, ::1] g, const floating[:, :, ::1] y,
                        floating[:, :, ::1] out, bint use_log, int n_threads):
    """VJP of softmax (use_log=False) or log_softmax over axis 1 of
    non-empty C-contiguous (outer, n, inner) arrays of one shape."""
    cdef Py_ssize_t outer = y.shape[0], n = y.shape[1], inner = y.shape[2]
    cdef Py_ssize_t t, n_tasks, o, j0, n_tiles, base, r0, rows_per_task
    cdef double *pws
    cdef const floating *pg
    cdef const floating *py
    cdef floating *po
    cdef bint parallel = n_threads > 1
    _require(outer * n * inner > 0
             and all(g.shape[k] == y.shape[k] == out.shape[k] for k in range(3)),
             "grad_output, output and out must be non-empty arrays of one shape")
    pg = &g[0, 0, 0]
    py = &y[0, 0, 0]
    po = &out[0, 0, 0]
    if inner == 1 and use_log and floating is float and n < TRANSPOSE_BELOW:
        rows_per_task = min(BLOCK // n, TILE)
        n_tasks = (outer + rows_per_task - 1) // rows_per_task
        pws = _workspace(n_threads)
        with nogil:
            for t in prange(n_tasks, schedule="static", num_threads=n_threads,
                            use_threads_if=parallel):
                r0 = t * rows_per_task
                _vjp_transposed(pg + r0 * n, py + r0 * n, po + r0 * n,
                                min(rows_per_task, outer - r0), n, use_log,
                                pws + threadid() * WORKSPACE)
        _release(pws)
    elif inner == 1:
        with nogil:
            for t in prange(outer, schedule="static", num_threads=n_threads,
                            use_threads_if=parallel):
                _vjp_row(pg + t * n, py + t * n, po + t * n, n, use_log)
    else:
        n_tiles = (inner + TILE - 1) // TILE
        n_tasks = outer * n_tiles
        with nogil:
            for t in prange(n_tasks, schedule="static", num_threads=n_threads,
                            use_threads_if=parallel):
                o = t // n_tiles
                j0 = (t % n_tiles) * TILE
                base = o * n * inner + j0
                _vjp_tile(pg + base, py + base, po + base, n, inner,
                          min(TILE, inner - j0), use_log)
