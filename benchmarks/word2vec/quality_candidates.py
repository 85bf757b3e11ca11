"""Issue 14's quality candidates (skip-gram NS unless --model says otherwise), one at a time against embedfast's
defaults, several seeds.

  python benchmarks/word2vec/quality_candidates.py --corpus gcide --variants base,exact,per-pair
      [--model sgns|cbow-ns|sg-hs|cbow-hs] [--threads 1,2] [--seeds 1,2,3] [--tag NAME] --out results.jsonl
  python benchmarks/word2vec/quality_candidates.py --summarize results.jsonl [gensim.jsonl ...]

``--summarize`` prints a markdown table of the mean and spread (max - min) over seeds of every (corpus,
variant or trainer, tag, threads, model) in the given jsonl files (this script's and compare_models.py's).

Every run: compare_models.py's settings (dim 100, window 5, negative 5, sample 1e-4, min_count 5, alpha 0.025 ->
1e-4 for skip-gram, 0.05 for CBOW, 5 epochs) and its quality scores (WS353 / SimLex-999 Spearman, Google
analogies 3CosAdd restrict_vocab 30000). One JSON line per run is appended to --out as it finishes. Variants
(each differs from ``base``, the defaults, in one thing):

  base           the defaults (HogBatch shared negatives, interpolated sigmoid table, alias sampler, ...)
  exact          exact_sigmoid=True
  per-pair       shared_negatives=False (word2vec's per-pair negatives and sequential updates)
  unigram-table  negatives from word2vec.c's 1e8-entry unigram table (InitUnigramTable): the alias tables are
                 built over each word's number of slots in that table instead of count^0.75
  sub-paper      sub-sampling keep probability sqrt(t / f) (the paper's formula) instead of word2vec.c's
                 sqrt(t / f) + t / f (gensim and fastText use word2vec.c's)
  gensim-lr      gensim's corpus_file schedule: each thread's progress is its own words over all words, so with
                 T threads the rate goes down 1/T of the way per epoch (same as base with 1 thread);
                 gensim-lr:W the same with W in place of the thread count
  epoch-parts    chunk_words = the whole corpus: the threads see contiguous 1/T ranges of the epoch (gensim's
                 corpus_file order) instead of 1/T of every 200k-token chunk

``--tag`` names the kernel build measured (e.g. a build with a different sigmoid table run through PYTHONPATH);
the variant is then usually ``base``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from _common import commit, quality  # noqa: E402

import compare_models  # noqa: E402  (same folder)
from compare_models import HP, corpus_path  # noqa: E402
import embedfast  # noqa: E402
from embedfast.vectors import Vectors  # noqa: E402
from embedfast.word2vec import corpus as w2v_corpus, loop as w2v_loop, ops as w2v_ops  # noqa: E402

WORD2VEC_TABLE = 100_000_000  # word2vec.c's table_size


def unigram_slots(counts: torch.Tensor, power: float) -> torch.Tensor:
    """Each word's number of slots in word2vec.c's unigram table (InitUnigramTable, table_size 1e8): word i fills
    the slots a with cum[i-1] < a / table_size <= cum[i] (cum: the cumulative share of count^power, words in
    vocabulary order), so its share is rounded to whole slots; at least 1 (the op needs counts >= 1)."""
    p = counts.to(torch.float64).pow(power)
    cum = torch.cumsum(p / p.sum(), 0)
    edge = torch.floor(cum * WORD2VEC_TABLE).to(torch.int64).clamp(max=WORD2VEC_TABLE - 1)
    return torch.diff(edge, prepend=torch.tensor([-1])).clamp(min=1)


def patch(variant: str, threads: int) -> dict:
    """Install the variant's change; returns the extra Word2Vec arguments."""
    if variant in ("base", ""):
        return {}
    if variant == "exact":
        return {"exact_sigmoid": True}
    if variant == "per-pair":
        return {"shared_negatives": False}
    if variant == "epoch-parts":
        return {"chunk_words": 2_000_000_000}
    if variant == "unigram-table":
        original = w2v_ops.sgns_unigram_table

        def table(counts, exponent):
            return original(unigram_slots(counts, exponent).clamp(min=1), 1.0)

        w2v_ops.sgns_unigram_table = table
        return {}
    if variant == "sub-paper":
        def keep(counts, sample):
            c = counts.to(torch.float64)
            if sample <= 0:
                return torch.ones_like(c)
            return (sample * float(c.sum()) / c).sqrt().clamp(max=1.0)

        w2v_corpus.keep_probabilities = keep
        return {}
    if variant == "gensim-lr" or variant.startswith("gensim-lr:"):
        original_chunk = w2v_loop.train_chunk
        workers = int(variant.split(":")[1]) if ":" in variant else None

        def chunk(w2v, ids, offsets, tables, *, words_done, total_words, chunk):
            per_epoch = total_words // w2v.params.epochs
            e, d = divmod(words_done, per_epoch)
            done = e * per_epoch + d // (workers or w2v.num_threads)
            return original_chunk(w2v, ids, offsets, tables, words_done=done, total_words=total_words, chunk=chunk)

        w2v_loop.train_chunk = chunk
        return {}
    raise SystemExit(f"unknown variant {variant!r}")


def summarize(paths) -> None:
    """Mean and spread over seeds per configuration of the runs in ``paths``, as a markdown table."""
    groups: dict = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                who = r.get("variant") or r.get("trainer")
                key = (r["corpus"], r.get("model", "sgns"), who, r.get("tag", ""), r["threads"])
                groups.setdefault(key, []).append(r)
    print("| corpus | model | run | threads | seeds | WS353 | SimLex | analogy % | seconds (median) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key in sorted(groups):
        rs = groups[key]
        cells = []
        for name, scale, fmt in (("ws353", 1, ".3f"), ("simlex", 1, ".3f"), ("analogy", 100, ".2f")):
            v = [scale * r[name] for r in rs]
            cells.append(f"{sum(v) / len(v):{fmt}} +- {(max(v) - min(v)) / 2:{fmt}}")
        secs = sorted(r["seconds"] for r in rs)[len(rs) // 2]
        corpus, model, who, tag, threads = key
        seeds = ",".join(str(r["seed"]) for r in rs)
        print(f"| {corpus} | {model} | {who}{' ' + tag if tag else ''} | {threads} | {seeds} | {' | '.join(cells)} "
              f"| {secs:.0f} |")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--summarize":
        summarize(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="gcide")
    ap.add_argument("--variants", default="base")
    ap.add_argument("--model", default="sgns", choices=sorted(compare_models.MODELS))
    ap.add_argument("--threads", default="1")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    path = corpus_path(args.corpus)
    print(f"commit {commit()}, tag {args.tag!r}, embedfast from {os.path.dirname(embedfast.__file__)}", flush=True)
    for variant in args.variants.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            for seed in (int(s) for s in args.seeds.split(",")):
                saved = (w2v_ops.sgns_unigram_table, w2v_corpus.keep_probabilities, w2v_loop.train_chunk)
                extra = patch(variant, threads)
                try:
                    vec, secs = compare_models.run_embedfast(path, *compare_models.MODELS[args.model], threads, seed,
                                                             args.epochs, extra)
                finally:
                    w2v_ops.sgns_unigram_table, w2v_corpus.keep_probabilities, w2v_loop.train_chunk = saved
                q = quality(vec)
                rec = dict(corpus=args.corpus, model=args.model, variant=variant, tag=args.tag, threads=threads,
                           seed=seed, seconds=secs, extra=extra, commit=commit(), **HP, **q)
                print(f"{args.corpus} {args.model} {variant:14} {args.tag:10} thr {threads} seed {seed} "
                      f"{secs:7.1f}s "
                      f"WS353 {q['ws353']:.3f} SimLex {q['simlex']:.3f} analogy {100 * q['analogy']:.2f}%",
                      flush=True)
                with open(args.out, "a") as f:
                    f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
