"""Helpers of the fault and bad-input suite: run code where a failure may be a signal or a hang in a child
process with a timeout, and check that it failed the way a user should see (a message, not a signal)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Optional, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        sig = ""
        if self.returncode < 0:
            sig = f" (signal {signal.Signals(-self.returncode).name})"
        return f"exit {self.returncode}{sig}\n--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"


def _run(argv: Sequence[str], timeout: float, cwd: Optional[str], env: Optional[dict], stdin_data: Optional[str]) -> Result:
    e = dict(os.environ)
    e["PYTHONPATH"] = REPO + os.pathsep + e.get("PYTHONPATH", "")
    e.setdefault("PYTHONFAULTHANDLER", "1")
    if env:
        e.update(env)
    try:
        p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, cwd=cwd, env=e,
                           input=stdin_data, stdin=None if stdin_data is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise AssertionError(f"hang: {list(argv)[:6]} did not finish within {timeout} s\n{out[-2000:]}\n{err[-2000:]}")
    return Result(p.returncode, p.stdout, p.stderr)


def run_python(code: str, *, timeout: float = 60.0, cwd: Optional[str] = None, env: Optional[dict] = None) -> Result:
    """Run ``code`` in a fresh interpreter; a hang fails the test (AssertionError naming it)."""
    return _run([sys.executable, "-c", code], timeout, cwd, env, None)


def run_cli(*args: str, timeout: float = 120.0, cwd: Optional[str] = None, env: Optional[dict] = None) -> Result:
    """Run ``embedfast <args>`` (as ``python -m embedfast``) in a fresh interpreter."""
    return _run([sys.executable, "-m", "embedfast", *args], timeout, cwd, env, None)


def assert_clean_failure(r: Result, *needles: str, returncode: Optional[int] = None) -> None:
    """The child failed with a normal exit code (no signal), printed no traceback, and its stderr names every
    needle (case-insensitive)."""
    assert r.returncode > 0, f"expected a clean failure, got {r.describe()}"
    if returncode is not None:
        assert r.returncode == returncode, r.describe()
    assert "Traceback" not in r.stderr, f"traceback printed:\n{r.describe()}"
    low = r.stderr.lower()
    for n in needles:
        assert n.lower() in low, f"stderr does not name {n!r}:\n{r.describe()}"


def assert_no_signal(r: Result) -> None:
    """The child was not killed by a signal (SIGSEGV, SIGBUS, SIGABRT, ...)."""
    assert r.returncode >= 0, f"killed by a signal: {r.describe()}"
