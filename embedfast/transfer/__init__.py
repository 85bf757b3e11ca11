"""Transfer: another language's embedding matrix from an English model's contextual vectors through word
alignment (``embedfast map``).

- ``checkpoint``: a local model folder read without ``transformers`` (``read_checkpoint``: the input embedding
  mapped from model.safetensors, the tokenizer from tokenizer.json; ``token_vectors``: the token table as
  ``Vectors``); ``embedfast.fusion.huggingface_source`` takes such folders too.
- ``contextual``: ``contextual_vectors`` (the mean over a word type's occurrences of its contextual vector).
- ``align``: eflomal links both ways, Pharaoh files, symmetrisation, link counts -> p(source | target),
  bilingual dictionaries as alignment tables.
- ``text``: line-aligned parallel text, jieba segmentation.
- ``pipeline``: ``map_embeddings``, the whole pipeline behind ``embedfast map``.
"""
from .align import (LinkCounts, count_links, eflomal_links, read_dictionary, read_pharaoh, symmetrize,
                    write_pharaoh)
from .checkpoint import Checkpoint, PieceTokenizer, read_checkpoint, token_vectors
from .contextual import contextual_vectors
from .pipeline import DEFAULT_LAYERS, DEFAULT_STATIC_WEIGHT, MapResult, map_embeddings

__all__ = ["Checkpoint", "PieceTokenizer", "read_checkpoint", "token_vectors", "contextual_vectors",
           "eflomal_links", "read_pharaoh", "write_pharaoh", "symmetrize", "LinkCounts", "count_links",
           "read_dictionary", "map_embeddings", "MapResult", "DEFAULT_LAYERS", "DEFAULT_STATIC_WEIGHT"]
