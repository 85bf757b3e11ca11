"""Deprecated: ``embedfast.word2vec`` (this alias is removed in the next release)."""
import warnings

__all__ = ["SkipGram", "Word2Vec", "Terminated", "Corpus", "keep_probabilities"]

warnings.warn("embedfast.sgns is deprecated and will be removed in the next release; import embedfast.word2vec "
              "instead", DeprecationWarning, stacklevel=2)

from .word2vec import Corpus, SkipGram, Terminated, Word2Vec, keep_probabilities  # noqa: E402,F401
