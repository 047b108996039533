"""Which calls the CUDA kernels cover (pure Python, no CuPy needed).

The hooks in :mod:`softmax_core._cupy` describe the array by its shape,
dtype, contiguity and alignment and ask here for a plan.  ``None`` means
"not covered": the caller then runs the generic array-API code, still on
the GPU.  Covered:

* softmax / log_softmax / logsumexp over the trailing axes of a C-contiguous
  float16/float32/float64 array (a single last axis, or several trailing
  axes, which are one row in memory), every dimension non-empty;
* cross-entropy with index targets on a C-contiguous ``(N, C)`` array,
  ``N, C >= 1``, reduction ``"mean"``, ``"sum"`` or ``"none"``.

Everything else (axes that are not trailing, strided views, empty arrays,
integer or complex dtypes, K-dimensional cross-entropy) falls back.  Plans are
cached by their (hashable) arguments, so a training loop pays for planning
once per shape.
"""

from dataclasses import dataclass
from functools import lru_cache
from math import prod

from ._launch import LaunchConfig, launch_config, reduce_threads

__all__ = ["COMPUTE_DTYPES", "ACC_DTYPE", "MAX_COLS", "REDUCTIONS", "RowsPlan",
           "CrossEntropyPlan", "plan_rows", "plan_cross_entropy"]

COMPUTE_DTYPES = ("float16", "float32", "float64")
ACC_DTYPE = {"float16": "float32", "float32": "float32", "float64": "float64"}
# rows are indexed with 32-bit ints inside a row (with headroom for unrolling)
MAX_COLS = 2**30
REDUCTIONS = ("mean", "sum", "none")


@dataclass(frozen=True)
class RowsPlan:
    """A row-wise kernel launch: ``n_rows`` rows of ``n_cols`` contiguous elements."""

    dtype: str
    n_rows: int
    n_cols: int
    reduced_shape: tuple  # shape of logsumexp's result (the non-reduced axes)
    config: LaunchConfig


@dataclass(frozen=True)
class CrossEntropyPlan:
    """Launches of the fused cross-entropy: optional prepare, rows, optional sum."""

    dtype: str
    acc_dtype: str
    n_rows: int
    n_cols: int
    config: LaunchConfig
    reduction: str
    use_denom: bool  # gradient and loss divided by the "mean" denominator
    needs_stats: bool  # run ce_prepare (denominator and/or sum of class weights)
    prepare_threads: int
    sum_threads: int


def _dtype_name(dtype):
    name = str(dtype)
    return name if name in COMPUTE_DTYPES else None


def _rows(shape, axes):
    """(n_rows, n_cols, reduced_shape) if ``axes`` are the trailing axes, else None."""
    ndim = len(shape)
    axes = tuple(axes)
    if ndim == 0 or not axes:
        return None
    if any(not isinstance(a, int) or a < 0 or a >= ndim for a in axes):
        return None
    first = ndim - len(set(axes))
    if len(set(axes)) != len(axes) or set(axes) != set(range(first, ndim)):
        return None
    return prod(shape[:first]), prod(shape[first:]), tuple(shape[:first])


@lru_cache(maxsize=1024)  # planning is on every call's path; shapes repeat
def plan_rows(shape, axes, dtype, *, c_contiguous, aligned):
    """Plan softmax / log_softmax / logsumexp of an array, or ``None`` to fall back.

    Parameters
    ----------
    shape : tuple of int
    axes : tuple of int
        Normalised (non-negative) axes to reduce over.
    dtype : dtype or str
        The compute dtype of the array.
    c_contiguous : bool
    aligned : bool
        Whether the data pointer is 16-byte aligned (enables vector loads).
    """
    name = _dtype_name(dtype)
    if name is None or not c_contiguous:
        return None
    rows = _rows(tuple(int(s) for s in shape), axes)
    if rows is None:
        return None
    n_rows, n_cols, reduced_shape = rows
    if n_rows < 1 or n_cols < 1 or n_cols > MAX_COLS:
        return None
    config = _config(n_rows, n_cols, name, aligned)
    if config is None:
        return None
    return RowsPlan(name, n_rows, n_cols, reduced_shape, config)


def _itemsize(name):
    return {"float16": 2, "float32": 4, "float64": 8}[name]


def _config(n_rows, n_cols, name, aligned):
    try:
        return launch_config(n_rows, n_cols, _itemsize(name), aligned)
    except ValueError:  # more rows than one grid holds
        return None


@lru_cache(maxsize=1024)
def plan_cross_entropy(shape, dtype, *, c_contiguous, aligned, reduction, has_weight,
                       label_smoothing):
    """Plan the fused cross-entropy of ``(N, C)`` logits, or ``None`` to fall back."""
    name = _dtype_name(dtype)
    if name is None or not c_contiguous or len(shape) != 2 or reduction not in REDUCTIONS:
        return None
    n_rows, n_cols = (int(s) for s in shape)
    if n_rows < 1 or n_cols < 1 or n_cols > MAX_COLS:
        return None
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        return None
    config = _config(n_rows, n_cols, name, aligned)
    if config is None:
        return None
    use_denom = reduction == "mean"
    needs_stats = use_denom or (has_weight and eps != 0.0)
    return CrossEntropyPlan(name, ACC_DTYPE[name], n_rows, n_cols, config, reduction,
                            use_denom, needs_stats, reduce_threads(max(n_rows, n_cols)),
                            reduce_threads(n_rows))
