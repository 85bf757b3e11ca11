"""Runs tests/test_gather_triton.py in its own pytest process with TRITON_INTERPRET=1 when this process could not
run it in the interpreter: the variable must be set before triton is first imported, and in a whole-suite run
torch._dynamo has imported triton long before (so test_gather_triton.py skipped itself). Setting the variable
for the whole session instead would change the environment of every other test."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch


def test_gather_triton_in_interpreter_process():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: test_gather_triton.py runs the compiled kernels in this process")
    mod = sys.modules.get("embedfast.triton.gather")
    if mod is not None and mod.INTERPRETED:
        pytest.skip("test_gather_triton.py already ran in the interpreter in this process")
    pytest.importorskip("triton")
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, TRITON_INTERPRET="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           os.path.join(here, "test_gather_triton.py")],
                          cwd=os.path.dirname(here), env=env, capture_output=True, text=True, timeout=1200)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, f"tests/test_gather_triton.py failed in the interpreter:\n{tail}"
    assert " passed" in tail and " skipped" not in tail.splitlines()[-1], tail
