/*
 * Design: the two products of a linear model's minibatch step, for the fused
 * step of linear_step.pxi, when the weights are small (up to 128 classes,
 * a model that fits in L2).  With W of shape (K, C), row-major:
 *
 *   forward:   Z[r, :]  = b + sum_k X[r, k] W[k, :]
 *   backward:  gW[k, :] += sum_r X[r, k] G[r, :],   gb += sum_r G[r, :]
 *
 * BLAS runs these (batch x K) @ (K x C) products well below its peak when C
 * is 10: each is a separate pass over the batch, and each packs its operands
 * first.  Here both work on blocks of SC_LIN_ROWS (8) rows with the classes
 * in vector lanes (16 float / 8 double on AVX-512, 8 / 4 on AVX2): per k
 * one load of W[k, j:j+VW] (or of gW's row) and 8 fused multiply-adds with
 * the broadcast X[r, k], so 8 independent accumulator chains hide the FMA
 * latency and each row of X is read from L1 by both products.  The last
 * class chunk is masked (C = 10: one masked AVX-512 vector); blocks of
 * fewer than 8 rows (the tail of a task) run a row at a time.
 *
 * Accumulation is in the input precision, as in the BLAS products these
 * replace, in a fixed order: over k in order (forward), over the rows in
 * order (backward), for every thread count and every block split.  The
 * caller (linear_step.pxi) adds the per-task partial gradients in task
 * order.  The rows may be gathered: row r of a batch is X + rows[r] * K, so
 * a shuffled epoch reads its batches from X itself, without a permuted copy.
 * The builds without AVX2 run the same loops in scalar C, which the compiler
 * may vectorize.  Nothing here checks its arguments or reads past them: rows
 * have length K (X) and C (Z, G); gW and gb are padded to rows of
 * ldg = sc_lin_padded(C) elements (a multiple of the vector width), which
 * the backward product writes whole; b and gb may be NULL.
 */
#ifndef SOFTMAX_CORE_LINEAR_KERNELS_H
#define SOFTMAX_CORE_LINEAR_KERNELS_H

#include <Python.h> /* Py_ssize_t */
#include <stdint.h>

#define SC_LIN_ROWS 8

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>

#if defined(__AVX512F__)
#define SC_LIN_VW_f 16
#define SC_LIN_VW_d 8
typedef __m512 sc_lin_vf;
typedef __m512d sc_lin_vd;
#define sc_lin_ld_f(p) _mm512_loadu_ps(p)
#define sc_lin_ld_d(p) _mm512_loadu_pd(p)
#define sc_lin_st_f(p, v) _mm512_storeu_ps((p), (v))
#define sc_lin_st_d(p, v) _mm512_storeu_pd((p), (v))
#define sc_lin_set1_f(c) _mm512_set1_ps(c)
#define sc_lin_set1_d(c) _mm512_set1_pd(c)
#define sc_lin_zero_f() _mm512_setzero_ps()
#define sc_lin_zero_d() _mm512_setzero_pd()
#define sc_lin_fma_f(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define sc_lin_fma_d(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define sc_lin_add_f(a, b) _mm512_add_ps((a), (b))
#define sc_lin_add_d(a, b) _mm512_add_pd((a), (b))
/* lanes [0, rem) of p, the others 0; and the store of those lanes (0 < rem < VW) */
#define sc_lin_ldt_f(p, rem) _mm512_maskz_loadu_ps((__mmask16)((1u << (rem)) - 1), (p))
#define sc_lin_ldt_d(p, rem) _mm512_maskz_loadu_pd((__mmask8)((1u << (rem)) - 1), (p))
#define sc_lin_stt_f(p, rem, v) _mm512_mask_storeu_ps((p), (__mmask16)((1u << (rem)) - 1), (v))
#define sc_lin_stt_d(p, rem, v) _mm512_mask_storeu_pd((p), (__mmask8)((1u << (rem)) - 1), (v))
#else
#define SC_LIN_VW_f 8
#define SC_LIN_VW_d 4
typedef __m256 sc_lin_vf;
typedef __m256d sc_lin_vd;
#define sc_lin_ld_f(p) _mm256_loadu_ps(p)
#define sc_lin_ld_d(p) _mm256_loadu_pd(p)
#define sc_lin_st_f(p, v) _mm256_storeu_ps((p), (v))
#define sc_lin_st_d(p, v) _mm256_storeu_pd((p), (v))
#define sc_lin_set1_f(c) _mm256_set1_ps(c)
#define sc_lin_set1_d(c) _mm256_set1_pd(c)
#define sc_lin_zero_f() _mm256_setzero_ps()
#define sc_lin_zero_d() _mm256_setzero_pd()
#define sc_lin_fma_f(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define sc_lin_fma_d(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define sc_lin_add_f(a, b) _mm256_add_ps((a), (b))
#define sc_lin_add_d(a, b) _mm256_add_pd((a), (b))
static inline __m256i sc_lin_mask32(Py_ssize_t rem)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline __m256i sc_lin_mask64(Py_ssize_t rem)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)rem), _mm256_setr_epi64x(0, 1, 2, 3));
}
#define sc_lin_ldt_f(p, rem) _mm256_maskload_ps((p), sc_lin_mask32(rem))
#define sc_lin_ldt_d(p, rem) _mm256_maskload_pd((p), sc_lin_mask64(rem))
#define sc_lin_stt_f(p, rem, v) _mm256_maskstore_ps((p), sc_lin_mask32(rem), (v))
#define sc_lin_stt_d(p, rem, v) _mm256_maskstore_pd((p), sc_lin_mask64(rem), (v))
#endif

/* One class chunk [j, j + VW) (full, or its first `rem` lanes when MASKED)
   of NR rows; NR is a compile-time constant at each use, so the row loops
   unroll and the accumulators stay in registers. */
#define SC_LIN_CHUNKS(T, SFX)                                                   \
static inline __attribute__((always_inline)) void                              \
sc_lin_fwd_chunk_##SFX(const T *const *xr, Py_ssize_t K, const T *W, Py_ssize_t C,\
                       const T *b, T *Z, Py_ssize_t j, Py_ssize_t rem,         \
                       const int nr, const int masked)                         \
{                                                                              \
    sc_lin_v##SFX acc[SC_LIN_ROWS];                                            \
    sc_lin_v##SFX w, b0 = sc_lin_zero_##SFX();                                 \
    if (b != NULL)                                                             \
        b0 = masked ? sc_lin_ldt_##SFX(b + j, rem) : sc_lin_ld_##SFX(b + j);   \
    for (int r = 0; r < nr; r++)                                               \
        acc[r] = b0;                                                           \
    for (Py_ssize_t k = 0; k < K; k++) {                                       \
        w = masked ? sc_lin_ldt_##SFX(W + k * C + j, rem)                      \
                   : sc_lin_ld_##SFX(W + k * C + j);                           \
        for (int r = 0; r < nr; r++)                                           \
            acc[r] = sc_lin_fma_##SFX(sc_lin_set1_##SFX(xr[r][k]), w,          \
                                      acc[r]);                                 \
    }                                                                          \
    for (int r = 0; r < nr; r++) {                                             \
        if (masked)                                                            \
            sc_lin_stt_##SFX(Z + r * C + j, rem, acc[r]);                      \
        else                                                                   \
            sc_lin_st_##SFX(Z + r * C + j, acc[r]);                            \
    }                                                                          \
}                                                                              \
static inline __attribute__((always_inline)) void                              \
sc_lin_bwd_chunk_##SFX(const T *const *xr, Py_ssize_t K, const T *G, Py_ssize_t C,\
                       T *gW, Py_ssize_t ldg, T *gb, Py_ssize_t j,             \
                       Py_ssize_t rem, const int nr, const int masked)         \
{                                                                              \
    /* gW and gb are padded (ldg >= j + VW): full vectors, no masked store */  \
    sc_lin_v##SFX g[SC_LIN_ROWS];                                              \
    sc_lin_v##SFX a;                                                           \
    for (int r = 0; r < nr; r++)                                               \
        g[r] = masked ? sc_lin_ldt_##SFX(G + r * C + j, rem)                   \
                      : sc_lin_ld_##SFX(G + r * C + j);                        \
    if (gb != NULL) {                                                          \
        a = sc_lin_ld_##SFX(gb + j);                                           \
        for (int r = 0; r < nr; r++)                                           \
            a = sc_lin_add_##SFX(a, g[r]);                                     \
        sc_lin_st_##SFX(gb + j, a);                                            \
    }                                                                          \
    for (Py_ssize_t k = 0; k < K; k++) {                                       \
        T *dst = gW + k * ldg + j;                                             \
        a = sc_lin_ld_##SFX(dst);                                              \
        for (int r = 0; r < nr; r++)                                           \
            a = sc_lin_fma_##SFX(sc_lin_set1_##SFX(xr[r][k]), g[r], a);        \
        sc_lin_st_##SFX(dst, a);                                               \
    }                                                                          \
}                                                                              \
static inline __attribute__((always_inline)) void                              \
sc_lin_fwd_rows_##SFX(const T *const *xr, Py_ssize_t K, const T *W,            \
                      Py_ssize_t C, const T *b, T *Z, const int nr)            \
{                                                                              \
    Py_ssize_t j = 0;                                                          \
    for (; j + SC_LIN_VW_##SFX <= C; j += SC_LIN_VW_##SFX)                     \
        sc_lin_fwd_chunk_##SFX(xr, K, W, C, b, Z, j, 0, nr, 0);                \
    if (j < C)                                                                 \
        sc_lin_fwd_chunk_##SFX(xr, K, W, C, b, Z, j, C - j, nr, 1);            \
}                                                                              \
static inline __attribute__((always_inline)) void                              \
sc_lin_bwd_rows_##SFX(const T *const *xr, Py_ssize_t K, const T *G,            \
                      Py_ssize_t C, T *gW, Py_ssize_t ldg, T *gb, const int nr)\
{                                                                              \
    Py_ssize_t j = 0;                                                          \
    for (; j + SC_LIN_VW_##SFX <= C; j += SC_LIN_VW_##SFX)                     \
        sc_lin_bwd_chunk_##SFX(xr, K, G, C, gW, ldg, gb, j, 0, nr, 0);         \
    if (j < C)                                                                 \
        sc_lin_bwd_chunk_##SFX(xr, K, G, C, gW, ldg, gb, j, C - j, nr, 1);     \
}

#else /* no AVX2: scalar loops in the same order */
#define SC_LIN_VW_f 1
#define SC_LIN_VW_d 1

#define SC_LIN_CHUNKS(T, SFX)                                                   \
static inline void sc_lin_fwd_rows_##SFX(const T *const *xr, Py_ssize_t K,     \
                                         const T *W, Py_ssize_t C, const T *b, \
                                         T *Z, const int nr)                   \
{                                                                              \
    for (int r = 0; r < nr; r++) {                                             \
        T *z = Z + r * C;                                                      \
        for (Py_ssize_t j = 0; j < C; j++)                                     \
            z[j] = b != NULL ? b[j] : (T)0;                                    \
        for (Py_ssize_t k = 0; k < K; k++) {                                   \
            T x = xr[r][k];                                                    \
            const T *w = W + k * C;                                            \
            for (Py_ssize_t j = 0; j < C; j++)                                 \
                z[j] += x * w[j];                                              \
        }                                                                      \
    }                                                                          \
}                                                                              \
static inline void sc_lin_bwd_rows_##SFX(const T *const *xr, Py_ssize_t K,     \
                                         const T *G, Py_ssize_t C, T *gW,      \
                                         Py_ssize_t ldg, T *gb, const int nr)  \
{                                                                              \
    if (gb != NULL)                                                            \
        for (int r = 0; r < nr; r++)                                           \
            for (Py_ssize_t j = 0; j < C; j++)                                 \
                gb[j] += G[r * C + j];                                         \
    for (Py_ssize_t k = 0; k < K; k++) {                                       \
        T *dst = gW + k * ldg;                                                 \
        for (int r = 0; r < nr; r++) {                                         \
            T x = xr[r][k];                                                    \
            const T *g = G + r * C;                                            \
            for (Py_ssize_t j = 0; j < C; j++)                                 \
                dst[j] += x * g[j];                                            \
        }                                                                      \
    }                                                                          \
}
#endif

/* The entry points: n_rows rows of X (row r is X + rows[r] * K, or X + r * K
   where rows is NULL), forward into Z (overwritten) or backward into gW and
   gb (added to), in blocks of SC_LIN_ROWS rows then one row at a time. */
#define SC_LIN_KERNELS(T, SFX)                                                  \
SC_LIN_CHUNKS(T, SFX)                                                          \
static inline void sc_lin_row_ptrs_##SFX(const T *X, const int64_t *rows,      \
                                         Py_ssize_t r, Py_ssize_t K, int nr,   \
                                         const T **xr)                         \
{                                                                              \
    for (int i = 0; i < nr; i++)                                               \
        xr[i] = X + (rows != NULL ? (Py_ssize_t)rows[r + i] : r + i) * K;      \
}                                                                              \
static void sc_lin_forward_##SFX(const T *X, const int64_t *rows,              \
                                 Py_ssize_t n_rows, Py_ssize_t K, const T *W,  \
                                 Py_ssize_t C, const T *b, T *Z)               \
{                                                                              \
    const T *xr[SC_LIN_ROWS];                                                  \
    Py_ssize_t r = 0;                                                          \
    for (; r + SC_LIN_ROWS <= n_rows; r += SC_LIN_ROWS) {                      \
        sc_lin_row_ptrs_##SFX(X, rows, r, K, SC_LIN_ROWS, xr);                 \
        sc_lin_fwd_rows_##SFX(xr, K, W, C, b, Z + r * C, SC_LIN_ROWS);         \
    }                                                                          \
    for (; r < n_rows; r++) {                                                  \
        sc_lin_row_ptrs_##SFX(X, rows, r, K, 1, xr);                           \
        sc_lin_fwd_rows_##SFX(xr, K, W, C, b, Z + r * C, 1);                   \
    }                                                                          \
}                                                                              \
static void sc_lin_backward_##SFX(const T *X, const int64_t *rows,             \
                                  Py_ssize_t n_rows, Py_ssize_t K, const T *G, \
                                  Py_ssize_t C, T *gW, Py_ssize_t ldg, T *gb)  \
{                                                                              \
    const T *xr[SC_LIN_ROWS];                                                  \
    Py_ssize_t r = 0;                                                          \
    for (; r + SC_LIN_ROWS <= n_rows; r += SC_LIN_ROWS) {                      \
        sc_lin_row_ptrs_##SFX(X, rows, r, K, SC_LIN_ROWS, xr);                 \
        sc_lin_bwd_rows_##SFX(xr, K, G + r * C, C, gW, ldg, gb, SC_LIN_ROWS);  \
    }                                                                          \
    for (; r < n_rows; r++) {                                                  \
        sc_lin_row_ptrs_##SFX(X, rows, r, K, 1, xr);                           \
        sc_lin_bwd_rows_##SFX(xr, K, G + r * C, C, gW, ldg, gb, 1);            \
    }                                                                          \
}                                                                              \
/* the row length of a padded gradient (gW, gb) for C classes */               \
static inline Py_ssize_t sc_lin_padded_##SFX(Py_ssize_t C)                     \
{                                                                              \
    return (C + SC_LIN_VW_##SFX - 1) / SC_LIN_VW_##SFX * SC_LIN_VW_##SFX;      \
}

SC_LIN_KERNELS(float, f)
SC_LIN_KERNELS(double, d)

#endif
