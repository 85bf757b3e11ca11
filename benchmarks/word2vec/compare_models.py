"""embedfast.Word2Vec against gensim 4's Word2Vec(corpus_file=...) on the four word2vec models, side by side.

  python benchmarks/word2vec/compare_models.py [--corpora docs,kjv] [--models sgns,cbow-ns,sg-hs,cbow-hs]
      [--threads 1,2] [--seeds 1] [--epochs 5] [--trainers embedfast,gensim] [--set init_scale=1.0]
      [--out results.jsonl]

Corpora: ``benchmarks/word2vec/corpora.py`` names (built when missing) or ``wordnet`` (the embedded glosses).
Settings of every run: dim 100, window 5, negative 5 (0 for HS), sample 1e-4, min_count 5, word2vec's default
learning rates (0.025 skip-gram, 0.05 CBOW; min_alpha 1e-4), the given epochs; gensim gets the same with its
names (``sg``, ``hs``, ``cbow_mean=1``, ``workers``). Both trainers run one after the other in this process, in
alternating order per (corpus, model, threads, seed); the time is end to end (vocabulary + training), words/s are
the corpus' raw tokens x epochs / seconds. Quality: WordSim353 / SimLex-999 Spearman and Google analogies
(3CosAdd, restrict_vocab=30000) by embedfast.evaluate. Each result is one JSON line appended to --out and printed
as a table row. ``--set name=value`` passes extra Word2Vec arguments to embedfast only (e.g. init_scale=1.0).
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from _common import commit, quality  # noqa: E402

import corpora  # noqa: E402  (same folder)
from bench_sgns import count_tokens  # noqa: E402
import embedfast  # noqa: E402
from embedfast.vectors import Vectors  # noqa: E402

MODELS = {"sgns": (1, 0), "cbow-ns": (0, 0), "sg-hs": (1, 1), "cbow-hs": (0, 1)}  # name -> (sg, hs)
HP = dict(dim=100, window=5, sample=1e-4, min_count=5, min_alpha=1e-4)


def corpus_path(name: str) -> str:
    if name == "wordnet":
        from bench_sgns_speed import plain_corpus

        return plain_corpus()
    return corpora.path(name)


def run_embedfast(path, sg, hs, threads, seed, epochs, extra):
    t0 = time.perf_counter()
    m = embedfast.Word2Vec(**HP, sg=sg, hs=hs, threads=threads, seed=seed, epochs=epochs, **extra)
    m.train(path, progress=False)
    return Vectors(list(m.words), m.w_in.clone()), time.perf_counter() - t0


def run_gensim(path, sg, hs, threads, seed, epochs, extra):
    from gensim.models import Word2Vec

    t0 = time.perf_counter()
    m = Word2Vec(corpus_file=path, vector_size=HP["dim"], window=HP["window"], negative=0 if hs else 5, hs=hs, sg=sg,
                 cbow_mean=1, sample=HP["sample"], min_count=HP["min_count"], alpha=0.05 if sg == 0 else 0.025,
                 min_alpha=HP["min_alpha"], workers=threads, seed=seed, epochs=epochs)
    secs = time.perf_counter() - t0
    return Vectors(list(m.wv.index_to_key), torch.from_numpy(m.wv.vectors.copy())), secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", default="docs,kjv")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--trainers", default="embedfast,gensim")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    extra = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.set)}
    runners = {"embedfast": run_embedfast, "gensim": run_gensim}
    trainers = args.trainers.split(",")
    print(f"commit {commit()}, epochs {args.epochs}, extra {extra}", flush=True)
    print(f"{'corpus':7} {'model':8} {'thr':>3} {'seed':>4} {'trainer':9} {'secs':>7} {'words/s':>10} {'WS353':>6} "
          f"{'SimLex':>6} {'analogy':>7}", flush=True)
    k = 0
    for cname in args.corpora.split(","):
        path = corpus_path(cname)
        raw = count_tokens(path)
        for model in args.models.split(","):
            sg, hs = MODELS[model]
            for threads in (int(t) for t in args.threads.split(",")):
                for seed in (int(s) for s in args.seeds.split(",")):
                    order = trainers if k % 2 == 0 else trainers[::-1]
                    k += 1
                    for tr in order:
                        vec, secs = runners[tr](path, sg, hs, threads, seed, args.epochs,
                                                extra if tr == "embedfast" else {})
                        q = quality(vec)
                        rec = dict(corpus=cname, tokens=raw, model=model, threads=threads, seed=seed, trainer=tr,
                                   epochs=args.epochs, seconds=secs, words_per_s=raw * args.epochs / secs,
                                   extra=extra if tr == "embedfast" else {}, **q)
                        print(f"{cname:7} {model:8} {threads:3d} {seed:4d} {tr:9} {secs:7.1f} "
                              f"{rec['words_per_s']:10,.0f} {q['ws353']:6.3f} {q['simlex']:6.3f} "
                              f"{100 * q['analogy']:6.2f}%", flush=True)
                        if args.out:
                            with open(args.out, "a") as f:
                                f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
