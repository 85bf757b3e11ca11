"""Multi-source embeddings: build an embedding layer from other pretrained parameters with one gather op.

``MultiSourceEmbedding`` fuses K pretrained tables: for a word v with rows ``index[v, k]`` (-1 where source k
lacks the word)::

    out = sum_k a_k m_vk T_k[index[v, k]] / sum_k a_k m_vk        (renormalize=True; m_vk = index[v, k] >= 0)

with ``a = softmax(logits)`` (learned) or fixed weights, and zeros (or the OOV policy) where no source has the
word. Internally every word owns a *bag* of (source, row, weight) entries (``embedfast.fusion.ops.gather_bags``, also ``embedfast.ops.gather_bags``), so the
same module also serves sub-word composition (a word as the mean of its pieces), a Hugging Face model's input
embeddings (sub-word bags), and alignment maps (a word as the probability-weighted mix of the source words it
aligns to, optionally through an orthogonal Procrustes map). ``mode="attention"`` gives dynamic
meta-embeddings (Kiela et al., 2018): each source projected, scored by a learned vector, softmax over the sources
present.

Layout: ``module`` (MultiSourceEmbedding), ``pretrained`` (its from_vectors / from_huggingface / from_alignment /
from_subwords constructors), ``sources`` (Source, the builders, fuse_files), ``huggingface``
(huggingface_source), ``coverage`` (SourceCoverage, FusionCoverage), ``checks``, ``ops`` (the gather_bags op:
fakes, autograd, backend choice, wrapper) and, imported only when the Triton backend is asked for, ``triton`` /
``triton_kernels``. ``advise_huge_pages`` (embedfast._hugepages, shared with vectors and word2vec) is re-exported.
"""
from .._vocab import OOV_POLICIES
from .coverage import FusionCoverage, SourceCoverage
from .._hugepages import advise_huge_pages
from .huggingface import huggingface_source
from .module import MultiSourceEmbedding
from .sources import (Source, Vocab, alignment_source, char_ngrams, fuse_files, procrustes, subword_source,
                      vector_source)

__all__ = [
    "MultiSourceEmbedding",
    "Source",
    "Vocab",
    "vector_source",
    "subword_source",
    "huggingface_source",
    "alignment_source",
    "procrustes",
    "char_ngrams",
    "fuse_files",
    "advise_huge_pages",
    "SourceCoverage",
    "FusionCoverage",
    "OOV_POLICIES",
]
