"""Helpers shared by the tests of the vectors family (tests/test_vectors_*.py)."""
from __future__ import annotations

import os

import numpy as np


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
