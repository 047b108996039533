"""Fuzz: nll_loss, cross_entropy and cross_entropy_with_grad against torch 2.13.

The oracle is ``torch.nn.functional`` in float64 on the same input values (and
its autograd gradient), over 1-D, (N, C) and (N, C, d1, ..., dk) inputs with
zero-size batches, every input dtype and layout, special logits (inf, NaN,
huge), class-index targets (with ``ignore_index`` a valid class, the default
or another negative value) and probability targets, class weights (zeros,
integers, an inf on a class no target uses), ``sample_weight``, every
reduction and label smoothing; for the NumPy kernel and the array-API path
(array_api_strict, torch tensors).

Error bound: with ``T`` the effective target of a row (class weights, label
smoothing and ignored rows folded in) and ``A = sum_c |T_c|``, the row loss
``sum_c T_c (lse - x_c)`` is within ``K eps sum_c |T_c| (|lse| + |x_c| + 1)``,
a reduction over M rows adds ``M eps`` of its magnitude (float32 sums), and
the gradient ``scale (A softmax - T)`` is within ``K eps |scale| (A + |T|)``
(softmax has an absolute error of a few eps whatever the logits).
"""

import math

import numpy as np
import pytest
from fuzz_strategies import (
    K,
    array_api_path,
    assert_close,
    assert_unchanged,
    call,
    fuzz_settings,
    quiet,
    snapshot,
    strict_warnings,
    values,
    with_layout,
)
from hypothesis import given, note
from hypothesis import strategies as st

from softmax_core import cross_entropy, cross_entropy_with_grad, nll_loss

pytestmark = pytest.mark.torch

LOGIT_LAYOUTS = ("C", "C", "F", "negative", "sliced", "broadcast", "readonly", "misaligned",
                 "list")


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(before)


@st.composite
def loss_cases(draw, allow_prob=True, with_sample_weight=False):
    """Keyword arguments of one loss call, as NumPy values, plus its layout choices."""
    dims = draw(st.sampled_from(["1d", "2d", "2d", "kd"]))
    n_classes = draw(st.integers(1, 6))
    if dims == "1d":
        shape = (n_classes,)
    elif dims == "2d":
        shape = (draw(st.integers(0, 9)), n_classes)
    else:
        spatial = tuple(draw(st.lists(st.integers(0, 3), min_size=1, max_size=3)))
        shape = (draw(st.integers(0, 4)), n_classes, *spatial)
    axis = 0 if dims == "1d" else 1
    batch = shape[:axis] + shape[axis + 1:]
    dtype = draw(st.sampled_from([np.float64, np.float32, np.float64, np.float32, np.float16,
                                  np.int64]))
    x = draw(values(shape, dtype, kinds=("normal", "wide", "ties", "small", "huge")), label="x")
    kind = draw(st.sampled_from(["index", "index", "prob"])) if allow_prob else "index"
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ignore_index = draw(st.sampled_from([-100, -100, -1, "class"]))
    if ignore_index == "class":
        ignore_index = int(rng.integers(0, n_classes))
    if kind == "prob":
        ignore_index = min(ignore_index, -1) if ignore_index >= 0 else ignore_index
        t = rng.random(shape) * (rng.random(shape) < draw(st.sampled_from([1.0, 0.5])))
        if draw(st.booleans()):
            with quiet():
                t = t / np.sum(t, axis=axis, keepdims=True)
            t = np.nan_to_num(t, nan=1.0 / n_classes)
        target = t.astype(draw(st.sampled_from([np.float64, np.float32])))
    else:
        target = rng.integers(0, n_classes, size=batch)
        ignored = rng.random(batch) < draw(st.sampled_from([0.0, 0.3, 1.0]))
        target = np.where(ignored, ignore_index, target)
        target = target.astype(draw(st.sampled_from([np.int64, np.int32])))
    weight = None
    wkind = draw(st.sampled_from(["none", "none", "positive", "zeros", "integers", "inf"]))
    if wkind == "positive":
        weight = rng.uniform(0.1, 3, n_classes)
    elif wkind == "zeros":
        weight = rng.uniform(0.1, 3, n_classes) * (rng.random(n_classes) < 0.5)
    elif wkind == "integers":
        weight = rng.integers(0, 4, n_classes)
    elif wkind == "inf" and kind == "index":
        used = set(np.asarray(target).reshape(-1).tolist())
        unused = [c for c in range(n_classes) if c not in used]
        if unused:  # 1/count for a class absent from the data
            weight = rng.uniform(0.1, 3, n_classes)
            weight[unused[0]] = np.inf
    smoothing = draw(st.sampled_from([0.0, 0.0, 0.1, 1.0, "random"]))
    if smoothing == "random":
        smoothing = float(rng.random())
    kwargs = dict(weight=weight, ignore_index=ignore_index,
                  reduction=draw(st.sampled_from(["mean", "sum", "none"])),
                  label_smoothing=smoothing)
    if with_sample_weight and draw(st.booleans()):
        sw_shape = batch if draw(st.booleans()) or dims == "1d" else batch[:1]
        sw_kind = draw(st.sampled_from(["ones", "integers", "uniform"]))
        sw = {"ones": np.ones(sw_shape), "integers": rng.integers(0, 4, sw_shape),
              "uniform": rng.uniform(0, 2, sw_shape)}[sw_kind]
        kwargs["sample_weight"] = np.asarray(sw)
    layout = draw(st.sampled_from(LOGIT_LAYOUTS))
    if layout == "list" and (0 in shape or dtype not in (np.float64, np.int64)):
        layout = "C"
    note(f"x={x!r}\ntarget={target!r}\nkwargs={kwargs!r}\nlayout={layout}")
    return x, target, kwargs, layout


def _torch_reference(torch, x, target, kwargs, nll=False):
    """torch's loss and gradient (of the sum for "none") in float64.

    With an infinite class weight a result hinges on ``0 * inf``: whether a tiny
    probability underflows in the compute dtype.  Then torch runs in the compute
    dtype (float32 for float32 and float16 input): torch's semantics, in float32.
    """
    F = torch.nn.functional
    w = kwargs.get("weight")
    dtype = np.float64
    if (w is not None and not np.all(np.isfinite(w))
            and np.asarray(x).dtype in (np.float32, np.float16)):
        dtype = np.float32
    tdtype = getattr(torch, np.dtype(dtype).name)
    xt = torch.tensor(np.ascontiguousarray(x, dtype=dtype), requires_grad=True)
    kind = "prob" if target.dtype.kind == "f" else "index"
    tt = torch.tensor(target.astype(dtype if kind == "prob" else np.int64))
    wt = None if w is None else torch.tensor(np.asarray(w, dtype=dtype))
    sw = kwargs.get("sample_weight")
    reduction = kwargs["reduction"]
    opts = dict(weight=wt, ignore_index=kwargs["ignore_index"])
    if nll:
        loss = F.nll_loss(xt, tt, reduction=reduction, **opts)
    elif sw is None:
        loss = F.cross_entropy(xt, tt, reduction=reduction,
                               label_smoothing=kwargs["label_smoothing"], **opts)
    else:  # the documented definition: a multiplier of each per-sample loss
        per = F.cross_entropy(xt, tt, reduction="none",
                              label_smoothing=kwargs["label_smoothing"], **opts)
        swt = torch.tensor(np.asarray(sw, dtype=dtype))
        swt = swt.reshape(swt.shape + (1,) * (per.ndim - swt.ndim))
        loss = per * swt
        if reduction == "sum":
            loss = loss.sum()
        elif reduction == "mean":
            if kind == "prob":
                denom = torch.broadcast_to(swt, per.shape).sum()
            else:
                valid = tt != kwargs["ignore_index"]
                n_classes = x.shape[0 if x.ndim == 1 else 1]
                wy = (torch.ones(n_classes, dtype=tdtype) if wt is None else wt)[
                    torch.where(valid, tt, 0)]
                denom = torch.where(valid, torch.broadcast_to(swt, per.shape) * wy, 0).sum()
            loss = loss.sum() / denom
    loss.sum().backward()
    grad = xt.grad.numpy()
    if sw is not None and reduction == "mean" and float(denom) == 0:
        # documented: NaN, as torch's own "mean" gives for a zero denominator
        loss = loss.detach() * np.nan
        grad = np.full_like(grad, np.nan)
    if kind == "index":  # ignored samples get zeros (documented), even for 0/0 or NaN rows
        axis = 0 if x.ndim == 1 else 1
        ignored = np.expand_dims(target == kwargs["ignore_index"], axis)
        grad = np.where(ignored, 0.0, grad)
    return loss.detach().numpy(), grad


def _effective_targets(x64, target, kwargs, smoothing):
    """Rows ``(x, T, scale_per_row, denominator)`` of the loss, for the error bound."""
    axis = 0 if x64.ndim == 1 else 1
    n_classes = x64.shape[axis]
    rows = np.moveaxis(x64, axis, -1).reshape(-1, n_classes)
    w = kwargs.get("weight")
    w = np.ones(n_classes) if w is None else np.asarray(w, dtype=np.float64)
    sw = kwargs.get("sample_weight")
    batch = x64.shape[:axis] + x64.shape[axis + 1:]
    s = np.ones(batch) if sw is None else np.broadcast_to(
        np.reshape(sw, np.shape(sw) + (1,) * (len(batch) - np.ndim(sw))), batch)
    s = np.asarray(s, dtype=np.float64).reshape(-1)
    with quiet():
        if target.dtype.kind == "f":
            t = np.moveaxis(target.astype(np.float64), axis, -1).reshape(-1, n_classes)
            T = w * ((1 - smoothing) * t + smoothing / n_classes)
            denom = np.sum(s)
        else:
            y = np.asarray(target).reshape(-1).astype(np.int64)
            valid = y != kwargs["ignore_index"]
            onehot = np.zeros((y.size, n_classes))
            onehot[np.arange(y.size)[valid], y[valid]] = 1.0
            # torch's terms, without the 0 * inf of an unused inf weight
            T = np.where(onehot > 0, (1 - smoothing) * w, 0.0)
            if smoothing:
                T = T + smoothing / n_classes * w
            T = np.where(valid[:, None], T, 0.0)
            denom = np.sum(s * np.where(valid, w[np.where(valid, y, 0)], 0.0))
        T = np.where(s[:, None] == 0, 0.0, T * s[:, None])  # a zero sample weight: no term
    return rows, T, denom


def _bounds(x64, target, kwargs, result, loss_ref, grad_ref, nll=False):
    compute = np.dtype(np.float32) if result == np.float16 else result
    eps, eps_r = np.finfo(compute).eps, np.finfo(result).eps
    smoothing = 0.0 if nll else kwargs["label_smoothing"]
    rows, T, denom = _effective_targets(x64, target, kwargs, smoothing)
    reduction = kwargs["reduction"]
    m = max(rows.shape[0], 1)
    with quiet():
        mx = np.max(rows, axis=1, keepdims=True) if rows.size else rows[:, :1]
        lse = np.log(np.sum(np.exp(rows - mx), axis=1, keepdims=True)) + mx
        if nll:
            lse = np.zeros_like(lse)
        mag = np.abs(T) * (np.abs(np.nan_to_num(lse)) + np.abs(np.nan_to_num(rows)) + 1)
        B = np.nan_to_num(np.sum(np.where(T != 0, mag, 0.0), axis=1), nan=np.inf)
        # the largest intermediate of a row: lse - x_c, w_c (lse - x_c), the row loss
        # before sample_weight multiplies it (0 * inf is NaN)
        T0 = _effective_targets(x64, target, dict(kwargs, sample_weight=None), smoothing)[1]
        inter = (np.abs(np.nan_to_num(lse)) + np.abs(np.nan_to_num(rows))) * np.maximum(
            1, np.abs(T0))
        inter = np.max(np.where(T0 != 0, inter, 0.0), axis=1, initial=0.0)
        inter = np.maximum(inter, np.sum(np.where(T0 != 0, np.abs(T0) * inter[:, None], 0.0),
                                         axis=1))
        A = np.sum(np.abs(T), axis=1, keepdims=True)
        if reduction == "none":
            loss_bound = K * eps * B.reshape(np.shape(loss_ref)) + eps_r * np.abs(loss_ref)
            scale = 1.0
        else:
            loss_bound = (K + m) * eps * np.sum(B) + eps_r * np.abs(loss_ref)
            scale = 1.0
            if reduction == "mean":
                scale = 1.0 / abs(denom) if denom else np.inf
                loss_bound = 2 * loss_bound * scale
        g = K * eps * scale * (A + np.abs(T)) * (1 if nll else 1 + m * (reduction == "mean"))
        axis = 0 if x64.ndim == 1 else 1
        shape = np.moveaxis(x64, axis, -1).shape
        g = np.moveaxis(g.reshape(shape), -1, axis)
        grad_bound = g + 2 * eps * np.abs(grad_ref) + eps_r * np.abs(grad_ref)
        grad_bound = grad_bound + np.finfo(result).smallest_normal
        # a row's terms beyond a quarter of the compute dtype's range may overflow on
        # the way to a finite loss (w * x, lse - x): such rows, and reductions over
        # them, are not compared; reductions of smaller rows accumulate in double (as
        # torch does), so a finite mean of large losses must come out finite
        big = float(np.finfo(compute).max) / 4
        row_big = np.maximum(B, inter) > big
        compared = ~row_big.reshape(np.shape(loss_ref)) if reduction == "none" else (
            not np.any(row_big))
    return (np.nan_to_num(loss_bound, nan=np.inf), np.nan_to_num(grad_bound, nan=np.inf),
            compared)


def _cast(a, dtype):
    with quiet():  # the float64 reference rounded to the result dtype may overflow
        return np.asarray(a).astype(dtype)


def _result_dtype(x):
    dt = np.asarray(x).dtype
    return np.dtype(np.float64) if dt.kind in "biu" else dt


def _check_scalar(loss, reduction, result):
    if reduction == "none":
        assert isinstance(loss, np.ndarray), type(loss)
    else:
        assert isinstance(loss, np.floating), f"a NumPy scalar, got {type(loss)}"
    assert np.asarray(loss).dtype == result, (np.asarray(loss).dtype, result)


@fuzz_settings(weight=3)
@given(case=loss_cases(with_sample_weight=True), with_grad=st.booleans())
def test_cross_entropy_matches_torch(torch, case, with_grad):
    x, target, kwargs, layout = case
    if "sample_weight" in kwargs:
        with_grad = True
    xa = with_layout(x, layout)
    x = np.array(xa)  # a broadcast layout changes the values
    ta = with_layout(target, "F" if target.ndim > 1 else "negative")
    result = _result_dtype(x)
    loss_ref, grad_ref = _torch_reference(torch, x, target, kwargs)
    loss_bound, grad_bound, compared = _bounds(x.astype(np.float64), target, kwargs, result,
                                     loss_ref, grad_ref)
    before = snapshot(xa, ta, kwargs.get("weight"), kwargs.get("sample_weight"))
    with strict_warnings():
        if with_grad:
            loss, grad = call(cross_entropy_with_grad, xa, ta, **kwargs)
        else:
            loss = call(cross_entropy, xa, ta, **kwargs)
    assert_unchanged(before, xa, ta, kwargs.get("weight"), kwargs.get("sample_weight"))
    _check_scalar(loss, kwargs["reduction"], result)
    assert_close(loss, _cast(loss_ref, result), loss_bound, result, "loss", compared)
    if with_grad:
        assert isinstance(grad, np.ndarray) and grad.dtype == result
        assert_close(grad, _cast(grad_ref, result), grad_bound, result, "grad")


@fuzz_settings(weight=1)
@given(case=loss_cases(allow_prob=False))
def test_nll_loss_matches_torch(torch, case):
    x, target, kwargs, layout = case
    kwargs.pop("label_smoothing")
    xa = with_layout(x, layout)
    x = np.array(xa)
    result = _result_dtype(x)
    loss_ref, grad_ref = _torch_reference(torch, x, target, kwargs, nll=True)
    kwargs["label_smoothing"] = 0.0
    loss_bound, _, compared = _bounds(x.astype(np.float64), target, kwargs, result, loss_ref,
                                      grad_ref, nll=True)
    del kwargs["label_smoothing"]
    before = snapshot(xa, target)
    with strict_warnings():
        loss = call(nll_loss, xa, target, **kwargs)
    assert_unchanged(before, xa, target)
    _check_scalar(loss, kwargs["reduction"], result)
    assert_close(loss, _cast(loss_ref, result), loss_bound, result, "nll_loss", compared)


@pytest.mark.parametrize("path", ["bridged", "generic"])
@pytest.mark.parametrize("name", ["array_api_strict", "torch"])
@fuzz_settings(weight=1)
@given(case=loss_cases(with_sample_weight=True), func=st.sampled_from(["ce", "grad", "nll"]))
def test_array_api_losses_match_torch_and_numpy(torch, name, path, case, func):
    """On both paths of other namespaces: "bridged" (the kernels) and "generic"."""
    xp = pytest.importorskip(name)
    x, target, kwargs, _ = case
    if x.dtype == np.float16 and name == "array_api_strict":
        x = x.astype(np.float32)
    if func == "nll":
        kwargs.pop("label_smoothing")
        kwargs.pop("sample_weight", None)
        if target.dtype.kind == "f":
            return
    if "sample_weight" in kwargs:
        func = "grad"
    result = _result_dtype(x)
    loss_ref, grad_ref = _torch_reference(torch, x, target, kwargs, nll=func == "nll")
    bkw = dict(kwargs, label_smoothing=kwargs.get("label_smoothing", 0.0))
    loss_bound, grad_bound, compared = _bounds(x.astype(np.float64), target, bkw, result, loss_ref,
                                     grad_ref, nll=func == "nll")

    def conv(a):
        return None if a is None else xp.asarray(np.array(a, copy=True))

    xkw = {k: conv(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    f = {"ce": cross_entropy, "grad": cross_entropy_with_grad, "nll": nll_loss}[func]
    with strict_warnings(), array_api_path(path):
        got = call(f, conv(x), conv(target), **xkw)
    with strict_warnings():
        np_got = call(f, x, target, **kwargs)
    loss, grad = got if func == "grad" else (got, None)
    np_loss, np_grad = np_got if func == "grad" else (np_got, None)
    assert type(loss).__module__.split(".")[0] == name
    loss = np.asarray(loss.numpy() if name == "torch" else loss)
    assert loss.dtype == result, (loss.dtype, result)
    assert_close(loss, _cast(loss_ref, result), loss_bound, result, f"{name} loss", compared)
    assert_close(loss, np.asarray(np_loss), loss_bound, result, "loss against NumPy", compared,
                 scale=2)
    if grad is not None:
        grad = np.asarray(grad.numpy() if name == "torch" else grad)
        assert grad.dtype == result
        assert_close(grad, _cast(grad_ref, result), grad_bound, result, f"{name} grad")
        assert_close(grad, np_grad, grad_bound, result, "grad against NumPy", scale=2)


def test_bound_helper_sanity():
    """The bound helper folds weights and smoothing like torch's definition."""
    x = np.array([[2.0, 1.0, 0.5]])
    rows, T, denom = _effective_targets(x, np.array([0]), dict(weight=None, ignore_index=-100),
                                        0.3)
    np.testing.assert_allclose(T, [[0.7 + 0.1, 0.1, 0.1]])
    assert denom == 1.0 and rows.shape == (1, 3) and math.isfinite(T.sum())
