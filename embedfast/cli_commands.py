"""Sub-commands of the `embedfast` CLI, one section per op family. Heavy imports stay inside the handlers."""
from __future__ import annotations

import argparse

from .cli import command


# ---- argument types (argparse turns their ValueError into "argument --x: invalid ... value") ----------------


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {v}")
        return v

    parse.__name__ = f"int >= {low}"
    return parse


_nonneg_int = _int_at_least(0)
_positive_int = _int_at_least(1)


def _finite_float(text: str) -> float:
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _save(obj, path: str, fmt: str) -> None:
    """``obj.save(path, format=fmt)``; a write error that does not say which file (a full disk) names it."""
    try:
        obj.save(path, format=fmt)
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, f"cannot write {fmt} vectors: {exc.strerror or exc}", path) from None
        raise


def _nonneg_float(text: str) -> float:
    v = _finite_float(text) if text.strip().lower() not in ("inf", "infinity") else float("inf")
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return v


def _resume(fresh, checkpoint: str):
    """The Word2Vec of ``checkpoint`` after checking that it was written with the settings of this command."""
    from dataclasses import asdict

    from .word2vec import Word2Vec

    w2v = Word2Vec.load_checkpoint(checkpoint)
    ours, theirs = asdict(fresh.params), asdict(w2v.params)
    diff = [f"{k}={theirs[k]!r} (this command: {ours[k]!r})" for k in ours if ours[k] != theirs[k]]
    if diff:
        raise ValueError(f"--checkpoint {checkpoint!r} was written with other settings: {', '.join(diff)}; pass the "
                         "same settings, or remove the checkpoint to start again")
    w2v.threads = fresh.threads
    pos = w2v._pos
    where = "the run is complete" if w2v.done else f"epoch {pos['epoch'] + 1} of {w2v.params.epochs}"
    print(f"resuming from {checkpoint}: {where}, {pos['words_done']:,} words done", flush=True)
    return w2v


def _outputs_checked(output: str, inputs) -> str:
    """The output path after checking, before any work, that it can be written and is not an input."""
    from ._io import check_output_path

    return check_output_path(output, inputs=[i for i in inputs if i])

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


def _vectors_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", default="auto", help="input format: auto (default), text, glove, word2vec, "
                   "fasttext, word2vec-bin, native (gzip is detected)")
    p.add_argument("--limit", type=_nonneg_int, default=None, help="read only the first N rows")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="malformed rows: stop with an error naming the line (raise), or skip and report them")
    p.add_argument("--threads", type=_positive_int, default=None, help="parser threads (default: torch's)")


@command
def _convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a vectors file (GloVe, word2vec text/binary, gzip, native)",
                       description="Read pretrained vectors in any supported format and write them in another. "
                       "'native' is embedfast's cache: the fastest to reload.")
    p.add_argument("input", help="vectors file to read")
    p.add_argument("output", help="file to write (.gz compresses the text formats)")
    p.add_argument("--to", required=True, choices=["native", "glove", "word2vec", "word2vec-bin"],
                   help="output format")
    _vectors_input_args(p)

    def run(args):
        import time

        from .vectors import load_vectors

        _outputs_checked(args.output, [args.input])
        v = load_vectors(args.input, format=args.format, limit=args.limit, on_error=args.on_error,
                         threads=args.threads)
        t = time.perf_counter()
        _save(v, args.output, args.to)
        print(f"read {v.report.summary()}")
        print(f"wrote {args.output} ({args.to}) in {time.perf_counter() - t:.3f} s")
        return 0

    p.set_defaults(func=run)


@command
def _info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="load a vectors file and print its size, format, load report and time",
                       description="Load a vectors file and print rows, dimension, format, the full load report "
                       "(blank lines, skipped rows, duplicates, invalid UTF-8, ...), a few words and the load time.")
    p.add_argument("file", help="vectors file")
    p.add_argument("--words", type=_nonneg_int, default=8, help="how many words to show (default 8)")
    _vectors_input_args(p)

    def run(args):
        from .vectors import load_vectors

        v = load_vectors(args.file, format=args.format, limit=args.limit, on_error=args.on_error,
                         threads=args.threads)
        print(str(v.report))
        shown = v.words[:args.words]
        print(f"first words:         {' '.join(repr(w) for w in shown)}")
        return 0

    p.set_defaults(func=run)


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
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                   help="worker threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over the processes of a torchrun launch (gloo on CPU, NCCL on GPUs); "
                        "rank 0 writes the output")
    p.add_argument("--sync-every", type=_positive_int, default=1_000_000, metavar="N",
                   help="with --distributed: tokens per rank between averages of the tables (default 1000000)")
    p.add_argument("--checkpoint", metavar="PATH", default=None,
                   help="write a checkpoint there (every --checkpoint-every seconds, at the end, on Ctrl-C and on "
                        "SIGTERM); when it exists, training resumes from it (same corpus and settings required)")
    p.add_argument("--checkpoint-every", type=_nonneg_float, default=600.0, metavar="SECONDS",
                   help="seconds between checkpoints (default 600; 0: after every chunk)")

    def run(args):
        import os
        import time

        from ._io import check_input_file
        from .word2vec import Word2Vec

        # the corpus is readable and a regular file, the outputs can be written: checked before any training
        check_input_file(args.corpus, "corpus")
        _outputs_checked(args.output, [args.corpus])
        if args.checkpoint is not None:
            if args.distributed:
                raise ValueError("--checkpoint: not supported with --distributed")
            from ._io import check_output_path

            check_output_path(args.checkpoint, inputs=[args.corpus, args.output], what="--checkpoint")
        device, rank = None, 0
        if args.distributed:
            import torch
            import torch.distributed as dist

            from .word2vec.distributed import init_from_env, train_distributed

            if torch.cuda.is_available():
                device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
            init_from_env(device)
            rank = dist.get_rank()
        w2v = Word2Vec(dim=args.dim, window=args.window, negative=args.negative, sample=args.sample,
                       min_count=args.min_count, epochs=args.epochs, alpha=args.alpha, min_alpha=args.min_alpha,
                       threads=args.threads, seed=args.seed, device=device)
        t0 = time.perf_counter()
        resumed = args.checkpoint is not None and os.path.exists(args.checkpoint)
        if resumed:
            w2v = _resume(w2v, args.checkpoint)
        else:
            w2v.build_vocab(args.corpus)
        if args.distributed:
            train_distributed(w2v, args.corpus, sync_every=args.sync_every, progress=True)
            if rank != 0:
                dist.destroy_process_group()
                return 0
        else:
            if args.checkpoint is not None:  # what the one-line message of Ctrl-C / SIGTERM adds
                args.interrupt_note = (f"the checkpoint {args.checkpoint!r} holds the work so far: run the same "
                                       "command again to resume")
            start_words = w2v._pos["words_done"]
            w2v.train(args.corpus if resumed else None, progress=True, checkpoint=args.checkpoint,
                      checkpoint_every=args.checkpoint_every)
        seconds = time.perf_counter() - t0
        vs, cs = w2v.vocab_stats, w2v.corpus_stats
        raw = cs["tokens"] * args.epochs
        print(f"vocabulary: {vs['vocab_words']:,} words (of {vs['unique_words']:,}; {vs['min_count_words']:,} below "
              f"min-count {args.min_count}); {cs['tokens']:,} tokens in {cs['lines']:,} lines"
              + (f", {cs['split_lines']:,} long lines split" if cs["split_lines"] else ""))
        if vs.get("non_utf8_words"):
            print(f"non-UTF-8: {vs['non_utf8_words']:,} vocabulary words hold bytes that are not UTF-8 (kept as "
                  "distinct words and written back byte for byte)")
        if resumed:
            print(f"trained {w2v._pos['words_done'] - start_words:,} more words after the checkpoint in "
                  f"{seconds:.2f}s, final loss {w2v.loss_history[-1][1]:.4f}")
        else:
            print(f"trained {args.epochs} epoch(s): {raw:,} raw words in {seconds:.2f}s ({raw / seconds:,.0f} "
                  f"words/s), final loss {w2v.loss_history[-1][1]:.4f}")
        _save(w2v, args.output, args.format)
        print(f"wrote {args.output} ({args.format})")
        if args.distributed:
            print(f"distributed: {dist.get_world_size()} ranks, {w2v.dist_stats['rounds_per_epoch']} averages per "
                  f"epoch")
            dist.destroy_process_group()
        return 0

    p.set_defaults(func=run)


@command
def _eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score word vectors on word-pair similarity and analogy files",
        description="Score VECTORS (any format embedfast.load_vectors reads) on word-pair similarity files "
        "(Spearman/Pearson) and an analogy file (accuracy). With no file given, uses the standard WordSim353, "
        "SimLex-999 and Google analogy files from gensim's test data.",
    )
    p.add_argument("vectors", metavar="VECTORS", help="vectors file (GloVe, word2vec text/binary, native)")
    p.add_argument("--similarity", metavar="FILE", action="append", default=[],
                   help="word-pair file 'word1<TAB>word2<TAB>score' ('#' comments); repeat for several")
    p.add_argument("--analogy", metavar="FILE", default=None, help="analogy file in questions-words.txt format")
    p.add_argument("--restrict-vocab", metavar="N", type=_positive_int, default=300000,
                   help="only the first N (most frequent) words count as known and as answers (default 300000)")
    p.add_argument("--method", choices=("3cosadd", "3cosmul"), default="3cosadd", help="analogy method")
    p.add_argument("--case-sensitive", action="store_true", help="match words exactly (default: ignore case)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")

    def run(args):
        import json
        import os

        from . import evaluate
        from .data import evaluation_file

        try:
            from . import load_vectors
        except ImportError as exc:  # pragma: no cover - only before the loader API exists
            raise RuntimeError("embedfast.load_vectors is not available in this build") from exc
        sim_files, ana_file = list(args.similarity), args.analogy
        if not sim_files and ana_file is None:
            sim_files = [evaluation_file("wordsim353.tsv"), evaluation_file("simlex999.txt")]
            ana_file = evaluation_file("questions-words.txt")
        from ._io import check_input_file

        for f in sim_files + ([ana_file] if ana_file else []):
            check_input_file(f, "evaluation file")
        vectors = load_vectors(args.vectors)
        ci = not args.case_sensitive
        out: dict = {"vectors": args.vectors, "words": len(vectors.words), "similarity": {}, "analogy": None}
        for f in sim_files:
            r = evaluate.evaluate_word_pairs(vectors, f, restrict_vocab=args.restrict_vocab, case_insensitive=ci)
            r.pop("oov_pairs")
            out["similarity"][f] = r
        if ana_file:
            r = evaluate.evaluate_analogies(vectors, ana_file, restrict_vocab=args.restrict_vocab,
                                            method=args.method, case_insensitive=ci)
            out["analogy"] = {"file": ana_file, **r}
        if args.json:  # strict JSON: NaN / inf (a correlation of constant scores) are written as null
            print(json.dumps(_json_safe(out), indent=1, allow_nan=False))
            return 0
        print(f"{args.vectors}: {out['words']} words, restrict_vocab={args.restrict_vocab}")
        for f, r in out["similarity"].items():
            print(f"  {os.path.basename(f):<24} spearman {r['spearman']:.4f}  pearson {r['pearson']:.4f}  "
                  f"pairs {r['used']}/{r['pairs']} (oov {r['oov']}, {100 * r['oov_ratio']:.1f}%)")
        if out["analogy"]:
            r = out["analogy"]
            print(f"  {os.path.basename(ana_file):<24} {r['method']} accuracy {100 * r['accuracy']:.2f}%  "
                  f"correct {r['correct']}/{r['total']}  skipped {r['skipped']} of {r['questions']} (unknown words)")
            for s in r["sections"]:
                acc = "   n/a" if s["total"] == 0 else f"{100 * s['accuracy']:6.2f}%"
                print(f"    {s['section']:<28} {acc}  {s['correct']}/{s['total']}  skipped {s['skipped']}")
        return 0

    p.set_defaults(func=run)


def _json_safe(x):
    """``x`` with every non-finite float replaced by None (JSON has no NaN or Infinity)."""
    import math

    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


# ---- fusion ------------------------------------------------------------------------------------------


@command
def _fuse(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fuse", help="fuse several vectors files into one (weighted average over present sources)",
                       description="Fuse vectors files of one dimension into a GloVe-format text file: each word is "
                                   "the weighted average of its vectors in the sources that have it.")
    p.add_argument("inputs", nargs="+", help="vectors files (GloVe / word2vec text; --binary for word2vec binary)")
    p.add_argument("-o", "--output", required=True, help="output file (GloVe text format)")
    p.add_argument("--weights", default=None, help="comma-separated source weights (default: equal)")
    p.add_argument("--vocab", default=None, help="file with one word per line (default: union of the inputs)")
    p.add_argument("--no-lowercase", action="store_true", help="no lower-case fallback lookup")
    p.add_argument("--no-renormalize", action="store_true", help="do not renormalise over present sources")
    p.add_argument("--binary", action="store_true", help="inputs are word2vec binary")

    def run(args):
        from ._io import WORD_ERRORS, check_input_file
        from .fusion import fuse_files

        _outputs_checked(args.output, [*args.inputs, args.vocab])
        weights = None
        if args.weights:
            try:
                weights = [_finite_float(x) for x in args.weights.split(",")]
            except argparse.ArgumentTypeError as exc:
                raise ValueError(f"--weights must be comma-separated finite numbers, got {args.weights!r} ({exc})") \
                    from None
            if len(weights) != len(args.inputs):
                raise ValueError(f"--weights has {len(weights)} values for {len(args.inputs)} inputs")
        vocab = None
        if args.vocab:  # words are read with embedfast's word rule (bytes that are not UTF-8 kept as escapes)
            with open(check_input_file(args.vocab, "--vocab"), encoding="utf-8", errors=WORD_ERRORS) as f:
                vocab = [line.strip() for line in f if line.strip()]
        cov = fuse_files(args.inputs, args.output, weights=weights, vocab=vocab,
                         lowercase_fallback=not args.no_lowercase, renormalize=not args.no_renormalize,
                         binary=args.binary)
        for s in cov["sources"]:
            print(f"{s['name']}: found {s['found']}, lower-cased {s['found_lowercase']}, missing {s['missing']}")
        print(f"wrote {cov['words']} words to {args.output} ({cov['no_source']} in no source, written as zeros)")

    p.set_defaults(func=run)
