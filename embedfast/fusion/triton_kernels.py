"""The Triton kernels of ``gather_bags`` and their launch helpers and argument checks (``embedfast.fusion.triton``
defines the ops that launch them; see its docstring for the algorithm).

Kernels:

- forward: one program per block of ``BLOCK_N`` output rows and ``BLOCK_D`` columns; each bag entry
  (source, row, weight) is loaded once per output row and the table row is read with one masked load per
  table (up to ``MAX_TABLES`` tables, selected at compile time).
- backward, without atomics, deterministic:
  1. ids sorted (stable) with torch; one program per block of distinct bags sums the gradient rows of each
     distinct bag (``G_u``, accumulation dtype);
  2. per distinct bag, weight gradients by per-entry dot products ``d_e = <G_u, x_e>`` (two passes over the
     entries of the bag: the renormalised gradient needs ``sum_e s_e d_e``) and the table coefficient of each
     entry; the source-weight gradient is summed per program then over programs with torch (fixed order);
  3. table gradients: the (global row, entry) pairs of the used bags are sorted with torch and one program
     per unique row reduces its segment (no atomics on hot rows) and writes the dense gradient row, the sparse
     row, or applies a fused row-wise update (SGD, row-wise Adagrad) to the table in place.

Imported only through ``embedfast.fusion.triton`` (lazily): ``@triton.jit`` decides at decoration time whether a
kernel is compiled or interpreted (``TRITON_INTERPRET=1``).
"""
from __future__ import annotations

from typing import Sequence

import torch
import triton
import triton.language as tl

from .ops import _TABLE_DTYPES

#: Most tables one call can take (each is a separate pointer argument of the kernels).
MAX_TABLES = 8

_BIG = tl.constexpr(2**62)
_BIG_PY = 2**62


# ----------------------------------------------------------------------------------------------------------
# kernels
# ----------------------------------------------------------------------------------------------------------


@triton.jit
def _pick4(t: tl.constexpr, a0, a1, a2, a3):
    """The t-th of four arguments (t known at compile time)."""
    if t == 0:
        r = a0
    elif t == 1:
        r = a1
    elif t == 2:
        r = a2
    else:
        r = a3
    return r


@triton.jit
def _pick(t: tl.constexpr, a0, a1, a2, a3, a4, a5, a6, a7):
    """The t-th of eight arguments (t known at compile time)."""
    if t < 4:
        r = _pick4(t, a0, a1, a2, a3)
    else:
        r = _pick4(t - 4, a4, a5, a6, a7)
    return r


@triton.jit
def _entry(e, m, src_ptr, row_ptr, ew_ptr, sw_ptr, K: tl.constexpr, ACC: tl.constexpr):
    """Bag entry ``e`` (where ``m``): its source k, row r, whether k names a table, and s_e = sw[k] * ew[e]."""
    k = tl.load(src_ptr + e, mask=m, other=0)
    r = tl.load(row_ptr + e, mask=m, other=0)
    w = tl.load(ew_ptr + e, mask=m, other=0).to(ACC)
    good = m & (k >= 0) & (k < K)
    s = tl.load(sw_ptr + k, mask=good, other=0).to(ACC) * w
    return k, r, good, s


@triton.jit
def _gather_fwd_kernel(out_ptr, out_stride, ids_ptr, off_ptr, src_ptr, row_ptr, ew_ptr, sw_ptr, err_ptr,
                       T0, T1, T2, T3, T4, T5, T6, T7,
                       R0, R1, R2, R3, R4, R5, R6, R7,
                       V0, V1, V2, V3, V4, V5, V6, V7,
                       N, D, B, E,
                       K: tl.constexpr, RENORM: tl.constexpr, ACC: tl.constexpr,
                       BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    pid_n = tl.program_id(0)
    pid_d = tl.program_id(1)
    n = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    mn = n < N
    d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    md = d < D
    b = tl.load(ids_ptr + n, mask=mn, other=0)
    ok_id = mn & (b >= 0) & (b < B)
    e0 = tl.load(off_ptr + b, mask=ok_id, other=0)
    e1 = tl.load(off_ptr + b + 1, mask=ok_id, other=0)
    ok_off = (e0 >= 0) & (e1 <= E) & (e0 <= e1)
    cnt = tl.where(ok_id & ok_off, e1 - e0, 0)
    acc = tl.zeros([BLOCK_N, BLOCK_D], dtype=ACC)
    S = tl.zeros([BLOCK_N], dtype=ACC)
    bad_e = tl.full([BLOCK_N], _BIG, tl.int64)
    for j in range(0, tl.max(cnt, axis=0)):
        m = j < cnt
        e = e0 + j
        k, r, good, s = _entry(e, m, src_ptr, row_ptr, ew_ptr, sw_ptr, K, ACC)
        valid = tl.zeros([BLOCK_N], dtype=tl.int1)
        for t in tl.static_range(K):
            Tp = _pick(t, T0, T1, T2, T3, T4, T5, T6, T7)
            Rs = _pick(t, R0, R1, R2, R3, R4, R5, R6, R7)
            Vt = _pick(t, V0, V1, V2, V3, V4, V5, V6, V7)
            mt = good & (k == t) & (r >= 0) & (r < Vt)
            x = tl.load(Tp + r[:, None] * Rs + d[None, :], mask=mt[:, None] & md[None, :], other=0.0).to(ACC)
            acc += tl.where(mt[:, None], s[:, None] * x, 0.0)
            valid = valid | mt
        S += tl.where(valid, s, 0.0)
        bad_e = tl.minimum(bad_e, tl.where(m & (valid == 0), e, _BIG))
    if RENORM:
        keep = (cnt > 0) & (S != 0)
        inv = tl.where(keep, 1.0 / tl.where(keep, S, 1.0), 0.0)
        acc = acc * inv[:, None]
    o = out_ptr + n[:, None] * out_stride + d[None, :]
    tl.store(o, acc.to(out_ptr.dtype.element_ty), mask=mn[:, None] & md[None, :])
    if pid_d == 0:
        bid = tl.min(tl.where(mn & (ok_id == 0), n, _BIG), axis=0)
        if bid < _BIG:
            tl.atomic_min(err_ptr + 0, bid)
        boff = tl.min(tl.where(ok_id & (ok_off == 0), n, _BIG), axis=0)
        if boff < _BIG:
            tl.atomic_min(err_ptr + 1, boff)
        be = tl.min(bad_e, axis=0)
        if be < _BIG:
            tl.atomic_min(err_ptr + 2, be)


@triton.jit
def _bag_grad_kernel(G_ptr, grad_ptr, grad_stride, perm_ptr, starts_ptr, N, D,
                     ACC: tl.constexpr, BLOCK_U: tl.constexpr, BLOCK_D: tl.constexpr):
    """G[u] = sum of grad[perm[i]] over the positions i of distinct bag u (sorted order)."""
    u = tl.program_id(0).to(tl.int64) * BLOCK_U + tl.arange(0, BLOCK_U)
    mu = u < N
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    md = d < D
    s0 = tl.load(starts_ptr + u, mask=mu, other=N)
    s1 = tl.load(starts_ptr + u + 1, mask=mu, other=N)
    cnt = s1 - s0
    acc = tl.zeros([BLOCK_U, BLOCK_D], dtype=ACC)
    for j in range(0, tl.max(cnt, axis=0)):
        m = j < cnt
        p = tl.load(perm_ptr + s0 + j, mask=m, other=0)
        acc += tl.load(grad_ptr + p[:, None] * grad_stride + d[None, :], mask=m[:, None] & md[None, :],
                       other=0.0).to(ACC)
    tl.store(G_ptr + u[:, None] * D + d[None, :], acc, mask=(mu & (cnt > 0))[:, None] & md[None, :])


@triton.jit
def _bag_weights_kernel(gew_ptr, coef_ptr, part_ptr, G_ptr, sids_ptr, starts_ptr, off_ptr, src_ptr, row_ptr,
                        ew_ptr, sw_ptr, err_ptr,
                        T0, T1, T2, T3, T4, T5, T6, T7,
                        R0, R1, R2, R3, R4, R5, R6, R7,
                        V0, V1, V2, V3, V4, V5, V6, V7,
                        N, D, B, E,
                        K: tl.constexpr, KP: tl.constexpr, RENORM: tl.constexpr, NEED_W: tl.constexpr,
                        ACC: tl.constexpr, BLOCK_U: tl.constexpr, BLOCK_D: tl.constexpr):
    """Per distinct bag: entry coefficients s_e / S and (NEED_W) weight gradients; source-weight partials."""
    pid = tl.program_id(0)
    u = pid.to(tl.int64) * BLOCK_U + tl.arange(0, BLOCK_U)
    mu = u < N
    s0 = tl.load(starts_ptr + u, mask=mu, other=N)
    used = mu & (s0 < N)
    b = tl.load(sids_ptr + s0, mask=used, other=0)
    okb = used & (b >= 0) & (b < B)
    e0 = tl.load(off_ptr + b, mask=okb, other=0)
    e1 = tl.load(off_ptr + b + 1, mask=okb, other=0)
    cnt = tl.where(okb & (e0 >= 0) & (e1 <= E) & (e0 <= e1), e1 - e0, 0)
    nmax = tl.max(cnt, axis=0)
    S = tl.zeros([BLOCK_U], dtype=ACC)
    SD = tl.zeros([BLOCK_U], dtype=ACC)
    bad_e = tl.full([BLOCK_U], _BIG, tl.int64)
    dd0 = tl.arange(0, BLOCK_D)
    # pass 1: S = sum s_e; d_e = <G_u, x_e> (kept in gew); SD = sum s_e d_e
    for j in range(0, nmax):
        m = j < cnt
        e = e0 + j
        k, r, good, s = _entry(e, m, src_ptr, row_ptr, ew_ptr, sw_ptr, K, ACC)
        valid = tl.zeros([BLOCK_U], dtype=tl.int1)
        dot = tl.zeros([BLOCK_U], dtype=ACC)
        for t in tl.static_range(K):
            Tp = _pick(t, T0, T1, T2, T3, T4, T5, T6, T7)
            Rs = _pick(t, R0, R1, R2, R3, R4, R5, R6, R7)
            Vt = _pick(t, V0, V1, V2, V3, V4, V5, V6, V7)
            mt = good & (k == t) & (r >= 0) & (r < Vt)
            valid = valid | mt
            if NEED_W:
                for c in range(0, D, BLOCK_D):
                    dd = c + dd0
                    mm = mt[:, None] & (dd < D)[None, :]
                    x = tl.load(Tp + r[:, None] * Rs + dd[None, :], mask=mm, other=0.0).to(ACC)
                    g = tl.load(G_ptr + u[:, None] * D + dd[None, :], mask=mm, other=0.0)
                    dot += tl.sum(x * g, axis=1)
        S += tl.where(valid, s, 0.0)
        bad_e = tl.minimum(bad_e, tl.where(m & (valid == 0), e, _BIG))
        if NEED_W:
            SD += tl.where(valid, s * dot, 0.0)
            tl.store(gew_ptr + e, dot.to(gew_ptr.dtype.element_ty), mask=valid)
    if RENORM:
        keep = S != 0
        inv = tl.where(keep, 1.0 / tl.where(keep, S, 1.0), 0.0)
    else:
        inv = tl.full([BLOCK_U], 1.0, dtype=ACC)
    tk = tl.arange(0, KP)
    part = tl.zeros([BLOCK_U, KP], dtype=ACC)
    # pass 2: coefficients and the final weight gradients
    for j in range(0, nmax):
        m = j < cnt
        e = e0 + j
        k = tl.load(src_ptr + e, mask=m, other=0)
        r = tl.load(row_ptr + e, mask=m, other=0)
        w = tl.load(ew_ptr + e, mask=m, other=0).to(ACC)
        good = m & (k >= 0) & (k < K)
        sw = tl.load(sw_ptr + k, mask=good, other=0).to(ACC)
        valid = tl.zeros([BLOCK_U], dtype=tl.int1)
        for t in tl.static_range(K):
            Vt = _pick(t, V0, V1, V2, V3, V4, V5, V6, V7)
            valid = valid | (good & (k == t) & (r >= 0) & (r < Vt))
        tl.store(coef_ptr + e, (sw * w * inv).to(coef_ptr.dtype.element_ty), mask=valid)
        if NEED_W:
            dot = tl.load(gew_ptr + e, mask=valid, other=0.0).to(ACC)
            if RENORM:
                ds = (dot - SD * inv) * inv
            else:
                ds = dot
            tl.store(gew_ptr + e, (ds * sw).to(gew_ptr.dtype.element_ty), mask=valid)
            part += tl.where(valid[:, None] & (k[:, None] == tk[None, :]), (ds * w)[:, None], 0.0)
    if NEED_W:
        tl.store(part_ptr + pid * KP + tk, tl.sum(part, axis=0))
    be = tl.min(bad_e, axis=0)
    if be < _BIG:
        tl.atomic_min(err_ptr + 2, be)


@triton.jit
def _segment_kernel(skeys_ptr, sstarts_ptr, kperm_ptr, ent_u_ptr, coef_ptr, G_ptr, base_ptr, vals_ptr,
                    O0, O1, O2, O3, O4, O5, O6, O7,
                    Q0, Q1, Q2, Q3, Q4, Q5, Q6, Q7,
                    H0, H1, H2, H3, H4, H5, H6, H7,
                    E, D, SENTINEL, lr, eps,
                    K: tl.constexpr, MODE: tl.constexpr, ACC: tl.constexpr, BLOCK_D: tl.constexpr):
    """One program per unique (table, row) key: reduce its contributions, then (MODE) 0: store the dense
    gradient row O_k[r]; 1: store value row s of the sparse gradient; 2: O_k[r] -= lr * g (SGD);
    3: H_k[r] += mean(g^2), O_k[r] -= lr * g / (sqrt(H_k[r]) + eps) (row-wise Adagrad)."""
    s = tl.program_id(0).to(tl.int64)
    st = tl.load(sstarts_ptr + s)
    if st < E:
        key = tl.load(skeys_ptr + st)
        if key < SENTINEL:
            en = tl.load(sstarts_ptr + s + 1)
            d = tl.arange(0, BLOCK_D)
            md = d < D
            acc = tl.zeros([BLOCK_D], dtype=ACC)
            for i in range(st, en):
                e = tl.load(kperm_ptr + i)
                u = tl.load(ent_u_ptr + e)
                c = tl.load(coef_ptr + e).to(ACC)
                acc += c * tl.load(G_ptr + u * D + d, mask=md, other=0.0)
            if MODE == 1:
                tl.store(vals_ptr + s * D + d, acc.to(vals_ptr.dtype.element_ty), mask=md)
            else:
                kk = key * 0
                for t in tl.static_range(1, K):
                    kk += (key >= tl.load(base_ptr + t)).to(kk.dtype)
                for t in tl.static_range(K):
                    if kk == t:
                        r = key - tl.load(base_ptr + t)
                        Op = _pick(t, O0, O1, O2, O3, O4, O5, O6, O7)
                        Qs = _pick(t, Q0, Q1, Q2, Q3, Q4, Q5, Q6, Q7)
                        o = Op + r * Qs + d
                        if MODE == 0:
                            tl.store(o, acc.to(Op.dtype.element_ty), mask=md)
                        elif MODE == 2:
                            x = tl.load(o, mask=md, other=0.0).to(ACC)
                            tl.store(o, (x - lr * acc).to(Op.dtype.element_ty), mask=md)
                        else:
                            Hp = _pick(t, H0, H1, H2, H3, H4, H5, H6, H7)
                            h = tl.load(Hp + r).to(ACC) + tl.sum(acc * acc, axis=0) / D
                            tl.store(Hp + r, h.to(Hp.dtype.element_ty))
                            x = tl.load(o, mask=md, other=0.0).to(ACC)
                            tl.store(o, (x - lr * acc / (tl.sqrt(h) + eps)).to(Op.dtype.element_ty), mask=md)


# ----------------------------------------------------------------------------------------------------------
# argument checks (metadata only: safe under tracing) and eager value checks
# ----------------------------------------------------------------------------------------------------------



def _check_args(op: str, tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids):
    if len(tables) == 0:
        raise ValueError(f"{op}: argument 'tables' must hold at least one table, got none")
    if len(tables) > MAX_TABLES:
        raise ValueError(f"{op}: the Triton kernels take at most {MAX_TABLES} tables, got {len(tables)}; "
                         "use the CPU op or merge tables")
    t0 = tables[0]
    if t0.dtype not in _TABLE_DTYPES:
        raise ValueError(f"{op}: argument 'tables[0]' must be float32, float16, bfloat16 or float64, got {t0.dtype}")
    dev = t0.device
    for k, t in enumerate(tables):
        if t.device != dev:
            raise ValueError(f"{op}: argument 'tables[{k}]' is on {t.device} but 'tables[0]' is on {dev}")
        if t.dim() != 2:
            raise ValueError(f"{op}: argument 'tables[{k}]' must be 2-D [V, D], got shape {tuple(t.shape)}")
        if t.dtype != t0.dtype:
            raise ValueError(f"{op}: all tables must share one dtype: 'tables[{k}]' is {t.dtype} but 'tables[0]' "
                             f"is {t0.dtype}")
        if t.shape[1] != t0.shape[1]:
            raise ValueError(f"{op}: all tables must share one dimension D: 'tables[{k}]' has shape "
                             f"{tuple(t.shape)} but 'tables[0]' has shape {tuple(t0.shape)}")
    wdtype = torch.float64 if t0.dtype == torch.float64 else torch.float32
    named = [("source_weight", source_weight, wdtype), ("bag_offsets", bag_offsets, torch.int64),
             ("entry_source", entry_source, torch.int64), ("entry_row", entry_row, torch.int64),
             ("entry_weight", entry_weight, wdtype), ("ids", ids, torch.int64)]
    for name, x, dt in named:
        if x.device != dev:
            raise ValueError(f"{op}: argument '{name}' is on {x.device} but the tables are on {dev}")
        if x.dtype != dt:
            raise ValueError(f"{op}: argument '{name}' must have dtype {dt}, got {x.dtype}")
        if x.dim() != 1:
            raise ValueError(f"{op}: argument '{name}' must be 1-D, got shape {tuple(x.shape)}")
    if source_weight.shape[0] != len(tables):
        raise ValueError(f"{op}: argument 'source_weight' must have one weight per table ({len(tables)}), got "
                         f"shape {tuple(source_weight.shape)}")
    if bag_offsets.shape[0] < 1:
        raise ValueError(f"{op}: argument 'bag_offsets' must have B+1 >= 1 elements, got 0")
    E = entry_source.shape[0]
    if entry_row.shape[0] != E or entry_weight.shape[0] != E:
        raise ValueError(f"{op}: arguments 'entry_source' {tuple(entry_source.shape)}, 'entry_row' "
                         f"{tuple(entry_row.shape)} and 'entry_weight' {tuple(entry_weight.shape)} must have the "
                         "same length")
    return wdtype


def _check_structure(op: str, bag_offsets: torch.Tensor, E: int, ids: torch.Tensor) -> None:
    """Eager check of bag_offsets (0, nondecreasing, ends at E) and ids (in [0, B)); one synchronisation."""
    B = bag_offsets.shape[0] - 1
    flags = torch.stack([
        bag_offsets[0] != 0,
        bag_offsets[-1] != E,
        (bag_offsets[1:] < bag_offsets[:-1]).any(),
        ((ids < 0) | (ids >= B)).any() if ids.numel() else torch.zeros((), dtype=torch.bool, device=ids.device),
    ]).tolist()
    if not any(flags):
        return
    if flags[0]:
        raise ValueError(f"{op}: argument 'bag_offsets' must start at 0, got {int(bag_offsets[0])}")
    if flags[1]:
        raise ValueError(f"{op}: argument 'bag_offsets' must end at the number of entries ({E}), got "
                         f"{int(bag_offsets[-1])}")
    if flags[2]:
        b = int((bag_offsets[1:] < bag_offsets[:-1]).nonzero()[0, 0])
        raise ValueError(f"{op}: argument 'bag_offsets' must be nondecreasing, but bag_offsets[{b + 1}] = "
                         f"{int(bag_offsets[b + 1])} < bag_offsets[{b}] = {int(bag_offsets[b])}")
    pos = int(((ids < 0) | (ids >= B)).nonzero()[0, 0])
    raise IndexError(f"{op}: argument 'ids' has value {int(ids[pos])} at flat position {pos}, outside the valid "
                     f"range [0, {B})")


def _raise_entry_error(op: str, err: torch.Tensor, entry_source, entry_row, tables) -> None:
    """Eager: raise for the first bad entry recorded by a kernel (err[2]); one synchronisation."""
    e = int(err[2])
    if e >= _BIG_PY:
        return
    k = int(entry_source[e])
    K = len(tables)
    if not 0 <= k < K:
        raise IndexError(f"{op}: argument 'entry_source' has value {k} at position {e}, outside the valid range "
                         f"of sources [0, {K})")
    raise IndexError(f"{op}: argument 'entry_row' has value {int(entry_row[e])} at position {e}, outside the rows "
                     f"of its source {k} (tables[{k}] has {tables[k].shape[0]} rows)")


# ----------------------------------------------------------------------------------------------------------
# launch helpers
# ----------------------------------------------------------------------------------------------------------


def _acc(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _rowmajor(t: torch.Tensor) -> torch.Tensor:
    """t itself when its rows are contiguous (stride(1) == 1), else a contiguous copy."""
    return t if t.dim() == 2 and (t.shape[1] <= 1 or t.stride(1) == 1) else t.contiguous()


def _table_args(tables: Sequence[torch.Tensor]) -> list:
    """Pointer, row-stride and row-count arguments for MAX_TABLES slots (unused slots repeat table 0)."""
    ts = list(tables) + [tables[0]] * (MAX_TABLES - len(tables))
    strides = [max(int(t.stride(0)), 1) for t in tables] + [0] * (MAX_TABLES - len(tables))
    rows = [int(t.shape[0]) for t in tables] + [0] * (MAX_TABLES - len(tables))
    return ts + strides + rows


def _block_d(D: int, cap: int = 512) -> int:
    return min(triton.next_power_of_2(max(D, 1)), cap)


_BLOCK_N = 16
_BLOCK_U = 16


def _segments(sorted_keys: torch.Tensor, n: int) -> "tuple[torch.Tensor, torch.Tensor]":
    """Runs of equal values in ``sorted_keys`` [n]: (run index of each position [n], run starts [n + 1]; the
    starts past the last run are n). Static shapes, no synchronisation."""
    dev = sorted_keys.device
    first = torch.ones(n, dtype=torch.bool, device=dev)
    if n > 1:
        first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    seg = torch.cumsum(first, 0) - 1
    # run r starts where its first position is; other positions write into a spare slot (n + 1), dropped
    starts = torch.full((n + 2,), n, dtype=torch.int64, device=dev)
    starts.index_put_((torch.where(first, seg, n + 1),), torch.arange(n, device=dev))
    return seg, starts[: n + 1]
