"""Helpers for torch.compile that cost nothing at import time, and backend-availability checks that
torch.compile treats as constants."""
from __future__ import annotations

import sys
from typing import Callable

import torch


def constant_under_compile(fn):
    """``torch.compiler.assume_constant_result(fn)`` without importing ``torch._dynamo`` at import time.

    That import costs about a second and ~150 MB of resident memory for every user of the package, compiling or
    not. When dynamo is already loaded the real decorator is used; otherwise the function gets the same marker
    attribute that ``torch._dynamo.assume_constant_result`` sets (tests/test_build.py checks that it still does).
    """
    if "torch._dynamo" in sys.modules:
        return torch.compiler.assume_constant_result(fn)
    fn._dynamo_marked_constant = True
    return fn


@constant_under_compile
def has_cuda_kernel(name: str) -> bool:
    """True when ``embedfast::name`` has a CUDA kernel registered (embedfast was built with CUDA)."""
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"embedfast::{name}", "CUDA")


@constant_under_compile
def triton_state(module: str) -> int:
    """State of the Triton kernels in ``module`` (e.g. "embedfast.triton.gather"): 0: no triton; 1: triton,
    kernels compiled (or not imported yet, no interpreter); 2: kernels imported and interpreted; 3: not
    imported yet but TRITON_INTERPRET=1 is set (they will be interpreted)."""
    from .triton import interpret_mode, triton_importable

    if not triton_importable():
        return 0
    mod = sys.modules.get(module)
    if mod is not None:
        return 2 if mod.INTERPRETED else 1
    return 3 if interpret_mode() else 1


def select_backend(op: str, backend: str, device: "torch.device | str", backends: tuple,
                   cuda_built: "Callable[[], bool]", triton_state_of: "Callable[[], int]", triton_module: str) -> str:
    """The kernels ``op`` runs for tensors on ``device``: ``"cpu"``, ``"cuda"`` or ``"triton"``; shared by every op
    family with CPU, CUDA and Triton kernels.

    ``backend`` is one of ``backends`` ("auto", optionally "cpu", "cuda", "triton"); ``cuda_built()``: the op has a
    CUDA kernel in this build; ``triton_state_of()``: ``triton_state(triton_module)``. Both are called only when
    the answer depends on them (the common CPU "auto" case calls neither: this runs on every op call). "auto": CPU tensors use the C++ op, CUDA
    tensors the CUDA kernel when built, else the Triton kernels. A forced backend that cannot run on ``device``
    raises ValueError; one that is not available in this installation raises RuntimeError.
    """
    if backend not in backends:
        raise ValueError(f"{op}: argument 'backend' must be one of {backends}, got {backend!r}")
    dev = torch.device(device)
    interpreted = ("the Triton kernels run in Triton's interpreter in this process (TRITON_INTERPRET=1): CPU "
                   "tensors only")
    if backend == "cpu":
        if dev.type != "cpu":
            raise ValueError(f"{op}: backend='cpu' needs CPU tensors, got tensors on {dev}")
        return "cpu"
    if backend == "cuda":
        if dev.type != "cuda":
            raise ValueError(f"{op}: backend='cuda' needs CUDA tensors, got tensors on {dev}")
        if not cuda_built():
            raise RuntimeError(f"{op}: backend='cuda' is not available: embedfast was built without CUDA kernels "
                               f"for {op} (use backend='triton' or 'auto')")
        return "cuda"
    if backend == "triton":
        triton = triton_state_of()
        if triton == 0:
            raise RuntimeError(f"{op}: backend='triton' needs the triton package (pip install triton)")
        if dev.type == "cuda":
            if triton >= 2:
                raise RuntimeError(f"{op}: {interpreted}")
            return "triton"
        if dev.type == "cpu":
            if triton < 2:
                raise RuntimeError(f"{op}: backend='triton' on CPU tensors runs only in Triton's interpreter: set "
                                   f"TRITON_INTERPRET=1 before {triton_module} is imported (for testing; use "
                                   "backend='auto' for the C++ CPU op)")
            return "triton"
        raise ValueError(f"{op}: backend='triton' supports CUDA tensors (or CPU tensors in the interpreter), got "
                         f"tensors on {dev}")
    # auto
    if dev.type == "cuda":
        if cuda_built():
            return "cuda"
        triton = triton_state_of()
        if triton == 1:
            return "triton"
        if triton >= 2:
            raise RuntimeError(f"{op}: no CUDA kernel in this build and {interpreted}")
        raise RuntimeError(f"{op}: no GPU kernels for CUDA tensors: embedfast was built without CUDA kernels for "
                           f"{op} and triton is not installed (pip install triton)")
    if dev.type != "cpu":
        raise ValueError(f"{op}: no kernel for tensors on {dev} (CPU and CUDA are supported)")
    return "cpu"
