"""The blocks of a dask training set: one survey pass, then streaming in random order.

Design: ``SoftmaxRegression`` trains on a dask array without ever holding
it: the rows are split into the array's row blocks (``X`` rechunked to one
block across the columns; ``y`` and the sample weights to ``X``'s rows), and

* `survey` computes, in one pass (one ``dask.compute``; each block is
  read once), what the fit needs before its first step: the labels and
  their counts, the weighted column moments (combined across blocks by
  Chan's parallel update, in float64), the smallest weight, a check that
  ``X`` is finite, each block's length (so unknown chunk sizes work) and a
  uniform random sample of rows (for the step size and the epoch objective);
* `BlockStream` then gives the blocks of one epoch in a fresh random order:
  background threads compute (with the active local dask scheduler; with
  a ``distributed`` client the blocks train on the workers instead,
  ``_dask_chain.WorkerChain``) and prepare the next ``AHEAD`` (2)
  blocks -- cast, C order, rows permuted, labels encoded -- while the caller
  trains on the current one.  At most three prepared blocks are held.

The per-block functions run on the dask workers, so they are module-level
functions of NumPy arrays only.
"""

import math
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ._caller import warn_at_caller

__all__ = ["is_dask_collection", "as_dask_array", "DaskTrainingSet", "BlockStream", "prepare_block",
           "survey"]


def is_dask_collection(a):
    """Whether ``a`` is a dask array, DataFrame or Series (without importing dask)."""
    if "dask" not in sys.modules:
        return False
    from dask import is_dask_collection as _is

    return _is(a)


def as_dask_array(a, what):
    """A dask array from a dask array, DataFrame or Series; feature names or None."""
    import dask.array as da

    if isinstance(a, da.Array):
        return a, None
    if hasattr(a, "to_dask_array"):
        names = getattr(a, "columns", None)
        names = None if names is None else np.asarray([str(c) for c in names], dtype=object)
        return a.to_dask_array(), names
    raise TypeError(f"{what} must be a dask array, DataFrame or Series, got {type(a).__name__}")


@dataclass
class DaskTrainingSet:
    """``X``, ``y`` and the weights as dask arrays of aligned row blocks (one column block)."""

    X: object
    y: object
    w: object  # dask array or None
    dtype: object  # NumPy float dtype the blocks are trained in
    feature_names: object = None

    @classmethod
    def from_inputs(cls, X, y, sample_weight):

        X, names = as_dask_array(X, "X")
        if X.ndim != 2:
            raise ValueError(f"Expected a 2D dask array for X, got {X.ndim} dimensions "
                             f"(shape {X.shape}).")
        if not isinstance(X._meta, np.ndarray):
            raise TypeError(
                f"SoftmaxRegression trains on dask arrays of NumPy blocks; this one has "
                f"{type(X._meta).__module__}.{type(X._meta).__name__} blocks.")
        if X.dtype.kind not in "biuf":
            raise ValueError(f"X must hold real numbers; its dtype is {X.dtype}.")
        if X.shape[1] == 0:
            raise ValueError("Found array with 0 feature(s) (shape=(n, 0)) while a minimum of "
                             "1 is required by SoftmaxRegression.")
        dtype = np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)
        if X.numblocks[1] > 1:
            X = X.rechunk({1: -1})
        if y is None:
            raise ValueError("SoftmaxRegression requires y to be passed, but the target y is "
                             "None.")
        if is_dask_collection(y):
            y, _ = as_dask_array(y, "y")
        else:
            y = _from_numpy(np.asarray(y), X, "y")
        y = _aligned(_column_to_1d(y), X, "y")
        w = None
        if sample_weight is not None:
            if np.isscalar(sample_weight):
                raise TypeError("sample_weight must be an array of one weight per sample for "
                                "dask input, got a scalar.")
            if is_dask_collection(sample_weight):
                sample_weight, _ = as_dask_array(sample_weight, "sample_weight")
            else:
                sample_weight = _from_numpy(np.asarray(sample_weight, dtype=np.float64), X,
                                            "sample_weight")
            if sample_weight.ndim != 1:
                raise ValueError(f"sample_weight must be 1D, got shape {sample_weight.shape}.")
            w = _aligned(sample_weight, X, "sample_weight")
        return cls(X=X, y=y, w=w, dtype=dtype, feature_names=names)

    @property
    def n_blocks(self):
        return self.X.numblocks[0]

    @property
    def n_features(self):
        return int(self.X.shape[1])

    def delayed_blocks(self):
        """Per block, the delayed ``(X_block, y_block, w_block or None)``."""
        xs = self.X.to_delayed().ravel().tolist()
        ys = self.y.to_delayed().ravel().tolist()
        ws = [None] * len(xs) if self.w is None else self.w.to_delayed().ravel().tolist()
        return list(zip(xs, ys, ws, strict=True))


def _from_numpy(a, X, what):
    """An in-memory ``y`` or ``sample_weight`` as a dask array of ``X``'s row blocks."""
    import dask.array as da

    if math.isnan(X.shape[0]):
        raise ValueError(
            f"X is a dask array with unknown chunk sizes, so {what} must be a dask array with "
            f"the same row blocks (derived the same way, e.g. y[mask] for X[mask]), not a "
            f"{type(a).__name__}.")
    if a.ndim == 0 or a.shape[0] != X.shape[0]:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: "
                         f"[{X.shape[0]}, {a.shape[0] if a.ndim else 1}] (X and {what}).")
    return da.from_array(a, chunks=(X.chunks[0],) + a.shape[1:])


def _column_to_1d(y):
    if y.ndim == 2 and y.shape[1] == 1:
        from sklearn.exceptions import DataConversionWarning

        warn_at_caller("A column-vector y was passed when a 1d array was expected. Please "
                      "change the shape of y to (n_samples,), for example using ravel().",
                      DataConversionWarning)
        return y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y should be a 1d array, got an array of shape {y.shape} instead.")
    return y


def _aligned(a, X, what):
    """``a`` rechunked to the row blocks of ``X`` (checked at compute time when unknown)."""
    n, m = X.shape[0], a.shape[0]
    if not (math.isnan(n) or math.isnan(m)):
        if n != m:
            raise ValueError(f"Found input variables with inconsistent numbers of samples: "
                             f"[{n}, {m}] (X and {what}).")
        return a if a.chunks[0] == X.chunks[0] else a.rechunk({0: X.chunks[0]})
    if a.numblocks[0] != X.numblocks[0]:
        raise ValueError(
            f"X and {what} have unknown chunk sizes and different numbers of row blocks "
            f"({X.numblocks[0]} and {a.numblocks[0]}); compute their chunk sizes "
            "(dask.array.Array.compute_chunk_sizes) or derive both the same way.")
    return a


# ------------------------------------------------------------------ survey

# rows per slice of a block when its moments are gathered (bounds the temporaries)
_SURVEY_ROWS = 16384

@dataclass
class BlockSummary:
    """What `survey` learns of one block (computed on a worker)."""

    n: int
    labels: np.ndarray  # unique labels
    counts: np.ndarray  # their counts
    class_weight: np.ndarray  # their summed sample weights (the counts when unweighted)
    weight: float  # sum of the sample weights (n when unweighted)
    mean: np.ndarray  # weighted column means (float64); None for an empty block
    m2: np.ndarray  # weighted sums of squared deviations from `mean` (float64)
    w_min: float
    w_max: float
    finite: bool
    length_mismatch: tuple  # (len(X), len(y), len(w)) when they differ, else None
    sample_keys: np.ndarray  # uniform random keys of the sampled rows
    sample_X: np.ndarray
    sample_y: np.ndarray
    sample_w: np.ndarray  # None when unweighted


def _survey_block(Xb, yb, wb, seed, keep, dtype):
    """`BlockSummary` of one block; ``keep`` sampled rows (the smallest random keys)."""
    n = Xb.shape[0]
    lengths = (n, yb.shape[0], n if wb is None else wb.shape[0])
    if len(set(lengths)) > 1:
        return BlockSummary(n, None, None, None, 0.0, None, None, 0.0, 0.0, True, lengths,
                            None, None, None, None)
    labels, inverse, counts = np.unique(yb, return_inverse=True, return_counts=True)
    w64 = None if wb is None else np.asarray(wb, dtype=np.float64)
    finite = w64 is None or bool(np.isfinite(w64).all())
    weight = float(n) if w64 is None else float(w64.sum())
    w_min = 1.0 if w64 is None else (float(w64.min()) if n else math.inf)
    w_max = 1.0 if w64 is None else (float(w64.max()) if n else -math.inf)
    mean = m2 = None
    if n and weight > 0 and math.isfinite(weight):
        # two passes over row slices: float64 temporaries of _SURVEY_ROWS rows only
        sums = np.zeros(Xb.shape[1])
        for start in range(0, n, _SURVEY_ROWS):
            part = np.asarray(Xb[start:start + _SURVEY_ROWS], dtype=np.float64)
            finite = finite and bool(np.isfinite(part).all())
            sums += part.sum(axis=0) if w64 is None else w64[start:start + _SURVEY_ROWS] @ part
        mean = sums / weight
        m2 = np.zeros(Xb.shape[1])
        for start in range(0, n, _SURVEY_ROWS):
            dev = np.asarray(Xb[start:start + _SURVEY_ROWS], dtype=np.float64) - mean
            dev *= dev
            m2 += dev.sum(axis=0) if w64 is None else w64[start:start + _SURVEY_ROWS] @ dev
    elif n:
        finite = finite and bool(np.isfinite(Xb).all())
    rng = np.random.default_rng(seed)
    keys = rng.random(n)
    rows = np.sort(np.argsort(keys)[:keep]) if keep < n else np.arange(n)
    per_label = counts.astype(np.float64) if w64 is None else \
        np.bincount(inverse.ravel(), weights=w64, minlength=labels.shape[0])
    return BlockSummary(
        n=n, labels=labels, counts=counts, class_weight=per_label, weight=weight, mean=mean,
        m2=m2, w_min=w_min, w_max=w_max, finite=finite, length_mismatch=None,
        sample_keys=keys[rows],
        sample_X=np.ascontiguousarray(Xb[rows], dtype=dtype), sample_y=np.asarray(yb)[rows],
        sample_w=None if w64 is None else w64[rows])


@dataclass
class Survey:
    """The training set as a whole (see `survey`)."""

    n: int
    lengths: list
    labels: np.ndarray
    counts: np.ndarray
    label_weights: np.ndarray  # summed sample weights of each label
    weight: float
    mean: np.ndarray  # float64
    var: np.ndarray  # float64
    w_min: float
    w_max: float
    sample_X: np.ndarray
    sample_y: np.ndarray
    sample_w: np.ndarray


def survey(data, sample_rows, rng):
    """One pass over ``data`` (a `DaskTrainingSet`): a `Survey`, after the checks.

    ``sample_rows`` rows are sampled uniformly without replacement: each block
    keeps its rows of smallest random key (as many as it can contribute: a
    proportional share when the block lengths are known, else up to
    ``sample_rows``), and the rows of smallest key overall are kept.
    """
    import dask

    blocks = data.delayed_blocks()
    chunks = data.X.chunks[0]
    known = not any(math.isnan(c) for c in chunks)
    total = sum(chunks) if known else None
    seeds = rng.randint(0, 2**31 - 1, size=len(blocks))
    tasks = []
    for i, (xb, yb, wb) in enumerate(blocks):
        keep = sample_rows
        if known and total:
            # a proportional share, rounded up with some slack so that the
            # smallest keys overall are among the kept ones with near certainty
            share = chunks[i] * sample_rows / total
            keep = min(sample_rows, int(math.ceil(share + 6 * math.sqrt(share) + 8)))
        tasks.append(dask.delayed(_survey_block, pure=True)(xb, yb, wb, int(seeds[i]), keep,
                                                            data.dtype))
    (summaries,) = dask.compute(tasks)
    return _combine(summaries, sample_rows, data)


def _combine(summaries, sample_rows, data):
    for i, s in enumerate(summaries):
        if s.length_mismatch is not None:
            nx, ny, nw = s.length_mismatch
            raise ValueError(
                f"Found input variables with inconsistent numbers of samples in row block {i} "
                f"of the dask arrays: X has {nx} rows, y {ny}"
                + ("" if data.w is None else f", sample_weight {nw}") + ".")
    n = sum(s.n for s in summaries)
    if n == 0:
        raise ValueError("Found array with 0 sample(s) (shape=(0, "
                         f"{data.n_features})) while a minimum of 1 is required by "
                         "SoftmaxRegression.")
    if not all(s.finite for s in summaries):
        bad = [i for i, s in enumerate(summaries) if not s.finite]
        what = "X" if data.w is None else "X or sample_weight"
        raise ValueError(f"Input {what} contains NaN or infinity (in row block(s) "
                         f"{bad[:5]} of the dask array).")
    labels, inverse = np.unique(np.concatenate([s.labels for s in summaries]),
                                return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate([s.counts for s in summaries]),
                         minlength=labels.shape[0]).astype(np.int64)
    label_weights = np.bincount(inverse, minlength=labels.shape[0],
                                weights=np.concatenate([s.class_weight for s in summaries]))
    w_min = min(s.w_min for s in summaries)
    w_max = max(s.w_max for s in summaries)
    if w_min < 0:
        raise ValueError("Negative values in data passed to `sample_weight`")
    weight = math.fsum(s.weight for s in summaries)
    mean, var = _pooled_moments([s for s in summaries if s.mean is not None], data.n_features)
    keys = np.concatenate([s.sample_keys for s in summaries])
    order = np.sort(np.argsort(keys, kind="stable")[:sample_rows])
    sample_X = np.concatenate([s.sample_X for s in summaries])[order]
    sample_y = np.concatenate([s.sample_y for s in summaries])[order]
    sample_w = None if data.w is None else \
        np.concatenate([s.sample_w for s in summaries])[order]
    return Survey(n=n, lengths=[s.n for s in summaries], labels=labels, counts=counts,
                  label_weights=label_weights, weight=weight, mean=mean, var=var,
                  w_min=w_min, w_max=w_max,
                  sample_X=sample_X, sample_y=sample_y, sample_w=sample_w)


def _pooled_moments(parts, d):
    """Weighted mean and variance of the union of blocks (Chan et al.'s pairwise update)."""
    total, mean, m2 = 0.0, np.zeros(d), np.zeros(d)
    for s in parts:
        if s.weight <= 0:
            continue
        new_total = total + s.weight
        delta = s.mean - mean
        mean = mean + delta * (s.weight / new_total)
        m2 = m2 + s.m2 + delta * delta * (total * s.weight / new_total)
        total = new_total
    var = m2 / total if total > 0 else np.zeros(d)
    return mean, var


# ---------------------------------------------------------------- streaming

# blocks computed ahead of the one that trains: several keep both workers of a small
# cluster reading while the driver trains (benchmarks/README.md, bench_dask.py:
# the stream of 3.2 GB took 17.8 s per pass with one block in flight, 8.5 s with two,
# 7.1 s with three; the fit 11.6-12.7 s with two; after the fused linear step 9.57 s
# per pass with two and with three, so two, which holds one block less)
AHEAD = 2


def prepare_block(prepare, i, Xb, yb, wb, seed):
    """``prepare(i, Xb, yb, wb, RandomState(seed))``: a computed block made ready to train."""
    return prepare(i, Xb, yb, wb, np.random.RandomState(seed))


class BlockStream:
    """The blocks of ``data`` in a given order, the next ones computed while one trains.

    ``prepare(i, X_block, y_block, w_block, rng)`` turns a computed block into
    what the caller trains on (it runs in a background thread, so the
    kernels and BLAS of the training overlap with it); ``rng`` is a
    ``RandomState`` seeded for that block and epoch.  ``ahead`` blocks are
    computed (each in its own thread, so a cluster computes them at once)
    while the caller trains on the current one: at most ``ahead + 1``
    prepared blocks are held.
    """

    def __init__(self, data, prepare, ahead=AHEAD, store=False):
        self._blocks = data.delayed_blocks()
        self._prepare = prepare
        self._ahead = max(1, int(ahead))
        self._pool = ThreadPoolExecutor(max_workers=self._ahead,
                                        thread_name_prefix="softmax-core-dask")
        # ``store``: the blocks kept on disk between epochs (``prepare`` has ``stage``
        # and ``order``; ``_dask_block_store.LocalStore``)
        self._store = None
        if store:
            from ._dask_block_store import LocalStore

            self._store = LocalStore()

    def __len__(self):
        return len(self._blocks)

    def _load(self, i, seed):
        import dask

        xb, yb, wb = self._blocks[i]
        if self._store is not None:
            return self._store.load(self._prepare, i, seed, lambda: dask.compute(xb, yb, wb))
        return prepare_block(self._prepare, i, *dask.compute(xb, yb, wb), seed)

    def epoch(self, order, seeds):
        """Yield the prepared blocks ``order[0], order[1], ...`` (``ahead`` computed ahead)."""
        pending = deque()
        submitted = 0

        def submit_up_to(limit):
            nonlocal submitted
            while submitted < min(limit, len(order)):
                pending.append(self._pool.submit(self._load, order[submitted],
                                                 seeds[submitted]))
                submitted += 1

        submit_up_to(self._ahead)
        try:
            for k in range(len(order)):
                block = pending.popleft().result()
                submit_up_to(k + 1 + self._ahead)
                yield block
                del block
        finally:
            for future in pending:
                future.cancel()
            for future in pending:
                try:
                    future.result()
                except Exception:  # the caller stopped early; its own error wins
                    pass

    def close(self):
        try:
            self._pool.shutdown(wait=True)
        finally:
            if self._store is not None:
                self._store.close()
