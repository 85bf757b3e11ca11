"""Deprecated: ``embedfast.word2vec.triton`` (this alias is removed in the next release)."""
import warnings

__all__ = ["INTERPRETED", "MAX_DIM", "MAX_NEGATIVE", "MAX_WINDOW", "sgns_train_triton", "sgns_loss_triton",
           "sgns_loss_triton_backward", "stream_key", "compile_for_target"]

warnings.warn("embedfast.triton.sgns is deprecated and will be removed in the next release; import "
              "embedfast.word2vec.triton instead", DeprecationWarning, stacklevel=2)

from ..word2vec.triton import (INTERPRETED, MAX_DIM, MAX_NEGATIVE, MAX_WINDOW, compile_for_target,  # noqa: E402,F401
                               sgns_loss_triton, sgns_loss_triton_backward, sgns_train_triton, stream_key)
