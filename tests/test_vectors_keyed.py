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
    got = v.most_similar(positive=pos, negative=neg, topn=8)
    want = brute_force_most_similar(words, mat, pos, neg, 8)
    assert [w for w, _ in got] == [w for w, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
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
