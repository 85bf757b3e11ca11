"""The differentiable route of SGNS: the ``SkipGram`` module (``sgns_loss`` with autograd), for your own optimizer
or as an auxiliary loss."""
from __future__ import annotations

import numbers
from typing import Optional

import torch
from torch import nn

from . import ops

__all__ = ["SkipGram"]


class SkipGram(nn.Module):
    """Skip-gram with negative sampling as an ``nn.Module``.

    ``self.in_embed`` is an ``nn.Embedding(vocab_size, dim)`` (the word vectors people keep), initialised as
    word2vec does (uniform in +-0.5/dim); ``self.out_weight`` is the [vocab_size, dim] output (context) matrix,
    initialised to zeros. ``forward(centers, contexts, negatives)`` returns the SGNS loss computed by the custom
    op ``embedfast::sgns_loss`` (C++ forward and backward; works under ``torch.compile(fullgraph=True)``).
    """

    def __init__(self, vocab_size: int, dim: int, *, generator: Optional[torch.Generator] = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in (vocab_size, dim)):
            raise ValueError(f"SkipGram: vocab_size and dim must be ints >= 1, got {vocab_size!r} and {dim!r}")
        self.in_embed = nn.Embedding(vocab_size, dim, dtype=dtype)
        self.out_weight = nn.Parameter(torch.zeros(vocab_size, dim, dtype=dtype))
        with torch.no_grad():
            self.in_embed.weight.uniform_(-0.5 / dim, 0.5 / dim, generator=generator)

    @classmethod
    def from_matrices(cls, w_in: torch.Tensor, w_out: torch.Tensor) -> "SkipGram":
        """A ``SkipGram`` holding copies of trained input / output matrices [V, dim] (e.g. ``Word2Vec``'s)."""
        m = cls(w_in.shape[0], w_in.shape[1], dtype=w_in.dtype)
        with torch.no_grad():
            m.in_embed.weight.copy_(w_in)
            m.out_weight.copy_(w_out)
        return m

    def forward(self, centers: torch.Tensor, contexts: torch.Tensor, negatives: torch.Tensor,
                reduction: str = "mean") -> torch.Tensor:
        """SGNS loss of the pairs (centers[b], contexts[b]) with negatives[b, :] ("mean", "sum" or "none")."""
        loss = ops.sgns_loss(self.in_embed.weight, self.out_weight, centers, contexts, negatives)
        if reduction == "mean":
            return loss.mean()
        if reduction == "sum":
            return loss.sum()
        if reduction == "none":
            return loss
        raise ValueError(f"SkipGram.forward: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
