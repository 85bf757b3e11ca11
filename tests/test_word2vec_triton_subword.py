"""Triton sub-word skip-gram kernel (``embedfast::word2vec_subword_train_triton``, embedfast/word2vec/triton_models.py)
against a plain float64 replay of its draws and against the C++ CPU op (csrc/cpu/word2vec_subword.cpp).

As tests/test_word2vec_triton.py: without a GPU the kernel runs in Triton's interpreter on CPU tensors
(TRITON_INTERPRET=1 while the module is imported and while these tests run); on a machine with CUDA (and
TRITON_INTERPRET unset) the same tests run the compiled kernel on CUDA tensors (``pytest -m gpu``,
benchmarks/gpu/check.sh). Sentence ``s`` of a chunk draws from ``stream_key(seed, chunk, s)``, so a chunk of one
sentence trained with ``num_threads=1`` makes the CPU op's draws. Sizes are tiny: the interpreter is slow.
"""
from __future__ import annotations

import collections
import random

import numpy as np
import pytest
import torch

pytest.importorskip("triton")

from embedfast import ops  # noqa: E402
from embedfast._backend import TRITON_UNVERIFIED, select_backend  # noqa: E402
from embedfast.word2vec import keep_probabilities  # noqa: E402

from test_word2vec_ops import RefRng, log_sigmoid, ns_targets, random_encoded, sigmoid, stream_key  # noqa: E402
from test_word2vec_subword import ngram_csr, random_words  # noqa: E402
from cuda_util import compile_in_child  # noqa: E402


# the interpreted import and the module fixture that sets TRITON_INTERPRET while the tests run (autouse: it
# applies here too)
from test_word2vec_triton_models import DEV, INTERPRETED, interpreter_env, tm  # noqa: E402,F401


def reference_triton(w_in, w_ng, w_out, ids, off, keep, thr, alias, ng_off, ng, *, window, negative, alpha,
                     min_alpha, words_done, total_words, seed, chunk):
    """Float64 replay of the Triton kernel (exact sigmoid), sentence after sentence: sentence ``s`` its own stream
    ``stream_key(seed, chunk, s)`` and learning rate; per center with a context, the bag mean ``h``; per pair the
    targets scored from the values before the pair's update; the summed gradient to every bag row. Updates the
    numpy arrays in place; returns the counts and the loss."""
    V = w_in.shape[0]
    res = collections.Counter()
    for s in range(len(off) - 1):
        rng = RefRng(stream_key(seed, chunk, s))
        done = float(words_done) + float(off[s] - off[0])
        a = float(np.float32(alpha - (alpha - min_alpha) * min(1.0, done / float(total_words))))
        sent = [w for w in ids[off[s]:off[s + 1]] if not (keep[w] < 1.0 and rng.uniform() >= keep[w])]
        res["kept"] += len(sent)
        for i, c in enumerate(sent):
            b = window - rng.next() % window
            js = [j for j in range(max(0, i - b), min(len(sent), i + b + 1)) if j != i]
            if not js:
                continue
            bag = ng[ng_off[c]:ng_off[c + 1]]
            h = (w_in[c] + w_ng[bag].sum(0)) / (1 + len(bag))
            e = np.zeros(w_in.shape[1])
            for j in js:
                targets = list(ns_targets(rng, sent[j], negative, V, thr, alias, res))
                before = w_out[[t for t, _ in targets]].copy()
                for (t, label), row in zip(targets, before):
                    f = float(h @ row)
                    res["loss"] -= float(log_sigmoid(f if label else -f))
                    g = a * (label - sigmoid(f))
                    e += g * row
                    w_out[t] += g * h
                res["pairs"] += 1
            w_in[c] += e
            for bk in bag:
                w_ng[bk] += e
    return res


def make_case(rng: random.Random, seed: int, V: int, D: int, n_sent: int, max_len: int = 9):
    minn = rng.randint(1, 3)
    maxn, buckets = rng.randint(minn, 5), rng.choice([3, 11, 29])
    ids, off, counts = random_encoded(rng, V, n_sent=n_sent, max_len=max_len)
    ng_off, ng = ngram_csr(random_words(rng, V), minn, maxn, buckets)
    keep = keep_probabilities(counts, rng.choice([0.0, 5e-2]))
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    g = torch.Generator().manual_seed(seed % (1 << 31))
    w_in, w_ng, w_out = (torch.randn(n, D, generator=g) * 0.3 for n in (V, buckets, V))
    return ids, off, keep, thr, alias, ng_off, ng, w_in, w_ng, w_out


def triton_run(w_in, w_ng, w_out, ids, off, keep, thr, alias, ng_off, ng, **kw) -> dict:
    """The op through ``ops.word2vec_subword_train(backend="triton")`` on DEV copies of the inputs; the tables
    are updated in place (they must be DEV tensors already)."""
    a = [t.to(DEV) for t in (ids, off, keep, thr, alias, ng_off, ng)]
    st = ops.word2vec_subword_train(w_in, w_ng, w_out, *a, backend="triton", **kw)
    return dict(zip(ops.TRAIN_STATS, st.cpu().tolist()))


@pytest.mark.parametrize("case", range(2))
def test_subword_triton_matches_reference(case):
    """Several sentences (a chunk not starting at 0), odd sizes, duplicated buckets; rows no bag reads are NaN
    and must stay untouched."""
    seed = random.randrange(1 << 62)
    rng = random.Random(seed)
    V, D = [(7, 5), (19, 33)][case]  # D = 33: a row wider than 32 (two tiles of 32 would not do)
    for _ in range(50):  # a draw without any training pair (all sub-sampled away) is drawn again
        ids, off, keep, thr, alias, ng_off, ng, w_in, w_ng, w_out = make_case(rng, seed, V, D, n_sent=3)
        off_chunk = off[rng.randint(0, 1):]
        kw = dict(window=rng.randint(1, 3), negative=rng.randint(0, 3), alpha=0.05, min_alpha=0.001,
                  words_done=rng.randint(0, 30), total_words=100, seed=rng.randrange(-(1 << 40), 1 << 40),
                  chunk=rng.randint(0, 9))
        refs = [t.double().numpy().copy() for t in (w_in, w_ng, w_out)]
        ref = reference_triton(*refs, ids.tolist(), off_chunk.tolist(), keep.tolist(), thr.tolist(), alias.tolist(),
                               ng_off.tolist(), np.asarray(ng.tolist(), dtype=np.int64), **kw)
        if ref["pairs"] > 0:
            break
    unused = torch.ones(w_ng.shape[0], dtype=torch.bool)
    unused[ng.long()] = False
    w_ng[unused] = float("nan")
    refs[1][unused.numpy()] = np.nan
    tabs = [t.to(DEV, copy=True) for t in (w_in, w_ng, w_out)]
    st = triton_run(*tabs, ids, off_chunk, keep, thr, alias, ng_off, ng, num_threads=1, exact_sigmoid=True, **kw)
    msg = f"seed {seed}"
    assert st["pairs"] == ref["pairs"] > 0, msg
    assert (st["negatives"], st["negatives_skipped"], st["kept_tokens"]) == (
        ref["negatives"], ref["skipped"], ref["kept"]), msg
    assert st["tokens"] == int(off_chunk[-1] - off_chunk[0]) and st["sentences"] == len(off_chunk) - 1, msg
    assert st["loss"] == pytest.approx(ref["loss"], rel=1e-4, abs=1e-6), msg
    for got, want in zip(tabs, refs):
        torch.testing.assert_close(got.cpu().double(), torch.from_numpy(want), atol=2e-5, rtol=1e-4, equal_nan=True,
                                   msg=lambda m: f"{msg}: {m}")


@pytest.mark.parametrize("negative,exact", [(1, True), (0, True), (1, False)])
def test_subword_triton_matches_cpu_op_on_one_sentence(negative, exact):
    """One sentence, num_threads=1: the CPU op's draws. With at most one negative per pair no target repeats
    within a pair (where the two differ: the CPU scores a repeat after the first update), so the update is the
    CPU op's; the table sigmoid saturates alike (the CPU table interpolates inside, within 2e-6)."""
    seed = random.randrange(1 << 62)
    rng = random.Random(seed)
    for _ in range(50):
        ids, off, keep, thr, alias, ng_off, ng, w_in, w_ng, w_out = make_case(rng, seed, 11, 9, n_sent=1)
        kw = dict(window=3, negative=negative, alpha=0.07, min_alpha=0.001, words_done=3, total_words=50,
                  seed=rng.randrange(1 << 40), chunk=rng.randint(0, 5), num_threads=1, exact_sigmoid=exact)
        cpu = [t.clone() for t in (w_in, w_ng, w_out)]
        st_c = dict(zip(ops.TRAIN_STATS, ops.word2vec_subword_train(*cpu, ids, off, keep, thr, alias, ng_off, ng,
                                                                    **kw).tolist()))
        if st_c["pairs"] > 0:
            break
    tabs = [t.to(DEV, copy=True) for t in (w_in, w_ng, w_out)]
    st_t = triton_run(*tabs, ids, off, keep, thr, alias, ng_off, ng, **kw)
    msg = f"seed {seed}"
    for k in ops.TRAIN_STATS[1:]:
        assert st_t[k] == pytest.approx(st_c[k], rel=1e-6), (k, msg)
    assert st_t["loss"] == pytest.approx(st_c["loss"], rel=1e-4), msg
    for got, want in zip(tabs, cpu):
        torch.testing.assert_close(got.cpu(), want, atol=2e-5, rtol=1e-4, msg=lambda m: f"{msg}: {m}")
    assert not torch.equal(cpu[0], w_in), msg  # something was trained


def test_subword_triton_untouched_rows_and_stats():
    """Words never in the chunk nor drawn keep their rows bit for bit, and so do buckets outside their bags; an
    empty sentence and a one-word sentence (no context: nothing read or drawn) count as sentences."""
    rng = random.Random(5)
    V, D, B = 30, 6, 41
    counts = torch.ones(V, dtype=torch.int64)
    counts[10:20] = 10 ** 6  # negatives come (almost surely) from words 10..19
    thr, alias = ops.sgns_unigram_table(counts, 1.0)
    keep = torch.ones(V, dtype=torch.float64)
    ids = torch.tensor([rng.randrange(10) for _ in range(11)] + [25], dtype=torch.int32)
    off = torch.tensor([0, 5, 5, 11, 12])
    ng_off, ng = ngram_csr(random_words(rng, V), 2, 3, B)
    w_in, w_ng, w_out = (torch.randn(n, D) for n in (V, B, V))
    tabs = [t.to(DEV, copy=True) for t in (w_in, w_ng, w_out)]
    st = triton_run(*tabs, ids, off, keep, thr, alias, ng_off, ng, window=2, negative=2, alpha=0.05,
                    min_alpha=0.01, words_done=400, total_words=1000, seed=9, chunk=0, num_threads=3)
    assert st["tokens"] == 12 and st["kept_tokens"] == 12 and st["sentences"] == 4
    assert st["negatives"] + st["negatives_skipped"] == 2 * st["pairs"] > 0
    assert st["last_alpha"] == pytest.approx(0.05 - 0.04 * (400 + 11) / 1000, rel=1e-6)
    a_in, a_ng, a_out = (t.cpu() for t in tabs)
    assert torch.equal(a_in[10:], w_in[10:]) and not torch.equal(a_in[:10], w_in[:10])  # centers: words 0..9
    read = torch.zeros(B, dtype=torch.bool)
    read[ng[int(ng_off[0]):int(ng_off[10])].long()] = True
    assert torch.equal(a_ng[~read], w_ng[~read]) and not torch.equal(a_ng[read], w_ng[read])
    assert torch.equal(a_out[20:], w_out[20:])  # never a context, never drawn (word 25 has no context)


def test_subword_triton_divergence_and_bad_arguments():
    rng = random.Random(2)
    ids, off, counts = random_encoded(rng, 12, 5, 9)
    keep = keep_probabilities(counts, 1e-2)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    ng_off, ng = ngram_csr(random_words(rng, 12), 2, 3, 19)
    kw = dict(window=2, negative=3, alpha=0.025, min_alpha=1e-4, words_done=0, total_words=100, seed=1, chunk=0)
    w_ng = torch.randn(19, 6)
    w_ng[ng.long()] = float("inf")  # every bag row: the scores turn non-finite
    tabs = [t.to(DEV) for t in (torch.randn(12, 6), w_ng, torch.randn(12, 6))]
    with pytest.raises(ValueError, match="word2vec_subword_train_triton: training diverged.*sub-word skip-gram"):
        triton_run(*tabs, ids, off, keep, thr, alias, ng_off, ng, **kw)

    w_in, w_ng, w_out = (torch.zeros(n, 6, device=DEV) for n in (12, 19, 12))

    def call(**over):
        a = dict(w_in=w_in, w_ng=w_ng, w_out=w_out, ng_off=ng_off, ng=ng, ids=ids, off=off)
        k = dict(kw)
        k.update({n: over.pop(n) for n in list(over) if n in kw})
        a.update(over)
        return triton_run(a["w_in"], a["w_ng"], a["w_out"], a["ids"], a["off"], keep, thr, alias, a["ng_off"],
                          a["ng"], **k)

    cases = [
        (dict(w_ng=torch.zeros(19, 5, device=DEV)), ValueError, r"'w_ngram' \(19, 5\) must have the 6 columns"),
        (dict(w_ng=torch.zeros(19, 12, device=DEV)[:, ::2]), ValueError, "'w_ngram' is updated in place and must be "
         "contiguous"),
        (dict(w_ng=torch.zeros(19, 6, dtype=torch.float64, device=DEV)), ValueError, "'w_ngram' must have dtype "
         "torch.float32"),
        (dict(w_ng=w_in), ValueError, "'w_ngram' must not share memory"),
        (dict(ng=ng.long()), ValueError, "'ngram_buckets' must have dtype torch.int32"),
        (dict(ng_off=ng_off[:-1]), ValueError, r"'ngram_offsets' must have shape \[13\]"),
        (dict(ng_off=ng_off.int()), ValueError, "'ngram_offsets' must have dtype torch.int64"),
        (dict(ng=torch.where(torch.arange(ng.numel()) == 3, 19, ng).int()), IndexError,
         r"ngram_buckets\[3\] = 19 is outside the rows of 'w_ngram' \[0, 19\)"),
        (dict(ng=torch.where(torch.arange(ng.numel()) == 0, -1, ng).int()), IndexError, r"ngram_buckets\[0\] = -1"),
        (dict(ng_off=torch.cat([ng_off[:5], ng_off[5:6] - 100, ng_off[6:]])), ValueError,
         r"'ngram_offsets' must be non-decreasing, but \[5\]"),
        (dict(ng_off=ng_off + 1), ValueError, "'ngram_offsets' must start at 0 and end at"),
        (dict(w_out=torch.zeros(11, 6, device=DEV)), ValueError, "must have the same shape"),
        (dict(ids=torch.tensor([0, 12], dtype=torch.int32), off=torch.tensor([0, 2])), IndexError,
         "word2vec_subword_train_triton: 'ids' has value 12 at position 1"),
        (dict(window=0), ValueError, "window must be in"),
        (dict(negative=65), ValueError, "negative must be in"),
        (dict(alpha=float("nan")), ValueError, "need a finite alpha"),
    ]
    for over, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            call(**over)
    assert not w_in.any() and not w_ng.any() and not w_out.any()  # nothing was written by a refused call


def test_subword_triton_backend_choice():
    """"auto" never picks the unverified Triton kernel for CUDA tensors (no CUDA C++ kernel either): a clear
    error naming backend='triton'; CPU tensors get the C++ op; "triton" / "cpu" are honoured."""
    op = "word2vec_subword_train"
    assert op in TRITON_UNVERIFIED
    assert select_backend(op, "auto", "cpu", "embedfast.word2vec.triton") == "cpu"
    with pytest.raises(RuntimeError, match="does not pick the Triton kernel.*only in Triton's interpreter.*"
                                           "backend='triton'"):
        select_backend(op, "auto", "cuda", "embedfast.word2vec.triton")
    with pytest.raises((ValueError, RuntimeError), match="backend='cuda'"):
        select_backend(op, "cuda", DEV, "embedfast.word2vec.triton")
    assert select_backend(op, "triton", DEV, "embedfast.word2vec.triton") == "triton"
    if INTERPRETED:  # the other ops keep their choice: here an error for CUDA tensors, as before
        with pytest.raises(RuntimeError, match="run in Triton's interpreter"):
            select_backend("sgns_train", "auto", "cuda", "embedfast.word2vec.triton")
    else:
        assert select_backend("sgns_train", "auto", "cuda", "embedfast.word2vec.triton") in ("triton", "cuda")


def test_subword_triton_opcheck_and_compile():
    rng = random.Random(3)
    ids, off, keep, thr, alias, ng_off, ng, w_in, w_ng, w_out = make_case(rng, 3, 6, 5, n_sent=1, max_len=5)
    dev = [t.to(DEV) for t in (ids, off, keep, thr, alias, ng_off, ng)]
    tail = (2, 2, 0.05, 1e-3, 0, 40, 7, 1, 1, True)
    args = tuple(t.to(DEV, copy=True) for t in (w_in, w_ng, w_out)) + tuple(dev) + tail
    torch.library.opcheck(torch.ops.embedfast.word2vec_subword_train_triton.default, args,
                          test_utils=("test_schema", "test_faketensor"))
    meta = [t.to("meta") if isinstance(t, torch.Tensor) else t for t in args]
    assert torch.ops.embedfast.word2vec_subword_train_triton(*meta).shape == (len(ops.TRAIN_STATS),)
    tabs = [t.to(DEV, copy=True) for t in (w_in, w_ng, w_out)]
    refs = [t.to(DEV, copy=True) for t in (w_in, w_ng, w_out)]

    def step(a, b, c):
        return ops.word2vec_subword_train(a, b, c, *dev, window=2, negative=2, alpha=0.05, min_alpha=1e-3,
                                          words_done=0, total_words=40, seed=7, chunk=1, exact_sigmoid=True,
                                          backend="triton")

    st = torch.compile(step, fullgraph=True, backend="eager" if INTERPRETED else "inductor")(*tabs)
    want = step(*refs)
    assert torch.allclose(st, want, rtol=1e-5) and all(torch.allclose(a, b, atol=1e-6) for a, b in zip(tabs, refs))


def test_subword_triton_trainer_matches_cpu_trainer():
    """Word2Vec(minn=..., backend="triton"): a corpus of one line is one sentence per chunk, so with one thread
    and one negative per pair the Triton trainer makes the CPU trainer's draws and updates, epoch after epoch."""
    import embedfast

    rng = random.Random(random.randrange(1 << 30))
    words = random_words(rng, 6)
    line = " ".join(rng.choice(words) for _ in range(9))
    out = {}
    for backend in ("cpu", "triton"):
        w2v = embedfast.Word2Vec(dim=8, window=2, negative=1, min_count=1, sample=0, epochs=2, minn=2, maxn=3,
                                 buckets=37, threads=1, seed=3, backend=backend, device=DEV if backend != "cpu" else None)
        w2v.train([line.split()], progress=False)
        out[backend] = w2v
    a, b = out["cpu"], out["triton"]
    assert a.words == b.words
    for name in ("w_in", "w_ngram", "w_out"):
        torch.testing.assert_close(getattr(b, name).cpu(), getattr(a, name), atol=2e-5, rtol=1e-4,
                                   msg=lambda m: f"{name}: {m} ({line!r})")
    assert a.loss_history and b.loss_history and a.train_seconds > 0  # both trained
    torch.testing.assert_close(b.vectors.vectors_for(["zzz" + words[0]]), a.vectors.vectors_for(["zzz" + words[0]]),
                               atol=2e-5, rtol=1e-4)  # an unseen word, from the trained n-gram rows


@pytest.mark.slow  # make test-slow: compiling for sm_90 takes a while; nothing runs
def test_subword_triton_kernel_compiles_for_h100():
    """The kernel type-checks and lowers to PTX and cubin for sm_90 (no GPU needed)."""
    if not INTERPRETED:
        res = tm.compile_subword_for_target(90)
    else:
        res = compile_in_child("embedfast.word2vec.triton_models", "compile_subword_for_target")
    assert len(res) == 2 and all(v > 1000 for v in res.values()), res
