"""embedfast.load_vectors on small generated files: values, formats, messy files, gzip, vocab, limit, dtypes, and
the loader's CLI commands (the op itself is tested in test_vectors_op.py; saving in test_vectors_save.py, the
Vectors API in test_vectors_keyed.py)."""
from __future__ import annotations

import gzip
import logging
import os

import numpy as np
import pytest
import torch

import embedfast
from embedfast import Vectors, load_vectors
from embedfast.cli import main as cli_main
from embedfast.synthetic import format_g5, make_words, write_vectors
from tests.vectors_util import glove_text, random_vectors, write


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
