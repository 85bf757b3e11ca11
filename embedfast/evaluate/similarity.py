"""Word-pair similarity: Pearson and Spearman correlations, word-pair files (WordSim353, SimLex-999), and
``evaluate_word_pairs``."""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from .._vocab import unit_rows
from ._common import PathLike, _check_restrict, _lookup, _open_words_file, _words_matrix

__all__ = ["pearson", "spearman", "read_word_pairs", "evaluate_word_pairs"]


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation coefficient of two equal-length sequences (nan when either is constant)."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"pearson: expected two 1-D sequences of equal length, got {a.shape} and {b.shape}")
    if a.size < 2:
        return float("nan")
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / den if den > 0 else float("nan")


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of their ranks (what Spearman's rho needs)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    i = 0
    n = len(x)
    while i < n:
        j = i
        while j + 1 < n and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson of average ranks; ties handled as scipy.stats.spearmanr does)."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"spearman: expected two 1-D sequences of equal length, got {a.shape} and {b.shape}")
    return pearson(_average_ranks(a), _average_ranks(b))


# ---------------------------------------------------------------------------------------------------------
# word pairs
# ---------------------------------------------------------------------------------------------------------


def read_word_pairs(path: PathLike, *, delimiter: Optional[str] = None) -> list[tuple[str, str, float]]:
    """Read a word-pair similarity file: ``word1 <TAB> word2 <TAB> score`` per line.

    Lines starting with '#' and blank lines are ignored. With ``delimiter=None`` a line is split on tabs when it
    has any, else on whitespace. A line that is not exactly two words and a number raises ValueError naming the
    file and the line number (1-based).
    """
    pairs: list[tuple[str, str, float]] = []
    with _open_words_file(path, "word-pair file") as fin:
        for line_no, line in enumerate(fin, 1):
            text = line.rstrip("\r\n")
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            if delimiter is not None:
                parts = text.split(delimiter)
            elif "\t" in text:
                parts = text.split("\t")
            else:
                parts = text.split()
            parts = [p.strip() for p in parts]
            if len(parts) != 3 or not parts[0] or not parts[1]:
                raise ValueError(f"{path}:{line_no}: expected 'word1<TAB>word2<TAB>score', got {text!r}")
            try:
                score = float(parts[2])
            except ValueError:
                raise ValueError(f"{path}:{line_no}: score {parts[2]!r} is not a number") from None
            if not math.isfinite(score):
                raise ValueError(f"{path}:{line_no}: score {parts[2]!r} is not finite")
            pairs.append((parts[0], parts[1], score))
    return pairs


def evaluate_word_pairs(
    vectors: Any,
    path: PathLike,
    *,
    restrict_vocab: Optional[int] = 300000,
    case_insensitive: bool = True,
    delimiter: Optional[str] = None,
) -> dict:
    """Correlation of cosine similarities with human judgements (WordSim353, SimLex-999 format).

    Args:
        vectors: ``embedfast.Vectors`` or any object with ``.words`` (most frequent first) and ``.matrix``.
        path: pair file, ``word1<TAB>word2<TAB>score`` lines, '#' comments.
        restrict_vocab: only the first N words of the vocabulary count as known (None: all).
        case_insensitive: match words regardless of case; the most frequent case variant's vector is used.
        delimiter: field separator (default: tab if the line has one, else whitespace).

    Returns:
        dict with ``spearman`` and ``pearson`` (floats), ``pairs`` (pairs read), ``used`` (pairs with both
        words known), ``oov`` (pairs skipped because a word is unknown), ``oov_ratio`` (oov / pairs, a fraction)
        and ``oov_pairs`` (the skipped (word1, word2) pairs).

    Raises:
        ValueError: malformed line (with file and line number), or no pair has both words in the vocabulary.
    """
    _check_restrict(restrict_vocab)
    words, matrix = _words_matrix(vectors)
    pairs = read_word_pairs(path, delimiter=delimiter)
    if not pairs:
        raise ValueError(f"{path}: no word pairs found")
    key_to_row, _, _ = _lookup(words, restrict_vocab, case_insensitive)
    norm = (lambda w: w.upper()) if case_insensitive else (lambda w: w)
    ia, ib, gold, oov_pairs = [], [], [], []
    for a, b, score in pairs:
        ra, rb = key_to_row.get(norm(a)), key_to_row.get(norm(b))
        if ra is None or rb is None:
            oov_pairs.append((a, b))
            continue
        ia.append(ra)
        ib.append(rb)
        gold.append(score)
    if not gold:
        raise ValueError(
            f"{path}: none of the {len(pairs)} pairs has both words among the first "
            f"{min(len(words), restrict_vocab or len(words))} words of the vocabulary"
        )
    unit = unit_rows(matrix)
    model = (unit[ia] * unit[ib]).sum(dim=1).double().numpy()
    return {
        "spearman": spearman(gold, model),
        "pearson": pearson(gold, model),
        "pairs": len(pairs),
        "used": len(gold),
        "oov": len(oov_pairs),
        "oov_ratio": len(oov_pairs) / len(pairs),
        "oov_pairs": oov_pairs,
    }
