"""`embedfast train`: word2vec (skip-gram or CBOW, negative sampling or hierarchical softmax) on a text corpus,
one process or several."""
from __future__ import annotations

import argparse

from ._args import add_command, check_output, nonneg_float, positive_int, save


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the word2vec commands to ``sub``."""
    p = add_command(sub, "train", train, help="train word2vec (skip-gram or CBOW) on a text corpus",
                    description="Train word2vec (skip-gram by default, CBOW with --cbow; negative sampling by "
                                "default, hierarchical softmax with --hs) with embedfast's fused CPU kernels. "
                                "CORPUS: whitespace-tokenised text, one sentence per line (.gz is fine).")
    p.add_argument("corpus", metavar="CORPUS", help="text file, one sentence per line (gzip allowed)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="where to write the vectors")
    p.add_argument("--format", default="word2vec",
                   choices=["glove", "word2vec", "word2vec-bin", "native", "fasttext-bin"],
                   help="vectors file format (default: word2vec text; fasttext-bin: fastText's .bin model, with "
                        "the sub-words of --minn/--maxn, that fasttext.load_model reads)")
    p.add_argument("--dim", type=int, default=100, help="vector size (default 100)")
    p.add_argument("--window", type=int, default=5, help="max context distance (default 5)")
    p.add_argument("--negative", type=int, default=None,
                   help="negative samples per pair (default 5; 0 with --hs, where it is the default)")
    p.add_argument("--cbow", action="store_true",
                   help="CBOW (the mean of the context vectors predicts the word; word2vec's -cbow 1) instead of "
                        "skip-gram")
    p.add_argument("--hs", action="store_true",
                   help="hierarchical softmax over word2vec's Huffman tree (word2vec's -hs 1, with negative 0) "
                        "instead of negative sampling")
    p.add_argument("--minn", type=int, default=0, metavar="N",
                   help="sub-words (fastText's skip-gram): shortest character n-gram (default 0: plain word2vec)")
    p.add_argument("--maxn", type=int, default=0, metavar="N", help="sub-words: longest character n-gram")
    p.add_argument("--buckets", type=positive_int, default=2_000_000, metavar="N",
                   help="sub-words: hash buckets of the n-grams (default 2000000)")
    p.add_argument("--sample", type=float, default=1e-4, help="sub-sampling threshold, 0 disables (default 1e-4)")
    p.add_argument("--min-count", type=int, default=5, help="ignore words rarer than this (default 5)")
    p.add_argument("--epochs", type=int, default=5, help="passes over the corpus (default 5)")
    p.add_argument("--alpha", type=float, default=None,
                   help="initial learning rate (default 0.025; 0.05 with --cbow, as word2vec, and with sub-words, "
                        "as fastText)")
    p.add_argument("--min-alpha", type=float, default=0.0001, help="final learning rate (default 0.0001)")
    p.add_argument("--lr-schedule", default="per-thread", metavar="per-thread|global",
                   help="with several threads: per-thread (default; each thread's rate falls with its own share "
                        "of an epoch, as gensim's corpus_file workers) or global (all threads' words together, "
                        "down to --min-alpha at the end, as word2vec.c); the same with one thread")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="worker threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over the processes of a torchrun launch (gloo on CPU, NCCL on GPUs); "
                        "rank 0 writes the output")
    p.add_argument("--sync-every", type=positive_int, default=1_000_000, metavar="N",
                   help="with --distributed: tokens per rank between averages of the tables (default 1000000)")
    p.add_argument("--checkpoint", metavar="PATH", default=None,
                   help="write a checkpoint there (every --checkpoint-every seconds, at the end, on Ctrl-C and on "
                        "SIGTERM); when it exists, training resumes from it (same corpus and settings required)")
    p.add_argument("--checkpoint-every", type=nonneg_float, default=600.0, metavar="SECONDS",
                   help="seconds between checkpoints (default 600; 0: after every chunk)")


def _check_paths(args: argparse.Namespace) -> None:
    """The corpus is a readable regular file and the outputs can be written: checked before any training."""
    from .._io import check_input_file, check_output_path

    check_input_file(args.corpus, "corpus")
    check_output(args.output, [args.corpus])
    if args.checkpoint is not None:
        if args.distributed:
            raise ValueError("--checkpoint: not supported with --distributed")
        check_output_path(args.checkpoint, inputs=[args.corpus, args.output], what="--checkpoint")


def _resume(fresh, checkpoint: str):
    """The Word2Vec of ``checkpoint`` after checking that it was written with the settings of this command."""
    from dataclasses import asdict

    from .. import Word2Vec

    w2v = Word2Vec.load_checkpoint(checkpoint)
    ours, theirs = asdict(fresh.params), asdict(w2v.params)
    diff = [f"{k}={theirs[k]!r} (this command: {ours[k]!r})" for k in ours if ours[k] != theirs[k]]
    if diff:
        raise ValueError(f"--checkpoint {checkpoint!r} was written with other settings: {', '.join(diff)}; pass the "
                         "same settings, or remove the checkpoint to start again")
    w2v.threads = fresh.threads
    pos = w2v.position
    where = "the run is complete" if w2v.done else f"epoch {pos['epoch'] + 1} of {w2v.params.epochs}"
    print(f"resuming from {checkpoint}: {where}, {pos['words_done']:,} words done", flush=True)
    return w2v


def _summary(w2v, args: argparse.Namespace, seconds: float, resumed: bool, start_words: int) -> None:
    vs, cs = w2v.vocab_stats, w2v.corpus_stats
    raw = cs["tokens"] * args.epochs
    print(f"vocabulary: {vs['vocab_words']:,} words (of {vs['unique_words']:,}; {vs['min_count_words']:,} below "
          f"min-count {args.min_count}); {cs['tokens']:,} tokens in {cs['lines']:,} lines"
          + (f", {cs['split_lines']:,} long lines split" if cs["split_lines"] else ""))
    if vs.get("non_utf8_words"):
        print(f"non-UTF-8: {vs['non_utf8_words']:,} vocabulary words hold bytes that are not UTF-8 (kept as "
              "distinct words and written back byte for byte)")
    if resumed:
        print(f"trained {w2v.position['words_done'] - start_words:,} more words after the checkpoint in "
              f"{seconds:.2f}s, final loss {w2v.loss_history[-1][1]:.4f}")
    else:
        print(f"trained {args.epochs} epoch(s): {raw:,} raw words in {seconds:.2f}s ({raw / seconds:,.0f} "
              f"words/s), final loss {w2v.loss_history[-1][1]:.4f}")


def train(args: argparse.Namespace) -> int:
    """`embedfast train CORPUS -o OUT`: one process, or one rank of a torchrun launch (``--distributed``)."""
    import os
    import time

    from .. import Word2Vec
    from ..word2vec.params import DEFAULT_ALPHA, DEFAULT_NEGATIVE

    _check_paths(args)
    device, dist = None, None
    if args.distributed:
        import torch
        import torch.distributed as dist

        from ..word2vec.distributed import init_from_env, train_distributed

        if torch.cuda.is_available():
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        init_from_env(device)
    w2v = Word2Vec(dim=args.dim, window=args.window,
                   negative=DEFAULT_NEGATIVE if args.negative is None else args.negative, sample=args.sample,
                   min_count=args.min_count, epochs=args.epochs,
                   alpha=DEFAULT_ALPHA if args.alpha is None else args.alpha, min_alpha=args.min_alpha,
                   threads=args.threads, seed=args.seed, device=device, sg=0 if args.cbow else 1,
                   hs=1 if args.hs else 0, minn=args.minn, maxn=args.maxn, buckets=args.buckets,
                   lr_schedule=args.lr_schedule)
    t0 = time.perf_counter()
    resumed = args.checkpoint is not None and os.path.exists(args.checkpoint)
    if resumed:
        w2v = _resume(w2v, args.checkpoint)
    else:
        w2v.build_vocab(args.corpus)
    start_words = w2v.position["words_done"]
    if dist is not None:
        train_distributed(w2v, args.corpus, sync_every=args.sync_every, progress=True)
        if dist.get_rank() != 0:
            dist.destroy_process_group()
            return 0
    else:
        if args.checkpoint is not None:  # what the one-line message of Ctrl-C / SIGTERM adds
            args.interrupt_note = (f"the checkpoint {args.checkpoint!r} holds the work so far: run the same "
                                   "command again to resume")
        w2v.train(args.corpus if resumed else None, progress=True, checkpoint=args.checkpoint,
                  checkpoint_every=args.checkpoint_every)
    _summary(w2v, args, time.perf_counter() - t0, resumed, start_words)
    save(w2v, args.output, args.format)
    print(f"wrote {args.output} ({args.format})")
    if dist is not None:
        print(f"distributed: {dist.get_world_size()} ranks, {w2v.dist_stats['rounds_per_epoch']} averages per epoch")
        dist.destroy_process_group()
    return 0
