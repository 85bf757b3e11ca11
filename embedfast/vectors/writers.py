"""Writing vectors: ``Vectors.save``'s checks and its text (GloVe, word2vec) and word2vec binary writers; the
native cache writer is in :mod:`embedfast.vectors.native`.

Every save is atomic (``embedfast._io``): a unique temporary file in the target's folder, renamed over the target
when complete. Words are written as their original bytes (``embedfast._io``'s word rule).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional, Sequence, Union

import numpy as np
import torch

from .._io import WORD_ERRORS, atomic_write_binary, check_output_path, encode_word
from .fasttext import save_fasttext_bin
from .formats import SAVE_FORMATS

if TYPE_CHECKING:  # pragma: no cover
    from .keyed import Vectors

__all__ = ["save_vectors", "encode_words_text"]

PathLike = Union[str, "os.PathLike[str]"]


def save_vectors(v: "Vectors", path: PathLike, format: str = "native", *, precision: Optional[int] = None) -> None:
    """Write the vectors.

    Args:
        path: output file (``.gz`` is gzip-compressed for the text formats).
        format: ``"native"`` (embedfast's cache, fastest to reload), ``"glove"`` (text, no header),
            ``"word2vec"`` (text with an "N D" header), ``"word2vec-bin"`` (word2vec binary, float32) or
            ``"fasttext-bin"`` (a fastText model that fastText's own ``fasttext.load_model`` reads: with sub-words
            the model's input rows, buckets, counts, labels and args; without, the matrix as a model with no
            n-grams). The word2vec formats are read by gensim's ``KeyedVectors.load_word2vec_format``.
        precision: significant digits for text formats. Default: the fewest of 6 or 9 digits per row that
            give back exactly the same float32 values.

    Every save is atomic: the file is written under a unique temporary name in the target's folder and
    renamed over ``path`` only when complete, so a failed save (full disk, Ctrl-C) leaves the previous file
    as it was, two processes saving to one path never mix their rows, and a reader that mapped the old file
    (``load_vectors(..., mmap=True)``) keeps reading the old contents. The output folder is checked first.
    Words are written as their original bytes (words loaded from bytes that are not UTF-8 included).
    """
    if format not in SAVE_FORMATS:
        raise ValueError(f"Vectors.save: format must be one of {SAVE_FORMATS}, got {format!r}")
    if precision is not None and (isinstance(precision, bool) or not isinstance(precision, int)
                                  or not 1 <= precision <= 17):
        raise ValueError(f"Vectors.save: precision must be an int from 1 to 17 or None, got {precision!r}")
    path = check_output_path(path, what="Vectors.save: output")
    words = v.words
    for w in words:
        if not w or "\n" in w or w != w.strip(" \t\r\v\f"):
            raise ValueError(f"Vectors.save: word {w!r} cannot be written (empty, a newline, or "
                             "leading/trailing whitespace)")
    if format == "word2vec-bin":
        bad = next((w for w in words if " " in w or "\t" in w), None)
        if bad is not None:
            raise ValueError(f"Vectors.save: word {bad!r} contains whitespace, which word2vec binary cannot "
                             "store; use format='glove' or 'native'")
    if format == "native":
        from .native import save_native  # here: native imports this module

        save_native(v, path)
        return
    if format == "fasttext-bin":
        save_fasttext_bin(v, path)
        return

    def write(f) -> None:
        if format == "word2vec-bin":
            _write_word2vec_binary(v, f)
        else:
            _write_text(v, f, header=(format == "word2vec"), precision=precision)

    atomic_write_binary(path, write)  # .gz compressed


_CHUNK_ROWS = 8192


def _rows_as_float32_numpy(m: torch.Tensor) -> np.ndarray:
    m = m.detach().cpu()
    if m.dtype != torch.float32:
        m = m.float()
    return m.contiguous().numpy()


def _write_text(v: "Vectors", f, *, header: bool, precision: Optional[int]) -> None:
    n, d = len(v), v.dim
    if header:
        f.write(f"{n} {d}\n".encode())
    m = v.matrix.detach().cpu()
    as64 = m.dtype == torch.float64
    arr = m.contiguous().numpy() if as64 else _rows_as_float32_numpy(m)
    tight = None if precision is not None else (6 if not as64 else 9)
    wide = precision if precision is not None else (9 if not as64 else 17)
    fmt_wide = " ".join([f"%.{wide}g"] * d) + "\n"
    fmt_tight = " ".join([f"%.{tight}g"] * d) + "\n" if tight else None
    for start in range(0, n, _CHUNK_ROWS):
        block = arr[start:start + _CHUNK_ROWS]
        rows = block.tolist()
        words = v.words[start:start + _CHUNK_ROWS]
        if fmt_tight is not None:
            # a row is written with `tight` digits when that gives back exactly the same values
            text = [fmt_tight % tuple(r) for r in rows]
            back = np.array(" ".join(text).split(), dtype=np.float64).reshape(block.shape).astype(block.dtype)
            ok = (back == block).all(axis=1) | (np.isnan(block).all(axis=1) & np.isnan(back).all(axis=1))
            lines = [w + " " + (t if good else fmt_wide % tuple(r))
                     for w, t, good, r in zip(words, text, ok.tolist(), rows)]
        else:
            lines = [w + " " + fmt_wide % tuple(r) for w, r in zip(words, rows)]
        f.write(encode_words_text("".join(lines), words))


def _write_word2vec_binary(v: "Vectors", f) -> None:
    n, d = len(v), v.dim
    f.write(f"{n} {d}\n".encode())
    arr = _rows_as_float32_numpy(v.matrix).astype("<f4", copy=False)
    for start in range(0, n, _CHUNK_ROWS):
        block = arr[start:start + _CHUNK_ROWS]
        words = v.words[start:start + _CHUNK_ROWS]
        f.write(b"".join(encode_word(w) + b" " + row.tobytes() + b"\n" for w, row in zip(words, block)))


def encode_words_text(text: str, words: Sequence[str]) -> bytes:
    """``text`` (words and ASCII numbers) as bytes, every word as its original bytes (``_io.encode_word``'s rule,
    in one call for the whole text); a word that cannot be written is named."""
    try:
        return text.encode("utf-8", WORD_ERRORS)
    except UnicodeEncodeError:
        for w in words:
            encode_word(w)  # raises ValueError naming the word
        raise

