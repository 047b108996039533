"""Fuzz: other namespaces (array_api_strict, torch tensors) against the same
float64 references as the NumPy path, and against the NumPy path itself, on
both of their paths: "bridged" (CPU arrays on the compiled kernels through
zero-copy views) and "generic" (the pure array-API code, forced here).

Both paths must stay within the reference's error bound, so they agree within
twice that bound; dtypes follow the same rules (float16 is computed in float32
and returned as float16; torch only, array_api_strict has no float16).
"""

import numpy as np
import pytest
from fuzz_strategies import (
    array_api_path,
    arrays,
    assert_close,
    axes_for,
    call,
    fuzz_settings,
    masks,
    normalized,
    ref_logsumexp,
    ref_softmax,
    result_dtypes,
    snapshot,
    strict_warnings,
    values,
)
from hypothesis import given, note
from hypothesis import strategies as st

from softmax_core import log_softmax, logsumexp, softmax

NAMESPACES = ["array_api_strict", pytest.param("torch", marks=pytest.mark.torch)]


def _namespace(name):
    xp = pytest.importorskip(name)
    if name == "torch":
        xp.set_num_threads(1)  # its thread pool costs more than these tiny calls
    return xp


def _to_xp(xp, a):
    return None if a is None else xp.asarray(np.array(a, copy=True))


def _to_numpy(a):
    if type(a).__module__.startswith("torch"):
        return a.numpy()
    return np.asarray(a)


def _dtype_in(xp, dtype):
    return None if dtype is None else getattr(xp, np.dtype(dtype).name)


def _float_dtypes(name):
    if name == "torch":
        return (np.float64, np.float32, np.float16, np.int64, np.int32, np.bool_)
    return (np.float64, np.float32, np.int64, np.int32, np.bool_)


@pytest.mark.parametrize("path", ["bridged", "generic"])
@pytest.mark.parametrize("name", NAMESPACES)
@fuzz_settings(weight=1)
@given(data=st.data())
def test_softmax_family_matches_reference_and_numpy(name, path, data):
    xp = _namespace(name)
    _, vals = data.draw(arrays(dtypes=_float_dtypes(name), layouts=("C", "F", "negative")))
    ndim = vals.ndim
    axis = data.draw(axes_for(ndim), label="axis")
    where = data.draw(st.none() | masks(vals.shape), label="where")
    if where is not None:
        where = np.asarray(where)
    func = data.draw(st.sampled_from(["softmax", "log_softmax", "logsumexp"]), label="func")
    x = _to_xp(xp, vals)
    before = snapshot(vals, where)
    if func == "logsumexp":
        b = None
        if data.draw(st.booleans(), label="with b"):
            bshape = tuple(1 if data.draw(st.booleans()) else d for d in vals.shape)
            b = data.draw(values(bshape, np.float64, specials=False,
                                 kinds=("normal", "ties", "integers")), label="b")
        keepdims = data.draw(st.booleans(), label="keepdims")
        compute, result = result_dtypes(vals)
        if b is not None:
            compute = result = np.result_type(result, np.float64)
        ref, sign, bound, compared = ref_logsumexp(
            vals.astype(np.float64), normalized(axis, ndim), where,
            None if b is None else b.astype(np.float64), keepdims, compute, result)
        kwargs = dict(axis=axis, keepdims=keepdims, return_sign=True)
        with strict_warnings(), array_api_path(path):
            got, got_sign = call(logsumexp, x, b=_to_xp(xp, b), where=_to_xp(xp, where),
                                 **kwargs)
        with strict_warnings():
            np_got, np_sign = call(logsumexp, vals, b=b, where=where, **kwargs)
        assert _to_numpy(got).dtype == result
        assert_close(_to_numpy(got), ref, bound, result, f"{name} logsumexp", compared)
        assert_close(_to_numpy(got_sign), sign, 0.0, result, f"{name} sign", compared)
        assert_close(_to_numpy(got), np_got, bound, result, "against NumPy", compared,
                     scale=2)
        assert_close(_to_numpy(got_sign), np_sign, 0.0, result, "sign against NumPy",
                     compared)
    else:
        dtype = data.draw(st.sampled_from([None, None, np.float32, np.float64]), label="dtype")
        use_log = func == "log_softmax"
        with np.errstate(all="ignore"):
            cast = vals if dtype is None else vals.astype(dtype)
        compute, result = result_dtypes(vals, dtype)
        mask = None if where is None else np.broadcast_to(where, vals.shape)
        ref, bound = ref_softmax(cast.astype(np.float64), normalized(axis, ndim), mask, use_log,
                                 compute, result)
        f = log_softmax if use_log else softmax
        with strict_warnings(), array_api_path(path):
            got = call(f, x, axis=axis, dtype=_dtype_in(xp, dtype), where=_to_xp(xp, where))
        with strict_warnings():
            np_got = call(f, vals, axis=axis, dtype=dtype, where=where)
        assert type(got).__module__.split(".")[0] == name, type(got)
        assert _to_numpy(got).dtype == result, (_to_numpy(got).dtype, result)
        assert_close(_to_numpy(got), ref, bound, result, f"{name} {func}")
        assert_close(_to_numpy(got), np_got, bound, result, f"{func} against NumPy", scale=2)
    np.testing.assert_array_equal(_to_numpy(x), before[0], err_msg="input modified")


@pytest.mark.torch
@pytest.mark.parametrize("path", ["bridged", "generic"])
@fuzz_settings(weight=0.3)
@given(data=st.data())
def test_dtype_float16_casts_first_like_torch(path, data):
    """``dtype=float16`` rounds the input to float16 first, on every path (as torch)."""
    torch = _namespace("torch")
    shape = data.draw(st.sampled_from([(5,), (3, 4), (2, 3, 2)]), label="shape")
    vals = data.draw(values(shape, np.float64, kinds=("wide", "huge", "normal")), label="x")
    note(f"x={vals!r}")
    axis = data.draw(axes_for(len(shape)), label="axis")
    use_log = data.draw(st.booleans(), label="use_log")
    f = log_softmax if use_log else softmax
    tf = torch.log_softmax if use_log else torch.softmax
    with strict_warnings():
        got = call(f, vals, axis=axis, dtype=np.float16)
        with array_api_path(path):
            got_t = call(f, torch.asarray(vals), axis=axis, dtype=torch.float16)
    compute, result = np.dtype(np.float32), np.dtype(np.float16)
    with np.errstate(all="ignore"):
        ref, bound = ref_softmax(vals.astype(np.float16).astype(np.float64),
                                 normalized(axis, len(shape)), None, use_log, compute, result)
    assert got.dtype == np.float16
    assert_close(got, ref, bound, result, "NumPy dtype=float16")
    assert_close(got_t.numpy(), got, bound, result, "torch path against NumPy", scale=2)
    if isinstance(axis, int):  # torch itself (one dim)
        expected = tf(torch.asarray(vals).to(torch.float16).to(torch.float32), dim=axis)
        assert_close(got, expected.to(torch.float16).numpy(), bound, result, "torch",
                     scale=2)
