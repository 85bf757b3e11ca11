"""embedfast.evaluate: hand-computed values, a plain-loop reference, gensim on the same vectors, bad files, CLI."""
from __future__ import annotations

import gzip
import itertools
import json
import math
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import embedfast
import embedfast.data
from embedfast import evaluate as ev
from embedfast.cli import main as cli_main

scipy_stats = pytest.importorskip("scipy.stats")
gensim_kv = pytest.importorskip("gensim.models.keyedvectors")


def V(words, matrix):
    """A duck-typed vectors object (works before/without embedfast.Vectors)."""
    return SimpleNamespace(words=list(words), matrix=torch.as_tensor(matrix, dtype=torch.float32))


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


def to_gensim(v):
    kv = gensim_kv.KeyedVectors(v.matrix.shape[1])
    kv.add_vectors(v.words, v.matrix.numpy())
    return kv


# ---------------------------------------------------------------------------------------------------------
# correlations
# ---------------------------------------------------------------------------------------------------------


def test_spearman_hand_computed():
    # d = ranks differences (0, 1, -1, 0): rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert ev.spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)
    assert ev.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert ev.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert math.isnan(ev.pearson([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="equal length"):
        ev.spearman([1, 2], [1, 2, 3])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlations_match_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    x = rng.integers(0, 7, size=n).astype(float)  # many ties
    y = x + rng.normal(size=n)
    assert ev.spearman(x, y) == pytest.approx(scipy_stats.spearmanr(x, y).statistic, abs=1e-12)
    assert ev.pearson(x, y) == pytest.approx(scipy_stats.pearsonr(x, y).statistic, abs=1e-12)


# ---------------------------------------------------------------------------------------------------------
# word pairs
# ---------------------------------------------------------------------------------------------------------


def angle_vectors():
    # unit vectors at known angles: cos(cat, dog) = cos(0.2) etc.
    ang = {"Cat": 0.0, "dog": 0.2, "car": 1.4, "truck": 1.5, "tree": 0.9, "cat": 3.0}
    words = list(ang)
    m = [[2 * math.cos(a), 2 * math.sin(a)] for a in ang.values()]  # norm 2: cosine must normalise
    return V(words, m), ang


def test_word_pairs_hand_computed(tmp_path):
    v, ang = angle_vectors()
    f = write(
        tmp_path / "pairs.tsv",
        "# comment line\n# Word 1\tWord 2\tHuman (mean)\n"
        "cat\tdog\t9.0\n"  # cos(0.2)   (case-insensitive: 'cat' -> 'Cat', the first variant)
        "car\ttruck\t8.0\n"  # cos(0.1)
        "cat\ttree\t3.0\n"  # cos(0.9)
        "\n"
        "dog\tcar\t1.0\n"  # cos(1.2)
        "dog\tunicorn\t5.0\n",  # OOV
    )
    r = ev.evaluate_word_pairs(v, f)
    model = [math.cos(0.2), math.cos(0.1), math.cos(0.9), math.cos(1.2)]
    gold = [9.0, 8.0, 3.0, 1.0]
    # gold ranks 4, 3, 2, 1; model ranks 3, 4, 2, 1: d = (1, -1, 0, 0), rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert r["spearman"] == pytest.approx(0.8)
    assert r["pearson"] == pytest.approx(float(np.corrcoef(gold, model)[0, 1]))
    assert (r["pairs"], r["used"], r["oov"]) == (5, 4, 1)
    assert r["oov_ratio"] == pytest.approx(0.2)
    assert r["oov_pairs"] == [("dog", "unicorn")]


def test_word_pairs_case_handling(tmp_path):
    v, _ = angle_vectors()
    f = write(tmp_path / "p.tsv", "CAT\tdog\t9\ncat\ttree\t2\ncar\ttruck\t5\n")
    ci = ev.evaluate_word_pairs(v, f)  # 'CAT' and 'cat' -> 'Cat' (rank 0): cos .2, .9, .1
    assert ci["used"] == 3
    assert ci["spearman"] == pytest.approx(ev.spearman([9, 2, 5], [math.cos(0.2), math.cos(0.9), math.cos(0.1)]))
    cs = ev.evaluate_word_pairs(v, f, case_insensitive=False)  # 'CAT' unknown; 'cat' is the angle-3.0 vector
    assert (cs["used"], cs["oov"], cs["oov_pairs"]) == (2, 1, [("CAT", "dog")])
    assert cs["pearson"] == pytest.approx(ev.pearson([2, 5], [math.cos(2.1), math.cos(0.1)]))


def test_word_pairs_restrict_vocab(tmp_path):
    v, _ = angle_vectors()  # order: Cat dog car truck tree cat
    f = write(tmp_path / "p.tsv", "cat\tdog\t9\ncar\ttruck\t8\ncat\ttree\t3\n")
    r = ev.evaluate_word_pairs(v, f, restrict_vocab=3)  # truck (4th) and tree (5th) are outside
    assert (r["used"], r["oov"]) == (1, 2)
    assert r["oov_pairs"] == [("car", "truck"), ("cat", "tree")]
    with pytest.raises(ValueError, match="none of the 1 pairs"):
        ev.evaluate_word_pairs(v, write(tmp_path / "q.tsv", "tree\ttruck\t1\n"), restrict_vocab=2)


def test_word_pairs_whitespace_and_zero_vector(tmp_path):
    v = V(["a", "b", "z"], [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    f = write(tmp_path / "p.txt", "a b 3\na z 1\nb z 2\n")  # no tabs: split on whitespace
    r = ev.evaluate_word_pairs(v, f)
    assert r["used"] == 3
    assert r["spearman"] == pytest.approx(ev.spearman([3, 1, 2], [math.sqrt(0.5), 0.0, 0.0]))


# ---------------------------------------------------------------------------------------------------------
# analogies
# ---------------------------------------------------------------------------------------------------------


def planted_analogies(seed=0, pairs=8, dim=64, noise=0.01, extra=30):
    """Countries e_i + s and capitals e_i + r (+ noise) with near-orthogonal random e_i, s, r of norm ~1, plus
    distractor words: capital_i - country_i + country_j = capital_j, so every answer is known."""
    g = torch.Generator().manual_seed(seed)
    countries = [f"country{i}" for i in range(pairs)]
    capitals = [f"capital{i}" for i in range(pairs)]
    e = torch.randn(pairs, dim, generator=g) / math.sqrt(dim)
    s, r = torch.randn(2, dim, generator=g) / math.sqrt(dim)
    co = e + s + noise * torch.randn(pairs, dim, generator=g)
    caps = e + r + noise * torch.randn(pairs, dim, generator=g)
    other = torch.randn(extra, dim, generator=g) * math.sqrt(2.0 / dim)
    words = countries + capitals + [f"w{i}" for i in range(extra)]
    return V(words, torch.cat([co, caps, other])), countries, capitals


def analogy_file(tmp_path, sections):
    lines = []
    for name, qs in sections:
        lines.append(f": {name}")
        lines += [" ".join(q) for q in qs]
    return write(tmp_path / "questions.txt", "\n".join(lines) + "\n")


def test_planted_analogies_all_correct(tmp_path):
    v, co, ca = planted_analogies()
    qs = [(co[i], ca[i], co[j], ca[j]) for i, j in itertools.permutations(range(len(co)), 2)]
    rev = [(ca[i], co[i], ca[j], co[j]) for i, j in itertools.permutations(range(4), 2)]
    f = analogy_file(tmp_path, [("capitals", qs), ("reverse", rev)])
    for method in ("3cosadd", "3cosmul"):
        r = ev.evaluate_analogies(v, f, method=method)
        assert (r["correct"], r["total"], r["skipped"]) == (len(qs) + len(rev), len(qs) + len(rev), 0), method
        assert r["accuracy"] == 1.0
        assert [(s["section"], s["correct"], s["total"]) for s in r["sections"]] == [
            ("capitals", len(qs), len(qs)), ("reverse", len(rev), len(rev))]


def test_analogy_question_words_excluded(tmp_path):
    # b - a + c lies closest to c itself; the answer d is second: must be found once c is excluded.
    words = ["a", "b", "c", "d", "e"]
    m = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.1, 0.0], [0.0, 0.0, 1.0], [0.0, 0.3, 1.0], [0.0, -1.0, 0.2]])
    f = analogy_file(tmp_path, [("s", [("a", "b", "c", "d"), ("a", "b", "c", "e")])])
    r = ev.evaluate_analogies(V(words, m), f)
    assert (r["correct"], r["total"]) == (1, 2)
    assert r["sections"][0]["accuracy"] == 0.5


def test_analogy_restrict_vocab_semantics(tmp_path):
    v, co, ca = planted_analogies(pairs=4, extra=0)
    # a distractor placed at the exact 3CosAdd target of (co0, ca0, co1, ?), after the planted words
    u = v.matrix / v.matrix.norm(dim=1, keepdim=True)
    target = u[4 + 0] - u[0] + u[1]  # cosine 1 with the 3CosAdd target
    v2 = V(v.words + ["distractor"], torch.cat([v.matrix, target[None]]))
    f = analogy_file(tmp_path, [("s", [(co[0], ca[0], co[1], ca[1]), (co[0], ca[0], co[1], "distractor")])])
    full = ev.evaluate_analogies(v2, f)  # distractor is a candidate and wins question 1; answers question 2
    assert (full["correct"], full["total"], full["skipped"]) == (1, 2, 0)
    r = ev.evaluate_analogies(v2, f, restrict_vocab=8)  # distractor (9th) out: q2 skipped, q1 correct
    assert (r["correct"], r["total"], r["skipped"], r["restrict_vocab"]) == (1, 1, 1, 8)
    r = ev.evaluate_analogies(v2, f, restrict_vocab=5)  # capital1 (6th) out too: both skipped
    assert (r["total"], r["skipped"]) == (0, 2) and math.isnan(r["accuracy"])


def test_analogy_case_variants(tmp_path):
    # 'B' is the frequent variant of 'b'; case-insensitively the question uses B's vector and excludes both.
    words = ["A", "B", "C", "D", "b", "x"]
    m = torch.tensor([[1.0, 0, 0], [1.0, 1.0, 0], [0, 0, 1.0], [0, 1.0, 1.0], [0, 1.0, 1.0], [0, -1.0, 0]])
    f = analogy_file(tmp_path, [("s", [("a", "b", "c", "d")])])
    r = ev.evaluate_analogies(V(words, m), f)
    # row 'b' equals D's vector exactly, but is a variant of the question word 'b': excluded, D wins
    assert (r["correct"], r["total"]) == (1, 1)
    r = ev.evaluate_analogies(V(words, m), f, case_insensitive=False)  # lowercase 'a', 'c', 'd' unknown
    assert (r["total"], r["skipped"]) == (0, 1)


def reference_analogies(words, matrix, questions, restrict, method, eps, case_insensitive=True):
    """Plain per-question loop, no batching: the straightforward definition."""
    key = (lambda w: w.upper()) if case_insensitive else (lambda w: w)
    n = min(restrict, len(words))
    first = {}
    for i in range(n):
        first.setdefault(key(words[i]), i)
    unit = [row / (np.linalg.norm(row) or 1.0) for row in matrix.double().numpy()[:n]]
    correct = total = skipped = 0
    for a, b, c, d in questions:
        if any(key(w) not in first for w in (a, b, c, d)):
            skipped += 1
            continue
        va, vb, vc = (unit[first[key(w)]] for w in (a, b, c))
        best, best_s = None, -math.inf
        for i in range(n):
            if key(words[i]) in {key(a), key(b), key(c)}:
                continue
            x = unit[i]
            if method == "3cosadd":
                s = x @ vb - x @ va + x @ vc
            else:
                s = ((1 + x @ vb) / 2) * ((1 + x @ vc) / 2) / ((1 + x @ va) / 2 + eps)
            if s > best_s:
                best, best_s = i, s
        total += 1
        correct += best is not None and key(words[best]) == key(d)
    return correct, total, skipped


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_analogies_match_plain_reference(tmp_path, seed):
    rng = random.Random(seed)
    n, dim = rng.randint(20, 60), rng.choice([3, 5, 8])
    pool = [f"w{i}" for i in range(n)]
    words = [w.upper() if rng.random() < 0.2 else w for w in pool]
    words += [w.lower() for w in rng.sample(words, 5)]  # case variants further down the list
    matrix = torch.randn(len(words), dim, generator=torch.Generator().manual_seed(seed))
    matrix = matrix.t().contiguous().t()[:, :]  # non-contiguous rows are fine too
    matrix = torch.cat([matrix, torch.zeros(1, dim)])  # a zero vector
    words.append("zero")
    qs = [tuple(rng.choice(pool + ["oov", "zero"]) for _ in range(4)) for _ in range(150)]
    f = analogy_file(tmp_path, [("a", qs[:70]), ("b", qs[70:])])
    restrict = rng.randint(10, len(words) + 5)
    for method in ("3cosadd", "3cosmul"):
        for ci in (True, False):
            got = ev.evaluate_analogies(V(words, matrix), f, restrict_vocab=restrict, method=method,
                                        case_insensitive=ci, batch_size=rng.randint(1, 40))
            want = reference_analogies(words, matrix, qs, restrict, method, 1e-3, ci)
            assert (got["correct"], got["total"], got["skipped"]) == want, (method, ci)


# ---------------------------------------------------------------------------------------------------------
# against gensim on the same vectors
# ---------------------------------------------------------------------------------------------------------


def gensim_analogy_counts(kv, path, restrict):
    score, sections = kv.evaluate_word_analogies(path, restrict_vocab=restrict)
    total = sections[-1]
    return len(total["correct"]), len(total["correct"]) + len(total["incorrect"])


@pytest.fixture(scope="module")
def trained_gensim():
    """A gensim skip-gram model trained for a moment on a slice of the embedded corpus."""
    from gensim.models import Word2Vec

    with gzip.open(embedfast.data.default_corpus_path(), "rt", encoding="utf-8") as f:
        sents = [line.split() for _, line in zip(range(60000), f)]
    model = Word2Vec(sents, vector_size=32, window=5, min_count=3, sg=1, negative=5, epochs=1, workers=1,
                     seed=7)
    kv = model.wv
    return kv, V(kv.index_to_key, torch.from_numpy(kv.vectors.copy()))


@pytest.mark.parametrize("name", ["wordsim353.tsv", "simlex999.txt"])
def test_word_pairs_match_gensim_trained(trained_gensim, name):
    kv, v = trained_gensim
    path = embedfast.data.evaluation_file(name)
    for restrict in (300000, 2000):
        r = ev.evaluate_word_pairs(v, path, restrict_vocab=restrict)
        pearson, spearman, oov_pct = kv.evaluate_word_pairs(path, restrict_vocab=restrict)
        assert r["spearman"] == pytest.approx(spearman.statistic, abs=1e-6)
        assert r["pearson"] == pytest.approx(pearson.statistic, abs=1e-6)
        assert 100 * r["oov_ratio"] == pytest.approx(oov_pct)


def test_analogies_match_gensim_trained(trained_gensim):
    kv, v = trained_gensim
    path = embedfast.data.evaluation_file("questions-words.txt")
    assert len(v.words) > 6000
    for restrict in (6000,):  # gensim answers one question at a time: keep it small
        r = ev.evaluate_analogies(v, path, restrict_vocab=restrict)
        correct, total = gensim_analogy_counts(kv, path, restrict)
        assert r["total"] == total and r["total"] > 300
        assert r["total"] + r["skipped"] == 19544
        assert abs(r["correct"] - correct) <= 1  # float32 near-ties may flip one question
        assert r["correct"] > 0


def test_match_gensim_planted_with_case_variants(tmp_path):
    v, co, ca = planted_analogies(seed=3, pairs=10, noise=0.4, extra=40)
    words = list(v.words)
    words[2], words[13] = "COUNTRY2", "CAPITAL3"  # the questions say country2 / capital3
    words += ["COUNTRY5", "W3"]  # rarer case variants of country5 and w3
    matrix = torch.cat([v.matrix, torch.randn(2, v.matrix.shape[1], generator=torch.Generator().manual_seed(9))])
    v = V(words, matrix)
    qs = [(co[i], ca[i], co[j], ca[j]) for i, j in itertools.permutations(range(10), 2)]
    f = analogy_file(tmp_path, [("caps", qs), ("mix", [("w1", "w2", "w3", "w4"), ("x", "w1", "w2", "w3")])])
    kv = to_gensim(v)
    for restrict in (len(words), 25, 15):
        r = ev.evaluate_analogies(v, f, restrict_vocab=restrict)
        assert (r["correct"], r["total"]) == gensim_analogy_counts(kv, f, restrict), restrict
    # gensim's 3CosMul (epsilon 1e-6), question by question, case-sensitive, without restriction
    r = ev.evaluate_analogies(v, f, restrict_vocab=None, method="3cosmul", epsilon=1e-6, case_insensitive=False)
    correct = total = 0
    for a, b, c, d in qs + [("w1", "w2", "w3", "w4")]:
        if not all(w in kv.key_to_index for w in (a, b, c, d)):
            continue
        total += 1
        correct += kv.most_similar_cosmul(positive=[b, c], negative=[a], topn=1)[0][0] == d
    assert (r["correct"], r["total"]) == (correct, total)


def test_evaluate_word_analogies_gives_gensims_sections(tmp_path):
    """gensim's name and return shape: (score, sections with the correct / incorrect questions, then a total)."""
    v, co, ca = planted_analogies(seed=4, pairs=8, noise=0.5, extra=30)
    words = list(v.words)
    words[1] = "COUNTRY1"  # a case variant, found case-insensitively only
    v = V(words, v.matrix)
    qs = [(co[i], ca[i], co[j], ca[j]) for i, j in itertools.permutations(range(8), 2)]
    f = analogy_file(tmp_path, [("caps", qs), ("mix", [("w1", "w2", "w3", "w4"), ("x", "w1", "w2", "w3")])])
    kv = to_gensim(v)
    upper = lambda qs: sorted(tuple(w.upper() for w in q) for q in qs)  # noqa: E731  gensim upper-cases them
    # (gensim 4.4 answers with most_similar whatever similarity_function says: compared below without it)
    for kwargs in ({}, {"restrict_vocab": 20}, {"dummy4unknown": True}, {"case_insensitive": False}):
        score, sections = ev.evaluate_word_analogies(v, f, **kwargs)
        g_score, g_sections = kv.evaluate_word_analogies(f, **kwargs)
        assert [s["section"] for s in sections] == [s["section"] for s in g_sections] == ["caps", "mix",
                                                                                             "Total accuracy"]
        for mine, theirs in zip(sections, g_sections):
            fold = upper if kwargs.get("case_insensitive", True) else sorted
            assert fold(mine["correct"]) == fold(theirs["correct"]), (kwargs, mine["section"])
            assert fold(mine["incorrect"]) == fold(theirs["incorrect"]), (kwargs, mine["section"])
        assert score == pytest.approx(g_score)
    r = ev.evaluate_analogies(v, f)
    score, sections = ev.evaluate_word_analogies(v, f)
    assert (len(sections[-1]["correct"]), score) == (r["correct"], pytest.approx(r["accuracy"]))
    assert ("x", "w1", "w2", "w3") not in sections[1]["incorrect"]
    # similarity_function="most_similar_cosmul": 3CosMul with most_similar_cosmul's epsilon, question by question
    score, sections = ev.evaluate_word_analogies(v, f, similarity_function="most_similar_cosmul",
                                                 case_insensitive=False)
    right = [q for q in qs if all(w in kv.key_to_index for w in q)
             and kv.most_similar_cosmul(positive=[q[1], q[2]], negative=[q[0]], topn=1)[0][0] == q[3]]
    assert sorted(sections[0]["correct"]) == sorted(right)
    r = ev.evaluate_analogies(v, f, method="3cosmul", epsilon=1e-6, case_insensitive=False)
    assert (len(sections[-1]["correct"]), score) == (r["correct"], pytest.approx(r["accuracy"]))
    assert ("x", "w1", "w2", "w3") in ev.evaluate_word_analogies(v, f, dummy4unknown=True)[1][1]["incorrect"]
    empty = analogy_file(tmp_path, [("none", [("x", "y", "z", "q")])])
    assert ev.evaluate_word_analogies(v, empty)[0] == 0.0  # nothing asked: gensim's 0.0
    with pytest.raises(ValueError, match="similarity_function"):
        ev.evaluate_word_analogies(v, f, similarity_function="cosine")


# ---------------------------------------------------------------------------------------------------------
# nearest neighbours, plots
# ---------------------------------------------------------------------------------------------------------


def test_nearest_neighbours():
    v, ang = angle_vectors()  # Cat 0.0, dog 0.2, car 1.4, truck 1.5, tree 0.9, cat 3.0
    nn = ev.nearest_neighbours(v, ["dog", "cat"], topn=2)
    assert [w for w, _ in nn["dog"]] == ["Cat", "tree"]
    assert nn["dog"][0][1] == pytest.approx(math.cos(0.2), abs=1e-6)
    assert [w for w, _ in nn["cat"]] == ["truck", "car"]  # 1.5 and 1.6 radians away
    all_nn = ev.nearest_neighbours(v, "car", topn=100)["car"]
    assert len(all_nn) == 5 and "car" not in [w for w, _ in all_nn]
    assert [w for w, _ in ev.nearest_neighbours(v, "tree", topn=3, restrict_vocab=2)["tree"]] == ["dog", "Cat"]
    with pytest.raises(KeyError, match="'unicorn'"):
        ev.nearest_neighbours(v, ["dog", "unicorn"])
    with pytest.raises(ValueError, match="topn"):
        ev.nearest_neighbours(v, "dog", topn=0)


def test_project_2d_recovers_a_line():
    d = torch.tensor([1.0, 2.0, 2.0]) / 3.0
    v = V(["a", "b", "c", "d"], torch.stack([t * d + 5 for t in (0.0, 1.0, 3.0, 6.0)]))
    p = ev.project_2d(v, ["a", "b", "c", "d"])
    assert p.shape == (4, 2)
    assert torch.allclose(p[:, 1], torch.zeros(4, dtype=p.dtype), atol=1e-5)  # float32 input
    assert torch.allclose((p[:, 0] - p[0, 0]).abs(), torch.tensor([0.0, 1, 3, 6], dtype=p.dtype), atol=1e-5)


def test_plots(tmp_path):
    v, _ = angle_vectors()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install matplotlib"):
            ev.plot_loss([(0, 4.0), (100, 3.0)], tmp_path / "loss.png")
        with pytest.raises(ImportError, match="embedfast\\[plot\\]"):
            ev.plot_projection(v, ["Cat", "dog", "car"], tmp_path / "pca.png")
        return
    for path in (ev.plot_loss([(0, 4.0), (100, 3.0), (200, 2.5)], tmp_path / "loss.png"),
                 ev.plot_projection(v, ["Cat", "dog", "car"], tmp_path / "pca.png")):
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="points"):
        ev.plot_loss([], tmp_path / "x.png")


# ---------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,text,line,msg", [
    ("pairs", "a\tb\t1\na\tb\n", 2, "expected 'word1"),
    ("pairs", "# c\na\tb\tlots\n", 2, "not a number"),
    ("pairs", "a\tb\tnan\n", 1, "not finite"),
    ("pairs", "a\tb\t1\t2\n", 1, "expected 'word1"),
    ("analogies", "a b c d\n", 1, "before the first"),
    ("analogies", ": s\na b c d\na b c\n", 3, "expected 4 words"),
    ("analogies", ": s\n\na b c d e\n", 3, "expected 4 words"),
    ("analogies", ":\n", 1, "empty section"),
])
def test_bad_pair_and_analogy_files(tmp_path, kind, text, line, msg):
    name = "bad.tsv" if kind == "pairs" else "bad.txt"
    evaluate = ev.evaluate_word_pairs if kind == "pairs" else ev.evaluate_analogies
    f = write(tmp_path / name, text)
    with pytest.raises(ValueError, match=f"{name}:{line}: .*{msg}"):
        evaluate(V(["a", "b"], torch.eye(2)), f)


def test_bad_arguments(tmp_path):
    v = V(["a", "b"], torch.eye(2))
    f = write(tmp_path / "q.txt", ": s\na b a b\n")
    with pytest.raises(FileNotFoundError):
        ev.evaluate_word_pairs(v, tmp_path / "missing.tsv")
    with pytest.raises(ValueError, match="no word pairs"):
        ev.evaluate_word_pairs(v, write(tmp_path / "empty.tsv", "# only a comment\n"))
    with pytest.raises(ValueError, match="method"):
        ev.evaluate_analogies(v, f, method="3cosmax")
    with pytest.raises(ValueError, match="restrict_vocab"):
        ev.evaluate_analogies(v, f, restrict_vocab=0)
    with pytest.raises(TypeError, match=r"\.words and \.matrix"):
        ev.evaluate_analogies(object(), f)
    with pytest.raises(ValueError, match="2 words but matrix has 3 rows"):
        ev.evaluate_analogies(V(["a", "b"], torch.eye(3)), f)
    with pytest.raises(ValueError, match="2-D"):
        ev.evaluate_analogies(SimpleNamespace(words=["a"], matrix=torch.ones(1, 2, 2)), f)
    with pytest.raises(ValueError, match="floating-point"):
        ev.evaluate_analogies(SimpleNamespace(words=["a", "b"], matrix=torch.eye(2, dtype=torch.int64)), f)
    # 2 words only: after excluding a and b no candidate is left; the question is answered wrongly, not crashed
    r = ev.evaluate_analogies(v, f)
    assert (r["correct"], r["total"]) == (0, 1)


def test_accepts_gensim_keyedvectors_and_numpy(tmp_path):
    v, co, ca = planted_analogies()
    f = analogy_file(tmp_path, [("s", [(co[0], ca[0], co[1], ca[1])])])
    assert ev.evaluate_analogies(to_gensim(v), f)["correct"] == 1
    assert ev.evaluate_analogies(SimpleNamespace(words=v.words, matrix=v.matrix.double().numpy()), f)["correct"] == 1


# ---------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def loadable(monkeypatch):
    """Use embedfast.load_vectors; before the Vectors API exists, a minimal stand-in over the loader op."""
    if not hasattr(embedfast, "load_vectors"):
        def load_vectors(path):
            m, wb, wo, *_ = embedfast.ops.load_vectors_raw(path)
            raw = bytes(wb.numpy())
            return V([raw[wo[i]:wo[i + 1]].decode() for i in range(len(m))], m)

        monkeypatch.setattr(embedfast, "load_vectors", load_vectors, raising=False)


def save_w2v_text(v, path):
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{len(v.words)} {v.matrix.shape[1]}\n")
        for w, row in zip(v.words, v.matrix.tolist()):
            f.write(w + " " + " ".join(repr(x) for x in row) + "\n")
    return str(path)


def test_cli_eval_json(tmp_path, capsys, loadable):
    v, co, ca = planted_analogies()
    vec = save_w2v_text(v, tmp_path / "vec.txt")
    qs = [(co[i], ca[i], co[j], ca[j]) for i, j in itertools.permutations(range(4), 2)]
    qf = analogy_file(tmp_path, [("caps", qs + [("country0", "capital0", "country1", "nowhere")])])
    pf = write(tmp_path / "pairs.tsv", "country0\tcapital0\t9\ncountry1\tw3\t1\ncountry2\tcapital2\t8\nw1\tw2\t2\n")
    rc = cli_main(["eval", vec, "--similarity", pf, "--similarity", pf, "--analogy", qf, "--json",
                   "--method", "3cosmul", "--restrict-vocab", "40"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    want = ev.evaluate_word_pairs(v, pf, restrict_vocab=40)
    assert out["similarity"][pf]["spearman"] == pytest.approx(want["spearman"], abs=1e-6)
    a = out["analogy"]
    assert (a["correct"], a["total"], a["skipped"], a["method"]) == (12, 12, 1, "3cosmul")


def test_cli_eval_text_and_default_files(tmp_path, capsys, loadable, trained_gensim):
    _, v = trained_gensim
    vec = save_w2v_text(V(v.words[:3000], v.matrix[:3000]), tmp_path / "vec.txt")
    assert cli_main(["eval", vec, "--restrict-vocab", "3000"]) == 0
    out = capsys.readouterr().out
    for name in ("wordsim353.tsv", "simlex999.txt", "questions-words.txt", "capital-common-countries", "skipped"):
        assert name in out


def test_cli_eval_errors(tmp_path, capsys, loadable):
    vec = save_w2v_text(V(["a", "b"], torch.eye(2)), tmp_path / "vec.txt")
    assert cli_main(["eval", vec, "--analogy", str(tmp_path / "nope.txt")]) == 2
    assert "nope.txt" in capsys.readouterr().err
    bad = write(tmp_path / "bad.tsv", "a\tb\n")
    assert cli_main(["eval", vec, "--similarity", bad]) == 2
    assert "bad.tsv:1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as ei:  # an argparse error now: "--restrict-vocab: expected an integer >= 1"
        cli_main(["eval", vec, "--analogy", bad, "--restrict-vocab", "0"])
    assert ei.value.code == 2 and "--restrict-vocab" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["eval", vec, "--method", "cosine"])


def test_eval_files_fifo_refused_in_a_child(tmp_path):
    """A named pipe as a pair or analogy file used to block forever in open(); it is refused without opening."""
    import os
    import subprocess
    import sys

    fifo = str(tmp_path / "pairs")
    os.mkfifo(fifo)
    code = (f"import torch; from types import SimpleNamespace as N; from embedfast import evaluate as ev\n"
            f"v = N(words=['a', 'b'], matrix=torch.eye(2))\n"
            f"for f in (ev.read_word_pairs, ev.read_analogies):\n"
            f"    try:\n        f({fifo!r})\n    except ValueError as e:\n        print('REFUSED', e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.count("REFUSED") == 2 and "named pipe" in r.stdout, r.stderr[-2000:]


def test_non_finite_vectors_are_an_error_not_nan_scores(tmp_path):
    m = torch.eye(3)
    m[1, 0] = float("nan")
    f = write(tmp_path / "p.tsv", "a\tb\t1\na\tc\t2\nb\tc\t3\n")
    with pytest.raises(ValueError, match=r"1 row\(s\) hold NaN or inf, the first row 1 \(word 'b'\)"):
        ev.evaluate_word_pairs(V(["a", "b", "c"], m), f)
    with pytest.raises(ValueError, match="NaN or inf"):
        ev.nearest_neighbours(V(["a", "b", "c"], m), "a")


def test_non_utf8_words_in_eval_files_match_the_vocabulary(tmp_path):
    """Pair files are read with the word rule (bytes that are not UTF-8 kept as escapes), like vocabularies."""
    p = tmp_path / "latin1.tsv"
    p.write_bytes("caf\xe9\tth\xe9\t1\ncaf\xe9\tx\t2\nth\xe9\tx\t3\n".encode("latin-1"))
    words = [b.decode("utf-8", "surrogateescape") for b in (b"caf\xe9", b"th\xe9", b"x")]
    r = ev.evaluate_word_pairs(V(words, torch.randn(3, 4)), p, case_insensitive=False)
    assert r["used"] == 3 and r["oov"] == 0


def test_plot_output_checked_and_atomic(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ev.plot_loss([(0, 1.0), (1, 0.5)], tmp_path / "no" / "loss.png")
    out = tmp_path / "loss.png"
    ev.plot_loss([(0, 1.0), (1, 0.5)], out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["loss.png"]
