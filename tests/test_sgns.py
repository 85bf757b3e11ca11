"""word2vec SGNS: corpus pipeline, fused training op against a plain reference, sgns_loss, trainer, CLI.

The reference re-implements the documented counter-based RNG (csrc/include/embedfast/rng.h) in Python and
replays the kernel's random draws (csrc/cpu/word2vec_sgns.cpp documents their order), so the kernel must produce the
same update as a straightforward float64 implementation.
"""
from __future__ import annotations

import collections
import gzip
import random

import numpy as np
import pytest
import torch

import embedfast
from embedfast import ops
from embedfast.sgns import SkipGram, Word2Vec, keep_probabilities
from embedfast.testing import planted_corpus, recall_at_k

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


def part_bounds(off, threads):
    S = len(off) - 1
    first, ntok = off[0], off[S] - off[0]
    bounds = [0] * (threads + 1)
    bounds[threads] = S
    for p in range(1, threads):
        target = first + ntok * p // threads
        bounds[p] = max(bounds[p - 1], int(np.searchsorted(np.asarray(off[:S]), target, side="left")))
    return bounds


def reference_train(w_in, w_out, ids, off, keep, thr, alias, *, window, negative, alpha, min_alpha, words_done,
                    total_words, seed, chunk, threads=1, shared, update=True):
    """Plain float64 replay of sgns_train (exact sigmoid). Returns dict of counts and the loss.

    With threads > 1 the parts are replayed one after another (only the counts are comparable then).
    """
    V = w_in.shape[0]
    ids, off = list(ids), list(off)
    chunk_tokens = off[-1] - off[0]
    res = collections.Counter()
    bounds = part_bounds(off, threads)
    for part in range(threads):
        s_begin, s_end = bounds[part], bounds[part + 1]
        if s_end <= s_begin:
            continue
        rng = RefRng(stream_key(seed, chunk, part))
        part_first = off[s_begin]
        part_tokens = float(off[s_end] - part_first)
        for s in range(s_begin, s_end):
            done = float(words_done) + float(chunk_tokens) * (float(off[s] - part_first) / part_tokens)
            a = float(np.float32(alpha - (alpha - min_alpha) * min(1.0, done / float(total_words))))
            sent = []
            for p in range(off[s], off[s + 1]):
                w = ids[p]
                if keep[w] < 1.0 and rng.uniform() >= keep[w]:
                    continue
                sent.append(w)
            res["kept"] += len(sent)
            n = len(sent)
            for i in range(n):
                b = window - (rng.next() % window)
                c = sent[i]
                js = [j for j in range(max(0, i - b), min(n, i + b + 1)) if j != i]
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
                        for k in range(-1, negative):
                            if k < 0:
                                t, label = c, 1.0
                            else:
                                t = alias_pick(rng.next(), V, thr, alias)
                                if t == c:
                                    res["skipped"] += 1
                                    continue
                                label = 0.0
                                res["negatives"] += 1
                            f = float(w_in[x] @ w_out[t])
                            res["loss"] -= float(log_sigmoid(f if label else -f))
                            g = a * (label - sigmoid(f))
                            e += g * w_out[t]
                            if update:
                                w_out[t] += g * w_in[x]
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
    stats = run_kernel(w_in, w_out, ids, off_chunk, keep, thr, alias, num_threads=1, shared_negatives=shared,
                       exact_sigmoid=True, **kw)
    ref = reference_train(ref_in, ref_out, ids.tolist(), off_chunk.tolist(), keep.tolist(), thr.tolist(),
                          alias.tolist(), shared=shared, **kw)
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


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_sgns_train_threads_counts_match_reference(threads):
    """With several threads the updates race (Hogwild), but which draws each part makes does not."""
    rng = random.Random(threads)
    V, D = 50, 8
    ids, off, counts = random_encoded(rng, V, 40, 20)
    keep = keep_probabilities(counts, 2e-2)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    kw = dict(window=4, negative=3, alpha=0.025, min_alpha=1e-4, words_done=0, total_words=int(off[-1]), seed=3,
              chunk=7)
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
    cnt = collections.Counter(text.split())
    kept = sorted([(w, c) for w, c in cnt.items() if c >= min_count], key=lambda wc: (-wc[1], wc[0].encode()))
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


@pytest.mark.parametrize("shared", [False, True])
def test_planted_structure_is_recovered(shared):
    sents, groups = planted_corpus()
    w2v = Word2Vec(dim=24, window=3, negative=5, sample=0, min_count=1, epochs=3, threads=2, seed=1,
                   shared_negatives=shared)
    w2v.train(sents, progress=False)
    r = recall_at_k(w2v.w_in, w2v.words, groups, k=7)
    assert r > 0.95, r
    # before training the recall is chance level (7 mates of 239 words)
    fresh = Word2Vec(dim=24, min_count=1, seed=1).build_vocab(sents)
    assert recall_at_k(fresh.w_in, fresh.words, groups, k=7) < 0.2


def test_file_gzip_and_iterable_give_same_model(tmp_path):
    sents, _ = planted_corpus(sentences=300)
    text = "\n".join(" ".join(s) for s in sents) + "\n"
    (tmp_path / "c.txt").write_text(text)
    with gzip.open(tmp_path / "c.txt.gz", "wt") as f:
        f.write(text)
    models = []
    for corpus in (sents, str(tmp_path / "c.txt"), str(tmp_path / "c.txt.gz")):
        w = Word2Vec(dim=8, min_count=2, epochs=1, threads=1, seed=3, chunk_words=500)
        w.train(corpus, progress=False)
        models.append(w)
    for m in models[1:]:
        assert m.words == models[0].words
        assert torch.equal(m.w_in, models[0].w_in) and torch.equal(m.w_out, models[0].w_out)


def test_threads1_is_bit_reproducible_and_seed_matters():
    sents, _ = planted_corpus(sentences=500)
    runs = [Word2Vec(dim=16, min_count=1, epochs=2, threads=1, seed=s, chunk_words=700).train(sents, progress=False)
            for s in (5, 5, 6)]
    assert torch.equal(runs[0].w_in, runs[1].w_in) and torch.equal(runs[0].w_out, runs[1].w_out)
    assert not torch.equal(runs[0].w_in, runs[2].w_in)
    assert runs[0].loss_history == runs[1].loss_history


def test_learning_rate_decays_to_min_alpha():
    sents, _ = planted_corpus(sentences=400)
    w = Word2Vec(dim=8, min_count=1, epochs=2, threads=1, alpha=0.05, min_alpha=0.001, chunk_words=10**9)
    w.train(sents, progress=False)
    assert len(w.loss_history) == 2  # one chunk per epoch
    # the reference schedule: last sentence of the run starts just before the end
    ids, off = w._encoded[0], w._encoded[1]
    total = 2 * ids.numel()
    last = 0.05 - (0.05 - 0.001) * (total - int(off[-1] - off[-2])) / total
    st = ops.sgns_train(w.w_in.clone(), w.w_out.clone(), ids, off, *w._tables, window=5, negative=5, alpha=0.05,
                        min_alpha=0.001, words_done=ids.numel(), total_words=total, seed=0, chunk=1, num_threads=1)
    assert dict(zip(ops.TRAIN_STATS, st.tolist()))["last_alpha"] == pytest.approx(last, rel=1e-6)


@pytest.mark.parametrize("scale", [None, 1.0, 2.0])
def test_initialisation_range(scale):
    # w_in uniform in +-init_scale/dim (default 0.5: word2vec.c; 1.0: gensim 4's prep_vectors), w_out zeros
    sents, _ = planted_corpus(sentences=300)
    dim = 16
    kw = {} if scale is None else {"init_scale": scale}
    w = Word2Vec(dim=dim, min_count=1, seed=int(torch.randint(0, 10**6, ()).item()), **kw).build_vocab(sents)
    half = (0.5 if scale is None else scale) / dim
    assert w.w_in.abs().max() <= half
    assert w.w_in.abs().max() > 0.95 * half  # spans the range (~4k draws)
    assert abs(float(w.w_in.mean())) < 0.05 * half and float(w.w_in.std()) == pytest.approx(half / 3 ** 0.5, rel=0.05)
    assert torch.count_nonzero(w.w_out) == 0


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "1"])
def test_init_scale_bad(bad):
    with pytest.raises(ValueError, match="init_scale must be a finite number > 0"):
        Word2Vec(init_scale=bad)


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path):
    sents, _ = planted_corpus(sentences=600)
    kw = dict(dim=12, min_count=1, epochs=3, threads=1, seed=9, chunk_words=1000)
    full = Word2Vec(**kw).train(sents, progress=False)
    part = Word2Vec(**kw).train(sents, progress=False, max_words=4000)
    assert not part.done and 0 < part._pos["words_done"] < full._pos["words_done"]
    ckpt = str(tmp_path / "w2v.ckpt")
    part.save_checkpoint(ckpt)
    resumed = Word2Vec.load_checkpoint(ckpt)
    resumed.train(sents, progress=False)
    assert resumed.done
    assert torch.equal(resumed.w_in, full.w_in) and torch.equal(resumed.w_out, full.w_out)
    assert resumed.loss_history == full.loss_history
    # a different corpus is refused
    other = Word2Vec.load_checkpoint(ckpt)
    with pytest.raises(ValueError, match="not the corpus"):
        other.train(sents[:-5], progress=False)


def _streamed_corpus(tmp_path, rng, lines=900):
    """A text file with long lines (cut by max_sentence_length), blank lines and rare (OOV) words."""
    words = [f"w{i}" for i in range(150)]
    out = []
    for _ in range(lines):
        n = rng.choice([0, 1, 4, 9, 30, 70])
        out.append(" ".join(rng.choice(words[:rng.randint(3, 150)]) for _ in range(n)))
    path = tmp_path / "stream.txt"
    path.write_text("\n".join(out) + "\n")
    return str(path), [line.split() for line in out]


def _chunks_reference(offsets: torch.Tensor, chunk_words: int) -> list:
    """The chunk cut of the in-memory trainer before streaming (searchsorted of multiples of chunk_words)."""
    starts = offsets[:-1]
    marks = torch.arange(0, int(offsets[-1]), chunk_words, dtype=torch.int64)
    bounds = torch.cat([torch.searchsorted(starts, marks), torch.tensor([offsets.numel() - 1])]).unique()
    if bounds[0] != 0:
        bounds = torch.cat([torch.tensor([0]), bounds])
    return bounds.tolist()


@pytest.mark.parametrize("stream_bytes", [1, 37, 1000, 1 << 30])
def test_streamed_chunks_are_the_whole_corpus_chunks(tmp_path, stream_bytes):
    """Streaming in blocks (1 byte: one line per block) yields exactly the chunks of the whole encoded corpus:
    every token once, in order, sentences split across block boundaries neither lost nor duplicated."""
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    path, _ = _streamed_corpus(tmp_path, random.Random(seed))
    w = Word2Vec(dim=4, min_count=2, epochs=1, threads=1, max_sentence_length=13, chunk_words=rng.choice([1, 50, 333]))
    w.stream_bytes = stream_bytes
    w.build_vocab(path)
    ids, off, _ = ops.corpus_encode(path, word_bytes=w._word_bytes, word_offsets=w._word_offsets,
                                    max_sentence_length=13)
    bounds = _chunks_reference(off, w.params.chunk_words)
    chunks = list(w._epoch_chunks())
    assert len(chunks) == len(bounds) - 1 == w._n_chunks, seed
    assert [last for _, _, last in chunks] == [False] * (len(chunks) - 1) + [True]
    got_ids, got_len = [], []
    for (c_ids, c_off, _), s0, s1 in zip(chunks, bounds[:-1], bounds[1:]):
        got_ids.append(c_ids[int(c_off[0]):int(c_off[-1])])
        got_len.append(torch.diff(c_off))
        assert torch.equal(torch.diff(c_off), torch.diff(off[s0:s1 + 1])), seed  # the same sentences
    assert torch.equal(torch.cat(got_ids), ids), seed  # every token once, in order
    assert torch.cat(got_len).sum() == ids.numel() == w.vocab_stats["vocab_tokens"]
    assert w.corpus_stats["encoded_tokens"] == ids.numel() and w.corpus_stats["split_lines"] > 0


def test_streamed_training_does_not_depend_on_block_size(tmp_path):
    """threads=1: file streamed in tiny blocks, in one block, re-encoded each epoch, kept in memory or spilled to
    a temporary file after the first epoch, and the same corpus as an iterable (encoded in memory) all give
    bit-identical models, losses and corpus counts."""
    path, sents = _streamed_corpus(tmp_path, random.Random(11))
    runs = []
    for corpus, stream_bytes, cache, spill in [(path, 1 << 30, 0, False), (path, 1, 0, False), (path, 150, 10**9, True),
                                               (path, 4096, 0, True), (path, 1, 0, True), (sents, 1, 0, True)]:
        w = Word2Vec(dim=10, min_count=2, epochs=3, threads=1, seed=2, max_sentence_length=13, chunk_words=400)
        w.stream_bytes, w.cache_tokens, w.spill, w.spill_dir = stream_bytes, cache, spill, str(tmp_path)
        w.train(corpus, progress=False)
        runs.append(w)
    ref = runs[0]
    assert ref.corpus_stats["split_lines"] > 0 and ref.corpus_stats["blank_lines"] > 0
    for w in runs[1:]:
        assert torch.equal(w.w_in, ref.w_in) and torch.equal(w.w_out, ref.w_out)
        assert w.loss_history == ref.loss_history
        stats = dict(w.corpus_stats)
        if w._source.path is None:  # the iterable is joined with single spaces: fewer bytes
            stats["bytes"] = ref.corpus_stats["bytes"]
        assert stats == ref.corpus_stats
    assert runs[2]._cache is not None and runs[1]._cache is None and runs[1]._spill is None
    assert runs[3]._spill is not None and runs[3]._spill.complete and len(runs[3]._spill.index) > 1
    assert runs[4]._spill.end == 4 * ref.corpus_stats["encoded_tokens"] + 8 * sum(
        n_off for _, _, n_off, _ in runs[4]._spill.index)
    assert list(tmp_path.iterdir()) == [tmp_path / "stream.txt"]  # the spill file is unlinked


@pytest.mark.parametrize("stops", [[900], [2500, 700], [1, 1, 5000]])
def test_streamed_resume_equals_uninterrupted(tmp_path, stops):
    """Checkpoints inside the first epoch (chunk count not known yet) and later ones, tiny blocks, and
    max_words continuation in the same process all finish exactly as an uninterrupted run."""
    path, _ = _streamed_corpus(tmp_path, random.Random(5))
    kw = dict(dim=8, min_count=2, epochs=3, threads=1, seed=7, max_sentence_length=13, chunk_words=300)
    full = Word2Vec(**kw)
    full.stream_bytes = 97
    full.train(path, progress=False)
    w = Word2Vec(**kw)
    w.stream_bytes, w.cache_tokens, w.spill_dir = 97, 0, str(tmp_path)  # later epochs from the spill file
    ckpt = str(tmp_path / "s.ckpt")
    for i, n in enumerate(stops):
        w.train(path, progress=False, max_words=n)
        if i % 2 == 0:  # every other stop goes through a checkpoint
            w.save_checkpoint(ckpt)
            w = Word2Vec.load_checkpoint(ckpt)
            w.stream_bytes, w.cache_tokens, w.spill_dir = 61, 0, str(tmp_path)
    assert not w.done
    w.train(path, progress=False)
    assert w.done
    assert torch.equal(w.w_in, full.w_in) and torch.equal(w.w_out, full.w_out)
    assert w.loss_history == full.loss_history


def test_streamed_corpus_checks(tmp_path):
    path, sents = _streamed_corpus(tmp_path, random.Random(3))
    w = Word2Vec(dim=4, min_count=2, epochs=2, threads=1, chunk_words=200)
    w.train(path, progress=False, max_words=500)
    ckpt = str(tmp_path / "c.ckpt")
    w.save_checkpoint(ckpt)
    other = tmp_path / "other.txt"
    other.write_text("\n".join(" ".join(s) for s in sents[:-3]) + "\n")
    with pytest.raises(ValueError, match="not the corpus this checkpoint"):
        Word2Vec.load_checkpoint(ckpt).train(str(other), progress=False)
    # the file changes between the vocabulary pass and the end of the epoch
    v = Word2Vec(dim=4, min_count=2, epochs=1, threads=1, chunk_words=200)
    v.build_vocab(str(other))
    with open(other, "a") as f:
        f.write(" ".join(sents[0]) + "\n")
    with pytest.raises(ValueError, match="the file changed during training"):
        v.train(str(other), progress=False)
    # training on another file than the vocabulary's: its own totals (a counting pass), lr over the whole run
    u = Word2Vec(dim=4, min_count=1, epochs=2, threads=1, chunk_words=200)
    u.build_vocab(path)
    u.train(str(other), progress=False)
    assert u.done and u._source.tokens == u.corpus_stats["encoded_tokens"]
    assert u._pos["words_done"] == 2 * u._source.tokens
    for name, bad in (("stream_bytes", 0), ("stream_bytes", 1.5), ("cache_tokens", -1)):
        b = Word2Vec(dim=4, min_count=1, epochs=1)
        setattr(b, name, bad)
        with pytest.raises(ValueError, match=f"{name} must be an int >= ., got {bad}"):
            b.train(path, progress=False)


def test_encoded_property_gives_the_whole_corpus(tmp_path):
    """embedfast.distributed reads `_encoded` (the whole corpus in memory) from a streamed trainer."""
    path, _ = _streamed_corpus(tmp_path, random.Random(8))
    w = Word2Vec(dim=4, min_count=2, epochs=1, threads=1, max_sentence_length=13, chunk_words=250)
    assert w._encoded is None
    w.build_vocab(path)
    ids, off, bounds, fp = w._encoded
    ref_ids, ref_off, _ = ops.corpus_encode(path, word_bytes=w._word_bytes, word_offsets=w._word_offsets,
                                            max_sentence_length=13)
    assert torch.equal(ids, ref_ids) and torch.equal(off, ref_off)
    assert bounds == _chunks_reference(ref_off, 250)
    assert fp == w._source.fingerprint and fp[3] == ids.numel()


def test_progress_bar_runs(capsys):
    sents, _ = planted_corpus(sentences=200)
    Word2Vec(dim=8, min_count=1, epochs=1, threads=1, chunk_words=300).train(sents, progress=True)
    err = capsys.readouterr().err
    assert "word2vec" in err and "loss=" in err


def test_trainer_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match=r"window must be an int in \[1, 1,000\], got 0"):
        Word2Vec(window=0)
    with pytest.raises(ValueError, match=r"window must be an int in \[1, 1,000\], got -2"):
        Word2Vec(window=-2)
    with pytest.raises(ValueError, match="negative"):
        Word2Vec(negative=-1)
    with pytest.raises(ValueError, match="is empty"):
        Word2Vec(min_count=1).build_vocab([])
    (tmp_path / "blank.txt").write_text("\n  \n\t\n")
    with pytest.raises(ValueError, match=r"is empty \(3 lines"):
        Word2Vec(min_count=1).build_vocab(str(tmp_path / "blank.txt"))
    with pytest.raises(ValueError, match="fewer than min_count=5"):
        Word2Vec(min_count=5).build_vocab([["a", "b"], ["a"]])
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        Word2Vec().train(str(tmp_path / "nope.txt"))
    with pytest.raises(ValueError, match="is a directory"):
        Word2Vec().train(str(tmp_path))
    with pytest.raises(TypeError, match="sentence 1 is a str"):
        Word2Vec(min_count=1).build_vocab([["a"], "b c"])
    with pytest.raises(ValueError, match="contains whitespace"):
        Word2Vec(min_count=1).build_vocab([["a b"]])
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(ValueError, match="cannot decompress"):
        Word2Vec().build_vocab(str(tmp_path / "bad.gz"))


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


def test_vectors_export(tmp_path):
    pytest.importorskip("embedfast.vectors")
    sents, _ = planted_corpus(sentences=300)
    w = Word2Vec(dim=8, min_count=1, epochs=1, threads=1).train(sents, progress=False)
    v = w.vectors
    assert isinstance(v, embedfast.Vectors)
    assert v.words == w.words and torch.equal(v.matrix, w.w_in)
    for fmt in ("glove", "word2vec", "word2vec-bin", "native"):
        path = str(tmp_path / f"v.{fmt}")
        w.save(path, format=fmt)
        back = embedfast.load_vectors(path, **({"format": fmt} if fmt != "glove" else {}))
        assert back.words == w.words
        torch.testing.assert_close(back.matrix, w.w_in, atol=1e-5, rtol=1e-5)


def test_cli_train(tmp_path, capsys):
    pytest.importorskip("embedfast.vectors")
    from embedfast.cli import main

    sents, _ = planted_corpus(sentences=300)
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(s) for s in sents) + "\n")
    out = tmp_path / "v.txt"
    rc = main(["train", str(corpus), "-o", str(out), "--format", "glove", "--dim", "8", "--window", "2",
               "--negative", "3", "--sample", "0", "--min-count", "1", "--epochs", "1", "--alpha", "0.05",
               "--min-alpha", "0.001", "--threads", "1", "--seed", "4"])
    assert rc == 0
    back = embedfast.load_vectors(str(out))
    assert back.dim == 8 and len(back) == 240
    assert "raw words" in capsys.readouterr().out


def test_cli_train_errors(tmp_path, capsys):
    from embedfast.cli import main

    assert main(["train", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "o.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
    (tmp_path / "c.txt").write_text("a b c\n")
    assert main(["train", str(tmp_path / "c.txt"), "-o", str(tmp_path / "o"), "--window", "0"]) == 2
    assert "window must be an int in [1, 1,000], got 0" in capsys.readouterr().err


def test_demo_step(capsys, tmp_path):
    from embedfast.demo import demo_sgns

    r = demo_sgns(True, str(tmp_path))
    out = capsys.readouterr().out
    assert r["vocab"] > 10000 and r["words_per_s"] > 0
    assert "raw words/s" in out and "water:" in out
    assert embedfast.load_vectors(r["vectors_path"]).dim == 100


def test_checkpoint_bad_or_older_format(tmp_path):
    sents, _ = planted_corpus(sentences=60)
    w = Word2Vec(dim=4, min_count=1, epochs=1, threads=1, seed=3)
    w.train(sents, progress=False)
    ckpt = str(tmp_path / "w.ckpt")
    w.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=True)
    state["version"] = 1  # the format before the streaming trainer
    torch.save(state, ckpt)
    with pytest.raises(ValueError, match="older embedfast .*format 1"):
        Word2Vec.load_checkpoint(ckpt)
    torch.save({"something": "else"}, ckpt)
    with pytest.raises(ValueError, match="is not an embedfast Word2Vec checkpoint"):
        Word2Vec.load_checkpoint(ckpt)


def _interrupting_op(real, at_call):
    """ops.sgns_train that sends SIGINT to this process right after its `at_call`-th call returns: the
    KeyboardInterrupt lands between the op's in-place update and the trainer's position update."""
    import os
    import signal

    calls = [0]

    def op(*a, **k):
        st = real(*a, **k)
        calls[0] += 1
        if calls[0] == at_call:
            os.kill(os.getpid(), signal.SIGINT)
        return st

    return op


@pytest.mark.parametrize("at_call", [1, 4, 9])
def test_sigint_right_after_the_op_checkpoints_a_consistent_state(tmp_path, monkeypatch, at_call):
    """The issue's Ctrl-C case, made deterministic: before the fix the checkpoint held the chunk's weights with
    the position before it, so the resumed run trained that chunk twice."""
    sents, _ = planted_corpus(sentences=400)
    kw = dict(dim=8, min_count=1, epochs=2, threads=1, seed=2, chunk_words=500)
    full = Word2Vec(**kw).train(sents, progress=False)
    ckpt = str(tmp_path / "w.ckpt")
    monkeypatch.setattr(ops, "sgns_train", _interrupting_op(ops.sgns_train, at_call))
    w = Word2Vec(**kw)
    with pytest.raises(KeyboardInterrupt):
        w.train(sents, progress=False, checkpoint=ckpt, checkpoint_every=float("inf"))
    monkeypatch.undo()
    back = Word2Vec.load_checkpoint(ckpt)
    assert back._pos["words_done"] > 0 and len(back.loss_history) == at_call
    assert torch.equal(back.w_in, w.w_in)  # the in-memory model and the file agree
    back.train(sents, progress=False)
    assert torch.equal(back.w_in, full.w_in) and torch.equal(back.w_out, full.w_out)
    assert back.loss_history == full.loss_history
    w.train(sents, progress=False)  # the interrupted object itself goes on correctly too
    assert torch.equal(w.w_in, full.w_in)


def test_op_divergence_error_becomes_the_trainers_error(tmp_path, monkeypatch):
    """The C++ op raises on NaN/inf scores (trust-sgns); the trainer names epoch, chunk, words and alpha, keeps
    the last good checkpoint and refuses to present the weights."""
    sents, _ = planted_corpus(sentences=400)
    real = ops.sgns_train
    calls = [0]

    def op(w_in, *a, **k):
        calls[0] += 1
        if calls[0] == 3:
            w_in[0, 0] = float("nan")
            raise ValueError("sgns_train: training diverged (score NaN at position 17)")
        return real(w_in, *a, **k)

    ckpt = str(tmp_path / "w.ckpt")
    monkeypatch.setattr(ops, "sgns_train", op)
    w = Word2Vec(dim=8, min_count=1, epochs=2, threads=1, chunk_words=500, alpha=0.3)
    with pytest.raises(ValueError, match=r"training diverged in epoch 1 of 2, chunk 2, 1,\d{3} of [\d,]+ words done "
                                         r"at learning rate alpha=0\.3 \(sgns_train: training diverged.*lower alpha"):
        w.train(sents, progress=False, checkpoint=ckpt, checkpoint_every=0)
    back = Word2Vec.load_checkpoint(ckpt)
    assert back._pos["chunk_in_epoch"] == 2 and bool(torch.isfinite(back.w_in).all())
    for use in (lambda: w.vectors, lambda: w.skipgram(), lambda: w.save_checkpoint(ckpt)):
        with pytest.raises(ValueError, match="diverged"):
            use()
    w.build_vocab(sents)  # a fresh start is allowed
    assert w._diverged is None


def test_non_finite_weights_found_at_the_end_of_train(monkeypatch):
    sents, _ = planted_corpus(sentences=100)
    real = ops.sgns_train

    def op(w_in, *a, **k):
        st = real(w_in, *a, **k)
        w_in[3, 1] = float("inf")  # a kernel that lets inf through without a non-finite loss
        return st

    monkeypatch.setattr(ops, "sgns_train", op)
    with pytest.raises(ValueError, match="NaN/inf found in the tables"):
        Word2Vec(dim=4, min_count=1, epochs=1, threads=1).train(sents, progress=False)


def test_checkpoint_save_is_atomic_with_a_unique_temporary(tmp_path, monkeypatch):
    sents, _ = planted_corpus(sentences=60)
    w = Word2Vec(dim=4, min_count=1, epochs=1, threads=1).train(sents, progress=False)
    ck = tmp_path / "w.ckpt"
    ck.write_bytes(b"previous")

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        w.save_checkpoint(str(ck))
    assert ck.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == ["w.ckpt"]
    monkeypatch.undo()
    (tmp_path / "w.ckpt.tmp").write_bytes(b"another process's temporary")  # the old shared name is not used
    w.save_checkpoint(str(ck))
    assert (tmp_path / "w.ckpt.tmp").read_bytes() == b"another process's temporary"
    assert Word2Vec.load_checkpoint(str(ck)).done
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.ckpt' is empty \(0 bytes\)"):
        Word2Vec.load_checkpoint(str(tmp_path / "empty.ckpt"))
