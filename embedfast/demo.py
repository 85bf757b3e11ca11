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
    ctx.say(f"  native cache reload (mmap): {time.perf_counter() - t:.4f} s; same matrix: "
            f"{torch.equal(v2.matrix, v.matrix)}")

    ctx.say("  nearest neighbours (cosine); the planted groups are "
            + ", ".join(f"{k}" for k in THEMES) + ":")
    for w in ("monday", "king", "red", "three"):
        nn = ", ".join(f"{x} {s:.2f}" for x, s in v.most_similar(w, topn=5))
        ctx.say(f"    {w:>8}: {nn}")
    ctx.results["vectors"] = v


# ---- (other families add their steps below) --------------------------------------------------------------


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
    os.makedirs(workdir, exist_ok=True)
    ctx = DemoContext(quick=quick, workdir=workdir)
    t0 = time.perf_counter()
    for step in STEPS:
        step(ctx)
        ctx.say()
    ctx.say(f"demo finished in {time.perf_counter() - t0:.1f} s")
    return 0
