# Design: vector-Jacobian products of softmax and log_softmax, given the
# forward output y and the upstream gradient g, over axis 1 of C-contiguous
# (outer, n, inner) arrays (the same layout as softmax.pxi):
#
#   softmax:      dx = y * (g - sum(g * y))
#   log_softmax:  dx = g - exp(y) * sum(g)
#
# Two passes per row (the reduction in double, then the elementwise update),
# tiles of TILE columns when inner > 1 so both passes vectorize along the
# contiguous axis.  `out` may alias g or y: the second pass reads each element
# before writing it.  Callers validate shapes and pass non-empty arrays.
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


def softmax_backward_3d(const floating[:, :, ::1] g, const floating[:, :, ::1] y,
                        floating[:, :, ::1] out, bint use_log, int n_threads):
    """VJP of softmax (use_log=False) or log_softmax over axis 1 of
    non-empty C-contiguous (outer, n, inner) arrays of one shape."""
    cdef Py_ssize_t outer = y.shape[0], n = y.shape[1], inner = y.shape[2]
    cdef Py_ssize_t t, n_tasks, o, j0, n_tiles, base
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
    if inner == 1:
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
