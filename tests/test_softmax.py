"""softmax, log_softmax and logsumexp against scipy.special and torch.

Every test runs with one and with two kernel threads (the ``threads`` fixture
also forces the parallel path on the small arrays used here).
"""

import numpy as np
import pytest
import scipy.special as sp
from conftest import namespace_of, run_with_small_stack, to_numpy, to_xp

import softmax_core
from softmax_core import log_softmax, logsumexp, softmax

pytestmark = pytest.mark.usefixtures("kernel_threads")


CASES = [
    ((7,), -1),
    ((5, 10), -1),
    ((5, 10), 0),
    ((3, 300), 1),
    ((3, 4, 5), (0, 2)),
    ((2, 3, 4, 5), -3),
    ((2, 3, 4), None),
    ((2, 3, 4), (1, 2)),
    ((3, 70), -1),
    ((2, 5, 300), 1),
]


def _data(shape, dtype, scale=10.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


TOL = {np.float32: dict(rtol=2e-6, atol=1e-6), np.float64: dict(rtol=1e-13, atol=1e-14)}


@pytest.mark.parametrize("shape,axis", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_scipy(xp, shape, axis, dtype):
    x = _data(shape, dtype)
    ref = x.astype(np.float64)
    xx = to_xp(xp, x)
    for ours, theirs, atol_scale in (
        (softmax(xx, axis=axis), sp.softmax(ref, axis=axis), 1.0),
        (log_softmax(xx, axis=axis), sp.log_softmax(ref, axis=axis), np.abs(ref).max()),
        (logsumexp(xx, axis=axis), sp.logsumexp(ref, axis=axis), np.abs(ref).max()),
    ):
        assert namespace_of(ours) == namespace_of(xx)
        assert ours.dtype == xx.dtype
        tol = TOL[dtype]
        np.testing.assert_allclose(to_numpy(ours), theirs, rtol=tol["rtol"],
                                   atol=tol["atol"] * atol_scale)


@pytest.mark.parametrize("shape,axis", [((5, 10), -1), ((4, 3, 6, 6), -3), ((3, 7), 0),
                                        ((2, 3, 4), 1), ((6,), 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(shape, axis, dtype):
    torch = pytest.importorskip("torch")
    x = _data(shape, dtype, scale=20)
    t = torch.from_numpy(x)
    tol = TOL[dtype]
    np.testing.assert_allclose(softmax(x, axis=axis), torch.softmax(t, axis).numpy(), **tol)
    np.testing.assert_allclose(log_softmax(x, axis=axis),
                               torch.log_softmax(t, axis).numpy(), rtol=tol["rtol"],
                               atol=tol["atol"] * 50)
    np.testing.assert_allclose(logsumexp(x, axis=axis), torch.logsumexp(t, axis).numpy(),
                               rtol=tol["rtol"], atol=tol["atol"] * 50)


def test_softmax2d_matches_torch_module():
    torch = pytest.importorskip("torch")
    x = _data((2, 4, 5, 3), np.float32)
    expected = torch.nn.Softmax2d()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(softmax(x, axis=-3), expected, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-13)])
def test_long_rows_sum_to_one(dtype, tol):
    x = _data((4, 32000), dtype, scale=3)
    s = softmax(x).astype(np.float64).sum(axis=-1)
    np.testing.assert_array_less(np.abs(s - 1), tol)
    s = np.exp(log_softmax(x).astype(np.float64)).sum(axis=-1)
    np.testing.assert_array_less(np.abs(s - 1), tol * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_values_exact(xp, dtype):
    third = dtype(1) / dtype(3)
    for v in (1000.0, -1000.0):
        out = to_numpy(softmax(to_xp(xp, np.full(3, v, dtype=dtype))))
        assert np.all(out == third)
    out = to_numpy(log_softmax(to_xp(xp, np.array([1000.0, 1.0], dtype=dtype))))
    assert out[0] == 0 and out[1] == -999


def test_non_finite_rows(xp):
    inf, nan = np.inf, np.nan
    x = np.array([[-inf, -inf, -inf],
                  [-inf, 0.0, 0.0],
                  [inf, 1.0, 2.0],
                  [nan, 1.0, 2.0],
                  [1.0, 2.0, 3.0]])
    s = to_numpy(softmax(to_xp(xp, x)))
    ls = to_numpy(log_softmax(to_xp(xp, x)))
    assert np.all(np.isnan(s[0])) and np.all(np.isnan(ls[0]))
    assert s[1, 0] == 0.0 and ls[1, 0] == -inf
    np.testing.assert_allclose(s[1, 1:], 0.5, rtol=1e-15)
    for row in (2, 3):  # +inf and NaN poison only their own row
        assert np.all(np.isnan(s[row])) and np.all(np.isnan(ls[row]))
    np.testing.assert_allclose(s[4], sp.softmax(x[4]), rtol=1e-14)
    lse = to_numpy(logsumexp(to_xp(xp, x)))
    np.testing.assert_allclose(lse, sp.logsumexp(x, axis=-1), rtol=1e-15)  # nan/inf must match


def test_where_masks_entries(xp):
    x = _data((4, 6), np.float64)
    x[0, 1] = np.inf  # masked out below, so it must not poison row 0
    x[2, :] = np.nan  # fully masked row
    mask = np.ones((4, 6), dtype=bool)
    mask[0, 1] = mask[1, 3:] = False
    mask[2] = False
    s = to_numpy(softmax(to_xp(xp, x), where=to_xp(xp, mask)))
    ls = to_numpy(log_softmax(to_xp(xp, x), where=to_xp(xp, mask)))
    lse = to_numpy(logsumexp(to_xp(xp, x), where=to_xp(xp, mask)))
    for r in (0, 1, 3):
        m = mask[r]
        np.testing.assert_allclose(s[r, m], sp.softmax(x[r, m]), rtol=1e-14)
        np.testing.assert_allclose(ls[r, m], sp.log_softmax(x[r, m]), rtol=1e-14)
        np.testing.assert_allclose(lse[r], sp.logsumexp(x[r, m]), rtol=1e-14)
        assert np.all(s[r, ~m] == 0) and np.all(ls[r, ~m] == -np.inf)
    assert np.all(s[2] == 0) and np.all(ls[2] == -np.inf) and lse[2] == -np.inf


def test_where_broadcasts():
    x = _data((3, 5), np.float32)
    mask = np.array([True, True, False, True, False])
    np.testing.assert_allclose(softmax(x, where=mask)[:, mask], sp.softmax(x[:, mask], axis=1),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="broadcast"):
        softmax(x, where=np.ones((2, 5), dtype=bool))
    with pytest.raises(TypeError, match="boolean"):
        softmax(x, where=np.ones((3, 5)))


def test_empty_inputs(xp):
    x = to_xp(xp, np.zeros((4, 0)))
    assert tuple(softmax(x).shape) == (4, 0)
    assert tuple(log_softmax(x).shape) == (4, 0)
    lse = to_numpy(logsumexp(x))
    assert lse.shape == (4,) and np.all(lse == -np.inf)
    x = to_xp(xp, np.zeros((0, 3)))
    assert tuple(softmax(x).shape) == (0, 3)
    assert tuple(logsumexp(x).shape) == (0,)


def test_zero_dim_and_empty_axis_tuple():
    assert softmax(np.float64(3.0)) == 1.0
    assert log_softmax(np.float64(3.0)) == 0.0
    assert logsumexp(np.float64(3.0)) == 3.0
    x = _data((2, 3), np.float64)
    np.testing.assert_array_equal(softmax(x, axis=()), np.ones_like(x))
    np.testing.assert_allclose(logsumexp(x, axis=()), x, rtol=1e-15)


def test_dtypes(xp):
    x16 = np.array([[1.0, 2.0, 3.0]], dtype=np.float16)
    if xp is np or xp.__name__ == "torch":
        out = softmax(to_xp(xp, x16))
        assert out.dtype == to_xp(xp, x16).dtype
        np.testing.assert_array_equal(
            to_numpy(out), softmax(x16.astype(np.float32)).astype(np.float16))
    xi = to_xp(xp, np.array([[1, 2, 3]], dtype=np.int32))
    out = softmax(xi)
    assert to_numpy(out).dtype == np.float64
    np.testing.assert_allclose(to_numpy(out), sp.softmax(np.array([[1.0, 2, 3]]), axis=1),
                               rtol=1e-15)
    xb = to_xp(xp, np.array([True, False]))
    assert to_numpy(log_softmax(xb)).dtype == np.float64
    xc = to_xp(xp, np.array([1 + 1j, 2]))
    with pytest.raises(TypeError, match="complex"):
        softmax(xc)


def test_dtype_argument_casts_first():
    x = _data((3, 4), np.float64)
    out = softmax(x, dtype=np.float32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, softmax(x.astype(np.float32)))
    with pytest.raises(TypeError, match="floating"):
        softmax(x, dtype=np.int64)


def test_dtype_argument_torch():
    torch = pytest.importorskip("torch")
    x = torch.randn(3, 4, dtype=torch.float64)
    out = softmax(x, dtype=torch.float32)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.softmax(x, -1, dtype=torch.float32))


def test_long_double_and_list_input():
    x = [[1.0, 2.0], [3.0, 5.0]]
    np.testing.assert_allclose(softmax(x), sp.softmax(np.array(x), axis=-1), rtol=1e-15)
    np.testing.assert_allclose(logsumexp(x, axis=0), sp.logsumexp(np.array(x), axis=0))


def test_input_not_modified_and_layouts():
    base = _data((6, 8), np.float64)
    x = base.copy()
    for f in (softmax, log_softmax, logsumexp):
        f(x)
        f(x, axis=0)
        f(x, axis=(0, 1))
    np.testing.assert_array_equal(x, base)
    strided = base[::2, ::3]
    np.testing.assert_allclose(softmax(strided), sp.softmax(strided, axis=-1), rtol=1e-14)
    fortran = np.asfortranarray(base)
    np.testing.assert_allclose(log_softmax(fortran, axis=0), sp.log_softmax(base, axis=0),
                               rtol=1e-14)
    readonly = base.copy()
    readonly.flags.writeable = False
    np.testing.assert_allclose(softmax(readonly), sp.softmax(base, axis=-1), rtol=1e-14)


def test_read_only_memmap(tmp_path):
    x = _data((5, 20), np.float32)
    path = tmp_path / "x.npy"
    np.save(path, x)
    mm = np.load(path, mmap_mode="r")
    assert not mm.flags.writeable
    np.testing.assert_array_equal(softmax(mm), softmax(x))
    np.testing.assert_array_equal(logsumexp(mm), logsumexp(x))


@pytest.mark.parametrize("use_log", [False, True])
@pytest.mark.parametrize("shape,axis", [((5, 10), -1), ((3, 300), -1), ((2, 3, 40), 1),
                                        ((3, 4, 5), (0, 2))])
def test_out_argument(use_log, shape, axis):
    f = log_softmax if use_log else softmax
    x = _data(shape, np.float32)
    expected = f(x, axis=axis)
    out = np.empty_like(x)
    assert f(x, axis=axis, out=out) is out
    np.testing.assert_array_equal(out, expected)
    inplace = x.copy()
    assert f(inplace, axis=axis, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, expected)
    strided_out = np.empty((shape[0] * 2, *shape[1:]), np.float32)[::2]
    f(x, axis=axis, out=strided_out)
    np.testing.assert_array_equal(strided_out, expected)


def test_out_argument_errors():
    x = _data((3, 4), np.float32)
    with pytest.raises(ValueError, match="shape"):
        softmax(x, out=np.empty((4, 3), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        softmax(x, out=np.empty((3, 4), np.float64))
    ro = np.empty((3, 4), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        softmax(x, out=ro)


def test_out_rejected_for_other_namespaces():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="NumPy"):
        softmax(torch.zeros(2, 3), out=torch.zeros(2, 3))


def test_bad_axis(xp):
    x = to_xp(xp, np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"axis 2 .*\(2, 3\)"):
        softmax(x, axis=2)
    with pytest.raises(ValueError, match=r"axis -3"):
        logsumexp(x, axis=-3)
    with pytest.raises(ValueError, match="repeated"):
        log_softmax(x, axis=(1, -1))
    with pytest.raises(TypeError, match="axis"):
        softmax(x, axis=1.0)


def test_mixed_namespaces_rejected():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError):
        softmax(torch.zeros(3), where=__import__("array_api_strict").asarray([True] * 3))


def test_each_compiled_target_agrees():
    import importlib

    from softmax_core._native import available_targets

    x = _data((300, 37), np.float32)
    outs = []
    for target in available_targets():
        k = importlib.import_module(f"softmax_core._kernels_{target}")
        o = np.empty_like(x)
        k.softmax_3d(x.reshape(300, 37, 1), o.reshape(300, 37, 1), False, 2)
        outs.append(o)
    for o in outs[1:]:
        np.testing.assert_allclose(o, outs[0], rtol=1e-6)
    np.testing.assert_allclose(outs[0], sp.softmax(x.astype(np.float64), axis=1),
                               **TOL[np.float32])


def test_public_surface():
    for name in ("softmax", "log_softmax", "logsumexp", "softmax_backward",
                 "log_softmax_backward"):
        assert name in softmax_core.__all__
        assert callable(getattr(softmax_core, name))


def test_masked_entries_stay_zero_in_nan_rows(xp):
    x = np.array([[np.nan, 1.0, 2.0], [np.inf, 1.0, 2.0], [-np.inf, -np.inf, 5.0]])
    mask = np.array([True, True, False])
    s = to_numpy(softmax(to_xp(xp, x), where=to_xp(xp, mask)))
    ls = to_numpy(log_softmax(to_xp(xp, x), where=to_xp(xp, mask)))
    assert np.all(np.isnan(s[:, :2])) and np.all(np.isnan(ls[:, :2]))
    assert np.all(s[:, 2] == 0) and np.all(ls[:, 2] == -np.inf)


@pytest.mark.parametrize("shape,axis,offset", [((100,), -1, 50), ((3, 10), 0, 10),
                                               ((40, 10), -1, 5)])
def test_out_partially_overlapping_input(shape, axis, offset):
    size = int(np.prod(shape))
    buf = np.arange(size + offset, dtype=np.float64) / 50
    x = buf[:size].reshape(shape)
    expected = sp.softmax(x.copy(), axis=axis)
    out = buf[offset:offset + size].reshape(shape)
    softmax(x, axis=axis, out=out)
    np.testing.assert_allclose(out, expected, rtol=1e-14)


def test_zero_dim_keeps_shape():
    for x in (np.float16(2.0), np.float32(2.0), np.array(2.0)):
        assert np.shape(softmax(x)) == () and np.shape(log_softmax(x)) == ()
        assert softmax(x).dtype == np.asarray(x).dtype


def test_non_default_device():
    xs = pytest.importorskip("array_api_strict")
    device = xs.Device("device1")
    x = xs.asarray([[1.0, 2.0, 3.0]], device=device)
    mask = xs.asarray([True, False, True], device=device)
    for res in (softmax(x), log_softmax(x), logsumexp(x), softmax(x, where=mask),
                logsumexp(x, b=xs.ones((1, 3), device=device)), logsumexp(x, where=mask)):
        assert res.device == device
    np.testing.assert_allclose(to_numpy(logsumexp(x)), sp.logsumexp([[1.0, 2.0, 3.0]], axis=-1))


def test_small_thread_stack():
    def work():
        for dtype in (np.float32, np.float64):
            for shape in ((4096, 10), (4096, 40)):
                x = np.ones(shape, dtype)
                np.testing.assert_allclose(softmax(x), 1 / shape[1], rtol=1e-6)
                np.testing.assert_allclose(logsumexp(x), 1 + np.log(shape[1]), rtol=1e-6)

    run_with_small_stack(work)


def test_array_like_b_and_where_with_other_namespaces(xp):
    x = to_xp(xp, np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(to_numpy(logsumexp(x, b=2.0)),
                               sp.logsumexp([[1.0, 2.0, 3.0]], axis=-1, b=2.0), rtol=1e-14)
    np.testing.assert_allclose(to_numpy(softmax(x, where=[True, False, True]))[0, 1], 0.0)


def test_axis_must_be_integer_on_fast_path():
    with pytest.raises(TypeError, match="axis"):
        softmax(np.zeros((2, 3)), axis=-1.0)


def test_b_promotes_dtype_like_scipy():
    res = logsumexp(np.array([1.0, 2.0], np.float16), b=np.array([1.0, 1.0], np.float32))
    assert res.dtype == sp.logsumexp(np.array([1.0, 2.0], np.float16),
                                     b=np.array([1.0, 1.0], np.float32)).dtype
