"""A/B of two source trees of embedfast on the three headline workloads: did a change cost speed?

    python benchmarks/ab_trees.py --a /path/to/old/checkout --b . [--rounds 5] [--workloads load,native,sgns,fusion]
    python benchmarks/ab_trees.py --a OLD --b . --workloads sg-hs,cbow-hs,cbow-ns --threads 1 [--corpus FILE]

Each tree must have its extension built in place (``make build`` or ``setup.py build_ext --inplace``). Every
measurement is a fresh subprocess with ``PYTHONPATH=<tree>``; the trees alternate (A, B, A, B, ...) so both see
the same machine load, and each workload reports the median per tree and the ratio B/A of the medians (time:
below 1 is faster). Workloads (inputs generated into bench-data/, reused):

  load     load_vectors of a GloVe-like text file, 400,000 x 50 (the loader headline), 2 threads
  native   load_vectors of the same vectors as an embedfast native cache (whatever that tree's default load is)
  sgns     Word2Vec(dim 100, window 5, negative 5, sample 1e-4, min_count 5, 2 threads, seed 1), 5 epochs of the
           embedded WordNet glosses (decompressed once to a plain file), training seconds (Word2Vec.train_seconds:
           the kernel calls, the headline's words/s)
  corpus   corpus_build_vocab + corpus_encode of that corpus (the pipeline's C++ ops), 2 threads
  fusion   MultiSourceEmbedding forward + backward, 3 sources x 400,000 x 300, 65,536 uniform ids, 15 % missing,
           dense table gradients (the fusion headline's dense mode), 2 threads, median of 7 after 2 warm-ups
  sg-hs, cbow-hs, cbow-ns
           the other word2vec models (same settings as sgns; hs without negatives), 1 epoch of --corpus (default
           the WordNet glosses), --threads threads (default 1), training seconds
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys

from _common import DATA  # noqa: E402  (benchmarks/_common.py, next to this script)

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import json, os, sys, time, statistics
import torch
torch.set_num_threads(2)
import embedfast
w, arg = sys.argv[1], sys.argv[2]
if w in ("load", "native"):
    t = time.perf_counter(); v = embedfast.load_vectors(arg); _ = v.matrix.sum(); r = time.perf_counter() - t
elif w == "sgns":
    extra = {"init_scale": float(sys.argv[3])} if len(sys.argv) > 3 else {}
    m = embedfast.Word2Vec(dim=100, window=5, negative=5, sample=1e-4, min_count=5, epochs=5, threads=2, seed=1,
                           **extra)
    m.train(arg, progress=False); r = m.train_seconds
elif w in ("sg-hs", "cbow-hs", "cbow-ns"):
    hs = w.endswith("-hs")
    m = embedfast.Word2Vec(dim=100, window=5, negative=0 if hs else 5, hs=int(hs), sg=int(w.startswith("sg")),
                           sample=1e-4, min_count=5, epochs=1, threads=int(sys.argv[3]), seed=1)
    m.train(arg, progress=False); r = m.train_seconds
elif w == "corpus":
    from embedfast import ops
    t = time.perf_counter()
    vb = ops.corpus_build_vocab(arg, min_count=5, num_threads=2)
    ops.corpus_encode(arg, word_bytes=vb[0], word_offsets=vb[1], num_threads=2)
    r = time.perf_counter() - t
elif w == "fusion":
    g = torch.Generator().manual_seed(0)
    K, V, D, N = 3, 400_000, 300, 65_536
    tables = [torch.empty(V, D).normal_(generator=g) for _ in range(K)]
    index = torch.stack([torch.randperm(V, generator=g) for _ in range(K)], 1)
    index[torch.rand(V, K, generator=g) < 0.15] = -1
    ids = torch.randint(0, V, (N,), generator=g)
    grad = torch.empty(N, D).normal_(generator=g)
    mod = embedfast.MultiSourceEmbedding(tables, index, freeze_tables=False, sparse=False)
    del tables
    ts = []
    for i in range(9):
        for p in mod.parameters():
            p.grad = None
        t = time.perf_counter(); mod(ids).backward(grad); dt = time.perf_counter() - t
        if i >= 2:
            ts.append(dt)
    r = statistics.median(ts)
print(json.dumps({"seconds": r}))
"""


def ensure_inputs(tree: str) -> dict:
    os.makedirs(DATA, exist_ok=True)
    sys.path.insert(0, tree)
    glove = os.path.join(DATA, "glove-400000x50.txt")
    if not os.path.exists(glove):
        subprocess.run([sys.executable, os.path.join(HERE, "vectors", "gen_vectors.py"), "--rows", "400000", "--dim", "50"],
                       check=True, env={**os.environ, "PYTHONPATH": tree})
    native = os.path.join(DATA, "glove-400000x50.native")
    if not os.path.exists(native):
        code = ("import embedfast, sys; embedfast.load_vectors(sys.argv[1]).save(sys.argv[2] + '.part', "
                "format='native'); import os; os.replace(sys.argv[2] + '.part', sys.argv[2])")
        subprocess.run([sys.executable, "-c", code, glove, native], check=True, env={**os.environ, "PYTHONPATH": tree})
    corpus = os.path.join(DATA, "wordnet_glosses.txt")
    if not os.path.exists(corpus):
        src = os.path.join(tree, "embedfast", "data", "wordnet_glosses.txt.gz")
        with gzip.open(src, "rb") as f, open(corpus + ".part", "wb") as g:
            shutil.copyfileobj(f, g)
        os.replace(corpus + ".part", corpus)
    return {"load": glove, "native": native, "sgns": corpus, "corpus": corpus, "fusion": "-"}


W2V_MODELS = ("sg-hs", "cbow-hs", "cbow-ns")


def measure(tree: str, workload: str, arg: str, init_scale: float = None, threads: int = 1) -> float:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    if workload in W2V_MODELS:
        extra = [str(threads)]
    else:
        extra = [repr(init_scale)] if init_scale is not None and workload == "sgns" else []
    out = subprocess.run([sys.executable, "-c", CHILD, workload, arg, *extra], check=True, capture_output=True, text=True,
                         env=env, cwd=os.path.abspath(tree))
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="the reference tree (before)")
    ap.add_argument("--b", required=True, help="the tree under test (after)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workloads", default="load,native,sgns,corpus,fusion")
    ap.add_argument("--threads", type=int, default=1, help="sg-hs, cbow-hs, cbow-ns: training threads")
    ap.add_argument("--corpus", default=None, help="sg-hs, cbow-hs, cbow-ns: the corpus file (default: the glosses)")
    ap.add_argument("--json", default=None, help="also write the raw times here")
    ap.add_argument("--init-scale", type=float, default=None,
                    help="sgns: Word2Vec(init_scale=...) in both trees (e.g. 0.5 to compare with a tree from before "
                         "the default became 1.0: same work on both sides)")
    args = ap.parse_args()
    inputs = ensure_inputs(os.path.abspath(args.b))
    if args.corpus is not None and not os.path.isfile(args.corpus):
        ap.error(f"--corpus {args.corpus!r} is not a file")
    for w in W2V_MODELS:
        inputs[w] = os.path.abspath(args.corpus) if args.corpus else inputs["sgns"]
    unknown = [w for w in args.workloads.split(",") if w not in inputs]
    if unknown:
        ap.error(f"unknown workloads {unknown}; known: {', '.join(inputs)}")
    raw = {}
    print(f"{'workload':8} {'A median s':>11} {'B median s':>11} {'B/A':>7}   (A={args.a}, B={args.b}, "
          f"{args.rounds} rounds, alternating)")
    for w in args.workloads.split(","):
        a, b = [], []
        for r in range(args.rounds):
            first, second = ((args.a, a), (args.b, b)) if r % 2 == 0 else ((args.b, b), (args.a, a))
            for tree, acc in (first, second):
                acc.append(measure(tree, w, inputs[w], args.init_scale, args.threads))
        ma, mb = statistics.median(a), statistics.median(b)
        raw[w] = {"a": a, "b": b}
        print(f"{w:8} {ma:11.4f} {mb:11.4f} {mb / ma:7.3f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1)


if __name__ == "__main__":
    main()
