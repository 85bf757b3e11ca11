"""Triton SGNS kernels (embedfast/word2vec/triton.py, triton_kernels.py) against the C++ CPU ops and a plain reference.

Without a GPU the kernels run in Triton's interpreter on CPU tensors: TRITON_INTERPRET=1 is set while
``embedfast.word2vec.triton`` is imported (``@triton.jit`` decides at decoration time) and while this module's tests
run (a module fixture), and restored otherwise, so other test modules see the environment unchanged. On a machine with CUDA (and TRITON_INTERPRET unset)
the same tests run the compiled kernels on CUDA tensors. Sizes are tiny: the interpreter is slow.
"""
from __future__ import annotations

import random
import sys

import pytest
import torch

pytest.importorskip("triton")

import embedfast  # noqa: E402
from cuda_util import compile_in_child, import_interpreted, interpreter_env  # noqa: E402,F401
from embedfast import ops  # noqa: E402
from embedfast.word2vec.ops import sgns_backend  # noqa: E402
from embedfast.testing import planted_corpus as _planted_corpus, recall_at_k


def planted_corpus(**kw):
    return _planted_corpus(**{**dict(groups=5, size=5, sentences=70, length=8), **kw})

# imported interpreted without a GPU; the module fixture sets TRITON_INTERPRET while the tests run (autouse)
ts = import_interpreted("embedfast.word2vec.triton")

DEV = "cpu" if ts.INTERPRETED else "cuda"

M64 = (1 << 64) - 1


# ---------------------------------------------------------------------------------------------------------
# a plain reference of the Triton training kernel (one sentence; same random draws)
# ---------------------------------------------------------------------------------------------------------


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class Stream:
    def __init__(self, key):
        self.key, self.k = key, 0

    def next(self):
        self.k += 1
        return mix64((self.key + self.k * 0x9E3779B97F4A7C15) & M64)


def alias_pick(r, n, thr, alias):
    i = ((r >> 32) * n) >> 32
    return i if (r & 0xFFFFFFFF) < thr[i] else alias[i]


def reference_sentence(w_in, w_out, sent, keep, thr, alias, *, window, negative, alpha, seed, chunk, shared):
    """Float64 replay of one sentence (sentence 0 of the chunk, words_done 0) with exact sigmoid."""
    w_in, w_out = w_in.double().clone(), w_out.double().clone()
    keep, thr, alias = keep.tolist(), thr.tolist(), alias.tolist()
    V = w_in.shape[0]
    rng = Stream(ts.stream_key(seed, chunk, 0))
    kept = [w for w in sent if keep[w] >= 1.0 or (rng.next() >> 11) * 2.0 ** -53 < keep[w]]
    n = len(kept)
    loss = pairs = nneg = nskip = 0
    for i, c in enumerate(kept):
        b = window - rng.next() % window
        ctx = [kept[j] for j in range(max(0, i - b), min(n, i + b + 1)) if j != i]

        def draw_targets():
            nonlocal nskip
            ts_ = [c]
            for _ in range(negative):
                t = alias_pick(rng.next(), V, thr, alias)
                if t == c:
                    nskip += 1
                else:
                    ts_.append(t)
            return ts_

        if shared:
            targets = draw_targets()
            if not ctx:
                continue
            X, T = w_in[ctx], w_out[targets]
            F = X @ T.t()
            lab = torch.zeros(len(targets), dtype=torch.float64)
            lab[0] = 1
            G = alpha * (lab - torch.sigmoid(F))
            loss -= float(torch.nn.functional.logsigmoid(torch.where(lab.bool(), F, -F)).sum())
            w_out.index_add_(0, torch.tensor(targets), G.t() @ X)
            w_in.index_add_(0, torch.tensor(ctx), G @ T)
            pairs += len(ctx)
            nneg += len(ctx) * (len(targets) - 1)
        else:
            for x in ctx:
                targets = draw_targets()
                T = w_out[targets]
                f = T @ w_in[x]
                lab = torch.zeros(len(targets), dtype=torch.float64)
                lab[0] = 1
                g = alpha * (lab - torch.sigmoid(f))
                loss -= float(torch.nn.functional.logsigmoid(torch.where(lab.bool(), f, -f)).sum())
                dx = g @ T
                w_out.index_add_(0, torch.tensor(targets), g[:, None] * w_in[x][None, :])
                w_in[x] += dx
                pairs += 1
                nneg += len(targets) - 1
    return w_in, w_out, [loss, pairs, nneg, nskip, len(sent), n, 1]


def random_case(seed, V=13, D=7, length=11):
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(1, 40, (V,), generator=g)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    keep = (torch.rand(V, generator=g, dtype=torch.float64) * 0.6 + 0.4).clamp(max=1.0)
    keep[torch.rand(V, generator=g) < 0.4] = 1.0
    ids = torch.randint(0, V, (length,), generator=g, dtype=torch.int32)
    w_in = (torch.rand(V, D, generator=g) - 0.5) * 0.8
    w_out = (torch.rand(V, D, generator=g) - 0.5) * 0.8
    return w_in, w_out, ids, keep, thr, alias


def to_dev(*ts_):
    return [t.to(DEV, copy=True) for t in ts_]  # copies: the training op mutates its tables


def triton_train(w_in, w_out, ids, off, keep, thr, alias, **kw):
    a = dict(window=3, negative=3, alpha=0.05, min_alpha=0.01, words_done=0, total_words=1000, seed=1, chunk=0,
             num_threads=1, shared_negatives=True, exact_sigmoid=True)
    a.update(kw)
    return ts.sgns_train_triton(w_in, w_out, ids, off, keep, thr, alias, a["window"], a["negative"], a["alpha"],
                                a["min_alpha"], a["words_done"], a["total_words"], a["seed"], a["chunk"],
                                a["num_threads"], a["shared_negatives"], a["exact_sigmoid"])


# ---------------------------------------------------------------------------------------------------------
# training op
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("case", range(3))
def test_sgns_triton_train_matches_plain_reference(shared, case):
    seed = random.randrange(1 << 30)
    w_in, w_out, ids, keep, thr, alias = random_case(seed + case, V=11 + case, D=5 + 2 * case)
    ref_in, ref_out, ref_stats = reference_sentence(w_in, w_out, ids.tolist(), keep, thr, alias, window=3,
                                                    negative=3, alpha=0.05, seed=seed, chunk=case, shared=shared)
    a_in, a_out, d_ids, d_keep, d_thr, d_alias = to_dev(w_in, w_out, ids, keep, thr, alias)
    off = torch.tensor([0, ids.numel()], device=DEV)
    st = triton_train(a_in, a_out, d_ids, off, d_keep, d_thr, d_alias, seed=seed, chunk=case,
                      shared_negatives=shared).cpu()
    assert st[1:7].tolist() == ref_stats[1:7], (st.tolist(), ref_stats)
    assert st[0].item() == pytest.approx(ref_stats[0], rel=1e-4)
    assert st[7].item() == pytest.approx(0.05, rel=1e-6)  # words_done 0: alpha itself
    torch.testing.assert_close(a_in.cpu().double(), ref_in, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(a_out.cpu().double(), ref_out, atol=2e-6, rtol=1e-5)
    assert not torch.equal(a_in.cpu(), w_in)  # something was trained


@pytest.mark.parametrize("shared,negative", [(True, 3), (True, 0), (False, 1)])
def test_sgns_triton_train_matches_cpu_op_on_one_sentence(shared, negative):
    """One sentence, num_threads=1: the CPU op and the Triton op draw the same random numbers, so the update is
    the same (word2vec mode with negative=1: no target can repeat within a pair, where the modes differ)."""
    seed = random.randrange(1 << 30)
    w_in, w_out, ids, keep, thr, alias = random_case(seed, V=17, D=9, length=14)
    off = torch.tensor([0, ids.numel()])
    kw = dict(window=4, negative=negative, alpha=0.07, min_alpha=0.001, words_done=30, total_words=100, seed=seed,
              chunk=5, num_threads=1, shared_negatives=shared, exact_sigmoid=True)
    c_in, c_out = w_in.clone(), w_out.clone()
    st_c = ops.sgns_train(c_in, c_out, ids, off, keep, thr, alias, backend="cpu", **kw)
    t_in, t_out, d_ids, d_off, d_keep, d_thr, d_alias = to_dev(w_in, w_out, ids, off, keep, thr, alias)
    st_t = triton_train(t_in, t_out, d_ids, d_off, d_keep, d_thr, d_alias, **kw).cpu()
    assert st_t[1:].tolist() == pytest.approx(st_c[1:].tolist(), rel=1e-6)
    assert st_t[0].item() == pytest.approx(st_c[0].item(), rel=1e-4)
    torch.testing.assert_close(t_in.cpu(), c_in, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(t_out.cpu(), c_out, atol=1e-6, rtol=1e-5)


def test_sgns_triton_train_untouched_rows_and_stats():
    """Rows of words that are neither in the chunk nor drawn stay bit-identical; counts add up over sentences."""
    V, D = 40, 6
    g = torch.Generator().manual_seed(random.randrange(1 << 30))
    counts = torch.ones(V, dtype=torch.int64)
    counts[20:] = 10 ** 6  # negatives come (almost surely) from words 20..39
    counts[30:] = 1
    thr, alias = ops.sgns_unigram_table(counts, 1.0)
    keep = torch.ones(V, dtype=torch.float64)
    ids = torch.randint(0, 10, (23,), generator=g, dtype=torch.int32)
    off = torch.tensor([0, 5, 5, 12, 23])  # one empty sentence
    w_in = torch.randn(V, D, generator=g)
    w_out = torch.randn(V, D, generator=g)
    a_in, a_out, *rest = to_dev(w_in, w_out, ids, off, keep, thr, alias)
    st = triton_train(a_in, a_out, *rest, window=2, negative=2, words_done=400, total_words=1000).cpu().tolist()
    stats = dict(zip(ops.TRAIN_STATS, st))
    assert stats["tokens"] == 23 and stats["kept_tokens"] == 23 and stats["sentences"] == 4
    assert stats["negatives"] + stats["negatives_skipped"] == 2 * stats["pairs"] or stats["negatives_skipped"] > 0
    assert stats["last_alpha"] == pytest.approx(0.05 - 0.04 * (400 + 12) / 1000, rel=1e-6)
    a_in, a_out = a_in.cpu(), a_out.cpu()
    assert torch.equal(a_in[10:], w_in[10:])  # only words of the chunk are contexts
    assert not torch.equal(a_in[:10], w_in[:10])
    assert torch.equal(a_out[30:], w_out[30:])  # never drawn, never a centre
    assert torch.equal(a_out[10:20], w_out[10:20])


@pytest.mark.slow  # make test-slow: minutes in Triton's CPU interpreter; the kernel equality tests stay in make test
def test_sgns_triton_trainer_planted_structure_like_cpu():
    """Same planted corpus, same settings: the Triton trainer's loss curve follows the CPU kernel's and it recovers
    the planted groups as well (Hogwild order differs, so this is statistical)."""
    sents, groups = planted_corpus()
    kw = dict(dim=16, window=2, negative=3, sample=0, min_count=1, epochs=3, threads=1, seed=3, alpha=0.05,
              chunk_words=200)
    cpu = embedfast.Word2Vec(backend="cpu", **kw).train(sents, progress=False)
    tri = embedfast.Word2Vec(backend="triton", device=DEV, **kw).train(sents, progress=False)
    fresh = embedfast.Word2Vec(**kw).build_vocab(sents)
    k = len(groups[0]) - 1
    r_cpu = recall_at_k(cpu.w_in, cpu.words, groups, k)
    r_tri = recall_at_k(tri.w_in, tri.words, groups, k)
    r_0 = recall_at_k(fresh.w_in, fresh.words, groups, k)
    assert r_0 < 0.45, r_0  # chance level before training
    assert r_cpu > 0.9 and r_tri > 0.9 and abs(r_tri - r_cpu) < 0.1, (r_cpu, r_tri)
    l_cpu = [x[1] for x in cpu.loss_history]
    l_tri = [x[1] for x in tri.loss_history]
    assert len(l_cpu) == len(l_tri) >= 6
    assert l_tri[-1] < l_tri[0] - 0.1  # it learns
    for a, b in zip(l_cpu, l_tri):
        assert abs(a - b) < 0.05 * a, (l_cpu, l_tri)


# ---------------------------------------------------------------------------------------------------------
# loss op
# ---------------------------------------------------------------------------------------------------------


def loss_inputs(seed, dtype, index_dtype, V=9, V2=11, D=5, B=13, K=3, noncontig=False):
    g = torch.Generator().manual_seed(seed)
    w_in = torch.randn(V, D * (2 if noncontig else 1), generator=g, dtype=dtype)
    w_out = torch.randn(V2, D, generator=g, dtype=dtype)
    if noncontig:
        w_in = w_in[:, ::2]
    c = torch.randint(0, V, (B,), generator=g).to(index_dtype)
    x = torch.randint(0, V2, (B,), generator=g).to(index_dtype)
    n = torch.randint(0, V2, (B, K), generator=g).to(index_dtype)
    return w_in, w_out, c, x, n


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("noncontig", [False, True])
def test_sgns_triton_loss_forward_backward_vs_cpu(dtype, index_dtype, noncontig):
    w_in, w_out, c, x, n = loss_inputs(random.randrange(1 << 30), dtype, index_dtype, D=7, B=19,
                                       noncontig=noncontig)
    a_in, a_out = (t.detach().clone().requires_grad_() for t in (w_in, w_out))
    d_in, d_out = (t.detach().to(DEV).requires_grad_() for t in (w_in, w_out))
    ref = ops.sgns_loss(a_in, a_out, c, x, n, backend="cpu")
    out = ops.sgns_loss(d_in, d_out, *to_dev(c, x, n), backend="triton")
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(out.cpu(), ref, **tol)
    grad = torch.randn(ref.shape, dtype=dtype)
    ga = torch.autograd.grad(ref, (a_in, a_out), grad)
    gd = torch.autograd.grad(out, (d_in, d_out), grad.to(DEV))
    for p, q in zip(gd, ga):
        torch.testing.assert_close(p.cpu(), q, **tol)


def test_sgns_triton_loss_gradcheck():
    w_in, w_out, c, x, n = loss_inputs(random.randrange(1 << 30), torch.float64, torch.int64, V=6, V2=5, D=4, B=5,
                                       K=2)
    w_in, w_out = (t.to(DEV).requires_grad_() for t in (w_in, w_out))
    c, x, n = to_dev(c, x, n)
    assert torch.autograd.gradcheck(lambda a, b: ts.sgns_loss_triton(a, b, c, x, n), (w_in, w_out))


def test_sgns_triton_loss_large_dim_and_empty_batch():
    """D above one block (chunked dot products) and B = 0."""
    w_in, w_out, c, x, n = loss_inputs(random.randrange(1 << 30), torch.float64, torch.int64, D=300, B=5, K=2)
    out = ts.sgns_loss_triton(*to_dev(w_in, w_out, c, x, n)).cpu()
    torch.testing.assert_close(out, ops.sgns_loss(w_in, w_out, c, x, n, backend="cpu"))
    e = ts.sgns_loss_triton(*to_dev(w_in, w_out, c[:0], x[:0], n[:0]))
    assert e.shape == (0,)


def test_sgns_triton_loss_opcheck():
    w_in, w_out, c, x, n = loss_inputs(1, torch.float64, torch.int64, B=4)
    w_in, w_out = (t.to(DEV).requires_grad_() for t in (w_in, w_out))
    torch.library.opcheck(torch.ops.embedfast.sgns_loss_triton, (w_in, w_out, *to_dev(c, x, n)),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


# ---------------------------------------------------------------------------------------------------------
# backend selection and bad input
# ---------------------------------------------------------------------------------------------------------


def test_sgns_triton_backend_selection():
    assert sgns_backend("auto", "cpu") == "cpu"
    assert sgns_backend("triton", DEV) == "triton"
    with pytest.raises(ValueError, match="backend"):
        sgns_backend("gpu", "cpu")
    with pytest.raises(ValueError, match="backend='cuda' needs CUDA tensors"):
        sgns_backend("cuda", "cpu")
    with pytest.raises(ValueError, match="backend must be one of"):
        embedfast.Word2Vec(backend="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="backend='cpu' needs CPU tensors"):
            sgns_backend("cpu", "cuda")


def test_sgns_triton_train_bad_inputs():
    w_in, w_out, ids, keep, thr, alias = random_case(0)
    off = torch.tensor([0, ids.numel()])
    args = to_dev(w_in, w_out, ids, off, keep, thr, alias)

    def call(i=None, v=None, **kw):
        a = list(args)
        if i is not None:
            a[i] = v
        return triton_train(*a, **kw)

    with pytest.raises(ValueError, match="'ids' must have dtype torch.int32"):
        call(2, args[2].long())
    bad = args[2].clone()
    bad[4] = 99
    with pytest.raises(IndexError, match="'ids' has value 99 at position 4"):
        call(2, bad)
    with pytest.raises(ValueError, match="non-decreasing"):
        call(3, torch.tensor([0, 6, 3, 11], device=DEV))
    with pytest.raises(IndexError, match=r"sentence_offsets\[1\] = 50"):
        call(3, torch.tensor([0, 50], device=DEV))
    with pytest.raises(ValueError, match="window must be in"):
        call(window=0)
    with pytest.raises(ValueError, match="'keep_prob' must have shape"):
        call(4, args[4][:-1])
    with pytest.raises(ValueError, match="must be contiguous"):
        call(0, args[0].t().contiguous().t())
    with pytest.raises(ValueError, match="'w_out' is on|dtype torch.float32"):
        call(1, args[1].double())


@pytest.mark.slow  # make test-slow: minutes in Triton's CPU interpreter; the kernel equality tests stay in make test
def test_sgns_triton_kernels_compile_for_h100():
    """Every kernel type-checks and lowers to PTX and cubin for sm_90 (no GPU needed; nothing runs)."""
    if ts.INTERPRETED is False:
        res = ts.compile_for_target(90)
    else:
        res = compile_in_child("embedfast.word2vec.triton", "compile_for_target")
    assert len(res) == 8 and all(v > 1000 for v in res.values()), res


def test_old_triton_path_warns_and_aliases():
    """embedfast.triton.sgns (before embedfast.word2vec.triton) still exposes the same names, with a warning."""
    import importlib

    sys.modules.pop("embedfast.triton.sgns", None)
    with pytest.warns(DeprecationWarning, match="embedfast.triton.sgns is deprecated.*embedfast.word2vec.triton"):
        old = importlib.import_module("embedfast.triton.sgns")
    for name in old.__all__:
        assert getattr(old, name) is getattr(ts, name)
    assert old.compile_for_target is ts.compile_for_target and old.INTERPRETED == ts.INTERPRETED
