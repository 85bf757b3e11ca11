"""Per-type accumulation of contextual_vectors: ``index_add_`` against embedfast's segmented scatter-add (the
gather_bags backward: one bag per word piece, one entry (type row, 1/pieces) each), on one batch's pieces.

    python benchmarks/transfer/bench_accumulate.py [--pieces 4096] [--types 20000] [--dim 384] [--rounds 7]
"""
import argparse
import json
import time

import torch

import embedfast  # noqa: F401  (registers torch.ops.embedfast)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pieces", type=int, default=4096)
    ap.add_argument("--types", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    h = torch.randn(a.pieces, a.dim, generator=g)
    types = torch.randint(a.types, (a.pieces,), generator=g)
    w = torch.rand(a.pieces, generator=g)
    sums = torch.zeros(a.types, a.dim)
    table = torch.zeros(a.types, a.dim)
    offsets = torch.arange(a.pieces + 1)
    src = torch.zeros(a.pieces, dtype=torch.int64)
    ids = torch.arange(a.pieces)
    sw = torch.ones(1)

    def with_index_add():
        sums.index_add_(0, types, h * w[:, None])

    def with_gather_backward():
        _, _, grads, rows = torch.ops.embedfast.gather_bags_backward(h, [table], sw, offsets, src, types, w, ids,
                                                                     False, False, [True], True, False)
        sums.index_add_(0, rows[0], grads[0])

    ref = torch.zeros_like(sums)
    ref.index_add_(0, types, h * w[:, None])
    sums.zero_()
    with_gather_backward()
    assert torch.allclose(sums, ref, atol=1e-5)
    times = {"index_add_": [], "gather_bags_backward (sparse rows) + index_add_": []}
    for _ in range(a.rounds):
        for name, f in (("index_add_", with_index_add),
                        ("gather_bags_backward (sparse rows) + index_add_", with_gather_backward)):
            t = time.perf_counter()
            for _ in range(20):
                f()
            times[name].append((time.perf_counter() - t) / 20 * 1e3)
    print(json.dumps({k: sorted(v)[len(v) // 2] for k, v in times.items()} | {"unit": "ms per batch", **vars(a)}))


if __name__ == "__main__":
    main()
