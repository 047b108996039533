"""The value checks of the loss inputs inside a dask graph.

For NumPy and the other namespaces ``_losses_validation`` reads the values of
the target (``min``, ``max``, the first bad entry) and of the sample weights
during the call; for dask each read would be a compute.  ``checked`` hands
the same checks to ``_dask_graph.gate`` instead: one small task per block
summarises it (its shape, its least value, its first bad class index), and
one task combines the summaries and raises what the eager check raises, built
by the same functions of ``_losses_validation`` -- the same exception, the
same message, the same flat position (C order over the whole target, however
it is chunked, unknown lengths included), and the same precedence (the
target before the sample weights).  The checked arrays wait for that task.
"""

import functools
import math

import numpy as np

from ._dask_graph import block_offsets, gate
from ._losses_validation import index_error, sample_weight_error, wrapped_index_error

__all__ = ["checked"]


def _target_summary(block, n_classes, ignore_index, wrapped):
    """``(shape, least value or None, (local index, value) of the first bad entry
    or None)`` of one block of int64 class indices."""
    shape = tuple(int(d) for d in block.shape)
    if math.prod(shape) == 0:
        return shape, None, None
    flat = block.reshape(-1)
    low = int(flat.min()) if wrapped else None
    bad = ((flat < 0) | (flat >= n_classes)) & (flat != ignore_index)
    first = None
    if bool(bad.any()):
        position = int(bad.argmax())
        first = (tuple(int(i) for i in np.unravel_index(position, shape)), int(flat[position]))
    return shape, low, first


def _weight_summary(block):
    """The least sample weight of one block (NaN if it holds one), None if empty."""
    if math.prod(block.shape) == 0:
        return None
    return float(block.min())


def _check_target(summaries, grid, n_classes, ignore_index, wrapped):
    if wrapped:
        lows = [low for _, low, _ in summaries if low is not None]
        if lows and min(lows) < 0:
            raise wrapped_index_error(min(lows) + 2**64, n_classes, ignore_index)
    offsets, total = block_offsets([shape for shape, _, _ in summaries], grid)
    strides = [math.prod(total[axis + 1:]) for axis in range(len(total))]
    found = []
    for (_, _, first), offset in zip(summaries, offsets, strict=True):
        if first is not None:
            index, value = first
            position = sum((o + i) * s for o, i, s in zip(offset, index, strides, strict=True))
            found.append((position, value))
    if found:
        position, value = min(found)
        raise index_error(value, position, n_classes, ignore_index)


def _check_sample_weight(summaries):
    lows = [low for low in summaries if low is not None]
    if not lows:
        return
    low = math.nan if any(math.isnan(v) for v in lows) else min(lows)
    if not low >= 0:  # NaN fails too
        raise sample_weight_error(low)


def _verdict(parts, *, has_target, n_classes, ignore_index, wrapped):
    if has_target:
        summaries, grid = parts[0]
        _check_target(summaries, grid, n_classes, ignore_index, wrapped)
    if len(parts) > has_target:
        _check_sample_weight(parts[-1][0])


def checked(target, kind, sample_weight, *, n_classes, ignore_index, wrapped):
    """Return ``(target, sample_weight)`` (dask arrays, or None) gated by their
    checks: class indices (``kind == "index"``; ``wrapped`` for a uint64 target,
    given cast to int64) in ``[0, n_classes)`` or equal to ``ignore_index``,
    and sample weights non-negative and not NaN.  Nothing is computed."""
    arrays, summaries = [], []
    has_target = kind == "index"
    if has_target:
        arrays.append(target)
        summaries.append(functools.partial(_target_summary, n_classes=n_classes,
                                           ignore_index=ignore_index, wrapped=wrapped))
    if sample_weight is not None:
        arrays.append(sample_weight)
        summaries.append(_weight_summary)
    if not arrays:
        return target, sample_weight
    verdict = functools.partial(_verdict, has_target=has_target, n_classes=n_classes,
                                ignore_index=ignore_index, wrapped=wrapped)
    gated = gate(arrays, summaries, verdict)
    if has_target:
        target = gated[0]
    if sample_weight is not None:
        sample_weight = gated[-1]
    return target, sample_weight
