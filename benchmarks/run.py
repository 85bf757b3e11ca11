"""Print every family's comparison table: runs each benchmarks/*_table.py in turn (`make bench`).

    python benchmarks/run.py            # all tables
    python benchmarks/run.py load       # only load_table.py
Extra arguments after the family name go to its script.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    tables = {os.path.basename(p)[:-len("_table.py")]: p for p in sorted(glob.glob(os.path.join(HERE, "*_table.py")))}
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
