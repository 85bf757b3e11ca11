"""gather_bags op and MultiSourceEmbedding: against plain references, gradients, opcheck, compile, DDP, bad input."""
from __future__ import annotations

import datetime
import os
import random
import tempfile

import pytest
import torch
import torch.nn as nn

import embedfast
from embedfast import MultiSourceEmbedding
from embedfast.fusion import (alignment_source, char_ngrams, huggingface_source, procrustes, subword_source,
                              vector_source)
from embedfast.ops import gather_bags
from embedfast.testing import TABLE_DTYPES, tolerance

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


# ---------------------------------------------------------------------------------------------------------
# the op
# ---------------------------------------------------------------------------------------------------------

ALLOC_ENV = "EMBEDFAST_LARGE_ALLOC_MIN_BYTES"


@pytest.fixture(params=["default", "mmap"])
def alloc_path(request, monkeypatch):
    """Runs a test twice: with the default size threshold (these small outputs come from at::empty / at::zeros)
    and with every output on the huge-page mmap path (threshold 0)."""
    if request.param == "mmap":
        monkeypatch.setenv(ALLOC_ENV, "0")
    else:
        monkeypatch.delenv(ALLOC_ENV, raising=False)
    return request.param


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
    m = _mapping_of(t.data_ptr())
    return m is not None and "hg" in m[2]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("renormalize", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_forward_matches_reference(poisoned, alloc_path, dtype, renormalize, seed):
    seed = seed * 1000 + random.randrange(1000)  # fresh seeds each run, reported on failure
    tables, sw, off, src, row, ew, ids = sample(seed, dtype)
    out = gather_bags(tables, sw, off, src, row, ew, ids, renormalize=renormalize)
    if alloc_path == "mmap":  # (the default path may land in heap memory an earlier test advised to huge pages)
        assert _on_huge_page_mapping(out)
    assert out.dtype == dtype and out.shape == (ids.numel(), tables[0].shape[1])
    assert torch.isfinite(out).all(), f"seed {seed}: unwritten (NaN-poisoned) elements"
    ref = reference([t.double() for t in tables], sw, off, src, row, ew, ids, renormalize)
    torch.testing.assert_close(out.double(), ref, **tolerance(dtype), msg=lambda m: f"seed {seed}: {m}")
    assert (out[ids == 0] == 0).all()  # bag 0 is empty: zeros


def test_ids_any_shape_and_int32():
    tables, sw, off, src, row, ew, ids = sample(5)
    ids2 = ids[:40].reshape(5, 8)
    out = gather_bags(tables, sw, off, src, row, ew, ids2.int())
    assert out.shape == (5, 8, tables[0].shape[1])
    torch.testing.assert_close(out.reshape(40, -1), gather_bags(tables, sw, off, src, row, ew, ids[:40]))


def test_empty_ids_and_all_empty_bags(poisoned):
    tables, sw, off, src, row, ew, ids = sample(6)
    out = gather_bags(tables, sw, off, src, row, ew, ids[:0])
    assert out.shape == (0, tables[0].shape[1])
    z = torch.zeros(4, dtype=torch.int64)  # 3 empty bags, no entries
    e = torch.empty(0, dtype=torch.int64)
    out = gather_bags(tables, sw, z, e, e, torch.empty(0), torch.tensor([0, 2, 1, 1]))
    assert torch.equal(out, torch.zeros(4, tables[0].shape[1]))


def test_zero_weight_sum_gives_zeros():
    t = [torch.randn(3, 4)]
    off = torch.tensor([0, 2])
    out = gather_bags(t, torch.ones(1), off, torch.tensor([0, 0]), torch.tensor([0, 1]), torch.tensor([1.0, -1.0]),
                      torch.tensor([0]), renormalize=True)
    assert torch.equal(out, torch.zeros(1, 4))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("renormalize", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
def test_backward_matches_reference(poisoned, alloc_path, dtype, renormalize, sparse):
    seed = random.randrange(10**6)
    tables, sw, off, src, row, ew, ids = sample(seed, dtype, requires_grad=True)
    tables[2].requires_grad_(False)  # a frozen table gets no gradient
    out = gather_bags(tables, sw, off, src, row, ew, ids, renormalize=renormalize, sparse_grad=sparse)
    g = torch.randn(out.shape, dtype=torch.float64)
    out.backward(g.to(dtype))
    ref_tables = [t.detach().double().requires_grad_(t.requires_grad) for t in tables]
    sw_r = sw.detach().double().requires_grad_()
    ew_r = ew.detach().double().requires_grad_()
    ref = reference(ref_tables, sw_r, off, src, row, ew_r, ids, renormalize)
    ref.backward(g.to(dtype).double())
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == torch.float32 else tolerance(dtype)
    if dtype in (torch.float16, torch.bfloat16):
        tol = dict(atol=5e-2, rtol=5e-2)
    msg = lambda m: f"seed {seed}: {m}"  # noqa: E731
    torch.testing.assert_close(sw.grad.double(), sw_r.grad, **tol, msg=msg)
    torch.testing.assert_close(ew.grad.double(), ew_r.grad, **tol, msg=msg)
    for t, r in zip(tables[:2], ref_tables[:2]):
        gt = t.grad
        if sparse:
            assert gt.is_sparse
            idx = gt._indices()[0]
            assert idx.numel() == torch.unique(idx).numel()  # one row per distinct table row (coalesced)
            gt = gt.to_dense()
        else:
            assert gt.layout == torch.strided and gt.shape == t.shape
        torch.testing.assert_close(gt.double(), r.grad, **tol, msg=msg)
    assert tables[2].grad is None


def test_gradcheck_double():
    for renormalize in (True, False):
        tables, sw, off, src, row, ew, ids = sample(random.randrange(10**6), torch.float64, K=2, D=3, B=6, N=9,
                                                    requires_grad=True)

        def f(t0, t1, sw_, ew_):
            return gather_bags([t0, t1], sw_, off, src, row, ew_, ids, renormalize=renormalize)

        assert torch.autograd.gradcheck(f, (*tables[:2], sw, ew))


@pytest.mark.parametrize("sparse", [False, True])
def test_backward_deterministic_across_threads(alloc_path, sparse):
    tables, sw, off, src, row, ew, ids = sample(11, torch.float32, B=300, N=4000, requires_grad=True)
    prev = torch.get_num_threads()
    grads = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for t in tables + [sw, ew]:
                t.grad = None
            g = torch.randn(ids.numel(), tables[0].shape[1], generator=torch.Generator().manual_seed(3))
            gather_bags(tables, sw, off, src, row, ew, ids, sparse_grad=sparse).backward(g)
            grads.append([(t.grad.to_dense() if t.grad.is_sparse else t.grad).clone() for t in tables + [sw, ew]])
    finally:
        torch.set_num_threads(prev)
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_huge_page_output_is_an_ordinary_tensor(monkeypatch):
    """An output on the mmap path: right values, resizable (data kept), writable, and unmapped when freed."""
    tables, sw, off, src, row, ew, ids = sample(21, torch.float32, N=300)
    want = gather_bags(tables, sw, off, src, row, ew, ids)
    monkeypatch.setenv(ALLOC_ENV, "0")
    out = gather_bags(tables, sw, off, src, row, ew, ids)
    assert _on_huge_page_mapping(out) and out.is_contiguous()
    torch.testing.assert_close(out, want, rtol=0, atol=0)
    start, end, _ = _mapping_of(out.data_ptr())
    assert out.data_ptr() % (2 << 20) == 0 and (end - start) % (2 << 20) == 0  # 2 MiB-aligned block
    out.add_(1)
    torch.testing.assert_close(out, want + 1)
    n, d = out.shape
    out.resize_(3000, d)  # beyond the mapping: moves to torch's allocator, keeps the data
    torch.testing.assert_close(out[:n], want + 1)
    out[n:] = 2
    assert bool((out[n:] == 2).all())
    m = _mapping_of(start)
    assert m is None or "hg" not in m[2] or m[:2] != (start, end), "the old mapping was not released"
    # the backward's table gradients (accumulated in place into fresh zero pages): same values on both paths
    g = torch.randn(out.shape[0] // 10, out.shape[1])
    ids = ids[: g.shape[0]].contiguous()
    for sparse in (False, True):
        args = (g, tables, sw, off, src, row, ew, ids, True, True, [True, False, True], sparse)
        got = torch.ops.embedfast.gather_bags_backward(*args)
        monkeypatch.delenv(ALLOC_ENV)
        ref = torch.ops.embedfast.gather_bags_backward(*args)
        monkeypatch.setenv(ALLOC_ENV, "0")
        for k in (0, 2):
            assert got[2][k].numel() > 0 and _on_huge_page_mapping(got[2][k])
            assert torch.equal(got[2][k], ref[2][k]) and torch.equal(got[3][k], ref[3][k])
        assert got[2][1].numel() == 0
    out2 = gather_bags(tables, sw, off, src, row, ew, ids)
    ptr = out2.data_ptr()
    del out2
    m = _mapping_of(ptr)
    assert m is None or "hg" not in m[2], "freed output still mapped"


def test_large_alloc_threshold_env(monkeypatch):
    tables, sw, off, src, row, ew, ids = sample(22, torch.float32, N=300)
    monkeypatch.setenv(ALLOC_ENV, "-1")  # off: even huge outputs use at::empty
    assert not _on_huge_page_mapping(gather_bags(tables, sw, off, src, row, ew, ids))
    monkeypatch.setenv(ALLOC_ENV, "12kB")
    with pytest.raises(ValueError, match=ALLOC_ENV + ".*12kB"):
        gather_bags(tables, sw, off, src, row, ew, ids)


def test_large_outputs_use_huge_pages_by_default(monkeypatch):
    """At the default threshold (2 MiB) a 2 MiB+ output is on the mmap path, a small one is not."""
    monkeypatch.delenv(ALLOC_ENV, raising=False)
    t = [torch.randn(50, 256)]
    one = torch.ones(1)
    off, src, row = torch.tensor([0, 1]), torch.tensor([0]), torch.tensor([7])
    big = gather_bags(t, one, off, src, row, one, torch.zeros(4200, dtype=torch.int64))  # 4.3 MB
    small = gather_bags(t, one, off, src, row, one, torch.zeros(100, dtype=torch.int64))
    assert _on_huge_page_mapping(big) and not _on_huge_page_mapping(small)
    assert torch.equal(big, t[0][7].expand(4200, 256)) and torch.equal(small, t[0][7].expand(100, 256))


def test_opcheck():
    for dtype in (torch.float32, torch.float64):
        tables, sw, off, src, row, ew, ids = sample(3, dtype, requires_grad=True)
        ids = ids.contiguous()
        for renormalize in (True, False):
            torch.library.opcheck(torch.ops.embedfast.gather_bags.default,
                                  (tables, sw, off, src, row, ew, ids, renormalize, False))
            g = torch.randn(ids.numel(), tables[0].shape[1], dtype=dtype)
            for sparse in (False, True):
                torch.library.opcheck(torch.ops.embedfast.gather_bags_backward.default,
                                      (g, [t.detach() for t in tables], sw.detach(), off, src, row, ew.detach(), ids,
                                       renormalize, True, [True, False, True], sparse),
                                      test_utils=("test_schema", "test_faketensor"))
            torch.library.opcheck(torch.ops.embedfast.gather_bags_backward.default,
                                  (g, [t.detach() for t in tables], sw.detach(), off, src, row, ew.detach(), ids,
                                   renormalize, True, [False, False, False], False, False),
                                  test_utils=("test_schema", "test_faketensor"))


@pytest.mark.parametrize("renormalize", [True, False])
def test_backward_without_entry_weight_grad(renormalize):
    """entry_weight_grad=False: grad_entry_weight is left out ([0]) and nothing else changes."""
    tables, sw, off, src, row, ew, ids = sample(random.randrange(10**6), torch.float32, N=257)
    g = torch.randn(ids.numel(), tables[0].shape[1])
    for tables_grad in ([False, False, False], [True, False, True]):
        args = (g, tables, sw, off, src, row, ew, ids, renormalize, True, tables_grad, False)
        full = torch.ops.embedfast.gather_bags_backward(*args)
        part = torch.ops.embedfast.gather_bags_backward(*args, False)
        assert full[1].shape == (ew.numel(),) and part[1].shape == (0,)
        assert torch.equal(full[0], part[0])
        for a, b in zip(full[2] + full[3], part[2] + part[3]):
            assert torch.equal(a, b)
    # through autograd: entry weights that need no gradient never get one, source weights get the same one
    sw1 = sw.clone().requires_grad_()
    ew1 = ew.clone().requires_grad_()
    (gather_bags(tables, sw1, off, src, row, ew1, ids, renormalize=renormalize) * g).sum().backward()
    sw2 = sw.clone().requires_grad_()
    (gather_bags(tables, sw2, off, src, row, ew, ids, renormalize=renormalize) * g).sum().backward()
    assert ew1.grad is not None and torch.equal(sw1.grad, sw2.grad)


# ---------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------


def _args():
    tables, sw, off, src, row, ew, ids = sample(7, noncontig=False)
    return dict(tables=tables, source_weight=sw, bag_offsets=off, entry_source=src, entry_row=row,
                entry_weight=ew, ids=ids)


def _call(**kw):
    a = _args()
    a.update(kw)
    return gather_bags(a["tables"], a["source_weight"], a["bag_offsets"], a["entry_source"], a["entry_row"],
                       a["entry_weight"], a["ids"])


def test_bad_entry_row_names_source_and_position():
    a = _args()
    row = a["entry_row"].clone()
    pos = int((a["bag_offsets"][a["ids"][0]]))  # an entry that is used
    if a["bag_offsets"][a["ids"][0] + 1] == pos:
        pos = 0
        a["ids"] = torch.cat([torch.searchsorted(a["bag_offsets"], torch.tensor([0]), right=True) - 1, a["ids"]])
    k = int(a["entry_source"][pos])
    row[pos] = a["tables"][k].shape[0]
    with pytest.raises(IndexError, match=rf"entry_row.*position {pos}.*source {k}.*tables\[{k}\] has"):
        _call(entry_row=row, ids=a["ids"])
    src = a["entry_source"].clone()
    src[pos] = 9
    with pytest.raises(IndexError, match=rf"entry_source.*9 at position {pos}"):
        _call(entry_source=src, ids=a["ids"])


def test_bad_entry_in_backward_is_caught_too():
    # an out-of-range row is reported, not read, whichever pass meets it first
    t = [torch.randn(3, 4, requires_grad=True)]
    with pytest.raises(IndexError, match="entry_row"):
        gather_bags(t, torch.ones(1), torch.tensor([0, 1]), torch.tensor([0]), torch.tensor([3]), torch.ones(1),
                    torch.tensor([0]), renormalize=False)


@pytest.mark.parametrize("kw, match", [
    (dict(ids=torch.tensor([0, 99])), r"'ids' has value 99"),
    (dict(ids=torch.tensor([-1])), r"'ids' has value -1"),
    (dict(ids=torch.tensor([0.5])), r"'ids' must have dtype Long"),
    (dict(bag_offsets=torch.tensor([0, 1], dtype=torch.int32)), r"'bag_offsets' must have dtype Long"),
    (dict(entry_row=torch.tensor([0.0])), r"'entry_row' must have dtype Long"),
    (dict(entry_weight=torch.tensor([1.0], dtype=torch.float64)), r"'entry_weight' must have dtype Float"),
    (dict(source_weight=torch.ones(3, dtype=torch.float64)), r"'source_weight' must have dtype Float"),
    (dict(source_weight=torch.ones(2)), r"one weight per table \(3\)"),
    (dict(tables=[torch.randn(4, 13), torch.randn(4, 12), torch.randn(4, 13)]), r"share one dimension D"),
    (dict(tables=[torch.randn(4, 13), torch.randn(4, 13).double(), torch.randn(4, 13)]), r"share one dtype"),
    (dict(tables=[torch.randint(0, 3, (4, 13))] * 3), r"'tables\[0\]' must be float32"),
    (dict(tables=[torch.randn(4, 13), torch.randn(13), torch.randn(4, 13)]), r"'tables\[1\]' must be 2-D"),
    (dict(tables=[]), r"at least one table"),
    (dict(entry_weight=torch.ones(1)), r"must have the same length"),
    (dict(bag_offsets=torch.tensor([1, 2])), r"must start at 0"),
])
def test_bad_arguments(kw, match):
    with pytest.raises((ValueError, IndexError, TypeError, RuntimeError), match=match):
        _call(**kw)


def test_bad_offsets():
    a = _args()
    off = a["bag_offsets"].clone()
    off[-1] += 1
    with pytest.raises(ValueError, match="must end at the number of entries"):
        _call(bag_offsets=off)
    off = a["bag_offsets"].clone()
    i = int((off[1:] > off[:-1]).nonzero()[0, 0]) + 1
    off[i] = off[i + 1] + 1 if i + 1 < off.numel() - 1 else off[i]
    off[i], off[i - 1] = off[i - 1].clone() - 1 if off[i - 1] > 0 else off[i], off[i - 1]
    if bool((off[1:] >= off[:-1]).all()):
        off = torch.tensor([0, 2, 1] + [1] * (a["bag_offsets"].numel() - 4) + [int(a["bag_offsets"][-1])])
    with pytest.raises(ValueError, match="nondecreasing"):
        _call(bag_offsets=off)


# ---------------------------------------------------------------------------------------------------------
# MultiSourceEmbedding
# ---------------------------------------------------------------------------------------------------------


def make_index(seed, V=23, sizes=(30, 25, 40), missing=0.3):
    g = torch.Generator().manual_seed(seed)
    index = torch.stack([torch.randint(0, n, (V,), generator=g) for n in sizes], 1)
    index[torch.rand(V, len(sizes), generator=g) < missing] = -1
    index[4] = -1  # a word in no source
    return index


def module_reference(tables, index, a, ids, renormalize):
    out = torch.zeros(*ids.shape, tables[0].shape[1], dtype=torch.float64)
    for pos in range(ids.numel()):
        v = int(ids.reshape(-1)[pos])
        acc, s = torch.zeros(tables[0].shape[1], dtype=torch.float64), 0.0
        for k in range(len(tables)):
            if index[v, k] >= 0:
                acc += float(a[k]) * tables[k][index[v, k]].double()
                s += float(a[k])
        out.view(-1, out.shape[-1])[pos] = acc / s if renormalize and s > 0 else acc
    return out


@pytest.mark.parametrize("renormalize", [True, False])
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_module_matches_issue_formula(poisoned, renormalize, dtype):
    seed = random.randrange(10**6)
    g = torch.Generator().manual_seed(seed)
    tables = [torch.randn(n, 6, generator=g).to(dtype) for n in (30, 25, 40)]
    index = make_index(seed)
    m = MultiSourceEmbedding(tables, index, weights=[0.2, 0.5, 0.3], renormalize=renormalize)
    ids = torch.randint(0, 23, (3, 7), generator=g)
    ids[0, 0] = 4
    out = m(ids)
    assert out.shape == (3, 7, 6) and out.dtype == dtype
    ref = module_reference(tables, index, m.source_weights().detach(), ids, renormalize)
    torch.testing.assert_close(out.double(), ref, **tolerance(dtype), msg=f"seed {seed}")
    assert torch.equal(out[0, 0], torch.zeros(6, dtype=dtype))
    assert [n for n, _ in m.named_parameters()] == ["logits"]
    emb = m.materialize()
    assert isinstance(emb, nn.Embedding) and not emb.weight.requires_grad
    torch.testing.assert_close(emb(ids), out.detach())


def test_module_parameters_and_grads():
    tables = [torch.randn(n, 5) for n in (30, 25, 40)]
    index = make_index(1)
    frozen = MultiSourceEmbedding(tables, index)
    assert {n for n, _ in frozen.named_parameters()} == {"logits"}
    fixed = MultiSourceEmbedding(tables, index, learn_weights=False, freeze_tables=False)
    assert {n for n, _ in fixed.named_parameters()} == {"table_0", "table_1", "table_2"}
    sp = MultiSourceEmbedding(tables, index, freeze_tables=False, sparse=True)
    sp(torch.tensor([0, 1, 2, 2])).sum().backward()
    assert sp.table_0.grad.is_sparse and sp.logits.grad is not None
    torch.optim.SGD(sp.parameters(), lr=0.1).step()  # sparse grads work with SGD


def test_module_bad_input():
    tables = [torch.randn(n, 5) for n in (30, 25, 40)]
    index = make_index(2)
    bad = index.clone()
    bad[3, 1] = 25
    with pytest.raises(IndexError, match=r"index\[3, 1\] = 25 is out of range for source 1"):
        MultiSourceEmbedding(tables, bad)
    with pytest.raises(ValueError, match="3 columns but there are 2 tables"):
        MultiSourceEmbedding(tables[:2], index)
    with pytest.raises(ValueError, match="different dims"):
        MultiSourceEmbedding([tables[0], torch.randn(25, 4), tables[2]], index)
    with pytest.raises(ValueError, match="index must be int64"):
        MultiSourceEmbedding(tables, index.float())
    with pytest.raises(ValueError, match="one value per source"):
        MultiSourceEmbedding(tables, index, weights=[1.0, 2.0])
    m = MultiSourceEmbedding(tables, index)
    with pytest.raises(IndexError, match="'ids' has value 23"):
        m(torch.tensor([23]))
    with pytest.raises(TypeError, match="ids must be int64"):
        m(torch.tensor([1.0]))


@pytest.mark.parametrize("oov", ["zeros", "random", "mean"])
def test_oov_policy(oov):
    tables = [torch.randn(n, 5) for n in (30, 25, 40)]
    index = make_index(3)
    index[7] = -1
    m = MultiSourceEmbedding(tables, index, oov=oov, oov_scale=0.5, generator=torch.Generator().manual_seed(0))
    out = m(torch.tensor([4, 7, 0]))
    covered = (index >= 0).any(1).nonzero().flatten()
    ref_mean = m.materialize().weight[covered].mean(0)
    if oov == "zeros":
        assert torch.equal(out[:2], torch.zeros(2, 5))
    elif oov == "random":
        assert not torch.equal(out[0], out[1]) and out[:2].abs().sum() > 0
    else:
        torch.testing.assert_close(out[0], ref_mean, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out[1], ref_mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[2], MultiSourceEmbedding(tables, index)(torch.tensor([0]))[0])


class FakeVectors:
    """Duck-typed stand-in for embedfast.Vectors (words + matrix)."""

    def __init__(self, words, matrix):
        self.words, self.matrix = list(words), matrix

    @property
    def dim(self):
        return self.matrix.shape[1]


def test_from_vectors_coverage_and_lowercase():
    a = FakeVectors(["the", "cat", "sat", "on"], torch.randn(4, 3))
    b = FakeVectors(["cat", "dog", "mat", "The"], torch.randn(4, 3))
    vocab = ["The", "cat", "dog", "Sat", "zebra"]
    m = MultiSourceEmbedding.from_vectors(vocab, [a, b], learn_weights=False)
    cov = m.coverage["sources"]
    assert (cov[0]["found"], cov[0]["found_lowercase"], cov[0]["missing"]) == (1, 2, 2)  # cat; The->the, Sat->sat
    assert (cov[1]["found"], cov[1]["found_lowercase"], cov[1]["missing"]) == (3, 0, 2)  # The, cat, dog
    assert m.coverage["no_source"] == 1
    out = m(torch.arange(5))
    torch.testing.assert_close(out[0], (a.matrix[0] + b.matrix[3]) / 2)
    torch.testing.assert_close(out[2], b.matrix[1])
    torch.testing.assert_close(out[3], a.matrix[2])
    assert torch.equal(out[4], torch.zeros(3))
    assert "zebra" not in m.coverage_report() and "source0" in m.coverage_report()
    strict = MultiSourceEmbedding.from_vectors(vocab, [a, b], lowercase_fallback=False)
    assert strict.coverage["sources"][0]["found_lowercase"] == 0 and strict.coverage["sources"][0]["missing"] == 4
    # dict vocab (word -> id) works the same
    m2 = MultiSourceEmbedding.from_vectors({w: i for i, w in enumerate(vocab)}, [a, b], learn_weights=False)
    torch.testing.assert_close(m2(torch.arange(5)), out)


def test_from_vectors_projection_when_dims_differ():
    a = FakeVectors(["x", "y", "z"], torch.randn(3, 4))
    b = FakeVectors(["y", "z", "w"], torch.randn(3, 6))
    m = MultiSourceEmbedding.from_vectors(["x", "y", "w", "q"], [a, b], project_to=6, learn_weights=False)
    out = m(torch.arange(4))
    assert out.shape == (4, 6)
    torch.testing.assert_close(out[0], m.projections["0"](a.matrix[0]))
    torch.testing.assert_close(out[1], (m.projections["0"](a.matrix[1]) + b.matrix[0]) / 2)
    torch.testing.assert_close(out[2], b.matrix[2])
    assert torch.equal(out[3], torch.zeros(6))
    out.sum().backward()
    assert m.projections["0"].weight.grad is not None


def test_attention_mode():
    tables = [torch.randn(n, 5) for n in (30, 25, 40)]
    index = make_index(4)
    index[9] = torch.tensor([-1, 3, -1])
    m = MultiSourceEmbedding(tables, index, mode="attention", project_to=4)
    out = m(torch.tensor([[9, 4], [0, 1]]))
    assert out.shape == (2, 2, 4)
    torch.testing.assert_close(out[0, 0], m.projections["1"](tables[1][3]))  # one source present: weight 1
    assert torch.equal(out[0, 1], torch.zeros(4))  # no source
    v = 0
    ys = [m.projections[str(k)](tables[k][index[v, k]]) for k in range(3) if index[v, k] >= 0]
    s = torch.softmax(torch.stack([m.scorer(y).squeeze() for y in ys]), 0)
    torch.testing.assert_close(out[1, 0], sum(w * y for w, y in zip(s, ys)))
    out.sum().backward()
    assert m.scorer.weight.grad is not None


def test_subwords_and_char_ngrams():
    assert char_ngrams("ab", 3, 4) == ["<ab", "ab>", "<ab>"]
    pieces = ["<ca", "cat", "at>", "<do", "dog"]
    vec = FakeVectors(pieces, torch.randn(5, 3))
    m = MultiSourceEmbedding.from_subwords(["cat", "dog", "zz"], vec, ngrams=(3, 3))
    out = m(torch.arange(3))
    torch.testing.assert_close(out[0], vec.matrix[:3].mean(0))
    torch.testing.assert_close(out[1], vec.matrix[3:5].mean(0))
    assert torch.equal(out[2], torch.zeros(3))
    s = subword_source(["cat"], vec, tokenize=lambda w: ["cat", "nope"])
    assert s.coverage["pieces"] == 2 and s.coverage["pieces_found"] == 1


class FakeTokenizer:
    def __init__(self, pieces):
        self.pieces = pieces

    def encode(self, text, add_special_tokens=True):
        out = [] if not add_special_tokens else [0]
        i = 0
        while i < len(text):  # greedy longest match
            for j in range(len(text), i, -1):
                if text[i:j] in self.pieces:
                    out.append(self.pieces[text[i:j]])
                    i = j
                    break
            else:
                i += 1
        return out


class FakeModel:
    def __init__(self, emb):
        self.emb = emb

    def get_input_embeddings(self):
        return self.emb


def test_from_huggingface_fake_model():
    emb = nn.Embedding(6, 4)
    tok = FakeTokenizer({"play": 2, "ing": 3, "er": 4, "s": 5})
    m = MultiSourceEmbedding.from_huggingface(["playing", "players", "xyz"], FakeModel(emb), tok)
    out = m(torch.arange(3))
    w = emb.weight.detach()
    torch.testing.assert_close(out[0], (w[2] + w[3]) / 2)
    torch.testing.assert_close(out[1], (w[2] + w[4] + w[5]) / 3)
    assert torch.equal(out[2], torch.zeros(4))
    assert m.coverage["sources"][0]["missing"] == 1
    with pytest.raises(TypeError, match="get_input_embeddings"):
        huggingface_source(["a"], object(), tok)


def test_from_huggingface_path_needs_transformers():
    try:
        import transformers  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="transformers"):
            huggingface_source(["a"], "/nonexistent/model")
    else:
        with pytest.raises(Exception):
            huggingface_source(["a"], "/nonexistent/model")


def test_alignment_and_procrustes():
    g = torch.Generator().manual_seed(0)
    src = FakeVectors([f"s{i}" for i in range(20)], torch.randn(20, 5, generator=g))
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g))
    tgt = FakeVectors([f"t{i}" for i in range(20)], src.matrix @ q)
    w = procrustes(src.matrix, tgt.matrix)
    torch.testing.assert_close(w, q, atol=1e-4, rtol=1e-4)
    alignment = {"a": [("s1", 0.3), ("s2", 0.1), ("nope", 0.5)], "b": [("s3", 1.0)], "c": []}
    m = MultiSourceEmbedding.from_alignment(["a", "b", "c"], src, alignment)
    out = m(torch.arange(3))
    torch.testing.assert_close(out[0], (0.3 * src.matrix[1] + 0.1 * src.matrix[2]) / 0.4)
    assert m.coverage["sources"][0]["pairs_dropped"] == 1 and m.coverage["no_source"] == 1
    seed = [(f"s{i}", f"t{i}") for i in range(10)]
    mapped = MultiSourceEmbedding.from_alignment(["a", "b"], src, alignment, seed_dictionary=seed, target_vectors=tgt)
    torch.testing.assert_close(mapped(torch.tensor([1]))[0], tgt.matrix[3], atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="probability"):
        alignment_source(["a"], src, {"a": [("s1", -1.0)]})


def test_vector_source_rejects_non_vectors():
    with pytest.raises(TypeError, match="Vectors-like"):
        vector_source(["a"], object())


def test_torch_compile_fullgraph():
    torch._dynamo.reset()
    tables = [torch.randn(n, 8) for n in (30, 25, 40)]
    index = make_index(5)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = MultiSourceEmbedding(tables, index, freeze_tables=False)
            self.head = nn.Linear(8, 3)

        def forward(self, ids):
            return self.head(self.emb(ids).mean(1))

    eager = Model()
    compiled = Model()
    compiled.load_state_dict(eager.state_dict())
    cfn = torch.compile(compiled, fullgraph=True)
    ids = torch.randint(0, 23, (4, 6))
    out_e, out_c = eager(ids), cfn(ids)
    torch.testing.assert_close(out_c, out_e)
    out_e.square().sum().backward()
    out_c.square().sum().backward()
    for (n, p), (_, q) in zip(eager.named_parameters(), compiled.named_parameters()):
        torch.testing.assert_close(q.grad, p.grad, msg=n)


def _ddp_worker(rank, world, path, init_file):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))
    try:
        torch.manual_seed(0)
        tables = [torch.randn(n, 6) for n in (30, 25, 40)]
        m = DDP(MultiSourceEmbedding(tables, make_index(6), freeze_tables=False))
        ids = torch.randint(0, 23, (8, 5))
        local = ids.chunk(world)[rank]
        m(local).square().mean().backward()
        if rank == 0:
            torch.save({n: p.grad for n, p in m.module.named_parameters()}, path)
        dist.barrier()  # no rank tears the group down while the other still uses it
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes_match_one():
    from embedfast.testing import spawn_with_timeout

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "grads.pt")
        spawn_with_timeout(_ddp_worker, lambda attempt: (2, path, os.path.join(d, f"init{attempt}")), nprocs=2)
        ddp = torch.load(path)
    torch.manual_seed(0)
    tables = [torch.randn(n, 6) for n in (30, 25, 40)]
    m = MultiSourceEmbedding(tables, make_index(6), freeze_tables=False)
    ids = torch.randint(0, 23, (8, 5))
    m(ids).square().mean().backward()
    assert set(ddp) == {"logits", "table_0", "table_1", "table_2"}
    for n, p in m.named_parameters():
        torch.testing.assert_close(ddp[n], p.grad, msg=n)


def test_exported():
    assert embedfast.MultiSourceEmbedding is MultiSourceEmbedding


def test_cli_fuse(tmp_path, capsys):
    from embedfast.cli import main

    a = tmp_path / "a.txt"
    b = tmp_path / "b.txt"
    a.write_text("the 1 2\ncat 3 4\n")
    b.write_text("2 2\ncat 5 8\nDog 1 1\n")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("the\ncat\ndog\nzebra\n")
    out = tmp_path / "out.txt"
    assert main(["fuse", str(a), str(b), "-o", str(out), "--weights", "1,3", "--vocab", str(vocab)]) == 0
    lines = [line.split() for line in out.read_text().splitlines()]
    assert [l[0] for l in lines] == ["the", "cat", "dog", "zebra"]
    got = torch.tensor([[float(x) for x in l[1:]] for l in lines])
    want = torch.tensor([[1, 2], [(3 + 3 * 5) / 4, (4 + 3 * 8) / 4], [0, 0], [0, 0]])  # 'dog' != 'Dog'
    torch.testing.assert_close(got, want)
    printed = capsys.readouterr().out
    assert "(2 in no source, written as zeros)" in printed and "found 1, lower-cased 0, missing 3" in printed
    assert main(["fuse", str(a), str(b), "-o", str(out)]) == 0  # union vocabulary
    assert [l.split()[0] for l in out.read_text().splitlines()] == ["the", "cat", "Dog"]
    assert main(["fuse", str(a), str(b), "-o", str(out), "--weights", "1"]) == 2
    assert "--weights has 1 values for 2 inputs" in capsys.readouterr().err


def test_from_vectors_with_embedfast_vectors(tmp_path):
    a = embedfast.Vectors(["the", "cat"], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    path = tmp_path / "b.txt"
    path.write_text("cat 5 8\nThe 1 1\n")
    b = embedfast.load_vectors(str(path))
    m = MultiSourceEmbedding.from_vectors(["The", "cat"], [a, b], learn_weights=False)
    torch.testing.assert_close(m(torch.arange(2)), torch.tensor([[1.0, 1.5], [4.0, 6.0]]))
    assert m.coverage["sources"][0]["found_lowercase"] == 1


def _anon_huge_kb(ptr):
    """AnonHugePages (kB) of the mapping that holds address ptr (0 if none)."""
    m = _smaps_field(ptr, "AnonHugePages")
    return int(m[2][0]) if m else 0


def test_advise_huge_pages_keeps_values_and_collapses():
    from embedfast.fusion import advise_huge_pages

    t = torch.randn(7000, 300)  # 8.4 MB: at least 3 whole 2 MiB pages inside
    want = t.clone()
    view = t[5:9]
    n = advise_huge_pages(t)
    if n == 0:
        pytest.skip("this kernel / platform does not collapse anonymous memory into huge pages (MADV_COLLAPSE)")
    assert n % (2 << 20) == 0 and n >= 3 * (2 << 20)
    assert _anon_huge_kb(t.data_ptr() + t.numel() * 2) > 0
    assert torch.equal(t, want) and torch.equal(view, want[5:9])
    t[3] = 1.5  # still an ordinary, writable tensor sharing its memory with views
    assert bool((t[3] == 1.5).all())
    assert advise_huge_pages(torch.randn(10, 3)) == 0  # smaller than one huge page: nothing to do
    with pytest.raises(TypeError, match="'t' must be a tensor"):
        advise_huge_pages([1.0])


def test_module_huge_pages_option_keeps_sharing():
    tables = [torch.randn(4000, 300) for _ in range(2)]
    index = torch.stack([torch.arange(4000), torch.arange(4000).flip(0)], 1)
    ids = torch.randint(0, 4000, (50,))
    outs = []
    for hp in (True, False):
        emb = MultiSourceEmbedding(tables, index, huge_pages=hp)
        assert emb.table_0.data_ptr() == tables[0].data_ptr()  # frozen tables still share the given memory
        outs.append(emb(ids))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
