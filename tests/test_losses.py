"""nll_loss, cross_entropy and cross_entropy_with_grad against torch 2.13.

The oracle is torch itself (``torch.nn.functional.cross_entropy`` and its
autograd gradient) over the product of every option, for the NumPy kernel
and the array-API path (array_api_strict, torch); plus float64 finite
differences, large and NaN logits, and every bad-input error.  Tolerances are
a few hundred ulps of the dtype: both sides sum in different orders.
"""

import itertools

import numpy as np
import pytest
from conftest import namespace_of, to_numpy, to_xp

from softmax_core import cross_entropy, cross_entropy_with_grad, log_softmax, nll_loss

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
N, C, SPATIAL = 5, 4, (3, 2)


def _torch():
    return pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="module")
def _torch_single_thread():
    """torch's thread pool costs ~15x on these tiny problems on a busy machine."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- case builders


def make_case(dims, kind, ignore, dtype, seed=0):
    """Logits, target, ignore_index for one option combination (NumPy arrays)."""
    rng = np.random.default_rng(seed)
    shape = {"1d": (C,), "2d": (N, C), "kd": (N, C, *SPATIAL)}[dims]
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    ignore_index = 1 if ignore == "class" else -100
    batch = shape[:0] if dims == "1d" else shape[:1] + shape[2:]
    if kind == "prob":
        target = rng.dirichlet(np.ones(C), size=batch or None)
        target = np.moveaxis(target, -1, 1 if dims != "1d" else 0).astype(dtype)
        return x, target, ignore_index
    target = rng.integers(0, C, size=batch)
    flat = target.reshape(-1)
    if ignore == "default":
        flat[::2] = -100  # for 1-D input this ignores the only sample
    elif ignore == "class":
        flat[::3] = 1
    return x, target, ignore_index


def class_weight(dtype):
    return np.array([0.5, 2.0, 1.0, 3.0], dtype=dtype)


def torch_reference(x, target, *, weight=None, ignore_index=-100, reduction="mean",
                    label_smoothing=0.0, sample_weight=None):
    """torch's loss and autograd gradient (of the sum for "none"), as NumPy."""
    torch = _torch()
    F = torch.nn.functional
    xt = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(target)
    wt = None if weight is None else torch.tensor(weight, dtype=xt.dtype)
    opts = dict(weight=wt, ignore_index=ignore_index, label_smoothing=label_smoothing)
    if sample_weight is None:
        loss = F.cross_entropy(xt, tt, reduction=reduction, **opts)
    else:
        per = F.cross_entropy(xt, tt, reduction="none", **opts)
        sw = torch.tensor(sample_weight, dtype=xt.dtype)
        sw = sw.reshape(sw.shape + (1,) * (per.ndim - sw.ndim))
        loss = per * sw
        if reduction == "sum":
            loss = loss.sum()
        elif reduction == "mean":
            if tt.is_floating_point():
                denom = torch.broadcast_to(sw, per.shape).sum()
            else:
                valid = tt != ignore_index
                wy = (torch.ones(x.shape[1], dtype=xt.dtype) if wt is None else wt)[
                    torch.where(valid, tt, 0)]
                denom = (wy * valid * sw).sum()
            loss = loss.sum() / denom
    loss.sum().backward()
    return loss.detach().numpy(), xt.grad.numpy()


def assert_close(actual, expected, dtype):
    actual = to_numpy(actual)
    assert actual.shape == np.shape(expected)
    assert actual.dtype == dtype
    np.testing.assert_allclose(actual, expected, **TOL[dtype])


# ---------------------------------------------------------------- torch product

# weight x ignore x label_smoothing x target kind x dims as test ids; every test
# loops over reduction x dtype, so the full product runs with few test items
PRODUCT = list(itertools.product(
    [False, True],  # weight
    ["none", "default", "class"],  # nothing ignored, -100 entries, ignore_index=1
    [0.0, 0.25],  # label_smoothing
    ["index", "prob"],
    ["1d", "2d", "kd"],
))
REDUCTIONS_DTYPES = list(itertools.product(["mean", "sum", "none"], [np.float32, np.float64]))


@pytest.mark.parametrize("weighted,ignore,smoothing,kind,dims", PRODUCT)
def test_matches_torch(xp, weighted, ignore, smoothing, kind, dims):
    for reduction, dtype in REDUCTIONS_DTYPES:
        x, target, ignore_index = make_case(dims, kind, ignore, dtype)
        weight = class_weight(dtype) if weighted else None
        opts = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)
        args = [to_xp(xp, x), to_xp(xp, target)]
        w = None if weight is None else to_xp(xp, weight)
        if kind == "prob" and ignore_index >= 0:  # torch refuses this too
            with pytest.raises(ValueError, match="ignore_index"):
                cross_entropy(*args, weight=w, **opts)
            continue
        loss_ref, grad_ref = torch_reference(x, target, weight=weight, **opts)
        loss, grad = cross_entropy_with_grad(*args, weight=w, **opts)
        assert namespace_of(loss) == namespace_of(args[0]) == namespace_of(grad)
        assert_close(loss, loss_ref, dtype)
        assert_close(grad, grad_ref, dtype)
        assert_close(cross_entropy(*args, weight=w, **opts), loss_ref, dtype)


@pytest.mark.parametrize("weighted,ignore,dims", list(itertools.product(
    [False, True], ["none", "default", "class"], ["1d", "2d", "kd"])))
def test_nll_loss_matches_torch(xp, weighted, ignore, dims):
    torch = _torch()
    for reduction, dtype in REDUCTIONS_DTYPES:
        x, target, ignore_index = make_case(dims, "index", ignore, dtype)
        logp = to_numpy(torch.log_softmax(torch.tensor(x), dim=0 if dims == "1d" else 1))
        weight = class_weight(dtype) if weighted else None
        expected = torch.nn.functional.nll_loss(
            torch.tensor(logp), torch.tensor(target), ignore_index=ignore_index,
            reduction=reduction, weight=None if weight is None else torch.tensor(weight))
        got = nll_loss(to_xp(xp, logp), to_xp(xp, target),
                       weight=None if weight is None else to_xp(xp, weight),
                       ignore_index=ignore_index, reduction=reduction)
        assert namespace_of(got) == namespace_of(to_xp(xp, logp))
        assert_close(got, expected.numpy(), dtype)


@pytest.mark.parametrize("weighted,ignore,smoothing,kind,dims", list(itertools.product(
    [False, True], ["none", "default"], [0.0, 0.25], ["index", "prob"],
    ["2d", "kd", "kd_per_position"])))
def test_sample_weight(xp, weighted, ignore, smoothing, kind, dims):
    """sample_weight multiplies l_n; "mean" divides by sum(s_n w[y_n]) (or sum(s_n))."""
    dtype = np.float64
    x, target, ignore_index = make_case(dims[:2], kind, ignore, dtype, seed=1)
    sw_shape = (N, *SPATIAL) if dims == "kd_per_position" else (N,)
    sw = np.random.default_rng(2).uniform(0, 3, size=sw_shape)
    sw.reshape(-1)[1] = 0.0
    weight = class_weight(dtype) if weighted else None
    for reduction in ("mean", "sum", "none"):
        opts = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)
        loss_ref, grad_ref = torch_reference(x, target, weight=weight, sample_weight=sw, **opts)
        loss, grad = cross_entropy_with_grad(
            to_xp(xp, x), to_xp(xp, target),
            weight=None if weight is None else to_xp(xp, weight),
            sample_weight=to_xp(xp, sw), **opts)
        assert_close(loss, loss_ref, dtype)
        assert_close(grad, grad_ref, dtype)


def test_integer_sample_weight_repeats_samples():
    x, target, _ = make_case("2d", "index", "none", np.float64, seed=3)
    sw = np.array([1, 2, 0, 3, 1])
    loss, grad = cross_entropy_with_grad(x, target, sample_weight=sw, label_smoothing=0.1)
    rep = np.repeat(np.arange(N), sw)
    loss_rep, grad_rep = torch_reference(x[rep], target[rep], label_smoothing=0.1)
    np.testing.assert_allclose(loss, loss_rep, **TOL[np.float64])
    summed = np.zeros_like(grad)
    np.add.at(summed, rep, grad_rep)
    np.testing.assert_allclose(grad, summed, **TOL[np.float64])


# ---------------------------------------------------------------- kernel layouts


@pytest.mark.parametrize("shape", [(5000, 10), (7, 1), (300, 64), (300, 65), (600, 100)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_kernel_paths_match_torch(shape, dtype, reduction):
    """Short-row blocks, long rows, C = 1 and the threaded sizes (NumPy kernel)."""
    rng = np.random.default_rng(4)
    x = (4 * rng.standard_normal(shape)).astype(dtype)
    target = rng.integers(0, shape[1], size=shape[0])
    target[::7] = -100
    weight = rng.uniform(0.5, 2, size=shape[1]).astype(dtype)
    sw = rng.uniform(0, 2, size=shape[0])
    for opts in (dict(), dict(weight=weight, label_smoothing=0.2, sample_weight=sw)):
        loss_ref, grad_ref = torch_reference(x, target, reduction=reduction, **opts)
        loss, grad = cross_entropy_with_grad(x, target, reduction=reduction, **opts)
        assert_close(loss, loss_ref, dtype)
        assert_close(grad, grad_ref, dtype)
        if "sample_weight" not in opts:
            assert_close(cross_entropy(x, target, reduction=reduction, **opts), loss_ref, dtype)


def test_strided_readonly_and_integer_targets_untouched():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((6, 8))
    x = base[:, ::2]  # not contiguous
    x_copy = x.copy()
    base.setflags(write=False)
    for target in (np.array([0, 3, 1, 2, 3, 0], dtype=np.int32),
                   np.array([0, 3, 1, 2, 3, 0], dtype=np.uint8)):
        target.setflags(write=False)
        loss, grad = cross_entropy_with_grad(x, target, label_smoothing=0.1)
        loss_ref, grad_ref = torch_reference(x_copy, target.astype(np.int64),
                                             label_smoothing=0.1)
        np.testing.assert_allclose(loss, loss_ref, **TOL[np.float64])
        np.testing.assert_allclose(grad, grad_ref, **TOL[np.float64])
    np.testing.assert_array_equal(x, x_copy)


def test_lists_and_float16():
    x = [[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]]
    loss_ref, _ = torch_reference(np.array(x), np.array([2, 1]))
    np.testing.assert_allclose(cross_entropy(x, [2, 1]), loss_ref, **TOL[np.float64])
    half = cross_entropy(np.array(x, dtype=np.float16), np.array([2, 1]))
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, loss_ref, rtol=1e-3)


# ---------------------------------------------------------------- numerics


def test_seed_example(xp):
    torch = _torch()
    x = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
    y = np.array([2, 1])
    expected = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(y)).item()
    xs, ys = to_xp(xp, x), to_xp(xp, y)
    via_nll = float(nll_loss(log_softmax(xs, axis=1), ys))
    direct = float(cross_entropy(xs, ys))
    np.testing.assert_allclose([via_nll, direct], [expected, expected], rtol=1e-15)
    assert via_nll == pytest.approx(direct, rel=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_finite_differences(xp, reduction, kind, weighted):
    x, target, ignore_index = make_case("kd", kind, "none" if kind == "prob" else "default",
                                        np.float64, seed=6)
    x, target = x[:, :, :1], target[:, :, :1] if kind == "prob" else target[:, :1]
    weight = class_weight(np.float64) if weighted else None
    sw = np.random.default_rng(7).uniform(0.5, 2, size=N)
    opts = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=0.3,
                weight=None if weight is None else to_xp(xp, weight),
                sample_weight=to_xp(xp, sw))

    def f(z):
        loss = to_numpy(cross_entropy_with_grad(to_xp(xp, z), to_xp(xp, target), **opts)[0])
        return float(np.sum(loss))

    _, grad = cross_entropy_with_grad(to_xp(xp, x), to_xp(xp, target), **opts)
    h = 1e-6
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[idx] = h
        numeric[idx] = (f(x + step) - f(x - step)) / (2 * h)
    np.testing.assert_allclose(to_numpy(grad), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_large_logits_exact(xp, dtype, smoothing):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [0.0, 0.0, -1e4]], dtype=dtype)
    y = np.array([1, 0, 2])
    loss, grad = cross_entropy_with_grad(to_xp(xp, x), to_xp(xp, y), reduction="none",
                                         label_smoothing=smoothing)
    loss_ref, grad_ref = torch_reference(x, y, reduction="none", label_smoothing=smoothing)
    # lse - x_y, exactly: 2e4, 2e4 and 1e4 + log(2) (the smoothing term likewise)
    lse = np.array([1e4, 1e4, np.log(2.0)])
    exact = (1 - smoothing) * (lse - x[np.arange(3), y]) + smoothing / 3 * (
        3 * lse - x.astype(np.float64).sum(axis=1))
    assert np.all(np.isfinite(to_numpy(loss))) and np.all(np.isfinite(to_numpy(grad)))
    np.testing.assert_allclose(to_numpy(loss), exact, rtol=np.finfo(dtype).eps)
    assert_close(loss, loss_ref, dtype)
    assert_close(grad, grad_ref, dtype)


def test_nan_logits_poison_their_rows_only(xp):
    x = np.array([[1.0, 2.0, 3.0], [np.nan, 0.0, 1.0], [0.5, -1.0, 2.0], [4.0, np.nan, 0.0]])
    y = np.array([0, 1, 2, -100])
    loss, grad = cross_entropy_with_grad(to_xp(xp, x), to_xp(xp, y), reduction="none")
    loss_ref, grad_ref = torch_reference(x, y, reduction="none")
    loss, grad = to_numpy(loss), to_numpy(grad)
    np.testing.assert_array_equal(np.isnan(loss), [False, True, False, False])
    np.testing.assert_allclose(loss, loss_ref, **TOL[np.float64])
    assert np.all(np.isnan(grad[1])) and np.all(np.isfinite(grad[[0, 2]]))
    np.testing.assert_array_equal(grad[3], 0.0)  # ignored row
    np.testing.assert_allclose(grad[[0, 2]], grad_ref[[0, 2]], **TOL[np.float64])
    assert np.isnan(float(to_numpy(cross_entropy(to_xp(xp, x), to_xp(xp, y)))))


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_all_ignored_and_zero_weight(xp, smoothing):
    x, _, _ = make_case("2d", "index", "none", np.float64, seed=8)
    ignored = np.full(N, -100)
    for reduction in ("mean", "sum", "none"):
        loss, grad = cross_entropy_with_grad(to_xp(xp, x), to_xp(xp, ignored),
                                             reduction=reduction, label_smoothing=smoothing)
        loss_ref, grad_ref = torch_reference(x, ignored, reduction=reduction,
                                             label_smoothing=smoothing)
        assert_close(loss, loss_ref, np.float64)  # NaN for mean, 0 for sum
        assert_close(grad, grad_ref, np.float64)
    assert np.isnan(loss_ref) if reduction == "mean" else True
    # every target has weight 0: 0/0 mean, NaN gradient, as torch
    weight = np.array([0.0, 0.0, 1.0, 1.0])
    target = np.array([0, 1, 0, 1, 0])
    loss, grad = cross_entropy_with_grad(to_xp(xp, x), to_xp(xp, target),
                                         weight=to_xp(xp, weight), label_smoothing=smoothing)
    loss_ref, grad_ref = torch_reference(x, target, weight=weight, label_smoothing=smoothing)
    assert np.isnan(loss_ref) and np.all(np.isnan(grad_ref))
    assert_close(loss, loss_ref, np.float64)
    assert_close(grad, grad_ref, np.float64)


@pytest.mark.parametrize("kind", ["index", "prob"])
def test_empty_batch(xp, kind):
    x = np.zeros((0, 3))
    target = np.zeros((0, 3)) if kind == "prob" else np.zeros(0, dtype=np.int64)
    for reduction, expected in (("mean", np.nan), ("sum", 0.0)):
        loss, grad = cross_entropy_with_grad(to_xp(xp, x), to_xp(xp, target),
                                             reduction=reduction)
        np.testing.assert_array_equal(to_numpy(loss), expected)
        assert tuple(grad.shape) == (0, 3)
    assert tuple(cross_entropy(to_xp(xp, x), to_xp(xp, target), reduction="none").shape) == (0,)


# ---------------------------------------------------------------- bad input

X = np.zeros((2, 3))
Y = np.array([0, 2])

BAD = [
    (dict(target=np.array([0, 3])), IndexError, r"target 3 .*\[0, 3\).*3 classes"),
    (dict(target=np.array([-1, 0])), ValueError, r"target -1 .*\[0, 3\)"),
    (dict(target=np.array([0, -100]), ignore_index=1), IndexError, r"target -100"),
    (dict(target=np.array([0.0, 2.0])), ValueError, r"input's shape \(2, 3\)"),
    (dict(target=np.zeros((2, 4))), ValueError, r"input's shape \(2, 3\)"),
    (dict(target=np.array([0, 1, 2])), ValueError, r"shape \(2,\) for input of shape \(2, 3\)"),
    (dict(target=np.zeros((2, 3), dtype=np.int64)), ValueError, r"must be floating"),
    (dict(target=np.array([True, False])), TypeError, r"integer class indices"),
    (dict(weight=np.ones(4)), ValueError, r"weight must have shape \(3,\)"),
    (dict(label_smoothing=-0.1), ValueError, r"label_smoothing must be in \[0, 1\]"),
    (dict(label_smoothing=1.5), ValueError, r"label_smoothing must be in \[0, 1\]"),
    (dict(label_smoothing=float("nan")), ValueError, r"label_smoothing"),
    (dict(reduction="avg"), ValueError, r"reduction must be one of"),
    (dict(ignore_index=1.5), TypeError, r"ignore_index must be an int"),
    (dict(ignore_index=2**70), ValueError, r"ignore_index must fit in int64"),
    (dict(target=np.full((2, 3), 1 / 3), ignore_index=0), ValueError, r"ignore_index=0"),
    (dict(logits=np.float64(1.0)), ValueError, r"0-d"),
    (dict(logits=np.zeros((2, 0)), target=np.zeros(2, dtype=np.int64)), ValueError,
     r"no classes"),
    (dict(logits=X.astype(complex)), TypeError, r"complex"),
]
BAD_SAMPLE_WEIGHT = [
    (dict(sample_weight=np.array([1.0, -1.0])), ValueError, r"non-negative"),
    (dict(sample_weight=np.array([1.0, np.nan])), ValueError, r"non-negative"),
    (dict(sample_weight=np.ones(3)), ValueError, r"sample_weight must have shape \(2,\)"),
]


@pytest.mark.parametrize("func", [cross_entropy, cross_entropy_with_grad])
@pytest.mark.parametrize("kwargs,error,match", BAD)
def test_bad_input(xp, func, kwargs, error, match):
    kwargs = dict(kwargs)
    logits = to_xp(xp, kwargs.pop("logits", X))
    target = to_xp(xp, kwargs.pop("target", Y))
    if "weight" in kwargs:
        kwargs["weight"] = to_xp(xp, kwargs["weight"])
    with pytest.raises(error, match=match):
        func(logits, target, **kwargs)


@pytest.mark.parametrize("kwargs,error,match", BAD_SAMPLE_WEIGHT)
def test_bad_sample_weight(xp, kwargs, error, match):
    with pytest.raises(error, match=match):
        cross_entropy_with_grad(to_xp(xp, X), to_xp(xp, Y),
                                sample_weight=to_xp(xp, kwargs["sample_weight"]))


def test_target_error_is_both_index_and_value_error():
    with pytest.raises(IndexError) as info:
        cross_entropy(X, np.array([5, 0]))
    assert isinstance(info.value, ValueError)


def test_nll_loss_rejects_probabilities_and_bad_indices(xp):
    with pytest.raises(ValueError, match="integer class indices"):
        nll_loss(to_xp(xp, X), to_xp(xp, np.zeros((2, 3))))
    with pytest.raises(IndexError, match=r"target 7"):
        nll_loss(to_xp(xp, X), to_xp(xp, np.array([7, 0])))
    with pytest.raises(ValueError, match=r"weight must have shape"):
        nll_loss(to_xp(xp, X), to_xp(xp, Y), weight=to_xp(xp, np.ones(2)))


def test_array_api_strict_other_device():
    """Results stay on the input's device; list arguments are created there too."""
    xps = pytest.importorskip("array_api_strict")
    device = xps.Device("device1")
    x, target, _ = make_case("kd", "index", "default", np.float64, seed=9)
    weight = class_weight(np.float64)
    sw = np.arange(1.0, N + 1)
    expected = cross_entropy_with_grad(x, target, weight=weight, sample_weight=sw,
                                       label_smoothing=0.2)
    got = cross_entropy_with_grad(xps.asarray(x, device=device),
                                  xps.asarray(target, device=device), weight=weight.tolist(),
                                  sample_weight=sw.tolist(), label_smoothing=0.2)
    for a, b in zip(got, expected, strict=True):
        assert a.device == device
        np.testing.assert_allclose(to_numpy(a), b, **TOL[np.float64])
    probs = xps.asarray(np.full(x.shape, 1 / C), device=device)
    loss = cross_entropy(xps.asarray(x, device=device), probs, weight=weight.tolist())
    assert loss.device == device


def test_small_thread_stack():
    """The blocked kernels keep their scratch on the heap: a 64 KiB thread stack is enough."""
    from conftest import run_with_small_stack

    from softmax_core import cross_entropy_with_grad

    def work():
        for dtype in (np.float32, np.float64):
            for n_classes in (10, 40):
                x = np.zeros((4096, n_classes), dtype)
                loss, _ = cross_entropy_with_grad(x, np.zeros(4096, np.int64))
                np.testing.assert_allclose(float(loss), np.log(n_classes), rtol=1e-6)

    run_with_small_stack(work)


def test_uint64_targets_never_wrap(xp):
    """2**64 - 100 must not become ignore_index=-100 through an int64 cast."""
    if xp is not np and getattr(xp, "uint64", None) is None:
        pytest.skip("no uint64 in this namespace")
    from conftest import to_xp

    from softmax_core import nll_loss

    target = to_xp(xp, np.array([2**64 - 100, 1], dtype=np.uint64))
    with pytest.raises(ValueError, match=str(2**64 - 100)):
        nll_loss(to_xp(xp, np.zeros((2, 3))), target, reduction="none")


@pytest.mark.parametrize("n", [1, 3, 4, 5, 255, 4097])
def test_index_range_kernel(n):
    """The one-pass min/max behind the class-index check, against NumPy."""
    from softmax_core._native import kernels

    rng = np.random.default_rng(n)
    for target in (rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64, endpoint=True),
                   rng.integers(0, 10, n)):
        for i in range(min(n, 4)):  # the extremes at the start, the middle and the end
            t = target.copy()
            t[[0, n // 2, n - 1][i % 3]] = [2**63 - 1, -(2**63), 0, 5][i]
            assert kernels.index_range(t) == (t.min(), t.max())


def test_out_of_range_target_in_a_strided_view():
    x = np.zeros((6, 3))
    target = np.array([0, 9, 1, 2, 2, -5, 1, 0, 2, 1, 0, 2])[::2]  # 0 1 2 1 2 0 -> fine
    cross_entropy(x, target)
    bad = np.array([0, 9, 1, 2, 2, -5, 1, 0, 2, 1, 0, 2])[1::2]  # 9 2 -5 0 1 2
    with pytest.raises(IndexError, match="target 9 .*3 classes"):
        cross_entropy(x, bad)


# ------------------------------------------- NumPy scalars from full reductions
def _scalar_cases():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, C))
    y = np.array([0, 3, 1, -100, 2])
    probs = np.full((N, C), 1.0 / C)
    seg_x = rng.standard_normal((2, C, *SPATIAL))
    seg_y = rng.integers(0, C, (2, *SPATIAL))
    return [
        ("index", x, y),
        ("probabilities", x, probs),
        ("spatial", seg_x, seg_y),
        ("1-D", x[0], np.array(2)),
        ("all ignored", x, np.full(N, -100)),  # mean is NaN, still a scalar
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("case", _scalar_cases(), ids=lambda c: c[0])
def test_numpy_full_reduction_is_a_numpy_scalar(case, reduction, dtype):
    """As np.sum returns: np.float32 / np.float64, not a 0-d ndarray."""
    _, x, target = case
    x = x.astype(dtype)
    if target.dtype.kind == "f":
        target = target.astype(dtype)
    results = {
        "cross_entropy": cross_entropy(x, target, reduction=reduction),
        "cross_entropy_with_grad": cross_entropy_with_grad(x, target, reduction=reduction)[0],
    }
    if target.dtype.kind != "f":
        results["nll_loss"] = nll_loss(log_softmax(x, axis=1 if x.ndim > 1 else 0), target,
                                       reduction=reduction)
    for name, result in results.items():
        assert isinstance(result, np.floating), (name, type(result))
        assert not isinstance(result, np.ndarray), name
        assert result.dtype == dtype, (name, result.dtype)
        assert type(result) is type(np.sum(x)), name


def test_numpy_full_reduction_of_lists_and_float16():
    assert type(cross_entropy([[1.0, 2.0, 0.5]], [1])) is np.float64
    loss = cross_entropy(np.ones((3, 4), dtype=np.float16), np.array([0, 1, 2]))
    assert type(loss) is np.float16
    loss = cross_entropy(np.arange(12).reshape(3, 4), np.array([0, 1, 2]))  # int -> float64
    assert type(loss) is np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_reduction_none_is_still_an_array(dtype):
    x = np.random.default_rng(1).standard_normal((N, C)).astype(dtype)
    y = np.array([0, 3, 1, 1, 2])
    for result in (cross_entropy(x, y, reduction="none"),
                   cross_entropy_with_grad(x, y, reduction="none")[0],
                   nll_loss(log_softmax(x, axis=1), y, reduction="none")):
        assert isinstance(result, np.ndarray) and result.shape == (N,)
        assert result.dtype == dtype
    one = cross_entropy(x[0], np.array(1), reduction="none")  # 1-D input: 0-d per-sample
    assert isinstance(one, np.ndarray) and one.shape == ()


@pytest.mark.parametrize("backend", ["array_api_strict", "torch"])
def test_other_namespaces_keep_0d_arrays(backend):
    xp = pytest.importorskip(backend)
    x = np.random.default_rng(2).standard_normal((N, C))
    y = np.array([0, 3, 1, 1, 2])
    xx, yy = to_xp(xp, x), to_xp(xp, y)
    for reduction in ("mean", "sum"):
        for result in (cross_entropy(xx, yy, reduction=reduction),
                       cross_entropy_with_grad(xx, yy, reduction=reduction)[0]):
            assert namespace_of(result) == namespace_of(xx) == backend
            assert result.shape == ()


# ------------------------------------------------ the common call's fast path
def _general(x, y, ignore_index, reduction, label_smoothing, want_grad):
    """The general NumPy path (checks, LossInputs, kernel) for the same call."""
    from softmax_core import _losses
    from softmax_core._namespace import NUMPY

    inputs = _losses._inputs(np, NUMPY, x, y, None, None, ignore_index, reduction,
                             label_smoothing)
    loss, grad = _losses._cross_entropy(inputs, want_grad)
    return _losses._numpy_scalar(inputs, loss), grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (40, 100), (33, 1000)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.25, 1])
@pytest.mark.parametrize("ignore_index", [-100, 0, 2])
def test_common_call_fast_path_is_the_general_path(dtype, shape, reduction, label_smoothing,
                                                   ignore_index):
    # plain (N, C) NumPy calls skip the general checks (_losses_numpy.common_call):
    # same values, bits, types and dtypes, ignored targets and huge logits included
    from softmax_core import _losses_numpy

    rng = np.random.default_rng(sum(shape))
    for scale in (3.0, 1e37):
        x = (rng.standard_normal(shape) * scale).astype(dtype)
        y = rng.integers(0, shape[1], shape[0])
        if ignore_index == 2:
            y[:] = min(2, shape[1] - 1)  # every row ignored once C > 2: a NaN mean
        for want_grad in (False, True):
            fast = _losses_numpy.common_call(x, y, ignore_index, reduction, label_smoothing,
                                             want_grad)
            assert fast is not None
            ref = _general(x, y, ignore_index, reduction, label_smoothing, want_grad)
            assert type(fast[0]) is type(ref[0])
            assert np.asarray(fast[0]).dtype == np.asarray(ref[0]).dtype
            np.testing.assert_array_equal(fast[0], ref[0])
            if want_grad:
                assert fast[1].dtype == ref[1].dtype
                np.testing.assert_array_equal(fast[1], ref[1])
            else:
                assert fast[1] is None and ref[1] is None


@pytest.mark.parametrize("case", [
    "int32 target", "bad target", "ignored target", "float16", "fortran", "strided",
    "empty", "3-d", "list", "bool ignore_index", "numpy ignore_index", "bad reduction",
    "bool smoothing", "smoothing > 1", "numpy smoothing"])
def test_common_call_leaves_other_calls_to_the_general_path(case):
    from softmax_core import _losses_numpy

    x = np.zeros((4, 3), np.float32)
    y = np.array([0, 1, 2, 0])
    args = dict(ignore_index=-100, reduction="mean", label_smoothing=0.0)
    x, y = {"int32 target": (x, y.astype(np.int32)),
            "bad target": (x, np.array([0, 1, 3, 0])),
            "ignored target": (x, np.array([0, -100, 1, 2])),
            "float16": (x.astype(np.float16), y),
            "fortran": (np.asfortranarray(np.zeros((3, 4), np.float32).T), y),
            "strided": (x[:, :2], y % 2),
            "empty": (x[:0], y[:0]),
            "3-d": (x.reshape(2, 2, 3), y.reshape(2, 2)),
            "list": (x.tolist(), y)}.get(case, (x, y))
    args.update({"bool ignore_index": dict(ignore_index=True),
                 "numpy ignore_index": dict(ignore_index=np.int64(-100)),
                 "bad reduction": dict(reduction="avg"),
                 "bool smoothing": dict(label_smoothing=True),
                 "smoothing > 1": dict(label_smoothing=1.5),
                 "numpy smoothing": dict(label_smoothing=np.float64(0.1))}.get(case, {}))
    assert _losses_numpy.common_call(x, y, args["ignore_index"], args["reduction"],
                                     args["label_smoothing"], True) is None
