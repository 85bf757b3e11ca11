"""Files a user hands the trainer: corpora (named pipes, folders, corrupt gzip, non-UTF-8 bytes, odd contents) and
checkpoints (empty, truncated, foreign, crafted), to Word2Vec and to `embedfast train`. Where the failure could be a
hang or a signal the case runs in a child process with a timeout."""
from __future__ import annotations

import gzip
import os
import textwrap

import pytest
import torch

from embedfast import Word2Vec
from embedfast.testing import planted_corpus

from .util import assert_clean_failure, assert_no_signal, run_cli, run_python

KW = dict(dim=4, min_count=1, epochs=1, threads=1, seed=1)


def _write(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


# ---- non-regular inputs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["Word2Vec().train(p)", "Word2Vec().build_vocab(p)",
                                  "Word2Vec.load_checkpoint(p)"])
def test_fifo_without_writer_is_refused_not_waited_on(tmp_path, call):
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)
    code = textwrap.dedent(f"""
        from embedfast import Word2Vec
        p = {fifo!r}
        try:
            {call}
        except ValueError as e:
            print("REFUSED", e)
    """)
    r = run_python(code, timeout=60)
    assert_no_signal(r)
    assert r.returncode == 0 and "REFUSED" in r.stdout and "named pipe" in r.stdout and fifo in r.stdout, r.describe()


def test_cli_train_fifo_and_directory(tmp_path):
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)
    r = run_cli("train", fifo, "-o", str(tmp_path / "v.txt"), timeout=60)
    assert_clean_failure(r, "named pipe", fifo, returncode=2)
    r = run_cli("train", str(tmp_path), "-o", str(tmp_path / "v.txt"), timeout=60)
    assert_clean_failure(r, "is a directory", returncode=2)
    assert not (tmp_path / "v.txt").exists()


def test_directory_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        Word2Vec(**KW).train(str(tmp_path), progress=False)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        Word2Vec(**KW).build_vocab(str(tmp_path / "nope.txt"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_unreadable_corpus(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("a b c\n")
    p.chmod(0)
    with pytest.raises(PermissionError, match="c.txt"):
        Word2Vec(**KW).train(str(p), progress=False)


# ---- corrupt gzip ----------------------------------------------------------------------------------------------


def _gz_variants(tmp_path):
    good = gzip.compress(b"a b c\nb c a\n" * 2000)
    bad_crc = bytearray(good)
    bad_crc[-6] ^= 0xFF  # CRC32 in the trailer
    bad_data = bytearray(good)
    bad_data[40] ^= 0xFF  # inside the deflate stream
    return {
        "truncated": good[: len(good) // 2],
        "header only": good[:10],
        "bad crc": bytes(bad_crc),
        "bad deflate": bytes(bad_data),
        "garbage": b"\x1f\x8b\x08\x00garbage",
        "magic only": b"\x1f\x8b",
    }


@pytest.mark.parametrize("kind", ["truncated", "header only", "bad crc", "bad deflate", "garbage", "magic only"])
def test_corrupt_gzip_names_the_file(tmp_path, kind):
    p = _write(tmp_path / "c.txt.gz", _gz_variants(tmp_path)[kind])
    with pytest.raises(ValueError, match=r"corpus '.*c\.txt\.gz': cannot decompress gzip"):
        Word2Vec(**KW).build_vocab(p)


def test_cli_corrupt_gzip_is_one_line(tmp_path):
    p = _write(tmp_path / "c.txt.gz", _gz_variants(tmp_path)["bad deflate"])
    r = run_cli("train", p, "-o", str(tmp_path / "v.txt"), "--min-count", "1", timeout=120)
    assert_clean_failure(r, "c.txt.gz", "cannot decompress gzip", returncode=2)
    assert len([x for x in r.stderr.splitlines() if x.strip()]) == 1, r.describe()


# ---- non-UTF-8 bytes ------------------------------------------------------------------------------------------


LATIN1 = "café cafè cafê café\ncafè café x\n".encode("latin-1")


def test_latin1_words_stay_distinct_and_are_counted(tmp_path):
    p = _write(tmp_path / "latin1.txt", LATIN1)
    w = Word2Vec(**KW).train(p, progress=False)
    assert sorted(w.words) == sorted(["caf\udce9", "caf\udce8", "caf\udcea", "x"])
    assert w.vocab_stats["non_utf8_words"] == 3
    # by count; cafê and x (1 each): the one first seen later first (gensim's order)
    assert [x.encode("utf-8", "surrogateescape") for x in w.words] == [b"caf\xe9", b"caf\xe8", b"x", b"caf\xea"]
    # a clean UTF-8 corpus counts none
    q = _write(tmp_path / "utf8.txt", "café cafè\n".encode())
    assert Word2Vec(**KW).train(q, progress=False).vocab_stats["non_utf8_words"] == 0


def test_latin1_vectors_save_back_byte_exact(tmp_path):
    p = _write(tmp_path / "latin1.txt", LATIN1)
    w = Word2Vec(**KW).train(p, progress=False)
    out = tmp_path / "v.txt"
    w.save(str(out), format="word2vec")
    raw = out.read_bytes()
    words = [line.split(b" ")[0] for line in raw.splitlines()[1:]]
    assert sorted(words) == sorted([b"caf\xe9", b"caf\xe8", b"caf\xea", b"x"])


def test_token_list_with_escaped_words_encodes_to_the_same_bytes(tmp_path):
    """Words read from a non-UTF-8 file (surrogate escapes) given back as token lists are the same bytes: the
    same vocabulary as training on the file."""
    p = _write(tmp_path / "latin1.txt", LATIN1)
    from_file = Word2Vec(**KW).train(p, progress=False)
    sents = [line.decode("utf-8", "surrogateescape").split() for line in LATIN1.splitlines()]
    from_list = Word2Vec(**KW).train(sents, progress=False)
    assert from_list.words == from_file.words
    assert bytes(from_list._corpus.word_bytes.numpy()) == bytes(from_file._corpus.word_bytes.numpy())
    assert torch.equal(from_list.w_in, from_file.w_in)
    with pytest.raises(ValueError, match="lone surrogate"):
        Word2Vec(**KW).build_vocab([["ok", "bad\ud800"]])


def test_cli_train_reports_non_utf8_words(tmp_path):
    p = _write(tmp_path / "latin1.txt", LATIN1)
    out = tmp_path / "v.txt"
    r = run_cli("train", p, "-o", str(out), "--min-count", "1", "--dim", "4", "--epochs", "1", "--threads", "1")
    assert r.returncode == 0, r.describe()
    assert "non-UTF-8: 3 vocabulary words" in r.stdout, r.describe()
    assert b"caf\xe9 " in out.read_bytes()


# ---- odd corpora ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data,match", [
    (b"", "is empty"),
    (b"  \t \r\n \x0b\x0c\n\n", "is empty"),
])
def test_empty_corpora(tmp_path, data, match):
    with pytest.raises(ValueError, match=match):
        Word2Vec(**KW).train(_write(tmp_path / "c.txt", data), progress=False)


def test_min_count_above_every_count_and_all_oov(tmp_path):
    p = _write(tmp_path / "c.txt", b"a b c\n")
    with pytest.raises(ValueError, match="fewer than min_count=100"):
        Word2Vec(dim=4, min_count=100).train(p, progress=False)
    w = Word2Vec(**KW).build_vocab(p)
    with pytest.raises(ValueError, match="no word of the vocabulary"):
        w.train(_write(tmp_path / "oov.txt", b"x y z\n"), progress=False)


def test_crlf_nul_and_huge_lines_train(tmp_path):
    crlf = Word2Vec(**KW).train(_write(tmp_path / "crlf.txt", b"a b c\r\nb c a\r\n"), progress=False)
    assert sorted(crlf.words) == ["a", "b", "c"]  # \r is whitespace, not part of a word
    nul = Word2Vec(**KW).train(_write(tmp_path / "nul.txt", b"a\x00b c\nc a\x00b\n"), progress=False)
    assert sorted(nul.words) == ["a\x00b", "c"]  # NUL is a byte of the word, kept
    huge = Word2Vec(**KW).train(_write(tmp_path / "huge.txt", b"a b c " * 100_000 + b"\n"), progress=False)
    assert huge.corpus_stats["split_lines"] == 1 and huge.corpus_stats["encoded_tokens"] == 300_000
    one = Word2Vec(**KW).train(_write(tmp_path / "one.txt", b"hello\n"), progress=False)
    assert one.words == ["hello"] and bool(torch.isfinite(one.w_in).all())


def test_bad_corpus_objects():
    with pytest.raises(TypeError, match="iterable of token lists"):
        Word2Vec(**KW).train(5, progress=False)
    with pytest.raises(TypeError, match="tokens must be str"):
        Word2Vec(**KW).train([["a", 3]], progress=False)
    with pytest.raises(TypeError, match="Tensor"):
        Word2Vec(**KW).train(torch.zeros(3), progress=False)


# ---- divergence ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def diverging_corpus(tmp_path_factory):
    """The first 20,000 lines of the embedded WordNet glosses: alpha=0.9 diverges in its first chunks."""
    from embedfast.data import __file__ as data_init

    src = os.path.join(os.path.dirname(data_init), "wordnet_glosses.txt.gz")
    with gzip.open(src, "rb") as f:
        lines = f.read().split(b"\n")[:20000]
    p = tmp_path_factory.mktemp("div") / "wn.txt"
    p.write_bytes(b"\n".join(lines) + b"\n")
    return str(p)


def test_divergence_is_a_clear_error_and_the_checkpoint_stays_good(tmp_path, diverging_corpus):
    """exact_sigmoid lets NaN scores through the kernel (no table lookup): the trainer catches them per chunk."""
    ckpt = str(tmp_path / "w.ckpt")
    w = Word2Vec(dim=32, alpha=0.9, epochs=1, threads=1, min_count=2, chunk_words=1000, exact_sigmoid=True)
    with pytest.raises(ValueError, match=r"training diverged in epoch 1 of 1, chunk \d+.* words done at learning "
                                         r"rate alpha=0\.9.*lower alpha"):
        w.train(diverging_corpus, progress=False, checkpoint=ckpt, checkpoint_every=0)
    back = Word2Vec.load_checkpoint(ckpt)  # the last good state: finite, before the diverged chunk
    assert bool(torch.isfinite(back.w_in).all()) and bool(torch.isfinite(back.w_out).all())
    assert 0 < back._pos["chunk_in_epoch"] and back._pos["words_done"] > 0
    for use in (lambda: w.vectors, lambda: w.save(str(tmp_path / "v.txt")), lambda: w.save_checkpoint(ckpt),
                lambda: w.train(progress=False)):
        with pytest.raises(ValueError, match="diverged"):
            use()
    assert not (tmp_path / "v.txt").exists()
    assert [f for f in os.listdir(tmp_path) if f != "w.ckpt"] == []


@pytest.mark.parametrize("alpha", ["0.9", "0.5"])
def test_cli_divergence_is_one_line_not_a_signal(tmp_path, diverging_corpus, alpha):
    """NEEDS the C++ branch trust-sgns (sgns_train raises on NaN/inf scores instead of indexing out of the
    sigmoid table): before it, this segfaults."""
    out = tmp_path / "x.txt"
    r = run_cli("train", diverging_corpus, "-o", str(out), "--alpha", alpha, "--epochs", "1", "--dim", "32",
                "--threads", "1", "--min-count", "2", timeout=300)
    assert_no_signal(r)
    if r.returncode == 0:  # alpha 0.5 may train through on this corpus: then the result must be finite
        import embedfast

        assert bool(torch.isfinite(embedfast.load_vectors(str(out)).matrix).all())
        return
    assert_clean_failure(r, "training diverged", f"alpha={alpha}", "lower alpha", returncode=2)
    assert len([x for x in r.stderr.splitlines() if x.startswith("embedfast train:")]) == 1
    assert not out.exists()


# ---- checkpoints ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    sents, _ = planted_corpus(sentences=200)
    d = tmp_path_factory.mktemp("ck")
    corpus = d / "c.txt"
    corpus.write_text("\n".join(" ".join(s) for s in sents) + "\n")
    w = Word2Vec(dim=6, min_count=1, epochs=2, threads=1, chunk_words=300)
    w.train(str(corpus), progress=False, max_words=700)
    path = d / "good.ckpt"
    w.save_checkpoint(str(path))
    return str(path), str(corpus)


def test_damaged_checkpoints_name_the_file(tmp_path, good_checkpoint):
    good = open(good_checkpoint[0], "rb").read()
    cases = {
        "empty": (b"", "is empty"),
        "truncated": (good[: len(good) // 2], "cannot be read as a checkpoint"),
        "garbage": (os.urandom(5000), "cannot be read as a checkpoint"),
        "text": (b"hello world\n", "cannot be read as a checkpoint"),
    }
    for name, (data, match) in cases.items():
        p = tmp_path / f"{name}.ckpt"
        p.write_bytes(data)
        with pytest.raises(ValueError, match=match) as ei:
            Word2Vec.load_checkpoint(str(p))
        assert str(p) in str(ei.value), name
    for obj in ([1, 2, 3], torch.zeros(3), {"version": 2}, {"version": "2"}, {"version": 99}):
        p = tmp_path / "other.ckpt"
        torch.save(obj, str(p))
        with pytest.raises(ValueError, match=r"other\.ckpt"):
            Word2Vec.load_checkpoint(str(p))


def _crafted(state, field, value):
    s = dict(state)
    if "." in field:
        a, b = field.split(".")
        s[a] = {**s[a], b: value}
    elif value is KeyError:
        del s[field]
    else:
        s[field] = value
    return s


CRAFTED = [
    ("word_offsets", lambda s: torch.tensor([0, 10**9, 2, 3]), "word_offsets"),
    ("word_offsets", lambda s: s["word_offsets"].flip(0), "word_offsets"),
    ("word_offsets", lambda s: s["word_offsets"].int(), "word_offsets"),
    ("word_bytes", lambda s: s["word_bytes"][:-1], "word_offsets"),
    ("word_bytes", lambda s: torch.full_like(s["word_bytes"], 32), "word_bytes"),
    ("counts", lambda s: s["counts"][:-1], "counts"),
    ("counts", lambda s: torch.zeros_like(s["counts"]), "counts"),
    ("counts", lambda s: [1, 2, 3], "counts"),
    ("w_in", lambda s: s["w_in"][:-1], "w_in"),
    ("w_in", lambda s: s["w_in"][:, :-1], "w_in"),
    ("w_in", lambda s: s["w_in"].double(), "w_in"),
    ("w_out", lambda s: torch.full_like(s["w_out"], float("nan")), "w_out"),
    ("w_in", lambda s: KeyError, "w_in"),
    ("words", lambda s: list(reversed(s["words"])), "words"),
    ("position.epoch", lambda s: 99, "position"),
    ("position.chunk_in_epoch", lambda s: 10**6, "position"),
    ("position.words_done", lambda s: -1, "position"),
    ("position.words_done", lambda s: 10**12, "position"),
    ("position.epoch", lambda s: "0", "position"),
    ("params.dim", lambda s: 10**9, "params"),
    ("params.alpha", lambda s: float("inf"), "params"),
    ("params.window", lambda s: 0, "params"),
    ("params.seed", lambda s: -5, "params"),
    ("threads", lambda s: 10**6, "params"),
    ("chunks_per_epoch", lambda s: 0, "chunks_per_epoch"),
    ("fingerprint", lambda s: (1, 2), "fingerprint"),
    ("loss_history", lambda s: [(1,)], "loss_history"),
    ("train_seconds", lambda s: float("nan"), "train_seconds"),
    ("params", lambda s: "dim=4", "params"),
]


@pytest.mark.parametrize("i", range(len(CRAFTED)), ids=[f"{c[0]}-{n}" for n, c in enumerate(CRAFTED)])
def test_crafted_checkpoint_fields_are_refused(tmp_path, good_checkpoint, i):
    field, make, named = CRAFTED[i]
    state = torch.load(good_checkpoint[0], weights_only=True)
    key = field.split(".")[0]
    value = make(state)
    p = tmp_path / "crafted.ckpt"
    torch.save(_crafted(state, field, value), str(p))
    with pytest.raises(ValueError, match=f"crafted\\.ckpt.*field '{named}'") as ei:
        Word2Vec.load_checkpoint(str(p))
    assert key in str(ei.value) or named in str(ei.value)


def test_crafted_checkpoint_in_a_child_never_crashes(tmp_path, good_checkpoint):
    """The SIGSEGV of the issue: a crafted word_offsets reaching corpus_encode. Refused at load, in a child."""
    state = torch.load(good_checkpoint[0], weights_only=True)
    state["word_offsets"] = torch.tensor([0, 10**9, 2, 3])
    state["counts"] = torch.ones(3, dtype=torch.int64)
    p = tmp_path / "bad.ckpt"
    torch.save(state, str(p))
    code = textwrap.dedent(f"""
        from embedfast import Word2Vec
        try:
            Word2Vec.load_checkpoint({str(p)!r}).train({good_checkpoint[1]!r}, progress=False)
        except ValueError as e:
            print("REFUSED", e)
    """)
    r = run_python(code, timeout=120)
    assert_no_signal(r)
    assert "REFUSED" in r.stdout and "word_offsets" in r.stdout, r.describe()


def test_good_checkpoint_still_resumes(good_checkpoint):
    path, corpus = good_checkpoint
    w = Word2Vec.load_checkpoint(path)
    w.train(corpus, progress=False)
    assert w.done


def test_checkpoint_keeps_non_utf8_words(tmp_path):
    p = _write(tmp_path / "latin1.txt", LATIN1)
    w = Word2Vec(**KW).train(p, progress=False)
    ck = str(tmp_path / "w.ckpt")
    w.save_checkpoint(ck)
    back = Word2Vec.load_checkpoint(ck)
    assert back.words == w.words and back.words[0] == "caf\udce9"
