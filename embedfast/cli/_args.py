"""What the command families share: the sub-command builder, argument types (argparse turns their errors into
"argument --x: invalid ... value"), the input-format option, output checks and saving."""
from __future__ import annotations

import argparse
import math
from typing import Callable, Iterable, Optional

Handler = Callable[[argparse.Namespace], Optional[int]]

#: the ``--format`` values of commands that read vectors files (embedfast.load_vectors's formats)
INPUT_FORMATS = ("auto", "text", "glove", "word2vec", "fasttext", "word2vec-bin", "native")


def add_command(sub: argparse._SubParsersAction, name: str, handler: Handler, *, help: str,
                description: str) -> argparse.ArgumentParser:
    """A sub-command ``name`` whose parsed arguments go to ``handler(args) -> exit status``; returns its parser
    for the caller to add the arguments."""
    p = sub.add_parser(name, help=help, description=description)
    p.set_defaults(func=handler)
    return p


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``."""
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


nonneg_int = int_at_least(0)
positive_int = int_at_least(1)


def finite_float(text: str) -> float:
    """An argparse type: a finite number."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def nonneg_float(text: str) -> float:
    """An argparse type: a number >= 0, ``inf`` allowed."""
    v = finite_float(text) if text.strip().lower() not in ("inf", "infinity") else float("inf")
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return v


def add_input_format(p: argparse.ArgumentParser, what: str = "input") -> None:
    """``--format`` of a command that reads vectors files (default auto: detected, gzip too)."""
    p.add_argument("--format", default="auto", choices=INPUT_FORMATS, metavar="FORMAT",
                   help=f"{what} format: {', '.join(INPUT_FORMATS)} (default auto; gzip is detected)")


def check_output(output: str, inputs: Iterable[Optional[str]]) -> str:
    """The output path after checking, before any work, that it can be written and is not an input."""
    from .._io import check_output_path

    return check_output_path(output, inputs=[i for i in inputs if i])


def save(obj, path: str, fmt: str) -> None:
    """``obj.save(path, format=fmt)``; a write error that does not say which file (a full disk) names it."""
    try:
        obj.save(path, format=fmt)
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, f"cannot write {fmt} vectors: {exc.strerror or exc}", path) from None
        raise
