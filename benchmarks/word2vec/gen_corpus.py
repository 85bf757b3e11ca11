"""Generate a Zipf-distributed text corpus, deterministic from a seed (benchmark input for SGNS trainers).

Tokens are drawn from a truncated Zipf law over `--vocab` pseudo-words (rank r has probability ~ 1/r^s), with
a little local structure so co-occurrence is not pure noise: each sentence has a "topic" and a fraction of its
tokens come from that topic's block of ranks. Sentence lengths are uniform in [5, 40]. Whitespace separated,
one sentence per line. The same (tokens, vocab, seed) always gives the same bytes.

Usage: python benchmarks/word2vec/gen_corpus.py OUT --tokens 10000000 [--vocab 100000] [--seed 0]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np


def pseudo_words(n: int, rng: np.random.Generator) -> np.ndarray:
    """n distinct lower-case pseudo-words, shorter for frequent ranks (as in real text)."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    out, seen = [], set()
    while len(out) < n:
        r = len(out)
        length = int(2 + min(10, np.log2(r + 2) // 1.5 + rng.integers(0, 3)))
        w = "".join(rng.choice(letters, size=length))
        if w not in seen:
            seen.add(w)
            out.append(w)
    return np.array(out, dtype=object)


def generate(path: str, tokens: int, vocab: int = 100_000, seed: int = 0, exponent: float = 1.0,
             topics: int = 200, topic_share: float = 0.3, chunk: int = 2_000_000) -> dict:
    if tokens < 1 or vocab < 2:
        raise ValueError(f"tokens and vocab must be positive (tokens={tokens}, vocab={vocab})")
    rng = np.random.default_rng(seed)
    words = pseudo_words(vocab, rng)
    p = 1.0 / np.arange(1, vocab + 1) ** exponent
    cdf = np.cumsum(p / p.sum())
    cdf[-1] = 1.0
    block = max(1, vocab // topics)
    written = 0
    t0 = time.perf_counter()
    with open(path, "w", encoding="utf-8") as f:
        while written < tokens:
            n = min(chunk, tokens - written)
            ids = np.searchsorted(cdf, rng.random(n), side="right")
            lengths = rng.integers(5, 41, size=n // 5 + 2)
            ends = np.cumsum(lengths)
            ends = ends[ends < n]
            sent_of = np.searchsorted(ends, np.arange(n), side="right")
            topic = rng.integers(0, topics, size=len(ends) + 1)[sent_of]
            local = rng.random(n) < topic_share
            # topic words: ranks inside the topic's block, themselves Zipf-like inside the block
            in_block = np.minimum((block * rng.random(local.sum()) ** 2).astype(np.int64), block - 1)
            ids[local] = np.minimum(topic[local] * block + in_block, vocab - 1)
            toks = words[ids]
            lines = [" ".join(s) for s in np.split(toks, ends)]
            f.write("\n".join(lines))
            f.write("\n")
            written += n
    return {"path": path, "tokens": written, "vocab": vocab, "seed": seed, "seconds": time.perf_counter() - t0,
            "bytes": os.path.getsize(path)}


def ensure(path: str, tokens: int, seed: int = 0, vocab: int = 100_000) -> str:
    """Generate `path` unless it already exists (generation is deterministic, so a cached file is the same)."""
    if not os.path.exists(path):
        tmp = path + ".tmp"
        generate(tmp, tokens, vocab=vocab, seed=seed)
        os.replace(tmp, path)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--tokens", type=int, default=10_000_000)
    ap.add_argument("--vocab", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--exponent", type=float, default=1.0)
    a = ap.parse_args(argv)
    print(generate(a.out, a.tokens, vocab=a.vocab, seed=a.seed, exponent=a.exponent))


if __name__ == "__main__":
    main()
