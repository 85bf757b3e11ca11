"""CUDA kernels of gather_bags (csrc/cuda/fusion.cu) against the C++ CPU op and a float64 reference,
device-parametrised (tests/cuda_util.py): "cpu" runs the CPU op, "cuda" the CUDA kernel (marker ``gpu``; skipped
without a GPU or a build with EMBEDFAST_CUDA=1). Random bags with empty bags, repeated and hot rows, duplicate and
non-contiguous ids, non-contiguous tables and odd sizes (D = 13: element loads; D = 64: 16-byte loads), outputs
poisoned (NaN-filled allocations), fresh seeds each run.
"""
from __future__ import annotations

import random

import pytest
import torch

from cuda_util import CUDA_ONLY, DEVICES
from fusion_util import ALL_DTYPES, reference, sample

import embedfast  # noqa: F401
from embedfast.ops import gather_bags
from embedfast.testing import tolerance

OPS = torch.ops.embedfast


def on(device, x):
    if isinstance(x, (list, tuple)):
        return [on(device, y) for y in x]
    return x.to(device) if isinstance(x, torch.Tensor) else x


def backend(device):
    return "cpu" if device == "cpu" else "cuda"


def hot_sample(seed, dtype, D):
    """Every entry names row 0 of its table, and every id is one of two bags: hot rows and hot ids."""
    tables, sw, off, src, row, ew, ids = sample(seed, dtype, D=D, B=9, N=300)
    row = torch.zeros_like(row)
    ids = (ids % 2) + 1
    return tables, sw, off, src, row, ew, ids


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("renormalize", [True, False])
@pytest.mark.parametrize("D,hot", [(13, False), (64, False), (64, True)])
def test_forward_matches_reference(device, dtype, renormalize, D, hot, poisoned):
    seed = random.randrange(1 << 30)
    args = hot_sample(seed, dtype, D) if hot else sample(seed, dtype, D=D)
    want = reference(*args, renormalize)
    got = gather_bags(*on(device, list(args)), renormalize=renormalize, backend=backend(device))
    assert got.dtype == dtype and got.shape == want.shape
    torch.testing.assert_close(got.cpu().double(), want, **tolerance(dtype), msg=lambda m: f"seed {seed}: {m}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("renormalize", [True, False])
@pytest.mark.parametrize("D,hot", [(13, False), (64, True)])
def test_backward_matches_cpu_op(device, dtype, renormalize, D, hot, poisoned):
    """Dense table gradients, source- and entry-weight gradients against the CPU op; bitwise the same on a second
    run (sorted, atomics-free reductions)."""
    seed = random.randrange(1 << 30)
    tables, sw, off, src, row, ew, ids = hot_sample(seed, dtype, D) if hot else sample(seed, dtype, D=D)
    grad = torch.randn(ids.numel(), D, dtype=torch.float64).to(dtype)
    flags = [True, False, True]
    ref = OPS.gather_bags_backward(grad, tables, sw, off, src, row, ew, ids.contiguous(), renormalize, True, flags,
                                   False, True)
    d = on(device, [grad, tables, sw, off, src, row, ew, ids.contiguous()])
    got = OPS.gather_bags_backward(*d, renormalize, True, flags, False, True)
    tol = tolerance(dtype)
    if dtype in (torch.float16, torch.bfloat16):
        tol = dict(atol=tol["atol"] * 4, rtol=tol["rtol"] * 4)  # fp32 sums in another order of fp16 products
    torch.testing.assert_close(got[0].cpu(), ref[0], **tol, msg=lambda m: f"seed {seed} source weights: {m}")
    torch.testing.assert_close(got[1].cpu(), ref[1], **tol, msg=lambda m: f"seed {seed} entry weights: {m}")
    for k in range(3):
        torch.testing.assert_close(got[2][k].cpu(), ref[2][k], **tol, msg=lambda m: f"seed {seed} table {k}: {m}")
        assert got[3][k].numel() == 0
    again = OPS.gather_bags_backward(*d, renormalize, True, flags, False, True)
    assert torch.equal(again[0], got[0]) and torch.equal(again[1], got[1])
    assert all(torch.equal(a, b) for a, b in zip(again[2], got[2]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("weights_grad,entry_weight_grad", [(True, False), (False, True)])
def test_backward_partial_needs(device, weights_grad, entry_weight_grad):
    tables, sw, off, src, row, ew, ids = sample(random.randrange(1 << 30), torch.float32)
    grad = torch.randn(ids.numel(), tables[0].shape[1])
    args = [grad, tables, sw, off, src, row, ew, ids.contiguous()]
    flags = [False, True, False] if weights_grad else [True, True, True]
    ref = OPS.gather_bags_backward(*args, True, weights_grad, flags, False, entry_weight_grad)
    got = OPS.gather_bags_backward(*on(device, args), True, weights_grad, flags, False, entry_weight_grad)
    for a, b in zip(got[:2], ref[:2]):
        assert a.shape == b.shape
        torch.testing.assert_close(a.cpu(), b, atol=1e-5, rtol=1e-5)
    for a, b in zip(got[2], ref[2]):
        assert a.shape == b.shape
        torch.testing.assert_close(a.cpu(), b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_double_and_opcheck(device):
    tables, sw, off, src, row, ew, ids = on(device, list(sample(11, torch.float64, D=5, B=6, N=9)))
    tables = [t.detach().clone().requires_grad_() for t in tables]
    sw, ew = sw.clone().requires_grad_(), ew.clone().requires_grad_()

    def f(sw_, ew_, *ts):
        return gather_bags(list(ts), sw_, off, src, row, ew_, ids, renormalize=True, backend=backend(device))

    assert torch.autograd.gradcheck(f, (sw, ew, *tables))
    torch.library.opcheck(OPS.gather_bags.default, ([t.detach() for t in tables], sw.detach(), off, src, row,
                                                    ew.detach(), ids.contiguous(), True, False))


@pytest.mark.parametrize("device", DEVICES)
def test_bad_input_same_errors_as_cpu(device):
    tables, sw, off, src, row, ew, ids = sample(5, torch.float32)

    def err(**change):
        a = dict(tables=tables, sw=sw, off=off, src=src, row=row, ew=ew, ids=ids.contiguous())
        a.update(change)
        msgs = []
        for dev in ("cpu", device):
            with pytest.raises((ValueError, IndexError)) as e:
                OPS.gather_bags(*on(dev, [a["tables"], a["sw"], a["off"], a["src"], a["row"], a["ew"], a["ids"]]),
                                True, False)
            msgs.append((type(e.value), str(e.value).split("\n")[0]))
        assert msgs[0] == msgs[1], msgs
        return msgs[1][1]

    E = src.numel()
    bad_off = off.clone()
    bad_off[3], bad_off[4] = bad_off[4] + 1, bad_off[4]
    assert "nondecreasing" in err(off=bad_off) or "end at" in err(off=bad_off)
    o0 = off.clone()
    o0[0] = 1
    assert "must start at 0" in err(off=o0)
    bid = ids.contiguous().clone()
    bid[5] = 10**6
    assert "'ids' has value 1000000 at flat position 5" in err(ids=bid)
    used = int(off[int(ids[0]) + 1]) if E else 0
    bsrc = src.clone()
    e = int(off[int(ids[3])])
    if int(off[int(ids[3]) + 1]) > e:  # ids[3] names a bag with entries: spoil its first one
        bsrc[e] = 7
        assert f"'entry_source' has value 7 at position {e}" in err(src=bsrc)
        brow = row.clone()
        brow[e] = 10**5
        assert "'entry_row' has value 100000" in err(row=brow)
    assert "one weight per table" in err(sw=sw[:2])
    assert used >= 0


@pytest.mark.parametrize("device", CUDA_ONLY)
def test_cuda_compile_fullgraph_and_cuda_graphs(device):
    """torch.compile(fullgraph=True) and mode="reduce-overhead" (CUDA graphs) over the CUDA op: forward and
    backward (learned source weights, frozen tables), the same values as eager."""
    tables, sw, off, src, row, ew, ids = on(device, list(sample(8, torch.float32, D=64, N=200)))
    sw = sw.clone().requires_grad_()

    def f(w):
        return gather_bags(tables, w, off, src, row, ew, ids, renormalize=True, backend="cuda").square().sum()

    want = f(sw)
    (g_want,) = torch.autograd.grad(want, sw)
    for mode in ("default", "reduce-overhead"):
        cf = torch.compile(f, fullgraph=True, mode=mode)
        for _ in range(3):  # reduce-overhead records the graph on a later call
            got = cf(sw)
            (g_got,) = torch.autograd.grad(got, sw)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(g_got, g_want)


@pytest.mark.parametrize("device", CUDA_ONLY)
def test_cuda_graph_capture_skips_read_backs_and_stays_in_bounds(device):
    tables, sw, off, src, row, ew, ids = on(device, list(sample(9, torch.float32, D=64, N=50)))
    ids = ids.contiguous()
    want = OPS.gather_bags(tables, sw, off, src, row, ew, ids, True, False)
    graph = torch.cuda.CUDAGraph()
    static_ids = ids.clone()
    torch.cuda.synchronize()
    with torch.cuda.graph(graph):
        out = OPS.gather_bags(tables, sw, off, src, row, ew, static_ids, True, False)
    graph.replay()
    torch.testing.assert_close(out, want)
    static_ids[0] = 10**6  # a bad id under replay: a zero row, no fault
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(out[0], torch.zeros_like(out[0])) and torch.equal(out[1:], want[1:])


@pytest.mark.parametrize("device", CUDA_ONLY)
def test_cuda_sparse_table_grads_say_so(device):
    tables, sw, off, src, row, ew, ids = on(device, list(sample(3, torch.float32)))
    grad = torch.ones(ids.numel(), tables[0].shape[1], device=device)
    with pytest.raises(ValueError, match="sparse table gradients.*not implemented by the CUDA kernel"):
        OPS.gather_bags_backward(grad, tables, sw, off, src, row, ew, ids.contiguous(), True, True,
                                 [True, True, True], True, True)
