"""What the array-API code needs from dask beyond the standard: a maximum that
empty blocks do not break, and argument checks that run inside the graph.

Design: a call on dask arrays builds a graph and computes nothing, so a check
of the values (a class index out of range, a negative sample weight) cannot
raise during the call.  ``gate`` puts the check into the graph instead: each
block of the checked arrays is summarised by a small task, one task reads
the summaries and raises the same exception the eager check raises, and the
returned arrays are the inputs made to wait for that task.  Computing
anything that depends on them raises the error; nothing else changes.
``reduce_max`` exists because dask's own maximum fails on a block of zero rows of
a 2-d array (as a boolean selection ``X[mask]`` makes); NumPy's ``initial=``
gives such a block the identity ``-inf``.

Everything here runs only for dask arrays (``is_dask``), imports dask when
first called, and keeps to module-level functions, so that the tasks can be
sent to ``distributed`` workers.
"""

import array_api_compat
import numpy as np

__all__ = ["is_dask", "reduce_max", "gate", "block_offsets"]


def is_dask(xp):
    """Whether ``xp`` is dask's array namespace (through ``array_api_compat``)."""
    return array_api_compat.is_dask_namespace(xp)


def _block_max(block, axis=None, keepdims=False):
    """``np.max`` of one block (or of partial results) with ``-inf`` for empty ones."""
    return np.max(block, axis=axis, keepdims=keepdims, initial=-np.inf)


def reduce_max(xp, x, axis=None, keepdims=False):
    """``xp.max(x, axis=axis, keepdims=keepdims)`` of a floating array; in dask a
    tree reduction that allows empty blocks (an empty reduction gives ``-inf``)."""
    if not is_dask(xp):
        return xp.max(x, axis=axis, keepdims=keepdims)
    import dask.array as da

    return da.reduction(x, _block_max, _block_max, combine=_block_max, axis=axis,
                        keepdims=keepdims, dtype=x.dtype, meta=x._meta)


def _summary_block(block, summary):
    """The summary of one block, as a 1-entry object array of the block's ndim
    (one entry per block: the summaries of an array form its grid of blocks)."""
    out = np.empty((1,) * block.ndim, dtype=object)
    out[(0,) * block.ndim] = summary(block)
    return out


def _verdict_task(*grids, verdict):
    """The one verdict task: ``grids`` are the arrays' summaries, each gathered
    into an object array of the shape of its grid of blocks."""
    verdict([(list(g.ravel()), g.shape) for g in grids])  # raises when the check fails
    return np.True_


def _after(block, passed):
    """One block of a checked array: the block itself, once the check ``passed``."""
    return block


def gate(arrays, summaries, verdict):
    """Return ``arrays`` (dask arrays) made to wait for a check inside the graph.

    Parameters
    ----------
    arrays : sequence of dask arrays
        The arrays to check (any chunks, unknown sizes included).
    summaries : sequence of callables
        ``summaries[i](block)`` returns a small picklable summary of one block
        of ``arrays[i]`` (a NumPy array, or whatever the dask array holds).
    verdict : callable
        ``verdict(parts)`` gets one ``(block_summaries, grid)`` pair per array,
        the summaries in C order of the array's grid of blocks, ``grid`` that
        grid's shape, and raises when the check fails.

    Returns
    -------
    list of dask arrays
        The same values, chunks and dtypes; each block depends on the
        verdict, so computing anything from them runs the check first and
        raises its exception.  Nothing is computed here.

    Notes
    -----
    Only dask array operations build the graph (``map_blocks`` for the
    summaries, one ``blockwise`` over every summary for the verdict), so dask
    knows each block of an input has several dependents and computes it once
    (a ``dask.delayed`` step would hide that from dask's fusion, which then
    computes the blocks once more for the summaries).
    """
    import dask.array as da

    pairs = []
    for i, (a, summary) in enumerate(zip(arrays, summaries, strict=True)):
        grid = da.map_blocks(_summary_block, a, summary=summary, dtype=object,
                             chunks=tuple((1,) * n for n in a.numblocks),
                             meta=np.empty((0,) * a.ndim, dtype=object))
        pairs += [grid, tuple(f"{chr(97 + i)}{axis}" for axis in range(a.ndim))]
    passed = da.blockwise(_verdict_task, (), *pairs, verdict=verdict, concatenate=True,
                          dtype=bool, meta=np.empty((), dtype=bool))
    return [da.map_blocks(_after, a, passed, dtype=a.dtype, meta=a._meta) for a in arrays]


def block_offsets(shapes, grid):
    """Each block's offset along each axis, given the blocks' shapes in C order
    of the block ``grid`` (as ``gate`` hands them to a verdict)."""
    starts = []
    for axis, n in enumerate(grid):
        step = int(np.prod(grid[axis + 1:], dtype=np.int64))
        sizes = [shapes[i * step][axis] for i in range(n)]
        starts.append(np.concatenate([[0], np.cumsum(sizes)]).tolist())
    offsets = []
    for index in np.ndindex(*grid):
        offsets.append(tuple(starts[axis][i] for axis, i in enumerate(index)))
    total = tuple(s[-1] for s in starts)
    return offsets, total

