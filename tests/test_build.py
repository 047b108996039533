"""The compiled kernels: target selection, build information, the main job."""

import os
import subprocess
import sys

import pytest

import softmax_core
from softmax_core._build_info import build_info
from softmax_core._native import KERNEL_TARGET, available_targets


def test_selected_target_is_the_best_usable_one():
    usable = available_targets()
    assert "baseline" in usable
    assert KERNEL_TARGET == usable[0]


@pytest.mark.parametrize("target", ["baseline"])
def test_environment_variable_forces_a_target(target):
    code = "from softmax_core._native import KERNEL_TARGET; print(KERNEL_TARGET)"
    env = dict(os.environ, SOFTMAX_CORE_KERNELS=target)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == target


def test_unknown_forced_target_is_an_error():
    code = "import softmax_core"
    env = dict(os.environ, SOFTMAX_CORE_KERNELS="pentium")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "SOFTMAX_CORE_KERNELS" in out.stderr


def test_build_info_lists_numpy_and_threads():
    info = build_info()
    assert "numpy" in info["array_namespaces"]
    assert info["openmp_threads"] >= 1


def test_self_check_passes(capsys):
    from softmax_core.__main__ import self_check

    assert self_check()
    assert "MISMATCH" not in capsys.readouterr().out


def test_version():
    assert softmax_core.__version__


def test_kernels_refuse_bad_shapes_when_called_directly():
    """The private kernel modules check shapes before taking any pointer, so a
    direct call with mismatched or empty arrays raises instead of reading or
    writing out of bounds (the public functions validate earlier)."""
    import numpy as np

    from softmax_core._native import kernels as k

    x = np.ones((4, 3, 1))
    i64 = np.zeros(4, np.int64)
    bad_calls = [
        lambda: k.softmax_3d(x, np.empty((4, 2, 1)), False, 1),
        lambda: k.softmax_3d(np.ones((4, 0, 1)), np.ones((4, 0, 1)), False, 1),
        lambda: k.logsumexp_3d(x, np.empty((3, 1)), 1),
        lambda: k.logsumexp_3d(np.ones((0, 3, 1)), np.empty((0, 1)), 1),
        lambda: k.softmax_backward_3d(x, x, np.empty((4, 3, 2)), False, 1),
        lambda: k.softmax_backward_3d(np.ones((4, 2, 1)), x, x.copy(), True, 1),
        lambda: k.cross_entropy_rows(x[:, :, 0].copy(), i64[:3].copy(), None, None, 0.0,
                                     -100, 1.0, None, None, 1),
        lambda: k.cross_entropy_rows(x[:, :, 0].copy(), i64, np.ones(2), None, 0.0,
                                     -100, 1.0, None, None, 1),
        lambda: k.cross_entropy_rows(x[:, :, 0].copy(), i64, None, np.ones(5), 0.0,
                                     -100, 1.0, None, None, 1),
        lambda: k.cross_entropy_rows(x[:, :, 0].copy(), i64, None, None, 0.0,
                                     -100, 1.0, np.empty((4, 2)), None, 1),
        lambda: k.cross_entropy_rows(x[:, :, 0].copy(), i64, None, None, 0.0,
                                     -100, 1.0, None, np.empty(3), 1),
        lambda: k.target_weight_sum(np.zeros(0, np.int64), None, None, -100, 1),
        lambda: k.target_weight_sum(i64, None, np.ones(3), -100, 1),
        lambda: k.index_range(np.zeros(0, np.int64)),
    ]
    for call in bad_calls:
        with pytest.raises(ValueError, match="softmax_core kernel"):
            call()
