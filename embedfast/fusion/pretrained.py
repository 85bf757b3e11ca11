"""The ``MultiSourceEmbedding`` constructors from pretrained things (``FromPretrained``, a mixin): several
``Vectors``, a transformer's input embeddings, an alignment to another language's vectors, sub-word vectors.
Each prepares ``Source``s (``embedfast.fusion.sources``) and hands them to ``from_sources`` / ``from_bags``."""
from __future__ import annotations

import collections.abc
from typing import Any, Mapping, Optional, Sequence

from .huggingface import huggingface_source
from .sources import Vocab, _vocab_list, alignment_source, fasttext_bags, subword_source, vector_source

__all__ = ["FromPretrained"]


class FromPretrained:
    """Constructors of ``MultiSourceEmbedding`` (its ``from_sources`` / ``from_bags`` do the work)."""

    @classmethod
    def from_vectors(cls, vocab: Vocab, vectors: Sequence[Any], *, lowercase_fallback: bool = True,
                     project_to: Optional[int] = None, **kwargs) -> Any:
        """Fuse several ``embedfast.Vectors`` for a target vocabulary (list of words, or word -> id)."""
        vocab = _vocab_list(vocab, "MultiSourceEmbedding.from_vectors")
        if isinstance(vectors, (str, bytes)) or not isinstance(vectors, collections.abc.Iterable) \
                or hasattr(vectors, "matrix"):
            raise TypeError("MultiSourceEmbedding.from_vectors: vectors must be a list of Vectors, got "
                            f"{type(vectors).__name__}")
        sources = [vector_source(vocab, v, lowercase_fallback=lowercase_fallback, name=f"source{k}")
                   for k, v in enumerate(vectors)]
        return cls.from_sources(sources, project_to=project_to, **kwargs)

    @classmethod
    def from_huggingface(cls, vocab: Vocab, model: Any, tokenizer: Any = None, **kwargs) -> Any:
        """A vocabulary's embedding from a transformer's input embeddings (each word: mean of its sub-word rows)."""
        kwargs.setdefault("learn_weights", False)
        vocab = _vocab_list(vocab, "MultiSourceEmbedding.from_huggingface")
        return cls.from_sources([huggingface_source(vocab, model, tokenizer)], **kwargs)

    @classmethod
    def from_alignment(cls, vocab: Vocab, source_vectors: Any, alignment: Mapping[str, Sequence[tuple[str, float]]],
                       *, seed_dictionary=None, target_vectors=None, strategy: str = "mix",
                       **kwargs) -> Any:
        """A vocabulary (e.g. another language) from aligned source words; see ``alignment_source``
        (``strategy``: ``"mix"``, the probability-weighted mix, or ``"max"``, the most probable word)."""
        kwargs.setdefault("learn_weights", False)
        vocab = _vocab_list(vocab, "MultiSourceEmbedding.from_alignment")
        src = alignment_source(vocab, source_vectors, alignment, seed_dictionary=seed_dictionary,
                               target_vectors=target_vectors, strategy=strategy)
        return cls.from_sources([src], **kwargs)

    @classmethod
    def from_subwords(cls, vocab: Vocab, vectors: Any, *, tokenize=None, ngrams=(3, 6), **kwargs) -> Any:
        """A vocabulary from sub-word vectors.

        - Vectors with fastText sub-words (``vectors.subwords``: a loaded ``.bin``) and no ``tokenize``: every
          word's bag is its own input row (when in the dictionary) and its n-gram rows by fastText's rule
          (``fasttext_bags``; ``ngrams`` is then the model's minn..maxn), over the two tables ``words`` and
          ``ngrams`` with fixed weights 1: the output is fastText's vector of every word, seen or unseen.
          ``freeze_tables=False`` makes both tables parameters, so the word *and* n-gram rows are fine-tuned
          end to end (``sparse=True``: sparse row gradients, for the large n-gram table).
        - Otherwise each word is the mean of its pieces found in ``vectors``; see ``subword_source``.
        """
        kwargs.setdefault("learn_weights", False)
        vocab = _vocab_list(vocab, "MultiSourceEmbedding.from_subwords")
        if tokenize is None and getattr(vectors, "subwords", None) is not None:
            tables, bags = fasttext_bags(vocab, vectors)
            for key, value in (("weights", (1.0, 1.0)), ("names", ("words", "ngrams")), ("renormalize", False)):
                kwargs.setdefault(key, value)
            return cls.from_bags(tables, *bags, **kwargs)
        return cls.from_sources([subword_source(vocab, vectors, tokenize=tokenize, ngrams=ngrams)], **kwargs)
