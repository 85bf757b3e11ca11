"""The training loop of ``Word2Vec.train`` and its step, ``train_chunk``, shared with
``embedfast.word2vec.distributed``: one fused ``sgns_train`` call per chunk of sentences, the position recorded
with it (interrupts held back meanwhile), progress, periodic checkpoints, divergence."""
from __future__ import annotations

import math
import time
from typing import Optional

import torch

from . import ops
from .interrupts import SignalGuard

__all__ = ["ChunkDiverged", "train_chunk", "rate_args", "order_ranges", "progress_bar", "run", "check_finite"]


class ChunkDiverged(ValueError):
    """Raised by :func:`train_chunk` when the weights stopped being finite (the op's divergence error, or a
    non-finite loss); ``detail`` says what the op saw."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _is_divergence(exc: BaseException) -> bool:
    """True for the ops' divergence errors (``sgns_train``'s "training diverged", a non-finite loss)."""
    text = str(exc)
    return isinstance(exc, (ValueError, RuntimeError)) and ("diverge" in text or "finite" in text)


def _op_detail(exc: BaseException) -> str:
    """What the op's divergence error says happened, without its own advice (the trainer gives its own)."""
    text = (str(exc).splitlines() or [""])[0].split(";")[0].split(" with learning rate")[0].strip()
    return text or type(exc).__name__


def train_chunk(w2v, ids: torch.Tensor, offsets: torch.Tensor, tables, *, words_done: int, total_words: int,
                chunk: int) -> dict:
    """One training step of ``w2v`` (a Word2Vec): the fused op over the sentences ``offsets`` of ``ids`` with
    ``tables`` (``w2v.sampling_tables``), the learning rate at ``words_done`` of ``total_words``, random stream
    ``chunk``; ``w2v.w_in`` / ``w_out`` are updated in place. Returns the op's stats (``ops.TRAIN_STATS`` ->
    number); raises :class:`ChunkDiverged` when the weights stopped being finite, the op's other errors as they
    are."""
    p = w2v.params
    try:
        if p.minn:  # sub-word skip-gram (fastText's)
            ng = w2v.ngram_tables(w2v.w_in.device)
            st = ops.word2vec_subword_train(w2v.w_in, w2v.w_ngram, w2v.w_out, ids, offsets, *tables, ng.offsets,
                                            ng.buckets, window=p.window, negative=p.negative, alpha=p.alpha,
                                            min_alpha=p.min_alpha, words_done=words_done, total_words=total_words,
                                            seed=p.seed, chunk=chunk, num_threads=w2v.num_threads,
                                            exact_sigmoid=p.exact_sigmoid, backend=w2v.backend)
        elif p.sg == 0 or p.hs:  # CBOW / hierarchical softmax
            st = ops.word2vec_train(w2v.w_in, w2v.w_out, ids, offsets, *tables,
                                    w2v.huffman_tables() if p.hs else None, window=p.window, negative=p.negative,
                                    alpha=p.alpha, min_alpha=p.min_alpha, words_done=words_done,
                                    total_words=total_words, seed=p.seed, chunk=chunk, num_threads=w2v.num_threads,
                                    cbow=p.sg == 0, hs=bool(p.hs), exact_sigmoid=p.exact_sigmoid,
                                    backend=w2v.backend)
        else:
            st = ops.sgns_train(w2v.w_in, w2v.w_out, ids, offsets, *tables, window=p.window,
                                negative=p.negative,
                                alpha=p.alpha, min_alpha=p.min_alpha, words_done=words_done,
                                total_words=total_words, seed=p.seed, chunk=chunk, num_threads=w2v.num_threads,
                                shared_negatives=p.shared_negatives, exact_sigmoid=p.exact_sigmoid,
                                backend=w2v.backend)
    except (ValueError, RuntimeError) as exc:
        if not _is_divergence(exc):
            raise
        raise ChunkDiverged(_op_detail(exc)) from None
    stats = dict(zip(ops.TRAIN_STATS, st.tolist()))
    if not math.isfinite(stats["loss"]):  # NaN/inf scores (the exact sigmoid lets them through)
        raise ChunkDiverged(f"the chunk's loss is {stats['loss']}")
    return stats


def cpu_threads(w2v) -> int:
    """The threads the CPU op trains with, or 1 on a GPU (one stream of chunks): the T of ``rate_args`` and
    ``order_ranges``."""
    return w2v.num_threads if w2v.w_in.device.type == "cpu" else 1


def rate_args(w2v, epoch: int, done: int, total: int) -> tuple:
    """(words_done, total_words) to give the ops for the learning rate of a chunk that starts ``done`` words into
    a run of ``total`` (``epochs`` x N tokens), in ``epoch`` e: the run's own position, unless
    ``lr_schedule="per-thread"`` with T > 1 CPU threads, where each thread's share of an epoch is 1/T of its
    words (gensim's ``corpus_file`` accounting): progress (e + d / (T N)) / E for the epoch's d words before the
    chunk, given as (T e N + d, T E N), so that the op's own advance through the chunk also counts 1/T."""
    p = w2v.params
    T = cpu_threads(w2v) if p.lr_schedule == "per-thread" else 1
    if T == 1:
        return done, total
    per_epoch = total // p.epochs
    done_t, total_t = T * epoch * per_epoch + (done - epoch * per_epoch), T * total
    k = -(-total_t // (1 << 62))  # both stay int64 (a run of more than 2^62 / T words rounds them)
    return done_t // k, total_t // k


def order_ranges(w2v, stream) -> int:
    """How many ranges of an epoch the CPU op's T threads train side by side (word2vec.c's and gensim's order;
    ``CorpusStream.ranged``): T, or 1 (text order, chunk by chunk) with one thread, on a GPU, and for a streamed
    file of more than ``cache_tokens`` tokens."""
    T = cpu_threads(w2v)
    return T if T > 1 and stream.can_range() else 1


def progress_bar(total: int, initial: int, desc: str, bad_words: int = 0):
    """The tqdm bar of a training run (words/s, loss, learning rate); says once how many words are not UTF-8."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=initial, unit="word", unit_scale=True, desc=desc, dynamic_ncols=True)
    if bad_words:
        bar.write(f"word2vec: {bad_words:,} vocabulary words hold bytes that are not UTF-8 (kept byte for byte; "
                  "shown as surrogate escapes)")
    return bar


def check_finite(w2v, total: int) -> None:
    """Raise the divergence error when a weight is NaN/inf (once per save or train call: a pass over the
    tables, nothing per chunk)."""
    tables = [t for t in (w2v.w_in, w2v.w_out, getattr(w2v, "w_ngram", None)) if t is not None]
    if not all(bool(torch.isfinite(t).all()) for t in tables):
        if w2v.diverged is None:
            pos = w2v.position
            w2v.mark_diverged(pos["epoch"], pos["chunk_in_epoch"], total, None, "NaN/inf found in the tables")
        raise ValueError(w2v.diverged)


def _checked_checkpoint(w2v, path: str, total: int, guard: SignalGuard) -> None:
    """Save a checkpoint of finite tables; an interrupt arriving meanwhile is delivered once it is written
    (so no interrupt leaves a temporary file or skips the save)."""
    guard.critical = True
    try:
        check_finite(w2v, total)
        w2v.save_checkpoint(path)
    except BaseException:
        guard.critical = False
        raise
    guard.safe_point()


def run(w2v, stream, *, progress: bool, max_words: Optional[int], checkpoint: Optional[str],
        checkpoint_every: float) -> None:
    """The loop of ``Word2Vec.train`` (arguments checked there) over the chunks of ``stream`` (its CorpusStream)."""
    p, dev = w2v.params, w2v.w_in.device
    tables = w2v.sampling_tables(dev)  # corpus blocks and tables live on the training device
    total = p.epochs * stream.source.tokens  # the whole run, known before the first block is read
    pos = w2v.position
    bar = progress_bar(total, pos["words_done"], "word2vec", w2v.vocab_stats.get("non_utf8_words", 0)) \
        if progress else None
    start_words, ids_host, ids_d = pos["words_done"], None, None
    t_last_ckpt = time.perf_counter()
    guard = SignalGuard(terminate=checkpoint is not None)
    with guard:
        try:
            while pos["epoch"] < p.epochs:
                if max_words is not None and pos["words_done"] - start_words >= max_words:
                    break
                e, k, done = pos["epoch"], pos["chunk_in_epoch"], pos["words_done"]
                # the epoch's order: T ranges side by side (chosen at its start; a resumed epoch keeps its own)
                ranges = order_ranges(w2v, stream) if k == 0 else pos["ranges"]
                if e > 0 and (stream.n_chunks is None or stream.cut_ranges != ranges):
                    stream.count_chunks(ranges)  # resumed without the chunk count of this epoch's cut
                ids, offsets, last = stream.next_chunk(e, k, p.epochs - e > 1, ranges)
                if ids is not ids_host:  # a new block
                    ids_host, ids_d = ids, ids.to(dev)
                t0 = time.perf_counter()
                # one step: the op's in-place update and the position after it, recorded together (an
                # interrupt arriving meanwhile is raised after it, at guard.safe_point())
                guard.critical = True
                try:  # chunk k of epoch e draws from the RNG stream e * chunks per epoch + k
                    rate_done, rate_total = rate_args(w2v, e, done, total)
                    stats = train_chunk(w2v, ids_d, offsets.to(dev), tables, words_done=rate_done,
                                        total_words=rate_total, chunk=k if e == 0 else e * stream.n_chunks + k)
                except ChunkDiverged as exc:
                    w2v.mark_diverged(e, k, total, checkpoint, exc.detail)
                w2v.train_seconds += time.perf_counter() - t0
                chunk_tokens = int(offsets[-1]) - int(offsets[0])
                mean_loss = stats["loss"] / max(stats["pairs"], 1.0)
                e, k = (e + 1, 0) if last else (e, k + 1)
                w2v.set_position(e, k, done + chunk_tokens, ranges=ranges)
                pos = w2v.position
                w2v.loss_history.append((done + chunk_tokens, mean_loss))
                guard.safe_point()
                if bar is not None:
                    bar.update(chunk_tokens)
                    bar.set_postfix(loss=f"{mean_loss:.4f}", alpha=f"{stats['last_alpha']:.5f}", epoch=e + (k > 0))
                if checkpoint and time.perf_counter() - t_last_ckpt >= checkpoint_every:
                    _checked_checkpoint(w2v, checkpoint, total, guard)
                    t_last_ckpt = time.perf_counter()
            if checkpoint:
                _checked_checkpoint(w2v, checkpoint, total, guard)
        except KeyboardInterrupt:  # Ctrl-C, or Terminated (SIGTERM): keep the work done so far
            if checkpoint and w2v.diverged is None:
                _checked_checkpoint(w2v, checkpoint, total, guard)
            raise
        finally:
            if bar is not None:
                bar.close()
    if not checkpoint:
        check_finite(w2v, total)
