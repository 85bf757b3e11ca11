"""Triton kernels of SGNS (device code): the fused training kernel and the loss kernels, with their random
streams. The ops that launch them, and their checks, are ``embedfast.word2vec.triton`` (see its docstring for
the semantics); import that module, not this one, so that both are defined under the same ``TRITON_INTERPRET``.

Training kernel: one program per sentence of the chunk (Hogwild across programs, as the CPU kernel is across
threads). A program

1. sub-samples its sentence (one draw per token with keep probability < 1, in order) and writes the kept ids,
   compacted, into a scratch buffer;
2. walks the kept positions in order: one draw for the shrunk window ``b = window - r % window``, then the
   negatives (alias sampling), exactly in the order of the CPU kernel -- per centre (``shared_negatives``,
   HogBatch: scores of all contexts x targets from the values before the update, ``T += G^T X``, ``X += G T``
   with atomic adds so repeated rows accumulate like the CPU kernel's sequential adds) or per (context, centre)
   pair (word2vec: targets one after the other, ``w_in[x]`` updated after its targets).

Loss kernels: one program per block of examples; the backward accumulates row gradients with atomic adds
(the order of the float additions differs from run to run on a GPU; in the interpreter it is fixed).

``compile_for_target`` compiles every kernel for a GPU architecture without a GPU (a check that they lower to
PTX and cubin).
"""
from __future__ import annotations

import os

import triton
import triton.language as tl

__all__ = ["INTERPRETED", "MAX_DIM", "MAX_NEGATIVE", "MAX_WINDOW", "stream_key", "compile_for_target"]

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

# In Triton's interpreter every call of a nested @triton.jit function re-patches triton.language,
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
def _targets(key, ctr, kneg, kk, isneg, c, V, thr_ptr, alias_ptr):
    """The targets of centre ``c``: slot 0 is ``c`` (label 1), slots 1..NEG its negatives from the draws
    ``ctr + kneg`` of the stream (alias sampling; a negative equal to ``c`` is skipped, as in word2vec).
    Returns (target ids, valid slots, negatives skipped)."""
    tn = _alias_pick(_draw(key, ctr + kneg), V, thr_ptr, alias_ptr, isneg)
    tvalid = (kk == 0) | (isneg & (tn != c))
    tid = tl.where(kk == 0, c, tl.where(tvalid, tn, 0))
    return tid, tvalid, tl.sum((isneg & (tn == c)).to(tl.int64), axis=0)


@_device_fn
def _sentence_start(off, key_ptr, sched_ptr, s):
    """Sentence ``s`` of the chunk: (first token, end, its slice of the scratch buffer, its random key, its
    learning rate, computed in float64 like the CPU kernel)."""
    first = tl.load(off)
    b0 = tl.load(off + s)
    b1 = tl.load(off + s + 1)
    key = _mix64(tl.load(key_ptr).to(tl.uint64, bitcast=True) ^ (s.to(tl.uint64) * 0x8CB92BA72F3D8DD7))
    a0 = tl.load(sched_ptr)
    a1 = tl.load(sched_ptr + 1)
    done = tl.load(sched_ptr + 2) + (b0 - first).to(tl.float64)
    progress = tl.minimum(done / tl.load(sched_ptr + 3), 1.0)
    alpha = (a0 - (a0 - a1) * progress).to(tl.float32)
    return b0, b1, b0 - first, key, alpha


@_device_fn
def _subsample(ids, keep, scratch, key, b0, b1, sb, V, BLOCK_T: tl.constexpr):
    """Sub-sample the tokens [b0, b1) (one draw per token with keep probability < 1, in order, from draw 0 of
    ``key``) and write the kept ids, compacted, to scratch[sb : sb + nk]. Returns (draws used, nk)."""
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
    return ctr, nk


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


@_device_fn
def _zero_stats():
    """The per-sentence counters of a training kernel: loss (float32), pairs, negatives, negatives skipped."""
    return (tl.zeros([], dtype=tl.float32), tl.zeros([], dtype=tl.int64), tl.zeros([], dtype=tl.int64),
            tl.zeros([], dtype=tl.int64))


@_device_fn
def _store_part(part, s, loss, pairs, nneg, nskip, nk):
    """Sentence ``s``'s row of the per-sentence stats (``_N_PART`` float64 values)."""
    ps = part + s * 5
    tl.store(ps, loss.to(tl.float64))
    tl.store(ps + 1, pairs.to(tl.float64))
    tl.store(ps + 2, nneg.to(tl.float64))
    tl.store(ps + 3, nskip.to(tl.float64))
    tl.store(ps + 4, nk.to(tl.float64))


@_device_fn
def _train_program(ids, keep, scratch, off, key_ptr, sched_ptr, V, D, BLOCK_T: tl.constexpr,
                   BLOCK_D: tl.constexpr, NT_P: tl.constexpr, NEG: tl.constexpr):
    """The start every training kernel shares: this program's sentence ``s`` (``_sentence_start``), sub-sampled
    into scratch[sb : sb + nk] (``_subsample``, then a barrier so the kept ids are visible to the whole program),
    the row lanes ``d`` (mask ``dm``) and the target tile's slots ``kk`` (slot 0 the positive, label ``lab`` 1;
    ``isneg`` the negatives' slots 1..NEG, label 0; ``kneg`` = kk - 1 their draw offsets).
    Returns (s, sb, key, alpha, draws used, nk, d, dm, kk, lab, isneg, kneg)."""
    s = tl.program_id(0)
    b0, b1, sb, key, alpha = _sentence_start(off, key_ptr, sched_ptr, s)
    ctr, nk = _subsample(ids, keep, scratch, key, b0, b1, sb, V, BLOCK_T)
    tl.debug_barrier()
    d = tl.arange(0, BLOCK_D)
    kk = tl.arange(0, NT_P)
    return (s, sb, key, alpha, ctr, nk, d, d < D, kk, (kk == 0).to(tl.float32), (kk >= 1) & (kk <= NEG),
            (kk - 1).to(tl.uint64))


@_device_fn
def _center(key, ctr, window, scratch, sb, i):
    """Kept position ``i``: (its shrunk window ``b = window - r % window`` from draw ``ctr``, its word id, the
    next draw)."""
    r = _draw(key, ctr)
    b = window - (r % window.to(tl.uint64)).to(tl.int64)
    return b, tl.load(scratch + sb + i).to(tl.int64), ctr + 1


@_device_fn
def _context_tile(scratch, sb, i, b, nk, jj, dm):
    """The contexts j = i - b .. i + b, j != i, inside the kept sentence, as one tile of ``jj``'s size:
    (valid slots, word ids, the row mask of their [slots, BLOCK_D] rows)."""
    j = i + tl.where(jj < b, jj - b, jj - b + 1)
    cm = (jj < 2 * b) & (j >= 0) & (j < nk)
    x = tl.load(scratch + sb + j, mask=cm, other=0).to(tl.int64)
    return cm, x, cm[:, None] & dm[None, :]


@_device_fn
def _context_span(i, b, nk):
    """The window [lo, hi) of kept position ``i`` (``i`` itself included): its contexts one by one are
    ``_context_at(.., q)`` for q in range(hi - lo - 1)."""
    return tl.maximum(i - b, 0), tl.minimum(i + b + 1, nk)


@_device_fn
def _context_at(scratch, sb, i, lo, q):
    """The q-th context word id of kept position ``i`` (window starting at ``lo``, ``i`` skipped)."""
    j = lo + q
    j = tl.where(j >= i, j + 1, j)
    return tl.load(scratch + sb + j).to(tl.int64)


@_device_fn
def _score_rows(w_out, tid, tv, lab, inp, alpha, d, dm, D, EXACT: tl.constexpr):
    """The rows ``w_out[tid]`` (valid slots ``tv``, labels ``lab``) scored against the input row ``inp`` from the
    values before the update, then ``w_out[t] += g_t inp`` (atomic, so repeated rows accumulate).
    Returns (their loss, sum_t g_t w_out[t] from the values before the update)."""
    tm = tv[:, None] & dm[None, :]
    T = tl.load(w_out + tid[:, None] * D + d[None, :], mask=tm, other=0.0, cache_modifier=".cg")
    f = tl.sum(T * inp[None, :], axis=1)
    g = tl.where(tv, alpha * (lab - _sigmoid(f, EXACT)), 0.0)
    loss = -tl.sum(tl.where(tv, _train_log_sigmoid(tl.where(lab > 0.5, f, -f), EXACT), 0.0), axis=0)
    tl.atomic_add(w_out + tid[:, None] * D + d[None, :], g[:, None] * inp[None, :], mask=tm)
    return loss, tl.sum(g[:, None] * T, axis=0)


# ----------------------------------------------------------------------------------------------------------
# training kernel
# ----------------------------------------------------------------------------------------------------------


@triton.jit
def _sgns_train_kernel(w_in, w_out, ids, off, keep, thr, alias, scratch, part, key_ptr, sched_ptr,
                       V, D, window,
                       NEG: tl.constexpr, SHARED: tl.constexpr, EXACT: tl.constexpr,
                       BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr, CTX_P: tl.constexpr, NT_P: tl.constexpr):
    # 1. sub-sampling, compacted into scratch[sb : sb + nk]; targets: slot 0 the centre (label 1), slots 1..NEG
    # the negatives (label 0)
    s, sb, key, alpha, ctr, nk, d, dm, kk, lab, isneg, kneg = _train_program(
        ids, keep, scratch, off, key_ptr, sched_ptr, V, D, BLOCK_T, BLOCK_D, NT_P, NEG)
    # 2. centres in order
    loss, pairs, nneg, nskip = _zero_stats()
    jj = tl.arange(0, CTX_P)
    for i in range(0, nk):
        b, c, ctr = _center(key, ctr, window, scratch, sb, i)
        if SHARED:
            # HogBatch: the negatives are shared by all contexts of the centre; scores of all contexts x targets
            # from the values before the update, then T += G^T X and X += G T_old as small matrix products
            tid, tvalid, skipped = _targets(key, ctr, kneg, kk, isneg, c, V, thr, alias)
            ctr += NEG
            nskip += skipped
            # contexts j = i - b .. i + b, j != i, inside the kept sentence
            cm, x, xm = _context_tile(scratch, sb, i, b, nk, jj, dm)
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
            lo, hi = _context_span(i, b, nk)
            for q in range(0, hi - lo - 1):
                x = _context_at(scratch, sb, i, lo, q)
                tid, tvalid, skipped = _targets(key, ctr, kneg, kk, isneg, c, V, thr, alias)
                ctr += NEG
                nskip += skipped
                in_x = tl.load(w_in + x * D + d, mask=dm, other=0.0, cache_modifier=".cg")
                dl, dx = _score_rows(w_out, tid, tvalid, lab, in_x, alpha, d, dm, D, EXACT)
                loss += dl
                tl.atomic_add(w_in + x * D + d, dx, mask=dm)
                nneg += tl.sum(tvalid.to(tl.int64), axis=0) - 1
                pairs += 1
                tl.debug_barrier()
        tl.debug_barrier()
    _store_part(part, s, loss, pairs, nneg, nskip, nk)


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



def _train_meta(D: int, window: int, negative: int) -> dict:
    # tl.dot needs every dimension >= 16
    return dict(BLOCK_T=128, BLOCK_D=max(16, triton.next_power_of_2(D)),
                CTX_P=max(16, triton.next_power_of_2(2 * window)), NT_P=max(16, triton.next_power_of_2(negative + 1)))



#: True when the kernels were defined under TRITON_INTERPRET=1 (they then run on CPU tensors, in Python).
INTERPRETED = not isinstance(_sgns_train_kernel, triton.runtime.jit.JITFunction)


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
