"""Sub-word skip-gram in ``Word2Vec`` (``minn > 0``; fastText's ``skipgram``, Bojanowski et al. 2017).

A word's input vector is the mean of its own row of ``w_in`` and the rows of ``w_ngram`` (the hash buckets) of its
character n-grams (fastText's rule: ``embedfast.vectors.ops.fasttext_ngram_buckets``, the C++ of
csrc/include/embedfast/subwords.h). The bucket list of every vocabulary word is computed once
(:class:`NgramTables`, CSR: offsets + int32 bucket ids) and handed to the fused op
``embedfast::word2vec_subword_train`` with every chunk. The trained model's vectors are sub-word
:class:`~embedfast.vectors.Vectors` (a vector for any word, as a loaded fastText ``.bin``) and save to fastText's
``.bin`` (``format="fasttext-bin"``), which ``fasttext.load_model`` reads.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch

from ..vectors.ops import fasttext_ngram_buckets

if TYPE_CHECKING:  # pragma: no cover
    from ..vectors import Vectors

__all__ = ["NgramTables", "initial_ngrams", "subword_vectors", "fasttext_args", "check_ngram_table"]


class NgramTables:
    """The n-gram buckets of every vocabulary word (``offsets`` int64 [V + 1], ``buckets`` int32 [E]), from the
    vocabulary's UTF-8 bytes (``word_bytes`` / ``word_offsets``, byte for byte as in the corpus)."""

    def __init__(self, word_bytes: torch.Tensor, word_offsets: torch.Tensor, minn: int, maxn: int,
                 buckets: int) -> None:
        offsets, ids = fasttext_ngram_buckets(word_bytes, word_offsets, minn, maxn, buckets)
        self.offsets = offsets.contiguous()
        self.buckets = ids.to(torch.int32).contiguous()  # < buckets <= 2^31 - 1: int32 halves the reads

    @property
    def entries(self) -> int:
        """Number of (word, n-gram) entries."""
        return int(self.buckets.numel())


def initial_ngrams(p, init_scale: float, available_bytes: float) -> torch.Tensor:
    """The bucket rows ``[p.buckets, p.dim]`` of a new run: uniform in +-init_scale/dim as ``w_in`` (fastText
    initialises the whole input matrix so), from a generator of its own (seed ``p.seed + 1``); a MemoryError
    naming ``buckets`` before allocating more than ``available_bytes``."""
    need = p.buckets * p.dim * 4
    if need > available_bytes:
        raise MemoryError(f"Word2Vec.build_vocab: the n-gram table of {p.buckets:,} buckets x dim {p.dim} needs "
                          f"{need / 2**30:.1f} GiB, more than this machine's memory: lower buckets or dim")
    gen = torch.Generator().manual_seed((p.seed + 1) % (1 << 63))
    return torch.empty(p.buckets, p.dim).uniform_(-init_scale / p.dim, init_scale / p.dim, generator=gen)


def fasttext_args(w2v) -> dict:
    """The fastText arguments a ``.bin`` of ``w2v`` records (skip-gram, negative sampling, its settings)."""
    p = w2v.params
    return {"ws": p.window, "epoch": p.epochs, "min_count": p.min_count, "neg": p.negative, "word_ngrams": 1,
            "loss": 2, "model": 2, "lr_update_rate": 100, "t": p.sample, "version": 12,
            "ntokens": int(w2v.counts.sum())}


def subword_vectors(w2v, w_in: torch.Tensor) -> "Vectors":
    """``w2v.vectors`` of a sub-word model: each word's vector the mean of its own row and its n-gram rows (as
    fastText's ``get_word_vector``), carrying :class:`~embedfast.vectors.subwords.Subwords` (copies of the word
    rows, bucket rows and output matrix), so any word gets a vector and ``save(format="fasttext-bin")`` works."""
    from ..vectors import Vectors
    from ..vectors.subwords import Subwords, compose_words

    p, corpus = w2v.params, w2v._corpus
    sw = Subwords(ngrams=w2v.w_ngram.to("cpu", copy=True), word_rows=w_in.to("cpu", copy=True), minn=p.minn,
                  maxn=p.maxn, counts=w2v.counts.clone(), args=fasttext_args(w2v),
                  output=w2v.w_out.to("cpu", copy=True))
    matrix = compose_words(sw, corpus.word_bytes, corpus.word_offsets)
    return Vectors(list(w2v.words), matrix, subwords=sw)


def check_ngram_table(t: Optional[torch.Tensor], p, bad) -> Optional[torch.Tensor]:
    """A checkpoint's ``w_ngram``: None for plain word2vec, else float32 [buckets, dim] and finite (``bad(field,
    message)`` raises)."""
    if not p.minn:
        return None
    if not isinstance(t, torch.Tensor) or t.dtype != torch.float32 or t.dim() != 2 or t.layout != torch.strided:
        bad("w_ngram", f"must be a 2-D float32 tensor for a sub-word model (minn={p.minn}), got "
            f"{type(t).__name__ if not isinstance(t, torch.Tensor) else f'{t.dim()}-D {t.dtype}'}")
    if tuple(t.shape) != (p.buckets, p.dim):
        bad("w_ngram", f"has shape {tuple(t.shape)}, expected ({p.buckets}, {p.dim}) (buckets x dim)")
    if not bool(torch.isfinite(t).all()):
        bad("w_ngram", "holds NaN or inf (a diverged run)")
    return t.contiguous()
