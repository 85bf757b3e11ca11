"""pytest-benchmark suite for loading pretrained vectors (side by side in one run, medians).

    pytest benchmarks/vectors/bench_load.py --benchmark-columns=median,rounds --benchmark-sort=name
    EMBEDFAST_BENCH_ROWS=400000 pytest benchmarks/vectors/bench_load.py     # full size (default 100k x 50)

The table with peak memory, rows/s and MB/s is benchmarks/vectors/load_table.py.
"""
from __future__ import annotations

import csv
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # gen_vectors (which puts the checkout first)

import embedfast  # noqa: E402
from embedfast.synthetic import python_loop_load  # noqa: E402
from gen_vectors import ensure  # noqa: E402

ROWS = int(os.environ.get("EMBEDFAST_BENCH_ROWS", "100000"))
DIM = int(os.environ.get("EMBEDFAST_BENCH_DIM", "50"))


@pytest.fixture(scope="module")
def glove_path():
    return ensure(ROWS, DIM)


@pytest.fixture(scope="module")
def native_path(glove_path):
    out = glove_path + ".native"
    embedfast.load_vectors(glove_path).save(out)
    return out


@pytest.mark.parametrize("threads", [1, 2])
def test_embedfast_text(benchmark, glove_path, threads):
    v = benchmark.pedantic(embedfast.load_vectors, args=(glove_path,), kwargs=dict(threads=threads),
                           rounds=5, warmup_rounds=1)
    assert v.matrix.shape == (ROWS, DIM)


def test_embedfast_native(benchmark, native_path):
    def load():
        v = embedfast.load_vectors(native_path)
        return v, v.words  # include decoding the words

    v, words = benchmark.pedantic(load, rounds=10, warmup_rounds=1)
    assert len(words) == ROWS


def test_pandas_read_csv(benchmark, glove_path):
    pd = pytest.importorskip("pandas")

    def load():
        df = pd.read_csv(glove_path, sep=" ", header=None, quoting=csv.QUOTE_NONE, engine="c", na_filter=False,
                         keep_default_na=False, index_col=0)
        return df.index.tolist(), df.to_numpy(np.float32)

    words, m = benchmark.pedantic(load, rounds=2)
    assert m.shape == (ROWS, DIM)


def test_gensim(benchmark, glove_path):
    gensim_models = pytest.importorskip("gensim.models")
    kv = benchmark.pedantic(gensim_models.KeyedVectors.load_word2vec_format, args=(glove_path,),
                            kwargs=dict(binary=False, no_header=True), rounds=1)
    assert kv.vectors.shape == (ROWS, DIM)


def test_python_loop(benchmark, glove_path):
    words, m = benchmark.pedantic(python_loop_load, args=(glove_path,), rounds=1)
    assert m.shape == (ROWS, DIM)
