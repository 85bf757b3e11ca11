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
        from .fusion import fuse_files

        weights = None
        if args.weights:
            try:
                weights = [float(x) for x in args.weights.split(",")]
            except ValueError:
                raise ValueError(f"--weights must be comma-separated numbers, got {args.weights!r}") from None
            if len(weights) != len(args.inputs):
                raise ValueError(f"--weights has {len(weights)} values for {len(args.inputs)} inputs")
        vocab = None
        if args.vocab:
            with open(args.vocab, encoding="utf-8") as f:
                vocab = [line.strip() for line in f if line.strip()]
        cov = fuse_files(args.inputs, args.output, weights=weights, vocab=vocab,
                         lowercase_fallback=not args.no_lowercase, renormalize=not args.no_renormalize,
                         binary=args.binary)
        for s in cov["sources"]:
            print(f"{s['name']}: found {s['found']}, lower-cased {s['found_lowercase']}, missing {s['missing']}")
        print(f"wrote {cov['words']} words to {args.output} ({cov['no_source']} in no source, written as zeros)")

    p.set_defaults(func=run)
