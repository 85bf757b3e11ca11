"""Loading pretrained vectors: embedfast vs pandas vs gensim vs the pure-Python loop, side by side in one run.

    python benchmarks/vectors/load_table.py                      # 400k x 50 GloVe-like text (~170 MB, generated once)
    python benchmarks/vectors/load_table.py --rows 400000 --dim 300 --skip python,gensim
    python benchmarks/vectors/load_table.py --markdown           # print the table as Markdown (for RESULTS.md)

Every loader runs in a fresh subprocess (imports first, then the timed loads), so peak-RSS figures do not mix:
"peak RSS" is the process's VmHWM minus its resident size just before the first load, divided by the bytes the
result needs (float32 matrix + the words as Python str objects and their list). Each loader produces the same
thing: a list of words and a float32 [N, D] matrix. Times are medians over --repeat loads (gensim and the
Python loop: fewer, they are slow). The file is read once before timing, so every loader sees it in the page
cache.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # this family's scripts, then benchmarks/_common.py
from _common import run_json, status_kb  # noqa: E402


def _result_bytes(words, matrix) -> int:
    return int(matrix.nbytes) + sum(sys.getsizeof(w) for w in words) + sys.getsizeof(words)


def worker(name: str, path: str, repeat: int) -> dict:
    """Runs in the subprocess: import, then load `repeat` times; returns times and memory."""
    import numpy as np

    if name.startswith("embedfast"):
        import torch  # noqa: F401

        import embedfast

        threads = int(name.rsplit("-t", 1)[1]) if "-t" in name else None
        fmt = "native" if "native" in name else "auto"

        def load():
            v = embedfast.load_vectors(path, threads=threads, format=fmt)
            return v.words, v.matrix.numpy()
    elif name in ("pandas", "pandas-default"):
        import pandas as pd

        # "pandas": tuned (no NA detection); "pandas-default": the call most code uses
        tuned = dict(na_filter=False, keep_default_na=False) if name == "pandas" else {}

        def load():
            df = pd.read_csv(path, sep=" ", header=None, quoting=csv.QUOTE_NONE, engine="c", index_col=0,
                             encoding="utf-8", **tuned)
            return df.index.tolist(), df.to_numpy(np.float32)
    elif name == "gensim":
        from gensim.models import KeyedVectors

        def load():
            kv = KeyedVectors.load_word2vec_format(path, binary=False, no_header=True)
            return kv.index_to_key, kv.vectors
    elif name == "python":
        from embedfast.synthetic import python_loop_load as load_py

        def load():
            return load_py(path)
    else:
        raise ValueError(name)

    base = status_kb("VmRSS")
    times = []
    for i in range(repeat):
        t = time.perf_counter()
        words, matrix = load()
        times.append(time.perf_counter() - t)
        if i == 0:
            peak = status_kb("VmHWM")
            need = _result_bytes(words, matrix)
            shape = list(matrix.shape)
            checksum = float(np.float64(matrix[:: max(1, len(words) // 1000)].sum()))
            first = words[:3]
        del words, matrix
    return dict(name=name, times=times, peak_delta=(peak - base) * 1024, need=need, shape=shape,
                checksum=checksum, first=first)


def run_worker(name: str, path: str, repeat: int, timeout: float = 900) -> dict:
    return run_json([__file__, "--worker", name, path, "--repeat", str(repeat)], timeout=timeout, what=name)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=400000)
    p.add_argument("--dim", type=int, default=50)
    p.add_argument("--repeat", type=int, default=5, help="loads per fast loader (median)")
    p.add_argument("--skip", default="", help="comma-separated loaders to leave out (python, gensim, pandas)")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--worker", nargs=2, metavar=("NAME", "PATH"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(a.worker[0], a.worker[1], a.repeat)))
        return 0

    from gen_vectors import ensure

    path = ensure(a.rows, a.dim)
    size = os.path.getsize(path)
    with open(path, "rb") as f:  # warm the page cache
        while f.read(1 << 24):
            pass
    import torch

    import embedfast

    # the multi-threaded result is identical to the single-threaded one
    v1, v2 = embedfast.load_vectors(path, threads=1), embedfast.load_vectors(path, threads=2)
    identical = v1.words == v2.words and torch.equal(v1.matrix, v2.matrix)
    native = os.path.join(os.path.dirname(path), os.path.basename(path) + ".native")
    v1.save(native)
    del v1, v2

    skip = set(filter(None, a.skip.split(",")))
    plan = [("embedfast-t2", a.repeat), ("embedfast-t1", a.repeat), ("embedfast-native", a.repeat),
            ("pandas", 3), ("pandas-default", 3), ("gensim", 1), ("python", 1)]
    rows = []
    for name, rep in plan:
        if name in skip:
            continue
        target = native if name == "embedfast-native" else path
        r = run_worker(name, target, rep)
        r["median"] = statistics.median(r["times"])
        rows.append(r)
        print(f"  {name}: {r['median']:.3f} s", file=sys.stderr)
    ref = {r["name"]: r for r in rows}
    base = ref["embedfast-t2"]
    for r in rows:
        if r["shape"] != base["shape"] or abs(r["checksum"] - base["checksum"]) > 1e-3 * max(1, abs(base["checksum"])):
            raise SystemExit(f"{r['name']} gave a different result: {r['shape']} {r['checksum']} vs "
                             f"{base['shape']} {base['checksum']}")
    n = base["shape"][0]
    head = (f"{a.rows} x {a.dim} GloVe-like text, {size / 1e6:.1f} MB; torch threads {torch.get_num_threads()}; "
            f"threads=2 result identical to threads=1: {identical}")
    cols = ["loader", "runs", "median s", "rows/s", "MB/s", "x slower than embedfast-t2", "peak RSS / result"]
    table = []
    for r in rows:
        t = r["median"]
        table.append([r["name"], str(len(r["times"])), f"{t:.3f}", f"{n / t:,.0f}",
                      f"{size / 1e6 / t:,.0f}" if r["name"] != "embedfast-native" else "(cache)",
                      f"{t / base['median']:.1f}", f"{r['peak_delta'] / r['need']:.2f}"])
    need = base["need"]
    foot = (f"result = float32 matrix {n * a.dim * 4 / 1e6:.1f} MB + words as Python str {(need - n * a.dim * 4) / 1e6:.1f} MB"
            f" = {need / 1e6:.1f} MB")
    if a.markdown:
        print(head + "\n")
        print("| " + " | ".join(cols) + " |")
        print("|" + "|".join("---" for _ in cols) + "|")
        for row in table:
            print("| " + " | ".join(row) + " |")
        print("\n" + foot)
    else:
        print(head)
        widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(cols)]
        print("  ".join(c.rjust(w) for c, w in zip(cols, widths)))
        for row in table:
            print("  ".join(x.rjust(w) for x, w in zip(row, widths)))
        print(foot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
