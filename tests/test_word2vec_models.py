"""CBOW and hierarchical softmax (``word2vec_train``, ``word2vec_huffman``, ``Word2Vec(sg=, hs=)``): the fused op
against a plain float64 reference that replays its random draws (csrc/cpu/word2vec_sgns.cpp, train_part_w2v,
documents their order), the Huffman tree against an independent optimal code, argument checks, planted-structure
recall, checkpoints and the CLI."""
from __future__ import annotations

import heapq
import itertools
import random

import numpy as np
import pytest
import torch

from embedfast import ops
from embedfast.testing import planted_corpus, recall_at_k
from embedfast.word2vec import Word2Vec, keep_probabilities

from test_word2vec_ops import ns_targets, random_encoded, replay_centers, score_target


# ---------------------------------------------------------------------------------------------------------
# reference
# ---------------------------------------------------------------------------------------------------------


def huffman_paths(off, points, codes):
    return [list(zip(points[off[w]:off[w + 1]], codes[off[w]:off[w + 1]])) for w in range(len(off) - 1)]


def reference_train(w_in, w_out, ids, off, keep, thr, alias, paths, *, window, negative, alpha, min_alpha,
                    words_done, total_words, seed, chunk, cbow, hs, threads=1, update=True):
    """Plain float64 replay of word2vec_train (exact sigmoid) for cbow / hs; returns the counts and the loss."""
    V, D = w_in.shape
    res = dict(loss=0.0, pairs=0, negatives=0, skipped=0, kept=0)

    for rng, a, sent, i, js in replay_centers(ids, off, keep, window=window, alpha=alpha, min_alpha=min_alpha,
                                              words_done=words_done, total_words=total_words, seed=seed,
                                              chunk=chunk, threads=threads, res=res):
        c = sent[i]
        if cbow:
            if not js:
                continue
            h = w_in[[sent[j] for j in js]].mean(0)
            e = np.zeros(D)
            targets = ((node, 1.0 - code) for node, code in paths[c]) if hs else \
                ns_targets(rng, c, negative, V, thr, alias, res)
            for t, label in targets:
                score_target(w_out, h, t, label, e, a, res, update)
            if update:
                for j in js:
                    w_in[sent[j]] += e
            res["pairs"] += 1
        else:
            for j in js:
                x = sent[j]
                e = np.zeros(D)
                for node, code in paths[c]:
                    score_target(w_out, w_in[x], node, 1.0 - code, e, a, res, update)
                if update:
                    w_in[x] += e
                res["pairs"] += 1
    return res


MODELS = [(True, False), (False, True), (True, True)]  # (cbow, hs)


def _inputs(rng, seed, sample):
    V, D = rng.choice([(2, 3), (9, 5), (23, 17), (41, 33)])
    ids, off, counts = random_encoded(rng, V, n_sent=rng.randint(3, 8), max_len=12)
    keep = keep_probabilities(counts, sample)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    hs_tables = ops.word2vec_huffman(counts)
    g = torch.Generator().manual_seed(seed % (1 << 31))
    w_in, w_out = torch.randn(V, D, generator=g) * 0.3, torch.randn(V, D, generator=g) * 0.3
    return V, D, ids, off, counts, keep, thr, alias, hs_tables, w_in, w_out


@pytest.mark.parametrize("cbow,hs", MODELS)
@pytest.mark.parametrize("case", range(3))
def test_word2vec_train_matches_reference(cbow, hs, case):
    seed = random.randrange(1 << 62)
    rng = random.Random(seed)
    for _ in range(50):  # a random case with no training pair at all (everything sub-sampled away) is drawn again
        V, D, ids, off, counts, keep, thr, alias, hs_tables, w_in, w_out = _inputs(rng, seed, rng.choice([0, 1e-2, 5e-2]))
        off_chunk = off[rng.randint(0, 1):]  # a chunk that does not start at 0
        ref_in, ref_out = w_in.double().numpy().copy(), w_out.double().numpy().copy()
        kw = dict(window=rng.randint(1, 4), negative=0 if hs else rng.randint(0, 4), alpha=0.05, min_alpha=0.001,
                  words_done=rng.randint(0, 50), total_words=200, seed=rng.randrange(-(1 << 40), 1 << 40),
                  chunk=rng.randint(0, 9))
        if hs:
            ref_out[V - 1] = np.nan
        paths = huffman_paths(*(t.tolist() for t in hs_tables))
        ref = reference_train(ref_in, ref_out, ids.tolist(), off_chunk.tolist(), keep.tolist(), thr.tolist(),
                              alias.tolist(), paths, cbow=cbow, hs=hs, **kw)
        if ref["pairs"] > 0 or (hs and V == 1):
            break
    if hs:  # the unused last row of w_out (HS) must stay untouched
        w_out[V - 1] = torch.full((D,), float("nan"))
    st = dict(zip(ops.TRAIN_STATS, ops.word2vec_train(w_in, w_out, ids, off_chunk, keep, thr, alias,
                                                      hs_tables if hs else None, num_threads=1, cbow=cbow, hs=hs,
                                                      exact_sigmoid=True, **kw).tolist()))
    assert (st["pairs"], st["negatives"], st["negatives_skipped"], st["kept_tokens"]) == (
        ref["pairs"], ref["negatives"], ref["skipped"], ref["kept"])
    assert st["tokens"] == int(off_chunk[-1] - off_chunk[0])
    if V > 1 or not hs:
        assert st["pairs"] > 0, f"seed {seed}: no training pair in 50 random cases"
    assert st["loss"] == pytest.approx(ref["loss"], rel=1e-4, abs=1e-6)
    torch.testing.assert_close(w_in.double(), torch.from_numpy(ref_in), atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(w_out.double(), torch.from_numpy(ref_out), atol=2e-5, rtol=1e-4, equal_nan=True)


@pytest.mark.parametrize("cbow,hs", MODELS)
def test_word2vec_train_blocks_match_reference(cbow, hs):
    """The kernel's runs (csrc/cpu/word2vec_sgns.cpp, train_part_w2v; fixed_input_targets) at their edges: Huffman
    paths longer than one run of targets (32; Fibonacci counts make a tree of depth V - 1), wide windows,
    repeated context words and repeated negatives (small vocabularies), odd dims (vector tails)."""
    seed = random.randrange(1 << 62)
    rng = random.Random(seed)
    V = rng.choice([3, 5]) if rng.random() < 0.3 else rng.randint(34, 45)
    D = rng.choice([1, 7, 13, 37])
    fib = [1, 1]
    while len(fib) < V:
        fib.append(fib[-1] + fib[-2])
    counts = torch.tensor(fib[:V][::-1] if rng.random() < 0.5 else fib[:V], dtype=torch.int64)
    lens = [rng.randint(2, 30) for _ in range(rng.randint(2, 4))]
    ids = torch.tensor([rng.randrange(V) for _ in range(sum(lens))], dtype=torch.int32)
    off = torch.tensor([0] + np.cumsum(lens).tolist(), dtype=torch.int64)
    keep = torch.ones(V, dtype=torch.float64)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    hs_tables = ops.word2vec_huffman(counts)
    paths = huffman_paths(*(t.tolist() for t in hs_tables))
    kw = dict(window=rng.randint(9, 20), negative=0 if hs else rng.randint(3, 8), alpha=0.05, min_alpha=0.001,
              words_done=0, total_words=int(off[-1]) * 2, seed=rng.randrange(1 << 40), chunk=0)
    g = torch.Generator().manual_seed(seed % (1 << 31))
    w_in, w_out = torch.randn(V, D, generator=g) * 0.3, torch.randn(V, D, generator=g) * 0.3
    ref_in, ref_out = w_in.double().numpy().copy(), w_out.double().numpy().copy()
    ref = reference_train(ref_in, ref_out, ids.tolist(), off.tolist(), keep.tolist(), thr.tolist(), alias.tolist(),
                          paths, cbow=cbow, hs=hs, **kw)
    st = dict(zip(ops.TRAIN_STATS, ops.word2vec_train(w_in, w_out, ids, off, keep, thr, alias, hs_tables,
                                                      num_threads=1, cbow=cbow, hs=hs, exact_sigmoid=True,
                                                      **kw).tolist()))
    msg = f"seed {seed}: V {V}, D {D}, {kw}"
    assert max(len(p) for p in paths) == V - 1, msg
    assert (st["pairs"], st["negatives"], st["negatives_skipped"]) == (ref["pairs"], ref["negatives"],
                                                                        ref["skipped"]), msg
    assert st["pairs"] > 0, msg
    assert st["loss"] == pytest.approx(ref["loss"], rel=1e-4, abs=1e-6), msg
    torch.testing.assert_close(w_in.double(), torch.from_numpy(ref_in), atol=2e-5, rtol=1e-4, msg=lambda m: f"{msg}: {m}")
    torch.testing.assert_close(w_out.double(), torch.from_numpy(ref_out), atol=2e-5, rtol=1e-4,
                               msg=lambda m: f"{msg}: {m}")


@pytest.mark.parametrize("cbow,hs", MODELS)
def test_word2vec_train_table_sigmoid_and_threads(cbow, hs):
    """The table sigmoid trains as the exact one; several threads make the reference's draws (counts)."""
    rng = random.Random(7)
    V, D = 50, 16
    ids, off, counts = random_encoded(rng, V, 40, 20)
    keep = keep_probabilities(counts, 2e-2)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    hs_tables = ops.word2vec_huffman(counts)
    kw = dict(window=4, negative=0 if hs else 3, alpha=0.025, min_alpha=1e-4, words_done=0,
              total_words=int(off[-1]), seed=3, chunk=7, cbow=cbow, hs=hs)
    w = torch.randn(V, D) * 0.3
    out = []
    for exact in (True, False):
        w_in, w_out = w.clone(), w.flip(0).clone()
        ops.word2vec_train(w_in, w_out, ids, off, keep, thr, alias, hs_tables, num_threads=1, exact_sigmoid=exact,
                           **kw)
        out.append((w_in, w_out))
    torch.testing.assert_close(out[0][0], out[1][0], atol=2e-5, rtol=0)
    torch.testing.assert_close(out[0][1], out[1][1], atol=2e-5, rtol=0)
    paths = huffman_paths(*(t.tolist() for t in hs_tables))
    for threads in (2, 5):
        w_in, w_out = torch.randn(V, D) * 0.1, torch.zeros(V, D)
        st = dict(zip(ops.TRAIN_STATS, ops.word2vec_train(w_in, w_out, ids, off, keep, thr, alias, hs_tables,
                                                          num_threads=threads, **kw).tolist()))
        ref = reference_train(np.zeros((V, D)), np.zeros((V, D)), ids.tolist(), off.tolist(), keep.tolist(),
                              thr.tolist(), alias.tolist(), paths, threads=threads, update=False, **kw)
        assert (st["pairs"], st["negatives"], st["negatives_skipped"], st["kept_tokens"]) == (
            ref["pairs"], ref["negatives"], ref["skipped"], ref["kept"])
        assert torch.isfinite(w_in).all() and torch.isfinite(w_out).all()


@pytest.mark.parametrize("cbow", [False, True])
def test_word2vec_train_hs_table_sigmoid_on_long_paths(cbow):
    """Huffman paths of 30+ nodes (geometric counts make a caterpillar tree): the table sigmoid's vector path
    (target_grads in csrc/include/embedfast/sgns_train.h, 16 or 8 targets at a time, full and partial chunks) and
    paths split into several runs of targets train as the exact sigmoid, with the same loss."""
    seed = random.randrange(1 << 62)
    rng = random.Random(seed)
    V, D = rng.randint(34, 44), rng.choice([16, 37, 100])
    counts = torch.tensor([2 ** (V - r) for r in range(V)], dtype=torch.int64)
    hs_tables = ops.word2vec_huffman(counts)
    lengths = (hs_tables[0][1:] - hs_tables[0][:-1]).tolist()
    assert max(lengths) >= 32, lengths
    lens = [rng.randint(1, 12) for _ in range(30)]
    ids = torch.tensor(rng.choices(range(V), k=sum(lens)), dtype=torch.int32)  # uniform: the deep words appear
    off = torch.tensor([0] + list(itertools.accumulate(lens)), dtype=torch.int64)
    keep = torch.ones(V, dtype=torch.float64)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    kw = dict(window=rng.randint(2, 5), negative=0, alpha=0.025, min_alpha=1e-4, words_done=0,
              total_words=int(off[-1]), seed=rng.randrange(1 << 30), chunk=1, cbow=cbow, hs=True)
    w = torch.randn(V, D, generator=torch.Generator().manual_seed(seed % (1 << 31))) * (2.0 / D ** 0.5)
    out = []
    for exact in (True, False):
        w_in, w_out = w.clone(), w.flip(0).clone()
        st = dict(zip(ops.TRAIN_STATS, ops.word2vec_train(w_in, w_out, ids, off, keep, thr, alias, hs_tables,
                                                          num_threads=1, exact_sigmoid=exact, **kw).tolist()))
        out.append((w_in, w_out, st))
    msg = f"seed {seed}, V {V}, D {D}"
    torch.testing.assert_close(out[1][0], out[0][0], atol=1e-4, rtol=0, msg=lambda m: f"{msg}: {m}")
    torch.testing.assert_close(out[1][1], out[0][1], atol=1e-4, rtol=0, msg=lambda m: f"{msg}: {m}")
    assert out[1][2]["pairs"] == out[0][2]["pairs"] > 0, msg
    assert out[1][2]["loss"] == pytest.approx(out[0][2]["loss"], rel=1e-3), msg


@pytest.mark.parametrize("cbow", [False, True])
def test_word2vec_train_hs_hot_rows_match_reference(cbow):
    """With several threads, hierarchical softmax trains the rows of the nodes nearest the root in a copy per
    thread, merged into w_out every kHotMerge centers (csrc/cpu/word2vec_sgns.cpp, HotRows). One sentence and 2 threads:
    part 0 is empty and part 1 trains alone with its copy, so the result must be the sequential replay of part 1's
    stream; the sentence is long enough for merges in the middle, and the dim leaves most nodes outside the copy."""
    seed = random.randrange(1 << 62)
    rng = random.Random(seed)
    V, D = rng.randint(90, 130), rng.choice([257, 300])  # copies of 32768 // (4 D) = 31 or 27 of the V - 1 nodes
    counts = torch.tensor([100_000 // (r + 1) for r in range(V)], dtype=torch.int64)
    n = rng.randint(600, 800)
    ids = torch.tensor(rng.choices(range(V), weights=counts.tolist(), k=n), dtype=torch.int32)
    off = torch.tensor([0, n], dtype=torch.int64)
    keep = torch.ones(V, dtype=torch.float64)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    hs_tables = ops.word2vec_huffman(counts)
    paths = huffman_paths(*(t.tolist() for t in hs_tables))
    kw = dict(window=rng.randint(2, 5), negative=0, alpha=0.05, min_alpha=0.001, words_done=0, total_words=2 * n,
              seed=rng.randrange(1 << 40), chunk=rng.randint(0, 9), cbow=cbow, hs=True)
    g = torch.Generator().manual_seed(seed % (1 << 31))
    w_in, w_out = torch.randn(V, D, generator=g) * 0.3, torch.randn(V, D, generator=g) * 0.3
    w_out[V - 1] = float("nan")  # the unused last row stays untouched
    ref_in, ref_out = w_in.double().numpy().copy(), w_out.double().numpy().copy()
    ref = reference_train(ref_in, ref_out, ids.tolist(), off.tolist(), keep.tolist(), thr.tolist(), alias.tolist(),
                          paths, threads=2, **kw)
    st = dict(zip(ops.TRAIN_STATS, ops.word2vec_train(w_in, w_out, ids, off, keep, thr, alias, hs_tables,
                                                      num_threads=2, exact_sigmoid=True, **kw).tolist()))
    msg = f"seed {seed}: V {V}, D {D}, {kw}"
    assert st["pairs"] == ref["pairs"] and st["pairs"] > 4 * 64, msg  # several merges (kHotMerge = 64)
    assert st["loss"] == pytest.approx(ref["loss"], rel=1e-4, abs=1e-6), msg
    torch.testing.assert_close(w_in.double(), torch.from_numpy(ref_in), atol=2e-5, rtol=1e-4,
                               msg=lambda m: f"{msg}: {m}")
    torch.testing.assert_close(w_out.double(), torch.from_numpy(ref_out), atol=2e-5, rtol=1e-4, equal_nan=True,
                               msg=lambda m: f"{msg}: {m}")


def test_word2vec_train_sgns_mode_is_sgns_train():
    rng = random.Random(3)
    V, D, ids, off, counts, keep, thr, alias, hs_tables, w_in, w_out = _inputs(rng, 3, 1e-2)
    kw = dict(window=3, negative=3, alpha=0.025, min_alpha=1e-4, words_done=0, total_words=int(off[-1]), seed=9,
              chunk=1, num_threads=1, shared_negatives=True)
    a_in, a_out, b_in, b_out = w_in.clone(), w_out.clone(), w_in.clone(), w_out.clone()
    sa = ops.sgns_train(a_in, a_out, ids, off, keep, thr, alias, **kw)
    sb = ops.word2vec_train(b_in, b_out, ids, off, keep, thr, alias, **kw)
    assert torch.equal(sa, sb) and torch.equal(a_in, b_in) and torch.equal(a_out, b_out)


# ---------------------------------------------------------------------------------------------------------
# Huffman tree
# ---------------------------------------------------------------------------------------------------------


def optimal_cost(counts):
    """Weighted path length of an optimal prefix code (heapq Huffman; the optimum is unique)."""
    if len(counts) == 1:
        return 0
    h = list(counts)
    heapq.heapify(h)
    cost = 0
    while len(h) > 1:
        a, b = heapq.heappop(h), heapq.heappop(h)
        cost += a + b
        heapq.heappush(h, a + b)
    return cost


@pytest.mark.parametrize("V", [1, 2, 3, 7, 100, 1000])
def test_huffman_is_an_optimal_prefix_tree(V):
    rng = random.Random(V)
    counts = [rng.choice([1, 1, 2, 5, rng.randint(1, 10**6)]) for _ in range(V)]
    if V > 3:
        counts[:3] = [7, 7, 7]  # ties
    off, points, codes = ops.word2vec_huffman(torch.tensor(counts, dtype=torch.int64))
    assert off.dtype == torch.int64 and points.dtype == torch.int32 and codes.dtype == torch.uint8
    off, points, codes = off.tolist(), points.tolist(), codes.tolist()
    assert off[0] == 0 and len(off) == V + 1 and off[-1] == len(points) == len(codes)
    lengths = [off[w + 1] - off[w] for w in range(V)]
    assert sum(c * n for c, n in zip(counts, lengths)) == optimal_cost(counts)
    paths = huffman_paths(off, points, codes)
    bits = {tuple(c for _, c in p) for p in paths}
    assert len(bits) == V  # distinct codes ...
    for p in paths:  # ... none a prefix of another (a full binary tree: Kraft sum 1)
        assert all(0 <= n < V - 1 for n, _ in p) and all(c in (0, 1) for _, c in p)
    assert sum(2.0 ** -n for n in lengths) == pytest.approx(1.0 if V > 1 else 1.0 * (V == 1))
    node_of = {}  # the node reached by a code prefix is the same for every word sharing it
    for p in paths:
        if p:
            assert p[0][0] == V - 2  # the root first
        for d, (n, _) in enumerate(p):
            assert node_of.setdefault(tuple(c for _, c in p[:d]), n) == n
    assert len(node_of) == V - 1  # every inner node is on some path
    # a more frequent word never gets a longer path
    for _ in range(200):
        x, y = rng.randrange(V), rng.randrange(V)
        if counts[x] > counts[y]:
            assert lengths[x] <= lengths[y]


class _ByCount:
    """A heap item compared by count alone, as gensim's Heapitem is."""

    def __init__(self, count, node, left=None, right=None):
        self.count, self.node, self.left, self.right = count, node, left, right

    def __lt__(self, other):
        return self.count < other.count


def heap_tree(counts):
    """The reference: gensim's construction (heapq over items compared by count only; merge the two smallest,
    the second one's branch has code 1; inner node k is row k) -> per word [(node, code), ...] from the root."""
    V = len(counts)
    heap = [_ByCount(c, w) for w, c in enumerate(counts)]
    heapq.heapify(heap)
    for k in range(V - 1):
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        heapq.heappush(heap, _ByCount(a.count + b.count, V + k, a, b))
    paths, stack = [None] * V, [(heap[0], [])]
    while stack:
        n, path = stack.pop()
        if n.node < V:
            paths[n.node] = path
        else:
            stack += [(n.left, path + [(n.node - V, 0)]), (n.right, path + [(n.node - V, 1)])]
    return paths


@pytest.mark.parametrize("V", [1, 2, 5, 64, 3000])
def test_huffman_ties_are_broken_as_gensims_heap(V):
    """Equal counts (many here) are merged in the order gensim's heap takes them, so the tree is gensim's."""
    rng = random.Random(V + 11)
    counts = sorted((rng.choice([1, 1, 2, 3, 8, rng.randint(1, 500)]) for _ in range(V)), reverse=True)
    if rng.random() < 0.5:
        rng.shuffle(counts)  # any order of the counts, not only a sorted vocabulary
    off, points, codes = ops.word2vec_huffman(torch.tensor(counts, dtype=torch.int64))
    assert huffman_paths(off.tolist(), points.tolist(), codes.tolist()) == heap_tree(counts)


def two_queue_tree(counts):
    """The reference for ties="word2vec": word2vec.c's CreateBinaryTree (words sorted by count, descending and
    stable; the rarer of the next word from the end and the next inner node, the inner node on a tie)."""
    V = len(counts)
    order = sorted(range(V), key=lambda w: -counts[w])
    cnt, up = {w: counts[w] for w in range(V)}, {}
    leaf, inner = V - 1, V
    for k in range(V - 1):
        pair = []
        for _ in range(2):
            if leaf >= 0 and (inner >= V + k or cnt[order[leaf]] < cnt[inner]):
                pair.append(order[leaf])
                leaf -= 1
            else:
                pair.append(inner)
                inner += 1
        cnt[V + k] = cnt[pair[0]] + cnt[pair[1]]
        up[pair[0]], up[pair[1]] = (k, 0), (k, 1)
    paths = []
    for w in range(V):
        p, n = [], w
        while n in up:
            p.append(up[n])
            n = V + up[n][0]
        paths.append(p[::-1])
    return paths


@pytest.mark.parametrize("V", [1, 2, 5, 64, 3000])
def test_huffman_word2vec_ties(V):
    rng = random.Random(V + 23)
    counts = [rng.choice([1, 1, 2, 3, 8, rng.randint(1, 500)]) for _ in range(V)]
    off, points, codes = ops.word2vec_huffman(torch.tensor(counts, dtype=torch.int64), "word2vec")
    assert huffman_paths(off.tolist(), points.tolist(), codes.tolist()) == two_queue_tree(counts)
    if V >= 64:  # the two rules give two trees of the same (optimal) cost
        assert huffman_paths(*(t.tolist() for t in ops.word2vec_huffman(torch.tensor(counts)))) != two_queue_tree(counts)


def test_huffman_tree_is_gensims(tmp_path):
    gensim = pytest.importorskip("gensim")
    rng = random.Random(5)
    vocab = [f"w{i}" for i in range(300)]
    path = tmp_path / "c.txt"
    path.write_text("\n".join(" ".join(rng.choice(vocab[:rng.choice([30, 300])]) for _ in range(12))
                               for _ in range(3000)) + "\n")
    w2v = Word2Vec(min_count=2, hs=1, threads=1)
    w2v.build_vocab(str(path))
    g = gensim.models.Word2Vec(vector_size=4, min_count=2, hs=1, negative=0, workers=1)
    g.build_vocab(corpus_file=str(path))
    assert list(w2v.words) == list(g.wv.index_to_key)
    off, points, codes = (t.tolist() for t in w2v.huffman_tables())
    for w, word in enumerate(w2v.words):
        k = g.wv.key_to_index[word]
        assert points[off[w]:off[w + 1]] == [int(x) for x in g.wv.get_vecattr(k, "point")], word
        assert codes[off[w]:off[w + 1]] == [int(x) for x in g.wv.get_vecattr(k, "code")], word


def test_huffman_bad_inputs_and_opcheck():
    with pytest.raises(ValueError, match="counts must be >= 1, got counts\\[1\\] = 0"):
        ops.word2vec_huffman(torch.tensor([3, 0], dtype=torch.int64))
    with pytest.raises(ValueError, match="need 1 <= len\\(counts\\)"):
        ops.word2vec_huffman(torch.zeros(0, dtype=torch.int64))
    with pytest.raises(ValueError, match="'counts' must have dtype Long"):
        ops.word2vec_huffman(torch.ones(3, dtype=torch.int32))
    with pytest.raises(ValueError, match="argument 'ties' must be 'gensim' or 'word2vec', got 'heap'"):
        ops.word2vec_huffman(torch.tensor([3, 1], dtype=torch.int64), "heap")
    for ties in ("gensim", "word2vec"):
        torch.library.opcheck(torch.ops.embedfast.word2vec_huffman.default,
                              (torch.tensor([5, 3, 3, 1], dtype=torch.int64), ties))


def test_word2vec_train_opcheck_and_compile():
    rng = random.Random(2)
    ids, off, counts = random_encoded(rng, 12, 5, 9)
    keep = keep_probabilities(counts, 1e-2)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    hs_off, hs_pts, hs_codes = ops.word2vec_huffman(counts)
    for cbow, hs in MODELS:
        args = (torch.randn(12, 6) * 0.1, torch.randn(12, 6) * 0.1, ids, off, keep, thr, alias, hs_off, hs_pts,
                hs_codes, 2, 0 if hs else 3, 0.025, 1e-4, 0, 100, 1, 0, 1, cbow, hs, False, False)
        torch.library.opcheck(torch.ops.embedfast.word2vec_train.default, args)
    w_in, w_out = torch.randn(12, 6) * 0.1, torch.zeros(12, 6)
    ref_in, ref_out = w_in.clone(), w_out.clone()

    def step(a, b):
        return torch.ops.embedfast.word2vec_train(a, b, ids, off, keep, thr, alias, hs_off, hs_pts, hs_codes, 2, 0,
                                                  0.025, 1e-4, 0, 100, 1, 0, 1, True, True, False, False)

    st = torch.compile(step, fullgraph=True, backend="eager")(w_in, w_out)
    st_ref = step(ref_in, ref_out)
    assert torch.equal(st, st_ref) and torch.equal(w_in, ref_in) and torch.equal(w_out, ref_out)


def test_word2vec_train_bad_inputs():
    V, D = 6, 4
    ids = torch.tensor([0, 1, 2, 5], dtype=torch.int32)
    off = torch.tensor([0, 4])
    counts = torch.tensor([5, 4, 3, 2, 1, 1])
    keep = torch.ones(V, dtype=torch.float64)
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    hs_off, hs_pts, hs_codes = ops.word2vec_huffman(counts)
    w_in, w_out = torch.zeros(V, D), torch.zeros(V, D)
    kw = dict(window=2, negative=0, alpha=0.025, min_alpha=1e-4, words_done=0, total_words=4, seed=0, chunk=0,
              hs=True)

    def call(tables=(hs_off, hs_pts, hs_codes), **over):
        return ops.word2vec_train(w_in, w_out, ids, off, keep, thr, alias, tables, **{**kw, **over})

    with pytest.raises(ValueError, match="negative sampling at the same time is not supported.*negative=2"):
        call(negative=2)
    with pytest.raises(ValueError, match="shared_negatives .* applies only to skip-gram"):
        call(shared_negatives=True)
    with pytest.raises(ValueError, match="shared_negatives"):
        call(hs=False, cbow=True, negative=2, shared_negatives=True)
    with pytest.raises(ValueError, match="'hs_offsets' must have shape \\[7\\]"):
        call((hs_off[:-1], hs_pts, hs_codes))
    with pytest.raises(IndexError, match="hs_points\\[0\\] = 5 is outside the inner nodes \\[0, 5\\)"):
        call((hs_off, torch.full_like(hs_pts, 5), hs_codes))
    with pytest.raises(ValueError, match="hs_codes\\[.\\] = 2 must be 0 or 1"):
        call((hs_off, hs_pts, torch.full_like(hs_codes, 2)))
    with pytest.raises(ValueError, match="'hs_codes' must have dtype Byte"):
        call((hs_off, hs_pts, hs_codes.long()))
    with pytest.raises(ValueError, match="must have the same length"):
        call((hs_off, hs_pts, hs_codes[:-1]))
    bad_off = hs_off.clone()
    bad_off[2] = int(hs_off[3]) + 1
    with pytest.raises(ValueError, match="'hs_offsets' must be non-decreasing"):
        call((bad_off, hs_pts, hs_codes))
    with pytest.raises(ValueError, match="'hs_offsets' must start at 0"):
        call((hs_off + 1, hs_pts, hs_codes))
    rep = hs_pts.clone()
    w = int(torch.argmax(hs_off[1:] - hs_off[:-1]))  # a word with a path of 2+ nodes
    rep[int(hs_off[w]) + 1] = rep[int(hs_off[w])]
    with pytest.raises(ValueError, match=f"the path of word {w} .* passes inner node {int(rep[int(hs_off[w])])} twice"):
        call((hs_off, rep, hs_codes))
    with pytest.raises(IndexError, match="'ids' has value 6 at position 2"):
        ops.word2vec_train(w_in, w_out, torch.tensor([0, 1, 6, 2], dtype=torch.int32), off, keep, thr, alias,
                           (hs_off, hs_pts, hs_codes), **{**kw, "cbow": True})
    with pytest.raises(ValueError, match="window must be >= 1"):
        call(window=0, cbow=True)
    with pytest.raises(ValueError, match="word2vec_train: training diverged"):
        ops.word2vec_train(torch.full((V, D), float("nan")), torch.zeros(V, D), ids, off, keep, thr, alias,
                           (hs_off, hs_pts, hs_codes), **{**kw, "cbow": True})
    assert torch.equal(w_in, torch.zeros(V, D)) and torch.equal(w_out, torch.zeros(V, D))


# ---------------------------------------------------------------------------------------------------------
# trainer, checkpoints, CLI
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sg,hs", [(0, 0), (1, 1), (0, 1)])
def test_planted_structure_is_recovered(sg, hs):
    sents, groups = planted_corpus()
    w2v = Word2Vec(dim=24, window=3, sample=0, min_count=1, epochs=3, threads=2, seed=1, sg=sg, hs=hs)
    assert w2v.params.negative == (0 if hs else 5)
    assert w2v.params.alpha == (0.05 if sg == 0 else 0.025)
    w2v.train(sents, progress=False)
    assert recall_at_k(w2v.w_in, w2v.words, groups, k=7) > 0.9
    fresh = Word2Vec(dim=24, min_count=1, seed=1, sg=sg, hs=hs).build_vocab(sents)
    assert recall_at_k(fresh.w_in, fresh.words, groups, k=7) < 0.2


def test_model_arguments():
    assert Word2Vec(sg=0, alpha=0.025).params.alpha == 0.025  # given: kept
    assert Word2Vec(sg=1).params.alpha == 0.025
    assert Word2Vec(hs=1, negative=0).params.negative == 0
    with pytest.raises(ValueError, match="hs=1 .*pass negative=0 \\(got negative=3\\)"):
        Word2Vec(hs=1, negative=3)
    for bad in (2, True, 0.5, "1"):
        with pytest.raises(ValueError, match="hs must be 1"):
            Word2Vec(hs=bad)
        with pytest.raises(ValueError, match="sg must be 1"):
            Word2Vec(sg=bad)
    with pytest.raises(ValueError, match="Huffman tree's inner nodes"):
        Word2Vec(dim=4, min_count=1, hs=1).build_vocab([["a", "b", "a"]]).skipgram()
    with pytest.raises(ValueError, match="CBOW with negative sampling has no CUDA C\\+\\+ kernel"):
        Word2Vec(sg=0, backend="cuda")


def test_threads1_reproducible_and_checkpoint_resume(tmp_path):
    sents, _ = planted_corpus(sentences=400)
    kw = dict(dim=16, window=3, min_count=1, epochs=2, threads=1, seed=4, sg=0, hs=1, chunk_words=500)
    a = Word2Vec(**kw).train(sents, progress=False)
    b = Word2Vec(**kw)
    b.train(sents, progress=False, max_words=1500)
    ck = tmp_path / "ck.pt"
    b.save_checkpoint(ck)
    c = Word2Vec.load_checkpoint(ck)
    assert (c.params.sg, c.params.hs, c.params.negative) == (0, 1, 0)
    c.train(sents, progress=False)
    assert torch.equal(a.w_in, c.w_in) and torch.equal(a.w_out, c.w_out)


def test_old_checkpoint_without_sg_hs_loads(tmp_path):
    sents, _ = planted_corpus(sentences=200)
    w2v = Word2Vec(dim=8, min_count=1, epochs=1, threads=1).train(sents, progress=False)
    ck = tmp_path / "new.pt"
    w2v.save_checkpoint(ck)
    state = torch.load(ck, weights_only=True)
    for k in ("sg", "hs"):
        del state["params"][k]
    old = tmp_path / "old.pt"
    torch.save(state, old)
    back = Word2Vec.load_checkpoint(old)
    assert (back.params.sg, back.params.hs) == (1, 0) and torch.equal(back.w_in, w2v.w_in)


def test_cli_cbow_hs(tmp_path, capsys):
    from embedfast.cli import main

    sents, _ = planted_corpus(sentences=300)
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(s) for s in sents) + "\n")
    out = tmp_path / "v.txt"
    assert main(["train", str(corpus), "-o", str(out), "--cbow", "--hs", "--dim", "8", "--epochs", "1",
                 "--min-count", "1", "--threads", "1"]) == 0
    from embedfast.vectors import Vectors

    v = Vectors.load(str(out))
    assert v.matrix.shape[1] == 8 and torch.isfinite(v.matrix).all()
