"""Benchmark: multi-source fusion (embedfast gather_bags) vs pure PyTorch, forward and forward+backward.

    python benchmarks/fusion/bench_fusion.py [--vocab 400000 --dim 300 --sources 3 --tokens 65536 --missing 0.15
                                       --threads 2 --repeats 7 --ids uniform|zipf --step --impls ... --modes ...]

Every (implementation, table mode) runs in a fresh subprocess. Peak memory: the peak resident set (VmHWM, reset
through /proc/self/clear_refs just before the timed calls) minus the resident set at that moment (inputs built,
no gradients held), i.e. the extra memory the forward (then forward+backward, gradients included) needs. Times are medians over --repeats after 2 warm-up calls.

Implementations (weights a = softmax(logits) learned, renormalised over the sources present):
  torch-stack       K x F.embedding, stacked [N, K, D], weighted sum (dense or sparse table grads)
  torch-bag         F.embedding_bag(mode="sum", per_sample_weights) over the concatenated tables, bags per call
  embedfast         MultiSourceEmbedding: gather_bags with per-vocabulary bags, ids straight in
  embedfast-call    gather_bags with bags built per call from index[ids] (the other design, for comparison)
  NAME-thp          NAME run with THP_MEM_ALLOC_ENABLE=1: torch's CPU allocator puts large blocks (the tables, outputs,
                    gradients) on transparent huge pages. embedfast's own large outputs use huge pages either way;
                    its -thp row shows what huge-page *tables* add.
Speed-ups are against the best pure-PyTorch row of the mode, once among the default runs and once including the
-thp runs. --step adds a third timing: forward + backward + torch.optim.SGD step (the optimizer reads every gradient
page, so gradient pages a backward leaves untouched are paid for there).
Table modes: frozen (only the logits learn), dense (trainable, dense grads), sparse (trainable, sparse grads).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # this family's scripts, then benchmarks/_common.py
from _common import reset_peak, run_json, status_kb  # noqa: E402

IMPLS = ["torch-stack", "torch-stack-thp", "torch-bag", "torch-bag-thp", "embedfast", "embedfast-thp", "embedfast-call"]
MODES = ["frozen", "dense", "sparse"]


def child(args) -> dict:
    import torch
    import torch.nn.functional as F

    import embedfast
    from embedfast.ops import gather_bags

    torch.set_num_threads(args.threads)
    impl = args.impl.removesuffix("-thp")
    if impl != args.impl and os.environ.get("THP_MEM_ALLOC_ENABLE") != "1":
        raise SystemExit(f"{args.impl}: run with THP_MEM_ALLOC_ENABLE=1 (the parent sets it)")
    g = torch.Generator().manual_seed(0)
    K, V, D, N = args.sources, args.vocab, args.dim, args.tokens
    trainable = args.mode != "frozen"
    sparse = args.mode == "sparse"
    tables = [torch.empty(V, D).normal_(generator=g) for _ in range(K)]
    index = torch.stack([torch.randperm(V, generator=g) for _ in range(K)], 1)
    index[torch.rand(V, K, generator=g) < args.missing] = -1
    if args.ids == "zipf":
        p = 1.0 / torch.arange(1, V + 1, dtype=torch.float64)
        ids = torch.multinomial(p / p.sum(), N, replacement=True, generator=g)
    else:
        ids = torch.randint(0, V, (N,), generator=g)
    grad_out = torch.empty(N, D).normal_(generator=g)
    logits = torch.zeros(K, requires_grad=True)
    base = torch.tensor([0] + [V] * (K - 1)).cumsum(0)

    if impl == "embedfast":
        mod = embedfast.MultiSourceEmbedding(tables, index, freeze_tables=not trainable, sparse=sparse)
        del tables
        params = [p for p in mod.parameters()]
        fwd = lambda: mod(ids)  # noqa: E731
    elif impl == "embedfast-call":
        ts = [t.requires_grad_(trainable) for t in tables]
        params = [logits] + (ts if trainable else [])

        def fwd():
            idx = index[ids]
            m = idx >= 0
            off = torch.zeros(N + 1, dtype=torch.int64)
            torch.cumsum(m.sum(1), 0, out=off[1:])
            src = torch.arange(K).expand(N, K)[m]
            return gather_bags(ts, torch.softmax(logits, 0), off, src, idx[m], torch.ones(src.numel()),
                               torch.arange(N), renormalize=True, sparse_grad=sparse)
    elif impl == "torch-stack":
        ts = [t.requires_grad_(trainable) for t in tables]
        params = [logits] + (ts if trainable else [])

        def fwd():
            idx = index[ids]
            m = idx >= 0
            emb = torch.stack([F.embedding(idx[:, k].clamp(min=0), ts[k], sparse=sparse) for k in range(K)], 1)
            w = torch.softmax(logits, 0) * m
            w = w / w.sum(1, keepdim=True).clamp_min(1e-30)
            return (w.unsqueeze(-1) * emb).sum(1)
    else:  # torch-bag: the tables live as one concatenated [K*V, D] table (built once, not timed)
        cat = torch.cat(tables)
        del tables
        cat.requires_grad_(trainable)
        params = [logits] + ([cat] if trainable else [])

        def fwd():
            idx = index[ids]
            m = idx >= 0
            flat = (idx + base)[m]
            w = torch.softmax(logits, 0) * m
            w = w / w.sum(1, keepdim=True).clamp_min(1e-30)
            off = torch.zeros(N, dtype=torch.int64)
            torch.cumsum(m.sum(1)[:-1], 0, out=off[1:])
            return F.embedding_bag(flat, cat, off, mode="sum", per_sample_weights=w[m], sparse=sparse)

    def fwdbwd():
        for p in params:
            p.grad = None
        out = fwd()
        out.backward(grad_out)
        return out

    opt = torch.optim.SGD(params, lr=1e-6)

    def step():
        fwdbwd()
        opt.step()

    res = dict(impl=args.impl, mode=args.mode)
    import gc

    for name, fn in (("fwd", fwd), ("fwdbwd", fwdbwd)) + ((("step", step),) if args.step else ()):
        for p in params:
            p.grad = None
        gc.collect()
        rss0 = status_kb("VmRSS")
        reset_peak()
        times = []
        for i in range(args.repeats + 2):
            t0 = time.perf_counter()
            with torch.no_grad() if name == "fwd" else torch.enable_grad():
                fn()
            if i >= 2:
                times.append(time.perf_counter() - t0)
        res[name + "_ms"] = 1e3 * statistics.median(times)
        res[name + "_peak_mb"] = (status_kb("VmHWM") - rss0) / 1024
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", type=int, default=400_000)
    ap.add_argument("--dim", type=int, default=300)
    ap.add_argument("--sources", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=65_536)
    ap.add_argument("--missing", type=float, default=0.15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--ids", choices=["uniform", "zipf"], default="uniform")
    ap.add_argument("--impls", default=",".join(IMPLS))
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--step", action="store_true", help="also time forward + backward + SGD step")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--impl", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.impl:
        print(json.dumps(child(args)))
        return
    rows = []
    for mode in args.modes.split(","):
        for impl in args.impls.split(","):
            cmd = [sys.executable, __file__] + [a for a in sys.argv[1:]] + ["--impl", impl, "--mode", mode]
            env = dict(os.environ)
            env.pop("THP_MEM_ALLOC_ENABLE", None)
            if impl.endswith("-thp"):
                env["THP_MEM_ALLOC_ENABLE"] = "1"
            try:
                rows.append(run_json(cmd[1:], env=env, what=f"{impl}/{mode}"))
            except RuntimeError as exc:
                raise SystemExit(str(exc)) from None
            r = rows[-1]
            st = f"  +SGD {r['step_ms']:8.1f} ms" if "step_ms" in r else ""
            print(f"{mode:<7}{impl:<16}fwd {r['fwd_ms']:8.1f} ms  fwd+bwd {r['fwdbwd_ms']:8.1f} ms{st}  "
                  f"peak +{r['fwd_peak_mb']:7.0f} / +{r['fwdbwd_peak_mb']:7.0f} MB", flush=True)
    print(f"\nK={args.sources} x {args.vocab}x{args.dim}, {args.missing:.0%} missing, {args.tokens} {args.ids} ids, "
          f"{args.threads} threads, median of {args.repeats}")
    sgd = " fwd+bwd+SGD ms |" if args.step else ""
    print(f"| tables | implementation | forward ms | fwd+bwd ms |{sgd} fwd+bwd speed-up vs best default torch | "
          f"vs best torch incl. THP | peak extra MB (fwd / fwd+bwd) |")
    print("|---|---|---:|---:|" + ("---:|" if args.step else "") + "---:|---:|---:|")
    for mode in args.modes.split(","):
        mr = [r for r in rows if r["mode"] == mode]
        best = min((r["fwdbwd_ms"] for r in mr if r["impl"] in ("torch-stack", "torch-bag")), default=float("nan"))
        best_thp = min((r["fwdbwd_ms"] for r in mr if r["impl"].startswith("torch")), default=float("nan"))
        for r in mr:
            st = f" {r['step_ms']:.1f} |" if args.step else ""
            print(f"| {mode} | {r['impl']} | {r['fwd_ms']:.1f} | {r['fwdbwd_ms']:.1f} |{st} {best / r['fwdbwd_ms']:.2f}x | "
                  f"{best_thp / r['fwdbwd_ms']:.2f}x | {r['fwd_peak_mb']:.0f} / {r['fwdbwd_peak_mb']:.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(args=vars(args), rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
