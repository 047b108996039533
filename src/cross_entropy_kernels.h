/*
 * Design: the C loops of the fused cross-entropy kernel (cross_entropy.pxi)
 * that must vectorize: the column kernels and the per-row factors of the
 * transposed short-row path, and the one-pass min/max of the class-index
 * check.  Like simd_math.h they are written once as macros and instantiated
 * for float (_f) and double (_d), and rely on `omp simd` (-fopenmp or
 * -fopenmp-simd) rather than -ffast-math.  Nothing here reads past `n` or
 * checks its inputs: the Cython layer has validated every target first.
 */
#ifndef SOFTMAX_CORE_CROSS_ENTROPY_H
#define SOFTMAX_CORE_CROSS_ENTROPY_H

#include <stdint.h>
#include <Python.h> /* Py_ssize_t */

/* Column kernels of the transposed short-row path; `yi` holds each row's
   target class (-1 for an ignored row) and `col` is column j of the
   (classes, rows) block, so these vectorize across rows. */
#define SC_CE_COLUMN_KERNELS(T, SFX)                                      \
/* xy[r] = col[r] where row r's target is class j */                     \
static inline void sc_ce_pick_##SFX(T *xy, const T *col,                 \
                                    const int32_t *yi, int32_t j,        \
                                    Py_ssize_t n)                        \
{                                                                        \
    _Pragma("omp simd")                                                  \
    for (Py_ssize_t r = 0; r < n; r++) {                                 \
        T v = col[r], cur = xy[r];                                       \
        xy[r] = yi[r] == j ? v : cur;                                    \
    }                                                                    \
}                                                                        \
/* col[r] = col[r] * c[r] - wj * b[r] - (d[r] if row r's target is j);  \
   col holds exp(x - m) on entry; b may be NULL (no smoothing). */       \
static inline void sc_ce_grad_col_##SFX(T *col, const T *c, const T *b,  \
                                        T wj, const T *d,                \
                                        const int32_t *yi, int32_t j,    \
                                        Py_ssize_t n)                    \
{                                                                        \
    if (b) {                                                             \
        _Pragma("omp simd")                                              \
        for (Py_ssize_t r = 0; r < n; r++) {                             \
            T dv = d[r];                                                 \
            T hit = yi[r] == j ? dv : (T)0;                              \
            col[r] = col[r] * c[r] - wj * b[r] - hit;                    \
        }                                                                \
    } else {                                                             \
        _Pragma("omp simd")                                              \
        for (Py_ssize_t r = 0; r < n; r++) {                             \
            T dv = d[r];                                                 \
            T hit = yi[r] == j ? dv : (T)0;                              \
            col[r] = col[r] * c[r] - hit;                                \
        }                                                                \
    }                                                                    \
}
/* Per-row loss (into acc, which holds sum_j w_j (x_j - m) on entry) and
   gradient factors c, b, d (see the design note), from the row sums s,
   their logs ls, the target logits xy and the maxima m.  w (class
   weights) and sw (sample weights) may be NULL; the four cases are
   separate loops so that each vectorizes.  The values of ignored rows
   (yi < 0) are meaningless here; the caller overwrites them. */
#define SC_CE_FACTORS_LOOP(T, WY, WR)                                    \
    _Pragma("omp simd")                                                  \
    for (Py_ssize_t r = 0; r < n; r++) {                                 \
        double wy = (WY), wr = (WR), a = wr * grad_scale;                \
        double loss = keep * wy * (ls[r] - ((double)xy[r] - (double)m[r]))\
                      + (eps_w * ls[r] - eps_c * acc[r]);                \
        acc[r] = wr * loss;                                              \
        c[r] = (T)(a * (keep * wy + eps_w) / s[r]);                      \
        b[r] = (T)(a * eps_c);                                           \
        d[r] = (T)(a * keep * wy);                                       \
    }
#define SC_CE_FACTORS(T, SFX)                                             \
static inline void sc_ce_factors_##SFX(                                  \
    const double *restrict s, const double *restrict ls,                 \
    double *restrict acc, const T *restrict xy, const T *restrict m,     \
    const int32_t *restrict yi, const double *restrict w,                \
    const double *restrict sw, double keep, double eps_c, double eps_w,  \
    double grad_scale, T *restrict c, T *restrict b, T *restrict d,      \
    Py_ssize_t n)                                                        \
{                                                                        \
    /* an ignored row (yi < 0) reads class 0's weight */                 \
    if (w && sw) { SC_CE_FACTORS_LOOP(T, w[yi[r] < 0 ? 0 : yi[r]], sw[r]) } \
    else if (w) { SC_CE_FACTORS_LOOP(T, w[yi[r] < 0 ? 0 : yi[r]], 1.0) }  \
    else if (sw) { SC_CE_FACTORS_LOOP(T, 1.0, sw[r]) }                   \
    else { SC_CE_FACTORS_LOOP(T, 1.0, 1.0) }                             \
}
SC_CE_COLUMN_KERNELS(float, f)
SC_CE_COLUMN_KERNELS(double, d)
SC_CE_FACTORS(float, f)
SC_CE_FACTORS(double, d)
/* min and max of x[0:n], n >= 1 */
static inline void sc_ce_index_range(const int64_t *x, Py_ssize_t n,
                                     int64_t *lo_out, int64_t *hi_out)
{
    int64_t lo = x[0], hi = x[0];
    _Pragma("omp simd reduction(min:lo) reduction(max:hi)")
    for (Py_ssize_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    *lo_out = lo;
    *hi_out = hi;
}

#endif /* SOFTMAX_CORE_CROSS_ENTROPY_H */
