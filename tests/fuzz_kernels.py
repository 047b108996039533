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
                       "cross_entropy_rows", "target_weight_sum", "index_range"])
    threads = int(rng.choice([1, 2]))
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
            print(f"RAISED {type(exc).__name__}", file=out, flush=True)
            continue
        except Exception as exc:  # noqa: BLE001 - any other type is the finding
            print(f"BAD {type(exc).__name__}: {exc}", file=out, flush=True)
            bad += 1
            continue
        if must_raise:
            print("BAD accepted a class index outside [0, C) that is not ignore_index",
                  file=out, flush=True)
            bad += 1
        else:
            print("OK", file=out, flush=True)
    return bad


if __name__ == "__main__":
    sys.exit(1 if run(int(sys.argv[1]), int(sys.argv[2])) else 0)
