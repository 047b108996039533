"""Fuzz worker for the compiled kernel entry points (``softmax_core._native.kernels``).

They are reachable from Python, so bad arguments must raise ``TypeError``,
``ValueError`` or ``IndexError``, never crash or write out of bounds.  Run in a
subprocess (a crash is then a finding, not the end of the test run)::

    python tests/fuzz_kernels.py SEED N

prints one ``CASE`` line before each call (flushed, so the last one names the
call that crashed) and one ``OK``/``RAISED``/``BAD`` line after it; exits 1 if
any call was ``BAD``.  Not a test module: ``tests/test_fuzz_errors.py`` and
``tests/fuzz_campaign.py`` run it.
"""

import sys

import numpy as np

ALLOWED = (TypeError, ValueError, IndexError)


def _array(rng, shape, dtype):
    kind = rng.integers(0, 8)
    a = rng.standard_normal(shape).astype(dtype) if np.dtype(dtype).kind == "f" else (
        rng.integers(-3, 5, size=shape).astype(dtype))
    if kind == 0 and a.ndim:
        return np.asfortranarray(a) if a.ndim > 1 else a[::-1]
    if kind == 1 and a.ndim and a.shape[-1] > 1:
        return a[..., ::2]
    if kind == 2:
        return a.tolist()
    if kind == 3:
        return None
    return a


def _float_arg(rng, shape):
    dtype = rng.choice([np.float64, np.float32, np.float64, np.float32, np.float16, np.int64])
    if rng.random() < 0.15:  # a shape that does not match
        shape = tuple(max(0, d + int(rng.integers(-1, 2))) for d in shape) or (1,)
    if rng.random() < 0.1:
        shape = shape[:-1]
    return _array(rng, shape, dtype)


def _targets(rng, m, n_classes):
    bad = rng.choice([-7, -1, n_classes, n_classes + 1, 10**9, 2**32 + 3, 2**62, -(2**40)])
    t = rng.integers(0, n_classes, size=m).astype(np.int64)
    if m and rng.random() < 0.6:
        t[rng.integers(0, m)] = bad
    if rng.random() < 0.1:
        t = t.astype(rng.choice([np.int32, np.float64, np.uint64]))
    if m and rng.random() < 0.2:
        t = t[::-1]
    return t


def _case(rng):
    """``(description, thunk, must_raise)`` for one random kernel call."""
    from softmax_core._native import kernels

    name = rng.choice(["softmax_3d", "logsumexp_3d", "softmax_backward_3d",
                       "cross_entropy_rows", "target_weight_sum", "index_range", "sgd_epoch"])
    threads = int(rng.choice([1, 2]))
    if name == "sgd_epoch":
        args, must = _epoch_case(rng, threads)
        return name, kernels.sgd_epoch, args, must
    if name in ("softmax_3d", "logsumexp_3d", "softmax_backward_3d"):
        shape = tuple(int(d) for d in rng.integers(0, 4, size=3))
        if rng.random() < 0.2:
            shape = shape[: int(rng.integers(0, 3))]
        x = _float_arg(rng, shape)
        if name == "softmax_3d":
            out = _float_arg(rng, shape)
            args = (x, out, bool(rng.integers(0, 2)), threads)
        elif name == "logsumexp_3d":
            args = (x, _float_arg(rng, shape[:1] + shape[2:]), threads)
        else:
            args = (x, _float_arg(rng, shape), _float_arg(rng, shape), bool(rng.integers(0, 2)),
                    threads)
        return name, getattr(kernels, name), args, False
    m, n_classes = int(rng.integers(0, 5)), int(rng.integers(1, 5))
    target = _targets(rng, m, n_classes)
    ignore_index = int(rng.choice([-100, 0, -7]))
    arr = np.asarray(target)
    in_range = arr.size == 0 or bool(np.all(((arr >= 0) & (arr < n_classes))
                                            | (arr == ignore_index)))
    contiguous_int64 = arr.dtype == np.int64 and arr.flags.c_contiguous
    weight = rng.uniform(0.1, 2, n_classes) if rng.random() < 0.7 else None
    if name == "index_range":
        return name, kernels.index_range, (target,), False
    if name == "target_weight_sum":
        sw = rng.uniform(0, 2, m) if rng.random() < 0.5 else None
        args = (target, weight, sw, ignore_index, threads)
        # what it indexes with must be checked: weight[y] for y != ignore_index
        must = weight is not None and m > 0 and contiguous_int64 and not in_range
        return name, kernels.target_weight_sum, args, must
    dtype = rng.choice([np.float64, np.float32])
    x = rng.standard_normal((m, n_classes)).astype(dtype)
    grad = np.empty_like(x) if rng.random() < 0.7 else None
    losses = np.empty(m, dtype) if rng.random() < 0.5 else None
    args = (x, target, weight, None, float(rng.choice([0.0, 0.1])), ignore_index, 1.0, grad,
            losses, threads)
    must = m > 0 and contiguous_int64 and not in_range
    return name, kernels.cross_entropy_rows, args, must


def _epoch_case(rng, threads):
    """Arguments of one ``sgd_epoch`` call, and whether it must raise: with
    consistent shapes (most calls) a row index, target or batch out of range."""
    dtype = rng.choice([np.float64, np.float32])
    N, K, C = int(rng.integers(0, 5)), int(rng.integers(0, 4)), int(rng.integers(1, 4))
    X = rng.standard_normal((N, K)).astype(dtype)
    use_rows = rng.random() < 0.5
    n = int(rng.integers(0, 6)) if use_rows else N
    # each index array in range 3 times in 4 (-1 and the end otherwise possible)
    off = [int(rng.random() < 0.25) for _ in range(3)]
    rows = (rng.integers(-off[0], N + off[0], n).astype(np.int64) if use_rows and N
            else np.zeros(n, np.int64) if use_rows else None)
    y = rng.integers(-off[1], C + off[1], n).astype(np.int64)
    sw = rng.uniform(0, 2, n) if rng.random() < 0.5 else None
    B = int(rng.integers(0, 4))
    if off[2] or n == 0:
        starts = rng.integers(-1, n + 1, B)
        batches = np.stack([starts, starts + rng.integers(0, 3, B)], axis=1).astype(np.int64)
    else:
        starts = rng.integers(0, n, B)
        stops = starts + 1 + rng.integers(0, n - starts)
        batches = np.stack([starts, stops], axis=1).astype(np.int64)
    intercept, mu = rng.random() < 0.7, float(rng.choice([0.0, 0.9]))
    W = np.zeros((K, C), dtype)
    b = np.zeros(C, dtype) if intercept else None
    vW = np.zeros((K, C), dtype) if mu else None
    vb = np.zeros(C, dtype) if mu and intercept else None
    offset = rng.standard_normal(K).astype(dtype) if intercept and rng.random() < 0.5 else None
    inv2 = rng.uniform(0.5, 2, K).astype(dtype) if rng.random() < 0.5 else None
    consistent = N > 0 and K > 0
    if rng.random() < 0.3:  # one argument of another shape (or missing)
        consistent = False
        which = int(rng.integers(0, 5))
        if which == 0:
            W = np.zeros((K + 1, C), dtype)
        elif which == 1:
            y = y[:-1] if n else np.zeros(1, np.int64)
        elif which == 2:
            vW = None if mu else np.zeros((K, C), dtype)
        elif which == 3:
            offset = np.zeros(K + 1, dtype)
        else:
            batches = np.zeros((B, 3), np.int64)
    bad_index = False
    if batches.ndim == 2 and batches.shape[1] == 2:
        bad_batch = (batches[:, 0] < 0) | (batches[:, 0] >= batches[:, 1]) | (batches[:, 1] > n)
        # a batch out of range, or a bad row index or target in a batch's rows
        # (rows outside every batch are not read)
        used = np.zeros(len(y), bool)
        for start, stop in batches[~bad_batch]:
            used[start:stop] = True
        bad_index = (bool(np.any(bad_batch)) or bool(np.any(used & ((y < 0) | (y >= C))))
                     or (use_rows and len(rows) == len(y)
                         and bool(np.any(used & ((rows < 0) | (rows >= N))))))
    if rng.random() < 0.1:  # not a C-contiguous float array (raises unless K or N is 1)
        consistent = False
        X = [np.asfortranarray(X[:, ::-1]), X.tolist(), X[:, ::2]][int(rng.integers(0, 3))]
    if rng.random() < 0.2:
        threads = 64
    args = (X, rows, y, sw, batches, W, b, vW, vb, offset, inv2, 0.1, mu,
            bool(rng.integers(0, 2)), 1e-3, float(rng.choice([0.0, 1e-3])), 0.0, threads)
    return args, consistent and bad_index


def _describe(name, args):
    def one(a):
        if isinstance(a, np.ndarray):
            order = "C" if a.flags.c_contiguous else ("F" if a.flags.f_contiguous else "strided")
            body = np.array2string(a, threshold=12, max_line_width=200).replace("\n", " ")
            return f"np.array({body}, dtype=np.{a.dtype.name})[{order}, shape {a.shape}]"
        return repr(a)
    return f"kernels.{name}(" + ", ".join(one(a) for a in args) + ")"


def run(seed, n, out=sys.stdout):
    """Make ``n`` random kernel calls from ``seed``; return the number of BAD calls."""
    rng = np.random.default_rng(seed)
    bad = 0
    for i in range(n):
        name, func, args, must_raise = _case(rng)
        print(f"CASE {seed}:{i} {_describe(name, args)}", file=out, flush=True)
        try:
            with np.errstate(all="ignore"):
                func(*args)
        except ALLOWED as exc:
            # sgd_epoch writes nothing before it raises: its outputs start at zero
            written = name == "sgd_epoch" and any(
                isinstance(a, np.ndarray) and np.any(a != 0) for a in args[5:9])
            if written:
                print(f"BAD raised {type(exc).__name__} after writing its outputs", file=out,
                      flush=True)
                bad += 1
                continue
            print(f"RAISED {type(exc).__name__}", file=out, flush=True)
            continue
        except Exception as exc:  # noqa: BLE001 - any other type is the finding
            print(f"BAD {type(exc).__name__}: {exc}", file=out, flush=True)
            bad += 1
            continue
        if must_raise:
            what = ("a batch, row index or target out of range" if name == "sgd_epoch"
                    else "a class index outside [0, C) that is not ignore_index")
            print(f"BAD accepted {what}", file=out, flush=True)
            bad += 1
        else:
            print("OK", file=out, flush=True)
    return bad


if __name__ == "__main__":
    sys.exit(1 if run(int(sys.argv[1]), int(sys.argv[2])) else 0)
