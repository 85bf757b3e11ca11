"""The sub-word skip-gram check of issue 13 (run by benchmarks/gpu/check.sh on the device machine): the Triton
kernel ``word2vec_subword_train_triton`` against the C++ CPU op on the device, then words/s of both.

Check (always first): one sentence per chunk, ``num_threads=1``, one negative per pair (no target can repeat
within a pair, the only place the two differ): the CPU op and the Triton kernel make the same draws, so the
stats must be equal and the three tables within float32 rounding (``max abs err``); exit status 1 otherwise.
The kernel is marked unverified (``embedfast._backend.TRITON_UNVERIFIED``) until this has passed on a GPU.

Speed: a generated Zipf corpus of --tokens ids over --vocab words (sentences of 5..40 tokens, drawn on the
device), each word a random string of 3..12 letters whose n-grams (minn 3, maxn 6, 2,000,000 buckets: fastText's
rule, ``fasttext_ngram_buckets``) make its bag; dim 100, window 5, negative 5, sample 1e-4, lr 0.05 (the issue's
settings; --buckets for the dry run), one pass in chunks of --chunk tokens after a warm-up chunk. The CPU row
runs a prefix (--baseline-tokens) with every CPU thread. Bytes: per kept center its bag rows are read and
written once (2 x bag x dim x 4), per pair the targets' output rows (2 x (1 + negative) x dim x 4): that floor /
time is the "GB/s (floor)" column.

    python benchmarks/gpu/bench_subword.py [--tokens 5000000]
    TRITON_INTERPRET=1 python benchmarks/gpu/bench_subword.py --device cpu --tokens 600 --baseline-tokens 600 \
        --buckets 5000     # dry run (Triton's interpreter: tiny sizes)
"""
from __future__ import annotations

import argparse
import datetime
import os
import random
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from _common import commit  # noqa: E402
from bench_sgns import chunk_bounds, zipf_corpus  # noqa: E402
from timing import table, time_chunks  # noqa: E402

from embedfast import ops  # noqa: E402
from embedfast._backend import has_triton  # noqa: E402
from embedfast._vocab import encode_words  # noqa: E402
from embedfast.vectors.ops import fasttext_ngram_buckets  # noqa: E402
from embedfast.word2vec import keep_probabilities  # noqa: E402

HP = dict(dim=100, window=5, negative=5, sample=1e-4, alpha=0.05, min_alpha=1e-4, minn=3, maxn=6, buckets=2_000_000)
HEADER = ["backend", "tokens timed", "seconds", "M words/s", "pairs/s (M)", "GB/s (floor)", "x cpu", "loss/pair"]


def ngram_tables(vocab: int, seed: int = 0, buckets: int = HP["buckets"]):
    """(offsets int64 [vocab + 1], buckets int32) of random words of 3..12 letters under fastText's rule."""
    rng = random.Random(seed)
    words, seen = [], set()
    while len(words) < vocab:
        w = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 12)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    off, bk = fasttext_ngram_buckets(*encode_words(words), HP["minn"], HP["maxn"], buckets)
    return off, bk.to(torch.int32)


def make_tables(V: int, B: int, device: str, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    w_in = (torch.rand(V, HP["dim"], generator=g) - 0.5) / HP["dim"]
    w_ng = (torch.rand(B, HP["dim"], generator=g) - 0.5) / HP["dim"]
    w_out = (torch.rand(V, HP["dim"], generator=g) - 0.5) / HP["dim"]
    return w_in.to(device), w_ng.to(device), w_out.to(device)


def check(device: str, buckets: int, cases: int = 3, sentences: int = 6) -> list:
    """Rows [case, pairs, stats equal, max abs err, max change] of the Triton kernel against the CPU op (one
    sentence a call, tables drawn at the scale of a trained model); the tables must agree within
    atol 2e-5 + rtol 1e-4 (float32 rounding of sums in another order)."""
    rows = []
    for case in range(cases):
        V = 50 + 17 * case
        ids, off, counts = zipf_corpus(40 * sentences, V, "cpu", seed=case)
        ng_off, ng = ngram_tables(V, seed=case, buckets=buckets)
        keep = keep_probabilities(counts, 1e-2)
        thr, alias = ops.sgns_unigram_table(counts, 0.75)
        g = torch.Generator().manual_seed(case)
        start = [torch.randn(n, HP["dim"], generator=g) * 0.3 for n in (V, buckets, V)]
        cpu = [t.clone() for t in start]
        dev = [t.to(device, copy=True) for t in start]
        same, pairs = True, 0.0
        for s in range(min(sentences, off.numel() - 1)):
            sl = off[s:s + 2]
            kw = dict(window=HP["window"], negative=1, alpha=HP["alpha"], min_alpha=HP["min_alpha"],
                      words_done=int(sl[0]), total_words=40 * sentences, seed=case, chunk=s, num_threads=1,
                      exact_sigmoid=True)
            a = ops.word2vec_subword_train(*cpu, ids, sl, keep, thr, alias, ng_off, ng, backend="cpu", **kw)
            b = ops.word2vec_subword_train(*dev, *(t.to(device) for t in (ids, sl, keep, thr, alias, ng_off, ng)),
                                           backend="triton", **kw).cpu()
            same &= bool(torch.allclose(a[1:], b[1:], rtol=1e-9)) and abs(float(a[0] - b[0])) <= 1e-4 * abs(float(a[0]))
            pairs += float(a[1])
        close = all(torch.allclose(x.cpu(), y, atol=2e-5, rtol=1e-4) for x, y in zip(dev, cpu))
        err = max(float((x.cpu() - y).abs().max()) for x, y in zip(dev, cpu))
        change = max(float((y - t).abs().max()) for y, t in zip(cpu, start))
        rows.append([f"V={V}", pairs, same and close, err, change])
    return rows


def time_op(backend: str, device: str, ids, off, counts, ng_off, ng, buckets: int, chunk: int, limit: int,
            threads: int):
    """(tokens, seconds, summed stats) of one pass of word2vec_subword_train over the first `limit` tokens."""
    V = counts.numel()
    w_in, w_ng, w_out = make_tables(V, buckets, device)
    keep = keep_probabilities(counts.cpu(), HP["sample"]).to(device)
    thr, alias = (t.to(device) for t in ops.sgns_unigram_table(counts.cpu(), 0.75))
    ng_off, ng = ng_off.to(device), ng.to(device)
    bounds = chunk_bounds(off, chunk, limit)
    total = int(off[bounds[-1]] - off[bounds[0]])

    def run(k):
        s0, s1 = bounds[k], bounds[k + 1]
        return ops.word2vec_subword_train(w_in, w_ng, w_out, ids, off[s0:s1 + 1], keep, thr, alias, ng_off, ng,
                                          window=HP["window"], negative=HP["negative"], alpha=HP["alpha"],
                                          min_alpha=HP["min_alpha"], words_done=int(off[s0]),
                                          total_words=max(total, 1), seed=0, chunk=k, num_threads=threads,
                                          backend=backend)

    dt, stats = time_chunks(run, len(bounds) - 1, device)
    return total, dt, stats


def speed(args, ng_off, ng) -> str:
    ids, off, counts = zipf_corpus(args.tokens, args.vocab, args.device)
    bag = float((ng_off[1:] - ng_off[:-1]).double().mean()) + 1.0
    rows = []
    if has_triton(args.device):
        limit = args.tokens if args.device == "cuda" else args.baseline_tokens
        rows.append(("embedfast triton",) + time_op("triton", args.device, ids, off, counts, ng_off, ng, args.buckets,
                                                    args.chunk, limit, 1))
    rows.append(("C++ CPU op",) + time_op("cpu", "cpu", ids.cpu(), off.cpu(), counts.cpu(), ng_off, ng, args.buckets,
                                          args.chunk, args.baseline_tokens, torch.get_num_threads()))
    cpu_rate = rows[-1][1] / rows[-1][2]
    out = []
    for label, n, dt, st in rows:
        pairs, kept = float(st[1]), float(st[5])
        floor = (pairs * 2 * (1 + HP["negative"]) + kept * 2 * bag) * HP["dim"] * 4
        out.append([label, n, dt, n / dt / 1e6, pairs / dt / 1e6, floor / dt / 1e9, n / dt / cpu_rate,
                    float(st[0]) / max(pairs, 1.0)])
    return table(HEADER, out, args.json, "subword speed")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--tokens", type=int, default=5_000_000)
    ap.add_argument("--vocab", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=2_000_000)
    ap.add_argument("--buckets", type=int, default=HP["buckets"])
    ap.add_argument("--baseline-tokens", type=int, default=1_000_000, help="tokens timed for the CPU row")
    ap.add_argument("--check-cases", type=int, default=3, help="vocabularies of the check against the CPU op")
    ap.add_argument("--check-sentences", type=int, default=6, help="sentences (calls) per check case")
    ap.add_argument("--no-speed", action="store_true", help="only the check against the CPU op")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_subword: no CUDA device here (use --device cpu for a dry run)", file=sys.stderr)
        return 2
    if not has_triton(args.device):
        print(f"bench_subword: the Triton kernels cannot run on {args.device} here (CPU: TRITON_INTERPRET=1)",
              file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU (dry run, Triton's interpreter)"
    print(f"# sub-word skip-gram | {name} | {datetime.date.today()} | commit {commit()} | torch {torch.__version__} "
          f"| dim 100, window 5, negative 5, sample 1e-4, minn 3, maxn 6")
    rows = check(args.device, 997, args.check_cases, args.check_sentences)
    print("\n## Triton kernel vs the C++ CPU op (one sentence a call, negative 1: the same draws)\n")
    print(table(["case", "pairs", "equal", "max abs err", "max change"], rows, args.json, "subword check"))
    ok = all(r[2] and r[1] > 0 and r[4] > 0 for r in rows)
    print(f"\ncheck: {'PASSED' if ok else 'FAILED'}")
    if not args.no_speed:
        vocab = args.vocab if args.device == "cuda" else min(args.vocab, 500)
        args.vocab = vocab
        ng_off, ng = ngram_tables(vocab, buckets=args.buckets)
        print(f"\n## Zipf corpus, {args.tokens:,} tokens, vocab {vocab:,}, {args.buckets:,} buckets\n")
        print(speed(args, ng_off, ng))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
