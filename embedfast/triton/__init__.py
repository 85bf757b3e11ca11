"""Triton kernels of embedfast (GPU; on the CPU through Triton's interpreter with ``TRITON_INTERPRET=1``).

Importing this package never imports triton. The kernels live in submodules (``embedfast.triton.gather``)
that are imported lazily, only when a Triton backend is asked for: ``@triton.jit`` decides at decoration
time whether a kernel is compiled or interpreted, so ``TRITON_INTERPRET`` must be set before that import.
"""
from __future__ import annotations

import importlib.util
import os

__all__ = ["has_triton", "triton_importable", "interpret_mode"]


def triton_importable() -> bool:
    """True when the ``triton`` package is installed (without importing it)."""
    return importlib.util.find_spec("triton") is not None


def interpret_mode() -> bool:
    """True when ``TRITON_INTERPRET=1`` is set (Triton kernels then run on the CPU, in Python)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def has_triton(device: "str | None" = None) -> bool:
    """True when embedfast's Triton kernels can run on ``device`` ("cuda", "cpu"; None: any device).

    CUDA tensors need triton and a CUDA device; CPU tensors need triton and ``TRITON_INTERPRET=1`` (the
    interpreter, meant for testing).
    """
    if not triton_importable():
        return False
    import torch

    if device is None:
        return torch.cuda.is_available() or interpret_mode()
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_available()
    if dev.type == "cpu":
        return interpret_mode()
    return False


def keep_opaque_when_interpreted(ops) -> None:
    """Make AOTAutograd keep each of these ``triton_op`` ops as one opaque node (fake kernel for the shapes, the
    interpreter at run time). Interpreted kernels cannot be captured by ``wrap_triton``'s tracing (it needs
    compiled JITFunctions), so without this torch.compile could not decompose the ops into their kernels.
    Called by the kernel modules only when their kernels were defined under TRITON_INTERPRET=1."""
    from torch._subclasses.functional_tensor import FunctionalTensorMode

    def opaque(mode, op, types, args, kwargs):
        return mode.__torch_dispatch__(op, types, args, kwargs)

    for op in ops:
        op.register_torch_dispatch(FunctionalTensorMode, opaque)
