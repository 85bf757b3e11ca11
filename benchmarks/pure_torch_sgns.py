"""A typical pure-PyTorch skip-gram with negative sampling, as tutorials write it — the baseline of bench_sgns.

Written to be a fair baseline, not a strawman:
- vocabulary with min_count, sorted by frequency; corpus encoded once to one int64 tensor (+ sentence ids);
- frequent-word sub-sampling per epoch with word2vec's keep probability, vectorised (torch.rand);
- dynamic window (shrunk at random per center word, as word2vec), pairs generated per batch of center words
  with tensor ops (one mask per offset), never crossing sentence boundaries;
- negatives drawn with torch.multinomial over unigram^0.75, `negative` per pair;
- two nn.Embedding(sparse=True) tables (input uniform +-0.5/dim, output zeros, as word2vec), loss
  -log s(u.v) - sum log s(-u.n) summed over the batch, plain torch.optim.SGD on the sparse gradients, learning
  rate decaying linearly from alpha to min_alpha over the whole run (per batch);
- torch.set_num_threads(threads).

Usage: python benchmarks/pure_torch_sgns.py CORPUS [--epochs 5 ...] [--max-seconds S] [--save out.pt]
With --max-seconds, training stops after that many seconds of training (the learning rate still decays as
if the full run were done): use it to measure words/s when 5 epochs would take too long.
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_corpus(path: str):
    """Tokenised sentences (whitespace split, one sentence per line; .gz read transparently)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            toks = line.split()
            if toks:
                yield toks


def build_vocab(path: str, min_count: int):
    counts = collections.Counter()
    for toks in read_corpus(path):
        counts.update(toks)
    items = sorted(((w, c) for w, c in counts.items() if c >= min_count), key=lambda x: (-x[1], x[0]))
    words = [w for w, _ in items]
    freq = torch.tensor([c for _, c in items], dtype=torch.float64)
    return words, freq, sum(counts.values())


def encode(path: str, index: dict):
    ids, sent = [], []
    s = 0
    for toks in read_corpus(path):
        row = [index[t] for t in toks if t in index]
        if row:
            ids.extend(row)
            sent.extend([s] * len(row))
            s += 1
    return torch.tensor(ids, dtype=torch.int64), torch.tensor(sent, dtype=torch.int64)


class SkipGramNS(nn.Module):
    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.in_embed = nn.Embedding(vocab_size, dim, sparse=True)
        self.out_embed = nn.Embedding(vocab_size, dim, sparse=True)
        nn.init.uniform_(self.in_embed.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.out_embed.weight)

    def forward(self, centers, contexts, negatives):
        u = self.in_embed(centers)  # [P, D]
        o = self.out_embed(torch.cat([contexts.unsqueeze(1), negatives], 1))  # [P, 1 + K, D]: one sparse grad
        s = torch.bmm(o, u.unsqueeze(2)).squeeze(2)  # [P, 1 + K]
        s = torch.cat([s[:, :1], -s[:, 1:]], 1)  # label +1 for the context, -1 for the negatives
        return -F.logsigmoid(s).sum()


def make_pairs(ids, sent, pos, window: int, gen: torch.Generator):
    """(center, context) ids for the centers at positions `pos` with a randomly shrunk window each."""
    n = ids.numel()
    b = torch.randint(1, window + 1, (pos.numel(),), generator=gen)
    cs, xs = [], []
    for off in range(-window, window + 1):
        if off == 0:
            continue
        q = pos + off
        ok = (b >= abs(off)) & (q >= 0) & (q < n)
        q = q.clamp(0, n - 1)
        ok &= sent[q] == sent[pos]
        cs.append(ids[pos[ok]])
        xs.append(ids[q[ok]])
    return torch.cat(cs), torch.cat(xs)


def train(path, *, dim=100, window=5, negative=5, sample=1e-4, min_count=5, epochs=5, alpha=0.025,
          min_alpha=0.0001, threads=2, seed=1, batch=1024, ns_exponent=0.75, max_seconds=None, log=print):
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    words, freq, raw_total = build_vocab(path, min_count)
    ids, sent = encode(path, {w: i for i, w in enumerate(words)})
    prep_s = time.perf_counter() - t0
    total = freq.sum()
    thr = sample * total
    keep = ((freq / thr).sqrt() + 1) * thr / freq  # word2vec's keep probability (>= 1 means always)
    keep = keep.clamp(max=1.0).float()
    noise = (freq ** ns_exponent).float()
    model = SkipGramNS(len(words), dim)
    opt = torch.optim.SGD(model.parameters(), lr=alpha)
    corpus_words = ids.numel()
    planned = epochs * corpus_words
    done = 0  # raw (pre-sub-sampling) corpus words processed
    loss_sum, pairs_sum = 0.0, 0
    t_train = time.perf_counter()
    stopped = False
    for epoch in range(epochs):
        kept = (torch.rand(corpus_words, generator=gen) < keep[ids]).nonzero().squeeze(1)
        e_ids, e_sent = ids[kept], sent[kept]
        n = e_ids.numel()
        raw_per_kept = corpus_words / max(n, 1)
        for start in range(0, n, batch):
            pos = torch.arange(start, min(start + batch, n))
            centers, contexts = make_pairs(e_ids, e_sent, pos, window, gen)
            if centers.numel():
                negs = torch.multinomial(noise, centers.numel() * negative, replacement=True, generator=gen)
                lr = max(min_alpha, alpha - (alpha - min_alpha) * done / planned)
                for g in opt.param_groups:
                    g["lr"] = lr
                opt.zero_grad(set_to_none=True)
                loss = model(centers, contexts, negs.view(-1, negative))
                loss.backward()
                opt.step()
                loss_sum += float(loss.detach())
                pairs_sum += centers.numel()
            done += int(round(pos.numel() * raw_per_kept))
            if max_seconds is not None and time.perf_counter() - t_train > max_seconds:
                stopped = True
                break
        if stopped:
            break
        log(f"epoch {epoch + 1}: loss/pair {loss_sum / max(pairs_sum, 1):.4f}, {done / (time.perf_counter() - t_train):,.0f} words/s")
    train_s = time.perf_counter() - t_train
    return {
        "words": words,
        "matrix": model.in_embed.weight.detach(),
        "raw_words": done,
        "train_s": train_s,
        "prep_s": prep_s,
        "words_per_s": done / train_s,
        "complete": not stopped,
        "epochs_done": done / corpus_words,
        "loss_per_pair": loss_sum / max(pairs_sum, 1),
        "raw_corpus_words": raw_total,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("corpus")
    for name, typ, default in [("dim", int, 100), ("window", int, 5), ("negative", int, 5), ("sample", float, 1e-4),
                               ("min-count", int, 5), ("epochs", int, 5), ("alpha", float, 0.025),
                               ("min-alpha", float, 0.0001), ("threads", int, 2), ("seed", int, 1),
                               ("batch", int, 1024), ("max-seconds", float, None)]:
        p.add_argument(f"--{name}", type=typ, default=default)
    p.add_argument("--save", help="write {'words', 'matrix'} with torch.save")
    a = p.parse_args(argv)
    r = train(a.corpus, dim=a.dim, window=a.window, negative=a.negative, sample=a.sample, min_count=a.min_count,
              epochs=a.epochs, alpha=a.alpha, min_alpha=a.min_alpha, threads=a.threads, seed=a.seed, batch=a.batch,
              max_seconds=a.max_seconds)
    if a.save:
        torch.save({"words": r["words"], "matrix": r["matrix"]}, a.save)
    print(json.dumps({k: v for k, v in r.items() if k not in ("words", "matrix")}))


if __name__ == "__main__":
    main()
