"""Hostile FILES handed to the vectors API: load_vectors / Vectors.load / native caches / Vectors.save / fuse_files.

Native caches rewritten or truncated while loaded, concurrent saves to one path, failed saves, bytes that are not
UTF-8, a file of another kind than the format asked for, corrupt gzip, named pipes. Where the failure could be a
signal or a hang the code runs in a child process with a timeout."""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import embedfast
from embedfast import Vectors, load_vectors
from embedfast.fusion import fuse_files
from tests.faults.util import REPO, assert_no_signal, run_cli, run_python


def _vectors(n=50, d=8, seed=0, prefix="w"):
    g = torch.Generator().manual_seed(seed)
    return Vectors([f"{prefix}{i}" for i in range(n)], torch.randn(n, d, generator=g))


def _listing(folder):
    return sorted(os.listdir(folder))


# ---- native cache changed while loaded ---------------------------------------------------------------------


def test_native_default_load_is_a_copy_rewrite_and_truncation_do_not_reach_it(tmp_path):
    """Default load reads the cache into memory: rewriting it in place (same size, other values) and truncating
    it afterwards change nothing in the loaded Vectors and cannot raise SIGBUS."""
    path = str(tmp_path / "c.efv")
    other = str(tmp_path / "other.efv")
    _vectors(2000, 64, seed=1).save(path)
    _vectors(2000, 64, seed=2).save(other)  # same words, same size, other values
    assert os.path.getsize(path) == os.path.getsize(other)
    code = textwrap.dedent(f"""
        import os, shutil, torch, embedfast
        v = embedfast.load_vectors({path!r})
        before = v.matrix.clone()
        with open({other!r}, "rb") as src, open({path!r}, "r+b") as dst:   # in place, like cp
            dst.write(src.read())
        assert torch.equal(v.matrix, before), "an in-place rewrite changed the loaded Vectors"
        os.truncate({path!r}, 100)
        s = float(v.matrix.sum())                  # touches every page: SIGBUS if it were still mapped
        assert torch.equal(v.matrix, before), "truncation changed the loaded Vectors"
        assert v.words[0] == "w0" and len(v) == 2000
        print("unchanged", s)
    """)
    r = run_python(code, timeout=120)
    assert_no_signal(r)
    assert r.returncode == 0 and "unchanged" in r.stdout, r.describe()


def test_native_mmap_survives_an_embedfast_save_over_the_path(tmp_path):
    """mmap=True maps the file; embedfast's save writes a new file and renames it, so the mapped Vectors keeps
    the old values (and the new load sees the new ones)."""
    path = str(tmp_path / "c.efv")
    old = _vectors(500, 16, seed=3)
    old.save(path)
    v = load_vectors(path, mmap=True)
    assert torch.equal(v.matrix, old.matrix)
    new = _vectors(500, 16, seed=4)
    new.save(path)
    assert torch.equal(v.matrix, old.matrix), "a save over the path changed the mapped Vectors"
    assert torch.equal(load_vectors(path).matrix, new.matrix)
    assert torch.equal(load_vectors(path, mmap=True).matrix, new.matrix)


def test_native_mmap_and_copy_give_the_same_result(tmp_path):
    path = str(tmp_path / "c.efv")
    src = _vectors(300, 12, seed=5)
    src.save(path)
    a, b = load_vectors(path), load_vectors(path, mmap=True)
    assert a.words == b.words == src.words and torch.equal(a.matrix, b.matrix)
    c = load_vectors(path, limit=7, mmap=True)
    assert c.words == src.words[:7] and torch.equal(c.matrix, src.matrix[:7])
    # the copy is writable and independent of the file
    a.matrix[0, 0] = 123.0
    assert load_vectors(path).matrix[0, 0] != 123.0


def test_native_file_truncated_before_load_is_a_clear_error(tmp_path):
    path = str(tmp_path / "c.efv")
    _vectors(200, 8).save(path)
    size = os.path.getsize(path)
    for cut in (size - 1, size // 2, 40, 17, 8):
        os.truncate(path, cut)
        for mmap in (False, True):
            with pytest.raises(ValueError, match="c.efv"):
                load_vectors(path, mmap=mmap)
        _vectors(200, 8).save(path)


@pytest.mark.parametrize("patch", [
    (b'"rows": 200', b'"rows": 900'),
    (b'"dtype": "float32"', b'"dtype": "int8xx"'),
    (b'"matrix_offset": ', b'"matrix_offset": 1'),
    (b'"file_size": ', b'"file_size": 9'),
])
def test_native_lying_header_is_a_clear_error(tmp_path, patch):
    path = str(tmp_path / "c.efv")
    _vectors(200, 8).save(path)
    data = open(path, "rb").read()
    a, b = patch
    assert a in data
    data = data.replace(a, b, 1)
    with open(path, "wb") as f:
        f.write(data)
    for mmap in (False, True):
        with pytest.raises(ValueError, match="c.efv.*not a valid embedfast native"):
            load_vectors(path, mmap=mmap)


def test_native_words_section_disagreeing_with_the_offsets_is_a_clear_error(tmp_path):
    # same length and as many newlines as words - 1, but not where the offsets put them (a fuzzer finding: with
    # limit=2 it gave 3 words for 2 rows)
    path = str(tmp_path / "w.efv")
    Vectors(["ab", "c", "d"], torch.arange(6, dtype=torch.float32).view(3, 2)).save(path)
    data = open(path, "rb").read()
    assert data.count(b"ab\nc\nd") == 1
    with open(path, "wb") as f:
        f.write(data.replace(b"ab\nc\nd", b"a\nbc\nd"))
    for mmap in (False, True):
        for limit in (None, 2):
            with pytest.raises(ValueError, match="w.efv.*words section"):
                load_vectors(path, mmap=mmap, limit=limit)


def test_native_corrupt_json_header_is_a_clear_error(tmp_path):
    path = str(tmp_path / "c.efv")
    import json
    import struct
    for header in (b"[1, 2]", b'"text"', b"{", b"null", json.dumps({"rows": "x"}).encode()):
        with open(path, "wb") as f:
            f.write(b"EMBFVEC\x00" + struct.pack("<II", 1, len(header)) + header + b"\0" * 64)
        with pytest.raises(ValueError, match="corrupt JSON header"):
            load_vectors(path)


# ---- saves -------------------------------------------------------------------------------------------------


_SAVE_TARGETS = [("native", "v.efv"), ("glove", "v.txt"), ("word2vec", "v.w2v"), ("word2vec-bin", "v.bin"),
                 ("glove", "v.txt.gz")]


def test_concurrent_saves_to_one_path_never_mix(tmp_path):
    """Two processes saving different vectors to one path, repeatedly, in every format: no error in either, and
    each file is always one writer's vectors, whole (before: a shared path + '.tmp' gave FileNotFoundError and
    mixed rows of both writers)."""
    code = textwrap.dedent("""
        import sys, torch, embedfast
        seed, folder = int(sys.argv[1]), sys.argv[2]
        targets = %r
        v = embedfast.Vectors([f"s{seed}w{i}" for i in range(3000)], torch.full((3000, 16), float(seed)))
        for _ in range(6):
            for fmt, name in targets:
                v.save(folder + "/" + name, format=fmt)
        print("done")
    """ % (_SAVE_TARGETS,))
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(s), str(tmp_path)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for s in (1, 2)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "done" in out, err[-3000:]
    for fmt, name in _SAVE_TARGETS:
        v = load_vectors(str(tmp_path / name))
        seed = int(v.words[0][1])
        assert v.words == [f"s{seed}w{i}" for i in range(3000)], name
        assert torch.equal(v.matrix, torch.full((3000, 16), float(seed))), name
    assert _listing(tmp_path) == sorted(name for _, name in _SAVE_TARGETS), "a temporary file was left behind"


@pytest.mark.parametrize("fmt,name", [("native", "v.efv"), ("glove", "v.txt"), ("word2vec-bin", "v.bin"),
                                      ("glove", "v.txt.gz")])
def test_failed_save_keeps_the_previous_file_and_leaves_no_stray_file(tmp_path, monkeypatch, fmt, name):
    path = str(tmp_path / name)
    old = _vectors(100, 4, seed=1)
    old.save(path, format=fmt)
    before = open(path, "rb").read()
    import embedfast.vectors.native as native
    import embedfast.vectors.writers as ev

    def boom(*args, **kwargs):
        args[1].write(b"partial rows ...")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ev, "_write_text", boom)
    monkeypatch.setattr(ev, "_write_word2vec_binary", boom)
    real_bytes = native._join_words

    def boom_native(words):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(native, "_join_words", boom_native if fmt == "native" else real_bytes)
    with pytest.raises(OSError, match="No space"):
        _vectors(100, 4, seed=2).save(path, format=fmt)
    assert open(path, "rb").read() == before
    assert _listing(tmp_path) == [name]


def test_save_output_checked_before_writing(tmp_path):
    v = _vectors(3, 2)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        v.save(str(tmp_path / "no" / "such" / "x.efv"))
    with pytest.raises(ValueError, match="is a directory"):
        v.save(str(tmp_path))
    assert _listing(tmp_path) == []


# ---- words whose bytes are not UTF-8 -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt,name", [("native", "o.efv"), ("glove", "o.txt"), ("word2vec", "o.w2v"),
                                      ("word2vec-bin", "o.bin"), ("glove", "o.txt.gz")])
def test_non_utf8_words_stay_distinct_and_round_trip_byte_for_byte(tmp_path, fmt, name):
    """Latin-1 'café cafè cafê' were one word 'caf\\ufffd' for three (decoded with replacement)."""
    raw_words = [b"caf\xe9", b"caf\xe8", b"caf\xea", b"plain", "na\u00efve".encode()]
    src = str(tmp_path / "latin1.txt")
    with open(src, "wb") as f:
        for i, w in enumerate(raw_words):
            f.write(w + b" %d %d 0.5\n" % (i, -i))
    v = load_vectors(src)
    assert len(v) == 5 and len(set(v.words)) == 5
    assert v.report.non_utf8_words == 3 and v.report.duplicates == 0
    assert v.words[3:] == ["plain", "na\u00efve"]
    out = str(tmp_path / name)
    v.save(out, format=fmt)
    data = open(out, "rb").read()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    for w in raw_words:
        assert w + (b"\n" if fmt == "native" and w != raw_words[-1] else b" ") in data or w in data
    back = load_vectors(out)
    assert back.words == v.words and torch.equal(back.matrix, v.matrix)
    assert back.report.non_utf8_words == 3
    assert [w.encode("utf-8", "surrogateescape") for w in back.words] == raw_words


def test_non_utf8_words_in_a_native_cache_are_counted_on_the_lazy_path(tmp_path):
    path = str(tmp_path / "o.efv")
    Vectors(["caf\udce9", "caf\udce8", "ok"], torch.zeros(3, 2)).save(path)
    for mmap in (False, True):
        v = load_vectors(path, mmap=mmap)
        assert v.report.non_utf8_words == 2
        assert v.words == ["caf\udce9", "caf\udce8", "ok"]


# ---- a file of another kind than the format asked for ------------------------------------------------------


def test_native_cache_read_as_text_names_what_it_is(tmp_path):
    """`info --format glove` on a native file ended in `TypeError: function takes exactly 5 arguments`."""
    path = str(tmp_path / "x.bin")
    _vectors(20, 4).save(path)
    for fmt in ("glove", "text", "word2vec", "fasttext", "word2vec-bin"):
        with pytest.raises(ValueError, match=r"'.*x\.bin' is an embedfast native cache, not .*use format='native' "
                                             r"or 'auto'"):
            load_vectors(path, format=fmt)
    r = run_cli("info", path, "--format", "glove", timeout=120)
    assert_no_signal(r)
    assert r.returncode != 0 and "native cache" in r.stderr and "takes exactly" not in r.stderr, r.describe()


def test_text_read_as_native_or_binary_names_what_it_is(tmp_path):
    path = str(tmp_path / "t.txt")
    _vectors(20, 4).save(path, format="word2vec")
    with pytest.raises(ValueError, match="not an embedfast native cache.*looks like glove text"):
        load_vectors(path, format="native")
    with pytest.raises(ValueError, match="is word2vec text.*not word2vec binary; use format='word2vec'"):
        load_vectors(path, format="word2vec-bin")  # before: 4*D bytes of text read as floats
    gz = str(tmp_path / "t.txt.gz")
    _vectors(20, 4).save(gz, format="word2vec")
    with pytest.raises(ValueError, match="t.txt.gz.*is word2vec text"):
        load_vectors(gz, format="word2vec-bin")


def test_op_errors_of_any_exception_type_are_re_raised_with_the_file_name(tmp_path, monkeypatch):
    """The re-raise rebuilt the op's exception with type(exc)(msg), which fails for types such as
    UnicodeDecodeError (five arguments)."""
    import embedfast.vectors.io as ev
    path = str(tmp_path / "t.txt")
    with open(path, "w") as f:
        f.write("a 1 2\n")

    def raiser(exc):
        def f(*a, **k):
            raise exc
        return f

    monkeypatch.setattr(ev, "load_vectors_raw", raiser(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad byte")))
    with pytest.raises(ValueError, match=r"t\.txt.*bad byte"):
        load_vectors(path)
    monkeypatch.setattr(ev, "load_vectors_raw", raiser(RuntimeError(f"{path}:1: something")))
    with pytest.raises(RuntimeError, match=r"t\.txt:1: something"):
        load_vectors(path)

    class Odd(Exception):
        def __init__(self, a, b):
            super().__init__(f"{a}/{b}")

    monkeypatch.setattr(ev, "load_vectors_raw", raiser(Odd("x", "y")))
    with pytest.raises(RuntimeError, match=r"t\.txt.*x/y"):
        load_vectors(path)


# ---- gzip, pipes, folders ----------------------------------------------------------------------------------


def test_corrupt_and_truncated_gzip_name_the_file(tmp_path):
    good = gzip.compress(b"".join(b"w%d 1 2 3\n" % i for i in range(2000)))
    bad = str(tmp_path / "bad.txt.gz")
    with open(bad, "wb") as f:  # a valid gzip header, then garbage: zlib.error before
        f.write(good[:10] + b"\xff" * 200 + good[210:])
    with pytest.raises(ValueError, match=r"bad\.txt\.gz.*corrupt gzip"):
        load_vectors(bad)
    cut = str(tmp_path / "cut.txt.gz")
    with open(cut, "wb") as f:
        f.write(good[:len(good) // 2])
    with pytest.raises(ValueError, match=r"cut\.txt\.gz.*corrupt gzip"):
        load_vectors(cut)
    with pytest.raises(ValueError, match=r"bad\.txt\.gz"):
        load_vectors(bad, format="glove")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipe_is_refused_without_blocking(tmp_path):
    fifo = str(tmp_path / "pipe.txt")
    os.mkfifo(fifo)
    out = str(tmp_path / "fused.txt")
    code = textwrap.dedent(f"""
        import embedfast
        from embedfast.fusion import fuse_files
        for call in (lambda: embedfast.load_vectors({fifo!r}), lambda: embedfast.Vectors.load({fifo!r}, format="native"),
                     lambda: embedfast.load_vectors({fifo!r}, mmap=True),
                     lambda: fuse_files([{fifo!r}], {out!r})):
            try:
                call()
            except ValueError as e:
                assert "named pipe" in str(e), e
                print("refused")
    """)
    r = run_python(code, timeout=60)
    assert_no_signal(r)
    assert r.returncode == 0 and r.stdout.count("refused") == 4, r.describe()


# ---- fuse_files --------------------------------------------------------------------------------------------


def _fuse_inputs(tmp_path):
    a, b = str(tmp_path / "a.txt"), str(tmp_path / "b.txt")
    Vectors(["x", "y"], torch.tensor([[1.0, 0.0], [0.0, 1.0]])).save(a, format="glove")
    Vectors(["y", "z"], torch.tensor([[1.0, 1.0], [2.0, 2.0]])).save(b, format="glove")
    return a, b


def test_fuse_files_checks_the_output_before_reading(tmp_path, monkeypatch):
    a, b = _fuse_inputs(tmp_path)
    import embedfast.fusion.sources as ef
    calls = []
    monkeypatch.setattr(ef, "load_vectors", lambda *x, **k: calls.append(x) or (_ for _ in ()).throw(AssertionError))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fuse_files([a, b], str(tmp_path / "nope" / "out.txt"))
    with pytest.raises(ValueError, match="is the input"):
        fuse_files([a, b], a)
    with pytest.raises(ValueError, match=r"weights\[0\] = nan"):
        fuse_files([a, b], str(tmp_path / "out.txt"), weights=[float("nan"), 1.0])
    assert calls == []


def test_fuse_files_writes_atomically_and_round_trips(tmp_path, monkeypatch):
    a, b = _fuse_inputs(tmp_path)
    out = str(tmp_path / "out.txt")
    cov = fuse_files([a, b], out)
    v = load_vectors(out)
    assert v.words == ["x", "y", "z"] and cov["words"] == 3
    assert torch.allclose(v["y"], torch.tensor([0.5, 1.0]))
    before = open(out, "rb").read()
    import embedfast.vectors.writers as ev

    def boom(v, f, **k):
        f.write(b"x 1")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ev, "_write_text", boom)
    with pytest.raises(OSError, match="No space"):
        fuse_files([a, b], out, weights=[2.0, 1.0])
    assert open(out, "rb").read() == before
    assert _listing(tmp_path) == ["a.txt", "b.txt", "out.txt"]


def test_fuse_files_keeps_non_utf8_words(tmp_path):
    a = str(tmp_path / "a.txt")
    with open(a, "wb") as f:
        f.write(b"caf\xe9 1 2\ncaf\xe8 3 4\n")
    out = str(tmp_path / "o.txt")
    fuse_files([a], out)
    data = open(out, "rb").read()
    assert b"caf\xe9 " in data and b"caf\xe8 " in data
    assert load_vectors(out).report.non_utf8_words == 2
