"""Side-by-side SGNS benchmark: embedfast.Word2Vec vs gensim Word2Vec(corpus_file=..., sg=1) vs pure PyTorch.

Same corpus, same hyperparameters (dim 100, window 5, negative 5, sample 1e-4, min_count 5, 2 threads; 5 epochs
on the real corpus), each trainer in a fresh subprocess (peak RSS = that process's VmHWM), repeated and
reported as medians. Quality (WordSim353 / SimLex-999 Spearman, Google analogies with restrict_vocab=30000)
is measured with embedfast.evaluate on the vectors each trainer saves. The pure-PyTorch trainer is time-boxed
(--torch-seconds): when it cannot finish, its words/s is measured on the part it did and its quality is that of
the partial model (the table says how many epochs it did).

  python benchmarks/word2vec/bench_sgns.py                       # real corpus + Zipf scaling points 1M and 10M
  python benchmarks/word2vec/bench_sgns.py --zipf 1e6,1e7,1e8    # add the 100M point (1 epoch for >= 10M tokens)
  python benchmarks/word2vec/bench_sgns.py --quick               # small smoke run (one repeat, short time boxes)
  python benchmarks/word2vec/bench_sgns.py --no-real --zipf 1e8 --trainers embedfast,gensim   # only the 100M point

Corpora are written to bench-data/ (the embedded corpus decompressed once, Zipf corpora by gen_corpus.py).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # this family's scripts, then benchmarks/_common.py
from _common import DATA, peak_rss_mb, run_json, write_json  # noqa: E402
from _common import quality as standard_quality  # noqa: E402
HP = dict(dim=100, window=5, negative=5, sample=1e-4, min_count=5, alpha=0.025, min_alpha=0.0001, threads=2, seed=1)
TRAINERS = ("embedfast", "gensim", "torch")


# ----------------------------------------------------------------------------------------------------------
# workers: one trainer per fresh process
# ----------------------------------------------------------------------------------------------------------


def _worker(name: str, corpus: str, epochs: int, out: str, max_seconds: float) -> dict:
    # torch is imported only where a trainer needs it: the gensim process measures its peak without torch
    # (gensim users do not load it; `import torch` alone is ~218 MB of resident memory here)
    t0 = time.perf_counter()
    info: dict = {}
    if name == "gensim":
        from gensim.models import Word2Vec

        model = Word2Vec(vector_size=HP["dim"], window=HP["window"], negative=HP["negative"], sample=HP["sample"],
                         min_count=HP["min_count"], alpha=HP["alpha"], min_alpha=HP["min_alpha"], sg=1, hs=0,
                         workers=HP["threads"], seed=HP["seed"], epochs=epochs)
        model.build_vocab(corpus_file=corpus)
        t1 = time.perf_counter()
        model.train(corpus_file=corpus, total_words=model.corpus_total_words, epochs=epochs)
        train_s = time.perf_counter() - t1
        words, matrix = list(model.wv.index_to_key), model.wv.vectors
        info.update(raw_words=model.corpus_total_words * epochs, train_s=train_s, epochs_done=epochs)
    elif name == "embedfast":
        import embedfast

        if not hasattr(embedfast, "Word2Vec"):
            return {"error": "embedfast.Word2Vec is not available in this build"}
        model = embedfast.Word2Vec(dim=HP["dim"], window=HP["window"], negative=HP["negative"], sample=HP["sample"],
                                   min_count=HP["min_count"], alpha=HP["alpha"], min_alpha=HP["min_alpha"],
                                   epochs=epochs, threads=HP["threads"], seed=HP["seed"])
        t1 = time.perf_counter()
        model.train(corpus)  # corpus pipeline (vocabulary, encoding) included in the timed part
        train_s = time.perf_counter() - t1
        # the trained matrix itself, as gensim's model.wv.vectors above (model.vectors would copy it: +40 MB
        # at a 100k-word vocabulary, which the gensim side does not pay)
        words, matrix = list(model.words), model.matrix
        info.update(raw_words=None, train_s=train_s, epochs_done=epochs)  # raw words filled in by the parent
    elif name == "torch":
        sys.path.insert(0, HERE)
        import pure_torch_sgns

        r = pure_torch_sgns.train(corpus, epochs=epochs, max_seconds=max_seconds, log=lambda *a: None,
                                  **{k: HP[k] for k in HP})
        words, matrix = r["words"], r["matrix"]
        info.update(raw_words=r["raw_words"], train_s=r["train_s"], epochs_done=r["epochs_done"])
    else:
        raise ValueError(f"unknown trainer {name!r}")
    info["process_s"] = time.perf_counter() - t0
    info["maxrss_mb"] = peak_rss_mb()  # before the saving below imports torch into the gensim process
    import torch

    matrix = torch.from_numpy(matrix) if not isinstance(matrix, torch.Tensor) else matrix
    torch.save({"words": words, "matrix": matrix.detach().float().contiguous()}, out)
    return info


def run_trainer(name: str, corpus: str, epochs: int, out: str, max_seconds: float) -> dict:
    """Run one trainer in a fresh interpreter; end-to-end wall time includes start-up and imports."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--corpus", corpus, "--epochs", str(epochs),
           "--out", out, "--max-seconds", str(max_seconds)]
    try:
        info = run_json(cmd[1:], what=name)
    except RuntimeError as exc:
        return {"error": str(exc).strip().splitlines()[-1]}
    info["load_1m"] = os.getloadavg()[0]  # 1-minute load average at the end of the run (other jobs included)
    return info


# ----------------------------------------------------------------------------------------------------------
# corpora, quality
# ----------------------------------------------------------------------------------------------------------


def real_corpus() -> str:
    from embedfast.data import default_corpus_path

    os.makedirs(DATA, exist_ok=True)
    path = os.path.join(DATA, "wordnet_glosses.txt")
    if not os.path.exists(path):
        with gzip.open(default_corpus_path(), "rb") as fin, open(path + ".tmp", "wb") as fout:
            shutil.copyfileobj(fin, fout)
        os.replace(path + ".tmp", path)
    return path


def zipf_corpus(tokens: int) -> str:
    sys.path.insert(0, HERE)
    import gen_corpus

    os.makedirs(DATA, exist_ok=True)
    return gen_corpus.ensure(os.path.join(DATA, f"zipf_{tokens}.txt"), tokens, seed=0)


def count_tokens(path: str) -> int:
    """Whitespace-separated tokens of a text file (what word2vec/gensim call raw words)."""
    n = 0
    with open(path, "rb") as f:
        for line in f:
            n += len(line.split())
    return n


def quality(vec_path: str) -> dict:
    import torch
    from types import SimpleNamespace

    d = torch.load(vec_path)
    return standard_quality(SimpleNamespace(words=d["words"], matrix=d["matrix"]))


# ----------------------------------------------------------------------------------------------------------
# the comparison
# ----------------------------------------------------------------------------------------------------------


def bench_corpus(label, corpus, epochs, repeats, trainers, torch_seconds, with_quality, workdir):
    """Repeats interleaved (embedfast, gensim, torch, embedfast, ...) so load swings hit every trainer alike;
    the pure-PyTorch trainer runs once (time-boxed). Rows hold the medians and the individual runs."""
    tokens = count_tokens(corpus)
    runs = {name: [] for name in trainers}
    errors = {}
    for rep in range(repeats):
        for name in trainers:
            if name in errors or (name == "torch" and rep > 0):
                continue
            out = os.path.join(workdir, f"{label}_{name}_{rep}.pt")
            r = run_trainer(name, corpus, epochs, out, torch_seconds)
            if "error" in r:
                errors[name] = r["error"]
                continue
            if r.get("raw_words") is None:
                r["raw_words"] = tokens * epochs
            r["words_per_s"] = r["raw_words"] / r["train_s"]
            if with_quality:
                r.update(quality(out))
            runs[name].append(r)
            print(f"  [{label}] {name} run {rep + 1}: {r['words_per_s']:,.0f} words/s, wall {r['wall_s']:.1f}s, "
                  f"rss {r['maxrss_mb']:.0f} MB, load {r['load_1m']:.1f}"
                  + (f", WS353 {r['ws353']:.3f} SimLex {r['simlex']:.3f} analogy {100 * r['analogy']:.2f}%"
                     if "ws353" in r else ""), file=sys.stderr, flush=True)
    rows = []
    for name in trainers:
        if name in errors:
            rows.append({"corpus": label, "trainer": name, "error": errors[name]})
            continue
        rs = runs[name]
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0] if isinstance(rs[0][k], (int, float))}
        med.update(corpus=label, trainer=name, tokens=tokens, epochs=epochs, repeats=len(rs), runs=rs)
        rows.append(med)
    base = {r["trainer"]: r for r in rows if "error" not in r}
    for r in rows:
        if "error" in r:
            continue
        for ref in ("gensim", "torch"):
            if ref in base:
                r[f"x_{ref}"] = r["words_per_s"] / base[ref]["words_per_s"]
    return rows


def format_table(rows) -> str:
    head = ("| corpus | trainer | tokens | epochs done | raw words/s | vs gensim | vs torch | train s | wall s "
            "| peak RSS MB | load | WS353 | SimLex | analogy % (n) |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['corpus']} | {r['trainer']} | — | error: {r['error']} |" + " |" * 10)
            continue
        q = (f"{r['ws353']:.3f} | {r['simlex']:.3f} | {100 * r['analogy']:.2f} ({int(r['analogy_n'])})"
             if "ws353" in r else "— | — | —")
        ep = r["epochs_done"]
        ep_s = f"{ep:.0f}" if abs(ep - round(ep)) < 1e-6 else f"{ep:.2f} (time-boxed)"
        out.append(
            f"| {r['corpus']} | {r['trainer']} | {r['tokens']:,} | {ep_s} | {r['words_per_s']:,.0f} "
            f"| {r.get('x_gensim', float('nan')):.2f}x | {r.get('x_torch', float('nan')):.1f}x | {r['train_s']:.1f} "
            f"| {r['wall_s']:.1f} | {r['maxrss_mb']:.0f} | {r['load_1m']:.1f} | {q} |"
        )
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", choices=TRAINERS, help=argparse.SUPPRESS)
    ap.add_argument("--corpus", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--epochs", type=int, default=5, help="epochs on the real corpus and Zipf points < 10M")
    ap.add_argument("--max-seconds", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=3, help="runs per trainer on the real corpus (median)")
    ap.add_argument("--zipf", default="1e6,1e7", help="comma-separated Zipf corpus sizes in tokens ('' for none)")
    ap.add_argument("--trainers", default=",".join(TRAINERS))
    ap.add_argument("--torch-seconds", type=float, default=120.0, help="time box of the pure-PyTorch trainer")
    ap.add_argument("--quick", action="store_true", help="one repeat, no Zipf points, 20 s torch time box")
    ap.add_argument("--no-real", action="store_true", help="skip the real corpus (only the Zipf points)")
    ap.add_argument("--json-out", help="also write the rows as JSON")
    a = ap.parse_args(argv)

    if a.worker:
        ms = a.max_seconds if a.max_seconds and a.max_seconds > 0 else None
        print(json.dumps(_worker(a.worker, a.corpus, a.epochs, a.out, ms)))
        return 0

    if a.quick:
        a.repeats, a.zipf, a.torch_seconds = 1, "", 20.0
    trainers = [t for t in a.trainers.split(",") if t]
    workdir = os.path.join(DATA, "vectors")
    os.makedirs(workdir, exist_ok=True)
    rows = [] if a.no_real else bench_corpus("wordnet", real_corpus(), a.epochs, a.repeats, trainers,
                                              a.torch_seconds, True, workdir)
    for size in [int(float(s)) for s in a.zipf.split(",") if s.strip()]:
        epochs = a.epochs if size < 10_000_000 else 1
        zt = [t for t in trainers if t != "torch" or size <= 10_000_000]
        rows += bench_corpus(f"zipf-{size // 1_000_000}M", zipf_corpus(size), epochs, 1, zt, a.torch_seconds,
                             False, workdir)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; python {platform.python_version()}")
    print(f"hyperparameters: {HP}, epochs {a.epochs} (1 on Zipf points >= 10M), repeats {a.repeats}, "
          f"torch time box {a.torch_seconds:.0f}s")
    print(format_table(rows))
    print("per-run figures (all repeats):")
    for r in rows:
        print(" ", json.dumps(r))
    write_json(a.json_out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
