"""Sub-commands of the `embedfast` CLI, one section per op family. Heavy imports stay inside the handlers."""
from __future__ import annotations

import argparse

from .cli import command

# ---- demo -------------------------------------------------------------------------------------------


@command
def _demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="a short end-to-end tour on the embedded corpus",
                       description="A short tour of what embedfast does and how fast, on embedded defaults.")
    p.add_argument("--quick", action="store_true", help="smaller sizes (seconds, not a minute)")
    p.add_argument("--workdir", default=None, help="where to write demo files (default: a temporary folder)")

    def run(args):
        from .demo import run_demo

        return run_demo(quick=args.quick, workdir=args.workdir)

    p.set_defaults(func=run)


# ---- vectors (load / convert / info) -----------------------------------------------------------------


# ---- sgns (train / eval) -----------------------------------------------------------------------------


@command
def _train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train word2vec (skip-gram, negative sampling) on a text corpus",
                       description="Train word2vec skip-gram with negative sampling with embedfast's fused CPU "
                                   "kernel. CORPUS: whitespace-tokenised text, one sentence per line (.gz is fine).")
    p.add_argument("corpus", metavar="CORPUS", help="text file, one sentence per line (gzip allowed)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="where to write the vectors")
    p.add_argument("--format", default="word2vec", choices=["glove", "word2vec", "word2vec-bin", "native"],
                   help="vectors file format (default: word2vec text)")
    p.add_argument("--dim", type=int, default=100, help="vector size (default 100)")
    p.add_argument("--window", type=int, default=5, help="max context distance (default 5)")
    p.add_argument("--negative", type=int, default=5, help="negative samples per pair (default 5)")
    p.add_argument("--sample", type=float, default=1e-4, help="sub-sampling threshold, 0 disables (default 1e-4)")
    p.add_argument("--min-count", type=int, default=5, help="ignore words rarer than this (default 5)")
    p.add_argument("--epochs", type=int, default=5, help="passes over the corpus (default 5)")
    p.add_argument("--alpha", type=float, default=0.025, help="initial learning rate (default 0.025)")
    p.add_argument("--min-alpha", type=float, default=0.0001, help="final learning rate (default 0.0001)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="worker threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")

    def run(args):
        import time

        from .sgns import Word2Vec

        w2v = Word2Vec(dim=args.dim, window=args.window, negative=args.negative, sample=args.sample,
                       min_count=args.min_count, epochs=args.epochs, alpha=args.alpha, min_alpha=args.min_alpha,
                       threads=args.threads, seed=args.seed)
        t0 = time.perf_counter()
        w2v.build_vocab(args.corpus)
        w2v.train(progress=True)
        seconds = time.perf_counter() - t0
        vs, cs = w2v.vocab_stats, w2v.corpus_stats
        raw = cs["tokens"] * args.epochs
        print(f"vocabulary: {vs['vocab_words']:,} words (of {vs['unique_words']:,}; {vs['min_count_words']:,} below "
              f"min-count {args.min_count}); {cs['tokens']:,} tokens in {cs['lines']:,} lines"
              + (f", {cs['split_lines']:,} long lines split" if cs["split_lines"] else ""))
        print(f"trained {args.epochs} epoch(s): {raw:,} raw words in {seconds:.2f}s ({raw / seconds:,.0f} words/s), "
              f"final loss {w2v.loss_history[-1][1]:.4f}")
        w2v.save(args.output, format=args.format)
        print(f"wrote {args.output} ({args.format})")
        return 0

    p.set_defaults(func=run)



# ---- fusion ------------------------------------------------------------------------------------------
