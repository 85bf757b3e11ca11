"""What every benchmark script shares: where things are, the peak-RSS reader, medians, the fresh-subprocess
runner whose last stdout line is a JSON result, and the commit being measured.

A script in ``benchmarks/<family>/`` imports it with::

    HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [HERE, os.path.dirname(HERE)]   # this family's helpers, then benchmarks/ (this module)
    from _common import ...
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Iterable, Optional, Sequence

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)  # the checkout whose embedfast is measured
DATA = os.path.join(ROOT, "bench-data")  # generated inputs (git-ignored), reused between runs
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

median = statistics.median


def status_kb(field: str) -> int:
    """A field of /proc/self/status in KiB (VmHWM: peak resident set, VmRSS, RssAnon, RssFile, ...)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def status_mb(fields: Iterable[str]) -> dict:
    """Several fields of /proc/self/status, in MiB."""
    return {k: status_kb(k) // 1024 for k in fields}


def peak_rss_mb() -> float:
    """Peak resident set of this process since its exec, in MiB (/proc/self/status VmHWM).

    Not getrusage's ru_maxrss: Linux carries the forking parent's high-water mark across fork+exec into
    ru_maxrss, so a child of a large parent (a script, after loading vectors to evaluate them) would report
    at least the parent's size. VmHWM belongs to the process's own address space, which exec replaces.
    """
    try:
        return status_kb("VmHWM") / 1024
    except (OSError, RuntimeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Reset the peak resident set (VmHWM) to the current one (Linux: write 5 to /proc/self/clear_refs)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def run_json(argv: Sequence[str], *, env: Optional[dict] = None, timeout: Optional[float] = None,
             what: Optional[str] = None) -> dict:
    """Run ``argv`` (a Python script and its arguments) in a fresh interpreter with this checkout first on
    PYTHONPATH; return the JSON object its last stdout line holds, with ``wall_s`` (start-up and imports
    included). A failure raises RuntimeError with the tail of its stderr."""
    e = dict(os.environ if env is None else env)
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=e, timeout=timeout)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{what or ' '.join(map(str, argv[:3]))} failed (exit {p.returncode}):\n"
                           f"{p.stderr[-3000:]}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out.setdefault("wall_s", wall)
    return out


def quality(vectors) -> dict:
    """Scores of word vectors (``.words`` most frequent first, ``.matrix``) on the standard files (gensim's test
    data): WordSim353 and SimLex-999 Spearman, Google analogies 3CosAdd accuracy with restrict_vocab=30000."""
    from embedfast import evaluate
    from embedfast.data import evaluation_file

    ws = evaluate.evaluate_word_pairs(vectors, evaluation_file("wordsim353.tsv"))
    sl = evaluate.evaluate_word_pairs(vectors, evaluation_file("simlex999.txt"))
    an = evaluate.evaluate_analogies(vectors, evaluation_file("questions-words.txt"), restrict_vocab=30000)
    return {"ws353": ws["spearman"], "simlex": sl["spearman"], "analogy": an["accuracy"], "analogy_n": an["total"],
            "ws_used": ws["used"], "sl_used": sl["used"]}


def write_json(path: Optional[str], obj) -> None:
    """``obj`` as indented JSON into ``path`` (a ``--json-out`` option); nothing when ``path`` is empty."""
    if path:
        with open(path, "w") as f:
            json.dump(obj, f, indent=1)


def commit(cwd: str = ROOT) -> str:
    """The short commit of the checkout measured ("unknown" outside git)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=cwd).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
