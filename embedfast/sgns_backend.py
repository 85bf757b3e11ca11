"""Deprecated: ``embedfast.word2vec.ops`` (``sgns_backend``, ``train_op``, ``loss_op``; this alias is removed in
the next release)."""
import warnings

__all__ = ["SGNS_BACKENDS", "sgns_backend", "train_op", "loss_op"]

warnings.warn("embedfast.sgns_backend is deprecated and will be removed in the next release; import "
              "embedfast.word2vec.ops instead", DeprecationWarning, stacklevel=2)

from .word2vec.ops import SGNS_BACKENDS, loss_op, sgns_backend, train_op  # noqa: E402,F401
