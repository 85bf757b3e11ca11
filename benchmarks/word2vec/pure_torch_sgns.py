"""A typical pure-PyTorch skip-gram with negative sampling, as tutorials write it — the baseline of bench_sgns.

Written to be a fair baseline, not a strawman:
- vocabulary with min_count, sorted by frequency; corpus encoded once to one int64 tensor (+ sentence ids);
- frequent-word sub-sampling per epoch with word2vec's keep probability, vectorised (torch.rand);
- dynamic window (shrunk at random per center word, as word2vec), pairs generated for 100k centers at a time
  with tensor ops (one mask per offset), never crossing sentence boundaries, shuffled, then consumed in
  batches of `batch` (center, context) pairs;
- negatives drawn with torch.multinomial over unigram^0.75, `negative` per pair;
- two nn.Embedding(sparse=True) tables (input uniform +-0.5/dim, output zeros, as word2vec), loss
  -log s(u.v) - sum log s(-u.n), autograd, learning rate decaying linearly over the whole run (per batch);
- torch.set_num_threads(threads).

The update (chosen on time-boxed 40 s runs on the real corpus, 2 threads, WS353 after the box; the box was
shared with other jobs, load average 2.8-3.6, so words/s of single trials swing by 2-4x):
- plain SGD on the summed loss at word2vec's alpha 0.025 (as word2vec, but over a batch): frequent rows
  receive hundreds of summed gradients per step and the vectors collapse (all cosines near 1): WS353 0.02 at
  4096 pairs/batch, -0.04 at 512 (and 512 is 5x slower per word: Python overhead per step);
- torch.optim.SparseAdam on the mean loss (what most PyTorch tutorials use): 4096 pairs, lr 0.003 -> WS353
  0.12 after 0.73 epochs; 4096 pairs, lr 0.01 -> 0.29 after 0.53 epochs; **16384 pairs, lr 0.01 -> 0.33 after
  1.59 epochs** (larger batches amortise the per-step Python/autograd overhead and SparseAdam's coalesce, whose
  cost grows with unique rows, i.e. sub-linearly in the batch); 16384 pairs, lr 0.02 -> 0.10 after 0.35 epochs.
  So the default is SparseAdam, mean loss, 16384 pairs per batch, lr 0.01 decayed linearly by the factor
  min_alpha/alpha over the run. `--optimizer sgd` keeps the word2vec-rate SGD variant for comparison.

Usage: python benchmarks/word2vec/pure_torch_sgns.py CORPUS [--epochs 5 ...] [--max-seconds S] [--save out.pt]
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

DEFAULT_OPTIMIZER = "sparse_adam"
DEFAULT_ADAM_LR = 0.01
DEFAULT_BATCH = 16384  # (center, context) pairs per step
CHUNK_CENTERS = 100_000  # kept center words whose pairs are generated (and shuffled) together


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
    """Two sparse embedding tables; forward returns the mean SGNS loss over a batch of (center, context) pairs."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.in_embed = nn.Embedding(vocab_size, dim, sparse=True)
        self.out_embed = nn.Embedding(vocab_size, dim, sparse=True)
        nn.init.uniform_(self.in_embed.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.out_embed.weight)

    def forward(self, centers, contexts, negatives, reduction: str = "mean"):
        u = self.in_embed(centers)  # [P, D]
        o = self.out_embed(torch.cat([contexts.unsqueeze(1), negatives], 1))  # [P, 1 + K, D]: one sparse grad
        s = torch.bmm(o, u.unsqueeze(2)).squeeze(2)  # [P, 1 + K]
        s = torch.cat([s[:, :1], -s[:, 1:]], 1)  # label +1 for the context, -1 for the negatives
        loss = -F.logsigmoid(s).sum(1)
        return loss.mean() if reduction == "mean" else loss.sum()


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


OPTIMIZERS = ("sparse_adam", "sgd")


def train(path, *, dim=100, window=5, negative=5, sample=1e-4, min_count=5, epochs=5, alpha=0.025,
          min_alpha=0.0001, threads=2, seed=1, batch=DEFAULT_BATCH, optimizer=DEFAULT_OPTIMIZER, lr=None,
          ns_exponent=0.75, chunk=CHUNK_CENTERS, max_seconds=None, log=print):
    """Train; returns {'words', 'matrix', 'raw_words', 'train_s', 'words_per_s', 'epochs_done', ...}.

    `alpha`/`min_alpha` are word2vec's SGD rates: used as such by optimizer='sgd' (summed loss), while
    optimizer='sparse_adam' (mean loss) uses `lr` (default DEFAULT_ADAM_LR) decayed linearly by the same factor
    alpha -> min_alpha. `batch` is in (center, context) pairs.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
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
    if optimizer == "sgd":
        base_lr, end_lr, reduction = alpha, min_alpha, "sum"
        opt = torch.optim.SGD(model.parameters(), lr=base_lr)
    else:
        base_lr = DEFAULT_ADAM_LR if lr is None else lr
        end_lr, reduction = base_lr * min_alpha / alpha, "mean"
        opt = torch.optim.SparseAdam(list(model.parameters()), lr=base_lr)
    corpus_words = ids.numel()  # in-vocabulary tokens
    # progress is counted in raw words (every token of the file, as gensim and embedfast count them): each
    # in-vocabulary token stands for raw_total / corpus_words raw words
    raw_scale = raw_total / max(corpus_words, 1)
    planned = epochs * raw_total
    done = 0.0  # raw (pre-sub-sampling, pre-min_count) corpus words processed
    loss_sum, pairs_sum = 0.0, 0
    t_train = time.perf_counter()
    stopped = False
    for epoch in range(epochs):
        kept = (torch.rand(corpus_words, generator=gen) < keep[ids]).nonzero().squeeze(1)
        e_ids, e_sent = ids[kept], sent[kept]
        n = e_ids.numel()
        raw_per_kept = corpus_words * raw_scale / max(n, 1)
        for start in range(0, n, chunk):
            # all pairs of `chunk` consecutive kept centers at once, shuffled, then consumed `batch` at a time
            pos = torch.arange(start, min(start + chunk, n))
            centers, contexts = make_pairs(e_ids, e_sent, pos, window, gen)
            perm = torch.randperm(centers.numel(), generator=gen)
            centers, contexts = centers[perm], contexts[perm]
            np_ = centers.numel()
            raw_per_pair = pos.numel() * raw_per_kept / max(np_, 1)
            for b0 in range(0, np_, batch):
                c, x = centers[b0:b0 + batch], contexts[b0:b0 + batch]
                negs = torch.multinomial(noise, c.numel() * negative, replacement=True, generator=gen)
                frac = min(1.0, done / planned)
                for g in opt.param_groups:
                    g["lr"] = base_lr - (base_lr - end_lr) * frac
                opt.zero_grad(set_to_none=True)
                loss = model(c, x, negs.view(-1, negative), reduction)
                loss.backward()
                opt.step()
                if reduction == "mean":
                    loss_sum += float(loss.detach()) * c.numel()
                else:
                    loss_sum += float(loss.detach())
                pairs_sum += c.numel()
                done += c.numel() * raw_per_pair
                if max_seconds is not None and time.perf_counter() - t_train > max_seconds:
                    stopped = True
                    break
            if np_ == 0:
                done += pos.numel() * raw_per_kept
            if stopped:
                break
        if stopped:
            break
        log(f"epoch {epoch + 1}: loss/pair {loss_sum / max(pairs_sum, 1):.4f}, {done / (time.perf_counter() - t_train):,.0f} words/s")
    train_s = time.perf_counter() - t_train
    done = raw_total * epochs if not stopped else int(round(done))
    return {
        "words": words,
        "matrix": model.in_embed.weight.detach(),
        "raw_words": done,
        "train_s": train_s,
        "prep_s": prep_s,
        "words_per_s": done / train_s,
        "complete": not stopped,
        "epochs_done": done / raw_total,
        "loss_per_pair": loss_sum / max(pairs_sum, 1),
        "raw_corpus_words": raw_total,
        "optimizer": optimizer,
        "batch": batch,
        "lr": base_lr,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("corpus")
    for name, typ, default in [("dim", int, 100), ("window", int, 5), ("negative", int, 5), ("sample", float, 1e-4),
                               ("min-count", int, 5), ("epochs", int, 5), ("alpha", float, 0.025),
                               ("min-alpha", float, 0.0001), ("threads", int, 2), ("seed", int, 1),
                               ("batch", int, DEFAULT_BATCH), ("lr", float, None), ("max-seconds", float, None)]:
        p.add_argument(f"--{name}", type=typ, default=default)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULT_OPTIMIZER)
    p.add_argument("--eval", action="store_true", help="print WS353 / SimLex / analogy scores (embedfast.evaluate)")
    p.add_argument("--save", help="write {'words', 'matrix'} with torch.save")
    a = p.parse_args(argv)
    r = train(a.corpus, dim=a.dim, window=a.window, negative=a.negative, sample=a.sample, min_count=a.min_count,
              epochs=a.epochs, alpha=a.alpha, min_alpha=a.min_alpha, threads=a.threads, seed=a.seed, batch=a.batch,
              optimizer=a.optimizer, lr=a.lr, max_seconds=a.max_seconds)
    if a.save:
        torch.save({"words": r["words"], "matrix": r["matrix"]}, a.save)
    out = {k: v for k, v in r.items() if k not in ("words", "matrix")}
    if a.eval:
        from types import SimpleNamespace

        from embedfast import evaluate as ev
        from embedfast.data import evaluation_file

        v = SimpleNamespace(words=r["words"], matrix=r["matrix"])
        out["ws353"] = ev.evaluate_word_pairs(v, evaluation_file("wordsim353.tsv"))["spearman"]
        out["simlex"] = ev.evaluate_word_pairs(v, evaluation_file("simlex999.txt"))["spearman"]
        out["analogy"] = ev.evaluate_analogies(v, evaluation_file("questions-words.txt"), restrict_vocab=30000)["accuracy"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
