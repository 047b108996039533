"""Fuzz: bad arguments raise ValueError or TypeError, never another exception type,
never a crash, never a RuntimeWarning; for every public function and, in a
subprocess, for the compiled kernel entry points (``fuzz_kernels.py``).
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from fuzz_strategies import CALLS, call, fuzz_settings, shapes, strict_warnings, values
from hypothesis import given, note
from hypothesis import strategies as st

from softmax_core import (
    cross_entropy,
    cross_entropy_with_grad,
    log_softmax,
    log_softmax_backward,
    logsumexp,
    nll_loss,
    softmax,
    softmax_backward,
)

HERE = os.path.dirname(os.path.abspath(__file__))


def _bad_axis(ndim):
    n = max(ndim, 1)
    return st.sampled_from([n, n + 3, -n - 1, 1.0, "0", True, [0], (0, 0), (0, -n), object()])


def _bad_shape(shape):
    """A shape that does not broadcast to ``shape``."""
    if not shape:
        return (2,)
    return tuple(d + 2 for d in shape)


@st.composite
def softmax_family_calls(draw):
    shape = draw(shapes(min_dims=0, max_dims=4, max_size=60))
    x = draw(values(shape, np.float64))
    func = draw(st.sampled_from([softmax, log_softmax, logsumexp]))
    bad = draw(st.sampled_from(["axis", "where shape", "where dtype", "x complex", "x string",
                                "x object", "x ragged", "dtype", "out shape", "out dtype",
                                "out readonly", "out list", "b shape", "b complex"]))
    kwargs = {}
    if bad == "axis":
        kwargs["axis"] = draw(_bad_axis(len(shape)))
    elif bad == "where shape":
        kwargs["where"] = np.ones(_bad_shape(shape), bool)
    elif bad == "where dtype":
        kwargs["where"] = np.ones(shape, draw(st.sampled_from([np.int64, np.float64, "U1"])))
    elif bad == "x complex":
        x = x.astype(np.complex128)
    elif bad == "x string":
        x = np.full(shape, "a")
    elif bad == "x object":
        x = np.full(shape or (1,), None, dtype=object)
    elif bad == "x ragged":
        x = [[1.0, 2.0], [3.0]]
    elif bad == "dtype" and func is not logsumexp:
        kwargs["dtype"] = draw(st.sampled_from([np.int32, np.complex64, np.bool_, "nonsense",
                                                object]))
    elif bad.startswith("out") and func is not logsumexp:
        out = {"out shape": np.empty(_bad_shape(shape)),
               "out dtype": np.empty(shape, np.float32),
               "out readonly": np.empty(shape),
               "out list": [0.0]}[bad]
        if bad == "out readonly":
            out.flags.writeable = False
        kwargs["out"] = out
    elif bad.startswith("b") and func is logsumexp:
        # b and x broadcast together (as in SciPy): only a dim >= 2 or a 0 can clash
        clash = bad == "b shape" and any(d != 1 for d in shape)
        kwargs["b"] = (np.ones(_bad_shape(shape)) if clash
                       else np.ones(shape, np.complex128))
    else:
        kwargs["axis"] = draw(_bad_axis(len(shape)))
    note(f"{func.__name__}(x={x!r}, **{kwargs!r})  [{bad}]")
    return func, (x,), kwargs


@st.composite
def backward_calls(draw):
    shape = draw(shapes(min_dims=1, max_dims=3, max_size=30, min_side=1))
    func = draw(st.sampled_from([softmax_backward, log_softmax_backward]))
    g, y = np.ones(shape), np.full(shape, 0.5)
    bad = draw(st.sampled_from(["shape", "axis", "complex", "string"]))
    kwargs = {}
    if bad == "shape":
        y = np.full(_bad_shape(shape), 0.5)
    elif bad == "axis":
        kwargs["axis"] = draw(_bad_axis(len(shape)))
    elif bad == "complex":
        g = g.astype(np.complex64)
    else:
        y = np.full(shape, "x")
    note(f"{func.__name__}({g!r}, {y!r}, **{kwargs!r})  [{bad}]")
    return func, (g, y), kwargs


@st.composite
def loss_calls(draw):
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    x = np.zeros((n, c))
    target = np.zeros(n, np.int64)
    func = draw(st.sampled_from([cross_entropy, cross_entropy_with_grad, nll_loss]))
    kwargs = {}
    bad = draw(st.sampled_from([
        "target range", "target huge", "target uint64", "target shape", "target bool",
        "target string", "prob shape", "prob ignore_index", "weight shape", "weight complex",
        "weight string", "reduction", "smoothing range", "smoothing type", "ignore_index type",
        "ignore_index huge", "x 0-d", "x no classes", "x complex", "sample_weight",
        "sample_weight shape"]))
    if bad == "target range":
        target[draw(st.integers(0, n - 1))] = draw(st.sampled_from([c, c + 7, -1, -7, 10**9,
                                                                    2**32 + 3, -(2**40)]))
    elif bad == "target huge":
        target = np.full(n, 2**62, np.int64)
    elif bad == "target uint64":
        target = np.full(n, 2**64 - 100, np.uint64)
    elif bad == "target shape":
        target = np.zeros(n + 1, np.int64)
    elif bad == "target bool":
        target = np.zeros(n, bool)
    elif bad == "target string":
        target = np.full(n, "a")
    elif bad == "prob shape":
        target = np.full((n, c + 1), 0.5)
    elif bad == "prob ignore_index":
        target = np.full((n, c), 1.0 / c)
        kwargs["ignore_index"] = draw(st.integers(0, 3))
    elif bad == "weight shape":
        kwargs["weight"] = np.ones(c + 1)
    elif bad == "weight complex":
        kwargs["weight"] = np.ones(c, np.complex128)
    elif bad == "weight string":
        kwargs["weight"] = np.full(c, "w")
    elif bad == "reduction":
        kwargs["reduction"] = draw(st.sampled_from(["avg", "", None, 1, "MEAN"]))
    elif bad == "smoothing range":
        kwargs["label_smoothing"] = draw(st.sampled_from([-0.1, 1.5, float("nan"), float("inf")]))
    elif bad == "smoothing type":
        kwargs["label_smoothing"] = draw(st.sampled_from(["x", None, [0.1], True]))
    elif bad == "ignore_index type":
        kwargs["ignore_index"] = draw(st.sampled_from([1.5, True, "0", None]))
    elif bad == "ignore_index huge":
        kwargs["ignore_index"] = 2**70
    elif bad == "x 0-d":
        x, target = np.float64(1.0), np.int64(0)
    elif bad == "x no classes":
        x = np.zeros((n, 0))
    elif bad == "x complex":
        x = x.astype(np.complex128)
    elif bad.startswith("sample_weight") and func is cross_entropy_with_grad:
        sw = np.ones(n + 1) if bad == "sample_weight shape" else np.full(n, draw(
            st.sampled_from([-1.0, float("nan")])))
        kwargs["sample_weight"] = sw
    else:
        target = np.full(n, -3, np.int64)  # out of range (ignore_index is -100)
    if func is nll_loss:
        kwargs.pop("label_smoothing", None)
        if bad in ("smoothing range", "smoothing type"):
            target = np.full((n, c), 0.5)  # nll_loss refuses a floating target
    note(f"{func.__name__}({x!r}, {target!r}, **{kwargs!r})  [{bad}]")
    return func, (x, target), kwargs


@fuzz_settings(weight=1)
@given(case=st.one_of(softmax_family_calls(), backward_calls(), loss_calls()))
def test_bad_arguments_raise_value_or_type_error(case):
    func, args, kwargs = case
    with strict_warnings(), pytest.raises((ValueError, TypeError)):
        call(func, *args, **kwargs)


@pytest.mark.parametrize("name", ["array_api_strict", pytest.param("torch",
                                                                    marks=pytest.mark.torch)])
@fuzz_settings(weight=0.5)
@given(data=st.data())
def test_bad_arguments_raise_on_the_array_api_path(name, data):
    xp = pytest.importorskip(name)
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_size=30, min_side=1))
    x = xp.asarray(np.zeros(shape))
    bad = data.draw(st.sampled_from(["axis", "out", "where shape", "where dtype", "target",
                                     "weight", "mixed namespaces"]))
    func, args, kwargs = softmax, (x,), {}
    if bad == "axis":
        kwargs["axis"] = data.draw(_bad_axis(len(shape)))
    elif bad == "out":
        kwargs["out"] = np.empty(shape)
    elif bad == "where shape":
        kwargs["where"] = xp.asarray(np.ones(_bad_shape(shape), bool))
    elif bad == "where dtype":
        kwargs["where"] = xp.asarray(np.ones(shape))
    elif bad == "mixed namespaces":
        func, kwargs = logsumexp, {"b": np.ones(shape)}
    else:
        x2 = xp.asarray(np.zeros((3, 4)))
        target = xp.asarray(np.array([0, 1, 9 if bad == "target" else 2]))
        func, args = cross_entropy, (x2, target)
        if bad == "weight":
            kwargs["weight"] = xp.asarray(np.ones(5))
    note(f"{name}: {func.__name__}(shape {shape}, **{kwargs!r})  [{bad}]")
    with strict_warnings(), pytest.raises((ValueError, TypeError)):
        call(func, *args, **kwargs)


def _run_kernel_worker(seed, n, timeout=120):
    """Run ``fuzz_kernels.py`` in a subprocess; return (returncode, stdout, stderr)."""
    proc = subprocess.run([sys.executable, os.path.join(HERE, "fuzz_kernels.py"), str(seed),
                           str(n)], capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def kernel_failures(returncode, stdout):
    """The BAD calls and the crash (the last CASE line) of one worker run."""
    lines = stdout.splitlines()
    failures, case = [], None
    for line in lines:
        if line.startswith("CASE "):
            case = line[5:]
        elif line.startswith("BAD ") and case is not None:
            failures.append(f"{line[4:]}\n    {case}")
            case = None
        elif line.startswith(("OK", "RAISED")):
            case = None
    if returncode not in (0, 1):
        failures.append(f"crashed (return code {returncode}) in\n    {case}")
    return failures


def test_kernel_entry_points_validate_their_arguments():
    """Bad arguments to the compiled entry points raise (subprocess: a crash is reported)."""
    seed = int(os.environ.get("FUZZ_KERNEL_SEED", 0))  # the campaign sets one per batch
    n = max(50, 3 * fuzz_settings().max_examples)
    returncode, stdout, stderr = _run_kernel_worker(seed, n)
    CALLS["count"] += stdout.count("\nCASE ") + stdout.startswith("CASE ")
    failures = kernel_failures(returncode, stdout)
    assert not failures, (f"{len(failures)} kernel call(s) failed (reproduce: python "
                          f"tests/fuzz_kernels.py {seed} {n}):\n" + "\n".join(failures[:10])
                          + (f"\nstderr:\n{stderr[-2000:]}" if returncode not in (0, 1) else ""))
