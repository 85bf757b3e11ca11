"""word2vec ops: the corpus pipeline, the fused training op against a plain reference, sgns_loss, SkipGram.

The reference re-implements the documented counter-based RNG (csrc/include/embedfast/rng.h) in Python and
replays the kernel's random draws (csrc/cpu/word2vec_sgns.cpp documents their order), so the kernel must produce the
same update as a straightforward float64 implementation.
"""
from __future__ import annotations

import collections
import random

import numpy as np
import pytest
import torch

from embedfast import ops
from embedfast.word2vec import SkipGram, keep_probabilities

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
C1, C2, SALT = 0xD1B54A32D192ED03, 0x8CB92BA72F3D8DD7, 0x5851F42D4C957F2D


# ---------------------------------------------------------------------------------------------------------
# reference implementation
# ---------------------------------------------------------------------------------------------------------


def mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def stream_key(seed: int, chunk: int, part: int) -> int:
    return mix64(mix64((seed & MASK) ^ SALT) ^ ((chunk * C1) & MASK) ^ ((part * C2) & MASK))


class RefRng:
    def __init__(self, key: int):
        self.state = key

    def next(self) -> int:
        self.state = (self.state + GOLDEN) & MASK
        return mix64(self.state)

    def uniform(self) -> float:
        return (self.next() >> 11) * (1.0 / 9007199254740992.0)


def alias_pick(r: int, n: int, thr, alias) -> int:
    i = ((r >> 32) * n) >> 32
    return i if (r & 0xFFFFFFFF) < thr[i] else alias[i]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


PARTS_PER_THREAD, PART_TOKENS = 16, 4096  # csrc/include/embedfast/sgns_train.h


def train_parts(off, threads):
    """The number of parts of a CPU training call (train_parts of sgns_train.h): 1 for one thread, else about
    one per PART_TOKENS tokens, between threads and PARTS_PER_THREAD * threads."""
    if threads <= 1:
        return 1
    return max(threads, min((off[-1] - off[0]) // PART_TOKENS, PARTS_PER_THREAD * threads))


def part_bounds(off, parts):
    S = len(off) - 1
    first, ntok = off[0], off[S] - off[0]
    bounds = [0] * (parts + 1)
    bounds[parts] = S
    for p in range(1, parts):
        target = first + ntok * p // parts
        bounds[p] = max(bounds[p - 1], int(np.searchsorted(np.asarray(off[:S]), target, side="left")))
    return bounds


def replay_centers(ids, off, keep, *, window, alpha, min_alpha, words_done, total_words, seed, chunk, threads, res):
    """The draws every CPU training op makes around its model's arithmetic, in the kernels' order: each part's
    random stream, each sentence's learning rate and sub-sampled tokens (counted in ``res["kept"]``), each
    center's window draw. Yields ``(rng, alpha, sent, i, js)``: ``js`` the context positions of center
    ``sent[i]`` (possibly empty); the caller makes the model's own draws from ``rng``.

    With threads > 1 the parts are replayed one after another (only the counts are comparable then)."""
    ids, off = list(ids), list(off)
    chunk_tokens = off[-1] - off[0]
    parts = train_parts(off, threads)
    bounds = part_bounds(off, parts)
    for part in range(parts):
        s_begin, s_end = bounds[part], bounds[part + 1]
        if s_end <= s_begin:
            continue
        rng = RefRng(stream_key(seed, chunk, part))
        part_first, part_tokens = off[s_begin], float(off[s_end] - off[s_begin])
        for s in range(s_begin, s_end):
            done = float(words_done) + float(chunk_tokens) * (float(off[s] - part_first) / part_tokens)
            a = float(np.float32(alpha - (alpha - min_alpha) * min(1.0, done / float(total_words))))
            sent = [w for w in ids[off[s]:off[s + 1]] if not (keep[w] < 1.0 and rng.uniform() >= keep[w])]
            res["kept"] += len(sent)
            for i in range(len(sent)):
                b = window - (rng.next() % window)
                yield rng, a, sent, i, [j for j in range(max(0, i - b), min(len(sent), i + b + 1)) if j != i]


def ns_targets(rng, positive, negative, V, thr, alias, res):
    """Negative sampling of one pair (per-pair mode): ``(positive, 1.0)``, then each draw that is not the
    positive as ``(t, 0.0)`` (counted in ``res["negatives"]``; equal draws in ``res["skipped"]``)."""
    yield positive, 1.0
    for _ in range(negative):
        t = alias_pick(rng.next(), V, thr, alias)
        if t == positive:
            res["skipped"] += 1
            continue
        res["negatives"] += 1
        yield t, 0.0


def score_target(w_out, inp, t, label, e, a, res, update=True):
    """One target of the float64 references: score ``inp . w_out[t]`` (its loss into ``res["loss"]``), add
    ``g w_out[t]`` (the value before the update) to ``e``, then ``w_out[t] += g inp`` when ``update``."""
    f = float(inp @ w_out[t])
    res["loss"] -= float(log_sigmoid(f if label else -f))
    g = a * (label - sigmoid(f))
    e += g * w_out[t]
    if update:
        w_out[t] += g * inp


def reference_train(w_in, w_out, ids, off, keep, thr, alias, *, window, negative, alpha, min_alpha, words_done,
                    total_words, seed, chunk, threads=1, shared, update=True):
    """Plain float64 replay of sgns_train (exact sigmoid). Returns dict of counts and the loss.

    With threads > 1 the parts are replayed one after another (only the counts are comparable then).
    """
    V = w_in.shape[0]
    res = collections.Counter()
    for rng, a, sent, i, js in replay_centers(ids, off, keep, window=window, alpha=alpha, min_alpha=min_alpha,
                                              words_done=words_done, total_words=total_words, seed=seed,
                                              chunk=chunk, threads=threads, res=res):
        c = sent[i]
        if shared:
            targets = [c]
            for _ in range(negative):
                t = alias_pick(rng.next(), V, thr, alias)
                if t == c:
                    res["skipped"] += 1
                else:
                    targets.append(t)
            if not js:
                continue
            X = w_in[[sent[j] for j in js]]
            T = w_out[targets]
            F = X @ T.T
            labels = np.zeros(len(targets))
            labels[0] = 1.0
            res["loss"] -= float(log_sigmoid(np.where(labels == 1, F, -F)).sum())
            G = a * (labels - sigmoid(F))
            if update:
                dX = G @ T
                dT = G.T @ X
                for ti, t in enumerate(targets):
                    w_out[t] += dT[ti]
                for xi, j in enumerate(js):
                    w_in[sent[j]] += dX[xi]
            res["pairs"] += len(js)
            res["negatives"] += len(js) * (len(targets) - 1)
        else:
            for j in js:
                x = sent[j]
                e = np.zeros(w_in.shape[1])
                for t, label in ns_targets(rng, c, negative, V, thr, alias, res):
                    score_target(w_out, w_in[x], t, label, e, a, res, update)
                if update:
                    w_in[x] += e
                res["pairs"] += 1
    return res


def random_encoded(rng: random.Random, V: int, n_sent: int, max_len: int):
    lens = [rng.randint(1, max_len) for _ in range(n_sent)]
    # Zipf-ish ids so that sub-sampling and the alias table matter
    weights = [1.0 / (r + 1) for r in range(V)]
    ids = rng.choices(range(V), weights=weights, k=sum(lens))
    off = [0]
    for n in lens:
        off.append(off[-1] + n)
    counts = collections.Counter(ids)
    counts = torch.tensor([counts.get(v, 0) + 1 for v in range(V)], dtype=torch.int64)
    return torch.tensor(ids, dtype=torch.int32), torch.tensor(off, dtype=torch.int64), counts


def run_kernel(w_in, w_out, ids, off, keep, thr, alias, **kw):
    st = ops.sgns_train(w_in, w_out, ids, off, keep, thr, alias, **kw)
    return dict(zip(ops.TRAIN_STATS, st.tolist()))


# ---------------------------------------------------------------------------------------------------------
# the fused op against the reference
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("case", range(3))
def test_sgns_train_matches_reference(shared, case):
    seed = random.randrange(1 << 62)
    rng = random.Random(seed)
    for _ in range(50):  # a random case without any training pair (all sub-sampled away) is drawn again
        V, D = rng.choice([(7, 5), (23, 17), (40, 33)])
        window, negative = rng.randint(1, 4), rng.randint(0, 4)
        ids, off, counts = random_encoded(rng, V, n_sent=rng.randint(3, 8), max_len=12)
        # a chunk in the middle: offsets slice (not starting at 0)
        s0 = rng.randint(0, 1)
        off_chunk = off[s0:]
        keep = keep_probabilities(counts, rng.choice([0.0, 1e-2, 5e-2]))
        thr, alias = ops.sgns_unigram_table(counts, 0.75)
        g = torch.Generator().manual_seed(seed % (1 << 31))
        w_in = torch.randn(V, D, generator=g) * 0.3
        w_out = torch.randn(V, D, generator=g) * 0.3
        ref_in, ref_out = w_in.double().numpy().copy(), w_out.double().numpy().copy()
        kw = dict(window=window, negative=negative, alpha=0.05, min_alpha=0.001, words_done=rng.randint(0, 50),
                  total_words=200, seed=rng.randrange(-(1 << 40), 1 << 40), chunk=rng.randint(0, 9))
        ref = reference_train(ref_in, ref_out, ids.tolist(), off_chunk.tolist(), keep.tolist(), thr.tolist(),
                              alias.tolist(), shared=shared, **kw)
        if ref["pairs"] > 0:
            break
    stats = run_kernel(w_in, w_out, ids, off_chunk, keep, thr, alias, num_threads=1, shared_negatives=shared,
                       exact_sigmoid=True, **kw)
    assert stats["pairs"] == ref["pairs"] and stats["pairs"] > 0
    assert stats["negatives"] == ref["negatives"]
    assert stats["negatives_skipped"] == ref["skipped"]
    assert stats["kept_tokens"] == ref["kept"]
    assert stats["tokens"] == int(off_chunk[-1] - off_chunk[0])
    assert stats["loss"] == pytest.approx(ref["loss"], rel=1e-4)
    torch.testing.assert_close(w_in.double(), torch.from_numpy(ref_in), atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(w_out.double(), torch.from_numpy(ref_out), atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("shared", [False, True])
def test_sigmoid_table_close_to_exact(shared):
    rng = random.Random(11)
    V, D = 30, 16
    ids, off, counts = random_encoded(rng, V, 20, 15)
    keep = keep_probabilities(counts, 0.0)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    w = torch.randn(V, D) * 0.5
    results = []
    for exact in (True, False):
        w_in, w_out = w.clone(), w.flip(0).clone()
        st = run_kernel(w_in, w_out, ids, off, keep, thr, alias, window=3, negative=3, alpha=0.025, min_alpha=1e-4,
                        words_done=0, total_words=int(off[-1]), seed=5, chunk=0, num_threads=1,
                        shared_negatives=shared, exact_sigmoid=exact)
        results.append((w_in, w_out, st))
    (a_in, a_out, a_st), (b_in, b_out, b_st) = results
    assert a_st["pairs"] == b_st["pairs"]
    torch.testing.assert_close(a_in, b_in, atol=2e-5, rtol=0)
    torch.testing.assert_close(a_out, b_out, atol=2e-5, rtol=0)
    assert a_st["loss"] == pytest.approx(b_st["loss"], rel=1e-5)


@pytest.mark.parametrize("threads,sentences,window,negative", [(2, 40, 4, 3), (3, 40, 4, 3), (5, 40, 4, 3),
                                                               (2, 2000, 1, 1), (3, 3000, 1, 1)])
def test_sgns_train_threads_counts_match_reference(threads, sentences, window, negative):
    """With several threads the updates race (Hogwild), but which draws each part makes does not. The long
    chunks have more parts than threads (train_parts), taken by the threads as they become free."""
    rng = random.Random(threads * sentences)
    V, D = 50, 8
    ids, off, counts = random_encoded(rng, V, sentences, 20)
    if sentences > 1000:
        assert train_parts(off.tolist(), threads) > threads
    keep = keep_probabilities(counts, 2e-2)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    kw = dict(window=window, negative=negative, alpha=0.025, min_alpha=1e-4, words_done=0,
              total_words=int(off[-1]), seed=3, chunk=7)
    w_in, w_out = torch.randn(V, D) * 0.1, torch.zeros(V, D)
    st = run_kernel(w_in, w_out, ids, off, keep, thr, alias, num_threads=threads, shared_negatives=False,
                    exact_sigmoid=False, **kw)
    ref = reference_train(np.zeros((V, D)), np.zeros((V, D)), ids.tolist(), off.tolist(), keep.tolist(),
                          thr.tolist(), alias.tolist(), threads=threads, shared=False, update=False, **kw)
    assert (st["pairs"], st["negatives"], st["negatives_skipped"], st["kept_tokens"]) == (
        ref["pairs"], ref["negatives"], ref["skipped"], ref["kept"])
    assert torch.isfinite(w_in).all() and torch.isfinite(w_out).all()


def test_unigram_alias_table_is_exact():
    rng = random.Random(4)
    for V in (1, 2, 7, 1000):
        counts = torch.tensor([rng.randint(1, 10**6) for _ in range(V)], dtype=torch.int64)
        thr, alias = ops.sgns_unigram_table(counts, 0.75)
        p = counts.double() ** 0.75
        p /= p.sum()
        implied = torch.zeros(V, dtype=torch.float64)
        keep = thr.double() / 2**32
        implied += keep / V
        implied.index_add_(0, alias.long(), (1 - keep) / V)
        torch.testing.assert_close(implied, p, atol=1e-9, rtol=0)
    # draws through the reference sampler follow the distribution
    counts = torch.tensor([1000, 100, 10, 1], dtype=torch.int64)
    thr, alias = ops.sgns_unigram_table(counts, 1.0)
    r = RefRng(stream_key(1, 2, 3))
    draws = collections.Counter(alias_pick(r.next(), 4, thr.tolist(), alias.tolist()) for _ in range(20000))
    assert abs(draws[0] / 20000 - 1000 / 1111) < 0.01


def test_sgns_train_opcheck():
    rng = random.Random(2)
    ids, off, counts = random_encoded(rng, 12, 5, 9)
    keep = keep_probabilities(counts, 1e-2)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    args = (torch.randn(12, 6) * 0.1, torch.randn(12, 6) * 0.1, ids, off, keep, thr, alias, 2, 3, 0.025, 1e-4, 0,
            100, 1, 0, 1, True, False)
    torch.library.opcheck(torch.ops.embedfast.sgns_train.default, args)
    torch.library.opcheck(torch.ops.embedfast.sgns_unigram_table.default, (counts, 0.75))


# ---------------------------------------------------------------------------------------------------------
# corpus pipeline
# ---------------------------------------------------------------------------------------------------------


def messy_text(rng: random.Random, n_lines: int, vocab: list[str]) -> str:
    lines = []
    for _ in range(n_lines):
        k = rng.choice([0, 0, 1, 3, 8, 25])
        toks = [rng.choice(vocab) for _ in range(k)]
        seps = [rng.choice([" ", "  ", "\t", " \r", "\f"]) for _ in range(k)]
        line = rng.choice(["", " ", "\t"]) + "".join(t + s for t, s in zip(toks, seps))
        lines.append(line.rstrip("\r") if rng.random() < 0.5 else line)
    return "\n".join(lines) + rng.choice(["", "\n", "\r\n"])


def reference_vocab(text: str, min_count: int, max_vocab: int):
    """Count descending; equal counts: the word first seen later comes first (gensim's order)."""
    cnt = collections.Counter(text.split())  # keys in order of first occurrence
    first = {w: i for i, w in enumerate(cnt)}
    kept = sorted([(w, c) for w, c in cnt.items() if c >= min_count], key=lambda wc: (-wc[1], -first[wc[0]]))
    if max_vocab > 0:
        kept = kept[:max_vocab]
    return kept, cnt


def reference_encode(text: str, index: dict, max_len: int):
    ids, off, split = [], [0], 0
    lines = text.split("\n")
    if lines and lines[-1].strip(" \t\r\f\v") == "":
        lines = lines[:-1] if text.endswith("\n") or lines[-1] == "" else lines
    for line in lines:
        enc = [index[t] for t in line.split() if t in index]
        pieces = [enc[i:i + max_len] for i in range(0, len(enc), max_len)]
        split += len(pieces) > 1
        for p in pieces:
            ids.extend(p)
            off.append(len(ids))
    return ids, off, split


@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize("source", ["file", "bytes"])
def test_corpus_vocab_and_encode_match_reference(tmp_path, threads, source):
    rng = random.Random(threads * 7 + len(source))
    vocab = [f"w{i}" for i in range(60)] + ["é", "ü̈x", "a" * 40, "Z"]
    text = messy_text(rng, 3000, vocab)
    raw = text.encode()
    path = tmp_path / "c.txt"
    path.write_bytes(raw)
    kwargs = dict(data=torch.frombuffer(bytearray(raw), dtype=torch.uint8)) if source == "bytes" else {}
    p = str(path) if source == "file" else None
    min_count, max_vocab, max_len = rng.choice([1, 3, 50]), rng.choice([-1, 10, 1000]), rng.choice([2, 7, 10000])
    wb, wo, counts, st = ops.corpus_build_vocab(p, min_count=min_count, max_vocab=max_vocab, num_threads=threads,
                                                **kwargs)
    stats = dict(zip(ops.VOCAB_STATS, st.tolist()))
    kept, cnt = reference_vocab(text, min_count, max_vocab)
    b, o = bytes(wb.numpy()), wo.tolist()
    words = [b[o[i]:o[i + 1]].decode() for i in range(len(o) - 1)]
    assert words == [w for w, _ in kept]
    assert counts.tolist() == [c for _, c in kept]
    assert stats["tokens"] == sum(cnt.values()) and stats["unique_words"] == len(cnt)
    assert stats["vocab_tokens"] + stats["min_count_tokens"] + stats["max_vocab_tokens"] == stats["tokens"]
    ids, off, est = ops.corpus_encode(p, word_bytes=wb, word_offsets=wo, max_sentence_length=max_len,
                                      num_threads=threads, **kwargs)
    estats = dict(zip(ops.ENCODE_STATS, est.tolist()))
    ref_ids, ref_off, ref_split = reference_encode(text, {w: i for i, w in enumerate(words)}, max_len)
    assert ids.dtype == torch.int32 and ids.tolist() == ref_ids
    assert off.tolist() == ref_off
    assert estats["split_lines"] == ref_split
    assert estats["encoded_tokens"] + estats["oov_tokens"] == estats["tokens"] == stats["tokens"]
    assert estats["lines"] == stats["lines"]


@pytest.mark.parametrize("threads", [1, 3])
def test_corpus_vocab_order_is_gensims(tmp_path, threads):
    """Ties of count are broken as gensim breaks them, so the ids (and the Huffman tree) are gensim's; the order
    does not depend on how the text is cut between threads (ranges of 64 KiB or more)."""
    gensim = pytest.importorskip("gensim")
    rng = random.Random(threads)
    vocab = [f"t{rng.randrange(10**6)}" for _ in range(400)]
    lines = [" ".join(rng.choice(vocab[:rng.choice([40, 400])]) for _ in range(rng.randrange(1, 30)))
             for _ in range(20000)]
    path = tmp_path / "c.txt"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 3 * (1 << 16)
    wb, wo, counts, _ = ops.corpus_build_vocab(str(path), min_count=2, num_threads=threads)
    b, o = bytes(wb.numpy()), wo.tolist()
    words = [b[o[i]:o[i + 1]].decode() for i in range(len(o) - 1)]
    c = counts.tolist()
    assert sum(c[i] == c[i + 1] for i in range(len(c) - 1)) > 50  # many ties to break
    g = gensim.models.Word2Vec(vector_size=4, min_count=2, workers=1)
    g.build_vocab(corpus_file=str(path))
    assert words == list(g.wv.index_to_key)


def test_corpus_long_line_is_split_not_truncated():
    text = (" ".join(["a", "b", "c"] * 10) + "\nb c\n").encode()
    data = torch.frombuffer(bytearray(text), dtype=torch.uint8)
    wb, wo, counts, _ = ops.corpus_build_vocab(data=data, min_count=1)
    ids, off, st = ops.corpus_encode(data=data, word_bytes=wb, word_offsets=wo, max_sentence_length=7)
    st = dict(zip(ops.ENCODE_STATS, st.tolist()))
    assert ids.numel() == 32
    assert torch.diff(off).tolist() == [7, 7, 7, 7, 2, 2]
    assert st["split_lines"] == 1 and st["extra_pieces"] == 4 and st["sentences"] == 6


def test_corpus_ops_opcheck():
    data = torch.frombuffer(bytearray(b"x y z x\ny x\n\nq\n"), dtype=torch.uint8)
    torch.library.opcheck(torch.ops.embedfast.corpus_build_vocab.default, ("", data, 1, -1, 1))
    wb, wo, _, _ = ops.corpus_build_vocab(data=data, min_count=2)
    torch.library.opcheck(torch.ops.embedfast.corpus_encode.default, ("", data, wb, wo, 3, 2))


def test_corpus_bad_inputs(tmp_path):
    with pytest.raises(RuntimeError, match="cannot open"):
        ops.corpus_build_vocab(str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="directory"):
        ops.corpus_build_vocab(str(tmp_path))
    with pytest.raises(ValueError, match="'data' must have dtype"):
        ops.corpus_build_vocab(data=torch.zeros(4, dtype=torch.int32))
    with pytest.raises(ValueError, match="min_count"):
        ops.corpus_build_vocab(data=torch.zeros(4, dtype=torch.uint8), min_count=0)
    text = torch.tensor(list(b"a a\n"), dtype=torch.uint8)
    wb = torch.tensor(list(b"aa"), dtype=torch.uint8)
    with pytest.raises(ValueError, match="appears twice"):
        ops.corpus_encode(data=text, word_bytes=wb, word_offsets=torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="max_sentence_length must be >= 1"):
        ops.corpus_encode(data=text, word_bytes=wb[:1], word_offsets=torch.tensor([0, 1]), max_sentence_length=0)
    with pytest.raises(ValueError, match="strictly increasing"):
        ops.corpus_encode(data=text, word_bytes=wb, word_offsets=torch.tensor([0, 0, 2]))


@pytest.mark.parametrize("source", ["file", "bytes"])
def test_corpus_encode_blocks_join_to_whole(tmp_path, source):
    """Encoding block by block (start / max_bytes) gives the whole encoding: no line lost or read twice."""
    rng = random.Random()  # fresh seed each run
    seed = rng.randrange(1 << 30)
    rng = random.Random(seed)
    text = messy_text(rng, rng.randint(200, 800), [f"w{i}" for i in range(40)])
    raw = text.encode()
    path = tmp_path / "c.txt"
    path.write_bytes(raw)
    kw = dict(data=torch.frombuffer(bytearray(raw), dtype=torch.uint8)) if source == "bytes" else {}
    p = str(path) if source == "file" else None
    wb, wo, _, _ = ops.corpus_build_vocab(p, min_count=2, **kw)
    max_len = rng.choice([3, 10000])
    ids, off, st = ops.corpus_encode(p, word_bytes=wb, word_offsets=wo, max_sentence_length=max_len, **kw)
    start, parts_ids, lengths, total = 0, [], [], torch.zeros_like(st)
    while start < len(raw):
        step = rng.choice([1, 2, 7, 50, 500, 10**6])
        b_ids, b_off, b_st = ops.corpus_encode(p, word_bytes=wb, word_offsets=wo, max_sentence_length=max_len,
                                               num_threads=rng.choice([1, 2, 3]), start=start, max_bytes=step, **kw)
        n = int(b_st[0])
        assert n >= 1 and (start + n == len(raw) or raw[start + n - 1:start + n] == b"\n"), seed
        assert n >= min(step, len(raw) - start), seed  # at least max_bytes, then to the end of that line
        assert b_off[0] == 0 and b_off[-1] == b_ids.numel()
        parts_ids.append(b_ids)
        lengths += torch.diff(b_off).tolist()
        total += b_st
        start += n
    assert torch.equal(torch.cat(parts_ids), ids), seed
    assert lengths == torch.diff(off).tolist(), seed
    assert total.tolist() == st.tolist(), seed  # every count, bytes included, adds up to the whole text's


def test_corpus_encode_block_bad_inputs(tmp_path):
    raw = b"a b\nb a\n"
    data = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    wb, wo, _, _ = ops.corpus_build_vocab(data=data, min_count=1)
    with pytest.raises(ValueError, match="start = 2 is not the beginning of a line"):
        ops.corpus_encode(data=data, word_bytes=wb, word_offsets=wo, start=2)
    with pytest.raises(IndexError, match=r"start = 9 is outside \[0, 8\]"):
        ops.corpus_encode(data=data, word_bytes=wb, word_offsets=wo, start=9)
    with pytest.raises(IndexError, match="start = -1"):
        ops.corpus_encode(data=data, word_bytes=wb, word_offsets=wo, start=-1)
    with pytest.raises(ValueError, match="max_bytes must be -1 .* got 0"):
        ops.corpus_encode(data=data, word_bytes=wb, word_offsets=wo, max_bytes=0)
    ids, off, st = ops.corpus_encode(data=data, word_bytes=wb, word_offsets=wo, start=8)  # the end: empty
    assert ids.numel() == 0 and off.tolist() == [0] and int(st[0]) == 0


def test_corpus_encode_vocabulary_table_is_not_reused_wrongly():
    """The op keeps the last vocabulary's lookup table; another vocabulary, or the same one changed in place,
    must not be served from it."""
    data = torch.frombuffer(bytearray(b"x y z\nz y\n"), dtype=torch.uint8)

    def enc(words):
        wb = torch.tensor(list("".join(words).encode()), dtype=torch.uint8)
        wo = torch.tensor([0, *np.cumsum([len(w) for w in words]).tolist()])
        return wb, wo, ops.corpus_encode(data=data, word_bytes=wb, word_offsets=wo)[0].tolist()

    assert enc(["x", "y", "z"])[2] == [0, 1, 2, 2, 1]
    assert enc(["z", "y", "x"])[2] == [2, 1, 0, 0, 1]
    wb, wo, got = enc(["x", "y", "z"])
    assert got == [0, 1, 2, 2, 1]
    wb[0] = ord("q")  # in place: now "q", "y", "z"
    assert ops.corpus_encode(data=data, word_bytes=wb, word_offsets=wo)[0].tolist() == [1, 2, 2, 1]


# ---------------------------------------------------------------------------------------------------------
# sgns_loss
# ---------------------------------------------------------------------------------------------------------


def loss_inputs(seed, dtype=torch.float64, index_dtype=torch.int64, V=9, V2=11, D=5, B=13, K=3, noncontig=False):
    g = torch.Generator().manual_seed(seed)
    if noncontig:
        w_in = torch.randn(D, V, dtype=dtype, generator=g).t()
        w_out = torch.randn(V2, 2 * D, dtype=dtype, generator=g)[:, ::2]
    else:
        w_in = torch.randn(V, D, dtype=dtype, generator=g)
        w_out = torch.randn(V2, D, dtype=dtype, generator=g)
    centers = torch.randint(0, V, (B,), generator=g).to(index_dtype)
    contexts = torch.randint(0, V2, (B,), generator=g).to(index_dtype)
    negatives = torch.randint(0, V2, (B, K), generator=g).to(index_dtype)
    return w_in, w_out, centers, contexts, negatives


def reference_loss(w_in, w_out, centers, contexts, negatives):
    u = w_in[centers.long()]
    pos = (u * w_out[contexts.long()]).sum(-1)
    neg = torch.einsum("bd,bkd->bk", u, w_out[negatives.long()])
    return -torch.nn.functional.logsigmoid(pos) - torch.nn.functional.logsigmoid(-neg).sum(-1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("noncontig", [False, True])
def test_sgns_loss_forward_backward_vs_reference(dtype, index_dtype, noncontig):
    seed = random.randrange(1 << 30)
    for K, B in [(0, 4), (3, 13), (5, 1)]:
        args = loss_inputs(seed, dtype, index_dtype, K=K, B=B, D=37, noncontig=noncontig)
        w_in = args[0].detach().clone().requires_grad_(True)
        w_out = args[1].detach().clone().requires_grad_(True)
        out = ops.sgns_loss(w_in, w_out, *args[2:])
        wr_in = args[0].detach().clone().requires_grad_(True)
        wr_out = args[1].detach().clone().requires_grad_(True)
        ref = reference_loss(wr_in, wr_out, *args[2:])
        tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-12, rtol=1e-12)
        torch.testing.assert_close(out, ref, **tol)
        gout = torch.randn_like(out)
        out.backward(gout)
        ref.backward(gout)
        torch.testing.assert_close(w_in.grad, wr_in.grad, **tol)
        torch.testing.assert_close(w_out.grad, wr_out.grad, **tol)


def test_sgns_loss_gradcheck():
    for seed in range(3):
        w_in, w_out, c, x, n = loss_inputs(seed, V=4, V2=5, D=3, B=7, K=2)  # small V: repeated rows
        torch.autograd.gradcheck(lambda a, b: ops.sgns_loss(a, b, c, x, n),
                                 (w_in.requires_grad_(), w_out.requires_grad_()))


def test_sgns_loss_opcheck():
    for seed in range(2):
        args = loss_inputs(seed, torch.float32)
        args = (args[0].requires_grad_(), args[1].requires_grad_()) + args[2:]
        torch.library.opcheck(torch.ops.embedfast.sgns_loss.default, args)
        g = torch.randn(args[2].shape[0])
        torch.library.opcheck(torch.ops.embedfast.sgns_loss_backward.default,
                              (g, args[0].detach(), args[1].detach()) + args[2:])


def test_skipgram_module_compiles_fullgraph():
    torch.manual_seed(0)
    m = SkipGram(20, 8)
    with torch.no_grad():
        m.out_weight.normal_()
    c = torch.randint(0, 20, (16,))
    x = torch.randint(0, 20, (16,))
    n = torch.randint(0, 20, (16, 4))
    eager = m(c, x, n)
    eager.backward()
    g_eager = (m.in_embed.weight.grad.clone(), m.out_weight.grad.clone())
    m.zero_grad()
    compiled = torch.compile(m, fullgraph=True)
    out = compiled(c, x, n)
    out.backward()
    torch.testing.assert_close(out, eager)
    torch.testing.assert_close(m.in_embed.weight.grad, g_eager[0])
    torch.testing.assert_close(m.out_weight.grad, g_eager[1])
    assert isinstance(m.in_embed, torch.nn.Embedding)


def test_sgns_loss_bad_inputs():
    w_in, w_out, c, x, n = loss_inputs(0, torch.float32)
    with pytest.raises(IndexError, match="'contexts' has value 11"):
        ops.sgns_loss(w_in, w_out, c, torch.full_like(x, 11), n)
    with pytest.raises(IndexError, match="'centers' has value -1"):
        ops.sgns_loss(w_in, w_out, torch.full_like(c, -1), x, n)
    with pytest.raises(ValueError, match="'w_out' must have dtype Float"):
        ops.sgns_loss(w_in, w_out.double(), c, x, n)
    with pytest.raises(ValueError, match="'centers' must have dtype int32 or int64"):
        ops.sgns_loss(w_in, w_out, c.float(), x, n)
    with pytest.raises(ValueError, match="same first dimension"):
        ops.sgns_loss(w_in, w_out, c[:3], x, n)
    with pytest.raises(ValueError, match="'w_in' must have dtype float32 or float64"):
        ops.sgns_loss(w_in.half(), w_out.half(), c, x, n)


# ---------------------------------------------------------------------------------------------------------
# trainer
# ---------------------------------------------------------------------------------------------------------


def test_sgns_train_op_bad_inputs():
    V, D = 6, 4
    ids = torch.tensor([0, 1, 2, 5], dtype=torch.int32)
    off = torch.tensor([0, 4])
    counts = torch.ones(V, dtype=torch.int64)
    keep = torch.ones(V, dtype=torch.float64)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    w_in, w_out = torch.zeros(V, D), torch.zeros(V, D)
    kw = dict(window=2, negative=2, alpha=0.025, min_alpha=1e-4, words_done=0, total_words=4, seed=0, chunk=0)
    with pytest.raises(IndexError, match="'ids' has value 6 at position 2"):
        ops.sgns_train(w_in, w_out, torch.tensor([0, 1, 6, 2], dtype=torch.int32), off, keep, thr, alias, **kw)
    with pytest.raises(IndexError, match="'ids' has value -3"):
        ops.sgns_train(w_in, w_out, torch.tensor([0, -3, 1, 2], dtype=torch.int32), off, keep, thr, alias, **kw)
    with pytest.raises(ValueError, match="'ids' must have dtype Int"):
        ops.sgns_train(w_in, w_out, ids.long(), off, keep, thr, alias, **kw)
    with pytest.raises(ValueError, match="'w_in' must have dtype Float"):
        ops.sgns_train(w_in.double(), w_out, ids, off, keep, thr, alias, **kw)
    with pytest.raises(ValueError, match="must be contiguous"):
        ops.sgns_train(torch.zeros(D, V).t(), w_out, ids, off, keep, thr, alias, **kw)
    with pytest.raises(ValueError, match=r"window must be >= 1, got 0"):
        ops.sgns_train(w_in, w_out, ids, off, keep, thr, alias, **{**kw, "window": 0})
    with pytest.raises(IndexError, match="sentence_offsets\\[1\\] = 9"):
        ops.sgns_train(w_in, w_out, ids, torch.tensor([0, 9]), keep, thr, alias, **kw)
    with pytest.raises(ValueError, match="keep_prob' must have shape \\[6\\]"):
        ops.sgns_train(w_in, w_out, ids, off, keep[:3], thr, alias, **kw)
    assert torch.equal(w_in, torch.zeros(V, D))  # nothing was touched by the refused calls
