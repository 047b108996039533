"""The block store of a dask fit: blocks computed once, kept on disk between epochs.

The oracle is the same fit with the store turned off (``dask.config`` key
``softmax-core.block-store``): it must give the same model to the bit, while
the store computes each block of the graph twice (the survey pass and the
first epoch) instead of once per pass.  The computations are counted by a
block function that leaves one file per call in a directory the workers share.
"""

import collections
import os
import time
import uuid
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from sklearn.datasets import make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from softmax_core import SoftmaxRegression  # noqa: E402
from softmax_core import _dask_block_store as store  # noqa: E402


def _data(n=4000, d=10, k=3, seed=0):
    X, y = make_classification(n, d, n_informative=6, n_classes=k, n_clusters_per_class=1,
                               random_state=seed)
    X[:, 0] = X[:, 0] * 100.0 + 50.0
    return X, y


def _logged(block, log, slow=0.0, block_info=None):
    """The block unchanged; a file in ``log`` names the block computed (after ``slow``
    seconds: a block that costs more to compute than to store)."""
    start = block_info[0]["array-location"][0][0]
    open(os.path.join(log, f"{start}-{uuid.uuid4().hex}"), "w").close()
    time.sleep(slow)
    return block


def _counted_fit(X, y, log, enabled=True, w=None, config=None, slow=0.0, **kw):
    """The fit of logged dask blocks, and how many times each block was computed."""
    os.makedirs(log)
    Xd = da.from_array(X, chunks=(500, -1)).map_blocks(_logged, log, slow, dtype=X.dtype)
    wd = None if w is None else da.from_array(w, chunks=500)
    model = SoftmaxRegression(random_state=3, **kw)
    with dask.config.set({store.CONFIG_KEY: enabled, **(config or {})}):
        model.fit(Xd, da.from_array(y, chunks=500), sample_weight=wd)
    counts = collections.Counter(int(name.split("-")[0]) for name in os.listdir(log))
    assert sorted(counts) == list(range(0, len(y), 500))
    return model, counts


def _store_dirs(client):
    def listing(dask_worker):
        return [n for n in os.listdir(dask_worker.local_directory)
                if n.startswith("softmax-core-blocks-")]

    return sorted(n for names in client.run(listing).values() for n in names)


@pytest.mark.parametrize("case", ["defaults", "weights", "float32-fortran", "no-shuffle",
                                  "str-labels", "large-model"])
def test_fit_computes_each_block_twice_and_equals_the_fit_without_the_store(dask_client,
                                                                            tmp_path, case):
    X, y = _data()
    w, kw = None, {}
    if case == "weights":  # sample weights and class weights: stored with the block
        w = np.random.RandomState(1).rand(len(y)) * 3
        kw = {"class_weight": {0: 1.0, 1: 3.0, 2: 0.5}}
    elif case == "float32-fortran":
        X = np.asfortranarray(X.astype(np.float32))
    elif case == "no-shuffle":
        kw = {"shuffle": False}
    elif case == "str-labels":
        y = np.array([f"c{v}" for v in y], dtype=object)
    elif case == "large-model":  # above FOLLOW_BYTES: fetched only at the end of a pass
        X = np.random.RandomState(0).randn(4000, 700)
        kw = {"max_iter": 3, "tol": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        stored, counts = _counted_fit(X, y, str(tmp_path / "on"), w=w, **kw)
        plain, plain_counts = _counted_fit(X, y, str(tmp_path / "off"), enabled=False, w=w, **kw)
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
def test_partial_fit_and_fits_of_one_epoch_store_nothing(dask_client):
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
    assert made == [False, False, True]  # one pass each, then a fit of several epochs


@pytest.mark.parametrize("gone", ["one", "all", "twice"])
@pytest.mark.parametrize("follow", [True, False], ids=["small-model", "large-model"])
def test_a_stored_block_that_is_gone_repeats_the_epoch(dask_client, monkeypatch, gone, follow):
    """Stored blocks removed from the workers between epochs: the epoch is trained again,
    with the blocks still stored (or, when a block is missing again, from the graph), and
    the result is the chain's without the store."""
    from softmax_core import _dask_chain
    from softmax_core._dask_blocks import DaskTrainingSet
    from softmax_core._dask_chain import Params, Step, WorkerChain
    from softmax_core._dask_fit import _Blocks
    from softmax_core._preconditioner import Preconditioner
    from softmax_core._sgd import SGDConfig

    if not follow:
        monkeypatch.setattr(_dask_chain, "FOLLOW_BYTES", 0)
    X, y = _data(n=3000, seed=4)
    data = DaskTrainingSet.from_inputs(da.from_array(X, chunks=500),
                                       da.from_array(y, chunks=500), None)
    blocks = _Blocks(data, np.arange(3), None, None, shuffle=True, check_values=False)
    step = Step(SGDConfig(batch_size=50), Preconditioner(), 50, 1e-3)
    rng = np.random.RandomState(0)
    epochs = [(rng.permutation(6).tolist(), rng.randint(0, 1000, 6).tolist()) for _ in range(4)]

    def run(chain, between=None):
        params = Params(np.zeros((10, 3)), np.zeros(3), None, None)
        for e, (order, seeds) in enumerate(epochs):
            if e == 2 and between is not None:
                between(chain, order)
            params = chain.epoch(order, seeds, Params(params.W, params.b, None, None),
                                 lambda: step)
        return params

    expected = run(WorkerChain(dask_client, data, blocks))
    seen = {}

    def remove(chain, order):
        seen["stored"] = dict(chain._stored)
        if gone == "one":  # the last block of the epoch: after the other steps trained
            dask_client.run(_remove_block, chain._token, order[-1])
        else:
            dask_client.run(_remove_all_blocks, chain._token)
        if gone == "twice":  # still listed where it was (a read that another worker ran)
            monkeypatch.setattr(chain, "_find_stored", lambda: chain._stored.update(
                seen["stored"]))

    chain = WorkerChain(dask_client, data, blocks, store=True)
    got = run(chain, between=remove)
    assert sorted(seen["stored"]) == list(range(6))  # all stored after the first epoch
    np.testing.assert_array_equal(got.W, expected.W)
    assert got.total == expected.total
    if gone == "twice":
        assert chain._token is None and chain._stored == {}  # the store dropped
    else:
        assert sorted(chain._stored) == list(range(6))  # stored again, kept
    chain.close()
    assert _store_dirs(dask_client) == []


def _remove_block(token, i, dask_worker=None):
    if i in store.stored_blocks(token, dask_worker):  # on one of the workers
        os.remove(store._path(store._directory(token, dask_worker), i))


def _remove_all_blocks(token, dask_worker=None):
    for i in store.stored_blocks(token, dask_worker):
        os.remove(store._path(store._directory(token, dask_worker), i))


def _failing_in_epochs(block, log, block_info=None):
    """Block 0 fails after the survey."""
    start = block_info[0]["array-location"][0][0]
    calls = len([n for n in os.listdir(log) if n.startswith(f"{start}-")])
    open(os.path.join(log, f"{start}-{uuid.uuid4().hex}"), "w").close()
    if calls >= 1 and start == 0:
        time.sleep(0.3)  # while the other blocks are being staged
        raise RuntimeError("block 0 failed")
    return block


def _slow_staging(on):
    """(``client.run``) Staging a block other than block 0 takes a second on this worker."""
    from softmax_core._dask_fit import _Blocks

    if not on:
        _Blocks.stage = _Blocks._fast_stage
        return
    _Blocks._fast_stage = fast = _Blocks.stage

    def slow(self, i, *args):
        if i != 0:
            time.sleep(1.0)
        return fast(self, i, *args)

    _Blocks.stage = slow


def test_files_are_removed_after_an_error_even_of_writes_still_running(dask_client, tmp_path):
    """The blocks being staged when the fit fails are written after its store was removed:
    they leave no file."""
    X, y = _data(n=3000, seed=5)
    Xd = da.from_array(X, chunks=(500, -1)).map_blocks(_failing_in_epochs, str(tmp_path),
                                                       dtype=X.dtype)
    model = SoftmaxRegression(random_state=0, max_iter=5, shuffle=False)
    dask_client.run(_slow_staging, True)
    try:
        with pytest.raises(RuntimeError, match="block 0 failed"):
            model.fit(Xd, da.from_array(y, chunks=500))
        time.sleep(2.5)  # the writes still running are done
    finally:
        dask_client.run(_slow_staging, False)
    assert _store_dirs(dask_client) == []


# ------------------------------------------------ under a local scheduler

@pytest.mark.parametrize("scheduler", ["threads", "synchronous"])
def test_a_local_fit_stores_its_blocks_in_the_temporary_directory(tmp_path, scheduler):
    X, y = _data(seed=6)
    temp = tmp_path / "temp"
    temp.mkdir()
    config = {"scheduler": scheduler, "temporary-directory": str(temp)}
    seen = []
    write = store._write

    def spy(directory, i, staged):
        seen.append(os.path.dirname(directory))
        return write(directory, i, staged)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store, "_write", spy)
        stored, counts = _counted_fit(X, y, str(tmp_path / "on"), config=config, slow=0.05)
    plain, plain_counts = _counted_fit(X, y, str(tmp_path / "off"), enabled=False,
                                       config=config, slow=0.05)
    assert stored.n_iter_ == plain.n_iter_ >= 3
    assert set(counts.values()) == {2}
    assert min(plain_counts.values()) >= 1 + plain.n_iter_
    assert seen and set(seen) == {str(temp)}
    np.testing.assert_array_equal(stored.coef_, plain.coef_)
    assert stored.loss_curve_ == plain.loss_curve_
    assert os.listdir(temp) == []  # removed at the end


def test_a_local_store_gives_up_on_blocks_cheaper_to_compute_than_to_write(tmp_path):
    """In-memory blocks (slices): the first write costs more than the computation, so the
    store removes its files and computes every block from then on."""
    X, y = _data(seed=8)
    temp = tmp_path / "temp"
    temp.mkdir()
    config = {"scheduler": "threads", "temporary-directory": str(temp)}
    write = store._write

    def slow_write(directory, i, staged):
        time.sleep(0.05)
        return write(directory, i, staged)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store, "_write", slow_write)
        model, counts = _counted_fit(X, y, str(tmp_path / "on"), config=config)
    assert min(counts.values()) >= 1 + model.n_iter_ > 3  # computed every epoch
    assert os.listdir(temp) == []


def test_a_store_on_a_memory_filesystem_stores_nothing(tmp_path, monkeypatch):
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\ntmpfs {tmp_path} tmpfs rw 0 0\n"
                      f"/dev/vdb {tmp_path}/disk ext4 rw 0 0\n")
    assert store.filesystem_type(str(tmp_path / "x"), str(mounts)) == "tmpfs"
    assert store.filesystem_type(str(tmp_path / "disk" / "x"), str(mounts)) == "ext4"
    assert store.filesystem_type("/elsewhere", str(mounts)) == "ext4"
    assert store.filesystem_type("/x", str(tmp_path / "absent")) is None
    kinds = {"memory": "tmpfs", "disk": "ext4"}
    monkeypatch.setattr(store, "filesystem_type", lambda path: kinds[path.split(os.sep)[-2]])
    staged = (np.ones((2, 2)), np.arange(2), None)
    assert not store._write(str(tmp_path / "memory" / "softmax-core-blocks-a"), 0, staged)
    assert store._write(str(tmp_path / "disk" / "softmax-core-blocks-b"), 0, staged)


def test_a_local_store_computes_a_block_again_when_its_file_is_gone(tmp_path):
    from softmax_core._dask_fit import _Blocks

    X, y = _data(n=600, seed=7)

    class Data:
        dtype, w = np.dtype(np.float64), None

    blocks = _Blocks(Data(), np.arange(3), None, None, shuffle=True, check_values=False)
    computed = []

    def compute():
        computed.append(1)
        time.sleep(0.05)  # costs more than the write: stored
        return X, y, None

    with dask.config.set({"temporary-directory": str(tmp_path)}):
        local = store.LocalStore()
    first = local.load(blocks, 0, 5, compute)
    again = local.load(blocks, 0, 5, compute)  # read back: not computed
    assert len(computed) == 1
    (directory,) = os.listdir(tmp_path)
    os.remove(store._path(os.path.join(tmp_path, directory), 0))
    third = local.load(blocks, 0, 5, compute)
    assert len(computed) == 2
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(first, third, strict=True):
        np.testing.assert_array_equal(a, b)
    local.close()
    assert os.listdir(tmp_path) == []


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


def test_a_write_that_fails_stores_nothing_and_leaves_no_file(tmp_path, monkeypatch):
    staged = (np.zeros((3, 2)), np.arange(3), None)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert store._write(str(a_file / "softmax-core-blocks-t"), 0, staged) is False
    directory = str(tmp_path / "softmax-core-blocks-t")
    calls = []

    def failing(f, a, allow_pickle):
        calls.append(a)
        if len(calls) == 2:
            raise exc("disk failed")
        return write(f, a, allow_pickle=allow_pickle)

    write = np.lib.format.write_array
    monkeypatch.setattr(np.lib.format, "write_array", failing)
    exc = OSError
    assert store._write(directory, 0, staged) is False
    assert os.listdir(directory) == []  # no partial file
    calls.clear()
    exc = RuntimeError  # not a disk error: raised, and still no file left
    with pytest.raises(RuntimeError, match="disk failed"):
        store._write(directory, 0, staged)
    assert os.listdir(directory) == []


def test_a_write_to_a_removed_store_leaves_nothing(tmp_path):
    import asyncio

    class Worker:
        local_directory = str(tmp_path)

    token = store.new_token()
    directory = store._directory(token, Worker())
    assert store._write(directory, 0, (np.ones((2, 2)), np.arange(2), None))
    assert store.stored_blocks(token, Worker()) == [0]
    asyncio.run(store.remove_store(token, Worker()))
    assert not os.path.exists(directory)
    assert store._write(directory, 1, (np.ones((2, 2)), np.arange(2), None)) is False
    assert not os.path.exists(directory)


def test_a_corrupt_header_is_a_block_not_stored(tmp_path):
    directory = str(tmp_path / "s")
    assert store._write(directory, 0, (np.ones((4, 3)), np.arange(4), None))
    path = store._path(directory, 0)
    data = open(path, "rb").read()
    old, new = b"'shape': (3,)", b"'shape': (1099511627776,)"
    at = data.index(old)
    end = data.index(b"\n", at)  # the header is padded with spaces up to its newline
    assert data[end - len(new) + len(old):end].strip() == b""
    data = data[:at] + new + data[at + len(old):end - len(new) + len(old)] + data[end:]
    with open(path, "wb") as f:  # the present-flags array now claims 2**40 entries
        f.write(data)
    with pytest.raises(store.BlockNotStored, match="row block 0"):
        store._read(directory, 0)


def test_the_config_key_must_be_a_bool():
    with dask.config.set({store.CONFIG_KEY: "yes"}):
        with pytest.raises(TypeError, match="softmax-core.block-store"):
            store.store_enabled()
    assert store.store_enabled() is True
