"""Triton op of CBOW and hierarchical softmax: ``embedfast::word2vec_train_triton``, the schema and semantics of
``embedfast::word2vec_train`` (csrc/cpu/word2vec_sgns.cpp, train_part_w2v) on the GPU (or in Triton's
interpreter under ``TRITON_INTERPRET=1``). ``cbow=False, hs=False`` runs ``sgns_train_triton``.

One program per sentence, as ``sgns_train_triton`` (same random streams: sentence ``s`` draws from
``stream_key(seed, chunk, s)``, so a one-sentence chunk trained with ``num_threads=1`` makes the CPU op's draws;
``num_threads`` is ignored; same learning rate per sentence, same sigmoid modes, same divergence check). Per kept
center, after its window draw:

- CBOW: the mean ``h`` of the context rows (none: nothing trained and no negatives drawn); the targets (the
  center and ``negative`` alias draws, or the center's Huffman path) are scored against ``h`` from the values
  before the center's update; ``w_out[t] += g_t h``, then every context row gets ``sum_t g_t w_out[t]``.
- skip-gram HS: per context row ``x`` in order, the path's inner nodes are scored against ``x``;
  ``w_out[n] += g_n x``, ``x += sum_n g_n w_out[n]``.

The Huffman path is walked in tiles of ``_HS_TILE`` nodes (the nodes of a path are distinct rows, so tiles give
the CPU op's update); row adds are atomic so repeated rows accumulate like the CPU op's sequential adds (a
negative drawn twice for one CBOW center is scored from the row before both updates, where the CPU op scores
the second draw after the first's update).
"""
from __future__ import annotations

import torch
from torch.library import triton_op, wrap_triton

from .._backend import eager as _eager, keep_opaque_when_interpreted
from .triton_kernels import _device_fn
from .triton import (_check_train_args, _check_train_values, _need, call_stats, launch_buffers,
                     sgns_train_triton)
from .triton_kernels import (_N_TRAIN_STATS, INTERPRETED, _draw, _sentence_start, _sigmoid, _subsample, _targets,
                             _train_log_sigmoid, _train_meta, tl, triton)

__all__ = ["word2vec_train_triton"]

_HS_TILE = 16


@_device_fn
def _hs_tile(w_out, hs_pts, hs_codes, inp, t0, left, alpha, kk, d, dm, D, EXACT: tl.constexpr):
    """Nodes t0 .. t0 + min(left, tile) of a Huffman path against the input row ``inp``: w_out[n] += g_n inp.
    Returns (the loss of the nodes, sum_n g_n w_out[n] from the values before the update)."""
    tv = kk < left  # (a block compare: a 0-d mask breaks the interpreter)
    tid = tl.load(hs_pts + t0 + kk, mask=tv, other=0).to(tl.int64)
    lab = 1.0 - tl.load(hs_codes + t0 + kk, mask=tv, other=0).to(tl.float32)
    tm = tv[:, None] & dm[None, :]
    T = tl.load(w_out + tid[:, None] * D + d[None, :], mask=tm, other=0.0, cache_modifier=".cg")
    f = tl.sum(T * inp[None, :], axis=1)
    g = tl.where(tv, alpha * (lab - _sigmoid(f, EXACT)), 0.0)
    tl.atomic_add(w_out + tid[:, None] * D + d[None, :], g[:, None] * inp[None, :], mask=tm)
    loss = -tl.sum(tl.where(tv, _train_log_sigmoid(tl.where(lab > 0.5, f, -f), EXACT), 0.0), axis=0)
    return loss, tl.sum(g[:, None] * T, axis=0)


@triton.jit
def _w2v_train_kernel(w_in, w_out, ids, off, keep, thr, alias, hs_off, hs_pts, hs_codes, scratch, part, key_ptr,
                      sched_ptr, V, D, window,
                      NEG: tl.constexpr, CBOW: tl.constexpr, HS: tl.constexpr, EXACT: tl.constexpr,
                      BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr, CTX_P: tl.constexpr, NT_P: tl.constexpr):
    s = tl.program_id(0)
    b0, b1, sb, key, alpha = _sentence_start(off, key_ptr, sched_ptr, s)
    ctr, nk = _subsample(ids, keep, scratch, key, b0, b1, sb, V, BLOCK_T)
    tl.debug_barrier()

    d = tl.arange(0, BLOCK_D)
    dm = d < D
    loss = tl.zeros([], dtype=tl.float32)
    pairs = tl.zeros([], dtype=tl.int64)
    nneg = tl.zeros([], dtype=tl.int64)
    nskip = tl.zeros([], dtype=tl.int64)
    kk = tl.arange(0, NT_P)
    isneg = (kk >= 1) & (kk <= NEG)
    kneg = (kk - 1).to(tl.uint64)
    jj = tl.arange(0, CTX_P)
    for i in range(0, nk):
        r = _draw(key, ctr)
        ctr += 1
        b = window - (r % window.to(tl.uint64)).to(tl.int64)
        c = tl.load(scratch + sb + i).to(tl.int64)
        h0 = tl.zeros([], dtype=tl.int64)
        h1 = tl.zeros([], dtype=tl.int64)
        if HS:
            h0 = tl.load(hs_off + c)
            h1 = tl.load(hs_off + c + 1)
        if CBOW:
            j = i + tl.where(jj < b, jj - b, jj - b + 1)
            cm = (jj < 2 * b) & (j >= 0) & (j < nk)
            x = tl.load(scratch + sb + j, mask=cm, other=0).to(tl.int64)
            xm = cm[:, None] & dm[None, :]
            X = tl.load(w_in + x[:, None] * D + d[None, :], mask=xm, other=0.0, cache_modifier=".cg")
            cw = tl.sum(cm.to(tl.int64), axis=0)
            h = tl.sum(X, axis=0) * (1.0 / tl.maximum(cw, 1).to(tl.float32))
            e = tl.zeros([BLOCK_D], dtype=tl.float32)
            if HS:
                for t0 in range(h0, h1, NT_P):  # no contexts: no nodes
                    dl, de = _hs_tile(w_out, hs_pts, hs_codes, h, t0, tl.where(cw > 0, h1 - t0, 0), alpha, kk, d, dm,
                                      D, EXACT)
                    loss += dl
                    e += de
            else:
                tid, tvalid, skipped = _targets(key, ctr, kneg, kk, isneg, c, V, thr, alias)
                ctr += tl.where(cw > 0, NEG, 0).to(tl.uint64)  # no contexts: no draws (as the CPU op)
                tv = tvalid & (kk < tl.where(cw > 0, NT_P, 0))
                nskip += tl.where(cw > 0, skipped, 0)
                lab = (kk == 0).to(tl.float32)
                tm = tv[:, None] & dm[None, :]
                T = tl.load(w_out + tid[:, None] * D + d[None, :], mask=tm, other=0.0, cache_modifier=".cg")
                f = tl.sum(T * h[None, :], axis=1)
                g = tl.where(tv, alpha * (lab - _sigmoid(f, EXACT)), 0.0)
                loss -= tl.sum(tl.where(tv, _train_log_sigmoid(tl.where(kk == 0, f, -f), EXACT), 0.0), axis=0)
                e += tl.sum(g[:, None] * T, axis=0)
                tl.atomic_add(w_out + tid[:, None] * D + d[None, :], g[:, None] * h[None, :], mask=tm)
                nneg += tl.where(cw > 0, tl.sum(tv.to(tl.int64), axis=0) - 1, 0)
            tl.atomic_add(w_in + x[:, None] * D + d[None, :], tl.zeros([CTX_P, BLOCK_D], tl.float32) + e[None, :],
                          mask=xm)
            pairs += (cw > 0).to(tl.int64)
        else:
            lo = tl.maximum(i - b, 0)
            hi = tl.minimum(i + b + 1, nk)
            for q in range(0, hi - lo - 1):
                j = lo + q
                j = tl.where(j >= i, j + 1, j)
                x = tl.load(scratch + sb + j).to(tl.int64)
                in_x = tl.load(w_in + x * D + d, mask=dm, other=0.0, cache_modifier=".cg")
                e = tl.zeros([BLOCK_D], dtype=tl.float32)
                for t0 in range(h0, h1, NT_P):
                    dl, de = _hs_tile(w_out, hs_pts, hs_codes, in_x, t0, h1 - t0, alpha, kk, d, dm, D, EXACT)
                    loss += dl
                    e += de
                tl.atomic_add(w_in + x * D + d, e, mask=dm)
                pairs += 1
                tl.debug_barrier()
        tl.debug_barrier()
    ps = part + s * 5
    tl.store(ps, loss.to(tl.float64))
    tl.store(ps + 1, pairs.to(tl.float64))
    tl.store(ps + 2, nneg.to(tl.float64))
    tl.store(ps + 3, nskip.to(tl.float64))
    tl.store(ps + 4, nk.to(tl.float64))


def _check_hs(hs_offsets, hs_points, hs_codes, V, negative, cbow, hs, shared, dev) -> None:
    op = "word2vec_train_triton"
    _need(hs_offsets, "hs_offsets", op, torch.int64, 1, dev)
    _need(hs_points, "hs_points", op, torch.int32, 1, dev)
    _need(hs_codes, "hs_codes", op, torch.uint8, 1, dev)
    if hs and negative != 0:
        raise ValueError(f"{op}: hierarchical softmax uses w_out for the inner nodes of the Huffman tree; negative "
                         f"sampling at the same time is not supported: pass negative=0 with hs, got "
                         f"negative={negative}")
    if shared and (cbow or hs):
        raise ValueError(f"{op}: shared_negatives (HogBatch) applies only to skip-gram with negative sampling "
                         "(cbow=False, hs=False)")
    if hs:
        if hs_offsets.shape[0] != V + 1:
            raise ValueError(f"{op}: argument 'hs_offsets' must have shape [{V + 1}] (vocabulary size + 1), got "
                             f"{tuple(hs_offsets.shape)}")
        if hs_codes.shape[0] != hs_points.shape[0]:
            raise ValueError(f"{op}: 'hs_points' {tuple(hs_points.shape)} and 'hs_codes' {tuple(hs_codes.shape)} "
                             "must have the same length")


def _check_hs_values(hs_offsets, hs_points, hs_codes, V) -> None:
    op = "word2vec_train_triton"
    n = hs_points.shape[0]
    if int(hs_offsets[0]) != 0 or int(hs_offsets[-1]) != n:
        raise ValueError(f"{op}: 'hs_offsets' must start at 0 and end at len(hs_points)={n}, got "
                         f"{int(hs_offsets[0])} ... {int(hs_offsets[-1])}")
    if bool((hs_offsets[1:] < hs_offsets[:-1]).any()):
        raise ValueError(f"{op}: 'hs_offsets' must be non-decreasing")
    bad = (hs_points < 0) | (hs_points >= V - 1)
    if n and bool(bad.any()):
        k = int(bad.nonzero()[0, 0])
        raise IndexError(f"{op}: hs_points[{k}] = {int(hs_points[k])} is outside the inner nodes [0, {V - 1})")
    if n and bool((hs_codes > 1).any()):
        k = int((hs_codes > 1).nonzero()[0, 0])
        raise ValueError(f"{op}: hs_codes[{k}] = {int(hs_codes[k])} must be 0 or 1")


@triton_op("embedfast::word2vec_train_triton", mutates_args={"w_in", "w_out"})
def word2vec_train_triton(w_in: torch.Tensor, w_out: torch.Tensor, ids: torch.Tensor, sentence_offsets: torch.Tensor,
                          keep_prob: torch.Tensor, neg_threshold: torch.Tensor, neg_alias: torch.Tensor,
                          hs_offsets: torch.Tensor, hs_points: torch.Tensor, hs_codes: torch.Tensor, window: int,
                          negative: int, alpha: float, min_alpha: float, words_done: int, total_words: int,
                          seed: int, chunk: int, num_threads: int, cbow: bool, hs: bool, shared_negatives: bool,
                          exact_sigmoid: bool) -> torch.Tensor:
    """Triton version of ``embedfast::word2vec_train`` (see the module docstring); float64 stats on the device."""
    if not cbow and not hs:
        return sgns_train_triton(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window,
                                 negative, alpha, min_alpha, words_done, total_words, seed, chunk, num_threads,
                                 shared_negatives, exact_sigmoid)
    _check_train_args(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window, negative,
                      alpha, min_alpha, words_done, total_words, num_threads)
    V, D = w_in.shape
    dev = w_in.device
    _check_hs(hs_offsets, hs_points, hs_codes, V, negative, cbow, hs, shared_negatives, dev)
    S = sentence_offsets.shape[0] - 1
    if _eager(w_in, ids, sentence_offsets):
        n_tok = _check_train_values(ids, sentence_offsets, neg_threshold, neg_alias, V)
        if hs:
            _check_hs_values(hs_offsets, hs_points, hs_codes, V)
    else:
        n_tok = ids.shape[0]
    part, sched, key = launch_buffers(S, alpha, min_alpha, words_done, total_words, seed, chunk, dev)
    if S > 0:
        scratch = torch.empty(max(n_tok, 1), dtype=torch.int32, device=dev)
        meta = _train_meta(D, window, negative)
        if hs:
            meta["NT_P"] = _HS_TILE
        wrap_triton(_w2v_train_kernel)[(S,)](
            w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, hs_offsets, hs_points, hs_codes,
            scratch, part, key, sched, V, D, window, NEG=negative, CBOW=bool(cbow), HS=bool(hs),
            EXACT=bool(exact_sigmoid), **meta)
    return call_stats(part, w_in, ids, sentence_offsets, alpha, min_alpha, words_done, total_words, False,
                      exact_sigmoid)


@word2vec_train_triton.register_fake
def _word2vec_train_triton_fake(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, hs_offsets,
                                hs_points, hs_codes, window, negative, alpha, min_alpha, words_done, total_words, seed,
                                chunk, num_threads, cbow, hs, shared_negatives, exact_sigmoid):
    _check_train_args(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window, negative,
                      alpha, min_alpha, words_done, total_words, num_threads)
    _check_hs(hs_offsets, hs_points, hs_codes, w_in.shape[0], negative, cbow, hs, shared_negatives, w_in.device)
    return torch.empty(_N_TRAIN_STATS, dtype=torch.float64, device=w_in.device)


if INTERPRETED:
    keep_opaque_when_interpreted((word2vec_train_triton,))
