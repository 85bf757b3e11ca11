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


def _run(tmp_path_factory, name, *args):
    """One fuzz/run.py child, killed at teardown if a test failed before it ended."""
    work = tmp_path_factory.mktemp(f"fuzz-{name}")
    proc = _start(str(work), *args)
    yield proc, str(work)
    if proc[0].poll() is None:
        proc[0].kill()
        proc[0].wait()


@pytest.fixture
def self_run(tmp_path_factory):
    """The harness's self-test (planted bugs); started only by the test that reads it."""
    yield from _run(tmp_path_factory, "self", "--runs", "12", "--max-restarts", "1", "selftest")


@pytest.fixture
def main_run(tmp_path_factory):
    """The short fuzz of every parser, two targets at a time (the 2 cores)."""
    yield from _run(tmp_path_factory, "main", "--runs", str(RUNS), "--jobs", "2", *TARGETS)


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
def test_harness_reports_planted_bugs(self_run):
    proc, work = self_run
    rc, out = _finish(proc, 300)
    assert rc == 1, f"planted bugs not reported (exit {rc}):\n{out[-4000:]}"
    crash_dir = os.path.join(work, "crashes", "selftest")
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


def test_every_parser_short_fuzz(main_run):
    proc, work = main_run
    rc, out = _finish(proc, 600)
    assert rc == 0, f"fuzz findings (inputs in {work}/crashes):\n{out[-12000:]}"
    for t in TARGETS:
        line = next((ln for ln in out.splitlines() if ln.startswith(t + " ")), None)
        assert line is not None, out
        execs = int(line.split()[2])
        assert execs >= RUNS, f"{t}: only {execs} inputs tried\n{out}"
