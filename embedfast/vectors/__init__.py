"""Pretrained word vectors: load (GloVe / word2vec / fastText text, word2vec binary, gzip, native cache), save,
look up, turn into an ``nn.Embedding``, nearest neighbours, gensim interop.

The parsing is done by the C++ op ``torch.ops.embedfast.load_vectors`` (multi-threaded; :mod:`.ops`); the
package adds format detection, gzip, word decoding, duplicates, vocabulary filtering, dtypes and the load report.

- :mod:`.keyed`: :class:`Vectors` (lookups, gensim's names, similarity, ``to_embedding``, save)
- :mod:`.io`: :func:`load_vectors`, :class:`LoadReport`; :mod:`.formats`: format names and sniffing
- :mod:`.native`: the native cache; :mod:`.writers`: text and word2vec binary writers
- :mod:`.embedding`: ``to_embedding`` and :class:`EmbeddingCoverage`; :mod:`.similarity`: similarity search
- :mod:`.ops`: the op's fake kernel, :data:`LOAD_STATS`, :data:`SKIP_REASONS`, :func:`load_vectors_raw`

Guarantees (details in the docstrings): a native cache is read into memory by default (``mmap=True`` maps it:
then it must not be modified in place while loaded); every save is atomic (a unique temporary file renamed over
the target); words are the file's bytes, decoded as UTF-8 with bytes that are not UTF-8 kept as lone surrogates
(``embedfast._io``), so they stay distinct and are written back byte for byte; ``to_embedding`` never shifts
a user-given id.
"""
from .._vocab import PAD_SPELLINGS, UNK_SPELLINGS
from .embedding import OOV_POLICIES, EmbeddingCoverage
from .formats import LOAD_FORMATS, SAVE_FORMATS, TEXT_FORMATS
from .io import LoadReport, load_vectors, logger  # noqa: F401  (logger: the old module's)
from .keyed import PathLike, Vectors  # noqa: F401
from .ops import LOAD_STATS, SKIP_REASONS, load_vectors_raw

__all__ = ["Vectors", "load_vectors", "LoadReport", "EmbeddingCoverage", "OOV_POLICIES", "TEXT_FORMATS",
           "LOAD_FORMATS", "SAVE_FORMATS", "LOAD_STATS", "SKIP_REASONS", "load_vectors_raw", "PAD_SPELLINGS",
           "UNK_SPELLINGS"]
