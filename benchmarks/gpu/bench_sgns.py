"""The SGNS benchmark set of issue 16 (run by benchmarks/gpu/check.sh on the device machine): words/s of the fused
SGNS op on embedfast's CUDA kernel, its Triton kernel, a pure-PyTorch GPU SGNS and the C++ CPU kernel, and the
quality of CUDA training against the CPU kernel on the embedded corpus.

Speed: a generated Zipf corpus of --tokens token ids (exponent 1 over --vocab words, sentences of 5..40 tokens;
ids are drawn on the device, no text), dim 100, window 5, negative 5, sample 1e-4, shared negatives, one epoch in
chunks of --chunk tokens (as the trainer calls the op), after a warm-up chunk. The pure-PyTorch and CPU rows run
on a prefix of the corpus (--baseline-tokens), so that they fit the time box. Targets: CUDA >= 50M words/s on one
H200, >= 20x the pure-PyTorch GPU SGNS; Triton within 1.5x of CUDA.
Bytes: each trained (context, center) pair reads and writes at least the center's and the negatives' output rows
(2 x (1 + negative) x dim x 4 bytes, from the update T += G^T X) and each kept token's input row once (2 x dim x
4 with the context cache); the table shows that floor / time as the achieved bandwidth (roofline reasoning in
benchmarks/RESULTS.md).
Quality (--quality): Word2Vec on the embedded corpus, 5 epochs, CUDA vs CPU kernel: WS353 / SimLex-999 Spearman
and Google analogies at 30k (evaluation files from gensim's test data, or from $EMBEDFAST_EVAL_DIR); targets:
within 0.02 / 0.02 / 1 point.

    python benchmarks/gpu/bench_sgns.py [--tokens 100000000] [--quality]
    python benchmarks/gpu/bench_sgns.py --device cpu --tokens 200000     # dry run: the same table on the CPU
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from _common import commit  # noqa: E402
from timing import table, time_chunks  # noqa: E402

from embedfast import ops  # noqa: E402
from embedfast._backend import has_cuda_kernel, triton_state  # noqa: E402
from embedfast.word2vec import keep_probabilities  # noqa: E402

HP = dict(dim=100, window=5, negative=5, sample=1e-4, alpha=0.025, min_alpha=1e-4)
HEADER = ["backend", "tokens timed", "seconds", "M words/s", "pairs/s (M)", "GB/s (floor)", "x pure torch", "x cuda",
          "loss/pair"]


def zipf_corpus(tokens: int, vocab: int, device: str, seed: int = 0):
    """(ids int32, sentence offsets int64, counts int64 [vocab]) of a Zipf(1) corpus drawn on `device`."""
    g = torch.Generator(device=device).manual_seed(seed)
    p = 1.0 / torch.arange(1, vocab + 1, dtype=torch.float64, device=device)
    cdf = torch.cumsum(p / p.sum(), 0)
    u = torch.rand(tokens, generator=g, dtype=torch.float64, device=device)
    ids = torch.searchsorted(cdf, u).clamp_(max=vocab - 1).to(torch.int32)
    lengths = torch.randint(5, 41, (tokens // 5 + 1,), generator=g, device=device)
    ends = torch.cumsum(lengths, 0)
    ends = ends[ends < tokens]
    off = torch.cat([torch.zeros(1, dtype=torch.int64, device=device), ends, torch.full((1,), tokens, device=device)])
    counts = torch.bincount(ids.long(), minlength=vocab).clamp_(min=1)
    return ids, off, counts


def chunk_bounds(off: torch.Tensor, chunk: int, limit: int) -> list[int]:
    """Sentence indices where the chunks of about `chunk` tokens start, over the first `limit` tokens."""
    o = off.cpu()
    n = min(int(o[-1]), limit)
    targets = torch.arange(0, n, chunk, dtype=torch.int64)
    b = torch.searchsorted(o, targets).tolist()
    last = int(torch.searchsorted(o, torch.tensor([n])).item())
    return sorted(set(b + [last]))


def time_op(backend: str, device: str, ids, off, counts, chunk: int, limit: int, threads: int):
    """(tokens, seconds, stats sum) of one pass of sgns_train over the first `limit` tokens."""
    V = counts.numel()
    g = torch.Generator().manual_seed(1)
    w_in = ((torch.rand(V, HP["dim"], generator=g) - 0.5) / HP["dim"]).to(device)
    w_out = torch.zeros_like(w_in)
    keep = keep_probabilities(counts.cpu(), HP["sample"]).to(device)
    thr, alias = (t.to(device) for t in ops.sgns_unigram_table(counts.cpu(), 0.75))
    bounds = chunk_bounds(off, chunk, limit)
    total = int(off[bounds[-1]] - off[bounds[0]])

    def run(k):
        s0, s1 = bounds[k], bounds[k + 1]
        return ops.sgns_train(w_in, w_out, ids, off[s0:s1 + 1], keep, thr, alias, window=HP["window"],
                              negative=HP["negative"], alpha=HP["alpha"], min_alpha=HP["min_alpha"],
                              words_done=int(off[s0]), total_words=max(total, 1), seed=0, chunk=k,
                              num_threads=threads, shared_negatives=True, backend=backend)

    dt, stats = time_chunks(run, len(bounds) - 1, device)
    return total, dt, stats


def pure_torch_sgns(device: str, ids, off, counts, limit: int, batch: int = 1 << 20):
    """A vectorised pure-PyTorch SGNS on `device` (sub-sampling, shrunk windows within sentences, unigram^0.75
    negatives by torch.multinomial, SGD at the word2vec rate with index_add_) -> (tokens, seconds)."""
    V, D, W, NEG = counts.numel(), HP["dim"], HP["window"], HP["negative"]
    w_in = ((torch.rand(V, D, device=device) - 0.5) / D)
    w_out = torch.zeros_like(w_in)
    keep = keep_probabilities(counts.cpu(), HP["sample"]).to(device)
    noise = counts.to(device).double() ** 0.75
    n = min(limit, int(off[-1]))
    tok = ids[:n].long()
    sent = torch.searchsorted(off[1:], torch.arange(n, device=device), right=True)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    kept = torch.rand(n, device=device, dtype=torch.float64) < keep[tok]
    tok, sent = tok[kept], sent[kept]
    m = tok.numel()
    b = torch.randint(1, W + 1, (m,), device=device)
    for s in range(0, m, batch // (2 * W)):
        e = min(m, s + batch // (2 * W))
        pos = torch.arange(s, e, device=device)
        for o in [x for x in range(-W, W + 1) if x]:
            j = pos + o
            ok = (j >= 0) & (j < m) & (o <= b[s:e]) & (-o <= b[s:e])
            ok &= sent[j.clamp(0, m - 1)] == sent[s:e]
            c, x = tok[s:e][ok], tok[j[ok]]
            if c.numel() == 0:
                continue
            negs = torch.multinomial(noise, c.numel() * NEG, replacement=True).view(-1, NEG)
            u = w_in[x]
            tgt = torch.cat([c[:, None], negs], 1)
            v = w_out[tgt]
            f = torch.einsum("bd,bkd->bk", u, v)
            lab = torch.zeros_like(f)
            lab[:, 0] = 1
            g = HP["alpha"] * (lab - torch.sigmoid(f))
            w_in.index_add_(0, x, torch.einsum("bk,bkd->bd", g, v))
            w_out.index_add_(0, tgt.reshape(-1), (g[:, :, None] * u[:, None, :]).reshape(-1, D))
    if device == "cuda":
        torch.cuda.synchronize()
    return n, time.perf_counter() - t0


def speed(args) -> str:
    ids, off, counts = zipf_corpus(args.tokens, args.vocab, args.device)
    rows = []
    if args.device == "cuda":
        if has_cuda_kernel("sgns_train"):
            rows.append(("embedfast cuda",) + time_op("cuda", "cuda", ids, off, counts, args.chunk, args.tokens, 1))
        if triton_state("embedfast.word2vec.triton") == 1:
            rows.append(("embedfast triton",) + time_op("triton", "cuda", ids, off, counts, args.chunk,
                                                        args.triton_tokens, 1))
    rows.append(("pure PyTorch",) + pure_torch_sgns(args.device, ids, off, counts, args.baseline_tokens) + (None,))
    cpu_ids, cpu_off = ids.cpu(), off.cpu()
    rows.append(("C++ CPU kernel",) + time_op("cpu", "cpu", cpu_ids, cpu_off, counts.cpu(), args.chunk,
                                              args.baseline_tokens, torch.get_num_threads()))
    rate = {r[0]: r[1] / r[2] for r in rows}
    out = []
    for label, n, dt, st in rows:
        wps = n / dt
        pairs = float(st[1]) if st is not None else float("nan")
        kept = float(st[5]) if st is not None else float("nan")
        floor = (pairs * 2 * (1 + HP["negative"]) + kept * 2) * HP["dim"] * 4
        out.append([label, n, dt, wps / 1e6, pairs / dt / 1e6, floor / dt / 1e9,
                    wps / rate["pure PyTorch"], rate.get("embedfast cuda", float("nan")) / wps,
                    float(st[0]) / pairs if st is not None else float("nan")])
    return table(HEADER, out, args.json, "sgns speed")


def quality(args) -> str:
    import embedfast
    import embedfast.data as data
    from _common import quality as scores
    from embedfast import Vectors

    evdir = os.environ.get("EMBEDFAST_EVAL_DIR")
    if evdir:  # the device machine has no gensim: the evaluation files come along in this folder
        found = data.evaluation_file
        data.evaluation_file = lambda name: (os.path.join(evdir, name) if os.path.exists(os.path.join(evdir, name))
                                             else found(name))
    path = data.default_corpus_path()
    rows = []
    for label, kw in (("C++ CPU kernel", dict(backend="cpu", threads=torch.get_num_threads())),
                      ("embedfast cuda", dict(backend="cuda", device="cuda"))):
        if label.endswith("cuda") and (args.device != "cuda" or not has_cuda_kernel("sgns_train")):
            continue
        w2v = embedfast.Word2Vec(dim=100, window=5, negative=5, sample=1e-4, min_count=5, epochs=args.epochs, seed=1,
                                 **kw)
        t0 = time.perf_counter()
        w2v.train(path, progress=False)
        dt = time.perf_counter() - t0
        q = scores(Vectors(w2v.words, w2v.w_in.cpu()))
        rows.append([label, dt, q["ws353"], q["simlex"], 100 * q["analogy"]])
    if len(rows) == 2:
        rows.append(["cuda - cpu", rows[1][1] - rows[0][1]] + [rows[1][k] - rows[0][k] for k in (2, 3, 4)])
    return table(["trainer", "seconds", "WS353", "SimLex", "analogy@30k %"], rows, args.json, "sgns quality")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--tokens", type=int, default=100_000_000)
    ap.add_argument("--vocab", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=2_000_000)
    ap.add_argument("--triton-tokens", type=int, default=20_000_000, help="tokens timed for the Triton row")
    ap.add_argument("--baseline-tokens", type=int, default=2_000_000, help="tokens timed for torch / CPU rows")
    ap.add_argument("--quality", action="store_true")
    ap.add_argument("--no-speed", action="store_true", help="only the quality table")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_sgns: no CUDA device here (use --device cpu for a dry run)", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU (dry run)"
    print(f"# sgns | {name} | {datetime.date.today()} | commit {commit()} | torch {torch.__version__} | "
          f"dim 100, window 5, negative 5, sample 1e-4, shared negatives")
    if not args.no_speed:
        print(f"\n## Zipf corpus, {args.tokens:,} tokens, vocab {args.vocab:,}; targets: cuda >= 50 M words/s, "
              ">= 20x pure PyTorch, triton <= 1.5x cuda\n")
        print(speed(args))
    if args.quality:
        print(f"\n## quality on the embedded corpus, {args.epochs} epochs; target: |cuda - cpu| <= 0.02 / 0.02 / "
              "1 point\n")
        print(quality(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
