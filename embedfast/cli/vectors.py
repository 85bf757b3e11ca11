"""`embedfast info` and `embedfast convert`: pretrained vectors files."""
from __future__ import annotations

import argparse

from ._args import add_command, add_input_format, check_output, nonneg_int, positive_int, save

SAVE_FORMATS = ("native", "glove", "word2vec", "word2vec-bin")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the vectors commands to ``sub``."""
    p = add_command(sub, "info", info, help="load a vectors file and print its size, format, load report and time",
                    description="Load a vectors file and print rows, dimension, format, the full load report "
                    "(blank lines, skipped rows, duplicates, invalid UTF-8, ...), a few words and the load time.")
    p.add_argument("file", help="vectors file")
    p.add_argument("--words", type=nonneg_int, default=8, help="how many words to show (default 8)")
    _input_args(p)

    p = add_command(sub, "convert", convert,
                    help="convert a vectors file (GloVe, word2vec text/binary, gzip, native)",
                    description="Read pretrained vectors in any supported format and write them in another. "
                    "'native' is embedfast's cache: the fastest to reload.")
    p.add_argument("input", help="vectors file to read")
    p.add_argument("output", help="file to write (.gz compresses the text formats)")
    p.add_argument("--to", required=True, choices=SAVE_FORMATS, help="output format")
    _input_args(p)


def _input_args(p: argparse.ArgumentParser) -> None:
    add_input_format(p)
    p.add_argument("--limit", type=nonneg_int, default=None, help="read only the first N rows")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="malformed rows: stop with an error naming the line (raise), or skip and report them")
    p.add_argument("--threads", type=positive_int, default=None, help="parser threads (default: torch's)")


def _load(path: str, args: argparse.Namespace):
    """``load_vectors(path)`` with the input options of the command line."""
    from ..vectors import load_vectors  # looked up at call time: tests replace embedfast.vectors.load_vectors

    return load_vectors(path, format=args.format, limit=args.limit, on_error=args.on_error, threads=args.threads)


def info(args: argparse.Namespace) -> int:
    """`embedfast info FILE`: the load report and the first words."""
    v = _load(args.file, args)
    print(str(v.report))
    print(f"first words:         {' '.join(repr(w) for w in v.words[:args.words])}")
    return 0


def convert(args: argparse.Namespace) -> int:
    """`embedfast convert IN OUT --to FORMAT`."""
    import time

    check_output(args.output, [args.input])
    v = _load(args.input, args)
    t = time.perf_counter()
    save(v, args.output, args.to)
    print(f"read {v.report.summary()}")
    print(f"wrote {args.output} ({args.to}) in {time.perf_counter() - t:.3f} s")
    return 0
