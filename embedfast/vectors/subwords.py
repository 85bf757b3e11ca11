"""fastText sub-words: what a :class:`~embedfast.vectors.Vectors` loaded from a fastText ``.bin`` carries besides
its word vectors, and the vector of any word built from it.

fastText's rule (the one implementation is C++, ``csrc/include/embedfast/subwords.h``, reached through the op
``embedfast::fasttext_ngram_buckets``): a word is wrapped as ``<word>``; its n-grams are its substrings of
``minn..maxn`` UTF-8 characters (the markers alone excluded), each hashed with fastText's FNV-1a variant modulo
the bucket count; its vector is the mean of its own input row (when it is in the dictionary) and the rows of its
n-gram buckets. A word with neither (``maxn=0`` or no buckets and not in the dictionary, or the end-of-sentence
token ``</s>`` when absent) is the zero vector, as in fastText. A *label* of a supervised model (``__label__x``)
is looked up as fastText does: its own row is input row ``nwords + label index``.

Every such mean is a bag for the gather op (``embedfast.ops.gather_bags``): :func:`word_bags` builds them,
:func:`compose_words` computes the word vectors of a dictionary at load time, :func:`vectors_for` any words.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .._vocab import _short, encode_words
from .ops import fasttext_ngram_buckets

if TYPE_CHECKING:  # pragma: no cover
    from .keyed import Vectors

__all__ = ["Subwords", "word_bags", "bags_for", "compose_words", "vectors_for", "FASTTEXT_DEFAULT_ARGS"]

#: fastText's defaults for skip-gram (``fasttext skipgram``), used where a model's args are not known.
FASTTEXT_DEFAULT_ARGS = {"ws": 5, "epoch": 5, "min_count": 5, "neg": 5, "word_ngrams": 1, "loss": 2, "model": 2,
                         "lr_update_rate": 100, "t": 1e-4, "version": 12, "ntokens": 0}

_COMPOSE_CHUNK = 1 << 16  # words per embedding_bag call when composing a dictionary (bounds the n-gram lists)


@dataclasses.dataclass
class Subwords:
    """The sub-word part of a fastText model (gensim's names in brackets).

    Attributes:
        ngrams: ``[bucket, D]`` rows of the hash buckets (``vectors_ngrams``).
        word_rows: ``[N, D]`` the words' own input rows, in the Vectors' word order (``vectors_vocab``); the
            Vectors' ``matrix`` holds the composed word vectors (own row and n-grams averaged).
        minn, maxn: n-gram lengths in characters (``maxn=0``: no n-grams).
        counts: int64 ``[N]`` word counts from the dictionary (None when unknown).
        labels, label_counts: a supervised model's labels (not words of the Vectors) and their counts.
        label_base: the dictionary's word count in the file the labels came from (a label's own row is
            ``ngrams[label index]``, input row ``label_base + index``).
        args: fastText's other arguments (``ws``, ``epoch``, ``min_count``, ``neg``, ``word_ngrams``, ``loss``,
            ``model``, ``lr_update_rate``, ``t``, ``version``, ``ntokens``), written back by a ``.bin`` save.
        output: the output matrix when it was read (``load_vectors(..., output=True)``), else None.
    """

    ngrams: torch.Tensor
    word_rows: torch.Tensor
    minn: int = 3
    maxn: int = 6
    counts: Optional[torch.Tensor] = None
    labels: List[str] = dataclasses.field(default_factory=list)
    label_counts: Optional[torch.Tensor] = None
    label_base: int = 0
    args: Dict[str, Any] = dataclasses.field(default_factory=lambda: dict(FASTTEXT_DEFAULT_ARGS))
    output: Optional[torch.Tensor] = None

    def __post_init__(self) -> None:
        for name in ("ngrams", "word_rows"):
            t = getattr(self, name)
            if not isinstance(t, torch.Tensor) or t.dim() != 2 or not t.is_floating_point():
                raise TypeError(f"Subwords: {name} must be a 2-D floating-point tensor, got {_short(t)}")
        if self.ngrams.shape[1] != self.word_rows.shape[1] or self.ngrams.dtype != self.word_rows.dtype:
            raise ValueError(f"Subwords: ngrams {tuple(self.ngrams.shape)} {self.ngrams.dtype} and word_rows "
                             f"{tuple(self.word_rows.shape)} {self.word_rows.dtype} need one dim and dtype")
        for name in ("minn", "maxn"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"Subwords: {name} must be an int >= 0, got {v!r}")
        if self.counts is not None and self.counts.shape != (self.word_rows.shape[0],):
            raise ValueError(f"Subwords: counts has shape {tuple(self.counts.shape)}, expected "
                             f"({self.word_rows.shape[0]},)")
        if self.bucket > 2 ** 31 - 1:
            raise ValueError(f"Subwords: {self.bucket} buckets, fastText's hash allows at most 2^31-1")

    @property
    def bucket(self) -> int:
        """Number of hash buckets."""
        return int(self.ngrams.shape[0])

    @property
    def has_ngrams(self) -> bool:
        """Whether words get n-grams at all (``maxn >= 1``, ``minn <= maxn``, buckets)."""
        return self.bucket > 0 and self.maxn >= 1 and self.minn <= self.maxn

    def to(self, dtype: torch.dtype) -> "Subwords":
        """A copy with the tables (and output matrix) converted to ``dtype``."""
        out = dataclasses.replace(self, ngrams=self.ngrams.to(dtype), word_rows=self.word_rows.to(dtype))
        out.output = None if self.output is None else self.output.to(dtype)
        return out

    def select(self, rows: torch.Tensor, words_in_file: int) -> "Subwords":
        """The same model restricted to the words at ``rows`` (``vocab=``, ``limit=``, duplicates): their own
        rows and counts, and, for a word-level output matrix (``words_in_file`` rows), its rows."""
        out = dataclasses.replace(self, word_rows=self.word_rows[rows],
                                  counts=None if self.counts is None else self.counts[rows])
        if self.output is not None and self.args.get("model") != 3 and self.output.shape[0] == words_in_file:
            out.output = self.output[rows]
        return out

    def ngram_buckets(self, words: Sequence[str]) -> Tuple[torch.Tensor, torch.Tensor]:
        """The n-gram buckets of each word (fastText's rule): ``(offsets [N+1], buckets [E])``."""
        wb, wo = encode_words(words)
        return fasttext_ngram_buckets(wb, wo, self.minn, self.maxn, self.bucket)

    def ngram_rows(self, word: str) -> torch.Tensor:
        """The bucket rows (indices into ``ngrams``) of ``word``'s n-grams, in fastText's order."""
        return self.ngram_buckets([word])[1]


def word_bags(sw: Subwords, own_source: torch.Tensor, own_row: torch.Tensor, ngram_offsets: torch.Tensor,
              ngram_buckets: torch.Tensor, *, ngram_source: int = 1,
              dtype: torch.dtype = torch.float32) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bags (CSR: offsets [N+1], entry source, row, weight [E]) for ``gather_bags``: word ``i``'s bag is its own
    row ``(own_source[i], own_row[i])`` when ``own_row[i] >= 0``, then its n-gram rows ``(ngram_source, bucket)``,
    each with weight 1 / (bag size), so the gather (renormalize=False) is fastText's mean."""
    n = own_row.numel()
    has = (own_row >= 0).long()
    cnt = ngram_offsets[1:] - ngram_offsets[:-1]
    size = has + cnt
    offsets = torch.zeros(n + 1, dtype=torch.int64)
    torch.cumsum(size, 0, out=offsets[1:])
    total = int(offsets[-1])
    src = torch.empty(total, dtype=torch.int64)
    row = torch.empty(total, dtype=torch.int64)
    own = has.bool()
    src[offsets[:-1][own]] = own_source[own]
    row[offsets[:-1][own]] = own_row[own]
    word_of = torch.repeat_interleave(torch.arange(n), cnt)
    pos = offsets[:-1][word_of] + has[word_of] + (torch.arange(ngram_buckets.numel()) - ngram_offsets[:-1][word_of])
    src[pos] = ngram_source
    row[pos] = ngram_buckets
    weight = (1.0 / size.clamp_min(1).to(torch.float64)).to(dtype)
    return offsets, src, row, torch.repeat_interleave(weight, size)


def _gather(tables: List[torch.Tensor], bags: Tuple[torch.Tensor, ...]) -> torch.Tensor:
    from ..fusion.ops import gather_bags  # here: embedfast.fusion imports embedfast.vectors

    offsets, src, row, weight = bags
    ids = torch.arange(offsets.numel() - 1)
    sw = torch.ones(len(tables), dtype=weight.dtype)
    with torch.no_grad():
        return gather_bags(tables, sw, offsets, src, row, weight, ids, renormalize=False)


def _weight_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def compose_words(sw: Subwords, word_bytes: torch.Tensor, word_offsets: torch.Tensor) -> torch.Tensor:
    """The word vectors ``[N, D]`` of the dictionary words (``word_rows`` in order, their bytes given): each the
    mean of its own row and its n-gram rows, as fastText's ``get_word_vector``. Every word has its own row here,
    so no bag tensors are needed: ``embedding_bag`` sums the n-gram rows (one call per chunk of words), each
    row weighted by 1 / bag size before it is added, so rows near the float range cannot overflow the sum
    (fastText adds first and scales after: its vector is then infinite where this one is the finite mean)."""
    n = word_offsets.numel() - 1
    if not sw.has_ngrams:
        return sw.word_rows.clone()
    out = torch.empty_like(sw.word_rows)
    with torch.no_grad():
        for start in range(0, n, _COMPOSE_CHUNK):
            stop = min(n, start + _COMPOSE_CHUNK)
            off = word_offsets[start:stop + 1]
            base = int(off[0])
            ng_off, ng = fasttext_ngram_buckets(word_bytes[base:int(off[-1])], off - base, sw.minn, sw.maxn,
                                                sw.bucket)
            cnt = ng_off[1:] - ng_off[:-1]
            inv = 1.0 / (cnt + 1).to(sw.ngrams.dtype)
            sums = torch.nn.functional.embedding_bag(ng, sw.ngrams, ng_off, mode="sum", include_last_offset=True,
                                                     per_sample_weights=torch.repeat_interleave(inv, cnt))
            torch.addcmul(sums, sw.word_rows[start:stop], inv[:, None], out=out[start:stop])
    return out


def _check_words(words: Any, what: str) -> List[str]:
    if isinstance(words, (str, bytes)):
        raise TypeError(f"{what}: expected a list of words, got a {type(words).__name__} (wrap one word in a list)")
    words = list(words)
    for i, w in enumerate(words):
        if not isinstance(w, str):
            raise TypeError(f"{what}: words[{i}] must be a str, got {type(w).__name__} {_short(w)}")
    return words


def bags_for(sw: Subwords, index: Dict[str, int], words: Sequence[Optional[str]], *,
             ngrams_of_known: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bags for ``gather_bags`` over the tables ``[word table, sw.ngrams]``: a word of ``index`` (the dictionary)
    has its row of the word table, plus its n-gram rows when ``ngrams_of_known`` (True over the raw
    ``word_rows``: fastText's mean; False over the composed word vectors); a label its own row (input row
    nwords + label index, i.e. a bucket row, as fastText) and its n-grams; any other word its n-grams; None
    (an id without a word) an empty bag."""
    rows = torch.tensor([-1 if w is None else index.get(w, -1) for w in words], dtype=torch.int64)
    own_src = torch.zeros_like(rows)
    unknown = (rows < 0).nonzero().flatten()
    if unknown.numel() and sw.labels:
        lab = {w: i for i, w in enumerate(sw.labels)}
        for j in unknown.tolist():
            li = lab.get(words[j], -1)  # type: ignore[arg-type]
            if 0 <= li < sw.bucket:
                rows[j], own_src[j] = li, 1
    pick = [j for j in (range(len(words)) if ngrams_of_known else unknown.tolist()) if words[j] is not None]
    ng_off = torch.zeros(len(words) + 1, dtype=torch.int64)
    ng = torch.empty(0, dtype=torch.int64)
    if pick and sw.has_ngrams:
        p_off, ng = sw.ngram_buckets([words[j] for j in pick])  # type: ignore[misc]
        cnt = torch.zeros(len(words), dtype=torch.int64)
        cnt[torch.tensor(pick)] = p_off[1:] - p_off[:-1]
        torch.cumsum(cnt, 0, out=ng_off[1:])
    return word_bags(sw, own_src, rows, ng_off, ng, dtype=_weight_dtype(sw.ngrams))


def vectors_for(v: "Vectors", words: Sequence[str]) -> torch.Tensor:
    """``[len(words), D]`` vectors of any words: a dictionary word's row of ``v.matrix``; any other word (with
    sub-words) the mean of its n-gram rows (fastText's vector of an unseen word; zero when it has none), one
    gather for the whole batch. Without sub-words an unknown word is a KeyError."""
    words = _check_words(words, "vectors_for")
    sw = v.subwords
    if sw is None:
        return v.matrix[torch.tensor([v.index(w) for w in words], dtype=torch.int64)]
    table = v.matrix
    ngrams = sw.ngrams if sw.ngrams.dtype == table.dtype else sw.ngrams.to(table.dtype)
    offsets, src, row, weight = bags_for(sw, v.key_to_index, words, ngrams_of_known=False)
    return _gather([table, ngrams], (offsets, src, row, weight.to(_weight_dtype(table))))
