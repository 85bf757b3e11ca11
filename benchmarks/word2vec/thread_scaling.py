"""Why do two threads not speed a word2vec model up? The bare op (as ``ab_sgns_op.py`` calls it) three ways:

  python benchmarks/word2vec/thread_scaling.py [--tree .] [--model cbow-hs,sg-hs] [--rounds 5] [--tokens N]
      [--inputs PATH]

  1t    one process, 1 thread
  2t    one process, 2 threads (Hogwild on one pair of tables: the rows near the Huffman root are written by both)
  2x1t  two 1-thread processes at the same time, each on its own copy of the tables (the same cores, caches and
        memory bandwidth as 2t, but no row shared)

Each measurement is a fresh process (``ab_sgns_op.CHILD``: the fastest of ``--calls`` calls, wall clock); the
three alternate per round; medians. Speed-ups are in corpus passes per second against 1t: ``2t`` = t(1t) / t(2t),
``2x1t`` = 2 t(1t) / t(2x1t). Reading: 2x1t near 2 and 2t well below it: the shared rows (cache lines moving
between the cores) cost the scaling; both low: the machine (a busy or hyper-threaded second core, memory
bandwidth) does. Only meaningful on a quiet machine: print ``uptime`` next to it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from ab_sgns_op import CHILD, INPUTS, MAKE, torch_load_keys  # noqa: E402


def measure(tree: str, model: str, threads: int, procs: int, inputs: str, tokens: int, calls: int) -> float:
    """Seconds of the slowest of `procs` simultaneous processes (each: its fastest of `calls` calls)."""
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    cmd = [sys.executable, "-c", CHILD, inputs, str(calls), str(threads), model, str(tokens), "wall"]
    ps = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=os.path.abspath(tree))
          for _ in range(procs)]
    outs = [p.communicate()[0] for p in ps]
    if any(p.returncode for p in ps):
        raise SystemExit(f"a measurement of {model} failed (exit codes {[p.returncode for p in ps]})")
    return max(json.loads(o.strip().splitlines()[-1])["seconds"] for o in outs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", default=".")
    ap.add_argument("--model", default="cbow-hs,sg-hs")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=0, help="train on the first N tokens only (0: all)")
    ap.add_argument("--inputs", default=INPUTS, help="where the inputs are kept (made when missing)")
    args = ap.parse_args()
    if not os.path.exists(args.inputs) or "huffman" not in torch_load_keys(args.inputs):
        os.makedirs(os.path.dirname(os.path.abspath(args.inputs)), exist_ok=True)
        subprocess.run([sys.executable, "-c", MAKE, args.inputs], check=True,
                       env={**os.environ, "PYTHONPATH": os.path.abspath(args.tree)})
    ways = {"1t": (1, 1), "2t": (2, 1), "2x1t": (1, 2)}  # name -> (threads, processes)
    for model in args.model.split(","):
        res: dict[str, list[float]] = {k: [] for k in ways}
        for r in range(args.rounds):
            for k in (list(ways) if r % 2 == 0 else list(ways)[::-1]):
                res[k].append(measure(args.tree, model, *ways[k], args.inputs, args.tokens, args.calls))
        med = {k: statistics.median(v) for k, v in res.items()}
        print(f"{model}: median s 1t {med['1t']:.3f}, 2t {med['2t']:.3f}, 2x1t {med['2x1t']:.3f} "
              f"(rounds {json.dumps({k: [round(x, 3) for x in v] for k, v in res.items()})}); speed-up of 2 "
              f"threads {med['1t'] / med['2t']:.2f}, of two processes {2 * med['1t'] / med['2x1t']:.2f}",
              flush=True)


if __name__ == "__main__":
    main()
