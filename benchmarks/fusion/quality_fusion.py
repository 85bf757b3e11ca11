"""Quality effect of fusion on real data: two word2vec models trained on the embedded corpus with different
settings (gensim; the project's own trainer had not landed when this was written), each alone and fused with
embedfast.MultiSourceEmbedding, scored on WordSim353 and SimLex-999 with gensim's evaluate_word_pairs on the
materialised matrix.

    python benchmarks/fusion/quality_fusion.py [--epochs 5 --dim 100 --workers 2]
"""
from __future__ import annotations

import argparse
import gzip
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--min-count", type=int, default=5)
    args = ap.parse_args()

    from gensim.models import KeyedVectors, Word2Vec

    import embedfast
    from embedfast.data import default_corpus_path, evaluation_file
    from embedfast.fusion import procrustes

    torch.set_num_threads(args.workers)
    with gzip.open(default_corpus_path(), "rt", encoding="utf-8") as f:
        sentences = [line.split() for line in f if line.strip()]
    print(f"corpus: {len(sentences)} sentences, {sum(map(len, sentences))} tokens")
    settings = {
        "A: skip-gram, window 5": dict(sg=1, window=5),
        "B: CBOW, window 2": dict(sg=0, window=2),
        "C: skip-gram, window 10": dict(sg=1, window=10),
    }
    kvs = {}
    for name, kw in settings.items():
        t0 = time.perf_counter()
        m = Word2Vec(sentences, vector_size=args.dim, min_count=args.min_count, workers=args.workers,
                     epochs=args.epochs, seed=1, **kw)
        kvs[name] = m.wv
        print(f"trained {name} in {time.perf_counter() - t0:.1f}s, vocab {len(m.wv)}")
    class V:  # Vectors-like view of a gensim KeyedVectors
        def __init__(self, kv, matrix=None):
            self.words = list(kv.index_to_key)
            self.matrix = torch.from_numpy(kv.vectors.copy()) if matrix is None else matrix

    norm = lambda x: x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)  # noqa: E731
    names = list(kvs)
    a = kvs[names[0]]
    fused = {}
    for other in names[1:]:
        b = kvs[other]
        vocab = sorted(set(a.index_to_key) | set(b.index_to_key))
        va, vb = V(a), V(b)
        # Procrustes: map the other model into A's space, learned from the words both share (seed dictionary)
        shared = [w for w in vocab if w in a.key_to_index and w in b.key_to_index]
        ia = torch.tensor([a.key_to_index[w] for w in shared])
        ib = torch.tensor([b.key_to_index[w] for w in shared])
        w = procrustes(norm(vb.matrix)[ib], norm(va.matrix)[ia])
        tag = f"A + {other[0]}"
        fused[f"{tag}, average (unaligned)"] = (vocab, embedfast.MultiSourceEmbedding.from_vectors(
            vocab, [va, vb], learn_weights=False))
        fused[f"{tag}, average of unit vectors, {other[0]} Procrustes-aligned to A"] = (
            vocab, embedfast.MultiSourceEmbedding.from_vectors(vocab, [V(a, norm(va.matrix)), V(b, norm(vb.matrix) @ w)],
                                                               learn_weights=False))
    print(next(iter(fused.values()))[1].coverage_report())

    def kv_of(words, matrix):
        kv = KeyedVectors(matrix.shape[1])
        kv.add_vectors(words, matrix.numpy())
        return kv

    rows = list(kvs.items()) + [(n, kv_of(vocab, m.materialize().weight.detach())) for n, (vocab, m) in fused.items()]
    print("\n| vectors | WordSim353 Spearman | WordSim353 pairs used | SimLex-999 Spearman | SimLex-999 pairs used |")
    print("|---|---:|---:|---:|---:|")
    for n, kv in rows:
        out = []
        for f in ("wordsim353.tsv", "simlex999.txt"):
            pearson, spearman, oov = kv.evaluate_word_pairs(evaluation_file(f))
            total = sum(1 for line in open(evaluation_file(f)) if line.strip() and not line.startswith("#"))
            out += [f"{spearman[0]:.3f}", f"{total - round(oov / 100 * total)}/{total}"]
        print(f"| {n} | " + " | ".join(out) + " |")


if __name__ == "__main__":
    main()
