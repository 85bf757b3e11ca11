"""The straightforward transfer pipeline (issue 12's reference), for side-by-side timing with `embedfast map`:
Hugging Face AutoModel + AutoTokenizer over batches of 32 sentences in corpus order (padded to the batch's
longest), last hidden state, mean of word pieces, mean over each English word's occurrences; eflomal both
ways; grow-diag-final-and; p(en|zh) from link counts; Chinese words with >= 2 links minus the stopwords; each
Chinese word the probability-weighted mix. Prints one JSON line (seconds per step, peak RSS).

    python benchmarks/transfer/baseline_map.py EN ZH MODEL_DIR OUT [--stopwords FILE] [--strategy mix|max]

The symmetrisation and link counting reuse embedfast.transfer.align (the same rules as `embedfast map`), so
the comparison times encoding, batching and carrying, not two different symmetrisers.
"""
import argparse
import gzip
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from _common import peak_rss_mb  # noqa: E402


def lines(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rt", encoding="utf-8") as f:
        return [line.split() for line in f]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("en"), ap.add_argument("zh"), ap.add_argument("model"), ap.add_argument("out")
    ap.add_argument("--stopwords", default=None)
    ap.add_argument("--strategy", default="mix")
    ap.add_argument("--batch", type=int, default=32)
    a = ap.parse_args()
    import transformers
    from embedfast.transfer.align import count_links, eflomal_links, symmetrize

    t0 = time.perf_counter()
    en, zh = lines(a.en), lines(a.zh)
    tok = transformers.AutoTokenizer.from_pretrained(a.model, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(a.model, local_files_only=True).eval()
    sums, counts = {}, {}
    pieces = slots = 0
    t1 = time.perf_counter()
    with torch.no_grad():
        for b in range(0, len(en), a.batch):
            batch = [s for s in en[b:b + a.batch] if s]
            if not batch:
                continue
            enc = tok(batch, is_split_into_words=True, padding=True, truncation=True, max_length=256,
                      return_tensors="pt")
            h = model(**enc).last_hidden_state
            pieces += int(enc["attention_mask"].sum())
            slots += enc["attention_mask"].numel()
            for r, words in enumerate(batch):
                wid = enc.word_ids(r)
                for j, w in enumerate(words):
                    idx = [k for k, x in enumerate(wid) if x == j]
                    if not idx:
                        continue
                    v = h[r, idx].mean(0)
                    if w in sums:
                        sums[w] += v
                        counts[w] += 1
                    else:
                        sums[w] = v.clone()
                        counts[w] = 1
    vec = {w: sums[w] / counts[w] for w in sums}
    t2 = time.perf_counter()
    links = symmetrize(*eflomal_links(en, zh), method="grow-diag-final-and")
    stop = set()
    if a.stopwords:
        with open(a.stopwords, encoding="utf-8") as f:
            stop = {w for line in f if not line.startswith("#") for w in line.split()}
    table = count_links(en, zh, links).table(min_links=2, stopwords=stop)
    t3 = time.perf_counter()
    out = {}
    for z, row in table.items():
        row = [(e, p) for e, p in row if e in vec]
        if not row:
            continue
        if a.strategy == "max":
            out[z] = vec[row[0][0]]
        else:
            tot = sum(p for _, p in row)
            out[z] = sum(vec[e] * (p / tot) for e, p in row)
    with open(a.out, "w", encoding="utf-8") as f:
        for z, v in out.items():
            f.write(z + " " + " ".join(f"{x:.6g}" for x in v.tolist()) + "\n")
    t4 = time.perf_counter()
    print(json.dumps({"what": "baseline", "seconds_total": t4 - t0, "seconds_encode": t2 - t1,
                      "seconds_align": t3 - t2, "seconds_write": t4 - t3, "pieces": pieces, "padded_slots": slots,
                      "pieces_per_s": pieces / (t2 - t1), "words": len(out), "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
