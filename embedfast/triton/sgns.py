"""Triton kernels of SGNS: the fused training op and the differentiable loss (forward and backward).

Same semantics as the C++ CPU ops (csrc/cpu/word2vec_sgns.cpp), registered as ``torch.library.triton_op``:

- ``embedfast::sgns_train_triton`` -- the schema of ``embedfast::sgns_train``; it updates ``w_in`` and ``w_out``
  in place (``mutates_args``) and returns the float64 stats (``embedfast.ops.TRAIN_STATS``) on the device of
  the tables.
- ``embedfast::sgns_loss_triton`` / ``embedfast::sgns_loss_triton_backward`` -- the schema of
  ``embedfast::sgns_loss`` / ``sgns_loss_backward``, with autograd registered.

Training kernel: one program per sentence of the chunk (Hogwild across programs, as the CPU kernel is across
threads). A program

1. sub-samples its sentence (one draw per token with keep probability < 1, in order) and writes the kept ids,
   compacted, into a scratch buffer;
2. walks the kept positions in order: one draw for the shrunk window ``b = window - r % window``, then the
   negatives (alias sampling), exactly in the order of the CPU kernel -- per centre (``shared_negatives``,
   HogBatch: scores of all contexts x targets from the values before the update, ``T += G^T X``, ``X += G T``
   with atomic adds so repeated rows accumulate like the CPU kernel's sequential adds) or per (context, centre)
   pair (word2vec: targets one after the other, ``w_in[x]`` updated after its targets).

Random numbers: the counter-based SplitMix64 streams of csrc/include/embedfast/rng.h. Sentence ``s`` of the
chunk (0-based) draws from ``stream_key(seed, chunk, s)``; the CPU kernel's part ``p`` draws from
``stream_key(seed, chunk, p)``, so a chunk of one sentence trained with ``num_threads=1`` gets exactly the same
draws on both backends (the tests check the update against the CPU op). ``num_threads`` is ignored (the grid
has one program per sentence). Learning rate per sentence: ``alpha - (alpha - min_alpha) * min(1, (words_done
+ tokens before the sentence in the chunk) / total_words)`` (the CPU kernel with one part).

Divergence: the loss of a call is non-finite exactly when a score was NaN/inf (too large a learning rate, or
non-finite weights passed in); in eager mode the op then raises ValueError ("sgns_train_triton: training
diverged ...", as the CPU op). That reads the loss back from the device (one synchronisation per call); under
torch.compile or CUDA graph capture the check is skipped and the loss in the returned stats is the signal.

Sigmoid: ``exact_sigmoid=True`` is ``1 / (1 + exp(-x))`` in float32 as on the CPU; ``exact_sigmoid=False``
keeps the CPU table's saturation (0 / 1 outside [-8, 8], log-sigmoid x / 0) but computes the exact value inside
(the CPU table interpolates, within 2e-6 of it).

Loss kernels: one program per block of examples; the backward accumulates row gradients with atomic adds
(the order of the float additions differs from run to run on a GPU; in the interpreter it is fixed).

Under ``TRITON_INTERPRET=1`` (set before this module is imported) the kernels run on CPU tensors in Triton's
interpreter (for testing); then the ops stay opaque nodes in compiled graphs (see ``INTERPRETED``).
``compile_for_target`` compiles every kernel for a GPU architecture without a GPU (a check that they lower to
PTX and cubin).
"""
from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .._backend import eager as _eager, keep_opaque_when_interpreted

__all__ = [
    "INTERPRETED",
    "sgns_train_triton",
    "sgns_loss_triton",
    "sgns_loss_triton_backward",
    "stream_key",
    "compile_for_target",
]

_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_C1 = 0xD1B54A32D192ED03
_C2 = 0x8CB92BA72F3D8DD7
_SALT = 0x5851F42D4C957F2D

#: Widest vector the kernels keep in one tile (a whole embedding row).
MAX_DIM = 4096
#: Most negatives per pair (the per-centre target loop is unrolled at compile time).
MAX_NEGATIVE = 64
#: Largest window (the contexts of a centre are one tile of 2 * window rows).
MAX_WINDOW = 64

_N_TRAIN_STATS = 8  # loss, pairs, negatives, negatives_skipped, tokens, kept_tokens, sentences, last_alpha
_N_PART = 5  # per-sentence: loss, pairs, negatives, negatives_skipped, kept_tokens


def _mix64_py(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def stream_key(seed: int, chunk: int, part: int) -> int:
    """The 64-bit key of the random stream (seed, chunk, part) of csrc/include/embedfast/rng.h."""
    return _mix64_py(_mix64_py((seed & _M64) ^ _SALT) ^ ((chunk * _C1) & _M64) ^ ((part * _C2) & _M64))


# ----------------------------------------------------------------------------------------------------------
# device helpers
# ----------------------------------------------------------------------------------------------------------

# In Triton's interpreter every call of a nested @triton.jit function re-patches triton.language (about 1 ms),
# which dominated the interpreted training kernel; there the helpers are plain Python functions run with the
# same (patched) triton.language, so the code executed is the same. Compiled kernels use @triton.jit helpers.
_device_fn = (lambda fn: fn) if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0") else triton.jit


@_device_fn
def _mix64(z):
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
    return z ^ (z >> 31)


@_device_fn
def _draw(key, k):
    """The k-th draw (0-based, uint64) of the stream `key`: mix64(key + (k + 1) * golden)."""
    return _mix64(key + (k + 1) * 0x9E3779B97F4A7C15)


@_device_fn
def _alias_pick(r, V, thr_ptr, alias_ptr, mask):
    """Walker/Vose alias sampling from one draw r (as alias_pick in rng.h); int64 word ids."""
    i = ((r >> 32) * V.to(tl.uint64)) >> 32
    i = i.to(tl.int64)
    th = tl.load(thr_ptr + i, mask=mask, other=0)
    lo = (r & 0xFFFFFFFF).to(tl.int64)
    a = tl.load(alias_ptr + i, mask=mask, other=0).to(tl.int64)
    return tl.where(lo < th, i, a)


@_device_fn
def _sigmoid(f, EXACT: tl.constexpr):
    s = 1.0 / (1.0 + tl.exp(-f))
    if not EXACT:
        s = tl.where(f <= -8.0, 0.0, tl.where(f >= 8.0, 1.0, s))
    return s


@_device_fn
def _log_sigmoid(f, EXACT: tl.constexpr):
    ls = tl.minimum(f, 0.0) - tl.log(1.0 + tl.exp(-tl.abs(f)))
    if not EXACT:
        ls = tl.where(f <= -8.0, f, tl.where(f >= 8.0, 0.0, ls))
    return ls


@_device_fn
def _train_log_sigmoid(f, EXACT: tl.constexpr):
    """_log_sigmoid, but NaN for f = +inf too (f - f is 0 for every finite f): the training loss turns non-finite
    for every non-finite score, as on the CPU (csrc/include/embedfast/sigmoid.h)."""
    return _log_sigmoid(f, EXACT) + (f - f)


# ----------------------------------------------------------------------------------------------------------
# training kernel
# ----------------------------------------------------------------------------------------------------------


@triton.jit
def _sgns_train_kernel(w_in, w_out, ids, off, keep, thr, alias, scratch, part, key_ptr, sched_ptr,
                       V, D, window,
                       NEG: tl.constexpr, SHARED: tl.constexpr, EXACT: tl.constexpr,
                       BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr, CTX_P: tl.constexpr, NT_P: tl.constexpr):
    s = tl.program_id(0)
    first = tl.load(off)
    b0 = tl.load(off + s)
    b1 = tl.load(off + s + 1)
    sb = b0 - first  # this sentence's slice of the scratch buffer
    key = _mix64(tl.load(key_ptr).to(tl.uint64, bitcast=True) ^ (s.to(tl.uint64) * 0x8CB92BA72F3D8DD7))
    # learning rate of this sentence, in float64 like the CPU kernel
    a0 = tl.load(sched_ptr)
    a1 = tl.load(sched_ptr + 1)
    done = tl.load(sched_ptr + 2) + (b0 - first).to(tl.float64)
    progress = tl.minimum(done / tl.load(sched_ptr + 3), 1.0)
    alpha = (a0 - (a0 - a1) * progress).to(tl.float32)

    # 1. sub-sampling, compacted into scratch[sb : sb + nk]
    ctr = tl.zeros([], dtype=tl.uint64)  # draws used so far
    nk = tl.zeros([], dtype=tl.int64)  # kept tokens so far
    tt = tl.arange(0, BLOCK_T)
    for t0 in range(b0, b1, BLOCK_T):
        p = t0 + tt
        m = p < b1
        w = tl.load(ids + p, mask=m, other=0).to(tl.int64)
        m = m & (w >= 0) & (w < V)
        kp = tl.load(keep + w, mask=m, other=1.0)
        need = m & (kp < 1.0)
        needi = need.to(tl.int64)
        rank = tl.cumsum(needi, axis=0) - needi
        r = _draw(key, ctr + rank.to(tl.uint64))
        u = (r >> 11).to(tl.float64) * 1.1102230246251565e-16  # 2^-53
        kept = m & ((kp >= 1.0) | (u < kp))
        ki = kept.to(tl.int64)
        pos = nk + tl.cumsum(ki, axis=0) - ki
        tl.store(scratch + sb + pos, w.to(tl.int32), mask=kept)
        ctr += tl.sum(needi, axis=0).to(tl.uint64)
        nk += tl.sum(ki, axis=0)
    tl.debug_barrier()

    # 2. centres in order
    d = tl.arange(0, BLOCK_D)
    dm = d < D
    loss = tl.zeros([], dtype=tl.float32)
    pairs = tl.zeros([], dtype=tl.int64)
    nneg = tl.zeros([], dtype=tl.int64)
    nskip = tl.zeros([], dtype=tl.int64)
    # targets: slot 0 the centre (label 1), slots 1..NEG the negatives (label 0)
    kk = tl.arange(0, NT_P)
    isneg = (kk >= 1) & (kk <= NEG)
    lab = (kk == 0).to(tl.float32)
    kneg = (kk - 1).to(tl.uint64)
    jj = tl.arange(0, CTX_P)
    for i in range(0, nk):
        r = _draw(key, ctr)
        ctr += 1
        b = window - (r % window.to(tl.uint64)).to(tl.int64)
        c = tl.load(scratch + sb + i).to(tl.int64)
        if SHARED:
            # HogBatch: the negatives are shared by all contexts of the centre; scores of all contexts x targets
            # from the values before the update, then T += G^T X and X += G T_old as small matrix products
            rn = _draw(key, ctr + kneg)
            ctr += NEG
            tn = _alias_pick(rn, V, thr, alias, isneg)
            tvalid = (kk == 0) | (isneg & (tn != c))
            nskip += tl.sum((isneg & (tn == c)).to(tl.int64), axis=0)
            tid = tl.where(kk == 0, c, tl.where(tvalid, tn, 0))
            # contexts j = i - b .. i + b, j != i, inside the kept sentence
            j = i + tl.where(jj < b, jj - b, jj - b + 1)
            cm = (jj < 2 * b) & (j >= 0) & (j < nk)
            x = tl.load(scratch + sb + j, mask=cm, other=0).to(tl.int64)
            xm = cm[:, None] & dm[None, :]
            tm = tvalid[:, None] & dm[None, :]
            X = tl.load(w_in + x[:, None] * D + d[None, :], mask=xm, other=0.0, cache_modifier=".cg")
            T = tl.load(w_out + tid[:, None] * D + d[None, :], mask=tm, other=0.0, cache_modifier=".cg")
            F = tl.dot(X, tl.trans(T), input_precision="ieee")  # [CTX_P, NT_P]
            use = cm[:, None] & tvalid[None, :]
            G = tl.where(use, alpha * (lab[None, :] - _sigmoid(F, EXACT)), 0.0)
            loss -= tl.sum(tl.sum(tl.where(use, _train_log_sigmoid(tl.where(kk[None, :] == 0, F, -F), EXACT),
                                           0.0), axis=1), axis=0)
            dX = tl.dot(G, T, input_precision="ieee")  # [CTX_P, BLOCK_D]
            dT = tl.dot(tl.trans(G), X, input_precision="ieee")  # [NT_P, BLOCK_D]
            tl.atomic_add(w_out + tid[:, None] * D + d[None, :], dT, mask=tm)
            tl.atomic_add(w_in + x[:, None] * D + d[None, :], dX, mask=xm)
            nc = tl.sum(cm.to(tl.int64), axis=0)
            pairs += nc
            nneg += nc * (tl.sum(tvalid.to(tl.int64), axis=0) - 1)
        else:
            # word2vec: per (context, centre) pair its own negatives; the pair's targets are scored from the
            # values before the pair's update, then w_out[t] += g_t w_in[x] and w_in[x] += sum_t g_t w_out[t]
            lo = tl.maximum(i - b, 0)
            hi = tl.minimum(i + b + 1, nk)
            for q in range(0, hi - lo - 1):
                j = lo + q
                j = tl.where(j >= i, j + 1, j)
                x = tl.load(scratch + sb + j).to(tl.int64)
                rn = _draw(key, ctr + kneg)
                ctr += NEG
                tn = _alias_pick(rn, V, thr, alias, isneg)
                tvalid = (kk == 0) | (isneg & (tn != c))
                nskip += tl.sum((isneg & (tn == c)).to(tl.int64), axis=0)
                tid = tl.where(kk == 0, c, tl.where(tvalid, tn, 0))
                tm = tvalid[:, None] & dm[None, :]
                in_x = tl.load(w_in + x * D + d, mask=dm, other=0.0, cache_modifier=".cg")
                T = tl.load(w_out + tid[:, None] * D + d[None, :], mask=tm, other=0.0, cache_modifier=".cg")
                f = tl.sum(T * in_x[None, :], axis=1)
                g = tl.where(tvalid, alpha * (lab - _sigmoid(f, EXACT)), 0.0)
                loss -= tl.sum(tl.where(tvalid, _train_log_sigmoid(tl.where(kk == 0, f, -f), EXACT), 0.0), axis=0)
                tl.atomic_add(w_out + tid[:, None] * D + d[None, :], g[:, None] * in_x[None, :], mask=tm)
                tl.atomic_add(w_in + x * D + d, tl.sum(g[:, None] * T, axis=0), mask=dm)
                nneg += tl.sum(tvalid.to(tl.int64), axis=0) - 1
                pairs += 1
                tl.debug_barrier()
        tl.debug_barrier()
    ps = part + s * 5
    tl.store(ps, loss.to(tl.float64))
    tl.store(ps + 1, pairs.to(tl.float64))
    tl.store(ps + 2, nneg.to(tl.float64))
    tl.store(ps + 3, nskip.to(tl.float64))
    tl.store(ps + 4, nk.to(tl.float64))


# ----------------------------------------------------------------------------------------------------------
# loss kernels
# ----------------------------------------------------------------------------------------------------------


@_device_fn
def _row_dot(a_ptr, b_ptr, ra, rb, m, D, BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr, ACC: tl.constexpr):
    """Dot products of rows a[ra[b]] . b[rb[b]] for a block of examples, over D in chunks."""
    acc = tl.zeros([BLOCK_B], dtype=ACC)
    for d0 in range(0, D, BLOCK_D):
        d = d0 + tl.arange(0, BLOCK_D)
        mm = m[:, None] & (d < D)[None, :]
        u = tl.load(a_ptr + ra[:, None] * D + d[None, :], mask=mm, other=0.0).to(ACC)
        v = tl.load(b_ptr + rb[:, None] * D + d[None, :], mask=mm, other=0.0).to(ACC)
        acc += tl.sum(u * v, axis=1)
    return acc


@triton.jit
def _sgns_loss_fwd_kernel(loss_ptr, w_in, w_out, cen, ctx, neg, B, K, D,
                          BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr, ACC: tl.constexpr):
    b = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    m = b < B
    c = tl.load(cen + b, mask=m, other=0)
    x = tl.load(ctx + b, mask=m, other=0)
    f = _row_dot(w_in, w_out, c, x, m, D, BLOCK_B, BLOCK_D, ACC)
    loss = -_log_sigmoid(f, True)
    for k in range(0, K):
        n = tl.load(neg + b * K + k, mask=m, other=0)
        f = _row_dot(w_in, w_out, c, n, m, D, BLOCK_B, BLOCK_D, ACC)
        loss -= _log_sigmoid(-f, True)
    tl.store(loss_ptr + b, loss, mask=m)


@triton.jit
def _sgns_loss_bwd_kernel(g_in, g_out, grad, w_in, w_out, cen, ctx, neg, B, K, D,
                          BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr, ACC: tl.constexpr):
    b = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    m = b < B
    c = tl.load(cen + b, mask=m, other=0)
    gb = tl.load(grad + b, mask=m, other=0.0).to(ACC)
    for k in range(-1, K):
        if k < 0:
            row = tl.load(ctx + b, mask=m, other=0)
        else:
            row = tl.load(neg + b * K + k, mask=m, other=0)
        f = _row_dot(w_in, w_out, c, row, m, D, BLOCK_B, BLOCK_D, ACC)
        if k < 0:
            coef = gb * (_sigmoid(f, True) - 1.0)
        else:
            coef = gb * _sigmoid(f, True)
        for d0 in range(0, D, BLOCK_D):
            d = d0 + tl.arange(0, BLOCK_D)
            mm = m[:, None] & (d < D)[None, :]
            u = tl.load(w_in + c[:, None] * D + d[None, :], mask=mm, other=0.0).to(ACC)
            v = tl.load(w_out + row[:, None] * D + d[None, :], mask=mm, other=0.0).to(ACC)
            tl.atomic_add(g_in + c[:, None] * D + d[None, :], coef[:, None] * v, mask=mm)
            tl.atomic_add(g_out + row[:, None] * D + d[None, :], coef[:, None] * u, mask=mm)


# ----------------------------------------------------------------------------------------------------------
# host side: checks
# ----------------------------------------------------------------------------------------------------------


def _need(t: torch.Tensor, name: str, op: str, dtype: torch.dtype, dim: int, device: torch.device) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}: argument '{name}' must be a tensor, got {type(t).__name__}")
    if t.dtype != dtype:
        raise ValueError(f"{op}: argument '{name}' must have dtype {dtype}, got {t.dtype}")
    if t.dim() != dim:
        raise ValueError(f"{op}: argument '{name}' must be {dim}-D, got shape {tuple(t.shape)}")
    if t.device != device:
        raise ValueError(f"{op}: argument '{name}' is on {t.device} but 'w_in' is on {device}")


def _check_train_args(w_in, w_out, ids, offsets, keep, thr, alias, window, negative, alpha, min_alpha,
                      words_done, total_words, num_threads):
    op = "sgns_train_triton"
    dev = w_in.device
    _need(w_in, "w_in", op, torch.float32, 2, dev)
    _need(w_out, "w_out", op, torch.float32, 2, dev)
    if not (w_in.is_contiguous() and w_out.is_contiguous()):
        raise ValueError(f"{op}: 'w_in' and 'w_out' are updated in place and must be contiguous")
    if w_in.shape != w_out.shape:
        raise ValueError(f"{op}: 'w_in' {tuple(w_in.shape)} and 'w_out' {tuple(w_out.shape)} must have the same "
                         "shape")
    V, D = w_in.shape
    if not 1 <= V < 2**31:
        raise ValueError(f"{op}: vocabulary size must be in [1, 2^31), got {V}")
    if not 1 <= D <= MAX_DIM:
        raise ValueError(f"{op}: the Triton kernel takes 1 <= dim <= {MAX_DIM}, got {D}")
    _need(ids, "ids", op, torch.int32, 1, dev)
    _need(offsets, "sentence_offsets", op, torch.int64, 1, dev)
    for t, name, dt in ((keep, "keep_prob", torch.float64), (thr, "neg_threshold", torch.int64),
                        (alias, "neg_alias", torch.int32)):
        _need(t, name, op, dt, 1, dev)
        if t.shape[0] != V:
            raise ValueError(f"{op}: argument '{name}' must have shape [{V}] (the vocabulary size of w_in), got "
                             f"{tuple(t.shape)}")
    for t, name in ((ids, "ids"), (offsets, "sentence_offsets"), (keep, "keep_prob"), (thr, "neg_threshold"),
                    (alias, "neg_alias")):
        if not t.is_contiguous():
            raise ValueError(f"{op}: argument '{name}' must be contiguous")
    if offsets.shape[0] < 1:
        raise ValueError(f"{op}: 'sentence_offsets' must have at least one entry")
    if not 1 <= window <= MAX_WINDOW:
        raise ValueError(f"{op}: window must be in [1, {MAX_WINDOW}] for the Triton kernel, got {window}")
    if not 0 <= negative <= MAX_NEGATIVE:
        raise ValueError(f"{op}: negative must be in [0, {MAX_NEGATIVE}], got {negative}")
    if not (math.isfinite(alpha) and alpha > 0 and 0 <= min_alpha <= alpha):
        raise ValueError(f"{op}: need a finite alpha > 0 and 0 <= min_alpha <= alpha, got alpha={alpha}, "
                         f"min_alpha={min_alpha}")
    if total_words < 1 or words_done < 0:
        raise ValueError(f"{op}: need total_words >= 1 and words_done >= 0, got {total_words} and {words_done}")
    if not 1 <= num_threads <= 1024:
        raise ValueError(f"{op}: num_threads must be in [1, 1024], got {num_threads}")


def _check_train_values(ids, offsets, thr, alias, V) -> int:
    """Eager value checks (one synchronisation); returns the number of tokens of the chunk."""
    op = "sgns_train_triton"
    n = ids.shape[0]
    lo, hi = offsets[0], offsets[-1]
    zero = torch.zeros((), dtype=torch.bool, device=ids.device)
    pos = torch.arange(n, device=ids.device)
    inside = (pos >= lo) & (pos < hi)
    bad_id = inside & ((ids < 0) | (ids >= V))
    flags = torch.stack([  # one synchronisation for all the checks
        (offsets < 0).any() | (offsets > n).any(),
        (offsets[1:] < offsets[:-1]).any() if offsets.shape[0] > 1 else zero,
        bad_id.any(),
        (thr < 0).any() | (thr > 2**32).any(),
        (alias < 0).any() | (alias >= V).any(),
    ]).long()
    flags = torch.cat([flags, (hi - lo).reshape(1)]).tolist()
    if flags[0]:
        s = int(((offsets < 0) | (offsets > n)).nonzero()[0, 0])
        raise IndexError(f"{op}: sentence_offsets[{s}] = {int(offsets[s])} is outside [0, len(ids)={n}]")
    if flags[1]:
        s = int((offsets[1:] < offsets[:-1]).nonzero()[0, 0]) + 1
        raise ValueError(f"{op}: 'sentence_offsets' must be non-decreasing, but [{s}] = {int(offsets[s])} < "
                         f"[{s - 1}] = {int(offsets[s - 1])}")
    if flags[2]:
        p = int(bad_id.nonzero()[0, 0])
        raise IndexError(f"{op}: 'ids' has value {int(ids[p])} at position {p}, outside the vocabulary [0, {V})")
    if flags[3]:
        v = int(((thr < 0) | (thr > 2**32)).nonzero()[0, 0])
        raise ValueError(f"{op}: neg_threshold[{v}] = {int(thr[v])} is outside [0, 2^32]")
    if flags[4]:
        v = int(((alias < 0) | (alias >= V)).nonzero()[0, 0])
        raise IndexError(f"{op}: neg_alias[{v}] = {int(alias[v])} is outside [0, {V})")
    return int(flags[5])


def _check_diverged(loss: float, pairs: float, alpha: float, min_alpha: float, shared: bool, exact: bool) -> None:
    """Eager only: the loss of the call is non-finite exactly when a score was NaN/inf (_train_log_sigmoid), as in
    the CPU op, which raises the same error."""
    if math.isfinite(loss):
        return
    raise ValueError(
        f"sgns_train_triton: training diverged: the scores became NaN/inf (loss {loss} over {pairs:g} pairs) with "
        f"learning rate alpha={alpha} (min_alpha={min_alpha}, {'exact' if exact else 'table'} sigmoid, "
        f"{'shared' if shared else 'per-pair'} negatives); w_in and w_out now hold non-finite values (NaN/inf) and "
        "cannot be used. Start again from finite weights with a smaller alpha (word2vec's default is 0.025); if "
        "alpha is already small, check that the weights passed in are finite.")


def _train_meta(D: int, window: int, negative: int) -> dict:
    # tl.dot needs every dimension >= 16
    return dict(BLOCK_T=128, BLOCK_D=max(16, triton.next_power_of_2(D)),
                CTX_P=max(16, triton.next_power_of_2(2 * window)), NT_P=max(16, triton.next_power_of_2(negative + 1)))


# ----------------------------------------------------------------------------------------------------------
# ops
# ----------------------------------------------------------------------------------------------------------


@triton_op("embedfast::sgns_train_triton", mutates_args={"w_in", "w_out"})
def sgns_train_triton(w_in: torch.Tensor, w_out: torch.Tensor, ids: torch.Tensor, sentence_offsets: torch.Tensor,
                      keep_prob: torch.Tensor, neg_threshold: torch.Tensor, neg_alias: torch.Tensor, window: int,
                      negative: int, alpha: float, min_alpha: float, words_done: int, total_words: int, seed: int,
                      chunk: int, num_threads: int, shared_negatives: bool, exact_sigmoid: bool) -> torch.Tensor:
    """Triton version of ``embedfast::sgns_train`` (same arguments and meaning; see the module docstring).

    Returns the float64 stats of ``embedfast.ops.TRAIN_STATS`` on the device of ``w_in`` (no synchronisation
    beyond the eager input checks and the eager divergence check). Raises ValueError when training diverged.
    """
    _check_train_args(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window, negative,
                      alpha, min_alpha, words_done, total_words, num_threads)
    V, D = w_in.shape
    S = sentence_offsets.shape[0] - 1
    dev = w_in.device
    if _eager(w_in, ids, sentence_offsets):
        n_tok = _check_train_values(ids, sentence_offsets, neg_threshold, neg_alias, V)
    else:
        n_tok = ids.shape[0]
    part = torch.zeros((max(S, 1), _N_PART), dtype=torch.float64, device=dev)
    sched = torch.tensor([alpha, min_alpha, float(words_done), float(total_words)], dtype=torch.float64,
                         device=dev)
    key0 = _mix64_py((seed & _M64) ^ _SALT) ^ ((chunk * _C1) & _M64)
    key = torch.tensor([key0 - (1 << 64) if key0 >= 1 << 63 else key0], dtype=torch.int64, device=dev)
    if S > 0:
        scratch = torch.empty(max(n_tok, 1), dtype=torch.int32, device=dev)
        wrap_triton(_sgns_train_kernel)[(S,)](
            w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, scratch, part, key, sched,
            V, D, window, NEG=negative, SHARED=bool(shared_negatives), EXACT=bool(exact_sigmoid),
            **_train_meta(D, window, negative))
    sums = part.sum(0)
    if S > 0 and _eager(w_in, ids, sentence_offsets):
        _check_diverged(*sums[:2].tolist(), alpha, min_alpha, shared_negatives, exact_sigmoid)
    tokens = (sentence_offsets[-1] - sentence_offsets[0]).to(torch.float64)
    last_start = (sentence_offsets[-2] if S > 0 else sentence_offsets[0]) - sentence_offsets[0]
    progress = ((float(words_done) + last_start.to(torch.float64)) / float(total_words)).clamp(max=1.0)
    last_alpha = (alpha - (alpha - min_alpha) * progress).to(torch.float32).to(torch.float64)
    return torch.stack([sums[0], sums[1], sums[2], sums[3], tokens, sums[4],
                        torch.full((), float(S), dtype=torch.float64, device=dev), last_alpha])


@sgns_train_triton.register_fake
def _sgns_train_triton_fake(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window,
                            negative, alpha, min_alpha, words_done, total_words, seed, chunk, num_threads,
                            shared_negatives, exact_sigmoid):
    _check_train_args(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window, negative,
                      alpha, min_alpha, words_done, total_words, num_threads)
    return torch.empty(_N_TRAIN_STATS, dtype=torch.float64, device=w_in.device)


def _check_loss_args(op, w_in, w_out, centers, contexts, negatives):
    dev = w_in.device
    if w_in.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{op}: argument 'w_in' must have dtype float32 or float64, got {w_in.dtype}")
    _need(w_in, "w_in", op, w_in.dtype, 2, dev)
    _need(w_out, "w_out", op, w_in.dtype, 2, dev)
    if w_in.shape[1] != w_out.shape[1]:
        raise ValueError(f"{op}: 'w_in' {tuple(w_in.shape)} and 'w_out' {tuple(w_out.shape)} must have the same "
                         "number of columns")
    for t, name, dim in ((centers, "centers", 1), (contexts, "contexts", 1), (negatives, "negatives", 2)):
        if t.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"{op}: argument '{name}' must have dtype int32 or int64, got {t.dtype}")
        _need(t, name, op, t.dtype, dim, dev)
    B = centers.shape[0]
    if contexts.shape[0] != B or negatives.shape[0] != B:
        raise ValueError(f"{op}: 'centers' {tuple(centers.shape)}, 'contexts' {tuple(contexts.shape)} and "
                         f"'negatives' {tuple(negatives.shape)} must have the same first dimension")


def _check_loss_values(op, w_in, w_out, centers, contexts, negatives):
    for t, name, n in ((centers, "centers", w_in.shape[0]), (contexts, "contexts", w_out.shape[0]),
                       (negatives, "negatives", w_out.shape[0])):
        if t.numel() == 0:
            continue
        bad = (t < 0) | (t >= n)
        if bool(bad.any()):
            p = int(bad.reshape(-1).nonzero()[0, 0])
            raise IndexError(f"{op}: argument '{name}' has value {int(t.reshape(-1)[p])} at flat position {p}, "
                             f"outside the valid range [0, {n})")


def _loss_launch_args(w_in, w_out, centers, contexts, negatives):
    wi, wo = w_in.contiguous(), w_out.contiguous()
    ce, co, ne = centers.long().contiguous(), contexts.long().contiguous(), negatives.long().contiguous()
    D = wi.shape[1]
    meta = dict(BLOCK_B=16, BLOCK_D=min(triton.next_power_of_2(max(D, 1)), 128),
                ACC=tl.float64 if wi.dtype == torch.float64 else tl.float32)
    return wi, wo, ce, co, ne, meta


@triton_op("embedfast::sgns_loss_triton", mutates_args=())
def sgns_loss_triton(w_in: torch.Tensor, w_out: torch.Tensor, centers: torch.Tensor, contexts: torch.Tensor,
                     negatives: torch.Tensor) -> torch.Tensor:
    """Triton version of ``embedfast::sgns_loss``: per-example loss [B], differentiable in w_in and w_out."""
    op = "sgns_loss_triton"
    _check_loss_args(op, w_in, w_out, centers, contexts, negatives)
    if _eager(w_in, w_out, centers, contexts, negatives):
        _check_loss_values(op, w_in, w_out, centers, contexts, negatives)
    wi, wo, ce, co, ne, meta = _loss_launch_args(w_in, w_out, centers, contexts, negatives)
    B, K, D = ce.shape[0], ne.shape[1], wi.shape[1]
    loss = torch.empty(B, dtype=wi.dtype, device=wi.device)
    if B > 0:
        wrap_triton(_sgns_loss_fwd_kernel)[(triton.cdiv(B, meta["BLOCK_B"]),)](
            loss, wi, wo, ce, co, ne, B, K, D, **meta)
    return loss


@sgns_loss_triton.register_fake
def _sgns_loss_triton_fake(w_in, w_out, centers, contexts, negatives):
    _check_loss_args("sgns_loss_triton", w_in, w_out, centers, contexts, negatives)
    return w_in.new_empty(centers.shape[0])


@triton_op("embedfast::sgns_loss_triton_backward", mutates_args=())
def sgns_loss_triton_backward(grad: torch.Tensor, w_in: torch.Tensor, w_out: torch.Tensor, centers: torch.Tensor,
                              contexts: torch.Tensor, negatives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton version of ``embedfast::sgns_loss_backward``: dense gradients (grad_w_in, grad_w_out)."""
    op = "sgns_loss_triton_backward"
    _check_loss_args(op, w_in, w_out, centers, contexts, negatives)
    if grad.dtype != w_in.dtype or grad.dim() != 1 or grad.shape[0] != centers.shape[0]:
        raise ValueError(f"{op}: argument 'grad' must be a [{centers.shape[0]}] {w_in.dtype} tensor, got "
                         f"{tuple(grad.shape)} {grad.dtype}")
    if _eager(w_in, w_out, centers, contexts, negatives):
        _check_loss_values(op, w_in, w_out, centers, contexts, negatives)
    wi, wo, ce, co, ne, meta = _loss_launch_args(w_in, w_out, centers, contexts, negatives)
    B, K, D = ce.shape[0], ne.shape[1], wi.shape[1]
    g_in = torch.zeros_like(wi)
    g_out = torch.zeros_like(wo)
    if B > 0:
        wrap_triton(_sgns_loss_bwd_kernel)[(triton.cdiv(B, meta["BLOCK_B"]),)](
            g_in, g_out, grad.contiguous(), wi, wo, ce, co, ne, B, K, D, **meta)
    return g_in, g_out


@sgns_loss_triton_backward.register_fake
def _sgns_loss_triton_backward_fake(grad, w_in, w_out, centers, contexts, negatives):
    _check_loss_args("sgns_loss_triton_backward", w_in, w_out, centers, contexts, negatives)
    return (torch.empty(w_in.shape, dtype=w_in.dtype, device=w_in.device),
            torch.empty(w_out.shape, dtype=w_out.dtype, device=w_out.device))


def _loss_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _loss_backward(ctx, grad):
    w_in, w_out, centers, contexts, negatives = ctx.saved_tensors
    g_in, g_out = sgns_loss_triton_backward(grad, w_in, w_out, centers, contexts, negatives)
    return g_in, g_out, None, None, None


sgns_loss_triton.register_autograd(_loss_backward, setup_context=_loss_setup)


#: True when the kernels were defined under TRITON_INTERPRET=1 (they then run on CPU tensors, in Python).
INTERPRETED = not isinstance(_sgns_train_kernel, triton.runtime.jit.JITFunction)


if INTERPRETED:
    keep_opaque_when_interpreted((sgns_train_triton, sgns_loss_triton, sgns_loss_triton_backward))


def compile_for_target(arch: int = 90, *, dim: int = 100, window: int = 5, negative: int = 5) -> dict:
    """Compile every kernel for a CUDA architecture (e.g. 90 = H100) without a GPU; returns name -> cubin size.

    Only meaningful when the kernels are not interpreted (TRITON_INTERPRET unset at import). A check that the
    kernels type-check and lower to PTX and cubin; it does not run them.
    """
    if INTERPRETED:
        raise RuntimeError("compile_for_target: the kernels were imported under TRITON_INTERPRET=1")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    target = GPUTarget("cuda", arch, 32)
    out = {}
    meta = _train_meta(dim, window, negative)
    for shared in (True, False):
        for exact in (True, False):
            sig = {n: "*fp32" for n in ("w_in", "w_out")}
            sig.update(ids="*i32", off="*i64", keep="*fp64", thr="*i64", alias="*i32", scratch="*i32",
                       part="*fp64", key_ptr="*i64", sched_ptr="*fp64", V="i64", D="i64", window="i64")
            const = dict(NEG=negative, SHARED=shared, EXACT=exact, **meta)
            sig.update({k: "constexpr" for k in const})
            k = triton.compile(ASTSource(fn=_sgns_train_kernel, signature=sig, constexprs=const), target=target)
            out[f"train(shared={shared}, exact={exact})"] = len(k.asm["cubin"])
    for name, fn, ptrs in (("loss_fwd", _sgns_loss_fwd_kernel, ("loss_ptr", "w_in", "w_out")),
                           ("loss_bwd", _sgns_loss_bwd_kernel, ("g_in", "g_out", "grad", "w_in", "w_out"))):
        for dt, acc in (("fp32", tl.float32), ("fp64", tl.float64)):
            sig = {p: f"*{dt}" for p in ptrs}
            sig.update(cen="*i64", ctx="*i64", neg="*i64", B="i64", K="i64", D="i64")
            const = dict(BLOCK_B=16, BLOCK_D=128, ACC=acc)
            sig.update({k: "constexpr" for k in const})
            k = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=const), target=target)
            out[f"{name}({dt})"] = len(k.asm["cubin"])
    return out
