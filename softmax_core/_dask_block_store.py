"""A fit's computed blocks kept on disk between its epochs (on the dask workers, or locally).

Design: the epochs of an out-of-core fit on a ``distributed`` cluster are
bound by computing the blocks (measured in ``benchmarks/README.md``: reading
and decompressing a 100 MB zarr block took 0.18-0.45 s on one core, training
on it 0.06 s), and every epoch computes every block again.  So the first
epoch, computing a block on a worker, also writes it, staged (cast to the
training dtype, labels encoded, sample and class weights applied:
``prepare.stage``), to a file in that worker's ``local_directory``, the
directory where dask itself spills; the later epochs read the file back
(``numpy.lib.format.read_array``, which reads a file into the block's array
with ``numpy.fromfile``: a plain copy from the page cache or the disk) on that
same worker and only shuffle it afresh (``prepare.order``, the epoch's
seeds), so the fit trains on the same arrays, to the bit, as when it computes
every block every epoch.  Memory is as before: a stored block is on disk, not
in the worker's memory.

What it costs and where it stops: disk space of the staged data (``X`` in the
training dtype, 8 bytes a row for the labels, and the weights in the training
dtype when they differ); a block is stored only while the disk keeps at least
``KEEP_FREE`` free beyond it (`has_room`), and a block not stored is computed
every epoch, as without the store.  A file is written under a temporary name
and renamed, so a present file is complete; a write that fails leaves no
file.  The fit removes its directory from every worker at its end, also after
an error (`remove_store` marks the store closed in the worker process first,
so that a write still running then leaves nothing either); a worker that
closes removes its whole ``local_directory`` (one that is killed leaves it
to the next worker that cleans up that base directory).  A stored block that
cannot be read in a later epoch (its worker restarted, or the task ran on
another worker) raises `BlockNotStored`; the chain then forgets the blocks
that are gone and repeats that epoch (the same result), and drops the whole
store if it happens again in the same epoch.

Nothing is stored on a memory filesystem (`filesystem_type`: ``tmpfs``,
``ramfs``), where the store would hold the data in RAM.  Under dask's local
schedulers the blocks come to the training process, and `LocalStore` keeps
them the same way in a directory of its own under dask's
``temporary-directory`` (or the system's temporary directory); there a block
that cannot be read back is simply computed again, and the store gives up
when a block was computed faster than it was written (in-memory blocks).

``dask.config.set({"softmax-core.block-store": False})`` turns it off
(`store_enabled`).
"""

import os
import shutil
import tempfile
import threading
import time
import uuid

import numpy as np

__all__ = ["CONFIG_KEY", "KEEP_FREE", "MEMORY_FILESYSTEMS", "BlockNotStored", "store_enabled",
           "new_token", "has_room", "filesystem_type", "compute_and_store", "load_stored",
           "stored_blocks", "remove_store", "LocalStore"]

CONFIG_KEY = "softmax-core.block-store"
# free disk space to leave beside the stored blocks: this many bytes, and this share of the disk
KEEP_FREE = (1 << 30, 0.1)
_PREFIX = "softmax-core-blocks-"


class BlockNotStored(RuntimeError):
    """A stored block is not on the worker that reads it (the chain falls back to the graph)."""


def store_enabled():
    """Whether fits keep their blocks on disk between epochs (dask config ``CONFIG_KEY``)."""
    import dask

    value = dask.config.get(CONFIG_KEY, True)
    if not isinstance(value, bool):
        raise TypeError(f"dask config {CONFIG_KEY!r} must be True or False, got {value!r}.")
    return value


def new_token():
    """A fresh name for one fit's store."""
    return uuid.uuid4().hex


def has_room(usage, nbytes):
    """Whether a disk of ``shutil.disk_usage`` ``usage`` takes ``nbytes`` more and keeps
    `KEEP_FREE` free."""
    keep = max(KEEP_FREE[0], int(usage.total * KEEP_FREE[1]))
    return usage.free - nbytes >= keep


MEMORY_FILESYSTEMS = {"tmpfs", "ramfs"}


def filesystem_type(path, mounts="/proc/self/mounts"):
    """The type of the filesystem that holds ``path`` (the longest mount point above
    it in ``mounts``), or None where that cannot be read."""
    try:
        with open(mounts) as f:
            entries = [line.split()[1:3] for line in f if len(line.split()) >= 3]
    except OSError:
        return None
    path = os.path.realpath(path)
    best, kind = "", None
    for point, fstype in entries:
        point = point.replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fstype
    return kind


def _directory(token, dask_worker=None):
    if dask_worker is None:
        from distributed import get_worker

        dask_worker = get_worker()
    return os.path.join(dask_worker.local_directory, _PREFIX + token)


def _path(directory, i):
    return os.path.join(directory, f"block-{int(i)}.npy")


# the stores removed in this process: a write that was still running when its fit
# ended (its task cannot be cancelled) leaves no file behind (`_write`, `remove_store`)
_closed = set()
_closed_lock = threading.Lock()


def _token_of(directory):
    return os.path.basename(directory)[len(_PREFIX):]


def _write(directory, i, staged):
    """Store ``staged`` (arrays, or None for an absent one) as block ``i``; False when
    the store was removed, there is no room, or the write fails (the block is then not
    stored, and no file of it is left)."""
    token = _token_of(directory)
    arrays = [a for a in staged if a is not None]
    partial = None
    try:
        if token in _closed:
            return False
        os.makedirs(directory, exist_ok=True)
        if filesystem_type(directory) in MEMORY_FILESYSTEMS:  # the store would be in RAM
            return False
        if not has_room(shutil.disk_usage(directory), sum(a.nbytes for a in arrays) + 4096):
            return False
        fd, partial = tempfile.mkstemp(prefix=f"block-{int(i)}-", suffix=".partial",
                                       dir=directory)
        with os.fdopen(fd, "wb") as f:
            present = np.array([a is not None for a in staged])
            np.lib.format.write_array(f, present, allow_pickle=False)
            for a in arrays:
                np.lib.format.write_array(f, a, allow_pickle=False)
        with _closed_lock:  # `remove_store` marks the store closed under the lock
            if token not in _closed:
                os.replace(partial, _path(directory, i))
                partial = None
                return True
        return False
    except OSError:
        return False
    finally:
        if partial is not None:
            _remove(partial)
        if token in _closed:  # removed meanwhile: so is what this write created
            shutil.rmtree(directory, ignore_errors=True)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _read(directory, i):
    try:
        with open(_path(directory, i), "rb") as f:
            present = np.lib.format.read_array(f, allow_pickle=False)
            return tuple(np.lib.format.read_array(f, allow_pickle=False) if p else None
                         for p in present.tolist())
    except (OSError, ValueError, MemoryError) as e:  # MemoryError: a corrupt header's shape
        raise BlockNotStored(f"row block {i} is not stored on this worker ({e})") from None


def compute_and_store(prepare, i, Xb, yb, wb, seed, token):
    """On a worker: block ``i`` staged, stored (when there is room) and shuffled for
    training, ``prepare.order(staged, RandomState(seed))``."""
    staged = prepare.stage(i, Xb, yb, wb)
    _write(_directory(token), i, staged)
    return prepare.order(staged, np.random.RandomState(seed))


def load_stored(prepare, i, seed, token):
    """On the worker that stored it: block ``i`` read back and shuffled for training."""
    staged = _read(_directory(token), i)
    return prepare.order(staged, np.random.RandomState(seed))


def stored_blocks(token, dask_worker=None):
    """(``client.run``) The blocks that this worker holds in the store ``token``."""
    directory = _directory(token, dask_worker)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(int(name[6:-4]) for name in names
                  if name.startswith("block-") and name.endswith(".npy")
                  and name[6:-4].isdigit())


async def remove_store(token, dask_worker=None):
    """(``client.run``) Remove the store ``token`` from this worker, for good (a write
    still running stores nothing), off the worker's event loop."""
    import asyncio

    with _closed_lock:
        _closed.add(token)
    directory = _directory(token, dask_worker)
    await asyncio.get_running_loop().run_in_executor(
        None, lambda: shutil.rmtree(directory, ignore_errors=True))


class LocalStore:
    """The block store of a fit under a local scheduler, in this process's temporary
    directory (see the module); its methods may be called from several threads.

    It stores only what is worth it: when a block was computed faster than it was
    written (an in-memory or persisted array, whose blocks are slices), the store
    gives up, removes its files and computes every block from then on.
    """

    def __init__(self):
        import dask

        base = dask.config.get("temporary-directory", None) or tempfile.gettempdir()
        self._token = new_token()
        self._directory = os.path.join(base, _PREFIX + self._token)
        self._stored = set()
        self._lock = threading.Lock()
        self.active = True

    def load(self, prepare, i, seed, compute):
        """Block ``i`` ready to train: read back when stored, else ``compute()``d
        (``(Xb, yb, wb)``), staged and stored."""
        staged = None
        with self._lock:
            stored = i in self._stored
        if stored:
            try:
                staged = _read(self._directory, i)
            except BlockNotStored:
                with self._lock:
                    self._stored.discard(i)
        if staged is None:
            tic = time.perf_counter()
            staged = prepare.stage(i, *compute())
            computed = time.perf_counter() - tic
            if self.active:
                tic = time.perf_counter()
                if _write(self._directory, i, staged):
                    with self._lock:
                        self._stored.add(i)
                if time.perf_counter() - tic > computed:  # cheaper to compute again
                    self.close()
        return prepare.order(staged, np.random.RandomState(seed))

    def close(self):
        """Remove the store; a write still running stores nothing."""
        with _closed_lock:
            _closed.add(self._token)
        with self._lock:
            self.active = False
            self._stored.clear()
        shutil.rmtree(self._directory, ignore_errors=True)
