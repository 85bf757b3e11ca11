"""`embedfast demo`: a short tour, one step per op family.

Every step has the same shape: ``<family>_step(ctx: DemoContext) -> dict``. It prints a ``== title ==`` line and
what it measured through ``ctx.say``, writes its files into ``ctx.workdir``, and returns its figures, which
``run_demo`` keeps in ``ctx.results[<family>]`` for the steps after it (the evaluation step scores the vectors
the word2vec step trained). ``STEPS`` lists them in order.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from typing import Callable, Optional

from ._args import add_command


@dataclasses.dataclass
class DemoContext:
    """What every demo step gets: the size setting, a folder for files, and the results of the steps before."""

    quick: bool
    workdir: str
    results: dict = dataclasses.field(default_factory=dict)

    def say(self, *args) -> None:
        print(*args, flush=True)


def vectors_step(ctx: DemoContext) -> dict:
    """Write a GloVe-format file, load it with embedfast and with the usual Python loop, compare, reload the
    native cache, show neighbours."""
    import numpy as np
    import torch

    from .. import load_vectors
    from ..synthetic import THEMES, python_loop_load, themed_vectors, write_vectors

    rows, dim = (20_000, 50) if ctx.quick else (100_000, 50)
    ctx.say(f"== Loading pretrained vectors (GloVe text format, {rows} x {dim}) ==")
    path = os.path.join(ctx.workdir, f"demo-glove-{rows}x{dim}.txt")
    words, mat = themed_vectors(rows, dim, seed=0)
    t = time.perf_counter()
    write_vectors(path, rows, dim, words=words, matrix=mat)
    ctx.say(f"wrote {path}: {os.path.getsize(path) / 1e6:.1f} MB in {time.perf_counter() - t:.2f} s "
            "(synthetic vectors: random, except planted groups of related words)")
    t = time.perf_counter()
    v = load_vectors(path)
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    py_words, py_mat = python_loop_load(path)
    t_py = time.perf_counter() - t
    same = py_words == v.words and np.array_equal(py_mat, v.matrix.numpy())
    ctx.say(f"  Python line loop (split + np.asarray): {t_py:7.3f} s  ({rows / t_py:>12,.0f} rows/s)")
    ctx.say(f"  embedfast.load_vectors:                {t_fast:7.3f} s  ({rows / t_fast:>12,.0f} rows/s)")
    ctx.say(f"  speed-up: {t_py / t_fast:.1f}x; identical words and values: {same}")
    ctx.say(f"  load report: {v.report.summary()}")
    native = os.path.join(ctx.workdir, f"demo-{rows}x{dim}.native")
    v.save(native)
    t = time.perf_counter()
    v2 = load_vectors(native)
    t_native = time.perf_counter() - t
    ctx.say(f"  native cache reload: {t_native:.4f} s; same matrix: {torch.equal(v2.matrix, v.matrix)}")
    ctx.say("  nearest neighbours (cosine); the planted groups are " + ", ".join(THEMES) + ":")
    for w in ("monday", "king", "red", "three"):
        ctx.say(f"    {w:>8}: " + ", ".join(f"{x} {s:.2f}" for x, s in v.most_similar(w, topn=5)))
    return dict(rows_per_s=rows / t_fast, python_rows_per_s=rows / t_py, native_s=t_native, identical=same)


WORD2VEC_DEMO_WORDS = ("dog", "water", "music", "king", "tree")


def word2vec_step(ctx: DemoContext) -> dict:
    """Train word2vec on the embedded corpus; print words/s and nearest neighbours; write the vectors.

    quick: 5 epochs, else 10. One epoch of this 1.4M-token corpus is not enough for meaningful neighbours (all
    cosines are near 1 after it, with gensim too).
    """
    from .. import Word2Vec
    from ..data import default_corpus_path
    from ..evaluate import nearest_neighbours

    epochs = 5 if ctx.quick else 10
    ctx.say(f"== Training word2vec (skip-gram, negative sampling) on the embedded corpus, {epochs} epoch(s) ==")
    w2v = Word2Vec(dim=100, window=5, negative=5, sample=1e-4, min_count=5, epochs=epochs, seed=0)
    t0 = time.perf_counter()
    w2v.build_vocab(default_corpus_path())
    t_vocab = time.perf_counter() - t0
    w2v.train(progress=False)
    total = time.perf_counter() - t0
    raw = w2v.corpus_stats["tokens"] * epochs
    ctx.say(f"  vocabulary: {len(w2v.words):,} words (min_count 5) of {w2v.vocab_stats['unique_words']:,}, "
            f"{w2v.vocab_stats['tokens']:,} tokens, read and counted in {t_vocab:.2f} s")
    ctx.say(f"  trained {raw:,} raw words in {w2v.train_seconds:.2f} s of kernel time = "
            f"{raw / w2v.train_seconds:,.0f} raw words/s ({total:.2f} s end to end); final loss "
            f"{w2v.loss_history[-1][1]:.3f}")
    present = [w for w in WORD2VEC_DEMO_WORDS if w in set(w2v.words)]
    ctx.say("  nearest neighbours (cosine):")
    for word, near in nearest_neighbours(w2v, present, topn=6).items():
        ctx.say(f"    {word:>8}: " + ", ".join(f"{w} {s:.2f}" for w, s in near))
    out = os.path.join(ctx.workdir, "wordnet-word2vec.txt")
    w2v.save(out, format="word2vec")
    ctx.say(f"  vectors written to {out}")
    return dict(words_per_s=raw / w2v.train_seconds, vocab=len(w2v.words), vectors_path=out)


def fusion_step(ctx: DemoContext) -> dict:
    """Fuse three synthetic sources (15% of the words missing in each): coverage, and forward+backward time
    against the stacked pure-PyTorch way."""
    import torch
    import torch.nn.functional as F

    from .. import MultiSourceEmbedding

    ctx.say("== Multi-source embedding fusion (embedfast.MultiSourceEmbedding) ==")
    g = torch.Generator().manual_seed(0)
    V, D, N, K = (20_000, 64, 8_192, 3) if ctx.quick else (100_000, 300, 65_536, 3)
    tables = [torch.randn(V, D, generator=g) for _ in range(K)]
    index = torch.stack([torch.randperm(V, generator=g) for _ in range(K)], 1)
    index[torch.rand(V, K, generator=g) < 0.15] = -1
    ids = torch.randint(0, V, (N,), generator=g)
    m = MultiSourceEmbedding(tables, index, names=["glove-like", "word2vec-like", "bert-like"])
    ctx.say(m.coverage_report())
    logits = torch.zeros(K, requires_grad=True)

    def torch_way():
        idx = index[ids]
        emb = torch.stack([F.embedding(idx[:, k].clamp(min=0), tables[k]) for k in range(K)], 1)
        w = torch.softmax(logits, 0) * (idx >= 0)
        w = w / w.sum(1, keepdim=True).clamp_min(1e-30)
        return (w.unsqueeze(-1) * emb).sum(1)

    def timed(fn, reps=5):
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn().sum().backward()
            ts.append(time.perf_counter() - t0)
        return sorted(ts)[len(ts) // 2]

    t_ours, t_torch = timed(lambda: m(ids)), timed(torch_way)
    ctx.say(f"  forward+backward, {K} sources {V}x{D}, {N} ids: embedfast {1e3 * t_ours:.1f} ms, "
            f"stacked PyTorch {1e3 * t_torch:.1f} ms ({t_torch / t_ours:.1f}x)")
    return dict(embedfast_ms=1e3 * t_ours, torch_ms=1e3 * t_torch)


def evaluate_step(ctx: DemoContext) -> dict:
    """Score the word2vec step's vectors against human similarity judgements (files from gensim's test data)."""
    from .. import evaluate, load_vectors
    from ..data import evaluation_file

    ctx.say("== Evaluating the trained vectors (embedfast.evaluate) ==")
    path = ctx.results.get("word2vec", {}).get("vectors_path")
    if path is None:
        ctx.say("  (skipped: no word2vec step ran)")
        return {}
    try:
        files = {name.split(".")[0]: evaluation_file(name) for name in ("wordsim353.tsv", "simlex999.txt")}
    except FileNotFoundError as exc:  # the standard files come with gensim
        ctx.say(f"  (skipped: {exc})")
        return {}
    vectors = load_vectors(path)
    scores = {name: evaluate.evaluate_word_pairs(vectors, f)["spearman"] for name, f in files.items()}
    ctx.say("  Spearman correlation with human similarity judgements: "
            + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    return scores


STEPS: tuple[tuple[str, Callable[[DemoContext], dict]], ...] = (
    ("vectors", vectors_step), ("word2vec", word2vec_step), ("fusion", fusion_step), ("evaluate", evaluate_step))


def run_demo(quick: bool = False, workdir: Optional[str] = None) -> int:
    """Run every demo step. ``quick`` uses smaller sizes; files go to ``workdir`` (default: a temporary folder).
    Returns 0 on success (the CLI's exit status)."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="embedfast-demo-") as tmp:
            return run_demo(quick=quick, workdir=tmp)
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ValueError(f"demo --workdir {workdir!r} is not a folder")
    os.makedirs(workdir, exist_ok=True)
    from .._io import check_output_path

    check_output_path(os.path.join(workdir, "wordnet-word2vec.txt"), what="demo file")  # writable, before any step
    ctx = DemoContext(quick=quick, workdir=workdir)
    t0 = time.perf_counter()
    for name, step in STEPS:
        ctx.results[name] = step(ctx)
        ctx.say()
    ctx.say(f"demo finished in {time.perf_counter() - t0:.1f} s")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add `embedfast demo` to ``sub``."""
    p = add_command(sub, "demo", lambda args: run_demo(quick=args.quick, workdir=args.workdir),
                    help="a short end-to-end tour on the embedded corpus",
                    description="A short tour of what embedfast does and how fast, on embedded defaults.")
    p.add_argument("--quick", action="store_true", help="smaller sizes (seconds, not a minute)")
    p.add_argument("--workdir", default=None, help="where to write demo files (default: a temporary folder)")
