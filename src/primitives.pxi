# Design: Cython view of the vectorized C primitives in simd_math.h.
#
# Each primitive exists as a float (_f) and a double (_d) C function; the
# `floating` fused wrappers below pick one at compile time, so every kernel
# is written once for both dtypes.  All of them are `noexcept nogil` and
# work on raw pointers that the calling kernel has already bounds-checked.
from cython cimport floating
from libc.math cimport log, isfinite, INFINITY, NAN

cdef extern from "omp_compat.h" nogil:
    int SC_HAVE_OPENMP
    int sc_omp_max_threads()

cdef extern from "simd_math.h" nogil:
    float sc_max_f(const float *x, Py_ssize_t n)
    double sc_max_d(const double *x, Py_ssize_t n)
    double sc_exp_shift_sum_f(const float *x, float shift, float *out, Py_ssize_t n)
    double sc_exp_shift_sum_d(const double *x, double shift, double *out, Py_ssize_t n)
    double sc_sum_exp_shift_f(const float *x, float shift, Py_ssize_t n)
    double sc_sum_exp_shift_d(const double *x, double shift, Py_ssize_t n)
    double sc_exp_shift_sum_pf_f(const float *x, float shift, float *out, Py_ssize_t n,
                                 const float *next)
    double sc_exp_shift_sum_pf_d(const double *x, double shift, double *out, Py_ssize_t n,
                                 const double *next)
    double sc_sum_exp_shift_pf_f(const float *x, float shift, Py_ssize_t n, const float *next)
    double sc_sum_exp_shift_pf_d(const double *x, double shift, Py_ssize_t n,
                                 const double *next)
    void sc_exp_inplace_f(float *buf, Py_ssize_t n)
    void sc_exp_inplace_d(double *buf, Py_ssize_t n)
    void sc_exp_f(const float *x, float *out, Py_ssize_t n)
    void sc_exp_d(const double *x, double *out, Py_ssize_t n)
    double sc_sum_f(const float *x, Py_ssize_t n)
    double sc_sum_d(const double *x, Py_ssize_t n)
    void sc_scale_f(const float *x, float c, float *out, Py_ssize_t n)
    void sc_scale_d(const double *x, double c, double *out, Py_ssize_t n)
    void sc_sub2_f(const float *x, float a, float b, float *out, Py_ssize_t n)
    void sc_sub2_d(const double *x, double a, double b, double *out, Py_ssize_t n)
    void sc_vmax_f(float *m, const float *x, Py_ssize_t n)
    void sc_vmax_d(double *m, const double *x, Py_ssize_t n)
    void sc_vexp_shift_acc_f(const float *x, const float *shift, float *out, double *s, Py_ssize_t n)
    void sc_vexp_shift_acc_d(const double *x, const double *shift, double *out, double *s, Py_ssize_t n)
    void sc_vscale_f(const float *x, const float *c, float *out, Py_ssize_t n)
    void sc_vscale_d(const double *x, const double *c, double *out, Py_ssize_t n)
    void sc_vsub2_f(const float *x, const float *a, const float *b, float *out, Py_ssize_t n)
    void sc_vsub2_d(const double *x, const double *a, const double *b, double *out, Py_ssize_t n)
    void sc_transpose_f(const float *src, float *dst, Py_ssize_t rows, Py_ssize_t cols)
    void sc_transpose_d(const double *src, double *dst, Py_ssize_t rows, Py_ssize_t cols)
    void sc_transpose_in_f(const float *src, float *dst, Py_ssize_t rows, Py_ssize_t cols)
    void sc_transpose_in_d(const double *src, double *dst, Py_ssize_t rows, Py_ssize_t cols)
    void sc_log_inplace(double *s, Py_ssize_t n)
    double sc_dot_f(const float *a, const float *b, Py_ssize_t n)
    double sc_dot_d(const double *a, const double *b, Py_ssize_t n)
    void sc_softmax_vjp_f(const float *g, const float *y, float c, float *out, Py_ssize_t n)
    void sc_softmax_vjp_d(const double *g, const double *y, double c, double *out, Py_ssize_t n)
    void sc_log_softmax_vjp_f(const float *g, const float *y, float c, float *out, Py_ssize_t n)
    void sc_log_softmax_vjp_d(const double *g, const double *y, double c, double *out,
                              Py_ssize_t n)
    void sc_vdot_acc_f(const float *a, const float *b, double *s, Py_ssize_t n)
    void sc_vdot_acc_d(const double *a, const double *b, double *s, Py_ssize_t n)
    void sc_vsoftmax_vjp_f(const float *g, const float *y, const float *c, float *out,
                           Py_ssize_t n)
    void sc_vsoftmax_vjp_d(const double *g, const double *y, const double *c, double *out,
                           Py_ssize_t n)
    void sc_vlog_softmax_vjp_f(const float *g, const float *y, const float *c, float *out,
                               Py_ssize_t n)
    void sc_vlog_softmax_vjp_d(const double *g, const double *y, const double *c, double *out,
                               Py_ssize_t n)


cdef inline int _require(bint ok, str what) except -1:
    # Shape checks at the entry of every `def` kernel, before any pointer is
    # taken: the Python layer validates first, so these only guard a direct
    # call of the private kernel modules against out-of-bounds access.
    if not ok:
        raise ValueError(f"softmax_core kernel: {what}")
    return 0


cdef inline void _log_inplace(double *s, Py_ssize_t n) noexcept nogil:
    sc_log_inplace(s, n)


cdef inline floating _max(const floating *x, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return sc_max_f(x, n)
    else:
        return sc_max_d(x, n)


cdef inline double _exp_shift_sum(const floating *x, floating shift, floating *out,
                                  Py_ssize_t n) noexcept nogil:
    if floating is float:
        return sc_exp_shift_sum_f(x, shift, out, n)
    else:
        return sc_exp_shift_sum_d(x, shift, out, n)


cdef inline double _sum_exp_shift(const floating *x, floating shift,
                                  Py_ssize_t n) noexcept nogil:
    if floating is float:
        return sc_sum_exp_shift_f(x, shift, n)
    else:
        return sc_sum_exp_shift_d(x, shift, n)


cdef inline double _exp_shift_sum_pf(const floating *x, floating shift, floating *out,
                                     Py_ssize_t n, const floating *next) noexcept nogil:
    # _exp_shift_sum that also prefetches `next` (the next row, or NULL) into
    # cache while it computes, so that the next row's max pass does not wait
    # for memory (the AVX builds; the baseline build ignores `next`)
    if floating is float:
        return sc_exp_shift_sum_pf_f(x, shift, out, n, next)
    else:
        return sc_exp_shift_sum_pf_d(x, shift, out, n, next)


cdef inline double _sum_exp_shift_pf(const floating *x, floating shift, Py_ssize_t n,
                                     const floating *next) noexcept nogil:
    # _sum_exp_shift with the prefetch of _exp_shift_sum_pf
    if floating is float:
        return sc_sum_exp_shift_pf_f(x, shift, n, next)
    else:
        return sc_sum_exp_shift_pf_d(x, shift, n, next)


cdef inline void _exp_inplace(floating *buf, Py_ssize_t n) noexcept nogil:
    if floating is float:
        sc_exp_inplace_f(buf, n)
    else:
        sc_exp_inplace_d(buf, n)


cdef inline void _exp(const floating *x, floating *out, Py_ssize_t n) noexcept nogil:
    if floating is float:
        sc_exp_f(x, out, n)
    else:
        sc_exp_d(x, out, n)


cdef inline double _sum(const floating *x, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return sc_sum_f(x, n)
    else:
        return sc_sum_d(x, n)


cdef inline void _scale(const floating *x, floating c, floating *out,
                        Py_ssize_t n) noexcept nogil:
    if floating is float:
        sc_scale_f(x, c, out, n)
    else:
        sc_scale_d(x, c, out, n)


cdef inline void _sub2(const floating *x, floating a, floating b, floating *out,
                       Py_ssize_t n) noexcept nogil:
    if floating is float:
        sc_sub2_f(x, a, b, out, n)
    else:
        sc_sub2_d(x, a, b, out, n)


cdef inline void _vmax(floating *m, const floating *x, Py_ssize_t n) noexcept nogil:
    if floating is float:
        sc_vmax_f(m, x, n)
    else:
        sc_vmax_d(m, x, n)


cdef inline void _vexp_shift_acc(const floating *x, const floating *shift,
                                 floating *out, double *s, Py_ssize_t n) noexcept nogil:
    if floating is float:
        sc_vexp_shift_acc_f(x, shift, out, s, n)
    else:
        sc_vexp_shift_acc_d(x, shift, out, s, n)


cdef inline void _vscale(const floating *x, const floating *c, floating *out,
                         Py_ssize_t n) noexcept nogil:
    if floating is float:
        sc_vscale_f(x, c, out, n)
    else:
        sc_vscale_d(x, c, out, n)


cdef inline void _vsub2(const floating *x, const floating *a, const floating *b,
                        floating *out, Py_ssize_t n) noexcept nogil:
    if floating is float:
        sc_vsub2_f(x, a, b, out, n)
    else:
        sc_vsub2_d(x, a, b, out, n)


cdef inline void _transpose(const floating *src, floating *dst, Py_ssize_t rows,
                            Py_ssize_t cols) noexcept nogil:
    # dst (cols, rows) = src (rows, cols)^T; src and dst must not overlap
    if floating is float:
        sc_transpose_f(src, dst, rows, cols)
    else:
        sc_transpose_d(src, dst, rows, cols)


cdef inline void _transpose_in(const floating *src, floating *dst, Py_ssize_t rows,
                               Py_ssize_t cols) noexcept nogil:
    # the same transpose, in source order for a source read from memory (the
    # AVX builds use one register-blocked transpose for both; see simd_math.h)
    if floating is float:
        sc_transpose_in_f(src, dst, rows, cols)
    else:
        sc_transpose_in_d(src, dst, rows, cols)


cdef inline double _dot(const floating *a, const floating *b, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return sc_dot_f(a, b, n)
    else:
        return sc_dot_d(a, b, n)


cdef inline void _vjp(const floating *g, const floating *y, floating c, floating *out,
                      Py_ssize_t n, bint use_log) noexcept nogil:
    if floating is float:
        if use_log:
            sc_log_softmax_vjp_f(g, y, c, out, n)
        else:
            sc_softmax_vjp_f(g, y, c, out, n)
    else:
        if use_log:
            sc_log_softmax_vjp_d(g, y, c, out, n)
        else:
            sc_softmax_vjp_d(g, y, c, out, n)


cdef inline void _vdot_acc(const floating *a, const floating *b, double *s,
                           Py_ssize_t n) noexcept nogil:
    if floating is float:
        sc_vdot_acc_f(a, b, s, n)
    else:
        sc_vdot_acc_d(a, b, s, n)


cdef inline void _vvjp(const floating *g, const floating *y, const floating *c,
                       floating *out, Py_ssize_t n, bint use_log) noexcept nogil:
    if floating is float:
        if use_log:
            sc_vlog_softmax_vjp_f(g, y, c, out, n)
        else:
            sc_vsoftmax_vjp_f(g, y, c, out, n)
    else:
        if use_log:
            sc_vlog_softmax_vjp_d(g, y, c, out, n)
        else:
            sc_vsoftmax_vjp_d(g, y, c, out, n)


def omp_max_threads():
    """Threads an OpenMP region would use now (1 in a serial build)."""
    return sc_omp_max_threads()


def have_openmp():
    """Whether this kernel module was compiled with OpenMP."""
    return bool(SC_HAVE_OPENMP)



def exp_loop(int which, floating[::1] x, floating[::1] shift, floating[::1] out,
             double[::1] s):
    """Test entry for the exp loops (simd_math.h, vexp.h) on 1-d arrays of n:
    which = 0: out = exp(x); 1: out = x, then exp in place; 2: out = exp(x -
    shift[0]), returns the sum; 3: returns sum(exp(x - shift[0])); 4: out =
    exp(x - shift), s += out; 5: s += exp(x - shift).  Returns 0.0 otherwise."""
    cdef Py_ssize_t n = x.shape[0]
    cdef double total = 0.0
    _require(0 <= which <= 5 and n > 0 and out.shape[0] == n and s.shape[0] == n
             and shift.shape[0] == n, "exp_loop: bad mode or shapes")
    with nogil:
        if which == 0:
            _exp(&x[0], &out[0], n)
        elif which == 1:
            out[:] = x
            _exp_inplace(&out[0], n)
        elif which == 2:
            total = _exp_shift_sum(&x[0], shift[0], &out[0], n)
        elif which == 3:
            total = _sum_exp_shift(&x[0], shift[0], n)
        else:
            _vexp_shift_acc(&x[0], &shift[0], &out[0] if which == 4 else NULL, &s[0], n)
    return total
