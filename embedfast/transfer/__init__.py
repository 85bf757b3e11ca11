"""Transfer: another language's embedding matrix from an English model (issue 12)."""
from .checkpoint import Checkpoint, PieceTokenizer, read_checkpoint, token_vectors

__all__ = ["Checkpoint", "PieceTokenizer", "read_checkpoint", "token_vectors"]
