"""Vectors.save in every format and the round trips back through load_vectors; gensim reading what we write; the
native cache (corrupt files, limit, vocab, dtype, duplicates)."""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest
import torch

from embedfast import Vectors, load_vectors
from tests.vectors_util import random_vectors, write


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
