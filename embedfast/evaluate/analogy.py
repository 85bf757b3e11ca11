"""Analogies ("a is to b as c is to d"): ``questions-words.txt`` files, ``evaluate_analogies`` (3CosAdd and
3CosMul in batches of matrix products) and gensim's ``evaluate_word_analogies`` shape of the same answers."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from .._vocab import unit_rows
from ._common import PathLike, _check_restrict, _lookup, _open_words_file, _words_matrix

__all__ = ["read_analogies", "evaluate_analogies", "evaluate_word_analogies"]


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
    sections, asked, correct_mask, n = _answers(vectors, path, restrict_vocab, method, case_insensitive, epsilon,
                                                batch_size)
    per_section = [{"section": name, "correct": 0, "total": 0, "skipped": len(qs) - len(asked[s])}
                   for s, (name, qs) in enumerate(sections)]
    if correct_mask.numel():
        sec_idx = torch.tensor([s for s, rows in enumerate(asked) for _ in rows], dtype=torch.int64)
        totals = torch.bincount(sec_idx, minlength=len(sections))
        corrects = torch.bincount(sec_idx, weights=correct_mask.double(), minlength=len(sections))
        for s in range(len(sections)):
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


def _answers(vectors: Any, path: PathLike, restrict_vocab: Optional[int], method: str, case_insensitive: bool,
             epsilon: float, batch_size: int) -> Tuple[list, List[List[int]], torch.Tensor, int]:
    """(sections read, per section the positions of its questions that could be asked, whether each asked
    question was answered right (in that order), the candidate count)."""
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
    rows: List[Tuple[int, ...]] = []
    asked: List[List[int]] = []
    for name, questions in sections:
        asked.append([])
        for j, q in enumerate(questions):
            r = [key_to_row.get(norm(w)) for w in q]
            if all(x is not None for x in r):
                rows.append(tuple(r))  # type: ignore[arg-type]
                asked[-1].append(j)
    correct_mask = torch.zeros(len(rows), dtype=torch.bool)
    if rows and n > 0:
        unit = unit_rows(matrix[:n])
        canon = torch.from_numpy(canon_np)
        q = torch.tensor(rows, dtype=torch.int64)
        group = _variant_groups(canon_np)
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
    return sections, asked, correct_mask, n


#: gensim's ``similarity_function`` names -> the method that answers the same way.
_GENSIM_FUNCTIONS = {"most_similar": "3cosadd", "most_similar_cosmul": "3cosmul"}


def evaluate_word_analogies(
    vectors: Any,
    analogies: PathLike,
    restrict_vocab: Optional[int] = 300000,
    case_insensitive: bool = True,
    dummy4unknown: bool = False,
    similarity_function: str = "most_similar",
) -> Tuple[float, List[Dict[str, Any]]]:
    """gensim's ``KeyedVectors.evaluate_word_analogies``: the same questions, answers and return shape.

    Answers as :func:`evaluate_analogies`: ``similarity_function="most_similar"`` is 3CosAdd,
    ``"most_similar_cosmul"`` 3CosMul with gensim's epsilon 1e-6. A question with a word outside the first
    ``restrict_vocab`` words is left out, or, with ``dummy4unknown=True``, counted as answered wrong.

    Returns:
        ``(score, sections)``: ``score`` is correct / (correct + incorrect) over the whole file (0.0 when no
        question was asked, as gensim); ``sections`` a list of ``{"section": name, "correct": [(a, b, c, d),
        ...], "incorrect": [...]}`` in file order, then ``{"section": "Total accuracy", ...}`` with every
        question. The questions are given as the file writes them (gensim upper-cases them when
        ``case_insensitive``).
    """
    if similarity_function not in _GENSIM_FUNCTIONS:
        raise ValueError(f"similarity_function: expected one of {tuple(_GENSIM_FUNCTIONS)}, got "
                         f"{similarity_function!r}")
    method = _GENSIM_FUNCTIONS[similarity_function]
    sections, asked, correct_mask, _ = _answers(vectors, analogies, restrict_vocab, method, case_insensitive,
                                                1e-6 if method == "3cosmul" else 1e-3, 512)
    right = iter(correct_mask.tolist())
    out: List[Dict[str, Any]] = []
    for (name, questions), rows in zip(sections, asked):
        sec: Dict[str, Any] = {"section": name, "correct": [], "incorrect": []}
        kept = set(rows)
        for j, q in enumerate(questions):
            if j in kept:
                sec["correct" if next(right) else "incorrect"].append(q)
            elif dummy4unknown:
                sec["incorrect"].append(q)
        out.append(sec)
    total = {"section": "Total accuracy", "correct": [q for s in out for q in s["correct"]],
             "incorrect": [q for s in out for q in s["incorrect"]]}
    out.append(total)
    asked_n = len(total["correct"]) + len(total["incorrect"])
    return (len(total["correct"]) / asked_n if asked_n else 0.0), out
