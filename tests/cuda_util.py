"""Device parameters of the CUDA kernel tests (tests/test_*_cuda.py), as pytorch_scatter does: every test runs on
``"cpu"`` (the C++ CPU op, always) and on ``"cuda"`` (embedfast's CUDA kernels), which carries the ``gpu`` marker
and is skipped, saying why, unless there is a CUDA device and embedfast was built with its CUDA kernels
(``EMBEDFAST_CUDA=1``). ``EMBEDFAST_REQUIRE_CUDA=1`` (benchmarks/gpu/check.sh sets it) turns that skip into a
failure, so a GPU run cannot pass by skipping.
"""
from __future__ import annotations

import os

import pytest
import torch

import embedfast  # noqa: F401  (registers the ops)
from embedfast._backend import has_cuda_kernel


def cuda_state() -> str:
    """"" when the CUDA kernels can run here, else why not."""
    if not torch.cuda.is_available():
        return "no CUDA device"
    missing = [op for op in ("sgns_train", "sgns_loss", "gather_bags") if not has_cuda_kernel(op)]
    if missing:
        return f"embedfast was built without CUDA kernels ({', '.join(missing)}): build with EMBEDFAST_CUDA=1"
    return ""


CUDA_WHY_NOT = cuda_state()
REQUIRE_CUDA = os.environ.get("EMBEDFAST_REQUIRE_CUDA", "0") not in ("", "0")


def _cuda_marks():
    marks = [pytest.mark.gpu]
    if CUDA_WHY_NOT and not REQUIRE_CUDA:  # required: the tests run and fail on what is missing
        marks.append(pytest.mark.skip(reason=CUDA_WHY_NOT))
    return marks


#: ``@pytest.mark.parametrize("device", DEVICES)``
DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=_cuda_marks())]
#: the CUDA device only (tests of what only the CUDA kernels do: capture, determinism of atomics-free sums)
CUDA_ONLY = [pytest.param("cuda", id="cuda", marks=_cuda_marks())]


def compile_in_child(module: str, func: str, arch: int = 90) -> dict:
    """``module.func(arch)`` (a Triton kernel module's compile-for-target function: name -> size of the code it
    lowered to) run in a child process without TRITON_INTERPRET, so the kernels are really compiled even when
    this process runs them in Triton's interpreter; skips when the Triton installation has no ptxas."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    code = f"import importlib; print(importlib.import_module({module!r}).{func}({arch}))"
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    if p.returncode != 0 and ("ptxas" in p.stderr and "not found" in p.stderr):
        pytest.skip("no ptxas in this triton installation")
    assert p.returncode == 0, p.stderr[-3000:]
    return eval(p.stdout.strip().splitlines()[-1])


def _set_interpret(prev) -> None:
    if prev is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = prev


def import_interpreted(module: str):
    """Import ``module`` (one of embedfast's Triton modules) with TRITON_INTERPRET=1, unless there is a CUDA device
    and the caller left TRITON_INTERPRET unset (then its kernels are compiled). ``@triton.jit`` decides at
    decoration time; the variable is restored afterwards, so other test modules see the environment unchanged."""
    import importlib

    if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        return importlib.import_module(module)
    prev = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        return importlib.import_module(module)
    finally:
        _set_interpret(prev)


@pytest.fixture(autouse=True, scope="module")
def interpreter_env():
    """Triton's interpreter also reads TRITON_INTERPRET when a kernel runs (lazy imports, calls of library
    functions): set while the tests of a module that imports this fixture run, when the word2vec Triton kernels
    were imported interpreted, and restored afterwards."""
    from embedfast.word2vec.triton_kernels import INTERPRETED

    if not INTERPRETED:
        yield
        return
    prev = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        yield
    finally:
        _set_interpret(prev)
