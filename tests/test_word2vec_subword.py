"""Sub-word skip-gram (``embedfast::word2vec_subword_train``, csrc/cpu/word2vec_subword.cpp): the op against a
plain float64 replay (one thread, the same random draws), threads, the table sigmoid, opcheck, the fake kernel,
torch.compile and every bad argument. The trainer (``Word2Vec(minn=...)``) is in test_word2vec_subword_trainer.py."""
from __future__ import annotations

import collections
import random

import numpy as np
import pytest
import torch

from embedfast import ops
from embedfast._vocab import encode_words
from embedfast.vectors.ops import fasttext_ngram_buckets
from embedfast.word2vec import keep_probabilities

from fasttext_util import ref_buckets
from test_word2vec_ops import ns_targets, random_encoded, replay_centers, score_target

ALPHABET = "abcdeéßжx字"


def reference_train(w_in, w_ng, w_out, ids, off, keep, thr, alias, ng_off, ng, *, window, negative, alpha, min_alpha,
                    words_done, total_words, seed, chunk, threads=1, update=True):
    """Plain float64 replay of word2vec_subword_train (exact sigmoid): the bag mean per center, its targets
    (each context word, then its negatives), the summed gradient added to every bag row after the center.
    With threads > 1 the parts run one after another (only the counts are comparable then)."""
    V = w_in.shape[0]
    res = collections.Counter()
    for rng, a, sent, i, js in replay_centers(ids, off, keep, window=window, alpha=alpha, min_alpha=min_alpha,
                                              words_done=words_done, total_words=total_words, seed=seed,
                                              chunk=chunk, threads=threads, res=res):
        if not js:
            continue
        c = sent[i]
        bag = ng[ng_off[c]:ng_off[c + 1]]
        h = (w_in[c] + w_ng[bag].sum(0)) / (1 + len(bag))
        e = np.zeros(w_in.shape[1])
        for j in js:
            for t, label in ns_targets(rng, sent[j], negative, V, thr, alias, res):
                score_target(w_out, h, t, label, e, a, res, update)
            res["pairs"] += 1
        if update:
            w_in[c] += e
            for bk in bag:
                w_ng[bk] += e
    return res


def random_words(rng: random.Random, n: int) -> list[str]:
    """``n`` distinct words of 1..7 characters, ASCII and not (2- and 3-byte UTF-8)."""
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 7))))
    return sorted(words)


def ngram_csr(words, minn, maxn, buckets):
    """The op's CSR of the words' buckets (int64 offsets, int32 buckets), checked against the plain rule."""
    off, bk = fasttext_ngram_buckets(*encode_words(words), minn, maxn, buckets)
    for i, w in enumerate(words):
        assert bk[off[i]:off[i + 1]].tolist() == ref_buckets(w.encode(), minn, maxn, buckets), w
    return off, bk.to(torch.int32)


def make_case(rng: random.Random, seed: int):
    V, D = rng.choice([(5, 3), (17, 7), (31, 13)])
    minn = rng.randint(1, 3)
    maxn, buckets = rng.randint(minn, 5), rng.choice([1, 7, 29])
    ids, off, counts = random_encoded(rng, V, n_sent=rng.randint(3, 8), max_len=12)
    ng_off, ng = ngram_csr(random_words(rng, V), minn, maxn, buckets)
    keep = keep_probabilities(counts, rng.choice([0.0, 1e-2, 5e-2]))
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    g = torch.Generator().manual_seed(seed % (1 << 31))
    w_in, w_ng, w_out = (torch.randn(n, D, generator=g) * 0.3 for n in (V, buckets, V))
    return ids, off, keep, thr, alias, ng_off, ng, w_in, w_ng, w_out


def stats_of(st: torch.Tensor) -> dict:
    return dict(zip(ops.TRAIN_STATS, st.tolist()))


def run(w_in, w_ng, w_out, ids, off, keep, thr, alias, ng_off, ng, **kw) -> dict:
    return stats_of(ops.word2vec_subword_train(w_in, w_ng, w_out, ids, off, keep, thr, alias, ng_off, ng, **kw))


@pytest.mark.parametrize("case", range(4))
def test_subword_train_matches_reference(case):
    seed = random.randrange(1 << 62)
    rng = random.Random(seed)
    for _ in range(50):  # a random case without any training pair (all sub-sampled away) is drawn again
        ids, off, keep, thr, alias, ng_off, ng, w_in, w_ng, w_out = make_case(rng, seed)
        off_chunk = off[rng.randint(0, 1):]  # a chunk that does not start at 0
        kw = dict(window=rng.randint(1, 4), negative=rng.randint(0, 4), alpha=0.05, min_alpha=0.001,
                  words_done=rng.randint(0, 50), total_words=200, seed=rng.randrange(-(1 << 40), 1 << 40),
                  chunk=rng.randint(0, 9))
        refs = [t.double().numpy().copy() for t in (w_in, w_ng, w_out)]
        ref = reference_train(*refs, ids.tolist(), off_chunk.tolist(), keep.tolist(), thr.tolist(), alias.tolist(),
                              ng_off.tolist(), np.asarray(ng.tolist(), dtype=np.int64), **kw)
        if ref["pairs"] > 0:
            break
    unused = torch.ones(w_ng.shape[0], dtype=torch.bool)
    unused[ng.long()] = False
    w_ng[unused] = float("nan")  # rows no bag reads: must stay untouched (and never reach a score)
    refs[1][unused.numpy()] = np.nan
    st = run(w_in, w_ng, w_out, ids, off_chunk, keep, thr, alias, ng_off, ng, num_threads=1, exact_sigmoid=True, **kw)
    assert st["pairs"] == ref["pairs"] > 0, f"seed {seed}"
    assert (st["negatives"], st["negatives_skipped"], st["kept_tokens"]) == (
        ref["negatives"], ref["skipped"], ref["kept"]), f"seed {seed}"
    assert st["tokens"] == int(off_chunk[-1] - off_chunk[0])
    assert st["loss"] == pytest.approx(ref["loss"], rel=1e-4, abs=1e-6), f"seed {seed}"
    for got, want in zip((w_in, w_ng, w_out), refs):
        torch.testing.assert_close(got.double(), torch.from_numpy(want), atol=2e-5, rtol=1e-4, equal_nan=True,
                                   msg=lambda m: f"seed {seed}: {m}")


def test_subword_train_table_sigmoid_and_threads():
    """The table sigmoid trains as the exact one; several threads make the reference's draws."""
    rng = random.Random(11)
    V, D, B = 60, 16, 97
    ids, off, counts = random_encoded(rng, V, 40, 20)
    ng_off, ng = ngram_csr(random_words(rng, V), 2, 4, B)
    keep = keep_probabilities(counts, 2e-2)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    kw = dict(window=4, negative=3, alpha=0.025, min_alpha=1e-4, words_done=0, total_words=int(off[-1]), seed=3,
              chunk=7)
    base = [torch.randn(n, D) * 0.3 for n in (V, B, V)]
    out = []
    for exact in (True, False):
        t = [x.clone() for x in base]
        run(*t, ids, off, keep, thr, alias, ng_off, ng, num_threads=1, exact_sigmoid=exact, **kw)
        out.append(t)
    for a, b in zip(*out):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=0)
    for threads in (2, 5):
        t = [x.clone() for x in base]
        st = run(*t, ids, off, keep, thr, alias, ng_off, ng, num_threads=threads, **kw)
        ref = reference_train(*(np.zeros((n, D)) for n in (V, B, V)), ids.tolist(), off.tolist(), keep.tolist(),
                              thr.tolist(), alias.tolist(), ng_off.tolist(), np.asarray(ng.tolist(), np.int64),
                              threads=threads, update=False, **kw)
        assert (st["pairs"], st["negatives"], st["negatives_skipped"], st["kept_tokens"]) == (
            ref["pairs"], ref["negatives"], ref["skipped"], ref["kept"])
        assert all(bool(torch.isfinite(x).all()) for x in t)


def _small():
    rng = random.Random(2)
    ids, off, counts = random_encoded(rng, 12, 5, 9)
    keep = keep_probabilities(counts, 1e-2)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    ng_off, ng = ngram_csr(random_words(rng, 12), 2, 3, 19)
    return ids, off, keep, thr, alias, ng_off, ng


def test_subword_train_opcheck_fake_and_compile():
    ids, off, keep, thr, alias, ng_off, ng = _small()
    tail = (2, 3, 0.025, 1e-4, 0, 100, 1, 0, 1, False)
    args = (torch.randn(12, 6) * 0.1, torch.randn(19, 6) * 0.1, torch.randn(12, 6) * 0.1, ids, off, keep, thr, alias,
            ng_off, ng) + tail
    torch.library.opcheck(torch.ops.embedfast.word2vec_subword_train.default, args)
    meta = [t.to("meta") if isinstance(t, torch.Tensor) else t for t in args]
    assert torch.ops.embedfast.word2vec_subword_train(*meta).shape == (len(ops.TRAIN_STATS),)
    bad = list(meta)
    bad[9] = bad[9].long()
    with pytest.raises(ValueError, match="'ngram_buckets' must have dtype Int"):
        torch.ops.embedfast.word2vec_subword_train(*bad)
    tabs = [torch.randn(12, 6) * 0.1, torch.randn(19, 6) * 0.1, torch.zeros(12, 6)]
    refs = [t.clone() for t in tabs]

    def step(a, b, c):
        return torch.ops.embedfast.word2vec_subword_train(a, b, c, ids, off, keep, thr, alias, ng_off, ng, *tail)

    st = torch.compile(step, fullgraph=True, backend="eager")(*tabs)
    assert torch.equal(st, step(*refs)) and all(torch.equal(a, b) for a, b in zip(tabs, refs))


def test_subword_train_bad_arguments():
    ids, off, keep, thr, alias, ng_off, ng = _small()
    w_in, w_ng, w_out = torch.zeros(12, 6), torch.zeros(19, 6), torch.zeros(12, 6)
    kw = dict(window=2, negative=3, alpha=0.025, min_alpha=1e-4, words_done=0, total_words=100, seed=1, chunk=0)

    def call(**over):
        a = dict(w_in=w_in, w_ng=w_ng, w_out=w_out, ng_off=ng_off, ng=ng, ids=ids, off=off)
        a.update(over)
        k = dict(kw)
        k.update({n: over.pop(n) for n in list(over) if n in kw})
        return ops.word2vec_subword_train(a["w_in"], a["w_ng"], a["w_out"], a["ids"], a["off"], keep, thr, alias,
                                          a["ng_off"], a["ng"], **k)

    cases = [
        (dict(w_ng=torch.zeros(19, 5)), ValueError, "'w_ngram' .* must have the 6 columns"),
        (dict(w_ng=torch.zeros(19, 12)[:, ::2]), ValueError, "'w_ngram' is updated in place and must be contiguous"),
        (dict(w_ng=torch.zeros(19, 6, dtype=torch.float64)), ValueError, "'w_ngram' must have dtype Float"),
        (dict(w_ng=w_in[:12]), ValueError, "'w_ngram' must not share memory"),
        (dict(ng=ng.long()), ValueError, "'ngram_buckets' must have dtype Int"),
        (dict(ng_off=ng_off[:-1]), ValueError, r"'ngram_offsets' must have shape \[13\]"),
        (dict(ng_off=ng_off.int()), ValueError, "'ngram_offsets' must have dtype Long"),
        (dict(ng=torch.where(torch.arange(ng.numel()) == 3, 19, ng).int()), IndexError,
         r"ngram_buckets\[3\] = 19 is outside the rows of 'w_ngram' \[0, 19\)"),
        (dict(ng=torch.where(torch.arange(ng.numel()) == 0, -1, ng).int()), IndexError, r"ngram_buckets\[0\] = -1"),
        (dict(ng_off=torch.cat([ng_off[:5], ng_off[5:6] - 100, ng_off[6:]])), ValueError,
         "'ngram_offsets' must be non-decreasing"),
        (dict(ng_off=ng_off + 1), ValueError, "'ngram_offsets' must start at 0 and end at"),
        (dict(w_out=torch.zeros(11, 6)), ValueError, "must have the same shape"),
        (dict(ids=torch.tensor([0, 12], dtype=torch.int32), off=torch.tensor([0, 2])), IndexError,
         "'ids' has value 12 at position 1"),
        (dict(window=0), ValueError, "window must be >= 1"),
        (dict(alpha=float("nan")), ValueError, "need a finite alpha"),
    ]
    for over, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            call(**over)
    assert torch.equal(w_in, torch.zeros(12, 6)) and torch.equal(w_ng, torch.zeros(19, 6))


def test_subword_train_divergence_raises():
    ids, off, keep, thr, alias, ng_off, ng = _small()
    w_ng = torch.randn(19, 6)
    w_ng[ng[0].long()] = float("inf")  # a bag row that is read: the scores turn non-finite
    with pytest.raises(ValueError, match="word2vec_subword_train: training diverged.*sub-word skip-gram"):
        ops.word2vec_subword_train(torch.randn(12, 6), w_ng, torch.randn(12, 6), ids, off, keep, thr, alias, ng_off,
                                   ng, window=2, negative=3, alpha=0.025, min_alpha=1e-4, words_done=0,
                                   total_words=100, seed=1, chunk=0)
