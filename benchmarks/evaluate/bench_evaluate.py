"""embedfast.evaluate vs gensim's KeyedVectors.evaluate_word_analogies / evaluate_word_pairs on the same vectors.

Vectors: a gensim skip-gram model trained for one epoch on the embedded corpus (dim 100). Prints medians of
--repeats runs and checks that both give the same scores.

  python benchmarks/evaluate/bench_evaluate.py [--repeats 3] [--restrict-vocab 30000]
"""
from __future__ import annotations

import argparse
import gzip
import statistics
import time
from types import SimpleNamespace

import torch


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--restrict-vocab", type=int, default=30000)
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    from gensim.models import Word2Vec

    from embedfast import evaluate as ev
    from embedfast.data import default_corpus_path, evaluation_file

    with gzip.open(default_corpus_path(), "rt", encoding="utf-8") as f:
        sents = [line.split() for line in f]
    kv = Word2Vec(sents, vector_size=100, window=5, min_count=5, sg=1, epochs=1, workers=2, seed=1).wv
    v = SimpleNamespace(words=list(kv.index_to_key), matrix=torch.from_numpy(kv.vectors))
    q, ws = evaluation_file("questions-words.txt"), evaluation_file("wordsim353.tsv")

    def med(fn):
        ts, out = [], None
        for _ in range(a.repeats):
            t = time.perf_counter()
            out = fn()
            ts.append(time.perf_counter() - t)
        return statistics.median(ts), out

    rv = a.restrict_vocab
    t_e, r_e = med(lambda: ev.evaluate_analogies(v, q, restrict_vocab=rv))
    t_m, r_m = med(lambda: ev.evaluate_analogies(v, q, restrict_vocab=rv, method="3cosmul"))
    t_g, r_g = med(lambda: kv.evaluate_word_analogies(q, restrict_vocab=rv))
    t_pe, p_e = med(lambda: ev.evaluate_word_pairs(v, ws))
    t_pg, p_g = med(lambda: kv.evaluate_word_pairs(ws))
    g_correct = len(r_g[1][-1]["correct"])
    print(f"vocabulary {len(v.words)} x 100, restrict_vocab {rv}, {r_e['total']} analogy questions answered "
          f"({r_e['skipped']} skipped), medians of {a.repeats}")
    print("| task | embedfast s | gensim s | speed-up | embedfast score | gensim score |")
    print("|---|---|---|---|---|---|")
    print(f"| analogies 3CosAdd | {t_e:.3f} | {t_g:.3f} | {t_g / t_e:.1f}x | {r_e['correct']} correct "
          f"| {g_correct} correct |")
    print(f"| analogies 3CosMul | {t_m:.3f} | — | — | {r_m['correct']} correct | — |")
    print(f"| WordSim353 | {t_pe:.4f} | {t_pg:.4f} | {t_pg / t_pe:.1f}x | rho {p_e['spearman']:.4f} "
          f"| rho {p_g[1].statistic:.4f} |")


if __name__ == "__main__":
    main()
