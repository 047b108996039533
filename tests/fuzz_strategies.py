"""Shared pieces of the fuzz suite (``tests/test_fuzz_*.py``): strategies, layouts,
float64 references with error bounds, and a tolerant comparison.

Not a test module (no ``test_`` prefix), so pytest only imports it (for
``--doctest-modules``; it has no doctests).

Values are drawn as a seed plus a *kind* (normal, tiny, huge, ties, ...) and a
rate of special values (inf, -inf, NaN, -0, the largest finite, the smallest
subnormal) and made with NumPy's generator: arrays of hundreds of entries stay
cheap, and a falsifying example still names everything needed to rebuild it
(the array itself is also printed with ``hypothesis.note``).

Error bounds (``*_bound`` below) follow the rounding analysis of the
max-shifted formulas, with ``eps`` the unit roundoff of the compute dtype
(float32 for float16 input) and ``z = x - max``:

* ``x - max`` is rounded once, an absolute error of ``eps |z|``, which ``exp``
  turns into a relative error of ``eps |z|``;
* the sum ``s = sum(exp(z))`` (accumulated in double) then has a relative
  error of at most ``eps (1 + zbar)`` with ``zbar = sum |z_j| exp(z_j) / s``;
* so ``softmax`` is within ``K eps (1 + |z_i| + zbar)`` relatively,
  ``log_softmax`` and ``logsumexp`` within ``K eps (1 + |z_i| + |log s| +
  zbar)`` (``+ |max|`` for logsumexp) absolutely, where ``K = 16`` covers the
  few-ulp error of the kernels' vectorised ``exp``/``log`` and the final
  multiplications; rounding to a narrower result dtype adds half an ulp of
  that dtype, and results below the smallest normal number are compared
  absolutely (a kernel may flush subnormals).
* With ``b=`` of mixed signs the sum can cancel: its relative error is
  ``eps * sum |b_j| e^{z_j} (1 + |z_j|) / |sum b_j e^{z_j}|``, and entries
  whose bound exceeds 1e-3 are not compared (their value is noise in any
  implementation).
"""

import contextlib
import math
import warnings

import numpy as np
from hypothesis import note, settings
from hypothesis import strategies as st

K = 16  # ulps of slack on top of the analytic bounds (vectorised exp/log, final roundings)

FLOATS = (np.float16, np.float32, np.float64)
INPUT_DTYPES = (np.float64, np.float32, np.float64, np.float32, np.float16, np.int64,
                np.int32, np.uint8, np.bool_)
LAYOUTS = ("C", "F", "negative", "sliced", "broadcast", "readonly", "misaligned",
           "memmap", "list")
VALUE_KINDS = ("normal", "small", "wide", "ties", "integers", "huge", "tiny")


def fuzz_settings(weight=1.0, **kwargs):
    """The loaded profile's settings with ``weight`` times its ``max_examples``.

    The profiles (``tests/conftest.py``): "ci" (default, bounded, derandomized)
    and "campaign" (many examples, random seeds); ``HYPOTHESIS_PROFILE``
    selects one.
    """
    base = settings.default.max_examples
    return settings(max_examples=max(1, round(base * weight)), **kwargs)


# --------------------------------------------------------------------- calls

CALLS = {"count": 0}


def call(func, *args, **kwargs):
    """Call a public function, counting the call (the campaign reports the total)."""
    CALLS["count"] += 1
    return func(*args, **kwargs)


@contextlib.contextmanager
def strict_warnings():
    """Any RuntimeWarning raised inside is an error (the library must stay silent)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


@contextlib.contextmanager
def array_api_path(path):
    """Run the array-API namespaces on ``path``: "bridged" (their CPU arrays on the
    compiled kernels, the default) or "generic" (the pure array-API code, which
    serves GPU arrays, dask, integer data, ...)."""
    if path == "bridged":
        yield
        return
    from unittest import mock

    from softmax_core import _namespace

    with mock.patch.object(_namespace, "bridgeable", lambda first, others: False):
        yield


def quiet():
    """For the references: float64 NumPy with inf and NaN on purpose."""
    return np.errstate(all="ignore")


# ------------------------------------------------------------------- shapes, axes

@st.composite
def shapes(draw, min_dims=0, max_dims=5, max_size=400, min_side=0):
    ndim = draw(st.integers(min_dims, max_dims))
    side = {0: 1, 1: 40, 2: 12, 3: 7, 4: 5, 5: 4}[ndim]
    shape = tuple(draw(st.lists(st.integers(min_side, side), min_size=ndim, max_size=ndim)))
    while math.prod(shape) > max_size:
        i = int(np.argmax(shape))
        shape = shape[:i] + (shape[i] // 2,) + shape[i + 1:]
    return shape


@st.composite
def axes_for(draw, ndim):
    """Any valid axis argument: an int (maybe negative), a tuple (maybe empty,
    unsorted, negative) or None.  A 0-d array accepts 0, -1, () and None."""
    n = max(ndim, 1)
    form = draw(st.sampled_from(["int", "neg", "tuple", "none"]))
    if form == "none":
        return None
    if form in ("int", "neg"):
        a = draw(st.integers(0, n - 1))
        return a - n if form == "neg" else a
    if ndim == 0:
        return draw(st.sampled_from([(), (0,), (-1,)]))
    axes = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


def normalized(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    if ndim == 0:
        return ()
    return tuple(sorted(a % ndim for a in axes))


# ------------------------------------------------------------------------- values

def _specials(dtype):
    fi = np.finfo(dtype)
    return np.array([np.inf, -np.inf, np.nan, -0.0, float(fi.max), -float(fi.max),
                     float(fi.smallest_subnormal), 1.0], dtype=np.float64)


@st.composite
def values(draw, shape, dtype, specials=True, kinds=VALUE_KINDS):
    """A NumPy array of ``shape`` and ``dtype`` (float, int, uint or bool)."""
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(kinds))
    rate = draw(st.sampled_from([0.0, 0.0, 0.05, 0.3])) if specials else 0.0
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        x = rng.random(shape) < 0.5
        return np.asarray(x)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = (max(info.min, -50), min(info.max, 50)) if kind != "huge" else (
            info.min, info.max)
        return np.asarray(rng.integers(lo, hi, size=shape, endpoint=True, dtype=dtype))
    fi = np.finfo(dtype)
    if kind == "normal":
        x = 3 * rng.standard_normal(shape)
    elif kind == "small":
        x = 1e-3 * rng.standard_normal(shape)
    elif kind == "wide":
        x = rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 4, size=shape)
    elif kind == "ties":
        x = rng.integers(0, 2, size=shape).astype(np.float64)
    elif kind == "integers":
        x = rng.integers(-50, 50, size=shape).astype(np.float64)
    elif kind == "huge":
        x = float(fi.max) * rng.uniform(-1, 1, size=shape)
    else:  # tiny: subnormals, zeros and the smallest normals
        x = float(fi.smallest_normal) * rng.uniform(-2, 2, size=shape)
    if rate:
        hit = rng.random(shape) < rate
        x = np.where(hit, rng.choice(_specials(dtype), size=shape), x)
    with quiet():
        return np.asarray(np.asarray(x, dtype=np.float64).astype(dtype))


@st.composite
def masks(draw, shape):
    """A boolean mask broadcastable to ``shape`` (maybe fewer dims, maybe 1s),
    in any memory order."""
    ndim = len(shape)
    lead = draw(st.integers(0, ndim))
    mshape = tuple(1 if draw(st.booleans()) else d for d in shape[lead:])
    p = draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    m = rng.random(mshape) < p
    order = draw(st.sampled_from(["C", "F", "negative", "list"]))
    if order == "list" and m.size == 0:
        order = "C"  # [] would become a float array of shape (0,)
    if order == "F":
        m = np.array(m, order="F")
    elif order == "negative" and m.ndim:
        m = np.flip(np.ascontiguousarray(np.flip(m)))
    elif order == "list":
        m = m.tolist()
    return m


# ------------------------------------------------------------------------ layouts

def with_layout(x, layout, tmp_path_factory=None):
    """``x``'s values (``broadcast``: some of them) in a given memory layout."""
    x = np.asarray(x)
    if layout == "C":
        return np.array(x, order="C")  # (np.ascontiguousarray makes 0-d arrays 1-d)
    if layout == "F":
        return np.array(x, order="F")
    if layout == "negative":
        axes = tuple(range(0, x.ndim, 2)) or None
        return np.flip(np.ascontiguousarray(np.flip(x, axes)), axes) if x.ndim else x.copy()
    if layout == "sliced":
        if x.ndim == 0:
            return x.copy()
        big = np.zeros(tuple(2 * d + 1 for d in x.shape), dtype=x.dtype)
        view = big[tuple(slice(1, None, 2) for _ in x.shape)]
        view[...] = x
        return view
    if layout == "broadcast":
        if x.ndim == 0:
            return x.copy()
        small = x[tuple(slice(0, 1) if i % 2 == 0 else slice(None)
                        for i in range(x.ndim))]
        return np.broadcast_to(small, x.shape)
    if layout == "readonly":
        y = x.copy()
        y.flags.writeable = False
        return y
    if layout == "misaligned":
        buf = np.zeros(x.nbytes + x.itemsize + 1, dtype=np.uint8)
        y = np.ndarray(x.shape, dtype=x.dtype, buffer=buf, offset=1)
        y[...] = x
        return y
    if layout == "memmap":
        if x.size == 0:
            # a file of no bytes cannot be mapped: NumPy 2.1 raises, 2.4 returns
            # a memmap that maps nothing; an ordinary array on every version
            return x.copy()
        import os
        import tempfile

        fd, name = tempfile.mkstemp(suffix=".fuzz")
        os.close(fd)
        try:
            y = np.memmap(name, dtype=x.dtype, mode="w+", shape=x.shape or (1,))
            y = y.reshape(x.shape)
            y[...] = x
        finally:
            os.unlink(name)  # the mapping stays valid on POSIX
        return y
    if layout == "list":
        return x.tolist()
    raise AssertionError(layout)


@st.composite
def arrays(draw, shape=None, dtypes=INPUT_DTYPES, layouts=LAYOUTS, specials=True, **kw):
    """``(x, values)``: the argument in its layout and its values as an ndarray."""
    if shape is None:
        shape = draw(shapes(**kw))
    dtype = draw(st.sampled_from(dtypes))
    x = draw(values(shape, dtype, specials=specials))
    layout = draw(st.sampled_from(layouts))
    if layout == "list" and (dtype not in (np.float64, np.int64, np.bool_) or 0 in shape):
        layout = "C"  # a list loses the dtype (and a zero-size shape): default dtypes only
    arg = with_layout(x, layout)
    vals = np.array(arg)  # a broadcast layout changes the values
    note(f"layout={layout} dtype={np.dtype(dtype).name} shape={shape}\nx={vals!r}")
    return arg, vals


def snapshot(*arrays):
    """Copies of the arguments, to check afterwards that nothing was written."""
    return [None if a is None else np.array(a, copy=True) for a in arrays]


def assert_unchanged(before, *arrays):
    for b, a in zip(before, arrays, strict=True):
        if b is None:
            continue
        np.testing.assert_array_equal(np.asarray(a), b, err_msg="an input was modified")


# --------------------------------------------------------------------- references

def result_dtypes(vals, dtype=None):
    """``(compute, result)`` dtypes of the NumPy path (``numpy_compute_dtypes``)."""
    if dtype is not None:
        result = np.dtype(dtype)
    elif vals.dtype.kind in "biu":
        result = np.dtype(np.float64)
    else:
        result = vals.dtype
    compute = np.dtype(np.float32) if result == np.float16 else result
    return compute, result


def _zbar(z, e, s, axes):
    with quiet():
        t = np.where(e > 0, np.abs(z) * e, 0.0)
        return np.nan_to_num(np.sum(t, axis=axes, keepdims=True) / s, nan=0.0, posinf=0.0)


def ref_softmax(x64, axes, mask, use_log, compute, result):
    """``(reference, bound)`` of softmax / log_softmax in float64, rounded to ``result``."""
    eps = np.finfo(compute).eps
    eps_r = np.finfo(result).eps
    with quiet():
        xm = x64 if mask is None else np.where(mask, x64, -np.inf)
        if xm.size == 0:
            return xm.astype(result), np.zeros(xm.shape)
        m = np.max(xm, axis=axes, keepdims=True)
        z = xm - m
        e = np.exp(z)
        s = np.sum(e, axis=axes, keepdims=True)
        zbar = _zbar(z, e, s, axes)
        az = np.nan_to_num(np.abs(z), nan=0.0, posinf=0.0)
        if use_log:
            ref = z - np.log(s)
            ls = np.nan_to_num(np.abs(np.log(s)), nan=0.0, posinf=0.0)
            bound = K * eps * (1 + az + ls + zbar) + eps_r * np.abs(ref)
        else:
            ref = e / s
            bound = (K * eps * (1 + az + zbar) + eps_r) * np.abs(ref)
            bound = bound + np.finfo(result).smallest_normal
        if mask is not None:
            ref = np.where(mask, ref, -np.inf if use_log else 0.0)
            bound = np.where(mask, bound, 0.0)
        return ref.astype(result), np.nan_to_num(bound, nan=np.inf)


def ref_logsumexp(x64, axes, mask, b64, keepdims, compute, result):
    """``(res, sign, bound, compared)`` in float64, from scipy.special.logsumexp.

    Masked-out and zero-weight entries are removed first (the documented
    difference from SciPy), and an empty or all ``-inf`` reduction has sign 0.
    ``compared`` is False where cancellation makes the value meaningless.
    """
    from scipy.special import logsumexp as scipy_lse

    eps = np.finfo(compute).eps
    eps_r = np.finfo(result).eps
    with quiet():
        shape = x64.shape
        if b64 is not None:
            x64, b64 = np.broadcast_arrays(x64, b64)
        drop = np.zeros(x64.shape, bool) if mask is None else ~np.broadcast_to(mask, x64.shape)
        if b64 is not None:
            drop = drop | (b64 == 0)
        xr = np.where(drop, -np.inf, x64)
        br = None if b64 is None else np.where(drop, 1.0, b64)
        if xr.ndim == 0 or not axes:
            xr = xr[..., None]
            br = None if br is None else br[..., None]
            red = (xr.ndim - 1,)
        else:
            red = axes
        if xr.size == 0 or math.prod(xr.shape[i] for i in red) == 0:
            kept = tuple(1 if i in red else d for i, d in enumerate(xr.shape))
            res = np.full(kept, -np.inf)
            sign = np.zeros(kept)
            bound = np.zeros(kept)
            compared = np.ones(kept, bool)
        else:
            res, sign = scipy_lse(xr, axis=red, b=br, keepdims=True, return_sign=True)
            m = np.max(xr, axis=red, keepdims=True)
            shift = np.where(np.isfinite(m), m, 0.0)
            e = np.exp(xr - shift)
            az = np.nan_to_num(np.abs(xr - shift), nan=0.0, posinf=0.0)
            w = np.ones_like(xr) if br is None else np.abs(br)
            mag = np.sum(np.where(e > 0, w * e * (1 + az), 0.0), axis=red, keepdims=True)
            s = np.abs(np.sum(e if br is None else br * e, axis=red, keepdims=True))
            cond = np.where(s > 0, mag / s, np.inf)
            cond = np.where(np.isfinite(res), cond, 0.0)
            bound = K * eps * (1 + np.abs(shift) + cond) + eps_r * np.abs(res)
            compared = K * eps * cond <= 1e-3
            sign = np.where(res == -np.inf, 0.0, sign)
        # back to the caller's dims
        if len(shape) == 0 or not axes:
            res, sign, bound, compared = (a[..., 0] for a in (res, sign, bound, compared))
            if keepdims:
                pass  # nothing is reduced: the input's shape either way
        elif not keepdims:
            res, sign, bound, compared = (np.squeeze(a, axis=red)
                                          for a in (res, sign, bound, compared))
        return (res.astype(result), sign.astype(result), np.nan_to_num(bound, nan=np.inf),
                compared)


def assert_close(actual, ref, bound, result, what, compared=None, scale=1):
    """``actual`` equals ``ref`` within ``scale * bound`` elementwise; NaN where ref is
    NaN, infinities of the same sign (near-overflow values may round to either side)."""
    actual = np.asarray(actual)
    assert actual.shape == np.shape(ref), f"{what}: shape {actual.shape} != {np.shape(ref)}"
    a = actual.astype(np.float64)
    r = np.asarray(ref).astype(np.float64)
    big = float(np.finfo(result).max)
    with quiet():
        bound = np.broadcast_to(scale * np.asarray(bound, dtype=np.float64), r.shape)
        bad = np.isnan(a) != np.isnan(r)
        both_inf = np.isinf(a) & np.isinf(r)
        bad |= both_inf & (a != r)
        finite = ~np.isnan(a) & ~np.isnan(r) & ~both_inf
        diff = np.abs(np.clip(a, -big, big) - np.clip(r, -big, big))
        bad |= finite & ~(diff <= bound)
    if compared is not None:
        bad &= np.broadcast_to(compared, bad.shape)
    if bad.any():
        idx = np.argwhere(bad)[:5] if bad.ndim else [()]
        lines = [f"  at {tuple(int(i) for i in ix)}: got {a[tuple(ix)]!r}, "
                 f"expected {r[tuple(ix)]!r} within {bound[tuple(ix)]!r}" for ix in idx]
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} entries differ\n"
                             + "\n".join(lines))


def ref_backward(g64, y64, axes, use_log, compute, result):
    """``(reference, bound, compared)`` of the softmax / log_softmax vector-Jacobian product."""
    eps = np.finfo(compute).eps
    eps_r = np.finfo(result).eps
    with quiet():
        if use_log:
            ey = np.exp(y64)
            sg = np.sum(g64, axis=axes, keepdims=True)
            ref = g64 - ey * sg
            sag = np.sum(np.abs(g64), axis=axes, keepdims=True)
            ay = np.nan_to_num(np.abs(y64), posinf=0.0)
            bound = K * eps * (np.abs(g64) + ey * sag * (1 + ay))
        else:
            gy = np.sum(g64 * y64, axis=axes, keepdims=True)
            ref = y64 * (g64 - gy)
            agy = np.sum(np.abs(g64 * y64), axis=axes, keepdims=True)
            bound = K * eps * np.abs(y64) * (np.abs(g64) + agy)
        bound = bound + eps_r * np.abs(ref) + np.finfo(result).smallest_normal
        # an intermediate (g - sum, exp(y) * sum) beyond the compute dtype's range may
        # overflow even when the result would not: not compared there
        inter = np.abs(g64) + (sag + ey * sag if use_log else agy)
        compared = ~(inter > float(np.finfo(compute).max) / 4)
        return ref.astype(result), np.nan_to_num(bound, nan=np.inf), compared
