"""Nearest neighbours of query words and a 2-D PCA projection of chosen words."""
from __future__ import annotations

import math
from typing import Any, Iterable, Optional, Sequence, Union

import torch

from .._vocab import unit_rows
from ._common import _check_restrict, _index_of, _words_matrix

__all__ = ["nearest_neighbours", "project_2d"]


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
