"""Quality of embedfast.Word2Vec vs gensim Word2Vec(corpus_file=..., sg=1) over several seeds, 1 and 2 threads.

What differs between the two trainers (issue 3; evidence in benchmarks/RESULTS.md, "Quality, several seeds"):
- Initialisation: gensim 4 starts the input vectors uniform in +-1/dim (keyedvectors.prep_vectors), word2vec.c
  in +-0.5/dim. embedfast's default init_scale=0.5 follows word2vec.c (as issue 3 specifies); ``--init-scale 1.0``
  gives gensim 4's, the like-for-like setting for this comparison (word2vec.c's trains measurably worse here).
- Learning rate with several workers: gensim's corpus_file mode gives each of its `workers` threads an equal byte
  range of the file and lets each decay the rate by its *own* words over the whole corpus's words, so with 2
  workers the rate only gets half way down each epoch (the run ends near alpha - (alpha - min_alpha) * 4.5/5 =
  0.0026 instead of min_alpha 0.0001). embedfast follows word2vec's schedule (progress of all threads together
  down to min_alpha), as gensim does with workers=1, so 1 thread vs 1 worker is the like-for-like comparison.

Same hyperparameters as bench_sgns.py (dim 100, window 5, negative 5, sample 1e-4, min_count 5, alpha 0.025 ->
0.0001, 5 epochs) on the embedded WordNet glosses; quality by embedfast.evaluate (WordSim353 / SimLex-999
Spearman, Google analogies 3CosAdd with restrict_vocab=30000); mean and sample standard deviation over seeds.

  python benchmarks/word2vec/quality_seeds_sgns.py [--seeds 1,2,3] [--threads 1,2] [--trainers embedfast,gensim]
                                          [--init-scale S] [--min-alpha A] [--per-pair] [--corpus FILE]
                                          [--json-out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from types import SimpleNamespace

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # this family's scripts, then benchmarks/_common.py
from _common import quality as standard_quality, write_json  # noqa: E402  (also puts the checkout first on sys.path)

from bench_sgns import HP, real_corpus  # noqa: E402


def quality(words, matrix) -> dict:
    q = standard_quality(SimpleNamespace(words=list(words), matrix=matrix))
    return {k: q[k] for k in ("ws353", "simlex", "analogy")}


def train_gensim(corpus: str, threads: int, seed: int, epochs: int):
    from gensim.models import Word2Vec

    m = Word2Vec(vector_size=HP["dim"], window=HP["window"], negative=HP["negative"], sample=HP["sample"],
                 min_count=HP["min_count"], alpha=HP["alpha"], min_alpha=HP["min_alpha"], sg=1, hs=0,
                 workers=threads, seed=seed, epochs=epochs)
    m.build_vocab(corpus_file=corpus)
    m.train(corpus_file=corpus, total_words=m.corpus_total_words, epochs=epochs)
    return list(m.wv.index_to_key), torch.from_numpy(m.wv.vectors)


def train_embedfast(corpus: str, threads: int, seed: int, epochs: int, init_scale=None, min_alpha=None,
                    shared_negatives=True):
    import embedfast

    kw = {} if init_scale is None else {"init_scale": init_scale}
    m = embedfast.Word2Vec(**kw, dim=HP["dim"], window=HP["window"], negative=HP["negative"], sample=HP["sample"],
                           min_count=HP["min_count"], alpha=HP["alpha"],
                           min_alpha=HP["min_alpha"] if min_alpha is None else min_alpha, epochs=epochs,
                           shared_negatives=shared_negatives,
                           threads=threads, seed=seed)
    m.train(corpus, progress=False)
    v = m.vectors
    return list(v.words), v.matrix


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--trainers", default="embedfast,gensim")
    ap.add_argument("--init-scale", type=float, default=None,
                    help="embedfast's init_scale (default: the trainer's default, 0.5 = word2vec.c; 1.0 = gensim 4)")
    ap.add_argument("--min-alpha", type=float, default=None,
                    help="experiment only: embedfast's min_alpha (default the issue's 0.0001)")
    ap.add_argument("--per-pair", action="store_true", help="embedfast with per-pair negatives instead of HogBatch")
    ap.add_argument("--corpus", help="another corpus file (default: the WordNet glosses)")
    ap.add_argument("--json-out")
    a = ap.parse_args(argv)
    corpus = a.corpus or real_corpus()
    seeds = [int(s) for s in a.seeds.split(",")]
    runs = []
    for threads in [int(t) for t in a.threads.split(",")]:
        for seed in seeds:
            for name, fn in (("embedfast", train_embedfast), ("gensim", train_gensim)):
                if name not in a.trainers.split(","):
                    continue
                t0 = time.perf_counter()
                if name == "embedfast":
                    words, matrix = fn(corpus, threads, seed, a.epochs, a.init_scale, a.min_alpha, not a.per_pair)
                else:
                    words, matrix = fn(corpus, threads, seed, a.epochs)
                r = {"trainer": name, "threads": threads, "seed": seed, "train_s": time.perf_counter() - t0,
                     **quality(words, matrix)}
                runs.append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)
    print("| trainer | threads | seeds | WS353 | SimLex | analogy % | train s (median) |")
    print("|---|---|---|---|---|---|---|")
    for threads in sorted({r["threads"] for r in runs}):
        for name in ("embedfast", "gensim"):
            rs = [r for r in runs if r["trainer"] == name and r["threads"] == threads]
            if not rs:
                continue

            def ms(key, scale=1.0):
                xs = [scale * r[key] for r in rs]
                sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
                return f"{statistics.mean(xs):.3f} ± {sd:.3f}" if scale == 1.0 else f"{statistics.mean(xs):.2f} ± {sd:.2f}"

            print(f"| {name} | {threads} | {len(rs)} | {ms('ws353')} | {ms('simlex')} | {ms('analogy', 100.0)} "
                  f"| {statistics.median(r['train_s'] for r in rs):.1f} |")
    write_json(a.json_out, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
