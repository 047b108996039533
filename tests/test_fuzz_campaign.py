"""The campaign script (``tests/fuzz_campaign.py``) records crashes and failures.

A full batch imports torch and runs pytest (tens of seconds); these tests use
its self-test crash, which happens before any import, and its report parsing.
"""

import signal

import fuzz_campaign


def test_a_crashing_batch_is_recorded_with_its_seed(monkeypatch):
    monkeypatch.setenv("FUZZ_CAMPAIGN_SELFTEST_CRASH", "1")
    result = fuzz_campaign.run_batch(1234, 2, ["tests/test_fuzz_errors.py"], timeout=120)
    assert result["crash"].startswith(f"return code {-signal.SIGSEGV}")
    assert result["calls"] == 0 and result["failures"] == []
    text = fuzz_campaign.summary([result], 2, ["tests/test_fuzz_errors.py"])
    assert "crashes / hangs   1" in text
    assert "--hypothesis-seed=1234" in text and "FUZZ_KERNEL_SEED=1234" in text


def test_main_exits_nonzero_on_a_crash(monkeypatch, capsys):
    monkeypatch.setenv("FUZZ_CAMPAIGN_SELFTEST_CRASH", "1")
    code = fuzz_campaign.main(["--calls", "5", "--max-batches", "2", "--seed", "3",
                               "--tests", "tests/test_fuzz_errors.py"])
    out = capsys.readouterr().out
    assert code == 1
    assert "batches           2" in out and "CRASH in batch seed 4" in out


def test_failure_kinds_are_read_from_hypothesis_reports():
    report = "\n".join([
        "  | ExceptionGroup: Hypothesis found 2 distinct failures. (2 sub-exceptions)",
        "    | RuntimeWarning: overflow encountered in cast",
        "    | ValueError: ndarray is not C-contiguous",
        "E           AssertionError: grad: 2 of 2 entries differ",
        "E       RuntimeWarning: overflow encountered in cast",
        "E       Failed: DID NOT RAISE any of (ValueError, TypeError)",
    ])
    assert fuzz_campaign.exception_kinds(report) == ["RuntimeWarning", "ValueError",
                                                     "AssertionError", "Failed"]
    assert fuzz_campaign.exception_kinds("nothing here") == ["failure"]
    results = [{"seed": 9, "calls": 10, "crash": None, "seconds": 1.0,
                "failures": [{"test": "test_x", "kinds": ["ValueError"], "report": ""}]}]
    text = fuzz_campaign.summary(results, 5, ["tests/test_fuzz_functions.py"])
    assert "public calls      10" in text and "ValueError" in text
    assert "FAILED batch seed 9: test_x" in text
