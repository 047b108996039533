"""The CuPy GPU path without a GPU: launch shapes, dispatch, CUDA sources.

Nothing here needs CuPy or a GPU.  The generated CUDA sources are compiled
to PTX with ``nvcc`` when one is on PATH (skipped otherwise); the kernels'
cross-entropy algebra and their online (max, sum) recurrence are checked
against torch autograd and a direct computation, transcribed in NumPy.
"""

import math
import re
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

from softmax_core import _cupy
from softmax_core._cupy import _sources
from softmax_core._cupy._dispatch import (
    MAX_COLS,
    plan_cross_entropy,
    plan_rows,
)
from softmax_core._cupy._launch import (
    MAX_THREADS,
    MIN_BLOCK_THREADS,
    WARP_MAX_COLS,
    launch_config,
    next_pow2,
    reduce_threads,
)

COLS = [1, 2, 3, 10, 31, 32, 33, 100, 1000, 1023, 1024, 1025, 2048, 4096, 4097, 32000, 32001,
        100_000]
ROWS = [1, 7, 8, 60_000]
ITEMSIZE = {"float16": 2, "float32": 4, "float64": 8}


# ---------------------------------------------------------------- launch shapes

def test_next_pow2_brute_force():
    for n in range(0, 3000):
        p = next_pow2(n)
        assert p >= max(n, 1) and p & (p - 1) == 0
        assert p == 1 or p // 2 < n


@pytest.mark.parametrize("n_cols", COLS)
@pytest.mark.parametrize("n_rows", ROWS)
@pytest.mark.parametrize("itemsize", [2, 4, 8])
@pytest.mark.parametrize("aligned", [True, False])
def test_launch_config_invariants(n_rows, n_cols, itemsize, aligned):
    cfg = launch_config(n_rows, n_cols, itemsize, aligned)
    assert cfg.threads % 32 == 0 and cfg.threads <= MAX_THREADS
    assert cfg.grid * cfg.rows_per_block >= n_rows
    assert (cfg.grid - 1) * cfg.rows_per_block < n_rows  # no empty block
    if n_cols <= WARP_MAX_COLS:
        assert cfg.kind == "warp"
        assert cfg.group <= 32 and cfg.group & (cfg.group - 1) == 0
        # the row fits the registers of its group, with less than 2x padding
        assert n_cols <= cfg.group * cfg.items < 2 * n_cols or cfg.group * cfg.items == 1
        # no group wider than the row (rows shorter than a warp share it)
        assert cfg.group <= next_pow2(n_cols)
        assert cfg.rows_per_block * cfg.group == cfg.threads
        assert cfg.vec == 1
    else:
        assert cfg.kind == "block"
        assert cfg.threads & (cfg.threads - 1) == 0
        assert MIN_BLOCK_THREADS <= cfg.threads <= MAX_THREADS
        assert cfg.group == cfg.threads and cfg.rows_per_block == 1 and cfg.grid == n_rows
        assert n_cols % cfg.vec == 0 and cfg.vec * itemsize <= 16
        if not aligned:
            assert cfg.vec == 1
        assert cfg.vec * cfg.unroll == 8  # 8 elements in flight per thread


def test_launch_config_chosen_shapes():
    # 10 classes: half-warps, 8 rows per 128-thread block
    cfg = launch_config(60_000, 10, 4)
    assert (cfg.kind, cfg.group, cfg.items, cfg.rows_per_block, cfg.grid) == \
        ("warp", 16, 1, 8, 7500)
    cfg = launch_config(4096, 1000, 4)
    assert (cfg.kind, cfg.group, cfg.items) == ("warp", 32, 32)
    cfg = launch_config(1024, 32000, 4, True)
    assert (cfg.kind, cfg.threads, cfg.vec, cfg.unroll, cfg.grid) == ("block", 1024, 4, 2, 1024)
    assert launch_config(3, 32000, 2, True).vec == 8
    assert launch_config(3, 32000, 8, True).vec == 2
    assert launch_config(3, 32001, 4, True).vec == 1  # rows not 16-byte aligned
    assert launch_config(3, 32002, 4, True).vec == 1
    assert launch_config(3, 2000, 4, True).threads == 256
    # the key is what the kernel is compiled for: same key, same kernel
    assert launch_config(5, 10, 4).key == launch_config(70_000, 9, 4).key
    assert launch_config(5, 10, 4).key != launch_config(5, 17, 4).key


@pytest.mark.parametrize("args", [(0, 10, 4), (10, 0, 4), (10, 10, 3)])
def test_launch_config_rejects_bad_shapes(args):
    with pytest.raises(ValueError, match="n_rows|itemsize"):
        launch_config(*args)


def test_reduce_threads():
    assert reduce_threads(1) == 32
    assert reduce_threads(100) == 128
    assert reduce_threads(10**6) == 1024


# ---------------------------------------------------------------- dispatch

@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("shape,axes,rows,cols,reduced", [
    ((5, 10), (1,), 5, 10, (5,)),
    ((7,), (0,), 1, 7, ()),
    ((2, 3, 40), (2,), 6, 40, (2, 3)),
    ((2, 3, 40), (1, 2), 2, 120, (2,)),
    ((2, 3, 40), (2, 1), 2, 120, (2,)),
    ((2, 3, 4), (0, 1, 2), 1, 24, ()),
    ((3, 5000), (1,), 3, 5000, (3,)),
])
def test_plan_rows_covers_trailing_axes(dtype, shape, axes, rows, cols, reduced):
    plan = plan_rows(shape, axes, dtype, c_contiguous=True, aligned=True)
    assert plan is not None
    assert (plan.n_rows, plan.n_cols, plan.reduced_shape, plan.dtype) == \
        (rows, cols, reduced, dtype)
    assert plan.config == launch_config(rows, cols, ITEMSIZE[dtype], True)


@pytest.mark.parametrize("shape,axes,dtype,contig", [
    ((5, 10), (0,), "float32", True),  # not the last axis
    ((3, 4, 5), (0, 2), "float32", True),  # not trailing
    ((2, 3, 4, 5), (1,), "float64", True),
    ((5, 10), (1,), "float32", False),  # strided view
    ((0, 10), (1,), "float32", True),  # empty
    ((5, 0), (1,), "float32", True),
    ((), (0,), "float32", True),  # 0-d
    ((5, 10), (), "float32", True),  # nothing to reduce
    ((5, 10), (1,), "int64", True),
    ((5, 10), (1,), "complex64", True),
    ((5, 10), (1,), "bool", True),
    ((2, MAX_COLS + 1), (1,), "float32", True),
])
def test_plan_rows_falls_back(shape, axes, dtype, contig):
    assert plan_rows(shape, axes, dtype, c_contiguous=contig, aligned=True) is None


def test_plan_rows_accepts_numpy_dtypes():
    assert plan_rows((2, 3), (1,), np.dtype(np.float32), c_contiguous=True,
                     aligned=False).dtype == "float32"
    assert plan_rows((2, 3), (1,), np.dtype(np.float32), c_contiguous=True,
                     aligned=False).config.vec == 1


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("has_weight", [False, True])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_plan_cross_entropy_covers(reduction, has_weight, eps):
    plan = plan_cross_entropy((64, 1000), "float32", c_contiguous=True, aligned=True,
                              reduction=reduction, has_weight=has_weight, label_smoothing=eps)
    assert plan is not None and plan.acc_dtype == "float32"
    assert plan.use_denom == (reduction == "mean")
    # the prepare kernel runs for the mean's denominator, or for sum(weight)
    # when smoothing needs it; otherwise the launch is skipped
    assert plan.needs_stats == (reduction == "mean" or (has_weight and eps != 0))
    assert plan.config == launch_config(64, 1000, 4, True)
    assert plan_cross_entropy((4, 3), "float16", c_contiguous=True, aligned=True,
                              reduction=reduction, has_weight=has_weight,
                              label_smoothing=eps).acc_dtype == "float32"


@pytest.mark.parametrize("shape,dtype,contig,reduction,eps", [
    ((10,), "float32", True, "mean", 0.0),  # (C,) logits
    ((4, 3, 5), "float32", True, "mean", 0.0),  # K-dimensional
    ((4, 3), "float32", False, "mean", 0.0),
    ((0, 3), "float32", True, "mean", 0.0),
    ((4, 0), "float32", True, "sum", 0.0),
    ((4, 3), "int32", True, "mean", 0.0),
    ((4, 3), "float32", True, "average", 0.0),
    ((4, 3), "float32", True, "mean", 1.5),
])
def test_plan_cross_entropy_falls_back(shape, dtype, contig, reduction, eps):
    assert plan_cross_entropy(shape, dtype, c_contiguous=contig, aligned=True,
                              reduction=reduction, has_weight=False,
                              label_smoothing=eps) is None


def _fake(shape, dtype="float32", contiguous=True, ptr=256):
    """Just enough of a CuPy array for the hooks' dispatch decisions."""
    return types.SimpleNamespace(shape=shape, dtype=np.dtype(dtype),
                                 flags=types.SimpleNamespace(c_contiguous=contiguous),
                                 data=types.SimpleNamespace(ptr=ptr))


def test_hooks_fall_back_without_touching_cupy():
    code = """
import sys, types
import numpy as np
import softmax_core
from softmax_core import _cupy

def fake(shape, dtype="float32", contiguous=True):
    return types.SimpleNamespace(shape=shape, dtype=np.dtype(dtype),
        flags=types.SimpleNamespace(c_contiguous=contiguous), data=types.SimpleNamespace(ptr=0))

assert _cupy.softmax(fake((5, 10)), (0,), log=False) is None
assert _cupy.softmax(fake((5, 10), contiguous=False), (1,), log=True) is None
assert _cupy.logsumexp(fake((5, 10), "int64"), (1,)) is None
assert _cupy.cross_entropy_with_grad(fake((5, 10, 2)), fake((5,), "int64"), weight=None,
    ignore_index=-100, reduction="mean", label_smoothing=0.0, sample_weight=None) is None
assert "cupy" not in sys.modules and "softmax_core._cupy._kernels" not in sys.modules
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_kernels_module_imports_without_cupy():
    import importlib.util

    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed")
    from softmax_core._cupy import _kernels  # e.g. for pytest --doctest-modules

    plan = plan_rows((2, 3), (1,), "float32", c_contiguous=True, aligned=True)
    with pytest.raises(ImportError, match="cupy"):
        _kernels.run_rows(np.zeros((2, 3), np.float32), plan, "softmax")


@pytest.mark.parametrize("target,weight,sample_weight", [
    ((5,), (3,), (4,)),  # sample_weight of the wrong length
    ((5,), (4,), None),  # weight of the wrong length
    ((6,), None, None),  # target of the wrong length
    ((5, 1), None, None),
])
def test_cross_entropy_hook_falls_back_on_shape_mismatch(target, weight, sample_weight):
    res = _cupy.cross_entropy_with_grad(
        _fake((5, 3)), _fake(target, "int64"),
        weight=None if weight is None else _fake(weight),
        ignore_index=-100, reduction="mean", label_smoothing=0.0,
        sample_weight=None if sample_weight is None else _fake(sample_weight))
    assert res is None


# ---------------------------------------------------------------- sources

def _keys():
    """Every distinct compiled configuration over a spread of shapes and layouts."""
    keys = {}
    for dtype, itemsize in ITEMSIZE.items():
        found = set()
        for n_cols in COLS + [2**k for k in range(11)]:
            for aligned in (True, False):
                found.add(launch_config(4, n_cols, itemsize, aligned).key)
        keys[dtype] = sorted(found)
    return keys


KEYS = _keys()


def _all_kernels(dtype):
    kernels = [(family, key) for family in ("softmax", "cross_entropy") for key in KEYS[dtype]]
    kernels += [(family, ("single", t)) for family in ("ce_prepare", "loss_sum")
                for t in (32, 128, 1024)]
    return kernels


@pytest.mark.parametrize("dtype", list(ITEMSIZE))
def test_module_source_structure(dtype):
    kernels = _all_kernels(dtype)
    src = _sources.module_source(dtype, kernels)
    names = [_sources.kernel_name(f, dtype, k) for f, k in kernels]
    assert len(set(names)) == len(names)
    for name in names:
        assert src.count(f"\n{name}(") == 1
    assert src.count('extern "C" __global__') == len(kernels)
    assert "#include" not in src  # NVRTC has no headers to offer
    assert src.count("typedef") >= 2 and f"{dtype} storage" in src
    if dtype == "float16":
        assert "cvt.f32.f16" in src and "typedef float acc_t;" in src
    elif dtype == "float32":
        assert "typedef float scalar_t;" in src and "#define SC_EXP expf" in src
    else:
        assert "typedef double acc_t;" in src and "#define SC_EXP exp\n" in src
    assert _sources.kernel_source("softmax", dtype, KEYS[dtype][0]) == \
        _sources.module_source(dtype, [("softmax", KEYS[dtype][0])])


def test_kernel_names():
    assert _sources.kernel_name("softmax", "float32", ("warp", 128, 16, 1)) == \
        "sc_softmax_f32_warp_t128_g16_i1"
    assert _sources.kernel_name("cross_entropy", "float16", ("block", 1024, 8, 1)) == \
        "sc_cross_entropy_f16_block_t1024_v8_u1"
    assert _sources.kernel_name("ce_prepare", np.dtype("float64"), ("single", 256)) == \
        "sc_ce_prepare_f64_single_t256"


@pytest.mark.parametrize("family,dtype,key,match", [
    ("softmax", "int32", ("warp", 128, 16, 1), "dtype"),
    ("softplus", "float32", ("warp", 128, 16, 1), "family"),
    ("softmax", "float32", ("single", 128), "kind"),
    ("ce_prepare", "float32", ("warp", 128, 16, 1), "kind"),
    ("softmax", "float32", ("warp", 128, 64, 1), "warp launch key"),
    ("softmax", "float32", ("warp", 128, 12, 1), "warp launch key"),
    ("softmax", "float32", ("block", 2048, 4, 2), "threads"),
    ("softmax", "float32", ("block", 1024, 4), "malformed"),
    ("loss_sum", "float32", ("single", 0), "malformed"),
])
def test_sources_reject_bad_requests(family, dtype, key, match):
    with pytest.raises(ValueError, match=match):
        _sources.kernel_source(family, dtype, key)


NVCC = shutil.which("nvcc")


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")
def test_sources_compile_with_nvcc(tmp_path):
    """Every configuration launch_config can choose compiles, for every dtype."""
    jobs = {}
    for dtype in ITEMSIZE:  # one nvcc per dtype, run side by side
        kernels = _all_kernels(dtype)
        cu = tmp_path / f"{dtype}.cu"
        ptx = tmp_path / f"{dtype}.ptx"
        cu.write_text(_sources.module_source(dtype, kernels))
        # sm_75 is the oldest architecture current toolkits target
        cmd = [NVCC, "--ptx", "-arch=sm_75", "--Werror", "all-warnings", "-o", str(ptx),
               str(cu)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        jobs[dtype] = (proc, ptx, kernels)
    for dtype, (proc, ptx, kernels) in jobs.items():
        _, err = proc.communicate()
        assert proc.returncode == 0, f"{dtype}: {err}"
        text = ptx.read_text()
        for family, key in kernels:
            assert f".entry {_sources.kernel_name(family, dtype, key)}(" in text


# ---------------------------------------------------------------- kernel math in NumPy

def _online_stats(row, chunk):
    """Pass 1 of the block kernel in NumPy: chunks merged into an online (max, sum)."""
    m, s = -np.inf, 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        for i in range(0, len(row), chunk):
            v = np.concatenate([row[i:i + chunk], np.full(max(0, i + chunk - len(row)), -np.inf)])
            cm = m
            for x in v:  # sc_nanmax
                cm = cm if (cm != cm or cm > x) else x
            if cm != -np.inf:
                s = s * np.exp(m - cm) + np.exp(v - cm).sum()
                m = cm
    return m, s


def _merge(a, b):
    """sc_ms_merge."""
    (m, s), (m2, s2) = a, b
    mm = m if (m != m or m > m2) else m2
    with np.errstate(invalid="ignore"):
        s = s + s2 if mm == -np.inf else s * np.exp(m - mm) + s2 * np.exp(m2 - mm)
    return mm, s


ROWS_SPECIAL = [
    [1.0, 2.0, 3.0, -4.0, 0.5],
    [-np.inf] * 5,
    [-np.inf, 0.0, 0.0, -np.inf, 1.0],
    [np.inf, 1.0, 2.0, 3.0, 4.0],
    [1.0, 2.0, np.inf, 3.0, np.inf],
    [1.0, np.nan, 2.0, 3.0, 4.0],
    [-np.inf, -np.inf, np.nan, -np.inf, -np.inf],
    [1e4, -1e4, 3.0, 1e4, 0.0],
]


@pytest.mark.parametrize("row", ROWS_SPECIAL)
@pytest.mark.parametrize("chunk", [1, 2, 8])
@pytest.mark.parametrize("split", [0, 1, 3])
def test_online_recurrence_matches_direct(row, chunk, split):
    scipy_special = pytest.importorskip("scipy.special")
    row = np.array(row)
    # two "threads" over the two halves, then merged as in the tree reduction
    m, s = _merge(_online_stats(row[:split], chunk), _online_stats(row[split:], chunk))
    with np.errstate(invalid="ignore", divide="ignore"):
        lse = m if np.isinf(m) else m + np.log(s)
        softmax = np.exp(row - m) / s  # pass 2 of the block kernel
        log_softmax = (row - m) - np.log(s)
    np.testing.assert_equal(m, np.max(row))
    np.testing.assert_allclose(lse, scipy_special.logsumexp(row), rtol=1e-15)
    # the CPU kernels' rule: +inf, NaN or only -inf poison the whole row
    poisoned = np.isnan(row).any() or np.isposinf(row).any() or np.all(row == -np.inf)
    if poisoned:
        assert np.all(np.isnan(softmax)) and np.all(np.isnan(log_softmax))
    else:
        np.testing.assert_allclose(softmax, scipy_special.softmax(row), rtol=1e-15)
        np.testing.assert_allclose(log_softmax, scipy_special.log_softmax(row), rtol=1e-15)


def _ref_prepare(y, weight, sample_weight, ignore_index, n_cols):
    """sc_ce_prepare: [sum of sample_weight * w[y] over non-ignored rows, sum(w) or C]."""
    w = np.ones(n_cols) if weight is None else weight
    sw = np.ones(len(y)) if sample_weight is None else sample_weight
    live = y != ignore_index
    d = np.sum(np.where(live, w[np.where(live, y, 0)] * sw, 0.0))
    return np.array([d, n_cols if weight is None else w.sum()])


def _ref_ce_rows(z, y, weight, sample_weight, stats, ignore_index, eps, use_denom):
    """sc_ce_warp / sc_ce_block: (gradient, per-row loss) of every row, in float64."""
    n, c = z.shape
    w = np.ones(c) if weight is None else weight
    sw = np.ones(n) if sample_weight is None else sample_weight
    live = y != ignore_index
    ys = np.where(live, y, 0)
    m = z.max(axis=1, keepdims=True)
    d = z - m
    e = np.exp(d)
    s = e.sum(axis=1, keepdims=True)
    ls = np.log(s)[:, 0]
    sd = (w * d).sum(axis=1)
    wy = w[ys]
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = sw / stats[0] if use_denom else sw
    w_all = stats[1] if (weight is not None and eps != 0) else c
    epsc = eps / c
    a = (1 - eps) * wy + epsc * w_all
    g = e / s * a[:, None] - epsc * w[None, :]
    g[np.arange(n), ys] -= (1 - eps) * wy
    grad = np.where(live[:, None], scale[:, None] * g, 0.0)
    loss = (1 - eps) * wy * (ls - d[np.arange(n), ys])
    if eps != 0:
        loss = loss - epsc * (sd - w_all * ls)
    return grad, np.where(live, sw * loss, 0.0)


def _ref_loss_sum(row_loss, stats, use_denom):
    """sc_loss_sum."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return row_loss.sum() / (stats[0] if use_denom else 1.0)


def _kernel_cross_entropy(z, y, weight, sample_weight, ignore_index, reduction, eps):
    """What sc_ce_prepare + sc_ce_warp/sc_ce_block + sc_loss_sum compute, in float64."""
    stats = _ref_prepare(y, weight, sample_weight, ignore_index, z.shape[1])
    use_denom = reduction == "mean"
    grad, row_loss = _ref_ce_rows(z, y, weight, sample_weight, stats, ignore_index, eps,
                                  use_denom)
    if reduction == "none":
        return row_loss, grad
    return _ref_loss_sum(row_loss, stats, use_denom), grad


def torch_cross_entropy(torch, z, y, weight, sample_weight, ignore_index, reduction, eps,
                        device="cpu"):
    """Oracle: torch autograd of F.cross_entropy (sample_weight by its definition).

    NumPy in, NumPy out; also used by the GPU tests (``device="cuda"``).
    """
    F = torch.nn.functional
    zt = torch.tensor(z, device=device, requires_grad=True)
    yt = torch.tensor(y, device=device)
    wt = None if weight is None else torch.tensor(weight, device=device)
    if sample_weight is None:
        loss = F.cross_entropy(zt, yt, weight=wt, ignore_index=ignore_index,
                               reduction=reduction, label_smoothing=eps)
    else:
        per_row = F.cross_entropy(zt, yt, weight=wt, ignore_index=ignore_index,
                                  reduction="none", label_smoothing=eps)
        swt = torch.tensor(sample_weight, device=device, dtype=per_row.dtype)
        per_row = per_row * swt
        if reduction == "none":
            loss = per_row
        else:
            loss = per_row.sum()
            if reduction == "mean":
                live = yt != ignore_index
                wy = torch.ones(len(y), dtype=swt.dtype, device=device) if wt is None else \
                    wt[torch.where(live, yt, 0)].to(swt.dtype)
                loss = loss / (swt * wy)[live].sum()
    loss.sum().backward()
    return loss.detach().cpu().numpy(), zt.grad.cpu().numpy()


def ce_problem(shape, ignore, use_weight, use_sample_weight, dtype=np.float64, seed=0,
               scale=4.0):
    """Logits, targets, class and sample weights (weights in ``dtype``, as torch wants),
    with no, some or all targets equal to ``ignore_index`` (3)."""
    rng = np.random.default_rng(seed)
    n, c = shape
    ignore_index = 3
    z = rng.standard_normal(shape) * scale
    y = rng.integers(0, c, n)
    if ignore == "none":
        y[y == ignore_index] = 0
    elif ignore == "some":
        y[::3] = ignore_index
    else:
        y[:] = ignore_index
    weight = rng.uniform(0.1, 2.0, c).astype(dtype) if use_weight else None
    sample_weight = rng.uniform(0.0, 3.0, n).astype(dtype) if use_sample_weight else None
    return z.astype(dtype), y, weight, sample_weight, ignore_index


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("use_weight", [False, True])
@pytest.mark.parametrize("ignore", ["none", "some", "all"])
@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("use_sample_weight", [False, True])
def test_kernel_cross_entropy_algebra_matches_torch(reduction, use_weight, ignore, eps,
                                                    use_sample_weight):
    torch = pytest.importorskip("torch")
    z, y, weight, sample_weight, ignore_index = ce_problem((12, 7), ignore, use_weight,
                                                           use_sample_weight, scale=5)
    loss, grad = _kernel_cross_entropy(z, y, weight, sample_weight, ignore_index, reduction, eps)
    t_loss, t_grad = torch_cross_entropy(torch, z, y, weight, sample_weight, ignore_index,
                                          reduction, eps)
    np.testing.assert_allclose(loss, t_loss, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-12, atol=1e-14)
    if ignore == "all" and reduction == "mean":
        assert math.isnan(float(loss)) and np.all(grad == 0)


def test_kernel_cross_entropy_algebra_extreme_logits():
    torch = pytest.importorskip("torch")
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4 - 1.0]])
    y = np.array([1, 2])
    for eps in (0.0, 0.2):
        loss, grad = _kernel_cross_entropy(z, y, None, None, -100, "none", eps)
        t_loss, t_grad = torch_cross_entropy(torch, z, y, None, None, -100, "none", eps)
        assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
        np.testing.assert_allclose(loss, t_loss, rtol=1e-12)
        np.testing.assert_allclose(grad, t_grad, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- launch glue, stand-in CuPy

_SHORT = {"f16": ("float16", np.float32), "f32": ("float32", np.float32),
          "f64": ("float64", np.float64)}


def _c_params(code, name):
    """[(C type, name), ...] of kernel ``name`` as declared in the generated source."""
    found = re.search("\n" + re.escape(name) + r"\(([^)]*)\)", code)
    assert found, name
    params = []
    for p in found.group(1).split(","):
        ctype, pname = " ".join(p.replace("__restrict__", "").replace("const ", "").split()) \
            .rsplit(" ", 1)
        params.append((ctype, pname))
    return params


class _StandInKernel:
    """Checks a launch's arguments against the kernel's C signature, then runs the
    NumPy transcription of the kernel on them."""

    def __init__(self, name, params, launches):
        family, short, kind, tail = re.fullmatch(
            r"sc_(\w+?)_(f16|f32|f64)_(warp|block|single)_(\w+)", name).groups()
        self.name, self.family, self.kind, self.params = name, family, kind, params
        self.launches = launches
        self.dtype, self.acc = np.dtype(_SHORT[short][0]), np.dtype(_SHORT[short][1])
        self.knobs = {k[0]: int(k[1:]) for k in tail.split("_")}

    def _check(self, ctype, value):
        if ctype.endswith("*"):
            if isinstance(value, np.uint64):
                assert value == 0
                return None
            pointee = {"scalar_t*": self.dtype, "acc_t*": self.acc,
                       "long long*": np.dtype(np.int64)}[ctype]
            assert isinstance(value, np.ndarray) and value.dtype == pointee, (ctype, value)
            assert value.flags.c_contiguous
            return value
        expected = {"long long": np.int64, "int": np.int32, "acc_t": self.acc.type}[ctype]
        assert type(value) is expected, (ctype, type(value))
        return value

    def __call__(self, grid, block, args):
        assert len(args) == len(self.params), self.name
        a = {pname: self._check(ctype, v) for (ctype, pname), v in zip(self.params, args,
                                                                       strict=True)}
        assert block == (self.knobs["t"],) and len(grid) == 1
        self.launches.append(self.family)
        getattr(self, "_" + self.family)(grid[0], a)

    def _rows_covered(self, grid, n_rows):
        per_block = self.knobs["t"] // self.knobs["g"] if self.kind == "warp" else 1
        assert grid * per_block >= n_rows > (grid - 1) * per_block

    def _softmax(self, grid, a):
        scipy_special = pytest.importorskip("scipy.special")
        n, c = int(a["n_rows"]), int(a["n_cols"])
        self._rows_covered(grid, n)
        x = a["x"].reshape(n, c).astype(np.float64)
        fn = [scipy_special.softmax, scipy_special.log_softmax, scipy_special.logsumexp]
        res = fn[int(a["mode"])](x, axis=1)
        a["y"].reshape(res.shape)[...] = res

    def _ce_prepare(self, grid, a):
        assert grid == 1
        a["stats"][...] = _ref_prepare(a["target"], a["weight"], a["sample_weight"],
                                       int(a["ignore_index"]), int(a["n_cols"]))

    def _cross_entropy(self, grid, a):
        n, c = int(a["n_rows"]), int(a["n_cols"])
        self._rows_covered(grid, n)
        eps, use_denom = float(a["eps"]), bool(a["use_denom"])
        stats = a["stats"]
        if stats is None:  # then the kernel must never read it
            assert not use_denom and (a["weight"] is None or eps == 0)
            stats = np.full(2, np.nan)
        grad, row_loss = _ref_ce_rows(a["x"].reshape(n, c).astype(np.float64), a["target"],
                                      a["weight"], a["sample_weight"], stats.astype(np.float64),
                                      int(a["ignore_index"]), eps, use_denom)
        a["grad"][...] = grad
        a["row_loss"][...] = row_loss

    def _loss_sum(self, grid, a):
        assert grid == 1
        stats = np.full(2, np.nan) if a["stats"] is None else a["stats"]
        a["out"][...] = _ref_loss_sum(a["row_loss"], stats, bool(a["use_denom"]))


@pytest.fixture
def stand_in(monkeypatch):
    """``_kernels`` imported against a stand-in ``cupy`` (NumPy arrays, recorded launches)."""
    import importlib.util

    import softmax_core._cupy as package

    launches, modules = [], []

    class RawModule:
        def __init__(self, code):
            modules.append(code)
            self.code = code

        def get_function(self, name):
            return _StandInKernel(name, _c_params(self.code, name), launches)

    fake = types.ModuleType("cupy")
    fake.empty, fake.asarray, fake.ascontiguousarray = np.empty, np.asarray, np.ascontiguousarray
    fake.int64 = np.int64
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDevice=lambda: 0))
    fake.RawModule = RawModule
    monkeypatch.setitem(sys.modules, "cupy", fake)
    name = "softmax_core._cupy._kernels"
    spec = importlib.util.spec_from_file_location(name, package.__path__[0] + "/_kernels.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return types.SimpleNamespace(kernels=module, launches=launches, modules=modules)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("shape,axes", [((7, 10), (1,)), ((3, 1000), (1,)), ((2, 3, 700), (1, 2)),
                                        ((3, 5000), (1,)), ((2, 4097), (1,)), ((11,), (0,))])
@pytest.mark.parametrize("mode", ["softmax", "log_softmax", "logsumexp"])
def test_run_rows_launch_glue(stand_in, dtype, shape, axes, mode):
    scipy_special = pytest.importorskip("scipy.special")
    x = (np.random.default_rng(0).standard_normal(shape) * 5).astype(dtype)
    plan = plan_rows(x.shape, axes, x.dtype, c_contiguous=True, aligned=True)
    out = stand_in.kernels.run_rows(x, plan, mode)
    assert stand_in.launches == ["softmax"]
    ref = getattr(scipy_special, mode)(x.astype(np.float64), axis=axes)
    assert out.dtype == x.dtype and out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-3 if dtype == "float16" else 1e-6, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("use_weight", [False, True])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("use_sample_weight", [False, True])
@pytest.mark.parametrize("shape", [(30, 10), (6, 3000)])
def test_run_cross_entropy_launch_glue(stand_in, reduction, use_weight, eps, use_sample_weight,
                                       shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    n, c = shape
    z = rng.standard_normal(shape) * 3
    y = rng.integers(0, c, n)
    y[::4] = -100
    weight = rng.uniform(0.1, 2.0, c) if use_weight else None
    sample_weight = rng.uniform(0.0, 3.0, n) if use_sample_weight else None
    plan = plan_cross_entropy(shape, "float64", c_contiguous=True, aligned=True,
                              reduction=reduction, has_weight=use_weight, label_smoothing=eps)
    # float32 class/sample weights are converted to the accumulation dtype
    loss, grad = stand_in.kernels.run_cross_entropy(
        z, y.astype(np.int32), plan, weight=None if weight is None else weight.astype(np.float32),
        sample_weight=sample_weight, ignore_index=-100, label_smoothing=eps)
    expected = (["ce_prepare"] if plan.needs_stats else []) + ["cross_entropy"] + \
        ([] if reduction == "none" else ["loss_sum"])
    assert stand_in.launches == expected
    weight = None if weight is None else weight.astype(np.float32).astype(np.float64)
    t_loss, t_grad = torch_cross_entropy(torch, z, y, weight, sample_weight, -100, reduction, eps)
    assert loss.shape == t_loss.shape and loss.dtype == grad.dtype == np.float64
    np.testing.assert_allclose(loss, t_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-12, atol=1e-15)


def test_run_cross_entropy_float16_outputs(stand_in):
    z = np.random.default_rng(2).standard_normal((5, 7)).astype(np.float16)
    y = np.array([0, 1, 2, 3, 4])
    for reduction in ("mean", "none"):
        plan = plan_cross_entropy(z.shape, "float16", c_contiguous=True, aligned=True,
                                  reduction=reduction, has_weight=False, label_smoothing=0.0)
        loss, grad = stand_in.kernels.run_cross_entropy(z, y, plan, weight=None,
                                                        sample_weight=None, ignore_index=-100,
                                                        label_smoothing=0.0)
        assert loss.dtype == grad.dtype == np.float16
        assert loss.shape == ((5,) if reduction == "none" else ())


def test_kernels_compile_once_per_configuration(stand_in):
    x = np.ones((4, 10), np.float32)
    plan = plan_rows(x.shape, (1,), x.dtype, c_contiguous=True, aligned=True)
    for mode in ("softmax", "log_softmax", "logsumexp", "softmax"):
        stand_in.kernels.run_rows(x, plan, mode)
    y = np.ones((9, 17), np.float32)
    stand_in.kernels.run_rows(y, plan_rows(y.shape, (1,), y.dtype, c_contiguous=True,
                                           aligned=True), "softmax")
    assert len(stand_in.modules) == 2  # one per launch shape, not per call or mode
