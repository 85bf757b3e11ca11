"""Which kernels run SGNS: the C++ op (CPU; CUDA when built), or the Triton kernels (``embedfast.triton.sgns``).

``backend="auto"``: CPU tensors use the C++ CPU op; CUDA tensors use the CUDA kernel when embedfast was built
with one (none exists yet: it lands after it has run on a GPU), else the Triton kernels. ``"cuda"`` /
``"triton"`` force a backend and raise a clear error when it cannot run on the tensors' device. The Triton
kernels run on CPU tensors only in Triton's interpreter (``TRITON_INTERPRET=1`` set before
``embedfast.triton.sgns`` is first imported), which is meant for testing.
"""
from __future__ import annotations

import torch

from ._backend import BACKENDS, select_backend

__all__ = ["SGNS_BACKENDS", "sgns_backend", "train_op", "loss_op"]

SGNS_BACKENDS = BACKENDS


def sgns_backend(backend: str, device: "torch.device | str", op: str = "sgns_train") -> str:
    """The kernels SGNS runs for tensors on ``device``: ``"cpu"``, ``"cuda"`` or ``"triton"``
    (``embedfast._backend.select_backend``)."""
    return select_backend(op, backend, device, "embedfast.triton.sgns")


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
