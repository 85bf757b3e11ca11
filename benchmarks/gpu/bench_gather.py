"""The gather benchmark set of issue 16 (run by benchmarks/gpu/check.sh on the device machine): gather_bags forward
and forward+backward on embedfast's CUDA kernels, its Triton kernels, the same CUDA op under
torch.compile(fullgraph=True) and under mode="reduce-overhead" (CUDA graphs), and the pure-PyTorch versions
(stacked F.embedding; F.embedding_bag with per_sample_weights), with the achieved bandwidth against the measured
device-to-device copy bandwidth.

Problem (the issue's): K = 3 sources of 400k x 300, float32 and bfloat16, 15% of the words missing from each
source, 262,144 ids, renormalised, learned source weights, frozen tables (problem, byte accounting and
baselines: benchmarks/fusion/bench_gather_gpu.py). Targets: forward >= 85% of the copy bandwidth; forward+backward
>= 5x the best pure-PyTorch version; Triton within 1.3x of CUDA.

    python benchmarks/gpu/bench_gather.py [--V 400000 --D 300 --K 3 --N 262144 --dtypes float32,bfloat16]
    python benchmarks/gpu/bench_gather.py --device cpu --V 500 --N 2048      # dry run: the same table on the CPU
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(os.path.dirname(HERE), "fusion"), os.path.dirname(HERE)]
from _common import commit  # noqa: E402
from bench_gather_gpu import (DTYPES, add_problem_args, backward_bytes, forward_bytes, fused_embedfast,  # noqa: E402
                              fused_torch_embedding_bag, fused_torch_stacked, make_problem)
from timing import median_ms, table  # noqa: E402

from embedfast._backend import has_cuda_kernel, triton_state  # noqa: E402

HEADER = ["method", "fwd ms", "fwd GB/s", "% copy", "fwd+bwd ms", "fwd+bwd GB/s", "x best torch", "x cuda",
          "max abs err"]


def copy_bandwidth(device: str, nbytes: int) -> float:
    """Measured copy bandwidth in bytes/s (bytes read + written), median of timed copies."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), device, reps=20)
    return 2 * nbytes / (ms * 1e-3)


def methods(device: str) -> dict:
    """label -> fn(prob, source_weight) for what can run on `device`."""
    m = {"torch stacked F.embedding": fused_torch_stacked, "torch F.embedding_bag": fused_torch_embedding_bag}
    if device == "cpu":
        m["embedfast cpu"] = lambda p, sw=None: fused_embedfast(p, sw, "cpu")
        return m
    if has_cuda_kernel("gather_bags"):
        m["embedfast cuda"] = lambda p, sw=None: fused_embedfast(p, sw, "cuda")
        m["cuda, compile fullgraph"] = torch.compile(lambda p, sw=None: fused_embedfast(p, sw, "cuda"),
                                                     fullgraph=True)
        m["cuda, reduce-overhead"] = torch.compile(lambda p, sw=None: fused_embedfast(p, sw, "cuda"),
                                                   fullgraph=True, mode="reduce-overhead")
    if triton_state("embedfast.fusion.triton") == 1:
        m["embedfast triton"] = lambda p, sw=None: fused_embedfast(p, sw, "triton")
    return m


def run_dtype(prob, device: str, copy_bw: float, reps: int, json_path=None, title="") -> str:
    fb, bb = forward_bytes(prob), backward_bytes(prob)
    ref = fused_torch_stacked(prob).float()
    rows = []
    for label, fn in methods(device).items():
        try:
            out = fn(prob).float()
            err = (out - ref).abs().max().item() if out.numel() else 0.0
            t_f = median_ms(lambda: fn(prob), device, reps=reps)
            sw = prob["source_weight"].clone().requires_grad_()
            gout = torch.randn_like(out).to(prob["tables"][0].dtype)

            def step():
                fn(prob, sw).backward(gout)
                sw.grad = None

            t_fb = median_ms(step, device, reps=reps)
            rows.append([label, t_f, t_fb, err])
        except Exception as e:  # a method that fails is a row saying so, not a crash of the whole set
            rows.append([label, float("nan"), float("nan"), f"failed: {type(e).__name__}: {str(e)[:120]}"])
    torch_fb = [r[2] for r in rows if r[0].startswith("torch") and r[2] == r[2]]
    best_torch = min(torch_fb) if torch_fb else float("nan")
    cuda = {r[0]: r for r in rows}.get("embedfast cuda")
    out_rows = []
    for label, t_f, t_fb, err in rows:
        bw_f, bw_fb = fb / (t_f * 1e-3), (fb + bb) / (t_fb * 1e-3)
        x_cuda = t_fb / cuda[2] if cuda else float("nan")
        out_rows.append([label, t_f, bw_f / 1e9, 100 * bw_f / copy_bw, t_fb, bw_fb / 1e9, best_torch / t_fb,
                         x_cuda, err])
    return table(HEADER, out_rows, json_path, title)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    add_problem_args(ap)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--copy-mb", type=int, default=1024)
    ap.add_argument("--json", default=None, help="append every row as a JSON line to this file")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_gather: no CUDA device here (use --device cpu for a dry run)", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU (dry run)"
    copy_bw = copy_bandwidth(args.device, args.copy_mb << 20)
    print(f"# gather_bags | {name} | {datetime.date.today()} | commit {commit()} | torch {torch.__version__}")
    print(f"# copy bandwidth (read + write): {copy_bw / 1e9:.0f} GB/s; targets: forward >= 85% of it, "
          "fwd+bwd >= 5x best torch, triton <= 1.3x cuda")
    for dname in args.dtypes.split(","):
        prob = make_problem(args.V, args.D, args.K, args.N, args.missing, DTYPES[dname], args.device)
        fb, bb = forward_bytes(prob), backward_bytes(prob)
        title = f"K={args.K} x {args.V} x {args.D} {dname}, {args.missing:.0%} missing, N={args.N}"
        print(f"\n## {title}: forward moves {fb / 1e6:.1f} MB, forward+backward {(fb + bb) / 1e6:.1f} MB\n")
        print(run_dtype(prob, args.device, copy_bw, args.reps, args.json, title))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
