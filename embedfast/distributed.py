"""Deprecated: ``embedfast.word2vec.distributed`` (this alias is removed in the next release)."""
from ._deprecated import alias

__all__ = ["init_from_env", "shard_bounds", "train_distributed"]
globals().update(alias(__name__, "embedfast.word2vec.distributed", __all__))
