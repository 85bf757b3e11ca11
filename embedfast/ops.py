"""torch.ops.embedfast: fake (meta) kernels, autograd registrations and thin typed wrappers.

Schemas live in csrc/ops.cpp; CPU kernels in csrc/cpu/, CUDA kernels in csrc/cuda/, Triton kernels in
embedfast/triton/. One section per op family below.
"""
from __future__ import annotations

import torch

from ._backend import BACKENDS, select_backend
from ._argcheck import c10_name, check_tensor_args
from ._ext import ops as _ops

# =====================================================================================================
# loader (embedfast/vectors/ops.py)
# =====================================================================================================

from .vectors.ops import LOAD_STATS, SKIP_REASONS, load_vectors_raw  # noqa: E402,F401


# =====================================================================================================
# corpus and sgns: embedfast/word2vec/ops.py
# =====================================================================================================

from .word2vec.ops import (ENCODE_STATS, SGNS_TRAIN_LIMITS, TRAIN_STATS, VOCAB_STATS, corpus_build_vocab,  # noqa: E402,F401
                           corpus_encode, sgns_loss, sgns_train, sgns_unigram_table)

# =====================================================================================================
# gather (embedfast/fusion/ops.py)
# =====================================================================================================

from .fusion.ops import (GATHER_BACKENDS, check_gather_fake, gather_backend, gather_bags,  # noqa: E402,F401
                         gather_bags_backward_fake_for, gather_bags_backward_with)
