"""The public functions on dask arrays (issue 12): lazy end to end.

Every call is made under a scheduler that counts the computes (and delegates
to ``dask.get``, or to the test's ``distributed`` client), and the count must
be zero when the call returns: the loss checks of values run inside the
graph, and an invalid argument raises when the result is computed, with the
message of the eager NumPy call.  The computed results are compared with
SciPy and with NumPy formulas written here (``_reference_loss``), to 1e-14,
on chunked class axes, unknown chunk sizes (``X[mask]``, with an empty block),
(N, C, d) input and calls that mix NumPy and dask arrays.
"""

import re

import numpy as np
import pytest
import scipy.special as sp

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from softmax_core import (  # noqa: E402
    cross_entropy,
    cross_entropy_with_grad,
    log_softmax,
    log_softmax_backward,
    logsumexp,
    nll_loss,
    softmax,
    softmax_backward,
)

TOL = {"rtol": 1e-14, "atol": 1e-14}
N, C = 60, 7
ROWS = 15  # row chunks; the class axis is split into chunks of 3, 3 and 1


class CountingScheduler:
    """A dask scheduler that counts the computes and delegates to ``get``."""

    def __init__(self, get=None):
        self.get = dask.get if get is None else get
        self.computes = 0

    def __call__(self, dsk, keys, **kwargs):
        self.computes += 1
        return self.get(dsk, keys, **kwargs)


@pytest.fixture
def counter():
    scheduler = CountingScheduler()
    with dask.config.set(scheduler=scheduler):
        yield scheduler


def _lazy(counter, func, *args, **kwargs):
    """``func(*args, **kwargs)``, asserting that the call computed nothing and
    returned dask arrays."""
    before = counter.computes
    result = func(*args, **kwargs)
    assert counter.computes == before, "the call computed"
    for r in result if isinstance(result, tuple) else (result,):
        assert isinstance(r, da.Array), type(r)
    return result


def _computed(counter, result):
    """The NumPy values of ``result`` (an array or a tuple), in one compute."""
    before = counter.computes
    values = dask.compute(*(result if isinstance(result, tuple) else (result,)))
    assert counter.computes == before + 1
    return values if isinstance(result, tuple) else values[0]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C)) * 3
    x[ROWS:2 * ROWS, 0] = -5.0  # the second row block is empty after _selected
    y = rng.integers(0, C, N)
    y[::9] = -100  # ignored samples: the "mean" denominator counts the others
    return x, y, rng.random(N) * 2, rng.random(C) + 0.5


def _dask(a, rows=ROWS, cols=3):
    return da.from_array(a, chunks=(rows,) + (cols,) * (a.ndim > 1) + (-1,) * (a.ndim - 2))


def _selected(a, x):
    """Rows of ``a`` where ``x[:, 0] > -1``: a dask array of unknown row count."""
    return a[x[:, 0] > -1]


def _reference_loss(x, y, *, weight=None, sample_weight=None, reduction="mean",
                    ignore_index=-100, label_smoothing=0.0, want_grad=False):
    """torch's cross-entropy of (N, C) logits in NumPy: loss (and gradient)."""
    n, c = x.shape
    logp = sp.log_softmax(x, axis=1)
    w = np.ones(c) if weight is None else weight
    s = np.ones(n) if sample_weight is None else sample_weight
    eps = label_smoothing
    if y.dtype.kind == "f":  # probabilities
        twc = ((1 - eps) * y + eps / c) * w
        denom = s.sum()
    else:
        valid = y != ignore_index
        yy = np.where(valid, y, 0)
        onehot = np.eye(c)[yy]
        twc = ((1 - eps) * w[yy][:, None] * onehot + eps / c * w) * valid[:, None]
        denom = (w[yy] * valid * s).sum()
    losses = -(twc * logp).sum(axis=1) * s
    loss = {"none": losses, "sum": losses.sum(), "mean": losses.sum() / denom}[reduction]
    if not want_grad:
        return loss
    grad = s[:, None] * (sp.softmax(x, axis=1) * twc.sum(axis=1, keepdims=True) - twc)
    return loss, grad / denom if reduction == "mean" else grad


# --- softmax, log_softmax, logsumexp and the VJPs ---------------------------------

def _softmax_cases(x):
    g = np.cos(x)
    y = sp.softmax(x, axis=1)
    ly = sp.log_softmax(x, axis=1)
    b = np.linspace(-1.0, 2.0, C)
    return {
        "softmax_axis1": (softmax, (x,), {"axis": 1}, sp.softmax(x, axis=1)),
        "softmax_axis0": (softmax, (x,), {"axis": 0}, sp.softmax(x, axis=0)),
        "log_softmax_all": (log_softmax, (x,), {"axis": None}, sp.log_softmax(x, axis=None)),
        "log_softmax_where": (log_softmax, (x,), {"axis": 1, "where": x > -1},
                              np.where(x > -1, sp.log_softmax(np.where(x > -1, x, -np.inf),
                                                              axis=1), -np.inf)),
        "logsumexp_axis1": (logsumexp, (x,), {"axis": 1}, sp.logsumexp(x, axis=1)),
        "logsumexp_axis0_keepdims": (logsumexp, (x,), {"axis": 0, "keepdims": True},
                                     sp.logsumexp(x, axis=0, keepdims=True)),
        "logsumexp_b_sign": (logsumexp, (x,), {"axis": 1, "b": b, "return_sign": True},
                             sp.logsumexp(x, axis=1, b=b, return_sign=True)),
        "softmax_backward": (softmax_backward, (g, y), {"axis": 1},
                             y * (g - (g * y).sum(axis=1, keepdims=True))),
        "log_softmax_backward": (log_softmax_backward, (g, ly), {"axis": 1},
                                 g - np.exp(ly) * g.sum(axis=1, keepdims=True)),
    }


def _check(actual, expected):
    if isinstance(expected, tuple):
        for a, e in zip(actual, expected, strict=True):
            np.testing.assert_allclose(a, e, **TOL)
    else:
        assert actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, **TOL)


@pytest.mark.parametrize("case", list(_softmax_cases(np.zeros((1, C)))))
@pytest.mark.parametrize("rows", ["known", "unknown"])
def test_softmax_family_is_lazy(counter, case, rows):
    x, _, _, _ = _data()
    keep = x[:, 0] > -1
    ref_x = x[keep] if rows == "unknown" else x
    func, args, kwargs, expected = _softmax_cases(ref_x)[case]
    dargs = []
    for a in _softmax_cases(x)[case][1]:  # the same arrays before the selection
        d = _dask(a)
        dargs.append(_selected(d, _dask(x)) if rows == "unknown" else d)
    dkwargs = dict(kwargs)
    if "where" in kwargs:
        mask = _dask(x) > -1
        dkwargs["where"] = _selected(mask, _dask(x)) if rows == "unknown" else mask
    if rows == "unknown":
        assert np.isnan(dargs[0].shape[0])
    result = _lazy(counter, func, *dargs, **dkwargs)
    _check(_computed(counter, result), expected)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # NumPy's, when computed
def test_empty_block_and_empty_selection(counter):
    """dask's own max fails on a block of zero rows; ours gives the NumPy results."""
    x, _, _, _ = _data()
    dx = _dask(x)
    nothing = dx[dx[:, 0] > 100]
    res = _lazy(counter, logsumexp, nothing, axis=0, return_sign=True)
    out, sign = _computed(counter, res)
    np.testing.assert_array_equal(out, np.full(C, -np.inf))
    np.testing.assert_array_equal(sign, np.zeros(C))
    res = _lazy(counter, softmax, _selected(dx, dx), axis=0)
    _check(_computed(counter, res), sp.softmax(x[x[:, 0] > -1], axis=0))


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64])
def test_dtypes_as_numpy(counter, dtype):
    x = (_data()[0] * 2).astype(dtype)
    for func in (softmax, log_softmax, logsumexp):
        res = _lazy(counter, func, _dask(x), axis=1)
        expected = func(x, axis=1)
        assert res.dtype == expected.dtype
        values = _computed(counter, res)
        assert values.dtype == expected.dtype
        rtol = {np.float32: 1e-6, np.float16: 1e-3, np.int64: 1e-14}[dtype]
        np.testing.assert_allclose(values, expected, rtol=rtol, atol=rtol)


# --- the losses ---------------------------------------------------------------------

LOSS_OPTIONS = {
    "plain": {},
    "weight": {"weight": True},
    "sample_weight": {"sample_weight": True},
    "all": {"weight": True, "sample_weight": True, "label_smoothing": 0.2},
    "ignore_index_3": {"ignore_index": 3, "label_smoothing": 0.1},
}


def _loss_kwargs(options, sw, w):
    kwargs = dict(options)
    if kwargs.pop("weight", False):
        kwargs["weight"] = w
    if kwargs.pop("sample_weight", False):
        kwargs["sample_weight"] = sw
    return kwargs


@pytest.mark.parametrize(("options", "reduction"), [
    ("plain", "mean"), ("plain", "none"), ("weight", "sum"), ("sample_weight", "mean"),
    ("sample_weight", "none"), ("all", "mean"), ("all", "sum"), ("ignore_index_3", "mean"),
    ("ignore_index_3", "none"),
])
@pytest.mark.parametrize("rows", ["known", "unknown"])
def test_losses_are_lazy(counter, options, reduction, rows):
    x, y, sw, w = _data()
    if "ignore_index" in LOSS_OPTIONS[options]:  # a valid class, ignored
        y = np.where(y == -100, LOSS_OPTIONS[options]["ignore_index"], y)
    dx, dy, dsw = _dask(x), _dask(y), _dask(sw)
    if rows == "unknown":
        keep = x[:, 0] > -1
        x, y, sw = x[keep], y[keep], sw[keep]
        dx, dy, dsw = (_selected(a, _dask(_data()[0])) for a in (dx, dy, dsw))
    ref_kwargs = _loss_kwargs(LOSS_OPTIONS[options], sw, w)
    kwargs = _loss_kwargs(LOSS_OPTIONS[options], dsw, _dask(w))
    loss = _lazy(counter, cross_entropy, dx, dy, reduction=reduction, **kwargs)
    with_grad = _lazy(counter, cross_entropy_with_grad, dx, dy, reduction=reduction, **kwargs)
    loss, (loss2, grad) = _computed(counter, (loss, with_grad))
    expected, expected_grad = _reference_loss(x, y, reduction=reduction, want_grad=True,
                                              **ref_kwargs)
    _check(loss, expected)
    _check(loss2, expected)
    _check(grad, expected_grad)


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("rows", ["known", "unknown"])
def test_nll_loss_is_lazy(counter, reduction, rows):
    x, y, _, w = _data()
    dx, dy = _dask(x), _dask(y)
    if rows == "unknown":
        keep = x[:, 0] > -1
        x, y = x[keep], y[keep]
        dx, dy = _selected(dx, dx), _selected(dy, dx)
    logp = _lazy(counter, log_softmax, dx, axis=1)
    loss = _lazy(counter, nll_loss, logp, dy, weight=_dask(w), reduction=reduction)
    _check(_computed(counter, loss), _reference_loss(x, y, weight=w, reduction=reduction))


def test_probability_targets_lazy_unknown_rows(counter):
    x, _, sw, w = _data()
    t = sp.softmax(np.sin(3 * x), axis=1)
    keep = x[:, 0] > -1
    dx = _dask(x)
    res = _lazy(counter, cross_entropy_with_grad, _selected(dx, dx), _selected(_dask(t), dx),
                weight=w, sample_weight=_selected(_dask(sw), dx), label_smoothing=0.1)
    loss, grad = _computed(counter, res)
    expected, expected_grad = _reference_loss(x[keep], t[keep], weight=w,
                                              sample_weight=sw[keep], label_smoothing=0.1,
                                              want_grad=True)
    _check(loss, expected)
    _check(grad, expected_grad)


@pytest.mark.parametrize("rows", ["known", "unknown"])
def test_k_dimensional_input(counter, rows):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 5, 4, 3))
    y = rng.integers(0, 5, (12, 4, 3))
    sw = rng.random(12)
    dx = da.from_array(x, chunks=(5, 2, 3, 2))
    dy = da.from_array(y, chunks=(5, 3, 2))
    dsw = da.from_array(sw, chunks=5)
    if rows == "unknown":
        keep = sw > 0.3
        x, y, sw = x[keep], y[keep], sw[keep]
        mask = dsw > 0.3
        dx, dy, dsw = dx[mask], dy[mask], dsw[mask]
    res = _lazy(counter, cross_entropy_with_grad, dx, dy, sample_weight=dsw,
                reduction="none")
    loss, grad = _computed(counter, res)
    # the reference on rows: (N, C, d1, d2) -> (N*d1*d2, C)
    rows_x = np.moveaxis(x, 1, -1).reshape(-1, 5)
    rows_sw = np.broadcast_to(sw[:, None, None], y.shape).reshape(-1)
    expected, expected_grad = _reference_loss(rows_x, y.reshape(-1), sample_weight=rows_sw,
                                              reduction="none", want_grad=True)
    _check(loss, expected.reshape(y.shape))
    _check(grad, np.moveaxis(expected_grad.reshape(*y.shape, 5), -1, 1))


def test_target_blocks_computed_once(counter):
    """The checks read the target's blocks from the graph the loss uses (no
    second computation of each block for the checks)."""
    x, y, sw, _ = _data()
    calls = []

    def traced(block):
        calls.append(block.shape)
        return block

    dy = _dask(y).map_blocks(traced, dtype=y.dtype, meta=np.empty(0, dtype=y.dtype))
    dsw = _dask(sw).map_blocks(traced, dtype=sw.dtype, meta=np.empty(0, dtype=sw.dtype))
    res = _lazy(counter, cross_entropy_with_grad, _dask(x), dy, sample_weight=dsw,
                reduction="none")
    _computed(counter, res)
    assert len(calls) == dy.numblocks[0] + dsw.numblocks[0]


# --- NumPy arrays in a dask call are promoted to dask ---------------------------------

def _promotion_cases():
    x, y, sw, w = _data()
    g = np.cos(x)
    s = sp.softmax(x, axis=1)
    mask = x > -1
    b = np.linspace(-1.0, 2.0, C)
    loss_ref = _reference_loss(x, y, weight=w, sample_weight=sw, want_grad=True)
    return [
        ("softmax_where", softmax, (x,), {"where": mask}, ("where",),
         np.where(mask, sp.softmax(np.where(mask, x, -np.inf), axis=1), 0.0)),
        ("softmax_x", softmax, (x,), {"where": mask}, (0,),
         np.where(mask, sp.softmax(np.where(mask, x, -np.inf), axis=1), 0.0)),
        ("log_softmax_x", log_softmax, (x,), {"where": mask, "axis": 0}, (0,),
         np.where(mask, sp.log_softmax(np.where(mask, x, -np.inf), axis=0), -np.inf)),
        ("logsumexp_b", logsumexp, (x,), {"b": b}, ("b",), sp.logsumexp(x, axis=1, b=b)),
        ("logsumexp_x", logsumexp, (x,), {"b": b}, (0,), sp.logsumexp(x, axis=1, b=b)),
        ("softmax_backward", softmax_backward, (g, s), {}, (0,),
         s * (g - (g * s).sum(axis=1, keepdims=True))),
        ("log_softmax_backward", log_softmax_backward, (g, np.log(s)), {}, (1,),
         g - s * g.sum(axis=1, keepdims=True)),
        ("cross_entropy_target", cross_entropy, (x, y), {"weight": w, "sample_weight": sw},
         (1,), loss_ref[0]),
        ("cross_entropy_logits", cross_entropy, (x, y), {"weight": w, "sample_weight": sw},
         (0,), loss_ref[0]),
        ("cross_entropy_weight", cross_entropy, (x, y), {"weight": w, "sample_weight": sw},
         ("weight",), loss_ref[0]),
        ("cross_entropy_with_grad_sample_weight", cross_entropy_with_grad, (x, y),
         {"weight": w, "sample_weight": sw}, ("sample_weight",), loss_ref),
        ("nll_loss_weight", nll_loss, (sp.log_softmax(x, axis=1), y), {"weight": w},
         ("weight",), _reference_loss(x, y, weight=w)),
        ("nll_loss_target", nll_loss, (sp.log_softmax(x, axis=1), y), {"weight": w},
         (1,), _reference_loss(x, y, weight=w)),
    ]


@pytest.mark.parametrize("case", _promotion_cases(), ids=lambda c: c[0])
def test_numpy_mixed_with_dask_is_promoted(counter, case):
    """One argument is a dask array, the others NumPy arrays: a dask result."""
    _, func, args, kwargs, as_dask, expected = case
    args = [_dask(a) if i in as_dask else a for i, a in enumerate(args)]
    kwargs = {k: _dask(v) if k in as_dask else v for k, v in kwargs.items()}
    result = _lazy(counter, func, *args, **kwargs)
    _check(_computed(counter, result), expected)


def test_torch_mixed_with_dask_raises(counter):
    torch = pytest.importorskip("torch")
    x = np.ones((4, C))
    with pytest.raises(TypeError, match="Multiple namespaces"):
        softmax(torch.asarray(x), where=_dask(x > 0))
    with pytest.raises(TypeError, match="Multiple namespaces"):
        cross_entropy(_dask(x), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(TypeError, match="Multiple namespaces"):
        cross_entropy(x, _dask(np.zeros(4, dtype=np.int64)), weight=torch.ones(C))
    assert counter.computes == 0


# --- invalid arguments: the eager message, raised when computed ------------------------

def _bad_target(kind):
    _, y, _, _ = _data()
    y = y.copy()
    if kind == "too_large":
        y[47] = C
    elif kind == "negative":
        y[30] = -3
    elif kind == "several":  # the first in flat order is reported, whatever the blocks
        y[[55, 48, 36]] = [C + 4, -7, 2 * C]
    elif kind == "uint64":
        y = np.abs(y).astype(np.uint64)
        y[40] = 2**64 - 100
    return y


@pytest.mark.parametrize("kind", ["too_large", "negative", "several", "uint64"])
@pytest.mark.parametrize("func", [cross_entropy, cross_entropy_with_grad, nll_loss])
def test_invalid_target_raises_when_computed(counter, kind, func):
    x, _, _, _ = _data()
    y = _bad_target(kind)
    with pytest.raises(IndexError) as eager:
        func(x, y)
    message = str(eager.value)
    result = _lazy(counter, func, _dask(x), _dask(y, rows=17))
    with pytest.raises(type(eager.value), match=f"^{re.escape(message)}$"):
        dask.compute(result)
    assert isinstance(eager.value, ValueError)


def test_invalid_target_unknown_rows_and_k_dims(counter):
    x, _, _, _ = _data()
    y = _bad_target("several")
    keep = x[:, 0] > -1
    with pytest.raises(IndexError) as eager:
        cross_entropy(x[keep], y[keep])
    dx = _dask(x)
    result = _lazy(counter, cross_entropy, _selected(dx, dx), _selected(_dask(y), dx))
    with pytest.raises(IndexError, match=f"^{re.escape(str(eager.value))}$"):
        _computed(counter, result)
    # (N, d1, d2) targets in blocks across every axis: the flat position is global
    x3 = np.zeros((6, 3, 4, 5))
    y3 = np.ones((6, 4, 5), dtype=np.int64)
    y3[4, 0, 0], y3[1, 3, 4], y3[1, 2, 4] = 9, -1, 3
    with pytest.raises(IndexError) as eager:
        cross_entropy(x3, y3)
    result = _lazy(counter, cross_entropy, da.from_array(x3, chunks=2),
                   da.from_array(y3, chunks=(3, 2, 3)))
    with pytest.raises(IndexError, match=f"^{re.escape(str(eager.value))}$"):
        _computed(counter, result)


@pytest.mark.parametrize("bad", ["negative", "nan", "both"])
def test_invalid_sample_weight_raises_when_computed(counter, bad):
    x, y, sw, _ = _data()
    sw = sw.copy()
    if bad in ("negative", "both"):
        sw[34] = -0.5
    if bad in ("nan", "both"):
        sw[51] = np.nan
    with pytest.raises(ValueError) as eager:
        cross_entropy(x, y, sample_weight=sw)
    for func in (cross_entropy, cross_entropy_with_grad):
        result = _lazy(counter, func, _dask(x), _dask(y), sample_weight=_dask(sw, rows=30))
        with pytest.raises(ValueError, match=f"^{re.escape(str(eager.value))}$"):
            dask.compute(result)


def test_bad_target_reported_before_bad_sample_weight(counter):
    """The eager path checks the target first; so does the graph."""
    x, _, sw, _ = _data()
    y = _bad_target("negative")
    sw = sw.copy()
    sw[0] = -1.0
    with pytest.raises(IndexError) as eager:
        cross_entropy(x, y, sample_weight=sw)
    result = _lazy(counter, cross_entropy, _dask(x), _dask(y), sample_weight=_dask(sw))
    with pytest.raises(IndexError, match=f"^{re.escape(str(eager.value))}$"):
        dask.compute(result)


def test_shape_dtype_and_option_errors_stay_eager(counter):
    x, y, sw, w = _data()
    dx, dy = _dask(x), _dask(y)
    with pytest.raises(ValueError, match="reduction must be one of"):
        cross_entropy(dx, dy, reduction="avg")
    with pytest.raises(ValueError, match=re.escape("weight must have shape (7,)")):
        cross_entropy(dx, dy, weight=_dask(w[:5]))
    with pytest.raises(ValueError, match=re.escape("sample_weight must have shape (60,)")):
        cross_entropy(dx, dy, sample_weight=_dask(sw[:-1]))
    with pytest.raises(TypeError, match="target must hold integer class indices"):
        cross_entropy(dx, dy > 0)
    with pytest.raises(ValueError, match="nll_loss needs integer class indices"):
        nll_loss(dx, _dask(y * 1.0))
    with pytest.raises(ValueError, match=re.escape("must have shape (None,)")):
        # a known length (a NumPy target) cannot match an unknown one
        cross_entropy(_selected(dx, dx), y)
    with pytest.raises(ValueError, match="class axis .* of unknown length"):
        cross_entropy(dx[:, dx[0] > 0], dy)
    with pytest.raises(ValueError, match="cannot be broadcast"):
        softmax(_selected(dx, dx), where=x > 0)
    assert counter.computes == 0


# --- a real distributed.LocalCluster (tests/conftest.py's dask_client) ---------------

def _scheduler_transitions(client):
    return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)


def test_on_a_cluster(dask_client):
    x, y, sw, w = _data()
    counting = CountingScheduler(dask_client.get)
    dx, dy = _dask(x, rows=2 * ROWS, cols=-1), _dask(y, rows=2 * ROWS)  # few tasks
    with dask.config.set(scheduler=counting):
        before = _scheduler_transitions(dask_client)
        results = (
            _lazy(counting, softmax, _selected(dx, dx), axis=0),
            _lazy(counting, logsumexp, dx, axis=1),
            _lazy(counting, cross_entropy, dx, dy, weight=w,
                  sample_weight=_dask(sw, rows=2 * ROWS)),
            _lazy(counting, cross_entropy_with_grad, _selected(dx, dx), _selected(dy, dx),
                  reduction="sum"),
        )
        assert _scheduler_transitions(dask_client) == before  # no task reached the cluster
        values = _computed(counting, results)
        assert _scheduler_transitions(dask_client) > before  # the cluster computed them
    keep = x[:, 0] > -1
    _check(values[0], sp.softmax(x[keep], axis=0))
    _check(values[1], sp.logsumexp(x, axis=1))
    _check(values[2], _reference_loss(x, y, weight=w, sample_weight=sw))
    expected = _reference_loss(x[keep], y[keep], reduction="sum", want_grad=True)
    _check(values[3][0], expected[0])
    _check(values[3][1], expected[1])


def test_invalid_target_on_a_cluster(dask_client):
    """The exception raised on a worker reaches the caller with its type and message."""
    x, _, sw, _ = _data()
    y = _bad_target("several")
    with pytest.raises(IndexError) as eager:
        cross_entropy(x, y)
    counting = CountingScheduler(dask_client.get)
    with dask.config.set(scheduler=counting):
        result = _lazy(counting, cross_entropy, _dask(x, cols=-1), _dask(y),
                       sample_weight=_dask(sw))
        with pytest.raises(type(eager.value), match=f"^{re.escape(str(eager.value))}$"):
            result.compute()
    assert counting.computes == 1
