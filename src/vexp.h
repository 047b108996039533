/*
 * Design: an inlined vector exp for the loops that exponentiate x - max.
 *
 * At long rows the kernels are bound by exp, and a call into libmvec per
 * vector costs more than the arithmetic: here exp is written with
 * intrinsics and inlined into the pass that also stores and sums.  Two
 * targets: AVX-512 (__AVX512F__, 16 floats / 8 doubles per vector) and AVX2
 * with FMA (__AVX2__ && __FMA__, 8 / 4); other builds keep libmvec (see
 * simd_math.h).  No -ffast-math and no flush-to-zero mode are used; the
 * code only relies on MXCSR's default round-to-nearest, and on FTZ being
 * clear for the subnormal outputs (NumPy and Python never set it; a caller
 * that does, e.g. torch.set_flush_denormal(True), gets them flushed to 0).
 *
 * Method, for one lane x:
 *   1. clamp: x <- max(LO, x) (and min(HI, x) on AVX-512).  The operand order
 *      of max/min returns x itself when x is NaN, so NaN propagates; -inf
 *      becomes LO, whose exp rounds to exactly +0.  LO = -104 (float),
 *      -746 (double): exp(LO) < half the smallest subnormal.
 *   2. k = nearest integer to x * log2(e), by adding 1.5 * 2^23 (2^52) in the
 *      same FMA: the low mantissa bits of t = x * log2e + shifter hold k.
 *   3. Cody-Waite reduction in two parts: r = (x - k * ln2_hi) - k * ln2_lo
 *      with FMAs; ln2_hi has few enough bits (9 float, 32 double) that the
 *      first step is exact, so |r| <= ln2/2 + tiny with an error of half an
 *      ulp of r.
 *   4. exp(r) = 1 + r + r^2 h(r), h a Chebyshev fit to (exp(r) - 1 - r) / r^2
 *      on |r| <= 1.02 ln2/2 (degree 4 float, 9 double; relative error of the
 *      polynomial with its rounded coefficients 1.1e-8 = 0.09 ulp float,
 *      2.5e-17 = 0.11 ulp double), by Horner with FMAs; the constant and
 *      linear coefficients are exactly 1.
 *   5. scale by 2^k.  AVX-512: vscalefps/pd, which rounds once, produces
 *      subnormal results correctly and overflows to +inf (so the AVX-512
 *      exp is correct over the whole domain: HI = 89 / 710 makes +inf give
 *      +inf).  AVX2 has no scalef: the polynomial's coefficients carry an
 *      extra factor 2^C (C = 25 float, 64 double; exact), k is added to the
 *      exponent field of p * 2^C with an integer add (the result is a
 *      normal number for every k >= k(LO)), and one multiplication by 2^-C
 *      rounds once, to a subnormal where the result is one.  This is valid
 *      for x <= 70 (float) / 600 (double); lanes above that, and NaN lanes,
 *      are rare (only logsumexp on a row with +inf shifts by 0 instead of
 *      the max) and take a scalar libm exp for that vector (one compare and
 *      a movemask per vector on the fast path).
 *
 * Subnormal outputs are therefore computed, not flushed: the scaled result
 * is rounded once from p (error < 1 ulp of p), so a subnormal output is
 * within 2 ulp (measured: 0.88) of the correctly rounded exp; the result is
 * +0 where the correctly rounded exp is +0, except in a 1-ulp band at that
 * boundary, where either may be the smallest subnormal.  Measured over every float32 input and
 * sampled float64 inputs: see benchmarks/README.md and tests/test_vexp.py.
 *
 * The loops below (same names and contracts as the libmvec ones in
 * simd_math.h) read full vectors, then one masked tail: the tail lanes past
 * n are loaded as `shift` (or 0), never stored, and zeroed before summing.
 * Sums are accumulated in double.
 *
 * The long-row passes around the exp (issue 13, second part) are here too,
 * since at 1000 classes they cost as much as a third of the exp:
 *   - sc_max: four accumulators (a single vmaxps chain is latency bound) and
 *     a masked tail instead of a scalar one; 0.019 against 0.035 ns per
 *     element on AVX-512 (rows of 1000 float32 in L1).
 *   - sc_scale, sc_sub2: a masked tail instead of scalar steps.
 *   - float32 exp with its sum: the exp loop only stores, and the sum in
 *     double is a second loop over the stored block (SC_EXP_BLOCK elements,
 *     in L1), with four accumulators: converting and adding inside the exp
 *     loop was slower (AVX-512 0.36 against 0.31 ns per element, AVX2 0.47
 *     against 0.33).  sc_sum_exp_shift does the same through a stack block.
 *     double keeps the sum inside the exp loop (nothing to convert; the
 *     blocked form measured even on AVX-512 and slower on AVX2).
 *   - the _pf variants take the next row (or NULL) and prefetch it (into
 *     L2 for float32, L1 for double: see sc_prefetch_f) while the exp runs,
 *     so that the next row's max pass, the first read of that row, does not
 *     wait for memory: the hardware prefetcher follows a stream only while
 *     it is read, and the exp pass reads nothing new.
 * The sums add the same values in another order than before these changes,
 * so float32 results may differ from the earlier builds in the last bit; the
 * order is fixed by n alone (never by the thread count).
 */
#ifndef SOFTMAX_CORE_VEXP_H
#define SOFTMAX_CORE_VEXP_H

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define SC_HAVE_VEXP 1
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

/* reduction constants (shared by both targets) */
#define SC_LOG2E_F 0x1.715476p+0f
#define SC_LN2HI_F 0x1.63p-1f           /* 0.693359375, 9 bits */
#define SC_LN2LO_F -0x1.bd0106p-13f     /* ln2 - SC_LN2HI_F */
#define SC_SHIFT_F 0x1.8p23f
#define SC_EXP_LO_F -104.0f
#define SC_LOG2E_D 0x1.71547652b82fep+0
#define SC_LN2HI_D 0x1.62e42feep-1      /* fdlibm ln2_hi, 32 bits */
#define SC_LN2LO_D 0x1.a39ef35793c76p-33
#define SC_SHIFT_D 0x1.8p52
#define SC_EXP_LO_D -746.0
/* h(r) = (exp(r) - 1 - r) / r^2, highest degree first */
#define SC_H4_F 0x1.6d1b1cp-10f
#define SC_H3_F 0x1.121582p-7f
#define SC_H2_F 0x1.555514p-5f
#define SC_H1_F 0x1.5554d4p-3f
#define SC_H0_F 0x1p-1f
#define SC_H9_D 0x1.af4134720f354p-26
#define SC_H8_D 0x1.289876a2dbdc0p-22
#define SC_H7_D 0x1.71de0a0471800p-19
#define SC_H6_D 0x1.a019b31890abfp-16
#define SC_H5_D 0x1.a01a01a8ba744p-13
#define SC_H4_D 0x1.6c16c17a1c437p-10
#define SC_H3_D 0x1.1111111110871p-7
#define SC_H2_D 0x1.555555555394cp-5
#define SC_H1_D 0x1.5555555555556p-3
#define SC_H0_D 0x1.0000000000001p-1

#if defined(__AVX512F__)
/* ---------------------------------------------------------------- AVX-512 */
#define SC_VW_F 16
#define SC_VW_D 8
typedef __m512 sc_vf;
typedef __m512d sc_vd;
typedef __m512d sc_vsum; /* double accumulator */
#define SC_EXP_HI_F 89.0f
#define SC_EXP_HI_D 710.0

static inline __m512 sc_vexp_f(__m512 x)
{
    const __m512 shifter = _mm512_set1_ps(SC_SHIFT_F);
    x = _mm512_min_ps(_mm512_set1_ps(SC_EXP_HI_F),
                      _mm512_max_ps(_mm512_set1_ps(SC_EXP_LO_F), x));
    __m512 k = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(SC_LOG2E_F), shifter),
                             shifter);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(SC_LN2HI_F), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(SC_LN2LO_F), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(SC_H4_F), r, _mm512_set1_ps(SC_H3_F));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SC_H2_F));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SC_H1_F));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SC_H0_F));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, k);
}

static inline __m512d sc_vexp_d(__m512d x)
{
    const __m512d shifter = _mm512_set1_pd(SC_SHIFT_D);
    x = _mm512_min_pd(_mm512_set1_pd(SC_EXP_HI_D),
                      _mm512_max_pd(_mm512_set1_pd(SC_EXP_LO_D), x));
    __m512d k = _mm512_sub_pd(_mm512_fmadd_pd(x, _mm512_set1_pd(SC_LOG2E_D), shifter),
                              shifter);
    __m512d r = _mm512_fnmadd_pd(k, _mm512_set1_pd(SC_LN2HI_D), x);
    r = _mm512_fnmadd_pd(k, _mm512_set1_pd(SC_LN2LO_D), r);
    __m512d p = _mm512_fmadd_pd(_mm512_set1_pd(SC_H9_D), r, _mm512_set1_pd(SC_H8_D));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SC_H7_D));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SC_H6_D));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SC_H5_D));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SC_H4_D));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SC_H3_D));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SC_H2_D));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SC_H1_D));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SC_H0_D));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
    return _mm512_scalef_pd(p, k);
}

#define sc_vld_f(p) _mm512_loadu_ps(p)
#define sc_vld_d(p) _mm512_loadu_pd(p)
#define sc_vst_f(p, v) _mm512_storeu_ps((p), (v))
#define sc_vst_d(p, v) _mm512_storeu_pd((p), (v))
#define sc_vset_f(c) _mm512_set1_ps(c)
#define sc_vset_d(c) _mm512_set1_pd(c)
#define sc_vsub_f(a, b) _mm512_sub_ps((a), (b))
#define sc_vsub_d(a, b) _mm512_sub_pd((a), (b))
#define sc_vsum_zero() _mm512_setzero_pd()
#define sc_vsum_total(a) _mm512_reduce_add_pd(a)
/* lanes [0, rem) of p, the others `fill` (0 < rem < width) */
static inline __m512 sc_vldt_f(const float *p, Py_ssize_t rem, __m512 fill)
{
    return _mm512_mask_loadu_ps(fill, (__mmask16)((1u << rem) - 1), p);
}
static inline __m512d sc_vldt_d(const double *p, Py_ssize_t rem, __m512d fill)
{
    return _mm512_mask_loadu_pd(fill, (__mmask8)((1u << rem) - 1), p);
}
static inline void sc_vstt_f(float *p, Py_ssize_t rem, __m512 v)
{
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << rem) - 1), v);
}
static inline void sc_vstt_d(double *p, Py_ssize_t rem, __m512d v)
{
    _mm512_mask_storeu_pd(p, (__mmask8)((1u << rem) - 1), v);
}
/* v with the lanes from rem on set to 0 */
static inline __m512 sc_vzt_f(__m512 v, Py_ssize_t rem)
{
    return _mm512_maskz_mov_ps((__mmask16)((1u << rem) - 1), v);
}
static inline __m512d sc_vzt_d(__m512d v, Py_ssize_t rem)
{
    return _mm512_maskz_mov_pd((__mmask8)((1u << rem) - 1), v);
}
/* the two halves of a float vector in double */
#define sc_vlo_f(v) _mm512_cvtps_pd(_mm512_castps512_ps256(v))
#define sc_vhi_f(v) _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)))
#define sc_vadd_s(a, b) _mm512_add_pd((a), (b))
#define sc_sld(p) _mm512_loadu_pd(p)
#define sc_sst(p, v) _mm512_storeu_pd((p), (v))
#define sc_sldt(p, rem) _mm512_maskz_loadu_pd((__mmask8)((1u << (rem)) - 1), (p))
#define sc_sstt(p, rem, v) _mm512_mask_storeu_pd((p), (__mmask8)((1u << (rem)) - 1), (v))
/* for the row loops: max, product, horizontal max */
#define sc_vmaxv_f(a, b) _mm512_max_ps((a), (b))
#define sc_vmaxv_d(a, b) _mm512_max_pd((a), (b))
#define sc_vmul_f(a, b) _mm512_mul_ps((a), (b))
#define sc_vmul_d(a, b) _mm512_mul_pd((a), (b))
#define sc_vhmax_f(v) _mm512_reduce_max_ps(v)
#define sc_vhmax_d(v) _mm512_reduce_max_pd(v)
/* SC_SW consecutive entries of a float or double array as one vector of
   doubles (the sum vector), and the first rem < SC_SW of them (others 0) */
#define SC_SW 8
#define sc_sldx_f(p) _mm512_cvtps_pd(_mm256_loadu_ps(p))
#define sc_sldx_d(p) _mm512_loadu_pd(p)
#define sc_sldxt_f(p, rem) \
    _mm512_cvtps_pd(_mm256_maskz_loadu_ps((__mmask8)((1u << (rem)) - 1), (p)))
#define sc_sldxt_d(p, rem) sc_sldt(p, rem)

#else
/* ------------------------------------------------------------- AVX2 + FMA */
#define SC_VW_F 8
#define SC_VW_D 4
typedef __m256 sc_vf;
typedef __m256d sc_vd;
typedef __m256d sc_vsum;
/* the fast path is valid up to these; above (and for NaN) libm's exp */
#define SC_EXP_FAST_HI_F 70.0f
#define SC_EXP_FAST_HI_D 600.0
#define SC_SCALE_F 0x1p25f   /* 2^C */
#define SC_UNSCALE_F 0x1p-25f
#define SC_SCALE_D 0x1p64
#define SC_UNSCALE_D 0x1p-64

__attribute__((noinline, cold)) static __m256 sc_vexp_slow_f(__m256 x, __m256 y)
{
    float xs[8], ys[8];
    _mm256_storeu_ps(xs, x);
    _mm256_storeu_ps(ys, y);
    for (int i = 0; i < 8; i++)
        if (!(xs[i] <= SC_EXP_FAST_HI_F)) ys[i] = expf(xs[i]);
    return _mm256_loadu_ps(ys);
}

__attribute__((noinline, cold)) static __m256d sc_vexp_slow_d(__m256d x, __m256d y)
{
    double xs[4], ys[4];
    _mm256_storeu_pd(xs, x);
    _mm256_storeu_pd(ys, y);
    for (int i = 0; i < 4; i++)
        if (!(xs[i] <= SC_EXP_FAST_HI_D)) ys[i] = exp(xs[i]);
    return _mm256_loadu_pd(ys);
}

static inline __m256 sc_vexp_f(__m256 x)
{
    const __m256 shifter = _mm256_set1_ps(SC_SHIFT_F);
    const __m256 S = _mm256_set1_ps(SC_SCALE_F);
    __m256 xc = _mm256_max_ps(_mm256_set1_ps(SC_EXP_LO_F), x);
    __m256 t = _mm256_fmadd_ps(xc, _mm256_set1_ps(SC_LOG2E_F), shifter);
    __m256 k = _mm256_sub_ps(t, shifter);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(SC_LN2HI_F), xc);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(SC_LN2LO_F), r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(SC_H4_F * SC_SCALE_F), r,
                               _mm256_set1_ps(SC_H3_F * SC_SCALE_F));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SC_H2_F * SC_SCALE_F));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SC_H1_F * SC_SCALE_F));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SC_H0_F * SC_SCALE_F));
    p = _mm256_fmadd_ps(p, r, S);
    p = _mm256_fmadd_ps(p, r, S);
    /* p * 2^C * 2^k, a normal number, then one rounding to p * 2^k */
    __m256i e = _mm256_slli_epi32(_mm256_castps_si256(t), 23);
    __m256 y = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
    y = _mm256_mul_ps(y, _mm256_set1_ps(SC_UNSCALE_F));
    __m256 slow = _mm256_cmp_ps(x, _mm256_set1_ps(SC_EXP_FAST_HI_F), _CMP_NLE_UQ);
    if (__builtin_expect(_mm256_movemask_ps(slow), 0)) y = sc_vexp_slow_f(x, y);
    return y;
}

static inline __m256d sc_vexp_d(__m256d x)
{
    const __m256d shifter = _mm256_set1_pd(SC_SHIFT_D);
    const __m256d S = _mm256_set1_pd(SC_SCALE_D);
    __m256d xc = _mm256_max_pd(_mm256_set1_pd(SC_EXP_LO_D), x);
    __m256d t = _mm256_fmadd_pd(xc, _mm256_set1_pd(SC_LOG2E_D), shifter);
    __m256d k = _mm256_sub_pd(t, shifter);
    __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(SC_LN2HI_D), xc);
    r = _mm256_fnmadd_pd(k, _mm256_set1_pd(SC_LN2LO_D), r);
    __m256d p = _mm256_fmadd_pd(_mm256_set1_pd(SC_H9_D * SC_SCALE_D), r,
                                _mm256_set1_pd(SC_H8_D * SC_SCALE_D));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SC_H7_D * SC_SCALE_D));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SC_H6_D * SC_SCALE_D));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SC_H5_D * SC_SCALE_D));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SC_H4_D * SC_SCALE_D));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SC_H3_D * SC_SCALE_D));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SC_H2_D * SC_SCALE_D));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SC_H1_D * SC_SCALE_D));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SC_H0_D * SC_SCALE_D));
    p = _mm256_fmadd_pd(p, r, S);
    p = _mm256_fmadd_pd(p, r, S);
    __m256i e = _mm256_slli_epi64(_mm256_castpd_si256(t), 52);
    __m256d y = _mm256_castsi256_pd(_mm256_add_epi64(_mm256_castpd_si256(p), e));
    y = _mm256_mul_pd(y, _mm256_set1_pd(SC_UNSCALE_D));
    __m256d slow = _mm256_cmp_pd(x, _mm256_set1_pd(SC_EXP_FAST_HI_D), _CMP_NLE_UQ);
    if (__builtin_expect(_mm256_movemask_pd(slow), 0)) y = sc_vexp_slow_d(x, y);
    return y;
}

#define sc_vld_f(p) _mm256_loadu_ps(p)
#define sc_vld_d(p) _mm256_loadu_pd(p)
#define sc_vst_f(p, v) _mm256_storeu_ps((p), (v))
#define sc_vst_d(p, v) _mm256_storeu_pd((p), (v))
#define sc_vset_f(c) _mm256_set1_ps(c)
#define sc_vset_d(c) _mm256_set1_pd(c)
#define sc_vsub_f(a, b) _mm256_sub_ps((a), (b))
#define sc_vsub_d(a, b) _mm256_sub_pd((a), (b))
#define sc_vsum_zero() _mm256_setzero_pd()
static inline double sc_vsum_total(__m256d a)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
/* lane masks: all ones in lanes [lo, rem) ... of a 32- or 64-bit lane vector */
static inline __m256i sc_mask32(Py_ssize_t rem)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline __m256i sc_mask64(Py_ssize_t rem, int64_t first)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(rem),
                              _mm256_setr_epi64x(first, first + 1, first + 2, first + 3));
}
static inline __m256 sc_vldt_f(const float *p, Py_ssize_t rem, __m256 fill)
{
    __m256i m = sc_mask32(rem);
    return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
static inline __m256d sc_vldt_d(const double *p, Py_ssize_t rem, __m256d fill)
{
    __m256i m = sc_mask64(rem, 0);
    return _mm256_blendv_pd(fill, _mm256_maskload_pd(p, m), _mm256_castsi256_pd(m));
}
static inline void sc_vstt_f(float *p, Py_ssize_t rem, __m256 v)
{
    _mm256_maskstore_ps(p, sc_mask32(rem), v);
}
static inline void sc_vstt_d(double *p, Py_ssize_t rem, __m256d v)
{
    _mm256_maskstore_pd(p, sc_mask64(rem, 0), v);
}
static inline __m256 sc_vzt_f(__m256 v, Py_ssize_t rem)
{
    return _mm256_and_ps(v, _mm256_castsi256_ps(sc_mask32(rem)));
}
static inline __m256d sc_vzt_d(__m256d v, Py_ssize_t rem)
{
    return _mm256_and_pd(v, _mm256_castsi256_pd(sc_mask64(rem, 0)));
}
#define sc_vlo_f(v) _mm256_cvtps_pd(_mm256_castps256_ps128(v))
#define sc_vhi_f(v) _mm256_cvtps_pd(_mm256_extractf128_ps((v), 1))
#define sc_vadd_s(a, b) _mm256_add_pd((a), (b))
#define sc_sld(p) _mm256_loadu_pd(p)
#define sc_sst(p, v) _mm256_storeu_pd((p), (v))
#define sc_sldt(p, rem) _mm256_maskload_pd((p), sc_mask64((rem), 0))
#define sc_sstt(p, rem, v) _mm256_maskstore_pd((p), sc_mask64((rem), 0), (v))
#define sc_vmaxv_f(a, b) _mm256_max_ps((a), (b))
#define sc_vmaxv_d(a, b) _mm256_max_pd((a), (b))
#define sc_vmul_f(a, b) _mm256_mul_ps((a), (b))
#define sc_vmul_d(a, b) _mm256_mul_pd((a), (b))
static inline float sc_vhmax_f(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}
static inline double sc_vhmax_d(__m256d v)
{
    __m128d m = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_max_sd(m, _mm_unpackhi_pd(m, m)));
}
#define SC_SW 4
#define sc_sldx_f(p) _mm256_cvtps_pd(_mm_loadu_ps(p))
#define sc_sldx_d(p) _mm256_loadu_pd(p)
#define sc_sldxt_f(p, rem)                                                     \
    _mm256_cvtps_pd(_mm_maskload_ps((p), _mm_cmpgt_epi32(_mm_set1_epi32((int)(rem)),\
                                                         _mm_setr_epi32(0, 1, 2, 3))))
#define sc_sldxt_d(p, rem) sc_sldt(p, rem)
#endif

/* ------------------------------------------- loops, written once per dtype */
/* elements per block of the exp-then-sum loops (in `out`, so any size
   that stays in L1), and per block of the stack scratch of sc_sum_exp_shift */
#define SC_EXP_BLOCK 1024
#define SC_SCRATCH_BLOCK 512
/* the prefetch of the next row: into L2 for float32, into L1 for double.
   Measured on Zen 4 at (4096, 1000), a C loop over these functions, best of
   100: float32, one thread (thread CPU time), 1.39 ms into L2, 1.51 ms into
   L1, 1.41 ms without (medians 1.54, 1.67, 1.56 ms); two threads 0.83,
   0.97 and 0.90 ms.
   double, one thread: 3.12 ms into L1, 3.85 ms into L2, 3.94 ms without.
   float32's exp loop issues its prefetches about 1.6 times as fast, and L1
   prefetches at that rate seem to hold up the misses of the stores. */
#define sc_prefetch_f(p) _mm_prefetch((const char *)(p), _MM_HINT_T1)
#define sc_prefetch_d(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)

/* add the W lanes of e into the double accumulators a0 (and a1) */
#define sc_vacc_f(a0, a1, e) \
    do { a0 = sc_vadd_s(a0, sc_vlo_f(e)); a1 = sc_vadd_s(a1, sc_vhi_f(e)); } while (0)
#define sc_vacc_d(a0, a1, e) do { a0 = sc_vadd_s(a0, e); (void)a1; } while (0)
/* s[0:W] += e, and the same for the first rem lanes */
#define sc_vsacc_f(s, e)                                                       \
    do {                                                                   \
        sc_sst(s, sc_vadd_s(sc_sld(s), sc_vlo_f(e)));                      \
        sc_sst((s) + SC_VW_F / 2, sc_vadd_s(sc_sld((s) + SC_VW_F / 2),     \
                                            sc_vhi_f(e)));                 \
    } while (0)
#define sc_vsacc_d(s, e) sc_sst(s, sc_vadd_s(sc_sld(s), e))
#define sc_vsacct_f(s, rem, e)                                                 \
    do {                                                                   \
        Py_ssize_t r0_ = (rem) < SC_VW_F / 2 ? (rem) : SC_VW_F / 2;        \
        sc_sstt(s, r0_, sc_vadd_s(sc_sldt(s, r0_), sc_vlo_f(e)));          \
        if ((rem) > SC_VW_F / 2)                                           \
            sc_sstt((s) + SC_VW_F / 2, (rem) - SC_VW_F / 2,                \
                    sc_vadd_s(sc_sldt((s) + SC_VW_F / 2, (rem) - SC_VW_F / 2),\
                              sc_vhi_f(e)));                               \
    } while (0)
#define sc_vsacct_d(s, rem, e) sc_sstt(s, rem, sc_vadd_s(sc_sldt(s, rem), e))

#define SC_DEFINE_VEXP_LOOPS(T, SFX, W)                                        \
    /* max over x[0:n], four accumulators; NaN entries are skipped (the    \
       max instruction returns its second operand, the accumulator, when  \
       the first is NaN) and poison the row later through exp(NaN - m).   \
       Empty input gives -inf. */                                         \
    static inline T sc_max_##SFX(const T *x, Py_ssize_t n)                 \
    {                                                                      \
        sc_v##SFX lo = sc_vset_##SFX(-INFINITY);                           \
        sc_v##SFX m0 = lo, m1 = lo, m2 = lo, m3 = lo;                      \
        Py_ssize_t i = 0;                                                  \
        for (; i + 4 * W <= n; i += 4 * W) {                               \
            m0 = sc_vmaxv_##SFX(sc_vld_##SFX(x + i), m0);                  \
            m1 = sc_vmaxv_##SFX(sc_vld_##SFX(x + i + W), m1);              \
            m2 = sc_vmaxv_##SFX(sc_vld_##SFX(x + i + 2 * W), m2);          \
            m3 = sc_vmaxv_##SFX(sc_vld_##SFX(x + i + 3 * W), m3);          \
        }                                                                  \
        for (; i + W <= n; i += W)                                         \
            m0 = sc_vmaxv_##SFX(sc_vld_##SFX(x + i), m0);                  \
        if (i < n)                                                         \
            m1 = sc_vmaxv_##SFX(sc_vldt_##SFX(x + i, n - i, lo), m1);      \
        return sc_vhmax_##SFX(sc_vmaxv_##SFX(sc_vmaxv_##SFX(m0, m1),        \
                                            sc_vmaxv_##SFX(m2, m3)));      \
    }                                                                      \
    /* out[i] = x[i] * c (out may alias x). */                             \
    static inline void sc_scale_##SFX(const T *x, T c, T *out,             \
                                      Py_ssize_t n)                        \
    {                                                                      \
        sc_v##SFX vc = sc_vset_##SFX(c);                                   \
        Py_ssize_t i = 0;                                                  \
        for (; i + W <= n; i += W)                                         \
            sc_vst_##SFX(out + i, sc_vmul_##SFX(sc_vld_##SFX(x + i), vc)); \
        if (i < n)                                                         \
            sc_vstt_##SFX(out + i, n - i,                                  \
                          sc_vmul_##SFX(sc_vldt_##SFX(x + i, n - i, vc), vc));\
    }                                                                      \
    /* out[i] = (x[i] - a) - b (out may alias x): log_softmax's last pass. \
       Subtracting the max first keeps x - max exact for large logits. */  \
    static inline void sc_sub2_##SFX(const T *x, T a, T b, T *out,         \
                                     Py_ssize_t n)                         \
    {                                                                      \
        sc_v##SFX va = sc_vset_##SFX(a), vb = sc_vset_##SFX(b);            \
        Py_ssize_t i = 0;                                                  \
        for (; i + W <= n; i += W)                                         \
            sc_vst_##SFX(out + i, sc_vsub_##SFX(sc_vsub_##SFX(             \
                sc_vld_##SFX(x + i), va), vb));                            \
        if (i < n)                                                         \
            sc_vstt_##SFX(out + i, n - i, sc_vsub_##SFX(sc_vsub_##SFX(     \
                sc_vldt_##SFX(x + i, n - i, va), va), vb));                \
    }                                                                      \
    /* sum(p[0:n]) in double: four accumulators of SC_SW doubles, each    \
       taking every fourth group of SC_SW consecutive entries. */         \
    static inline double sc_dsum_##SFX(const T *p, Py_ssize_t n)           \
    {                                                                      \
        sc_vsum a0 = sc_vsum_zero(), a1 = a0, a2 = a0, a3 = a0;            \
        Py_ssize_t i = 0;                                                  \
        for (; i + 4 * SC_SW <= n; i += 4 * SC_SW) {                       \
            a0 = sc_vadd_s(a0, sc_sldx_##SFX(p + i));                      \
            a1 = sc_vadd_s(a1, sc_sldx_##SFX(p + i + SC_SW));              \
            a2 = sc_vadd_s(a2, sc_sldx_##SFX(p + i + 2 * SC_SW));          \
            a3 = sc_vadd_s(a3, sc_sldx_##SFX(p + i + 3 * SC_SW));          \
        }                                                                  \
        for (; i + SC_SW <= n; i += SC_SW)                                 \
            a0 = sc_vadd_s(a0, sc_sldx_##SFX(p + i));                      \
        if (i < n)                                                         \
            a1 = sc_vadd_s(a1, sc_sldxt_##SFX(p + i, n - i));              \
        return sc_vsum_total(sc_vadd_s(sc_vadd_s(a0, a1), sc_vadd_s(a2, a3)));\
    }                                                                      \
    /* out[i] = exp(x[i] - shift) (out may alias x), no sum; with `next`  \
       (or NULL) the same offsets of the next row are prefetched. */       \
    static inline void sc_exp_shift_store_##SFX(const T *x, T shift,       \
                                                T *out, Py_ssize_t n,      \
                                                const T *next)             \
    {                                                                      \
        sc_v##SFX vs = sc_vset_##SFX(shift);                               \
        Py_ssize_t i = 0;                                                  \
        for (; i + W <= n; i += W) {                                       \
            if (next) sc_prefetch_##SFX(next + i);                         \
            sc_vst_##SFX(out + i, sc_vexp_##SFX(sc_vsub_##SFX(             \
                sc_vld_##SFX(x + i), vs)));                                \
        }                                                                  \
        if (i < n) {                                                       \
            if (next) sc_prefetch_##SFX(next + i);                         \
            sc_vstt_##SFX(out + i, n - i, sc_vexp_##SFX(sc_vsub_##SFX(     \
                sc_vldt_##SFX(x + i, n - i, vs), vs)));                    \
        }                                                                  \
    }                                                                      \
    /* out[i] = exp(x[i]) (out may alias x). */                            \
    static inline void sc_exp_##SFX(const T *x, T *out, Py_ssize_t n)      \
    {                                                                      \
        Py_ssize_t i = 0;                                                  \
        for (; i + W <= n; i += W)                                         \
            sc_vst_##SFX(out + i, sc_vexp_##SFX(sc_vld_##SFX(x + i)));     \
        if (i < n)                                                         \
            sc_vstt_##SFX(out + i, n - i, sc_vexp_##SFX(                   \
                sc_vldt_##SFX(x + i, n - i, sc_vset_##SFX(0))));           \
    }                                                                      \
    /* buf[i] = exp(buf[i]) in place. */                                   \
    static inline void sc_exp_inplace_##SFX(T *buf, Py_ssize_t n)          \
    {                                                                      \
        sc_exp_##SFX(buf, buf, n);                                         \
    }                                                                      \
    /* e = exp(x[j] - shift[j]); out[j] = e (if out); s[j] += e */         \
    static inline void sc_vexp_shift_acc_##SFX(const T *x, const T *shift, \
                                               T *out, double *s,          \
                                               Py_ssize_t n)               \
    {                                                                      \
        sc_v##SFX e, z = sc_vset_##SFX(0);                                 \
        Py_ssize_t j = 0;                                                  \
        for (; j + W <= n; j += W) {                                       \
            e = sc_vexp_##SFX(sc_vsub_##SFX(sc_vld_##SFX(x + j),           \
                                            sc_vld_##SFX(shift + j)));     \
            if (out) sc_vst_##SFX(out + j, e);                             \
            sc_vsacc_##SFX(s + j, e);                                      \
        }                                                                  \
        if (j < n) {                                                       \
            e = sc_vexp_##SFX(sc_vsub_##SFX(sc_vldt_##SFX(x + j, n - j, z),\
                                            sc_vldt_##SFX(shift + j, n - j, z)));\
            if (out) sc_vstt_##SFX(out + j, n - j, e);                     \
            sc_vsacct_##SFX(s + j, n - j, e);                              \
        }                                                                  \
    }

/* float: exp and store in blocks, then the block's sum from L1, which is
   faster than converting and adding inside the exp loop (AVX-512: 0.31
   against 0.36 ns per element, AVX2: 0.33 against 0.47, one thread, rows
   of 1000 in L1; the conversions to double then no longer compete with the
   exp's FMAs inside one long loop body). */
#define SC_DEFINE_EXPSUM_BLOCKED(T, SFX, W)                                    \
    /* out[i] = exp(x[i] - shift); returns sum(out) in double.  In blocks \
       of SC_EXP_BLOCK: the exp loop stores, then the block is summed from \
       L1 (faster than summing inside the exp loop, see the design note). \
       `next`: the next row to prefetch, or NULL. */                      \
    static inline double sc_exp_shift_sum_pf_##SFX(const T *x, T shift,    \
                                                   T *out, Py_ssize_t n,   \
                                                   const T *next)          \
    {                                                                      \
        double s = 0.0;                                                    \
        for (Py_ssize_t b = 0; b < n; b += SC_EXP_BLOCK) {                 \
            Py_ssize_t m = n - b < SC_EXP_BLOCK ? n - b : SC_EXP_BLOCK;    \
            sc_exp_shift_store_##SFX(x + b, shift, out + b, m,             \
                                     next ? next + b : NULL);              \
            s += sc_dsum_##SFX(out + b, m);                                \
        }                                                                  \
        return s;                                                          \
    }                                                                      \
    static inline double sc_exp_shift_sum_##SFX(const T *x, T shift,       \
                                                T *out, Py_ssize_t n)      \
    {                                                                      \
        return sc_exp_shift_sum_pf_##SFX(x, shift, out, n, NULL);          \
    }                                                                      \
    /* sum(exp(x[i] - shift)) in double, nothing stored: the same blocks, \
       through a scratch block on the stack. */                           \
    static inline double sc_sum_exp_shift_pf_##SFX(const T *x, T shift,    \
                                                   Py_ssize_t n,           \
                                                   const T *next)          \
    {                                                                      \
        T buf[SC_SCRATCH_BLOCK] __attribute__((aligned(64)));              \
        double s = 0.0;                                                    \
        for (Py_ssize_t b = 0; b < n; b += SC_SCRATCH_BLOCK) {             \
            Py_ssize_t m = n - b < SC_SCRATCH_BLOCK ? n - b : SC_SCRATCH_BLOCK;\
            sc_exp_shift_store_##SFX(x + b, shift, buf, m,                 \
                                     next ? next + b : NULL);              \
            s += sc_dsum_##SFX(buf, m);                                    \
        }                                                                  \
        return s;                                                          \
    }                                                                      \
    static inline double sc_sum_exp_shift_##SFX(const T *x, T shift,       \
                                                Py_ssize_t n)              \
    {                                                                      \
        return sc_sum_exp_shift_pf_##SFX(x, shift, n, NULL);               \
    }

/* double: no conversion, the sum is one add per vector inside the exp
   loop (the blocked form above measured even on AVX-512 and slower on
   AVX2). */
#define SC_DEFINE_EXPSUM_FUSED(T, SFX, W)                                      \
    /* out[i] = exp(x[i] - shift); returns sum(out) in double; `next`:    \
       the next row to prefetch, or NULL. */                              \
    static inline double sc_exp_shift_sum_pf_##SFX(const T *x, T shift,    \
                                                   T *out, Py_ssize_t n,   \
                                                   const T *next)          \
    {                                                                      \
        sc_vsum a0 = sc_vsum_zero(), a1 = sc_vsum_zero();                  \
        sc_v##SFX vs = sc_vset_##SFX(shift), e;                            \
        Py_ssize_t i = 0;                                                  \
        for (; i + W <= n; i += W) {                                       \
            if (next) sc_prefetch_##SFX(next + i);                         \
            e = sc_vexp_##SFX(sc_vsub_##SFX(sc_vld_##SFX(x + i), vs));     \
            sc_vst_##SFX(out + i, e);                                      \
            sc_vacc_##SFX(a0, a1, e);                                      \
        }                                                                  \
        if (i < n) {                                                       \
            if (next) sc_prefetch_##SFX(next + i);                         \
            e = sc_vexp_##SFX(sc_vsub_##SFX(sc_vldt_##SFX(x + i, n - i, vs), vs));\
            sc_vstt_##SFX(out + i, n - i, e);                              \
            e = sc_vzt_##SFX(e, n - i);                                    \
            sc_vacc_##SFX(a0, a1, e);                                      \
        }                                                                  \
        return sc_vsum_total(sc_vadd_s(a0, a1));                           \
    }                                                                      \
    static inline double sc_exp_shift_sum_##SFX(const T *x, T shift,       \
                                                T *out, Py_ssize_t n)      \
    {                                                                      \
        return sc_exp_shift_sum_pf_##SFX(x, shift, out, n, NULL);          \
    }                                                                      \
    /* sum(exp(x[i] - shift)) in double, nothing stored. */                \
    static inline double sc_sum_exp_shift_pf_##SFX(const T *x, T shift,    \
                                                   Py_ssize_t n,           \
                                                   const T *next)          \
    {                                                                      \
        sc_vsum a0 = sc_vsum_zero(), a1 = sc_vsum_zero();                  \
        sc_v##SFX vs = sc_vset_##SFX(shift), e;                            \
        Py_ssize_t i = 0;                                                  \
        for (; i + W <= n; i += W) {                                       \
            if (next) sc_prefetch_##SFX(next + i);                         \
            e = sc_vexp_##SFX(sc_vsub_##SFX(sc_vld_##SFX(x + i), vs));     \
            sc_vacc_##SFX(a0, a1, e);                                      \
        }                                                                  \
        if (i < n) {                                                       \
            if (next) sc_prefetch_##SFX(next + i);                         \
            e = sc_vexp_##SFX(sc_vsub_##SFX(sc_vldt_##SFX(x + i, n - i, vs), vs));\
            e = sc_vzt_##SFX(e, n - i);                                    \
            sc_vacc_##SFX(a0, a1, e);                                      \
        }                                                                  \
        return sc_vsum_total(sc_vadd_s(a0, a1));                           \
    }                                                                      \
    static inline double sc_sum_exp_shift_##SFX(const T *x, T shift,       \
                                                Py_ssize_t n)              \
    {                                                                      \
        return sc_sum_exp_shift_pf_##SFX(x, shift, n, NULL);               \
    }

SC_DEFINE_VEXP_LOOPS(float, f, SC_VW_F)
SC_DEFINE_VEXP_LOOPS(double, d, SC_VW_D)
SC_DEFINE_EXPSUM_BLOCKED(float, f, SC_VW_F)
SC_DEFINE_EXPSUM_FUSED(double, d, SC_VW_D)

#endif /* AVX-512 or AVX2 + FMA */
#endif /* SOFTMAX_CORE_VEXP_H */
