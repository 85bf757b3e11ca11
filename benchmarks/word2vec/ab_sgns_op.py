"""A/B of the bare ``sgns_train`` op of two source trees: the same inputs, the op called directly (no trainer).

  python benchmarks/word2vec/ab_sgns_op.py --a /path/to/old/checkout --b . [--rounds 5] [--calls 4] [--threads 2]
      [--model sgns|cbow-ns|sg-hs|cbow-hs] [--tokens N] [--clock wall|cpu] [--inputs PATH]

Inputs (made once with tree B, saved to bench-data/sgns_op_inputs.pt): the embedded WordNet glosses encoded by
``Word2Vec.build_vocab`` (dim 100, min_count 5, sample 1e-4, seed 1), its sampling tables and initial tables.
Each measurement is a fresh subprocess with ``PYTHONPATH=<tree>`` that makes ``--calls`` calls of
``torch.ops.embedfast.sgns_train`` over the whole corpus (window 5, negative 5, HogBatch, table sigmoid, each
call from the same initial tables) and reports its fastest call and a checksum of the stats; the trees
alternate (A, B, B, A, ...). Prints, per tree, the fastest calls of every round and the median of them, and B/A.
Fastest-of-N is the least disturbed by other work on a shared machine. ``--model`` other than sgns times
``word2vec_train`` instead (CBOW and/or hierarchical softmax; negative 0 for HS, alpha 0.05 for CBOW, the
vocabulary's Huffman tables; no HogBatch), on the same inputs. ``--tokens N`` trains on the first N tokens'
sentences only; ``--clock cpu`` times the calls by the process' CPU time (time.process_time: with one thread,
less disturbed by the other processes of a shared machine than wall time).
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
from _common import DATA  # noqa: E402

INPUTS = os.path.join(DATA, "sgns_op_inputs.pt")

MAKE = r"""
import sys, torch, embedfast
from embedfast.data import default_corpus_path
m = embedfast.Word2Vec(dim=100, window=5, negative=5, sample=1e-4, min_count=5, epochs=1, threads=2, seed=1)
m.build_vocab(default_corpus_path())
ids, off, bounds, _ = m.encoded_corpus()
torch.save(dict(ids=ids, off=off, tables=m.sampling_tables(), w_in=m.w_in, w_out=m.w_out,
                huffman=m.huffman_tables()), sys.argv[1])
"""

CHILD = r"""
import json, sys, time, torch
import embedfast  # registers the ops of this tree
d = torch.load(sys.argv[1], weights_only=True)
calls, threads, model, tokens = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
clock = time.process_time if sys.argv[6] == "cpu" else time.perf_counter
if tokens > 0:
    d["off"] = d["off"][:int(torch.searchsorted(d["off"], d["off"][0] + tokens)) + 1]
n = int(d["off"][-1] - d["off"][0])
cbow, hs = model.startswith("cbow"), model.endswith("hs")
best, check = float("inf"), None
for _ in range(calls):
    w_in, w_out = d["w_in"].clone(), d["w_out"].clone()
    t = clock()
    if model == "sgns":
        st = torch.ops.embedfast.sgns_train(w_in, w_out, d["ids"], d["off"], *d["tables"], 5, 5, 0.025, 1e-4, 0, n,
                                            1, 0, threads, True, False)
    else:
        st = torch.ops.embedfast.word2vec_train(w_in, w_out, d["ids"], d["off"], *d["tables"], *d["huffman"], 5,
                                                0 if hs else 5, 0.05 if cbow else 0.025, 1e-4, 0, n, 1, 0, threads,
                                                cbow, hs, False, False)
    best = min(best, clock() - t)
    check = st[1:7].tolist()
print(json.dumps({"seconds": best, "stats": check}))
"""


def measure(tree: str, calls: int, threads: int, model: str, inputs: str, tokens: int, clock: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    out = subprocess.run([sys.executable, "-c", CHILD, inputs, str(calls), str(threads), model, str(tokens), clock],
                         check=True,
                         capture_output=True, text=True, env=env, cwd=os.path.abspath(tree))
    return json.loads(out.stdout.strip().splitlines()[-1])


def torch_load_keys(path: str) -> set:
    import torch

    return set(torch.load(path, weights_only=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="sgns", choices=["sgns", "cbow-ns", "sg-hs", "cbow-hs"])
    ap.add_argument("--inputs", default=INPUTS, help="where the inputs are kept (made when missing)")
    ap.add_argument("--tokens", type=int, default=0, help="train on the first N tokens only (0: all)")
    ap.add_argument("--clock", default="wall", choices=["wall", "cpu"])
    args = ap.parse_args()
    if not os.path.exists(args.inputs) or "huffman" not in torch_load_keys(args.inputs):
        os.makedirs(os.path.dirname(os.path.abspath(args.inputs)), exist_ok=True)
        subprocess.run([sys.executable, "-c", MAKE, args.inputs], check=True,
                       env={**os.environ, "PYTHONPATH": os.path.abspath(args.b)})
    res = {"a": [], "b": []}
    stats = {}
    for r in range(args.rounds):
        for side in (("a", "b") if r % 2 == 0 else ("b", "a")):
            m = measure(getattr(args, side), args.calls, args.threads, args.model, args.inputs, args.tokens,
                        args.clock)
            res[side].append(m["seconds"])
            stats[side] = m["stats"]
    ma, mb = statistics.median(res["a"]), statistics.median(res["b"])
    print(f"A {args.a}: fastest calls {[round(x, 3) for x in res['a']]}, median {ma:.3f} s")
    print(f"B {args.b}: fastest calls {[round(x, 3) for x in res['b']]}, median {mb:.3f} s")
    print(f"B/A {mb / ma:.3f}; same stats (pairs, negatives, ...): {stats['a'] == stats['b']}")


if __name__ == "__main__":
    main()
