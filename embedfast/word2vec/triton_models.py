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

Sub-word skip-gram: ``embedfast::word2vec_subword_train_triton``, the schema and semantics of
``embedfast::word2vec_subword_train`` (csrc/cpu/word2vec_subword.cpp), one program per sentence with the same
streams, draws, learning rate and checks as above. Per kept center ``c`` with a context: ``h`` = the mean of
``w_in[c]`` and its bucket rows ``w_ngram[ngram_buckets[ngram_offsets[c]:ngram_offsets[c + 1]]]`` (read in tiles
of ``_NG_TILE`` entries, once per center); per context ``x`` in order, ``x`` (label 1) and its ``negative``
draws (a draw equal to ``x`` skipped) are scored against ``h`` from the values before the pair's update (as
the skip-gram kernel's word2vec mode: the CPU op scores a negative drawn twice in one pair after the first
update), ``w_out[t] += g_t h``, ``e += g_t w_out[t]``; after the last context ``e`` is added to every row of the
bag (a bucket listed twice gets it twice, as on the CPU). A center without context reads nothing.
"""
from __future__ import annotations

import torch
from torch.library import triton_op, wrap_triton

from .._backend import eager as _eager, keep_opaque_when_interpreted
from .triton_kernels import _device_fn
from .triton import (_check_train_args, _check_train_values, _need, call_stats, launch_buffers,
                     sgns_train_triton)
from .triton_kernels import (_N_TRAIN_STATS, INTERPRETED, _center, _context_at, _context_span, _context_tile,
                             _score_rows, _store_part, _targets, _train_program, _train_meta,
                             _zero_stats, tl, triton)

__all__ = ["word2vec_train_triton", "word2vec_subword_train_triton", "compile_subword_for_target"]

_HS_TILE = 16
_NG_TILE = 16


@_device_fn
def _hs_tile(w_out, hs_pts, hs_codes, inp, t0, left, alpha, kk, d, dm, D, EXACT: tl.constexpr):
    """Nodes t0 .. t0 + min(left, tile) of a Huffman path against the input row ``inp``: w_out[n] += g_n inp.
    Returns (the loss of the nodes, sum_n g_n w_out[n] from the values before the update)."""
    tv = kk < left  # (a block compare: a 0-d mask breaks the interpreter)
    tid = tl.load(hs_pts + t0 + kk, mask=tv, other=0).to(tl.int64)
    lab = 1.0 - tl.load(hs_codes + t0 + kk, mask=tv, other=0).to(tl.float32)
    return _score_rows(w_out, tid, tv, lab, inp, alpha, d, dm, D, EXACT)


@triton.jit
def _w2v_train_kernel(w_in, w_out, ids, off, keep, thr, alias, hs_off, hs_pts, hs_codes, scratch, part, key_ptr,
                      sched_ptr, V, D, window,
                      NEG: tl.constexpr, CBOW: tl.constexpr, HS: tl.constexpr, EXACT: tl.constexpr,
                      BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr, CTX_P: tl.constexpr, NT_P: tl.constexpr):
    s, sb, key, alpha, ctr, nk, d, dm, kk, lab, isneg, kneg = _train_program(
        ids, keep, scratch, off, key_ptr, sched_ptr, V, D, BLOCK_T, BLOCK_D, NT_P, NEG)
    loss, pairs, nneg, nskip = _zero_stats()
    jj = tl.arange(0, CTX_P)
    for i in range(0, nk):
        b, c, ctr = _center(key, ctr, window, scratch, sb, i)
        h0 = tl.zeros([], dtype=tl.int64)
        h1 = tl.zeros([], dtype=tl.int64)
        if HS:
            h0 = tl.load(hs_off + c)
            h1 = tl.load(hs_off + c + 1)
        if CBOW:
            cm, x, xm = _context_tile(scratch, sb, i, b, nk, jj, dm)
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
                dl, de = _score_rows(w_out, tid, tv, lab, h, alpha, d, dm, D, EXACT)
                loss += dl
                e += de
                nneg += tl.where(cw > 0, tl.sum(tv.to(tl.int64), axis=0) - 1, 0)
            tl.atomic_add(w_in + x[:, None] * D + d[None, :], tl.zeros([CTX_P, BLOCK_D], tl.float32) + e[None, :],
                          mask=xm)
            pairs += (cw > 0).to(tl.int64)
        else:
            lo, hi = _context_span(i, b, nk)
            for q in range(0, hi - lo - 1):
                x = _context_at(scratch, sb, i, lo, q)
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
    _store_part(part, s, loss, pairs, nneg, nskip, nk)


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
    part, sched, key, scratch = launch_buffers(S, n_tok, alpha, min_alpha, words_done, total_words, seed, chunk, dev)
    if S > 0:
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


# ----------------------------------------------------------------------------------------------------------
# sub-word skip-gram
# ----------------------------------------------------------------------------------------------------------


@triton.jit
def _subword_train_kernel(w_in, w_ngram, w_out, ids, off, keep, thr, alias, ng_off, ng, scratch, part, key_ptr,
                          sched_ptr, V, D, window,
                          NEG: tl.constexpr, EXACT: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
                          NT_P: tl.constexpr, NG_P: tl.constexpr):
    s, sb, key, alpha, ctr, nk, d, dm, kk, lab, isneg, kneg = _train_program(
        ids, keep, scratch, off, key_ptr, sched_ptr, V, D, BLOCK_T, BLOCK_D, NT_P, NEG)
    loss, pairs, nneg, nskip = _zero_stats()
    ee = tl.arange(0, NG_P)
    for i in range(0, nk):
        b, c, ctr = _center(key, ctr, window, scratch, sb, i)
        lo, hi = _context_span(i, b, nk)
        has = hi - lo > 1  # no context: nothing read, trained or drawn
        e0 = tl.load(ng_off + c)
        e1 = tl.where(has, tl.load(ng_off + c + 1), e0)
        hm = d < tl.where(has, D, 0)  # (a block compare: a 0-d mask breaks the interpreter)
        # h = the mean of the bag (the word's row and its bucket rows), from the rows before the center's update
        h = tl.load(w_in + c * D + d, mask=hm, other=0.0, cache_modifier=".cg")
        for t0 in range(e0, e1, NG_P):
            em = t0 + ee < e1
            bk = tl.load(ng + t0 + ee, mask=em, other=0).to(tl.int64)
            h += tl.sum(tl.load(w_ngram + bk[:, None] * D + d[None, :], mask=em[:, None] & dm[None, :], other=0.0,
                                cache_modifier=".cg"), axis=0)
        h = h * (1.0 / (1 + e1 - e0).to(tl.float32))
        e = tl.zeros([BLOCK_D], dtype=tl.float32)
        for q in range(0, hi - lo - 1):
            x = _context_at(scratch, sb, i, lo, q)
            tid, tvalid, skipped = _targets(key, ctr, kneg, kk, isneg, x, V, thr, alias)
            ctr += NEG
            nskip += skipped
            dl, de = _score_rows(w_out, tid, tvalid, lab, h, alpha, d, dm, D, EXACT)
            loss += dl
            e += de
            nneg += tl.sum(tvalid.to(tl.int64), axis=0) - 1
            pairs += 1
            tl.debug_barrier()
        # the whole gradient to every row of the bag (fastText's skip-gram)
        tl.atomic_add(w_in + c * D + d, e, mask=hm)
        for t0 in range(e0, e1, NG_P):
            em = t0 + ee < e1
            bk = tl.load(ng + t0 + ee, mask=em, other=0).to(tl.int64)
            tl.atomic_add(w_ngram + bk[:, None] * D + d[None, :], tl.zeros([NG_P, BLOCK_D], tl.float32) + e[None, :],
                          mask=em[:, None] & dm[None, :])
        tl.debug_barrier()
    _store_part(part, s, loss, pairs, nneg, nskip, nk)


_SW_OP = "word2vec_subword_train_triton"


def _check_subword(w_in, w_out, w_ngram, ngram_offsets, ngram_buckets) -> None:
    """Structure of the sub-word tables (as check_subword_tables in csrc/cpu/word2vec_subword.cpp)."""
    op, dev = _SW_OP, w_in.device
    _need(w_ngram, "w_ngram", op, torch.float32, 2, dev)
    if not w_ngram.is_contiguous():
        raise ValueError(f"{op}: 'w_ngram' is updated in place and must be contiguous")
    if w_ngram.shape[1] != w_in.shape[1]:
        raise ValueError(f"{op}: 'w_ngram' {tuple(w_ngram.shape)} must have the {w_in.shape[1]} columns of 'w_in' "
                         f"{tuple(w_in.shape)}")
    if w_ngram.shape[0] >= 2**31:
        raise ValueError(f"{op}: 'w_ngram' must have fewer than 2^31 rows, got {w_ngram.shape[0]}")
    _need(ngram_offsets, "ngram_offsets", op, torch.int64, 1, dev)
    _need(ngram_buckets, "ngram_buckets", op, torch.int32, 1, dev)
    if not (ngram_offsets.is_contiguous() and ngram_buckets.is_contiguous()):
        raise ValueError(f"{op}: 'ngram_offsets' and 'ngram_buckets' must be contiguous")
    if ngram_offsets.shape[0] != w_in.shape[0] + 1:
        raise ValueError(f"{op}: argument 'ngram_offsets' must have shape [{w_in.shape[0] + 1}] (vocabulary size + "
                         f"1), got {tuple(ngram_offsets.shape)}")


def _check_subword_values(w_in, w_out, w_ngram, ngram_offsets, ngram_buckets) -> None:
    """Eager value checks of the sub-word tables (one synchronisation) and that w_ngram has memory of its own."""
    op = _SW_OP
    if any(w_ngram.untyped_storage().data_ptr() == t.untyped_storage().data_ptr() for t in (w_in, w_out)):
        raise ValueError(f"{op}: 'w_ngram' must not share memory with 'w_in' or 'w_out'")
    E, B = ngram_buckets.shape[0], w_ngram.shape[0]
    o = ngram_offsets
    dec = o[1:] < o[:-1]
    bad = (ngram_buckets < 0) | (ngram_buckets >= B)
    flags = torch.stack([o[0], o[-1], dec.any().long(), bad.any().long()]).tolist()
    if flags[0] != 0 or flags[1] != E:
        raise ValueError(f"{op}: 'ngram_offsets' must start at 0 and end at len(ngram_buckets)={E}, got {flags[0]} "
                         f"... {flags[1]}")
    if flags[2]:
        v = int(dec.nonzero()[0, 0])
        raise ValueError(f"{op}: 'ngram_offsets' must be non-decreasing, but [{v + 1}] = {int(o[v + 1])} < [{v}] = "
                         f"{int(o[v])}")
    if flags[3]:
        k = int(bad.nonzero()[0, 0])
        raise IndexError(f"{op}: ngram_buckets[{k}] = {int(ngram_buckets[k])} is outside the rows of 'w_ngram' "
                         f"[0, {B})")


@triton_op("embedfast::word2vec_subword_train_triton", mutates_args={"w_in", "w_ngram", "w_out"})
def word2vec_subword_train_triton(w_in: torch.Tensor, w_ngram: torch.Tensor, w_out: torch.Tensor, ids: torch.Tensor,
                                  sentence_offsets: torch.Tensor, keep_prob: torch.Tensor, neg_threshold: torch.Tensor,
                                  neg_alias: torch.Tensor, ngram_offsets: torch.Tensor, ngram_buckets: torch.Tensor,
                                  window: int, negative: int, alpha: float, min_alpha: float, words_done: int,
                                  total_words: int, seed: int, chunk: int, num_threads: int,
                                  exact_sigmoid: bool) -> torch.Tensor:
    """Triton version of ``embedfast::word2vec_subword_train`` (see the module docstring); float64 stats
    (TRAIN_STATS) on the device. Raises ValueError when training diverged (eager mode)."""
    _check_train_args(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window, negative,
                      alpha, min_alpha, words_done, total_words, num_threads, _SW_OP)
    _check_subword(w_in, w_out, w_ngram, ngram_offsets, ngram_buckets)
    V, D = w_in.shape
    dev = w_in.device
    S = sentence_offsets.shape[0] - 1
    if _eager(w_in, ids, sentence_offsets):
        n_tok = _check_train_values(ids, sentence_offsets, neg_threshold, neg_alias, V, _SW_OP)
        _check_subword_values(w_in, w_out, w_ngram, ngram_offsets, ngram_buckets)
    else:
        n_tok = ids.shape[0]
    part, sched, key, scratch = launch_buffers(S, n_tok, alpha, min_alpha, words_done, total_words, seed, chunk, dev)
    if S > 0:
        meta = _train_meta(D, window, negative)
        del meta["CTX_P"]
        wrap_triton(_subword_train_kernel)[(S,)](
            w_in, w_ngram, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, ngram_offsets,
            ngram_buckets, scratch, part, key, sched, V, D, window, NEG=negative, EXACT=bool(exact_sigmoid),
            NG_P=_NG_TILE, **meta)
    return call_stats(part, w_in, ids, sentence_offsets, alpha, min_alpha, words_done, total_words, False,
                      exact_sigmoid, _SW_OP, "sub-word skip-gram")


@word2vec_subword_train_triton.register_fake
def _word2vec_subword_train_triton_fake(w_in, w_ngram, w_out, ids, sentence_offsets, keep_prob, neg_threshold,
                                        neg_alias, ngram_offsets, ngram_buckets, window, negative, alpha, min_alpha,
                                        words_done, total_words, seed, chunk, num_threads, exact_sigmoid):
    _check_train_args(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window, negative,
                      alpha, min_alpha, words_done, total_words, num_threads, _SW_OP)
    _check_subword(w_in, w_out, w_ngram, ngram_offsets, ngram_buckets)
    return torch.empty(_N_TRAIN_STATS, dtype=torch.float64, device=w_in.device)


def compile_subword_for_target(arch: int = 90, *, dim: int = 100, window: int = 5, negative: int = 5) -> dict:
    """Compile the sub-word kernel (exact and table sigmoid) for a CUDA architecture without a GPU; returns name ->
    cubin size (as ``triton_kernels.compile_for_target``; only when not imported under TRITON_INTERPRET=1)."""
    if INTERPRETED:
        raise RuntimeError("compile_subword_for_target: the kernels were imported under TRITON_INTERPRET=1")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    meta = _train_meta(dim, window, negative)
    del meta["CTX_P"]
    out = {}
    for exact in (True, False):
        sig = {n: "*fp32" for n in ("w_in", "w_ngram", "w_out")}
        sig.update(ids="*i32", off="*i64", keep="*fp64", thr="*i64", alias="*i32", ng_off="*i64", ng="*i32",
                   scratch="*i32", part="*fp64", key_ptr="*i64", sched_ptr="*fp64", V="i64", D="i64", window="i64")
        const = dict(NEG=negative, EXACT=exact, NG_P=_NG_TILE, **meta)
        sig.update({k: "constexpr" for k in const})
        k = triton.compile(ASTSource(fn=_subword_train_kernel, signature=sig, constexprs=const),
                           target=GPUTarget("cuda", arch, 32))
        out[f"subword(exact={exact})"] = len(k.asm["cubin"])
    return out


if INTERPRETED:
    keep_opaque_when_interpreted((word2vec_train_triton, word2vec_subword_train_triton))
