"""SGNS on GPUs and across processes.

Two parts, side by side in one run each:

1. ``--gpu`` (needs CUDA): words/s of the fused SGNS op per backend -- the CUDA kernel (when embedfast was
   built with one), the Triton kernel, a pure-PyTorch GPU SGNS (benchmarks/word2vec/pure_torch_sgns.py on the GPU) and the
   C++ CPU kernel -- on a generated Zipf corpus (benchmarks/word2vec/gen_corpus.py) and the embedded corpus, dim 100,
   window 5, negative 5, sample 1e-4, median of --repeats timed passes of one epoch after a warm-up chunk.
   Without a GPU it says so and exits 2.
2. ``--ranks`` (CPU, gloo): words/s of data-parallel training with 1 and 2 processes (1 thread each) on the
   embedded corpus, and the quality of each result (WordSim353 / SimLex-999 Spearman, Google analogy accuracy
   with restrict_vocab=30000).

Usage: python benchmarks/word2vec/bench_sgns_gpu.py --ranks [--epochs 5]
       python benchmarks/word2vec/bench_sgns_gpu.py --gpu [--zipf-tokens 100000000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # this family's scripts, then benchmarks/_common.py
from _common import quality as standard_quality  # noqa: E402  (also puts the checkout first on sys.path)

HP = dict(dim=100, window=5, negative=5, sample=1e-4, min_count=5, alpha=0.025, min_alpha=1e-4, seed=1)


# ---------------------------------------------------------------------------------------------------------
# GPU
# ---------------------------------------------------------------------------------------------------------


def _time_backend(w2v, backend: str, device: str, repeats: int) -> float:
    """Median words/s of one epoch of the fused op on `backend` (tables re-initialised, same corpus)."""
    import embedfast
    from embedfast import ops
    from embedfast.word2vec import keep_probabilities

    ids, offsets, bounds, _ = w2v.encoded_corpus()
    dev = torch.device(device)
    keep = keep_probabilities(w2v.counts, HP["sample"]).to(dev)
    thr, alias = (t.to(dev) for t in ops.sgns_unigram_table(w2v.counts, 0.75))
    ids_d, off_d = ids.to(dev), offsets.to(dev)
    n = int(ids.numel())
    rates = []
    for rep in range(repeats + 1):
        w_in = w2v.w_in.to(dev, copy=True)
        w_out = torch.zeros_like(w_in)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for k in range(len(bounds) - 1):
            s0, s1 = bounds[k], bounds[k + 1]
            ops.sgns_train(w_in, w_out, ids_d, off_d[s0:s1 + 1], keep, thr, alias, window=HP["window"],
                           negative=HP["negative"], alpha=HP["alpha"], min_alpha=HP["min_alpha"],
                           words_done=int(offsets[s0]), total_words=n, seed=rep, chunk=k,
                           num_threads=torch.get_num_threads(), shared_negatives=True, backend=backend)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if rep > 0:  # the first pass compiles / warms up
            rates.append(n / (time.perf_counter() - t0))
    del embedfast
    return statistics.median(rates)


def run_gpu(args) -> int:
    if not torch.cuda.is_available():
        print("bench_sgns_gpu --gpu: no CUDA device on this machine; the GPU figures (CUDA/Triton kernels vs "
              "pure PyTorch vs CPU) need a GPU session. Nothing was measured.")
        return 2
    import embedfast
    from embedfast.data import default_corpus_path
    from embedfast._backend import has_cuda_kernel, triton_state

    import gen_corpus
    import pure_torch_sgns

    zipf = gen_corpus.ensure(os.path.join(tempfile.gettempdir(), f"embedfast_zipf_{args.zipf_tokens}.txt"),
                             args.zipf_tokens)
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    for name, path in (("embedded", default_corpus_path()), (f"zipf-{args.zipf_tokens}", zipf)):
        w2v = embedfast.Word2Vec(**HP, epochs=1, chunk_words=args.chunk_words)
        w2v.build_vocab(path)
        w2v.train(path, progress=False, max_words=0)  # encode only
        rows = []
        if has_cuda_kernel("sgns_train"):
            rows.append(("cuda kernel", _time_backend(w2v, "cuda", "cuda", args.repeats)))
        if triton_state("embedfast.word2vec.triton") == 1:
            rows.append(("triton kernel", _time_backend(w2v, "triton", "cuda", args.repeats)))
        rows.append(("C++ CPU kernel", _time_backend(w2v, "cpu", "cpu", 1)))
        # benchmarks/word2vec/pure_torch_sgns.py (the pure-PyTorch baseline) runs on the CPU only; its GPU row needs a
        # device= argument there (not verified without a GPU, so not guessed here)
        if "device" in pure_torch_sgns.train.__code__.co_varnames:
            res = pure_torch_sgns.train(path, **{k: v for k, v in HP.items() if k != "seed"}, epochs=1,
                                        max_seconds=args.max_seconds, log=lambda *a: None, device="cuda")
            rows.append(("pure PyTorch (GPU)", res["words_per_s"]))
        else:
            print("  pure-PyTorch GPU row skipped: benchmarks/word2vec/pure_torch_sgns.py has no device= argument yet")
        print(f"\n{name}: {int(w2v.encoded_corpus()[0].numel()):,} tokens, vocab {len(w2v.words):,}")
        for label, r in rows:
            print(f"  {label:<22} {r / 1e6:10.2f} M words/s")
    return 0


# ---------------------------------------------------------------------------------------------------------
# CPU ranks (gloo)
# ---------------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_worker(rank, world, port, path, out, epochs, sync_every, combine):
    import torch.distributed as dist

    import embedfast
    from embedfast.word2vec.distributed import train_distributed

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        w2v = embedfast.Word2Vec(**HP, epochs=epochs, threads=1)
        w2v.build_vocab(path)
        train_distributed(w2v, path, sync_every=sync_every, combine=combine, progress=False)
        if rank == 0:
            torch.save(dict(words=w2v.words, w_in=w2v.w_in, stats=w2v.dist_stats,
                            tokens=int(w2v.encoded_corpus()[0].numel())), out)
    finally:
        dist.destroy_process_group()


def _quality(words, matrix) -> dict:
    from embedfast import Vectors

    q = standard_quality(Vectors(words, matrix))
    return {k: q[k] for k in ("ws353", "simlex", "analogy")}


def run_ranks(args) -> int:
    import torch.multiprocessing as mp

    from embedfast.data import default_corpus_path

    path = default_corpus_path()
    print(f"gloo data-parallel SGNS on the embedded corpus, {args.epochs} epochs, dim 100, window 5, negative 5, "
          f"sample 1e-4, min_count 5, 1 thread per rank, sync every {args.sync_every:,} tokens per rank, median of "
          f"{args.repeats} runs")
    print(f"{'ranks':>5} {'combine':>7} {'train s':>8} {'words/s':>10} {'speed-up':>8} {'sync s':>7} "
          f"{'WS353':>7} {'SimLex':>7} {'analogy':>8}")
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for world, combine in ((1, "mean"), (2, "mean"), (2, "sum")):
            runs = []
            for rep in range(args.repeats):
                out = os.path.join(tmp, f"r{world}{combine}{rep}.pt")
                mp.start_processes(_rank_worker, args=(world, _free_port(), path, out, args.epochs,
                                                       args.sync_every, combine), nprocs=world, join=True,
                                   start_method="spawn")
                runs.append(torch.load(out, weights_only=False))
            runs.sort(key=lambda r: r["stats"]["words_per_second"])
            r = runs[len(runs) // 2]  # the median run (the result is the same in every run: fixed seeds)
            st = r["stats"]
            wps = st["words_per_second"]
            base = base or wps
            q = _quality(r["words"], r["w_in"])
            print(f"{world:>5} {combine:>7} {st['seconds']:8.2f} {wps:10,.0f} {wps / base:8.2f} "
                  f"{st['sync_seconds']:7.2f} {q['ws353']:7.3f} {q['simlex']:7.3f} {100 * q['analogy']:7.2f}%")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", action="store_true", help="GPU kernels vs pure PyTorch vs CPU (needs CUDA)")
    ap.add_argument("--ranks", action="store_true", help="1 vs 2 gloo ranks on the CPU")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--sync-every", type=int, default=1_000_000)
    ap.add_argument("--zipf-tokens", type=int, default=100_000_000)
    ap.add_argument("--chunk-words", type=int, default=2_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-seconds", type=float, default=60.0, help="cap on the pure-PyTorch run")
    args = ap.parse_args(argv)
    if not (args.gpu or args.ranks):
        args.gpu = torch.cuda.is_available()
        args.ranks = True
    rc = 0
    if args.gpu:
        rc = run_gpu(args)
    if args.ranks:
        rc = run_ranks(args) or rc
    return rc


if __name__ == "__main__":
    sys.exit(main())
