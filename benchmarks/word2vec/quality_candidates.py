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

  base           the defaults (HogBatch shared negatives, interpolated sigmoid table, alias sampler; since
                 session 15 lr_schedule="per-thread" and, with T > 1 threads, the epoch cut in T ranges)
  exact          exact_sigmoid=True
  per-pair       shared_negatives=False (word2vec's per-pair negatives and sequential updates)
  unigram-table  negatives from word2vec.c's 1e8-entry unigram table (InitUnigramTable): the alias tables are
                 built over each word's number of slots in that table instead of count^0.75
  sub-paper      sub-sampling keep probability sqrt(t / f) (the paper's formula) instead of word2vec.c's
                 sqrt(t / f) + t / f (gensim and fastText use word2vec.c's)
  global         lr_schedule="global": word2vec.c's rate, falling with all threads' words to min_alpha at the end
                 (the same as base with 1 thread)
  gensim-lr:W    the global schedule emulated from Python with gensim's corpus_file accounting for W workers
                 (each worker's progress is its own words over all words: the rate falls 1/W of the way per
                 epoch); without :W, W = the thread count (then close to base, which does it in the loop)
  epoch-parts    chunk_words = the whole corpus: the epoch is one chunk, cut into the op's parts (each part then
                 runs through the epoch's whole rate range)
  ranges         the threads train T contiguous ranges of the epoch side by side (word2vec.c's and gensim's
                 order), in steps of about 100k tokens per range, at word2vec.c's global rate: emulated from
                 Python (how it was measured before the trainer did it; now close to global)
  gensim-order   ranges at gensim's per-worker rate: gensim's corpus_file mode with T workers, emulated (now
                 close to base)
  alpha:A        alpha=A;  chunk:C  chunk_words=C

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
    if variant.startswith("chunk:"):
        return {"chunk_words": int(variant.split(":")[1])}
    if variant.startswith("alpha:"):
        return {"alpha": float(variant.split(":")[1])}
    if variant == "epoch-parts":
        return {"chunk_words": 2_000_000_000, "lr_schedule": "global"}
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
    if variant == "global":
        return {"lr_schedule": "global"}
    if variant == "gensim-lr" or variant.startswith("gensim-lr:"):
        original_chunk = w2v_loop.train_chunk
        workers = int(variant.split(":")[1]) if ":" in variant else None

        def chunk(w2v, ids, offsets, tables, *, words_done, total_words, chunk):
            per_epoch = total_words // w2v.params.epochs
            e, d = divmod(words_done, per_epoch)
            done = e * per_epoch + d // (workers or w2v.num_threads)
            return original_chunk(w2v, ids, offsets, tables, words_done=done, total_words=total_words, chunk=chunk)

        w2v_loop.train_chunk = chunk
        return {"lr_schedule": "global"}
    if variant in ("gensim-order", "ranges"):
        original_chunk = w2v_loop.train_chunk

        def epoch(w2v, ids, offsets, tables, *, words_done, total_words, chunk):
            # one call per epoch (chunk_words below): its T contiguous ranges trained side by side in steps of
            # about 100k tokens each, every range at its own progress over T times the epoch (gensim's rate)
            T, per_epoch = w2v.num_threads, total_words // w2v.params.epochs
            e, tok = words_done // per_epoch, offsets - offsets[0]
            n = int(tok[-1])
            cuts = [int(torch.searchsorted(tok, n * r // T)) for r in range(T + 1)]
            steps = max(1, n // T // 100_000)
            pieces = [[cuts[r] + (cuts[r + 1] - cuts[r]) * x // steps for x in range(steps + 1)] for r in range(T)]
            stats: dict = {}
            for x in range(steps):
                parts_ids, parts_off, base = [], [torch.zeros(1, dtype=offsets.dtype)], 0
                for r in range(T):
                    s0, s1 = pieces[r][x], pieces[r][x + 1]
                    a0, a1 = int(offsets[s0]), int(offsets[s1])
                    parts_ids.append(ids[a0:a1])
                    parts_off.append(offsets[s0 + 1:s1 + 1] - a0 + base)
                    base += a1 - a0
                own = int(tok[pieces[0][x]])  # the first range's tokens before this step
                if variant == "ranges":  # word2vec.c's rate: the epoch's progress is each range's
                    done, total = e * per_epoch + own * T, total_words
                else:
                    done, total = (e * per_epoch + own) * T, total_words * T
                st = original_chunk(w2v, torch.cat(parts_ids), torch.cat(parts_off), tables, words_done=done,
                                    total_words=total, chunk=e * 100_000 + x)
                for k, v in st.items():
                    stats[k] = v if k == "last_alpha" else stats.get(k, 0) + v
            return stats

        w2v_loop.train_chunk = epoch
        return {"chunk_words": 2_000_000_000, "lr_schedule": "global"}
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
