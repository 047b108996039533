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
