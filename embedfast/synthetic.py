"""Synthetic pretrained-vector files that look like real ones (for benchmarks, tests and the demo).

Deterministic from a seed. Words: a few hundred common English tokens, then pseudo-words made of syllables,
getting longer with rank (Zipf-ish lengths). Values: like GloVe's text files, '%.5g' style (5 significant
digits, trailing zeros stripped, negative signs, exponents such as ``-3.2e-05`` for tiny values). The
decimal text is built with numpy, column by column over a whole block of rows, so 400k x 50 (~170 MB) takes
a few seconds.
"""
from __future__ import annotations

import os
from typing import List, Optional, Tuple

import numpy as np

from ._io import atomic_write_binary, encode_word

COMMON = (
    "the , . of to and in a \" 's for - that on is was said with he it as at by from his '' `` an be has are have "
    "but were not this who they had i which will their : or its one after new been also we would two more ' first "
    "about up when year there all -- out she other people n't her percent than over into last some government time "
    "$ you years if no world can three do ; president only state million could us most _ against u.s. so them what "
    "him united during before may since many while where states because now city made like between did just national "
    "day country under such second then company group any through china four being down war back off south american "
    "minister police well including team international week officials still both even high part told those end former "
    "these make billion work our home school party house old later get another tuesday news long five called 1 "
    "wednesday military way used much next monday thursday friday game here ? should take very my north security "
    "season york how public early according several court say around foreign 10 until set political says market "
    "however family life same general 's left good top university going number major known points won six month "
    "dollars bank 2 iraq use members each area found official sunday place go based among third times took right "
    "days local economic countries see best report killed held business west does own % came law months women 're "
    "power think service children free red green blue black white cat dog horse cow sheep king queen man woman"
).split()

_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["qu", "th", "sh", "ch", "ng", "st"]


def make_words(n: int, seed: int = 0) -> List[str]:
    """n distinct words: common English tokens first, then syllable pseudo-words (longer with rank)."""
    rng = np.random.default_rng(seed)
    words = list(dict.fromkeys(COMMON))[:n]
    seen = set(words)
    syl = list(_SYLLABLES)
    rng.shuffle(syl)
    k = len(syl)
    i = 0
    while len(words) < n:
        # bijective base-k numeral of i with syllables as digits: unique, length ~ log_k(i)
        j, parts = i, []
        while True:
            parts.append(syl[j % k])
            j = j // k - 1
            if j < 0:
                break
        w = "".join(reversed(parts))
        i += 1
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def format_g5(values: np.ndarray, sep_last: int = 10) -> np.ndarray:
    """Text of each value of a [r, d] float array in '%.5g' style, as a [r, d * 12] uint8 array of characters
    padded with zero bytes (drop them with ``a[a != 0]``). Each value is followed by a space, the last of each
    row by ``sep_last``. |values| must be < 1e5."""
    r, d = values.shape
    v = values.reshape(-1).astype(np.float64)
    neg = v < 0
    a = np.abs(v)
    a[a == 0] = 1e-30  # zero: printed as 0 below
    zero = a < 1e-29
    e = np.floor(np.log10(a)).astype(np.int64)
    m = np.rint(a / 10.0 ** (e - 4)).astype(np.int64)
    over = m >= 100000
    m[over] //= 10
    e[over] += 1
    digits = np.stack([(m // 10 ** (4 - k)) % 10 for k in range(5)], axis=1)
    nonzero = digits != 0
    last = 4 - np.argmax(nonzero[:, ::-1], axis=1)  # index of the last non-zero digit
    expo = (e < -4) | (e >= 5)
    pos_neg_e = ~expo & (e < 0)
    pos_big = ~expo & (e > 0)  # 10 <= a < 1e5: digits before the point
    W = 12
    out = np.zeros((v.size, W), np.uint8)
    p = np.zeros(v.size, np.int64)
    rows = np.arange(v.size)

    def put(cond, char):
        idx = np.flatnonzero(cond)
        ch = char[idx] if isinstance(char, np.ndarray) else char
        out[idx, p[idx]] = ch
        p[idx] += 1

    put(neg & ~zero, ord("-"))
    put(pos_neg_e, ord("0"))
    put(pos_neg_e, ord("."))
    for z in range(1, 4):
        put(pos_neg_e & (-e - 1 >= z), ord("0"))
    put(np.ones(v.size, bool), (digits[:, 0] + 48).astype(np.uint8))
    # integer part of numbers >= 10 (positional): digits 1..e, padded with zeros past the last significant one
    for k in range(1, 5):
        put(pos_big & (e >= k), (digits[:, k] + 48).astype(np.uint8))
    frac_start = np.where(pos_big, e + 1, 1)
    has_frac = np.where(pos_neg_e, False, last >= frac_start)
    put(has_frac, ord("."))
    for k in range(1, 5):
        cond = np.where(pos_neg_e, k <= last, (k >= frac_start) & (k <= last))
        put(cond, (digits[:, k] + 48).astype(np.uint8))
    put(expo, ord("e"))
    put(expo, np.where(e < 0, ord("-"), ord("+")).astype(np.uint8))
    ae = np.abs(e)
    put(expo, (ae // 10 % 10 + 48).astype(np.uint8))
    put(expo, (ae % 10 + 48).astype(np.uint8))
    # zero: overwrite with "0"
    zi = np.flatnonzero(zero)
    out[zi] = 0
    out[zi, 0] = ord("0")
    p[zi] = 1
    sep = np.full(v.size, ord(" "), np.uint8)
    sep.reshape(r, d)[:, -1] = sep_last
    out[rows, p] = sep
    return out.reshape(r, d * W)


def generate_matrix(rows: int, dim: int, seed: int = 0, clusters: int = 0) -> np.ndarray:
    """float32 [rows, dim]: GloVe-like values (std ~0.4, a few heavier entries); with ``clusters`` > 0 the rows
    are noisy copies of ``clusters`` centres (row i belongs to cluster i % clusters)."""
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((rows, dim), dtype=np.float32) * np.float32(0.4)
    if clusters:
        centres = rng.standard_normal((clusters, dim), dtype=np.float32)
        m = centres[np.arange(rows) % clusters] + m * np.float32(0.5)
    return m


def write_vectors(path: str, rows: int, dim: int, *, seed: int = 0, format: str = "glove",
                  words: Optional[List[str]] = None, matrix: Optional[np.ndarray] = None, clusters: int = 0,
                  block: int = 16384) -> Tuple[List[str], np.ndarray]:
    """Write a synthetic vectors file; returns (words, float32 matrix whose '%.5g' text was written).

    format: "glove" (text, no header), "word2vec" (text with "N D" header), "word2vec-bin" (binary).
    A ``.gz`` path is gzip-compressed.
    """
    if format not in ("glove", "word2vec", "word2vec-bin"):
        raise ValueError(f"format must be glove, word2vec or word2vec-bin, got {format!r}")
    words = make_words(rows, seed) if words is None else words
    matrix = generate_matrix(rows, dim, seed, clusters) if matrix is None else matrix
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def write(f) -> None:
        if format != "glove":
            f.write(f"{rows} {dim}\n".encode())
        for start in range(0, rows, block):
            ws = words[start:start + block]
            mat = matrix[start:start + block]
            if format == "word2vec-bin":
                le = mat.astype("<f4")
                f.write(b"".join(encode_word(w) + b" " + r.tobytes() + b"\n" for w, r in zip(ws, le)))
                continue
            enc = [encode_word(w) + b" " for w in ws]
            wl = max(len(x) for x in enc)
            wa = np.frombuffer(b"".join(x.ljust(wl, b"\0") for x in enc), np.uint8).reshape(len(ws), wl)
            full = np.concatenate([wa, format_g5(mat)], axis=1)
            f.write(full[full != 0].tobytes())

    # written whole or not at all (a unique temporary file renamed over `path`)
    atomic_write_binary(path, write)  # .gz compressed
    return words, matrix


#: Planted groups for the demo: each group's words are noisy copies of one centre, so nearest neighbours
#: recover the group.
THEMES = {
    "days": "monday tuesday wednesday thursday friday saturday sunday".split(),
    "colours": "red green blue black white yellow purple orange".split(),
    "animals": "cat dog horse cow sheep goat pig rabbit".split(),
    "royalty": "king queen prince princess emperor empress throne crown".split(),
    "numbers": "one two three four five six seven eight".split(),
}


def themed_vectors(rows: int, dim: int, seed: int = 0, noise: float = 0.35) -> Tuple[List[str], np.ndarray]:
    """Synthetic vectors with planted structure: the words of each THEMES group cluster around one centre;
    every other word is random. Returns (words, float32 matrix)."""
    rng = np.random.default_rng(seed)
    themed = [w for ws in THEMES.values() for w in ws]
    words = themed + [w for w in make_words(rows + len(themed), seed) if w not in set(themed)]
    words = words[:rows]
    mat = rng.standard_normal((rows, dim), dtype=np.float32) * np.float32(0.4)
    i = 0
    for ws in THEMES.values():
        centre = rng.standard_normal(dim).astype(np.float32) * np.float32(0.4)
        k = min(len(ws), max(rows - i, 0))
        mat[i:i + k] = centre + mat[i:i + k] * np.float32(noise)
        i += len(ws)
    # spread the themed words over the file (as real frequency ranks would), deterministically
    perm = rng.permutation(rows)
    return [words[j] for j in perm], mat[perm]


def python_loop_load(path: str) -> Tuple[List[str], np.ndarray]:
    """The usual pure-Python loader (split each line, np.asarray the fields): the baseline in the demo and
    the benchmarks."""
    words, vecs = [], []
    with open(path, encoding="utf8") as f:
        for line in f:
            parts = line.rstrip().split(" ")
            words.append(parts[0])
            vecs.append(np.asarray(parts[1:], dtype=np.float32))
    return words, np.stack(vecs)
