"""The inlined vector exp of the AVX2 and AVX-512 builds (src/vexp.h).

Every compiled target this CPU can run is tested through the raw exp loops
(``exp_loop``, the test entry at the end of primitives.pxi) and through the
public functions with that target's kernels swapped in.  Oracles: NumPy's
float64 exp (for float32 results), ``np.longdouble`` exp and mpmath (for
float64 results), and float64 reference formulas for softmax.

Accuracy: within 2 ulp of the correctly rounded exp over the whole domain,
subnormal outputs included (they are computed, not flushed: see
docs/user_guide/stability.rst); the ulp of a subnormal is the smallest
subnormal.  The baseline build keeps libmvec, whose expf is not within
2 ulp everywhere, so the ulp tests cover the vexp targets only; the loop
contracts and the special values are tested on every target.
"""

import importlib
import math

import numpy as np
import pytest

import softmax_core
from softmax_core import _losses_numpy, _softmax_numpy, _threads
from softmax_core._native import available_targets

VEXP_TARGETS = ("x86_64_v3", "x86_64_v4")
TARGETS = available_targets()
ULP_TARGETS = [t for t in TARGETS if t in VEXP_TARGETS]

F32 = np.float32
F64 = np.float64
# the tolerances of tests/test_softmax.py
TOL = {F32: dict(rtol=2e-6, atol=1e-6), F64: dict(rtol=1e-13, atol=1e-14)}


def _module(target):
    return importlib.import_module(f"softmax_core._kernels_{target}")


def _exp(mod, x):
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    mod.exp_loop(0, x, np.zeros_like(x), out, np.zeros(x.size))
    return out


def _assert_same_exp(mod, got, want):
    """vexp targets: bit for bit (one vector exp for full vectors and the
    masked tail); baseline: libmvec's vector and scalar expf differ slightly."""
    if mod.TARGET in VEXP_TARGETS:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=4 * np.finfo(got.dtype).eps)


def _ulp_f32(ref):
    """ulp of float32 at float64 values `ref` >= 0 (2^-149 below 2^-126)."""
    e = np.frexp(np.maximum(ref, 2.0 ** -126))[1] - 24
    return np.ldexp(1.0, np.maximum(e, -149))


def _err_f32(y, x):
    ref = np.exp(x.astype(F64))
    with np.errstate(over="ignore"):
        ref32 = ref.astype(F32)
    finite = np.isfinite(ref32)
    # where the correctly rounded result overflows, we must overflow too
    assert np.all(np.isinf(y[~finite])), x[~finite][~np.isinf(y[~finite])]
    return np.abs(y[finite].astype(F64) - ref[finite]) / _ulp_f32(ref[finite])


def _assert_f32_within_2ulp(mod, x):
    x = np.asarray(x, F32)
    y = _exp(mod, x)
    err = _err_f32(y, x)
    worst = int(np.argmax(err))
    assert err.max() <= 2.0, (x[np.isfinite(np.exp(x.astype(F64)).astype(F32))][worst],
                              err.max())
    return err.max()


def _neg_f32_patterns(lo_bits, hi_bits, step):
    return np.arange(lo_bits, hi_bits, step, dtype=np.uint64).astype(np.uint32).view(F32)


@pytest.fixture(params=ULP_TARGETS)
def vexp_mod(request):
    return _module(request.param)


@pytest.fixture(params=TARGETS)
def any_mod(request):
    return _module(request.param)


def test_this_cpu_has_a_vexp_target():
    # on x86-64 with AVX2 the selected build is one of the vexp targets
    from softmax_core._native import KERNEL_TARGET

    if not ULP_TARGETS:
        pytest.skip("no AVX2/AVX-512 build runs on this CPU")
    assert KERNEL_TARGET in VEXP_TARGETS


# ------------------------------------------------------------ float32 accuracy
def test_f32_negative_domain_sampled(vexp_mod):
    # every 61st float32 from -0 down to -104 (the whole x <= 0 domain whose
    # exp is not 0), about 18 million inputs
    _assert_f32_within_2ulp(vexp_mod, _neg_f32_patterns(0x80000000, 0xC2D00001, 61))


def test_f32_subnormal_outputs_exhaustive(vexp_mod):
    # every float32 whose exp is subnormal or rounds to 0 or to the smallest
    # normal: [-104, -87.3]
    x = _neg_f32_patterns(np.float32(-87.3).view(np.uint32), 0xC2D00001, 1)
    _assert_f32_within_2ulp(vexp_mod, x)
    y = _exp(vexp_mod, x)
    ref = np.exp(x.astype(F64)).astype(F32)  # correctly rounded (float64 suffices)
    # computed, not flushed: nonzero wherever the correctly rounded exp is at
    # least two smallest subnormals, and 0 or the smallest subnormal where it is 0
    tiny = np.finfo(F32).smallest_subnormal
    sub = (ref > 0) & (ref < np.finfo(F32).tiny)
    assert sub.sum() > 10 ** 6
    assert np.all(y[ref >= 2 * tiny] > 0)
    assert np.all(y[ref == 0] <= tiny)


def test_f32_below_the_subnormal_range_is_exactly_zero(vexp_mod):
    x = np.concatenate([np.linspace(-104, -1e4, 10001, dtype=F32),
                        np.array([-3e38, -np.finfo(F32).max, -np.inf], F32)])
    y = _exp(vexp_mod, x)
    assert np.all(y == 0) and not np.any(np.signbit(y))


def test_f32_reduction_boundaries(vexp_mod):
    # around x = (k + 1/2) ln 2 (where the nearest k changes) and x = k ln 2,
    # for every k whose exp is finite and not 0: 33 floats around each point
    ks = np.arange(-150, 129, dtype=F64)
    centres = np.concatenate([(ks + 0.5) * math.log(2), ks * math.log(2)]).astype(F32)
    # (k = 0: x = 0, whose neighbours are test_f32_small_arguments')
    centres = centres[(centres > -104) & (centres < 88.8) & (centres != 0)]
    bits = centres.view(np.int32).astype(np.int64)
    offsets = np.arange(-16, 17)
    x = (bits[:, None] + offsets[None, :]).astype(np.int32).view(F32).ravel()
    _assert_f32_within_2ulp(vexp_mod, x)


def test_f32_positive_domain(vexp_mod):
    # positive arguments reach these loops from logsumexp of a row with +inf
    # (shifted by 0): every 61st float32 from +0 to 89, then the overflow edge
    x = np.arange(0, np.float32(89).view(np.uint32), 61, dtype=np.uint32).view(F32)
    _assert_f32_within_2ulp(vexp_mod, x)
    edge = np.float32(np.log(np.finfo(F32).max))
    near = (edge.view(np.int32) + np.arange(-64, 65)).astype(np.int32).view(F32)
    _assert_f32_within_2ulp(vexp_mod, near)


def test_f32_small_arguments(vexp_mod):
    # |x| tiny: exp(x) is 1 or its neighbours
    x = np.concatenate([np.geomspace(1e-45, 1e-3, 20001, dtype=F32),
                        -np.geomspace(1e-45, 1e-3, 20001, dtype=F32)])
    _assert_f32_within_2ulp(vexp_mod, x)


# ------------------------------------------------------------ float64 accuracy
def _longdouble_is_extended():
    return np.finfo(np.longdouble).nmant >= 63


def _ulp_f64(ref):
    e = np.frexp(np.maximum(ref, np.longdouble(2.0) ** -1022))[1] - 53
    return np.ldexp(np.longdouble(1), np.maximum(e, -1074))


def _err_f64_longdouble(y, x):
    ref = np.exp(x.astype(np.longdouble))
    finite = ref <= np.longdouble(np.finfo(F64).max)
    assert np.all(np.isinf(y[~finite]))
    return np.abs(y[finite].astype(np.longdouble) - ref[finite]) / _ulp_f64(ref[finite])


def _err_f64_mpmath(y, x):
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 200
    errs = []
    for xi, yi in zip(x.tolist(), y.tolist(), strict=True):
        ref = mpmath.exp(mpmath.mpf(xi))
        if ref > mpmath.mpf(np.finfo(F64).max):
            assert math.isinf(yi)
            continue
        e = max(int(mpmath.floor(mpmath.log(ref, 2))) - 52 if ref > 0 else -1074, -1074)
        errs.append(float(abs(mpmath.mpf(yi) - ref) / mpmath.ldexp(1, e)))
    return np.array(errs)


def _f64_inputs(rng):
    ks = np.arange(-1075, 1025, dtype=F64)
    centres = np.concatenate([(ks + 0.5) * math.log(2), ks * math.log(2)])
    centres = centres[(centres > -746) & (centres < 709.8) & (centres != 0)]
    offsets = np.arange(-3, 4)
    around = (centres.view(np.int64)[:, None] + offsets[None, :]).view(F64).ravel()
    return {
        "negative": -np.abs(rng.uniform(0, 746, 200000)),
        "near zero": np.concatenate([rng.uniform(-1, 0, 50000),
                                     -np.geomspace(1e-300, 1e-2, 20000)]),
        "subnormal outputs": rng.uniform(-745.2, -708.3, 100000),
        "reduction boundaries": around,
        "positive": rng.uniform(0, 709.8, 50000),
    }


@pytest.mark.parametrize("region", ["negative", "near zero", "subnormal outputs",
                                    "reduction boundaries", "positive"])
def test_f64_within_2ulp_longdouble(vexp_mod, region):
    if not _longdouble_is_extended():
        pytest.skip("np.longdouble is not the x87 extended type here")
    x = _f64_inputs(np.random.default_rng(1))[region]
    err = _err_f64_longdouble(_exp(vexp_mod, x), x)
    assert err.max() <= 2.0, (x[np.argmax(err)], err.max())


@pytest.mark.parametrize("region", ["negative", "subnormal outputs", "reduction boundaries",
                                    "positive"])
def test_f64_within_2ulp_mpmath(vexp_mod, region):
    x = _f64_inputs(np.random.default_rng(2))[region]
    x = x[np.random.default_rng(3).choice(x.size, 1500, replace=False)]
    err = _err_f64_mpmath(_exp(vexp_mod, x), x)
    assert err.max() <= 2.0, err.max()


def test_f64_subnormal_outputs_are_computed(vexp_mod):
    x = np.linspace(-745.1, -708.5, 100001)
    y = _exp(vexp_mod, x)
    assert np.all(y > 0)
    assert np.sum(y < np.finfo(F64).tiny) > 90000
    z = np.concatenate([np.linspace(-745.2, -1e5, 1001), [-1e308, -np.inf]])
    yz = _exp(vexp_mod, z)
    assert np.all(yz == 0) and not np.any(np.signbit(yz))


# ------------------------------------------------------- special values, loops
@pytest.mark.parametrize("dtype", [F32, F64])
def test_special_values(any_mod, dtype):
    x = np.array([-np.inf, np.inf, np.nan, -np.nan, -0.0, 0.0, 1e30, -1e30, 1000.0], dtype)
    y = _exp(any_mod, x)
    assert y[0] == 0 and not np.signbit(y[0])
    assert y[1] == np.inf
    assert np.isnan(y[2]) and np.isnan(y[3])
    assert y[4] == 1 and y[5] == 1
    assert y[6] == np.inf and y[7] == 0 and y[8] == np.inf


@pytest.mark.parametrize("dtype", [F32, F64])
def test_nan_in_every_lane_position(any_mod, dtype):
    # a NaN (or +inf) among finite values, at every position of a vector and
    # of the masked tail, affects only its own lane
    for n in (1, 7, 8, 15, 16, 17, 33):
        for pos in range(n):
            for bad, want in ((np.nan, np.isnan), (np.inf, np.isposinf)):
                x = -np.linspace(0, 5, n).astype(dtype)
                x[pos] = bad
                y = _exp(any_mod, x)
                assert want(y[pos])
                ok = np.arange(n) != pos
                if n > 1:
                    _assert_same_exp(any_mod, y[ok], _exp(any_mod, x[ok]))


@pytest.mark.parametrize("dtype", [F32, F64])
def test_loops_agree_and_stay_in_bounds(any_mod, dtype):
    rng = np.random.default_rng(4)
    for n in list(range(1, 41)) + [63, 64, 65, 1000]:
        big = np.full(n + 8, 7.0, dtype)
        x = (rng.standard_normal(n) * 10).astype(dtype)
        xs = x - x.max()
        shift = np.full(n, x.max(), dtype)
        want = _exp(any_mod, xs)
        ref = np.exp(xs.astype(np.longdouble))
        assert np.all(np.abs(want - ref) <= 4 * np.finfo(dtype).eps * ref)
        s0 = rng.uniform(1, 2, n)
        sbig = np.full(n + 8, 5.0)
        for which in range(6):
            big[:] = 7.0
            sbig[:n] = s0
            sbig[n:] = 5.0
            src = xs if which < 2 else x
            total = any_mod.exp_loop(which, src, shift, big[:n], sbig[:n])
            assert np.all(big[n:] == 7.0) and np.all(sbig[n:] == 5.0)
            if which in (0, 1, 2, 4):
                # the same vector exp for full vectors and for the tail
                _assert_same_exp(any_mod, big[:n], want)
            if which in (2, 3):
                assert total == pytest.approx(math.fsum(want.astype(F64)), rel=1e-12)
            if which >= 4:
                np.testing.assert_allclose(sbig[:n], s0 + want.astype(F64), rtol=1e-15)


# ------------------------------------------------- softmax with each build
@pytest.fixture
def use_target(monkeypatch):
    def use(target):
        mod = _module(target)
        for m in (_softmax_numpy, _losses_numpy, _threads):
            monkeypatch.setattr(m, "kernels", mod)
    return use


def _reference_softmax(x, axis):
    x64 = x.astype(F64)
    m = np.max(x64, axis=axis, keepdims=True)
    e = np.exp(x64 - m)
    return e / e.sum(axis=axis, keepdims=True), (x64 - m) - np.log(e.sum(axis=axis, keepdims=True))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("shape,axis", [((300, 1000), -1), ((64, 10), -1), ((2000, 3), -1),
                                        ((8, 50, 37), 1), ((3, 12, 40), 0)])
def test_softmax_each_build_against_float64(use_target, target, dtype, shape, axis):
    use_target(target)
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 30).astype(dtype)
    p, lp = _reference_softmax(x, axis)
    tol = TOL[dtype]
    np.testing.assert_allclose(softmax_core.softmax(x, axis=axis), p, **tol)
    np.testing.assert_allclose(softmax_core.log_softmax(x, axis=axis), lp, rtol=tol["rtol"],
                               atol=tol["atol"] * 50)
    x64 = x.astype(F64)
    m = x64.max(axis=axis)
    lse = np.log(np.exp(x64 - np.expand_dims(m, axis)).sum(axis=axis)) + m
    np.testing.assert_allclose(softmax_core.logsumexp(x, axis=axis), lse, rtol=tol["rtol"])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("n", [3, 10, 1000])
def test_non_finite_rows_each_build(use_target, target, dtype, n):
    # rows of -inf, +inf, NaN behave as the baseline build (libm exp) does,
    # and -inf entries give exactly 0
    rows = np.zeros((6, n), dtype)
    rows[0] = -np.inf
    rows[1, 0] = np.inf
    rows[2, -1] = np.nan
    rows[3, 1:] = -np.inf
    rows[4, 0] = np.inf
    rows[4, 1] = -np.inf
    rows[5] = np.linspace(-200, 0, n)  # exp underflows to subnormal and 0
    x = np.tile(rows, (50, 1))
    results = {}
    for t in ("baseline", target):
        use_target(t)
        results[t] = (softmax_core.softmax(x), softmax_core.log_softmax(x),
                      softmax_core.logsumexp(x))
    for base, ours in zip(results["baseline"], results[target], strict=True):
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(base))
        np.testing.assert_array_equal(np.isinf(ours), np.isinf(base))
        np.testing.assert_array_equal(ours == 0, base == 0)
    sm = results[target][0]
    assert np.all(sm[3::6, 1:] == 0) and np.all(sm[3::6, 0] == 1)
    assert np.isposinf(results[target][2][1::6]).all()
