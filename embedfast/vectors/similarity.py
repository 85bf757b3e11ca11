"""Similarity search over a :class:`~embedfast.vectors.Vectors`: the work behind ``most_similar``,
``most_similar_cosmul``, ``doesnt_match`` and ``n_similarity`` (gensim's ``KeyedVectors`` meanings).

Every function takes the vectors first; cosines come from ``Vectors.normed()`` (unit rows, zero rows staying
zero, computed once and cached).
"""
from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
import torch

if TYPE_CHECKING:  # pragma: no cover
    from .keyed import Vectors

__all__ = ["most_similar", "most_similar_cosmul", "doesnt_match", "n_similarity"]

logger = logging.getLogger("embedfast.vectors")

#: 3CosMul's epsilon in ``most_similar_cosmul`` (gensim's value; ``embedfast.evaluate`` defaults to Levy &
#: Goldberg's 1e-3).
COSMUL_EPSILON = 1e-6

Ranked = Union[List[Tuple[str, float]], torch.Tensor]


def _as_list(x: Any) -> list:
    if x is None:
        return []
    if isinstance(x, (str, np.ndarray, torch.Tensor)):
        return [x]
    if isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) and isinstance(x[1], (int, float)):
        return [x]
    return list(x)


def _check_search(what: str, topn: Optional[int], restrict_vocab: Optional[int]) -> None:
    if topn is not None and (isinstance(topn, bool) or not isinstance(topn, (int, np.integer)) or topn < 0):
        raise ValueError(f"{what}: topn must be an int >= 0 or None, got {topn!r}")
    if restrict_vocab is not None and (isinstance(restrict_vocab, bool)
                                       or not isinstance(restrict_vocab, (int, np.integer)) or restrict_vocab < 1):
        raise ValueError(f"{what}: restrict_vocab must be an int >= 1 or None, got {restrict_vocab!r}")


def _unit_query(v: "Vectors", item: Any, what: str, normed: torch.Tensor) -> Tuple[torch.Tensor, Optional[int]]:
    """(unit vector, row or None) of a query item: a word (with sub-words, any word) or a vector of shape (D,)."""
    if isinstance(item, str):
        i = v.get_index(item) if v.subwords is not None else v.index(item)
        if i is None:  # an unseen word: its sub-word vector
            return v.get_vector(item, norm=True).to(normed.dtype), None
        return normed[i], i
    vec = torch.as_tensor(np.asarray(item) if not isinstance(item, torch.Tensor) else item)
    if vec.shape != (v.dim,):
        raise ValueError(f"{what}: a query vector must have shape ({v.dim},), got {tuple(vec.shape)}")
    vec = vec.to(normed.dtype)
    if not bool(torch.isfinite(vec).all()):
        raise ValueError(f"{what}: a query vector holds NaN or inf")
    return vec, None


def _ranked(v: "Vectors", scores: torch.Tensor, topn: Optional[int], exclude: Set[int]) -> Ranked:
    """The ``topn`` best rows of ``scores`` as ``[(word, score), ...]`` (rows of ``exclude`` and NaN scores left
    out), or the scores themselves for ``topn=None``."""
    if topn is None:
        return scores
    if bool(torch.isnan(scores).any()):
        scores = scores.nan_to_num(nan=float("-inf"))
    k = min(len(scores), int(topn) + len(exclude))
    vals, idx = torch.topk(scores, k)
    out = []
    words = v.words
    for s, i in zip(vals.tolist(), idx.tolist()):
        if i in exclude or s == float("-inf"):  # -inf: a NaN row
            continue
        out.append((words[i], float(s)))
        if len(out) == topn:
            break
    return out


def most_similar(v: "Vectors", positive: Any = (), negative: Any = (), topn: Optional[int] = 10,
                 restrict_vocab: Optional[int] = None) -> Ranked:
    """Words closest (cosine) to the mean of the unit ``positive`` vectors minus the ``negative`` ones.

    Same meaning as gensim's ``KeyedVectors.most_similar``: ``positive`` / ``negative`` are a word, a
    vector, or lists of words, vectors or ``(word, weight)`` pairs; the query words are not returned;
    ``restrict_vocab`` searches only the first rows. Returns ``[(word, cosine), ...]`` best first, or, with
    ``topn=None``, the tensor of cosines to every (searched) row. ``topn=0`` gives ``[]``; a negative
    ``topn``, a ``restrict_vocab`` below 1, a query vector that is not finite and a query that sums to zero
    (e.g. the same word positive and negative) are errors. Rows whose cosine is NaN (a NaN in the matrix)
    are never returned as neighbours.
    """
    what = "most_similar"
    positive, negative = _as_list(positive), _as_list(negative)
    _check_search(what, topn, restrict_vocab)
    if topn == 0:
        return []
    if not positive and not negative:
        raise ValueError(f"{what}: give at least one positive or negative word")
    normed = v.normed()
    mean = torch.zeros(v.dim, dtype=normed.dtype)
    exclude = set()
    total = 0.0
    for item, sign in [(p, 1.0) for p in positive] + [(n, -1.0) for n in negative]:
        weight = sign
        if isinstance(item, tuple) and len(item) == 2 and not isinstance(item[0], (int, float)):
            item, weight = item
        vec, row = _unit_query(v, item, what, normed)
        if row is not None:
            exclude.add(row)
        if not isinstance(weight, (int, float, np.floating, np.integer)) or not math.isfinite(weight):
            raise ValueError(f"{what}: the weight of a query item must be a finite number, got {weight!r}")
        mean += weight * vec
        total += abs(weight)
    if total > 0:
        mean /= total
    norm = torch.linalg.vector_norm(mean)
    if not bool(norm > 0) or not bool(torch.isfinite(norm)):
        raise ValueError(f"{what}: the query (positive minus negative) is a zero vector (or holds NaN); "
                         "no direction to compare with")
    end = len(v) if restrict_vocab is None else min(int(restrict_vocab), len(v))
    return _ranked(v, normed[:end] @ (mean / norm), topn, exclude)


def most_similar_cosmul(v: "Vectors", positive: Any = (), negative: Any = (), topn: Optional[int] = 10,
                        restrict_vocab: Optional[int] = None) -> Ranked:
    """Words ranked by Levy & Goldberg's multiplicative objective (3CosMul), gensim's ``most_similar_cosmul``.

    Each candidate ``x`` scores ``prod_p c(x, p) / (prod_n c(x, n) + 1e-6)`` with ``c = (1 + cosine) / 2`` (in
    [0, 1]): ``most_similar_cosmul(positive=["king", "woman"], negative=["man"])`` is 3CosMul's answer to "man is
    to king as woman is to ?"; with one positive word the ranking is ``most_similar``'s. ``positive`` /
    ``negative`` are a word, a vector (compared by cosine) or lists of them; ``most_similar_cosmul("a", "b")``
    means ``positive=["a"], negative=["b"]``. At least one positive item is needed (weights are not taken). The
    query words are not returned. ``topn`` and ``restrict_vocab`` as in ``most_similar``; ``topn=None`` gives
    the tensor of scores.
    """
    what = "most_similar_cosmul"
    positive, negative = _as_list(positive), _as_list(negative)
    _check_search(what, topn, restrict_vocab)
    if not positive:
        raise ValueError(f"{what}: give at least one positive word or vector")
    if topn == 0:
        return []
    normed = v.normed()
    end = len(v) if restrict_vocab is None else min(int(restrict_vocab), len(v))
    exclude = set()
    num = torch.ones(end, dtype=normed.dtype)
    den = torch.ones(end, dtype=normed.dtype)
    for items, acc in ((positive, num), (negative, den)):
        for item in items:
            if isinstance(item, tuple):
                raise ValueError(f"{what}: (word, weight) pairs are not taken, got {item!r}")
            vec, row = _unit_query(v, item, what, normed)
            if row is None:
                n = torch.linalg.vector_norm(vec)
                if not bool(n > 0):
                    raise ValueError(f"{what}: a query vector is zero; no direction to compare with")
                vec = vec / n
            else:
                exclude.add(row)
            acc.mul_((normed[:end] @ vec).add_(1.0).mul_(0.5))
    return _ranked(v, num / (den + COSMUL_EPSILON), topn, exclude)


def doesnt_match(v: "Vectors", words: Sequence[str]) -> str:
    """The word of ``words`` furthest (lowest cosine) from the mean of their unit vectors (gensim's
    ``doesnt_match``). Words not in the vectors are left out, with a warning; ValueError when none is left. Ties
    go to the word that sorts first."""
    what = "doesnt_match"
    if isinstance(words, str):
        raise TypeError(f"{what}: words must be a list of words, not a str")
    words = list(words)
    used = [w for w in words if isinstance(w, str) and w in v]
    if len(used) < len(words):
        logger.warning("%s: left out words not in the vectors: %s", what, [w for w in words if w not in used][:10])
    if not used:
        raise ValueError(f"{what}: none of the {len(words)} words is in the vectors")
    unit = v.normed()[torch.tensor([v.index(w) for w in used])]
    mean = unit.mean(0)
    n = torch.linalg.vector_norm(mean)
    sims = (unit @ (mean / n if bool(n > 0) else mean)).tolist()
    return min(zip(sims, used))[1]


def n_similarity(v: "Vectors", ws1: Sequence[str], ws2: Sequence[str]) -> float:
    """Cosine similarity of the mean vector of ``ws1`` and the mean vector of ``ws2`` (gensim's
    ``n_similarity``: means of the raw vectors). Every word must be in the vectors (KeyError naming the missing
    ones; gensim leaves them out); an empty list is a ValueError."""
    what = "n_similarity"
    means = []
    for ws in (ws1, ws2):
        if isinstance(ws, str):
            raise TypeError(f"{what}: give lists of words, not a str ({ws!r})")
        ws = list(ws)
        if not ws:
            raise ValueError(f"{what}: both word lists must hold at least one word")
        missing = [w for w in ws if w not in v]
        if missing:
            raise KeyError(f"{what}: not in the vectors: {', '.join(map(repr, missing[:10]))}")
        m = v.matrix[torch.tensor([v.index(w) for w in ws])].double().mean(0)
        n = torch.linalg.vector_norm(m)
        means.append(m / n if bool(n > 0) else m)
    return float(means[0] @ means[1])
