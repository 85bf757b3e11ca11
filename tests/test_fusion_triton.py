"""Triton kernels of gather_bags against the C++ CPU op: forward, backward, fused row-wise update, autograd,
opcheck, torch.compile, backend selection and bad input; the deprecated alias ``embedfast.triton.gather``.

Without a GPU the kernels run in Triton's interpreter on CPU tensors: tests/conftest.py sets TRITON_INTERPRET=1
for the whole session before anything imports triton (``@triton.jit`` decides at decoration time), so this module
runs in a whole-suite run as well as alone. (It replaces tests/test_gather_triton_interpreter.py, which re-ran
this file in a child process only when triton had been imported without the interpreter; since conftest.py
sets the variable that never happened, so it always skipped.) A machine without a GPU whose kernels were
nevertheless compiled fails here, loudly, unless the caller set TRITON_INTERPRET to another value on purpose.
On a machine with CUDA the same tests run the compiled kernels on CUDA tensors. Sizes are tiny: the interpreter
is slow.
"""
from __future__ import annotations

import importlib.util
import os
import random
import sys
import warnings

import pytest
import torch

pytest.importorskip("triton")
from embedfast.fusion import triton as tg  # noqa: E402

import embedfast  # noqa: E402,F401
from embedfast import MultiSourceEmbedding  # noqa: E402
from embedfast.ops import gather_backend, gather_bags  # noqa: E402
from embedfast.testing import tolerance  # noqa: E402

if tg.INTERPRETED:
    DEV = "cpu"
elif torch.cuda.is_available():
    DEV = "cuda"
elif os.environ.get("TRITON_INTERPRET", "1") != "1":  # pragma: no cover - the caller turned the interpreter off
    pytest.skip(f"no GPU and TRITON_INTERPRET={os.environ['TRITON_INTERPRET']!r} set by the caller: the Triton "
                "kernels cannot run here", allow_module_level=True)
else:  # pragma: no cover - triton imported before tests/conftest.py set TRITON_INTERPRET
    pytest.fail("embedfast.fusion.triton was imported with compiled kernels and there is no GPU: triton must not be "
                "imported before tests/conftest.py sets TRITON_INTERPRET=1", pytrace=False)


def test_triton_kernels_really_run_here():
    """What tests/test_gather_triton_interpreter.py checked: every test of this module runs on this machine, in
    the interpreter without a GPU and compiled with one."""
    assert "embedfast.fusion.triton" in sys.modules
    if not torch.cuda.is_available():
        assert tg.INTERPRETED and DEV == "cpu"
    assert DEV == ("cpu" if tg.INTERPRETED else "cuda")


def test_old_module_path_is_a_warning_alias():
    sys.modules.pop("embedfast.triton.gather", None)
    with pytest.warns(DeprecationWarning, match="embedfast.fusion.triton"):
        old = importlib.import_module("embedfast.triton.gather")
    for name in tg.__all__:
        assert getattr(old, name) is getattr(tg, name), name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.import_module("embedfast.fusion.triton")  # the new path does not warn


@pytest.fixture(autouse=True)
def _interpreter_env(monkeypatch):
    """The interpreter reads TRITON_INTERPRET at run time too: set it while this module's tests run."""
    if tg.INTERPRETED:
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    yield


OPS = torch.ops.embedfast
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def wdtype(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def sample(seed, dtype=torch.float32, K=3, D=13, B=11, N=23, hot=False):
    """Random bags on the CPU: empty bags (missing words), several entries of one source, repeated rows,
    duplicate and non-contiguous ids, non-contiguous tables (a column slice and a transposed one), odd sizes.
    hot: every entry points at row 0 of its table (hot rows)."""
    g = torch.Generator().manual_seed(seed)
    rows_per = [int(torch.randint(1, 9, (1,), generator=g)) for _ in range(K)]
    tables = []
    for k, v in enumerate(rows_per):
        if k == 0:
            t = torch.randn(v, D + 3, generator=g, dtype=torch.float64)[:, 1:1 + D]
        elif k == 1:
            t = torch.randn(D, v, generator=g, dtype=torch.float64).t()
        else:
            t = torch.randn(v, D, generator=g, dtype=torch.float64)
        tables.append(t.to(dtype))
    sizes = torch.randint(0, 5, (B,), generator=g)
    sizes[0] = 0  # an empty bag: a word no source has
    off = torch.zeros(B + 1, dtype=torch.int64)
    off[1:] = sizes.cumsum(0)
    E = int(off[-1])
    src = torch.randint(0, K, (E,), generator=g)
    row = torch.tensor([0 if hot else int(torch.randint(0, rows_per[int(k)], (1,), generator=g)) for k in src],
                       dtype=torch.int64)
    ew = (torch.rand(E, generator=g, dtype=torch.float64) + 0.1).to(wdtype(dtype))
    sw = (torch.rand(K, generator=g, dtype=torch.float64) + 0.1).to(wdtype(dtype))
    ids = torch.randint(0, B, (2 * N,), generator=g)[::2]  # non-contiguous, duplicates
    ids[0] = 0
    return tables, sw, off, src, row, ew, ids


def to_dev(x):
    if isinstance(x, (list, tuple)):
        return [to_dev(y) for y in x]
    return x.to(DEV) if isinstance(x, torch.Tensor) else x


def fresh(seed):
    return seed * 1000 + random.randrange(1000)  # fresh seeds each run, reported on failure


# ---------------------------------------------------------------------------------------------------------
# forward and backward against the CPU op
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("renormalize", [True, False])
def test_gather_triton_forward_matches_cpu_op(poisoned, dtype, renormalize):
    seed = fresh(1)
    tables, sw, off, src, row, ew, ids = sample(seed, dtype)
    want = OPS.gather_bags(tables, sw, off, src, row, ew, ids, renormalize, False)
    got = OPS.gather_bags_triton(to_dev(tables), *to_dev([sw, off, src, row, ew, ids]), renormalize, False)
    assert got.dtype == dtype and got.shape == want.shape
    assert torch.isfinite(got).all(), f"seed {seed}: unwritten (NaN-poisoned) elements"
    torch.testing.assert_close(got.cpu(), want, **tolerance(dtype), msg=lambda m: f"seed {seed}: {m}")
    assert (got[ids.to(DEV) == 0] == 0).all()  # the empty bag gives zeros


def test_gather_triton_forward_wide_rows_and_many_tables(poisoned):
    """D above the forward's column block (several column programs) and K = 5 tables."""
    seed = fresh(2)
    tables, sw, off, src, row, ew, ids = sample(seed, torch.float32, K=5, D=517, B=5, N=7)
    want = OPS.gather_bags(tables, sw, off, src, row, ew, ids, True, False)
    got = OPS.gather_bags_triton(to_dev(tables), *to_dev([sw, off, src, row, ew, ids]), True, False)
    torch.testing.assert_close(got.cpu(), want, msg=lambda m: f"seed {seed}: {m}")


def test_gather_triton_zero_weight_sum_and_empty_inputs(poisoned):
    t = to_dev([torch.randn(3, 4)])
    args = to_dev([torch.ones(1), torch.tensor([0, 2]), torch.tensor([0, 0]), torch.tensor([0, 1]),
                   torch.tensor([1.0, -1.0]), torch.tensor([0])])
    assert torch.equal(OPS.gather_bags_triton(t, *args, True, False).cpu(), torch.zeros(1, 4))
    z = to_dev(torch.zeros(4, dtype=torch.int64))  # 3 empty bags, no entries
    e = to_dev(torch.empty(0, dtype=torch.int64))
    out = OPS.gather_bags_triton(t, args[0], z, e, e, to_dev(torch.empty(0)), to_dev(torch.tensor([0, 2, 1])),
                                 True, False)
    assert torch.equal(out.cpu(), torch.zeros(3, 4))
    out = OPS.gather_bags_triton(t, *args[:5], e, True, False)
    assert out.shape == (0, 4)


def _compare_backward(seed, dtype, renormalize, sparse, tables_grad, weights_grad=True, **kw):
    tables, sw, off, src, row, ew, ids = sample(seed, dtype, **kw)
    g = torch.randn(ids.numel(), tables[0].shape[1], generator=torch.Generator().manual_seed(seed)).to(dtype)
    want = OPS.gather_bags_backward(g, tables, sw, off, src, row, ew, ids, renormalize, weights_grad, tables_grad,
                                    sparse)
    got = OPS.gather_bags_triton_backward(to_dev(g), to_dev(tables), *to_dev([sw, off, src, row, ew, ids]),
                                          renormalize, weights_grad, tables_grad, sparse)
    tol = tolerance(dtype)
    msg = lambda m: f"seed {seed}: {m}"  # noqa: E731
    # the weight gradients are sums over every (id, dim) of their entries: rounding grows with the square root of
    # that count (and they can cancel to 0, where only an absolute bound makes sense)
    terms = max(1, ids.numel() * tables[0].shape[1])
    wtol = dict(rtol=tol["rtol"], atol=tol["atol"] * terms ** 0.5)
    for a, b in zip(got[:2], want[:2]):
        assert a.dtype == b.dtype and a.shape == b.shape
        torch.testing.assert_close(a.cpu(), b, **wtol, msg=msg)
    for k, (a, b) in enumerate(zip(got[2], want[2])):
        assert a.dtype == b.dtype and a.shape == b.shape, f"seed {seed}: table {k}: {a.shape} vs {b.shape}"
        assert torch.isfinite(a).all(), f"seed {seed}: table {k}: unwritten (NaN-poisoned) gradient elements"
        torch.testing.assert_close(a.cpu(), b, **tol, msg=msg)
    for a, b in zip(got[3], want[3]):
        assert torch.equal(a.cpu(), b)
    return got


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("renormalize", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
def test_gather_triton_backward_matches_cpu_op(poisoned, dtype, renormalize, sparse):
    _compare_backward(fresh(3), dtype, renormalize, sparse, [True, False, True])


@pytest.mark.parametrize("weights_grad,tables_grad", [(True, [False, False, False]), (False, [True, True, True]),
                                                      (False, [False, True, False])])
def test_gather_triton_backward_partial_needs(poisoned, weights_grad, tables_grad):
    _compare_backward(fresh(4), torch.float32, True, False, tables_grad, weights_grad)


@pytest.mark.parametrize("sparse", [False, True])
def test_gather_triton_backward_hot_rows_deterministic(poisoned, sparse):
    """Every entry on row 0 and many duplicate ids: one hot row per table, reduced once, same bits twice."""
    seed = fresh(5)
    a = _compare_backward(seed, torch.float32, True, sparse, [True, True, True], hot=True, N=61)
    b = _compare_backward(seed, torch.float32, True, sparse, [True, True, True], hot=True, N=61)
    for x, y in zip(a[2], b[2]):
        assert torch.equal(x, y)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_gather_triton_backward_wide_rows(poisoned):
    _compare_backward(fresh(6), torch.float32, True, False, [True, True], K=2, D=531, B=4, N=6)


@pytest.mark.slow  # make test-slow: gradcheck through Triton's CPU interpreter; the fp32 backward against the C++ op stays in make test
def test_gather_triton_gradcheck_double():
    seed = fresh(7)
    tables, sw, off, src, row, ew, ids = sample(seed, torch.float64, K=2, D=3, B=5, N=6)
    tables = [t.detach().to(DEV).requires_grad_() for t in tables]
    sw, ew = to_dev(sw).requires_grad_(), to_dev(ew).requires_grad_()
    off, src, row, ids = to_dev([off, src, row, ids])
    for renorm in (True, False):
        def f(t0, t1, sw, ew):
            return gather_bags([t0, t1], sw, off, src, row, ew, ids, renormalize=renorm, backend="triton")
        assert torch.autograd.gradcheck(f, (*tables, sw, ew)), f"seed {seed}"


@pytest.mark.parametrize("sparse", [False, True])
def test_gather_triton_autograd_matches_cpu(sparse):
    seed = fresh(8)
    tables, sw, off, src, row, ew, ids = sample(seed, torch.float32)
    grads = []
    for backend, dev in (("auto", "cpu"), ("triton", DEV)):
        ts = [t.detach().clone().to(dev).requires_grad_() for t in tables]
        w = [x.detach().clone().to(dev).requires_grad_() for x in (sw, ew)]
        out = gather_bags(ts, w[0], off.to(dev), src.to(dev), row.to(dev), w[1], ids.to(dev), sparse_grad=sparse,
                          backend=backend)
        (out * torch.arange(out.numel(), device=dev).reshape(out.shape).sin()).sum().backward()
        grads.append([x.grad.to_dense().cpu() if x.grad.is_sparse else x.grad.cpu() for x in ts + w])
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, msg=lambda m: f"seed {seed}: {m}")


# ---------------------------------------------------------------------------------------------------------
# fused row-wise update
# ---------------------------------------------------------------------------------------------------------


def _reference_update(tables, states, grads, optimizer, lr, eps, update):
    out_t, out_s = [], []
    for t, h, g, u in zip(tables, states, grads, update):
        t = t.double().clone()
        h = h.double().clone()
        if u:
            g = g.double()
            if optimizer == "sgd":
                t -= lr * g
            else:
                touched = (g != 0).any(1)
                h = h + torch.where(touched, (g * g).mean(1), 0)
                t -= lr * g / (h.sqrt() + eps)[:, None]
        out_t.append(t)
        out_s.append(h)
    return out_t, out_s


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("renormalize", [True, False])
def test_gather_triton_fused_update_matches_reference(optimizer, dtype, renormalize):
    seed = fresh(9)
    tables, sw, off, src, row, ew, ids = sample(seed, dtype, hot=seed % 2 == 0)
    tables = [t.contiguous() for t in tables]
    g = torch.randn(ids.numel(), tables[0].shape[1], generator=torch.Generator().manual_seed(seed)).to(dtype)
    update = [True, False, True]
    lr, eps = 0.3, 1e-6
    states = [torch.rand(t.shape[0]) + 0.5 for t in tables]
    # reference row gradients in float32 (they do not depend on the table values, so float32 copies give the
    # same gradient without the rounding to bfloat16 that the fused kernel does not do)
    _, _, dense, _ = OPS.gather_bags_backward(g.float(), [t.float() for t in tables], sw, off, src, row, ew, ids,
                                              renormalize, False, [True] * 3, False)
    want_t, want_s = _reference_update(tables, states, dense, optimizer, lr, eps, update)
    wgrads = OPS.gather_bags_backward(g, tables, sw, off, src, row, ew, ids, renormalize, True, [False] * 3, False)
    dt = to_dev([t.clone() for t in tables])
    ds = to_dev([h.clone() for h in states])
    gsw, gew = OPS.gather_bags_triton_backward_update(to_dev(g), dt, ds, *to_dev([sw, off, src, row, ew, ids]),
                                                      renormalize, True, update, optimizer, lr, eps)
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else tolerance(dtype)
    for k in range(3):
        torch.testing.assert_close(dt[k].cpu().double(), want_t[k].to(dtype).double(), **tol,
                                   msg=lambda m: f"seed {seed} table {k}: {m}")
        if optimizer == "adagrad":
            torch.testing.assert_close(ds[k].cpu().double(), want_s[k], atol=1e-5, rtol=1e-4,
                                       msg=lambda m: f"seed {seed} state {k}: {m}")
        else:
            assert torch.equal(ds[k].cpu(), states[k])
    assert torch.equal(dt[1].cpu(), tables[1])  # not flagged: untouched
    torch.testing.assert_close(gsw.cpu(), wgrads[0], **tolerance(dtype))
    torch.testing.assert_close(gew.cpu(), wgrads[1], **tolerance(dtype))


def test_gather_triton_fused_update_autograd_path():
    """gather_bags_fused_update: the backward updates the tables in place and gives the weight gradients."""
    seed = fresh(10)
    tables, sw, off, src, row, ew, ids = sample(seed, torch.float32)
    tables = [t.contiguous() for t in tables]
    lr = 0.05
    ref_t = [t.clone().requires_grad_() for t in tables]
    sw_ref = sw.clone().requires_grad_()
    out = gather_bags(ref_t, sw_ref, off, src, row, ew, ids)
    w = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
    (out * w).sum().backward()
    tt = to_dev([t.clone() for t in tables])
    states = tg.rowwise_adagrad_state(tt)
    sw_t = to_dev(sw).requires_grad_()
    out2 = tg.gather_bags_fused_update(tt, sw_t, *to_dev([off, src, row, ew, ids]), optimizer="sgd", lr=lr,
                                       states=states)
    torch.testing.assert_close(out2.detach().cpu(), out.detach())
    (out2 * w.to(DEV)).sum().backward()
    for t, r in zip(tt, ref_t):
        torch.testing.assert_close(t.cpu(), (r - lr * r.grad).detach())
    torch.testing.assert_close(sw_t.grad.cpu(), sw_ref.grad)
    with pytest.raises(ValueError, match="adagrad.*states"):
        tg.gather_bags_fused_update(tt, sw_t, *to_dev([off, src, row, ew, ids]), optimizer="adagrad")


def test_gather_triton_fused_update_bad_input():
    tables, sw, off, src, row, ew, ids = sample(11, torch.float32)
    tables = to_dev([t.contiguous() for t in tables])
    g = to_dev(torch.randn(ids.numel(), tables[0].shape[1]))
    rest = to_dev([sw, off, src, row, ew, ids])
    states = tg.rowwise_adagrad_state(tables)
    with pytest.raises(ValueError, match="optimizer"):
        OPS.gather_bags_triton_backward_update(g, tables, states, *rest, True, False, [True] * 3, "adam", 0.1, 0.0)
    with pytest.raises(ValueError, match=r"states\[0\]"):
        OPS.gather_bags_triton_backward_update(g, tables, [states[0][:-1]] + states[1:], *rest, True, False,
                                               [True] * 3, "adagrad", 0.1, 0.0)
    nc = [tables[0].t().contiguous().t()] + tables[1:]
    if nc[0].shape[1] > 1:
        with pytest.raises(ValueError, match=r"tables\[0\].*contiguous"):
            OPS.gather_bags_triton_backward_update(g, nc, states, *rest, True, False, [True] * 3, "sgd", 0.1, 0.0)


# ---------------------------------------------------------------------------------------------------------
# op registration: opcheck, torch.compile
# ---------------------------------------------------------------------------------------------------------


def test_gather_triton_opcheck():
    tables, sw, off, src, row, ew, ids = sample(12, torch.float32, K=2, D=5, B=5, N=6)
    tables = [t.to(DEV).requires_grad_() for t in tables]
    sw = to_dev(sw).requires_grad_()
    args = (tables, sw, *to_dev([off, src, row]), to_dev(ew).clone().requires_grad_(), to_dev(ids), True, False)
    torch.library.opcheck(OPS.gather_bags_triton, args)
    g = to_dev(torch.randn(ids.numel(), 5))
    bargs = (g, [t.detach() for t in tables], sw.detach(), *to_dev([off, src, row, ew, ids]), True, True,
             [True, False], False)
    torch.library.opcheck(OPS.gather_bags_triton_backward, bargs)


def test_gather_triton_compile_fullgraph_module():
    """MultiSourceEmbedding(backend="triton") inside a small model under torch.compile(fullgraph=True), forward
    and backward. In the interpreter the Triton ops are opaque graph nodes (fake kernels give the shapes)."""
    seed = fresh(13)
    g = torch.Generator().manual_seed(seed)
    tables = [torch.randn(v, 6, generator=g) for v in (7, 5)]
    index = torch.tensor([[0, 1], [2, -1], [-1, 4], [-1, -1], [6, 0]])
    emb_t = MultiSourceEmbedding([t.to(DEV) for t in tables], index.to(DEV), freeze_tables=False,
                                 backend="triton").to(DEV)
    emb_c = MultiSourceEmbedding(tables, index, freeze_tables=False, backend="auto")

    class Model(torch.nn.Module):
        def __init__(self, emb):
            super().__init__()
            self.emb = emb

        def forward(self, ids):
            return torch.tanh(self.emb(ids)).sum(-1)

    ids = torch.tensor([[0, 4, 2], [3, 1, 0]])
    ref = Model(emb_c)(ids)
    ref.sum().backward()
    model = torch.compile(Model(emb_t), fullgraph=True)
    out = model(ids.to(DEV))
    torch.testing.assert_close(out.cpu(), ref, msg=lambda m: f"seed {seed}: {m}")
    out.sum().backward()
    for (n, p), (_, q) in zip(emb_t.named_parameters(), emb_c.named_parameters()):
        torch.testing.assert_close(p.grad.cpu(), q.grad, msg=lambda m: f"seed {seed} {n}: {m}")


# ---------------------------------------------------------------------------------------------------------
# backend selection and bad input
# ---------------------------------------------------------------------------------------------------------


def test_gather_triton_backend_selection():
    assert gather_backend("auto", "cpu") == "cpu"
    assert gather_backend("triton", DEV) == "triton"
    with pytest.raises(ValueError, match="backend"):
        gather_backend("fast", "cpu")
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        gather_backend("cuda", "cpu")
    if DEV == "cpu":
        with pytest.raises(ValueError, match="backend"):
            MultiSourceEmbedding([torch.randn(3, 2)], torch.tensor([[0], [1]]), backend="gpu")
        if not torch._C._dispatch_has_kernel_for_dispatch_key("embedfast::gather_bags", "CUDA"):
            with pytest.raises(RuntimeError, match="without CUDA kernels"):
                gather_backend("cuda", "cuda")


def test_gather_triton_backend_errors_without_triton(monkeypatch):
    import embedfast._backend as backend

    monkeypatch.setattr(backend, "triton_state", lambda module: 0)
    with pytest.raises(RuntimeError, match="needs the triton package"):
        gather_backend("triton", "cpu")
    if not torch._C._dispatch_has_kernel_for_dispatch_key("embedfast::gather_bags", "CUDA"):
        with pytest.raises(RuntimeError, match="no GPU kernels"):
            gather_backend("auto", "cuda")
    monkeypatch.setattr(backend, "triton_state", lambda module: 1)  # triton present, kernels compiled: no CPU tensors
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        gather_backend("triton", "cpu")


def test_gather_triton_module_matches_auto():
    seed = fresh(14)
    g = torch.Generator().manual_seed(seed)
    tables = [torch.randn(v, 5, generator=g).to(torch.bfloat16) for v in (6, 9, 4)]
    index = torch.stack([torch.randint(-1, v, (12,), generator=g) for v in (6, 9, 4)], 1)
    ids = torch.randint(0, 12, (3, 7), generator=g)
    a = MultiSourceEmbedding(tables, index, backend="auto")(ids)
    b = MultiSourceEmbedding([t.to(DEV) for t in tables], index.to(DEV), backend="triton").to(DEV)(ids.to(DEV))
    torch.testing.assert_close(b.cpu(), a, **tolerance(torch.bfloat16))


def test_gather_triton_bad_input():
    tables, sw, off, src, row, ew, ids = sample(15, torch.float32)
    T = to_dev(tables)
    sw, off, src, row, ew, ids = to_dev([sw, off, src, row, ew, ids])
    f = OPS.gather_bags_triton
    with pytest.raises(IndexError, match=r"'ids' has value 11 at flat position 2"):
        f(T, sw, off, src, row, ew, torch.tensor([1, 2, 11, 3], device=DEV), True, False)
    with pytest.raises(IndexError, match=r"'ids' has value -1"):
        f(T, sw, off, src, row, ew, torch.tensor([-1], device=DEV), True, False)
    e = int((off[1:] > off[:-1]).nonzero()[0, 0])  # first non-empty bag
    p = int(off[e])
    bad_src = src.clone()
    bad_src[p] = 3
    with pytest.raises(IndexError, match=rf"'entry_source' has value 3 at position {p}"):
        f(T, sw, off, bad_src, row, ew, torch.tensor([e], device=DEV), True, False)
    bad_row = row.clone()
    bad_row[p] = T[int(src[p])].shape[0]
    with pytest.raises(IndexError, match=rf"'entry_row' has value {int(bad_row[p])} at position {p}"):
        f(T, sw, off, src, bad_row, ew, torch.tensor([e], device=DEV), False, False)
    with pytest.raises(IndexError, match="entry_row"):  # parameters (tensor subclass) are checked too
        f([torch.nn.Parameter(t.clone()) for t in T], sw, off, src, bad_row, ew, torch.tensor([e], device=DEV),
          True, False)
    g = torch.ones(1, T[0].shape[1], device=DEV)
    with pytest.raises(IndexError, match="entry_row"):
        OPS.gather_bags_triton_backward(g, T, sw, off, src, bad_row, ew, torch.tensor([e], device=DEV), True, True,
                                        [True] * 3, False)
    bad_off = off.clone()
    bad_off[0] = 1
    with pytest.raises(ValueError, match="must start at 0"):
        f(T, sw, bad_off, src, row, ew, ids, True, False)
    bad_off = off.clone()
    bad_off[-1] += 1
    with pytest.raises(ValueError, match="must end at the number of entries"):
        f(T, sw, bad_off, src, row, ew, ids, True, False)
    bad_off = off.clone()
    bad_off[2], bad_off[3] = int(off[-1]), 0
    with pytest.raises(ValueError, match="nondecreasing"):
        f(T, sw, bad_off, src, row, ew, ids, True, False)
    with pytest.raises(ValueError, match="source_weight.*dtype"):
        f(T, sw.double(), off, src, row, ew, ids, True, False)
    with pytest.raises(ValueError, match="ids.*1-D"):
        f(T, sw, off, src, row, ew, ids.reshape(1, -1), True, False)
    with pytest.raises(ValueError, match=r"tables\[1\]. is torch.float16"):
        f([T[0], T[1].half(), T[2]], sw, off, src, row, ew, ids, True, False)
    with pytest.raises(ValueError, match="one dimension D"):
        f([T[0], T[1][:, :-1], T[2]], sw, off, src, row, ew, ids, True, False)
    with pytest.raises(ValueError, match="one weight per table"):
        f(T, sw[:2], off, src, row, ew, ids, True, False)
    with pytest.raises(ValueError, match="same length"):
        f(T, sw, off, src, row[:-1], ew, ids, True, False)
    with pytest.raises(ValueError, match=f"at most {tg.MAX_TABLES} tables"):
        f([T[0]] * (tg.MAX_TABLES + 1), torch.ones(tg.MAX_TABLES + 1, device=DEV), off, src, row, ew, ids, True,
          False)
    with pytest.raises(ValueError, match="'grad' must have shape"):
        OPS.gather_bags_triton_backward(g, T, sw, off, src, row, ew, ids, True, True, [True] * 3, False)


# ---------------------------------------------------------------------------------------------------------
# the GPU benchmark's byte accounting (the benchmark itself needs a GPU)
# ---------------------------------------------------------------------------------------------------------


def _bench_module():
    path = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "fusion", "bench_gather_gpu.py")
    spec = importlib.util.spec_from_file_location("bench_gather_gpu", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gather_triton_bench_byte_accounting():
    bench = _bench_module()
    prob = bench.make_problem(V=50, D=7, K=3, N=64, missing=0.15, dtype=torch.bfloat16, device="cpu", seed=0)
    present = prob["index"][prob["ids"]] >= 0  # [N, K]
    n_rows = int(present.sum())
    esize = 2
    fwd = bench.forward_bytes(prob)
    # table rows read + output written + per-id metadata (id, two offsets) + per-entry metadata (source, row, weight)
    want = n_rows * 7 * esize + 64 * 7 * esize + 64 * 3 * 8 + n_rows * (8 + 8 + 4)
    assert fwd == want
    bwd = bench.backward_bytes(prob)
    # output gradient + table rows and metadata again + one entry-weight gradient per entry
    assert bwd == 64 * 7 * esize + n_rows * 7 * esize + 64 * 3 * 8 + n_rows * (8 + 8 + 4) + n_rows * 4
    # the pure-PyTorch baselines compute the same thing
    out = bench.fused_torch_stacked(prob)
    out2 = bench.fused_torch_embedding_bag(prob)
    ref = gather_bags(prob["tables"], prob["source_weight"], prob["bag_offsets"], prob["entry_source"],
                      prob["entry_row"], prob["entry_weight"], prob["ids"])
    torch.testing.assert_close(out.float(), ref.float(), **tolerance(torch.bfloat16))
    torch.testing.assert_close(out2.float(), ref.float(), **tolerance(torch.bfloat16))
    with pytest.raises(SystemExit, match="needs a CUDA GPU"):
        if torch.cuda.is_available():
            raise SystemExit("needs a CUDA GPU (skipped check: a GPU is present)")
        bench.main([])
