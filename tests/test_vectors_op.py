"""The C++ parser behind embedfast.load_vectors: torch.ops.embedfast.load_vectors.

The public API (embedfast.load_vectors / Vectors) is tested in the other test_vectors_*.py; here the op itself: exact
float parsing, thread-count independence, every messy-file case at the byte level, word2vec binary, opcheck,
and a fuzz test.
"""
from __future__ import annotations

import os
import random
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedfast.vectors.ops import LOAD_STATS, SKIP_REASONS, load_vectors_raw

S = {name: i for i, name in enumerate(LOAD_STATS)}


def write(tmp_path, data: bytes, name="v.txt") -> str:
    path = os.path.join(tmp_path, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def words_of(word_bytes, offsets):
    b = word_bytes.numpy().tobytes()
    o = offsets.tolist()
    return [b[o[i]:o[i + 1]] for i in range(len(o) - 1)]


def f32_correctly_rounded(text: str) -> np.float32:
    """The float32 nearest to the decimal `text` (ties to even), computed exactly with fractions."""
    x = Fraction(text)
    c = np.float32(float(x))
    with np.errstate(over="ignore"):
        cands = [np.nextafter(c, np.float32(-np.inf)), c, np.nextafter(c, np.float32(np.inf))]

    def key(f):
        if not np.isfinite(f):
            return (Fraction(10) ** 400, 0)
        d = abs(Fraction(float(f)) - x)
        odd = int(np.frombuffer(np.float32(f).tobytes(), np.uint32)[0]) & 1
        return (d, odd)

    best = min(cands, key=key)
    if best == 0 and text.lstrip().startswith("-"):
        return np.float32(-0.0)
    return best


def random_decimal(rng: random.Random) -> str:
    kind = rng.randrange(8)
    if kind == 0:  # GloVe-like %.5g
        return "%.5g" % rng.gauss(0, 0.5)
    if kind == 1:  # short decimals
        return "%.*f" % (rng.randrange(0, 9), rng.uniform(-10, 10))
    if kind == 2:  # exponents
        return "%.*e" % (rng.randrange(0, 8), rng.gauss(0, 1) * 10 ** rng.randrange(-30, 30))
    if kind == 3:  # long mantissas (fall back to from_chars)
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randrange(15, 30)))
        return ("-" if rng.random() < 0.5 else "") + digits[:3] + "." + digits[3:]
    if kind == 4:  # values near float32 rounding midpoints
        f = np.float32(rng.uniform(-100, 100))
        mid = (Fraction(float(f)) + Fraction(float(np.nextafter(f, np.float32(np.inf))))) / 2
        return "%.17g" % float(mid)
    if kind == 5:  # integers
        return str(rng.randrange(-(2**30), 2**30))
    if kind == 6:  # tiny / huge but finite
        return "%.6g" % (rng.choice([-1, 1]) * 10 ** rng.uniform(-37, 38))
    return rng.choice(["0", "-0", "0.0", "1", "-1", "16777217.0", "16777217", "0.1", "3.4028235e38", "1e-10",
                       "1.", ".5", "-.5", "1e+05", "1E5", "0.000000059604644775390625", "2.5e-8"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_floats_are_correctly_rounded(tmp_path, seed):
    rng = random.Random(seed)
    n, d = 300, 7
    texts = [[random_decimal(rng) for _ in range(d)] for _ in range(n)]
    data = "".join(f"w{i} " + " ".join(row) + "\n" for i, row in enumerate(texts)).encode()
    path = write(tmp_path, data)
    m, *_ = load_vectors_raw(path, num_threads=1)
    want = np.array([[f32_correctly_rounded(t) for t in row] for row in texts], dtype=np.float32)
    got = m.numpy()
    # bitwise equality (also tells -0.0 from 0.0)
    bad = np.argwhere(got.view(np.uint32) != want.view(np.uint32))
    assert bad.size == 0, [(texts[i][j], got[i, j], want[i, j]) for i, j in bad[:5]]


def test_common_field_shape_is_correctly_rounded(tmp_path):
    # "[-]D.FFFFFFF" (1 to 7 fraction digits) takes a branch-free path of its own: check many of them
    rng = np.random.default_rng(12345)
    n, d = 2000, 10
    vals = rng.uniform(-9.9999999, 9.9999999, (n, d))
    prec = rng.integers(1, 8, (n, d))
    texts = [["%.*f" % (int(p), x) for p, x in zip(pr, row)] for pr, row in zip(prec, vals)]
    path = write(tmp_path, "".join("w " + " ".join(r) + "\n" for r in texts).encode())
    m, *_ = load_vectors_raw(path, num_threads=2)
    want = np.array([[f32_correctly_rounded(t) for t in r] for r in texts], dtype=np.float32)
    assert np.array_equal(m.numpy().view(np.uint32), want.view(np.uint32))


def test_float64_matches_python_float(tmp_path):
    rng = random.Random(7)
    texts = [[random_decimal(rng) for _ in range(5)] for _ in range(200)]
    path = write(tmp_path, "".join("w " + " ".join(r) + "\n" for r in texts).encode())
    m, *_ = load_vectors_raw(path, dtype=torch.float64, num_threads=1)
    assert m.dtype == torch.float64
    want = np.array([[float(t) for t in r] for r in texts])
    assert np.array_equal(m.numpy().view(np.uint64), want.view(np.uint64))


def make_text(n, d, seed, *, header=False, messy=False):
    g = np.random.default_rng(seed)
    vals = g.normal(0, 0.5, (n, d)).astype(np.float32)
    lines = []
    if header:
        lines.append(f"{n} {d}")
    for i in range(n):
        word = f"w{i}"
        if messy and i % 7 == 3:
            word = f"new york {i}"
        line = word + " " + " ".join("%.5g" % x for x in vals[i])
        if messy and i % 5 == 1:
            line += " "
        lines.append(line)
        if messy and i % 11 == 0:
            lines.append("")
    return ("\n".join(lines) + "\n").encode(), vals


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_threads_give_identical_results(tmp_path, threads):
    data, _ = make_text(5003, 13, seed=threads, messy=True)
    # a few bad rows, to compare the skip lists too
    data = data.replace(b"\nw100 ", b"\nw100 oops ", 1).replace(b"\nw4001 ", b"\nw4001 x", 1)
    assert b"w100 oops" in data and b"w4001 x" in data
    path = write(tmp_path, data)
    one = load_vectors_raw(path, num_threads=1, skip_errors=True, dim=13)
    many = load_vectors_raw(path, num_threads=threads, skip_errors=True, dim=13)
    for a, b in zip(one, many):
        assert torch.equal(a, b)
    assert one[4].shape[0] == 1  # 'w4001 x-0.12 ...': not a number; 'w100 oops ...' is a word with a space
    assert one[3][S["rows"]] == 5003 - 1


def test_values_and_words(tmp_path):
    data, vals = make_text(101, 9, seed=3)
    path = write(tmp_path, data)
    m, wb, wo, stats, skipped, dups = load_vectors_raw(path)
    assert m.shape == (101, 9) and m.dtype == torch.float32
    want = np.array([[np.float32("%.5g" % x) for x in row] for row in vals])
    assert np.array_equal(m.numpy(), want)
    assert words_of(wb, wo) == [f"w{i}".encode() for i in range(101)]
    assert stats[S["dim"]] == 9 and stats[S["header_rows"]] == -1 and skipped.shape == (0, 2)


def test_header_detected_and_checked(tmp_path):
    data, _ = make_text(20, 4, seed=1, header=True)
    m, _, _, stats, _, _ = load_vectors_raw(write(tmp_path, data))
    assert m.shape == (20, 4)
    assert stats[S["header_rows"]] == 20 and stats[S["header_dim"]] == 4
    # header=0 refuses to treat it as a header: line 1 then has too few values
    with pytest.raises(ValueError, match=r"v\.txt:1: .*expected a word and 4 values, found 1"):
        load_vectors_raw(write(tmp_path, data), header=0, dim=4)
    # wrong header dimension: reported once, on the first data line
    bad = data.replace(b"20 4\n", b"20 5\n", 1)
    with pytest.raises(ValueError, match=r"v\.txt:2: the header gives dimension 5 but this line has 4 values"):
        load_vectors_raw(write(tmp_path, bad))
    # header required but missing
    data2, _ = make_text(3, 4, seed=1)
    with pytest.raises(ValueError, match=r"v\.txt:1: expected a word2vec header"):
        load_vectors_raw(write(tmp_path, data2), header=1)


def test_messy_lines(tmp_path):
    data = (
        b"\xef\xbb\xbf"  # BOM
        b"the 1 2 3\r\n"  # CRLF
        b"of 4 5 6 \n"  # trailing space (fastText)
        b"\n   \n"  # blank lines
        b"new york 7 8 9\n"  # word with a space
        b"caf\xe9 1 1 1\n"  # latin-1 byte: not UTF-8, kept
        b"tab\t2\t2\t2\n"  # tabs
        b"last 3 3 3"  # no final newline, complete
    )
    m, wb, wo, stats, skipped, dups = load_vectors_raw(write(tmp_path, data))
    assert words_of(wb, wo) == [b"the", b"of", b"new york", b"caf\xe9", b"tab", b"last"]
    assert m.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 1, 1], [2, 2, 2], [3, 3, 3]]
    assert stats[S["bom"]] == 1 and stats[S["crlf_lines"]] == 1 and stats[S["blank_lines"]] == 2
    assert stats[S["spaced_words"]] == 1 and stats[S["invalid_utf8"]] == 1
    assert stats[S["truncated_last_line"]] == 1 and stats[S["lines"]] == 8


def test_bad_rows_raise_with_file_and_line(tmp_path):
    good = b"a 1 2\nb 3 4\n"
    cases = [
        (good + b"c 5\n", r":3: expected a word and 2 values, found 1 value$"),
        (good + b"c 5 x\n", r":3: 'x' \(field 3\) is not a number"),
        (good + b"c 5 1.5.5\n", r":3: '1.5.5' \(field 3\) is not a number"),
        (good + b"5 6\n", r":3: found 2 numbers but no word"),
        (good + b"c 1e999 1\n", r":3: value '1e999' \(field 2\) is out of range"),
        (good + b"d 1", r":3: .*truncated file"),
    ]
    for data, msg in cases:
        with pytest.raises(ValueError, match=msg):
            load_vectors_raw(write(tmp_path, data), dim=2)


def test_skip_mode_lists_every_skipped_line(tmp_path):
    data = b"a 1 2\nb 3\nc x 4\n\n5 6\nd 1e999 1\ne 7 8\nf 9"
    m, wb, wo, stats, skipped, dups = load_vectors_raw(write(tmp_path, data), dim=2, skip_errors=True)
    assert words_of(wb, wo) == [b"a", b"e"]
    assert m.tolist() == [[1, 2], [7, 8]]
    reasons = {v: k for k, v in SKIP_REASONS.items()}
    assert skipped.tolist() == [
        [2, reasons["too few values"]],
        [3, reasons["not a number"]],
        [5, reasons["missing word"]],
        [6, reasons["value out of range"]],
        [8, reasons["too few values"]],
    ]
    assert stats[S["skipped_rows"]] == 5 and stats[S["rows"]] == 2


def test_duplicates_listed_not_removed(tmp_path):
    data = b"a 1\nb 2\na 3\nc 4\nb 5\na 6\nab 7\n"
    m, wb, wo, stats, _, dups = load_vectors_raw(write(tmp_path, data), num_threads=2)
    assert words_of(wb, wo) == [b"a", b"b", b"a", b"c", b"b", b"a", b"ab"] and m.shape == (7, 1)
    assert dups.tolist() == [2, 4, 5] and stats[S["duplicate_words"]] == 3


def test_dimension_inferred_from_majority(tmp_path):
    # the first line's word has a space: the majority of the first lines decides D
    data = b". . . 1 2 3\n" + b"".join(b"w%d 1 2 3\n" % i for i in range(5))
    m, wb, wo, stats, _, _ = load_vectors_raw(write(tmp_path, data))
    assert m.shape == (6, 3) and words_of(wb, wo)[0] == b". . ."


def test_limit(tmp_path):
    data, _ = make_text(50, 3, seed=2, messy=True)
    m, wb, wo, stats, _, _ = load_vectors_raw(write(tmp_path, data), limit=10)
    assert m.shape[0] == 10 and len(words_of(wb, wo)) == 10
    full, *_ = load_vectors_raw(write(tmp_path, data))
    assert torch.equal(m, full[:10])
    assert load_vectors_raw(write(tmp_path, data), limit=0)[0].shape == (0, 3)


def test_empty_and_missing_and_directory(tmp_path):
    with pytest.raises(ValueError, match="the file is empty"):
        load_vectors_raw(write(tmp_path, b""))
    with pytest.raises(ValueError, match="no data lines"):
        load_vectors_raw(write(tmp_path, b"\n\n  \n"))
    with pytest.raises(RuntimeError, match="cannot open"):
        load_vectors_raw(os.path.join(tmp_path, "nope.txt"))
    with pytest.raises(ValueError, match="is a directory"):
        load_vectors_raw(str(tmp_path))


def word2vec_binary(words, mat, newline=True) -> bytes:
    out = [f"{len(words)} {mat.shape[1]}\n".encode()]
    for w, row in zip(words, mat):
        out.append(w + b" " + row.astype("<f4").tobytes() + (b"\n" if newline else b""))
    return b"".join(out)


@pytest.mark.parametrize("newline", [True, False])
def test_word2vec_binary(tmp_path, newline):
    g = np.random.default_rng(5)
    mat = g.normal(size=(37, 11)).astype(np.float32)
    words = [f"w{i}".encode() for i in range(36)] + ["naïve".encode()]
    path = write(tmp_path, word2vec_binary(words, mat, newline), "v.bin")
    m, wb, wo, stats, _, _ = load_vectors_raw(path, binary=True, num_threads=2)
    assert np.array_equal(m.numpy(), mat) and words_of(wb, wo) == words
    m64, *_ = load_vectors_raw(path, binary=True, dtype=torch.float64)
    assert np.array_equal(m64.numpy(), mat.astype(np.float64))
    assert load_vectors_raw(path, binary=True, limit=5)[0].shape == (5, 11)
    # truncated: clear error, or skip mode keeps the complete records and reports the cut
    cut = write(tmp_path, word2vec_binary(words, mat, newline)[:-30], "cut.bin")
    with pytest.raises(ValueError, match=r"record 37 of 37 .* truncated"):
        load_vectors_raw(cut, binary=True)
    m, _, _, stats, skipped, _ = load_vectors_raw(cut, binary=True, skip_errors=True)
    assert m.shape == (36, 11) and skipped.tolist() == [[37, 4]]
    with pytest.raises(ValueError, match="word2vec binary header"):
        load_vectors_raw(write(tmp_path, b"hello 1 2\n", "x.bin"), binary=True)


def test_argument_errors(tmp_path):
    path = write(tmp_path, b"a 1 2\n")
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        load_vectors_raw(path, dtype=torch.int32)
    with pytest.raises(ValueError, match="header must be"):
        load_vectors_raw(path, header=3)
    with pytest.raises(ValueError, match="dim must be"):
        load_vectors_raw(path, dim=-2)


def test_opcheck(tmp_path):
    data, _ = make_text(30, 5, seed=9, messy=True)
    path = write(tmp_path, data)
    args = (path, 0, -1, -1, False, True, 2, torch.float32)
    torch.library.opcheck(torch.ops.embedfast.load_vectors.default, args,
                          test_utils=("test_schema", "test_faketensor"))


# --- fuzz: random bytes and mutated valid files never crash, and strict mode never drops a line silently ----

VALID, _ = make_text(12, 3, seed=11, messy=True)


def data_lines(data: bytes, header_rows: int) -> int:
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    lines = body.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    lines = lines[1:] if header_rows >= 0 else lines
    return sum(1 for ln in lines if ln.strip(b" \t\r\v\f"))


def check_never_silent(tmp_path, data: bytes, binary: bool):
    path = write(tmp_path, data, "fuzz.bin" if binary else "fuzz.txt")
    for skip in (False, True):
        try:
            m, wb, wo, stats, skipped, dups = load_vectors_raw(path, binary=binary, skip_errors=skip, num_threads=2)
        except ValueError:
            continue  # a clear error is fine; a crash, a hang or a silently dropped line is not
        rows = int(stats[S["rows"]])
        assert m.shape[0] == rows == wo.shape[0] - 1 and wo[-1] == wb.shape[0]
        words = words_of(wb, wo)
        assert dups.tolist() == [i for i, w in enumerate(words) if w in words[:i]]
        if not binary:
            assert rows + skipped.shape[0] == data_lines(data, int(stats[S["header_rows"]]))
            if not skip:
                assert skipped.shape[0] == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), binary=st.booleans())
def test_fuzz_random_bytes(tmp_path, data, binary):
    check_never_silent(tmp_path, data, binary)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.sampled_from(
    [b"", b" ", b"\n", b"\r\n", b"x", b"-", b".", b"e", b"1e99", b"\xff", b"\t", b"9"])), max_size=6))
def test_fuzz_mutated_valid_file(tmp_path, edits):
    data = bytearray(VALID)
    for pos, rep in edits:
        pos = min(pos, len(data))
        data[pos:pos + 1] = rep
    check_never_silent(tmp_path, bytes(data), False)
