"""Shared by the fusion tests (tests/test_fusion_*.py): random bags, a plain reference of gather_bags, the
dtypes and /proc/self/smaps readers."""
from __future__ import annotations

import torch

from embedfast.testing import TABLE_DTYPES

ALL_DTYPES = TABLE_DTYPES + [torch.float64]


def wdtype(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def sample(seed, dtype=torch.float32, K=3, D=13, B=17, N=41, noncontig=True, requires_grad=False):
    """Random bags: empty bags, repeated rows, several entries of one source; duplicate ids; odd sizes."""
    g = torch.Generator().manual_seed(seed)
    rows_per = [int(torch.randint(1, 23, (1,), generator=g)) for _ in range(K)]
    tables = []
    for k, v in enumerate(rows_per):
        if noncontig and k == 0:  # a column slice: row stride != D
            t = torch.randn(v, D + 5, generator=g, dtype=torch.float64)[:, 2:2 + D]
        elif noncontig and k == 1:  # transposed storage: column stride != 1
            t = torch.randn(D, v, generator=g, dtype=torch.float64).t()
        else:
            t = torch.randn(v, D, generator=g, dtype=torch.float64)
        tables.append(t.to(dtype) if dtype != torch.float64 else t)
    sizes = torch.randint(0, 5, (B,), generator=g)
    sizes[0] = 0  # an empty bag
    off = torch.zeros(B + 1, dtype=torch.int64)
    off[1:] = sizes.cumsum(0)
    E = int(off[-1])
    src = torch.randint(0, K, (E,), generator=g)
    row = torch.stack([torch.randint(0, rows_per[int(k)], (1,), generator=g)[0] for k in src]) if E else \
        torch.empty(0, dtype=torch.int64)
    ew = torch.rand(E, generator=g, dtype=torch.float64).to(wdtype(dtype)) + 0.1
    sw = torch.rand(K, generator=g, dtype=torch.float64).to(wdtype(dtype)) + 0.1
    big = torch.randint(0, B, (2 * N,), generator=g)
    ids = big[::2]  # non-contiguous, with duplicates
    if noncontig:
        assert not ids.is_contiguous()
    if requires_grad:
        for t in tables:
            t.requires_grad_(True)
        sw.requires_grad_(True)
        ew.requires_grad_(True)
    return tables, sw, off, src, row, ew, ids


def reference(tables, sw, off, src, row, ew, ids, renormalize):
    """Differentiable float64 reference built from plain tensor ops (a loop over bags)."""
    D = tables[0].shape[1]
    outs = []
    for b in ids.tolist():
        e0, e1 = int(off[b]), int(off[b + 1])
        acc = torch.zeros(D, dtype=torch.float64)
        s = torch.zeros((), dtype=torch.float64)
        for e in range(e0, e1):
            k = int(src[e])
            c = sw[k].double() * ew[e].double()
            acc = acc + c * tables[k][int(row[e])].double()
            s = s + c
        if renormalize and e1 > e0:
            acc = acc / s
        outs.append(acc)
    return torch.stack(outs) if outs else torch.zeros(0, D, dtype=torch.float64)



def _smaps_field(ptr, field):
    """(start, end, the fields after `field:`) of the mapping in /proc/self/smaps that holds address ptr, or None."""
    cur = None
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and all(c in "0123456789abcdef-" for c in head):
                lo, hi = (int(x, 16) for x in head.split("-"))
                cur = (lo, hi) if lo <= ptr < hi else None
            elif cur is not None and line.startswith(field + ":"):
                return cur[0], cur[1], line.split()[1:]
    return None


def _mapping_of(ptr):
    """(start, end, VmFlags) of the mapping that holds address ptr, or None."""
    return _smaps_field(ptr, "VmFlags")


def _on_huge_page_mapping(t):
    """True when t's memory is a block of embedfast's large-output path: 2 MiB-aligned, in a mapping advised to
    huge pages. (Memory from torch's allocator can sit in heap pages an earlier test advised, but is not aligned
    to 2 MiB, so it does not count.)"""
    m = _mapping_of(t.data_ptr())
    return m is not None and "hg" in m[2] and t.data_ptr() % (2 << 20) == 0
