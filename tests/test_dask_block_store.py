"""The block store of a dask fit: blocks computed once, kept on the workers' disks between epochs.

The oracle is the same fit with the store turned off (``dask.config`` key
``softmax-core.block-store``): it must give the same model to the bit, while
the store computes each block of the graph twice (the survey pass and the
first epoch) instead of once per pass.  The computations are counted by a
block function that leaves one file per call in a directory the workers share.
"""

import collections
import os
import uuid

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from sklearn.datasets import make_classification  # noqa: E402

from softmax_core import SoftmaxRegression  # noqa: E402
from softmax_core import _dask_block_store as store  # noqa: E402


def _data(n=4000, d=10, k=3, seed=0):
    X, y = make_classification(n, d, n_informative=6, n_classes=k, n_clusters_per_class=1,
                               random_state=seed)
    X[:, 0] = X[:, 0] * 100.0 + 50.0
    return X, y


def _logged(block, log, block_info=None):
    """The block unchanged; a file in ``log`` names the block computed."""
    start = block_info[0]["array-location"][0][0]
    open(os.path.join(log, f"{start}-{uuid.uuid4().hex}"), "w").close()
    return block


def _counted_fit(X, y, log, enabled=True, **kw):
    """The fit of logged dask blocks, and how many times each block was computed."""
    os.makedirs(log)
    Xd = da.from_array(X, chunks=(500, -1)).map_blocks(_logged, log, dtype=X.dtype)
    model = SoftmaxRegression(random_state=3, **kw)
    with dask.config.set({store.CONFIG_KEY: enabled}):
        model.fit(Xd, da.from_array(y, chunks=500))
    counts = collections.Counter(int(name.split("-")[0]) for name in os.listdir(log))
    assert sorted(counts) == list(range(0, len(y), 500))
    return model, counts


def _store_dirs(client):
    def listing(dask_worker):
        return [n for n in os.listdir(dask_worker.local_directory)
                if n.startswith("softmax-core-blocks-")]

    return sorted(n for names in client.run(listing).values() for n in names)


def test_fit_computes_each_block_twice_and_equals_the_fit_without_the_store(dask_client,
                                                                            tmp_path):
    X, y = _data()
    stored, counts = _counted_fit(X, y, str(tmp_path / "on"))
    plain, plain_counts = _counted_fit(X, y, str(tmp_path / "off"), enabled=False)
    assert stored.n_iter_ == plain.n_iter_ >= 3
    assert set(counts.values()) == {2}  # the survey and the first epoch
    assert min(plain_counts.values()) >= 1 + plain.n_iter_
    np.testing.assert_array_equal(stored.coef_, plain.coef_)
    np.testing.assert_array_equal(stored.intercept_, plain.intercept_)
    assert stored.loss_curve_ == plain.loss_curve_
    assert _store_dirs(dask_client) == []  # removed from every worker at the end


def test_a_disk_without_room_stores_nothing_and_the_fit_is_the_same(dask_client, tmp_path):
    def set_keep_free(value):
        from softmax_core import _dask_block_store

        _dask_block_store.KEEP_FREE = value

    X, y = _data(seed=1)
    dask_client.run(set_keep_free, (1 << 62, 0.0))
    try:
        full, counts = _counted_fit(X, y, str(tmp_path / "full"))
    finally:
        dask_client.run(set_keep_free, store.KEEP_FREE)
    plain, plain_counts = _counted_fit(X, y, str(tmp_path / "off"), enabled=False)
    assert counts == plain_counts
    np.testing.assert_array_equal(full.coef_, plain.coef_)
    assert _store_dirs(dask_client) == []


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_partial_fit_and_local_schedulers_store_nothing(dask_client):
    X, y = _data(seed=2)
    Xd, yd = da.from_array(X, chunks=500), da.from_array(y, chunks=500)
    from softmax_core import _dask_chain

    made = []
    chain = _dask_chain.WorkerChain.__init__

    def spy(self, *args, store=False, **kwargs):
        made.append(store)
        chain(self, *args, store=store, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_dask_chain.WorkerChain, "__init__", spy)
        SoftmaxRegression(random_state=0).partial_fit(Xd, yd, classes=np.arange(3))
        SoftmaxRegression(random_state=0, max_iter=1).fit(Xd, yd)
        SoftmaxRegression(random_state=0, max_iter=3).fit(Xd, yd)
        with dask.config.set(scheduler="threads"):  # blocks come to this process
            SoftmaxRegression(random_state=0, max_iter=3).fit(Xd, yd)
    assert made == [False, False, True]  # one pass each, then a fit of several epochs


def test_a_stored_block_that_is_gone_repeats_the_epoch_from_the_graph(dask_client):
    """Blocks removed from the workers between epochs: the epoch is trained again from
    the graph, the store is dropped, and the result is the chain's without the store."""
    from softmax_core._dask_blocks import DaskTrainingSet
    from softmax_core._dask_chain import Params, Step, WorkerChain
    from softmax_core._dask_fit import _Blocks
    from softmax_core._preconditioner import Preconditioner
    from softmax_core._sgd import SGDConfig

    X, y = _data(n=3000, seed=4)
    data = DaskTrainingSet.from_inputs(da.from_array(X, chunks=500),
                                       da.from_array(y, chunks=500), None)
    blocks = _Blocks(data, np.arange(3), None, None, shuffle=True, check_values=False)
    step = Step(SGDConfig(batch_size=50), Preconditioner(), 50, 1e-3)
    rng = np.random.RandomState(0)
    epochs = [(rng.permutation(6).tolist(), rng.randint(0, 1000, 6).tolist()) for _ in range(3)]

    def run(chain, between=None):
        params = Params(np.zeros((10, 3)), np.zeros(3), None, None)
        for e, (order, seeds) in enumerate(epochs):
            if e == 2 and between is not None:
                between(chain)
            params = chain.epoch(order, seeds, Params(params.W, params.b, None, None),
                                 lambda: step)
        chain.close()
        return params

    expected = run(WorkerChain(dask_client, data, blocks))
    seen = {}

    def remove(chain):
        seen["stored"] = dict(chain._stored)
        dask_client.run(store.remove_store, chain._token)

    got = run(WorkerChain(dask_client, data, blocks, store=True), between=remove)
    assert sorted(seen["stored"]) == list(range(6))  # all stored after the first epoch
    np.testing.assert_array_equal(got.W, expected.W)
    assert got.total == expected.total
    assert _store_dirs(dask_client) == []


@pytest.mark.parametrize("free, nbytes, room", [
    (12 << 30, 1 << 30, True),  # keeps 10 GiB of a 100 GiB disk
    (12 << 30, 3 << 30, False),
    (int(1.5 * (1 << 30)), int(0.4 * (1 << 30)), True),  # keeps 1 GiB of a small disk
    (int(1.5 * (1 << 30)), int(0.6 * (1 << 30)), False),
])
def test_has_room_keeps_a_gib_and_a_tenth_of_the_disk(free, nbytes, room):
    total = (100 << 30) if free > (4 << 30) else (5 << 30)
    usage = collections.namedtuple("usage", "total used free")(total, total - free, free)
    assert store.has_room(usage, nbytes) is room


def test_write_and_read_back_a_staged_block(tmp_path):
    directory = str(tmp_path / "s")
    X = np.asfortranarray(np.random.RandomState(0).rand(7, 3).astype(np.float32))
    staged = (X, np.arange(7, dtype=np.int64), None)
    assert store._write(directory, 4, staged)
    assert os.listdir(directory) == ["block-4.npy"]  # no partial file left
    back = store._read(directory, 4)
    assert back[2] is None
    for a, b in zip(back[:2], staged[:2], strict=True):
        assert a.dtype == b.dtype and a.flags.f_contiguous == b.flags.f_contiguous
        np.testing.assert_array_equal(a, b)
    with pytest.raises(store.BlockNotStored, match="row block 5"):
        store._read(directory, 5)
    path = os.path.join(directory, "block-4.npy")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 8)
    with pytest.raises(store.BlockNotStored, match="row block 4"):
        store._read(directory, 4)


def test_the_config_key_must_be_a_bool():
    with dask.config.set({store.CONFIG_KEY: "yes"}):
        with pytest.raises(TypeError, match="softmax-core.block-store"):
            store.store_enabled()
    assert store.store_enabled() is True
