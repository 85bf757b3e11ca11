"""`embedfast demo`: a short tour made of steps, one function per op family.

Each step is a function ``step(ctx: DemoContext) -> None`` registered with ``@demo_step``; ``run_demo`` runs them
in order. Families add their own step to ``STEPS`` (loader: ``loader_step``).
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from typing import Callable, List, Optional


@dataclasses.dataclass
class DemoContext:
    """What every demo step gets: the size setting, a folder for files, and shared results between steps."""

    quick: bool
    workdir: str
    results: dict = dataclasses.field(default_factory=dict)

    def say(self, *args) -> None:
        print(*args, flush=True)


STEPS: List[Callable[[DemoContext], None]] = []


def demo_step(fn: Callable[[DemoContext], None]) -> Callable[[DemoContext], None]:
    """Register a demo step (run in registration order)."""
    STEPS.append(fn)
    return fn


# ---- loader -------------------------------------------------------------------------------------------------


@demo_step
def loader_step(ctx: DemoContext) -> None:
    """Write a GloVe-format file, load it with embedfast and with the usual Python loop, compare, show neighbours."""
    import numpy as np
    import torch

    from .synthetic import THEMES, python_loop_load, themed_vectors, write_vectors
    from .vectors import load_vectors

    rows, dim = (20_000, 50) if ctx.quick else (100_000, 50)
    path = os.path.join(ctx.workdir, f"demo-glove-{rows}x{dim}.txt")
    ctx.say(f"== Loading pretrained vectors (GloVe text format, {rows} x {dim}) ==")
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
    ctx.say(f"  native cache reload: {time.perf_counter() - t:.4f} s; same matrix: "
            f"{torch.equal(v2.matrix, v.matrix)}")

    ctx.say("  nearest neighbours (cosine); the planted groups are "
            + ", ".join(f"{k}" for k in THEMES) + ":")
    for w in ("monday", "king", "red", "three"):
        nn = ", ".join(f"{x} {s:.2f}" for x, s in v.most_similar(w, topn=5))
        ctx.say(f"    {w:>8}: {nn}")
    ctx.results["vectors"] = v


# ---- (other families add their steps below) --------------------------------------------------------------


# ---- sgns ---------------------------------------------------------------------------------------------------

SGNS_DEMO_WORDS = ("dog", "water", "music", "king", "tree")


def demo_sgns(quick: bool, workdir: Optional[str], ctx: Optional[DemoContext] = None) -> dict:
    """Train word2vec on the embedded corpus, print words/s, nearest neighbours and similarity scores.

    quick: 5 epochs (about 2 s on 2 cores), else 10. One epoch of this 1.4M-token corpus is not enough for
    meaningful neighbours (all cosines are near 1 after it, with gensim too).
    """
    from .data import default_corpus_path
    from .evaluate import nearest_neighbours
    from .word2vec import Word2Vec

    say = ctx.say if ctx is not None else (lambda *a: print(*a, flush=True))
    epochs = 5 if quick else 10
    say(f"== Training word2vec (skip-gram, negative sampling) on the embedded corpus, {epochs} epoch(s) ==")
    w2v = Word2Vec(dim=100, window=5, negative=5, sample=1e-4, min_count=5, epochs=epochs, seed=0)
    t0 = time.perf_counter()
    w2v.build_vocab(default_corpus_path())
    t_vocab = time.perf_counter() - t0
    w2v.train(progress=False)
    total = time.perf_counter() - t0
    raw = w2v.corpus_stats["tokens"] * epochs
    say(f"  vocabulary: {len(w2v.words):,} words (min_count 5) of {w2v.vocab_stats['unique_words']:,}, "
        f"{w2v.vocab_stats['tokens']:,} tokens, read and counted in {t_vocab:.2f} s")
    say(f"  trained {raw:,} raw words in {w2v.train_seconds:.2f} s of kernel time = {raw / w2v.train_seconds:,.0f} "
        f"raw words/s on {w2v.num_threads} threads ({total:.2f} s end to end); final loss "
        f"{w2v.loss_history[-1][1]:.3f}")
    vocab = set(w2v.words)
    present = [w for w in SGNS_DEMO_WORDS if w in vocab]
    say("  nearest neighbours (cosine):")
    for word, near in nearest_neighbours(w2v, present, topn=6).items():
        say(f"    {word:>8}: " + ", ".join(f"{w} {s:.2f}" for w, s in near))
    try:
        from .data import evaluation_file
        from .evaluate import evaluate_word_pairs

        scores = {name: evaluate_word_pairs(w2v, evaluation_file(name))["spearman"]
                  for name in ("wordsim353.tsv", "simlex999.txt")}
        say("  Spearman correlation with human similarity judgements: "
            + ", ".join(f"{k.split('.')[0]} {v:.3f}" for k, v in scores.items()))
    except FileNotFoundError as exc:  # the standard files come with gensim
        say(f"  (similarity scores skipped: {exc})")
    out = None
    if workdir:
        out = os.path.join(workdir, "wordnet-word2vec.txt")
        w2v.save(out, format="word2vec")
        say(f"  vectors written to {out}")
    result = dict(words_per_s=raw / w2v.train_seconds, vocab=len(w2v.words), vectors_path=out)
    if ctx is not None:
        ctx.results["word2vec"] = w2v
    return result


@demo_step
def sgns_step(ctx: DemoContext) -> None:
    """word2vec on the embedded corpus."""
    demo_sgns(ctx.quick, ctx.workdir, ctx)


# ---- fusion -------------------------------------------------------------------------------------------------


@demo_step
def fusion_step(ctx: DemoContext) -> None:
    """Multi-source fusion: coverage report and forward+backward time against stacked pure PyTorch."""
    from .fusion import _demo_step

    ctx.say("== multi-source embedding fusion (embedfast.MultiSourceEmbedding) ==")
    ctx.results["fusion"] = _demo_step(ctx.quick, ctx.workdir)


def run_demo(quick: bool = False, workdir: Optional[str] = None) -> int:
    """Run every demo step. ``quick`` uses smaller sizes; files go to ``workdir`` (default: a temporary folder).
    Returns 0 on success (the CLI's exit status)."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="embedfast-demo-") as tmp:
            return run_demo(quick=quick, workdir=tmp)
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ValueError(f"demo --workdir {workdir!r} is not a folder")
    os.makedirs(workdir, exist_ok=True)
    from ._io import check_output_path

    check_output_path(os.path.join(workdir, "wordnet-word2vec.txt"), what="demo file")  # writable, before any step
    ctx = DemoContext(quick=quick, workdir=workdir)
    t0 = time.perf_counter()
    for step in STEPS:
        step(ctx)
        ctx.say()
    ctx.say(f"demo finished in {time.perf_counter() - t0:.1f} s")
    return 0
