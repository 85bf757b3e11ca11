"""CUDA kernels of SGNS (csrc/cuda/word2vec_sgns.cu) against the C++ CPU ops, device-parametrised
(tests/cuda_util.py): "cpu" runs the CPU op, "cuda" the CUDA kernel (marker ``gpu``; skipped without a GPU or a
build with EMBEDFAST_CUDA=1). The CPU runs check the tests themselves: every comparison below holds for the CPU
op too.

The CUDA kernel gives sentence s of a chunk the random stream stream_key(seed, chunk, s); the CPU op gives part p
of num_threads the stream (seed, chunk, p). With S sentences of one length and num_threads=S every part holds one
sentence, so both draw the same numbers; with a constant learning rate (min_alpha = alpha), no negatives and a
vocabulary of its own per sentence no two sentences touch one row, so the results are the same up to float
rounding. One sentence with negatives gives the same update on both, for every mode.
"""
from __future__ import annotations

import random

import pytest
import torch

from cuda_util import CUDA_ONLY, DEVICES

import embedfast  # noqa: F401
from embedfast import ops
from embedfast.testing import planted_corpus, recall_at_k

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TRAIN = dict(window=3, negative=3, alpha=0.05, min_alpha=0.01, words_done=0, total_words=1000, seed=1, chunk=0,
             num_threads=1, shared_negatives=True, exact_sigmoid=False)


def train(device, w_in, w_out, ids, off, keep, thr, alias, **kw):
    """The op on copies of the tables on `device` -> (w_in, w_out, stats) on the CPU."""
    a = {**TRAIN, **kw}
    wi, wo = w_in.to(device, copy=True), w_out.to(device, copy=True)
    d = [t.to(device) for t in (ids, off, keep, thr, alias)]
    st = ops.sgns_train(wi, wo, *d, **a, backend="cpu" if device == "cpu" else "cuda")
    return wi.cpu(), wo.cpu(), st.cpu()


def case(seed, V=23, D=13, lengths=(17,), sample=True):
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(1, 50, (V,), generator=g)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    keep = (torch.rand(V, generator=g, dtype=torch.float64) * 0.6 + 0.4).clamp(max=1.0)
    if not sample:
        keep.fill_(1.0)
    keep[torch.rand(V, generator=g) < 0.3] = 1.0
    ids = torch.randint(0, V, (sum(lengths),), generator=g, dtype=torch.int32)
    off = torch.tensor([0] + list(lengths)).cumsum(0)
    w_in = (torch.rand(V, D, generator=g) - 0.5) * 0.8
    w_out = (torch.rand(V, D, generator=g) - 0.5) * 0.8
    return w_in, w_out, ids, off, keep, thr, alias


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("negative", [0, 1, 5])
def test_one_sentence_matches_cpu_op(device, shared, exact, negative):
    """One sentence (repeated words: the context cache shares a slot), same draws: the CPU op's update."""
    seed = random.randrange(1 << 30)
    w_in, w_out, ids, off, keep, thr, alias = case(seed, V=11, D=37, lengths=(29,))
    ids[5:9] = ids[4]  # a word several times inside one window
    kw = dict(window=4, negative=negative, alpha=0.07, min_alpha=0.001, words_done=30, total_words=100, seed=seed,
              chunk=3, shared_negatives=shared, exact_sigmoid=exact)
    ref = train("cpu", w_in, w_out, ids, off, keep, thr, alias, **kw)
    got = train(device, w_in, w_out, ids, off, keep, thr, alias, **kw)
    assert got[2][1:].tolist() == ref[2][1:].tolist(), (seed, got[2], ref[2])
    assert got[2][0].item() == pytest.approx(ref[2][0].item(), rel=1e-5), seed
    torch.testing.assert_close(got[0], ref[0], atol=2e-6, rtol=1e-5, msg=lambda m: f"seed {seed}: {m}")
    torch.testing.assert_close(got[1], ref[1], atol=2e-6, rtol=1e-5, msg=lambda m: f"seed {seed}: {m}")
    assert not torch.equal(got[0], w_in)  # something was trained


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shared", [True, False])
def test_many_sentences_own_vocabulary_match_cpu_parts(device, shared):
    """S sentences (more than one block of warps), each with words of its own, no negatives, constant learning
    rate: sentence s on CUDA = part s of the CPU op with num_threads=S."""
    seed = random.randrange(1 << 30)
    g = torch.Generator().manual_seed(seed)
    S, L, per = 9, 12, 5
    ids = torch.cat([torch.randint(s * per, (s + 1) * per, (L,), generator=g) for s in range(S)]).int()
    off = torch.arange(S + 1) * L
    V, D = S * per, 33
    thr, alias = ops.sgns_unigram_table(torch.ones(V, dtype=torch.int64), 0.75)
    keep = torch.rand(V, generator=g, dtype=torch.float64) * 0.5 + 0.5
    w_in, w_out = torch.rand(V, D, generator=g) - 0.5, torch.rand(V, D, generator=g) - 0.5
    kw = dict(window=5, negative=0, alpha=0.04, min_alpha=0.04, seed=seed, chunk=1, shared_negatives=shared)
    ref = train("cpu", w_in, w_out, ids, off, keep, thr, alias, **{**kw, "num_threads": S})
    # (the CPU op's own run takes num_threads=S too; the CUDA op ignores num_threads)
    got = train(device, w_in, w_out, ids, off, keep, thr, alias, **{**kw, "num_threads": S})
    assert got[2][1:].tolist() == ref[2][1:].tolist(), seed
    torch.testing.assert_close(got[0], ref[0], atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(got[1], ref[1], atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_untouched_rows_empty_sentences_and_stats(device):
    w_in, w_out, ids, off, keep, thr, alias = case(7, V=30, D=8, lengths=(0, 6, 0, 5))
    ids[:] = ids % 10  # rows 10.. are never a context or a center; no negatives
    got = train(device, w_in, w_out, ids, off, keep, thr, alias, negative=0, window=2)
    assert torch.equal(got[0][10:], w_in[10:]) and torch.equal(got[1][10:], w_out[10:])
    st = got[2]
    assert st[4].item() == 11 and st[6].item() == 4  # tokens, sentences
    empty = train(device, w_in, w_out, ids, torch.tensor([3]), keep, thr, alias)  # no sentence at all
    assert torch.equal(empty[0], w_in) and empty[2][4].item() == 0 and empty[2][7].item() == pytest.approx(0.05)


@pytest.mark.parametrize("device", CUDA_ONLY)
def test_trainer_planted_structure_like_cpu(device):
    """Hogwild on many warps: the CUDA trainer recovers the planted groups like the CPU kernel (statistical)."""
    sents, groups = planted_corpus(groups=5, size=5, sentences=70, length=8)
    kw = dict(dim=16, window=2, negative=3, sample=0, min_count=1, epochs=3, threads=1, seed=3, alpha=0.05,
              chunk_words=200)
    cpu = embedfast.Word2Vec(backend="cpu", **kw).train(sents, progress=False)
    gpu = embedfast.Word2Vec(backend="cuda", device=device, **kw).train(sents, progress=False)
    k = len(groups[0]) - 1
    r_cpu = recall_at_k(cpu.w_in, cpu.words, groups, k)
    r_gpu = recall_at_k(gpu.w_in, gpu.words, groups, k)
    assert r_cpu > 0.9 and r_gpu > 0.9 and abs(r_gpu - r_cpu) < 0.1, (r_cpu, r_gpu)


@pytest.mark.parametrize("device", DEVICES)
def test_bad_inputs_same_errors_as_cpu_and_tables_untouched(device):
    w_in, w_out, ids, off, keep, thr, alias = case(3, V=9, D=4, lengths=(5, 6))

    def err(**changes):
        args = dict(ids=ids, off=off, keep=keep, thr=thr, alias=alias)
        args.update(changes)
        kw = {k: changes.pop(k) for k in list(changes) if k in TRAIN}
        msgs = []
        for dev in ("cpu", device):
            wi, wo = w_in.to(dev, copy=True), w_out.to(dev, copy=True)
            with pytest.raises((ValueError, IndexError)) as e:
                ops.sgns_train(wi, wo, *[args[k].to(dev) for k in ("ids", "off", "keep", "thr", "alias")],
                               **{**TRAIN, **kw}, backend="cpu" if dev == "cpu" else "cuda")
            assert torch.equal(wi.cpu(), w_in) and torch.equal(wo.cpu(), w_out)
            msgs.append((type(e.value), str(e.value).split("\n")[0]))
        assert msgs[0] == msgs[1]
        return msgs[1][1]

    assert "outside [0, len(ids)=11]" in err(off=torch.tensor([0, 5, 12]))
    assert "non-decreasing" in err(off=torch.tensor([0, 6, 5, 11]))
    bad = ids.clone()
    bad[7] = 9
    assert "'ids' has value 9 at position 7" in err(ids=bad)
    k2 = keep.clone()
    k2[4] = float("nan")
    assert "keep_prob[4]" in err(keep=k2)
    t2 = thr.clone()
    t2[2] = -1
    assert "neg_threshold[2]" in err(thr=t2)
    a2 = alias.clone()
    a2[1] = 99
    assert "neg_alias[1]" in err(alias=a2)
    assert "window must be >= 1" in err(window=0)
    assert "alpha" in err(alpha=float("inf"))
    assert "num_threads" in err(num_threads=0)


@pytest.mark.parametrize("device", CUDA_ONLY)
def test_cuda_refuses_what_does_not_fit_shared_memory_and_wrong_devices(device):
    w_in, w_out, ids, off, keep, thr, alias = case(4, V=9, D=4, lengths=(5,))
    d = [t.to(device) for t in (ids, off, keep, thr, alias)]
    wi, wo = w_in.to(device), w_out.to(device)
    with pytest.raises(ValueError, match="shared memory.*window=100000"):
        ops.sgns_train(wi, wo, *d, **{**TRAIN, "window": 100000}, backend="cuda")
    with pytest.raises(ValueError, match="must be a CUDA tensor on cuda"):
        ops.sgns_train(wi, wo, d[0].cpu(), *d[1:], **TRAIN, backend="cuda")


@pytest.mark.parametrize("device", DEVICES)
def test_divergence_raises(device):
    w_in, w_out, ids, off, keep, thr, alias = case(5, V=9, D=4, lengths=(40,), sample=False)
    w_in = w_in * 1e30
    with pytest.raises(ValueError, match="sgns_train: training diverged"):
        train(device, w_in, w_in * 3, ids, off, keep, thr, alias, alpha=10.0, min_alpha=10.0, exact_sigmoid=True)


# ---- loss -----------------------------------------------------------------------------------------------------


def loss_case(seed, dtype=torch.float32, index_dtype=torch.int64, V=17, V2=19, D=45, B=37, K=4, hot=False):
    g = torch.Generator().manual_seed(seed)
    w_in = torch.randn(V, 2 * D, generator=g, dtype=dtype)[:, ::2]  # non-contiguous
    w_out = torch.randn(V2, D, generator=g, dtype=dtype)
    c = torch.randint(0, V, (B,), generator=g)
    x = torch.randint(0, V2, (B,), generator=g)
    n = torch.randint(0, V2, (B, K), generator=g)
    if hot:
        c[:] = 3
        n[:, :2] = 5
    return w_in, w_out, c.to(index_dtype), x.to(index_dtype), n.to(index_dtype)


def on(device, *ts):
    return [t.to(device) for t in ts]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("hot", [False, True])
def test_loss_forward_backward_match_cpu(device, dtype, index_dtype, hot, poisoned):
    seed = random.randrange(1 << 30)
    args = loss_case(seed, dtype, index_dtype, hot=hot)
    ref_l = ops.sgns_loss(*args, backend="cpu")
    grad = torch.rand(ref_l.shape, dtype=dtype)
    ref_g = torch.ops.embedfast.sgns_loss_backward(grad, *args)
    d = on(device, *args)
    l = ops.sgns_loss(*d, backend="cpu" if device == "cpu" else "cuda")
    g = torch.ops.embedfast.sgns_loss_backward(grad.to(device), *d)
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(l.cpu(), ref_l, **tol)
    for a, b in zip(g, ref_g):
        torch.testing.assert_close(a.cpu(), b, **tol)
    again = torch.ops.embedfast.sgns_loss_backward(grad.to(device), *d)
    assert all(torch.equal(a, b) for a, b in zip(g, again))  # deterministic, hot rows included


@pytest.mark.parametrize("device", DEVICES)
def test_loss_gradcheck_opcheck_and_empty(device):
    w_in, w_out, c, x, n = on(device, *loss_case(2, torch.float64, V=5, V2=6, D=7, B=6, K=2))
    w_in, w_out = w_in.clone().requires_grad_(), w_out.clone().requires_grad_()
    be = "cpu" if device == "cpu" else "cuda"
    assert torch.autograd.gradcheck(lambda a, b: ops.sgns_loss(a, b, c, x, n, backend=be), (w_in, w_out))
    torch.library.opcheck(torch.ops.embedfast.sgns_loss.default, (w_in.detach(), w_out.detach(), c, x, n))
    e = torch.empty(0, dtype=torch.int64, device=device)
    assert ops.sgns_loss(w_in.detach(), w_out.detach(), e, e, e.reshape(0, 2), backend=be).shape == (0,)


@pytest.mark.parametrize("device", DEVICES)
def test_loss_bad_index_same_error_as_cpu(device):
    args = list(loss_case(1))
    args[3] = args[3].clone()
    args[3][4] = 19
    msgs = []
    for dev in ("cpu", device):
        with pytest.raises(IndexError) as e:
            ops.sgns_loss(*on(dev, *args), backend="cpu" if dev == "cpu" else "cuda")
        msgs.append(str(e.value).split("\n")[0])
    assert msgs[0] == msgs[1] and "'contexts' has value 19 at flat position 4" in msgs[0]


def test_auto_never_picks_unverified_cuda_kernels(monkeypatch):
    """Until the CUDA kernels have run on a GPU (CUDA_KERNELS_VERIFIED), "auto" on CUDA tensors takes Triton even
    in a build with CUDA kernels, and without triton says to pass backend="cuda"; "cuda" asks for them."""
    from embedfast import _backend

    assert _backend.CUDA_KERNELS_VERIFIED is False
    built = lambda: True  # noqa: E731
    monkeypatch.setattr(_backend, "triton_state", lambda module: 1)
    assert _backend.select_backend("sgns_train", "auto", "cuda", "m", cuda_built=built) == "triton"
    assert _backend.select_backend("sgns_train", "cuda", "cuda", "m", cuda_built=built) == "cuda"
    assert _backend.select_backend("sgns_train", "auto", "cpu", "m", cuda_built=built) == "cpu"
    monkeypatch.setattr(_backend, "triton_state", lambda module: 0)
    with pytest.raises(RuntimeError, match="pass backend='cuda'"):
        _backend.select_backend("sgns_train", "auto", "cuda", "m", cuda_built=built)
    monkeypatch.setattr(_backend, "CUDA_KERNELS_VERIFIED", True)
    assert _backend.select_backend("sgns_train", "auto", "cuda", "m", cuda_built=built) == "cuda"
