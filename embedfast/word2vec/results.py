"""The results of a ``Word2Vec`` run (a mixin of ``embedfast.word2vec.trainer.Word2Vec``): the trained matrix, the
vectors (sub-word :class:`~embedfast.vectors.Vectors` for a ``minn > 0`` model, ``embedfast.word2vec.subword``),
saving them, the ``SkipGram`` module of the matrices, and the run's progress."""
from __future__ import annotations

import torch

from .skipgram import SkipGram
from .subword import subword_vectors

__all__ = ["Results"]


class Results:
    """What a trained ``Word2Vec`` gives (it holds ``w_in``, ``w_out``, ``w_ngram``, ``words``, ``params``)."""

    @property
    def done(self) -> bool:
        """True when all epochs have been trained."""
        return self._pos["epoch"] >= self.params.epochs

    @property
    def words_per_second(self) -> float:
        """Encoded (in-vocabulary) tokens trained per second of kernel time so far."""
        return self._pos["words_done"] / self.train_seconds if self.train_seconds > 0 else 0.0

    def _result(self, what: str) -> torch.Tensor:
        if self.w_in is None:
            raise ValueError(f"Word2Vec.{what}: nothing trained yet (call build_vocab/train)")
        if self._diverged is not None and what != "matrix":
            raise ValueError(f"Word2Vec.{what}: no result, {self._diverged}")
        return self.w_in

    @property
    def matrix(self) -> torch.Tensor:
        """The input vectors [len(words), dim] (the trained embedding; not a copy). With sub-words: the words'
        own rows (``vectors`` holds the composed word vectors)."""
        return self._result("matrix")

    @property
    def vectors(self):
        """The input vectors as ``embedfast.Vectors(words, matrix)`` (a copy). With sub-words (``minn > 0``): each
        word the mean of its own row and its n-gram rows, and the Vectors carry the sub-words (a vector for any
        word; ``save(format="fasttext-bin")`` writes a fastText model)."""
        from ..vectors import Vectors

        if self.params.minn:
            return subword_vectors(self, self._result("vectors"))
        return Vectors(list(self.words), self._result("vectors").to("cpu", copy=True))

    def save(self, path: str, format: str = "word2vec") -> None:
        """Save the vectors in any format of ``Vectors.save`` (glove, word2vec, word2vec-bin, native; a sub-word
        model also fasttext-bin, fastText's ``.bin`` that ``fasttext.load_model`` reads)."""
        self.vectors.save(path, format=format)

    def skipgram(self) -> SkipGram:
        """A ``SkipGram`` module holding copies of the trained matrices (to fine-tune with autograd). Not for
        ``hs=1`` models, whose ``w_out`` rows are Huffman-tree nodes, not output word vectors, nor for sub-word
        models, whose input vectors are bags of rows (ValueError)."""
        if self.params.hs or self.params.minn:
            raise ValueError("Word2Vec.skipgram: " + ("an hs=1 model's w_out holds the Huffman tree's inner nodes, "
                             "not output word vectors; SkipGram (negative sampling) cannot use it" if self.params.hs
                             else "a sub-word model's input vectors are bags of word and n-gram rows, which "
                             "SkipGram (one row per word) does not model"))
        return SkipGram.from_matrices(self._result("skipgram"), self.w_out)
