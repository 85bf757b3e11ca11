"""The `embedfast` command line: `embedfast <command> --help` for each command.

Errors are one line on stderr, ``embedfast <command>: error: <what and where>``, with exit status 2 (1 for an
unexpected exception, which says so), 130 for Ctrl-C and 143 for SIGTERM (the
command stops at a safe point; files being written are left as they were). Set ``EMBEDFAST_DEBUG=1`` to get the
full traceback instead.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Optional, Sequence


def build_parser() -> argparse.ArgumentParser:
    """The `embedfast` argument parser: each family module (one per op family, and the demo) adds its commands."""
    from .. import __version__
    from . import demo, evaluate, fusion, transfer, vectors, word2vec

    parser = argparse.ArgumentParser(prog="embedfast", description="Fast word-embedding tools for PyTorch.",
                                     epilog="Errors are one line; set EMBEDFAST_DEBUG=1 for a traceback.")
    parser.add_argument("--version", action="version", version=f"embedfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for family in (vectors, word2vec, fusion, transfer, evaluate, demo):  # cheap: their handlers import what they need
        family.add_parsers(sub)
    return parser


def _debug() -> bool:
    return os.environ.get("EMBEDFAST_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")


def _one_line(text: str) -> str:
    """The first non-empty line of a message (C++ errors may append context lines)."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def _describe(exc: BaseException) -> str:
    """One line saying what went wrong and where."""
    if isinstance(exc, OSError):
        names = [n for n in (exc.filename, exc.filename2) if n is not None]
        if names:
            reason = exc.strerror or type(exc).__name__
            return f"{reason}: " + " -> ".join(repr(os.fsdecode(n)) for n in names)
        return _one_line(exc.strerror or str(exc)) or type(exc).__name__
    if isinstance(exc, MemoryError):
        detail = _one_line(str(exc))
        return "out of memory" + (f" ({detail})" if detail else "") + ": try smaller sizes or a smaller input"
    msg = _one_line(str(exc))
    if isinstance(exc, KeyError):  # str(KeyError) is the repr of the key
        msg = f"missing key {msg}"
    return msg or type(exc).__name__


def _sigterm(signum, frame):
    from ..word2vec import Terminated

    raise Terminated("terminated by SIGTERM")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the `embedfast` command line on ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    name = f"embedfast {args.command}"
    debug = _debug()
    prev_term = None
    try:  # SIGTERM stops the command like Ctrl-C does: `finally` blocks run, temporary files are removed
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            prev_term = signal.signal(signal.SIGTERM, _sigterm)
    except ValueError:  # not the main thread
        prev_term = None
    try:
        rc = args.func(args)
    except KeyboardInterrupt as exc:
        from ..word2vec import Terminated

        if debug:
            raise
        note = getattr(args, "interrupt_note", None) or "files being written were left as they were"
        if isinstance(exc, Terminated):
            print(f"{name}: terminated (SIGTERM); {note}", file=sys.stderr)
            return 128 + signal.SIGTERM
        print(f"{name}: interrupted (Ctrl-C); {note}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `embedfast info ... | head`: the reader is gone, nothing to report to
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except (OSError, MemoryError, ValueError, TypeError, RuntimeError, LookupError, ArithmeticError) as exc:
        if debug:
            raise
        print(f"{name}: error: {_describe(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: one line, the traceback on request
        if debug:
            raise
        print(f"{name}: error: unexpected {type(exc).__name__}: {_describe(exc)} (set EMBEDFAST_DEBUG=1 for the "
              "traceback)", file=sys.stderr)
        return 1
    finally:
        if prev_term is not None:
            signal.signal(signal.SIGTERM, prev_term)
    return int(rc or 0)
