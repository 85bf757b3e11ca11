"""The Vectors API: to_embedding, similarity search against brute force and gensim, gensim's names, constructor
checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from embedfast import Vectors
from tests.vectors_util import random_vectors


# ---- to_embedding ------------------------------------------------------------------------------------------


def test_to_embedding_coverage_and_padding():
    words, mat = random_vectors(20, 6)
    words[4] = "Paris"
    v = Vectors(words, torch.from_numpy(mat))
    task = ["w1", "W2", "paris", "Paris", "unknown", "w19"]
    g = torch.Generator().manual_seed(0)
    emb = v.to_embedding(["<pad>", "<unk>"] + task, generator=g, freeze=False)  # trained below
    assert emb.itos == ["<pad>", "<unk>"] + task and emb.padding_idx == 0
    assert emb.coverage.specials == ["<pad>", "<unk>"] and emb.coverage.padding_idx == 0
    W = emb.weight.detach()
    assert torch.equal(W[0], torch.zeros(6))
    assert torch.equal(W[2], v["w1"]) and torch.equal(W[3], v["w2"]) and torch.equal(W[5], v["Paris"])
    assert torch.equal(W[7], v["w19"])
    assert not torch.equal(W[4], v["Paris"])  # "paris" is not found ("Paris".lower() is, not the reverse)
    c = emb.coverage
    assert (c.total, c.found, c.found_lowercase, c.missing) == (6, 3, 1, 2)
    assert c.missing_words == ["paris", "unknown"]
    assert emb.weight.requires_grad
    # padding row gets no gradient
    emb(torch.tensor([0, 2, 0])).sum().backward()
    assert torch.equal(emb.weight.grad[0], torch.zeros(6))


def test_to_embedding_oov_policies_and_freeze():
    words, mat = random_vectors(200, 16)
    v = Vectors(words, torch.from_numpy(mat))
    task = ["w0"] + [f"oov{i}" for i in range(3000)]
    z = v.to_embedding(task, oov="zeros", freeze=True, specials=())
    assert z.padding_idx is None and not z.weight.requires_grad
    assert torch.equal(z.weight[1:], torch.zeros(3000, 16))
    m = v.to_embedding(task, oov="mean", specials=("<pad>", "<unk>"))
    mean = torch.from_numpy(mat).double().mean(0).float()
    assert torch.allclose(m.weight[1], mean) and torch.allclose(m.weight[5], mean)
    n = v.to_embedding(task, oov="normal", oov_scale=0.3, generator=torch.Generator().manual_seed(1))
    std = n.weight[3:].detach().std().item()
    assert 0.28 < std < 0.32
    # mapping vocab with its own <pad> at index 3
    e = v.to_embedding({"w1": 0, "w2": 1, "zz": 2, "<pad>": 3}, specials=("<pad>",))
    assert e.padding_idx == 3 and e.itos[3] == "<pad>" and torch.equal(e.weight[0], v["w1"])
    with pytest.raises(ValueError, match="oov"):
        v.to_embedding(task, oov="uniform")
    with pytest.raises(ValueError, match="twice"):
        v.to_embedding(["w1", "w1"])


def test_to_embedding_freeze_defaults_to_true_like_from_pretrained():
    words, mat = random_vectors(10, 4)
    v = Vectors(words, torch.from_numpy(mat))
    ref = torch.nn.Embedding.from_pretrained(torch.from_numpy(mat))
    emb = v.to_embedding(words)
    assert not emb.weight.requires_grad and emb.weight.requires_grad == ref.weight.requires_grad
    assert torch.equal(emb.weight, ref.weight)
    assert v.to_embedding(words, freeze=False).weight.requires_grad


def test_to_embedding_former_option_names_warn_and_still_work():
    words, mat = random_vectors(30, 8)
    words[3] = "paris"
    v = Vectors(words, torch.from_numpy(mat))
    task = ["Paris", "w1"] + [f"oov{i}" for i in range(2000)]
    new = v.to_embedding(task, oov_scale=0.3, lowercase_fallback=False, generator=torch.Generator().manual_seed(2))
    with pytest.warns(DeprecationWarning, match=r"scale=\.\.\.\) is deprecated; use oov_scale="):
        old_scale = v.to_embedding(task, scale=0.3, lowercase_fallback=False,
                                   generator=torch.Generator().manual_seed(2))
    assert torch.equal(old_scale.weight, new.weight)
    with pytest.warns(DeprecationWarning, match="use lowercase_fallback="):
        old_lower = v.to_embedding(task, lowercase=False, oov_scale=0.3, generator=torch.Generator().manual_seed(2))
    assert torch.equal(old_lower.weight, new.weight) and old_lower.coverage == new.coverage
    assert new.coverage.found_lowercase == 0 and v.to_embedding(task).coverage.found_lowercase == 1
    with pytest.raises(TypeError, match="give oov_scale= only"):
        v.to_embedding(task, scale=0.3, oov_scale=0.3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'scael'"):
        v.to_embedding(task, scael=0.3)


# ---- most_similar ------------------------------------------------------------------------------------------


def assert_same_ranking(got, want, **tolerance):
    """The same words in the same order, and scores within ``tolerance`` (pytest.approx's arguments)."""
    assert [w for w, _ in got] == [w for w, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], **tolerance)


def brute_force_most_similar(words, mat, positive, negative, topn):
    m = mat.astype(np.float64)
    unit = m / np.linalg.norm(m, axis=1, keepdims=True)
    idx = {w: i for i, w in enumerate(words)}
    q = sum(unit[idx[w]] for w in positive) - sum((unit[idx[w]] for w in negative), np.zeros(m.shape[1]))
    q = q / np.linalg.norm(q)
    sims = [(float(unit[i] @ q), w) for i, w in enumerate(words) if w not in set(positive) | set(negative)]
    sims.sort(key=lambda t: -t[0])
    return [(w, s) for s, w in sims[:topn]]


@pytest.mark.parametrize("pos,neg", [(["w3"], []), (["w1", "w7"], ["w2"]), ([], ["w9"])])
def test_most_similar_matches_brute_force(pos, neg):
    words, mat = random_vectors(301, 12)
    v = Vectors(words, torch.from_numpy(mat))
    assert_same_ranking(v.most_similar(positive=pos, negative=neg, topn=8),
                        brute_force_most_similar(words, mat, pos, neg, 8), abs=1e-5)
    assert len(v.most_similar(pos or "w0", topn=None)) == 301
    with pytest.raises(KeyError):
        v.most_similar("nope")
    with pytest.raises(ValueError):
        v.most_similar([])


def test_most_similar_matches_gensim():
    pytest.importorskip("gensim")
    words, mat = random_vectors(500, 20)
    v = Vectors(words, torch.from_numpy(mat))
    kv = v.to_gensim()
    for pos, neg in ((["w4"], []), (["w1", ("w2", 0.5)], ["w3"]), ("w10", "w11")):
        a = v.most_similar(pos, neg, topn=10)
        b = kv.most_similar(pos, neg, topn=10)
        assert [w for w, _ in a] == [w for w, _ in b]
        assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-5)
    a, b = v.most_similar("w4", restrict_vocab=50, topn=3), kv.most_similar("w4", restrict_vocab=50, topn=3)
    assert [w for w, _ in a] == [w for w, _ in b] and [s for _, s in a] == pytest.approx([s for _, s in b])


def test_vectors_constructor_checks():
    with pytest.raises(ValueError, match="2 words but the matrix has 3 rows"):
        Vectors(["a", "b"], torch.zeros(3, 2))
    with pytest.raises(ValueError, match="2-D"):
        Vectors(["a"], torch.zeros(3))
    with pytest.raises(ValueError, match="floating"):
        Vectors(["a"], torch.zeros(1, 2, dtype=torch.int64))


# ---- gensim's names ----------------------------------------------------------------------------------------


def _unit(m):
    m = m.astype(np.float64)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_gensim_attribute_names_and_stacked_rows():
    words, mat = random_vectors(40, 6)
    v = Vectors(words, torch.from_numpy(mat))
    assert v.index_to_key is v.words and v.index_to_key == words
    assert v.vectors is v.matrix and v.vector_size == v.dim == 6
    assert v.key_to_index == {w: i for i, w in enumerate(words)}
    rows = v[["w3", "w0", "w3"]]
    assert rows.shape == (3, 6) and torch.equal(rows, torch.from_numpy(mat[[3, 0, 3]]))
    assert torch.equal(v[("w1",)], torch.from_numpy(mat[[1]])) and v[[]].shape == (0, 6)
    assert torch.equal(v["w5"], torch.from_numpy(mat[5]))
    with pytest.raises(KeyError, match="nope"):
        v[["w1", "nope"]]
    with pytest.raises(TypeError, match="a word or a list of words"):
        v[3]
    new = torch.zeros(40, 6)
    v.vectors = new
    assert v.matrix is new and v.normed().abs().sum() == 0  # the cache follows the new matrix
    with pytest.raises(ValueError, match=r"expected a \[40, D\] tensor"):
        v.vectors = torch.zeros(3, 6)


def brute_force_cosmul(words, mat, positive, negative, topn, eps=1e-6):
    unit = _unit(mat)
    idx = {w: i for i, w in enumerate(words)}
    num = np.prod([(1 + unit @ unit[idx[w]]) / 2 for w in positive], axis=0)
    den = np.prod([(1 + unit @ unit[idx[w]]) / 2 for w in negative], axis=0) if negative else 1.0
    score = num / (den + eps)
    out = [(float(score[i]), w) for i, w in enumerate(words) if w not in set(positive) | set(negative)]
    out.sort(key=lambda t: -t[0])
    return [(w, s) for s, w in out[:topn]]


@pytest.mark.parametrize("pos,neg", [(["w3"], []), (["w1", "w7"], ["w2"]), (["w4", "w5"], ["w6", "w8"])])
def test_most_similar_cosmul_matches_brute_force_and_gensim(pos, neg):
    words, mat = random_vectors(301, 12)
    v = Vectors(words, torch.from_numpy(mat))
    got = v.most_similar_cosmul(positive=pos, negative=neg, topn=8)
    assert_same_ranking(got, brute_force_cosmul(words, mat, pos, neg, 8), rel=1e-5)
    if len(pos) == 1 and not neg:  # one positive word: most_similar's ranking
        assert [w for w, _ in got] == [w for w, _ in v.most_similar(pos, topn=8)]
    pytest.importorskip("gensim")
    assert_same_ranking(got, v.to_gensim().most_similar_cosmul(positive=pos, negative=neg, topn=8), rel=1e-5)


def test_most_similar_cosmul_arguments():
    words, mat = random_vectors(50, 5)
    v = Vectors(words, torch.from_numpy(mat))
    assert v.most_similar_cosmul("w1", "w2", topn=5) == v.most_similar_cosmul(["w1"], ["w2"], topn=5)
    by_vector = v.most_similar_cosmul(positive=[v["w1"] * 7.0], topn=3)  # a vector: compared by cosine
    assert [w for w, _ in by_vector][1:] == [w for w, _ in v.most_similar_cosmul("w1", topn=2)]
    assert by_vector[0][0] == "w1"  # a vector excludes no word
    scores = v.most_similar_cosmul("w1", topn=None, restrict_vocab=20)
    assert scores.shape == (20,)
    assert v.most_similar_cosmul("w1", topn=0) == []
    with pytest.raises(ValueError, match="at least one positive"):
        v.most_similar_cosmul(negative=["w1"])
    with pytest.raises(ValueError, match="pairs are not taken"):
        v.most_similar_cosmul([("w1", 0.5)])
    with pytest.raises(ValueError, match="topn"):
        v.most_similar_cosmul("w1", topn=-1)
    with pytest.raises(KeyError):
        v.most_similar_cosmul("nope")


def test_doesnt_match_matches_plain_reference_and_gensim(caplog):
    words, mat = random_vectors(60, 8, seed=11)
    mat[[1, 2, 3]] = mat[1] + 0.05 * mat[[1, 2, 3]]  # w1, w2, w3 close together; w40 the odd one
    v = Vectors(words, torch.from_numpy(mat))
    query = ["w1", "w2", "w40", "w3"]
    unit = _unit(mat[[1, 2, 40, 3]])
    mean = unit.mean(0) / np.linalg.norm(unit.mean(0))
    assert v.doesnt_match(query) == query[int(np.argmin(unit @ mean))] == "w40"
    with caplog.at_level("WARNING", logger="embedfast.vectors"):
        assert v.doesnt_match(query + ["unknown"]) == "w40"
    assert "unknown" in caplog.text
    with pytest.raises(ValueError, match="none of the 2 words"):
        v.doesnt_match(["x", "y"])
    with pytest.raises(TypeError, match="not a str"):
        v.doesnt_match("w1 w2")
    pytest.importorskip("gensim")
    kv = v.to_gensim()
    for q in (query, ["w5", "w9", "w13", "w21", "w30"], ["w7", "w8"]):
        assert v.doesnt_match(q) == kv.doesnt_match(q)


def test_n_similarity_matches_plain_reference_and_gensim():
    words, mat = random_vectors(30, 7, seed=5)
    v = Vectors(words, torch.from_numpy(mat))
    a, b = ["w1", "w2", "w3"], ["w4", "w9"]
    m1, m2 = mat[[1, 2, 3]].astype(np.float64).mean(0), mat[[4, 9]].astype(np.float64).mean(0)
    want = float(m1 @ m2 / np.linalg.norm(m1) / np.linalg.norm(m2))
    assert v.n_similarity(a, b) == pytest.approx(want, abs=1e-9)
    assert v.n_similarity(["w1"], ["w2"]) == pytest.approx(v.similarity("w1", "w2"), abs=1e-6)
    with pytest.raises(ValueError, match="at least one word"):
        v.n_similarity([], b)
    with pytest.raises(KeyError, match="nope"):
        v.n_similarity(a, ["nope"])
    with pytest.raises(TypeError, match="not a str"):
        v.n_similarity("w1", b)
    pytest.importorskip("gensim")
    assert v.n_similarity(a, b) == pytest.approx(float(v.to_gensim().n_similarity(a, b)), abs=1e-6)


def test_evaluate_word_analogies_method_delegates_to_embedfast_evaluate(tmp_path):
    from embedfast import evaluate as ev

    g = torch.Generator().manual_seed(0)
    base, shift = torch.randn(6, 16, generator=g), torch.randn(16, generator=g)
    words = [f"c{i}" for i in range(6)] + [f"k{i}" for i in range(6)]
    v = Vectors(words, torch.cat([base, base + shift]))
    path = str(tmp_path / "q.txt")
    with open(path, "w") as f:
        f.write(": caps\nc0 k0 c1 k1\nc2 k2 c3 k3\nc0 k0 zz k1\n")
    score, sections = v.evaluate_word_analogies(path)
    assert (score, sections) == ev.evaluate_word_analogies(v, path)
    assert score == 1.0 and sections[0]["correct"] == [("c0", "k0", "c1", "k1"), ("c2", "k2", "c3", "k3")]
    assert sections[-1]["section"] == "Total accuracy"
    assert v.evaluate_word_analogies(path, dummy4unknown=True)[0] == pytest.approx(2 / 3)


def test_package_keeps_the_public_names_of_the_former_modules():
    """embedfast.vectors and embedfast.evaluate were modules; as packages they expose the same public names."""
    import embedfast.ops
    import embedfast.vectors as vectors
    from embedfast import evaluate as ev

    for name in ("Vectors", "load_vectors", "LoadReport", "EmbeddingCoverage", "TEXT_FORMATS", "LOAD_FORMATS",
                 "SAVE_FORMATS", "LOAD_STATS", "SKIP_REASONS", "load_vectors_raw", "PAD_SPELLINGS", "UNK_SPELLINGS",
                 "PathLike", "logger"):
        assert hasattr(vectors, name), name
    for name in ("evaluate_word_pairs", "evaluate_analogies", "nearest_neighbours", "read_word_pairs",
                 "read_analogies", "spearman", "pearson", "plot_loss", "plot_projection", "project_2d", "PathLike",
                 "evaluate_word_analogies"):
        assert hasattr(ev, name), name
    assert set(ev.__all__) <= set(dir(ev)) and set(vectors.__all__) <= set(dir(vectors))
    assert embedfast.ops.load_vectors_raw is vectors.load_vectors_raw and embedfast.ops.LOAD_STATS is vectors.LOAD_STATS
    assert embedfast.Vectors is vectors.Vectors and embedfast.load_vectors is vectors.load_vectors
