"""What every evaluation shares: the vectors (duck typing), the word lookups with gensim's ``restrict_vocab`` and
``case_insensitive`` meaning, and the checked opening of word files."""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from .._io import WORD_ERRORS, check_input_file
from .._vocab import first_index

PathLike = Union[str, "os.PathLike[str]"]


def _words_matrix(vectors: Any) -> tuple[list[str], torch.Tensor]:
    """(words, matrix as a float tensor) of an embedfast.Vectors, a words+matrix object or gensim KeyedVectors."""
    if hasattr(vectors, "words") and hasattr(vectors, "matrix"):
        words, matrix = vectors.words, vectors.matrix
    elif hasattr(vectors, "index_to_key") and hasattr(vectors, "vectors"):  # gensim KeyedVectors
        words, matrix = vectors.index_to_key, vectors.vectors
    else:
        raise TypeError(
            f"vectors: expected an object with .words and .matrix (e.g. embedfast.Vectors), got {type(vectors).__name__}"
        )
    words = list(words)
    matrix = torch.as_tensor(matrix)
    if matrix.dim() != 2:
        raise ValueError(f"vectors.matrix: expected a 2-D [N, D] matrix, got shape {tuple(matrix.shape)}")
    if matrix.shape[0] != len(words):
        raise ValueError(f"vectors: {len(words)} words but matrix has {matrix.shape[0]} rows")
    if not (matrix.is_floating_point()):
        raise ValueError(f"vectors.matrix: expected a floating-point dtype, got {matrix.dtype}")
    if matrix.dtype not in (torch.float32, torch.float64):
        matrix = matrix.float()
    matrix = matrix.detach().cpu()
    finite = torch.isfinite(matrix).all(dim=1)
    if not bool(finite.all()):  # a NaN row would turn every score into NaN without saying why
        bad = (~finite).nonzero().flatten()
        r = int(bad[0])
        raise ValueError(f"vectors.matrix: {bad.numel()} row(s) hold NaN or inf, the first row {r} "
                         f"(word {words[r]!r}); a diverged training?")
    return words, matrix


def _lookup(words: Sequence[str], restrict_vocab: Optional[int], case_insensitive: bool):
    """(key -> row, canonical row of every kept row) over the first `restrict_vocab` words.

    With case_insensitive, keys are upper-cased and the first (most frequent) variant of a word wins, as in
    gensim. ``canon[r]`` is the row that key(words[r]) maps to, so case variants share one canonical row.
    """
    n = len(words) if restrict_vocab is None else max(0, min(int(restrict_vocab), len(words)))
    key_to_row: dict[str, int] = {}
    canon = np.empty(n, dtype=np.int64)
    for r in range(n):
        k = words[r].upper() if case_insensitive else words[r]
        canon[r] = key_to_row.setdefault(k, r)
    return key_to_row, canon, n


def _check_restrict(restrict_vocab: Optional[int]) -> None:
    if restrict_vocab is not None and (not isinstance(restrict_vocab, (int, np.integer)) or restrict_vocab < 1):
        raise ValueError(f"restrict_vocab: expected a positive int or None, got {restrict_vocab!r}")


def _open_words_file(path: PathLike, what: str):
    """A text file of words, opened after checking it is a readable regular file (a named pipe would block);
    bytes that are not UTF-8 are kept as surrogate escapes, the rule of every word embedfast reads, so they match
    the vocabulary's words."""
    return open(check_input_file(path, what), encoding="utf-8", errors=WORD_ERRORS)


def _index_of(vocab: Sequence[str], words: Sequence[str]) -> dict[str, int]:
    """Row of each vocabulary word (its first occurrence); KeyError naming every word of ``words`` not in it."""
    index = first_index(vocab)
    missing = [w for w in words if w not in index]
    if missing:
        raise KeyError(f"not in the vocabulary: {', '.join(repr(w) for w in missing)}")
    return index
