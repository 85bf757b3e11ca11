"""`embedfast fuse`: several vectors files into one (weighted average over the sources that have each word)."""
from __future__ import annotations

import argparse
import sys

from ._args import add_command, add_input_format, check_output, finite_float


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the fusion commands to ``sub``."""
    p = add_command(sub, "fuse", fuse, help="fuse several vectors files into one (weighted average over present "
                    "sources)", description="Fuse vectors files of one dimension into a GloVe-format text file: "
                    "each word is the weighted average of its vectors in the sources that have it.")
    p.add_argument("inputs", nargs="+", help="vectors files of one dimension (any format --format reads)")
    p.add_argument("-o", "--output", required=True, help="output file (GloVe text format; .gz compresses)")
    add_input_format(p, "inputs'")
    p.add_argument("--weights", default=None, help="comma-separated source weights (default: equal)")
    p.add_argument("--vocab", default=None, help="file with one word per line (default: union of the inputs)")
    p.add_argument("--no-lowercase", action="store_true", help="no lower-case fallback lookup")
    p.add_argument("--no-renormalize", action="store_true", help="do not renormalise over present sources")
    p.add_argument("--binary", action="store_true", help="deprecated: use --format word2vec-bin")


def _input_format(args: argparse.Namespace) -> str:
    """``--format``, with the deprecated ``--binary`` read as ``--format word2vec-bin`` (one warning line)."""
    if not args.binary:
        return args.format
    print("embedfast fuse: warning: --binary is deprecated, use --format word2vec-bin", file=sys.stderr)
    if args.format not in ("auto", "word2vec-bin"):
        raise ValueError(f"--binary contradicts --format {args.format}")
    return "word2vec-bin"


def _weights(text, n: int):
    """``--weights``: one finite number per input, or None (equal weights)."""
    if not text:
        return None
    try:
        weights = [finite_float(x) for x in text.split(",")]
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"--weights must be comma-separated finite numbers, got {text!r} ({exc})") from None
    if len(weights) != n:
        raise ValueError(f"--weights has {len(weights)} values for {n} inputs")
    return weights


def _vocab(path):
    """``--vocab``: one word per line, read with embedfast's word rule (bytes that are not UTF-8 kept as escapes)."""
    if not path:
        return None
    from .._io import WORD_ERRORS, check_input_file

    with open(check_input_file(path, "--vocab"), encoding="utf-8", errors=WORD_ERRORS) as f:
        return [line.strip() for line in f if line.strip()]


def fuse(args: argparse.Namespace) -> int:
    """`embedfast fuse A B ... -o OUT`."""
    from ..fusion import fuse_files

    fmt = _input_format(args)
    check_output(args.output, [*args.inputs, args.vocab])
    cov = fuse_files(args.inputs, args.output, weights=_weights(args.weights, len(args.inputs)),
                     vocab=_vocab(args.vocab), lowercase_fallback=not args.no_lowercase,
                     renormalize=not args.no_renormalize, format=fmt)
    for s in cov.sources:
        print(f"{s.name}: found {s.found}, lower-cased {s.found_lowercase}, missing {s.missing}")
    print(f"wrote {cov.total} words to {args.output} ({cov.missing} in no source, written as zeros)")
    return 0
