"""Data-parallel word2vec over processes with ``torch.distributed`` (gloo on CPU, NCCL on GPUs).

Every rank reads the whole corpus and builds the same vocabulary (deterministic), starts from the same initial
tables (broadcast from rank 0), and trains with the fused SGNS op on its own shard: a contiguous, sentence-aligned
slice of the encoded corpus holding about ``1 / world_size`` of the tokens. Every ``sync_every`` tokens (per rank)
the ranks combine ``w_in`` and ``w_out`` with ``all_reduce``: by default they add up their changes since the last
sync (``combine="sum"``, like Hogwild threads), or they average their tables (``combine="mean"``, model
averaging). Each epoch ends with a sync, so after training every rank holds the same tables.

Schedule and seeds: each rank's shard is cut into the same number of rounds per epoch (the most any shard needs
for ``sync_every``), so the collectives line up; the learning rate decays over the rank's own tokens (``epochs *
shard tokens``); rank ``r`` draws from the streams ``chunk = r * 2**40 + local chunk counter`` of the seed, so a
run is reproducible for a fixed world size (with ``threads=1``) and the ranks never share a random stream.

Launch with ``torchrun --nproc_per_node N -m embedfast train CORPUS -o OUT --distributed`` (or call
``train_distributed`` in a process group you set up). Only rank 0 shows progress and writes output.
"""
from __future__ import annotations

import math
import os
import time
from typing import Optional

import torch
import torch.distributed as dist

from .corpus import Corpus
from .loop import ChunkDiverged, progress_bar, rate_args, train_chunk
from .trainer import Word2Vec

__all__ = ["init_from_env", "shard_bounds", "train_distributed"]

_RANK_STREAM = 1 << 40


def init_from_env(device: "torch.device | str | None" = None) -> None:
    """Initialise the default process group from torchrun's environment (gloo for CPU, NCCL for CUDA)."""
    if dist.is_initialized():
        return
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(f"--distributed: environment variables {missing} are not set; launch with torchrun, "
                           "e.g. torchrun --nproc_per_node 2 -m embedfast train CORPUS -o OUT --distributed")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")


def shard_bounds(offsets: torch.Tensor, world: int) -> list[int]:
    """Sentence indices [world + 1] cutting the corpus into ``world`` contiguous shards of about equal tokens."""
    S = offsets.numel() - 1
    n = int(offsets[-1])
    marks = torch.tensor([n * r // world for r in range(world + 1)], dtype=torch.int64)
    b = torch.searchsorted(offsets[:-1], marks).clamp(max=S).tolist()
    b[0], b[-1] = 0, S
    for r in range(1, world + 1):
        b[r] = max(b[r], b[r - 1])
    return b


def _rounds(offsets: torch.Tensor, s0: int, s1: int, n_rounds: int) -> list[int]:
    """Cut sentences [s0, s1) into n_rounds sentence-aligned pieces of about equal tokens (some may be empty)."""
    t0, t1 = int(offsets[s0]), int(offsets[s1])
    marks = torch.tensor([t0 + (t1 - t0) * i // n_rounds for i in range(n_rounds + 1)], dtype=torch.int64)
    b = torch.searchsorted(offsets[s0:s1], marks).add(s0).clamp(max=s1).tolist()
    b[0], b[-1] = s0, s1
    for i in range(1, n_rounds + 1):
        b[i] = max(b[i], b[i - 1])
    return b


def _average(tensors, world: int, group=None) -> None:
    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
        t.div_(world)


def _raise_failure(w2v: Word2Vec, failure: Optional[BaseException], loss_finite: bool, epoch: int, r: int,
                   n_rounds: int, rank: int, failed: int, done: int, total: int) -> None:
    """Every rank stops after a round in which some rank failed: a divergence (NaN/inf) becomes the trainer's
    divergence error, any other error is re-raised on its rank; the other ranks say which rank to look at."""
    text = "" if failure is None else str(failure)
    if failure is None:  # another rank failed: it diverged when the summed loss is not finite
        diverged = not loss_finite
    else:
        diverged = isinstance(failure, ChunkDiverged)
    if diverged:
        w2v.set_position(epoch, r, done, chunks_per_epoch=n_rounds)
        w2v.mark_diverged(epoch, r, total, None, f"rank {rank}: {text or 'another rank diverged'}",
                          who="train_distributed", unit="round")
    if failure is not None:
        raise failure
    raise RuntimeError(f"train_distributed: {failed} other rank(s) failed in epoch {epoch + 1}, round {r}; rank "
                       f"{rank} stopped with them (see the failed rank's error)")


def train_distributed(w2v: Word2Vec, corpus: Corpus, *, sync_every: int = 1_000_000, combine: str = "sum",
                      progress: bool = True, group: Optional[dist.ProcessGroup] = None) -> Word2Vec:
    """Train ``w2v`` data-parallel across the ranks of the default process group (see the module docstring).

    Args:
        w2v: a fresh ``Word2Vec`` (its hyperparameters, ``threads``, ``backend`` and ``device`` are used; on
            NCCL give each rank its GPU, e.g. ``device=f"cuda:{local_rank}"``).
        corpus: a text file or an iterable of token lists, the same on every rank.
        sync_every: tokens each rank trains between two averages of the tables (at least one average per epoch).
        combine: "sum" (default) adds up the ranks' changes since the last sync, like Hogwild threads (every
            update counts in full; keeps one more copy of the tables); "mean" averages the ranks' tables (model
            averaging: each rank's update counts 1/world, which lowers the quality after the same epochs; see
            benchmarks/RESULTS.md).
        progress: tqdm bar on rank 0 (tokens of all ranks, words/s, loss).
    Returns ``w2v`` with the averaged tables (the same on every rank); ``w2v.loss_history`` holds, at each sync,
    (tokens trained by all ranks so far, mean loss per pair over all ranks in the round), as the single-process
    loop's (words done, loss); ``w2v.dist_stats`` the figures of the run.

    With "sum", ranks that update the same rows between two syncs each start from the same tables, so their
    changes add up as if one process had taken both steps from there: this trains like one process only while a
    word's updates between syncs are few. A small vocabulary with a long ``sync_every`` overshoots (a 72-word
    corpus synced every 2000 tokens per rank ends with a higher loss than "mean"; every 500 tokens it trains like
    one process: tests/test_word2vec_distributed.py).

    Each chunk is one ``embedfast.word2vec.loop.train_chunk`` step, the step of the single-process loop.

    Failures: when a rank fails in a round (its weights stop being finite, or any error), every rank stops after
    that round's collective instead of waiting for it: a divergence raises the trainer's divergence error
    (epoch, round, words done, alpha; the model is then unusable), another error is re-raised on its rank and
    the others raise a RuntimeError naming the round.
    """
    if not isinstance(w2v, Word2Vec):
        raise TypeError(f"train_distributed: w2v must be an embedfast.Word2Vec, got {type(w2v).__name__}")
    if w2v.params.minn:
        raise NotImplementedError("train_distributed: sub-word models (minn > 0) train in one process only "
                                  "(Word2Vec.train); their n-gram table is not averaged across ranks")
    if not dist.is_initialized():
        raise RuntimeError("train_distributed: no process group (call torch.distributed.init_process_group or "
                           "embedfast.word2vec.distributed.init_from_env first)")
    if combine not in ("mean", "sum"):
        raise ValueError(f"train_distributed: combine must be 'mean' or 'sum', got {combine!r}")
    if not isinstance(sync_every, int) or sync_every < 1:
        raise ValueError(f"train_distributed: sync_every must be an int >= 1, got {sync_every!r}")
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    p = w2v.params
    if w2v.w_in is None:
        w2v.build_vocab(corpus)
    if w2v.encoded_corpus() is None:
        w2v.train(corpus, progress=False, max_words=0)  # encodes the corpus without training
    ids, offsets, _, fingerprint = w2v.encoded_corpus()
    dev = w2v.w_in.device
    # the same vocabulary and corpus on every rank
    check = torch.tensor([len(w2v.words), *fingerprint], dtype=torch.int64, device=dev)
    ref = check.clone()
    dist.broadcast(ref, src=0, group=group)
    if not torch.equal(check, ref):
        raise RuntimeError(f"train_distributed: rank {rank} has vocabulary/corpus {check.tolist()} but rank 0 has "
                           f"{ref.tolist()}; every rank must read the same corpus with the same settings")
    for t in (w2v.w_in, w2v.w_out):
        dist.broadcast(t, src=0, group=group)

    bounds = shard_bounds(offsets, world)
    s0, s1 = bounds[rank], bounds[rank + 1]
    shard_tokens = [int(offsets[bounds[r + 1]]) - int(offsets[bounds[r]]) for r in range(world)]
    n_rounds = max(1, max(math.ceil(t / sync_every) for t in shard_tokens))
    rounds = _rounds(offsets, s0, s1, n_rounds)
    my_tokens = shard_tokens[rank]
    total = max(1, p.epochs * my_tokens)
    tables = w2v.sampling_tables(dev)
    ids_d, off_d = ids.to(dev), offsets.to(dev)
    snap = [w2v.w_in.clone(), w2v.w_out.clone()] if combine == "sum" else None
    bar = None
    if progress and rank == 0:
        bar = progress_bar(p.epochs * int(offsets[-1]), 0, f"word2vec x{world} ranks")
    done = 0
    done_all = 0  # tokens trained by all ranks, the first field of loss_history as in the single-process loop
    chunk = 0
    t_start = time.perf_counter()
    t_sync = 0.0
    try:
        for epoch in range(p.epochs):
            for r in range(n_rounds):
                # loss, pairs, tokens of this round, and how many ranks failed in it: a failure (divergence or any
                # error) is reported through the round's collective, so every rank stops there instead of the
                # others waiting forever for the failed one
                acc = torch.zeros(4, dtype=torch.float64)
                failure = None
                a, b = rounds[r], rounds[r + 1]
                c = a
                while c < b:  # chunks of about chunk_words tokens inside the round
                    limit = int(offsets[c]) + p.chunk_words
                    e = max(c + 1, min(b, int(torch.searchsorted(offsets[c:b + 1], limit, right=True)) + c - 1))
                    try:
                        rate_done, rate_total = rate_args(w2v, epoch, done, total)
                        st = train_chunk(w2v, ids_d, off_d[c:e + 1], tables, words_done=rate_done,
                                         total_words=rate_total, chunk=rank * _RANK_STREAM + chunk)
                    except Exception as exc:  # noqa: BLE001 - re-raised after the round's collective
                        failure = exc
                        acc[3] = 1.0
                        if isinstance(exc, ChunkDiverged):  # a NaN loss tells the other ranks it was a divergence
                            acc[0] = math.nan
                        break
                    n = int(offsets[e]) - int(offsets[c])
                    done += n
                    chunk += 1
                    acc[:3] += torch.tensor([st["loss"], st["pairs"], float(n)], dtype=torch.float64)
                    c = e
                if failure is None and not math.isfinite(float(acc[0])):
                    failure = ChunkDiverged(f"the loss of rank {rank} is {float(acc[0])}")
                    acc[3] = 1.0
                t0 = time.perf_counter()
                if snap is None:
                    _average((w2v.w_in, w2v.w_out), world, group)
                else:
                    for t, s in zip((w2v.w_in, w2v.w_out), snap):
                        t.sub_(s)
                        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
                        t.add_(s)
                        s.copy_(t)
                acc_d = acc.to(dev)
                dist.all_reduce(acc_d, op=dist.ReduceOp.SUM, group=group)
                t_sync += time.perf_counter() - t0
                loss, pairs, toks, failed = acc_d.tolist()
                if failed or not math.isfinite(loss):
                    _raise_failure(w2v, failure, math.isfinite(loss), epoch, r, n_rounds, rank, int(failed), done,
                                   total)
                done_all += int(toks)
                w2v.loss_history.append((done_all, loss / max(pairs, 1.0)))
                if bar is not None:
                    bar.update(int(toks))
                    bar.set_postfix(loss=f"{loss / max(pairs, 1.0):.4f}", epoch=epoch + 1)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t_start
    w2v.train_seconds += seconds
    w2v.set_position(p.epochs, 0, p.epochs * int(ids.numel()))
    w2v.dist_stats = dict(world_size=world, rank=rank, shard_tokens=shard_tokens, rounds_per_epoch=n_rounds,
                          seconds=seconds, sync_seconds=t_sync,
                          words_per_second=p.epochs * int(offsets[-1]) / seconds if seconds > 0 else 0.0)
    return w2v
