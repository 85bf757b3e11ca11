"""Short fuzz budget of every parser (fuzz/targets.py) in `make test`; the long run is `make fuzz`.

Each target runs in a child process (fuzz/run.py starts it; a native crash or a hang ends only that child) for a
fixed number of inputs with a fixed libFuzzer seed, so a failure here repeats. A finding's input is kept in the
run's crashes folder and its traceback is in the failure message; fuzz/README.md says how to replay one.
The harness itself is checked first: planted bugs of each kind must be reported, a documented error must not.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .util import REPO

RUN = os.path.join(REPO, "fuzz", "run.py")
TARGETS = ("text", "w2vbin", "native", "fasttext", "checkpoint", "corpus")
RUNS = int(os.environ.get("EMBEDFAST_FUZZ_RUNS", "300"))

pytestmark = pytest.mark.skipif(not os.path.exists(RUN), reason="fuzz/ is not in this tree")


def _start(tmp, *args):
    env = dict(os.environ, PYTHONHASHSEED="0")
    summary = os.path.join(tmp, "summary.txt")
    cmd = [sys.executable, RUN, "--work", os.path.join(tmp, "work"), "--crashes", os.path.join(tmp, "crashes"),
           "--summary", summary, "--seed", "1", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            stdin=subprocess.DEVNULL), summary


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both runs start at once (they are mostly start-up time, and there are 2 cores)."""
    self_dir, main_dir = tmp_path_factory.mktemp("fuzz-self"), tmp_path_factory.mktemp("fuzz-main")
    procs = {"self": _start(str(self_dir), "--runs", "12", "--max-restarts", "1", "selftest"),
             "main": _start(str(main_dir), "--runs", str(RUNS), "--jobs", "2", *TARGETS)}
    yield procs, {"self": str(self_dir), "main": str(main_dir)}
    for p, _ in procs.values():
        if p.poll() is None:
            p.kill()
            p.wait()


def _finish(proc, timeout):
    p, summary = proc
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        raise AssertionError(f"hang: fuzz/run.py did not finish within {timeout} s\n{out[-4000:]}")
    return p.returncode, out


@pytest.mark.slow  # make test-slow: keeps make test within its 15 minutes; the harness's self-test (the short fuzz of every parser stays)
def test_harness_reports_planted_bugs(runs):
    procs, dirs = runs
    rc, out = _finish(procs["self"], 300)
    assert rc == 1, f"planted bugs not reported (exit {rc}):\n{out[-4000:]}"
    crash_dir = os.path.join(dirs["self"], "crashes", "selftest")
    reports = ""
    for name in sorted(os.listdir(crash_dir)):
        if name.endswith(".txt"):
            with open(os.path.join(crash_dir, name)) as f:
                reports += f.read()
    assert "KeyError" in reports and "planted wrong result" in reports, reports
    assert "documented error" not in reports  # ValueError is the target's clean error
    crashes = [n for n in os.listdir(crash_dir) if n.startswith("crash-")]
    assert len(crashes) == 1, out[-4000:]
    with open(os.path.join(crash_dir, crashes[0]), "rb") as f:
        assert f.read() == b"SEGV"  # the input that killed the child was kept
    assert "selftest" in out and "finding" in out


def test_every_parser_short_fuzz(runs):
    procs, dirs = runs
    rc, out = _finish(procs["main"], 600)
    assert rc == 0, f"fuzz findings (inputs in {dirs['main']}/crashes):\n{out[-12000:]}"
    for t in TARGETS:
        line = next((ln for ln in out.splitlines() if ln.startswith(t + " ")), None)
        assert line is not None, out
        execs = int(line.split()[2])
        assert execs >= RUNS, f"{t}: only {execs} inputs tried\n{out}"
