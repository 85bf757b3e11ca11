"""fastText models (.bin): the loader and the sub-word rule against the real ``fasttext`` package.

A tiny skip-gram model is trained with fastText itself on the embedded corpus (dim 10, 1 epoch: seconds), then:
loading equals ``get_words`` / ``get_input_matrix`` / ``get_output_matrix`` (poisoned outputs: every element
written); the vectors of seen and unseen words equal ``get_word_vector`` (non-ASCII words included); the n-gram
buckets equal ``get_subwords`` and a plain reference on random bytes (fresh seeds); our ``.bin`` writer's file
is byte for byte fastText's and ``fasttext.load_model`` reads it; ``to_embedding``, ``most_similar`` and the
fusion module with sub-words; the op's opcheck and torch.compile. Bad files: tests/faults/test_files_fasttext.py.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import embedfast
from embedfast import MultiSourceEmbedding, Vectors, load_vectors
from embedfast.vectors.ops import fasttext_ngram_buckets
from embedfast.vectors.subwords import Subwords
from embedfast._vocab import encode_words

from tests.fasttext_util import ref_buckets, trained_model

fasttext = pytest.importorskip("fasttext")

UNSEEN = ["misspeled", "unbelievablest", "café", "naïve", "émigré", "日本語", "Ünïcödé", "x😀y", "a", "zz",
          "Q", "ab-cd_ef", "antidisestablishmentarianism", "ßtraße", "\u0301combining", "</s>x", "<b>"]


@pytest.fixture(scope="module")
def model_path():
    return trained_model()


@pytest.fixture(scope="module")
def ft(model_path):
    return fasttext.load_model(model_path)


@pytest.fixture(scope="module")
def vec(model_path):
    return load_vectors(model_path)


def _cos(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    return (a * b).sum(-1) / np.maximum(na * nb, 1e-300)


def test_load_equals_fasttext(model_path, ft, poisoned):
    v = load_vectors(model_path, output_matrix=True)
    assert v.report.format == "fasttext-bin"
    words, freqs = ft.get_words(include_freq=True)
    assert v.words == list(words)
    sw = v.subwords
    assert sw.counts.tolist() == list(freqs)
    assert (sw.minn, sw.maxn, sw.bucket) == (3, 6, 20_000)
    inp = torch.cat([sw.word_rows, sw.ngrams]).numpy()
    assert np.array_equal(inp, ft.get_input_matrix())
    assert np.array_equal(sw.output.numpy(), ft.get_output_matrix())
    assert v.report.model["model"] == "skipgram" and v.report.model["nwords"] == len(words)
    assert "fastText skipgram" in v.report.summary()


def test_word_vectors_equal_fasttext(vec, ft):
    # every dictionary word: the composed matrix is fastText's get_word_vector
    ref = np.stack([ft.get_word_vector(w) for w in vec.words])
    got = vec.matrix.numpy()
    assert _cos(got, ref).min() > 0.99999
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    for w in vec.words[:5] + UNSEEN:
        r = ft.get_word_vector(w)
        g = vec[w].numpy()
        if not np.any(r):
            assert not np.any(g), w
        else:
            assert _cos(g, r) > 0.99999, w
            np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)
    batch = vec.vectors_for(UNSEEN + vec.words[:3])
    one = torch.stack([vec[w] for w in UNSEEN + vec.words[:3]])
    assert torch.allclose(batch, one, rtol=1e-6, atol=1e-7)
    assert torch.equal(vec[["café", vec.words[1]]], vec.vectors_for(["café", vec.words[1]]))
    assert "café" not in vec  # `in` is the dictionary


def test_subwords_equal_fasttext_get_subwords(vec, ft):
    nwords = len(vec)
    for w in UNSEEN + vec.words[1:6]:
        _, ids = ft.get_subwords(w)
        ids = list(ids)
        if w in vec:  # fastText lists the word's own row first
            assert ids[0] == vec.index(w)
            ids = ids[1:]
        assert (vec.subwords.ngram_rows(w) + nwords).tolist() == ids, w


def test_ngram_rule_random_bytes_vs_reference():
    seed = int(np.random.SeedSequence().entropy % 2**32)
    g = np.random.default_rng(seed)
    alphabet = [b"a", b"\xc3\xa9", b"\xe6\x97\xa5", b"\xf0\x9f\x98\x80", b"\x80", b"\xff", b"<", b">", b"-"]
    words = [b"".join(g.choice(alphabet, size=int(g.integers(0, 9)))) for _ in range(300)] + [b"</s>", b""]
    for minn, maxn, bucket in ((3, 6, 20_000), (1, 2, 7), (0, 3, 1), (4, 3, 100), (2, 0, 50), (1, 40, 2**31 - 1),
                               (3, 6, 0)):
        raw = b"".join(words)
        off = np.zeros(len(words) + 1, np.int64)
        np.cumsum([len(w) for w in words], out=off[1:])
        o, b = fasttext_ngram_buckets(torch.frombuffer(bytearray(raw), dtype=torch.uint8), torch.from_numpy(off),
                                      minn, maxn, bucket)
        got = [b[o[i]:o[i + 1]].tolist() for i in range(len(words))]
        want = [ref_buckets(w, minn, maxn, bucket) for w in words]
        assert got == want, f"seed {seed}, minn={minn} maxn={maxn} bucket={bucket}"


def test_ngram_op_opcheck_and_compile():
    wb, wo = encode_words(["café", "x", "日本語", "</s>"])
    torch.library.opcheck(torch.ops.embedfast.fasttext_ngram_buckets.default, (wb, wo, 3, 6, 1000),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))

    def f(wb, wo):
        o, b = torch.ops.embedfast.fasttext_ngram_buckets(wb, wo, 3, 6, 1000)
        return o.sum() + b.sum()

    torch._dynamo.reset()
    with torch._dynamo.config.patch(capture_dynamic_output_shape_ops=True):
        assert torch.compile(f, fullgraph=True)(wb, wo) == f(wb, wo)


def test_ngram_op_bad_arguments():
    wb, wo = encode_words(["ab"])
    with pytest.raises(ValueError, match="fasttext_ngram_buckets: minn must be >= 0"):
        fasttext_ngram_buckets(wb, wo, -1, 6, 10)
    with pytest.raises(ValueError, match="buckets must be from 0 to 2\\^31-1"):
        fasttext_ngram_buckets(wb, wo, 3, 6, 2**31)
    with pytest.raises(ValueError, match="word_offsets\\[1\\] = 9 must be"):
        fasttext_ngram_buckets(wb, torch.tensor([0, 9]), 3, 6, 10)
    with pytest.raises(ValueError, match="'word_bytes' must have dtype"):
        fasttext_ngram_buckets(wb.to(torch.int32), wo, 3, 6, 10)


def test_roundtrip_byte_identical_and_fasttext_reads_it(model_path, ft, tmp_path):
    v = load_vectors(model_path, output_matrix=True)
    out = str(tmp_path / "again.bin")
    v.save(out, format="fasttext-bin")
    with open(model_path, "rb") as a, open(out, "rb") as b:
        assert a.read() == b.read()
    # without the output matrix, and a limit: fastText reads it, same vectors for kept and unseen words
    small = load_vectors(model_path, limit=40)
    assert len(small) == 40 and small.report.model["output_read"] is False
    out2 = str(tmp_path / "small.bin")
    small.save(out2, format="fasttext-bin")
    ft2 = fasttext.load_model(out2)
    assert list(ft2.get_words()) == v.words[:40]
    for w in v.words[:40:7] + UNSEEN[:6]:
        assert _cos(ft2.get_word_vector(w), ft.get_word_vector(w)) > 0.99999 or not np.any(ft.get_word_vector(w))
    assert np.array_equal(ft2.get_input_matrix()[40:], ft.get_input_matrix()[len(v):])
    assert not np.any(ft2.get_output_matrix())


def test_vocab_limit_dtype(model_path, vec):
    want = [vec.words[5], vec.words[2], "café"]
    v = load_vectors(model_path, vocab=want, dtype=torch.float64)
    assert v.words == [vec.words[2], vec.words[5]] and v.report.vocab_missing == ["café"]
    assert v.matrix.dtype == torch.float64 and v.subwords.ngrams.dtype == torch.float64
    assert torch.allclose(v["café"], vec["café"].double(), atol=1e-6)
    assert torch.allclose(v[vec.words[5]], vec[vec.words[5]].double(), atol=1e-6)
    assert torch.equal(load_vectors(model_path, limit=0).subwords.ngrams, vec.subwords.ngrams)


def test_plain_vectors_and_maxn0_roundtrip(tmp_path, vec):
    # a Vectors without sub-words saved as .bin: fastText sees a model with no n-grams
    g = torch.Generator().manual_seed(int(np.random.SeedSequence().entropy % 2**31))
    words = ["the", "cat", "café", "日本"]
    m = torch.randn(4, 5, generator=g)
    path = str(tmp_path / "plain.bin")
    Vectors(words, m).save(path, format="fasttext-bin")
    ft = fasttext.load_model(path)
    assert list(ft.get_words()) == words
    assert np.allclose(ft.get_word_vector("cat"), m[1].numpy()) and not np.any(ft.get_word_vector("dog"))
    back = load_vectors(path)
    assert not back.subwords.has_ngrams and torch.equal(back.matrix, m) and not back["dog"].any()
    # maxn=0 with buckets: fastText gives in-vocabulary words their own row, unseen words zeros
    sw = Subwords(ngrams=torch.randn(11, 5, generator=g), word_rows=m.clone(), minn=3, maxn=0)
    p0 = str(tmp_path / "maxn0.bin")
    Vectors(words, m, subwords=sw).save(p0, format="fasttext-bin")
    ft0 = fasttext.load_model(p0)
    v0 = load_vectors(p0)
    for w in words + ["dog", "cats"]:
        assert np.allclose(v0[w].numpy(), ft0.get_word_vector(w), atol=1e-7), w


def test_supervised_labels_as_fasttext(tmp_path):
    path = trained_model(model="supervised", dim=6, epoch=1, minCount=1, minn=2, maxn=4, bucket=5000,
                         wordNgrams=1, loss="softmax")
    ft = fasttext.load_model(path)
    v = load_vectors(path)
    assert v.subwords.labels == list(ft.get_labels()) and v.report.model["model"] == "supervised"
    for w in list(ft.get_labels()) + v.words[:3] + ["unseenword"]:
        assert _cos(v[w].numpy(), ft.get_word_vector(w)) > 0.99999, w


def test_to_embedding_subwords_default(vec):
    vocab = ["<pad>", vec.words[3], "café", "misspeled", vec.words[7]]
    emb = vec.to_embedding(vocab)
    assert emb.coverage.found == 2 and emb.coverage.found_subwords == 2 and emb.coverage.missing == 0
    for i, w in enumerate(vocab[1:], 1):
        assert torch.allclose(emb.weight[i], vec[w])
    assert not emb.weight[0].any()
    rnd = vec.to_embedding(vocab, oov="normal", generator=torch.Generator().manual_seed(0))
    assert rnd.coverage.found_subwords == 0 and not torch.allclose(rnd.weight[2], vec["café"])
    plain = Vectors(vec.words[:10], vec.matrix[:10])
    with pytest.raises(ValueError, match="oov='subwords' needs vectors with sub-words"):
        plain.to_embedding(vocab, oov="subwords")
    assert plain.to_embedding(vocab).coverage.found_subwords == 0


def test_most_similar_unseen_word(vec, ft):
    q = "misspeled"
    got = vec.most_similar(q, topn=5)
    n = vec.normed()
    want = torch.topk(n @ torch.nn.functional.normalize(vec[q], dim=0), 5)
    assert [w for w, _ in got] == [vec.words[i] for i in want.indices.tolist()]
    ref = ft.get_nearest_neighbors(q, k=5)
    assert np.allclose([s for s, _ in ref], [s for _, s in got], atol=1e-5)
    assert vec.similarity(q, "café") == pytest.approx(float(_cos(ft.get_word_vector(q), ft.get_word_vector("café"))),
                                                     abs=1e-5)


def test_fusion_from_subwords_forward_and_gradients(vec):
    vocab = [vec.words[4], "café", "misspeled", vec.words[9], "</s>"]
    m = MultiSourceEmbedding.from_subwords(vocab, vec)
    assert m.names == ["words", "ngrams"]
    y = m(torch.arange(len(vocab)))
    assert torch.allclose(y, vec.vectors_for(vocab), rtol=1e-5, atol=1e-6)
    t = MultiSourceEmbedding.from_subwords(vocab, vec, freeze_tables=False)
    ids = torch.tensor([1, 0])
    gy = torch.randn(2, vec.dim, dtype=torch.float64).float()
    (t(ids) * gy).sum().backward()
    g_ngrams = t.table_1.grad
    # reference gradient: each bag row gets grad / bag size
    ref = torch.zeros_like(vec.subwords.ngrams)
    ref_w = torch.zeros_like(vec.subwords.word_rows)
    for k, w in enumerate(["café", vocab[0]]):
        rows = vec.subwords.ngram_rows(w)
        size = rows.numel() + (w in vec)
        ref.index_add_(0, rows, gy[k].expand(rows.numel(), -1) / size)
        if w in vec:
            ref_w[vec.index(w)] += gy[k] / size
    assert torch.allclose(g_ngrams, ref, atol=1e-6) and torch.allclose(t.table_0.grad, ref_w, atol=1e-6)
    assert int((g_ngrams.abs().sum(1) > 0).sum()) > 5


def test_fusion_gradcheck_double():
    g = torch.Generator().manual_seed(int(np.random.SeedSequence().entropy % 2**31))
    sw = Subwords(ngrams=torch.randn(13, 3, generator=g, dtype=torch.float64),
                  word_rows=torch.randn(2, 3, generator=g, dtype=torch.float64), minn=2, maxn=3)
    v = Vectors(["ab", "cd"], sw.word_rows.clone(), subwords=sw)
    m = MultiSourceEmbedding.from_subwords(["ab", "xyz", "cd"], v, freeze_tables=False)
    tabs = [m.table_0, m.table_1]

    def f(t0, t1):
        from embedfast.ops import gather_bags
        return gather_bags([t0, t1], m.fixed_weights, m.bag_offsets, m.entry_source, m.entry_row, m.entry_weight,
                           torch.tensor([0, 1, 2, 1]), renormalize=False)

    assert torch.autograd.gradcheck(f, [t.detach().clone().requires_grad_() for t in tabs])


def test_composed_word_vectors_do_not_overflow_near_the_float_range():
    """Word vectors of a dictionary are the mean of rows that may each be near float32's limit (a fuzz finding:
    a long word over a few huge n-gram rows): the mean is finite and equal to a float64 reference, where
    summing before scaling overflows to -inf."""
    from embedfast.vectors.subwords import compose_words

    words = ["the", "a", "\x18" * 56 + "caf\u00e9"]
    ngrams = torch.full((7, 2), -3.0e38)
    ngrams[:, 0] = torch.linspace(-1, 1, 7)
    word_rows = torch.tensor([[0.4, -0.1], [0.9, 0.8], [0.5, -3.0e38]])
    sw = Subwords(ngrams=ngrams, word_rows=word_rows, minn=3, maxn=6, counts=torch.ones(3, dtype=torch.int64),
                  labels=[], label_counts=torch.zeros(0, dtype=torch.int64), label_base=3, args={}, output=None)
    wb, wo = encode_words(words)
    got = compose_words(sw, wb, wo)
    off, bk = sw.ngram_buckets(words)
    want = torch.stack([(word_rows[i].double() + ngrams[bk[off[i]:off[i + 1]].long()].double().sum(0))
                        / (1 + int(off[i + 1] - off[i])) for i in range(3)])
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=0)
