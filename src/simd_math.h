/*
 * Design: vectorizable primitive loops shared by the Cython kernels.
 *
 * Cython cannot emit `#pragma omp simd`, and GCC never vectorizes a loop that
 * calls `exp` unless it knows a vector variant exists.  glibc ships those
 * variants (libmvec) but only advertises them under -ffast-math, which would
 * break NaN/inf semantics.  We therefore re-declare exp/expf/log with
 * `omp declare simd notinbranch` (the libmvec vector ABI) and put
 * `omp simd` on the loops below, compiled with -fopenmp(-simd) and linked
 * against -lm (whose linker script pulls in libmvec).  Without OpenMP SIMD
 * support the pragmas are ignored and the loops stay scalar but correct.
 *
 * On the AVX2 and AVX-512 targets the loops that exponentiate x - max
 * (sc_exp_shift_sum, sc_sum_exp_shift, sc_exp, sc_exp_inplace,
 * sc_vexp_shift_acc) come from vexp.h instead, with an inlined intrinsics
 * exp (see its design note), and so do the other passes of a long row
 * (sc_max, sc_scale, sc_sub2: written with intrinsics there); the baseline
 * build keeps SC_DEFINE_ROW_LOOPS and the libmvec loops of
 * SC_DEFINE_EXP_LOOPS below, and the backward passes use libmvec everywhere.
 *
 * Every primitive is written once, as a macro, and instantiated for float
 * (suffix _f) and double (suffix _d).  Sums are always accumulated in double.
 * The loops never read past `n` and never write to their const inputs.
 */
#ifndef SOFTMAX_CORE_SIMD_MATH_H
#define SOFTMAX_CORE_SIMD_MATH_H

#include <math.h>
#include <stddef.h>
#include <Python.h> /* Py_ssize_t */

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
#pragma omp declare simd notinbranch
extern double exp(double);
#pragma omp declare simd notinbranch
extern float expf(float);
#pragma omp declare simd notinbranch
extern double log(double);
#endif

/* s[i] = log(s[i]) over an array of row sums (always double): one vectorized
   call per block of rows instead of a scalar log per row, which would cost
   more than the rest of a 10-element row. */
static inline void sc_log_inplace(double *s, Py_ssize_t n)
{
    _Pragma("omp simd")
    for (Py_ssize_t i = 0; i < n; i++) s[i] = log(s[i]);
}

#define SC_DEFINE_PRIMITIVES(T, SFX, EXP)                                      \
    /* sum(x) in double. */                                                \
    static inline double sc_sum_##SFX(const T *x, Py_ssize_t n)            \
    {                                                                      \
        double s = 0.0;                                                    \
        _Pragma("omp simd reduction(+:s)")                                 \
        for (Py_ssize_t i = 0; i < n; i++) s += (double)x[i];              \
        return s;                                                          \
    }                                                                      \
    /* Column-wise versions for a (rows, inner) tile with row stride       \
       `ld`: they vectorize across the inner (contiguous) axis. */         \
    /* m[j] = max(m[j], x[j]) */                                           \
    static inline void sc_vmax_##SFX(T *m, const T *x, Py_ssize_t n)       \
    {                                                                      \
        _Pragma("omp simd")                                                \
        for (Py_ssize_t j = 0; j < n; j++) m[j] = x[j] > m[j] ? x[j] : m[j];\
    }                                                                      \
    /* out[j] = x[j] * c[j] */                                             \
    static inline void sc_vscale_##SFX(const T *x, const T *c, T *out,     \
                                       Py_ssize_t n)                       \
    {                                                                      \
        _Pragma("omp simd")                                                \
        for (Py_ssize_t j = 0; j < n; j++) out[j] = x[j] * c[j];           \
    }                                                                      \
    /* out[j] = (x[j] - a[j]) - b[j] */                                    \
    static inline void sc_vsub2_##SFX(const T *x, const T *a, const T *b,  \
                                      T *out, Py_ssize_t n)                \
    {                                                                      \
        _Pragma("omp simd")                                                \
        for (Py_ssize_t j = 0; j < n; j++) out[j] = (x[j] - a[j]) - b[j];  \
    }\
    /* Backward passes. sum(a[i] * b[i]) in double. */                     \
    static inline double sc_dot_##SFX(const T *a, const T *b, Py_ssize_t n)\
    {                                                                      \
        double s = 0.0;                                                    \
        _Pragma("omp simd reduction(+:s)")                                 \
        for (Py_ssize_t i = 0; i < n; i++) s += (double)a[i] * b[i];       \
        return s;                                                          \
    }                                                                      \
    /* softmax VJP: out[i] = y[i] * (g[i] - c) (out may alias g or y). */  \
    static inline void sc_softmax_vjp_##SFX(const T *g, const T *y, T c,   \
                                            T *out, Py_ssize_t n)          \
    {                                                                      \
        _Pragma("omp simd")                                                \
        for (Py_ssize_t i = 0; i < n; i++) out[i] = y[i] * (g[i] - c);     \
    }                                                                      \
    /* log_softmax VJP: out[i] = g[i] - exp(y[i]) * c. */                  \
    static inline void sc_log_softmax_vjp_##SFX(const T *g, const T *y,    \
                                                T c, T *out, Py_ssize_t n) \
    {                                                                      \
        _Pragma("omp simd")                                                \
        for (Py_ssize_t i = 0; i < n; i++) out[i] = g[i] - EXP(y[i]) * c;  \
    }                                                                      \
    /* column versions: s[j] += a[j] * b[j] (b NULL: s[j] += a[j]) */      \
    static inline void sc_vdot_acc_##SFX(const T *a, const T *b, double *s,\
                                         Py_ssize_t n)                     \
    {                                                                      \
        if (b) {                                                           \
            _Pragma("omp simd")                                            \
            for (Py_ssize_t j = 0; j < n; j++) s[j] += (double)a[j] * b[j];\
        } else {                                                           \
            _Pragma("omp simd")                                            \
            for (Py_ssize_t j = 0; j < n; j++) s[j] += (double)a[j];       \
        }                                                                  \
    }                                                                      \
    static inline void sc_vsoftmax_vjp_##SFX(const T *g, const T *y,       \
                                             const T *c, T *out,           \
                                             Py_ssize_t n)                 \
    {                                                                      \
        _Pragma("omp simd")                                                \
        for (Py_ssize_t j = 0; j < n; j++) out[j] = y[j] * (g[j] - c[j]);  \
    }                                                                      \
    static inline void sc_vlog_softmax_vjp_##SFX(const T *g, const T *y,   \
                                                 const T *c, T *out,       \
                                                 Py_ssize_t n)             \
    {                                                                      \
        _Pragma("omp simd")                                                \
        for (Py_ssize_t j = 0; j < n; j++)                                 \
            out[j] = g[j] - EXP(y[j]) * c[j];                              \
    }

/* The row loops that do not exponentiate: the baseline build's (the AVX2
   and AVX-512 builds define the same functions in vexp.h, with several
   accumulators for the max and masked tails). */
#define SC_DEFINE_ROW_LOOPS(T, SFX)                                            \
    /* max over x[0:n]; NaN entries are skipped here and poison the row   \
       later through exp(NaN - m). Empty input gives -inf. */              \
    static inline T sc_max_##SFX(const T *x, Py_ssize_t n)                 \
    {                                                                      \
        T m = -INFINITY;                                                   \
        _Pragma("omp simd reduction(max:m)")                               \
        for (Py_ssize_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;        \
        return m;                                                          \
    }                                                                      \
    /* out[i] = x[i] * c (out may alias x). */                             \
    static inline void sc_scale_##SFX(const T *x, T c, T *out,             \
                                      Py_ssize_t n)                        \
    {                                                                      \
        _Pragma("omp simd")                                                \
        for (Py_ssize_t i = 0; i < n; i++) out[i] = x[i] * c;              \
    }                                                                      \
    /* out[i] = (x[i] - a) - b (out may alias x): log_softmax's last pass. \
       Subtracting the max first keeps x - max exact for large logits. */  \
    static inline void sc_sub2_##SFX(const T *x, T a, T b, T *out,         \
                                     Py_ssize_t n)                         \
    {                                                                      \
        _Pragma("omp simd")                                                \
        for (Py_ssize_t i = 0; i < n; i++) out[i] = (x[i] - a) - b;        \
    }

/* The loops that exponentiate, with libmvec's exp: the baseline build's.
   The AVX2 and AVX-512 builds define the same functions in vexp.h with
   an inlined exp of their own. */
#define SC_DEFINE_EXP_LOOPS(T, SFX, EXP)                                       \
    /* out[i] = exp(x[i] - shift); returns sum(out) in double. */          \
    static inline double sc_exp_shift_sum_##SFX(const T *x, T shift,       \
                                                T *out, Py_ssize_t n)      \
    {                                                                      \
        double s = 0.0;                                                    \
        _Pragma("omp simd reduction(+:s)")                                 \
        for (Py_ssize_t i = 0; i < n; i++) {                               \
            T e = EXP(x[i] - shift);                                       \
            out[i] = e;                                                    \
            s += (double)e;                                                \
        }                                                                  \
        return s;                                                          \
    }                                                                      \
    /* sum(exp(x[i] - shift)) in double, nothing stored. */                \
    static inline double sc_sum_exp_shift_##SFX(const T *x, T shift,       \
                                                Py_ssize_t n)              \
    {                                                                      \
        double s = 0.0;                                                    \
        _Pragma("omp simd reduction(+:s)")                                 \
        for (Py_ssize_t i = 0; i < n; i++) s += (double)EXP(x[i] - shift); \
        return s;                                                          \
    }                                                                      \
    /* buf[i] = exp(buf[i]) in place. */                                   \
    static inline void sc_exp_inplace_##SFX(T *buf, Py_ssize_t n)          \
    {                                                                      \
        _Pragma("omp simd")                                                \
        for (Py_ssize_t i = 0; i < n; i++) buf[i] = EXP(buf[i]);           \
    }                                                                      \
    /* out[i] = exp(x[i]) (out may alias x). */                            \
    static inline void sc_exp_##SFX(const T *x, T *out, Py_ssize_t n)      \
    {                                                                      \
        _Pragma("omp simd")                                                \
        for (Py_ssize_t i = 0; i < n; i++) out[i] = EXP(x[i]);             \
    }                                                                      \
    /* e = exp(x[j] - shift[j]); out[j] = e (if out); s[j] += e */         \
    static inline void sc_vexp_shift_acc_##SFX(const T *x, const T *shift, \
                                               T *out, double *s,          \
                                               Py_ssize_t n)               \
    {                                                                      \
        if (out) {                                                         \
            _Pragma("omp simd")                                            \
            for (Py_ssize_t j = 0; j < n; j++) {                           \
                T e = EXP(x[j] - shift[j]);                                \
                out[j] = e;                                                \
                s[j] += (double)e;                                         \
            }                                                              \
        } else {                                                           \
            _Pragma("omp simd")                                            \
            for (Py_ssize_t j = 0; j < n; j++)                             \
                s[j] += (double)EXP(x[j] - shift[j]);                      \
        }                                                                  \
    }

/* dst (cols, rows) = transpose of src (rows, cols), both C-contiguous: the
   short-row kernels move blocks of rows into a (classes, rows) layout and
   back.  Two scalar loop orders: sc_transpose_out writes dst contiguously
   (strided reads from a block that sits in L1 are cheaper than strided
   writes; measured 1.5-2x on AVX2), sc_transpose_in reads src contiguously
   (for a source that is not in cache yet: the prefetcher follows it). */
#define SC_DEFINE_SCALAR_TRANSPOSE(T, SFX)                                     \
    static inline void sc_transpose_out_scalar_##SFX(const T *restrict src,\
                                                     T *restrict dst,      \
                                                     Py_ssize_t rows,      \
                                                     Py_ssize_t cols)      \
    {                                                                      \
        for (Py_ssize_t c = 0; c < cols; c++)                              \
            for (Py_ssize_t r = 0; r < rows; r++)                          \
                dst[c * rows + r] = src[r * cols + c];                     \
    }                                                                      \
    static inline void sc_transpose_in_scalar_##SFX(const T *restrict src, \
                                                    T *restrict dst,       \
                                                    Py_ssize_t rows,       \
                                                    Py_ssize_t cols)       \
    {                                                                      \
        for (Py_ssize_t r = 0; r < rows; r++)                              \
            for (Py_ssize_t c = 0; c < cols; c++)                          \
                dst[c * rows + r] = src[r * cols + c];                     \
    }

SC_DEFINE_SCALAR_TRANSPOSE(float, f)
SC_DEFINE_SCALAR_TRANSPOSE(double, d)

#if defined(__AVX__)
/* With AVX (the x86-64-v3 and v4 builds) both directions go through W x W
   register blocks (8x8 float, 4x4 double: W loads, a fixed shuffle network,
   W stores), which moves a 10-class block about twice as fast as the scalar
   loops; the edges that do not fill a block stay scalar. */
#include <immintrin.h>

/* dst[c * ldd + r] = src[r * lds + c] for r, c < 8 */
static inline void sc_block_transpose_f(const float *restrict src, Py_ssize_t lds,
                                        float *restrict dst, Py_ssize_t ldd)
{
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds);
    __m256 r2 = _mm256_loadu_ps(src + 2 * lds), r3 = _mm256_loadu_ps(src + 3 * lds);
    __m256 r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
    __m256 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
    /* interleave pairs of rows, then pairs of pairs, then the 128-bit halves */
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* dst[c * ldd + r] = src[r * lds + c] for r, c < 4 */
static inline void sc_block_transpose_d(const double *restrict src, Py_ssize_t lds,
                                        double *restrict dst, Py_ssize_t ldd)
{
    __m256d r0 = _mm256_loadu_pd(src), r1 = _mm256_loadu_pd(src + lds);
    __m256d r2 = _mm256_loadu_pd(src + 2 * lds), r3 = _mm256_loadu_pd(src + 3 * lds);
    __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(dst + ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(dst + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(dst + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
}

#define SC_DEFINE_BLOCKED_TRANSPOSE(T, SFX, W)                                 \
    static inline void sc_transpose_blocked_##SFX(const T *restrict src,   \
                                                  T *restrict dst,         \
                                                  Py_ssize_t rows,         \
                                                  Py_ssize_t cols)         \
    {                                                                      \
        Py_ssize_t r = 0, c;                                               \
        for (; r + W <= rows; r += W) {                                    \
            for (c = 0; c + W <= cols; c += W)                             \
                sc_block_transpose_##SFX(src + r * cols + c, cols,         \
                                         dst + c * rows + r, rows);        \
            for (; c < cols; c++)                                          \
                for (Py_ssize_t i = 0; i < W; i++)                         \
                    dst[c * rows + r + i] = src[(r + i) * cols + c];       \
        }                                                                  \
        for (; r < rows; r++)                                              \
            for (c = 0; c < cols; c++)                                     \
                dst[c * rows + r] = src[r * cols + c];                     \
    }

SC_DEFINE_BLOCKED_TRANSPOSE(float, f, 8)
SC_DEFINE_BLOCKED_TRANSPOSE(double, d, 4)
/* one register-blocked transpose serves both directions */
#define sc_transpose_f sc_transpose_blocked_f
#define sc_transpose_d sc_transpose_blocked_d
#define sc_transpose_in_f sc_transpose_blocked_f
#define sc_transpose_in_d sc_transpose_blocked_d
#else
#define sc_transpose_f sc_transpose_out_scalar_f
#define sc_transpose_d sc_transpose_out_scalar_d
#define sc_transpose_in_f sc_transpose_in_scalar_f
#define sc_transpose_in_d sc_transpose_in_scalar_d
#endif

SC_DEFINE_PRIMITIVES(float, f, expf)
SC_DEFINE_PRIMITIVES(double, d, exp)

#include "vexp.h" /* defines SC_HAVE_VEXP on the AVX2 and AVX-512 targets */
#ifndef SC_HAVE_VEXP
SC_DEFINE_ROW_LOOPS(float, f)
SC_DEFINE_ROW_LOOPS(double, d)
SC_DEFINE_EXP_LOOPS(float, f, expf)
SC_DEFINE_EXP_LOOPS(double, d, exp)
/* the row kernels' variants with a prefetch hint for the next row (see
   vexp.h); the baseline build, bound by libmvec, ignores the hint */
#define sc_exp_shift_sum_pf_f(x, shift, out, n, next) sc_exp_shift_sum_f(x, shift, out, n)
#define sc_exp_shift_sum_pf_d(x, shift, out, n, next) sc_exp_shift_sum_d(x, shift, out, n)
#define sc_sum_exp_shift_pf_f(x, shift, n, next) sc_sum_exp_shift_f(x, shift, n)
#define sc_sum_exp_shift_pf_d(x, shift, n, next) sc_sum_exp_shift_d(x, shift, n)
#endif

#endif /* SOFTMAX_CORE_SIMD_MATH_H */
