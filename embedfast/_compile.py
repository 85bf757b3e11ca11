"""Helpers for torch.compile that cost nothing at import time, and backend-availability checks that
torch.compile treats as constants."""
from __future__ import annotations

import sys

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
