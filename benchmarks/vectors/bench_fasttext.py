"""Loading a fastText model (.bin) that fastText trained: embedfast vs gensim vs fastText, side by side.

    python benchmarks/vectors/bench_fasttext.py                 # trains the model once (bench-data/), then times
    python benchmarks/vectors/bench_fasttext.py --rounds 7 --markdown

The model: fastText's own trainer (the `fasttext` package) on the first --tokens tokens of the embedded corpus
(WordNet glosses), skip-gram, dim 100, the default 2,000,000 buckets, minn 3, maxn 6, 1 epoch (quality does not
matter here, the file's layout does). It is trained once and kept in bench-data/.

Contenders, each in a fresh process per round (rounds alternate between them, so a noisy neighbour hits all
alike), timing only the load call after the imports:
- embedfast: ``load_vectors(path)`` -> Vectors (word vectors composed, n-gram table for unseen words);
- gensim: ``gensim.models.fasttext.load_facebook_vectors(path)`` (the same: word vectors + n-gram table);
- fasttext: ``fasttext.load_model(path)`` (fastText's own reader; it does not compose the word vectors);
- embedfast-4k: embedfast with its large outputs on ordinary 4 KiB pages (EMBEDFAST_LARGE_ALLOC_MIN_BYTES=-1)
  instead of madvised 2 MiB huge pages, to see what the huge-page faults cost on the machine at hand.
Each process also reports its peak resident set (VmHWM) minus the resident set before the load, and that divided
by the bytes of the model's matrices (input + output as stored, float32). Medians over the rounds.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # this family's scripts, then benchmarks/_common.py
from _common import DATA, commit, median, run_json, status_kb, write_json  # noqa: E402

CONTENDERS = ("embedfast", "embedfast-4k", "gensim", "fasttext")


def make_model(tokens: int, dim: int, bucket: int, threads: int) -> str:
    """Train (once) the benchmark's model with fastText; returns its path."""
    import gzip

    os.makedirs(DATA, exist_ok=True)
    path = os.path.join(DATA, f"fasttext-{tokens}-d{dim}-b{bucket}.bin")
    if os.path.exists(path):
        return path
    import fasttext

    import embedfast

    text = os.path.join(DATA, f"corpus-{tokens}.txt")
    if not os.path.exists(text):
        n = 0
        with gzip.open(embedfast.data.default_corpus_path(), "rt", encoding="utf-8") as f, \
                open(text + ".part", "w", encoding="utf-8") as out:
            for line in f:
                out.write(line)
                n += len(line.split())
                if n >= tokens:
                    break
        os.replace(text + ".part", text)
    model = fasttext.train_unsupervised(text, model="skipgram", dim=dim, bucket=bucket, minn=3, maxn=6, epoch=1,
                                        minCount=5, thread=threads, verbose=0)
    model.save_model(path + ".part")
    os.replace(path + ".part", path)
    return path


def worker(name: str, path: str) -> dict:
    """In the fresh process: import, then one timed load; time and memory."""
    if name.startswith("embedfast"):
        if name == "embedfast-4k":
            os.environ["EMBEDFAST_LARGE_ALLOC_MIN_BYTES"] = "-1"  # read by the op at every allocation
        import embedfast

        def load():
            v = embedfast.load_vectors(path)
            return len(v), v.dim
    elif name == "gensim":
        from gensim.models.fasttext import load_facebook_vectors

        def load():
            kv = load_facebook_vectors(path)
            return len(kv.index_to_key), kv.vector_size
    elif name == "fasttext":
        import fasttext

        def load():
            m = fasttext.load_model(path)
            return len(m.words), m.get_dimension()
    else:
        raise ValueError(name)
    base = status_kb("VmRSS")
    t = time.perf_counter()
    n, d = load()
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "rss_mb": (status_kb("VmHWM") - base) / 1024, "words": n, "dim": d}


def matrices_bytes(path: str) -> int:
    """Bytes of the input and output matrices of the model (float32), read from its header."""
    import embedfast

    v = embedfast.load_vectors(path)
    m = v.report.model
    return 4 * v.dim * (m["nwords"] + m["bucket"] + m["output_rows"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--bucket", type=int, default=2_000_000)
    ap.add_argument("--threads", type=int, default=2, help="threads of fastText's trainer (making the model)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--skip", default="", help="contenders to leave out, comma-separated")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json-out", default="")
    ap.add_argument("--worker", nargs=2, metavar=("NAME", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    path = make_model(args.tokens, args.dim, args.bucket, args.threads)
    size = os.path.getsize(path)
    with open(path, "rb") as f:  # into the page cache: every contender reads it from memory
        while f.read(1 << 24):
            pass
    mats = matrices_bytes(path)
    names = [n for n in CONTENDERS if n not in args.skip.split(",")]
    runs = {n: [] for n in names}
    for r in range(args.rounds):
        for n in names:
            runs[n].append(run_json([os.path.abspath(__file__), "--worker", n, path], what=n))
    rows = []
    base = median([x["seconds"] for x in runs["embedfast"]]) if "embedfast" in runs else None
    for n in names:
        sec = median([x["seconds"] for x in runs[n]])
        rss = median([x["rss_mb"] for x in runs[n]])
        rows.append({"loader": n, "median_s": sec, "speedup_of_embedfast": sec / base if base else None,
                     "peak_rss_mb": rss, "rss_over_matrices": rss * 2**20 / mats,
                     "times": [round(x["seconds"], 4) for x in runs[n]], "words": runs[n][0]["words"]})
    result = {"commit": commit(), "model": os.path.basename(path), "file_mb": size / 2**20,
              "matrices_mb": mats / 2**20, "rounds": args.rounds, "rows": rows}
    write_json(args.json_out, result)
    if args.markdown:
        print(f"model {result['model']} ({size / 2**20:.0f} MiB, matrices {mats / 2**20:.0f} MiB), "
              f"{args.rounds} rounds, commit {result['commit']}\n")
        print("| loader | median load (s) | embedfast faster by | peak RSS - base (MiB) | / matrices |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['loader']} | {r['median_s']:.3f} | {r['speedup_of_embedfast']:.1f}x | "
                  f"{r['peak_rss_mb']:.0f} | {r['rss_over_matrices']:.2f} |")
    else:
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
