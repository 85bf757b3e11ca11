"""Transparent huge pages for large CPU tables (``advise_huge_pages``): fewer TLB misses in random row gathers."""
from __future__ import annotations

import ctypes
import sys

import torch

__all__ = ["advise_huge_pages"]


_HUGE = 2 << 20  # 2 MiB: an x86-64 transparent huge page
_MADV_HUGEPAGE, _MADV_COLLAPSE = 14, 25


def advise_huge_pages(t: torch.Tensor) -> int:
    """Back the memory of CPU tensor ``t`` with 2 MiB transparent huge pages, now (Linux ``madvise``:
    ``MADV_HUGEPAGE``, then ``MADV_COLLAPSE``, Linux 6.1+).

    Random row gathers from a large table miss the TLB on almost every row with 4 KiB pages; on huge pages
    they mostly do not (measured in benchmarks/RESULTS.md, fusion section). The contents,
    the tensor and any views stay as they are; only the whole 2 MiB pages inside ``t``'s storage are advised.
    Returns the number of bytes collapsed: 0 where the platform, the kernel, the memory kind (e.g. a
    file mapping) or ``t``'s size does not allow it, which changes nothing else.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"advise_huge_pages: argument 't' must be a tensor, got {type(t).__name__}")
    if t.device.type != "cpu" or not sys.platform.startswith("linux"):
        return 0
    st = t.untyped_storage()
    lo = -(-st.data_ptr() // _HUGE) * _HUGE
    hi = (st.data_ptr() + st.nbytes()) // _HUGE * _HUGE
    if hi <= lo:
        return 0
    libc = _libc()
    if libc is None or libc.madvise(lo, hi - lo, _MADV_HUGEPAGE) != 0:
        return 0
    return hi - lo if libc.madvise(lo, hi - lo, _MADV_COLLAPSE) == 0 else 0


def _libc():
    try:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        lib.madvise.restype = ctypes.c_int
        return lib
    except (OSError, AttributeError):
        return None
