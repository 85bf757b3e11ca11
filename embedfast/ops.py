"""``embedfast.ops``: every op family's typed wrappers, fake kernels' checks and stats names, in one namespace.

Each family defines its ops next to its code (schemas in csrc/ops.cpp, CPU kernels in csrc/cpu/<family>*.cpp):

- vectors  (embedfast/vectors/ops.py):  ``load_vectors_raw``, ``LOAD_STATS``, ``SKIP_REASONS``
- word2vec (embedfast/word2vec/ops.py): ``corpus_build_vocab``, ``corpus_encode``, ``sgns_unigram_table``,
  ``sgns_train``, ``sgns_loss``, ``word2vec_train`` (CBOW / hierarchical softmax), ``word2vec_huffman``,
  ``word2vec_subword_train`` (sub-word skip-gram) and their stats names and limits
- fusion   (embedfast/fusion/ops.py):   ``gather_bags``, ``gather_backend``

The raw ops are ``torch.ops.embedfast.<name>``; the wrappers here add keyword arguments, defaults and the backend
choice (``embedfast._backend``).
"""
from __future__ import annotations

from ._argcheck import check_tensor_args  # noqa: F401
from .fusion.ops import (GATHER_BACKENDS, check_gather_fake, gather_backend, gather_bags,  # noqa: F401
                         gather_bags_backward_fake_for, gather_bags_backward_with)
from .vectors.ops import LOAD_STATS, SKIP_REASONS, load_vectors_raw  # noqa: F401
from .word2vec.ops import (ENCODE_STATS, SGNS_TRAIN_LIMITS, TRAIN_STATS, VOCAB_STATS, corpus_build_vocab,  # noqa: F401
                           corpus_encode, sgns_loss, sgns_train, sgns_unigram_table, word2vec_huffman,
                           word2vec_subword_train, word2vec_train)
