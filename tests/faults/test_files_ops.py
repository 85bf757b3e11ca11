"""Hostile files and byte buffers handed to the C++ ops: load_vectors_raw, corpus_build_vocab, corpus_encode.

Part of the fault suite (tests/faults/), which is organised by what a user hands the package; here: paths that
are not regular files, files that change while they are read, lying or truncated headers, absurd sizes, messy
bytes, and the vocabulary tensors of corpus_encode (a crafted checkpoint reaches them). Anything that could end
in a signal, a hang or an allocation of terabytes runs in a child process with a timeout (tests/faults/util.py).

The contract checked: a clear Python error naming the file (and line) or the argument, or the right result;
never a signal, a hang, or a silently different result.
"""
from __future__ import annotations

import json
import os
import random
import struct
import textwrap

import numpy as np
import pytest
import torch

import embedfast  # noqa: F401
from embedfast import ops
from embedfast.ops import LOAD_STATS, SKIP_REASONS, load_vectors_raw

from tests.test_vectors_op import words_of, write

from .util import assert_no_signal, run_python

S = {name: i for i, name in enumerate(LOAD_STATS)}
TRUNCATED = {v: k for k, v in SKIP_REASONS.items()}["truncated record"]
TOO_MANY = {v: k for k, v in SKIP_REASONS.items()}["too many values"]


def child(code: str, timeout: float = 240.0) -> dict:
    """Runs `code` in a fresh interpreter; it must print one line 'RESULT <json>'. Fails on a signal or a hang."""
    r = run_python(textwrap.dedent(code), timeout=timeout)
    assert_no_signal(r)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    assert r.returncode == 0 and lines, r.describe()
    return json.loads(lines[-1][len("RESULT "):])


CHILD_PRELUDE = """
import json, os, sys, torch
from embedfast import ops
def attempt(fn):
    try:
        fn()
        return "ok"
    except Exception as e:
        return type(e).__name__ + ": " + str(e).splitlines()[0]
"""


# ---------------------------------------------------------------------------------------------------------------
# paths that are not regular files: refused at once, never a blocking open or read
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["fifo", "directory", "device", "socket"])
def test_non_regular_paths_are_refused_without_blocking(tmp_path, kind):
    res = child(CHILD_PRELUDE + f"""
import socket
tmp = {str(tmp_path)!r}
kind = {kind!r}
if kind == "fifo":
    path = os.path.join(tmp, "pipe"); os.mkfifo(path)  # nobody ever writes: an open without O_NONBLOCK blocks
elif kind == "directory":
    path = tmp
elif kind == "device":
    path = "/dev/null"
else:
    path = os.path.join(tmp, "sock"); s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(1)
wb = torch.tensor(list(b"ab"), dtype=torch.uint8)
out = dict(path=path,
           load=attempt(lambda: ops.load_vectors_raw(path)),
           load_bin=attempt(lambda: ops.load_vectors_raw(path, binary=True)),
           vocab=attempt(lambda: ops.corpus_build_vocab(path, min_count=1)),
           encode=attempt(lambda: ops.corpus_encode(path, word_bytes=wb, word_offsets=torch.tensor([0, 1, 2]))))
print("RESULT " + json.dumps(out))
""", timeout=120)
    what = {"fifo": "is a named pipe (FIFO)", "directory": "is a directory", "device": "is a character device",
            "socket": "is a socket"}[kind]
    for op in ("load", "load_bin", "vocab", "encode"):
        msg = res[op]
        assert msg.startswith("ValueError: ") and what in msg and res["path"] in msg, (op, msg)
        assert "not a regular file" in msg, (op, msg)


# ---------------------------------------------------------------------------------------------------------------
# files that change while they are read: an error naming the file, or a consistent result; never SIGBUS
# ---------------------------------------------------------------------------------------------------------------

CHANGE_CHILD = CHILD_PRELUDE + """
import time, random
path = {path!r}
op = {op!r}
rng = random.Random(7)
if op == "binary":
    import numpy as np
    mat = np.random.default_rng(1).normal(size=(150000, 24)).astype("<f4")
    DATA = b"%d 24\\n" % len(mat) + b"".join(b"w%d " % i + mat[i].tobytes() for i in range(len(mat)))
    NEW = b"%d 24\\n" % len(mat) + b"".join(b"w%d " % i + (mat[i] + 1).tobytes() for i in range(len(mat)))
else:
    lines = []
    for i in range(120000):
        vals = " ".join("%.5f" % rng.uniform(-1, 1) for _ in range(12))
        lines.append("w%d %s" % (i, vals))
    DATA = ("\\n".join(lines) + "\\n").encode()
    NEW = DATA.replace(b"1", b"2")
assert len(NEW) == len(DATA)
AFTER = dict(truncate0=b"", truncate_half=DATA[: len(DATA) // 2], append=DATA + DATA[: len(DATA) // 3], rewrite=NEW)

def make(data=DATA):
    with open(path, "wb") as f:
        f.write(data)

def load():
    if op == "text":
        m, wb, wo, *_ = ops.load_vectors_raw(path, num_threads=2)
        return [m, wb, wo]
    if op == "binary":
        m, wb, wo, *_ = ops.load_vectors_raw(path, binary=True)
        return [m, wb, wo]
    if op == "vocab":
        return list(ops.corpus_build_vocab(path, min_count=1, num_threads=2))
    wb = torch.tensor(list(b"w1w2w3w4w5"), dtype=torch.uint8)
    return list(ops.corpus_encode(path, word_bytes=wb, word_offsets=torch.tensor([0, 2, 4, 6, 8, 10]), num_threads=2))

def same(a, b):
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, b))

def load_or_error():
    try:
        return load()
    except Exception as e:
        return type(e).__name__ + ": " + str(e)

post = {{}}
for action, data in AFTER.items():  # what a read of the changed file gives (the change came before the open)
    make(data)
    post[action] = load_or_error()
make(); full = load()
t0 = time.perf_counter(); load(); dur = time.perf_counter() - t0
outcomes = []
for action in ("truncate0", "truncate_half", "append", "rewrite"):
    for i in range(5):
        make()
        delay = 0.015 + dur * i / 5
        pid = os.fork()
        if pid == 0:
            try:
                time.sleep(delay)
                if action == "truncate0":
                    os.truncate(path, 0)
                elif action == "truncate_half":
                    os.truncate(path, len(DATA) // 2)
                elif action == "append":
                    with open(path, "ab") as f:
                        f.write(DATA[: len(DATA) // 3])
                else:
                    fd = os.open(path, os.O_WRONLY)
                    os.pwrite(fd, NEW, 0)
                    os.close(fd)
            finally:
                os._exit(0)
        got = load_or_error()
        if same(got, full):
            outcome = "same"
        elif same(got, post[action]):
            outcome = "post"
        elif isinstance(got, str) and got.startswith("RuntimeError") and "changed while it was being read" in got \
                and path in got:
            outcome = "changed"
        else:
            outcome = "DIFFERENT: " + (got if isinstance(got, str) else "a different result")
        os.waitpid(pid, 0)
        outcomes.append([action, outcome])
print("RESULT " + json.dumps(dict(outcomes=outcomes, seconds=dur)))
"""


@pytest.mark.parametrize("op", ["text", "binary", pytest.param("vocab", marks=pytest.mark.slow), "encode"])  # vocab: make test-slow
def test_file_changed_while_read_gives_an_error_never_a_signal(tmp_path, op):
    res = child(CHANGE_CHILD.format(path=os.path.join(tmp_path, "f.txt"), op=op), timeout=300)
    for action, outcome in res["outcomes"]:
        # "same": the change came after the read; "post": before the open (what reading the changed file gives)
        assert outcome in ("same", "changed", "post"), (action, outcome, res)


# ---------------------------------------------------------------------------------------------------------------
# corpus_encode's vocabulary tensors (reachable from a crafted checkpoint): checked before any read
# ---------------------------------------------------------------------------------------------------------------

def test_corpus_encode_hostile_word_offsets(tmp_path):
    res = child(CHILD_PRELUDE + """
import random
data = torch.frombuffer(bytearray(b"abc a b c\\nb c a\\n"), dtype=torch.uint8)
wb3 = torch.tensor(list(b"abc"), dtype=torch.uint8)
def enc(offsets, wb=wb3, dtype=torch.int64):
    return attempt(lambda: ops.corpus_encode(data=data, word_bytes=wb, word_offsets=torch.tensor(offsets, dtype=dtype)))
cases = {
    "far_end": enc([0, 10**9, 2, 3]),
    "negative": enc([0, -5, 2, 3]),
    "huge_negative": enc([0, -(2**62), 2, 3]),
    "back": enc([0, 2, 1, 3]),
    "empty_word": enc([0, 1, 1, 3]),
    "first_not_0": enc([1, 2, 3]),
    "last_short": enc([0, 1, 2]),
    "last_long": enc([0, 1, 2, 4]),
    "duplicate": enc([0, 1, 2], wb=torch.tensor(list(b"aa"), dtype=torch.uint8)),
    "whitespace": enc([0, 1, 3], wb=torch.tensor(list(b"a c"), dtype=torch.uint8)),
    "newline": enc([0, 2], wb=torch.tensor(list(b"a\\n"), dtype=torch.uint8)),
    "int32": enc([0, 1, 2, 3], dtype=torch.int32),
    "2d": attempt(lambda: ops.corpus_encode(data=data, word_bytes=wb3, word_offsets=torch.tensor([[0, 1, 2, 3]]))),
    "no_entry": enc([]),
    "good": enc([0, 1, 2, 3]),
}
# random offsets: every one either encodes or raises ValueError, none crashes
rng = random.Random(3)
fuzz = {"ok": 0, "ValueError": 0, "other": []}
for _ in range(3000):
    n = rng.randrange(0, 6)
    offs = [rng.choice([0, 1, 2, 3, -1, 10**9, 2**62, -(2**63), rng.randrange(-10, 10)]) for _ in range(n)]
    r = enc(offs)
    key = "ok" if r == "ok" else r.split(":")[0]
    if key in fuzz and key != "other":
        fuzz[key] += 1
    else:
        fuzz["other"].append([offs, r])
cases["fuzz"] = fuzz
print("RESULT " + json.dumps(cases))
""", timeout=180)
    need = {
        "far_end": "word_offsets[1] = 1000000000 beyond len(word_bytes) = 3",
        "negative": "must be strictly increasing",
        "huge_negative": "must be strictly increasing",
        "back": "must be strictly increasing",
        "empty_word": "word 1 is empty",
        "first_not_0": "must start at 0",
        "last_short": "must end at len(word_bytes) = 3",
        "last_long": "word_offsets[3] = 4 beyond len(word_bytes) = 3",
        "duplicate": "appears twice",
        "whitespace": "contains a whitespace byte",
        "newline": "contains a whitespace byte",
        "int32": "'word_offsets' must have dtype Long",
        "2d": "'word_offsets' must be 1-D",
        "no_entry": "at least 1 entry",
    }
    for case, text in need.items():
        assert res[case].startswith("ValueError: corpus_encode: ") and text in res[case], (case, res[case])
    assert res["good"] == "ok"
    assert res["fuzz"]["other"] == [] and res["fuzz"]["ok"] > 0 and res["fuzz"]["ValueError"] > 0, res["fuzz"]


def test_corpus_op_arguments_are_checked():
    data = torch.frombuffer(bytearray(b"a b\nb a\n"), dtype=torch.uint8)
    wb, wo, _, _ = ops.corpus_build_vocab(data=data, min_count=1)
    with pytest.raises(ValueError, match=r"corpus_build_vocab: num_threads must be >= 0 .* got -1"):
        ops.corpus_build_vocab(data=data, min_count=1, num_threads=-1)
    with pytest.raises(ValueError, match=r"corpus_encode: num_threads must be >= 0 .* got -3"):
        ops.corpus_encode(data=data, word_bytes=wb, word_offsets=wo, num_threads=-3)
    with pytest.raises(ValueError, match="min_count must be >= 1, got -2"):
        ops.corpus_build_vocab(data=data, min_count=-2)
    with pytest.raises(ValueError, match="max_vocab must be -1 .* got -7"):
        ops.corpus_build_vocab(data=data, max_vocab=-7)
    with pytest.raises(ValueError, match="max_sentence_length must be >= 1, got -1"):
        ops.corpus_encode(data=data, word_bytes=wb, word_offsets=wo, max_sentence_length=-1)
    with pytest.raises(ValueError, match="max_bytes must be -1 .* got -5"):
        ops.corpus_encode(data=data, word_bytes=wb, word_offsets=wo, max_bytes=-5)
    with pytest.raises(IndexError, match=r"start = -4 is outside \[0, 8\]"):
        ops.corpus_encode(data=data, word_bytes=wb, word_offsets=wo, start=-4)
    with pytest.raises(IndexError, match=r"start = 9 is outside \[0, 8\]"):
        ops.corpus_encode(data=data, word_bytes=wb, word_offsets=wo, start=9)
    with pytest.raises(ValueError, match="start = 3 is not the beginning of a line"):
        ops.corpus_encode(data=data, word_bytes=wb, word_offsets=wo, start=3)
    # a huge thread count is capped, not an allocation of that many workers
    ids, _, _ = ops.corpus_encode(data=data, word_bytes=wb, word_offsets=wo, num_threads=10**12)
    assert ids.numel() == 4
    with pytest.raises(ValueError, match=r"load_vectors: num_threads must be >= 0"):
        load_vectors_raw("/nonexistent", num_threads=-1)
    with pytest.raises(ValueError, match=r"load_vectors: limit must be -1 .* got -5"):
        load_vectors_raw("/nonexistent", limit=-5)


# ---------------------------------------------------------------------------------------------------------------
# absurd sizes: checked against the file's size before anything is allocated (no std::bad_alloc)
# ---------------------------------------------------------------------------------------------------------------

def test_absurd_header_sizes_are_refused_before_allocating(tmp_path):
    res = child(CHILD_PRELUDE + f"""
import struct
tmp = {str(tmp_path)!r}
def w(name, data):
    p = os.path.join(tmp, name)
    with open(p, "wb") as f:
        f.write(data)
    return p
rec = b"a " + struct.pack("<3f", 1, 2, 3)
out = dict(
    bin_rows=attempt(lambda: ops.load_vectors_raw(w("r.bin", b"1000000000000 3\\n" + rec), binary=True)),
    bin_rows_skip=attempt(lambda: ops.load_vectors_raw(w("r.bin", b"1000000000000 3\\n" + rec), binary=True,
                                                      skip_errors=True)),
    bin_dim=attempt(lambda: ops.load_vectors_raw(w("d.bin", b"1 4611686018427387904\\n" + rec), binary=True)),
    bin_overflow=attempt(lambda: ops.load_vectors_raw(w("o.bin", b"1099511627776 1073741824\\n" + rec), binary=True)),
    text_dim=attempt(lambda: ops.load_vectors_raw(w("d.txt", b"1 1000000000000\\na 1 2\\n"))),
    text_rows=attempt(lambda: ops.load_vectors_raw(w("r.txt", b"1000000000000 2\\na 1 2\\n"))),
    text_dim_arg=attempt(lambda: ops.load_vectors_raw(w("a.txt", b"a 1 2\\n" + b"\\n" * 200000 + b"b 1 2\\n"),
                                                     dim=10**6, skip_errors=True)),
    text_big_header_blank=attempt(lambda: ops.load_vectors_raw(w("b.txt", b"3 100000\\n" + b"\\n" * 300000),
                                                              skip_errors=True)),
)
m = ops.load_vectors_raw(w("a.txt", b"a 1 2\\n" + b"\\n" * 200000 + b"b 1 2\\n"), dim=10**6, skip_errors=True)
out["text_dim_arg_result"] = [list(m[0].shape), m[4].tolist()]
print("RESULT " + json.dumps(out))
""", timeout=180)
    r = res["bin_rows"]
    assert r.startswith("ValueError") and "r.bin" in r and "promises 1000000000000 records of 3 float32 values" in r
    assert "the file has 14 bytes after its header" in r and "room for at most 1 record" in r, r
    assert res["bin_rows_skip"] == "ok"
    for key, name in (("bin_dim", "d.bin"), ("bin_overflow", "o.bin")):
        assert res[key].startswith("ValueError") and name in res[key] and "promises" in res[key], res[key]
    r = res["text_dim"]
    assert r.startswith("ValueError") and "d.txt" in r and "promises 1 row of 1000000000000 values" in r, r
    assert "the file has 6 bytes after its header" in r, r
    r = res["text_rows"]
    assert r.startswith("ValueError") and "promises 1000000000000 rows of 2 values" in r and "ends after 1 row" in r
    assert res["text_dim_arg"] == "ok" and res["text_big_header_blank"] == "ok"
    shape, skipped = res["text_dim_arg_result"]
    assert shape == [0, 10**6] and [line for line, _ in skipped] == [1, 200002]


# ---------------------------------------------------------------------------------------------------------------
# headers that promise more rows than the file has
# ---------------------------------------------------------------------------------------------------------------

def test_text_header_promising_more_rows_is_an_error(tmp_path):
    full = b"3 3\na 0.1 0.2 0.34\nb 0.4 0.5 0.66\nc 0.7 0.8 0.99\n"
    second = full.index(b"b ")
    third = full.index(b"c ")
    for cut in range(second + 1, third):  # every cut inside row 2: the file ends before the promised 3 rows
        path = write(tmp_path, full[:cut])
        with pytest.raises(ValueError, match=r"v\.txt.*(promises 3 rows of 3 values|:3: )") as e:
            load_vectors_raw(path)
        if "promises" in str(e.value):
            assert "ends after 2 rows (line 3, the last, has no newline" in str(e.value), str(e.value)
        m, wb, wo, stats, skipped, _ = load_vectors_raw(path, skip_errors=True)
        assert words_of(wb, wo) == [b"a"] and m.shape == (1, 3)  # the cut row is never kept
        assert skipped.tolist()[-1] == [4, TRUNCATED] and [3, skipped.tolist()[0][1]] == skipped.tolist()[0]
    # all lines complete, one row missing
    with pytest.raises(ValueError, match=r"promises 3 rows of 3 values, but the file ends after 2 rows \(line 3 is"):
        load_vectors_raw(write(tmp_path, full[:third]))
    # header only
    with pytest.raises(ValueError, match="promises 5 rows of 3 values, but the file has no data lines after its header"):
        load_vectors_raw(write(tmp_path, b"5 3\n"))
    m, *_, skipped, _ = load_vectors_raw(write(tmp_path, b"5 3\n"), skip_errors=True)
    assert m.shape == (0, 3) and skipped.tolist() == [[2, TRUNCATED]]
    assert load_vectors_raw(write(tmp_path, b"0 3\n"))[0].shape == (0, 3)
    # limit below the promise: only the limit is needed
    assert load_vectors_raw(write(tmp_path, full[:third]), limit=2)[0].shape == (2, 3)
    with pytest.raises(ValueError, match=r"promises 5 rows of 3 values \(limit=3\), but the file ends after 2 rows"):
        load_vectors_raw(write(tmp_path, b"5 3\n" + full[4:third]), limit=3)
    # the full file, with or without its final newline, loads
    assert load_vectors_raw(write(tmp_path, full))[0].shape == (3, 3)
    assert load_vectors_raw(write(tmp_path, full[:-1]))[0][2].tolist() == pytest.approx([0.7, 0.8, 0.99])


def word2vec_binary(words, mat) -> bytes:
    return f"{len(words)} {mat.shape[1]}\n".encode() + b"".join(
        w + b" " + row.astype("<f4").tobytes() + b"\n" for w, row in zip(words, mat))


def test_binary_cut_at_every_offset(tmp_path):
    res = child(CHILD_PRELUDE + f"""
import numpy as np
tmp = {str(tmp_path)!r}
mat = np.random.default_rng(2).normal(size=(4, 5)).astype("<f4")
data = b"4 5\\n" + b"".join(w + b" " + r.tobytes() + b"\\n" for w, r in zip([b"a", b"bb", b"ccc", b"d"], mat))
path = os.path.join(tmp, "cut.bin")
out = []
for cut in range(len(data) + 1):
    with open(path, "wb") as f:
        f.write(data[:cut])
    strict = attempt(lambda: ops.load_vectors_raw(path, binary=True))
    try:
        m, wb, wo, st, sk, _ = ops.load_vectors_raw(path, binary=True, skip_errors=True)
        skip = [int(m.shape[0]), sk.tolist(), bool(np.array_equal(m.numpy(), mat[: m.shape[0]]))]
    except ValueError as e:
        skip = str(e)
    out.append([cut, strict, skip])
print("RESULT " + json.dumps(dict(n=len(data), out=out)))
""", timeout=120)
    n = res["n"]
    for cut, strict, skip in res["out"]:
        if cut >= n - 1:  # complete (the final newline is optional)
            assert strict == "ok" and skip[0] == 4 and skip[1] == [] and skip[2], (cut, strict, skip)
            continue
        assert strict.startswith("ValueError: load_vectors: ") and "cut.bin" in strict, (cut, strict)
        if isinstance(skip, list):  # skip mode: the complete records, and the cut listed
            rows, skipped, values_ok = skip
            assert values_ok and skipped == [[rows + 1, TRUNCATED]], (cut, skip)
    # a cut at a record boundary says how many records there are
    mat = np.ones((3, 2), np.float32)
    data = word2vec_binary([b"x", b"y", b"z"], mat)
    one_rec = len(b"x ") + 8 + 1
    with pytest.raises(ValueError, match=r"promises 3 records of 2 float32 values, but the file ends after 2 "
                                         r"complete records: record 3 of 3 .* is truncated"):
        load_vectors_raw(write(tmp_path, data[:len(b"3 2\n") + 2 * one_rec + 7], "b.bin"), binary=True)


# ---------------------------------------------------------------------------------------------------------------
# no header, inconsistent field counts: the dimension is unambiguous or an error; extra numbers are not words
# ---------------------------------------------------------------------------------------------------------------

def test_dimension_must_be_unambiguous(tmp_path):
    with pytest.raises(ValueError, match=r"v\.txt': cannot infer the dimension: the first 2 data lines do not agree"
                                         r".*give dim=") as e:
        load_vectors_raw(write(tmp_path, b"a 1 2 3 4\nb 1 2"))
    assert "5 fields on 1 line (line 1)" in str(e.value) and "3 fields on 1 line (line 2)" in str(e.value)
    with pytest.raises(ValueError, match="cannot infer the dimension"):
        load_vectors_raw(write(tmp_path, b"a 1 2 3 4\nb 1 2\nc 1 2 3\nd 1"))
    # dim= settles it: the other line is then malformed, with its line
    with pytest.raises(ValueError, match=r"v\.txt:1: expected a word and 2 values, found 4 values: the fields after "
                                         r"the word \('1 2'\) are numbers"):
        load_vectors_raw(write(tmp_path, b"a 1 2 3 4\nb 1 2"), dim=2)
    m, wb, wo, stats, skipped, _ = load_vectors_raw(write(tmp_path, b"a 1 2 3 4\nb 1 2"), dim=2, skip_errors=True)
    assert words_of(wb, wo) == [b"b"] and skipped.tolist() == [[1, TOO_MANY]]
    # a majority decides; the odd line is an error, not the word 'a 1 2'
    with pytest.raises(ValueError, match=r"v\.txt:1: expected a word and 2 values, found 4 values"):
        load_vectors_raw(write(tmp_path, b"a 1 2 3 4\nb 1 2\nc 3 4\n"))
    # a header's dimension gets the same rule
    with pytest.raises(ValueError, match=r"v\.txt:2: the header gives dimension 2 but this line has 4 values"):
        load_vectors_raw(write(tmp_path, b"2 2\na 1 2 3 4\nb 1 2\n"))


def test_words_with_spaces_are_kept(tmp_path):
    # GloVe 840B: ". . ." and "at name@domain.com" are words; "new york" too. A tie between field counts is
    # settled when only one dimension reads every line.
    data = b". . . 0.5 1\nat name@domain.com 2 3\nnew york 4 5\nb 6 7\n"
    m, wb, wo, stats, skipped, _ = load_vectors_raw(write(tmp_path, data))
    assert words_of(wb, wo) == [b". . .", b"at name@domain.com", b"new york", b"b"]
    assert m.tolist() == [[0.5, 1], [2, 3], [4, 5], [6, 7]] and stats[S["spaced_words"]] == 3
    m, wb, wo, *_ = load_vectors_raw(write(tmp_path, b"new york 0 0 0\nb 0 0 0\n"))
    assert words_of(wb, wo) == [b"new york", b"b"] and m.shape == (2, 3)
    # a number inside a word is fine when not every extra field is one
    m, wb, wo, *_ = load_vectors_raw(write(tmp_path, b"united 4 u 1 2\nb 1 2\nc 3 4\n"))
    assert words_of(wb, wo) == [b"united 4 u", b"b", b"c"]


# ---------------------------------------------------------------------------------------------------------------
# messy bytes: no signal, no hang, no silent change
# ---------------------------------------------------------------------------------------------------------------

def test_non_finite_and_huge_values(tmp_path):
    for tok, why in ((b"nan", "not finite"), (b"-nan", "not finite"), (b"inf", "not finite"),
                     (b"-infinity", "not finite"), (b"1e39", "out of range"), (b"-3.5e38", "out of range")):
        path = write(tmp_path, b"a 1 2\nb 3 " + tok + b"\nc 5 6\n")
        with pytest.raises(ValueError, match=rf"v\.txt:2: value '{tok.decode()}' \(field 3\) is {why}"):
            load_vectors_raw(path)
        m, wb, wo, _, skipped, _ = load_vectors_raw(path, skip_errors=True)
        assert words_of(wb, wo) == [b"a", b"c"] and skipped.shape == (1, 2) and int(skipped[0, 0]) == 2
    # float64 holds 1e39
    assert load_vectors_raw(write(tmp_path, b"a 1 1e39\n"), dtype=torch.float64)[0][0, 1].item() == 1e39
    # 'nan' / 'inf' as a word are words
    m, wb, wo, *_ = load_vectors_raw(write(tmp_path, b"nan 1 2\ninf 3 4\n"))
    assert words_of(wb, wo) == [b"nan", b"inf"] and m.tolist() == [[1, 2], [3, 4]]
    # binary: NaN / inf bits are refused the same way
    rec = b"2 2\na " + struct.pack("<2f", 1, 2) + b"\nb " + struct.pack("<2f", 3, float("inf")) + b"\n"
    with pytest.raises(ValueError, match=r"record 2 \(word 'b'.*non-finite value \(infinity\) at position 1"):
        load_vectors_raw(write(tmp_path, rec, "n.bin"), binary=True)
    m, wb, wo, _, skipped, _ = load_vectors_raw(write(tmp_path, rec, "n.bin"), binary=True, skip_errors=True)
    assert words_of(wb, wo) == [b"a"] and skipped.tolist()[0][0] == 2


def test_messy_bytes_in_vectors_files(tmp_path):
    with pytest.raises(ValueError, match="the file is empty"):
        load_vectors_raw(write(tmp_path, b""))
    for blank in (b" ", b"\n\n", b" \t\r\n\r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n  \n"):
        with pytest.raises(ValueError, match="has no data lines"):
            load_vectors_raw(write(tmp_path, blank))
    data = (b"\xef\xbb\xbfa\x00b 1 2\r\n"   # BOM, NUL inside a word, CRLF
            b"caf\xe9 3 4\ncaf\xe8 5 6\ncaf\xea 7 8\n"  # Latin-1: three different words, kept as bytes
            b"t\tab\t9\t10\n")
    m, wb, wo, stats, _, dups = load_vectors_raw(write(tmp_path, data))
    assert words_of(wb, wo) == [b"a\x00b", b"caf\xe9", b"caf\xe8", b"caf\xea", b"t\tab"]
    assert m[:, 0].tolist() == [1, 3, 5, 7, 9] and dups.numel() == 0 and stats[S["invalid_utf8"]] == 3
    # bytes of the file in an error message are escaped: the error stays a ValueError (not UnicodeDecodeError)
    with pytest.raises(ValueError, match=r"v\.txt:2: '3\\x00' \(field 3\) is not a number"):
        load_vectors_raw(write(tmp_path, b"a 1 2\nb 4 3\x00\n"))
    with pytest.raises(ValueError, match=r"v\.txt:2: '\\xe9' \(field 2\) is not a number"):
        load_vectors_raw(write(tmp_path, b"a 1 2\nb \xe9 1\n"))
    with pytest.raises(ValueError, match=r"v\.txt:2: 'na\u00efve\\xff' \(field 3\) is not a number"):
        load_vectors_raw(write(tmp_path, "a 1 2\nb 1 naïve".encode() + b"\xff\n"))
    with pytest.raises(ValueError, match=r"word 1 \('caf\\xe9'\) appears twice"):
        ops.corpus_encode(data=torch.zeros(1, dtype=torch.uint8), word_bytes=torch.tensor(list(b"caf\xe9caf\xe9"),
                          dtype=torch.uint8), word_offsets=torch.tensor([0, 4, 8]))


def reference_parse(data: bytes, dim: int):
    words, rows = [], []
    for line in data.split(b"\n"):
        f = line.split()
        if f:
            words.append(b" ".join(f[:-dim]) if len(f) > dim + 1 else f[0])
            rows.append([np.float32(x) for x in f[-dim:]])
    return words, np.array(rows, np.float32)


def test_lines_straddling_read_blocks(tmp_path):
    """Rows of very different lengths, some far longer than a read block (1 MiB), land where they belong."""
    rng = random.Random(5)
    dim = 3
    lines = []
    for i in range(6000):
        k = rng.random()
        if k < 0.002:
            word = b"long" + b"x" * rng.randrange(1 << 20, 3 << 20)  # a word longer than a block
        elif k < 0.01:
            word = b"w%d" % i + b" pad" * rng.randrange(1, 2000)  # a word with many spaces
        else:
            word = b"w%d" % i
        vals = b" ".join(b"%.4f" % rng.uniform(-1, 1) for _ in range(dim))
        lines.append(word + b" " * rng.randrange(1, 4) + vals + (b"\r" if i % 7 == 0 else b""))
    data = b"\n".join(lines) + b"\n"
    path = write(tmp_path, data)
    words, want = reference_parse(data, dim)
    for threads in (1, 2, 3):
        m, wb, wo, stats, skipped, _ = load_vectors_raw(path, num_threads=threads)
        assert words_of(wb, wo) == words and np.array_equal(m.numpy(), want), threads
        assert skipped.shape == (0, 2) and stats[S["lines"]] == len(lines)
    # one line of many values, longer than a block
    vals = np.round(np.random.default_rng(0).normal(size=400000), 4).astype(np.float32)
    big = b"only " + b" ".join(b"%.4f" % v for v in vals) + b"\n"
    m, wb, wo, *_ = load_vectors_raw(write(tmp_path, big))
    assert m.shape == (1, vals.size) and np.array_equal(m[0].numpy(), vals)


def corpus_text(rng: random.Random) -> bytes:
    vocab = [b"the", b"cat", b"caf\xe9", b"caf\xe8", b"caf\xea", b"a\x00b", b"\xff\xfe"]

    def word():
        return b"x" * 3000 if rng.random() < 0.002 else rng.choice(vocab)
    out = [b"\xef\xbb\xbfthe cat"]
    for _ in range(30000):
        sep = rng.choice([b" ", b"  ", b"\t", b" \r"])
        out.append(sep.join(word() for _ in range(rng.randrange(0, 30))) + rng.choice([b"", b"\r", b" "]))
    out.append(b" ".join(rng.choice(vocab) for _ in range(600000)))  # a line of several MiB, no newline at the end
    return b"\n".join(out)


def test_corpus_file_reads_match_the_same_bytes_in_memory(tmp_path):
    """The file path (pread, blocks of 1 MiB cut after a separator) and the in-memory path give the same counts,
    vocabulary and encoding: no token is split or merged at a block boundary, non-UTF-8 bytes stay distinct, and
    a leading byte-order mark is not part of the first word."""
    raw = corpus_text(random.Random(11))
    path = write(tmp_path, raw, "c.txt")
    data = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    f_wb, f_wo, f_counts, f_st = ops.corpus_build_vocab(path, min_count=1, num_threads=2)
    m_wb, m_wo, m_counts, m_st = ops.corpus_build_vocab(data=data, min_count=1, num_threads=2)
    assert torch.equal(f_wb, m_wb) and torch.equal(f_wo, m_wo) and torch.equal(f_counts, m_counts)
    assert torch.equal(f_st, m_st)
    words = words_of(f_wb, f_wo)
    assert sorted(words) == sorted([b"the", b"cat", b"caf\xe9", b"caf\xe8", b"caf\xea", b"a\x00b", b"\xff\xfe",
                                    b"x" * 3000])
    want = {}
    for tok in raw[3:].split():
        want[tok] = want.get(tok, 0) + 1
    assert dict(zip(words, f_counts.tolist())) == want
    f_ids, f_off, f_est = ops.corpus_encode(path, word_bytes=f_wb, word_offsets=f_wo, num_threads=3)
    m_ids, m_off, m_est = ops.corpus_encode(data=data, word_bytes=f_wb, word_offsets=f_wo, num_threads=1)
    assert torch.equal(f_ids, m_ids) and torch.equal(f_off, m_off) and torch.equal(f_est, m_est)
    # and streamed from the file in blocks, it is the same again
    start, parts = 0, []
    while start < len(raw):
        ids, _, st = ops.corpus_encode(path, word_bytes=f_wb, word_offsets=f_wo, start=start, max_bytes=3 << 20)
        parts.append(ids)
        start += int(st[0])
    assert torch.equal(torch.cat(parts), f_ids)


def test_corpus_empty_and_blank_files(tmp_path):
    for raw in (b"", b"\n\n", b" \t \r\n", b"\xef\xbb\xbf"):
        wb, wo, counts, st = ops.corpus_build_vocab(write(tmp_path, raw, "c.txt"), min_count=1)
        assert wo.tolist() == [0] and counts.numel() == 0 and int(st[0]) == len(raw)
        ids, off, est = ops.corpus_encode(write(tmp_path, raw, "c.txt"), word_bytes=wb, word_offsets=wo)
        assert ids.numel() == 0 and off.tolist() == [0]


def test_word2vec_binary_record_with_an_empty_word_is_refused_or_skipped(tmp_path):
    # a record that starts with its space has no word (found by the fuzzer: it loaded as the word '')
    rec = lambda w, v: w + b" " + struct.pack("<2f", *v)  # noqa: E731
    path = write(tmp_path, b"3 2\n" + rec(b"a", (1, 2)) + rec(b"", (3, 4)) + rec(b"c", (5, 6)), name="v.bin")
    with pytest.raises(ValueError, match=r"record 2 of 3 .*empty word"):
        load_vectors_raw(path, binary=True)
    m, wb, wo, stats, skipped, _ = load_vectors_raw(path, binary=True, skip_errors=True)
    assert words_of(wb, wo) == [b"a", b"c"]
    assert m.tolist() == [[1.0, 2.0], [5.0, 6.0]]
    assert skipped.tolist() == [[2, 3]]  # record 2, reason 3 (missing word)
    assert SKIP_REASONS[3] == "missing word"
