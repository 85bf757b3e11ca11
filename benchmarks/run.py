"""Print every family's side-by-side comparison table (`make bench`): vectors (load), word2vec (sgns), fusion.

    python benchmarks/run.py            # all tables (several minutes; gensim alone takes ~20 s per load)
    python benchmarks/run.py load       # only the loader table (benchmarks/vectors/load_table.py)
Extra arguments after the family name go to its script. GPU tables: word2vec/bench_sgns_gpu.py,
fusion/bench_gather_gpu.py.
"""
from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    tables = {name: os.path.join(HERE, script) for name, script in
              (("load", "vectors/load_table.py"), ("sgns", "word2vec/bench_sgns.py"),
                                  ("fusion", "fusion/bench_fusion.py"))}
    names = [argv[0]] if argv and argv[0] in tables else list(tables)
    extra = argv[1:] if argv and argv[0] in tables else argv
    if argv and argv[0] not in tables and not argv[0].startswith("-"):
        print(f"unknown family {argv[0]!r}; have {', '.join(tables)}", file=sys.stderr)
        return 2
    rc = 0
    for name in names:
        print(f"## {name}", flush=True)
        rc |= subprocess.call([sys.executable, tables[name], *extra])
    return rc


if __name__ == "__main__":
    sys.exit(main())
