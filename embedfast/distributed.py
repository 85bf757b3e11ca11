"""Deprecated: ``embedfast.word2vec.distributed`` (this alias is removed in the next release)."""
import warnings

__all__ = ["init_from_env", "shard_bounds", "train_distributed"]

warnings.warn("embedfast.distributed is deprecated and will be removed in the next release; import "
              "embedfast.word2vec.distributed instead", DeprecationWarning, stacklevel=2)

from .word2vec.distributed import init_from_env, shard_bounds, train_distributed  # noqa: E402,F401
