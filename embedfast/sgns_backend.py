"""Deprecated: ``embedfast.word2vec.ops`` (``sgns_backend``, ``train_op``, ``loss_op``; removed in the next
release)."""
from ._deprecated import alias

__all__ = ["SGNS_BACKENDS", "sgns_backend", "train_op", "loss_op"]
globals().update(alias(__name__, "embedfast.word2vec.ops", __all__))
