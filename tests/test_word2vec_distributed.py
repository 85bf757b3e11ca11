"""Data-parallel word2vec (embedfast/distributed.py) with two gloo processes on localhost, tiny planted corpus."""
from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

import embedfast
from embedfast.word2vec.distributed import shard_bounds, train_distributed
from embedfast.testing import planted_corpus as _planted_corpus, recall_at_k, spawn_with_timeout


def planted_corpus(**kw):
    return _planted_corpus(**{**dict(groups=12, size=6, sentences=1500, length=8), **kw})


KW = dict(dim=16, window=3, negative=4, sample=0, min_count=1, epochs=3, threads=1, seed=5, chunk_words=1000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, path, out_dir, sync_every, combine):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60))
    try:
        w2v = embedfast.Word2Vec(**KW)
        train_distributed(w2v, path, sync_every=sync_every, combine=combine, progress=False)
        torch.save(dict(w_in=w2v.w_in, w_out=w2v.w_out, words=w2v.words, loss=w2v.loss_history,
                        stats=w2v.dist_stats), os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()  # no rank tears the group down while the other still uses it
    finally:
        dist.destroy_process_group()


def run_ranks(tmp_path, world, sync_every, sub="run", combine="mean"):
    sents, groups = planted_corpus()
    path = tmp_path / "corpus.txt"
    if not path.exists():
        path.write_text("\n".join(" ".join(s) for s in sents) + "\n")
    out = tmp_path / sub
    out.mkdir()
    # a fresh port each attempt; a stalled start is killed and retried instead of hanging the suite
    spawn_with_timeout(_worker, lambda attempt: (world, _free_port(), str(path), str(out), sync_every, combine),
                       nprocs=world)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(world)], groups, path


def test_shard_bounds_sentence_aligned_and_balanced():
    off = torch.tensor([0, 3, 3, 10, 11, 20, 26, 30])
    for world in (1, 2, 3, 5, 9):
        b = shard_bounds(off, world)
        assert b[0] == 0 and b[-1] == 7 and len(b) == world + 1 and b == sorted(b)
    b = shard_bounds(off, 2)
    assert int(off[b[1]]) in (11, 20)  # the sentence boundary nearest below/above 15


def last_epoch_loss(history, epoch_tokens):
    """Mean loss per pair over the last epoch_tokens of a loss_history of (tokens done, loss) entries, each
    entry weighted by its tokens."""
    marks = [0] + [t for t, _ in history]
    assert marks == sorted(marks) and marks[-1] >= epoch_tokens, marks  # cumulative, as the loop's
    start = marks[-1] - epoch_tokens
    parts = [(b - a, loss) for a, b, (_, loss) in zip(marks, marks[1:], history) if a >= start]
    return sum(n * loss for n, loss in parts) / sum(n for n, _ in parts)


@pytest.mark.parametrize("combine", ["mean", "sum"])
def test_sgns_distributed_two_gloo_ranks_equal_tables_and_quality(tmp_path, combine):
    res, groups, path = run_ranks(tmp_path, 2, sync_every=500, combine=combine)
    a, b = res
    assert a["words"] == b["words"]
    assert torch.equal(a["w_in"], b["w_in"]) and torch.equal(a["w_out"], b["w_out"])  # in sync after the last average
    st = a["stats"]
    assert st["world_size"] == 2 and st["rounds_per_epoch"] == 12  # 6000 tokens per shard / 500
    assert abs(st["shard_tokens"][0] - st["shard_tokens"][1]) <= 8  # balanced to a sentence
    assert sum(st["shard_tokens"]) == 12000
    assert len(a["loss"]) == KW["epochs"] * 12 and a["loss"][-1][0] == KW["epochs"] * 12000
    one = embedfast.Word2Vec(**KW).train(str(path), progress=False)
    k = len(groups[0]) - 1
    r1 = recall_at_k(one.w_in, one.words, groups, k)
    r2 = recall_at_k(a["w_in"], a["words"], groups, k)
    fresh = embedfast.Word2Vec(**KW).build_vocab(str(path))
    assert recall_at_k(fresh.w_in, fresh.words, groups, k) < 0.3
    assert r1 > 0.9 and r2 > r1 - 0.05, (r1, r2)
    # the loss per pair over the last epoch: averaging halves each rank's step (a higher loss after the same
    # epochs); adding up the changes trains like one process while syncs are frequent next to a word's updates
    l1, l2 = last_epoch_loss(one.loss_history, 12000), last_epoch_loss(a["loss"], 12000)
    if combine == "sum":
        assert abs(l2 - l1) < 0.05 * l1, (l1, l2)
    else:
        assert 1.05 * l1 < l2 < 1.3 * l1, (l1, l2)


@pytest.mark.slow  # make test-slow: keeps make test within its 15 minutes; the two-rank equality tests stay
def test_sgns_distributed_reproducible_for_fixed_world(tmp_path):
    r1, _, _ = run_ranks(tmp_path, 2, sync_every=5000, sub="a")
    r2, _, _ = run_ranks(tmp_path, 2, sync_every=5000, sub="b")
    assert torch.equal(r1[0]["w_in"], r2[0]["w_in"]) and torch.equal(r1[0]["w_out"], r2[0]["w_out"])


def test_sgns_distributed_errors():
    w2v = embedfast.Word2Vec(**KW)
    if not dist.is_initialized():
        with pytest.raises(RuntimeError, match="no process group"):
            train_distributed(w2v, [["a", "b"]])
    from embedfast.word2vec.distributed import init_from_env

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        if not dist.is_initialized():
            with pytest.raises(RuntimeError, match="launch with torchrun"):
                init_from_env()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.slow  # make test-slow: keeps make test within its 15 minutes; the API-level torchrun tests stay
def test_cli_train_distributed_torchrun(tmp_path):
    sents, _ = planted_corpus(sentences=300)
    path = tmp_path / "c.txt"
    path.write_text("\n".join(" ".join(s) for s in sents) + "\n")
    out = tmp_path / "v.txt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(_free_port()), "-m", "embedfast.cli", "train", str(path), "-o", str(out), "--distributed", "--min-count",
           "1", "--epochs", "1", "--dim", "8", "--threads", "1", "--sync-every", "500"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "distributed: 2 ranks" in p.stdout
    lines = out.read_text().splitlines()
    assert lines[0].split() == ["72", "8"]  # word2vec text header: 12 groups x 6 words, dim 8


def _diverging_worker(rank, world, port, path, out_dir, mode):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60))
    try:
        if mode == "diverge":  # alpha 0.9 with the exact sigmoid: NaN losses within a few rounds
            w2v = embedfast.Word2Vec(dim=32, min_count=2, epochs=1, threads=1, alpha=0.9, exact_sigmoid=True,
                                     chunk_words=1000)
        else:  # rank 1 fails with an ordinary error in its first round (an op refusing its arguments)
            w2v = embedfast.Word2Vec(**KW)
            if rank == 1:
                from embedfast.word2vec import ops  # the trainer's ops module (embedfast.ops re-exports it)

                def broken(*a, **k):
                    raise IndexError("sgns_train: 'ids' has value 99 at position 0")

                ops.sgns_train = broken
        try:
            train_distributed(w2v, path, sync_every=2000, progress=False)
            msg = "finished"
        except (ValueError, RuntimeError, IndexError) as exc:
            msg = f"{type(exc).__name__}: {exc}"
        with open(os.path.join(out_dir, f"rank{rank}.txt"), "w") as f:
            f.write(msg)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("mode", ["diverge", "one rank fails"])
def test_sgns_distributed_failure_stops_every_rank_without_hanging(tmp_path, mode):
    """A rank that diverges or fails reports it through the round's collective: every rank raises after that
    round (before: the others waited forever in all_reduce, or the divergence went unnoticed)."""
    import gzip

    if mode == "diverge":
        src = os.path.join(os.path.dirname(embedfast.data.__file__), "wordnet_glosses.txt.gz")
        with gzip.open(src, "rb") as f:
            lines = f.read().split(b"\n")[:20000]
        path = tmp_path / "wn.txt"
        path.write_bytes(b"\n".join(lines) + b"\n")
    else:
        sents, _ = planted_corpus()
        path = tmp_path / "corpus.txt"
        path.write_text("\n".join(" ".join(s) for s in sents) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    spawn_with_timeout(_diverging_worker, lambda attempt: (2, _free_port(), str(path), str(out), mode), nprocs=2,
                       timeout=180)
    msgs = [(out / f"rank{r}.txt").read_text() for r in range(2)]
    if mode == "diverge":
        for m in msgs:
            assert m.startswith("ValueError: train_distributed: training diverged in epoch 1 of 1, round "), m
            assert "alpha=0.9" in m and "lower alpha" in m, m
    else:
        assert msgs[1].startswith("IndexError: sgns_train: 'ids' has value 99"), msgs[1]
        assert msgs[0].startswith("RuntimeError: train_distributed: 1 other rank(s) failed in epoch 1, round 0"), msgs[0]
