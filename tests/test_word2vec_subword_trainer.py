"""``Word2Vec(minn=..., maxn=..., buckets=...)``: sub-word skip-gram end to end -- planted structure (words sharing
a stem end up near each other; unseen inflections get a vector near their stem), the fastText ``.bin`` round trip
into ``fasttext.load_model``, checkpoints and resume, the CLI, and bad arguments."""
from __future__ import annotations

import random

import pytest
import torch

import embedfast
from embedfast.word2vec import Word2Vec

SUFFIXES = ["", "s", "ed", "ing", "er"]
LETTERS = "abcdefghiklmnoprstuvwyzéöжд"


def stem_corpus(seed: int, groups: int = 40, sentences: int = 2500, length: int = 9):
    """Groups of inflections of one random stem (one form per group held out of the corpus) and a context word
    set per group; each sentence uses one group's words only. Returns (sentences, forms per group, held-out
    forms)."""
    rng = random.Random(seed)
    stems: set[str] = set()
    while len(stems) < groups:
        stems.add("".join(rng.choice(LETTERS) for _ in range(rng.randint(5, 7))))
    stems_l = sorted(stems)
    held = {g: rng.choice(SUFFIXES[1:]) for g in range(groups)}
    forms = [[s + suf for suf in SUFFIXES if suf != held[g]] for g, s in enumerate(stems_l)]
    ctx = [[f"c{g}x{i}" for i in range(3)] for g in range(groups)]
    out = []
    for _ in range(sentences):
        g = rng.randrange(groups)
        out.append([rng.choice(forms[g] if rng.random() < 0.6 else ctx[g]) for _ in range(length)])
    return out, forms, [stems_l[g] + held[g] for g in range(groups)]


def small_model(**kw) -> Word2Vec:
    args = dict(dim=24, window=3, negative=4, min_count=1, epochs=4, threads=1, seed=5, sample=0, minn=3, maxn=5,
                buckets=5003)
    args.update(kw)
    return Word2Vec(**args)


def test_planted_stems_and_unseen_inflections():
    seed = random.randrange(1 << 30)
    sents, forms, held = stem_corpus(seed)
    w2v = small_model()
    w2v.train(sents, progress=False)
    v = w2v.vectors
    group_of = {w: g for g, fs in enumerate(forms) for w in fs}
    x = torch.nn.functional.normalize(v.matrix, dim=1)
    rows = [v.key_to_index[w] for w in group_of]
    sims = x[rows] @ x.t()
    sims[torch.arange(len(rows)), torch.tensor(rows)] = -2
    top = sims.topk(3, dim=1).indices.tolist()
    words = v.words
    hits = sum(sum(group_of.get(words[j]) == group_of[w] for j in t) for w, t in zip(group_of, top))
    assert hits / (3 * len(rows)) > 0.8, f"seed {seed}: stem recall@3 {hits / (3 * len(rows)):.2f}"
    # a held-out inflection (never in the corpus) gets its vector from its n-grams: nearest its own stem's forms
    assert all(w not in v.key_to_index for w in held)
    u = torch.nn.functional.normalize(v.vectors_for(held), dim=1)
    form_rows = torch.tensor(rows)
    best = (u @ x[form_rows].t()).argmax(1).tolist()
    right = sum(group_of[words[rows[b]]] == g for g, b in enumerate(best))
    assert right / len(held) >= 0.8, f"seed {seed}: {right}/{len(held)} unseen inflections nearest their stem"
    # plain word2vec on the same corpus has no vector for them
    plain = Word2Vec(dim=24, window=3, negative=4, min_count=1, epochs=1, threads=1, sample=0).train(
        sents, progress=False).vectors
    with pytest.raises(KeyError):
        plain.vectors_for(held[:1])


def _cos(a, b) -> float:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float(a @ b / (a.norm() * b.norm()).clamp_min(1e-300))


def test_fasttext_bin_round_trip(tmp_path):
    fasttext = pytest.importorskip("fasttext")
    sents, forms, held = stem_corpus(3, groups=12, sentences=400)
    sents.append(["naïve", "straße", "жизнь", "字字"] * 2)
    w2v = small_model(epochs=2, buckets=997)
    w2v.train(sents, progress=False)
    path = str(tmp_path / "model.bin")
    w2v.save(path, format="fasttext-bin")
    m = fasttext.load_model(path)
    v = w2v.vectors
    assert m.get_dimension() == 24 and len(m.words) == len(v.words)
    assert m.f.getArgs().minn == 3 and m.f.getArgs().maxn == 5 and m.f.getArgs().bucket == 997
    for w in v.words[:50] + ["naïve", "жизнь", "字字"]:
        assert _cos(v[w], m.get_word_vector(w)) > 0.99999, w
    unseen = held + ["naïver", "жизни", "zzzz"]
    ours = v.vectors_for(unseen)
    for w, row in zip(unseen, ours):
        assert _cos(row, m.get_word_vector(w)) > 0.99999, w
    back = embedfast.load_vectors(path)
    torch.testing.assert_close(back.vectors_for(unseen), ours, atol=1e-6, rtol=0)


def test_checkpoint_resume_is_exact(tmp_path):
    sents, _, _ = stem_corpus(1, groups=8, sentences=300)
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(s) for s in sents) + "\n", encoding="utf-8")
    full = small_model(chunk_words=500, buckets=101).train(str(corpus), progress=False)
    part = small_model(chunk_words=500, buckets=101)
    ck = str(tmp_path / "ck.pt")
    part.train(str(corpus), progress=False, max_words=2000, checkpoint=ck)
    assert not part.done
    resumed = Word2Vec.load_checkpoint(ck)
    assert resumed.params.minn == 3 and resumed.w_ngram.shape == (101, 24)
    resumed.train(str(corpus), progress=False)
    for name in ("w_in", "w_out", "w_ngram"):
        assert torch.equal(getattr(resumed, name), getattr(full, name)), name
    state = torch.load(ck, weights_only=True)
    state["w_ngram"] = state["w_ngram"][:50]
    torch.save(state, ck)
    with pytest.raises(ValueError, match=r"field 'w_ngram' has shape \(50, 24\), expected \(101, 24\)"):
        Word2Vec.load_checkpoint(ck)


def test_cli_train_fasttext_bin(tmp_path, capsys):
    from embedfast.cli import main

    sents, _, _ = stem_corpus(2, groups=6, sentences=200)
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(s) for s in sents) + "\n", encoding="utf-8")
    out = str(tmp_path / "m.bin")
    assert main(["train", str(corpus), "-o", out, "--format", "fasttext-bin", "--minn", "3", "--maxn", "6",
                 "--buckets", "1000", "--dim", "16", "--epochs", "1", "--min-count", "1", "--threads", "1"]) == 0
    v = embedfast.load_vectors(out)
    assert v.subwords is not None and v.subwords.bucket == 1000 and (v.subwords.minn, v.subwords.maxn) == (3, 6)
    assert v.vectors_for(["neverseenword"]).abs().sum() > 0
    capsys.readouterr()
    assert main(["train", str(corpus), "-o", out, "--minn", "4", "--maxn", "2"]) != 0
    assert "0 < minn <= maxn" in capsys.readouterr().err


@pytest.mark.parametrize("kw,exc,msg", [
    (dict(minn=4, maxn=3), ValueError, "0 < minn <= maxn"),
    (dict(minn=0, maxn=3), ValueError, "0 < minn <= maxn"),
    (dict(minn=-1, maxn=3), ValueError, "minn must be an int"),
    (dict(minn=3, maxn=6, buckets=0), ValueError, "buckets must be an int"),
    (dict(minn=3, maxn=6, buckets=2 ** 31), ValueError, "buckets must be an int"),
    (dict(minn=3.0, maxn=6), ValueError, "minn must be an int"),
    (dict(minn=3, maxn=6, sg=0), NotImplementedError, "sg=0"),
    (dict(minn=3, maxn=6, hs=1), NotImplementedError, "hs=1"),
    (dict(minn=3, maxn=6, backend="cuda"), NotImplementedError, "no CUDA C.. kernel"),
    (dict(minn=3, maxn=6, device="meta"), NotImplementedError, "only its Triton kernel.*backend='triton'"),
])
def test_bad_subword_arguments(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        Word2Vec(**kw)


def test_subword_defaults_and_refusals():
    assert Word2Vec(minn=3, maxn=6).params.alpha == 0.05 and Word2Vec().params.alpha == 0.025
    assert Word2Vec(minn=3, maxn=6, alpha=0.01).params.alpha == 0.01
    w2v = small_model(epochs=1, buckets=11).train([["ab", "cd", "ab"]] * 5, progress=False)
    with pytest.raises(ValueError, match="sub-word model"):
        w2v.skipgram()
    assert w2v.vectors.subwords.bucket == 11
