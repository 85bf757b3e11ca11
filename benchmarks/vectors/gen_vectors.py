"""Generate a synthetic pretrained-vectors file, deterministic from a seed.

    python benchmarks/vectors/gen_vectors.py --rows 400000 --dim 50    # bench-data/glove-400000x50.txt (~170 MB)
    python benchmarks/vectors/gen_vectors.py --rows 400000 --dim 300   # ~1 GB
    python benchmarks/vectors/gen_vectors.py --format word2vec-bin --gzip ...

Words: common English tokens then syllable pseudo-words (Zipf-ish lengths). Values: GloVe-like '%.5g' text with
negative signs and occasional exponents (see embedfast/synthetic.py). Existing files are reused unless --force.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/_common.py
from _common import DATA as BENCH_DATA  # noqa: E402  (also puts the checkout on sys.path)

from embedfast.synthetic import write_vectors  # noqa: E402



def default_path(rows: int, dim: int, fmt: str = "glove", gz: bool = False, seed: int = 0) -> str:
    ext = {"glove": "txt", "word2vec": "w2v.txt", "word2vec-bin": "bin"}[fmt]
    name = f"{fmt.split('-')[0]}-{rows}x{dim}{'' if seed == 0 else f'-s{seed}'}.{ext}{'.gz' if gz else ''}"
    return os.path.normpath(os.path.join(BENCH_DATA, name))


def ensure(rows: int, dim: int, fmt: str = "glove", gz: bool = False, seed: int = 0, force: bool = False,
           path: str | None = None) -> str:
    """Path of the generated file, generating it first if missing."""
    path = path or default_path(rows, dim, fmt, gz, seed)
    if force or not os.path.exists(path):
        t = time.perf_counter()
        tmp = path + ".part" + (".gz" if gz else "")  # write_vectors compresses when the name ends in .gz
        write_vectors(tmp, rows, dim, seed=seed, format=fmt)
        os.replace(tmp, path)
        print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB) in {time.perf_counter() - t:.1f} s",
              file=sys.stderr)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=400000)
    p.add_argument("--dim", type=int, default=50)
    p.add_argument("--format", choices=["glove", "word2vec", "word2vec-bin"], default="glove")
    p.add_argument("--gzip", action="store_true", help="gzip-compress the output")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output path (default: bench-data/<format>-<rows>x<dim>.<ext>)")
    p.add_argument("--force", action="store_true", help="regenerate even if the file exists")
    a = p.parse_args(argv)
    print(ensure(a.rows, a.dim, a.format, a.gzip, a.seed, a.force, a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
