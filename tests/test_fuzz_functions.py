"""Fuzz: softmax, log_softmax, logsumexp and the backward functions on NumPy input
against float64 references (``fuzz_strategies``), over ranks 0-5 with zero-size
axes, every axis form, every input dtype, memory layouts (C, Fortran, negative
strides, stride 0, read-only, misaligned, memmap, lists), special values,
``where=``, ``b=``, ``dtype=`` and every ``out=`` variant.

Each example also checks: the result's dtype and shape, that ``out`` is the
returned object, that no input is modified (unless it is ``out``), and that no
RuntimeWarning escapes.
"""

import numpy as np
from fuzz_strategies import (
    FLOATS,
    arrays,
    assert_close,
    assert_unchanged,
    axes_for,
    call,
    fuzz_settings,
    masks,
    normalized,
    ref_backward,
    ref_logsumexp,
    ref_softmax,
    result_dtypes,
    snapshot,
    strict_warnings,
    values,
    with_layout,
)
from hypothesis import given, note
from hypothesis import strategies as st

from softmax_core import log_softmax, log_softmax_backward, logsumexp, softmax, softmax_backward

OUT_KINDS = ("none", "none", "C", "F", "sliced", "inplace", "overlap")


def _make_out(kind, x, shape, result):
    """An ``out=`` argument of one kind, or None (kind "none", or not possible)."""
    if kind == "none":
        return None
    if kind in ("inplace", "overlap"):
        if (type(x) is not np.ndarray or x.dtype != result or not x.flags.writeable
                or 0 in x.strides and x.size > 1):
            return None
        if kind == "overlap":  # a reversed view: shares memory, different order
            return np.flip(x) if x.ndim else None
        return x
    if kind == "F":
        return np.empty(shape, dtype=result, order="F")
    if kind == "sliced" and shape:
        big = np.empty(tuple(2 * d for d in shape), dtype=result)
        return big[tuple(slice(None, None, 2) for _ in shape)]
    return np.full(shape, np.nan, dtype=result)


@fuzz_settings(weight=3)
@given(st.data())
def test_softmax_and_log_softmax(data):
    x, vals = data.draw(arrays())
    ndim = vals.ndim
    axis = data.draw(axes_for(ndim), label="axis")
    where = data.draw(st.none() | masks(vals.shape), label="where")
    dtype = data.draw(st.sampled_from([None, None, None, *FLOATS]), label="dtype")
    use_log = data.draw(st.booleans(), label="use_log")
    with np.errstate(all="ignore"):
        cast = vals if dtype is None else vals.astype(dtype)  # dtype= casts first
    compute, result = result_dtypes(vals, dtype)
    out = _make_out(data.draw(st.sampled_from(OUT_KINDS), label="out"), x, vals.shape, result)
    mask = None if where is None else np.broadcast_to(np.asarray(where), vals.shape)
    ref, bound = ref_softmax(cast.astype(np.float64), normalized(axis, ndim), mask, use_log,
                             compute, result)
    before = snapshot(x, where)
    func = log_softmax if use_log else softmax
    with strict_warnings():
        got = call(func, x, axis=axis, dtype=dtype, where=where, out=out)
    if out is not None:
        assert got is out, "out= must be the returned object"
    if out is None or not np.may_share_memory(out, x):
        assert_unchanged(before, x, where)
    assert isinstance(got, np.ndarray) and got.dtype == result, (type(got), got.dtype, result)
    assert_close(got, ref, bound, result, func.__name__)


@fuzz_settings(weight=2)
@given(st.data())
def test_logsumexp(data):
    x, vals = data.draw(arrays())
    ndim = vals.ndim
    axis = data.draw(axes_for(ndim), label="axis")
    where = data.draw(st.none() | masks(vals.shape), label="where")
    keepdims = data.draw(st.booleans(), label="keepdims")
    return_sign = data.draw(st.booleans(), label="return_sign")
    b = None
    if data.draw(st.booleans(), label="with b"):
        bshape = tuple(1 if data.draw(st.booleans()) else d for d in vals.shape)
        bdtype = data.draw(st.sampled_from([np.float64, np.float32, np.int64]))
        kinds = data.draw(st.sampled_from([("normal",), ("integers",), ("ties",)]))
        b = data.draw(values(bshape, bdtype, kinds=kinds, specials=False), label="b")
        if data.draw(st.booleans()):
            b = np.abs(b)
        note(f"b={b!r}")
    compute, result = result_dtypes(vals)
    if b is not None:
        result = np.result_type(result, result_dtypes(b)[1])
        compute = np.result_type(compute, result_dtypes(b)[0])
    mask = None if where is None else np.asarray(where)
    b64 = None if b is None else b.astype(np.float64)
    ref, sign, bound, compared = ref_logsumexp(vals.astype(np.float64),
                                               normalized(axis, ndim), mask, b64, keepdims,
                                               compute, result)
    before = snapshot(x, b, where)
    with strict_warnings():
        got = call(logsumexp, x, axis=axis, b=b, keepdims=keepdims, return_sign=return_sign,
                   where=where)
    assert_unchanged(before, x, b, where)
    if return_sign:
        got, got_sign = got
        assert np.asarray(got_sign).dtype == result
        assert_close(got_sign, sign, 0.0, result, "logsumexp sign", compared=compared)
    else:
        with np.errstate(invalid="ignore"):
            ref = np.where(sign < 0, np.nan, ref).astype(result)
    assert np.asarray(got).dtype == result, (np.asarray(got).dtype, result)
    assert_close(got, ref, bound, result, "logsumexp", compared=compared)


@fuzz_settings(weight=1)
@given(st.data())
def test_softmax_backward_and_log_softmax_backward(data):
    shape = data.draw(arrays(specials=False, layouts=("C",), dtypes=(np.float64,)))[1].shape
    dtype = data.draw(st.sampled_from([np.float64, np.float32, np.float16]), label="dtype")
    use_log = data.draw(st.booleans(), label="use_log")
    axis = data.draw(axes_for(len(shape)), label="axis")
    axes = normalized(axis, len(shape))
    # the output of a real forward pass, in some layout; any upstream gradient
    xs = data.draw(values(shape, np.float64, specials=False, kinds=("normal", "ties", "small")))
    y_vals, _ = ref_softmax(xs, axes, None, use_log, np.dtype(np.float64), np.dtype(dtype))
    y = with_layout(y_vals, data.draw(st.sampled_from(["C", "F", "negative", "readonly"])))
    g, g_vals = data.draw(arrays(shape=shape, dtypes=(np.float64, np.float32, np.int64)))
    compute = np.result_type(result_dtypes(g_vals)[0], result_dtypes(y_vals)[0])
    result = np.result_type(result_dtypes(g_vals)[1], result_dtypes(y_vals)[1])
    ref, bound, compared = ref_backward(g_vals.astype(np.float64),
                                        np.asarray(y_vals, np.float64), axes, use_log, compute,
                                        result)
    before = snapshot(g, y)
    func = log_softmax_backward if use_log else softmax_backward
    with strict_warnings():
        got = call(func, g, y, axis=axis)
    assert_unchanged(before, g, y)
    assert got.dtype == result and got.shape == shape
    assert_close(got, ref, bound, result, func.__name__, compared=compared)
