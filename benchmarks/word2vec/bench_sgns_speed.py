"""Training speed of embedfast.Word2Vec against gensim's Word2Vec(corpus_file=..., sg=1), side by side.

Same corpus (the embedded WordNet glosses, decompressed to a plain file that both read), same hyperparameters
(dim 100, window 5, negative 5, sample 1e-4, min_count 5, 2 threads), runs interleaved, medians of --repeats.
Times are end to end (vocabulary + encoding + training); raw words = all tokens of the file x epochs.
With --variants also embedfast's other update rule (word2vec's per-pair negatives instead of HogBatch's shared
negatives) and the exact sigmoid instead of the table, with the quality of the first repeat (WordSim353 /
SimLex-999 Spearman, Google analogies restrict_vocab=30000, by embedfast.evaluate) so the faster variant is
only kept at equal quality. The full quality comparison (analogies, pure PyTorch, Zipf
scaling, peak RSS) is benchmarks/word2vec/bench_sgns.py.

  python benchmarks/word2vec/bench_sgns_speed.py [--epochs 5] [--repeats 3] [--threads 2]

`train_embedfast(corpus_path, **hp) -> (vectors, seconds, words_per_s)` is reusable by other benchmarks.
"""
from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # this family's scripts, then benchmarks/_common.py
from _common import commit, quality as standard_quality  # noqa: E402

import embedfast  # noqa: E402
from embedfast.data import default_corpus_path  # noqa: E402
from bench_sgns import count_tokens as count_raw_words  # noqa: E402  (same folder)

HP = dict(dim=100, window=5, negative=5, sample=1e-4, min_count=5, alpha=0.025, min_alpha=0.0001, threads=2,
          seed=1, epochs=5)


class _PlainVectors:
    """(words, matrix) holder used only when embedfast.vectors is not available in this checkout."""

    def __init__(self, words, matrix):
        self.words, self.matrix = list(words), matrix


def _vectors(words, matrix):
    try:
        from embedfast.vectors import Vectors
    except ImportError:
        return _PlainVectors(words, matrix)
    return Vectors(list(words), matrix)


def train_embedfast(corpus_path: str, *, raw_words: int | None = None, **hp):
    """Train embedfast.Word2Vec on a plain-text file; returns (vectors, seconds end to end, raw words/s).

    hp: any Word2Vec argument (defaults: HP above). raw_words: tokens of the file (counted when None; not timed).
    """
    kw = {**HP, **hp}
    if raw_words is None:
        raw_words = count_raw_words(corpus_path)
    t0 = time.perf_counter()
    model = embedfast.Word2Vec(**kw)
    model.build_vocab(corpus_path)
    model.train(progress=False)
    seconds = time.perf_counter() - t0
    return _vectors(model.words, model.w_in.clone()), seconds, raw_words * kw["epochs"] / seconds


def train_gensim(corpus_path: str, *, raw_words: int | None = None, **hp):
    """gensim Word2Vec(corpus_file=..., sg=1) with the same hyperparameters; same return value."""
    from gensim.models import Word2Vec

    kw = {**HP, **hp}
    if raw_words is None:
        raw_words = count_raw_words(corpus_path)
    t0 = time.perf_counter()
    model = Word2Vec(corpus_file=corpus_path, vector_size=kw["dim"], window=kw["window"], negative=kw["negative"],
                     sample=kw["sample"], min_count=kw["min_count"], alpha=kw["alpha"], min_alpha=kw["min_alpha"],
                     sg=1, hs=0, workers=kw["threads"], seed=kw["seed"], epochs=kw["epochs"])
    seconds = time.perf_counter() - t0
    words = list(model.wv.index_to_key)
    return _vectors(words, torch.from_numpy(model.wv.vectors.copy())), seconds, raw_words * kw["epochs"] / seconds


def quality(vectors) -> tuple[float, float, float]:
    """(WordSim353 Spearman, SimLex-999 Spearman, Google analogy 3CosAdd accuracy, restrict_vocab=30000)."""
    q = standard_quality(vectors)
    return q["ws353"], q["simlex"], q["analogy"]


def plain_corpus() -> str:
    path = os.path.join(tempfile.gettempdir(), "embedfast_wordnet_glosses.txt")
    if not os.path.exists(path):
        with gzip.open(default_corpus_path(), "rb") as fin, open(path + ".tmp", "wb") as fout:
            shutil.copyfileobj(fin, fout)
        os.replace(path + ".tmp", path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", action="store_true", help="also time the per-pair and exact-sigmoid variants")
    args = ap.parse_args()
    corpus = plain_corpus()
    raw = count_raw_words(corpus)
    hp = dict(epochs=args.epochs, threads=args.threads)
    runners = {
        "embedfast (HogBatch, table sigmoid)": lambda: train_embedfast(corpus, raw_words=raw, **hp),
        "gensim 4 corpus_file sg=1": lambda: train_gensim(corpus, raw_words=raw, **hp),
    }
    if args.variants:
        runners["embedfast (per-pair negatives, word2vec rule)"] = lambda: train_embedfast(
            corpus, raw_words=raw, shared_negatives=False, **hp)
        runners["embedfast (HogBatch, exact sigmoid)"] = lambda: train_embedfast(
            corpus, raw_words=raw, exact_sigmoid=True, **hp)
    times = {k: [] for k in runners}
    cpu = {k: [] for k in runners}
    scores = {}
    for rep in range(args.repeats):
        for name, fn in runners.items():
            c0 = time.process_time()
            vec, seconds, wps = fn()
            cpu[name].append(time.process_time() - c0)
            times[name].append(seconds)
            if rep == 0:
                scores[name] = quality(vec)
            print(f"  rep {rep} {name}: {seconds:.2f}s, {wps:,.0f} raw words/s", file=sys.stderr)
    # the corpus pipeline alone (read + count + vocabulary, then encode to int32 ids), medians
    pipe = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        m = embedfast.Word2Vec(threads=args.threads)
        m.build_vocab(corpus)
        t1 = time.perf_counter()
        m.train(progress=False, max_words=0)  # encodes the corpus, trains nothing
        pipe.append((t1 - t0, time.perf_counter() - t1))
    commit_id = commit()
    print(f"corpus: {corpus} ({raw:,} raw tokens), epochs {args.epochs}, threads {args.threads}, "
          f"repeats {args.repeats}, torch {torch.__version__}, commit {commit_id}, load avg {os.getloadavg()[0]:.1f}")
    print("| trainer | median s (end to end) | raw words/s | CPU s | vs gensim | WS353 rho | SimLex rho | analogy % |")
    print("|---|---|---|---|---|---|---|---|")
    g = statistics.median(times["gensim 4 corpus_file sg=1"])
    for name in runners:
        t = statistics.median(times[name])
        ws, sl, an = scores[name]
        print(f"| {name} | {t:.2f} | {raw * args.epochs / t:,.0f} | {statistics.median(cpu[name]):.2f} | "
              f"{g / t:.2f}x | {ws:.3f} | {sl:.3f} | {100 * an:.2f} |")
    print(f"embedfast corpus pipeline ({args.threads} threads): vocabulary {statistics.median(p[0] for p in pipe):.3f} s, "
          f"encoding {statistics.median(p[1] for p in pipe):.3f} s (medians)")


if __name__ == "__main__":
    main()
