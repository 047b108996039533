"""Long fuzz campaign: the fuzz suite (``tests/test_fuzz_*.py``) in batches, each
batch a subprocess with its own hypothesis seed, until N public calls are made.

Usage (from the repository root, with the test extra installed)::

    python tests/fuzz_campaign.py                   # 100,000 calls, 1 batch at a time
    python tests/fuzz_campaign.py --calls 1e6 --jobs 2 --examples 500 --seed 7
    python tests/fuzz_campaign.py --calls 2000 --tests tests/test_fuzz_losses.py

Each batch runs ``pytest`` on the fuzz files under the hypothesis profile
"campaign" (random data, no example database, ``--examples`` examples per unit
of a test's weight) with ``--hypothesis-seed=SEED`` (and the kernel worker
``tests/fuzz_kernels.py`` seeded with SEED).  A batch that fails prints
hypothesis' shrunk falsifying example; a batch that crashes (a signal, e.g. a
segfault) or hangs (``--timeout``) is recorded with its seed, and the campaign
goes on.  At the end a table gives the calls made, the failures by test and
exception type, and every crash with the command that reproduces it (the same
seed gives the same examples).  The exit status is 1 if anything failed or
crashed, else 0.

Not a test module (no ``test_`` prefix): pytest's ``--doctest-modules`` only
imports it, which runs nothing.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FUZZ_FILES = ["test_fuzz_functions.py", "test_fuzz_array_api.py", "test_fuzz_losses.py",
              "test_fuzz_errors.py"]
_EXC = re.compile(r"^(?:E\s+|\s*\|\s+)?((?:[A-Za-z_][\w.]*)?(?:Error|Warning|Exception|Exit)"
                  r"|Failed)(?::\s*(.*))?$")  # Failed: pytest.raises' "DID NOT RAISE"


def _env(seed, examples):
    env = dict(os.environ, HYPOTHESIS_PROFILE="campaign", FUZZ_EXAMPLES=str(examples),
               FUZZ_KERNEL_SEED=str(seed))
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def reproducer(seed, examples, tests):
    return (f"HYPOTHESIS_PROFILE=campaign FUZZ_EXAMPLES={examples} FUZZ_KERNEL_SEED={seed} "
            f"python -m pytest -p no:cacheprovider -o addopts= --hypothesis-seed={seed} "
            + " ".join(tests))


def exception_kinds(text):
    """The distinct exception types a failure report names, in order."""
    kinds = []
    for line in text.splitlines():
        m = _EXC.match(line)
        if m and m.group(1) not in kinds and "ExceptionGroup" not in m.group(1):
            kinds.append(m.group(1))
    return kinds or ["failure"]


# ------------------------------------------------------------------------ worker

def worker(seed, tests, report):
    """Run one batch in this process; write ``{calls, failures, exit}`` to ``report``."""
    if os.environ.get("FUZZ_CAMPAIGN_SELFTEST_CRASH"):
        import signal

        os.kill(os.getpid(), signal.SIGSEGV)  # a crash, to test the recording of crashes
    sys.path.insert(0, HERE)
    import fuzz_strategies
    import pytest

    failures = []

    class Recorder:
        def pytest_runtest_logreport(self, report):
            if report.failed:
                text = report.longreprtext
                failures.append({"test": report.nodeid.split("::", 1)[-1],
                                 "kinds": exception_kinds(text), "report": text[-6000:]})

    code = pytest.main(["-q", "-p", "no:cacheprovider", "-o", "addopts=",
                        f"--hypothesis-seed={seed}", *tests], plugins=[Recorder()])
    with open(report, "w") as f:
        json.dump({"calls": fuzz_strategies.CALLS["count"], "failures": failures,
                   "exit": int(code)}, f)


# ------------------------------------------------------------------------ driver

def run_batch(seed, examples, tests, timeout):
    """One batch in a subprocess: a dict with seed, calls, failures, crash, seconds."""
    fd, report = tempfile.mkstemp(suffix=".json", prefix="fuzz-batch-")
    os.close(fd)
    os.unlink(report)
    start = time.monotonic()
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--seed", str(seed),
           "--report", report, "--tests", *tests]
    crash = None
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=_env(seed, examples), capture_output=True,
                              text=True, timeout=timeout)
        if proc.returncode < 0 or not os.path.exists(report):
            crash = f"return code {proc.returncode}\n{proc.stderr[-3000:]}"
        output = proc.stdout
    except subprocess.TimeoutExpired as exc:
        crash = f"hang: no result after {timeout} s"
        output = exc.stdout or ""
    result = {"seed": seed, "calls": 0, "failures": [], "crash": crash,
              "seconds": time.monotonic() - start, "output": output[-4000:]}
    if crash is None:
        with open(report) as f:
            data = json.load(f)
        os.unlink(report)
        result["calls"] = data["calls"]
        result["failures"] = data["failures"]
        if data["exit"] not in (0, 1) and not data["failures"]:  # usage or internal error
            result["crash"] = f"pytest exit status {data['exit']}\n{output[-3000:]}"
    return result


def _append_log(path, result):
    with open(path, "a") as f:
        for fail in result["failures"]:
            f.write(f"=== seed {result['seed']} {fail['test']}\n{fail['report']}\n")
        if result["crash"]:
            f.write(f"=== seed {result['seed']} CRASH\n{result['crash']}\n")


def summary(results, examples, tests):
    lines = []
    calls = sum(r["calls"] for r in results)
    n_fail = sum(len(r["failures"]) for r in results)
    crashes = [r for r in results if r["crash"]]
    seconds = sum(r["seconds"] for r in results)
    lines.append("fuzz campaign summary")
    lines.append(f"  batches           {len(results)}")
    lines.append(f"  public calls      {calls}")
    lines.append(f"  batch time        {seconds:.0f} s")
    lines.append(f"  failing tests     {n_fail}")
    lines.append(f"  crashes / hangs   {len(crashes)}")
    by_kind = {}
    for r in results:
        for f in r["failures"]:
            for kind in f["kinds"]:
                by_kind.setdefault((f["test"], kind), []).append(r["seed"])
    if by_kind:
        lines.append("")
        lines.append(f"  {'test':<62} {'exception':<28} {'batches':>7}  seeds")
        for (test, kind), seeds in sorted(by_kind.items()):
            shown = ", ".join(str(s) for s in seeds[:5]) + (" ..." if len(seeds) > 5 else "")
            lines.append(f"  {test:<62} {kind:<28} {len(seeds):>7}  {shown}")
    for r in crashes:
        lines.append("")
        lines.append(f"  CRASH in batch seed {r['seed']}: {r['crash'].splitlines()[0]}")
        lines.append(f"    reproduce: {reproducer(r['seed'], examples, tests)}")
        tail = [ln for ln in r["crash"].splitlines()[1:] if ln.strip()][-12:]
        lines.extend(f"    | {ln}" for ln in tail)
    failed = [r for r in results if r["failures"]]
    for r in failed[:10]:
        lines.append("")
        lines.append(f"  FAILED batch seed {r['seed']}: "
                     + ", ".join(sorted({f['test'] for f in r['failures']})))
        lines.append(f"    reproduce: {reproducer(r['seed'], examples, tests)}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=float, default=1e5,
                        help="stop after this many public calls (default 1e5)")
    parser.add_argument("--examples", type=int, default=300,
                        help="hypothesis examples per unit of test weight in a batch")
    parser.add_argument("--jobs", type=int, default=1, help="batches run at once")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the first batch (default: from the clock)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per batch")
    parser.add_argument("--max-batches", type=int, default=10**6)
    parser.add_argument("--tests", nargs="+", default=None,
                        help="test files or node ids (default: the tests/test_fuzz_*.py files)")
    parser.add_argument("--log", default=None,
                        help="append every failure report and crash to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--report", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    tests = args.tests or [os.path.join("tests", f) for f in FUZZ_FILES]
    if args.worker:
        worker(args.seed, tests, args.report)
        return 0
    first = args.seed if args.seed is not None else int(time.time()) % 10**6 * 1000
    results = []
    seeds = iter(range(first, first + args.max_batches))
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        running = []
        while True:
            done_calls = sum(r["calls"] for r in results)
            while (len(running) < args.jobs and len(results) + len(running) < args.max_batches
                   and done_calls + len(running) * 1 < args.calls):
                running.append(pool.submit(run_batch, next(seeds), args.examples, tests,
                                           args.timeout))
            if not running:
                break
            finished = running.pop(0).result()
            results.append(finished)
            state = ("CRASH" if finished["crash"] else
                     "failing: " + ", ".join(f["test"] for f in finished["failures"])
                     if finished["failures"] else "ok")
            if args.log:
                _append_log(args.log, finished)
            print(f"batch seed {finished['seed']}: {finished['calls']} calls in "
                  f"{finished['seconds']:.0f} s, {state}; total "
                  f"{sum(r['calls'] for r in results)}", flush=True)
            if sum(r["calls"] for r in results) >= args.calls:
                for fut in running:
                    results.append(fut.result())
                    if args.log:
                        _append_log(args.log, results[-1])
                break
    print(summary(results, args.examples, tests))
    bad = any(r["failures"] or r["crash"] for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
