"""How an epoch of the encoded corpus is cut into the chunks of the fused op's calls: in text order
(``chunk_bounds``), or, for T threads, in T contiguous ranges trained side by side (``ranged_cuts``,
``gather_chunk``). Used by ``embedfast.word2vec.corpus.CorpusStream``."""
from __future__ import annotations

import torch

__all__ = ["chunk_bounds", "ranged_cuts", "gather_chunk", "RangedEpoch"]


def chunk_bounds(offsets: torch.Tensor, chunk_words: int) -> list:
    """Sentence indices where chunks start (plus the end): sentence i starts a chunk when its first token is the
    first at or after a multiple of chunk_words (i.e. start[i] // C > start[i-1] // C), sentence 0 always."""
    starts = offsets[:-1]
    if starts.numel() == 0:
        return [0]
    key = torch.div(starts, chunk_words, rounding_mode="floor")
    cuts = (key[1:] != key[:-1]).nonzero().flatten() + 1
    return [0, *cuts.tolist(), int(starts.numel())]


def ranged_cuts(offsets: torch.Tensor, ranges: int, chunk_words: int) -> list:
    """The chunks of one epoch for ``ranges`` threads side by side (word2vec.c's and gensim's order): the sentences
    are cut into ``ranges`` contiguous ranges of about equal token count (sentence i is in range
    start[i] * ranges // tokens), each range is cut as chunk_bounds cuts a corpus with ceil(chunk_words / ranges)
    tokens per step, and chunk x is step x of every range that has one, in range order. Returns, per chunk, its
    pieces as (first sentence, end sentence) pairs; no chunk is empty."""
    starts = offsets[:-1]
    n_sent, tokens = int(starts.numel()), int(offsets[-1])
    key = torch.div(starts * ranges, max(tokens, 1), rounding_mode="floor")
    edges = torch.searchsorted(key, torch.arange(ranges + 1, dtype=key.dtype)).tolist()
    edges[-1] = n_sent
    step = -(-chunk_words // ranges)
    steps = []
    for r in range(ranges):
        a, b = edges[r], edges[r + 1]
        if a < b:
            cut = chunk_bounds(offsets[a:b + 1] - offsets[a], step)
            steps.append([(a + c0, a + c1) for c0, c1 in zip(cut[:-1], cut[1:])])
    return [[st[x] for st in steps if x < len(st)] for x in range(max(len(st) for st in steps))]


def gather_chunk(ids: torch.Tensor, offsets: torch.Tensor, pieces: list):
    """(ids, sentence offsets from 0) of the sentences ``pieces`` ((first, end) pairs) of an encoded corpus."""
    parts, offs, base = [], [offsets.new_zeros(1)], 0
    for a, b in pieces:
        t0, t1 = int(offsets[a]), int(offsets[b])
        parts.append(ids[t0:t1])
        offs.append(offsets[a + 1:b + 1] - t0 + base)
        base += t1 - t0
    return torch.cat(parts), torch.cat(offs)


class RangedEpoch:
    """The epoch of a corpus held in memory, cut by ``ranged_cuts``; kept for the next chunks and epochs, cut again
    for another corpus, number of ranges or chunk_words."""

    def __init__(self) -> None:
        self.key, self.cut = None, None

    def get(self, source, whole, ranges: int, chunk_words: int):
        """(ids, offsets, cuts) of ``source`` (``whole()``: its encoded corpus, (ids, offsets, ...))."""
        if self.key is None or self.key[0] is not source or self.key[1:] != (ranges, chunk_words):
            ids, offsets = whole()[:2]
            if int(offsets[-1]) != source.tokens:
                raise ValueError(f"Word2Vec.train: corpus {source.name!r} has {int(offsets[-1])} vocabulary tokens "
                                 f"in this pass, {source.tokens} expected: the file changed during training")
            self.key, self.cut = (source, ranges, chunk_words), (ids, offsets, ranged_cuts(offsets, ranges,
                                                                                          chunk_words))
        return self.cut
