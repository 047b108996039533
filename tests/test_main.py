"""``python -m softmax_core``: the command-line program.

A few runs go through a real subprocess (the ``-m`` entry point, exit codes,
stdout holding nothing but JSON); the rest call ``main(argv)`` in this
process, which saves the start-up of a new interpreter.  Every training run
uses ``--quick`` and a small problem, so the file takes seconds.
"""

import io
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from softmax_core.__main__ import main
from softmax_core._demo_data import DatasetUnavailable, load_dataset
from softmax_core._progress import _next_beat, step

MODELS = ["SoftmaxRegression", "LogisticRegression", "SGDClassifier(log_loss)"]
SMALL = ["--dataset", "synthetic", "--samples", "600", "--features", "8", "--classes", "3"]


def run_main(*args):
    return subprocess.run([sys.executable, "-m", "softmax_core", *args],
                          capture_output=True, text=True, timeout=300)


def run_in_process(capsys, *args):
    """``main(args)`` here: (exit status, stdout, stderr); argparse errors give 2."""
    try:
        status = main(list(args))
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


# ---------------------------------------------------------------- subprocess


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_usage_and_runs_nothing(flag):
    out = run_main(flag)
    assert out.returncode == 0, out.stderr
    assert "usage" in out.stdout
    for option in ("--no-demo", "--no-self-check", "--threads", "--dataset", "--quick",
                   "--json", "--samples", "--features", "--classes",
                   "{digits,mnist1d,synthetic}"):
        assert option in out.stdout
    # the job itself did not run
    assert "self-check passed" not in out.stdout
    assert "kernel build" not in out.stdout


def test_unknown_option_is_an_argparse_error():
    out = run_main("--no-such-option")
    assert out.returncode == 2
    assert "usage" in out.stderr
    assert "unrecognized arguments: --no-such-option" in out.stderr


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


def test_json_stdout_is_one_document_and_progress_goes_to_stderr():
    out = run_main("--json", "--quick", "--threads", "1", *SMALL)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)  # nothing else on stdout
    assert report["self_check"] == {"passed": True}
    assert report["threads"] == 1
    assert report["build"]["openmp_threads"] == 1
    assert [row["model"] for row in report["results"]] == MODELS
    # the human-readable output is all on stderr
    for text in ("kernel build", "self-check passed", "Epoch 1/30",
                 "fitting LogisticRegression: done in", "test accuracy"):
        assert text in out.stderr
        assert text not in out.stdout


# ---------------------------------------------------------------- in process


def test_synthetic_quick_json(capsys):
    status, out, err = run_in_process(capsys, "--json", "--quick", "--no-self-check", *SMALL)
    assert status == 0, err
    report = json.loads(out)
    assert report["quick"] is True
    assert report["self_check"] is None
    assert report["exit_status"] == 0
    dataset = report["dataset"]
    assert dataset["name"] == "synthetic"
    assert (dataset["n_train"], dataset["n_test"]) == (450, 150)  # 75/25 of 600
    assert (dataset["n_features"], dataset["n_classes"]) == (8, 3)
    rows = {row["model"]: row for row in report["results"]}
    assert list(rows) == MODELS
    for row in rows.values():
        assert 1 <= row["epochs"] <= 30  # --quick stops every model by 30 epochs
        assert row["seconds"] > 0
    # an easy three-class problem: far above chance (1/3)
    assert rows["SoftmaxRegression"]["accuracy"] > 0.8
    assert rows["LogisticRegression"]["accuracy"] > 0.8
    # per-epoch lines of SoftmaxRegression and the end line of every fit
    assert "Epoch 1/30: objective=" in err
    for name in MODELS:
        assert f"fitting {name}: done in" in err


def test_default_data_set_is_digits_and_the_table_is_printed(capsys):
    status, out, _ = run_in_process(capsys, "--quick", "--no-self-check")
    assert status == 0
    assert "digits: 1347 training and 450 test samples, 64 standardized features" in out
    table = out[out.index("model  "):].splitlines()
    assert [line.split()[0] for line in table[1:4]] == MODELS
    accuracy = float(table[1].split()[1])
    assert accuracy > 0.9  # SoftmaxRegression after 30 epochs on digits


def test_synthetic_default_size_depends_on_quick():
    quick = load_dataset("synthetic", quick=True).summary()
    assert (quick["n_train"] + quick["n_test"], quick["n_features"], quick["n_classes"]) == (
        2000, 20, 5)
    data = load_dataset("synthetic", n_samples=800, n_features=4, n_classes=4)
    assert data.X_train.shape == (600, 4) and data.X_test.shape == (200, 4)
    # standardized on the training part
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1, rtol=1e-12)


@pytest.mark.parametrize(("args", "message"), [
    (["--dataset", "digits", "--features", "3"], "only --dataset synthetic takes a size"),
    (["--samples", "100"], "only --dataset synthetic takes a size"),
    (["--dataset", "synthetic", "--features", "2", "--classes", "10"],
     "10 classes need at least 4 features"),
    (["--dataset", "synthetic", "--samples", "10", "--classes", "5"],
     "10 samples are too few for 5 classes"),
    (["--dataset", "synthetic", "--classes", "1"], "at least 2 classes"),
    (["--dataset", "synthetic", "--samples", "0"], "must be at least 1"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--dataset", "imagenet"], "invalid choice: 'imagenet'"),
])
def test_usage_errors_exit_2_with_a_message(capsys, args, message):
    status, out, err = run_in_process(capsys, *args)
    assert status == 2
    assert message in err
    assert "kernel build" not in out  # nothing ran


def test_mnist1d_without_the_package_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)  # import mnist1d raises ImportError
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    status, out, err = run_in_process(capsys, "--dataset", "mnist1d")
    assert status == 2
    assert "--dataset mnist1d is not available" in err
    assert "pip install mnist1d" in err
    assert "kernel build" not in out
    with pytest.raises(DatasetUnavailable, match="pip install mnist1d"):
        load_dataset("mnist1d")
    # --no-demo does not need the data set
    status, out, _ = run_in_process(capsys, "--dataset", "mnist1d", "--no-demo",
                                    "--no-self-check")
    assert status == 0 and "kernel build" in out


def test_mnist1d_is_generated_locally(capsys):
    pytest.importorskip("mnist1d.data")
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    status, out, err = run_in_process(capsys, "--dataset", "mnist1d", "--samples", "500",
                                      "--quick", "--json", "--no-self-check")
    assert status == 0, err
    report = json.loads(out)
    dataset = report["dataset"]
    assert dataset["name"] == "mnist1d"
    assert (dataset["n_train"], dataset["n_test"]) == (400, 100)  # the package's 80/20
    assert (dataset["n_features"], dataset["n_classes"]) == (40, 10)
    assert "generated locally" in dataset["description"]
    assert "loading the mnist1d data set: done in" in err
    # a linear model on MNIST-1D: better than chance (0.1), far from perfect
    assert 0.15 < report["results"][0]["accuracy"] < 0.8
    # mnist1d seeds NumPy's global generator; the loader puts it back
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


# ---------------------------------------------------------------- progress


def test_progress_step_prints_start_heartbeat_and_end():
    stream = io.StringIO()
    with step("waiting", interval=0.05, stream=stream):
        time.sleep(0.33)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "waiting ..."
    assert lines[-1].startswith("waiting: done in ")
    assert float(lines[-1].split()[3]) >= 0.33
    beats = [line for line in lines[1:-1] if line.startswith("  waiting: ")]
    assert 4 <= len(beats) <= 7  # about one per 0.05 s for the first five, then sparser
    assert beats == lines[1:-1]


def test_progress_step_is_silent_in_between_for_fast_work():
    stream = io.StringIO()
    with step("fast", stream=stream):
        pass
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0] == "fast ..." and "done in" in lines[1]


def test_heartbeat_schedule():
    # every interval for the first five, then every five intervals
    assert [_next_beat(t, 1.0) for t in (0.0, 0.5, 1.0, 4.2)] == [1.0, 1.0, 2.0, 5.0]
    assert [_next_beat(t, 1.0) for t in (5.0, 7.0, 10.0)] == [10.0, 10.0, 15.0]
