"""Fusion sources: one table plus, for every target word, a bag of (row, weight); the builders of the usual
kinds (``vector_source``, ``subword_source``, ``alignment_source``; ``huggingface_source`` lives in
``embedfast.fusion.huggingface``) and ``fuse_files`` (``embedfast fuse A B -o OUT``)."""
from __future__ import annotations

import collections.abc
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import torch

from .._io import check_output_path
from .._vocab import first_index, read_vocab
from .checks import check_weights
from ..vectors import Vectors, load_vectors
from .coverage import FusionCoverage, SourceCoverage, fusion_coverage, of_source, renamed, source_coverage

Vocab = Union[Sequence[str], Mapping[str, int]]
#: How ``alignment_source`` carries source vectors onto a target word.
ALIGNMENT_STRATEGIES = ("mix", "max")

__all__ = ["Source", "Vocab", "vector_source", "subword_source", "fasttext_bags", "alignment_source", "procrustes",
           "char_ngrams", "fuse_files"]


@dataclass
class Source:
    """One source for a target vocabulary: a table [V_k, D_k] and, per target word, a bag of (row, weight).

    ``offsets`` (int64 [V+1]), ``rows`` (int64 [E_k]) and ``weights`` (float [E_k]) are a CSR of the bags; an
    empty bag means the source lacks the word. ``coverage`` (``SourceCoverage``; a dict of the old form is still
    read) counts found / found after lowercasing / missing; ``None``: counted from the bags when fused.
    """

    name: str
    table: torch.Tensor
    offsets: torch.Tensor
    rows: torch.Tensor
    weights: torch.Tensor
    coverage: Union[SourceCoverage, Mapping[str, int], None] = None

    @property
    def num_words(self) -> int:
        """Size of the target vocabulary (bags)."""
        return self.offsets.numel() - 1

    def present(self) -> torch.Tensor:
        """Bool [V]: which target words have a non-empty bag in this source."""
        return self.offsets[1:] > self.offsets[:-1]

    def compact(self) -> "Source":
        """The same source with only the table rows its bags use (in their original order), rows renumbered.

        A transformer's input embeddings (30,522 rows for BERT's WordPieces) or a large vectors file usually
        covers a small task vocabulary with a few thousand rows: a trained copy of the whole table would cost
        a dense gradient and optimizer state for every row at every step. Frozen tables may stay whole (they
        are shared, not copied, and cost nothing in backward)."""
        used = torch.unique(self.rows)
        remap = torch.full((self.table.shape[0],), -1, dtype=torch.int64)
        remap[used] = torch.arange(used.numel())
        return Source(self.name, self.table[used], self.offsets, remap[self.rows], self.weights, self.coverage)


def _vocab_list(vocab: Vocab, what: str) -> list[Optional[str]]:
    """The target vocabulary by id (``embedfast._vocab.read_vocab``: a sequence's positions or a mapping's own
    ids; ``None`` at ids of a mapping that no word uses, which are in no source). str, bytes, sets and items
    that are not str are refused."""
    return read_vocab(vocab, what)


def _word_index(vectors: Any, what: str) -> tuple[dict, torch.Tensor]:
    """(word -> row, matrix) of a Vectors-like object (``.words`` and ``.matrix``)."""
    for attr in ("words", "matrix"):
        if not hasattr(vectors, attr):
            raise TypeError(f"{what}: expected an embedfast.Vectors-like object with .words and .matrix, "
                            f"got {type(vectors).__name__}")
    words = list(vectors.words)
    matrix = vectors.matrix
    if not isinstance(matrix, torch.Tensor):
        matrix = torch.as_tensor(matrix)
    if matrix.dim() != 2 or matrix.shape[0] != len(words):
        raise ValueError(f"{what}: matrix has shape {tuple(matrix.shape)} but there are {len(words)} words")
    return first_index(words), matrix


def _csr(bags: list[list[tuple[int, float]]], dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    counts = torch.tensor([len(b) for b in bags], dtype=torch.int64)
    offsets = torch.zeros(len(bags) + 1, dtype=torch.int64)
    torch.cumsum(counts, 0, out=offsets[1:])
    rows = torch.tensor([r for b in bags for r, _ in b], dtype=torch.int64)
    weights = torch.tensor([w for b in bags for _, w in b], dtype=dtype)
    return offsets, rows, weights


def vector_source(vocab: Vocab, vectors: Any, *, lowercase_fallback: bool = True, name: Optional[str] = None) -> Source:
    """A word-level source: each target word looked up in ``vectors`` (then lower-cased, if allowed)."""
    words = _vocab_list(vocab, "vector_source")
    index, matrix = _word_index(vectors, "vector_source")
    rows = torch.full((len(words),), -1, dtype=torch.int64)
    found = lower = 0
    missing_words = []
    for i, w in enumerate(words):
        if w is None:
            continue
        r = index.get(w)
        if r is not None:
            found += 1
        elif lowercase_fallback:
            r = index.get(w.lower())
            if r is not None:
                lower += 1
        if r is not None:
            rows[i] = r
        else:
            missing_words.append(w)
    present = rows >= 0
    offsets = torch.zeros(len(words) + 1, dtype=torch.int64)
    torch.cumsum(present.long(), 0, out=offsets[1:])
    name = name or f"vectors{matrix.shape[0]}x{matrix.shape[1]}"
    cov = source_coverage(name, len(words), found, lower, missing_words)
    return Source(name, matrix, offsets, rows[present], torch.ones(int(present.sum()), dtype=torch.float32), cov)


def char_ngrams(word: str, nmin: int = 3, nmax: int = 6) -> list[str]:
    """fastText-style character n-grams of ``<word>`` (lengths nmin..nmax)."""
    w = f"<{word}>"
    return [w[i:i + n] for n in range(nmin, nmax + 1) for i in range(len(w) - n + 1)]


def subword_source(vocab: Vocab, vectors: Any, *, tokenize: Optional[Callable[[str], Sequence[str]]] = None,
                   ngrams: tuple[int, int] = (3, 6), lowercase_fallback: bool = True,
                   name: str = "subwords") -> Source:
    """Sub-word composition: a word as the mean of the vectors of its pieces found in ``vectors``.

    Pieces are ``tokenize(word)`` or, by default, the fastText character n-grams of ``<word>``. A word none of
    whose pieces are known is missing; ``coverage.extra`` also counts pieces looked up and found (``pieces``,
    ``pieces_found``).
    """
    words = _vocab_list(vocab, "subword_source")
    index, matrix = _word_index(vectors, "subword_source")
    split = tokenize or (lambda w: char_ngrams(w, *ngrams))
    bags: list[list[tuple[int, float]]] = []
    found = lower = pieces = pieces_found = 0
    missing_words = []
    def pieces_of(w: str) -> list:
        ps = split(w)
        if isinstance(ps, (str, bytes)) or not isinstance(ps, collections.abc.Iterable):
            raise TypeError(f"subword_source: tokenize({w!r}) must return a list of str pieces, got "
                            f"{type(ps).__name__}")
        return list(ps)

    for w in words:
        if w is None:
            bags.append([])
            continue
        ps = pieces_of(w)
        rows = [index[p] for p in ps if p in index]
        pieces += len(ps)
        if not rows and lowercase_fallback and w.lower() != w:
            rows = [index[p] for p in pieces_of(w.lower()) if p in index]
            if rows:
                lower += 1
        elif rows:
            found += 1
        pieces_found += len(rows)
        if not rows:
            missing_words.append(w)
        bags.append([(r, 1.0 / len(rows)) for r in rows])
    off, rows_t, wts = _csr(bags)
    cov = source_coverage(name, len(words), found, lower, missing_words, pieces=pieces, pieces_found=pieces_found)
    return Source(name, matrix, off, rows_t, wts, cov)


def fasttext_bags(vocab: Vocab, vectors: Any) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...]]:
    """The tables ``[word rows, n-gram rows]`` of vectors with fastText sub-words (``vectors.subwords``, e.g. a
    loaded ``.bin``) and the bags of a target vocabulary over them (CSR: offsets, entry source, row, weight): a
    word's bag is its own input row when it is in the dictionary and the rows of its n-gram buckets (fastText's
    rule, ``embedfast.vectors.subwords``), each weighted 1 / (bag size), so a gather with source weights 1 and
    no renormalisation is fastText's vector of every word, seen or not."""
    from ..vectors.subwords import bags_for  # the one bag builder of fastText's rule

    words = _vocab_list(vocab, "fasttext_bags")
    sw = getattr(vectors, "subwords", None)
    if sw is None:
        raise TypeError(f"fasttext_bags: expected Vectors with fastText sub-words, got {type(vectors).__name__} "
                        "without .subwords")
    return [sw.word_rows, sw.ngrams], bags_for(sw, vectors.key_to_index, words, ngrams_of_known=True)


def procrustes(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Orthogonal W [D, D] minimising ||x W - y||_F (x, y: [n, D] seed pairs), via the SVD of x^T y."""
    if x.dim() != 2 or x.shape != y.shape:
        raise ValueError(f"procrustes: x and y must be [n, D] of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    u, _, vt = torch.linalg.svd(x.double().T @ y.double())
    return (u @ vt).to(x.dtype)


def alignment_source(vocab: Vocab, source_vectors: Any, alignment: Mapping[str, Sequence[tuple[str, float]]], *,
                     seed_dictionary: Optional[Sequence[tuple[str, str]]] = None, target_vectors: Any = None,
                     normalize: bool = True, name: str = "alignment", strategy: str = "mix") -> Source:
    """A word as the probability-weighted mix of the source words it aligns to (``strategy="mix"``), or as
    its single most probable source word (``strategy="max"``; ties: the first listed).

    ``alignment`` maps a target word to ``[(source word, probability), ...]``; pairs whose source word is not in
    ``source_vectors`` are dropped (counted in ``coverage.extra['pairs_dropped']``). With ``seed_dictionary`` (pairs
    ``(source word, target word)``) and ``target_vectors``, the source table is first mapped into the target
    space by the orthogonal Procrustes solution learned from the seed pairs found in both.
    """
    if strategy not in ALIGNMENT_STRATEGIES:
        raise ValueError(f"alignment_source: strategy must be one of {ALIGNMENT_STRATEGIES}, got {strategy!r}")
    words = _vocab_list(vocab, "alignment_source")
    index, matrix = _word_index(source_vectors, "alignment_source")
    extra: dict = {}
    if seed_dictionary is not None:
        if target_vectors is None:
            raise ValueError("alignment_source: seed_dictionary needs target_vectors to learn the Procrustes map")
        tindex, tmatrix = _word_index(target_vectors, "alignment_source(target_vectors)")
        if tmatrix.shape[1] != matrix.shape[1]:
            raise ValueError(f"alignment_source: Procrustes needs equal dims, got {matrix.shape[1]} (source) and "
                             f"{tmatrix.shape[1]} (target)")
        pairs = [(index[s], tindex[t]) for s, t in seed_dictionary if s in index and t in tindex]
        if len(pairs) < 2:
            raise ValueError(f"alignment_source: only {len(pairs)} seed pairs found in both vocabularies")
        src_rows = torch.tensor([p[0] for p in pairs])
        tgt_rows = torch.tensor([p[1] for p in pairs])
        w = procrustes(matrix[src_rows].float(), tmatrix[tgt_rows].float())
        matrix = (matrix.float() @ w).to(matrix.dtype)
        extra["seed_pairs_used"] = len(pairs)
        extra["seed_pairs_dropped"] = len(seed_dictionary) - len(pairs)
    bags: list[list[tuple[int, float]]] = []
    dropped = found = 0
    missing_words = []
    for w in words:
        pairs = alignment.get(w, ()) if w is not None else ()
        bag = []
        for s, p in pairs:
            r = index.get(s)
            if r is None:
                dropped += 1
                continue
            if not math.isfinite(float(p)) or float(p) < 0:
                raise ValueError(f"alignment_source: probability {p!r} for ({w!r}, {s!r}) must be finite and >= 0")
            bag.append((r, float(p)))
        if strategy == "max" and bag:
            best = max(range(len(bag)), key=lambda k: (bag[k][1], -k))
            bag = [(bag[best][0], 1.0)]
        total = sum(p for _, p in bag)
        if normalize and total > 0:
            bag = [(r, p / total) for r, p in bag]
        found += bool(bag)
        if not bag and w is not None:
            missing_words.append(w)
        bags.append(bag)
    off, rows_t, wts = _csr(bags)
    cov = source_coverage(name, len(words), found, 0, missing_words, **extra, pairs_dropped=dropped)
    return Source(name, matrix, off, rows_t, wts, cov)


def fuse_files(paths: Sequence[str], out: str, *, weights: Optional[Sequence[float]] = None,
               vocab: Optional[Sequence[str]] = None, lowercase_fallback: bool = True, renormalize: bool = True,
               format: str = "auto", binary: bool = False) -> FusionCoverage:
    """Fuse vectors files (same dimension) into one GloVe-format text file ``out`` (``.gz``: compressed).

    ``format``: the inputs' format, as in ``load_vectors`` (default ``"auto"``: detected); ``binary=True`` is the
    older spelling of ``format="word2vec-bin"``.

    The vocabulary is ``vocab`` (a sequence of words, or a ``{word: id}`` mapping with ids 0..V-1) or the union
    of the files' words (first file's order, then new words of the next ones). Returns the coverage
    (``FusionCoverage``, one ``SourceCoverage`` per file, named by its path; ``cov["sources"]``, ``cov["words"]``
    and ``cov["no_source"]`` read as the dict of old). Words in no source cannot happen with the union
    vocabulary; with a given vocabulary they are written as zeros and counted in ``coverage.missing``. ``weights``: one per file, finite, >= 0, not all zero.

    ``out`` is checked before any file is read (its folder exists and is writable, it is not one of the
    inputs) and written atomically (``Vectors.save``): a failed write leaves a previous ``out`` as it was.
    """
    if isinstance(paths, (str, bytes)) or not isinstance(paths, collections.abc.Iterable):
        raise TypeError(f"fuse_files: paths must be a list of files, got {type(paths).__name__} {paths!r}")
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("fuse_files: no input files given")
    out = check_output_path(out, inputs=paths, what="fuse_files: output")
    if weights is not None:
        check_weights(weights, len(paths), torch.float64)
    words = None if vocab is None else read_vocab(vocab, "fuse_files", allow_gaps=False)
    from .module import MultiSourceEmbedding  # here: module.py imports this module

    if binary:
        if format not in ("auto", "word2vec-bin"):
            raise ValueError(f"fuse_files: binary=True contradicts format={format!r}")
        format = "word2vec-bin"
    vecs = [load_vectors(p, format=format) for p in paths]
    if words is None:
        seen: dict = {}
        for v in vecs:
            for w in v.words:
                seen.setdefault(w, None)
        words = list(seen)
    m = MultiSourceEmbedding.from_vectors(words, vecs, weights=weights, learn_weights=False,
                                          lowercase_fallback=lowercase_fallback, renormalize=renormalize)
    m.coverage.sources = [renamed(s, n) for s, n in zip(m.coverage.sources, paths)]
    w = m.materialize().weight.detach().float()
    Vectors(words, w).save(out, format="glove")
    return m.coverage


def bags_from_index(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The bags (CSR: offsets [V+1], entry source, row, weight [E]) of a checked [V, K] index (-1: missing):
    word v's entries are its present sources in order, weight 1."""
    present = index >= 0
    offsets = torch.zeros(index.shape[0] + 1, dtype=torch.int64)
    torch.cumsum(present.sum(1), 0, out=offsets[1:])
    src = torch.arange(index.shape[1]).expand_as(index)[present].contiguous()
    rows = index[present].contiguous()
    return offsets, src, rows, torch.ones(rows.numel())


def merge_sources(sources: Sequence[Source]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                                       FusionCoverage]:
    """One CSR of bags over K sources of one target vocabulary (word v: source 0's bag, then source 1's, ...)
    and the coverage: (offsets, entry source, entry row, entry weight, coverage)."""
    V = sources[0].num_words
    for s in sources:
        if s.num_words != V:
            raise ValueError(f"from_sources: source {s.name!r} covers {s.num_words} words, expected {V}")
    counts = torch.stack([s.offsets[1:] - s.offsets[:-1] for s in sources], 1)  # [V, K]
    offsets = torch.zeros(V + 1, dtype=torch.int64)
    torch.cumsum(counts.sum(1), 0, out=offsets[1:])
    # entries of word v: source 0's bag, then source 1's, ...: position = offsets[v] + sum_{j<k} counts[v, j] + i
    E = int(offsets[-1])
    src = torch.empty(E, dtype=torch.int64)
    rows = torch.empty(E, dtype=torch.int64)
    wts = torch.empty(E, dtype=torch.float32)
    before = torch.cumsum(counts, 1) - counts
    for k, s in enumerate(sources):
        word = torch.repeat_interleave(torch.arange(V), counts[:, k])
        pos = offsets[word] + before[word, k] + (torch.arange(s.rows.numel()) - s.offsets[word])
        src[pos] = k
        rows[pos] = s.rows
        wts[pos] = s.weights.float()
    per = [of_source(s.coverage, s.name, V, int((counts[:, k] > 0).sum())) for k, s in enumerate(sources)]
    return offsets, src, rows, wts, fusion_coverage(counts, per)
