"""word2vec trainer (embedfast.word2vec.Word2Vec): quality, reproducibility, streaming, resume, checkpoints,
interrupts, divergence, gensim's argument names, CLI and demo step. The ops are tested in test_word2vec_ops.py."""
from __future__ import annotations

import gzip
import random

import pytest
import torch

import embedfast
from embedfast import ops
from embedfast.word2vec import Word2Vec
from embedfast.word2vec import ops as w2v_ops
from embedfast.testing import planted_corpus, recall_at_k


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
    ids, off = w.encoded_corpus()[0], w.encoded_corpus()[1]
    total = 2 * ids.numel()
    last = 0.05 - (0.05 - 0.001) * (total - int(off[-1] - off[-2])) / total
    st = ops.sgns_train(w.w_in.clone(), w.w_out.clone(), ids, off, *w.sampling_tables(), window=5, negative=5,
                        alpha=0.05,
                        min_alpha=0.001, words_done=ids.numel(), total_words=total, seed=0, chunk=1, num_threads=1)
    assert dict(zip(ops.TRAIN_STATS, st.tolist()))["last_alpha"] == pytest.approx(last, rel=1e-6)


@pytest.mark.parametrize("threads, schedule", [(1, "per-thread"), (2, "per-thread"), (3, "per-thread"),
                                               (3, "global")])
def test_learning_rate_schedule_with_threads(monkeypatch, threads, schedule):
    # what the loop gives the op for each chunk's rate, and the rate the op reports at the end of the run
    from embedfast.word2vec import loop
    sents, _ = planted_corpus(sentences=600)
    seen = []
    original = loop.train_chunk

    def spy(w2v, ids, offsets, tables, *, words_done, total_words, chunk):
        st = original(w2v, ids, offsets, tables, words_done=words_done, total_words=total_words, chunk=chunk)
        seen.append((words_done, total_words, int(offsets[-1] - offsets[0]), st["last_alpha"]))
        return st

    monkeypatch.setattr(loop, "train_chunk", spy)
    a, m, E = 0.04, 0.001, 3
    w = Word2Vec(dim=8, min_count=1, epochs=E, threads=threads, alpha=a, min_alpha=m, chunk_words=900, seed=2,
                 lr_schedule=schedule)
    w.train(sents, progress=False)
    N = w.encoded_corpus()[0].numel()
    T = threads if schedule == "per-thread" else 1
    done = 0
    for words_done, total_words, n, _ in seen:
        e, d = divmod(done, N)
        # progress (e + d / (T N)) / E at the chunk's start, and its n tokens count n / (T N) of an epoch
        assert (words_done, total_words) == (T * e * N + d, T * E * N)
        done += n
    assert done == E * N
    end = a - (a - m) * (E - 1 + 1 / T) / E  # the rate at the end of the last epoch
    last = seen[-1][3]
    assert end <= last <= end + (a - m) * 2 * seen[-1][2] / (T * E * N), (last, end)
    if T > 1:
        assert last > m + (a - m) / (2 * E)  # the run ends well above min_alpha


def test_learning_rate_schedules_agree_with_one_thread():
    sents, _ = planted_corpus(sentences=300)
    runs = [Word2Vec(dim=8, min_count=1, epochs=2, threads=1, seed=4, chunk_words=700, lr_schedule=s)
            .train(sents, progress=False) for s in ("per-thread", "global")]
    assert torch.equal(runs[0].w_in, runs[1].w_in) and torch.equal(runs[0].w_out, runs[1].w_out)


def test_rate_args_bounds():
    from types import SimpleNamespace
    from embedfast.word2vec.loop import rate_args
    w = SimpleNamespace(params=SimpleNamespace(epochs=5, lr_schedule="per-thread"), num_threads=1024,
                        w_in=torch.empty(0))
    total = 5 * (1 << 60)  # 2^62 * 1024 words would not fit int64: both are divided by the same factor
    done, tot = rate_args(w, 2, 2 * (1 << 60) + (1 << 59), total)
    assert tot < 1 << 63 and done / tot == pytest.approx((2 + 0.5 / 1024) / 5, rel=1e-12)
    w.w_in = torch.empty(0, device="meta")  # not the CPU op: one stream of chunks, the run's own position
    assert rate_args(w, 2, 123, 456) == (123, 456)
    w.w_in, w.params.lr_schedule = torch.empty(0), "global"
    assert rate_args(w, 2, 123, 456) == (123, 456)


@pytest.mark.parametrize("bad", ["linear", "", None, 1, "Per-Thread"])
def test_lr_schedule_bad(bad):
    with pytest.raises(ValueError, match="lr_schedule must be one of 'per-thread', 'global'"):
        Word2Vec(lr_schedule=bad)
    with pytest.raises(ValueError, match="huffman must be one of 'gensim', 'word2vec'"):
        Word2Vec(huffman=bad)


def test_huffman_argument_reaches_the_tree():
    """Word2Vec(huffman=...) builds its tree with that rule; the default is gensim's heap order."""
    sents = [["a", "b", "c", "d", "e", "f"]] * 3 + [["g", "h"]]  # many equal counts
    for ties in ("gensim", "word2vec"):
        w = Word2Vec(dim=4, min_count=1, hs=1, threads=1, **({} if ties == "gensim" else {"huffman": ties}))
        w.build_vocab(sents)
        got = [t.tolist() for t in w.huffman_tables()]
        assert got == [t.tolist() for t in ops.word2vec_huffman(w.counts, ties)]
    assert got != [t.tolist() for t in ops.word2vec_huffman(w.counts)]


@pytest.mark.parametrize("ranges, chunk_words", [(2, 50), (3, 7), (7, 1000), (5, 1), (64, 30)])
def test_ranged_cuts_cover_every_sentence_once(ranges, chunk_words):
    from embedfast.word2vec.chunks import ranged_cuts
    g = torch.Generator().manual_seed(ranges * 1000 + chunk_words)
    lengths = torch.randint(1, 40, (300,), generator=g)
    lengths[::37] = 400  # some sentences longer than a step
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    cuts = ranged_cuts(offsets, ranges, chunk_words)
    tokens = int(offsets[-1])
    rng_of = (offsets[:-1] * ranges // tokens).tolist()  # the range of each sentence
    seen = []
    for chunk in cuts:
        assert chunk, "an empty chunk"
        rs = [rng_of[a] for a, b in chunk]
        assert rs == sorted(set(rs))  # one piece per range, in range order
        for a, b in chunk:
            assert a < b and all(rng_of[i] == rng_of[a] for i in range(a, b))
            seen.extend(range(a, b))
    assert sorted(seen) == list(range(300))
    # each range's pieces are consecutive and in order: step x of range r follows step x - 1
    for r in set(rng_of):
        mine = [a for chunk in cuts for a, b in chunk if rng_of[a] == r]
        assert mine == sorted(mine)


def test_threads_train_ranges_of_the_epoch_side_by_side(tmp_path, monkeypatch):
    from embedfast.word2vec import loop
    from embedfast.word2vec.chunks import gather_chunk, ranged_cuts
    sents, _ = planted_corpus(sentences=900)
    path = tmp_path / "c.txt"
    path.write_text("\n".join(" ".join(x) for x in sents) + "\n")
    calls = []
    original = loop.train_chunk

    def spy(w2v, ids, offsets, tables, **kw):
        calls.append((ids[int(offsets[0]):int(offsets[-1])].clone(), (offsets - offsets[0]).clone()))
        return original(w2v, ids, offsets, tables, **kw)

    monkeypatch.setattr(loop, "train_chunk", spy)
    for corpus, cache, ranged in ((sents, None, True), (str(path), None, True), (str(path), 0, False)):
        calls.clear()
        w = Word2Vec(dim=8, min_count=1, epochs=2, threads=3, chunk_words=1000, seed=1)
        if cache is not None:
            w.cache_tokens = cache
        w.train(corpus, progress=False)
        ids, off = w.encoded_corpus()[:2]
        if ranged:  # 3 ranges side by side, every epoch the same cut
            cuts = ranged_cuts(off, 3, 1000)
            assert len(calls) == 2 * len(cuts) and w.position["ranges"] == 3
            for (got_ids, got_off), pieces in zip(calls, cuts + cuts):
                want_ids, want_off = gather_chunk(ids, off, pieces)
                assert torch.equal(got_ids, want_ids) and torch.equal(got_off, want_off)
            assert len(cuts[0]) == 3 and int(off[cuts[0][1][0]]) >= ids.numel() // 3 - 200
        else:  # a streamed file larger than cache_tokens: text order, chunk by chunk
            assert torch.equal(torch.cat([c[0] for c in calls[:len(calls) // 2]]), ids)
            assert w.position["ranges"] == 1


def test_resumed_epoch_keeps_its_cut(tmp_path, monkeypatch):
    # a checkpoint taken inside an epoch cut for 3 threads, resumed with 2: that epoch goes on with its 3 ranges
    # (every sentence once), the next one is cut for 2
    from embedfast.word2vec import loop
    from embedfast.word2vec.chunks import ranged_cuts
    sents, _ = planted_corpus(sentences=900)
    ck = str(tmp_path / "w.ckpt")
    w = Word2Vec(dim=8, min_count=1, epochs=2, threads=3, chunk_words=1000, seed=1)
    w.train(sents, progress=False, checkpoint=ck, max_words=3000)
    pos = w.position
    assert pos["epoch"] == 0 and pos["chunk_in_epoch"] > 0 and pos["ranges"] == 3
    back = Word2Vec.load_checkpoint(ck)
    back.threads = 2
    sizes = []
    original = loop.train_chunk

    def spy(w2v, ids, offsets, tables, **kw):
        sizes.append(int(offsets[-1] - offsets[0]))
        return original(w2v, ids, offsets, tables, **kw)

    monkeypatch.setattr(loop, "train_chunk", spy)
    back.train(sents, progress=False)
    assert back.done
    off = back.encoded_corpus()[1]
    N = int(off[-1])
    tok = lambda cuts: [sum(int(off[b] - off[a]) for a, b in c) for c in cuts]  # noqa: E731
    rest3, all2 = tok(ranged_cuts(off, 3, 1000))[pos["chunk_in_epoch"]:], tok(ranged_cuts(off, 2, 1000))
    assert sizes == rest3 + all2 and pos["words_done"] + sum(rest3) == N
    assert back.position == dict(epoch=2, chunk_in_epoch=0, words_done=2 * N, ranges=2)


@pytest.mark.parametrize("scale", [None, 0.5, 2.0])
def test_initialisation_range(scale):
    # w_in uniform in +-init_scale/dim (default 1.0: gensim 4's prep_vectors; 0.5: word2vec.c), w_out zeros
    sents, _ = planted_corpus(sentences=300)
    dim = 16
    kw = {} if scale is None else {"init_scale": scale}
    w = Word2Vec(dim=dim, min_count=1, seed=int(torch.randint(0, 10**6, ()).item()), **kw).build_vocab(sents)
    half = (1.0 if scale is None else scale) / dim
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
    ids, off, _ = ops.corpus_encode(path, word_bytes=w._corpus.word_bytes, word_offsets=w._corpus.word_offsets,
                                    max_sentence_length=13)
    bounds = _chunks_reference(off, w.params.chunk_words)
    chunks = list(w._corpus.epoch_chunks())
    assert len(chunks) == len(bounds) - 1 == w._corpus.n_chunks, seed
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
        if w._corpus.source.path is None:  # the iterable is joined with single spaces: fewer bytes
            stats["bytes"] = ref.corpus_stats["bytes"]
        assert stats == ref.corpus_stats
    assert runs[2]._corpus.cache is not None and runs[1]._corpus.cache is None and runs[1]._corpus.spill is None
    spill = runs[3]._corpus.spill
    assert spill is not None and spill.complete and len(spill.index) > 1
    assert runs[4]._corpus.spill.end == 4 * ref.corpus_stats["encoded_tokens"] + 8 * sum(
        n_off for _, _, n_off, _ in runs[4]._corpus.spill.index)
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
    assert u.done and u._corpus.source.tokens == u.corpus_stats["encoded_tokens"]
    assert u._pos["words_done"] == 2 * u._corpus.source.tokens
    for name, bad in (("stream_bytes", 0), ("stream_bytes", 1.5), ("cache_tokens", -1)):
        b = Word2Vec(dim=4, min_count=1, epochs=1)
        setattr(b, name, bad)
        with pytest.raises(ValueError, match=f"{name} must be an int >= ., got {bad}"):
            b.train(path, progress=False)


def test_encoded_corpus_gives_the_whole_corpus(tmp_path):
    """embedfast.word2vec.distributed reads `encoded_corpus()` (the whole corpus in memory) from a streamed
    trainer."""
    path, _ = _streamed_corpus(tmp_path, random.Random(8))
    w = Word2Vec(dim=4, min_count=2, epochs=1, threads=1, max_sentence_length=13, chunk_words=250)
    assert w.encoded_corpus() is None
    w.build_vocab(path)
    ids, off, bounds, fp = w.encoded_corpus()
    ref_ids, ref_off, _ = ops.corpus_encode(path, word_bytes=w._corpus.word_bytes, word_offsets=w._corpus.word_offsets,
                                            max_sentence_length=13)
    assert torch.equal(ids, ref_ids) and torch.equal(off, ref_off)
    assert bounds == _chunks_reference(ref_off, 250)
    assert fp == w._corpus.source.fingerprint and fp[3] == ids.numel()


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


def test_cli_train(tmp_path, capsys, monkeypatch):
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
    # --lr-schedule reaches the trainer: with 2 threads "per-thread" counts each epoch's words 1/2
    from embedfast.word2vec import loop
    totals = []
    original = loop.train_chunk

    def spy(*args, **kw):
        totals.append(kw["total_words"])
        return original(*args, **kw)

    monkeypatch.setattr(loop, "train_chunk", spy)
    for schedule in ("per-thread", "global"):
        assert main(["train", str(corpus), "-o", str(tmp_path / "g.txt"), "--dim", "8", "--min-count", "1",
                     "--epochs", "1", "--threads", "2", "--lr-schedule", schedule]) == 0
    assert totals[0] == 2 * totals[-1] and set(totals) == {totals[0], totals[-1]}
    assert "raw words" in capsys.readouterr().out


def test_cli_train_errors(tmp_path, capsys):
    from embedfast.cli import main

    assert main(["train", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "o.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
    (tmp_path / "c.txt").write_text("a b c\n")
    assert main(["train", str(tmp_path / "c.txt"), "-o", str(tmp_path / "o"), "--window", "0"]) == 2
    assert "window must be an int in [1, 1,000], got 0" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "c.txt"), "-o", str(tmp_path / "o"), "--lr-schedule", "linear"]) == 2
    assert "lr_schedule must be one of 'per-thread', 'global', got 'linear'" in capsys.readouterr().err


def test_demo_step(capsys, tmp_path):
    from embedfast.cli.demo import DemoContext, word2vec_step

    r = word2vec_step(DemoContext(quick=True, workdir=str(tmp_path)))
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
    monkeypatch.setattr(w2v_ops, "sgns_train", _interrupting_op(w2v_ops.sgns_train, at_call))
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
    real = w2v_ops.sgns_train
    calls = [0]

    def op(w_in, *a, **k):
        calls[0] += 1
        if calls[0] == 3:
            w_in[0, 0] = float("nan")
            raise ValueError("sgns_train: training diverged (score NaN at position 17)")
        return real(w_in, *a, **k)

    ckpt = str(tmp_path / "w.ckpt")
    monkeypatch.setattr(w2v_ops, "sgns_train", op)
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
    real = w2v_ops.sgns_train

    def op(w_in, *a, **k):
        st = real(w_in, *a, **k)
        w_in[3, 1] = float("inf")  # a kernel that lets inf through without a non-finite loss
        return st

    monkeypatch.setattr(w2v_ops, "sgns_train", op)
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


# ---------------------------------------------------------------------------------------------------------
# gensim's argument names, checkpoint parameters, old import paths
# ---------------------------------------------------------------------------------------------------------


def test_gensim_names_are_aliases():
    sents, _ = planted_corpus(sentences=200)
    a = Word2Vec(vector_size=12, workers=1, sg=1, min_count=1, epochs=1, seed=3).train(sents, progress=False)
    b = Word2Vec(dim=12, threads=1, min_count=1, epochs=1, seed=3).train(sents, progress=False)
    assert a.params.dim == 12 and a.threads == 1 and a.params == b.params
    assert torch.equal(a.w_in, b.w_in) and torch.equal(a.w_out, b.w_out)
    assert Word2Vec().params.dim == 100 and Word2Vec(sg=1).params.dim == 100


@pytest.mark.parametrize("kw, match", [
    (dict(dim=10, vector_size=10), "either dim or vector_size"),
    (dict(threads=2, workers=2), "either threads or workers"),
    (dict(sg=0, hs=1, backend="cuda"), r"CBOW with hierarchical softmax has no CUDA C\+\+ kernel"),
    (dict(sg=2), r"sg must be 1 \(skip-gram\) or 0 \(CBOW\), got 2"),
    (dict(sg=True), "sg must be 1"),
    (dict(vector_size=0), "dim must be an int"),
    (dict(workers=0), "threads must be an int"),
])
def test_gensim_names_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        Word2Vec(**kw)


def test_checkpoint_keeps_init_scale_and_backend(tmp_path):
    sents, _ = planted_corpus(sentences=100)
    w = Word2Vec(dim=6, min_count=1, epochs=1, threads=1, init_scale=2.0, backend="cpu").build_vocab(sents)
    ckpt = str(tmp_path / "w.ckpt")
    w.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=True)
    assert state["params"]["init_scale"] == 2.0 and state["params"]["backend"] == "cpu"
    back = Word2Vec.load_checkpoint(ckpt)
    assert back.init_scale == 2.0 and back.backend == "cpu"
    assert back.params.lr_schedule == "per-thread" and back.params.huffman == "gensim"
    # a checkpoint written before they were recorded loads with the defaults it was trained with
    for k in ("init_scale", "backend", "lr_schedule", "huffman"):
        del state["params"][k]
    torch.save(state, ckpt)
    old = Word2Vec.load_checkpoint(ckpt)
    assert old.init_scale == 0.5 and old.backend == "auto" and old.params.lr_schedule == "global"
    assert old.params.huffman == "word2vec"
    assert torch.equal(old.w_in, w.w_in)
    old.train(sents, progress=False)
    assert old.done
    state["params"]["backend"] = "gpu"
    torch.save(state, ckpt)
    with pytest.raises(ValueError, match="field 'params' is out of range.*backend must be one of"):
        Word2Vec.load_checkpoint(ckpt)


@pytest.mark.parametrize("old, new, names", [
    ("embedfast.sgns", "embedfast.word2vec", ["Word2Vec", "SkipGram", "Terminated", "keep_probabilities"]),
    ("embedfast.sgns_backend", "embedfast.word2vec.ops", ["SGNS_BACKENDS", "sgns_backend", "train_op", "loss_op"]),
    ("embedfast.distributed", "embedfast.word2vec.distributed", ["init_from_env", "shard_bounds",
                                                                  "train_distributed"]),
])
def test_old_import_paths_warn_and_alias(old, new, names):
    import importlib
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated.*import {new} instead"):
        mod = importlib.import_module(old)
    target = importlib.import_module(new)
    for n in names:
        assert getattr(mod, n) is getattr(target, n)

