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
