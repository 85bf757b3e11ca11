"""Where the peak memory of embedfast.Word2Vec goes: resident set at each stage of a training run.

  python benchmarks/word2vec/mem_sgns.py bench-data/zipf_10000000.txt [--epochs 1] [--stream-bytes N] [--cache-tokens N]

Prints VmHWM (peak), VmRSS, RssAnon (heap: tensors, tables) and RssFile (mapped files: libraries, the corpus
text) from /proc/self/status after `import numpy`, `import torch`, `import embedfast`, the vocabulary pass and
training, plus the largest RssAnon / RssFile seen by a 10 ms poller during each step (transients), and after
`model.vectors` (a copy of the matrix) at the end. Hyperparameters as bench_sgns.py (dim 100, window 5,
negative 5, sample 1e-4, min_count 5, 2 threads).
"""
from __future__ import annotations

import argparse
import threading
import time

import os  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/_common.py
from _common import status_mb  # noqa: E402

_FIELDS = ("VmHWM", "VmRSS", "RssAnon", "RssFile")


def status() -> dict:
    return status_mb(_FIELDS)


class Poller:
    """Largest RssAnon / RssFile seen since the last reset (10 ms polling)."""

    def __init__(self) -> None:
        self.peak = {"RssAnon": 0, "RssFile": 0}
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            st = status()
            for k in self.peak:
                self.peak[k] = max(self.peak[k], st[k])
            time.sleep(0.01)

    def take(self) -> dict:
        out = dict(self.peak)
        self.peak = {"RssAnon": 0, "RssFile": 0}
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--stream-bytes", type=int, default=None)
    ap.add_argument("--cache-tokens", type=int, default=None)
    a = ap.parse_args()

    def row(label, polled=None):
        st = status()
        extra = f" | polled peak anon {polled['RssAnon']} file {polled['RssFile']}" if polled else ""
        print(f"{label:24s} " + " ".join(f"{k} {st[k]:5d}" for k in _FIELDS) + extra, flush=True)

    row("start (MiB)")
    import numpy  # noqa: F401

    row("import numpy")
    import torch  # noqa: F401

    row("import torch")
    import embedfast

    row("import embedfast")
    poll = Poller()
    m = embedfast.Word2Vec(dim=100, window=5, negative=5, sample=1e-4, min_count=5, epochs=a.epochs, threads=2,
                           seed=1)
    if a.stream_bytes:
        m.stream_bytes = a.stream_bytes
    if a.cache_tokens is not None:
        m.cache_tokens = a.cache_tokens
    poll.take()
    m.build_vocab(a.corpus)
    row("vocabulary + tables", poll.take())
    t0 = time.perf_counter()
    m.train(a.corpus, progress=False)
    wall = time.perf_counter() - t0
    row("training", poll.take())
    v = m.vectors
    row("model.vectors (copy)", poll.take())
    print(f"vocabulary {len(m.words):,} words, {m._corpus.source.tokens:,} tokens/epoch, {a.epochs} epoch(s), "
          f"train {wall:.1f} s ({m.words_per_second:,.0f} words/s kernel), matrix {v.matrix.numel() * 4 / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
