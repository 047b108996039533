"""``python -m softmax_core``: the command-line options."""

import subprocess
import sys

import pytest


def run_main(*args):
    return subprocess.run([sys.executable, "-m", "softmax_core", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_usage_and_runs_nothing(flag):
    out = run_main(flag)
    assert out.returncode == 0, out.stderr
    assert "usage" in out.stdout
    for option in ("--no-demo", "--no-self-check", "--threads"):
        assert option in out.stdout
    # the job itself did not run
    assert "self-check passed" not in out.stdout
    assert "kernel build" not in out.stdout


def test_unknown_option_is_an_argparse_error():
    out = run_main("--no-such-option")
    assert out.returncode == 2
    assert "usage" in out.stderr
    assert "unrecognized arguments: --no-such-option" in out.stderr


def test_threads_must_be_positive():
    out = run_main("--threads", "0")
    assert out.returncode == 2
    assert "--threads" in out.stderr


def test_build_info_only():
    out = run_main("--no-self-check", "--no-demo")
    assert out.returncode == 0, out.stderr
    assert "kernel build" in out.stdout
    assert "self-check" not in out.stdout


def test_self_check_without_demo_on_one_thread():
    out = run_main("--no-demo", "--threads", "1")
    assert out.returncode == 0, out.stderr
    assert "1 thread(s)" in out.stdout
    assert "self-check passed" in out.stdout
    assert "SoftmaxRegression" not in out.stdout
