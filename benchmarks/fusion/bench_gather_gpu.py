"""GPU benchmark of the multi-source gather (issue 6): embedfast's Triton (and CUDA, when built) kernels against
pure PyTorch, with achieved bandwidth against the measured device-to-device copy bandwidth.

Problem (defaults): K = 3 sources of 400k x 300 (float32 and bfloat16), 15% of the words missing from each
source, 262,144 token ids (uniform over the vocabulary), renormalised fusion with learned source weights
(frozen tables; the ``MultiSourceEmbedding`` default). Timed with ``triton.testing.do_bench`` (median):

- forward; forward+backward (gradients of the source weights and the entry weights);
- pure PyTorch: stacked ``F.embedding`` per source + masked weighted sum; ``F.embedding_bag`` (mode="sum",
  ``per_sample_weights``) over the concatenated tables with a zero padding row for missing words.

Achieved bandwidth = bytes that must move (``forward_bytes`` / ``backward_bytes``) / time.

    python benchmarks/fusion/bench_gather_gpu.py [--V 400000 --D 300 --K 3 --N 262144 --dtypes float32,bfloat16]

Needs a CUDA GPU and triton; exits with a message otherwise.
"""
from __future__ import annotations

import argparse
import datetime
import sys

import torch
import torch.nn.functional as F

import os  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))  # noqa: E402
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # this family's scripts, then benchmarks/_common.py
from _common import commit  # noqa: E402

import embedfast  # noqa: F401,E402  (registers the ops)
from embedfast.ops import gather_bags

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def add_problem_args(ap: argparse.ArgumentParser) -> None:
    """The problem's options: ``make_problem``'s sizes, the fraction missing, the dtypes (the issue's defaults)."""
    ap.add_argument("--V", type=int, default=400_000, help="words per source (default 400000)")
    ap.add_argument("--D", type=int, default=300, help="dimension (default 300)")
    ap.add_argument("--K", type=int, default=3, help="sources (default 3)")
    ap.add_argument("--N", type=int, default=262_144, help="token ids (default 262144)")
    ap.add_argument("--missing", type=float, default=0.15, help="fraction of the words missing from each source")
    ap.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated table dtypes")


def make_problem(V: int = 400_000, D: int = 300, K: int = 3, N: int = 262_144, missing: float = 0.15,
                 dtype: torch.dtype = torch.float32, device: str = "cuda", seed: int = 0) -> dict:
    """Tables, the word -> row index [V, K] (-1: missing), the bags of ``gather_bags`` and the ids."""
    g = torch.Generator().manual_seed(seed)
    tables = [torch.randn(V, D, generator=g).to(dtype) for _ in range(K)]
    index = torch.stack([torch.randperm(V, generator=g) for _ in range(K)], 1)
    index[torch.rand(V, K, generator=g) < missing] = -1
    present = index >= 0
    counts = present.sum(1)
    off = torch.zeros(V + 1, dtype=torch.int64)
    off[1:] = counts.cumsum(0)
    src = torch.arange(K).expand(V, K)[present].contiguous()
    rows = index[present].contiguous()
    ids = torch.randint(0, V, (N,), generator=g)
    prob = dict(tables=tables, index=index, bag_offsets=off, entry_source=src, entry_row=rows,
                entry_weight=torch.ones(rows.numel()), source_weight=torch.full((K,), 1.0 / K), ids=ids)
    prob = {k: ([t.to(device) for t in v] if isinstance(v, list) else v.to(device)) for k, v in prob.items()}
    # for the embedding_bag baseline: one concatenated table with a zero padding row at the end
    base = torch.tensor([0] + [V] * (K - 1), device=device).cumsum(0)
    pad = K * V
    prob["cat_table"] = torch.cat(prob["tables"] + [torch.zeros(1, D, dtype=dtype, device=device)])
    prob["global_index"] = torch.where(prob["index"] >= 0, prob["index"] + base, pad)
    prob["pad"] = pad
    return prob


def _rows_read(prob) -> int:
    return int((prob["index"][prob["ids"]] >= 0).sum())


def forward_bytes(prob) -> int:
    """Bytes the forward must move: the present table rows of every id, the output, each id and its two bag
    offsets (int64), and each entry's source, row (int64) and weight (float32)."""
    N = prob["ids"].numel()
    D = prob["tables"][0].shape[1]
    es = prob["tables"][0].element_size()
    r = _rows_read(prob)
    return r * D * es + N * D * es + N * 3 * 8 + r * (8 + 8 + 4)


def backward_bytes(prob) -> int:
    """Bytes the backward must move (frozen tables, learned weights): the output gradient, the table rows and
    entries again (per-entry dot products), and one float32 entry-weight gradient per entry read."""
    N = prob["ids"].numel()
    D = prob["tables"][0].shape[1]
    es = prob["tables"][0].element_size()
    r = _rows_read(prob)
    return N * D * es + r * D * es + N * 3 * 8 + r * (8 + 8 + 4) + r * 4


def fused_torch_stacked(prob, source_weight=None):
    """Pure PyTorch: F.embedding per source, stacked [N, K, D], masked weighted sum (renormalised)."""
    sw = prob["source_weight"] if source_weight is None else source_weight
    idx = prob["index"][prob["ids"]]  # [N, K]
    present = idx >= 0
    rows = torch.stack([F.embedding(idx[:, k].clamp_min(0), t) for k, t in enumerate(prob["tables"])], 1)
    w = sw * present
    w = w / w.sum(1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    return (w.unsqueeze(-1) * rows).sum(1).to(rows.dtype)


def fused_torch_embedding_bag(prob, source_weight=None):
    """Pure PyTorch: F.embedding_bag(mode="sum", per_sample_weights) over the concatenated tables."""
    sw = prob["source_weight"] if source_weight is None else source_weight
    gi = prob["global_index"][prob["ids"]]  # [N, K]
    w = sw * (gi != prob["pad"])
    w = w / w.sum(1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    t = prob["cat_table"]
    return F.embedding_bag(gi, t, mode="sum", per_sample_weights=w.to(t.dtype), padding_idx=prob["pad"])


def fused_embedfast(prob, source_weight=None, backend="triton"):
    sw = prob["source_weight"] if source_weight is None else source_weight
    return gather_bags(prob["tables"], sw, prob["bag_offsets"], prob["entry_source"], prob["entry_row"],
                       prob["entry_weight"], prob["ids"], renormalize=True, backend=backend)


def copy_bandwidth(nbytes: int = 1 << 30) -> float:
    """Measured device-to-device copy bandwidth in bytes/s (read + write), median of do_bench."""
    from triton.testing import do_bench

    src = torch.empty(nbytes // 4, dtype=torch.float32, device="cuda").uniform_()
    dst = torch.empty_like(src)
    ms = do_bench(lambda: dst.copy_(src), return_mode="median")
    return 2 * nbytes / (ms * 1e-3)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_problem_args(ap)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench_gather_gpu: needs a CUDA GPU (none found); the Triton kernels are tested on the "
                         "CPU with TRITON_INTERPRET=1 in tests/test_fusion_triton.py")
    try:
        from triton.testing import do_bench
    except ImportError:
        raise SystemExit("bench_gather_gpu: needs triton (pip install triton)")
    has_cuda_kernels = torch._C._dispatch_has_kernel_for_dispatch_key("embedfast::gather_bags", "CUDA")
    copy_bw = copy_bandwidth()
    print(f"# {torch.cuda.get_device_name()} | {datetime.date.today()} | commit {commit()} | torch "
          f"{torch.__version__}")
    print(f"# measured device-to-device copy bandwidth: {copy_bw / 1e9:.0f} GB/s")
    for name in args.dtypes.split(","):
        dtype = DTYPES[name]
        prob = make_problem(args.V, args.D, args.K, args.N, args.missing, dtype, "cuda", args.seed)
        fb, bb = forward_bytes(prob), backward_bytes(prob)
        print(f"\n## K={args.K} x {args.V} x {args.D} {name}, {args.missing:.0%} missing, N={args.N}: "
              f"forward moves {fb / 1e6:.0f} MB, forward+backward {(fb + bb) / 1e6:.0f} MB")
        methods = {"torch stacked F.embedding": fused_torch_stacked,
                   "torch F.embedding_bag": fused_torch_embedding_bag,
                   "embedfast triton": lambda p, sw=None: fused_embedfast(p, sw, "triton")}
        if has_cuda_kernels:
            methods["embedfast cuda"] = lambda p, sw=None: fused_embedfast(p, sw, "cuda")
        ref = fused_torch_stacked(prob).float()
        rows = []
        for label, fn in methods.items():
            out = fn(prob).float()
            err = (out - ref).abs().max().item()
            t_f = do_bench(lambda: fn(prob), return_mode="median")
            sw = prob["source_weight"].clone().requires_grad_()
            gout = torch.randn_like(out).to(dtype)

            def step():
                fn(prob, sw).backward(gout)

            t_fb = do_bench(step, grad_to_none=[sw], return_mode="median")
            rows.append((label, t_f, t_fb, err))
        best_torch_fb = min(r[2] for r in rows if r[0].startswith("torch"))
        print(f"{'method':<28}{'fwd ms':>9}{'fwd GB/s':>10}{'% copy':>8}{'fwd+bwd ms':>12}{'GB/s':>8}"
              f"{'x best torch':>14}{'max |err|':>11}")
        for label, t_f, t_fb, err in rows:
            bw_f = fb / (t_f * 1e-3)
            bw_fb = (fb + bb) / (t_fb * 1e-3)
            print(f"{label:<28}{t_f:>9.3f}{bw_f / 1e9:>10.0f}{100 * bw_f / copy_bw:>7.0f}%{t_fb:>12.3f}"
                  f"{bw_fb / 1e9:>8.0f}{best_torch_fb / t_fb:>13.1f}x{err:>11.2e}")


if __name__ == "__main__":
    main(sys.argv[1:])
