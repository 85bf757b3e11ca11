"""Intrinsic evaluation of word vectors: word-pair similarity, analogies, nearest neighbours, plots.

Every function takes ``vectors``: an :class:`embedfast.Vectors`, or any object with ``.words`` (sequence of
str, most frequent first) and ``.matrix`` ([N, D] tensor or array), or a gensim ``KeyedVectors``.

The semantics follow gensim's ``KeyedVectors.evaluate_word_pairs`` / ``evaluate_word_analogies`` (same
``restrict_vocab`` and ``case_insensitive`` meaning, same answers on the same vectors; a test checks this),
but analogies are solved in batches of matrix products, so the 19,544 Google questions take about a second.
Differences from gensim: malformed lines are an error naming the file and line instead of being skipped
quietly, ``oov_ratio`` is a fraction (gensim returns a percentage), and 3CosMul is offered.

Standard files: ``embedfast.data.evaluation_file("wordsim353.tsv" | "simlex999.txt" | "questions-words.txt")``.
"""
from __future__ import annotations

import math
import os
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
import torch

from ._io import WORD_ERRORS, atomic_save_with, check_input_file, check_output_path
from ._vocab import first_index, unit_rows

__all__ = [
    "evaluate_word_pairs",
    "evaluate_analogies",
    "nearest_neighbours",
    "read_word_pairs",
    "read_analogies",
    "spearman",
    "pearson",
    "plot_loss",
    "plot_projection",
]

PathLike = Union[str, "os.PathLike[str]"]

# ---------------------------------------------------------------------------------------------------------
# vectors (duck typing)
# ---------------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------------
# correlations
# ---------------------------------------------------------------------------------------------------------


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


def _open_words_file(path: PathLike, what: str):
    """A text file of words, opened after checking it is a readable regular file (a named pipe would block);
    bytes that are not UTF-8 are kept as surrogate escapes, the rule of every word embedfast reads, so they match
    the vocabulary's words."""
    return open(check_input_file(path, what), encoding="utf-8", errors=WORD_ERRORS)


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


# ---------------------------------------------------------------------------------------------------------
# analogies
# ---------------------------------------------------------------------------------------------------------


def read_analogies(path: PathLike) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """Read a ``questions-words.txt`` style file: ``: section`` lines, then ``a b c d`` questions.

    Blank lines are ignored. A question before any section or a line that is not four words raises
    ValueError naming the file and the line number (1-based).
    """
    sections: list[tuple[str, list[tuple[str, str, str, str]]]] = []
    with _open_words_file(path, "analogy file") as fin:
        for line_no, line in enumerate(fin, 1):
            text = line.strip()
            if not text:
                continue
            if text.startswith(":"):
                name = text[1:].strip()
                if not name:
                    raise ValueError(f"{path}:{line_no}: empty section name")
                sections.append((name, []))
                continue
            parts = text.split()
            if len(parts) != 4:
                raise ValueError(f"{path}:{line_no}: expected 4 words 'a b c d', got {len(parts)}: {text!r}")
            if not sections:
                raise ValueError(f"{path}:{line_no}: question before the first ': section' line")
            sections[-1][1].append((parts[0], parts[1], parts[2], parts[3]))
    return sections


_METHODS = ("3cosadd", "3cosmul")


def _variant_groups(canon: np.ndarray) -> torch.Tensor:
    """[n, G] table: row g lists every row whose canonical row is g (padded with g itself)."""
    n = len(canon)
    extra: dict[int, list[int]] = {}
    for r in np.nonzero(canon != np.arange(n))[0].tolist():
        extra.setdefault(int(canon[r]), []).append(r)
    width = 1 + max((len(v) for v in extra.values()), default=0)
    group = torch.arange(n, dtype=torch.int64).unsqueeze(1).repeat(1, width)
    for g, rs in extra.items():
        group[g, 1 : 1 + len(rs)] = torch.tensor(rs, dtype=torch.int64)
    return group


def evaluate_analogies(
    vectors: Any,
    path: PathLike,
    *,
    restrict_vocab: Optional[int] = 300000,
    method: str = "3cosadd",
    case_insensitive: bool = True,
    epsilon: float = 1e-3,
    batch_size: int = 512,
) -> dict:
    """Accuracy on analogy questions "a is to b as c is to d" (Google ``questions-words.txt`` format).

    The answer is the word among the first ``restrict_vocab`` words of the vocabulary (frequency order), other
    than a, b and c (and their case variants when ``case_insensitive``), that maximises

    - ``3cosadd``: cos(x, b) - cos(x, a) + cos(x, c)  (Mikolov et al.; gensim's ``evaluate_word_analogies``)
    - ``3cosmul``: cos'(x, b) * cos'(x, c) / (cos'(x, a) + epsilon), cos' = (1 + cos) / 2  (Levy & Goldberg 2014,
      who use epsilon = 0.001; gensim's ``most_similar_cosmul`` uses 1e-6).

    A question with any of its four words outside the first ``restrict_vocab`` words is skipped and counted in
    ``skipped`` (gensim's semantics). Questions are scored in batches of ``batch_size`` with matrix products.

    Returns:
        dict with ``accuracy`` (correct / total; nan when no question could be asked), ``correct``, ``total``
        (questions answered), ``skipped`` (questions with an unknown word), ``questions`` (read), ``method``,
        ``restrict_vocab`` (the effective candidate count) and ``sections``: a list of dicts
        ``{section, correct, total, skipped, accuracy}`` in file order.
    """
    _check_restrict(restrict_vocab)
    if method not in _METHODS:
        raise ValueError(f"method: expected one of {_METHODS}, got {method!r}")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    if not (epsilon > 0):
        raise ValueError(f"epsilon: expected > 0, got {epsilon!r}")
    words, matrix = _words_matrix(vectors)
    sections = read_analogies(path)
    key_to_row, canon_np, n = _lookup(words, restrict_vocab, case_insensitive)
    norm = (lambda w: w.upper()) if case_insensitive else (lambda w: w)

    rows: list[tuple[int, int, int, int]] = []
    sec_of: list[int] = []
    per_section = []
    for s, (name, questions) in enumerate(sections):
        skipped = 0
        for q in questions:
            r = [key_to_row.get(norm(w)) for w in q]
            if any(x is None for x in r):
                skipped += 1
                continue
            rows.append(tuple(r))  # type: ignore[arg-type]
            sec_of.append(s)
        per_section.append({"section": name, "correct": 0, "total": 0, "skipped": skipped})

    if rows and n > 0:
        unit = unit_rows(matrix[:n])
        canon = torch.from_numpy(canon_np)
        q = torch.tensor(rows, dtype=torch.int64)
        group = _variant_groups(canon_np)
        correct_mask = torch.empty(len(rows), dtype=torch.bool)
        for start in range(0, len(rows), batch_size):
            qb = q[start : start + batch_size]
            a, b, c, d = qb.unbind(1)
            if method == "3cosadd":
                scores = (unit[b] - unit[a] + unit[c]) @ unit.T
            else:
                sims = (torch.cat([unit[a], unit[b], unit[c]]) @ unit.T).add_(1.0).mul_(0.5)
                sa, sb, sc = sims.split(len(qb))
                scores = sb.mul_(sc).div_(sa.add_(epsilon))
            # exclude the three question words (and, case-insensitively, every case variant of them)
            excluded = group[torch.cat([canon[a], canon[b], canon[c]])].view(3, len(qb), -1)
            scores.scatter_(1, excluded.permute(1, 0, 2).reshape(len(qb), -1), -math.inf)
            top, best = scores.max(dim=1)
            # no candidate left (tiny vocabularies) counts as a wrong answer
            correct_mask[start : start + len(qb)] = (canon[best] == canon[d]) & (top > -math.inf)
        sec_idx = torch.tensor(sec_of, dtype=torch.int64)
        n_sec = len(sections)
        totals = torch.bincount(sec_idx, minlength=n_sec)
        corrects = torch.bincount(sec_idx, weights=correct_mask.double(), minlength=n_sec)
        for s in range(n_sec):
            per_section[s]["total"] = int(totals[s])
            per_section[s]["correct"] = int(round(float(corrects[s])))
    for sec in per_section:
        sec["accuracy"] = sec["correct"] / sec["total"] if sec["total"] else float("nan")
    correct = sum(s["correct"] for s in per_section)
    total = sum(s["total"] for s in per_section)
    skipped = sum(s["skipped"] for s in per_section)
    return {
        "accuracy": correct / total if total else float("nan"),
        "correct": correct,
        "total": total,
        "skipped": skipped,
        "questions": total + skipped,
        "method": method,
        "restrict_vocab": n,
        "sections": per_section,
    }


# ---------------------------------------------------------------------------------------------------------
# nearest neighbours
# ---------------------------------------------------------------------------------------------------------


def _index_of(vocab: Sequence[str], words: Sequence[str]) -> dict[str, int]:
    """Row of each vocabulary word (its first occurrence); KeyError naming every word of ``words`` not in it."""
    index = first_index(vocab)
    missing = [w for w in words if w not in index]
    if missing:
        raise KeyError(f"not in the vocabulary: {', '.join(repr(w) for w in missing)}")
    return index


def nearest_neighbours(
    vectors: Any,
    words: Union[str, Iterable[str]],
    topn: int = 10,
    *,
    restrict_vocab: Optional[int] = None,
) -> dict[str, list[tuple[str, float]]]:
    """The ``topn`` nearest words by cosine similarity of each query word (the word itself excluded).

    Args:
        vectors: ``embedfast.Vectors`` or any object with ``.words`` and ``.matrix``.
        words: one word or several; each must be in the vocabulary (exact case).
        topn: neighbours per word.
        restrict_vocab: candidates are the first N words of the vocabulary (None: all).

    Returns:
        ``{word: [(neighbour, cosine), ...]}`` in query order, best first.

    Raises:
        KeyError: a query word is not in the vocabulary (all unknown words are named).
    """
    _check_restrict(restrict_vocab)
    if not (isinstance(topn, int) and topn >= 1):
        raise ValueError(f"topn: expected a positive int, got {topn!r}")
    vocab, matrix = _words_matrix(vectors)
    queries = [words] if isinstance(words, str) else list(words)
    index = _index_of(vocab, queries)
    if not queries:
        return {}
    n = len(vocab) if restrict_vocab is None else min(restrict_vocab, len(vocab))
    unit_all = unit_rows(matrix)
    cand = unit_all[:n]
    qi = torch.tensor([index[w] for w in queries], dtype=torch.int64)
    scores = unit_all[qi] @ cand.T
    inside = qi < n
    scores[inside.nonzero().squeeze(1), qi[inside]] = -math.inf
    k = min(topn, n)
    out: dict[str, list[tuple[str, float]]] = {}
    if k <= 0:
        return {w: [] for w in queries}
    val, idx = scores.topk(k, dim=1)  # the query itself (-inf) only shows up when n <= topn; dropped below
    for j, w in enumerate(queries):
        out[w] = [(vocab[int(i)], float(v)) for v, i in zip(val[j], idx[j]) if v != -math.inf]
    return out


# ---------------------------------------------------------------------------------------------------------
# plots (matplotlib, imported lazily: pip install embedfast[plot])
# ---------------------------------------------------------------------------------------------------------


def _save_png(fig, path: PathLike) -> None:
    """Save a figure atomically (the previous file stays whole if the save fails) and close it."""
    try:
        p = check_output_path(path)
        atomic_save_with(p, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        _pyplot().close(fig)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "embedfast.evaluate plots need matplotlib: pip install matplotlib (or embedfast[plot])"
        ) from exc
    return plt


def plot_loss(points: Sequence[tuple[float, float]], path: PathLike, *, title: str = "SGNS training loss") -> str:
    """Write a PNG of a loss curve from ``(words processed, loss)`` points; returns the path."""
    pts = [(float(x), float(y)) for x, y in points]
    if not pts:
        raise ValueError("points: expected at least one (words, loss) point, got none")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="." if len(pts) < 50 else None)
    ax.set_xlabel("words processed")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    _save_png(fig, path)
    return os.fspath(path)


def project_2d(vectors: Any, words: Sequence[str]) -> torch.Tensor:
    """PCA projection of the given words' vectors onto their first two principal components: [len(words), 2]."""
    vocab, matrix = _words_matrix(vectors)
    index = _index_of(vocab, words)
    if len(words) < 2:
        raise ValueError(f"words: need at least 2 words to project, got {len(words)}")
    x = matrix[[index[w] for w in words]].double()
    x = x - x.mean(dim=0, keepdim=True)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    comps = vh[:2]
    proj = x @ comps.T
    if proj.shape[1] < 2:  # dim 1 vectors
        proj = torch.cat([proj, torch.zeros(len(words), 2 - proj.shape[1], dtype=proj.dtype)], dim=1)
    return proj


def plot_projection(vectors: Any, words: Sequence[str], path: PathLike, *, title: str = "PCA of word vectors") -> str:
    """Write a PNG scatter plot of the chosen words projected to 2-D with PCA; returns the path."""
    proj = project_2d(vectors, list(words))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(proj[:, 0].numpy(), proj[:, 1].numpy(), s=12)
    for (x, y), w in zip(proj.tolist(), words):
        ax.annotate(w, (x, y), fontsize=9, xytext=(3, 3), textcoords="offset points")
    ax.set_title(title)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    fig.tight_layout()
    _save_png(fig, path)
    return os.fspath(path)
