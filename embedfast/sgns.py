"""Deprecated: ``embedfast.word2vec`` (this alias is removed in the next release)."""
from ._deprecated import alias

__all__ = ["SkipGram", "Word2Vec", "Terminated", "Corpus", "keep_probabilities"]
globals().update(alias(__name__, "embedfast.word2vec", __all__))
