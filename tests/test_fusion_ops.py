"""gather_bags op (CPU): against a plain reference, gradients, determinism, huge-page outputs, opcheck, bad input."""
from __future__ import annotations

import random

import pytest
import torch

from embedfast.ops import gather_bags
from embedfast.testing import tolerance
from fusion_util import ALL_DTYPES, _mapping_of, _on_huge_page_mapping, reference, sample


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

    def expected(r):  # the reference leaves .grad None where no chosen bag reads the tensor: the op gives zeros
        return r.grad if r.grad is not None else torch.zeros_like(r)

    torch.testing.assert_close(sw.grad.double(), expected(sw_r), **tol, msg=msg)
    torch.testing.assert_close(ew.grad.double(), expected(ew_r), **tol, msg=msg)
    for t, r in zip(tables[:2], ref_tables[:2]):
        gt = t.grad
        if sparse:
            assert gt.is_sparse
            idx = gt._indices()[0]
            assert idx.numel() == torch.unique(idx).numel()  # one row per distinct table row (coalesced)
            gt = gt.to_dense()
        else:
            assert gt.layout == torch.strided and gt.shape == t.shape
        torch.testing.assert_close(gt.double(), expected(r), **tol, msg=msg)
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
