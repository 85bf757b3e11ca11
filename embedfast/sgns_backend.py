"""Which kernels run SGNS: the C++ op (CPU; CUDA when built), or the Triton kernels (``embedfast.triton.sgns``).

``backend="auto"``: CPU tensors use the C++ CPU op; CUDA tensors use the CUDA kernel when embedfast was built
with one (none exists yet: it lands after it has run on a GPU), else the Triton kernels. ``"cuda"`` /
``"triton"`` force a backend and raise a clear error when it cannot run on the tensors' device. The Triton
kernels run on CPU tensors only in Triton's interpreter (``TRITON_INTERPRET=1`` set before
``embedfast.triton.sgns`` is first imported), which is meant for testing.
"""
from __future__ import annotations

import torch

from ._compile import has_cuda_kernel, triton_state

__all__ = ["SGNS_BACKENDS", "sgns_backend", "train_op", "loss_op"]

SGNS_BACKENDS = ("auto", "cpu", "cuda", "triton")


def _has_cuda_kernel(name: str) -> bool:
    return has_cuda_kernel(name)


def _triton_state() -> int:
    return triton_state("embedfast.triton.sgns")


def sgns_backend(backend: str, device: "torch.device | str", op: str = "sgns_train") -> str:
    """The kernels SGNS runs for tensors on ``device``: ``"cpu"``, ``"cuda"`` or ``"triton"``.

    Raises ValueError for an unknown backend or a device it cannot serve, RuntimeError when the backend is not
    available in this installation (no CUDA kernel built, triton missing, no interpreter for CPU tensors).
    """
    if backend not in SGNS_BACKENDS:
        raise ValueError(f"{op}: argument 'backend' must be one of {SGNS_BACKENDS}, got {backend!r}")
    dev = torch.device(device)
    if backend == "cpu":
        if dev.type != "cpu":
            raise ValueError(f"{op}: backend='cpu' needs CPU tensors, got tensors on {dev}")
        return "cpu"
    if backend == "cuda":
        if dev.type != "cuda":
            raise ValueError(f"{op}: backend='cuda' needs CUDA tensors, got tensors on {dev}")
        if not _has_cuda_kernel(op):
            raise RuntimeError(f"{op}: backend='cuda' is not available: embedfast has no CUDA kernel for {op} "
                               "in this build (use backend='triton' or 'auto')")
        return "cuda"
    if backend == "triton":
        state = _triton_state()
        if state == 0:
            raise RuntimeError(f"{op}: backend='triton' needs the triton package (pip install triton)")
        if dev.type == "cuda":
            if state == 2:
                raise RuntimeError(f"{op}: the Triton kernels were imported under TRITON_INTERPRET=1 and run only "
                                   "on CPU tensors in this process")
            return "triton"
        if dev.type == "cpu":
            if state < 2:
                raise RuntimeError(f"{op}: backend='triton' on CPU tensors runs only in Triton's interpreter: set "
                                   "TRITON_INTERPRET=1 before embedfast.triton.sgns is imported (for testing; "
                                   "use backend='auto' or 'cpu' for the C++ CPU op)")
            return "triton"
        raise ValueError(f"{op}: backend='triton' supports CUDA tensors (or CPU tensors in the interpreter), got "
                         f"tensors on {dev}")
    # auto
    if dev.type == "cuda":
        if _has_cuda_kernel(op):
            return "cuda"
        if _triton_state() == 1:
            return "triton"
        raise RuntimeError(f"{op}: no GPU kernel for CUDA tensors: embedfast has no CUDA kernel for {op} in this "
                           "build and triton is not installed (pip install triton)")
    if dev.type != "cpu":
        raise ValueError(f"{op}: no kernel for tensors on {dev} (CPU and CUDA are supported)")
    return "cpu"


def train_op(kind: str):
    """The op object for ``sgns_train`` on backend ``kind`` (from ``sgns_backend``)."""
    if kind == "triton":
        from .triton import sgns as _ts  # noqa: F401  (registers embedfast::sgns_train_triton)

        return torch.ops.embedfast.sgns_train_triton
    return torch.ops.embedfast.sgns_train  # the dispatcher picks the CPU or CUDA kernel by device


def loss_op(kind: str):
    """The op object for ``sgns_loss`` on backend ``kind`` (from ``sgns_backend``)."""
    if kind == "triton":
        from .triton import sgns as _ts  # noqa: F401  (registers embedfast::sgns_loss_triton)

        return torch.ops.embedfast.sgns_loss_triton
    return torch.ops.embedfast.sgns_loss
