"""One out-of-core epoch as a chain of block steps: in this process, or on the dask workers.

Design: an epoch of ``fit`` / ``partial_fit`` on dask input is a chain;
step ``k`` takes the model parameters that step ``k - 1`` left and trains
them on one prepared block (`train_block`: the shuffled minibatch steps of
the in-memory optimizer).  Two ways run the same chain:

* `LocalChain`: the blocks come to this process (`_dask_blocks.BlockStream`,
  the next ones computed while one trains) and the steps run here.  Used
  under dask's local schedulers (threads, synchronous, processes).
* `WorkerChain`: with a ``distributed`` client active, the model travels to
  the blocks instead of the blocks to the model (the design of dask-ml's
  ``Incremental``; also for a fit that runs inside a dask task, which then
  leaves its worker's thread pool, `seceded_in_task`): each block is
  computed and prepared by a task, the step of block ``k`` is a task that
  depends on that block and on step ``k - 1``, so the scheduler normally
  runs it where the block is and only the parameters move between workers.
  Unlike ``Incremental``, which submits the whole pass at once (and whose
  workers then hold many blocks at a time), at most ``ahead`` blocks are
  computed beyond the one that trains, and a block is released as soon as
  its step is done: the cluster holds at most ``ahead + 1`` prepared blocks.
  Step ``k + 1`` is submitted before the driver waits for step ``k``, so the
  chain does not wait for the driver between blocks.  The workers need
  softmax-core (the same version).  A chain of several epochs (``store``)
  keeps the blocks that its first epoch computes on the workers' local disks
  and reads them back in the later ones (``_dask_block_store``); so does a
  `LocalChain`, on this process's temporary disk.

Both take the same seeds for the same things (a block's row permutation from
``RandomState(seed)`` when it is prepared, its batch order from
``RandomState([seed, 1])``), so a fit on a cluster equals the fit under the
threaded scheduler, to the bit, where the fused linear kernel trains (its
results do not depend on the thread count; `_sgd_steps.fused_eligible`) and
the workers run the same kernel build; a BLAS step may round differently on
the workers' one thread.
"""

import math
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ._array_cache import cached_allocations_in
from ._dask_block_store import (
    BlockNotStored,
    compute_and_store,
    load_stored,
    new_token,
    remove_store,
    stored_blocks,
)
from ._dask_blocks import AHEAD, BlockStream, prepare_block
from ._sgd import SGDState, run_batches
from ._sgd_steps import NumpyOps

__all__ = ["Params", "Step", "train_block", "LocalChain", "WorkerChain", "chain_for",
           "seceded_in_task"]

# blocks computed beyond the one that trains on the workers (bench_dask.py, 3.2 GB on 2
# workers: one left a worker idle between its step and its next block, 28.9 s for the survey
# and 2 epochs; two 23.4 s and three 23.1 s, all 0.66 GiB per worker at most, on a 2-core
# AMD EPYC.  On a 2-core Xeon, survey and 3 epochs, two runs each: two 34.7 / 35.4 s, three
# 31.7 / 31.5 s (0.67-0.76 GiB), four 34.0 / 33.4 s (0.76 GiB).  With two, a worker that had
# prepared its block waited for the driver to hear of the step that released a block and
# submit the next one: 16 gaps of 85 ms on average per worker in 2 epochs)
WORKER_AHEAD = 3
# the largest model (W, with its momentum buffer) fetched after every block step
FOLLOW_BYTES = 1 << 20


@dataclass
class Params:
    """What the chain carries from step to step: the parameters and the pass's running sums."""

    W: np.ndarray
    b: np.ndarray
    vW: np.ndarray  # momentum buffers, or None
    vb: np.ndarray
    total: float = 0.0  # summed batch losses of the blocks so far
    n: int = 0  # their rows

    @classmethod
    def of(cls, state):
        return cls(state.W, state.b, state.vW, state.vb)

    def store(self, state):
        state.W, state.b, state.vW, state.vb = self.W, self.b, self.vW, self.vb


@dataclass
class Step:
    """The fixed arguments of every step of one epoch."""

    cfg: object  # SGDConfig
    preconditioner: object
    batch_size: int
    lr: float


def _copy(a):
    return None if a is None else a.copy()


@cached_allocations_in
def train_block(params, block, step, seed, copy=True):
    """`Params` after the minibatch steps over one prepared ``(X, y, w, rows)`` block.

    ``copy``: leave the arrays of ``params`` unchanged (a worker must not
    update in place what dask holds as an earlier task's result).  A pass
    that has diverged (non-finite running loss) skips the remaining blocks.
    """
    if not math.isfinite(params.total):
        return params
    Xb, y, w, rows = block
    W, b, vW, vb = (params.W, params.b, params.vW, params.vb) if not copy else \
        (params.W.copy(), params.b.copy(), _copy(params.vW), _copy(params.vb))
    state = SGDState(W=W, b=b, vW=vW, vb=vb, batch_size=step.batch_size,
                     preconditioner=step.preconditioner)
    total = run_batches(NumpyOps(), state, step.cfg, Xb, y, w,
                        np.random.RandomState([seed, 1]), None, step.lr, rows)
    return Params(state.W, state.b, state.vW, state.vb, params.total + float(total),
                  params.n + int(y.shape[0]))


class LocalChain:
    """The chain in this process, over a `BlockStream` of the blocks."""

    def __init__(self, data, prepare, ahead=AHEAD, store=False):
        self._stream = BlockStream(data, prepare, ahead=ahead, store=store)

    def __len__(self):
        return len(self._stream)

    def epoch(self, order, seeds, params, make_step, first_block=None):
        """`Params` after training ``params`` on the blocks ``order`` (see `WorkerChain.epoch`)."""
        step = None
        for k, block in enumerate(self._stream.epoch(order, seeds)):
            if step is None:
                if first_block is not None:
                    first_block(*block)
                step = make_step()
            params = train_block(params, block, step, seeds[k], copy=False)
            del block
            if not math.isfinite(params.total):
                break  # diverged: the rest of the pass would not change that
        return params

    def close(self):
        self._stream.close()


class WorkerChain:
    """The chain as tasks on the workers of a ``distributed`` client (see the module)."""

    def __init__(self, client, data, prepare, ahead=WORKER_AHEAD, store=False):
        self._client = client
        self._blocks = data.delayed_blocks()
        self._prepare = prepare
        self._ahead = max(1, int(ahead))
        # the block store (``store``; ``prepare`` then has ``stage`` and ``order``):
        # its name, and the worker of each stored block
        self._token = new_token() if store else None
        self._stored = {}

    def __len__(self):
        return len(self._blocks)

    def _load(self, i, seed):
        import dask

        if i in self._stored:
            return self._client.submit(load_stored, self._prepare, i, seed, self._token,
                                       workers=[self._stored[i]], allow_other_workers=True,
                                       pure=False)
        xb, yb, wb = self._blocks[i]
        if self._token is None:
            task = dask.delayed(prepare_block, pure=False)(self._prepare, i, xb, yb, wb, seed)
        else:
            task = dask.delayed(compute_and_store, pure=False)(self._prepare, i, xb, yb, wb,
                                                                seed, self._token)
        return self._client.compute(task)

    def epoch(self, order, seeds, params, make_step, first_block=None):
        """`Params` after training ``params`` on the blocks ``order[0], order[1], ...``.

        ``make_step()`` gives the epoch's `Step`; it is called once, after
        ``first_block(X, y, w, rows)`` (when given) has seen the first
        prepared block (which is then fetched to this process).  A block's
        error (a bad label, a NaN in ``partial_fit``) is raised here.  When a
        stored block is gone, the epoch is repeated with the blocks that are
        still stored, and a second time without the store.
        """
        for attempt in range(3):
            try:
                result = self._epoch(order, seeds, params, make_step, first_block)
                break
            except BlockNotStored:
                if attempt == 0:
                    self._stored = {}
                    self._find_stored()
                else:
                    self.close()
        if self._token is not None and len(self._stored) < len(self._blocks):
            self._find_stored()
        return result

    def _find_stored(self):
        """Where the stored blocks are (kept as they were if a worker fails to answer)."""
        try:
            found = self._client.run(stored_blocks, self._token, on_error="ignore")
        except Exception:  # noqa: BLE001 - a failing worker: the store is only a cache
            return
        self._stored = {i: worker for worker, blocks in found.items()
                        if isinstance(blocks, list) for i in blocks}

    def _epoch(self, order, seeds, params, make_step, first_block):
        from distributed import wait

        client, n = self._client, len(order)
        loads, steps, held = [None] * n, [None] * n, []
        # a small model comes back after each step (the pass stops at a divergence);
        # a large one only at the end (a diverged pass skips its remaining steps)
        follow = params.W.nbytes * (1 if params.vW is None else 2) <= FOLLOW_BYTES

        def load(j):
            if j < n and loads[j] is None:
                loads[j] = self._load(order[j], seeds[j])

        try:
            for j in range(min(self._ahead + 1, n)):  # block 0 and `ahead` beyond it
                load(j)
            if n == 0:
                return params
            if first_block is not None:
                first_block(*loads[0].result())
            start = client.scatter(params, hash=False)
            step = client.scatter(make_step(), broadcast=True, hash=False)
            held += [start, step]

            def submit(k):
                load(k)
                previous = start if k == 0 else steps[k - 1]
                steps[k] = client.submit(train_block, previous, loads[k], step, seeds[k],
                                         pure=False)

            submit(0)
            for k in range(n):
                if k + 1 < n:
                    submit(k + 1)  # queued behind step k: no round trip to here between blocks
                if k == n - 1:
                    return steps[k].result()  # raises a block's error
                if follow:
                    params = steps[k].result()
                    if not math.isfinite(params.total):
                        return params  # diverged: the rest of the pass would not change that
                else:
                    wait([steps[k]])
                    if steps[k].status == "error":
                        steps[k].result()
                loads[k] = None  # block k is released
                if k > 0:
                    steps[k - 1] = None
                load(k + 1 + self._ahead)
        finally:
            futures = [f for f in loads + steps + held if f is not None]
            loads[:] = steps[:] = held[:] = []
            pending = [f for f in futures if not f.done()]
            if pending:  # after an error: the rest of the pass
                client.cancel(pending)
            for f in futures:
                f.release()

    def close(self):
        """Remove the block store from the workers (storing no more)."""
        token, self._token, self._stored = self._token, None, {}
        if token is not None:
            try:
                self._client.run(remove_store, token)
            except Exception:  # noqa: BLE001 - a worker that left removed its directory
                pass


def _client():
    """The ``distributed`` client that ``dask.compute`` would use here, or None.

    None under an explicitly configured local scheduler
    (``dask.config.set(scheduler="threads")``) and for an asynchronous
    client.  Inside a dask task it is the worker's client (a fit on dask
    arrays leaves the worker's thread pool first, `seceded_in_task`).
    """
    if "distributed" not in sys.modules:
        return None
    from dask.base import get_scheduler
    from distributed import Client

    owner = getattr(get_scheduler(), "__self__", None)
    return owner if isinstance(owner, Client) and not owner.asynchronous else None


def _in_task():
    """Whether this thread runs a dask task (not an actor's method)."""
    from distributed import get_worker
    from distributed.worker import thread_state

    try:
        get_worker()
    except ValueError:
        return False
    # an actor's method runs in the actor's own thread: no pool thread to leave
    return not getattr(thread_state, "actor", False)


@contextmanager
def seceded_in_task():
    """Inside a dask task that computes on the cluster: leave the worker's thread
    pool while the block yields (``distributed.worker_client``).

    A fit on a dask array computes its blocks on the cluster; from a task
    that holds a worker's only thread they would wait for that thread
    forever (measured: a fit in a task on 2 workers of one thread never
    finished).  Elsewhere, and under a configured local scheduler, this
    does nothing.
    """
    if "distributed" not in sys.modules or not _in_task() or _client() is None:
        yield
        return
    from distributed import worker_client

    with worker_client():
        yield


def chain_for(data, prepare, ahead=None, store=False):
    """A `WorkerChain` when a ``distributed`` client is active, else a `LocalChain`
    (``ahead``: their default look-ahead when None; ``store``: the chain keeps its
    blocks on disk between epochs, on the workers' or this process's)."""
    client = _client()
    if client is None:
        return LocalChain(data, prepare, AHEAD if ahead is None else ahead, store=store)
    return WorkerChain(client, data, prepare, WORKER_AHEAD if ahead is None else ahead,
                       store=store)
