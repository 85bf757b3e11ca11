"""Arguments a user hands the trainer and the command line: Word2Vec's constructor and train(), and every
`embedfast` command's options and paths. Bad values are refused up front with the argument's name; the CLI
prints one line `embedfast <cmd>: error: ...`, no traceback, before any long work starts."""
from __future__ import annotations

import json
import math
import os
import time

import pytest
import torch

import embedfast
from embedfast import Word2Vec
from embedfast.cli import build_parser, main
from embedfast.testing import planted_corpus

from .util import assert_clean_failure, run_cli

NAN, INF = float("nan"), float("inf")

BAD_CONSTRUCTOR = [
    ("dim", [0, -1, 10**9, 2.0, "8", None, True]),
    ("window", [0, -2, 10**9, 1.5]),
    ("negative", [-1, 10**6, 2.5]),
    ("sample", [-1e-4, NAN, INF, 2.0, "0"]),
    ("min_count", [0, -1, 1.0]),
    ("max_vocab", [0, -5, 2**40, 3.0]),
    ("epochs", [0, -1, 10**9, 1.0]),
    ("alpha", [0, -0.1, NAN, INF, 5.0, "0.1"]),
    ("min_alpha", [-1e-5, NAN, INF, 0.5]),  # 0.5 > alpha=0.025
    ("ns_exponent", [NAN, INF, -INF, 100.0]),
    ("threads", [0, -1, 10000, 2.0]),
    ("seed", [-1, 2**64, 1.5, "0"]),
    ("max_sentence_length", [0, -1, 2**40]),
    ("chunk_words", [0, -1, 2**40]),
    ("init_scale", [0, -1.0, NAN, INF, 1e9]),
    ("shared_negatives", ["no", 2, None]),
    ("exact_sigmoid", ["yes", 0.5]),
    ("device", ["not-a-device", 3.5]),
]


@pytest.mark.parametrize("name,values", BAD_CONSTRUCTOR, ids=[b[0] for b in BAD_CONSTRUCTOR])
def test_constructor_refuses_bad_values_by_name(name, values):
    for v in values:
        with pytest.raises(ValueError, match=f"Word2Vec: {name}") as ei:
            Word2Vec(**{name: v})
        assert repr(v) in str(ei.value) or str(v) in str(ei.value), (name, v, str(ei.value))


def test_constructor_accepts_the_bounds():
    import numpy as np

    Word2Vec(dim=1, window=1, negative=0, sample=0, min_count=1, max_vocab=1, epochs=1, alpha=1.0, min_alpha=1.0,
             threads=1024, seed=0, chunk_words=1, max_sentence_length=1, ns_exponent=-10.0)
    Word2Vec(dim=np.int64(16), alpha=np.float32(0.05), seed=2**63 - 1, shared_negatives=0, exact_sigmoid=True)


def test_threads_beyond_the_op_limit_fail_at_construction_not_in_the_first_chunk():
    with pytest.raises(ValueError, match=r"threads must be an int in \[1, 1,024\], got 10000"):
        Word2Vec(threads=10000)


def test_train_arguments(tmp_path):
    sents, _ = planted_corpus(sentences=50)
    kw = dict(dim=4, min_count=1, epochs=1, threads=1)
    for bad in (-1, 1.5, "10"):
        with pytest.raises(ValueError, match="max_words"):
            Word2Vec(**kw).train(sents, progress=False, max_words=bad)
    for bad in (NAN, -1, "5"):
        with pytest.raises(ValueError, match="checkpoint_every"):
            Word2Vec(**kw).train(sents, progress=False, checkpoint=str(tmp_path / "c.ckpt"), checkpoint_every=bad)
    w = Word2Vec(**kw).train(sents, progress=False, max_words=0)
    assert w._pos["words_done"] == 0 and not w.done
    w.train(progress=False, checkpoint=str(tmp_path / "c.ckpt"), checkpoint_every=INF)
    assert w.done and (tmp_path / "c.ckpt").exists()


def test_checkpoint_path_is_checked_before_training(tmp_path):
    corpus = tmp_path / "c.txt"
    sents, _ = planted_corpus(sentences=50)
    corpus.write_text("\n".join(" ".join(s) for s in sents) + "\n")
    before = corpus.read_bytes()
    kw = dict(dim=4, min_count=1, epochs=1, threads=1)
    cases = [(str(tmp_path / "no" / "w.ckpt"), FileNotFoundError, "does not exist"),
             (str(tmp_path), ValueError, "is a directory"),
             (str(corpus), ValueError, "is the input")]
    for path, exc, match in cases:
        w = Word2Vec(**kw)
        with pytest.raises(exc, match=match):
            w.train(str(corpus), progress=False, checkpoint=path)
        assert w.w_in is None  # refused before even the vocabulary was built
    assert corpus.read_bytes() == before


# ---- the command line -----------------------------------------------------------------------------------------


def _commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(sub.choices)


def test_every_command_has_help(capsys):
    cmds = _commands()
    assert {"train", "eval", "info", "convert", "fuse", "demo"} <= set(cmds)
    for c in cmds:
        with pytest.raises(SystemExit) as ei:
            main([c, "--help"])
        assert ei.value.code == 0, c
    capsys.readouterr()


@pytest.fixture()
def corpus(tmp_path):
    sents, _ = planted_corpus(sentences=2000)
    p = tmp_path / "c.txt"
    p.write_text("\n".join(" ".join(s) for s in sents) + "\n")
    return p


def test_train_output_is_checked_before_training(tmp_path, corpus):
    before = corpus.read_bytes()
    for out, needle in [(str(tmp_path / "nonexistent" / "dir" / "x.txt"), "does not exist"),
                        (str(tmp_path), "is a directory"),
                        (str(corpus), "is the input")]:
        t = time.perf_counter()
        r = run_cli("train", str(corpus), "-o", out, "--epochs", "50", "--min-count", "1", "--threads", "1")
        assert_clean_failure(r, needle, returncode=2)
        assert "word2vec" not in r.stderr.replace("embedfast", "")  # no progress bar: training never started
        assert time.perf_counter() - t < 60
    assert corpus.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_train_read_only_output_folder(tmp_path, corpus):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    r = run_cli("train", str(corpus), "-o", str(ro / "x.txt"), "--min-count", "1")
    assert_clean_failure(r, "not writable", returncode=2)


def test_convert_output_is_checked_first(tmp_path):
    vec = tmp_path / "v.txt"
    vec.write_text("a 1 2\nb 3 4\n")
    for out, needle in [(str(tmp_path / "no" / "o.txt"), "does not exist"), (str(vec), "is the input"),
                        (str(tmp_path), "is a directory")]:
        assert main(["convert", str(vec), out, "--to", "glove"]) == 2
    assert vec.read_text() == "a 1 2\nb 3 4\n"


@pytest.mark.parametrize("argv,needle", [
    (["info", "--words", "-3", "x"], "--words"),
    (["info", "--limit", "-1", "x"], "--limit"),
    (["info", "--threads", "0", "x"], "--threads"),
    (["train", "c", "-o", "o", "--threads", "-2"], "--threads"),
    (["train", "c", "-o", "o", "--sync-every", "0"], "--sync-every"),
    (["eval", "v", "--restrict-vocab", "0"], "--restrict-vocab"),
])
def test_argparse_refuses_negative_counts(argv, needle, capsys):
    with pytest.raises(SystemExit) as ei:
        main(argv)
    assert ei.value.code == 2
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize("opt,val", [("--alpha", "inf"), ("--alpha", "nan"), ("--alpha", "-1"), ("--dim", "0"),
                                     ("--window", "1000000000"), ("--epochs", "-1"), ("--sample", "nan"),
                                     ("--min-alpha", "1"), ("--negative", "-1"), ("--seed", "-1")])
def test_train_bad_hyperparameters_are_one_line(tmp_path, corpus, opt, val, capsys):
    assert main(["train", str(corpus), "-o", str(tmp_path / "o.txt"), opt, val]) == 2
    err = capsys.readouterr().err
    assert err.startswith("embedfast train: error: Word2Vec: " + opt[2:].replace("-", "_")), err
    assert len(err.strip().splitlines()) == 1


def _vectors_file(tmp_path):
    p = tmp_path / "v.txt"
    p.write_text("a 1 0\nb 0 1\nc 1 1\n")
    return p


def test_eval_json_is_strict_json(tmp_path, capsys):
    vec = _vectors_file(tmp_path)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("a\tb\t5\na\tc\t5\nb\tc\t5\n")  # constant scores: the correlations are NaN
    assert main(["eval", str(vec), "--similarity", str(pairs), "--json"]) == 0
    out = capsys.readouterr().out

    def refuse(name):
        raise AssertionError(f"not JSON: {name} in the output")

    data = json.loads(out, parse_constant=refuse)
    r = data["similarity"][str(pairs)]
    assert r["spearman"] is None and r["pearson"] is None


def test_eval_fifo_similarity_file_is_refused(tmp_path):
    vec = _vectors_file(tmp_path)
    fifo = str(tmp_path / "pairs")
    os.mkfifo(fifo)
    r = run_cli("eval", str(vec), "--similarity", fifo, timeout=60)
    assert_clean_failure(r, "named pipe", returncode=2)


def test_fuse_weights_and_output_checked(tmp_path, capsys):
    vec = _vectors_file(tmp_path)
    assert main(["fuse", str(vec), str(vec), "-o", str(tmp_path / "f.txt"), "--weights", "nan,1"]) == 2
    assert "finite" in capsys.readouterr().err
    assert main(["fuse", str(vec), "-o", str(vec)]) == 2
    assert "is the input" in capsys.readouterr().err
    assert vec.read_text() == "a 1 0\nb 0 1\nc 1 1\n"


# ---- how the CLI reports each class of error ------------------------------------------------------------------


class Boom(Exception):
    pass


@pytest.mark.parametrize("exc,code,needle", [
    (MemoryError(), 2, "out of memory"),
    (PermissionError(13, "Permission denied", "/some/file"), 2, "Permission denied: '/some/file'"),
    (IsADirectoryError(21, "Is a directory", "/some/dir"), 2, "Is a directory: '/some/dir'"),
    (TypeError("function takes exactly 5 arguments"), 2, "function takes exactly 5 arguments"),
    (RuntimeError("first line\nException raised from ... (C++ context)"), 2, "first line"),
    (KeyboardInterrupt(), 130, "interrupted (Ctrl-C)"),
    (Boom("something odd"), 1, "unexpected Boom: something odd (set EMBEDFAST_DEBUG=1"),
])
def test_cli_reports_each_error_class_in_one_line(monkeypatch, capsys, exc, code, needle):
    import embedfast.vectors as vectors_mod

    def raiser(*a, **k):
        raise exc

    monkeypatch.setattr(vectors_mod, "load_vectors", raiser)
    monkeypatch.delenv("EMBEDFAST_DEBUG", raising=False)
    assert main(["info", "whatever.txt"]) == code
    err = capsys.readouterr().err
    assert err.startswith("embedfast info: ") and needle in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_embedfast_debug_gives_the_traceback(monkeypatch):
    import embedfast.vectors as vectors_mod

    def raiser(*a, **k):
        raise Boom("with traceback")

    monkeypatch.setattr(vectors_mod, "load_vectors", raiser)
    monkeypatch.setenv("EMBEDFAST_DEBUG", "1")
    with pytest.raises(Boom):
        main(["info", "whatever.txt"])


def test_demo_workdir_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["demo", "--quick", "--workdir", str(f)]) == 2
    err = capsys.readouterr().err
    assert "embedfast demo: error:" in err and str(f) in err and len(err.strip().splitlines()) == 1


def test_sweep_api_never_silently_wrong(tmp_path):
    """Small, odd but legal settings train to finite vectors of the right shape."""
    sents, _ = planted_corpus(sentences=100)
    for kw in [dict(negative=0), dict(sample=1.0), dict(max_vocab=3), dict(window=1000), dict(chunk_words=1),
               dict(ns_exponent=-10.0), dict(max_sentence_length=1), dict(dim=1)]:
        args = {**dict(dim=4, min_count=1, epochs=1, threads=1), **kw}
        w = Word2Vec(**args).train(sents, progress=False)
        assert w.w_in.shape == (len(w.words), args["dim"]) and bool(torch.isfinite(w.w_in).all()), kw
        assert w.done and math.isfinite(w.loss_history[-1][1]), kw
    assert isinstance(embedfast.Word2Vec, type)


def test_tables_larger_than_memory_are_refused_before_allocating(monkeypatch, capsys, tmp_path):
    import embedfast.word2vec.trainer as trainer_mod

    monkeypatch.setattr(trainer_mod, "_physical_memory", lambda: 1000.0)
    w = Word2Vec(dim=100, min_count=1)
    with pytest.raises(MemoryError, match=r"the tables of 3 words x dim 100 need .* more than this machine's memory"):
        w.build_vocab([["a", "b", "c"]])
    assert w.w_in is None
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c\n")
    assert main(["train", str(corpus), "-o", str(tmp_path / "o.txt"), "--min-count", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("embedfast train: error: out of memory (Word2Vec.build_vocab: the tables of 3 words")
    assert len(err.strip().splitlines()) == 1
