"""The device check of issue 16 (benchmarks/gpu/), dry-run on the CPU: the bench scripts' tables and byte
accounting at tiny sizes, the ptxas report parser, and check.sh's shape (it limits itself with `timeout`)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPU = os.path.join(ROOT, "benchmarks", "gpu")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"gpu_{name}", os.path.join(GPU, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_gather_dry_run_table(tmp_path, capsys):
    bench = _load("bench_gather")
    js = tmp_path / "b.jsonl"
    assert bench.main(["--device", "cpu", "--V", "60", "--D", "8", "--N", "128", "--dtypes", "float32", "--reps", "1",
                       "--copy-mb", "1", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "| method | fwd ms | fwd GB/s | % copy |" in out
    rows = [json.loads(x) for x in js.read_text().splitlines()]
    assert [r["method"] for r in rows] == ["torch stacked F.embedding", "torch F.embedding_bag", "embedfast cpu"]
    import torch

    prob = bench.make_problem(60, 8, 3, 128, 0.15, torch.float32, "cpu")
    fb = bench.forward_bytes(prob)
    for r in rows:
        assert r["fwd ms"] > 0 and r["max abs err"] < 1e-4
        # GB/s is the accounted bytes over the median time
        assert r["fwd GB/s"] * 1e9 * r["fwd ms"] * 1e-3 == pytest.approx(fb, rel=1e-6)
    assert max(r["x best torch"] for r in rows[:2]) == pytest.approx(1.0)  # the best torch row against itself


def test_bench_sgns_dry_run_rows_and_floor(tmp_path, capsys):
    bench = _load("bench_sgns")
    js = tmp_path / "s.jsonl"
    assert bench.main(["--device", "cpu", "--tokens", "3000", "--vocab", "200", "--chunk", "1000",
                       "--baseline-tokens", "2000", "--json", str(js)]) == 0
    rows = {json.loads(x)["backend"]: json.loads(x) for x in js.read_text().splitlines()}
    assert set(rows) == {"pure PyTorch", "C++ CPU kernel"}
    cpu = rows["C++ CPU kernel"]
    assert cpu["tokens timed"] == 2000 or cpu["tokens timed"] > 1500  # whole sentences of the prefix
    # the bandwidth floor counts 2 x (1 + negative) output rows per pair and 2 input rows per kept token
    assert cpu["GB/s (floor)"] >= cpu["pairs/s (M)"] * 1e6 * 12 * 100 * 4 / 1e9
    assert 0 < cpu["loss/pair"] < 10


def test_bench_subword_dry_run_check_and_rows(tmp_path, capsys, monkeypatch):
    """The sub-word entry (issue 13) in Triton's interpreter at tiny sizes: the check against the CPU op passes
    (exit 0), the speed rows account their bytes."""
    import sys

    mods = sys.modules
    if "embedfast.word2vec.triton_kernels" in mods and not mods["embedfast.word2vec.triton_kernels"].INTERPRETED:
        pytest.skip("the Triton kernels were imported compiled in this process (a GPU run)")
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    bench = _load("bench_subword")
    js = tmp_path / "w.jsonl"
    assert bench.main(["--device", "cpu", "--tokens", "30", "--baseline-tokens", "30", "--vocab", "200", "--buckets",
                       "3000", "--check-cases", "1", "--check-sentences", "1", "--json", str(js)]) == 0
    rows = [json.loads(x) for x in js.read_text().splitlines()]
    (chk,) = [r for r in rows if r["table"] == "subword check"]
    assert chk["equal"] is True and chk["pairs"] > 0 and chk["max abs err"] < 1e-4 < chk["max change"]
    speed = {r["backend"]: r for r in rows if r["table"] == "subword speed"}
    assert set(speed) == {"embedfast triton", "C++ CPU op"}
    for r in speed.values():
        assert r["tokens timed"] == 30 and 0 < r["loss/pair"] < 10 and r["GB/s (floor)"] > 0
    # same draws and the same model: the two backends' losses per pair agree closely
    assert speed["embedfast triton"]["loss/pair"] == pytest.approx(speed["C++ CPU op"]["loss/pair"], rel=0.05)
    assert "check: PASSED" in capsys.readouterr().out


def test_zipf_corpus_offsets_cover_the_tokens():
    bench = _load("bench_sgns")
    ids, off, counts = bench.zipf_corpus(5000, 300, "cpu")
    assert ids.numel() == 5000 and int(off[0]) == 0 and int(off[-1]) == 5000
    lengths = off[1:] - off[:-1]
    assert int(lengths.min()) >= 1 and int(lengths[:-1].max()) <= 40
    assert counts.numel() == 300 and int(counts[0]) > int(counts[-1])  # Zipf: rank 0 most frequent


def test_ptxas_report_parses_registers_and_spills(tmp_path):
    rep = _load("ptxas_report")
    log = tmp_path / "b.log"
    log.write_text("ptxas info    : Compiling entry function '_Z3fooPf' for 'sm_90'\n"
                   "ptxas info    : Function properties for _Z3fooPf\n"
                   "    16 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads\n"
                   "ptxas info    : Used 40 registers, 1024 bytes smem, 380 bytes cmem[0]\n")
    (k,) = rep.parse(log.read_text())
    assert (k["registers"], k["spill_stores"], k["spill_loads"], k["stack"], k["smem"]) == (40, 8, 4, 16, 1024)
    assert rep.main([str(log)]) == 0
    empty = tmp_path / "e.log"
    empty.write_text("nothing compiled\n")
    assert rep.main([str(empty)]) == 1


def test_check_script_syntax_and_self_limit():
    path = os.path.join(GPU, "check.sh")
    assert subprocess.run(["bash", "-n", path]).returncode == 0
    text = open(path).read()
    assert 'exec timeout --kill-after=5 "$CHECK_SECONDS"' in text and "CHECK_SECONDS:-340" in text
    for needed in ("-m gpu", "EMBEDFAST_CUDA=1", "MAX_JOBS", "memcheck", "racecheck", "bench_gather.py",
                   "bench_sgns.py", "bench_subword.py", "test_word2vec_triton_subword.py",
                   "EMBEDFAST_REQUIRE_CUDA=1"):
        assert needed in text, needed
