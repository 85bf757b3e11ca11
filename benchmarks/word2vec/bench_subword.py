"""Sub-word skip-gram: embedfast.Word2Vec(minn=3, maxn=6) against fastText's own trainer (PyPI fasttext) and
gensim's FastText, side by side: words/s and quality, with a test of unseen words.

  python benchmarks/word2vec/bench_subword.py [--corpus PATH] [--rounds 3] [--threads 2] [--epochs 5]
      [--trainers embedfast,fasttext,gensim] [--holdout 300] [--out results.json]

Settings of every run (the issue's): dim 100, window 5, negative 5, sample 1e-4, min count 5, minn 3, maxn 6,
2,000,000 buckets, 5 epochs, learning rate 0.05 (decayed linearly), 2 threads. Corpus: bench-data/corpora/gcide.txt
when built (benchmarks/word2vec/corpora.py), else the embedded WordNet glosses (bench-data/wordnet_glosses.txt).

Unseen-word test (the same for the three trainers): inflected words w = stem + suffix (s, es, ed, ing, ly, er,
ness, ment, al) whose stem is a frequent vocabulary word (count >= 20), w itself of count 5..200 and in none of the
evaluation files, are drawn (seeded) and *deleted from the corpus* (every occurrence of the token; the rest of the
line stays), so no trainer ever sees them. After training, each held-out word's vector (its n-grams only: fastText's
and gensim's OOV vectors, embedfast's ``vectors_for``) is compared with all vocabulary words among the 30,000 most
frequent: the rank of its stem gives recall@10 and the mean reciprocal rank, and the mean cosine to the stem is
reported. The main scores (WordSim353, SimLex-999 Spearman; Google analogies, 3CosAdd, restrict_vocab 30000 --
``embedfast.evaluate`` through ``benchmarks/_common.quality``) are of the same models.

Fair to the three: each trains on the same file with the held-out words already gone, with the same n-gram
settings; each held-out word's vector is what the trainer itself gives an unknown word (its n-gram rows, averaged
by each trainer's own rule); the stem is ranked against the same candidate list (the 30,000 most frequent words,
identical for the three since the vocabulary is counted from the same file with the same min count), and no
held-out word or stem is chosen by looking at any model.

Rare-word test (benchmarks/word2vec/wordnet_rare.py, when Debian's wordnet-base is installed): words linked by
WordNet's "derivationally related form" to a frequent word (count >= 50: abolish / abolition), in two groups of
up to --holdout words: ``rare`` (count 5..20: in every vocabulary, trained from few occurrences) and ``oov``
(count 1..4: in the text but under the min count, so every trainer builds them from n-grams alone). The same
ranking as above, with the word itself left out of its candidates: ``rare_*`` / ``oov_*`` recall@10, MRR, cos.

Each trainer runs in a fresh process (fastText's training is affected by what a process imported before, see
tests/fasttext_util.py), the trainers alternating in each round; the time is end to end (reading the corpus,
vocabulary, initialisation, training), words/s are the corpus' tokens x epochs / seconds; medians over rounds.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from _common import DATA, commit, median, run_json  # noqa: E402
from wordnet_rare import WORDNET, rare_pairs  # noqa: E402

SUFFIXES = ("s", "es", "ed", "ing", "ly", "er", "ness", "ment", "al")
HP = dict(dim=100, window=5, negative=5, sample=1e-4, min_count=5, minn=3, maxn=6, buckets=2_000_000, epochs=5,
          lr=0.05)

CHILD = r"""
import json, sys, time
import torch
trainer, corpus, threads, epochs, hp, held_path = sys.argv[1:7]
threads, epochs, hp = int(threads), int(epochs), json.loads(hp)
held = json.load(open(held_path))
torch.set_num_threads(threads)
t0 = time.perf_counter()
if trainer == "fasttext":
    import fasttext
    m = fasttext.train_unsupervised(corpus, model="skipgram", dim=hp["dim"], ws=hp["window"], neg=hp["negative"],
                                    t=hp["sample"], minCount=hp["min_count"], minn=hp["minn"], maxn=hp["maxn"],
                                    bucket=hp["buckets"], epoch=epochs, lr=hp["lr"], thread=threads, verbose=0)
    seconds = time.perf_counter() - t0
    import os, tempfile
    path = os.path.join(tempfile.mkdtemp(), "m.bin")
    m.save_model(path)
    del m
    import embedfast
    v = embedfast.load_vectors(path)
    vec_of = v.vectors_for
    os.remove(path)
elif trainer == "gensim":
    from gensim.models import FastText
    m = FastText(corpus_file=corpus, vector_size=hp["dim"], window=hp["window"], negative=hp["negative"],
                 sample=hp["sample"], min_count=hp["min_count"], min_n=hp["minn"], max_n=hp["maxn"],
                 bucket=hp["buckets"], epochs=epochs, alpha=hp["lr"], min_alpha=1e-4, sg=1, workers=threads)
    seconds = time.perf_counter() - t0
    import embedfast
    v = embedfast.Vectors(list(m.wv.index_to_key), torch.from_numpy(m.wv.vectors.copy()))
    vec_of = lambda ws: torch.from_numpy(__import__("numpy").stack([m.wv[w] for w in ws]))
else:
    import embedfast
    w2v = embedfast.Word2Vec(dim=hp["dim"], window=hp["window"], negative=hp["negative"], sample=hp["sample"],
                             min_count=hp["min_count"], minn=hp["minn"], maxn=hp["maxn"], buckets=hp["buckets"],
                             epochs=epochs, alpha=hp["lr"], threads=threads)
    w2v.train(corpus, progress=False)
    seconds = time.perf_counter() - t0
    v = w2v.vectors
    vec_of = v.vectors_for
sys.path[:0] = [held["bench"]]
from _common import quality
res = dict(trainer=trainer, seconds=seconds, vocab=len(v.words), **quality(v))
# the unseen-word test: rank of each held-out word's stem among the 30,000 most frequent words; the same for the
# rare-word pairs of WordNet (a rare or below-min-count word and its frequent derivationally related word)
top = v.matrix[:30000].float()
x = torch.nn.functional.normalize(top, dim=1)
index = {w: i for i, w in enumerate(v.words[:30000])}


def rank_test(words, partners):
    u = torch.nn.functional.normalize(vec_of(words).float(), dim=1)
    sims = u @ x.t()
    ranks, cos = [], []
    for k, (w, p) in enumerate(zip(words, partners)):
        j = index.get(p)
        if j is None:
            continue
        if w in index:  # a rare word of the vocabulary: not its own neighbour
            sims[k, index[w]] = -2.0
        ranks.append(int((sims[k] > sims[k, j]).sum()) + 1)
        cos.append(float(sims[k, j]))
    n = max(1, len(ranks))
    return dict(n=len(ranks), recall10=sum(r <= 10 for r in ranks) / n, mrr=sum(1.0 / r for r in ranks) / n,
                cos=sum(cos) / n)


for name, (words, partners) in [("unseen", (held["words"], held["stems"]))] + sorted(held.get("rare", {}).items()):
    if words:
        res.update({f"{name}_{k}": val for k, val in rank_test(words, partners).items()})
print(json.dumps(res))
"""


def default_corpus() -> str:
    gcide = os.path.join(DATA, "corpora", "gcide.txt")
    return gcide if os.path.exists(gcide) else os.path.join(DATA, "wordnet_glosses.txt")


def eval_words() -> set:
    """Every word of the evaluation files (never held out)."""
    from embedfast.data import evaluation_file

    out = set()
    for name in ("wordsim353.tsv", "simlex999.txt", "questions-words.txt"):
        with open(evaluation_file(name), encoding="utf-8", errors="replace") as f:
            for line in f:
                out.update(t.lower() for t in line.replace("\t", " ").split())
                out.update(line.replace("\t", " ").split())
    return out


def holdout_corpus(corpus: str, n: int, seed: int, workdir: str):
    """(path of the corpus without the held-out words, held-out words, their stems, tokens of the new corpus)."""
    counts = collections.Counter()
    with open(corpus, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            counts.update(line.split())
    banned = eval_words()
    cands = []
    for w, c in counts.items():
        if not 5 <= c <= 200 or w in banned:
            continue
        for suf in SUFFIXES:
            stem = w[:-len(suf)]
            if w.endswith(suf) and len(stem) >= 4 and counts.get(stem, 0) >= 20:
                cands.append((w, stem))
                break
    cands.sort()
    random.Random(seed).shuffle(cands)
    held = dict(cands[:n])
    path = os.path.join(workdir, "corpus_holdout.txt")
    tokens = 0
    with open(corpus, encoding="utf-8", errors="surrogateescape") as f, \
            open(path, "w", encoding="utf-8", errors="surrogateescape") as out:
        for line in f:
            toks = [t for t in line.split() if t not in held]
            tokens += len(toks)
            out.write(" ".join(toks) + "\n")
    for w in held:
        del counts[w]
    return path, list(held), list(held.values()), tokens, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=HP["epochs"])
    ap.add_argument("--trainers", default="embedfast,fasttext,gensim")
    ap.add_argument("--holdout", type=int, default=300)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    corpus = args.corpus or default_corpus()
    work = tempfile.mkdtemp(prefix="bench_subword_")
    path, words, stems, tokens, counts = holdout_corpus(corpus, args.holdout, args.seed, work)
    rare = rare_pairs(counts, eval_words() | set(words) | set(stems), min_count=HP["min_count"], n=args.holdout,
                      seed=args.seed)
    if rare is None:
        print(f"no WordNet database in {WORDNET} (apt-get install wordnet-base): the rare-word test is skipped")
    held_path = os.path.join(work, "held.json")
    with open(held_path, "w") as f:
        json.dump({"words": words, "stems": stems, "bench": os.path.dirname(HERE), "rare": rare or {}}, f)
    trainers = args.trainers.split(",")
    print(f"corpus {corpus}: {tokens:,} tokens after holding out {len(words)} words; commit {commit()}; "
          f"load {os.getloadavg()}", flush=True)
    runs = collections.defaultdict(list)
    for r in range(args.rounds):
        order = trainers[r % len(trainers):] + trainers[:r % len(trainers)]
        for t in order:
            res = run_json(["-c", CHILD, t, path, str(args.threads), str(args.epochs),
                            json.dumps(HP), held_path], timeout=3600)
            res["words_per_s"] = tokens * args.epochs / res["seconds"]
            res["load"] = os.getloadavg()[0]
            runs[t].append(res)
            tests = "  ".join(f"{g} r@10 {res[g + '_recall10']:.3f} mrr {res[g + '_mrr']:.3f} cos {res[g + '_cos']:.3f}"
                              for g in ("unseen", "rare", "oov") if g + "_mrr" in res)
            print(f"round {r + 1} {t:10s} {res['seconds']:7.1f} s {res['words_per_s']:10,.0f} words/s  ws353 "
                  f"{res['ws353']:.3f} simlex {res['simlex']:.3f} analogy {res['analogy']:.3f}  {tests} "
                  f"(load {res['load']:.1f})", flush=True)
    keys = ["seconds", "words_per_s", "ws353", "simlex", "analogy"] + [
        f"{g}_{k}" for g in ("unseen", "rare", "oov") for k in ("recall10", "mrr", "cos")
        if all(f"{g}_{k}" in x for rs in runs.values() for x in rs)]
    summary = {t: {k: median([x[k] for x in rs]) for k in keys} for t, rs in runs.items()}
    print("\nmedians:")
    for t, s in summary.items():
        print(f"  {t:10s} " + "  ".join(f"{k} {s[k]:.4g}" for k in keys))
    if "embedfast" in summary:
        for t in summary:
            if t != "embedfast":
                ratio = summary["embedfast"]["words_per_s"] / summary[t]["words_per_s"]
                print(f"  embedfast / {t}: words/s x{ratio:.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"corpus": corpus, "tokens": tokens, "held": len(words), "commit": commit(), "runs": runs,
                       "medians": summary}, f, indent=1)


if __name__ == "__main__":
    main()
