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


def _vectors_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", default="auto", help="input format: auto (default), text, glove, word2vec, "
                   "fasttext, word2vec-bin, native (gzip is detected)")
    p.add_argument("--limit", type=int, default=None, help="read only the first N rows")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="malformed rows: stop with an error naming the line (raise), or skip and report them")
    p.add_argument("--threads", type=int, default=None, help="parser threads (default: torch's)")


@command
def _convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a vectors file (GloVe, word2vec text/binary, gzip, native)",
                       description="Read pretrained vectors in any supported format and write them in another. "
                       "'native' is embedfast's mmap cache: reloading it takes milliseconds.")
    p.add_argument("input", help="vectors file to read")
    p.add_argument("output", help="file to write (.gz compresses the text formats)")
    p.add_argument("--to", required=True, choices=["native", "glove", "word2vec", "word2vec-bin"],
                   help="output format")
    _vectors_input_args(p)

    def run(args):
        import time

        from .vectors import load_vectors

        v = load_vectors(args.input, format=args.format, limit=args.limit, on_error=args.on_error,
                         threads=args.threads)
        t = time.perf_counter()
        v.save(args.output, format=args.to)
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
    p.add_argument("--words", type=int, default=8, help="how many words to show (default 8)")
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


# ---- fusion ------------------------------------------------------------------------------------------
