"""Compile (lazily, once per kernel and device) and launch the CUDA kernels.

CuPy is imported by the first launch, not at import time (so that tools
which import every module, such as ``pytest --doctest-modules``, work
without CuPy); :mod:`softmax_core._cupy` only calls in here once a CuPy array
reaches a covered call.  Kernels are built from
:mod:`._sources` with ``cupy.RawModule`` (NVRTC; CuPy also keeps its on-disk
cache of compiled modules) and launched on CuPy's current stream, so no call
here synchronises with the host.
"""

import importlib

import numpy as np

from . import _sources

__all__ = ["get_function", "run_rows", "run_cross_entropy"]

_MODES = {"softmax": 0, "log_softmax": 1, "logsumexp": 2}
_NULL = np.uint64(0)  # a null pointer argument
_functions = {}
_cupy = None


def _cp():
    global _cupy
    if _cupy is None:
        _cupy = importlib.import_module("cupy")
    return _cupy


def get_function(family, dtype, key):
    """The compiled kernel ``_sources.kernel_name(family, dtype, key)`` on the current device."""
    cupy = _cp()
    cache_key = (family, dtype, key, cupy.cuda.runtime.getDevice())
    fn = _functions.get(cache_key)
    if fn is None:
        module = cupy.RawModule(code=_sources.kernel_source(family, dtype, key))
        fn = module.get_function(_sources.kernel_name(family, dtype, key))
        _functions[cache_key] = fn
    return fn


def _ptr(a):
    return _NULL if a is None else a


def run_rows(x, plan, mode):
    """softmax / log_softmax (same shape as ``x``) or logsumexp (``plan.reduced_shape``)."""
    cupy = _cp()
    shape = plan.reduced_shape if mode == "logsumexp" else x.shape
    out = cupy.empty(shape, dtype=x.dtype)
    cfg = plan.config
    fn = get_function("softmax", plan.dtype, cfg.key)
    fn((cfg.grid,), (cfg.threads,),
       (x, out, np.int64(plan.n_rows), np.int32(plan.n_cols), np.int32(_MODES[mode])))
    return out


def _as_acc(a, acc, n):
    if a is None:
        return None
    cupy = _cp()
    return cupy.ascontiguousarray(cupy.asarray(a, dtype=acc).reshape(n))


def run_cross_entropy(logits, target, plan, *, weight, sample_weight, ignore_index,
                      label_smoothing):
    """Fused loss and gradient of ``(N, C)`` logits; see :mod:`._sources` for the formulas."""
    cupy = _cp()
    acc = np.dtype(plan.acc_dtype)
    n, c = plan.n_rows, plan.n_cols
    target = cupy.ascontiguousarray(cupy.asarray(target, dtype=cupy.int64).reshape(n))
    weight = _as_acc(weight, acc, c)
    sample_weight = _as_acc(sample_weight, acc, n)
    ignore = np.int64(ignore_index)
    stats = None
    if plan.needs_stats:
        stats = cupy.empty(2, dtype=acc)
        threads = plan.prepare_threads
        get_function("ce_prepare", plan.dtype, ("single", threads))(
            (1,), (threads,),
            (target, _ptr(weight), _ptr(sample_weight), stats, np.int64(n), np.int32(c),
             ignore))
    grad = cupy.empty((n, c), dtype=logits.dtype)
    row_loss = cupy.empty(n, dtype=acc)
    cfg = plan.config
    get_function("cross_entropy", plan.dtype, cfg.key)(
        (cfg.grid,), (cfg.threads,),
        (logits, target, _ptr(weight), _ptr(sample_weight), _ptr(stats), grad, row_loss,
         np.int64(n), np.int32(c), ignore, acc.type(label_smoothing),
         np.int32(plan.use_denom)))
    if plan.reduction == "none":
        return row_loss.astype(logits.dtype, copy=False), grad
    loss = cupy.empty((), dtype=logits.dtype)
    threads = plan.sum_threads
    get_function("loss_sum", plan.dtype, ("single", threads))(
        (1,), (threads,),
        (row_loss, _ptr(stats), loss, np.int64(n), np.int32(plan.use_denom)))
    return loss, grad
