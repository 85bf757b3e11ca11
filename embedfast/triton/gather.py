"""Triton kernels of ``gather_bags`` (multi-source weighted gather over bags), forward and backward.

Same semantics as the CPU op (csrc/cpu/fusion.cpp): bag ``b`` owns the entries ``e`` in
``[bag_offsets[b], bag_offsets[b+1])``; with ``s_e = source_weight[k_e] * entry_weight[e]``::

    out[n] = sum_{e in bag(ids[n])} s_e * tables[k_e][r_e]           (/ sum_e s_e when renormalize)

zeros for an empty bag (or a renormalised bag whose ``s_e`` sum to zero). fp16/bf16 tables accumulate in fp32
(fp64 tables in fp64).

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

All ops are ``torch.library.triton_op`` with ``wrap_triton`` launches, with fake kernels, so they work under
``torch.compile``. Under ``TRITON_INTERPRET=1`` (set before this module is imported) the kernels run on CPU
tensors in Triton's interpreter (for testing); the interpreted kernels cannot be captured by ``wrap_triton``'s
tracing, so in that mode the ops stay opaque nodes in compiled graphs (see ``INTERPRETED``).

Input validation: argument dtypes/shapes/devices are checked always. Index values (ids, bag offsets, entry
sources and rows) are checked when the op runs eagerly (this costs a device synchronisation); inside a
compiled graph or a CUDA-graph capture they are not checked, but the kernels never read or write out of bounds:
an out-of-range id gives a zero row, a bad entry contributes nothing.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .. import ops as _ops
from .._backend import eager as _eager, keep_opaque_when_interpreted

__all__ = [
    "MAX_TABLES",
    "INTERPRETED",
    "gather_bags_triton",
    "gather_bags_triton_backward",
    "gather_bags_triton_backward_update",
    "gather_bags_fused_update",
    "rowwise_adagrad_state",
]

#: Most tables one call can take (each is a separate pointer argument of the kernels).
MAX_TABLES = 8

_BIG = tl.constexpr(2**62)
_BIG_PY = 2**62

OPTIMIZERS = {"sgd": 2, "adagrad": 3}


# ----------------------------------------------------------------------------------------------------------
# kernels
# ----------------------------------------------------------------------------------------------------------


@triton.jit
def _pick(t: tl.constexpr, a0, a1, a2, a3, a4, a5, a6, a7):
    """The t-th of eight arguments (t known at compile time)."""
    if t == 0:
        r = a0
    elif t == 1:
        r = a1
    elif t == 2:
        r = a2
    elif t == 3:
        r = a3
    elif t == 4:
        r = a4
    elif t == 5:
        r = a5
    elif t == 6:
        r = a6
    else:
        r = a7
    return r


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
        k = tl.load(src_ptr + e, mask=m, other=0)
        r = tl.load(row_ptr + e, mask=m, other=0)
        w = tl.load(ew_ptr + e, mask=m, other=0).to(ACC)
        good = m & (k >= 0) & (k < K)
        s = tl.load(sw_ptr + k, mask=good, other=0).to(ACC) * w
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
        k = tl.load(src_ptr + e, mask=m, other=0)
        r = tl.load(row_ptr + e, mask=m, other=0)
        w = tl.load(ew_ptr + e, mask=m, other=0).to(ACC)
        good = m & (k >= 0) & (k < K)
        s = tl.load(sw_ptr + k, mask=good, other=0).to(ACC) * w
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

_TABLE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


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


# ----------------------------------------------------------------------------------------------------------
# forward op
# ----------------------------------------------------------------------------------------------------------


@triton_op("embedfast::gather_bags_triton", mutates_args=())
def gather_bags_triton(tables: list[torch.Tensor], source_weight: torch.Tensor, bag_offsets: torch.Tensor,
                       entry_source: torch.Tensor, entry_row: torch.Tensor, entry_weight: torch.Tensor,
                       ids: torch.Tensor, renormalize: bool, sparse_grad: bool) -> torch.Tensor:
    """Triton forward of ``embedfast::gather_bags`` (same schema and meaning; ``sparse_grad`` only affects the
    backward)."""
    op = "gather_bags_triton"
    _check_args(op, tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids)
    tables = [_rowmajor(t) for t in tables]
    source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids = (
        x.contiguous() for x in (source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids))
    K, D = len(tables), tables[0].shape[1]
    N, B, E = ids.shape[0], bag_offsets.shape[0] - 1, entry_source.shape[0]
    eager = _eager(ids, bag_offsets, *tables)
    if eager:
        _check_structure(op, bag_offsets, E, ids)
    out = torch.empty((N, D), dtype=tables[0].dtype, device=tables[0].device)
    if N == 0 or D == 0:
        return out
    err = torch.full((3,), _BIG_PY, dtype=torch.int64, device=ids.device)
    BD = _block_d(D)
    grid = (triton.cdiv(N, _BLOCK_N), triton.cdiv(D, BD))
    wrap_triton(_gather_fwd_kernel)[grid](
        out, out.stride(0), ids, bag_offsets, entry_source, entry_row, entry_weight, source_weight, err,
        *_table_args(tables), N, D, B, E,
        K=K, RENORM=bool(renormalize), ACC=_acc(tables[0].dtype), BLOCK_N=_BLOCK_N, BLOCK_D=BD)
    if eager:
        _raise_entry_error(op, err, entry_source, entry_row, tables)
    return out


@gather_bags_triton.register_fake
def _gather_bags_triton_fake(tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids,
                             renormalize, sparse_grad):
    _check_args("gather_bags_triton", tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight,
                ids)
    return tables[0].new_empty((ids.shape[0], tables[0].shape[1]))


# ----------------------------------------------------------------------------------------------------------
# backward
# ----------------------------------------------------------------------------------------------------------


def _backward_common(op, grad, tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids,
                     renormalize, weights_grad, tables_flag, mode, outs=None, states=None, lr=0.0, eps=0.0):
    """Shared backward: returns (gsw, gew, per-table results). mode: 0 dense, 1 sparse, 2 SGD, 3 Adagrad."""
    wdtype = _check_args(op, tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids)
    tables = [_rowmajor(t) for t in tables]
    source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids = (
        x.contiguous() for x in (source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids))
    K, D = len(tables), tables[0].shape[1]
    N, B, E = ids.shape[0], bag_offsets.shape[0] - 1, entry_source.shape[0]
    dev, tdtype = tables[0].device, tables[0].dtype
    if grad.dim() != 2 or grad.shape[0] != N or grad.shape[1] != D:
        raise ValueError(f"{op}: argument 'grad' must have shape [{N}, {D}], got {tuple(grad.shape)}")
    if not grad.dtype.is_floating_point:
        raise ValueError(f"{op}: argument 'grad' must be floating, got {grad.dtype}")
    if grad.device != dev:
        raise ValueError(f"{op}: argument 'grad' is on {grad.device} but the tables are on {dev}")
    if len(tables_flag) != K:
        raise ValueError(f"{op}: one table flag per table ({K}) is needed, got {len(tables_flag)}")
    grad = _rowmajor(grad)
    acc_t = torch.float64 if tdtype == torch.float64 else torch.float32
    any_table = any(tables_flag)
    gsw = torch.zeros(K if weights_grad else 0, dtype=wdtype, device=dev)
    gew = torch.zeros(E if weights_grad else 0, dtype=wdtype, device=dev)
    eager = _eager(grad, ids, bag_offsets, *tables)
    if eager:
        _check_structure(op, bag_offsets, E, ids)
    if N == 0 or D == 0 or (not weights_grad and not any_table):
        return gsw, gew, None
    # 1. distinct bags (invalid ids become the empty bag B) and their summed gradient rows G [N (>= U), D]
    sids, perm = torch.sort(torch.where((ids >= 0) & (ids < B), ids, B), stable=True)
    useg, starts = _segments(sids, N)
    G = torch.empty((N, D), dtype=acc_t, device=dev)
    BD = _block_d(D)
    wrap_triton(_bag_grad_kernel)[(triton.cdiv(N, _BLOCK_U), triton.cdiv(D, BD))](
        G, grad, grad.stride(0), perm, starts, N, D, ACC=_acc(tdtype), BLOCK_U=_BLOCK_U, BLOCK_D=BD)
    # 2. coefficients and weight gradients per distinct bag
    KP = triton.next_power_of_2(K)
    nprog = triton.cdiv(N, _BLOCK_U)
    part = torch.zeros((nprog, KP), dtype=acc_t, device=dev)
    coef = torch.zeros(E, dtype=wdtype, device=dev)
    gew_buf = gew if weights_grad else torch.zeros(1, dtype=wdtype, device=dev)
    err = torch.full((3,), _BIG_PY, dtype=torch.int64, device=dev)
    targs = _table_args(tables)
    wrap_triton(_bag_weights_kernel)[(nprog,)](
        gew_buf, coef, part, G, sids, starts, bag_offsets, entry_source, entry_row, entry_weight, source_weight,
        err, *targs, N, D, B, E,
        K=K, KP=KP, RENORM=bool(renormalize), NEED_W=bool(weights_grad), ACC=_acc(tdtype), BLOCK_U=_BLOCK_U,
        BLOCK_D=BD)
    if weights_grad:
        gsw = part.sum(0)[:K].to(wdtype)
    if eager:
        _raise_entry_error(op, err, entry_source, entry_row, tables)
    if not any_table or E == 0:
        return gsw, gew, [] if mode == 1 else None
    # 3. (table, row) keys of the entries of used bags in trainable tables; sorted; one program per key
    rows_t = torch.tensor([t.shape[0] for t in tables], dtype=torch.int64, device=dev)
    base = torch.zeros(K + 1, dtype=torch.int64, device=dev)
    base[1:] = torch.cumsum(rows_t, 0)
    sentinel = int(sum(t.shape[0] for t in tables))
    flag_t = torch.tensor([bool(f) for f in tables_flag], dtype=torch.bool, device=dev)
    bag_to_u = torch.full((B + 1,), -1, dtype=torch.int64, device=dev)
    bag_to_u[sids] = useg  # duplicates of one bag write the same value
    bag_to_u[B] = -1  # invalid ids (mapped to B) own no bag
    ebag = torch.searchsorted(bag_offsets, torch.arange(E, device=dev), right=True) - 1
    ent_u = bag_to_u[ebag.clamp(0, B)]
    k_ok = (entry_source >= 0) & (entry_source < K)
    kc = entry_source.clamp(0, K - 1)
    r_ok = (entry_row >= 0) & (entry_row < rows_t[kc])
    use = (ent_u >= 0) & k_ok & r_ok & flag_t[kc]
    keys = torch.where(use, base[kc] + entry_row, sentinel)
    skeys, kperm = torch.sort(keys, stable=True)
    _, sstarts = _segments(skeys, E)
    vals = torch.zeros(1, dtype=tdtype, device=dev)
    nseg = E  # upper bound: programs past the last key exit at once (static grid; no synchronisation)
    if mode == 1:  # sparse: the used keys' segments come first (the sentinel sorts last); eager only
        nseg = int(((sstarts[:E] < E) & (skeys[sstarts[:E].clamp(max=E - 1)] < sentinel)).sum())
        vals = torch.empty((nseg, D), dtype=tdtype, device=dev)
    if mode == 0:
        outs = [torch.zeros((t.shape[0], D), dtype=tdtype, device=dev) if f else t.new_empty((0, D))
                for t, f in zip(tables, tables_flag)]
    out_slots = (outs if mode in (0, 2, 3) else tables)
    o_args = [o if (mode == 1 or o.numel()) else tables[0] for o in out_slots]
    o_args = o_args + [tables[0]] * (MAX_TABLES - K)
    q_args = [max(int(o.stride(0)), 1) if o.dim() == 2 else 0 for o in out_slots] + [0] * (MAX_TABLES - K)
    if mode == 3:
        h_args = [h if h.numel() else tables[0] for h in states] + [tables[0]] * (MAX_TABLES - K)
    else:
        h_args = [tables[0]] * MAX_TABLES
    if nseg > 0:
        wrap_triton(_segment_kernel)[(nseg,)](
            skeys, sstarts, kperm, ent_u, coef, G, base, vals, *o_args, *q_args, *h_args,
            E, D, sentinel, float(lr), float(eps),
            K=K, MODE=mode, ACC=_acc(tdtype), BLOCK_D=triton.next_power_of_2(D))
    if mode == 1:
        seg_keys = skeys[sstarts[:nseg]]
        res = []
        for k in range(K):
            if not tables_flag[k]:
                res.append((tables[k].new_empty((0, D)), bag_offsets.new_empty((0,))))
                continue
            lo, hi = torch.searchsorted(seg_keys, base[k:k + 2]).tolist()
            res.append((vals[lo:hi].clone(), seg_keys[lo:hi] - int(base[k])))
        return gsw, gew, res
    return gsw, gew, outs


@triton_op("embedfast::gather_bags_triton_backward", mutates_args=())
def gather_bags_triton_backward(grad: torch.Tensor, tables: list[torch.Tensor], source_weight: torch.Tensor,
                                bag_offsets: torch.Tensor, entry_source: torch.Tensor, entry_row: torch.Tensor,
                                entry_weight: torch.Tensor, ids: torch.Tensor, renormalize: bool, weights_grad: bool,
                                tables_grad: list[bool], sparse: bool, entry_weight_grad: bool = True
                                ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Triton backward of ``gather_bags`` (same schema and results as ``embedfast::gather_bags_backward``)."""
    op = "gather_bags_triton_backward"
    K, D = len(tables), (tables[0].shape[1] if len(tables) else 0)
    gsw, gew, res = _backward_common(op, grad, tables, source_weight, bag_offsets, entry_source, entry_row,
                                     entry_weight, ids, renormalize, weights_grad, list(tables_grad),
                                     1 if sparse else 0)
    dev = tables[0].device
    grads, rows = [], []
    for k in range(K):
        t = tables[k]
        empty_rows = torch.empty(0, dtype=torch.int64, device=dev)
        if not tables_grad[k]:
            grads.append(t.new_empty((0, D)))
            rows.append(empty_rows)
        elif sparse:
            if res:
                grads.append(res[k][0])
                rows.append(res[k][1])
            else:
                grads.append(t.new_empty((0, D)))
                rows.append(empty_rows)
        else:
            grads.append(res[k] if res is not None else torch.zeros((t.shape[0], D), dtype=t.dtype, device=dev))
            rows.append(empty_rows)
    if not entry_weight_grad:  # the kernel computes both weight gradients together; hand back only what was asked
        gew = gew.new_empty((0,))
    return gsw, gew, grads, rows


# Same output shapes as the C++ backward: share its fake kernel.
gather_bags_triton_backward.register_fake(_ops.gather_bags_backward_fake_for("gather_bags_triton_backward"))


@triton_op("embedfast::gather_bags_triton_backward_update", mutates_args=("tables", "states"))
def gather_bags_triton_backward_update(grad: torch.Tensor, tables: list[torch.Tensor], states: list[torch.Tensor],
                                       source_weight: torch.Tensor, bag_offsets: torch.Tensor,
                                       entry_source: torch.Tensor, entry_row: torch.Tensor,
                                       entry_weight: torch.Tensor, ids: torch.Tensor, renormalize: bool,
                                       weights_grad: bool, tables_update: list[bool], optimizer: str, lr: float,
                                       eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward of ``gather_bags`` fused with a row-wise update of the tables flagged in ``tables_update``.

    For every table row g_r with a nonzero contribution (each row reduced once, no atomics):
    ``optimizer="sgd"``: ``w_r -= lr * g_r``; ``"adagrad"`` (row-wise, one state per row, as in FBGEMM):
    ``h_r += mean(g_r ** 2); w_r -= lr * g_r / (sqrt(h_r) + eps)`` with ``states[k]`` float32 (float64 for
    float64 tables) [V_k]. Returns (grad_source_weight, grad_entry_weight) as the backward op does (empty
    unless ``weights_grad``). Tables are updated in place; their rows must be contiguous.
    """
    op = "gather_bags_triton_backward_update"
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"{op}: argument 'optimizer' must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    K = len(tables)
    if len(states) != K:
        raise ValueError(f"{op}: argument 'states' must have one tensor per table ({K}), got {len(states)}")
    for k, (t, f) in enumerate(zip(tables, tables_update)):
        if f and t.dim() == 2 and t.shape[1] > 1 and t.stride(1) != 1:
            raise ValueError(f"{op}: 'tables[{k}]' is updated in place, so its rows must be contiguous "
                             f"(stride(1) == 1), got strides {tuple(t.stride())}")
        if f and optimizer == "adagrad":
            h = states[k]
            sdt = torch.float64 if t.dtype == torch.float64 else torch.float32
            if h.dim() != 1 or h.shape[0] != t.shape[0] or h.dtype != sdt or h.device != t.device:
                raise ValueError(f"{op}: 'states[{k}]' must be a {sdt} tensor of shape [{t.shape[0]}] on "
                                 f"{t.device} (one Adagrad state per row of tables[{k}]), got {h.dtype} "
                                 f"{tuple(h.shape)} on {h.device}")
            if not h.is_contiguous():
                raise ValueError(f"{op}: 'states[{k}]' must be contiguous")
    gsw, gew, _ = _backward_common(op, grad, tables, source_weight, bag_offsets, entry_source, entry_row,
                                   entry_weight, ids, renormalize, weights_grad, list(tables_update),
                                   OPTIMIZERS[optimizer], outs=list(tables), states=list(states), lr=lr, eps=eps)
    return gsw, gew


@gather_bags_triton_backward_update.register_fake
def _gather_bags_triton_backward_update_fake(grad, tables, states, source_weight, bag_offsets, entry_source,
                                             entry_row, entry_weight, ids, renormalize, weights_grad, tables_update,
                                             optimizer, lr, eps):
    k = len(tables)
    return (source_weight.new_empty((k,) if weights_grad else (0,)),
            entry_weight.new_empty((entry_weight.shape[0],) if weights_grad else (0,)))


# ----------------------------------------------------------------------------------------------------------
# autograd and the fused-update training path
# ----------------------------------------------------------------------------------------------------------


# Same autograd as the C++ op, with the Triton backward kernel.
gather_bags_triton.register_autograd(
    _ops.gather_bags_backward_with(lambda *args: torch.ops.embedfast.gather_bags_triton_backward(*args)),
    setup_context=_ops._gather_bags_setup_context)


def rowwise_adagrad_state(tables: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Zero row-wise Adagrad states (one accumulator per row) for ``gather_bags_fused_update``."""
    return [torch.zeros(t.shape[0], dtype=torch.float64 if t.dtype == torch.float64 else torch.float32,
                        device=t.device) for t in tables]


class _FusedUpdate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, anchor, source_weight, entry_weight, cfg, *tables):
        out = torch.ops.embedfast.gather_bags_triton(list(tables), source_weight, cfg["bag_offsets"],
                                                     cfg["entry_source"], cfg["entry_row"], entry_weight,
                                                     cfg["ids"], cfg["renormalize"], False)
        ctx.save_for_backward(source_weight, entry_weight)
        ctx.cfg = cfg
        ctx.tables = tables
        return out

    @staticmethod
    def backward(ctx, grad):
        source_weight, entry_weight = ctx.saved_tensors
        cfg = ctx.cfg
        weights_grad = bool(ctx.needs_input_grad[1] or ctx.needs_input_grad[2])
        gsw, gew = torch.ops.embedfast.gather_bags_triton_backward_update(
            grad, list(ctx.tables), cfg["states"], source_weight, cfg["bag_offsets"], cfg["entry_source"],
            cfg["entry_row"], entry_weight, cfg["ids"], cfg["renormalize"], weights_grad, cfg["update"],
            cfg["optimizer"], cfg["lr"], cfg["eps"])
        return (None, (gsw if ctx.needs_input_grad[1] else None), (gew if ctx.needs_input_grad[2] else None), None,
                *([None] * len(ctx.tables)))


def gather_bags_fused_update(tables: Sequence[torch.Tensor], source_weight: torch.Tensor, bag_offsets: torch.Tensor,
                             entry_source: torch.Tensor, entry_row: torch.Tensor, entry_weight: torch.Tensor,
                             ids: torch.Tensor, *, optimizer: str = "sgd", lr: float = 0.01, eps: float = 1e-8,
                             states: Optional[Sequence[torch.Tensor]] = None, update: Optional[Sequence[bool]] = None,
                             renormalize: bool = True) -> torch.Tensor:
    """``gather_bags`` (Triton) whose backward updates the tables in place instead of returning their gradients.

    The backward reduces each touched table row once (sorted segments, no atomics) and applies ``optimizer``
    (``"sgd"`` or row-wise ``"adagrad"``, see ``gather_bags_triton_backward_update``) with learning rate ``lr``
    to the tables flagged in ``update`` (default: all). The tables get no ``.grad``; ``source_weight`` and
    ``entry_weight`` get ordinary gradients when they require them. ``states`` (row-wise Adagrad) come from
    ``rowwise_adagrad_state(tables)`` and are updated in place. Eager mode only.
    """
    tables = list(tables)
    if update is None:
        update = [True] * len(tables)
    if optimizer == "adagrad" and states is None:
        raise ValueError("gather_bags_fused_update: optimizer='adagrad' needs states=rowwise_adagrad_state(tables)")
    if states is None:
        states = [t.new_empty(0) for t in tables]
    cfg = dict(bag_offsets=bag_offsets, entry_source=entry_source, entry_row=entry_row, ids=ids,
               renormalize=bool(renormalize), states=list(states), update=[bool(u) for u in update],
               optimizer=optimizer, lr=float(lr), eps=float(eps))
    # a zero-size input that requires grad makes autograd run the backward (the update) even when no other
    # input requires a gradient
    anchor = torch.empty(0, device=tables[0].device, requires_grad=True)
    return _FusedUpdate.apply(anchor, source_weight, entry_weight, cfg, *[t.detach() for t in tables])


#: True when the kernels were defined under TRITON_INTERPRET=1 (they then run on CPU tensors, in Python).
INTERPRETED = not isinstance(_gather_fwd_kernel, triton.runtime.jit.JITFunction)


if INTERPRETED:
    keep_opaque_when_interpreted((gather_bags_triton, gather_bags_triton_backward, gather_bags_triton_backward_update))
