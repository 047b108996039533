"""CUDA C++ source of the GPU kernels, generated per dtype and launch shape.

Pure Python (no CuPy): the text is compiled lazily by ``cupy.RawModule`` at
the first call that needs it, and the test suite compiles it with ``nvcc``
where one is installed.  The sources include no headers at all (NVRTC has
no standard library, and ``cuda_fp16.h`` is not always shipped next to it):
half precision is stored as raw 16-bit words and converted with the PTX
``cvt`` instructions.

Design
------
* ``scalar_t`` is the stored type (``float``, ``double`` or ``half_t``);
  ``acc_t`` the accumulation type (``float`` for half and float, ``double``
  for double).  Every reduction accumulates in ``acc_t``.
* Non-finite values follow the CPU kernels: the row maximum propagates NaN,
  a row containing ``+inf`` (``exp(inf - inf)``) or consisting only of
  ``-inf`` (``exp(-inf + inf)``) gives NaN for softmax / log_softmax, and
  logsumexp returns the maximum itself when it is infinite (as SciPy).
* Warp kernels (rows of at most 1024 elements): a group of ``G`` lanes owns a
  row, ``ITEMS`` register elements per lane; the row is read once.
* Block kernels (longer rows): pass 1 keeps an online ``(max, sum)`` pair per
  thread, ``VEC``-wide loads, ``UNROLL`` loads in flight; pairs are merged
  by warp shuffles and a shared-memory tree; pass 2 reads the row again
  (mostly from L2) and writes the result.
* Cross-entropy (index targets): per row ``l = (1 - eps) * w[y] * (lse - z[y])
  - eps / C * sum_c w[c] * log p[c]`` and gradient
  ``scale * (p[c] * ((1 - eps) * w[y] + eps * W / C) - eps / C * w[c]
  - (1 - eps) * w[y] * [c == y])`` with ``W = sum(w)`` and
  ``scale = sample_weight[n]`` (divided by the mean's denominator
  ``sum_n sample_weight[n] * w[y_n]`` over non-ignored rows for
  ``reduction="mean"``).  Ignored rows get zero loss and zero gradient.
  Single-block kernels compute the denominator and ``W`` first
  (``ce_prepare``) and the reduced loss last (``loss_sum``), deterministically.
"""

__all__ = ["DTYPES", "FAMILIES", "kernel_name", "kernel_source", "module_source",
           "prelude"]

# dtype name -> (scalar_t, acc_t, exp, log, +inf, short name)
_TYPES = {
    "float16": ("half_t", "float", "expf", "logf", "__int_as_float(0x7f800000)", "f16"),
    "float32": ("float", "float", "expf", "logf", "__int_as_float(0x7f800000)", "f32"),
    "float64": ("double", "double", "exp", "log",
                "__longlong_as_double(0x7ff0000000000000LL)", "f64"),
}
DTYPES = tuple(_TYPES)

_HALF = r"""
struct __align__(2) half_t { unsigned short bits; };
__device__ __forceinline__ float to_acc(half_t h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h.bits));
  return f;
}
__device__ __forceinline__ half_t from_acc(float f) {
  half_t h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.bits) : "f"(f));
  return h;
}
"""

_IDENTITY = r"""
__device__ __forceinline__ acc_t to_acc(scalar_t v) { return v; }
__device__ __forceinline__ scalar_t from_acc(acc_t v) { return v; }
"""

_LIBRARY = r"""
#define FULL_MASK 0xffffffffu

template <int N> struct alignas(sizeof(scalar_t) * N) vec_t { scalar_t v[N]; };

// max that propagates NaN from either side
__device__ __forceinline__ acc_t sc_nanmax(acc_t a, acc_t b) {
  return (a != a || a > b) ? a : b;
}

// logsumexp from the row's (max, sum of exp(x - max)); SciPy's rule for an
// infinite max (-inf for an all -inf row, +inf when +inf is present)
__device__ __forceinline__ acc_t sc_lse(acc_t m, acc_t s) {
  return (m == SC_INF || m == -SC_INF) ? m : m + SC_LOG(s);
}

// merge (m2, s2) into the online pair (m, s)
__device__ __forceinline__ void sc_ms_merge(acc_t &m, acc_t &s, acc_t m2, acc_t s2) {
  const acc_t mm = sc_nanmax(m, m2);
  if (mm == -SC_INF) {  // both empty (only -inf seen): sums are 0
    s = s + s2;
  } else {
    s = s * SC_EXP(m - mm) + s2 * SC_EXP(m2 - mm);
  }
  m = mm;
}

template <int WIDTH>
__device__ __forceinline__ acc_t sc_group_max(acc_t v) {
#pragma unroll
  for (int o = WIDTH / 2; o > 0; o >>= 1) {
    v = sc_nanmax(v, __shfl_xor_sync(FULL_MASK, v, o, WIDTH));
  }
  return v;
}

template <int WIDTH>
__device__ __forceinline__ acc_t sc_group_sum(acc_t v) {
#pragma unroll
  for (int o = WIDTH / 2; o > 0; o >>= 1) {
    v += __shfl_xor_sync(FULL_MASK, v, o, WIDTH);
  }
  return v;
}

template <int WIDTH>
__device__ __forceinline__ void sc_group_ms(acc_t &m, acc_t &s) {
#pragma unroll
  for (int o = WIDTH / 2; o > 0; o >>= 1) {
    const acc_t m2 = __shfl_xor_sync(FULL_MASK, m, o, WIDTH);
    const acc_t s2 = __shfl_xor_sync(FULL_MASK, s, o, WIDTH);
    sc_ms_merge(m, s, m2, s2);
  }
}

// block-wide reductions; every thread of the block must call them and gets
// the result.  The leading barrier makes back-to-back calls safe.
template <int THREADS>
__device__ __forceinline__ acc_t sc_block_sum(acc_t v) {
  __shared__ acc_t red[32];
  const int lane = threadIdx.x & 31;
  const int wid = threadIdx.x >> 5;
  v = sc_group_sum<32>(v);
  __syncthreads();
  if (lane == 0) red[wid] = v;
  __syncthreads();
  if (wid == 0) {
    v = lane < THREADS / 32 ? red[lane] : (acc_t)0;
    v = sc_group_sum<32>(v);
    if (lane == 0) red[0] = v;
  }
  __syncthreads();
  return red[0];
}

template <int THREADS>
__device__ __forceinline__ void sc_block_ms(acc_t &m, acc_t &s) {
  __shared__ acc_t red_m[32];
  __shared__ acc_t red_s[32];
  const int lane = threadIdx.x & 31;
  const int wid = threadIdx.x >> 5;
  sc_group_ms<32>(m, s);
  __syncthreads();
  if (lane == 0) {
    red_m[wid] = m;
    red_s[wid] = s;
  }
  __syncthreads();
  if (wid == 0) {
    m = lane < THREADS / 32 ? red_m[lane] : -SC_INF;
    s = lane < THREADS / 32 ? red_s[lane] : (acc_t)0;
    sc_group_ms<32>(m, s);
    if (lane == 0) {
      red_m[0] = m;
      red_s[0] = s;
    }
  }
  __syncthreads();
  m = red_m[0];
  s = red_s[0];
}

// pass 1 of the block kernels: online (max, sum) of one row, one read
template <int THREADS, int VEC, int UNROLL>
__device__ __forceinline__ void sc_row_stats_block(const scalar_t* __restrict__ xr, int n_cols,
                                                   acc_t &m, acc_t &s) {
  typedef vec_t<VEC> V;
  const V* xv = reinterpret_cast<const V*>(xr);
  const int nv = n_cols / VEC;
  m = -SC_INF;
  s = 0;
  for (int base = threadIdx.x; base < nv; base += THREADS * UNROLL) {
    acc_t v[UNROLL * VEC];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int i = base + u * THREADS;
      if (i < nv) {
        const V t = xv[i];
#pragma unroll
        for (int k = 0; k < VEC; ++k) v[u * VEC + k] = to_acc(t.v[k]);
      } else {
#pragma unroll
        for (int k = 0; k < VEC; ++k) v[u * VEC + k] = -SC_INF;
      }
    }
    acc_t cm = m;
#pragma unroll
    for (int k = 0; k < UNROLL * VEC; ++k) cm = sc_nanmax(cm, v[k]);
    if (cm != -SC_INF) {
      acc_t t = s * SC_EXP(m - cm);
#pragma unroll
      for (int k = 0; k < UNROLL * VEC; ++k) t += SC_EXP(v[k] - cm);
      m = cm;
      s = t;
    }
  }
  sc_block_ms<THREADS>(m, s);
}

// mode: 0 softmax, 1 log_softmax, 2 logsumexp (y has one element per row)
template <int G, int ITEMS>
__device__ __forceinline__ void sc_softmax_warp(const scalar_t* __restrict__ x,
                                                scalar_t* __restrict__ y,
                                                long long n_rows, int n_cols, int mode) {
  const int lane = threadIdx.x & (G - 1);
  const long long row = (long long)blockIdx.x * (blockDim.x / G) + threadIdx.x / G;
  const bool active = row < n_rows;
  const scalar_t* xr = x + (active ? row : 0LL) * n_cols;
  acc_t v[ITEMS];
  acc_t m = -SC_INF;
#pragma unroll
  for (int j = 0; j < ITEMS; ++j) {
    const int c = lane + j * G;
    v[j] = (active && c < n_cols) ? to_acc(xr[c]) : -SC_INF;
    m = sc_nanmax(m, v[j]);
  }
  m = sc_group_max<G>(m);
  acc_t s = 0;
#pragma unroll
  for (int j = 0; j < ITEMS; ++j) {
    const int c = lane + j * G;
    const acc_t e = c < n_cols ? SC_EXP(v[j] - m) : (acc_t)0;
    s += e;
    if (mode == 0) v[j] = e;
  }
  s = sc_group_sum<G>(s);
  if (!active) return;
  if (mode == 2) {
    if (lane == 0) y[row] = from_acc(sc_lse(m, s));
    return;
  }
  scalar_t* yr = y + row * n_cols;
  if (mode == 0) {
    const acc_t inv = (acc_t)1 / s;
#pragma unroll
    for (int j = 0; j < ITEMS; ++j) {
      const int c = lane + j * G;
      if (c < n_cols) yr[c] = from_acc(v[j] * inv);
    }
  } else {
    const acc_t ls = SC_LOG(s);
#pragma unroll
    for (int j = 0; j < ITEMS; ++j) {
      const int c = lane + j * G;
      if (c < n_cols) yr[c] = from_acc((v[j] - m) - ls);
    }
  }
}

template <int THREADS, int VEC, int UNROLL>
__device__ __forceinline__ void sc_softmax_block(const scalar_t* __restrict__ x,
                                                 scalar_t* __restrict__ y,
                                                 long long n_rows, int n_cols, int mode) {
  typedef vec_t<VEC> V;
  const long long row = blockIdx.x;
  const scalar_t* xr = x + row * n_cols;
  acc_t m, s;
  sc_row_stats_block<THREADS, VEC, UNROLL>(xr, n_cols, m, s);
  if (mode == 2) {
    if (threadIdx.x == 0) y[row] = from_acc(sc_lse(m, s));
    return;
  }
  const V* xv = reinterpret_cast<const V*>(xr);
  V* yv = reinterpret_cast<V*>(y + row * n_cols);
  const int nv = n_cols / VEC;
  const acc_t inv = (acc_t)1 / s;
  const acc_t ls = SC_LOG(s);
  for (int i = threadIdx.x; i < nv; i += THREADS) {
    const V t = xv[i];
    V o;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const acc_t d = to_acc(t.v[k]) - m;
      o.v[k] = from_acc(mode == 0 ? SC_EXP(d) * inv : d - ls);
    }
    yv[i] = o;
  }
}

// per-row coefficients of the cross-entropy gradient
struct sc_ce_row {
  acc_t wy;     // w[y]
  acc_t sw;     // sample weight
  acc_t scale;  // d(reduced loss) / d(row loss)
  acc_t a;      // coefficient of p[c]
  acc_t epsc;   // eps / C
  acc_t w_all;  // sum of the class weights (C without weights)
};

__device__ __forceinline__ sc_ce_row sc_ce_coeffs(long long y, long long row,
                                                  const acc_t* __restrict__ weight,
                                                  const acc_t* __restrict__ sample_weight,
                                                  const acc_t* __restrict__ stats,
                                                  int n_cols, acc_t eps, int use_denom) {
  sc_ce_row r;
  r.wy = weight ? weight[y] : (acc_t)1;
  r.sw = sample_weight ? sample_weight[row] : (acc_t)1;
  r.scale = use_denom ? r.sw / stats[0] : r.sw;
  r.w_all = (weight && eps != (acc_t)0) ? stats[1] : (acc_t)n_cols;
  r.epsc = eps / (acc_t)n_cols;
  r.a = ((acc_t)1 - eps) * r.wy + r.epsc * r.w_all;
  return r;
}

// row loss (times the sample weight) from lse - max = log(s), the shifted
// target logit zy - m and the shifted weighted sum sd = sum_c w[c] (z[c] - m)
__device__ __forceinline__ acc_t sc_ce_loss(const sc_ce_row &r, acc_t ls, acc_t zym, acc_t sd,
                                            acc_t eps) {
  acc_t loss = ((acc_t)1 - eps) * r.wy * (ls - zym);
  if (eps != (acc_t)0) loss -= r.epsc * (sd - r.w_all * ls);
  return r.sw * loss;
}

__device__ __forceinline__ acc_t sc_ce_grad(const sc_ce_row &r, acc_t p, acc_t wc, bool is_y,
                                            acc_t eps) {
  acc_t g = p * r.a - r.epsc * wc;
  if (is_y) g -= ((acc_t)1 - eps) * r.wy;
  return r.scale * g;
}

template <int G, int ITEMS>
__device__ __forceinline__ void sc_ce_warp(
    const scalar_t* __restrict__ x, const long long* __restrict__ target,
    const acc_t* __restrict__ weight, const acc_t* __restrict__ sample_weight,
    const acc_t* __restrict__ stats, scalar_t* __restrict__ grad, acc_t* __restrict__ row_loss,
    long long n_rows, int n_cols, long long ignore_index, acc_t eps, int use_denom) {
  const int lane = threadIdx.x & (G - 1);
  const long long row = (long long)blockIdx.x * (blockDim.x / G) + threadIdx.x / G;
  const bool active = row < n_rows;
  const long long y = active ? target[row] : ignore_index;
  const bool live = active && y != ignore_index;
  const scalar_t* xr = x + (active ? row : 0LL) * n_cols;
  acc_t v[ITEMS];
  acc_t m = -SC_INF;
#pragma unroll
  for (int j = 0; j < ITEMS; ++j) {
    const int c = lane + j * G;
    v[j] = (live && c < n_cols) ? to_acc(xr[c]) : -SC_INF;
    m = sc_nanmax(m, v[j]);
  }
  m = sc_group_max<G>(m);
  acc_t s = 0;
  acc_t sd = 0;
#pragma unroll
  for (int j = 0; j < ITEMS; ++j) {
    const int c = lane + j * G;
    if (live && c < n_cols) {
      const acc_t d = v[j] - m;
      if (eps != (acc_t)0) sd += (weight ? weight[c] : (acc_t)1) * d;
      v[j] = SC_EXP(d);
      s += v[j];
    }
  }
  s = sc_group_sum<G>(s);
  if (eps != (acc_t)0) sd = sc_group_sum<G>(sd);
  if (!active) return;
  scalar_t* gr = grad + row * n_cols;
  if (!live) {
#pragma unroll
    for (int j = 0; j < ITEMS; ++j) {
      const int c = lane + j * G;
      if (c < n_cols) gr[c] = from_acc((acc_t)0);
    }
    if (lane == 0) row_loss[row] = 0;
    return;
  }
  const sc_ce_row r = sc_ce_coeffs(y, row, weight, sample_weight, stats, n_cols, eps, use_denom);
  const acc_t inv = (acc_t)1 / s;
#pragma unroll
  for (int j = 0; j < ITEMS; ++j) {
    const int c = lane + j * G;
    if (c < n_cols) {
      gr[c] = from_acc(sc_ce_grad(r, v[j] * inv, weight ? weight[c] : (acc_t)1, c == y, eps));
    }
  }
  if (lane == 0) {
    row_loss[row] = sc_ce_loss(r, SC_LOG(s), to_acc(xr[y]) - m, sd, eps);
  }
}

template <int THREADS, int VEC, int UNROLL>
__device__ __forceinline__ void sc_ce_block(
    const scalar_t* __restrict__ x, const long long* __restrict__ target,
    const acc_t* __restrict__ weight, const acc_t* __restrict__ sample_weight,
    const acc_t* __restrict__ stats, scalar_t* __restrict__ grad, acc_t* __restrict__ row_loss,
    long long n_rows, int n_cols, long long ignore_index, acc_t eps, int use_denom) {
  typedef vec_t<VEC> V;
  const long long row = blockIdx.x;
  const long long y = target[row];
  const scalar_t* xr = x + row * n_cols;
  V* gv = reinterpret_cast<V*>(grad + row * n_cols);
  const int nv = n_cols / VEC;
  if (y == ignore_index) {  // uniform across the block
    V o;
#pragma unroll
    for (int k = 0; k < VEC; ++k) o.v[k] = from_acc((acc_t)0);
    for (int i = threadIdx.x; i < nv; i += THREADS) gv[i] = o;
    if (threadIdx.x == 0) row_loss[row] = 0;
    return;
  }
  acc_t m, s;
  sc_row_stats_block<THREADS, VEC, UNROLL>(xr, n_cols, m, s);
  const sc_ce_row r = sc_ce_coeffs(y, row, weight, sample_weight, stats, n_cols, eps, use_denom);
  const acc_t inv = (acc_t)1 / s;
  const V* xv = reinterpret_cast<const V*>(xr);
  acc_t sd = 0;
  for (int i = threadIdx.x; i < nv; i += THREADS) {
    const V t = xv[i];
    V o;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const int c = i * VEC + k;
      const acc_t d = to_acc(t.v[k]) - m;
      const acc_t wc = weight ? weight[c] : (acc_t)1;
      if (eps != (acc_t)0) sd += wc * d;
      o.v[k] = from_acc(sc_ce_grad(r, SC_EXP(d) * inv, wc, c == y, eps));
    }
    gv[i] = o;
  }
  if (eps != (acc_t)0) sd = sc_block_sum<THREADS>(sd);
  if (threadIdx.x == 0) {
    row_loss[row] = sc_ce_loss(r, SC_LOG(s), to_acc(xr[y]) - m, sd, eps);
  }
}

// one block: stats[0] = sum over non-ignored rows of sample_weight * w[y]
// (the "mean" denominator), stats[1] = sum(w) (C without weights)
template <int THREADS>
__device__ __forceinline__ void sc_ce_prepare(
    const long long* __restrict__ target, const acc_t* __restrict__ weight,
    const acc_t* __restrict__ sample_weight, acc_t* __restrict__ stats,
    long long n_rows, int n_cols, long long ignore_index) {
  acc_t d = 0;
#pragma unroll 8
  for (long long i = threadIdx.x; i < n_rows; i += THREADS) {
    const long long y = target[i];
    if (y != ignore_index) {
      d += (weight ? weight[y] : (acc_t)1) * (sample_weight ? sample_weight[i] : (acc_t)1);
    }
  }
  d = sc_block_sum<THREADS>(d);
  acc_t w = 0;
  if (weight) {
    for (int c = threadIdx.x; c < n_cols; c += THREADS) w += weight[c];
  }
  w = sc_block_sum<THREADS>(w);
  if (threadIdx.x == 0) {
    stats[0] = d;
    stats[1] = weight ? w : (acc_t)n_cols;
  }
}

// one block: out[0] = sum(row_loss) (divided by stats[0] when use_denom)
template <int THREADS>
__device__ __forceinline__ void sc_loss_sum(const acc_t* __restrict__ row_loss,
                                            const acc_t* __restrict__ stats,
                                            scalar_t* __restrict__ out, long long n,
                                            int use_denom) {
  acc_t t = 0;
#pragma unroll 8
  for (long long i = threadIdx.x; i < n; i += THREADS) t += row_loss[i];
  t = sc_block_sum<THREADS>(t);
  if (threadIdx.x == 0) out[0] = from_acc(use_denom ? t / stats[0] : t);
}
"""

_SOFTMAX_PARAMS = ("const scalar_t* __restrict__ x, scalar_t* __restrict__ y, "
                   "long long n_rows, int n_cols, int mode")
_SOFTMAX_ARGS = "x, y, n_rows, n_cols, mode"
_CE_PARAMS = ("const scalar_t* __restrict__ x, const long long* __restrict__ target, "
              "const acc_t* __restrict__ weight, const acc_t* __restrict__ sample_weight, "
              "const acc_t* __restrict__ stats, scalar_t* __restrict__ grad, "
              "acc_t* __restrict__ row_loss, long long n_rows, int n_cols, "
              "long long ignore_index, acc_t eps, int use_denom")
_CE_ARGS = ("x, target, weight, sample_weight, stats, grad, row_loss, n_rows, n_cols, "
            "ignore_index, eps, use_denom")

# family -> {key kind: (device function, parameters, arguments)}
FAMILIES = {
    "softmax": {"warp": ("sc_softmax_warp", _SOFTMAX_PARAMS, _SOFTMAX_ARGS),
                "block": ("sc_softmax_block", _SOFTMAX_PARAMS, _SOFTMAX_ARGS)},
    "cross_entropy": {"warp": ("sc_ce_warp", _CE_PARAMS, _CE_ARGS),
                      "block": ("sc_ce_block", _CE_PARAMS, _CE_ARGS)},
    "ce_prepare": {"single": (
        "sc_ce_prepare",
        "const long long* __restrict__ target, const acc_t* __restrict__ weight, "
        "const acc_t* __restrict__ sample_weight, acc_t* __restrict__ stats, "
        "long long n_rows, int n_cols, long long ignore_index",
        "target, weight, sample_weight, stats, n_rows, n_cols, ignore_index")},
    "loss_sum": {"single": (
        "sc_loss_sum",
        "const acc_t* __restrict__ row_loss, const acc_t* __restrict__ stats, "
        "scalar_t* __restrict__ out, long long n, int use_denom",
        "row_loss, stats, out, n, use_denom")},
}


def _check_dtype(dtype):
    name = str(dtype)
    if name not in _TYPES:
        raise ValueError(f"no CUDA kernels for dtype {name!r}; expected one of {DTYPES}")
    return name


def _check_key(family, key):
    if family not in FAMILIES:
        raise ValueError(f"unknown kernel family {family!r}; expected one of {tuple(FAMILIES)}")
    key = tuple(key)
    kinds = FAMILIES[family]
    if not key or key[0] not in kinds:
        raise ValueError(f"kernel family {family!r} takes keys of kind {tuple(kinds)}, got {key!r}")
    expected = {"warp": 4, "block": 4, "single": 2}[key[0]]
    if len(key) != expected or not all(isinstance(k, int) and k > 0 for k in key[1:]):
        raise ValueError(f"malformed launch key {key!r}")
    if key[0] == "warp":
        _, threads, group, items = key
        if group > 32 or group & (group - 1) or threads % group or threads % 32:
            raise ValueError(f"bad warp launch key {key!r}")
    elif key[1] % 32 or key[1] > 1024:
        raise ValueError(f"threads must be a multiple of 32 up to 1024, got {key!r}")
    return key


def kernel_name(family, dtype, key):
    """The ``extern "C"`` name of one kernel, e.g. ``sc_softmax_f32_warp_t128_g16_i1``."""
    key = _check_key(family, key)
    short = _TYPES[_check_dtype(dtype)][5]
    kind = key[0]
    if kind == "warp":
        tail = "t{}_g{}_i{}".format(*key[1:])
    elif kind == "block":
        tail = "t{}_v{}_u{}".format(*key[1:])
    else:
        tail = f"t{key[1]}"
    return f"sc_{family}_{short}_{kind}_{tail}"


def prelude(dtype):
    """Type definitions and helpers shared by every kernel of one dtype."""
    scalar, acc, exp, log, inf, short = _TYPES[_check_dtype(dtype)]
    head = [
        f"// softmax_core GPU kernels, {dtype} storage, {acc} accumulation",
        f"#define SC_EXP {exp}",
        f"#define SC_LOG {log}",
        f"#define SC_INF {inf}",
        f"typedef {acc} acc_t;",
    ]
    if scalar == "half_t":
        conv = _HALF + "typedef half_t scalar_t;\n"
    else:
        conv = f"typedef {scalar} scalar_t;\n" + _IDENTITY
    return "\n".join(head) + "\n" + conv + _LIBRARY


def _entry(family, dtype, key):
    device_fn, params, args = FAMILIES[family][key[0]]
    name = kernel_name(family, dtype, key)
    threads = key[1]
    if key[0] == "warp":
        targs = f"{key[2]}, {key[3]}"
    elif key[0] == "block":
        targs = f"{key[1]}, {key[2]}, {key[3]}"
    else:
        targs = f"{key[1]}"
    return (f'extern "C" __global__ void __launch_bounds__({threads})\n'
            f"{name}({params}) {{\n  {device_fn}<{targs}>({args});\n}}\n")


def module_source(dtype, kernels):
    """Source of one module holding the kernels ``[(family, key), ...]`` for ``dtype``."""
    dtype = _check_dtype(dtype)
    entries = []
    for family, key in kernels:
        entries.append(_entry(family, dtype, _check_key(family, key)))
    return prelude(dtype) + "\n" + "\n".join(entries)


def kernel_source(family, dtype, key):
    """Source of a module with the single kernel ``kernel_name(family, dtype, key)``."""
    return module_source(dtype, [(family, key)])
