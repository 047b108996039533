"""SoftmaxRegression on dask: out-of-core fit against dask-ml and a plain loop; searches.

    python benchmarks/bench_dask.py [--quick] [--store DIR] [--skip-gridsearch] ...

Part 1, out of core.  A training set of ``--blocks`` (32) row blocks of
``--rows`` (100_000) x ``--features`` (250) float32 (3.2 GB) and a held-out
block of the same size, 10 classes drawn from a noisy linear model (argmax
of linear logits plus Gumbel noise) of standard normal features, a fifth of
which are then put on other scales (a tenth x1000 + 50, a tenth + 100; not
x0.01: the L2 penalty acts on the raw coefficients, which would all but
remove such features).  The blocks are
generated with dask on the cluster and written once with ``to_zarr`` into
``--store`` (default: a directory under /tmp named after the sizes), which
later runs reuse.  A ``distributed.LocalCluster`` of 2 worker processes, 1
thread each, ``memory_limit`` 2 GiB each, reads the store.  Methods:

* ``fit``: ``SoftmaxRegression().fit(X, y)`` on the dask arrays (one survey
  pass, then ``n_iter_`` epochs; per pass = time / (n_iter_ + 1)), with its
  block store (the default: the blocks of the first epoch kept on the workers'
  disks for the later ones);
* ``fit, no block store``: the same with ``softmax-core.block-store`` off
  (every epoch computes every block from the zarr store);
* ``fit, threads`` and ``fit, threads, no block store`` (only with
  ``--with-local-fit``): the same fits under dask's threaded scheduler in this
  process, no cluster (the blocks are read from the zarr store here instead of
  being shipped from the workers);
* ``partial_fit``: ``SoftmaxRegression(schedule="invscaling")
  .partial_fit(X, y, classes)`` on the dask arrays (one pass, no survey);
* ``Incremental``: ``dask_ml.wrappers.Incremental(SoftmaxRegression(
  schedule="invscaling")).fit(X, y, classes=...)``, then ``partial_fit``
  for ``--incremental-passes`` passes in all (default 3: one pass alone was
  the noisiest figure of the table; the model travels to the worker that
  holds each block);
* ``loop (cluster)``: ``partial_fit`` on each block in shuffled order in the
  driver, each block computed on the cluster (one pass);
* ``loop (in process)``: the same loop, each block read from the store in the
  driver process (dask's synchronous scheduler: no cluster; the issue's
  "plain loop in one process");
* ``NumPy subsample``: ``SoftmaxRegression().fit`` on ``--subsample`` rows
  (whole random blocks) in memory, time of the fit alone.

Two reference passes that train nothing: ``stream`` (our fit's block stream,
each block computed on the cluster and shipped to the driver) and ``survey``
(the survey pass of ``fit`` alone); both use private helpers of the package.

For each: wall time, passes, time per pass, peak RSS of each worker (sampled
every 50 ms by a thread in the worker process; each method gets a fresh
cluster, so that one method's heap does not count for the next),
peak RSS of the driver process (sampled the same way; absolute, and above its
RSS when the method started) and the accuracy on the held-out block (scored
lazily on the cluster).

Part 2, searches.  ``GridSearchCV`` of 12 candidates (``alpha`` x
``batch_size``) x 3 folds on in-memory data (``--grid-rows`` 60_000 x
``--grid-features`` 100) under ``joblib.parallel_backend("dask")`` on the
2-worker cluster (the nanny starts each worker with ``OMP_NUM_THREADS=1``)
against ``n_jobs=1`` under ``threadpool_limits(1)`` (one thread per fit), in
the same run, ``refit=False`` (the refit is one sequential fit in both).  In
each round, also: the same search with X and y scattered to the workers before
it (``parallel_backend("dask", scatter=[X, y])``), the same search on a
cluster whose workers start without
``MALLOC_TRIM_THRESHOLD_`` (``--skip-no-trim``), dask-ml's ``GridSearchCV``
on the first cluster (``--skip-dask-ml-search``), and, as the reference of
what two processes give on this machine without dask, scikit-learn's search
with ``n_jobs=2`` under joblib's loky backend (``--skip-loky``).  For each:
the fastest wall time, the speed-up over ``n_jobs=1``, the fits' and scores'
summed time (from ``cv_results_``; against ``n_jobs=1`` it says how much slower
a fit runs with another one at once) and how much of 2 x the wall time it
fills (the scheduling).  Last, how much slower a loop on 256 KiB (in a core's
own cache) runs in two processes at once than alone: a machine whose two CPUs
share a core, or whose host takes time from them, shows it there.

The CPU model and flags, the kernel build, the versions and the load average
(before and after each part) are printed with the figures.
"""

import argparse
import gc
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

N_CLASSES = 10
GIB = 1 << 30


# ------------------------------------------------------------------ data

def _weights(seed, n_features, n_classes):
    """The linear model of the labels, and the scales/offsets of the raw features."""
    rng = np.random.default_rng([seed, 2**31])
    W = rng.standard_normal((n_features, n_classes)) * (2.0 / np.sqrt(n_features))
    scale = np.ones(n_features)
    offset = np.zeros(n_features)
    cols = rng.permutation(n_features)
    big, shifted = cols[: n_features // 10], cols[n_features // 10: n_features // 5]
    scale[big], offset[big] = 1e3, 50.0
    offset[shifted] = 100.0
    return W, scale.astype(np.float32), offset.astype(np.float32)


def make_block(seed, block_id, n_rows, n_features, n_classes=N_CLASSES):
    """Row block ``block_id``: float32 features and int64 labels, deterministic."""
    W, scale, offset = _weights(seed, n_features, n_classes)
    rng = np.random.default_rng([seed, block_id])
    Z = rng.standard_normal((n_rows, n_features), dtype=np.float32)
    logits = Z @ W.astype(np.float32)
    logits += rng.gumbel(size=logits.shape).astype(np.float32)
    y = np.argmax(logits, axis=1).astype(np.int64)
    Z *= scale
    Z += offset
    return Z, y


def _store_meta(args):
    return {"blocks": args.blocks, "rows": args.rows, "features": args.features,
            "classes": N_CLASSES, "seed": args.seed, "version": 2}


def ensure_store(args, client):
    """The zarr store of the training and test arrays (written once, then reused)."""
    import dask
    import dask.array as da

    store = Path(args.store)
    meta = _store_meta(args)
    done = store / "complete.json"
    if done.exists() and json.loads(done.read_text()) == meta:
        print(f"store: reusing {store}")
        return store
    if store.exists():
        shutil.rmtree(store)
    store.mkdir(parents=True)
    tic = time.perf_counter()
    writes = []
    for name, ids in (("train", range(args.blocks)), ("test", [args.blocks])):
        parts = [dask.delayed(make_block, pure=True, nout=2)(
            args.seed, i, args.rows, args.features) for i in ids]
        X = da.concatenate([da.from_delayed(p[0], (args.rows, args.features), np.float32)
                            for p in parts])
        y = da.concatenate([da.from_delayed(p[1], (args.rows,), np.int64) for p in parts])
        writes.append(X.to_zarr(str(store / f"X_{name}"), compute=False))
        writes.append(y.to_zarr(str(store / f"y_{name}"), compute=False))
    dask.compute(*writes)
    done.write_text(json.dumps(meta))
    size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    print(f"store: wrote {store} in {time.perf_counter() - tic:.1f} s "
          f"({size / 1e9:.2f} GB on disk)")
    return store


def bayes_accuracy(X_test, y_test, args):
    """Accuracy of the generating model's noise-free logits on the test block."""
    import dask

    W, scale, offset = _weights(args.seed, args.features, N_CLASSES)
    with dask.config.set(scheduler="synchronous"):
        Xt, yt = dask.compute(X_test, y_test)
    return float(np.mean(np.argmax(((Xt - offset) / scale) @ W, axis=1) == yt))


def open_store(store):
    import dask.array as da

    return tuple(da.from_zarr(str(store / name))
                 for name in ("X_train", "y_train", "X_test", "y_test"))


# ---------------------------------------------------------------- memory

def _rss():
    import psutil

    return psutil.Process().memory_info().rss


class _Sampler:
    """Peak RSS of this process, sampled by a daemon thread."""

    def __init__(self, interval):
        self.interval, self.peak, self._stop = interval, _rss(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss())

    def stop(self):
        self._stop.set()
        self._thread.join()
        return max(self.peak, _rss())


def _worker_start_sampler(interval, dask_worker=None):
    dask_worker._bench_sampler = _Sampler(interval)
    return dask_worker._bench_sampler.peak


def _worker_peak(dask_worker=None):
    return max(dask_worker._bench_sampler.peak, _rss())


def _worker_imports():
    import dask_ml.wrappers  # noqa: F401
    import sklearn.model_selection  # noqa: F401

    import softmax_core  # noqa: F401


def _worker_threads():
    """What a worker process runs with: its environment and the kernels' thread count."""
    from threadpoolctl import threadpool_info

    from softmax_core._threads import max_threads

    return {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "MALLOC_TRIM_THRESHOLD_": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            "softmax_core_threads": max_threads(),
            "pools": sorted({(p["internal_api"], p["num_threads"]) for p in threadpool_info()})}


@contextmanager
def local_cluster(args, trim=True):
    """A fresh LocalCluster of 2 single-threaded worker processes, and its Client.

    With ``--one-cluster`` (implied by ``--quick``), the one cluster of the run.
    ``trim=False``: the workers start without distributed's default
    ``MALLOC_TRIM_THRESHOLD_=65536`` (glibc's own malloc tuning instead).
    """
    import dask
    from distributed import Client, LocalCluster

    if trim and getattr(args, "client", None) is not None:
        yield args.client
        return
    config, saved = {}, os.environ.get("MALLOC_TRIM_THRESHOLD_")
    if not trim:
        environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
        environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        config = {"distributed.nanny.pre-spawn-environ": environ}
        # the first LocalCluster of a process also sets it in the process's own
        # environment, which the worker processes inherit
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    try:
        with dask.config.set(config), \
                LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                             memory_limit=args.memory_limit, dashboard_address=":0",
                             silence_logs=logging.ERROR) as cluster, \
                Client(cluster, set_as_default=trim) as client:
            client.run(_worker_imports)  # a fresh worker imports on its first task: not timed
            yield client
    finally:
        if saved is not None:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = saved


@contextmanager
def measured(client, interval=0.05):
    """Time a block of code; peak RSS of each worker and of the driver while it runs."""
    client.run(_worker_start_sampler, interval)
    gc.collect()
    driver = _Sampler(interval)
    result = {}
    start_rss = driver.peak
    tic = time.perf_counter()
    try:
        yield result
    finally:
        result["seconds"] = time.perf_counter() - tic
        result["driver_peak"] = driver.stop()
        result["driver_start"] = start_rss
        result["worker_peaks"] = sorted(client.run(_worker_peak).values())


# ---------------------------------------------------------------- methods

def _estimator(**kwargs):
    from softmax_core import SoftmaxRegression

    return SoftmaxRegression(random_state=0, **kwargs)


def method_fit(X, y, classes):
    model = _estimator().fit(X, y)
    return model, model.n_iter_ + 1, f"survey + {model.n_iter_} epochs"


def method_fit_no_store(X, y, classes):
    import dask

    with dask.config.set({"softmax-core.block-store": False}):
        return method_fit(X, y, classes)


def method_fit_local(X, y, classes):
    import dask

    with dask.config.set(scheduler="threads"):
        return method_fit(X, y, classes)


def method_fit_local_no_store(X, y, classes):
    import dask

    with dask.config.set(scheduler="threads"):
        return method_fit_no_store(X, y, classes)


def method_partial_fit(X, y, classes):
    model = _estimator(schedule="invscaling").partial_fit(X, y, classes=classes)
    return model, 1, "one pass"


INCREMENTAL_PASSES = 3  # set by --incremental-passes


def method_incremental(X, y, classes):
    from dask_ml.wrappers import Incremental

    inc = Incremental(_estimator(schedule="invscaling"), shuffle_blocks=True, random_state=0)
    inc.fit(X, y, classes=classes)
    for _ in range(INCREMENTAL_PASSES - 1):  # the same model, one more pass each
        inc.partial_fit(X, y, classes=classes)
    passes = INCREMENTAL_PASSES
    return inc.estimator_, passes, "one pass" if passes == 1 else f"{passes} passes"


def _loop(X, y, classes, scheduler=None):
    import dask

    model = _estimator(schedule="invscaling")
    xs, ys = X.to_delayed().ravel(), y.to_delayed().ravel()
    order = np.random.default_rng(0).permutation(len(xs))
    config = {} if scheduler is None else {"scheduler": scheduler}
    with dask.config.set(**config):
        for i in order:
            Xb, yb = dask.compute(xs[i], ys[i])
            model.partial_fit(Xb, yb, classes=classes)
    return model, 1, "one pass"


def method_loop_cluster(X, y, classes):
    return _loop(X, y, classes)


def method_loop_local(X, y, classes):
    return _loop(X, y, classes, scheduler="synchronous")


def reference_stream(X, y, classes):
    """One pass of the fit's block stream (computed on the cluster, shipped), no training."""
    from softmax_core._dask_blocks import BlockStream, DaskTrainingSet

    data = DaskTrainingSet.from_inputs(X, y, None)
    stream = BlockStream(data, lambda i, Xb, yb, wb, rng: (Xb, yb))
    order = np.random.default_rng(0).permutation(len(stream)).tolist()
    rows = 0
    try:
        for Xb, _ in stream.epoch(order, list(range(len(order)))):
            rows += Xb.shape[0]
    finally:
        stream.close()
    return None, 1, f"{rows} rows"


def reference_survey(X, y, classes):
    """The survey pass of ``fit`` alone."""
    from sklearn.utils import check_random_state

    from softmax_core._dask_blocks import DaskTrainingSet, survey
    from softmax_core._sgd import EVAL_ROWS

    info = survey(DaskTrainingSet.from_inputs(X, y, None), EVAL_ROWS, check_random_state(0))
    return None, 1, f"{info.n} rows, {len(info.labels)} classes"


METHODS = {
    "fit": ("fit (dask arrays)", method_fit),
    "fit-no-store": ("fit, no block store", method_fit_no_store),
    "fit-local": ("fit, threads (no cluster)", method_fit_local),
    "fit-local-no-store": ("fit, threads, no block store", method_fit_local_no_store),
    "partial_fit": ("partial_fit (dask arrays)", method_partial_fit),
    "incremental": ("dask-ml Incremental", method_incremental),
    "loop": ("loop (cluster)", method_loop_cluster),
    "loop-local": ("loop (in process)", method_loop_local),
}
REFERENCES = {
    "stream": ("stream only (no training)", reference_stream),
    "survey": ("survey pass only", reference_survey),
}


def method_subsample(X, y, n_rows):
    """A NumPy fit on whole random blocks of about ``n_rows`` rows (load not timed)."""
    import dask

    xs, ys = X.to_delayed().ravel(), y.to_delayed().ravel()
    rows = X.chunks[0][0]
    picks = np.random.default_rng(1).permutation(len(xs))[: max(1, -(-n_rows // rows))]
    Xs = np.concatenate(dask.compute(*[xs[i] for i in picks]))
    ys_ = np.concatenate(dask.compute(*[ys[i] for i in picks]))
    return Xs, ys_


# ---------------------------------------------------------------- reports

def _gib(b):
    return f"{b / GIB:.2f}"


def machine_report():
    import dask
    import dask_ml
    import distributed
    import sklearn
    import zarr

    import softmax_core
    from softmax_core._build_info import build_info

    model, flags = "?", ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("Flags:"):
                have = set(line.split(":", 1)[1].split())
                flags = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl")
                                 if f in have)
    except (OSError, subprocess.CalledProcessError):
        pass
    info = build_info()
    print(f"CPU: {model}, {os.cpu_count()} cores, flags: {flags or 'none of avx2/avx512'}")
    print(f"softmax-core {getattr(softmax_core, '__version__', '?')}, kernel build "
          f"{info['kernel_target']}, OpenMP {info['openmp']} ({info['openmp_threads']} threads)")
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, scikit-learn "
          f"{sklearn.__version__}, dask {dask.__version__}, distributed "
          f"{distributed.__version__}, dask-ml {dask_ml.__version__}, zarr {zarr.__version__}")


def load_average(when):
    print(f"load average (1, 5, 15 min) {when}: "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()), flush=True)


def print_table(rows, per_worker_limit):
    print()
    head = (f"{'method':<28} {'wall s':>7} {'passes':>7} {'s/pass':>7} {'worker peaks GiB':>17} "
            f"{'max':>5} {'driver GiB (+)':>15} {'test acc':>9}  notes")
    print(head)
    print("-" * len(head))
    for r in rows:
        workers = "/".join(_gib(p) for p in r["worker_peaks"]) if r["worker_peaks"] else "-"
        wmax = _gib(max(r["worker_peaks"])) if r["worker_peaks"] else "-"
        driver = f"{_gib(r['driver_peak'])} (+{_gib(r['driver_peak'] - r['driver_start'])})"
        acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
        print(f"{r['name']:<28} {r['seconds']:>7.1f} {r['passes']:>7d} "
              f"{r['seconds'] / r['passes']:>7.2f} {workers:>17} {wmax:>5} {driver:>15} "
              f"{acc:>9}  {r['notes']}")
    print(f"(worker memory_limit {_gib(per_worker_limit)} GiB; goal: every worker under 1 GiB)")


# ---------------------------------------------------------------- part 1

def out_of_core(args):
    import dask

    with local_cluster(args) as client:
        store = ensure_store(args, client)
    X, y, X_test, y_test = open_store(store)
    classes = np.arange(N_CLASSES)
    print(f"X: {X.shape} {X.dtype}, {X.numblocks[0]} blocks of {X.chunks[0][0]} rows, "
          f"{X.nbytes / 1e9:.2f} GB; test: {X_test.shape[0]} rows; accuracy of the noise-free "
          f"generating model on them: {bayes_accuracy(X_test, y_test, args):.4f}")
    rows = []
    names = [m for m in (*REFERENCES, *METHODS) if m not in args.skip]
    for key in names:
        label, func = {**REFERENCES, **METHODS}[key]
        print(f"running {label} ...", flush=True)
        time.sleep(0.5)  # idle thread pools stop spinning
        with local_cluster(args) as client:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning of one-pass fits
                with measured(client) as res:
                    model, passes, notes = func(X, y, classes)
            accuracy = None
            if model is not None:
                accuracy = float(model.score(X_test, y_test))
            if key == "fit" and args.train_score:
                tic = time.perf_counter()
                train_acc = float(model.score(X, y))
                print(f"  lazy score on the training array (one pass on the cluster): "
                      f"{time.perf_counter() - tic:.1f} s, accuracy {train_acc:.4f}")
                proba = model.predict_proba(X)
                print(f"  predict_proba(X) is lazy: {type(proba).__module__}."
                      f"{type(proba).__name__} {proba.shape} {proba.dtype}")
        rows.append({"name": label, "passes": passes, "notes": notes, "accuracy": accuracy,
                     **res})
        del model
        print(f"  {res['seconds']:.1f} s", flush=True)

    if "subsample" not in args.skip:
        print(f"running NumPy subsample fit ({args.subsample} rows) ...", flush=True)
        with local_cluster(args) as client:
            tic = time.perf_counter()
            Xs, ys = method_subsample(X, y, args.subsample)
            load_seconds = time.perf_counter() - tic
            time.sleep(0.5)
            with measured(client) as res:
                model = _estimator().fit(Xs, ys)
        with dask.config.set(scheduler="synchronous"):
            Xt, yt = dask.compute(X_test, y_test)
        rows.append({"name": f"NumPy fit, {Xs.shape[0] // 1000}k rows", **res,
                     "passes": model.n_iter_, "accuracy": float(model.score(Xt, yt)),
                     "notes": f"{model.n_iter_} epochs of {Xs.shape[0]} rows in memory "
                              f"(load {load_seconds:.1f} s, not counted)"})
        del Xs, ys, Xt, yt, model
    print_table(rows, args.memory_limit_bytes)
    return rows


# ---------------------------------------------------------------- part 2

def grid_search(args):
    with local_cluster(args) as client:
        if args.skip_no_trim:
            return _grid_search(args, client, None)
        with local_cluster(args, trim=False) as no_trim_client:
            return _grid_search(args, client, no_trim_client)


def _core_local_loop(_):
    """Seconds of a loop on 256 KiB of float32 (in a core's own L2 cache), one thread."""
    from threadpoolctl import threadpool_limits

    a = np.ones(1 << 16, np.float32)
    with threadpool_limits(1):
        tic = time.perf_counter()
        for _ in range(10_000):
            a.sum()
        return time.perf_counter() - tic


def core_scaling(repeats=3):
    """How much slower a core-local loop runs in two processes at once than in one.

    No cache or memory bandwidth is shared by such a loop on two physical
    cores: a slowdown says that the two CPUs of the machine share a core (SMT
    siblings, or a host's vCPUs on one core) or that the host takes time from
    them, and ``2 / slowdown`` is the most any two-process run can gain.
    """
    from multiprocessing import get_context

    ratios = []
    with get_context("spawn").Pool(2) as pool:
        pool.map(_core_local_loop, [0, 1])  # warm
        for _ in range(repeats):
            one = pool.map(_core_local_loop, [0])[0]
            two = pool.map(_core_local_loop, [0, 1])
            ratios.append(sum(two) / 2 / one)
    return ratios


def _busy_seconds(search):
    """Summed fit and score time of a search's tasks (from its cv_results_)."""
    res, n_splits = search.cv_results_, search.n_splits_
    return float(n_splits * (res["mean_fit_time"] + res["mean_score_time"]).sum())


def _grid_search(args, client, no_trim_client):
    import joblib
    from sklearn.model_selection import GridSearchCV
    from threadpoolctl import threadpool_limits

    X, y = make_block(args.seed + 1, 0, args.grid_rows, args.grid_features)
    grid = {"alpha": [1e-5, 1e-4, 1e-3, 1e-2], "batch_size": [64, 256, 1024]}
    n_candidates = len(grid["alpha"]) * len(grid["batch_size"])
    print(f"GridSearchCV: X {X.shape} {X.dtype}, {n_candidates} candidates x 3 folds, "
          f"refit=False")
    for label, c in (("", client), (" (no trim)", no_trim_client)):
        if c is None:
            continue
        for address, t in sorted(c.run(_worker_threads).items()):
            print(f"  worker{label} {address}: OMP_NUM_THREADS={t['OMP_NUM_THREADS']}, "
                  f"MALLOC_TRIM_THRESHOLD_={t['MALLOC_TRIM_THRESHOLD_']}, softmax-core "
                  f"kernels {t['softmax_core_threads']} thread(s), pools {t['pools']}")

    def search(n_jobs):
        return GridSearchCV(_estimator(), grid, cv=3, n_jobs=n_jobs, refit=False)

    def serial():
        with threadpool_limits(1):
            return search(1).fit(X, y)

    def on_cluster(cluster_client, scatter=None):
        # scatter=[X, y]: the data go to every worker before the search, instead
        # of to one worker when the first task that uses them is submitted
        def run():
            with joblib.parallel_backend("dask", client=cluster_client, scatter=scatter):
                return search(-1).fit(X, y)
        return run

    def on_loky():
        # joblib's default process backend: 2 plain worker processes, one
        # thread each; no scheduler, nanny or worker event loop
        with joblib.parallel_backend("loky", inner_max_num_threads=1):
            return search(2).fit(X, y)

    def dask_ml_search():
        # dask-ml's GridSearchCV: the whole search as one graph on the cluster
        # (the folds cut once, each fit a task), no joblib
        from dask_ml.model_selection import GridSearchCV as DaskGridSearchCV

        return DaskGridSearchCV(_estimator(), grid, cv=3, refit=False, scheduler=client).fit(X, y)

    runs = {"n_jobs=1": serial, "dask": on_cluster(client),
            "dask, scattered": on_cluster(client, scatter=[X, y])}
    if no_trim_client is not None:
        runs["dask, no trim"] = on_cluster(no_trim_client)
    if not args.skip_dask_ml_search:
        runs["dask-ml"] = dask_ml_search
    if not args.skip_loky:
        runs["loky, n_jobs=2"] = on_loky
    with warnings.catch_warnings():
        # ConvergenceWarning of the weakly regularized candidates (the workers
        # get the filters from scikit-learn's joblib wrapper)
        warnings.simplefilter("ignore")
        client.run(warnings.simplefilter, "ignore")  # dask-ml passes no filters on
        if not args.skip_loky:
            on_loky()  # start loky's worker processes (reused): not timed
        times = {name: [] for name in runs}
        busy = {name: [] for name in runs}
        for _ in range(args.grid_repeats):
            scores = {}
            for name, run in runs.items():
                time.sleep(0.5)
                tic = time.perf_counter()
                fitted = run()
                times[name].append(time.perf_counter() - tic)
                busy[name].append(_busy_seconds(fitted))
                # the per-fold scores (dask-ml averages the folds in another order)
                scores[name] = np.stack([fitted.cv_results_[f"split{k}_test_score"]
                                         for k in range(3)])
                if name == "n_jobs=1":
                    s1 = fitted
            line = ", ".join(f"{name} {t[-1]:.1f} s" for name, t in times.items())
            same = all(np.array_equal(v, scores["n_jobs=1"]) for v in scores.values())
            print(f"  {line}; the same scores: {same}", flush=True)
    best = s1.cv_results_["params"][int(np.argmax(s1.cv_results_["mean_test_score"]))]
    print(f"  best {best}, mean CV accuracy {s1.cv_results_['mean_test_score'].max():.4f}")
    t1 = min(times["n_jobs=1"])
    b1 = min(busy["n_jobs=1"])
    print(f"GridSearchCV, fastest of {args.grid_repeats}: n_jobs=1 under threadpool_limits(1) "
          f"{t1:.1f} s (fits and scores {b1:.1f} s)")
    labels = {"dask": "dask backend, 2 workers (dask's default worker environment)",
              "dask, scattered": "dask backend, 2 workers, X and y scattered before the search "
                                 "(parallel_backend(..., scatter=[X, y]))",
              "dask, no trim": "dask backend, 2 workers without MALLOC_TRIM_THRESHOLD_",
              "dask-ml": "dask-ml's GridSearchCV on the 2 workers (dask's default worker "
                         "environment)",
              "loky, n_jobs=2": "loky backend, n_jobs=2 (reference: no dask)"}
    for name in runs:
        if name == "n_jobs=1":
            continue
        t2, b2 = min(times[name]), min(busy[name])
        goal = "" if name.startswith("loky") else " (goal >= 1.7x)"
        print(f"  {labels[name]}: {t2:.1f} s, speed-up over n_jobs=1 {t1 / t2:.2f}x{goal}; "
              f"fits and scores {b2:.1f} s summed ({b2 / b1:.2f}x n_jobs=1), "
              f"{b2 / 2 / t2:.0%} of 2 x the wall time")
    if not args.skip_loky:
        ratios = core_scaling()
        print("  machine: a core-local loop (256 KiB in L2) in two processes at once runs "
              + ", ".join(f"{r:.2f}x" for r in ratios)
              + f" as long as alone: two processes gain at most {2 / min(ratios):.2f}x")
    return times


# ---------------------------------------------------------------- main

def main(argv=None):
    global INCREMENTAL_PASSES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (4 blocks of 20_000 x 50; grid on 6000 x 20): a smoke "
                             "run of well under a minute")
    parser.add_argument("--store", help="zarr cache directory (default: under /tmp, named "
                                        "after the sizes)")
    parser.add_argument("--blocks", type=int, default=32)
    parser.add_argument("--rows", type=int, default=100_000, help="rows per block")
    parser.add_argument("--features", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subsample", type=int, default=200_000,
                        help="rows of the NumPy fit")
    parser.add_argument("--memory-limit", default="2GiB", help="per worker")
    parser.add_argument("--grid-rows", type=int, default=60_000)
    parser.add_argument("--grid-features", type=int, default=100)
    parser.add_argument("--grid-repeats", type=int, default=1)
    parser.add_argument("--skip-gridsearch", action="store_true")
    parser.add_argument("--skip-out-of-core", action="store_true")
    parser.add_argument("--skip-no-trim", action="store_true",
                        help="skip the search on workers without MALLOC_TRIM_THRESHOLD_")
    parser.add_argument("--skip-dask-ml-search", action="store_true",
                        help="skip the search with dask-ml's GridSearchCV")
    parser.add_argument("--skip-loky", action="store_true",
                        help="skip the reference search under joblib's loky backend and the "
                             "core-local scaling probe")
    parser.add_argument("--skip", default="",
                        help="comma-separated parts of part 1 to skip: "
                             + ", ".join([*REFERENCES, *METHODS, "subsample"]))
    parser.add_argument("--with-local-fit", action="store_true",
                        help="also time fit under dask's threaded scheduler in this process "
                             "(no cluster: the blocks are read here, not shipped from workers)")
    parser.add_argument("--incremental-passes", type=int, default=INCREMENTAL_PASSES,
                        help="passes of dask-ml's Incremental (fit, then partial_fit)")
    parser.add_argument("--skip-incremental", action="store_true",
                        help="the same as --skip incremental")
    parser.add_argument("--one-cluster", action="store_true",
                        help="one cluster for the whole run instead of a fresh one per method "
                             "(implied by --quick)")
    parser.add_argument("--no-train-score", dest="train_score", action="store_false",
                        help="do not score the fit on the training array")
    args = parser.parse_args(argv)
    if args.quick:
        args.blocks, args.rows, args.features = 4, 20_000, 50
        args.subsample, args.grid_rows, args.grid_features = 20_000, 6000, 20
        args.one_cluster = True
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if not args.with_local_fit:
        args.skip.update({"fit-local", "fit-local-no-store"})
    if args.skip_incremental:
        args.skip.add("incremental")
    INCREMENTAL_PASSES = max(1, args.incremental_passes)
    unknown = args.skip - {*REFERENCES, *METHODS, "subsample"}
    if unknown:
        parser.error(f"unknown --skip parts: {sorted(unknown)}")
    if args.store is None:
        args.store = (f"/tmp/softmax-core-bench-dask/{args.blocks}x{args.rows}x"
                      f"{args.features}-seed{args.seed}")

    from dask.utils import parse_bytes

    args.memory_limit_bytes = parse_bytes(args.memory_limit)
    machine_report()
    print(f"LocalCluster: 2 worker processes x 1 thread, memory_limit {args.memory_limit} "
          "each, " + ("one for the whole run (worker peaks include what earlier methods left)"
                      if args.one_cluster else "a fresh one for each method"))
    load_average("at the start")
    with ExitStack() as stack:
        if args.one_cluster:
            args.client = stack.enter_context(local_cluster(args))
        if not args.skip_out_of_core:
            out_of_core(args)
            load_average("after part 1")
        if not args.skip_gridsearch:
            grid_search(args)
            load_average("after part 2")


if __name__ == "__main__":
    sys.exit(main())
