"""Deprecated: ``embedfast.word2vec.triton`` (this alias is removed in the next release)."""
from .._deprecated import alias

__all__ = ["INTERPRETED", "MAX_DIM", "MAX_NEGATIVE", "MAX_WINDOW", "sgns_train_triton", "sgns_loss_triton",
           "sgns_loss_triton_backward", "stream_key", "compile_for_target"]
globals().update(alias(__name__, "embedfast.word2vec.triton", __all__))
