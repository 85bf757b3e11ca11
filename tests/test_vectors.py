"""The public vectors API: embedfast.load_vectors / Vectors on small generated files (the op itself is tested in
test_load_vectors_op.py)."""
from __future__ import annotations

import gzip
import logging
import os
import struct

import numpy as np
import pytest
import torch

import embedfast
from embedfast import Vectors, load_vectors
from embedfast.cli import main as cli_main
from embedfast.synthetic import format_g5, make_words, write_vectors


def write(tmp_path, data: bytes, name="v.txt") -> str:
    path = os.path.join(tmp_path, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def glove_text(words, mat) -> bytes:
    return "".join(w + " " + " ".join(repr(float(x)) for x in row) + "\n" for w, row in zip(words, mat)).encode()


def random_vectors(n=57, d=7, seed=None):
    seed = np.random.SeedSequence().entropy % 2**32 if seed is None else seed
    g = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(n)]
    mat = g.standard_normal((n, d)).astype(np.float32)
    return words, mat


# ---- loading: values, formats ------------------------------------------------------------------------------


def test_load_text_exact_values_and_report(tmp_path):
    words, mat = random_vectors(101, 9)
    path = write(tmp_path, glove_text(words, mat))
    v = load_vectors(path)
    assert isinstance(v, Vectors) and v.words == words and len(v) == 101 and v.dim == 9
    assert np.array_equal(v.matrix.numpy(), mat)
    assert v.report.rows == 101 and v.report.format == "text" and v.report.header is None
    assert v.report.skipped == [] and v.report.duplicates == 0
    assert v["w5"].tolist() == mat[5].tolist() and v.index("w7") == 7 and "w3" in v and "zz" not in v
    assert v.get_index("zz") is None and v.get_index("zz", -1) == -1
    with pytest.raises(KeyError, match="zz"):
        v.index("zz")


def test_generated_glove_file_matches_percent_g5(tmp_path):
    path = os.path.join(tmp_path, "g.txt")
    words, mat = write_vectors(path, 300, 11, seed=4)
    v = load_vectors(path, threads=2)
    want = np.array([[np.float32("%.5g" % x) for x in row] for row in mat])
    assert v.words == words and np.array_equal(v.matrix.numpy(), want)
    line = open(path).readline().split()
    assert line[1:] == ["%.5g" % x for x in mat[0]]


def test_format_g5_matches_printf():
    g = np.random.default_rng()
    vals = np.concatenate([g.standard_normal(3000) * 0.4, g.standard_normal(300) * 1e-5,
                           g.uniform(-9e4, 9e4, 300), [1, 10, 9.99999, 0.0001, 99999.4, 0.5, -2.5e-7]])
    a = format_g5(vals.reshape(1, -1))
    assert a[a != 0].tobytes().decode().split() == ["%.5g" % x for x in vals]


def test_threads_identical(tmp_path):
    path = os.path.join(tmp_path, "g.txt")
    write_vectors(path, 2000, 13, seed=2)
    a, b = load_vectors(path, threads=1), load_vectors(path, threads=2)
    assert a.words == b.words and torch.equal(a.matrix, b.matrix)


def test_header_word2vec_text_and_format_names(tmp_path):
    words, mat = random_vectors(20, 4)
    body = glove_text(words, mat)
    path = write(tmp_path, b"20 4\n" + body)
    v = load_vectors(path)
    assert v.report.header == (20, 4) and v.words == words
    assert load_vectors(path, format="word2vec").words == words
    # word2vec format requires the header
    with pytest.raises(ValueError, match="header"):
        load_vectors(write(tmp_path, body, "nohead.txt"), format="word2vec")
    # wrong header dimension
    with pytest.raises(ValueError, match=r"v\.txt:2: .*dimension 5"):
        load_vectors(write(tmp_path, b"20 5\n" + body))
    with pytest.raises(ValueError, match="format must be one of"):
        load_vectors(path, format="csv")


def test_word2vec_binary_autodetected(tmp_path):
    words, mat = random_vectors(40, 6)
    words[3] = "naïve"
    rec = b"".join(w.encode() + b" " + r.astype("<f4").tobytes() + b"\n" for w, r in zip(words, mat))
    path = write(tmp_path, b"40 6\n" + rec, "v.bin")
    v = load_vectors(path)
    assert v.report.format == "word2vec-bin" and v.words == words
    assert np.array_equal(v.matrix.numpy(), mat)
    assert load_vectors(path, format="word2vec-bin", limit=7).matrix.shape == (7, 6)


# ---- messy files -------------------------------------------------------------------------------------------


def test_messy_file_every_case_counted(tmp_path, caplog):
    data = (b"\xef\xbb\xbf"  # BOM
            b"the 1 2 3\r\n"  # CRLF
            b"of 4 5 6 \n"  # trailing space
            b"\n  \n"  # blank lines
            b"new york 7 8 9\n"  # word with a space
            b"caf\xe9 1 1 1\n"  # not UTF-8
            b"the 9 9 9\n"  # duplicate: the first one wins
            b"short 1 2\n"  # too few values
            b"bad 1 x 2\n"  # not a number
            b"last 3 3 3")  # truncated last line (complete)
    path = write(tmp_path, data)
    with pytest.raises(ValueError, match=r"v\.txt:8: .*expected a word and 3 values"):
        load_vectors(path)
    with caplog.at_level(logging.INFO, logger="embedfast.vectors"):
        v = load_vectors(path, on_error="skip")
    assert v.words == ["the", "of", "new york", "caf\udce9", "last"]  # the byte kept (surrogateescape)
    assert v.matrix.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 1, 1], [3, 3, 3]]
    r = v.report
    assert r.bom and r.crlf_lines == 1 and r.blank_lines == 2 and r.spaced_words == 1
    assert r.non_utf8_words == 1 and r.invalid_utf8 == 1 and r.duplicates == 1 and r.duplicate_examples == ["the"]
    assert r.skipped == [(8, "too few values"), (9, "not a number")] and r.truncated_last_line
    assert r.rows == 5 and r.rows_parsed == 6 and r.lines == 10
    text = str(r)
    for needle in ("line 8: too few values", "line 9: not a number", "duplicates dropped:  1", "BOM:                 yes"):
        assert needle in text
    levels = [rec.levelname for rec in caplog.records]
    assert levels.count("INFO") == 1 and levels.count("WARNING") == 1
    assert "2 malformed rows skipped" in caplog.text and "line 8 (too few values)" in caplog.text


@pytest.mark.parametrize("bad,msg", [
    (b"c 5 x\n", r":3: 'x' \(field 3\) is not a number"),
    (b"c 5\n", r":3: expected a word and 2 values, found 1"),
    (b"5 6\n", r":3: found 2 numbers but no word"),
    (b"c 1e999 1\n", r":3: value '1e999' \(field 2\) is out of range"),
])
def test_bad_rows_raise_naming_file_and_line(tmp_path, bad, msg):
    path = write(tmp_path, b"a 1 2\nb 3 4\n" + bad)
    with pytest.raises(ValueError, match=r"v\.txt" + msg):
        load_vectors(path)
    v = load_vectors(path, on_error="skip")
    assert v.words == ["a", "b"] and [ln for ln, _ in v.report.skipped] == [3]


def test_empty_missing_directory(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        load_vectors(write(tmp_path, b""))
    with pytest.raises(ValueError, match="no data lines"):
        load_vectors(write(tmp_path, b"\n \n", "blank.txt"))
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_vectors(os.path.join(tmp_path, "nope.txt"))
    with pytest.raises(ValueError, match="is a directory"):
        load_vectors(str(tmp_path))
    with pytest.raises(ValueError, match="empty"):
        load_vectors(write(tmp_path, gzip.compress(b""), "e.txt.gz"))


def test_truncated_last_line_raises_or_skips(tmp_path):
    path = write(tmp_path, b"a 1 2\nb 3 4\nc 5")
    with pytest.raises(ValueError, match=r"v\.txt:3:"):
        load_vectors(path)
    v = load_vectors(path, on_error="skip")
    assert v.words == ["a", "b"] and v.report.truncated_last_line and v.report.skipped_rows == 1


def test_argument_errors(tmp_path):
    path = write(tmp_path, b"a 1 2\n")
    with pytest.raises(ValueError, match="on_error"):
        load_vectors(path, on_error="ignore")
    with pytest.raises(ValueError, match="dtype"):
        load_vectors(path, dtype=torch.int32)
    with pytest.raises(ValueError, match="limit"):
        load_vectors(path, limit=-1)


# ---- gzip, vocab, limit, dtype -----------------------------------------------------------------------------


def test_gzip(tmp_path):
    words, mat = random_vectors(30, 5)
    plain = glove_text(words, mat)
    path = write(tmp_path, gzip.compress(plain), "v.txt.gz")
    v = load_vectors(path)
    assert v.report.gzip and v.words == words and np.array_equal(v.matrix.numpy(), mat)
    # errors name the user's file, not the temporary one
    bad = write(tmp_path, gzip.compress(plain + b"x 1 y 2 3 4\n"), "bad.txt.gz")
    with pytest.raises(ValueError, match=r"bad\.txt\.gz:31:"):
        load_vectors(bad)
    corrupt = write(tmp_path, gzip.compress(plain)[:-20], "cut.txt.gz")
    with pytest.raises(ValueError, match="gzip"):
        load_vectors(corrupt)
    # gzip word2vec binary
    rec = b"".join(w.encode() + b" " + r.astype("<f4").tobytes() for w, r in zip(words, mat))
    vb = load_vectors(write(tmp_path, gzip.compress(b"30 5\n" + rec), "v.bin.gz"))
    assert vb.report.format == "word2vec-bin" and np.array_equal(vb.matrix.numpy(), mat)


def test_vocab_and_limit(tmp_path):
    words, mat = random_vectors(50, 4)
    path = write(tmp_path, glove_text(words, mat))
    v = load_vectors(path, vocab=["w40", "w3", "nope", "w3", "w17"])
    assert v.words == ["w3", "w17", "w40"]  # file order
    assert np.array_equal(v.matrix.numpy(), mat[[3, 17, 40]])
    assert v.report.vocab_requested == 4 and v.report.vocab_found == 3 and v.report.vocab_missing == ["nope"]
    v = load_vectors(path, limit=10)
    assert v.words == words[:10] and np.array_equal(v.matrix.numpy(), mat[:10])
    v = load_vectors(path, limit=10, vocab={"w5", "w20"})
    assert v.words == ["w5"] and v.report.vocab_found == 1


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_dtypes(tmp_path, dtype):
    words, mat = random_vectors(25, 6)
    path = write(tmp_path, glove_text(words, mat))
    v = load_vectors(path, dtype=dtype)
    assert v.matrix.dtype == dtype
    want = torch.from_numpy(mat).to(dtype) if dtype != torch.float64 else \
        torch.tensor([[float(repr(float(x))) for x in r] for r in mat], dtype=torch.float64)
    assert torch.equal(v.matrix, want)


# ---- save formats and round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["native", "glove", "word2vec", "word2vec-bin"])
def test_round_trip_every_format(tmp_path, fmt):
    words, mat = random_vectors(64, 10)
    words[5] = "naïve"
    mat[3, :] = np.float32(0.25)  # a row that is exact with 6 digits
    v = Vectors(words, torch.from_numpy(mat))
    out = os.path.join(tmp_path, "out." + fmt)
    v.save(out, format=fmt)
    w = load_vectors(out)
    assert w.words == words and torch.equal(w.matrix, v.matrix), fmt
    assert w.report.format == {"glove": "text", "word2vec": "text"}.get(fmt, fmt)


def test_text_save_is_short_when_exact(tmp_path):
    v = Vectors(["a", "b"], torch.tensor([[0.5, -0.25], [0.1, 1e-3]]))
    v.save(os.path.join(tmp_path, "a.txt"), format="glove")
    assert open(os.path.join(tmp_path, "a.txt")).read() == "a 0.5 -0.25\nb 0.1 0.001\n"
    v.save(os.path.join(tmp_path, "g.txt.gz"), format="word2vec")
    assert gzip.open(os.path.join(tmp_path, "g.txt.gz")).read() == b"2 2\na 0.5 -0.25\nb 0.1 0.001\n"


def test_save_refuses_unwritable_words(tmp_path):
    v = Vectors(["new york", "b"], torch.zeros(2, 3))
    with pytest.raises(ValueError, match="word2vec binary"):
        v.save(os.path.join(tmp_path, "x.bin"), format="word2vec-bin")
    v.save(os.path.join(tmp_path, "x.txt"), format="glove")  # our loader reads words with spaces
    assert load_vectors(os.path.join(tmp_path, "x.txt")).words == ["new york", "b"]
    with pytest.raises(ValueError, match="cannot be written"):
        Vectors(["a\nb"], torch.zeros(1, 3)).save(os.path.join(tmp_path, "y.txt"), format="glove")
    with pytest.raises(ValueError, match="format must be"):
        v.save(os.path.join(tmp_path, "z"), format="csv")


def test_gensim_reads_what_we_write_and_we_read_what_gensim_writes(tmp_path):
    gensim_models = pytest.importorskip("gensim.models")
    KeyedVectors = gensim_models.KeyedVectors
    words, mat = random_vectors(33, 8)
    words[2] = "größe"
    v = Vectors(words, torch.from_numpy(mat))
    for fmt, binary in (("word2vec", False), ("word2vec-bin", True)):
        out = os.path.join(tmp_path, f"ours.{fmt}")
        v.save(out, format=fmt)
        kv = KeyedVectors.load_word2vec_format(out, binary=binary)
        assert kv.index_to_key == words and np.array_equal(kv.vectors, mat), fmt
    out = os.path.join(tmp_path, "ours.glove")
    v.save(out, format="glove")
    kv = KeyedVectors.load_word2vec_format(out, binary=False, no_header=True)
    assert kv.index_to_key == words and np.array_equal(kv.vectors, mat)
    kv = KeyedVectors(8)
    kv.add_vectors(words, mat)
    for binary in (False, True):
        theirs = os.path.join(tmp_path, f"theirs{int(binary)}")
        kv.save_word2vec_format(theirs, binary=binary)
        w = load_vectors(theirs)
        assert w.words == words and np.array_equal(w.matrix.numpy(), mat)
    # interop without files
    g = v.to_gensim()
    assert g.index_to_key == words and np.array_equal(g.vectors, mat)
    a, b = g.most_similar("w1", topn=5), v.most_similar("w1", topn=5)
    assert [w for w, _ in a] == [w for w, _ in b] and [s for _, s in a] == pytest.approx([s for _, s in b])
    back = Vectors.from_gensim(g)
    assert back.words == words and torch.equal(back.matrix, v.matrix)


def test_native_truncated_or_corrupt_gives_clear_error(tmp_path):
    words, mat = random_vectors(40, 5)
    path = os.path.join(tmp_path, "v.native")
    Vectors(words, torch.from_numpy(mat)).save(path)
    data = open(path, "rb").read()
    for cut in (len(data) - 1, len(data) // 2, 100, 20, 10):
        with pytest.raises(ValueError, match="not a valid embedfast native vectors file"):
            load_vectors(write(tmp_path, data[:cut], "cut.native"), format="native")
    with pytest.raises(ValueError, match="trailing bytes"):
        load_vectors(write(tmp_path, data + b"\0", "long.native"))
    hlen = struct.unpack("<I", data[12:16])[0]
    bad_json = data[:16] + b"[" + data[17:]
    with pytest.raises(ValueError, match="corrupt JSON header"):
        load_vectors(write(tmp_path, bad_json, "j.native"))
    bad_version = data[:8] + struct.pack("<I", 99) + data[12:]
    with pytest.raises(ValueError, match="version 99"):
        load_vectors(write(tmp_path, bad_version, "ver.native"))
    # a newline inside the words section: word count no longer matches
    h = data[16:16 + hlen].decode()
    import json
    wo = json.loads(h)["words_offset"]
    broken = bytearray(data)
    broken[wo] = 10
    with pytest.raises(ValueError, match="words"):
        load_vectors(write(tmp_path, bytes(broken), "w.native"))
    assert hlen > 0


def test_native_limit_vocab_dtype_and_duplicates(tmp_path):
    words, mat = random_vectors(30, 4)
    path = os.path.join(tmp_path, "v.native")
    Vectors(words, torch.from_numpy(mat)).save(path)
    assert load_vectors(path, limit=5).words == words[:5]
    v = load_vectors(path, vocab=["w9", "w2"])
    assert v.words == ["w2", "w9"] and np.array_equal(v.matrix.numpy(), mat[[2, 9]])
    h = load_vectors(path, dtype=torch.float16)
    assert h.matrix.dtype == torch.float16 and torch.equal(h.matrix, torch.from_numpy(mat).half())
    # half matrix saved natively keeps its dtype
    hp = os.path.join(tmp_path, "h.native")
    h.save(hp)
    assert load_vectors(hp, dtype=torch.float16).matrix.dtype == torch.float16
    # a Vectors with a duplicate word: saved as is, the loader drops the later row and counts it
    dup = Vectors(["a", "b", "a"], torch.tensor([[1.0], [2.0], [3.0]]))
    assert dup.index("a") == 0
    dp = os.path.join(tmp_path, "d.native")
    dup.save(dp)
    d = load_vectors(dp)
    assert d.words == ["a", "b"] and d.matrix.tolist() == [[1.0], [2.0]] and d.report.duplicates == 1
    # the reloaded matrix is writable and does not write through to the file
    d.matrix[0, 0] = 42.0
    assert load_vectors(dp).matrix[0, 0] == 1.0


# ---- to_embedding ------------------------------------------------------------------------------------------


def test_to_embedding_coverage_and_padding():
    words, mat = random_vectors(20, 6)
    words[4] = "Paris"
    v = Vectors(words, torch.from_numpy(mat))
    task = ["w1", "W2", "paris", "Paris", "unknown", "w19"]
    g = torch.Generator().manual_seed(0)
    emb = v.to_embedding(["<pad>", "<unk>"] + task, generator=g)
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
    n = v.to_embedding(task, oov="normal", scale=0.3, generator=torch.Generator().manual_seed(1))
    std = n.weight[3:].detach().std().item()
    assert 0.28 < std < 0.32
    # mapping vocab with its own <pad> at index 3
    e = v.to_embedding({"w1": 0, "w2": 1, "zz": 2, "<pad>": 3}, specials=("<pad>",))
    assert e.padding_idx == 3 and e.itos[3] == "<pad>" and torch.equal(e.weight[0], v["w1"])
    with pytest.raises(ValueError, match="oov"):
        v.to_embedding(task, oov="uniform")
    with pytest.raises(ValueError, match="twice"):
        v.to_embedding(["w1", "w1"])


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


# ---- CLI ---------------------------------------------------------------------------------------------------


def test_cli_convert_and_info(tmp_path, capsys):
    path = os.path.join(tmp_path, "g.txt")
    words, mat = write_vectors(path, 120, 8, seed=5)
    native = os.path.join(tmp_path, "g.native")
    assert cli_main(["convert", path, native, "--to", "native"]) == 0
    assert load_vectors(native).words == words
    w2v = os.path.join(tmp_path, "g.bin")
    assert cli_main(["convert", native, w2v, "--to", "word2vec-bin", "--limit", "50"]) == 0
    b = load_vectors(w2v)
    assert b.words == words[:50] and torch.equal(b.matrix, load_vectors(path).matrix[:50])
    capsys.readouterr()
    assert cli_main(["info", w2v]) == 0
    out = capsys.readouterr().out
    assert "50 x 8" in out and "word2vec-bin" in out and words[0] in out and "load time" in out
    bad = write(tmp_path, b"a 1 2\nb x 3\nc 4 5\n", "bad.txt")
    assert cli_main(["convert", bad, os.path.join(tmp_path, "o.txt"), "--to", "glove"]) == 2
    assert "bad.txt:2" in capsys.readouterr().err
    assert cli_main(["convert", bad, os.path.join(tmp_path, "o.txt"), "--to", "glove", "--on-error", "skip"]) == 0
    assert load_vectors(os.path.join(tmp_path, "o.txt")).words == ["a", "c"]
    assert cli_main(["info", os.path.join(tmp_path, "missing.txt")]) == 2
    for cmd in ("convert", "info"):
        with pytest.raises(SystemExit) as e:
            cli_main([cmd, "--help"])
        assert e.value.code == 0
    assert "--to" in capsys.readouterr().out


def test_demo_loader_step_quick(tmp_path, capsys):
    from embedfast.cli.demo import run_demo

    assert run_demo(quick=True, workdir=str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "speed-up" in out and "nearest" in out


def test_make_words_unique_and_deterministic():
    a = make_words(5000, seed=3)
    assert len(set(a)) == 5000 and a == make_words(5000, seed=3) and a[0] == "the"
    assert embedfast.load_vectors is load_vectors
