"""Line-aligned text for the transfer pipeline: reading one sentence per line (plain or gzip, bytes that are not
UTF-8 kept by embedfast's word rule), pairs of line-aligned files with their errors (which file, which line),
and the optional Chinese segmenter (``jieba``)."""
from __future__ import annotations

import gzip
import os
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from .._io import WORD_ERRORS, check_input_file

__all__ = ["read_lines", "read_parallel", "segmenter", "Corpus"]

PathLike = Union[str, "os.PathLike[str]"]
#: A corpus: a file path (one sentence per line; ``.gz`` or gzip content read as such), or an iterable of
#: sentences (each a str, or a list of words).
Corpus = Union[PathLike, Iterable[Union[str, Sequence[str]]]]


def _open(path: str):
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors=WORD_ERRORS, newline="\n")
    return open(path, "rt", encoding="utf-8", errors=WORD_ERRORS, newline="\n")


def read_lines(path: PathLike, what: str = "input") -> Iterator[str]:
    """The lines of a text file (without their line end), streamed; gzip read when the file is gzip."""
    p = check_input_file(path, what)
    try:
        with _open(p) as f:
            for line in f:
                yield line.rstrip("\r\n")
    except (OSError, EOFError) as exc:
        raise ValueError(f"{what}: {p} could not be read: {exc}") from None


def is_path(corpus: object) -> bool:
    return isinstance(corpus, (str, bytes, os.PathLike))


def sentences(corpus: Corpus, split: Callable[[str], List[str]], what: str) -> Iterator[List[str]]:
    """The corpus as lists of words: file lines or str items through ``split``, lists of words as given."""
    if is_path(corpus):
        for line in read_lines(os.fsdecode(corpus), what):
            yield split(line)
        return
    if not isinstance(corpus, Iterable):
        raise TypeError(f"{what}: corpus must be a file path or an iterable of sentences, got {type(corpus).__name__}")
    for i, s in enumerate(corpus):
        if isinstance(s, str):
            yield split(s)
        elif isinstance(s, Sequence) and not isinstance(s, bytes) and all(isinstance(w, str) for w in s):
            yield [w for w in s if w]
        else:
            raise TypeError(f"{what}: sentence {i} must be a str or a list of str words, got {type(s).__name__}")


def segmenter(kind: Optional[str]) -> Callable[[str], List[str]]:
    """A line -> words function: ``None``/``"none"`` splits on whitespace, ``"jieba"`` segments Chinese text
    with jieba (pip install jieba), dropping whitespace tokens."""
    if kind in (None, "none", "whitespace"):
        return str.split
    if kind == "jieba":
        try:
            import jieba
        except ImportError as exc:
            raise ImportError("--segment jieba needs the `jieba` package: pip install jieba") from exc
        jieba.setLogLevel(60)
        return lambda line: [w for w in jieba.lcut(line) if w.strip()]
    raise ValueError(f"segment must be 'jieba' or 'none', got {kind!r}")


def read_parallel(source: PathLike, target: PathLike, *, source_split: Callable[[str], List[str]] = str.split,
                  target_split: Callable[[str], List[str]] = str.split, what: str = "map"
                  ) -> Tuple[List[List[str]], List[List[str]], dict]:
    """Two line-aligned files as lists of words. A file with more lines than the other is an error naming
    both files and the first line that has no partner; a side with no word in any line is an error; pairs
    where one side is empty are kept as they are (they align nothing) and counted in ``stats['empty_pairs']``."""
    src_it, tgt_it = read_lines(source, f"{what}: source text"), read_lines(target, f"{what}: target text")
    src: List[List[str]] = []
    tgt: List[List[str]] = []
    empty = 0
    n = 0
    while True:
        a = next(src_it, None)
        b = next(tgt_it, None)
        if a is None and b is None:
            break
        n += 1
        if a is None or b is None:
            short, long_ = (source, target) if a is None else (target, source)
            raise ValueError(f"{what}: {os.fsdecode(short)} has {n - 1} lines but {os.fsdecode(long_)} has more: "
                             f"line {n} of {os.fsdecode(long_)} has no partner (the texts must be line-aligned)")
        sa, sb = source_split(a), target_split(b)
        empty += (not sa) or (not sb)
        src.append(sa)
        tgt.append(sb)
    for side, path in ((src, source), (tgt, target)):
        if not any(side):
            raise ValueError(f"{what}: {os.fsdecode(path)} has no words ({len(side)} lines, all empty)")
    return src, tgt, {"pairs": n, "empty_pairs": empty}
