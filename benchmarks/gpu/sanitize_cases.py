"""Small cases of every CUDA op of embedfast, for compute-sanitizer (memcheck: out-of-bounds and misaligned
accesses; racecheck: shared-memory races of the SGNS kernel's context cache): benchmarks/gpu/check.sh runs
``compute-sanitizer --tool memcheck|racecheck python benchmarks/gpu/sanitize_cases.py``. Odd sizes (D = 13: element
loads; D = 64: 16-byte loads), repeated and hot rows, empty bags and sentences, every SGNS mode, one bad-input call
of each op (its error is expected; the kernels must stay in bounds). Prints "sanitize cases: ok" at the end.
"""
from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import embedfast  # noqa: E402,F401
from embedfast import ops  # noqa: E402
from embedfast.ops import gather_bags  # noqa: E402

DEV = "cuda"


def sgns_cases() -> None:
    g = torch.Generator().manual_seed(0)
    V = 37
    counts = torch.randint(1, 50, (V,), generator=g)
    thr, alias = (t.to(DEV) for t in ops.sgns_unigram_table(counts, 0.75))
    keep = (torch.rand(V, generator=g, dtype=torch.float64) * 0.5 + 0.5).to(DEV)
    lengths = [0, 1, 7, 40, 3, 0, 25]
    ids = torch.randint(0, V, (sum(lengths),), generator=g, dtype=torch.int32)
    ids[10:16] = 4  # one word many times in a window
    off = torch.tensor([0] + lengths).cumsum(0).to(DEV)
    ids = ids.to(DEV)
    for D in (13, 64):
        for shared in (True, False):
            for exact in (True, False):
                w_in = (torch.rand(V, D, generator=g) - 0.5).to(DEV)
                w_out = torch.zeros_like(w_in)
                ops.sgns_train(w_in, w_out, ids, off, keep, thr, alias, window=3, negative=4, alpha=0.05,
                               min_alpha=0.01, words_done=0, total_words=1000, seed=1, chunk=0, num_threads=1,
                               shared_negatives=shared, exact_sigmoid=exact, backend="cuda")
    bad = ids.clone()
    bad[3] = V
    try:
        ops.sgns_train(w_in, w_out, bad, off, keep, thr, alias, window=3, negative=4, alpha=0.05, min_alpha=0.01,
                       words_done=0, total_words=1000, seed=1, chunk=0, num_threads=1, backend="cuda")
        raise SystemExit("sgns_train accepted an id outside the vocabulary")
    except IndexError:
        pass
    for dtype in (torch.float32, torch.float64):
        w_in = torch.randn(11, 45, dtype=dtype, device=DEV, requires_grad=True)
        w_out = torch.randn(13, 45, dtype=dtype, device=DEV, requires_grad=True)
        c = torch.randint(0, 11, (29,), device=DEV)
        c[:10] = 2  # hot row
        x = torch.randint(0, 13, (29,), device=DEV)
        n = torch.randint(0, 13, (29, 5), device=DEV)
        ops.sgns_loss(w_in, w_out, c, x, n, backend="cuda").sum().backward()


def gather_cases() -> None:
    g = torch.Generator().manual_seed(1)
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        for D in (13, 64):
            rows = [7, 1, 12]
            tables = [torch.randn(v, D, generator=g).to(dtype).to(DEV).requires_grad_() for v in rows]
            sizes = torch.tensor([0, 3, 1, 0, 5, 2])
            off = torch.cat([torch.zeros(1, dtype=torch.int64), sizes.cumsum(0)]).to(DEV)
            E = int(sizes.sum())
            src = torch.randint(0, 3, (E,), generator=g)
            row = torch.tensor([int(torch.randint(0, rows[int(k)], (1,), generator=g)) for k in src])
            wdt = torch.float64 if dtype == torch.float64 else torch.float32
            ew = (torch.rand(E, generator=g, dtype=torch.float64) + 0.1).to(wdt).to(DEV).requires_grad_()
            sw = torch.rand(3, generator=g, dtype=torch.float64).to(wdt).to(DEV).requires_grad_()
            ids = torch.randint(0, 6, (41,), generator=g).to(DEV)
            for renorm in (True, False):
                out = gather_bags(tables, sw, off, src.to(DEV), row.to(DEV), ew, ids, renormalize=renorm,
                                  backend="cuda")
                out.float().square().sum().backward()
    bad = ids.clone()
    bad[0] = 99
    try:
        gather_bags(tables, sw, off, src.to(DEV), row.to(DEV), ew, bad, backend="cuda")
        raise SystemExit("gather_bags accepted an id outside the bags")
    except IndexError:
        pass


if __name__ == "__main__":
    if not torch.cuda.is_available():
        raise SystemExit("sanitize_cases: needs a CUDA device")
    sgns_cases()
    gather_cases()
    torch.cuda.synchronize()
    print("sanitize cases: ok")
