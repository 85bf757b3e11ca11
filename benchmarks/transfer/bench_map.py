"""`embedfast map --strategy mix` against the straightforward pipeline (baseline_map.py), each in a fresh
process, alternating, on a real parallel corpus; prints one JSON line per run and a summary (medians, ratio).

    python benchmarks/transfer/bench_map.py EN.gz ZH.gz MODEL_DIR [--rounds 1] [--lines N] [--json-out F]

--lines N takes the first N pairs (written to a temporary folder, never into the repository).
"""
import argparse
import gzip
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from _common import commit, median, run_json, write_json  # noqa: E402

CHILD = """
import json, sys
sys.path.insert(0, {bench!r})
from _common import peak_rss_mb
from embedfast.transfer.pipeline import map_embeddings
r = map_embeddings({en!r}, {zh!r}, {model!r}, out={out!r}, strategy="mix", stopwords={stop!r}, min_links=2,
                   progress=False)
rep = {{k: v for k, v in r.report.items() if isinstance(v, (int, float, str))}}
rep.update(what="embedfast", peak_rss_mb=peak_rss_mb(), words=len(r.vectors))
print(json.dumps(rep))
"""


def head(path, n, out):
    with gzip.open(path, "rt", encoding="utf-8") as f, open(out, "w", encoding="utf-8") as g:
        for i, line in enumerate(f):
            if i >= n:
                break
            g.write(line)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("en"), ap.add_argument("zh"), ap.add_argument("model")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--lines", type=int, default=0)
    ap.add_argument("--json-out", default="")
    a = ap.parse_args()
    stop = os.path.join(HERE, "zh_stopwords.txt")
    with tempfile.TemporaryDirectory() as d:
        en, zh = a.en, a.zh
        if a.lines:
            en, zh = head(a.en, a.lines, os.path.join(d, "en.txt")), head(a.zh, a.lines, os.path.join(d, "zh.txt"))
        runs = []
        for r in range(a.rounds):
            order = ("embedfast", "baseline") if r % 2 == 0 else ("baseline", "embedfast")
            for side in order:
                out = os.path.join(d, f"{side}.txt")
                if side == "baseline":
                    res = run_json([os.path.join(HERE, "baseline_map.py"), en, zh, a.model, out, "--stopwords", stop])
                else:
                    code = CHILD.format(bench=os.path.join(HERE, ".."), en=en, zh=zh, model=a.model, out=out,
                                        stop=stop)
                    res = run_json(["-c", code])
                res["round"] = r
                print(json.dumps(res), flush=True)
                runs.append(res)
    summary = {"commit": commit(), "lines": a.lines or "all", "rounds": a.rounds}
    for side in ("embedfast", "baseline"):
        rs = [x for x in runs if x["what"] == side]
        summary[side] = {k: median([x[k] for x in rs]) for k in ("wall_s", "seconds_encode", "seconds_align",
                                                                  "pieces_per_s", "peak_rss_mb")}
    summary["speedup_wall"] = summary["baseline"]["wall_s"] / summary["embedfast"]["wall_s"]
    print(json.dumps(summary))
    write_json(a.json_out, {"runs": runs, "summary": summary})


if __name__ == "__main__":
    main()
