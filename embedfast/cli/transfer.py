"""`embedfast map`: a target language's embedding matrix from an English model's contextual vectors through
word alignment of a line-aligned parallel text (``embedfast.transfer.map_embeddings``)."""
from __future__ import annotations

import argparse

from ._args import add_command, check_output, int_at_least


def _layers(text: str):
    """``--layers``: one index (``-1``, ``3``) or a comma-separated list averaged (``1,2,3``)."""
    try:
        vals = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int or comma-separated ints, got {text!r}") from None
    return vals[0] if len(vals) == 1 else vals


def _unit_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}") from None
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text!r}")
    return x


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the transfer commands to ``sub``."""
    p = add_command(sub, "map", map_command, help="another language's vectors from an English model through "
                    "word alignment", description="Encode SOURCE_TEXT with the model, align it to TARGET_TEXT "
                    "(line-aligned), and give each target word the vector of the source words it aligns to.")
    p.add_argument("source_text", metavar="SOURCE_TEXT", help="source side, one sentence per line (.gz read)")
    p.add_argument("target_text", metavar="TARGET_TEXT", help="target side, line-aligned with SOURCE_TEXT")
    p.add_argument("--model", required=True, help="local model folder (model.safetensors + tokenizer.json)")
    p.add_argument("-o", "--output", required=True, help="output vectors file")
    p.add_argument("--format", default="glove", choices=("glove", "word2vec", "word2vec-bin", "native"),
                   help="output format (default glove)")
    p.add_argument("--strategy", default="mix", choices=("mix", "max"),
                   help="mix: probability-weighted mix of the aligned source words; max: the most probable one")
    p.add_argument("--layers", type=_layers, default=None,
                   help="hidden state(s) averaged: 0 embeddings, 1..L layers, -1 last; e.g. 1,2,3 "
                   "(default: the hidden state two thirds of the way up the model)")
    p.add_argument("--static-weight", type=_unit_float, default=None,
                   help="weight of the model's static input embeddings mixed into the source vectors "
                   "(default: embedfast.transfer.DEFAULT_STATIC_WEIGHT)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--alignment", default=None, help="Pharaoh alignment file (i-j links per line) to use")
    g.add_argument("--dictionary", default=None, help="bilingual dictionary (source target [weight] lines)")
    g.add_argument("--aligner", default="eflomal", choices=("eflomal",), help="aligner to run (default eflomal)")
    p.add_argument("--symmetrization", default="grow-diag-final-and",
                   choices=("grow-diag-final-and", "intersection", "union", "forward", "reverse"))
    p.add_argument("--stopwords", default=None, help="target-language stopwords file (words per line)")
    p.add_argument("--segment", default="none", choices=("jieba", "none"),
                   help="segment TARGET_TEXT with jieba (default none: whitespace-separated words)")
    p.add_argument("--min-links", type=int_at_least(1), default=2, help="links a target word needs (default 2)")
    p.add_argument("--keep-unlinked", action="store_true",
                   help="keep target words below --min-links as OOV rows (--oov)")
    p.add_argument("--oov", default="zeros", choices=("zeros", "normal", "mean"), help="rows of words without links")
    p.add_argument("--batch-tokens", type=int_at_least(1), default=4096, help="word pieces per batch (padded slots)")
    p.add_argument("--device", default=None, help="device to run the model on (cpu, cuda, cuda:1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def map_command(args: argparse.Namespace) -> int:
    """`embedfast map SOURCE_TEXT TARGET_TEXT --model DIR -o OUT`."""
    from ..transfer.pipeline import DEFAULT_LAYERS, DEFAULT_STATIC_WEIGHT, map_embeddings

    inputs = [args.source_text, args.target_text, args.alignment, args.dictionary, args.stopwords]
    check_output(args.output, inputs)
    res = map_embeddings(args.source_text, args.target_text, args.model, out=args.output, format=args.format,
                         strategy=args.strategy, layers=DEFAULT_LAYERS if args.layers is None else args.layers,
                         static_weight=DEFAULT_STATIC_WEIGHT if args.static_weight is None else args.static_weight,
                         alignment=args.alignment, dictionary=args.dictionary, symmetrization=args.symmetrization,
                         stopwords=args.stopwords, segment=args.segment, min_links=args.min_links,
                         keep_unlinked=args.keep_unlinked, oov=args.oov, batch_tokens=args.batch_tokens,
                         device=args.device, progress=not args.no_progress)
    print(res.summary())
    print(f"wrote {len(res.vectors)} words x {res.vectors.dim} to {args.output}")
    return 0
