"""Time per training step: embedfast's ``MultiSourceEmbedding`` against the same layer in plain PyTorch (one
``F.embedding`` per source, stacked, weighted sum over the sources present), eager and under
``torch.compile(fullgraph=True)``.

The step: embed a [B, T] batch of ids, mean over T, a linear head, cross-entropy, backward, Adam step; K tables
[V, D] trained (dense gradients), learned source weights, about a quarter of each source's rows missing. The two
layers start from the same weights and are checked to give the same output before timing. A and B alternate
round by round; the figure is the median step time of each and their ratio (plain / embedfast: > 1 means
embedfast's layer is faster).

    python benchmarks/training/bench_step.py --rounds 7
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from _common import ROOT  # noqa: E402,F401  (puts the checkout on sys.path)
from embedfast import MultiSourceEmbedding  # noqa: E402


class PlainFused(nn.Module):
    """The fused layer in plain PyTorch: out = sum_k a_k m_vk T_k[i_vk] / sum_k a_k m_vk."""

    def __init__(self, tables, index):
        super().__init__()
        self.tables = nn.ParameterList(nn.Parameter(t.clone()) for t in tables)
        self.logits = nn.Parameter(torch.zeros(len(tables)))
        self.register_buffer("index", index)

    def forward(self, ids):
        idx = self.index[ids]  # [..., K]
        present = idx >= 0
        ys = torch.stack([F.embedding(idx[..., k].clamp_min(0), t) for k, t in enumerate(self.tables)], -2)
        a = torch.softmax(self.logits, 0) * present
        a = a / a.sum(-1, keepdim=True).clamp_min(torch.finfo(a.dtype).tiny)
        return (a.unsqueeze(-1) * ys).sum(-2)


class Model(nn.Module):
    def __init__(self, emb, dim, classes):
        super().__init__()
        self.emb, self.head = emb, nn.Linear(dim, classes)

    def forward(self, ids):
        return self.head(self.emb(ids).mean(1))


def build(a, seed=0):
    g = torch.Generator().manual_seed(seed)
    tables = [torch.randn(a.vocab, a.dim, generator=g) for _ in range(a.sources)]
    index = torch.arange(a.vocab).repeat(a.sources, 1).t().contiguous()
    index[torch.rand(index.shape, generator=g) < 0.25] = -1
    ef = Model(MultiSourceEmbedding(tables, index, freeze_tables=False, learn_weights=True), a.dim, a.classes)
    pt = Model(PlainFused(tables, index), a.dim, a.classes)
    pt.head.load_state_dict(ef.head.state_dict())
    ids = torch.randint(0, a.vocab, (a.batch, a.tokens), generator=g)
    torch.testing.assert_close(pt(ids), ef(ids), rtol=1e-4, atol=1e-5)
    return {"embedfast": ef, "plain": pt}, ids


def make_step(model, mode):
    fn = torch.compile(model, fullgraph=True) if mode == "compiled" else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    y = None

    def step(ids):
        nonlocal y
        logits = fn(ids)
        y = torch.zeros(ids.shape[0], dtype=torch.int64) if y is None else y
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vocab", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--sources", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--classes", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--modes", nargs="+", default=["eager", "compiled"])
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    models, ids = build(a)
    out = {"args": vars(a), "torch": torch.__version__, "modes": {}}
    for mode in a.modes:
        steps = {k: make_step(m, mode) for k, m in models.items()}
        for s in steps.values():  # warm-up (compilation)
            for _ in range(3):
                s(ids)
        times = {k: [] for k in steps}
        for r in range(a.rounds):
            order = list(steps) if r % 2 == 0 else list(steps)[::-1]
            for k in order:
                t = time.perf_counter()
                for _ in range(a.steps):
                    steps[k](ids)
                times[k].append((time.perf_counter() - t) / a.steps)
        med = {k: statistics.median(v) for k, v in times.items()}
        out["modes"][mode] = {"ms_per_step": {k: 1000 * v for k, v in med.items()},
                              "plain_over_embedfast": med["plain"] / med["embedfast"], "rounds": times}
        print(f"{mode:9s}: embedfast {1000 * med['embedfast']:.2f} ms/step, plain PyTorch "
              f"{1000 * med['plain']:.2f} ms/step, plain/embedfast {med['plain'] / med['embedfast']:.3f}",
              flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
