"""Two processes saving to the same paths at the same time (Vectors.save in every format, Word2Vec
checkpoints), with a third one reading them meanwhile: every save succeeds, every read sees one writer's whole
file, the result is one writer's file (never rows of both), and no temporary file is left."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from .util import REPO

ROUNDS = 12
KINDS = ["glove", "word2vec", "word2vec-bin", "native", "checkpoint"]

WRITER = textwrap.dedent(r"""
    import sys, torch
    from embedfast import Vectors, Word2Vec
    folder, value, rounds, kinds = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(",")
    words = [f"w{i}" for i in range(3000)]
    w = Word2Vec(dim=16, min_count=1, epochs=1, threads=1).build_vocab([words])
    w.w_in.fill_(value)
    w.w_out.fill_(value)
    v = Vectors(words, torch.full((len(words), 16), value))
    for _ in range(rounds):
        for kind in kinds:
            path = f"{folder}/out.{kind}"
            if kind == "checkpoint":
                w.save_checkpoint(path)
            else:
                v.save(path, format=kind)
    print("done", flush=True)
""")

LOAD = textwrap.dedent(r"""
    import os, sys, time, torch
    from embedfast import Word2Vec, load_vectors
    def load(path, kind):
        m = Word2Vec.load_checkpoint(path).w_in if kind == "checkpoint" else load_vectors(path, format=kind).matrix
        vals = set(torch.unique(m).tolist())
        assert len(vals) == 1 and tuple(m.shape) == (3000, 16), (path, vals, m.shape)  # one writer's whole file
        return vals.pop()
""")

READER = LOAD + textwrap.dedent(r"""
    folder, stop, kinds = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    reads = 0
    t_end = time.time() + 150
    while time.time() < t_end and not os.path.exists(stop):  # until both writers are done
        for kind in kinds:
            path = f"{folder}/out.{kind}"
            if os.path.exists(path):
                load(path, kind)
                reads += 1
    print("reads", reads, flush=True)
""")

FINAL = LOAD + textwrap.dedent(r"""
    folder, kinds = sys.argv[1], sys.argv[2].split(",")
    print(" ".join(f"{k}={load(f'{folder}/out.{k}', k)}" for k in kinds))
""")


def _env():
    e = dict(os.environ)
    e["PYTHONPATH"] = REPO + os.pathsep + e.get("PYTHONPATH", "")
    e["OMP_NUM_THREADS"] = "1"
    return e


@pytest.mark.slow  # make test-slow: keeps make test within its 15 minutes
def test_two_writers_and_a_reader_on_the_same_paths(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    kinds = ",".join(KINDS)
    stop = str(tmp_path / "stop")
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(v), str(ROUNDS), kinds], env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for v in (1.0, 2.0)]
    reader = subprocess.Popen([sys.executable, "-c", READER, str(folder), stop, kinds], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        outs = [p.communicate(timeout=300) for p in writers]
        open(stop, "w").close()
        outs.append(reader.communicate(timeout=300))
    finally:
        for p in writers + [reader]:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(writers + [reader], outs):
        assert p.returncode == 0, f"exit {p.returncode}\n{err[-3000:]}"
    assert all("done" in o for o, _ in outs[:2])
    r = subprocess.run([sys.executable, "-c", FINAL, str(folder), kinds], env=_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    got = dict(x.split("=") for x in r.stdout.split())
    assert set(got) == set(KINDS) and set(got.values()) <= {"1.0", "2.0"}, r.stdout
    assert sorted(os.listdir(folder)) == sorted(f"out.{k}" for k in KINDS), os.listdir(folder)
