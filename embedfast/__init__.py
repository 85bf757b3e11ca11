"""embedfast: fast word-embedding ops for PyTorch.

- ``load_vectors`` / ``Vectors``: pretrained vectors (GloVe, word2vec/fastText text, word2vec binary, native cache)
- word2vec skip-gram with negative sampling (fused C++ kernel)
- multi-source embedding fusion (one gather op for fusion, alignment maps and sub-words)
- ``evaluate``: word-pair similarity, analogies, nearest neighbours
- ``transfer``: another language's vectors from an English model through word alignment (``contextual_vectors``,
  ``map_embeddings``, ``read_checkpoint``)

Every op is a ``torch.ops.embedfast`` custom op with a fake kernel, so it works under ``torch.compile``.
"""
from . import _ext  # noqa: F401  (registers torch.ops.embedfast)
from . import data, evaluate, ops
from .fusion import MultiSourceEmbedding
from .word2vec import SkipGram, Word2Vec
from .vectors import LoadReport, Vectors, load_vectors
from .transfer import contextual_vectors, map_embeddings, read_checkpoint

__version__ = "0.1.0"

__all__ = ["ops", "data", "evaluate", "__version__", "load_vectors", "Vectors", "LoadReport", "MultiSourceEmbedding",
           "SkipGram", "Word2Vec", "contextual_vectors", "map_embeddings", "read_checkpoint"]
