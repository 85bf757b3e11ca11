"""The fusion step of ``embedfast demo`` (embedfast/demo.py): three synthetic sources fused, coverage printed,
forward+backward timed against the stacked pure-PyTorch way."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .module import MultiSourceEmbedding


def _demo_step(quick: bool = True, workdir: Optional[str] = None) -> dict:
    """Fuse three synthetic sources (15% missing each), print coverage and time forward+backward against the
    stacked pure-PyTorch way. Returns the figures."""
    import time

    g = torch.Generator().manual_seed(0)
    V, D, N, K = (20_000, 64, 8_192, 3) if quick else (100_000, 300, 65_536, 3)
    tables = [torch.randn(V, D, generator=g) for _ in range(K)]
    index = torch.stack([torch.randperm(V, generator=g) for _ in range(K)], 1)
    index[torch.rand(V, K, generator=g) < 0.15] = -1
    ids = torch.randint(0, V, (N,), generator=g)
    m = MultiSourceEmbedding(tables, index, names=["glove-like", "word2vec-like", "bert-like"])
    print(m.coverage_report())
    logits = torch.zeros(K, requires_grad=True)

    def torch_way():
        idx = index[ids]
        mask = idx >= 0
        emb = torch.stack([F.embedding(idx[:, k].clamp(min=0), tables[k]) for k in range(K)], 1)
        w = torch.softmax(logits, 0) * mask
        w = w / w.sum(1, keepdim=True).clamp_min(1e-30)
        return (w.unsqueeze(-1) * emb).sum(1)

    def timed(fn, reps=5):
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn().sum().backward()
            ts.append(time.perf_counter() - t0)
        return sorted(ts)[len(ts) // 2]

    t_ours, t_torch = timed(lambda: m(ids)), timed(torch_way)
    print(f"fusion forward+backward, {K} sources {V}x{D}, {N} ids: embedfast {1e3 * t_ours:.1f} ms, "
          f"stacked PyTorch {1e3 * t_torch:.1f} ms ({t_torch / t_ours:.1f}x)")
    return dict(embedfast_ms=1e3 * t_ours, torch_ms=1e3 * t_torch)
